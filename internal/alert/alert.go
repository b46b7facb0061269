// Package alert raises alerts on what the report store holds and sends
// them to webhooks. The rules: the DMARC failure rate of a domain over a
// window (RFC 7489 §6.6.2 / RFC 9989: a message passes DMARC when its
// aligned DKIM or SPF passes), a source IP sending as a domain that no
// earlier report showed, failed sessions in SMTP TLS reports (RFC 8460
// §4.4), reports that stopped arriving for a domain, and a growing
// quarantine.
//
// A rule fires once per subject (a domain, or a domain and a source IP):
// the alert is raised when the subject starts firing and again only after
// it stopped. An alert goes to the log and, through a persistent outbox in
// the store, to every webhook as a signed JSON POST, retried with
// exponential backoff until the webhook answers 2xx — across webhook
// outages and restarts.
//
// Not supported: "resolved" notifications to webhooks (resolving is only
// logged), per-rule webhook routing, and running one outbox from several
// `mxray serve` instances at once (each would deliver).
package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/mxray/mxray/internal/store"
)

// Kind is the kind of a rule.
type Kind string

const (
	// DMARCFailRate fires when more than Threshold percent of a domain's
	// messages in the window's aggregate reports failed DMARC, once there
	// are at least MinVolume messages.
	DMARCFailRate Kind = "dmarc_fail_rate"
	// NewSource fires for each source IP sending as a domain in the
	// window that no report before the window showed.
	NewSource Kind = "new_source"
	// TLSFailures fires when a domain's TLS reports in the window count
	// more than Threshold failed sessions.
	TLSFailures Kind = "tls_failures"
	// ReportsStopped fires when no DMARC or TLS report about a domain
	// arrived for longer than Window.
	ReportsStopped Kind = "reports_stopped"
	// QuarantineGrowth fires when more than Threshold items were
	// quarantined in the window.
	QuarantineGrowth Kind = "quarantine_growth"
)

// Kinds lists every rule kind.
var Kinds = []Kind{DMARCFailRate, NewSource, TLSFailures, ReportsStopped, QuarantineGrowth}

// Sentinel errors.
var (
	// ErrRule: a rule of the config cannot be evaluated.
	ErrRule = errors.New("alert: invalid rule")
	// ErrWebhook: a webhook of the config cannot be used.
	ErrWebhook = errors.New("alert: invalid webhook")
)

// Validate checks a rule.
func Validate(r store.AlertRule) error {
	if r.Name == "" {
		return fmt.Errorf("%w: a rule needs a name", ErrRule)
	}
	known := false
	for _, k := range Kinds {
		known = known || Kind(r.Kind) == k
	}
	switch {
	case !known:
		return fmt.Errorf("%w %q: kind %q: want one of %v", ErrRule, r.Name, r.Kind, Kinds)
	case r.Window <= 0:
		return fmt.Errorf("%w %q: window must be positive", ErrRule, r.Name)
	case r.Threshold < 0 || math.IsNaN(r.Threshold) || Kind(r.Kind) == DMARCFailRate && r.Threshold >= 100:
		return fmt.Errorf("%w %q: threshold %v out of range", ErrRule, r.Name, r.Threshold)
	case r.MinVolume < 0:
		return fmt.Errorf("%w %q: min_volume must not be negative", ErrRule, r.Name)
	}
	return nil
}

// Alert is what is logged and POSTed to the webhooks (JSON).
type Alert struct {
	Type      string         `json:"type"` // always "alert"
	Rule      string         `json:"rule"`
	Kind      Kind           `json:"kind"`
	Domain    string         `json:"domain,omitempty"`
	Subject   string         `json:"subject"` // what fires: a domain, "domain ip", or "quarantine"
	Message   string         `json:"message"`
	Value     float64        `json:"value"`
	Threshold float64        `json:"threshold"`
	Window    string         `json:"window"`
	At        time.Time      `json:"at"`
	Evidence  map[string]any `json:"evidence,omitempty"`
}

// Result is the outcome of one evaluation of every rule.
type Result struct {
	Rules    int      `json:"rules"`
	Firing   []Alert  `json:"firing"`   // every subject firing now
	Fired    []Alert  `json:"fired"`    // those that started firing with this check
	Resolved []string `json:"resolved"` // "rule: subject" that stopped firing
}

// Evaluator checks the rules held in the store.
type Evaluator struct {
	DB  *store.DB
	Now func() time.Time // diag.Env.Clock
	Log *slog.Logger
}

