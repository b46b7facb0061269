package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSettingsRulesAndWebhooks(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		r := AlertRule{Name: "fail", Kind: "dmarc_fail_rate", Domain: "Example.COM", Threshold: 5, MinVolume: 10, Window: time.Hour}
		if err := db.AlertRulePut(ctx, "", r); err != nil {
			t.Fatal(err)
		}
		if err := db.AlertRulePut(ctx, "", r); !errors.Is(err, ErrDuplicate) {
			t.Errorf("adding twice: %v, want ErrDuplicate", err)
		}
		if err := db.AlertRulePut(ctx, "nope", r); !errors.Is(err, ErrNotFound) {
			t.Errorf("editing a missing rule: %v, want ErrNotFound", err)
		}
		other := AlertRule{Name: "stopped", Kind: "reports_stopped", Threshold: 0, Window: 48 * time.Hour}
		if err := db.AlertRulePut(ctx, "", other); err != nil {
			t.Fatal(err)
		}
		if err := db.AlertRulePut(ctx, "stopped", AlertRule{Name: "fail", Kind: "new_source", Window: time.Hour}); !errors.Is(err, ErrDuplicate) {
			t.Errorf("renaming onto another rule: %v, want ErrDuplicate", err)
		}
		// Renamed and changed; its firing state goes.
		if _, fired, err := db.AlertFire(ctx, Alert{Rule: "fail", Kind: r.Kind, Subject: "example.com", At: testNow}); err != nil || !fired {
			t.Fatal(fired, err)
		}
		r2 := AlertRule{Name: "fail-rate", Kind: "dmarc_fail_rate", Domain: "example.org", Threshold: 7.5, MinVolume: 1, Window: 2 * time.Hour}
		if err := db.AlertRulePut(ctx, "fail", r2); err != nil {
			t.Fatal(err)
		}
		got, err := db.AlertRules(ctx)
		if diff := cmp.Diff([]AlertRule{r2, other}, got); err != nil || diff != "" {
			t.Errorf("rules (-want +got) %v:\n%s", err, diff)
		}
		if _, fired, _ := db.AlertFire(ctx, Alert{Rule: "fail", Kind: r.Kind, Subject: "example.com", At: testNow}); !fired {
			t.Error("the old rule's firing state survived the edit")
		}
		if err := db.AlertRuleDelete(ctx, "stopped"); err != nil {
			t.Fatal(err)
		}
		if err := db.AlertRuleDelete(ctx, "stopped"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
		if got, _ := db.AlertRules(ctx); len(got) != 1 || got[0].Name != "fail-rate" {
			t.Errorf("after delete: %+v", got)
		}

		h := Webhook{Name: "ops", URL: "https://hooks.example/a", Secret: "0123456789abcdef"}
		if err := db.WebhookPut(ctx, "", h); err != nil {
			t.Fatal(err)
		}
		if err := db.WebhookPut(ctx, "", h); !errors.Is(err, ErrDuplicate) {
			t.Errorf("adding twice: %v", err)
		}
		// An alert queued for ops follows the rename.
		if _, _, err := db.AlertFire(ctx, Alert{Rule: "fail-rate", Kind: r.Kind, Subject: "example.org", At: testNow}); err != nil {
			t.Fatal(err)
		}
		// Edited with no secret: the old one stays.
		if err := db.WebhookPut(ctx, "ops", Webhook{Name: "ops2", URL: "https://hooks.example/b"}); err != nil {
			t.Fatal(err)
		}
		hooks, err := db.Webhooks(ctx)
		if want := []Webhook{{Name: "ops2", URL: "https://hooks.example/b", Secret: "0123456789abcdef"}}; err != nil || !cmp.Equal(want, hooks) {
			t.Errorf("webhooks %+v %v, want %+v", hooks, err, want)
		}
		if err := db.WebhookPut(ctx, "ops2", Webhook{Name: "ops2", URL: "https://hooks.example/b", Secret: "fedcba9876543210"}); err != nil {
			t.Fatal(err)
		}
		if hooks, _ := db.Webhooks(ctx); len(hooks) != 1 || hooks[0].Secret != "fedcba9876543210" {
			t.Errorf("new secret not kept: %+v", hooks)
		}
		ob, _ := db.Outbox(ctx)
		if len(ob) != 1 || ob[0].Webhook != "ops2" || ob[0].URL != "https://hooks.example/b" {
			t.Errorf("outbox after rename %+v", ob)
		}
		if err := db.WebhookDelete(ctx, "ops2"); err != nil {
			t.Fatal(err)
		}
		if err := db.WebhookDelete(ctx, "ops2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleting twice: %v", err)
		}
	})
}

func TestOutboxStatus(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		hooks := []Webhook{{Name: "a", URL: "http://127.0.0.1:1/a", Secret: "s"}, {Name: "b", URL: "http://127.0.0.1:1/b", Secret: "s"}}
		if err := db.SetAlertConfig(ctx, []AlertRule{{Name: "r", Kind: "new_source", Window: time.Hour}}, hooks); err != nil {
			t.Fatal(err)
		}
		if st, err := db.OutboxStatus(ctx); err != nil || len(st) != 0 {
			t.Fatalf("empty outbox: %+v %v", st, err)
		}
		for i, subj := range []string{"x", "y"} {
			if _, _, err := db.AlertFire(ctx, Alert{Rule: "r", Kind: "new_source", Subject: subj, At: testNow.Add(time.Duration(i) * time.Minute), Body: "{}"}); err != nil {
				t.Fatal(err)
			}
		}
		all, _ := db.Outbox(ctx) // 1:a 2:b (alert x), 3:a 4:b (alert y)
		db.OutboxFailed(ctx, all[0].ID, testNow.Add(time.Minute), "HTTP 500")
		db.OutboxDelivered(ctx, all[0].ID, testNow.Add(time.Minute))
		db.OutboxFailed(ctx, all[1].ID, testNow.Add(10*time.Minute), "HTTP 503")
		db.OutboxFailed(ctx, all[1].ID, testNow.Add(20*time.Minute), "HTTP 503")
		db.OutboxDelivered(ctx, all[2].ID, testNow.Add(time.Minute))
		db.SetAlertConfig(ctx, nil, hooks[:1]) // b leaves the config
		got, err := db.OutboxStatus(ctx)
		want := []WebhookStatus{
			{Webhook: "a", Configured: true, Delivered: 2, FailedAttempts: 1},
			{Webhook: "b", Pending: 2, FailedAttempts: 2, NextRetry: testNow.Add(time.Minute)},
		}
		if diff := cmp.Diff(want, got); err != nil || diff != "" {
			t.Errorf("status (-want +got) %v:\n%s", err, diff)
		}
		recent, err := db.OutboxRecent(ctx, 3)
		if err != nil || len(recent) != 3 || recent[0].ID != all[3].ID || recent[2].LastError != "HTTP 503" || recent[2].Attempts != 2 {
			t.Errorf("recent %+v %v", recent, err)
		}
	})
}
