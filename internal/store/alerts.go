package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// AlertRule is one [[alert]] of the config file, as kept in the database.
type AlertRule struct {
	Name      string        `json:"name"`
	Kind      string        `json:"kind"`
	Domain    string        `json:"domain,omitempty"` // "" for every domain
	Threshold float64       `json:"threshold"`
	MinVolume int64         `json:"min_volume,omitempty"`
	Window    time.Duration `json:"window"`
}

// Webhook is one [[webhook]] of the config file.
type Webhook struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Secret string `json:"-"`
}

// SetAlertConfig replaces the alert rules and webhooks with these, in one
// transaction. The firing state of rules no longer configured is dropped;
// pending outbox entries stay, and go out if their webhook comes back.
func (s *DB) SetAlertConfig(ctx context.Context, rules []AlertRule, hooks []Webhook) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: alerts: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM alert_rules`, `DELETE FROM webhooks`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: alerts: %w", err)
		}
	}
	for _, r := range rules {
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (name, kind, domain, threshold, min_volume, window_s) VALUES (?, ?, ?, ?, ?, ?)`,
			r.Name, r.Kind, strings.ToLower(r.Domain), r.Threshold, r.MinVolume, int64(r.Window/time.Second)); err != nil {
			return fmt.Errorf("store: alert rule %q: %w", r.Name, err)
		}
	}
	for _, h := range hooks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhooks (name, url, secret) VALUES (?, ?, ?)`, h.Name, h.URL, h.Secret); err != nil {
			return fmt.Errorf("store: webhook %q: %w", h.Name, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM alert_state WHERE rule NOT IN (SELECT name FROM alert_rules)`); err != nil {
		return fmt.Errorf("store: alerts: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: alerts: %w", err)
	}
	return nil
}

