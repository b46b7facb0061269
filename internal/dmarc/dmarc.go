// Package dmarc evaluates DMARC (RFC 9989, "DMARCbis") for one message:
// it parses DMARC Policy Records, discovers the policy and the
// Organizational Domain with the DNS Tree Walk (RFC 9989 §4.10), checks
// SPF and DKIM identifier alignment, applies p, sp, np and t, says what a
// receiver would do with the message, checks that external report
// destinations agreed to receive reports (RFC 9990 §3 / RFC 7489 §7.1), and
// shows where a receiver still following RFC 7489 (Organizational Domain
// from a public suffix list, pct, no np, no psd) would decide differently.
// Every DNS question and its answer are kept as evidence.
//
// Not supported: the full Public Suffix List (an excerpt of common suffixes
// is embedded for the RFC 7489 comparison only; see OrgDomainPSL); sending
// or parsing reports (internal/report/dmarcrpt); the RFC 7489 pct sampling
// itself (a diagnostic evaluates one message, so pct is explained, not
// drawn); DNSSEC validation (the AD flag is only recorded).
package dmarc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Status is a DMARC result, spelled as in RFC 8601 §2.7 / RFC 7489 §11.2.
type Status string

// The DMARC results.
const (
	// Pass: an aligned identifier passed SPF or DKIM.
	Pass Status = "pass"
	// Fail: a policy record applies and no aligned identifier passed.
	Fail Status = "fail"
	// None: no DMARC policy record applies to the author domain.
	None Status = "none"
	// Temperror: a DNS error a retry may resolve kept DMARC from deciding.
	Temperror Status = "temperror"
	// Permerror: the policy record or the author domain is unusable; only
	// the domain owner or the sender can fix it.
	Permerror Status = "permerror"
)

// Sentinel errors in Result.Err; test with errors.Is.
var (
	ErrNoPolicy      = errors.New("dmarc: no DMARC policy record")
	ErrDNS           = errors.New("dmarc: DNS error")
	ErrInvalidDomain = errors.New("dmarc: invalid author domain")
	ErrInvalidPolicy = errors.New("dmarc: invalid policy and no valid rua")
	ErrNotAligned    = errors.New("dmarc: no aligned identifier passed")
)

// SPFInput is the SPF result DMARC uses: the MAIL FROM identity's, or the
// HELO identity's for a bounce (RFC 9989 §3.2, "SPF Domain"; RFC 7208 §2.4).
type SPFInput struct {
	Result string `json:"result"` // an RFC 8601 spf result word
	Domain string `json:"domain"`
	// Identity is "mailfrom" or "helo" (a null MAIL FROM).
	Identity string `json:"identity"`
}

// DKIMInput is one DKIM signature's result.
type DKIMInput struct {
	Domain   string `json:"domain"` // d=
	Selector string `json:"selector,omitempty"`
	Result   string `json:"result"` // an RFC 8601 dkim result word
}

// Input is what DMARC evaluates.
type Input struct {
	// FromDomain is the RFC5322.From domain (the Author Domain).
	FromDomain string
	// FromSource says where FromDomain came from, for the report (for
	// example "RFC5322.From header" or "--mail-from (no message given)").
	FromSource string
	SPF        SPFInput
	DKIM       []DKIMInput
}

// Identifier is one authenticated identifier and its alignment with the
// author domain.
type Identifier struct {
	Mechanism string `json:"mechanism"` // "spf" or "dkim"
	Domain    string `json:"domain"`
	Selector  string `json:"selector,omitempty"`
	Result    string `json:"result"` // the SPF or DKIM result
	Mode      string `json:"mode"`   // "relaxed" or "strict"
	OrgDomain string `json:"organizational_domain,omitempty"`
	// DomainAligned: the domain aligns, whatever the result; Aligned: it
	// also passed, so it counts for DMARC.
	DomainAligned bool   `json:"domain_aligned"`
	Aligned       bool   `json:"aligned"`
	Reason        string `json:"reason"`
	// The same under RFC 7489 (PSL Organizational Domain).
	OrgDomainRFC7489 string `json:"organizational_domain_rfc7489,omitempty"`
	AlignedRFC7489   bool   `json:"aligned_rfc7489"`
	temporary        bool
}

// ReportDestination is one rua/ruf mailto: destination and, when it is
// outside the policy domain's Organizational Domain, whether it agreed to
// receive the reports (RFC 9990 §3, RFC 7489 §7.1).
type ReportDestination struct {
	Tag      string `json:"tag"` // rua or ruf
	URI      string `json:"uri"`
	Domain   string `json:"domain"`
	External bool   `json:"external"`
	// Query is <policy-domain>._report._dmarc.<destination-domain>,
	// asked for an external destination.
	Query    string `json:"query,omitempty"`
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
}

