// Package domain is mxray's domain audit: is a mail domain set up right?
// It looks at everything a sender, a receiver and a mail client look at and
// reports each finding with its cause, the fix and the rule:
//
//   - MX (RFC 5321 §5.1, RFC 7505 null MX) with each host's addresses and
//     forward-confirmed reverse DNS (RFC 8601 §3 iprev);
//   - SPF (RFC 7208): one record, syntax, DNS lookup and void-lookup counts
//     measured by the evaluator (§4.6.4), the "all" qualifier;
//   - DMARC (RFC 9989, with RFC 7489's pct): policy strength, t=, rua/ruf and
//     the external destination authorization (RFC 9990 §3);
//   - DKIM keys (RFC 6376 §3.6.1, RFC 8301, RFC 8463) for the given selectors,
//     or for a list of common selectors when none is given;
//   - MTA-STS (RFC 8461) and whether every MX matches the policy, TLS-RPT
//     (RFC 8460), BIMI presence;
//   - the SRV records of RFC 6186 and RFC 8314 (a "." target means "not
//     offered", RFC 2782), Thunderbird autoconfig and Outlook POX Autodiscover,
//     and whether the servers they advertise answer and agree with SRV and MX;
//   - DNS blocklists (RFC 5782) for the MX addresses and outbound addresses.
//
// Independent lookups run in parallel (at most Parallel at a time); the
// steps are emitted in a fixed section order, so the output is stable.
//
// Not supported: HTTP (non-TLS) autoconfig and the Autodiscover HTTP
// redirect method, which clients only use with a warning; Autodiscover v2
// (JSON) and SOAP; following HTTP redirects (they are reported); BIMI logo
// and VMC validation (only the record's presence is checked); DNSSEC
// validation of its own (the AD flag is recorded); DKIM selectors seen in
// stored DMARC reports are taken only when the caller passes them
// (Target.KnownSelectors) — the report store is not read here.
package domain

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Step ids, stable (docs/json.md). Most repeat: one step per finding.
const (
	StepMX             = "mx"              // the MX records
	StepMXHost         = "mx-host"         // one MX host: addresses, reverse DNS
	StepSPF            = "spf"             // the SPF record: present, one, syntax
	StepSPFLookups     = "spf-lookups"     // DNS lookups and void lookups counted by the evaluator
	StepSPFAll         = "spf-all"         // the all mechanism and other term advice
	StepDMARC          = "dmarc"           // the DMARC record: present, one, syntax
	StepDMARCPolicy    = "dmarc-policy"    // p, sp, t, pct
	StepDMARCReports   = "dmarc-reports"   // rua, ruf, external destinations
	StepDKIM           = "dkim"            // one DKIM key (or the selector discovery)
	StepMTASTS         = "mta-sts"         // the MTA-STS record and policy
	StepMTASTSMX       = "mta-sts-mx"      // one MX host against the policy
	StepTLSRPT         = "tls-rpt"         // the TLS-RPT record
	StepBIMI           = "bimi"            // the BIMI record
	StepSRV            = "srv"             // one SRV name (RFC 6186, RFC 8314)
	StepAutoconfig     = "autoconfig"      // one Thunderbird autoconfig URL
	StepAutodiscover   = "autodiscover"    // one Outlook Autodiscover URL
	StepClientServer   = "client-server"   // one server advertised to mail clients
	StepClientMismatch = "client-mismatch" // autoconfig, autodiscover and SRV disagree
	StepOutbound       = "outbound-ip"     // one --outbound-ip: reverse DNS, SPF
	StepDNSBL          = "dnsbl"           // one address against the blocklists
)

// Parallel bounds the lookups and connections in flight at once.
const Parallel = 16

// DefaultDNSBL are the blocklists asked when none are given: widely used,
// free for low-volume queries. Spamhaus refuses queries that come through
// large public resolvers (it answers 127.255.255.254), which is reported.
var DefaultDNSBL = []string{"zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org"}

// ErrBadTarget is returned by ParseTarget for input that is not a domain.
var ErrBadTarget = errors.New("domain: invalid domain name")

// Target is what to audit.
type Target struct {
	Domain string
	// Selectors are the DKIM selectors to check; when empty, the common
	// selectors (CommonSelectors) and KnownSelectors are tried.
	Selectors []string
	// KnownSelectors are selectors seen elsewhere, for example in stored
	// DMARC aggregate reports; they join the discovery list.
	KnownSelectors []string
	// OutboundIPs are the addresses the domain sends mail from.
	OutboundIPs []netip.Addr
	// DNSBL are the blocklist zones; nil means DefaultDNSBL, empty none.
	DNSBL []string
	// Email is the address given to autoconfig and Autodiscover; default
	// postmaster@Domain.
	Email string
	// Probe checks one advertised client server; nil means ServiceProbe.
	Probe ProbeFunc
}

