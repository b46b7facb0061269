package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
)

// day 0 of the tests' reports: 2026-05-01.
var day0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// dmarcXML is an aggregate report for domain over day d; sources maps an
// IP to "pass" or "fail" with a count of 1 + index.
func dmarcXML(id, domain string, day int, recs ...string) string {
	begin := day0.AddDate(0, 0, day)
	var b strings.Builder
	fmt.Fprintf(&b, `<feedback><report_metadata><org_name>rx.example</org_name><email>d@rx.example</email><report_id>%s</report_id>
<date_range><begin>%d</begin><end>%d</end></date_range></report_metadata>
<policy_published><domain>%s</domain><p>reject</p></policy_published>`, id, begin.Unix(), begin.Add(24*time.Hour-time.Second).Unix(), domain)
	for _, r := range recs {
		ip, res, _ := strings.Cut(r, "=")
		res, n, _ := strings.Cut(res, "*")
		fmt.Fprintf(&b, `<record><row><source_ip>%s</source_ip><count>%s</count><policy_evaluated><disposition>none</disposition><dkim>%s</dkim><spf>%s</spf></policy_evaluated></row>
<identifiers><header_from>%s</header_from></identifiers><auth_results><spf><domain>%s</domain><result>%s</result></spf></auth_results></record>`, ip, n, res, res, domain, domain, res)
	}
	b.WriteString("</feedback>")
	return b.String()
}

func tlsJSON(id, domain string, failed int) string {
	return fmt.Sprintf(`{"organization-name":"s","date-range":{"start-datetime":"2026-05-02T00:00:00Z","end-datetime":"2026-05-02T23:59:59Z"},
"contact-info":"t@s.example","report-id":%q,"policies":[{"policy":{"policy-type":"sts","policy-domain":%q},
"summary":{"total-successful-session-count":10,"total-failure-session-count":%d}}]}`, id, domain, failed)
}

type world struct {
	db    *store.DB
	dir   string
	clock *clock
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{dir: filepath.Join(t.TempDir(), "data"), clock: &clock{t: day0.AddDate(0, 0, 3)}}
	w.open(t)
	return w
}

