package store

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAlertStateAndOutbox(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		rules := []AlertRule{{Name: "fail", Kind: "dmarc_fail_rate", Domain: "Example.com", Threshold: 10, MinVolume: 5, Window: 24 * time.Hour}}
		hooks := []Webhook{{Name: "a", URL: "http://127.0.0.1:1/a", Secret: "s1"}, {Name: "b", URL: "http://127.0.0.1:1/b", Secret: "s2"}}
		if err := db.SetAlertConfig(ctx, rules, hooks); err != nil {
			t.Fatal(err)
		}
		if err := db.SetAlertConfig(ctx, rules, hooks); err != nil {
			t.Fatalf("loading the same config again: %v", err)
		}
		got, err := db.AlertRules(ctx)
		rules[0].Domain = "example.com"
		if diff := cmp.Diff(rules, got); err != nil || diff != "" {
			t.Errorf("rules (-want +got) %v:\n%s", err, diff)
		}

		a := Alert{Rule: "fail", Kind: "dmarc_fail_rate", Subject: "example.com", At: testNow, Body: `{"x":1}`}
		id, fired, err := db.AlertFire(ctx, a)
		if err != nil || !fired || id == 0 {
			t.Fatalf("first fire: %d %v %v", id, fired, err)
		}
		if _, fired, err := db.AlertFire(ctx, a); err != nil || fired {
			t.Errorf("second fire while firing: %v %v, want nothing new", fired, err)
		}
		due, err := db.OutboxDue(ctx, testNow, 10)
		if err != nil || len(due) != 2 || due[0].Webhook != "a" || due[0].Secret != "s1" || due[0].Body != `{"x":1}` {
			t.Fatalf("due %+v %v", due, err)
		}
		db.OutboxDelivered(ctx, due[0].ID, testNow)
		db.OutboxFailed(ctx, due[1].ID, testNow.Add(time.Minute), "HTTP 503")
		if due, _ := db.OutboxDue(ctx, testNow, 10); len(due) != 0 {
			t.Errorf("due before the retry time: %+v", due)
		}
		due, _ = db.OutboxDue(ctx, testNow.Add(time.Minute), 10)
		if len(due) != 1 || due[0].Webhook != "b" || due[0].Attempts != 1 || due[0].LastError != "HTTP 503" {
			t.Errorf("due at the retry time: %+v", due)
		}

		// Resolved, it fires anew.
		if gone, err := db.AlertResolve(ctx, "fail", nil); err != nil || len(gone) != 1 {
			t.Errorf("resolve: %v %v", gone, err)
		}
		if _, fired, _ := db.AlertFire(ctx, a); !fired {
			t.Error("did not fire again after resolving")
		}
		// A webhook removed from the config keeps its entries, not sent.
		db.SetAlertConfig(ctx, rules, hooks[:1])
		all, _ := db.Outbox(ctx)
		due, _ = db.OutboxDue(ctx, testNow.Add(time.Hour), 10)
		if len(all) != 4 || len(due) != 1 || due[0].Webhook != "a" {
			t.Errorf("outbox %d entries, due %+v", len(all), due)
		}
		if al, _ := db.Alerts(ctx, 10); len(al) != 2 {
			t.Errorf("alerts %+v", al)
		}
	})
}

func TestAlertQueries(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		old := synthetic("old", 3) // sources 2001:db8::1, 198.51.0.1, 198.51.0.2
		week := 7 * 24 * time.Hour
		old.Metadata.DateRange.Begin = old.Metadata.DateRange.Begin.Add(-week)
		old.Metadata.DateRange.End = old.Metadata.DateRange.End.Add(-week)
		if _, err := db.SaveDMARC(ctx, old.meta, old.Report); err != nil {
			t.Fatal(err)
		}
		recent := synthetic("recent", 3)
		recent.Records[1].SourceIP = netip.MustParseAddr("203.0.113.5")
		if _, err := db.SaveDMARC(ctx, recent.meta, recent.Report); err != nil {
			t.Fatal(err)
		}
		since := recent.Metadata.DateRange.Begin
		news, err := db.NewSources(ctx, "", since)
		if diff := cmp.Diff([]NewSource{{Domain: "example.com", IP: "203.0.113.5", Messages: 2}}, news); err != nil || diff != "" {
			t.Errorf("new sources (-want +got) %v:\n%s", err, diff)
		}
		if news, _ := db.NewSources(ctx, "", since.Add(-2*week)); len(news) != 0 {
			t.Errorf("without history before the window: %+v", news)
		}
		vol, err := db.DMARCVolumes(ctx, "example.com", since)
		// Records: counts 1, 2, 3; the third fails both.
		if diff := cmp.Diff([]DMARCVolume{{Domain: "example.com", Messages: 6, Pass: 3}}, vol); err != nil || diff != "" {
			t.Errorf("volumes (-want +got) %v:\n%s", err, diff)
		}
		last, err := db.LastImports(ctx, "")
		if err != nil || len(last) != 1 || !last[0].At.Equal(testNow) {
			t.Errorf("last imports %+v %v", last, err)
		}
		db.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "x", Reason: "bad", Raw: []byte("x")})
		if n, err := db.QuarantinedSince(ctx, testNow); n != 1 || err != nil {
			t.Errorf("quarantined since: %d %v", n, err)
		}
		if n, _ := db.QuarantinedSince(ctx, testNow.Add(time.Second)); n != 0 {
			t.Errorf("quarantined since later: %d", n)
		}
	})
}
