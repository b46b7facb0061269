package domain

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dkim"
	"github.com/mxray/mxray/internal/dmarc"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/spf"
)

// SPFProbeIP is the address the SPF record is evaluated for to walk it and
// count its lookups: from TEST-NET-1 (RFC 5737), which no one sends from,
// so that evaluation reaches the end of the record.
var SPFProbeIP = netip.MustParseAddr("192.0.2.1")

// SPFSection is the evidence of the SPF section.
type SPFSection struct {
	Record  string   `json:"record,omitempty"`
	Records []string `json:"records,omitempty"` // when more than one
	// Lookups and VoidLookups are the evaluator's counts while walking the
	// record for SPFProbeIP (limits 10 and 2, RFC 7208 §4.6.4).
	Lookups     int        `json:"lookups"`
	VoidLookups int        `json:"void_lookups"`
	All         string     `json:"all,omitempty"` // the top-level all term, e.g. "-all"
	Redirect    string     `json:"redirect,omitempty"`
	ProbeResult spf.Status `json:"probe_result"` // the result for SPFProbeIP
	Error       string     `json:"error,omitempty"`
}

func (r *runner) spfSection() []diag.Step {
	sec := &r.res.SPF
	res := spf.Check(r.ctx, r.env, spf.Query{IP: SPFProbeIP, MailFrom: "postmaster@" + r.domain, Helo: r.domain})
	sec.Record, sec.Records, sec.Lookups, sec.VoidLookups, sec.ProbeResult = res.Record, res.Records, res.Lookups, res.VoidLookups, res.Status
	if res.Err != nil {
		sec.Error = res.Err.Error()
	}
	rfcSPF := "RFC 7208 §4.5"
	switch {
	case errors.Is(res.Err, spf.ErrNoRecord):
		return []diag.Step{step(StepSPF, diag.Fail, r.domain+" has no SPF record",
			"Receivers cannot tell which servers may send for "+r.domain+"; many treat unauthenticated mail as spam, and DMARC has only DKIM left.",
			"Publish a TXT record at "+r.domain+", e.g. \"v=spf1 mx -all\" (your outgoing servers instead of mx), or \"v=spf1 -all\" if the domain sends no mail.", "RFC 7208 §4.5")}
	case errors.Is(res.Err, spf.ErrMultipleRecords):
		return []diag.Step{step(StepSPF, diag.Fail, fmt.Sprintf("%s has %d SPF records: receivers return permerror", r.domain, len(res.Records)),
			strings.Join(res.Records, "\n"), "Merge them into one v=spf1 record.", "RFC 7208 §3.2, §4.5")}
	case res.Status == spf.Temperror && res.Record == "":
		r.unchecked(StepSPF, "SPF: "+dnsWord(res.Err))
		return []diag.Step{step(StepSPF, diag.Fail, "SPF record lookup failed (temperror)", res.Problem, res.Hint, "RFC 7208 §4.4")}
	case errors.Is(res.Err, spf.ErrSyntax) && res.Parsed == nil:
		return []diag.Step{step(StepSPF, diag.Fail, "the SPF record has a syntax error: receivers return permerror",
			res.Record+"\n"+res.Problem, orDefault(res.Hint, "Fix the record's syntax."), orDefault(res.RFC, "RFC 7208 §4.6")),
		}
	}
	steps := []diag.Step{step(StepSPF, diag.OK, "SPF record: "+res.Record, "", "", rfcSPF)}

	// RFC 7208 §4.6.4: at most 10 DNS-querying terms and 2 void lookups.
	switch {
	case errors.Is(res.Err, spf.ErrTooManyLookups) || errors.Is(res.Err, spf.ErrTooManyMX):
		steps = append(steps, step(StepSPFLookups, diag.Fail, fmt.Sprintf("SPF needs more than %d DNS lookups: receivers return permerror", spf.MaxLookups),
			orDefault(res.Problem, res.Err.Error())+fmt.Sprintf("\nCounted while evaluating the record for %s (a documentation address that matches nothing).", SPFProbeIP),
			orDefault(res.Hint, "Replace include:, a and mx terms by ip4:/ip6: networks, or drop includes of services you no longer use."), "RFC 7208 §4.6.4"))
	case errors.Is(res.Err, spf.ErrTooManyVoidLookups):
		steps = append(steps, step(StepSPFLookups, diag.Fail, fmt.Sprintf("SPF has more than %d void lookups (names that do not exist): receivers return permerror", spf.MaxVoidLookups),
			res.Problem, orDefault(res.Hint, "Remove terms naming hosts or domains that no longer exist."), "RFC 7208 §4.6.4"))
	case res.Status == spf.Temperror:
		r.unchecked(StepSPF, "SPF lookups: "+dnsWord(res.Err))
		steps = append(steps, step(StepSPFLookups, diag.Warn, "a DNS lookup of the SPF evaluation failed (temperror)", res.Problem, res.Hint, "RFC 7208 §4.4"))
	case res.Status == spf.Permerror:
		steps = append(steps, step(StepSPFLookups, diag.Fail, "evaluating the SPF record ends in permerror", res.Problem, res.Hint, orDefault(res.RFC, "RFC 7208 §4.6")))
	case res.Lookups >= spf.MaxLookups-2:
		steps = append(steps, step(StepSPFLookups, diag.Warn, fmt.Sprintf("SPF uses %d of %d DNS lookups: close to the limit", res.Lookups, spf.MaxLookups),
			fmt.Sprintf("%d void lookups of %d. One more include (often added by a mail service) makes every check a permerror.", res.VoidLookups, spf.MaxVoidLookups),
			"Replace include:, a and mx terms by ip4:/ip6: networks where you can.", "RFC 7208 §4.6.4"))
	default:
		steps = append(steps, step(StepSPFLookups, diag.OK, fmt.Sprintf("SPF uses %d of %d DNS lookups, %d of %d void lookups", res.Lookups, spf.MaxLookups, res.VoidLookups, spf.MaxVoidLookups),
			"", "", "RFC 7208 §4.6.4"))
	}
	if res.Status == spf.Pass {
		s := step(StepSPFAll, diag.Warn, fmt.Sprintf("SPF authorizes %s, a documentation address no one sends from (matched %s)", SPFProbeIP, res.Matched),
			"A term this broad lets many servers that are not yours send as "+r.domain+".",
			"Narrow the term "+res.Matched+" to your own servers' networks.", "RFC 7208 §5")
		if strings.TrimLeft(res.Matched, "+") == "all" {
			s.Status = diag.Fail
			s.Title = "SPF ends in +all: every server on the Internet may send as " + r.domain
			s.Hint = "End the record with -all (or ~all while you test)."
			s.RFC = "RFC 7208 §5.1"
		}
		steps = append(steps, s)
	}
	if res.Parsed != nil {
		steps = append(steps, r.spfTerms(res.Parsed, sec)...)
	}
	return steps
}