// Legacy is what a receiver following RFC 7489 would decide.
type Legacy struct {
	Status       Status `json:"result"`
	OrgDomain    string `json:"organizational_domain"`
	PolicyDomain string `json:"policy_domain,omitempty"`
	SPFAligned   bool   `json:"spf_aligned"`
	DKIMAligned  bool   `json:"dkim_aligned"`
	PolicyTag    string `json:"policy_tag,omitempty"`
	Policy       Policy `json:"policy,omitempty"`
	Pct          int    `json:"pct"`
	Disposition  Policy `json:"disposition"`
	Note         string `json:"note,omitempty"`
}

// Result is a DMARC evaluation with its evidence.
type Result struct {
	Status       Status `json:"result"`
	AuthorDomain string `json:"author_domain"`
	FromSource   string `json:"from_source,omitempty"`
	// PolicyDomain is where the applicable record was found; Record and
	// Parsed are that record as published and as parsed.
	PolicyDomain string  `json:"policy_domain,omitempty"`
	Record       string  `json:"record,omitempty"`
	Parsed       *Record `json:"parsed,omitempty"`
	OrgDomain    string  `json:"organizational_domain"`
	OrgReason    string  `json:"organizational_domain_reason"`
	Walk         *Walk   `json:"tree_walk"`
	// AuthorExists is "yes", "no" or "unknown" when the record has np and
	// the author domain is a subdomain of the policy domain.
	AuthorExists string       `json:"author_domain_exists,omitempty"`
	SPF          Identifier   `json:"spf"`
	DKIM         []Identifier `json:"dkim"`
	SPFAligned   bool         `json:"spf_aligned"`
	DKIMAligned  bool         `json:"dkim_aligned"`
	// DKIMAlignedBy names the signature that aligned ("d=example.com s=sel").
	DKIMAlignedBy string `json:"dkim_aligned_by,omitempty"`
	// PolicyTag is the tag whose policy applies (p, sp or np), Requested
	// its value, TestMode t=y, and Policy what applies after t=y.
	PolicyTag   string `json:"policy_tag,omitempty"`
	Requested   Policy `json:"requested_policy,omitempty"`
	TestMode    bool   `json:"test_mode"`
	Policy      Policy `json:"policy,omitempty"`
	Disposition Policy `json:"disposition"`
	// Reports are the rua and ruf destinations.
	Reports []ReportDestination `json:"report_destinations,omitempty"`
	RFC7489 Legacy              `json:"rfc7489"`
	// Differences explain each point where an RFC 7489 receiver would
	// decide differently.
	Differences []string `json:"differences"`
	Queries     []Query  `json:"queries"`
	Problem     string   `json:"problem,omitempty"`
	Hint        string   `json:"hint,omitempty"`
	RFC         string   `json:"rfc,omitempty"`
	Err         error    `json:"-"`
}

