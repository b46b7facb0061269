// Package authcheck is the DMARC troubleshooter behind `mxray auth`: for
// one SMTP client (IP address, HELO name, MAIL FROM) and optionally one
// message, it runs SPF (RFC 7208) for MAIL FROM and HELO, DKIM (RFC 6376),
// ARC (RFC 8617), DMARC (RFC 9989, with the RFC 7489 comparison) and iprev
// (RFC 8601 §3), emits one diag.Step per mechanism, and writes the
// Authentication-Results header field (RFC 8601) a receiver would add.
//
// Steps, in order (ids are stable, docs/json.md):
//
//	spf-mailfrom  SPF for the MAIL FROM identity (postmaster@HELO for a null sender)
//	spf-helo      SPF for the HELO identity (skip without --helo)
//	dkim          every DKIM-Signature, one step for all (skip without a message)
//	arc           the ARC chain (skip without a message)
//	dmarc         DMARC for the From: domain (--mail-from's domain without a message)
//	iprev         reverse DNS of the IP, forward-confirmed, and the HELO name
//
// Not supported: the message is never delivered or changed; a message
// with several From: addresses in different domains is not evaluated
// (RFC 9989 §4.2 puts such messages out of scope; mxray reports permerror).
package authcheck

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strings"

	"github.com/mxray/mxray/internal/arc"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dkim"
	"github.com/mxray/mxray/internal/dmarc"
	"github.com/mxray/mxray/internal/iprev"
	"github.com/mxray/mxray/internal/spf"
)

// Step ids.
const (
	StepSPFMailFrom = "spf-mailfrom"
	StepSPFHelo     = "spf-helo"
	StepDKIM        = "dkim"
	StepARC         = "arc"
	StepDMARC       = "dmarc"
	StepIPRev       = "iprev"
)

// MaxMessage is the largest message accepted (25 MiB, a common SMTP SIZE).
const MaxMessage = 25 << 20

// DefaultAuthServID names the checker in Authentication-Results.
const DefaultAuthServID = "mxray"

// Sentinel errors; test with errors.Is.
var (
	ErrNoFrom       = errors.New("authcheck: the message has no usable From: domain")
	ErrMessageLarge = errors.New("authcheck: message too large")
)

// notChecked is the note of the DKIM and ARC steps without a message.
const notChecked = "not checked: no message given"

// Target is what the check is about: the SMTP client and, optionally, the
// message it sent.
type Target struct {
	IP       netip.Addr
	Helo     string
	MailFrom string // "" (or "<>") for a null sender
	// Message is the whole message, header and body, CRLF or LF; nil when
	// none was given.
	Message []byte
	// AuthServID is the authserv-id of the Authentication-Results field
	// (DefaultAuthServID when empty).
	AuthServID string
}

// Signature is one DKIM signature's result.
type Signature struct {
	// Verdict repeats Status under the name every mechanism uses.
	Verdict dkim.Status `json:"result"`
	dkim.Result
}

// DKIM is the result of every DKIM signature.
type DKIM struct {
	// Result sums the signatures up: pass if one passed, else the most
	// telling failure; none when unsigned.
	Result     string      `json:"result"`
	Checked    bool        `json:"checked"`
	Note       string      `json:"note,omitempty"`
	Signatures []Signature `json:"signatures"`
}

// ARC is the result of the ARC chain.
type ARC struct {
	Result  string      `json:"result"`
	Checked bool        `json:"checked"`
	Note    string      `json:"note,omitempty"`
	Chain   *arc.Result `json:"chain,omitempty"`
}

