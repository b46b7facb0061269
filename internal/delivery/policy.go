package delivery

import (
	"context"
	"fmt"
	"strings"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/mtasts"
	"github.com/mxray/mxray/internal/tlsrptrec"
)

// MTASTSResult is the evidence of the mta-sts step.
type MTASTSResult struct {
	Record mtasts.RecordResult `json:"record"`
	// Policy is absent when there was no valid record to look for one.
	Policy  *mtasts.PolicyResult `json:"policy,omitempty"`
	Outcome mtasts.Outcome       `json:"outcome"`
	// MX is what the outcome means for each MX host (RFC 8461 §4.1).
	MX []mtasts.MXVerdict `json:"mx"`
}

// domainLookups are the lookups about the recipient domain that do not
// depend on its MX records; they start with the MX lookup.
type domainLookups struct {
	stsDone chan struct{}
	sts     MTASTSResult
	rptDone chan struct{}
	rpt     tlsrptrec.Result
}

func (d *domainLookups) wait() {
	<-d.stsDone
	<-d.rptDone
}

// startDomainLookups starts the MTA-STS record lookup (then, when there is
// a record, the policy fetch) and the TLS-RPT lookup.
func (r *runner) startDomainLookups(ctx context.Context) *domainLookups {
	d := &domainLookups{stsDone: make(chan struct{}), rptDone: make(chan struct{})}
	domain := r.res.Domain
	go func() {
		defer close(d.stsDone)
		d.sts.Record = mtasts.LookupRecord(ctx, r.env, domain)
		var pol mtasts.PolicyResult
		// RFC 8461 §3.3: the policy is fetched once a valid record says
		// there is one.
		if d.sts.Record.Status == mtasts.Pass {
			pol = mtasts.FetchPolicy(ctx, r.env, domain)
			d.sts.Policy = &pol
		}
		d.sts.Outcome = mtasts.Evaluate(d.sts.Record, pol)
	}()
	go func() {
		defer close(d.rptDone)
		d.rpt = tlsrptrec.Lookup(ctx, r.env, domain)
	}()
	return d
}

// mtastsStep reports the MTA-STS record, policy and what they mean for
// each MX host.
func (r *runner) mtastsStep() {
	tr := diag.Begin(r.env, r.sink, StepMTASTS, "MTA-STS policy of "+r.res.Domain)
	<-r.pre.stsDone
	res := r.pre.sts
	res.MX = []mtasts.MXVerdict{}
	o := res.Outcome
	st := diag.Step{Status: o.Status, RFC: o.RFC, Hint: o.Hint}
	lines := []string{o.Summary}
	var excluded []string
	for _, m := range r.res.MX {
		if m.Error != "" {
			continue
		}
		v := o.MX(m.Host)
		res.MX = append(res.MX, v)
		if !o.Applies {
			continue
		}
		lines = append(lines, "MX "+v.Text)
		switch v.Status {
		case diag.Fail:
			st.Status, st.RFC = diag.Fail, v.RFC
			excluded = append(excluded, v.Host)
		case diag.Warn:
			if !st.Status.Worse(diag.Warn) {
				st.Status, st.RFC = diag.Warn, v.RFC
			}
		}
	}
	var findings []mtasts.Finding
	findings = append(findings, res.Record.Findings...)
	if res.Policy != nil {
		findings = append(findings, res.Policy.Findings...)
	}
	for _, f := range findings {
		if f.Status == diag.Info && res.Record.Status == mtasts.None {
			continue // the summary says it already
		}
		lines = append(lines, fmt.Sprintf("%s: %s", f.Status, f.Text))
		if f.Status == diag.Warn && o.Applies && !st.Status.Worse(diag.Warn) {
			st.Status = diag.Warn
		}
	}
	switch {
	case len(excluded) > 0:
		st.Title = fmt.Sprintf("MTA-STS enforce: %s not in the policy, senders must not deliver to it", strings.Join(excluded, ", "))
		st.Hint = fmt.Sprintf("Add \"mx: %s\" to the policy at %s and change the id in the _mta-sts record — or point the MX at a host the policy lists (%s).",
			excluded[0], mtasts.PolicyURL(r.res.Domain), strings.Join(o.Policy.MX, ", "))
	case o.Applies:
		st.Title = fmt.Sprintf("MTA-STS %s: mx %s", o.Mode, strings.Join(o.Policy.MX, ", "))
	case o.Mode == mtasts.ModeNone:
		st.Title = "MTA-STS policy in mode none: as if there were no policy"
	case res.Record.Status == mtasts.None:
		st.Title = "no MTA-STS policy: senders use opportunistic TLS"
		st.Hint = "" // a suggestion, not a fix; the outcome in data keeps it
	case res.Record.Status == mtasts.Pass:
		st.Title = "MTA-STS record found, but no usable policy: senders proceed as if there were none"
	case res.Record.Status == mtasts.Temperror:
		st.Title = "MTA-STS record lookup failed: senders without a cached policy proceed without one"
	default:
		st.Title = "MTA-STS record unusable: senders assume there is no policy"
	}
	st.Detail = strings.Join(lines, "\n")
	st.Data = res
	tr.Done(st)
	r.res.MTASTS = &res
}