// AlertRules returns the rules, by name.
func (s *DB) AlertRules(ctx context.Context) ([]AlertRule, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, kind, domain, threshold, min_volume, window_s FROM alert_rules ORDER BY name{{BINARY}}`)
	if err != nil {
		return nil, fmt.Errorf("store: alert rules: %w", err)
	}
	defer rows.Close()
	out := []AlertRule{}
	for rows.Next() {
		var r AlertRule
		var w int64
		if err := rows.Scan(&r.Name, &r.Kind, &r.Domain, &r.Threshold, &r.MinVolume, &w); err != nil {
			return nil, fmt.Errorf("store: alert rules: %w", err)
		}
		r.Window = time.Duration(w) * time.Second
		out = append(out, r)
	}
	return out, rows.Err()
}

// Webhooks returns the webhooks, by name, with their secrets.
func (s *DB) Webhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, url, secret FROM webhooks ORDER BY name{{BINARY}}`)
	if err != nil {
		return nil, fmt.Errorf("store: webhooks: %w", err)
	}
	defer rows.Close()
	out := []Webhook{}
	for rows.Next() {
		var h Webhook
		if err := rows.Scan(&h.Name, &h.URL, &h.Secret); err != nil {
			return nil, fmt.Errorf("store: webhooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// scanAll runs q and calls fn for each row.
func (s *DB) scanAll(ctx context.Context, what, q string, args []any, fn func(scan func(...any) error) error) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows.Scan); err != nil {
			return fmt.Errorf("store: %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// DMARCVolume counts, per policy domain, the messages of the aggregate
// reports whose period ends at or after since, and those that passed
// DMARC (aligned DKIM or SPF pass in policy_evaluated).
type DMARCVolume struct {
	Domain   string
	Messages int64
	Pass     int64
}

// DMARCVolumes returns the DMARC volumes since since; domain "" for all.
func (s *DB) DMARCVolumes(ctx context.Context, domain string, since time.Time) ([]DMARCVolume, error) {
	var out []DMARCVolume
	dom := strings.ToLower(domain)
	err := s.scanAll(ctx, "dmarc volume", `SELECT r.domain, SUM(d.msg_count),
		SUM(CASE WHEN d.dkim = 'pass' OR d.spf = 'pass' THEN d.msg_count ELSE 0 END)
		FROM dmarc_records d JOIN reports r ON r.id = d.report
		WHERE r.kind = 'dmarc' AND r.date_end >= ? AND (? = '' OR r.domain = ?)
		GROUP BY r.domain ORDER BY r.domain{{BINARY}}`, []any{unix(since), dom, dom}, func(scan func(...any) error) error {
		var v DMARCVolume
		if err := scan(&v.Domain, &v.Messages, &v.Pass); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// NewSource is a source IP seen sending as a domain.
type NewSource struct {
	Domain   string
	IP       string
	Messages int64
}

// NewSources returns the source IPs in aggregate reports whose period ends
// at or after since that no report ending before since showed for the
// domain. A domain without reports before since has no history to compare
// with, and yields nothing.
func (s *DB) NewSources(ctx context.Context, domain string, since time.Time) ([]NewSource, error) {
	var out []NewSource
	dom := strings.ToLower(domain)
	err := s.scanAll(ctx, "new sources", `SELECT r.domain, d.source_ip, SUM(d.msg_count)
		FROM dmarc_records d JOIN reports r ON r.id = d.report
		WHERE r.kind = 'dmarc' AND r.date_end >= ? AND (? = '' OR r.domain = ?)
		  AND EXISTS (SELECT 1 FROM reports h WHERE h.kind = 'dmarc' AND h.domain = r.domain AND h.date_end < ?)
		  AND NOT EXISTS (SELECT 1 FROM dmarc_records d2 JOIN reports r2 ON r2.id = d2.report
		                  WHERE r2.kind = 'dmarc' AND r2.domain = r.domain AND r2.date_end < ? AND d2.source_ip = d.source_ip)
		GROUP BY r.domain, d.source_ip ORDER BY r.domain{{BINARY}}, d.source_ip{{BINARY}}`,
		[]any{unix(since), dom, dom, unix(since), unix(since)}, func(scan func(...any) error) error {
			var v NewSource
			if err := scan(&v.Domain, &v.IP, &v.Messages); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	return out, err
}

// TLSVolume counts the sessions of the TLS reports of a policy domain.
type TLSVolume struct {
	Domain     string
	Successful int64
	Failed     int64
}

// TLSVolumes returns the TLS sessions per policy domain in reports whose
// period ends at or after since; domain "" for all.
func (s *DB) TLSVolumes(ctx context.Context, domain string, since time.Time) ([]TLSVolume, error) {
	var out []TLSVolume
	dom := strings.ToLower(domain)
	err := s.scanAll(ctx, "tls volume", `SELECT r.domain, SUM(p.successful), SUM(p.failed)
		FROM tls_policies p JOIN reports r ON r.id = p.report
		WHERE r.kind = 'tls' AND r.date_end >= ? AND (? = '' OR r.domain = ?)
		GROUP BY r.domain ORDER BY r.domain{{BINARY}}`, []any{unix(since), dom, dom}, func(scan func(...any) error) error {
		var v TLSVolume
		if err := scan(&v.Domain, &v.Successful, &v.Failed); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out, err
}

// LastImport is when a report about a domain last arrived.
type LastImport struct {
	Domain string
	At     time.Time
}

// LastImports returns, per domain, when its latest DMARC or TLS report
// was imported; domain "" for all.
func (s *DB) LastImports(ctx context.Context, domain string) ([]LastImport, error) {
	var out []LastImport
	dom := strings.ToLower(domain)
	err := s.scanAll(ctx, "last imports", `SELECT domain, MAX(imported_at) FROM reports
		WHERE kind IN ('dmarc', 'tls') AND (? = '' OR domain = ?) GROUP BY domain ORDER BY domain{{BINARY}}`,
		[]any{dom, dom}, func(scan func(...any) error) error {
			var v LastImport
			var at int64
			if err := scan(&v.Domain, &at); err != nil {
				return err
			}
			v.At = fromUnix(at)
			out = append(out, v)
			return nil
		})
	return out, err
}

// QuarantinedSince counts the items quarantined at or after since.
func (s *DB) QuarantinedSince(ctx context.Context, since time.Time) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM quarantine WHERE received_at >= ?`, unix(since)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: quarantine count: %w", err)
	}
	return n, nil
}

// Alert is an alert raised.
type Alert struct {
	ID      int64     `json:"id"`
	Rule    string    `json:"rule"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	At      time.Time `json:"at"`
	Body    string    `json:"-"`
}

// AlertFire records that subject of rule fires. When it was not firing
// already, an alert with body is stored, with one outbox entry for every
// webhook, in one transaction, and fired is true.
func (s *DB) AlertFire(ctx context.Context, a Alert) (id int64, fired bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("store: alert: %w", err)
	}
	defer tx.Rollback()
	var one int
	err = tx.QueryRowContext(ctx, `INSERT INTO alert_state (rule, subject, since) VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING 1`,
		a.Rule, a.Subject, unix(a.At)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil // firing already
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: alert: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `INSERT INTO alerts (rule, kind, subject, fired_at, body) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		a.Rule, a.Kind, a.Subject, unix(a.At), a.Body).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("store: alert: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_outbox (alert, webhook, created_at, attempts, next_attempt, delivered_at, last_error)
		SELECT ?, name, ?, 0, ?, 0, '' FROM webhooks`, id, unix(a.At), unix(a.At)); err != nil {
		return 0, false, fmt.Errorf("store: alert: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("store: alert: %w", err)
	}
	return id, true, nil
}

// AlertResolve ends the firing of rule's subjects other than firing, so
// that they raise a new alert when they fire again. It returns the
// subjects resolved.
func (s *DB) AlertResolve(ctx context.Context, rule string, firing []string) ([]string, error) {
	keep := map[string]bool{}
	for _, f := range firing {
		keep[f] = true
	}
	var gone []string
	err := s.scanAll(ctx, "alert state", `SELECT subject FROM alert_state WHERE rule = ? ORDER BY subject{{BINARY}}`, []any{rule},
		func(scan func(...any) error) error {
			var subj string
			if err := scan(&subj); err != nil {
				return err
			}
			if !keep[subj] {
				gone = append(gone, subj)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	for _, g := range gone {
		if _, err := s.db.ExecContext(ctx, `DELETE FROM alert_state WHERE rule = ? AND subject = ?`, rule, g); err != nil {
			return nil, fmt.Errorf("store: alert state: %w", err)
		}
	}
	return gone, nil
}

// Alerts lists the latest alerts raised, newest first, at most limit.
func (s *DB) Alerts(ctx context.Context, limit int) ([]Alert, error) {
	out := []Alert{}
	err := s.scanAll(ctx, "alerts", `SELECT id, rule, kind, subject, fired_at, body FROM alerts ORDER BY id DESC LIMIT ?`, []any{limit},
		func(scan func(...any) error) error {
			var a Alert
			var at int64
			if err := scan(&a.ID, &a.Rule, &a.Kind, &a.Subject, &at, &a.Body); err != nil {
				return err
			}
			a.At = fromUnix(at)
			out = append(out, a)
			return nil
		})
	return out, err
}