// Result is the whole check with its evidence.
type Result struct {
	IP           string `json:"ip"`
	Helo         string `json:"helo"`
	MailFrom     string `json:"mail_from"`
	MessageGiven bool   `json:"message_given"`
	// FromDomain is the author domain DMARC evaluated; FromSource where it
	// came from.
	FromDomain  string       `json:"from_domain"`
	FromSource  string       `json:"from_source"`
	SPFMailFrom spf.Result   `json:"spf_mailfrom"`
	SPFHelo     *spf.Result  `json:"spf_helo"` // nil without a HELO name
	DKIM        DKIM         `json:"dkim"`
	ARC         ARC          `json:"arc"`
	DMARC       dmarc.Result `json:"dmarc"`
	IPRev       iprev.Result `json:"iprev"`
	// Alignment is the side-by-side line: From, SPF domain, DKIM domains.
	Alignment string `json:"alignment"`
	// AuthenticationResults is the value of the Authentication-Results
	// header field a receiver would add (RFC 8601 §2.2), unfolded.
	AuthenticationResults string `json:"authentication_results"`
	// Worst is the worst step status.
	Worst diag.Status `json:"-"`
}

// Run checks t and sends one step per mechanism to sink.
func Run(ctx context.Context, env diag.Env, t Target, sink diag.Sink) Result {
	mailFrom := strings.TrimSpace(t.MailFrom)
	if mailFrom == "<>" {
		mailFrom = ""
	}
	mailFrom = strings.TrimSuffix(strings.TrimPrefix(mailFrom, "<"), ">")
	helo := strings.TrimSpace(t.Helo)
	res := Result{IP: t.IP.String(), Helo: helo, MailFrom: mailFrom, MessageGiven: t.Message != nil}
	var steps []diag.Step
	done := func(st diag.Step) { steps = append(steps, st) }

	// SPF for MAIL FROM (RFC 7208 §2.4: postmaster@HELO for a bounce).
	tr := diag.Begin(env, sink, StepSPFMailFrom, "SPF for MAIL FROM")
	res.SPFMailFrom = spf.Check(ctx, env, spf.Query{IP: t.IP, MailFrom: mailFrom, Helo: helo, Identity: spf.ScopeMailFrom})
	done(tr.Done(spfStep(res.SPFMailFrom, false)))

	tr = diag.Begin(env, sink, StepSPFHelo, "SPF for HELO")
	if helo == "" {
		done(tr.Done(diag.Step{Status: diag.Skip, Title: "SPF for HELO: not checked (no HELO name given)"}))
	} else {
		r := spf.Check(ctx, env, spf.Query{IP: t.IP, Helo: helo, Identity: spf.ScopeHelo})
		res.SPFHelo = &r
		done(tr.Done(spfStep(r, true)))
	}

	var fromErr error
	if t.Message != nil {
		res.FromDomain, fromErr = FromDomain(t.Message)
		res.FromSource = "RFC5322.From header"
	} else {
		res.FromSource = "the MAIL FROM domain (no message given, so no From: header)"
		if _, d, ok := strings.Cut(mailFrom, "@"); ok && mailFrom != "" {
			res.FromDomain = strings.ToLower(d)
		} else if mailFrom == "" {
			res.FromDomain = strings.ToLower(strings.TrimSuffix(helo, "."))
			res.FromSource = "the HELO name (no message given and a null MAIL FROM)"
		} else {
			res.FromDomain = strings.ToLower(mailFrom)
		}
	}

	// DKIM and ARC need the message.
	tr = diag.Begin(env, sink, StepDKIM, "DKIM signatures")
	res.DKIM = DKIM{Result: string(dkim.None), Signatures: []Signature{}}
	if t.Message == nil {
		res.DKIM.Note = notChecked
		done(tr.Done(diag.Step{Status: diag.Skip, Title: "DKIM: " + notChecked,
			Hint: "give the message with --message FILE (or - for stdin) to check its signatures", Data: res.DKIM}))
	} else {
		res.DKIM.Checked = true
		for _, r := range dkim.Verify(ctx, env, t.Message) {
			res.DKIM.Signatures = append(res.DKIM.Signatures, Signature{Verdict: r.Status, Result: r})
		}
		res.DKIM.Result = summarize(res.DKIM.Signatures)
		done(tr.Done(dkimStep(res.DKIM)))
	}

	tr = diag.Begin(env, sink, StepARC, "ARC chain")
	res.ARC = ARC{Result: string(arc.None)}
	if t.Message == nil {
		res.ARC.Note = notChecked
		done(tr.Done(diag.Step{Status: diag.Skip, Title: "ARC: " + notChecked, Data: res.ARC}))
	} else {
		c := arc.Verify(ctx, env, t.Message)
		res.ARC.Checked, res.ARC.Result, res.ARC.Chain = true, string(c.Status), &c
		done(tr.Done(arcStep(res.ARC)))
	}

	// DMARC on the results above.
	tr = diag.Begin(env, sink, StepDMARC, "DMARC")
	in := dmarc.Input{FromDomain: res.FromDomain, FromSource: res.FromSource,
		SPF: dmarc.SPFInput{Result: string(res.SPFMailFrom.Status), Domain: res.SPFMailFrom.Domain, Identity: "mailfrom"}}
	if mailFrom == "" {
		in.SPF.Identity = "helo"
	}
	for _, s := range res.DKIM.Signatures {
		in.DKIM = append(in.DKIM, dmarc.DKIMInput{Domain: s.Domain, Selector: s.Selector, Result: string(s.Status)})
	}
	if fromErr != nil {
		res.DMARC = dmarc.Result{Status: dmarc.Permerror, Disposition: dmarc.PolicyNone, Err: fromErr,
			Problem: fromErr.Error(), Hint: "a message needs exactly one From: header field with addresses in one domain",
			RFC: "RFC 9989 §4.2", Differences: []string{}, Queries: []dmarc.Query{}, DKIM: []dmarc.Identifier{}}
		res.DMARC.RFC7489.Status = dmarc.Permerror
	} else {
		res.DMARC = dmarc.Evaluate(ctx, env, in)
	}
	res.Alignment = alignmentLine(res)
	done(tr.Done(dmarcStep(res)))

	tr = diag.Begin(env, sink, StepIPRev, "reverse DNS (iprev)")
	res.IPRev = iprev.Check(ctx, env, t.IP, helo)
	done(tr.Done(iprevStep(res.IPRev)))

	id := t.AuthServID
	if id == "" {
		id = DefaultAuthServID
	}
	res.AuthenticationResults = strings.Join(authResults(id, res), "; ")
	res.Worst = diag.Worst(steps)
	return res
}

