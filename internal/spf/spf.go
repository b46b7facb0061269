// Package spf evaluates Sender Policy Framework records (RFC 7208) and
// records every lookup it makes: Check returns the result together with a
// trace tree of every term of every record it read (include and redirect
// nested as children), each term's macro expansion, each DNS query and its
// answer, and the running count of DNS-querying terms and void lookups, so
// that a person can see why a message passed or failed and which term broke
// a limit.
//
// Parse reads a record without evaluating it.
//
// Behaviour worth knowing:
//   - Only TXT records are used; type SPF (99) is never queried (RFC 7208 §3.1).
//   - An IPv4-mapped IPv6 client address (::ffff:192.0.2.1) is evaluated as
//     the IPv4 address, as a dual-stack SMTP server would see it.
//   - A target name that macro expansion makes invalid (an empty label, a
//     label over 63 octets) is treated as a name that does not exist, which
//     RFC 7208 leaves undefined (§4.8, test suite "invalid-domain-*").
//   - The whole check is limited to 20 s (§4.6.4 allows a limit of at least
//     20 s) and each DNS query to diag.Env's DNS limit.
//
// Not supported: the Received-SPF header (§9.1) and the Authentication-Results
// header (RFC 8601) are not written; the obsolete RFC 4408 behaviours
// (type SPF records, ambiguous results RFC 7208 settled) are not offered;
// DNS answers are not checked for DNSSEC (the AD flag is ignored).
package spf

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Status is an SPF result (RFC 7208 §2.6), spelled as in RFC 8601.
type Status string

// The seven results of check_host().
const (
	// Pass: the client is authorized to send for the domain.
	Pass Status = "pass"
	// Fail: the client is explicitly not authorized (a "-" mechanism matched).
	Fail Status = "fail"
	// Softfail: probably not authorized, but the domain does not want a
	// hard rejection ("~").
	Softfail Status = "softfail"
	// Neutral: the domain makes no assertion ("?", or no term matched).
	Neutral Status = "neutral"
	// None: the domain has no SPF record, or the identity is not a valid
	// domain name.
	None Status = "none"
	// Temperror: a DNS error that a retry may resolve.
	Temperror Status = "temperror"
	// Permerror: the record cannot be interpreted (syntax, limits, two
	// records); only the domain owner can fix it.
	Permerror Status = "permerror"
)

// Scope is the identity checked (RFC 7208 §2.3, §2.4).
type Scope string

// The identities SPF checks.
const (
	// ScopeMailFrom checks the MAIL FROM domain, or postmaster@HELO when
	// MAIL FROM is empty (a bounce).
	ScopeMailFrom Scope = "mailfrom"
	// ScopeHelo checks the HELO/EHLO name.
	ScopeHelo Scope = "helo"
)

// Limits of RFC 7208 §4.6.4.
const (
	MaxLookups     = 10 // DNS-querying terms per check
	MaxVoidLookups = 2  // queries answered NXDOMAIN or NODATA
	MaxMXNames     = 10 // MX names an "mx" may look up
	MaxPTRNames    = 10 // PTR names a "ptr" or %{p} considers
	// MaxDuration bounds a whole check (§4.6.4 allows "at least 20 seconds").
	MaxDuration = 20 * time.Second
)

// DefaultExplanation is the explanation of a fail when the record has no
// usable exp= (RFC 7208 §6.2); it is a macro string like exp= text.
const DefaultExplanation = "%{o} does not authorize %{c} to send mail (SPF fail)"

// Sentinel errors in Result.Err; test with errors.Is.
var (
	ErrNoRecord           = errors.New("spf: no SPF record")
	ErrMultipleRecords    = errors.New("spf: more than one SPF record")
	ErrTooManyLookups     = errors.New("spf: too many DNS lookups")
	ErrTooManyVoidLookups = errors.New("spf: too many void DNS lookups")
	ErrTooManyMX          = errors.New("spf: too many MX records")
	ErrInvalidDomain      = errors.New("spf: invalid domain name")
	ErrDNS                = errors.New("spf: DNS error")
	ErrIncludeNone        = errors.New("spf: include or redirect target has no SPF record")
	ErrBadQuery           = errors.New("spf: invalid query")
)