// Check evaluates every rule once, records the alerts that start firing
// (with their outbox entries) and logs them.
func (e *Evaluator) Check(ctx context.Context) (Result, error) {
	res := Result{Firing: []Alert{}, Fired: []Alert{}, Resolved: []string{}}
	rules, err := e.DB.AlertRules(ctx)
	if err != nil {
		return res, err
	}
	res.Rules = len(rules)
	now := e.Now().UTC().Truncate(time.Second)
	for _, r := range rules {
		firing, err := e.evaluate(ctx, r, now)
		if err != nil {
			return res, fmt.Errorf("alert: rule %q: %w", r.Name, err)
		}
		var subjects []string
		for _, a := range firing {
			subjects = append(subjects, a.Subject)
			body, _ := json.Marshal(a)
			id, fired, err := e.DB.AlertFire(ctx, store.Alert{Rule: r.Name, Kind: r.Kind, Subject: a.Subject, At: now, Body: string(body)})
			if err != nil {
				return res, err
			}
			res.Firing = append(res.Firing, a)
			if fired {
				res.Fired = append(res.Fired, a)
				e.log().Warn("alert", "id", id, "rule", r.Name, "kind", r.Kind, "subject", a.Subject, "message", a.Message)
			}
		}
		gone, err := e.DB.AlertResolve(ctx, r.Name, subjects)
		if err != nil {
			return res, err
		}
		for _, g := range gone {
			res.Resolved = append(res.Resolved, r.Name+": "+g)
			e.log().Info("alert resolved", "rule", r.Name, "subject", g)
		}
	}
	return res, nil
}

func (e *Evaluator) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

func pct(n, d int64) float64 {
	if d == 0 {
		return 0
	}
	return math.Round(1000*float64(n)/float64(d)) / 10
}

// evaluate returns the subjects of r that fire at now.
func (e *Evaluator) evaluate(ctx context.Context, r store.AlertRule, now time.Time) ([]Alert, error) {
	since := now.Add(-r.Window)
	mk := func(domain, subject string, value float64, msg string, ev map[string]any) Alert {
		return Alert{Type: "alert", Rule: r.Name, Kind: Kind(r.Kind), Domain: domain, Subject: subject, Message: msg,
			Value: value, Threshold: r.Threshold, Window: r.Window.String(), At: now, Evidence: ev}
	}
	var out []Alert
	switch Kind(r.Kind) {
	case DMARCFailRate:
		vols, err := e.DB.DMARCVolumes(ctx, r.Domain, since)
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			if v.Messages == 0 || v.Messages < r.MinVolume {
				continue
			}
			fail := v.Messages - v.Pass
			if rate := pct(fail, v.Messages); rate > r.Threshold {
				out = append(out, mk(v.Domain, v.Domain, rate,
					fmt.Sprintf("%s: %.1f%% of %d messages failed DMARC in the last %s (threshold %.1f%%)", v.Domain, rate, v.Messages, r.Window, r.Threshold),
					map[string]any{"messages": v.Messages, "dmarc_pass": v.Pass, "dmarc_fail": fail}))
			}
		}
	case NewSource:
		news, err := e.DB.NewSources(ctx, r.Domain, since)
		if err != nil {
			return nil, err
		}
		for _, n := range news {
			if n.Messages < r.MinVolume {
				continue
			}
			out = append(out, mk(n.Domain, n.Domain+" "+n.IP, float64(n.Messages),
				fmt.Sprintf("%s: new source %s sent %d messages as this domain in the last %s", n.Domain, n.IP, n.Messages, r.Window),
				map[string]any{"source_ip": n.IP, "messages": n.Messages}))
		}
	case TLSFailures:
		vols, err := e.DB.TLSVolumes(ctx, r.Domain, since)
		if err != nil {
			return nil, err
		}
		for _, v := range vols {
			if v.Successful+v.Failed < r.MinVolume || float64(v.Failed) <= r.Threshold {
				continue
			}
			out = append(out, mk(v.Domain, v.Domain, float64(v.Failed),
				fmt.Sprintf("%s: %d failed TLS sessions reported in the last %s (threshold %g)", v.Domain, v.Failed, r.Window, r.Threshold),
				map[string]any{"successful_sessions": v.Successful, "failed_sessions": v.Failed}))
		}
	case ReportsStopped:
		last, err := e.DB.LastImports(ctx, r.Domain)
		if err != nil {
			return nil, err
		}
		for _, l := range last {
			if l.At.After(since) {
				continue
			}
			age := now.Sub(l.At)
			out = append(out, mk(l.Domain, l.Domain, age.Hours(),
				fmt.Sprintf("%s: no report arrived for %s (last at %s)", l.Domain, age.Round(time.Minute), l.At.Format(time.RFC3339)),
				map[string]any{"last_report_at": l.At}))
		}
	case QuarantineGrowth:
		n, err := e.DB.QuarantinedSince(ctx, since)
		if err != nil {
			return nil, err
		}
		if float64(n) > r.Threshold {
			out = append(out, mk("", "quarantine", float64(n),
				fmt.Sprintf("%d items quarantined in the last %s (threshold %g); see mxray reports quarantine", n, r.Window, r.Threshold),
				map[string]any{"quarantined": n}))
		}
	default:
		return nil, fmt.Errorf("%w: kind %q", ErrRule, r.Kind)
	}
	return out, nil
}
