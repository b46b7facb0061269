// Package delivery is mxray's delivery test: would mail to an address (or
// to a domain's postmaster, RFC 5321 §4.5.1) be accepted, and if not, why?
// It does what a sending MTA does — MX lookup with the implicit-MX and
// null-MX rules (RFC 5321 §5.1, RFC 7505), address lookups, the domain's
// MTA-STS policy (RFC 8461) and TLS-RPT record (RFC 8460 §3), the MX
// hosts' DANE TLSA records (RFC 7672), connection, greeting, EHLO,
// STARTTLS (RFC 3207), the certificate judged by the policy that applies
// (DANE, else MTA-STS, else opportunistic TLS, RFC 7435), MAIL FROM,
// RCPT TO — and stops there: it sends RSET and QUIT, never DATA, so no
// message is ever delivered.
//
// Independent work runs concurrently: the MTA-STS record lookup and policy
// fetch and the TLS-RPT lookup start with the MX lookup, and the A, AAAA
// and TLSA lookups of every MX host run at once. The steps are still
// emitted one at a time, in a fixed order (StepMX … StepQuit).
//
// Every stage is a diag.Step with a stable id, emitted while it runs;
// per-server steps carry the host and IP and that stage's SMTP transcript.
// The Result holds the verdict, the step that decided it, and all the
// evidence.
//
// Where DANE or an enforced MTA-STS policy applies, a host that fails it
// (not in the policy, no STARTTLS, a failed handshake, a certificate that
// does not authenticate) is not used, as a sender would not use it, and
// the next MX is tried (RFC 7672 §2.2, RFC 8461 §5); a failed TLSA lookup
// defers that host (RFC 7672 §2.1.1).
//
// Not supported: an MTA-STS policy cache (the live policy is fetched
// every time, see internal/mtasts); CNAME expansion of MX hosts for
// DANE (RFC 7672 §2.2.3); REQUIRETLS; randomising MX hosts of equal
// preference (RFC 5321 §5.1 says SHOULD; the test takes them in name
// order so runs are repeatable); quoted local parts containing spaces.
// Internationalised domains are converted to A-labels (RFC 5891).
package delivery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/smtpc"
	"github.com/mxray/mxray/internal/tlsinfo"
	"github.com/mxray/mxray/internal/tlsrptrec"
)

// Verdict is the answer of the delivery test.
type Verdict string

const (
	Deliverable   Verdict = "deliverable"   // a mail host accepted the recipient
	Undeliverable Verdict = "undeliverable" // a sender would bounce: no such domain, null MX, recipient rejected (5yz)
	Temporary     Verdict = "temporary"     // a sender would queue and retry: 4yz replies (greylisting, overload)
	Error         Verdict = "error"         // could not test: DNS failure, no mail host reachable from here
)

// Step ids, stable (docs/json.md). Per-server steps repeat for every
// address tried.
const (
	StepMX          = "mx"          // the MX records, implicit MX, null MX
	StepAddresses   = "addresses"   // A/AAAA of every mail host
	StepMTASTS      = "mta-sts"     // the MTA-STS record and policy, and what they mean for each MX
	StepTLSRPT      = "tls-rpt"     // the TLS-RPT record: where senders report TLS failures
	StepDANE        = "dane"        // the TLSA records of every mail host
	StepConnect     = "connect"     // TCP connection to one address (skip: the host is not used)
	StepBanner      = "banner"      // the server's greeting
	StepEHLO        = "ehlo"        // EHLO (or the HELO fallback) and the extensions
	StepStartTLS    = "starttls"    // STARTTLS and the handshake
	StepCertificate = "certificate" // the certificate, judged by the policy that applies
	StepEHLOTLS     = "ehlo-tls"    // EHLO again inside TLS
	StepMail        = "mail"        // MAIL FROM
	StepRcpt        = "rcpt"        // RCPT TO: the answer to the question
	StepRset        = "rset"        // RSET: the transaction is abandoned
	StepQuit        = "quit"        // QUIT
)

// ErrBadTarget is returned by ParseTarget for input that is neither an
// address nor a domain name.
var ErrBadTarget = errors.New("delivery: invalid address or domain")