// spfTerms gives the advice about the all mechanism and ptr.
func (r *runner) spfTerms(rec *spf.Record, sec *SPFSection) []diag.Step {
	var steps []diag.Step
	for _, t := range rec.Terms {
		switch t.Kind {
		case spf.KindAll:
			sec.All = t.Text
		case spf.KindRedirect:
			sec.Redirect = t.DomainSpec
		case spf.KindPTR:
			steps = append(steps, step(StepSPFAll, diag.Warn, "SPF uses the ptr mechanism, which RFC 7208 says not to use",
				"ptr is slow, costs the receiver many DNS lookups and some receivers ignore it.",
				"Replace "+t.Text+" by ip4:/ip6: networks or a:/mx terms.", "RFC 7208 §5.5"))
		}
	}
	switch {
	case sec.All == "" && sec.Redirect != "":
		steps = append(steps, step(StepSPFAll, diag.Info, "SPF ends with redirect="+sec.Redirect+": its record decides the default", "", "", "RFC 7208 §6.1"))
	case sec.All == "":
		steps = append(steps, step(StepSPFAll, diag.Warn, "SPF has no all mechanism: mail from other servers gets neutral",
			"Without all (or redirect), an unmatched sender gets neutral, which protects nothing (RFC 7208 §4.7).",
			"End the record with -all (or ~all while you test).", "RFC 7208 §4.7"))
	default:
		switch spf.Qualifier(strings.TrimSuffix(strings.TrimSuffix(sec.All, "all"), "ALL")) {
		case spf.QFail:
			steps = append(steps, step(StepSPFAll, diag.OK, "SPF ends in -all: other servers fail", "", "", "RFC 7208 §5.1"))
		case spf.QSoftfail:
			steps = append(steps, step(StepSPFAll, diag.Info, "SPF ends in ~all: other servers get softfail",
				"Fine while you check that every sending service is listed; -all tells receivers more clearly to reject.",
				"Once DMARC reports show all your mail passing, change ~all to -all.", "RFC 7208 §8.5"))
		case spf.QNeutral:
			steps = append(steps, step(StepSPFAll, diag.Warn, "SPF ends in ?all: other servers get neutral, which protects nothing",
				"neutral means \"no assertion\": receivers treat the mail like mail from a domain without SPF.",
				"End the record with -all (or ~all while you test).", "RFC 7208 §8.2"))
		default: // +all; the probe found it already when it matched
			if r.res.SPF.ProbeResult != spf.Pass {
				steps = append(steps, step(StepSPFAll, diag.Fail, "SPF ends in +all: every server on the Internet may send as "+r.domain,
					"", "End the record with -all (or ~all while you test).", "RFC 7208 §5.1"))
			}
		}
	}
	return steps
}