// ParseTarget checks a domain given on the command line.
func ParseTarget(arg string) (Target, error) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(arg)), ".")
	if d == "" || strings.ContainsAny(d, " \t@/:") {
		return Target{}, fmt.Errorf("%w: %q", ErrBadTarget, arg)
	}
	for _, r := range d {
		if r > 0x7e {
			return Target{}, fmt.Errorf("%w: %q: give an internationalised domain in its A-label (xn--) form", ErrBadTarget, arg)
		}
	}
	if _, err := dnsx.Fqdn(d); err != nil {
		return Target{}, fmt.Errorf("%w: %q", ErrBadTarget, arg)
	}
	return Target{Domain: d}, nil
}

// Counts are the findings by status.
type Counts struct {
	Fail int `json:"fail"`
	Warn int `json:"warn"`
	OK   int `json:"ok"`
	Info int `json:"info"`
	Skip int `json:"skip"`
}

// Result is the audit with its evidence, one object per section.
type Result struct {
	Domain string      `json:"domain"`
	Worst  diag.Status `json:"worst"`
	Counts Counts      `json:"counts"`
	// Unchecked lists what could not be checked because DNS failed
	// (SERVFAIL, timeout): the audit is then incomplete (exit 3).
	Unchecked    []string        `json:"unchecked,omitempty"`
	MX           MXSection       `json:"mx"`
	SPF          SPFSection      `json:"spf"`
	DMARC        DMARCSection    `json:"dmarc"`
	DKIM         DKIMSection     `json:"dkim"`
	MTASTS       STSSection      `json:"mta_sts"`
	TLSRPT       TLSRPTSection   `json:"tls_rpt"`
	BIMI         BIMISection     `json:"bimi"`
	SRV          []SRVService    `json:"srv"`
	Autoconfig   []ConfigFetch   `json:"autoconfig"`
	Autodiscover []ConfigFetch   `json:"autodiscover"`
	Servers      []ServerCheck   `json:"client_servers"`
	Outbound     []OutboundCheck `json:"outbound,omitempty"`
	DNSBL        DNSBLSection    `json:"dnsbl"`
	Steps        []diag.Step     `json:"-"`
}

// Run audits t.Domain. Every finding is a step sent to out; the result
// holds the evidence.
func Run(ctx context.Context, env diag.Env, t Target, out diag.Sink) Result {
	if out == nil {
		out = diag.Discard
	}
	r := &runner{ctx: ctx, env: env, t: t, sink: out, sem: make(chan struct{}, Parallel)}
	r.domain = strings.TrimSuffix(strings.ToLower(t.Domain), ".")
	r.fqdn = r.domain + "."
	if r.t.Email == "" {
		r.t.Email = "postmaster@" + r.domain
	}
	if r.t.DNSBL == nil {
		r.t.DNSBL = DefaultDNSBL
	}
	if r.t.Probe == nil {
		r.t.Probe = ServiceProbe
	}
	r.res = Result{Domain: r.domain, SRV: []SRVService{}, Autoconfig: []ConfigFetch{}, Autodiscover: []ConfigFetch{}, Servers: []ServerCheck{}}
	start := env.Clock()

	sections := []struct {
		id, title string
		run       func() []diag.Step
	}{
		{StepMX, "MX records of " + r.domain, r.mxSection},
		{StepSPF, "SPF record of " + r.domain, r.spfSection},
		{StepDMARC, "DMARC policy of " + r.domain, r.dmarcSection},
		{StepDKIM, "DKIM keys of " + r.domain, r.dkimSection},
		{StepMTASTS, "MTA-STS of " + r.domain, r.stsSection},
		{StepTLSRPT, "TLS-RPT record of " + r.domain, r.tlsrptSection},
		{StepBIMI, "BIMI record of " + r.domain, r.bimiSection},
		{StepSRV, "SRV records of " + r.domain, r.srvSection},
		{StepAutoconfig, "Thunderbird autoconfig of " + r.domain, r.autoconfigSection},
		{StepAutodiscover, "Outlook Autodiscover of " + r.domain, r.autodiscoverSection},
		{StepClientServer, "servers advertised to mail clients", r.serversSection},
		{StepOutbound, "outbound addresses", r.outboundSection},
		{StepDNSBL, "DNS blocklists", r.dnsblSection},
	}
	r.done = map[string]chan struct{}{}
	for _, s := range sections {
		r.done[s.id] = make(chan struct{})
	}
	em := &emitter{sink: out, slots: make([][]diag.Step, len(sections)), ready: make([]bool, len(sections)), res: &r.res}
	var wg sync.WaitGroup
	for i, s := range sections {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.done[s.id])
			out.Start(diag.Step{ID: s.id, Title: s.title})
			t0 := env.Clock()
			steps := s.run()
			el := env.Clock().Sub(t0)
			for j := range steps {
				steps[j].Elapsed = el
			}
			em.put(i, steps)
		}()
	}
	wg.Wait()
	r.res.Worst = diag.Worst(r.res.Steps)
	for _, st := range r.res.Steps {
		switch st.Status {
		case diag.Fail:
			r.res.Counts.Fail++
		case diag.Warn:
			r.res.Counts.Warn++
		case diag.OK:
			r.res.Counts.OK++
		case diag.Info:
			r.res.Counts.Info++
		default:
			r.res.Counts.Skip++
		}
	}
	for _, s := range sections {
		u := r.uncheckedBy[s.id]
		slices.Sort(u)
		r.res.Unchecked = append(r.res.Unchecked, u...)
	}
	env.Log().Debug("domain audit", "domain", r.domain, "worst", r.res.Worst, "steps", len(r.res.Steps), "elapsed", env.Clock().Sub(start))
	return r.res
}

// runner holds one audit's state. Each section writes only its own part of
// res; a section that needs another's waits for it with after.
type runner struct {
	ctx          context.Context
	env          diag.Env
	t            Target
	domain, fqdn string
	sink         diag.Sink
	sem          chan struct{}
	done         map[string]chan struct{}
	res          Result
	mu           sync.Mutex // guards uncheckedBy
	uncheckedBy  map[string][]string
}

// after waits until section id has finished.
func (r *runner) after(id string) { <-r.done[id] }

// unchecked records that DNS failed for something the audit needed, by
// section, so that the list comes out in section order.
func (r *runner) unchecked(section, what string) {
	r.mu.Lock()
	if r.uncheckedBy == nil {
		r.uncheckedBy = map[string][]string{}
	}
	r.uncheckedBy[section] = append(r.uncheckedBy[section], what)
	r.mu.Unlock()
}

// parallel calls fn(0) … fn(n-1) concurrently, at most Parallel at once
// over the whole audit. fn must not call parallel itself.
func (r *runner) parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case r.sem <- struct{}{}:
			case <-r.ctx.Done():
				fn(i) // let it fail with the context's error
				return
			}
			defer func() { <-r.sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// emitter sends each section's steps once every earlier section's have
// gone, so that parallel sections still print in a fixed order.
type emitter struct {
	mu    sync.Mutex
	sink  diag.Sink
	slots [][]diag.Step
	ready []bool
	next  int
	res   *Result
}

func (e *emitter) put(i int, steps []diag.Step) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.slots[i], e.ready[i] = steps, true
	for e.next < len(e.slots) && e.ready[e.next] {
		for _, st := range e.slots[e.next] {
			e.sink.Finish(st)
			e.res.Steps = append(e.res.Steps, st)
		}
		e.next++
	}
}

// step builds one finding.
func step(id string, s diag.Status, title, detail, hint, rfc string) diag.Step {
	return diag.Step{ID: id, Status: s, Title: title, Detail: detail, Hint: hint, RFC: rfc}
}

// dnsWord names a DNS failure briefly: "NXDOMAIN", "SERVFAIL", "timeout".
func dnsWord(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, dnsx.ErrNXDomain):
		return "NXDOMAIN"
	case errors.Is(err, dnsx.ErrNoData):
		return "NODATA"
	case errors.Is(err, dnsx.ErrServFail):
		return "SERVFAIL"
	case errors.Is(err, dnsx.ErrTimeout):
		return "timeout"
	case errors.Is(err, dnsx.ErrRefused):
		return "REFUSED"
	case errors.Is(err, dnsx.ErrUnreachable):
		return "resolver unreachable"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline passed"
	}
	return err.Error()
}

// absent reports a definite "no such record" answer.
func absent(err error) bool {
	return errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData)
}

// hostName normalises a DNS name: lower case, no trailing dot.
func hostName(s string) string { return strings.TrimSuffix(strings.ToLower(s), ".") }

// limit returns d, or def when d is not set.
func limit(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