// Query is what check_host() is asked (RFC 7208 §4.1).
type Query struct {
	IP       netip.Addr
	MailFrom string // the MAIL FROM address; empty for a bounce
	Helo     string // the HELO/EHLO name
	Identity Scope  // ScopeMailFrom when empty
	// Receiver is %{r}, the name of the host doing the check; "unknown"
	// when empty.
	Receiver string
	// DefaultExplanation replaces DefaultExplanation when set.
	DefaultExplanation string
}

// Result is the outcome of a check with its evidence.
type Result struct {
	Status      Status     `json:"result"`
	Explanation string     `json:"explanation,omitempty"` // on fail (§6.2)
	Identity    Scope      `json:"identity"`
	IP          netip.Addr `json:"ip"`
	Sender      string     `json:"sender"` // the identity checked, e.g. postmaster@HELO
	Domain      string     `json:"domain"` // the domain whose record was checked first
	// Record is the domain's SPF record as published, Parsed as parsed;
	// both empty when none was found.
	Record string  `json:"record,omitempty"`
	Parsed *Record `json:"parsed,omitempty"`
	// Records lists every v=spf1 record when there is more than one.
	Records []string `json:"records,omitempty"`
	// Matched is the term that decided the result and MatchedIn the domain
	// whose record holds it (the domain itself or a redirect target).
	Matched     string `json:"matched,omitempty"`
	MatchedIn   string `json:"matched_in,omitempty"`
	Lookups     int    `json:"lookups"`      // DNS-querying terms evaluated (limit 10)
	VoidLookups int    `json:"void_lookups"` // NXDOMAIN/NODATA answers (limit 2)
	// Problem says what is wrong when the result is not pass, Hint how to
	// fix it, RFC where the rule is.
	Problem string `json:"problem,omitempty"`
	Hint    string `json:"hint,omitempty"`
	RFC     string `json:"rfc,omitempty"`
	Trace   *Node  `json:"trace"`
	Err     error  `json:"-"` // wraps a sentinel error for none, temperror, permerror
}

// Node is one step of the trace tree: a domain's record (Kind "record") or
// one of its terms.
type Node struct {
	Kind      string    `json:"kind"` // "record", or a term Kind
	Term      string    `json:"term,omitempty"`
	Qualifier Qualifier `json:"qualifier,omitempty"`
	// Domain is the record's domain, or the target a term queried.
	Domain string `json:"domain,omitempty"`
	// Spec and Expanded show macro expansion (§7): the domain-spec as
	// written and the name it became.
	Spec     string `json:"domain_spec,omitempty"`
	Expanded string `json:"expanded,omitempty"`
	// Record is the SPF record of a record node, as published; Records
	// lists them all when there is more than one (a permerror).
	Record  string   `json:"record,omitempty"`
	Records []string `json:"records,omitempty"`
	Queries []Lookup `json:"queries,omitempty"`
	Matched bool     `json:"matched"`
	// Result is a record's result, or the result an include or redirect got.
	Result Status `json:"result,omitempty"`
	// Lookups and VoidLookups are the running counts after this node.
	Lookups     int    `json:"lookups"`
	VoidLookups int    `json:"void_lookups"`
	Skipped     bool   `json:"skipped,omitempty"` // not evaluated: an earlier term decided
	Note        string `json:"note,omitempty"`
	Error       string `json:"error,omitempty"`
	// Limit names the limit this term pushed over: "lookups",
	// "void_lookups", "mx_names".
	Limit    string  `json:"limit,omitempty"`
	Children []*Node `json:"children,omitempty"`

	parsed *Record
}

// Lookup is one DNS query a term made and what came back.
type Lookup struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Status  string   `json:"status"` // ok, nxdomain, nodata, servfail, timeout, error
	Answers []string `json:"answers,omitempty"`
	Error   string   `json:"error,omitempty"`
}

