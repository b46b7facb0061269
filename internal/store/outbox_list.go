package store

import (
	"context"
	"time"
)

// OutboxRecent lists the latest outbox entries, newest first, at most
// limit (100 when limit <= 0), for the web admin's delivery status.
func (s *DB) OutboxRecent(ctx context.Context, limit int) ([]OutboxEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	return s.outbox(ctx, `ORDER BY o.id DESC LIMIT ?`, limit)
}

// WebhookStatus sums up the outbox of one webhook name.
type WebhookStatus struct {
	Webhook    string `json:"webhook"`
	Configured bool   `json:"configured"` // a webhook of that name exists now
	Pending    int64  `json:"pending"`    // entries not delivered yet
	Delivered  int64  `json:"delivered"`
	// FailedAttempts counts the attempts that failed, over every entry.
	FailedAttempts int64 `json:"failed_attempts"`
	// NextRetry is the earliest next attempt of a pending entry; zero
	// when nothing is pending.
	NextRetry time.Time `json:"next_retry,omitzero"`
}

// OutboxStatus sums up the outbox per webhook name, by name, including
// names no longer configured that still have entries.
func (s *DB) OutboxStatus(ctx context.Context) ([]WebhookStatus, error) {
	out := []WebhookStatus{}
	err := s.scanAll(ctx, "outbox status", `SELECT o.webhook, MAX(CASE WHEN w.name IS NULL THEN 0 ELSE 1 END),
		SUM(CASE WHEN o.delivered_at = 0 THEN 1 ELSE 0 END), SUM(CASE WHEN o.delivered_at = 0 THEN 0 ELSE 1 END),
		SUM(CASE WHEN o.delivered_at = 0 THEN o.attempts ELSE o.attempts - 1 END),
		COALESCE(MIN(CASE WHEN o.delivered_at = 0 THEN o.next_attempt END), 0)
		FROM webhook_outbox o LEFT JOIN webhooks w ON w.name = o.webhook
		GROUP BY o.webhook ORDER BY o.webhook{{BINARY}}`, nil, func(scan func(...any) error) error {
		var st WebhookStatus
		var conf, next int64
		if err := scan(&st.Webhook, &conf, &st.Pending, &st.Delivered, &st.FailedAttempts, &next); err != nil {
			return err
		}
		st.Configured, st.NextRetry = conf == 1, fromUnix(next)
		out = append(out, st)
		return nil
	})
	return out, err
}
