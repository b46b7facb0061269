package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/store"
)

var testNow = time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC)

// dmarcXML is a small aggregate report for example.com: 3 messages from
// 192.0.2.1 pass, 2 from 198.51.100.7 fail.
func dmarcXML(id string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>receiver.example</org_name>
    <email>noreply-dmarc@receiver.example</email>
    <report_id>` + id + `</report_id>
    <date_range><begin>1777593600</begin><end>1777679999</end></date_range>
  </report_metadata>
  <policy_published><domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct></policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>3</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><dkim><domain>example.com</domain><result>pass</result></dkim><spf><domain>example.com</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>198.51.100.7</source_ip><count>2</count><policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>spoof.example</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
`
}

// tlsJSON is an RFC 8460 §4 report for example.com with one failure.
func tlsJSON(id string) string {
	return `{
  "organization-name": "Sender Inc.",
  "date-range": {"start-datetime": "2026-05-01T00:00:00Z", "end-datetime": "2026-05-01T23:59:59Z"},
  "contact-info": "tlsrpt@sender.example",
  "report-id": "` + id + `",
  "policies": [{
    "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce"], "policy-domain": "example.com", "mx-host": ["mx1.example.com"]},
    "summary": {"total-successful-session-count": 100, "total-failure-session-count": 2},
    "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "203.0.113.9", "receiving-mx-hostname": "mx1.example.com", "failed-session-count": 2}]
  }]
}`
}

type testServer struct {
	*Server
	db    *store.DB
	dir   string
	token string
	api   string // http://host:port
	https string // base URL of the receiver
	smtp  string // host:port
	logs  *bytes.Buffer
}

// startServer runs a server of cfg on loopback ports over a new store
// with one API token, until the test ends.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := store.Open(ctx, dir, store.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tok, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.TokenCreate(ctx, "test", HashToken(tok), testNow); err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cfg.HTTPS.Listen = "127.0.0.1:0"
	cfg.SMTP.Listen = "127.0.0.1:0"
	logs := &bytes.Buffer{}
	env := diag.Env{Now: time.Now, Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil))}
	s := New(cfg, db, env)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	api, https, smtp := s.Addrs()
	ts := &testServer{Server: s, db: db, dir: dir, token: tok, api: "http://" + api, smtp: smtp, logs: logs}
	if https != "" {
		scheme := "http://"
		if cfg.HTTPS.CertFile != "" {
			scheme = "https://"
		}
		ts.https = scheme + https
	}
	return ts
}

// lockedWriter lets the server's goroutines share a log buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (ts *testServer) get(t *testing.T, path, token string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", ts.api+path, nil)
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestAPIRequiresAToken(t *testing.T) {
	ts := startServer(t, Config{})
	ctx := context.Background()
	revoked, _ := NewToken()
	id, err := ts.db.TokenCreate(ctx, "old", HashToken(revoked), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.db.TokenRevoke(ctx, id, testNow); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no header", "/api/reports", "", 401},
		{"wrong token", "/api/reports", "Bearer mxr_not-a-token", 401},
		{"basic scheme", "/api/reports", "Basic " + ts.token, 401},
		{"empty bearer", "/api/summary", "Bearer ", 401},
		{"revoked token", "/api/reports", "Bearer " + revoked, 401},
		{"unknown path without token", "/api/nothing", "", 401},
		{"valid token", "/api/reports", "Bearer " + ts.token, 200},
		{"scheme is case-insensitive", "/api/quarantine", "bearer " + ts.token, 200},
		{"unknown path with token", "/api/nothing", "Bearer " + ts.token, 404},
		{"health needs none", "/api/health", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, h, body := ts.get(t, tc.path, tc.auth)
			if code != tc.want {
				t.Fatalf("%s: HTTP %d, want %d: %s", tc.path, code, tc.want, body)
			}
			if code == 401 && h.Get("WWW-Authenticate") != `Bearer realm="mxray"` {
				t.Errorf("WWW-Authenticate = %q", h.Get("WWW-Authenticate"))
			}
		})
	}
	toks, _ := ts.db.Tokens(ctx)
	if toks[0].LastUsed.IsZero() {
		t.Error("the token's last use was not recorded")
	}
	if strings.Contains(ts.logs.String(), ts.token) || strings.Contains(ts.logs.String(), revoked) {
		t.Error("a token was logged")
	}
}

func TestTokens(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 {
		t.Errorf("tokens %q, %q", a, b)
	}
	if h := HashToken(a); len(h) != 64 || h == HashToken(b) || strings.Contains(h, a) {
		t.Errorf("hash %q", h)
	}
}

func (ts *testServer) post(t *testing.T, ctype string, body []byte) (int, Receipt) {
	t.Helper()
	return postTo(t, http.DefaultClient, ts.https+"/tlsrpt", ctype, body)
}

func postTo(t *testing.T, c *http.Client, url, ctype string, body []byte) (int, Receipt) {
	t.Helper()
	resp, err := c.Post(url, ctype, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r Receipt
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &r)
	return resp.StatusCode, r
}

func gz(s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.Bytes()
}

func TestHTTPSReceiverAndAPI(t *testing.T) {
	ts := startServer(t, Config{HTTPS: HTTPSConfig{Enabled: true, MaxBytes: 4096}})
	auth := "Bearer " + ts.token

	steps := []struct {
		name, ctype string
		body        []byte
		want        int
		result      string
	}{
		{"json report stored", "application/tlsrpt+json", []byte(tlsJSON("r1")), 201, "imported"},
		{"same report again", "application/tlsrpt+json", []byte(tlsJSON("r1")), 200, "duplicate"},
		{"gzip report", "application/tlsrpt+gzip", gz(tlsJSON("r2")), 201, "imported"},
		{"media type with parameters", "application/tlsrpt+json; charset=utf-8", []byte(tlsJSON("r3")), 201, "imported"},
		{"bad report quarantined", "application/tlsrpt+json", []byte(`{"organization-name": 5}`), 400, "quarantined"},
		{"too large", "application/tlsrpt+json", bytes.Repeat([]byte(" "), 5000), 413, ""},
		{"wrong media type", "application/json", []byte(tlsJSON("r4")), 415, ""},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			code, r := ts.post(t, st.ctype, st.body)
			if code != st.want || r.Result != st.result {
				t.Errorf("HTTP %d %q, want %d %q (%+v)", code, r.Result, st.want, st.result, r)
			}
		})
	}
	resp, err := http.Get(ts.https + "/tlsrpt")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: HTTP %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// The API shows what arrived.
	code, _, body := ts.get(t, "/api/reports?kind=tls&domain=example.com", auth)
	var list Reports
	if err := json.Unmarshal(body, &list); code != 200 || err != nil {
		t.Fatalf("HTTP %d %v: %s", code, err, body)
	}
	var ids []string
	for _, h := range list.Reports {
		ids = append(ids, h.ReportID)
	}
	if diff := cmp.Diff([]string{"r3", "r2", "r1"}, ids); diff != "" {
		t.Errorf("report ids (-want +got):\n%s", diff)
	}
	code, _, body = ts.get(t, "/api/reports?limit=1", auth)
	json.Unmarshal(body, &list)
	if code != 200 || len(list.Reports) != 1 || list.Next != list.Reports[0].ID {
		t.Errorf("limit=1: HTTP %d %s", code, body)
	}

	var rep store.Report
	code, _, body = ts.get(t, "/api/reports/"+itoa(list.Reports[0].ID), auth)
	if err := json.Unmarshal(body, &rep); code != 200 || err != nil || rep.TLS == nil || rep.TLS.Policies[0].Failed != 2 {
		t.Errorf("report: HTTP %d %v: %s", code, err, body)
	}
	var sum store.Summary
	code, _, body = ts.get(t, "/api/summary?domain=example.com&since=2026-04-01", auth)
	if err := json.Unmarshal(body, &sum); code != 200 || err != nil || sum.Totals.TLS != 3 || len(sum.TLS) != 1 || sum.TLS[0].Failed != 6 {
		t.Errorf("summary: HTTP %d %v: %s", code, err, body)
	}
	var q Quarantine
	code, _, body = ts.get(t, "/api/quarantine", auth)
	if err := json.Unmarshal(body, &q); code != 200 || err != nil || len(q.Items) != 1 || !strings.HasPrefix(q.Items[0].Origin, "https:127.0.0.1") {
		t.Errorf("quarantine: HTTP %d %v: %s", code, err, body)
	}

	for _, bad := range []struct {
		path string
		want int
	}{
		{"/api/reports/999", 404},
		{"/api/reports/x", 400},
		{"/api/reports?kind=spam", 400},
		{"/api/reports?limit=0", 400},
		{"/api/reports?since=yesterday", 400},
		{"/api/summary?top=-1", 400},
	} {
		if code, _, body := ts.get(t, bad.path, auth); code != bad.want || !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: HTTP %d, want %d: %s", bad.path, code, bad.want, body)
		}
	}

	// With the store gone, the receiver asks the sender to come back, and
	// health says so.
	ts.db.Close()
	if code, _ := ts.post(t, "application/tlsrpt+json", []byte(tlsJSON("r9"))); code != 503 {
		t.Errorf("store closed: HTTP %d, want 503", code)
	}
	if code, _, body := ts.get(t, "/api/health", ""); code != 503 {
		t.Errorf("health with the store closed: HTTP %d: %s", code, body)
	}
	if code, _, _ := ts.get(t, "/api/reports", auth); code != 503 {
		t.Errorf("API with the store closed: HTTP %d, want 503", code)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestHTTPSReceiverWithTLS(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, leaf.CertPEM, 0o600)
	os.WriteFile(key, leaf.KeyPEM, 0o600)
	ts := startServer(t, Config{HTTPS: HTTPSConfig{Enabled: true, Path: "/.well-known/tlsrpt", CertFile: cert, KeyFile: key}})
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	if code, r := postTo(t, c, ts.https+"/.well-known/tlsrpt", "application/tlsrpt+gzip", gz(tlsJSON("tls1"))); code != 201 {
		t.Errorf("HTTPS POST: %d %+v", code, r)
	}
	if !strings.HasPrefix(ts.https, "https://") {
		t.Errorf("receiver URL %s", ts.https)
	}
}

func TestConfigErrors(t *testing.T) {
	db, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, cfg := range []Config{
		{Listen: "127.0.0.1:0", SMTP: SMTPConfig{Enabled: true, Listen: "127.0.0.1:0"}},
		{Listen: "127.0.0.1:0", HTTPS: HTTPSConfig{Enabled: true, Listen: "127.0.0.1:0", CertFile: "/nonexistent.pem"}},
	} {
		if err := New(cfg, db, diag.Env{}).Listen(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
	s := New(Config{Listen: "127.0.0.1:0"}, db, diag.Env{})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	api, _, _ := s.Addrs()
	if err := New(Config{Listen: api}, db, diag.Env{}).Listen(); !errors.Is(err, ErrListen) {
		t.Errorf("address in use: %v, want ErrListen", err)
	}
	if d := New(Config{}, db, diag.Env{}).Config(); d.Listen != DefaultListen || d.SMTP.Listen != DefaultSMTPListen || d.HTTPS.Listen != DefaultHTTPSListen ||
		!strings.HasPrefix(d.Listen, "127.0.0.1:") || d.HTTPS.Path != "/tlsrpt" || d.SMTP.Enabled || d.HTTPS.Enabled {
		t.Errorf("defaults %+v", d)
	}
}