type evaluator struct {
	ctx      context.Context
	env      diag.Env
	ip       netip.Addr
	m        macroEnv
	perQuery time.Duration

	lookups, voids int
	path           []string // include/redirect terms leading to the current record
	over           string   // the term that broke a limit, with its path
	explanation    string
	matched        string
	matchedIn      string

	curDomain string   // the domain %{p} prefers
	curNode   *Node    // the node whose macros are being expanded
	validated []string // %{p} and ptr: validated names, looked up once
	ptrDone   bool
	ptrErr    error
}

// Check evaluates the SPF policy for q (RFC 7208 §4). It never returns
// without a Status and a trace, even when a limit is exceeded.
func Check(ctx context.Context, env diag.Env, q Query) Result {
	start := env.Clock()
	res := Result{Identity: q.Identity}
	if res.Identity == "" {
		res.Identity = ScopeMailFrom
	}
	ip := q.IP.Unmap()
	if !ip.IsValid() {
		res.Status, res.Err = Permerror, fmt.Errorf("%w: no client IP address", ErrBadQuery)
		res.Trace = &Node{Kind: "record", Error: res.Err.Error()}
		res.describe("")
		return res
	}

	// RFC 7208 §2.4: with an empty MAIL FROM, check postmaster@HELO.
	sender := q.MailFrom
	if res.Identity == ScopeHelo || sender == "" {
		sender = "postmaster@" + q.Helo
	}
	local, domain := "postmaster", sender
	if i := strings.LastIndexByte(sender, '@'); i >= 0 {
		local, domain = sender[:i], sender[i+1:]
	}
	if local == "" {
		local = "postmaster" // §4.3
	}
	sender = local + "@" + domain
	res.Sender, res.Domain, res.IP = sender, strings.TrimSuffix(domain, "."), ip

	limits := env.Limits
	if limits.DNS <= 0 {
		limits = diag.DefaultLimits
	}
	ctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, MaxDuration))
	defer cancel()
	e := &evaluator{
		ctx: ctx, env: env, ip: ip,
		perQuery: limits.DNS * time.Duration(max(limits.DNSTry, 1)),
		m: macroEnv{
			sender: sender, local: local, senderDomain: domain, helo: q.Helo,
			ip: ip, receiver: q.Receiver, now: env.Clock().Unix(),
		},
	}
	e.m.ptr = e.ptrMacro

	root := &Node{Kind: "record", Domain: res.Domain}
	res.Trace = root
	var err error
	// RFC 7208 §4.3: a malformed or single-label domain gives "none".
	if verr := validDomain(domain); verr != nil {
		res.Status, err = None, fmt.Errorf("%w: %q: %v", ErrInvalidDomain, domain, verr)
		root.Error = err.Error()
		root.Result = None
	} else {
		res.Status, err = e.checkHost(domain, root, false, true)
	}
	res.Err = err
	res.Record = root.Record
	res.Parsed = root.parsed
	res.Records = root.Records
	res.Lookups, res.VoidLookups = e.lookups, e.voids
	switch res.Status {
	case Pass, Fail, Softfail, Neutral:
		res.Matched, res.MatchedIn = e.matched, e.matchedIn
	}
	if res.Status == Fail {
		res.Explanation = e.explanation
		if res.Explanation == "" {
			def := q.DefaultExplanation
			if def == "" {
				def = DefaultExplanation
			}
			if ms, perr := parseMacroString(def, true); perr == nil {
				m := e.m
				m.domain = res.Domain
				res.Explanation = ms.expand(&m)
			}
		}
	}
	res.describe(e.over)
	env.Log().Debug("spf check", "domain", res.Domain, "ip", ip, "result", res.Status,
		"lookups", res.Lookups, "void", res.VoidLookups, "elapsed", env.Clock().Sub(start), "err", err)
	return res
}

