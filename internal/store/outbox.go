package store

import (
	"context"
	"fmt"
	"time"
)

// OutboxEntry is one alert waiting for (or delivered to) one webhook.
type OutboxEntry struct {
	ID        int64     `json:"id"`
	Alert     int64     `json:"alert"`
	Webhook   string    `json:"webhook"`
	URL       string    `json:"url,omitempty"` // "" when the webhook is no longer configured
	Secret    string    `json:"-"`
	Body      string    `json:"-"`
	Attempts  int       `json:"attempts"`
	Next      time.Time `json:"next_attempt"`
	Delivered time.Time `json:"delivered_at,omitzero"`
	LastError string    `json:"last_error,omitempty"`
}

const outboxSelect = `SELECT o.id, o.alert, o.webhook, COALESCE(w.url, ''), COALESCE(w.secret, ''), a.body,
	o.attempts, o.next_attempt, o.delivered_at, o.last_error
	FROM webhook_outbox o JOIN alerts a ON a.id = o.alert LEFT JOIN webhooks w ON w.name = o.webhook `

func (s *DB) outbox(ctx context.Context, where string, args ...any) ([]OutboxEntry, error) {
	out := []OutboxEntry{}
	err := s.scanAll(ctx, "outbox", outboxSelect+where, args, func(scan func(...any) error) error {
		var e OutboxEntry
		var next, done int64
		if err := scan(&e.ID, &e.Alert, &e.Webhook, &e.URL, &e.Secret, &e.Body, &e.Attempts, &next, &done, &e.LastError); err != nil {
			return err
		}
		e.Next, e.Delivered = fromUnix(next), fromUnix(done)
		out = append(out, e)
		return nil
	})
	return out, err
}

// OutboxDue returns the pending entries whose next attempt is due at now,
// for webhooks still configured, oldest first, at most limit.
func (s *DB) OutboxDue(ctx context.Context, now time.Time, limit int) ([]OutboxEntry, error) {
	return s.outbox(ctx, `WHERE o.delivered_at = 0 AND o.next_attempt <= ? AND w.url IS NOT NULL ORDER BY o.id LIMIT ?`, unix(now), limit)
}

// Outbox lists every entry, oldest first.
func (s *DB) Outbox(ctx context.Context) ([]OutboxEntry, error) {
	return s.outbox(ctx, `ORDER BY o.id`)
}

// OutboxDelivered marks an entry delivered.
func (s *DB) OutboxDelivered(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE webhook_outbox SET delivered_at = ?, attempts = attempts + 1, last_error = '' WHERE id = ?`,
		unix(at), id); err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}

// OutboxFailed records a failed attempt and when to try again.
func (s *DB) OutboxFailed(ctx context.Context, id int64, next time.Time, reason string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE id = ?`,
		unix(next), reason, id); err != nil {
		return fmt.Errorf("store: outbox: %w", err)
	}
	return nil
}