// tlsrptStep reports where senders send TLS failure reports (RFC 8460).
func (r *runner) tlsrptStep() {
	tr := diag.Begin(r.env, r.sink, StepTLSRPT, "TLS-RPT record of "+r.res.Domain)
	<-r.pre.rptDone
	res := r.pre.rpt
	st := diag.Step{Status: diag.Info, RFC: "RFC 8460 §3", Data: res}
	var lines []string
	for _, f := range res.Findings {
		lines = append(lines, fmt.Sprintf("%s: %s", f.Status, f.Text))
		if f.Status == diag.Warn || f.Status == diag.Fail {
			st.Status = diag.Warn
		}
	}
	name := strings.TrimSuffix(res.Name, ".")
	switch res.Status {
	case tlsrptrec.Pass:
		var to []string
		for _, u := range res.Record.RUA {
			to = append(to, u.Raw)
		}
		st.Title = "TLS-RPT: senders report TLS failures to " + strings.Join(to, ", ")
		lines = append([]string{res.Record.Raw}, lines...)
	case tlsrptrec.None:
		st.Title = "no TLS-RPT record: senders report no TLS failures"
		lines = nil
		st.Detail = fmt.Sprintf("No v=TLSRPTv1 record at %s.", name)
		if sts := r.pre.sts.Outcome; sts.Applies {
			st.Hint = fmt.Sprintf("With MTA-STS in force, publish %s TXT \"v=TLSRPTv1; rua=mailto:tls-reports@%s\" to hear when senders cannot deliver.", name, r.res.Domain)
		}
	case tlsrptrec.Permerror:
		st.Status = diag.Warn
		st.Title = "TLS-RPT record unusable: senders send no reports"
		st.Hint = fmt.Sprintf("Publish exactly one valid record at %s, e.g. \"v=TLSRPTv1; rua=mailto:tls-reports@%s\".", name, r.res.Domain)
	default:
		st.Status = diag.Warn
		st.Title = "TLS-RPT record lookup failed"
	}
	if len(lines) > 0 {
		st.Detail = strings.Join(lines, "\n")
	}
	tr.Done(st)
	r.res.TLSRPT = &res
}

// daneHost is one host of the dane step's evidence.
type daneHost struct {
	Host string `json:"host"`
	// Used is false when a sender ignores the records (not validated, or
	// the host's addresses are not validated).
	Used   bool         `json:"used"`
	Note   string       `json:"note,omitempty"`
	Lookup *dane.Lookup `json:"lookup"`
}

