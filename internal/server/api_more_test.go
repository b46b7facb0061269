package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/store"
)

// getJSON GETs path with the test token and decodes the answer into v.
func (ts *testServer) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	code, _, body := ts.get(t, path, "Bearer "+ts.token)
	if code == 200 {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v: %s", path, err, body)
		}
	}
	return code
}

func TestAPITLS(t *testing.T) {
	ts := startServer(t, Config{HTTPS: HTTPSConfig{Enabled: true}})
	if code, _ := ts.post(t, "application/tlsrpt+json", []byte(tlsJSON("api-tls-1"))); code != 201 {
		t.Fatalf("POST: HTTP %d", code)
	}
	var got TLS
	if code := ts.getJSON(t, "/api/tls", &got); code != 200 {
		t.Fatalf("HTTP %d", code)
	}
	want := TLS{Reports: 1, Domains: []store.TLSSummary{{Domain: "example.com", Reports: 1, Successful: 100, Failed: 2,
		SuccessRate: 98, PolicyTypes: []string{"sts"},
		Failures: []store.TLSFailureCount{{MX: "mx1.example.com", ResultType: "certificate-expired", Sessions: 2}}}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("/api/tls (-want +got):\n%s", diff)
	}
	var other TLS
	if code := ts.getJSON(t, "/api/tls?domain=other.example", &other); code != 200 || other.Reports != 0 || other.Domains == nil || len(other.Domains) != 0 {
		t.Errorf("other domain: HTTP %d %+v, want no reports and domains []", code, other)
	}
	if code, _, _ := ts.get(t, "/api/tls?since=yesterday", "Bearer "+ts.token); code != 400 {
		t.Errorf("bad since: HTTP %d", code)
	}
}

func TestAPIAlertsAndOutbox(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	var empty Alerts
	if code := ts.getJSON(t, "/api/alerts", &empty); code != 200 || empty.Alerts == nil || len(empty.Alerts) != 0 {
		t.Errorf("no alerts: HTTP %d %+v, want alerts []", code, empty)
	}
	var noHooks Outbox
	if code := ts.getJSON(t, "/api/webhooks/outbox", &noHooks); code != 200 || noHooks.Webhooks == nil || len(noHooks.Webhooks) != 0 {
		t.Errorf("no webhooks: HTTP %d %+v", code, noHooks)
	}

	rule := store.AlertRule{Name: "tls", Kind: "tls_failures", Threshold: 1, Window: time.Hour}
	hooks := []store.Webhook{{Name: "ops", URL: "https://hooks.example/x", Secret: "0123456789abcdef0123"},
		{Name: "pager", URL: "https://pager.example/x", Secret: "0123456789abcdef0123"}}
	if err := ts.db.SetAlertConfig(ctx, []store.AlertRule{rule}, hooks); err != nil {
		t.Fatal(err)
	}
	for i, subj := range []string{"example.com", "example.org"} {
		body := `{"rule":"tls","subject":"` + subj + `"}`
		if _, fired, err := ts.db.AlertFire(ctx, store.Alert{Rule: "tls", Kind: "tls_failures", Subject: subj,
			At: testNow.Add(time.Duration(i) * time.Minute), Body: body}); err != nil || !fired {
			t.Fatalf("fire %s: %v %v", subj, fired, err)
		}
	}
	var got Alerts
	if code := ts.getJSON(t, "/api/alerts?limit=5", &got); code != 200 || len(got.Alerts) != 2 {
		t.Fatalf("alerts: HTTP %d %+v", code, got)
	}
	first := got.Alerts[0]
	if first.Subject != "example.org" || first.Rule != "tls" || !first.At.Equal(testNow.Add(time.Minute)) ||
		compact(first.Detail) != `{"rule":"tls","subject":"example.org"}` {
		t.Errorf("newest alert %+v detail %s", first, first.Detail)
	}
	var one Alerts
	if code := ts.getJSON(t, "/api/alerts?limit=1", &one); code != 200 || len(one.Alerts) != 1 {
		t.Errorf("limit=1: HTTP %d, %d alerts", code, len(one.Alerts))
	}
	for _, bad := range []string{"0", "1001", "x"} {
		if code, _, _ := ts.get(t, "/api/alerts?limit="+bad, "Bearer "+ts.token); code != 400 {
			t.Errorf("limit=%s: HTTP %d, want 400", bad, code)
		}
	}

	// Each alert queued one entry per webhook; deliver one of ops's.
	entries, err := ts.db.Outbox(ctx)
	if err != nil || len(entries) != 4 {
		t.Fatalf("outbox: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if e.Webhook == "ops" {
			if err := ts.db.OutboxDelivered(ctx, e.ID, testNow); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	var ob Outbox
	if code := ts.getJSON(t, "/api/webhooks/outbox", &ob); code != 200 {
		t.Fatalf("outbox: HTTP %d", code)
	}
	type row struct {
		Name               string
		Configured         bool
		Pending, Delivered int64
	}
	var rows []row
	for _, w := range ob.Webhooks {
		rows = append(rows, row{w.Webhook, w.Configured, w.Pending, w.Delivered})
	}
	if diff := cmp.Diff([]row{{"ops", true, 1, 1}, {"pager", true, 2, 0}}, rows); diff != "" {
		t.Errorf("outbox (-want +got):\n%s", diff)
	}
	if code, _, _ := ts.get(t, "/api/webhooks/outbox", ""); code != 401 {
		t.Errorf("outbox without a token: HTTP %d", code)
	}
}

// With CertFile and KeyFile the API listener speaks HTTPS only.
func TestAPIOverTLS(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := leaf.WriteFiles(t.TempDir(), "api")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, Config{CertFile: cert, KeyFile: key})
	if !ts.TLS() {
		t.Error("TLS() = false")
	}
	api := "https://" + ts.api[len("http://"):]
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	resp, err := c.Get(api + "/api/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("health over TLS: HTTP %d %s", resp.StatusCode, body)
	}
	if resp, err := http.Get(ts.api + "/api/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on the TLS listener")
		}
	}
}

func TestAPITLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM"), 0o600)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"cert only", Config{CertFile: junk}, "needs both"},
		{"missing cert", Config{CertFile: missing, KeyFile: junk}, missing},
		{"missing key", Config{CertFile: junk, KeyFile: missing}, missing},
		{"junk", Config{CertFile: junk, KeyFile: junk}, junk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Listen = "127.0.0.1:0"
			s := New(tc.cfg, nil, diag.Env{})
			err := s.Listen()
			if err == nil {
				s.Close()
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Listen: %v, want ErrConfig naming %q", err, tc.want)
			}
		})
	}
}

func compact(b []byte) string {
	var out bytes.Buffer
	json.Compact(&out, b)
	return out.String()
}
