package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The alert rules and webhooks edited one at a time (the web admin's
// settings page). SetAlertConfig, run when `mxray serve` starts, still
// replaces them all with the config file's.

// ErrDuplicate: a rule or webhook of that name exists already.
var ErrDuplicate = errors.New("store: name already in use")

// AlertRulePut adds r when old is "", or replaces the rule named old
// with r (possibly renamed). It fails with ErrDuplicate when r.Name is
// taken by another rule, and with ErrNotFound when old does not exist.
// A rule renamed or changed starts with no subject firing.
func (s *DB) AlertRulePut(ctx context.Context, old string, r AlertRule) error {
	return s.settingsTx(ctx, "alert rule", func(tx *sqlTx) error {
		if err := checkPut(ctx, tx, "alert_rules", old, r.Name); err != nil {
			return err
		}
		if old != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE name = ?`, old); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM alert_state WHERE rule = ?`, old); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (name, kind, domain, threshold, min_volume, window_s) VALUES (?, ?, ?, ?, ?, ?)`,
			r.Name, r.Kind, strings.ToLower(r.Domain), r.Threshold, r.MinVolume, int64(r.Window/time.Second))
		return err
	})
}

// AlertRuleDelete deletes a rule and its firing state; ErrNotFound when
// there is none of that name. The alerts it raised stay.
func (s *DB) AlertRuleDelete(ctx context.Context, name string) error {
	return s.settingsTx(ctx, "alert rule", func(tx *sqlTx) error {
		if err := deleteNamed(ctx, tx, "alert_rules", name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM alert_state WHERE rule = ?`, name)
		return err
	})
}

// WebhookPut adds h when old is "", or replaces the webhook named old
// with h (possibly renamed: its outbox entries follow the new name).
// When replacing, an empty h.Secret keeps the secret held. Errors as
// AlertRulePut's.
func (s *DB) WebhookPut(ctx context.Context, old string, h Webhook) error {
	return s.settingsTx(ctx, "webhook", func(tx *sqlTx) error {
		if err := checkPut(ctx, tx, "webhooks", old, h.Name); err != nil {
			return err
		}
		if old != "" {
			if h.Secret == "" {
				if err := tx.QueryRowContext(ctx, `SELECT secret FROM webhooks WHERE name = ?`, old).Scan(&h.Secret); err != nil {
					return err
				}
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE name = ?`, old); err != nil {
				return err
			}
			if old != h.Name {
				if _, err := tx.ExecContext(ctx, `UPDATE webhook_outbox SET webhook = ? WHERE webhook = ?`, h.Name, old); err != nil {
					return err
				}
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (name, url, secret) VALUES (?, ?, ?)`, h.Name, h.URL, h.Secret)
		return err
	})
}

// WebhookDelete deletes a webhook; ErrNotFound when there is none of
// that name. Its pending outbox entries stay, not sent, as when a
// webhook leaves the config file.
func (s *DB) WebhookDelete(ctx context.Context, name string) error {
	return s.settingsTx(ctx, "webhook", func(tx *sqlTx) error { return deleteNamed(ctx, tx, "webhooks", name) })
}

func (s *DB) settingsTx(ctx context.Context, what string, fn func(tx *sqlTx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrDuplicate) {
			return err
		}
		return fmt.Errorf("store: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// checkPut: old must exist (when set), and name must be free unless it
// is old. table is a constant of this file.
func checkPut(ctx context.Context, tx *sqlTx, table, old, name string) error {
	exists := func(n string) (bool, error) {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM `+table+` WHERE name = ?`, n).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return false, nil
		}
		return err == nil, err
	}
	if old != "" {
		ok, err := exists(old)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: %q", ErrNotFound, old)
		}
	}
	if name != old {
		taken, err := exists(name)
		if err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("%w: %q", ErrDuplicate, name)
		}
	}
	return nil
}

func deleteNamed(ctx context.Context, tx *sqlTx, table, name string) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}