// Evaluate runs DMARC for in (RFC 9989 §4.10, §5.3) and the RFC 7489
// comparison. It always returns a Result with its Status set.
func Evaluate(ctx context.Context, env diag.Env, in Input) (res Result) {
	start := env.Clock()
	c := newCache(ctx, env)
	res = Result{AuthorDomain: normalize(in.FromDomain), FromSource: in.FromSource, Differences: []string{}, DKIM: []Identifier{}}
	defer func() {
		res.Queries = c.queries
		if res.Queries == nil {
			res.Queries = []Query{}
		}
		env.Log().Debug("dmarc", "domain", res.AuthorDomain, "result", res.Status,
			"policy", res.Policy, "queries", len(res.Queries), "elapsed", env.Clock().Sub(start))
	}()
	if _, err := dnsx.Fqdn(res.AuthorDomain); err != nil || res.AuthorDomain == "" {
		res.Status, res.Disposition = Permerror, PolicyNone
		res.Err = fmt.Errorf("%w: %q", ErrInvalidDomain, in.FromDomain)
		res.Problem = fmt.Sprintf("the author domain %q is not a domain name, so no DMARC policy can be found", in.FromDomain)
		res.Hint = "the message needs exactly one From: header with one address whose domain is valid"
		res.RFC = "RFC 9989 §3.2.2"
		res.RFC7489 = Legacy{Status: Permerror, Pct: 100, Disposition: PolicyNone}
		return res
	}
	author := res.AuthorDomain

	// RFC 9989 §4.10.1: query the author domain, then walk up. One walk
	// serves policy discovery and the Organizational Domain.
	w := c.walk(author, "policy discovery and organizational domain of "+author)
	res.Walk = w
	res.OrgDomain, res.OrgReason = w.OrgDomain, w.OrgReason
	policy := discoverPolicy(author, w)

	res.SPF = c.alignSPF(in.SPF, author, policy)
	for _, d := range in.DKIM {
		res.DKIM = append(res.DKIM, c.alignDKIM(d, author, policy, w))
	}
	for _, id := range res.DKIM {
		if id.Aligned && !res.DKIMAligned {
			res.DKIMAligned = true
			res.DKIMAlignedBy = "d=" + id.Domain
			if id.Selector != "" {
				res.DKIMAlignedBy += " s=" + id.Selector
			}
		}
	}
	res.SPFAligned = res.SPF.Aligned

	switch {
	case w.Err != nil && policy == nil:
		res.Status, res.Disposition = Temperror, PolicyNone
		res.Err = w.Err
		res.Problem = "a DNS error stopped policy discovery: " + w.Error
		res.Hint = "retry later; if it persists, the name servers of " + author + " or its parents are failing"
		res.RFC = "RFC 9989 §4.10.1"
	case policy == nil:
		res.Status, res.Disposition = None, PolicyNone
		res.Err = ErrNoPolicy
		res.Problem = fmt.Sprintf("no DMARC record at _dmarc.%s or any parent domain: receivers apply no DMARC policy", author)
		res.Hint = fmt.Sprintf("publish a TXT record at _dmarc.%s, e.g. \"v=DMARC1; p=none; rua=mailto:dmarc-reports@%s\", and tighten p once the reports show all your mail aligned", res.OrgDomain, res.OrgDomain)
		res.RFC = "RFC 9989 §4.10.1"
	default:
		c.applyPolicy(&res, policy, w)
	}
	if policy != nil {
		res.Reports = c.reportDestinations(policy)
	}
	c.legacy(&res, in)
	return res
}

// discoverPolicy returns the record that applies to author (RFC 9989
// §4.10.1): the author domain's own, else its Organizational Domain's,
// else its Public Suffix Domain's.
func discoverPolicy(author string, w *Walk) *Found {
	if f := w.at(author); f != nil {
		return f
	}
	if w.Err != nil {
		return nil // the walk did not finish: what it found may not be the policy
	}
	if f := w.at(w.OrgDomain); f != nil {
		return f
	}
	for i := range w.Found {
		if w.Found[i].Parsed.PSD == PSDYes {
			return &w.Found[i]
		}
	}
	return nil
}

// orgOf returns the Organizational Domain of d by its own tree walk (the
// author's walk when d is the author domain).
func (c *dnsCache) orgOf(d string) *Walk {
	return c.walk(d, "organizational domain of "+d)
}

func (c *dnsCache) alignSPF(in SPFInput, author string, policy *Found) Identifier {
	id := Identifier{Mechanism: "spf", Domain: normalize(in.Domain), Result: in.Result, Mode: Relaxed.Word()}
	if policy != nil {
		id.Mode = policy.Parsed.ASPF.Word()
	}
	what := "the MAIL FROM domain"
	if in.Identity == "helo" {
		what = "the HELO name (the MAIL FROM was empty)"
	}
	c.align(&id, author, what)
	return id
}

func (c *dnsCache) alignDKIM(in DKIMInput, author string, policy *Found, _ *Walk) Identifier {
	id := Identifier{Mechanism: "dkim", Domain: normalize(in.Domain), Selector: in.Selector, Result: in.Result, Mode: Relaxed.Word()}
	if policy != nil {
		id.Mode = policy.Parsed.ADKIM.Word()
	}
	c.align(&id, author, "d=")
	return id
}