// validDomain checks a name as RFC 7208 §4.3 requires: at least two
// labels, none empty or longer than 63 octets, not a domain literal.
func validDomain(d string) error {
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return errors.New("empty domain")
	}
	if strings.HasPrefix(d, "[") {
		return errors.New("a domain literal, not a name")
	}
	if len(d) > 253 {
		return errors.New("longer than 253 octets")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return errors.New("not a fully qualified domain name")
	}
	for _, l := range labels {
		if l == "" {
			return errors.New("empty label")
		}
		if len(l) > 63 {
			return errors.New("label longer than 63 octets")
		}
	}
	return nil
}

// targetName makes a query name of an expanded domain-spec: truncated on
// the left to 253 octets (RFC 7208 §7.3), then checked.
func targetName(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	for len(s) > 253 {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			break
		}
		s = s[i+1:]
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" {
			return s, errors.New("empty label")
		}
		if len(l) > 63 {
			return s, errors.New("label longer than 63 octets")
		}
	}
	return s, nil
}

// checkHost is check_host() (RFC 7208 §4) for one domain, recording into
// n. included is true below an include (whose exp= is never used, §6.2);
// top is true for the first domain (where no record means "none").
func (e *evaluator) checkHost(domain string, n *Node, included, top bool) (Status, error) {
	n.Kind, n.Domain = "record", strings.TrimSuffix(domain, ".")
	st, err := e.evalRecord(domain, n, included)
	n.Result = st
	if err != nil && n.Error == "" {
		n.Error = err.Error()
	}
	n.Lookups, n.VoidLookups = e.lookups, e.voids
	return st, err
}

func (e *evaluator) evalRecord(domain string, n *Node, included bool) (Status, error) {
	// RFC 7208 §4.4: look the record up (TXT only, §3.1).
	resp, err := e.query(n, domain, dns.TypeTXT)
	switch {
	case err == nil:
	case isVoid(err):
		return None, fmt.Errorf("%w at %s", ErrNoRecord, n.Domain)
	default:
		return Temperror, fmt.Errorf("%w: looking up the SPF record of %s: %v", ErrDNS, n.Domain, err)
	}
	var recs []string
	for _, t := range txtStrings(resp) {
		if isSPF(t) {
			recs = append(recs, t)
		}
	}
	switch len(recs) {
	case 0:
		return None, fmt.Errorf("%w at %s (it has TXT records, none starting with v=spf1)", ErrNoRecord, n.Domain)
	case 1:
	default:
		// RFC 7208 §4.5: more than one record is a permerror.
		n.Records = recs
		return Permerror, fmt.Errorf("%w at %s: %d records start with v=spf1", ErrMultipleRecords, n.Domain, len(recs))
	}
	n.Record = recs[0]
	rec, err := Parse(recs[0])
	if err != nil {
		return Permerror, fmt.Errorf("%w (in the record of %s)", err, n.Domain)
	}
	n.parsed = rec

	m := e.m
	m.domain = strings.TrimSuffix(domain, ".")
	var redirect *Node
	decided := false
	var result Status
	// Every term is in the trace; those never reached stay Skipped.
	for _, t := range rec.Terms {
		n.Children = append(n.Children, &Node{Kind: string(t.Kind), Term: t.Text, Qualifier: t.Qualifier, Spec: t.DomainSpec, Skipped: true})
	}
	for i, t := range rec.Terms {
		c := n.Children[i]
		if decided {
			continue
		}
		c.Skipped = false
		c.Lookups, c.VoidLookups = e.lookups, e.voids
		switch t.Kind {
		case KindRedirect:
			redirect = c
			c.Note = "evaluated after the mechanisms, if none matches"
			if rec.HasAll {
				// RFC 7208 §6.1: redirect is ignored when "all" is present.
				c.Note = "ignored: the record has an \"all\" mechanism (RFC 7208 §6.1)"
			}
			continue
		case KindExp:
			c.Note = "used only when the result is fail"
			continue
		case KindUnknown:
			c.Note = "unknown modifier, ignored (RFC 7208 §6)"
			continue
		}
		match, err := e.mechanism(t, c, &m)
		c.Matched = match
		c.Lookups, c.VoidLookups = e.lookups, e.voids
		if err != nil {
			c.Error = err.Error()
			if errors.Is(err, ErrDNS) {
				return Temperror, err
			}
			return Permerror, err
		}
		if match {
			decided, result = true, t.Qualifier.Status()
			e.matched, e.matchedIn = t.Text, n.Domain
		}
	}
	if decided {
		if result == Fail && !included && rec.Exp != nil {
			e.explanation = e.explain(rec.Exp, n, &m)
		}
		return result, nil
	}
	if redirect != nil && !rec.HasAll {
		return e.redirect(rec.Redirect, redirect, &m, included)
	}
	// RFC 7208 §4.7: no match and no redirect: neutral.
	e.matched, e.matchedIn = "", n.Domain
	return Neutral, nil
}

