package web

import (
	"context"
	"net/http"
	"time"

	"github.com/mxray/mxray/internal/store"
)

// The alert pages: the alerts raised with the delivery status of their
// webhooks (this file), and the settings page where the rules and
// webhooks are edited (settings.go).

// AlertStore is what the alert and settings pages read and write of the
// store: *store.DB.
type AlertStore interface {
	Alerts(ctx context.Context, limit int) ([]store.Alert, error)
	OutboxStatus(ctx context.Context) ([]store.WebhookStatus, error)
	OutboxRecent(ctx context.Context, limit int) ([]store.OutboxEntry, error)
	AlertRules(ctx context.Context) ([]store.AlertRule, error)
	Webhooks(ctx context.Context) ([]store.Webhook, error)
	AlertRulePut(ctx context.Context, old string, r store.AlertRule) error
	AlertRuleDelete(ctx context.Context, name string) error
	WebhookPut(ctx context.Context, old string, h store.Webhook) error
	WebhookDelete(ctx context.Context, name string) error
}

const (
	// alertsShown bounds the alert history listed.
	alertsShown = 100
	// deliveriesShown bounds the webhook deliveries listed.
	deliveriesShown = 50
)

// alertsPage is the data of the alert page.
type alertsPage struct {
	NoStore    bool
	Alerts     []store.Alert
	Status     []store.WebhookStatus
	Deliveries []deliveryRow
}

// deliveryRow is one outbox entry, without its secret or body.
type deliveryRow struct {
	ID, Alert int64
	Webhook   string
	Attempts  int
	Next      time.Time
	Delivered time.Time
	LastError string
}

func (d deliveryRow) State() string {
	switch {
	case !d.Delivered.IsZero():
		return "delivered"
	case d.Attempts > 0:
		return "failing"
	}
	return "pending"
}

func (s *server) alertsPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	ap := &alertsPage{NoStore: s.cfg.Alerts == nil}
	p := page{Title: "Alerts", Nav: "/alerts", User: sess.Admin, CSRF: sess.CSRF, Data: ap}
	if !ap.NoStore {
		ctx := r.Context()
		var err error
		if ap.Alerts, err = s.cfg.Alerts.Alerts(ctx, alertsShown); err != nil {
			s.storeError(w, err)
			return
		}
		if ap.Status, err = s.cfg.Alerts.OutboxStatus(ctx); err != nil {
			s.storeError(w, err)
			return
		}
		entries, err := s.cfg.Alerts.OutboxRecent(ctx, deliveriesShown)
		if err != nil {
			s.storeError(w, err)
			return
		}
		for _, e := range entries {
			ap.Deliveries = append(ap.Deliveries, deliveryRow{ID: e.ID, Alert: e.Alert, Webhook: e.Webhook, Attempts: e.Attempts,
				Next: e.Next, Delivered: e.Delivered, LastError: e.LastError})
		}
	}
	s.render(w, http.StatusOK, "alerts", p)
}