// align fills in whether id's domain aligns with author (RFC 9989
// §3.2 "Identifier Alignment", §4.10.2) and whether it counts (it passed).
func (c *dnsCache) align(id *Identifier, author, what string) {
	if id.Domain == "" {
		id.Reason = "no domain to align"
		return
	}
	authorOrg := c.orgOf(author)
	switch {
	case id.Domain == author:
		id.DomainAligned = true
		id.OrgDomain = authorOrg.OrgDomain
		id.Reason = fmt.Sprintf("%s %s is the author domain (%s)", what, id.Domain, id.Mode)
	case id.Mode == "strict":
		id.Reason = fmt.Sprintf("%s %s is not the author domain %s, and the policy asks for strict alignment", what, id.Domain, author)
		if id.Mechanism == "spf" {
			id.Reason += " (aspf=s)"
		} else {
			id.Reason += " (adkim=s)"
		}
	default:
		w := c.orgOf(id.Domain)
		id.OrgDomain = w.OrgDomain
		switch {
		case w.Err != nil || authorOrg.Err != nil:
			id.temporary = true
			id.Reason = "a DNS error kept the organizational domain from being found"
		case w.OrgDomain == authorOrg.OrgDomain:
			id.DomainAligned = true
			id.Reason = fmt.Sprintf("%s %s and the author domain %s share the organizational domain %s (relaxed)", what, id.Domain, author, w.OrgDomain)
		default:
			id.Reason = fmt.Sprintf("%s %s has the organizational domain %s, the author domain %s has %s", what, id.Domain, w.OrgDomain, author, authorOrg.OrgDomain)
		}
	}
	id.Aligned = id.DomainAligned && id.Result == "pass"
	if id.DomainAligned && id.Result != "pass" {
		id.Reason += fmt.Sprintf("; aligned, but %s did not pass (%s)", strings.ToUpper(id.Mechanism), orNone(id.Result))
	}
	if id.Result == "temperror" && id.DomainAligned {
		id.temporary = true
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// applyPolicy decides the result and the policy that applies, with an
// explanation, once a policy record was found.
func (c *dnsCache) applyPolicy(res *Result, policy *Found, w *Walk) {
	rec := policy.Parsed
	author := res.AuthorDomain
	res.PolicyDomain, res.Record, res.Parsed = policy.Domain, policy.Record, rec
	res.TestMode = rec.T

	// RFC 9989 §4.10.1: an invalid p (or sp, np) falls back to p=none
	// when rua is valid; otherwise no DMARC processing.
	if rec.InvalidPolicy && !rec.ValidRUA() {
		res.Status, res.Disposition = Permerror, PolicyNone
		res.Err = ErrInvalidPolicy
		res.Problem = fmt.Sprintf("the record at _dmarc.%s has an invalid p, sp or np and no valid rua, so receivers apply no DMARC processing", policy.Domain)
		res.Hint = "fix the record: p, sp and np take none, quarantine or reject"
		res.RFC = "RFC 9989 §4.10.1"
		return
	}
	switch {
	case rec.InvalidPolicy:
		res.PolicyTag, res.Requested = "p", PolicyNone
	case policy.Domain == author:
		res.PolicyTag, res.Requested = "p", rec.P
	default:
		// RFC 9989 §4.10.1: the Organizational or Public Suffix Domain's
		// record applies to a subdomain through sp if it exists, np if it
		// does not, else p.
		res.PolicyTag, res.Requested = "p", rec.P
		if rec.Has["np"] {
			res.AuthorExists = c.exists(author)
		}
		switch {
		case rec.Has["np"] && res.AuthorExists == "no":
			res.PolicyTag, res.Requested = "np", rec.NP
		case rec.Has["sp"]:
			res.PolicyTag, res.Requested = "sp", rec.SP
		}
	}
	if res.Requested == "" {
		// RFC 9989 §4.7 (p): a record without p is treated as p=none.
		res.Requested = PolicyNone
	}
	res.Policy = res.Requested
	if rec.T {
		// RFC 9989 §4.7 (t): t=y asks for one level below the policy.
		res.Policy = res.Requested.lower()
	}

	temporary := w.Err != nil || res.SPF.temporary
	for _, d := range res.DKIM {
		temporary = temporary || d.temporary
	}
	switch {
	case res.SPFAligned || res.DKIMAligned:
		res.Status, res.Disposition = Pass, PolicyNone
		return
	case temporary:
		res.Status, res.Disposition = Temperror, PolicyNone
		res.Err = ErrDNS
		res.Problem = "no aligned identifier passed, and a DNS error kept one from being checked"
		res.Hint = "retry later"
		res.RFC = "RFC 9989 §4.10"
		return
	}
	res.Status, res.Disposition = Fail, res.Policy
	res.Err = ErrNotAligned
	res.RFC = "RFC 9989 §4.4"
	res.Problem, res.Hint = explainFail(res)
}

// explainFail says why no identifier counted and how to fix it.
func explainFail(res *Result) (problem, hint string) {
	var why []string
	spf := res.SPF
	switch {
	case spf.Domain == "":
		why = append(why, "SPF: no domain")
	case spf.Result != "pass" && spf.DomainAligned:
		why = append(why, fmt.Sprintf("SPF for %s is aligned but %s", spf.Domain, orNone(spf.Result)))
	case spf.Result == "pass":
		why = append(why, fmt.Sprintf("SPF passed for %s, which is not aligned with %s", spf.Domain, res.AuthorDomain))
	default:
		why = append(why, fmt.Sprintf("SPF %s for %s", orNone(spf.Result), spf.Domain))
	}
	if len(res.DKIM) == 0 {
		why = append(why, "no DKIM signature")
	}
	for _, d := range res.DKIM {
		switch {
		case d.Result == "pass":
			why = append(why, fmt.Sprintf("DKIM d=%s passed but is not aligned", d.Domain))
		case d.DomainAligned:
			why = append(why, fmt.Sprintf("DKIM d=%s is aligned but %s", d.Domain, orNone(d.Result)))
		default:
			why = append(why, fmt.Sprintf("DKIM d=%s %s and not aligned", d.Domain, orNone(d.Result)))
		}
	}
	problem = fmt.Sprintf("no aligned identifier passed (%s); the policy that applies is %s=%s", strings.Join(why, "; "), res.PolicyTag, res.Requested)
	if res.TestMode && res.Policy != res.Requested {
		problem += fmt.Sprintf(", lowered to %s by t=y", res.Policy)
	}
	hint = fmt.Sprintf("sign with DKIM as d=%s (or a subdomain, with relaxed alignment), or send with a MAIL FROM in %s that its SPF record authorizes", res.AuthorDomain, res.OrgDomain)
	if res.PolicyTag == "np" {
		hint = fmt.Sprintf("%s does not exist in DNS (NXDOMAIN), which is why np applies: send from an address in a domain that exists, or publish records for %s", res.AuthorDomain, res.AuthorDomain)
	}
	if res.Parsed != nil && (res.Parsed.ADKIM == Strict || res.Parsed.ASPF == Strict) {
		hint += "; strict alignment (adkim=s/aspf=s) needs exactly " + res.AuthorDomain
	}
	return problem, hint
}

// exists tells whether domain exists: "no" when A, AAAA and MX all
// answer NXDOMAIN (RFC 9989 §3.2, "Non-existent Domains", follows RFC 8020).
func (c *dnsCache) exists(domain string) string {
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX} {
		_, q, err := c.query(domain, t, "does "+domain+" exist (np)")
		c.queries = append(c.queries, q)
		switch {
		case err == nil || errors.Is(err, dnsx.ErrNoData):
			return "yes"
		case !errors.Is(err, dnsx.ErrNXDomain):
			return "unknown"
		}
	}
	return "no"
}

// reportDestinations checks every rua/ruf mailto: destination.
func (c *dnsCache) reportDestinations(policy *Found) []ReportDestination {
	var out []ReportDestination
	policyOrg := c.orgOf(policy.Domain).OrgDomain
	for _, list := range []struct {
		tag  string
		uris []URI
	}{{"rua", policy.Parsed.RUA}, {"ruf", policy.Parsed.RUF}} {
		for _, u := range list.uris {
			if !u.Valid || u.Scheme != "mailto" {
				continue
			}
			d := ReportDestination{Tag: list.tag, URI: u.Raw, Domain: u.Domain}
			if u.Domain == policy.Domain || c.orgOf(u.Domain).OrgDomain == policyOrg {
				d.Verified = true
				out = append(out, d)
				continue
			}
			// RFC 9990 §3 / RFC 7489 §7.1: the destination's domain
			// must publish <policy-domain>._report._dmarc.<dest> TXT
			// starting with v=DMARC1.
			d.External = true
			name := policy.Domain + "._report._dmarc." + u.Domain
			d.Query = name
			_, q, err := c.query(name, dns.TypeTXT, "report authorization for "+u.Raw)
			q.Answer = classifyTXT(q, err)
			c.queries = append(c.queries, q)
			switch q.Answer {
			case AnswerRecord, AnswerMultiple:
				d.Verified = true
			case AnswerTemperror:
				d.Problem = "could not check: " + q.Error
			default:
				d.Problem = fmt.Sprintf("%s does not publish %s TXT \"v=DMARC1\", so receivers will not send %s reports there", u.Domain, name, list.tag)
			}
			out = append(out, d)
		}
	}
	return out
}

func classifyTXT(q Query, err error) string {
	if err != nil {
		return q.Answer
	}
	n := 0
	for _, t := range q.TXT {
		if strings.HasPrefix(strings.TrimLeft(t, " \t"), "v=DMARC1") {
			n++
		}
	}
	switch n {
	case 0:
		return AnswerNoDMARC
	case 1:
		return AnswerRecord
	}
	return AnswerMultiple
}