// Target is what to test and how.
type Target struct {
	Address string // local@domain; when empty, Domain's postmaster is tested
	Domain  string
	Port    int    // default 25
	Helo    string // the name sent in EHLO; default "localhost"
	// MailFrom is the reverse-path; empty is the null sender "<>", which
	// every mail host must accept (RFC 5321 §4.5.5).
	MailFrom string
	// AllMX tests every address of every MX instead of stopping at the
	// first that answers the recipient question.
	AllMX    bool
	IPv4Only bool
	IPv6Only bool
}

// Outcome is how the conversation with one server ended.
type Outcome string

const (
	Accepted Outcome = "accepted" // RCPT got 2yz
	Rejected Outcome = "rejected" // RCPT or MAIL got 5yz: a sender would bounce
	Deferred Outcome = "deferred" // a 4yz reply: a sender would retry later
	Refused  Outcome = "refused"  // 5yz to the greeting or EHLO/HELO: a sender tries the next host
	Failed   Outcome = "failed"   // no answer: connection, timeout, TLS or protocol failure
	// Excluded: DANE or an enforced MTA-STS policy forbids delivery to the
	// host (not in the policy, no TLS, a certificate that does not
	// authenticate); a sender tries the next host, else keeps the message
	// queued (RFC 7672 §2.2, RFC 8461 §5).
	Excluded Outcome = "excluded"
)

// TLSPolicy is the rule a sender applies to one MX host's TLS.
type TLSPolicy string

const (
	// Opportunistic: TLS when offered, whatever the certificate (RFC 7435).
	Opportunistic TLSPolicy = "opportunistic"
	// DANE: validated, usable TLSA records; TLS is required and the chain
	// must match them (RFC 7672 §2.2, §3).
	DANE TLSPolicy = "dane"
	// DANEUnusable: validated TLSA records, none usable; TLS is required
	// but the server is not authenticated (RFC 7672 §2.2).
	DANEUnusable TLSPolicy = "dane-unusable"
	// MTASTS: an MTA-STS policy in mode enforce lists the host; TLS is
	// required with a certificate valid for the MX name (RFC 8461 §4.2, §5).
	MTASTS TLSPolicy = "mta-sts"
	// MTASTSTesting: mode testing; failures are reported through TLS-RPT
	// and mail is delivered anyway (RFC 8461 §5).
	MTASTSTesting TLSPolicy = "mta-sts-testing"
)

// required reports whether a sender must not deliver to the host without
// TLS that satisfies the policy.
func (p TLSPolicy) required() bool { return p == DANE || p == DANEUnusable || p == MTASTS }

// name is how the policy is named in sentences.
func (p TLSPolicy) name() string {
	switch p {
	case DANE:
		return "DANE"
	case DANEUnusable:
		return "DANE (no usable TLSA record)"
	case MTASTS:
		return "MTA-STS enforce"
	case MTASTSTesting:
		return "MTA-STS testing"
	}
	return "opportunistic TLS"
}

// MX is one mail host of the domain.
type MX struct {
	Preference uint16 `json:"preference"`
	Host       string `json:"host"` // without the trailing dot
	// Implicit: the domain has no MX, so its own name is the mail host
	// (RFC 5321 §5.1).
	Implicit bool `json:"implicit,omitempty"`
	// CNAME is the canonical name when the MX names an alias.
	CNAME string `json:"cname,omitempty"`
	// IPLiteral: the MX names an IP address instead of a host.
	IPLiteral bool     `json:"ip_literal,omitempty"`
	Addrs     []string `json:"addrs"`
	// Error says why the host has no usable address.
	Error string `json:"error,omitempty"`
	// TLSA is the host's TLSA lookup (set once the dane step has run).
	TLSA *dane.Lookup `json:"tlsa,omitempty"`
	// Policy is the TLS policy a sender applies to the host (set once the
	// policy steps have run).
	Policy TLSPolicy `json:"policy,omitempty"`

	ips     []netip.Addr
	addrAD  bool // the address answers were DNSSEC-validated
	lookErr error
	tlsa    *dane.Lookup
}