func (w *world) open(t *testing.T) {
	t.Helper()
	db, err := store.Open(context.Background(), w.dir, store.Options{Now: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.db = db
}

func (w *world) add(t *testing.T, blobs ...string) {
	t.Helper()
	im := &ingest.Importer{Store: w.db, Now: w.clock.Now, Workers: 1}
	_, err := im.Import(context.Background(), func(ctx context.Context, fn func(ingest.Blob) error) error {
		for i, b := range blobs {
			if err := fn(ingest.Blob{Origin: fmt.Sprint("test#", i), Data: []byte(b)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (w *world) check(t *testing.T, rules ...store.AlertRule) Result {
	t.Helper()
	if err := w.db.SetAlertConfig(context.Background(), rules, nil); err != nil {
		t.Fatal(err)
	}
	ev := &Evaluator{DB: w.db, Now: w.clock.Now}
	res, err := ev.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func subjects(l []Alert) []string {
	var out []string
	for _, a := range l {
		out = append(out, a.Rule+": "+a.Subject)
	}
	return out
}

func TestRules(t *testing.T) {
	day := 24 * time.Hour
	w := newWorld(t)
	// example.com: day 0 from 192.0.2.1; day 2 also from 203.0.113.9,
	// 2 of 5 messages failing. example.org: day 0 only.
	w.add(t,
		dmarcXML("c0", "example.com", 0, "192.0.2.1=pass*4"),
		dmarcXML("c2", "example.com", 2, "192.0.2.1=pass*3", "203.0.113.9=fail*2"),
		dmarcXML("o0", "example.org", 0, "192.0.2.8=pass*9"),
		tlsJSON("t1", "example.com", 3),
		"not a report", "nor this",
	)
	for _, tc := range []struct {
		name string
		rule store.AlertRule
		want []string
	}{
		{"fail rate over threshold", store.AlertRule{Name: "r", Kind: "dmarc_fail_rate", Threshold: 10, MinVolume: 5, Window: 2 * day}, []string{"r: example.com"}},
		{"fail rate under threshold", store.AlertRule{Name: "r", Kind: "dmarc_fail_rate", Threshold: 40, Window: 2 * day}, nil},
		{"fail rate below min volume", store.AlertRule{Name: "r", Kind: "dmarc_fail_rate", Threshold: 10, MinVolume: 6, Window: 2 * day}, nil},
		{"fail rate other domain", store.AlertRule{Name: "r", Kind: "dmarc_fail_rate", Domain: "example.org", Threshold: 10, Window: 2 * day}, nil},
		{"new source", store.AlertRule{Name: "n", Kind: "new_source", Window: 2 * day}, []string{"n: example.com 203.0.113.9"}},
		{"no history, nothing new", store.AlertRule{Name: "n", Kind: "new_source", Window: 10 * day}, nil},
		{"tls failures", store.AlertRule{Name: "t", Kind: "tls_failures", Threshold: 2, Window: 2 * day}, []string{"t: example.com"}},
		{"tls failures at threshold", store.AlertRule{Name: "t", Kind: "tls_failures", Threshold: 3, Window: 2 * day}, nil},
		{"reports flowing", store.AlertRule{Name: "s", Kind: "reports_stopped", Window: day}, nil},
		{"quarantine growing", store.AlertRule{Name: "q", Kind: "quarantine_growth", Threshold: 1, Window: day}, []string{"q: quarantine"}},
		{"quarantine steady", store.AlertRule{Name: "q", Kind: "quarantine_growth", Threshold: 2, Window: day}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Validate(tc.rule); err != nil {
				t.Fatal(err)
			}
			res := w.check(t, tc.rule)
			if diff := cmp.Diff(tc.want, subjects(res.Firing)); diff != "" {
				t.Errorf("firing (-want +got):\n%s", diff)
			}
			// Reset the state for the next case.
			w.check(t)
		})
	}

	// Reports stop: two days later nothing arrived.
	w.clock.Set(w.clock.Now().Add(2 * day))
	stopped := store.AlertRule{Name: "s", Kind: "reports_stopped", Window: day}
	res := w.check(t, stopped)
	if diff := cmp.Diff([]string{"s: example.com", "s: example.org"}, subjects(res.Fired)); diff != "" {
		t.Errorf("stopped (-want +got):\n%s", diff)
	}
	if res.Fired[0].Evidence["last_report_at"] == nil || !strings.Contains(res.Fired[0].Message, "no report arrived for 48h") {
		t.Errorf("alert %+v", res.Fired[0])
	}
	// Still firing: not raised again. Then a report arrives: resolved.
	if res := w.check(t, stopped); len(res.Fired) != 0 || len(res.Firing) != 2 {
		t.Errorf("second check fired %v", subjects(res.Fired))
	}
	w.add(t, dmarcXML("o5", "example.org", 4, "192.0.2.8=pass*1"))
	res = w.check(t, stopped)
	if diff := cmp.Diff([]string{"s: example.org"}, res.Resolved); diff != "" {
		t.Errorf("resolved (-want +got):\n%s", diff)
	}
	if al, _ := w.db.Alerts(context.Background(), 100); len(al) != 6 {
		t.Errorf("%d alerts stored, want 6", len(al))
	}
}

func TestValidate(t *testing.T) {
	good := store.AlertRule{Name: "x", Kind: "dmarc_fail_rate", Threshold: 5, Window: time.Hour}
	if err := Validate(good); err != nil {
		t.Fatal(err)
	}
	for _, mod := range []func(*store.AlertRule){
		func(r *store.AlertRule) { r.Name = "" },
		func(r *store.AlertRule) { r.Kind = "dmarc" },
		func(r *store.AlertRule) { r.Window = 0 },
		func(r *store.AlertRule) { r.Threshold = 100 },
		func(r *store.AlertRule) { r.Threshold = -1 },
	} {
		r := good
		mod(&r)
		if err := Validate(r); !errors.Is(err, ErrRule) {
			t.Errorf("%+v: %v, want ErrRule", r, err)
		}
	}
	for _, h := range []store.Webhook{
		{Name: "", URL: "http://x", Secret: "0123456789abcdef"},
		{Name: "a", URL: "ftp://x", Secret: "0123456789abcdef"},
		{Name: "a", URL: "https://x/hook", Secret: "short"},
	} {
		if err := ValidateWebhook(h); !errors.Is(err, ErrWebhook) {
			t.Errorf("%+v: %v, want ErrWebhook", h, err)
		}
	}
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for i := 1; i <= 9; i++ {
		got = append(got, Backoff(i, 30*time.Second, time.Hour))
	}
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// hook is a webhook receiver on 127.0.0.1 that is down until up is set.
type hook struct {
	srv      *httptest.Server
	up       atomic.Bool
	mu       sync.Mutex
	received []Alert
	bad      int // bodies whose signature did not verify
}

const secret = "s3cret-s3cret-s3cret"

func startHook(t *testing.T) *hook {
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.up.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !Verify(secret, body, r.Header.Get(SignatureHeader)) || r.Header.Get("X-Mxray-Delivery") == "" {
			h.bad++
			http.Error(w, "bad signature", http.StatusForbidden)
			return
		}
		var a Alert
		json.Unmarshal(body, &a)
		h.received = append(h.received, a)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return subjects(h.received), h.bad
}

func TestWebhookSurvivesOutageAndRestart(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	h := startHook(t)
	// A webhook whose server is gone: connection refused.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	rule := store.AlertRule{Name: "q", Kind: "quarantine_growth", Threshold: 0, Window: time.Hour}
	hooks := []store.Webhook{{Name: "ops", URL: h.srv.URL + "/hook", Secret: secret}, {Name: "gone", URL: closed, Secret: secret}}
	if err := w.db.SetAlertConfig(ctx, []store.AlertRule{rule}, hooks); err != nil {
		t.Fatal(err)
	}
	w.add(t, "garbage")
	ev := &Evaluator{DB: w.db, Now: w.clock.Now}
	if res, err := ev.Check(ctx); err != nil || len(res.Fired) != 1 {
		t.Fatalf("check: %+v %v", res, err)
	}
	n := &Notifier{DB: w.db, Now: w.clock.Now, Client: h.srv.Client()}
	d, err := n.Deliver(ctx)
	if err != nil || d != (Delivery{Failed: 2}) {
		t.Fatalf("while down: %+v %v", d, err)
	}
	// Not due again before the backoff.
	if d, _ := n.Deliver(ctx); d != (Delivery{}) {
		t.Errorf("retried before the backoff: %+v", d)
	}
	ob := outbox(t, w.db)
	if len(ob) != 2 || ob["ops"].LastError != "HTTP 503" || !strings.Contains(ob["gone"].LastError, "refused") {
		t.Errorf("outbox %+v", ob)
	}

	// Restart: a new store handle and a new notifier on the same file;
	// the webhook is back up.
	w.db.Close()
	w.open(t)
	h.up.Store(true)
	w.clock.Set(w.clock.Now().Add(31 * time.Second))
	n = &Notifier{DB: w.db, Now: w.clock.Now, Client: h.srv.Client()}
	if d, err := n.Deliver(ctx); err != nil || d != (Delivery{Delivered: 1, Failed: 1}) {
		t.Errorf("after restart: %+v %v", d, err)
	}
	w.clock.Set(w.clock.Now().Add(2 * time.Hour))
	n.Deliver(ctx)
	n.Deliver(ctx)
	got, bad := h.got()
	if diff := cmp.Diff([]string{"q: quarantine"}, got); diff != "" || bad != 0 {
		t.Errorf("received (-want +got), %d bad signatures:\n%s", bad, diff)
	}
	ob = outbox(t, w.db)
	if ob["ops"].Delivered.IsZero() || ob["ops"].Attempts != 2 || !ob["gone"].Delivered.IsZero() || ob["gone"].Attempts != 3 {
		t.Errorf("outbox after delivery %+v", ob)
	}
}

// outbox returns the outbox entries by webhook.
func outbox(t *testing.T, db *store.DB) map[string]store.OutboxEntry {
	t.Helper()
	l, err := db.Outbox(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]store.OutboxEntry{}
	for _, e := range l {
		m[e.Webhook] = e
	}
	return m
}

func TestSignature(t *testing.T) {
	body := []byte(`{"type":"alert"}`)
	// The value any receiver computes: HMAC-SHA256(key, body), hex.
	// echo -n '{"type":"alert"}' | openssl dgst -sha256 -hmac key
	if got, want := Sign("key", body), "sha256=bcfc0141428e073a7b0db1c0faf0643a475278dd7c504ab4173da86712d83b04"; got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if !Verify("key", body, Sign("key", body)) || Verify("other", body, Sign("key", body)) || Verify("key", append(body, ' '), Sign("key", body)) {
		t.Error("Verify accepts what it should not, or refuses its own signature")
	}
}