// DMARCSection is the evidence of the DMARC section.
type DMARCSection struct {
	Record string `json:"record,omitempty"`
	// PolicyDomain is where the record was found: the domain, or its
	// Organizational Domain when the domain has none of its own.
	PolicyDomain string `json:"policy_domain,omitempty"`
	OrgDomain    string `json:"organizational_domain,omitempty"`
	// PolicyTag is the tag that applies to the domain (p, or sp for a
	// subdomain), Policy its value and Applied what t=y leaves of it.
	PolicyTag string                    `json:"policy_tag,omitempty"`
	Policy    dmarc.Policy              `json:"policy,omitempty"`
	Applied   dmarc.Policy              `json:"applied,omitempty"`
	Testing   bool                      `json:"testing"` // t=y
	Pct       int                       `json:"pct"`
	RUA       []string                  `json:"rua,omitempty"`
	RUF       []string                  `json:"ruf,omitempty"`
	Reports   []dmarc.ReportDestination `json:"report_destinations,omitempty"`
	Defects   []dmarc.Defect            `json:"defects,omitempty"`
	Error     string                    `json:"error,omitempty"`
}

func (r *runner) dmarcSection() []diag.Step {
	sec := &r.res.DMARC
	res := dmarc.Evaluate(r.ctx, r.env, dmarc.Input{FromDomain: r.domain, FromSource: "domain audit",
		SPF: dmarc.SPFInput{Result: "none", Domain: r.domain, Identity: "mailfrom"}})
	sec.OrgDomain = res.OrgDomain
	for _, q := range res.Queries {
		if q.Name == "_dmarc."+r.domain && q.Answer == dmarc.AnswerMultiple {
			sec.Error = "multiple records"
			return []diag.Step{step(StepDMARC, diag.Fail, fmt.Sprintf("_dmarc.%s has several DMARC records: receivers ignore them all", r.domain),
				strings.Join(q.TXT, "\n"), "Keep exactly one v=DMARC1 record.", "RFC 9989 §4.10")}
		}
	}
	switch res.Status {
	case dmarc.Temperror:
		sec.Error = res.Problem
		r.unchecked(StepDMARC, "DMARC: "+dnsWord(res.Err))
		return []diag.Step{step(StepDMARC, diag.Fail, "DMARC policy lookup failed", res.Problem, res.Hint, res.RFC)}
	case dmarc.None:
		sec.Error = res.Problem
		return []diag.Step{step(StepDMARC, diag.Fail, r.domain+" has no DMARC record",
			res.Problem+"\nAnyone can put "+r.domain+" in the From: of a message, and receivers have no policy to apply; large mailbox providers require DMARC from bulk senders.",
			res.Hint, res.RFC)}
	}
	rec := res.Parsed
	sec.Record, sec.PolicyDomain = res.Record, res.PolicyDomain
	sec.PolicyTag, sec.Policy, sec.Applied, sec.Testing = res.PolicyTag, res.Requested, res.Policy, res.TestMode
	sec.Reports = res.Reports
	var steps []diag.Step
	if res.Status == dmarc.Permerror {
		sec.Error = res.Problem
		steps = append(steps, step(StepDMARC, diag.Fail, "the DMARC record is unusable", res.Problem, res.Hint, res.RFC))
	} else if res.PolicyDomain == r.domain {
		steps = append(steps, step(StepDMARC, diag.OK, "DMARC record: "+res.Record, "", "", "RFC 9989 §4.7"))
	} else {
		steps = append(steps, step(StepDMARC, diag.Info, fmt.Sprintf("no DMARC record of its own: the record of %s applies (%s=%s)", res.PolicyDomain, res.PolicyTag, res.Requested),
			"_dmarc."+res.PolicyDomain+": "+res.Record, "", "RFC 9989 §4.10"))
	}
	if rec == nil {
		return steps
	}
	sec.Pct, sec.Defects = rec.Pct, rec.Defects
	for _, u := range rec.RUA {
		sec.RUA = append(sec.RUA, u.Raw)
	}
	for _, u := range rec.RUF {
		sec.RUF = append(sec.RUF, u.Raw)
	}
	for _, d := range rec.Defects {
		st := diag.Warn
		if d.Kind == dmarc.DefectRemoved || d.Kind == dmarc.DefectAdvice {
			st = diag.Info
		}
		if d.Tag == "pct" {
			continue // judged below
		}
		title := "DMARC record: " + d.Problem
		steps = append(steps, step(StepDMARC, st, title, fmt.Sprintf("%s=%s (%s)", d.Tag, d.Value, d.Kind), "", "RFC 9989 §4.7"))
	}

	switch res.Requested {
	case dmarc.PolicyNone:
		steps = append(steps, step(StepDMARCPolicy, diag.Warn, fmt.Sprintf("DMARC %s=none: monitoring only, receivers take no action on failing mail", res.PolicyTag),
			"p=none asks for reports and protects nothing: mail forging "+r.domain+" is delivered as usual.",
			"Once the aggregate reports show all your own mail aligned, move to p=quarantine, then p=reject.", "RFC 9989 §4.7"))
	case dmarc.PolicyQuarantine:
		steps = append(steps, step(StepDMARCPolicy, diag.OK, fmt.Sprintf("DMARC %s=quarantine: failing mail goes to spam", res.PolicyTag), "", "p=reject is the strongest protection.", "RFC 9989 §4.7"))
	case dmarc.PolicyReject:
		steps = append(steps, step(StepDMARCPolicy, diag.OK, fmt.Sprintf("DMARC %s=reject: failing mail is refused", res.PolicyTag), "", "", "RFC 9989 §4.7"))
	}
	if rec.T {
		steps = append(steps, step(StepDMARCPolicy, diag.Warn, fmt.Sprintf("DMARC t=y (testing): receivers apply %s instead of %s", res.Policy, res.Requested),
			"t=y asks receivers for one level less than the published policy.", "Remove t=y when you are done testing.", "RFC 9989 §4.7"))
	}
	if rec.Pct < 100 {
		steps = append(steps, step(StepDMARCPolicy, diag.Warn, fmt.Sprintf("DMARC pct=%d: RFC 7489 receivers apply the policy to only %d%% of failing mail", rec.Pct, rec.Pct),
			"RFC 9989 removed pct: its receivers ignore it and apply the policy to all failing mail, while RFC 7489 receivers still sample. The two behave differently.",
			"Remove pct; use t=y while you test instead.", "RFC 7489 §6.3; RFC 9989 §4.7"))
	}
	if !rec.ValidRUA() {
		steps = append(steps, step(StepDMARCReports, diag.Warn, "DMARC has no rua: you receive no aggregate reports",
			"Without reports you cannot see who sends as "+r.domain+" or whether your own mail passes.",
			"Add rua=mailto:dmarc-reports@"+r.domain+" (mxray reports can read them).", "RFC 9989 §4.7; RFC 9990"))
	}
	var okDest []string
	for _, d := range res.Reports {
		switch {
		case !d.Verified && d.Problem != "" && strings.HasPrefix(d.Problem, "could not check"):
			steps = append(steps, step(StepDMARCReports, diag.Warn, fmt.Sprintf("DMARC %s %s: authorization could not be checked", d.Tag, d.URI), d.Problem, "", "RFC 9990 §3"))
		case !d.Verified:
			steps = append(steps, step(StepDMARCReports, diag.Warn, fmt.Sprintf("DMARC %s %s is not authorized to receive reports for %s", d.Tag, d.URI, res.PolicyDomain),
				d.Problem, fmt.Sprintf("Publish TXT \"v=DMARC1\" at %s, or send the reports to an address in %s.", d.Query, res.OrgDomain), "RFC 9990 §3; RFC 7489 §7.1"))
		default:
			okDest = append(okDest, d.Tag+" "+d.URI)
		}
	}
	if len(okDest) > 0 {
		steps = append(steps, step(StepDMARCReports, diag.OK, "DMARC reports go to "+strings.Join(okDest, ", "), "", "", "RFC 9990 §3"))
	}
	return steps
}

// CommonSelectors are tried when no DKIM selector is given: the defaults
// of common signing software and mail services.
var CommonSelectors = []string{
	"default", "dkim", "mail", "selector1", "selector2", "google", "k1", "k2", "k3",
	"s1", "s2", "s1024", "s2048", "key1", "key2", "dkim1", "smtp", "mx", "email",
	"sig1", "mandrill", "mxvault", "zoho", "protonmail", "protonmail2", "fm1", "fm2",
}

// DKIMSection is the evidence of the DKIM section.
type DKIMSection struct {
	// Discovered is true when no selector was given and the common ones
	// were tried.
	Discovered bool      `json:"discovered"`
	Tried      int       `json:"tried"`
	Keys       []DKIMKey `json:"keys"`
}

// DKIMKey is one selector's key record.
type DKIMKey struct {
	Selector string   `json:"selector"`
	Name     string   `json:"name"`
	Found    bool     `json:"found"`
	CNAME    string   `json:"cname,omitempty"` // where the name points (a mail service's key)
	Records  []string `json:"records,omitempty"`
	Type     string   `json:"type,omitempty"`
	Bits     int      `json:"bits,omitempty"`
	Revoked  bool     `json:"revoked,omitempty"`
	Testing  bool     `json:"testing,omitempty"`
	Error    string   `json:"error,omitempty"`
	key      *dkim.Key
	err      error
}

func (r *runner) dkimSection() []diag.Step {
	sec := &r.res.DKIM
	sels := r.t.Selectors
	if len(sels) == 0 {
		sec.Discovered = true
		sels = slices.Clone(CommonSelectors)
		for _, s := range r.t.KnownSelectors {
			if !slices.Contains(sels, s) {
				sels = append(sels, s)
			}
		}
	}
	sec.Tried = len(sels)
	keys := make([]DKIMKey, len(sels))
	r.parallel(len(sels), func(i int) {
		k := &keys[i]
		k.Selector = sels[i]
		k.Name = sels[i] + "._domainkey." + r.domain
		resp, err := r.env.Resolver.Query(r.ctx, k.Name+".", dns.TypeTXT)
		if err != nil {
			k.err, k.Error = err, dnsWord(err)
			return
		}
		if len(resp.Chain) > 0 {
			k.CNAME = hostName(resp.Final())
		}
		k.Records = resp.TXT()
		k.Found = len(k.Records) > 0
		for _, txt := range k.Records {
			key, err := dkim.ParseKey(txt)
			if err != nil {
				k.err = err
				k.Error = err.Error()
				continue
			}
			k.key, k.err, k.Error = key, nil, ""
			k.Type, k.Bits, k.Revoked, k.Testing = key.Type, key.Bits, key.Revoked, key.Testing()
			break
		}
	})
	sec.Keys = []DKIMKey{}
	var steps []diag.Step
	for _, k := range keys {
		if sec.Discovered && !k.Found {
			if k.err != nil && dnsx.Temporary(k.err) {
				steps = append(steps, step(StepDKIM, diag.Warn, "DKIM selector "+k.Selector+": lookup failed ("+k.Error+")", "", "", "RFC 6376 §3.6.2"))
			}
			continue
		}
		sec.Keys = append(sec.Keys, k)
		steps = append(steps, dkimStep(k, !sec.Discovered))
	}
	if sec.Discovered && len(sec.Keys) == 0 {
		steps = append(steps, step(StepDKIM, diag.Warn, fmt.Sprintf("no DKIM key found under %d common selectors", len(sels)),
			"Selectors can be any name, so this does not prove that "+r.domain+" has no DKIM; the selector is in the s= tag of the DKIM-Signature of a message the domain sent.",
			"Give the selectors with --dkim-selector; if the domain does not sign, set up DKIM signing (DMARC needs SPF or DKIM to align, and DKIM survives forwarding).", "RFC 6376 §3.1"))
	}
	return steps
}