// Attempt is the conversation with one address of one mail host.
type Attempt struct {
	Host       string  `json:"host"`
	IP         string  `json:"ip"`
	Preference uint16  `json:"preference"`
	Outcome    Outcome `json:"outcome"`
	// Policy is the TLS policy that applied to the host.
	Policy TLSPolicy `json:"policy"`
	// Step is the id of the step that ended the attempt.
	Step string `json:"step"`
	// Reply is the server's reply that decided, when there was one.
	Reply *smtpc.Reply `json:"reply,omitempty"`
	// Error is the failure when no reply decided.
	Error string `json:"error,omitempty"`
	// TLS is the session summary after STARTTLS.
	TLS *tlsinfo.Info `json:"tls,omitempty"`
	// Steps are this attempt's steps, in order.
	Steps []diag.Step `json:"-"`
	// Transcript is the whole conversation.
	Transcript []smtpc.Line `json:"-"`
}

// Result is the outcome of the delivery test with its evidence.
type Result struct {
	Address   string  `json:"address,omitempty"` // as given
	Domain    string  `json:"domain"`            // lower case, no trailing dot
	Recipient string  `json:"recipient"`         // the RCPT TO address used
	MailFrom  string  `json:"mail_from"`         // "" is the null sender
	Verdict   Verdict `json:"verdict"`
	// Reason says in one sentence why.
	Reason      string `json:"reason"`
	DecidedBy   string `json:"decided_by"` // a step id
	DecidedHost string `json:"decided_host,omitempty"`
	DecidedIP   string `json:"decided_ip,omitempty"`
	NullMX      bool   `json:"null_mx,omitempty"`
	ImplicitMX  bool   `json:"implicit_mx,omitempty"`
	MX          []MX   `json:"mx"`
	// MTASTS is the domain's MTA-STS record, policy and what a sender
	// makes of them; absent when the test ended before.
	MTASTS *MTASTSResult `json:"mta_sts,omitempty"`
	// TLSRPT is the domain's TLS-RPT record lookup.
	TLSRPT *tlsrptrec.Result `json:"tls_rpt,omitempty"`
	// Attempts lists each server conversation, in the order tried, and
	// each host not used because of its TLS policy (IP empty).
	Attempts []Attempt `json:"attempts"`
	// Steps are every finished step, in order.
	Steps []diag.Step `json:"-"`
}

// ParseTarget reads the command-line form: an address (local@domain) or a
// bare domain. An internationalised domain is converted to its A-label
// (xn--…) form; the local part may be UTF-8 (tested with SMTPUTF8, RFC 6531).
func ParseTarget(arg string) (Target, error) {
	arg = strings.TrimSpace(arg)
	if i := strings.LastIndexByte(arg, '@'); i >= 0 {
		t := Target{Address: arg, Domain: arg[i+1:]}
		_, _, _, err := t.normal()
		return t, err
	}
	t := Target{Domain: arg}
	_, _, _, err := t.normal()
	return t, err
}

// normal returns the domain (A-labels, fully qualified), the recipient to
// test and whether it needs SMTPUTF8.
func (t Target) normal() (fqdn, rcpt string, utf8 bool, err error) {
	domain, local := t.Domain, ""
	if t.Address != "" {
		i := strings.LastIndexByte(t.Address, '@')
		if i <= 0 || i == len(t.Address)-1 {
			return "", "", false, fmt.Errorf("%w: %q is not local@domain", ErrBadTarget, t.Address)
		}
		local, domain = t.Address[:i], t.Address[i+1:]
	}
	if domain == "" {
		return "", "", false, fmt.Errorf("%w: empty domain", ErrBadTarget)
	}
	if !isASCII(domain) {
		// RFC 5890/5891: an internationalised domain is looked up, and
		// named in SMTP without SMTPUTF8, in its A-label form.
		a, err := idna.Lookup.ToASCII(domain)
		if err != nil {
			return "", "", false, fmt.Errorf("%w: domain %q is not a valid internationalised domain name: %v", ErrBadTarget, domain, err)
		}
		domain = a
	}
	if fqdn, err = dnsx.Fqdn(domain); err != nil || fqdn == "." || !hostChars(domain) {
		return "", "", false, fmt.Errorf("%w: domain %q", ErrBadTarget, domain)
	}
	if local == "" {
		local = "postmaster"
	}
	if err := checkMailbox(local); err != nil {
		return "", "", false, err
	}
	if err := checkMailbox(t.MailFrom); err != nil {
		return "", "", false, fmt.Errorf("mail from: %w", err)
	}
	return fqdn, local + "@" + strings.TrimSuffix(fqdn, "."), !isASCII(local) || !isASCII(t.MailFrom), nil
}