// FromDomain returns the domain of the message's RFC5322.From: exactly one
// From: field whose addresses share one domain (RFC 9989 §4.2, RFC 5322
// §3.6).
func FromDomain(msg []byte) (string, error) {
	m, err := dkim.ParseMessage(msg)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoFrom, err)
	}
	var froms []string
	for _, f := range m.Fields {
		if strings.EqualFold(strings.TrimSpace(f.Name), "From") {
			froms = append(froms, f.Value())
		}
	}
	switch len(froms) {
	case 0:
		return "", fmt.Errorf("%w: the message has no From: header field", ErrNoFrom)
	case 1:
	default:
		return "", fmt.Errorf("%w: the message has %d From: header fields (RFC 5322 §3.6 allows one)", ErrNoFrom, len(froms))
	}
	value := strings.NewReplacer("\r\n", "", "\n", "").Replace(froms[0])
	addrs, err := mail.ParseAddressList(value)
	if err != nil {
		return "", fmt.Errorf("%w: From: %q cannot be parsed: %v", ErrNoFrom, strings.TrimSpace(value), err)
	}
	domain := ""
	for _, a := range addrs {
		at := strings.LastIndexByte(a.Address, '@')
		if at < 0 {
			return "", fmt.Errorf("%w: From: address %q has no domain", ErrNoFrom, a.Address)
		}
		d := strings.ToLower(strings.TrimSuffix(a.Address[at+1:], "."))
		if domain != "" && d != domain {
			return "", fmt.Errorf("%w: From: holds addresses in %s and %s; DMARC needs one author domain", ErrNoFrom, domain, d)
		}
		domain = d
	}
	return domain, nil
}

// summarize picks the DKIM result that speaks for the message.
func summarize(sigs []Signature) string {
	if len(sigs) == 0 {
		return string(dkim.None)
	}
	order := []dkim.Status{dkim.Pass, dkim.Temperror, dkim.Fail, dkim.Policy, dkim.Permerror, dkim.Neutral}
	for _, want := range order {
		for _, s := range sigs {
			if s.Status == want {
				return string(want)
			}
		}
	}
	return string(sigs[0].Status)
}