// dkimStep judges one key. Explicit is true for a selector the user
// named: a missing key is then a failure.
func dkimStep(k DKIMKey, explicit bool) diag.Step {
	s := diag.Step{ID: StepDKIM, RFC: "RFC 6376 §3.6.1"}
	name := "DKIM selector " + k.Selector
	via := ""
	if k.CNAME != "" {
		via = " (via CNAME " + k.CNAME + ")"
	}
	switch {
	case k.err != nil && absent(k.err) || !k.Found && k.err == nil:
		s.Status, s.Title = diag.Fail, fmt.Sprintf("%s: no key at %s (%s)", name, k.Name, orDefault(k.Error, "no TXT record"))
		s.Detail = "Signatures with s=" + k.Selector + " fail with \"no key for signature\"."
		s.Hint = "Publish the selector's public key as a TXT record at " + k.Name + ", or stop signing with this selector."
		s.RFC = "RFC 6376 §6.1.2"
	case k.err != nil && k.key == nil && errors.Is(k.err, dkim.ErrKeySyntax):
		s.Status, s.Title = diag.Fail, fmt.Sprintf("%s: the key record cannot be used%s", name, via)
		s.Detail = strings.Join(k.Records, "\n") + "\n" + k.Error
		s.Hint = "Publish the record as v=DKIM1; k=rsa; p=<base64 public key> (the DKIM tool of your mail server prints it)."
	case k.err != nil:
		s.Status, s.Title = diag.Warn, fmt.Sprintf("%s: lookup failed (%s)", name, k.Error)
		s.RFC = "RFC 6376 §6.1.2"
	case k.Revoked:
		s.Status, s.Title = diag.Warn, fmt.Sprintf("%s: the key is revoked (empty p=)%s", name, via)
		s.Detail = "Signatures with s=" + k.Selector + " fail. That is right for a retired selector, wrong for one still in use."
		s.Hint = "If your servers still sign with " + k.Selector + ", publish its public key again or switch them to a current selector."
		if explicit {
			s.Status = diag.Fail
		}
	case k.Type == "rsa" && k.Bits < 1024:
		s.Status, s.Title = diag.Fail, fmt.Sprintf("%s: RSA key of %d bits is too short: verifiers reject it%s", name, k.Bits, via)
		s.Hint = "Generate a 2048-bit RSA key and publish it under a new selector."
		s.RFC = "RFC 8301 §3.2"
	case k.Type == "rsa" && k.Bits < 2048:
		s.Status, s.Title = diag.Warn, fmt.Sprintf("%s: RSA key of %d bits is weak%s", name, k.Bits, via)
		s.Detail = "RFC 8301 §3.2: signers SHOULD use keys of at least 2048 bits; 1024-bit keys can be factored by well-funded attackers."
		s.Hint = "Generate a 2048-bit RSA key, publish it under a new selector, switch signing over, then revoke this one (empty p=)."
		s.RFC = "RFC 8301 §3.2"
	default:
		s.Status, s.Title = diag.OK, fmt.Sprintf("%s: %s key of %d bits%s", name, strings.ToUpper(k.Type), k.Bits, via)
		if k.Type == "ed25519" {
			s.Detail = "Not every verifier supports Ed25519 yet (RFC 8463); sign with an RSA key as well."
			s.RFC = "RFC 8463 §3"
		}
	}
	if k.Testing && s.Status == diag.OK {
		s.Status = diag.Warn
		s.Title += "; t=y (testing)"
		s.Detail = strings.TrimSpace(s.Detail + "\nWith t=y, verifiers must not treat signed mail differently from unsigned mail (RFC 6376 §3.6.1).")
		s.Hint = "Remove t=y once signing works."
	}
	return s
}