func checkMailbox(s string) error {
	for _, r := range s {
		if r <= ' ' || r == 0x7f || r == '<' || r == '>' || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("%w: %q has a space, control character or angle bracket", ErrBadTarget, s)
		}
	}
	return nil
}

// hostChars reports letters, digits, hyphens, dots and underscores only
// (RFC 1123 §2.1 host names; underscores for the odd service name).
func hostChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Run performs the delivery test. Steps go to sink as they start and
// finish; the Result is complete when Run returns.
func Run(ctx context.Context, env diag.Env, t Target, sink diag.Sink) Result {
	if sink == nil {
		sink = diag.Discard
	}
	start := env.Clock()
	rec := &diag.Recorder{}
	r := &runner{env: env, sink: diag.Tee(sink, rec), t: t}
	r.res = Result{Address: t.Address, MailFrom: t.MailFrom, MX: []MX{}, Attempts: []Attempt{}}
	r.run(ctx)
	r.res.Steps = rec.Steps
	env.Log().Debug("delivery test", "recipient", r.res.Recipient, "verdict", r.res.Verdict,
		"decided_by", r.res.DecidedBy, "attempts", len(r.res.Attempts), "elapsed", env.Clock().Sub(start))
	return r.res
}

type runner struct {
	env  diag.Env
	sink diag.Sink
	t    Target
	fqdn string
	rcpt string
	utf8 bool
	res  Result
	// pre holds the domain-wide lookups started with the MX lookup.
	pre *domainLookups
	// policies is each MX host's TLS policy, by host name.
	policies map[string]hostPolicy
}

func (r *runner) decide(v Verdict, by, reason string) {
	r.res.Verdict, r.res.DecidedBy, r.res.Reason = v, by, reason
}

func (r *runner) run(ctx context.Context) {
	var err error
	r.fqdn, r.rcpt, r.utf8, err = r.t.normal()
	r.res.Domain = strings.TrimSuffix(r.fqdn, ".")
	r.res.Recipient = r.rcpt
	if err != nil {
		r.decide(Error, "", err.Error())
		return
	}
	if r.t.Port == 0 {
		r.t.Port = 25
	}
	if r.t.Port < 0 || r.t.Port > 65535 {
		r.decide(Error, "", fmt.Sprintf("port %d out of range", r.t.Port))
		return
	}
	if r.t.Helo == "" {
		r.t.Helo = "localhost"
	}
	if r.t.IPv4Only && r.t.IPv6Only {
		r.decide(Error, "", "IPv4-only and IPv6-only together leave nothing to test")
		return
	}
	if r.env.Resolver == nil || r.env.Dialer == nil {
		r.decide(Error, "", "delivery: env has no resolver or dialer")
		return
	}

	// The MTA-STS and TLS-RPT lookups do not depend on the MX records:
	// they run while the MX and address lookups do. Cancel them when the
	// test ends early, and never return while they still run.
	pctx, cancel := context.WithCancel(ctx)
	r.pre = r.startDomainLookups(pctx)
	defer func() {
		cancel()
		r.pre.wait()
	}()

	mxs, ok := r.mxStep(ctx)
	if !ok {
		return
	}
	if !r.addressStep(mxs) {
		return
	}
	r.mtastsStep()
	r.tlsrptStep()
	r.daneStep(mxs)
	r.choosePolicies(mxs)
	r.servers(ctx)
}

// family is the address families to look up and try.
func (r *runner) family() dnsx.Family {
	switch {
	case r.t.IPv4Only:
		return dnsx.IPv4
	case r.t.IPv6Only:
		return dnsx.IPv6
	}
	return dnsx.IPv4 | dnsx.IPv6
}

func hostName(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }
