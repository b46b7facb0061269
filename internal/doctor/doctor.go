// Package doctor is mxray's one-stop diagnosis of a mail domain or
// address: it runs the domain audit (internal/domain), the delivery test
// (internal/delivery, RFC 5321 — for a bare domain RCPT TO its postmaster,
// RFC 5321 §4.5.1) and the service probes (internal/probe) of the MX hosts
// and of the servers the domain advertises to mail clients (RFC 6186,
// RFC 8314 SRV, autoconfig, Autodiscover), and turns their steps into one
// report: the problems, worst first, each mapped to a row of the classic
// mail troubleshooting matrix (Row) with its likely cause and fix, then
// what is fine, one group per check.
//
// The domain audit and the delivery test start together; the probes of
// the MX hosts start when the delivery test has found them, and the
// advertised servers are probed by the domain audit itself, through
// domain.Target.Probe, so each is connected to once. Steps are emitted in
// a fixed order whatever finishes first: domain, delivery, probe, doctor.
//
// The doctor adds one check of its own (part "doctor"): whether the name
// each MX server gives in its EHLO reply is the MX host name or its
// forward-confirmed reverse DNS (RFC 5321 §4.1.1.1, RFC 8601 §3).
//
// Not supported: anything seen only from inside the server (queues, logs:
// see mxray logs and mxray queue); a full service scan of the MX hosts
// (only port 25 is probed there; mxray probe scans all); logging in on
// the MX hosts when no client server is advertised; a live stream of the
// steps (they are emitted when all parts are done, in order).
package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/mxray/mxray/internal/delivery"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/domain"
	"github.com/mxray/mxray/internal/probe"
)

// Part is which diagnostic a step or a problem comes from. In the steps
// the doctor emits, the part prefixes the step id: "domain.spf",
// "delivery.rcpt", "probe.smtp.connect", "doctor.ehlo-name".
type Part string

const (
	PartDomain   Part = "domain"   // the domain audit (internal/domain)
	PartDelivery Part = "delivery" // the delivery test (internal/delivery)
	PartProbe    Part = "probe"    // the service probes (internal/probe)
	PartDoctor   Part = "doctor"   // the doctor's own cross-checks
)

// StepEHLOName is the doctor's own step: the EHLO name of each MX server
// tried against the MX host name and its reverse DNS.
const StepEHLOName = "ehlo-name"

// Target is what to diagnose.
type Target struct {
	// Domain is the mail domain; Address, when set, the address whose
	// delivery is tested (else postmaster@Domain).
	Domain  string
	Address string
	// Helo is the name for EHLO; MailFrom the reverse-path ("" is <>).
	Helo     string
	MailFrom string
	// User and Password log in on the advertised client servers (over
	// TLS only); never shown or logged.
	User, Password string
	// DNSBL and Selectors are passed to the domain audit (nil: its
	// defaults).
	DNSBL     []string
	Selectors []string
}

// Problem is one fail or warn step, explained.
type Problem struct {
	Severity diag.Status `json:"severity"` // fail or warn
	Part     Part        `json:"part"`
	Step     string      `json:"step"` // the prefixed step id
	Title    string      `json:"title"`
	Cause    string      `json:"cause"`
	Fix      string      `json:"fix"`
	RFC      string      `json:"rfc,omitempty"`
	Row      Row         `json:"matrix_row"`
	Host     string      `json:"host,omitempty"`
	IP       string      `json:"ip,omitempty"`
	// Also lists the steps of other parts that saw the same problem.
	Also []string `json:"also,omitempty"`
	// Repeats counts further steps of the same id with the same problem
	// (26 DKIM selectors that all got SERVFAIL), merged into this one.
	Repeats int `json:"repeats,omitempty"`
	key     string
}

// OKGroup is one check group that found something fine: a part's step id
// (for probes, the service on one host).
type OKGroup struct {
	Part  Part   `json:"part"`
	Group string `json:"group"` // "domain.spf", "probe.smtp mx1.example.test"
	OK    int    `json:"ok"`    // steps with status ok
	// Problems counts the group's steps listed under problems.
	Problems int      `json:"problems,omitempty"`
	Titles   []string `json:"titles"`
}

// Result is the diagnosis with the three sub-results as evidence.
type Result struct {
	Domain    string      `json:"domain"`
	Recipient string      `json:"recipient"`
	Worst     diag.Status `json:"worst"`
	// Checked is false when nothing could be checked: no mail host was
	// reached and DNS could not answer (SERVFAIL, timeout) for the MX.
	Checked bool `json:"checked"`
	// Unchecked says what could not be checked and why.
	Unchecked []string  `json:"unchecked,omitempty"`
	Problems  []Problem `json:"problems"`
	OK        []OKGroup `json:"ok"`
	// Rows counts the problems per matrix row.
	Rows     map[Row]int     `json:"matrix"`
	Audit    domain.Result   `json:"domain_audit"`
	Delivery delivery.Result `json:"delivery"`
	Probes   []probe.Result  `json:"probes"`
	// Steps are all steps, prefixed by part, in the order emitted.
	Steps []diag.Step `json:"-"`
}

// Run diagnoses t. Steps go to out (Start as they begin, Finish in the
// fixed order once every part is done); the Result holds the report.
func Run(ctx context.Context, env diag.Env, t Target, out diag.Sink) Result {
	if out == nil {
		out = diag.Discard
	}
	start := env.Clock()
	d := &run{env: env, t: t, client: map[string]probe.Result{}}
	var wg sync.WaitGroup
	var audit domain.Result
	var deliv delivery.Result
	var mxProbes []probe.Result
	domRec, delRec := &diag.Recorder{}, &diag.Recorder{}
	auditDone := make(chan struct{})

	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(auditDone)
		dt := domain.Target{Domain: t.Domain, DNSBL: t.DNSBL, Selectors: t.Selectors, Probe: d.probeEndpoint}
		if t.Address != "" {
			dt.Email = t.Address
		}
		audit = domain.Run(ctx, env, dt, startsOnly{out, PartDomain, domRec})
	}()
	go func() {
		defer wg.Done()
		deliv = delivery.Run(ctx, env, delivery.Target{Address: t.Address, Domain: t.Domain, Helo: t.Helo, MailFrom: t.MailFrom},
			startsOnly{out, PartDelivery, delRec})
		hosts := deliveryHosts(deliv)
		if len(hosts) == 0 {
			// The delivery test stopped before the hosts (DNS): the audit
			// may still have found them.
			<-auditDone
			hosts = auditHosts(audit)
		}
		mxProbes = make([]probe.Result, len(hosts))
		var pw sync.WaitGroup
		for i, h := range hosts {
			pw.Add(1)
			go func() {
				defer pw.Done()
				mxProbes[i] = probe.Run(ctx, env, probe.Target{Host: h, Services: []probe.Service{probe.SMTP}, Explicit: true, Helo: t.Helo},
					startsOnly{out, PartProbe, nil})
			}()
		}
		pw.Wait()
	}()
	wg.Wait()

	res := Result{Domain: audit.Domain, Recipient: deliv.Recipient, Audit: audit, Delivery: deliv, Probes: mxProbes, Rows: map[Row]int{}}
	if res.Domain == "" {
		res.Domain = deliv.Domain
	}
	for _, s := range audit.Servers {
		if pr, ok := d.client[endpointKey(s.Endpoint)]; ok {
			res.Probes = append(res.Probes, pr)
		}
	}
	if res.Probes == nil {
		res.Probes = []probe.Result{}
	}

	type partStep struct {
		part Part
		st   diag.Step
	}
	var all []partStep
	for _, st := range domRec.Steps {
		all = append(all, partStep{PartDomain, st})
	}
	for _, st := range delRec.Steps {
		all = append(all, partStep{PartDelivery, st})
	}
	for _, pr := range res.Probes {
		for _, st := range pr.Steps {
			all = append(all, partStep{PartProbe, st})
		}
	}
	for _, st := range ehloChecks(deliv, audit) {
		all = append(all, partStep{PartDoctor, st})
	}

	groups := map[string]*OKGroup{}
	var order []string
	group := func(p Part, st diag.Step) *OKGroup {
		name := string(p) + "." + st.ID
		switch p {
		case PartProbe:
			svc, _, _ := strings.Cut(st.ID, ".")
			name = "probe." + svc + " " + st.Host
		case PartDelivery:
			name = "delivery." + st.ID
		}
		g := groups[name]
		if g == nil {
			g = &OKGroup{Part: p, Group: name, Titles: []string{}}
			groups[name] = g
			order = append(order, name)
		}
		return g
	}
	for _, ps := range all {
		st := ps.st
		// The probe steps of an advertised server are the evidence behind
		// the audit's one-line verdict on it: the problem is listed once,
		// from the probe.
		if ps.part == PartDomain && st.ID == domain.StepClientServer && st.Host != "" {
			continue
		}
		if p, ok := Classify(ps.part, st); ok {
			res.Problems = append(res.Problems, p)
			group(ps.part, st).Problems++
		} else if st.Status == diag.OK {
			g := group(ps.part, st)
			g.OK++
			g.Titles = append(g.Titles, st.Title)
		}
		prefixed := st
		prefixed.ID = string(ps.part) + "." + st.ID
		res.Steps = append(res.Steps, prefixed)
	}
	for _, name := range order {
		if groups[name].OK > 0 {
			res.OK = append(res.OK, *groups[name])
		}
	}
	if res.OK == nil {
		res.OK = []OKGroup{}
	}
	res.Problems = sortProblems(res.Problems)
	for _, p := range res.Problems {
		res.Rows[p.Row]++
	}
	res.Worst = diag.Worst(res.Steps)
	res.Checked, res.Unchecked = checked(audit, deliv, res.Probes)

	for _, st := range res.Steps {
		out.Finish(st)
	}
	env.Log().Debug("doctor", "domain", res.Domain, "recipient", res.Recipient, "problems", len(res.Problems),
		"checked", res.Checked, "elapsed", env.Clock().Sub(start))
	return res
}

// run holds the probes of the advertised servers made during the audit.
type run struct {
	env    diag.Env
	t      Target
	mu     sync.Mutex
	client map[string]probe.Result
}

func endpointKey(e domain.Endpoint) string {
	return fmt.Sprintf("%s %s:%d %s", e.Proto, e.Host, e.Port, e.TLS)
}

// probeEndpoint is the domain audit's probe of one advertised server: the
// full probe, logging in when credentials were given. It keeps the probe's
// result and gives the audit its summary.
func (d *run) probeEndpoint(ctx context.Context, env diag.Env, ep domain.Endpoint) domain.ProbeResult {
	svc := serviceOf(ep)
	pr := probe.Run(ctx, env, probe.Target{Host: ep.Host, Services: []probe.Service{svc}, Explicit: true, Port: ep.Port,
		Helo: d.t.Helo, User: d.t.User, Password: d.t.Password}, diag.Discard)
	d.mu.Lock()
	d.client[endpointKey(ep)] = pr
	d.mu.Unlock()
	return summarize(pr, ep)
}

// serviceOf maps an advertised endpoint onto the probe's service names.
func serviceOf(ep domain.Endpoint) probe.Service {
	implicit := ep.TLS == domain.TLSImplicit
	switch {
	case ep.Proto == domain.ProtoIMAP && implicit:
		return probe.IMAPS
	case ep.Proto == domain.ProtoIMAP:
		return probe.IMAP
	case ep.Proto == domain.ProtoPOP3 && implicit:
		return probe.POP3S
	case ep.Proto == domain.ProtoPOP3:
		return probe.POP3
	case implicit:
		return probe.Submissions
	}
	return probe.Submission
}

// summarize is the audit's one-line view of a probe: the matrix cells
// that apply, the worst of them, and the first that failed.
func summarize(pr probe.Result, ep domain.Endpoint) domain.ProbeResult {
	res := domain.ProbeResult{Status: diag.Fail, Failed: "connect", Summary: "no address", Error: pr.Unchecked}
	if len(pr.Services) == 0 {
		return res
	}
	s := pr.Services[0]
	res = domain.ProbeResult{Status: diag.Skip, Greeting: s.Greeting, Error: s.Error}
	if s.TLS != nil {
		res.TLSVersion = s.TLS.Version
		res.Certificate = string(s.TLS.Verification.Status)
	}
	var words, lines []string
	m := s.Matrix
	for _, c := range []struct {
		name string
		cell probe.Cell
	}{{"connect", m.Connect}, {"tls", m.TLS}, {"certificate", m.Cert}, {"auth", m.Auth}, {"login", m.Login}} {
		if c.cell.Status == diag.Skip || c.cell.Status == "" {
			continue
		}
		words = append(words, c.name+" "+c.cell.Text)
		if ep.TLS == domain.TLSNone && (c.name == "tls" || c.name == "certificate") {
			continue // a client told to use no TLS never sees them
		}
		if c.cell.Status == diag.Fail && res.Failed == "" {
			res.Failed = c.name
			if c.name == "login" {
				res.Failed = "auth"
			}
		}
		if c.cell.Status.Worse(res.Status) {
			res.Status = c.cell.Status
		}
	}
	if res.Status == diag.Skip {
		res.Status = s.Status
	}
	for _, st := range s.Steps {
		if st.Status == diag.Fail || st.Status == diag.Warn {
			lines = append(lines, st.Title)
		}
	}
	res.Summary, res.Detail = strings.Join(words, "; "), strings.Join(lines, "\n")
	return res
}

// deliveryHosts are the MX hosts the delivery test found addresses for.
func deliveryHosts(r delivery.Result) []string {
	var out []string
	for _, m := range r.MX {
		if m.Error == "" && !m.IPLiteral && len(m.Addrs) > 0 {
			out = append(out, m.Host)
		}
	}
	return out
}

func auditHosts(r domain.Result) []string {
	var out []string
	for _, h := range r.MX.Hosts {
		if h.Error == "" && len(h.Addrs) > 0 {
			out = append(out, h.Host)
		}
	}
	return out
}

// ehloChecks compares the name each MX server gave in its EHLO reply with
// the MX host name and the forward-confirmed reverse DNS of its address.
func ehloChecks(dr delivery.Result, ar domain.Result) []diag.Step {
	var steps []diag.Step
	for _, a := range dr.Attempts {
		for _, st := range a.Steps {
			if st.ID != delivery.StepEHLO || (st.Status != diag.OK && st.Status != diag.Warn) {
				continue
			}
			r, ok := reply(st)
			if !ok || len(r.Lines) == 0 {
				continue
			}
			f := strings.Fields(r.Lines[0])
			if len(f) == 0 {
				continue
			}
			name := strings.TrimSuffix(strings.ToLower(f[0]), ".")
			var ptr, confirmed []string
			for _, h := range ar.MX.Hosts {
				for _, ad := range h.Addrs {
					if ad.IP == a.IP {
						ptr, confirmed = ad.PTR, ad.Confirmed
					}
				}
			}
			s := diag.Step{ID: StepEHLOName, Host: a.Host, IP: a.IP, RFC: "RFC 5321 §4.1.1.1; RFC 8601 §3",
				Data: map[string]any{"ehlo_name": name, "mx_host": a.Host, "ptr": ptr, "confirmed": confirmed}}
			norm := func(l []string) []string {
				var o []string
				for _, x := range l {
					o = append(o, strings.TrimSuffix(strings.ToLower(x), "."))
				}
				return o
			}
			switch {
			case name == a.Host:
				s.Status, s.Title = diag.OK, fmt.Sprintf("%s (%s) introduces itself as %s, the MX host name", a.Host, a.IP, name)
			case slices.Contains(norm(confirmed), name):
				s.Status, s.Title = diag.OK, fmt.Sprintf("%s (%s) introduces itself as %s, its reverse DNS", a.Host, a.IP, name)
			default:
				s.Status = diag.Warn
				s.Title = fmt.Sprintf("%s (%s) introduces itself as %s: neither the MX host name nor its reverse DNS", a.Host, a.IP, name)
				s.Detail = fmt.Sprintf("EHLO name %s; MX host %s; PTR %s", name, a.Host, orWord(strings.Join(ptr, ", "), "none"))
			}
			steps = append(steps, s)
		}
	}
	return steps
}

// checked decides whether anything could be checked: a mail host was
// reached, or a DNS answer decided (NXDOMAIN, null MX, no address). A
// DNS failure (SERVFAIL, timeout) of the MX lookup with no server reached
// leaves nothing checked.
func checked(ar domain.Result, dr delivery.Result, probes []probe.Result) (bool, []string) {
	var why []string
	if dr.Verdict == delivery.Error {
		why = append(why, "delivery: "+dr.Reason)
	}
	for _, u := range ar.Unchecked {
		why = append(why, "domain: "+u)
	}
	for _, p := range probes {
		if p.Unchecked != "" {
			why = append(why, "probe "+p.Host+": "+p.Unchecked)
		}
	}
	reached := dr.Verdict != delivery.Error || dr.DecidedBy != delivery.StepMX && dr.DecidedBy != delivery.StepAddresses && dr.DecidedBy != ""
	for _, p := range probes {
		for _, s := range p.Services {
			if s.Address != "" {
				reached = true
			}
		}
	}
	return reached, why
}

// sortProblems orders fail before warn, then by matrix row, then as
// found, and merges the same problem seen by two parts.
func sortProblems(ps []Problem) []Problem {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		if a.Severity != b.Severity {
			if a.Severity.Worse(b.Severity) {
				return -1
			}
			return 1
		}
		return a.Row.rank() - b.Row.rank()
	})
	out := []Problem{}
	seen := map[string]int{}
	for _, p := range ps {
		if p.key != "" {
			if i, ok := seen[p.key]; ok {
				if p.Step == out[i].Step {
					out[i].Repeats++
				} else if !slices.Contains(out[i].Also, p.Step) {
					out[i].Also = append(out[i].Also, p.Step)
				}
				continue
			}
			seen[p.key] = len(out)
		}
		out = append(out, p)
	}
	return out
}

// startsOnly passes Start events on (prefixed, for the live line) and
// keeps the finished steps for the fixed-order emission.
type startsOnly struct {
	out  diag.Sink
	part Part
	rec  *diag.Recorder
}

func (s startsOnly) Start(st diag.Step) {
	st.ID = string(s.part) + "." + st.ID
	s.out.Start(st)
}

func (s startsOnly) Finish(st diag.Step) {
	if s.rec != nil {
		s.rec.Finish(st)
	}
}
