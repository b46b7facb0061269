package mtasts

import (
	"fmt"
	"strings"

	"github.com/mxray/mxray/internal/diag"
)

// Outcome is what a sending MTA without a cached policy makes of a
// domain's record and policy (RFC 8461 §3.3, §5), for the delivery test.
type Outcome struct {
	// Applies is true when a sender applies Policy: the record and the
	// policy are valid and the mode is enforce or testing.
	Applies bool    `json:"applies"`
	Mode    Mode    `json:"mode,omitempty"`
	Policy  *Policy `json:"policy,omitempty"`
	// Status judges the domain's MTA-STS set-up: ok (a policy applies),
	// info (no MTA-STS, or mode none), warn (published but unusable).
	Status  diag.Status `json:"status"`
	Summary string      `json:"summary"`
	Hint    string      `json:"hint,omitempty"`
	RFC     string      `json:"rfc,omitempty"`
}

// Evaluate combines a record lookup and a policy fetch.
func Evaluate(rec RecordResult, pol PolicyResult) Outcome {
	name := strings.TrimSuffix(rec.Name, ".")
	switch rec.Status {
	case None:
		return Outcome{Status: diag.Info, RFC: "RFC 8461 §3.1",
			Summary: fmt.Sprintf("no MTA-STS: %s has no v=STSv1 record; senders use opportunistic TLS", name),
			Hint:    "publish an MTA-STS record and policy (RFC 8461) so that senders require TLS with a valid certificate"}
	case Temperror:
		return Outcome{Status: diag.Warn, RFC: "RFC 8461 §3.3",
			Summary: fmt.Sprintf("the MTA-STS record lookup failed (%s); senders with a cached policy apply it, others proceed without MTA-STS", rec.Error)}
	case Permerror:
		return Outcome{Status: diag.Warn, RFC: "RFC 8461 §3.1",
			Summary: fmt.Sprintf("the MTA-STS record is unusable (%s): senders assume the domain has no policy", rec.Error),
			Hint:    fmt.Sprintf("publish exactly one valid record at %s, e.g. \"v=STSv1; id=20250101T000000\"", name)}
	}
	if pol.Status != Pass {
		// RFC 8461 §3.3: > If a valid TXT record is found but no policy
		// can be fetched via HTTPS (for any reason), and there is no valid
		// (non-expired) previously cached policy, senders MUST continue
		// with delivery as though the domain has not implemented MTA-STS.
		return Outcome{Status: diag.Warn, RFC: "RFC 8461 §3.3",
			Summary: fmt.Sprintf("an MTA-STS record is published but the policy at %s cannot be used (%s): senders without a cached policy deliver as if there were no MTA-STS; senders with one keep applying it", pol.URL, pol.Error),
			Hint:    "serve the policy with status 200, as text/plain, with a certificate valid for mta-sts." + pol.Domain + ", without redirects"}
	}
	p := pol.Policy
	switch p.Mode {
	case ModeNone:
		return Outcome{Status: diag.Info, Mode: ModeNone, Policy: p, RFC: "RFC 8461 §5",
			Summary: "the MTA-STS policy is in mode none: senders treat the domain as having no policy"}
	case ModeTesting:
		return Outcome{Applies: true, Status: diag.OK, Mode: ModeTesting, Policy: p, RFC: "RFC 8461 §5",
			Summary: fmt.Sprintf("MTA-STS in mode testing (mx %s, max_age %d s): failures are reported through TLS-RPT, mail is delivered anyway",
				strings.Join(p.MX, ", "), p.MaxAge)}
	}
	return Outcome{Applies: true, Status: diag.OK, Mode: ModeEnforce, Policy: p, RFC: "RFC 8461 §5",
		Summary: fmt.Sprintf("MTA-STS enforced (mx %s, max_age %d s): senders deliver only to matching MX hosts over TLS with a valid certificate",
			strings.Join(p.MX, ", "), p.MaxAge)}
}

// MXVerdict is what the outcome means for one MX host.
type MXVerdict struct {
	Host    string `json:"host"`
	Pattern string `json:"pattern,omitempty"` // the mx pattern it matched
	Match   bool   `json:"match"`
	// Usable is false when an enforced policy forbids the host.
	Usable bool        `json:"usable"`
	Status diag.Status `json:"status"`
	Text   string      `json:"text"`
	RFC    string      `json:"rfc,omitempty"`
}

// MX judges one MX host under the outcome (RFC 8461 §4.1, §5).
func (o Outcome) MX(host string) MXVerdict {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	v := MXVerdict{Host: h, Usable: true, RFC: "RFC 8461 §4.1"}
	if !o.Applies {
		v.Status, v.Text = diag.Skip, "no MTA-STS policy applies"
		return v
	}
	v.Pattern, v.Match = o.Policy.Matching(h)
	switch {
	case v.Match:
		v.Status, v.Text = diag.OK, fmt.Sprintf("%s matches the policy's mx %s", h, v.Pattern)
	case o.Mode == ModeEnforce:
		// RFC 8461 §5: in enforce mode, senders MUST NOT deliver to hosts
		// that fail MX matching.
		v.Usable, v.Status, v.RFC = false, diag.Fail, "RFC 8461 §4.1, §5"
		v.Text = fmt.Sprintf("%s matches no mx of the enforced policy (%s): senders must not deliver to it", h, strings.Join(o.Policy.MX, ", "))
	default:
		v.Status, v.RFC = diag.Warn, "RFC 8461 §4.1, §5"
		v.Text = fmt.Sprintf("%s matches no mx of the policy (%s); mode testing: senders report it and deliver anyway", h, strings.Join(o.Policy.MX, ", "))
	}
	return v
}