// BIMISection is the evidence of the BIMI section.
type BIMISection struct {
	Name    string   `json:"name"`
	Records []string `json:"records,omitempty"`
	Logo    string   `json:"logo,omitempty"`      // l=
	VMC     string   `json:"authority,omitempty"` // a=
	Error   string   `json:"error,omitempty"`
}

// bimiRFC names the BIMI specification, which is an Internet-Draft.
const bimiRFC = "draft-brand-indicators-for-message-identification"

func (r *runner) bimiSection() []diag.Step {
	sec := &r.res.BIMI
	sec.Name = "default._bimi." + r.domain
	resp, err := r.env.Resolver.Query(r.ctx, sec.Name+".", dns.TypeTXT)
	if err != nil && !absent(err) {
		sec.Error = dnsWord(err)
		return []diag.Step{step(StepBIMI, diag.Info, "BIMI record lookup failed: "+dnsWord(err), "", "", bimiRFC)}
	}
	if resp != nil {
		for _, t := range resp.TXT() {
			if strings.HasPrefix(strings.ToLower(strings.TrimSpace(t)), "v=bimi1") {
				sec.Records = append(sec.Records, t)
			}
		}
	}
	if len(sec.Records) == 0 {
		return []diag.Step{step(StepBIMI, diag.Info, "no BIMI record (optional: a brand logo shown by some mailbox providers)", "", "", bimiRFC)}
	}
	if len(sec.Records) > 1 {
		return []diag.Step{step(StepBIMI, diag.Warn, "several BIMI records at "+sec.Name+": none is used", strings.Join(sec.Records, "\n"), "Keep one v=BIMI1 record.", bimiRFC)}
	}
	for _, part := range strings.Split(sec.Records[0], ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "l":
			sec.Logo = strings.TrimSpace(v)
		case "a":
			sec.VMC = strings.TrimSpace(v)
		}
	}
	var steps []diag.Step
	s := step(StepBIMI, diag.OK, "BIMI record: "+sec.Records[0], "", "", bimiRFC)
	if sec.Logo != "" && !strings.HasPrefix(strings.ToLower(sec.Logo), "https://") {
		s.Status, s.Hint = diag.Warn, "l= must be an https: URL of an SVG Tiny PS logo."
	}
	steps = append(steps, s)
	// BIMI is only honoured for domains whose DMARC policy is enforced.
	r.after(StepDMARC)
	if d := r.res.DMARC; d.Record != "" && (d.Applied == dmarc.PolicyNone || d.Pct < 100) {
		steps = append(steps, step(StepBIMI, diag.Warn, "BIMI needs an enforced DMARC policy: mailbox providers will not show the logo",
			fmt.Sprintf("The DMARC policy that applies is %s (pct=%d); BIMI requires p=quarantine or p=reject at 100%%.", d.Applied, d.Pct),
			"Move DMARC to p=quarantine or p=reject without pct.", bimiRFC))
	}
	return steps
}
