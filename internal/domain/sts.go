package domain

import (
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/mtasts"
	"github.com/mxray/mxray/internal/tlsrptrec"
)

// STSSection is the evidence of the MTA-STS section.
type STSSection struct {
	Status     mtasts.Status      `json:"status"` // of the record lookup
	Record     string             `json:"record,omitempty"`
	PolicyURL  string             `json:"policy_url,omitempty"`
	HTTPStatus int                `json:"http_status,omitempty"`
	Policy     *mtasts.Policy     `json:"policy,omitempty"`
	Applies    bool               `json:"applies"`
	Mode       mtasts.Mode        `json:"mode,omitempty"`
	MX         []mtasts.MXVerdict `json:"mx,omitempty"`
	Error      string             `json:"error,omitempty"`
}

func (r *runner) stsSection() []diag.Step {
	sec := &r.res.MTASTS
	rec := mtasts.LookupRecord(r.ctx, r.env, r.domain)
	sec.Status = rec.Status
	if rec.Record != nil {
		sec.Record = rec.Record.Raw
	}
	var steps []diag.Step
	add := func(id string, fs []mtasts.Finding) {
		for _, f := range fs {
			if f.Status == diag.Warn || f.Status == diag.Fail {
				steps = append(steps, step(id, f.Status, "MTA-STS: "+f.Text, "", "", f.RFC))
			}
		}
	}
	add(StepMTASTS, rec.Findings)
	var pol mtasts.PolicyResult
	if rec.Status == mtasts.Pass {
		pol = mtasts.FetchPolicy(r.ctx, r.env, r.domain)
		sec.PolicyURL, sec.HTTPStatus, sec.Policy, sec.Error = pol.URL, pol.HTTPStatus, pol.Policy, pol.Error
		add(StepMTASTS, pol.Findings)
	} else if rec.Err != nil && rec.Status != mtasts.None {
		sec.Error = rec.Error
	}
	o := mtasts.Evaluate(rec, pol)
	sec.Applies, sec.Mode = o.Applies, o.Mode
	steps = append(steps, step(StepMTASTS, o.Status, o.Summary, "", o.Hint, o.RFC))
	if !o.Applies {
		return steps
	}
	// RFC 8461 §4.1: every MX a sender may use must match the policy.
	r.after(StepMX)
	for _, h := range r.res.MX.Hosts {
		v := o.MX(h.Host)
		sec.MX = append(sec.MX, v)
		s := step(StepMTASTSMX, v.Status, v.Text, "", "", v.RFC)
		if !v.Match {
			s.Hint = "Add " + h.Host + " (or a *. pattern for it) to the policy's mx lines and change the id of the _mta-sts record, or fix the MX."
		}
		s.Host = h.Host
		steps = append(steps, s)
	}
	return steps
}

// TLSRPTSection is the evidence of the TLS-RPT section.
type TLSRPTSection struct {
	Status tlsrptrec.Status `json:"status"`
	Record string           `json:"record,omitempty"`
	RUA    []string         `json:"rua,omitempty"`
	Error  string           `json:"error,omitempty"`
}

func (r *runner) tlsrptSection() []diag.Step {
	sec := &r.res.TLSRPT
	res := tlsrptrec.Lookup(r.ctx, r.env, r.domain)
	sec.Status, sec.Error = res.Status, res.Error
	var steps []diag.Step
	for _, f := range res.Findings {
		if f.Status == diag.Warn || f.Status == diag.Fail {
			steps = append(steps, step(StepTLSRPT, f.Status, "TLS-RPT: "+f.Text, "", "", f.RFC))
		}
	}
	switch res.Status {
	case tlsrptrec.Pass:
		sec.Record = res.Record.Raw
		for _, u := range res.Record.RUA {
			sec.RUA = append(sec.RUA, u.Raw)
		}
		steps = append(steps, step(StepTLSRPT, diag.OK, "TLS-RPT: reports go to "+strings.Join(sec.RUA, ", "), res.Record.Raw, "", "RFC 8460 §3"))
	case tlsrptrec.None:
		r.after(StepMTASTS)
		s := step(StepTLSRPT, diag.Info, "no TLS-RPT record: senders send no reports about TLS failures", "",
			"Publish _smtp._tls."+r.domain+" TXT \"v=TLSRPTv1; rua=mailto:tls-reports@"+r.domain+"\".", "RFC 8460 §3")
		if r.res.MTASTS.Applies {
			s.Status = diag.Warn
			s.Detail = "With MTA-STS but no TLS-RPT, you will not hear from senders that cannot deliver because of a TLS or policy failure."
		}
		steps = append(steps, s)
	case tlsrptrec.Permerror:
		if len(steps) == 0 {
			steps = append(steps, step(StepTLSRPT, diag.Fail, "the TLS-RPT record is unusable", res.Error, "", "RFC 8460 §3"))
		}
	default:
		steps = append(steps, step(StepTLSRPT, diag.Warn, "TLS-RPT record lookup failed", res.Error, "", "RFC 8460 §3"))
	}
	return steps
}