// redirect follows redirect= (RFC 7208 §6.1).
func (e *evaluator) redirect(t *Term, c *Node, m *macroEnv, included bool) (Status, error) {
	c.Note = ""
	if err := e.count(c); err != nil {
		c.Error = err.Error()
		return Permerror, err
	}
	name, err := e.target(t, c, m)
	if err != nil {
		// §6.1: a malformed target-name is a permerror.
		err = fmt.Errorf("%w: redirect target %q: %v", ErrInvalidDomain, c.Expanded, err)
		c.Error = err.Error()
		return Permerror, err
	}
	sub := &Node{}
	c.Children = []*Node{sub}
	e.path = append(e.path, t.Text)
	st, err := e.checkHost(name, sub, included, false)
	e.path = e.path[:len(e.path)-1]
	c.Result, c.Lookups, c.VoidLookups = st, e.lookups, e.voids
	c.Matched = true
	if st == None {
		// §6.1: a target without a record is a permerror, not none.
		err = fmt.Errorf("%w: redirect=%s: %v", ErrIncludeNone, name, err)
		c.Error = err.Error()
		return Permerror, err
	}
	return st, err
}

// mechanism evaluates one mechanism (RFC 7208 §5) and says whether it
// matched. An error wraps ErrDNS for a temperror; any other is a
// permerror.
func (e *evaluator) mechanism(t *Term, c *Node, m *macroEnv) (bool, error) {
	switch t.Kind {
	case KindAll:
		return true, nil // §5.1
	case KindIP4, KindIP6:
		// §5.6: an ip4 never matches an IPv6 client and vice versa.
		return t.Network.Addr().Is4() == e.ip.Is4() && t.Network.Contains(e.ip), nil
	}
	// Every other mechanism queries DNS and counts against the limit.
	if err := e.count(c); err != nil {
		return false, err
	}
	name, nameErr := e.target(t, c, m)
	switch t.Kind {
	case KindInclude:
		return e.include(t, c, name, nameErr)
	}
	if nameErr != nil {
		// A name no query can be made of: treated as non-existent
		// (RFC 7208 §4.8 leaves it undefined; see the package comment).
		c.Note = fmt.Sprintf("%q is not a valid domain name (%v): treated as non-existent", c.Expanded, nameErr)
		return false, nil
	}
	switch t.Kind {
	case KindA:
		return e.matchA(c, name, t)
	case KindMX:
		return e.matchMX(c, name, t)
	case KindPTR:
		return e.matchPTR(c, name)
	case KindExists:
		// §5.7: always an A query, whatever the client's address family.
		_, err := e.query(c, name, dns.TypeA)
		if err != nil {
			return false, e.voidOrTemp(c, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("spf: unhandled mechanism %s", t.Kind)
}

// include evaluates include: (RFC 7208 §5.2).
func (e *evaluator) include(t *Term, c *Node, name string, nameErr error) (bool, error) {
	if nameErr != nil {
		c.Result = None
		return false, fmt.Errorf("%w: include target %q: %v", ErrIncludeNone, c.Expanded, nameErr)
	}
	sub := &Node{}
	c.Children = []*Node{sub}
	e.path = append(e.path, t.Text)
	st, err := e.checkHost(name, sub, true, false)
	e.path = e.path[:len(e.path)-1]
	c.Result = st
	switch st {
	case Pass:
		return true, nil
	case Fail, Softfail, Neutral:
		return false, nil
	case Temperror:
		return false, err
	case None:
		// §5.2: an included domain without a record is a permerror.
		return false, fmt.Errorf("%w: include:%s: %v", ErrIncludeNone, name, err)
	}
	return false, err
}

func (e *evaluator) matchA(c *Node, name string, t *Term) (bool, error) {
	qtype := dns.TypeA
	if e.ip.Is6() {
		qtype = dns.TypeAAAA
	}
	resp, err := e.query(c, name, qtype)
	if err != nil {
		return false, e.voidOrTemp(c, err)
	}
	return e.inCIDR(resp.Addrs(), t), nil
}

func (e *evaluator) inCIDR(addrs []netip.Addr, t *Term) bool {
	bits := t.CIDR4
	if e.ip.Is6() {
		bits = t.CIDR6
	}
	if bits < 0 {
		bits = e.ip.BitLen()
	}
	want, _ := e.ip.Prefix(bits)
	for _, a := range addrs {
		if a.Is4() != e.ip.Is4() {
			continue
		}
		if p, _ := a.Prefix(bits); p == want {
			return true
		}
	}
	return false
}

// matchMX evaluates mx (RFC 7208 §5.4).
func (e *evaluator) matchMX(c *Node, name string, t *Term) (bool, error) {
	resp, err := e.query(c, name, dns.TypeMX)
	if err != nil {
		return false, e.voidOrTemp(c, err)
	}
	mxs := resp.MX()
	// RFC 7208 §4.6.4: "the evaluation of each "MX" record MUST NOT result
	// in querying more than 10 address records ... If this limit is
	// exceeded, the "mx" mechanism MUST produce a "permerror" result."
	if len(mxs) > MaxMXNames {
		c.Limit = "mx_names"
		e.markOver(c)
		return false, fmt.Errorf("%w: %s has %d MX records, more than %d", ErrTooManyMX, name, len(mxs), MaxMXNames)
	}
	qtype := dns.TypeA
	if e.ip.Is6() {
		qtype = dns.TypeAAAA
	}
	for _, mx := range mxs {
		host := strings.TrimSuffix(mx.Mx, ".")
		if host == "" {
			continue // a null MX (RFC 7505) names no host
		}
		r, err := e.query(c, host, qtype)
		if err != nil {
			if isVoid(err) {
				continue
			}
			return false, fmt.Errorf("%w: %v", ErrDNS, err)
		}
		if e.inCIDR(r.Addrs(), t) {
			return true, nil
		}
	}
	return false, nil
}

// matchPTR evaluates ptr (RFC 7208 §5.5).
func (e *evaluator) matchPTR(c *Node, target string) (bool, error) {
	names, err := e.validatedNames(c)
	if err != nil {
		if isVoid(err) {
			if verr := e.void(c); verr != nil {
				return false, verr
			}
		}
		// §5.5: "If a DNS error occurs while doing the PTR RR lookup, then
		// this mechanism fails to match."
		return false, nil
	}
	for _, n := range names {
		if isSubdomain(n, target) {
			return true, nil
		}
	}
	return false, nil
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

func isSubdomain(name, parent string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	parent = strings.ToLower(strings.TrimSuffix(parent, "."))
	return name == parent || strings.HasSuffix(name, "."+parent)
}

// validatedNames returns the client's validated host names (RFC 7208
// §5.5): PTR names (at most 10) whose addresses include the client. The
// lookups are made once per check and recorded in c.
func (e *evaluator) validatedNames(c *Node) ([]string, error) {
	if c == nil {
		c = &Node{}
	}
	if e.ptrDone {
		if e.ptrErr == nil {
			c.Note = "validated names (from the earlier PTR lookup): " + listOrNone(e.validated)
		}
		return e.validated, e.ptrErr
	}
	e.ptrDone = true
	resp, err := e.query(c, strings.TrimSuffix(dnsx.ReverseName(e.ip), "."), dns.TypePTR)
	if err != nil {
		e.ptrErr = err
		return nil, err
	}
	names := resp.Names()
	note := ""
	if len(names) > MaxPTRNames {
		// §4.6.4: "all records other than the first 10 MUST be ignored."
		note = fmt.Sprintf("%d PTR names, only the first %d are used (RFC 7208 §4.6.4); ", len(names), MaxPTRNames)
		names = names[:MaxPTRNames]
	}
	defer func() { c.Note = note + "validated names: " + listOrNone(e.validated) }()
	qtype := dns.TypeA
	if e.ip.Is6() {
		qtype = dns.TypeAAAA
	}
	for _, n := range names {
		r, err := e.query(c, strings.TrimSuffix(n, "."), qtype)
		if err != nil {
			continue // §5.5: "that domain name is skipped"
		}
		for _, a := range r.Addrs() {
			if a == e.ip {
				e.validated = append(e.validated, strings.TrimSuffix(n, "."))
				break
			}
		}
	}
	return e.validated, nil
}

// ptrMacro is %{p} (RFC 7208 §7.3): the domain itself if validated, else
// a validated subdomain of it, else any validated name, else "unknown".
func (e *evaluator) ptrMacro() string {
	names, err := e.validatedNames(e.curNode)
	if err != nil || len(names) == 0 {
		return "unknown"
	}
	d := e.curDomain
	for _, n := range names {
		if strings.EqualFold(n, d) {
			return n
		}
	}
	for _, n := range names {
		if isSubdomain(n, d) {
			return n
		}
	}
	return names[0]
}

// target expands a term's domain-spec, or returns the current domain.
func (e *evaluator) target(t *Term, c *Node, m *macroEnv) (string, error) {
	if t.DomainSpec == "" {
		c.Domain = m.domain
		return m.domain, nil
	}
	e.curDomain, e.curNode = m.domain, c
	exp := t.spec.expand(m)
	c.Expanded = exp
	name, err := targetName(exp)
	c.Domain = name
	return name, err
}

// count adds a DNS-querying term (RFC 7208 §4.6.4).
func (e *evaluator) count(c *Node) error {
	e.lookups++
	c.Lookups = e.lookups
	if e.lookups > MaxLookups {
		c.Limit = "lookups"
		e.markOver(c)
		return fmt.Errorf("%w: %s is lookup %d, the limit is %d (RFC 7208 §4.6.4)", ErrTooManyLookups, c.Term, e.lookups, MaxLookups)
	}
	return nil
}

// void counts a lookup answered NXDOMAIN or NODATA (RFC 7208 §4.6.4).
func (e *evaluator) void(c *Node) error {
	e.voids++
	c.VoidLookups = e.voids
	if e.voids > MaxVoidLookups {
		c.Limit = "void_lookups"
		e.markOver(c)
		return fmt.Errorf("%w: %s is void lookup %d, the limit is %d (RFC 7208 §4.6.4)", ErrTooManyVoidLookups, c.Term, e.voids, MaxVoidLookups)
	}
	return nil
}

func (e *evaluator) markOver(c *Node) {
	if e.over == "" {
		e.over = strings.Join(append(append([]string(nil), e.path...), c.Term), " → ")
	}
}

// voidOrTemp turns a failed query of a mechanism into its outcome: a void
// lookup (no match, unless over the limit) or a temperror.
func (e *evaluator) voidOrTemp(c *Node, err error) error {
	if isVoid(err) {
		return e.void(c)
	}
	return fmt.Errorf("%w: %v", ErrDNS, err)
}

// explain evaluates exp= (RFC 7208 §6.2). Any problem means no
// explanation from the record, and is noted in the trace.
func (e *evaluator) explain(t *Term, n *Node, m *macroEnv) string {
	var c *Node
	for _, ch := range n.Children {
		if ch.Term == t.Text && ch.Kind == string(KindExp) {
			c = ch
		}
	}
	if c == nil {
		c = &Node{}
	}
	name, err := e.target(t, c, m)
	if err != nil {
		c.Note = fmt.Sprintf("ignored: %q is not a valid domain name", c.Expanded)
		return ""
	}
	resp, err := e.query(c, name, dns.TypeTXT)
	if err != nil {
		c.Note = "ignored: the explanation lookup failed (RFC 7208 §6.2)"
		return ""
	}
	txts := txtStrings(resp)
	if len(txts) != 1 {
		c.Note = fmt.Sprintf("ignored: %d TXT records, want exactly one (RFC 7208 §6.2)", len(txts))
		return ""
	}
	ms, err := parseMacroString(txts[0], true)
	if err != nil {
		c.Note = fmt.Sprintf("ignored: the explanation has a syntax error: %v", err)
		return ""
	}
	text := ms.expand(m)
	c.Lookups, c.VoidLookups = e.lookups, e.voids
	c.Note = "explanation: " + text
	c.Matched = true
	return text
}

// query asks one DNS question, bounded by the per-query limit, and
// records it in n.
func (e *evaluator) query(n *Node, name string, qtype uint16) (*dnsx.Response, error) {
	ctx, cancel := context.WithTimeout(e.ctx, diag.Fit(e.ctx, e.perQuery))
	defer cancel()
	l := Lookup{Name: name, Type: dnsx.TypeString(qtype)}
	var resp *dnsx.Response
	var err error
	if e.ctx.Err() != nil {
		err = &dnsx.Error{Name: name, Type: qtype, Err: dnsx.ErrTimeout, Cause: e.ctx.Err()}
	} else {
		resp, err = e.env.Resolver.Query(ctx, presentation(name), qtype)
	}
	switch {
	case err == nil:
		l.Status = "ok"
		for _, c := range resp.Chain {
			l.Answers = append(l.Answers, "CNAME "+strings.TrimSuffix(c.Target, "."))
		}
		for _, rr := range resp.Records {
			if t, ok := rr.(*dns.TXT); ok {
				l.Answers = append(l.Answers, fmt.Sprintf("%q", joinTXT(t)))
				continue
			}
			l.Answers = append(l.Answers, dnsx.RData(rr))
		}
	case errors.Is(err, dnsx.ErrNXDomain):
		l.Status = "nxdomain"
	case errors.Is(err, dnsx.ErrNoData):
		l.Status = "nodata"
	case errors.Is(err, dnsx.ErrServFail):
		l.Status, l.Error = "servfail", err.Error()
	case errors.Is(err, dnsx.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		l.Status, l.Error = "timeout", err.Error()
	default:
		l.Status, l.Error = "error", err.Error()
	}
	n.Queries = append(n.Queries, l)
	e.env.Log().Debug("spf dns", "name", name, "type", l.Type, "status", l.Status)
	return resp, err
}

// isVoid reports a definite "no such records" answer (RFC 7208 §4.6.4:
// RCODE 0 with no answers, or NXDOMAIN), and names that cannot be asked.
func isVoid(err error) bool {
	return errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData) || errors.Is(err, dnsx.ErrBadName)
}

// txtStrings returns each TXT record of resp as one string, its
// character-strings concatenated without separator (RFC 7208 §3.3).
func txtStrings(resp *dnsx.Response) []string {
	var out []string
	for _, rr := range resp.Records {
		if t, ok := rr.(*dns.TXT); ok {
			out = append(out, joinTXT(t))
		}
	}
	return out
}

// joinTXT concatenates a TXT record's strings, undoing the presentation
// escapes (\" \\ \DDD) the DNS library applies, so that the record's real
// octets are checked.
func joinTXT(t *dns.TXT) string {
	var b strings.Builder
	for _, s := range t.Txt {
		for i := 0; i < len(s); i++ {
			c := s[i]
			if c != '\\' || i+1 >= len(s) {
				b.WriteByte(c)
				continue
			}
			if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
				v := int(s[i+1]-'0')*100 + int(s[i+2]-'0')*10 + int(s[i+3]-'0')
				b.WriteByte(byte(v))
				i += 3
				continue
			}
			b.WriteByte(s[i+1])
			i++
		}
	}
	return b.String()
}

// presentation escapes a name's octets as the DNS library writes names
// it receives, so that the answer's owner matches the question.
func presentation(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '.':
			b.WriteByte(c)
		case c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x21 || c > 0x7e:
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