// daneStep reports the TLSA records of every host that has an address;
// the lookups ran with the address lookups.
func (r *runner) daneStep(mxs []*MX) {
	tr := diag.Begin(r.env, r.sink, StepDANE, "DANE TLSA records of the mail hosts")
	st := diag.Step{Status: diag.Skip, RFC: "RFC 7672 §2.2"}
	var hosts []daneHost
	var titles, lines, hints []string
	for i, m := range mxs {
		if m.Error != "" || m.tlsa == nil {
			continue
		}
		l := m.tlsa
		r.res.MX[i].TLSA = l
		h := daneHost{Host: m.Host, Lookup: l, Used: l.State == dane.StateDANE || l.State == dane.StateUnusable}
		status := l.Status()
		var short string
		switch l.State {
		case dane.StateDANE:
			short = fmt.Sprintf("%s: %d usable validated TLSA record(s)", m.Host, len(l.Usable()))
		case dane.StateUnusable:
			short = fmt.Sprintf("%s: validated TLSA records, none usable", m.Host)
		case dane.StateNone:
			short = fmt.Sprintf("%s: no TLSA records", m.Host)
		case dane.StateInsecure:
			short = fmt.Sprintf("%s: TLSA records not validated, ignored", m.Host)
		case dane.StateTemperror:
			short = fmt.Sprintf("%s: TLSA lookup failed, a sender must defer", m.Host)
		}
		line := l.Summary
		if l.Zone != nil && !strings.Contains(line, l.Zone.Text) {
			line += ". " + l.Zone.Text
		}
		if (h.Used || l.State == dane.StateTemperror) && !m.addrAD {
			// RFC 7672 §2.2.2: TLSA records count only for a host whose
			// address records are themselves DNSSEC-validated; a DANE
			// sender does not even ask for them otherwise.
			h.Used = false
			h.Note = "the host's address records are not DNSSEC-validated, so a DANE sender does not look up or use its TLSA records (RFC 7672 §2.2.2)"
			short = fmt.Sprintf("%s: TLSA records ignored, the addresses are not validated", m.Host)
			line += ". But " + h.Note + "."
			status = diag.Warn
		}
		lines = append(lines, line)
		for _, rec := range l.Records {
			mark := "usable"
			if !rec.Usable {
				mark = "unusable: " + rec.Unusable
			}
			lines = append(lines, fmt.Sprintf("  %s (%s)", rec.Text, mark))
		}
		if status != diag.OK && status != diag.Info && l.Hint != "" {
			hints = append(hints, m.Host+": "+l.Hint)
		}
		if status.Worse(st.Status) {
			st.Status = status
			if status != diag.OK && status != diag.Info && l.RFC != "" {
				st.RFC = l.RFC
			}
		}
		titles = append(titles, short)
		hosts = append(hosts, h)
	}
	switch {
	case len(hosts) == 0:
		st.Title = "DANE: no host to look up (the MX names no host)"
	case len(hosts) == 1 && hosts[0].Lookup.State == dane.StateNone && hosts[0].Note == "":
		st.Title = "no DANE: no TLSA records for " + hosts[0].Host
	default:
		st.Title = "DANE: " + strings.Join(titles, "; ")
	}
	st.Detail = strings.Join(lines, "\n")
	st.Hint = strings.Join(hints, "\n")
	st.Data = map[string]any{"port": r.t.Port, "hosts": hosts}
	tr.Done(st)
}

// hostPolicy is how a sender treats one MX host.
type hostPolicy struct {
	policy TLSPolicy
	tlsa   *dane.Lookup
	// skip, when set, says in a few words why a sender does not connect
	// at all (skipText in a sentence): skipAs is then the outcome
	// (Excluded, or Deferred after a failed TLSA lookup) and skipStep the
	// step that decided.
	skip     string
	skipText string
	skipAs   Outcome
	skipStep string
	skipRFC  string
}

// choosePolicies decides each host's TLS policy: DANE when validated TLSA
// records exist, else the MTA-STS policy when one applies, else
// opportunistic TLS (RFC 8461 §2: MTA-STS never overrides DANE).
func (r *runner) choosePolicies(mxs []*MX) {
	r.policies = map[string]hostPolicy{}
	o := r.res.MTASTS.Outcome
	for i, m := range mxs {
		if m.Error != "" {
			continue
		}
		hp := hostPolicy{policy: Opportunistic, tlsa: m.tlsa}
		if o.Applies {
			hp.policy = MTASTS
			if o.Mode == mtasts.ModeTesting {
				hp.policy = MTASTSTesting
			}
		}
		if l := m.tlsa; l != nil && m.addrAD {
			switch l.State {
			case dane.StateDANE:
				hp.policy = DANE
			case dane.StateUnusable:
				hp.policy = DANEUnusable
			case dane.StateTemperror:
				// RFC 7672 §2.1.1: a TLSA lookup that fails (SERVFAIL,
				// perhaps a bogus answer) must not lead to delivery
				// without DANE: the host is deferred.
				hp.policy = DANE
				hp.skip = "TLSA lookup failed: " + dnsKind(l.Err)
				hp.skipText = fmt.Sprintf("The TLSA lookup of %s failed (%s), perhaps because the answer is bogus: a DANE sender must not deliver without the records, and defers delivery to this host", m.Host, dnsKind(l.Err))
				hp.skipAs, hp.skipStep, hp.skipRFC = Deferred, StepDANE, "RFC 7672 §2.1.1"
			}
		}
		if v := o.MX(m.Host); hp.skip == "" && !v.Usable {
			// RFC 8461 §5: in enforce mode, a host that does not match the
			// policy is not used.
			hp.skip = "not in the policy's mx list: " + strings.Join(o.Policy.MX, ", ")
			hp.skipText = v.Text
			hp.skipAs, hp.skipStep, hp.skipRFC = Excluded, StepMTASTS, "RFC 8461 §4.1, §5"
			if hp.policy != DANE && hp.policy != DANEUnusable {
				hp.policy = MTASTS
			}
		}
		r.policies[m.Host] = hp
		r.res.MX[i].Policy = hp.policy
	}
}
