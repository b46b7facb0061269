package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/alert"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/testutil"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestTokenCommands(t *testing.T) {
	data := t.TempDir()
	out, errOut, code := cli(t, "token", "create", "--name", "ci", "--data", data)
	tok := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(tok, "mxr_") || !strings.Contains(errOut, "shown only this once") {
		t.Fatalf("create: exit %d, %q, %q", code, out, errOut)
	}
	out, _, code = cli(t, "token", "create", "--json", "--data", data)
	res := checkEnvelope(t, out, "token create")
	if code != 0 || res["id"] != float64(2) || !strings.HasPrefix(res["token"].(string), "mxr_") {
		t.Errorf("create --json: exit %d %v", code, res)
	}
	if out, _, code := cli(t, "token", "revoke", "1", "--data", data); code != 0 || out != "Token 1 revoked.\n" {
		t.Errorf("revoke: exit %d %q", code, out)
	}
	if _, errOut, code := cli(t, "token", "revoke", "7", "--data", data); code != 2 || !strings.Contains(errOut, "no token 7") {
		t.Errorf("revoke unknown: exit %d %q", code, errOut)
	}
	if _, _, code := cli(t, "token", "revoke", "x", "--data", data); code != 2 {
		t.Errorf("revoke x: exit %d", code)
	}
	out, _, code = cli(t, "token", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "ci") || !strings.Contains(out, "revoked") || !strings.Contains(out, "active") || strings.Contains(out, tok) {
		t.Errorf("list: exit %d\n%s", code, out)
	}
	out, _, _ = cli(t, "token", "list", "--json", "--data", data)
	checkEnvelope(t, out, "token list")
	if strings.Contains(out, "mxr_") || strings.Contains(out, "hash") {
		t.Errorf("list --json shows a secret: %s", out)
	}
}

func writeConfig(t *testing.T, data, text string) string {
	t.Helper()
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(data, "mxray.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestServeConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, toml, want string }{
		{"unknown receiver key", "[receiver.smtp]\nenabled = true\nrecipient = [\"a@b\"]\n", "unknown key(s): receiver.smtp.recipient"},
		{"unknown web key", "[web]\nport = 80\n", "unknown key(s): web.port"},
		{"bad alert kind", "[[alert]]\nname = \"x\"\nkind = \"dmarc\"\nwindow = \"1h\"\n", "invalid rule"},
		{"bad webhook", "[[webhook]]\nname = \"x\"\nurl = \"http://127.0.0.1/\"\nsecret = \"short\"\n", "invalid webhook"},
		{"smtp without recipients", "[web]\nlisten = \"127.0.0.1:0\"\n[receiver.smtp]\nenabled = true\nlisten = \"127.0.0.1:0\"\n", "at least one recipient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			writeConfig(t, data, tc.toml)
			_, errOut, code := cli(t, "serve", "--data", data, "--timeout", "5s")
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}

// TestServe runs `mxray serve` with the HTTPS receiver, a rule and a
// webhook: a TLS report posted to the receiver shows in the API and
// raises an alert that reaches the webhook, signed.
func TestServe(t *testing.T) {
	var mu sync.Mutex
	var hooks []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if alert.Verify("0123456789abcdef0123", body, r.Header.Get(alert.SignatureHeader)) {
			hooks = append(hooks, string(body))
		}
	}))
	defer hook.Close()

	data := t.TempDir()
	api, recv := freePort(t), freePort(t)
	writeConfig(t, data, fmt.Sprintf(`[web]
listen = %q
[receiver.https]
enabled = true
listen = %q
max_size = 100000
[[alert]]
name = "tls"
kind = "tls_failures"
threshold = 0
window = "8760h"
[[webhook]]
name = "ops"
url = %q
secret = "0123456789abcdef0123"
`, api, recv, hook.URL))
	out, _, code := cli(t, "token", "create", "--data", data)
	if code != 0 {
		t.Fatal(out)
	}
	tok := strings.TrimSpace(out)

	type ran struct {
		out, err string
		code     int
	}
	// Serve until the test cancels, as SIGTERM does.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan ran, 1)
	go func() {
		var o, e bytes.Buffer
		c := run(ctx, []string{"serve", "--data", data, "--json", "--resolver", "127.0.0.1:1"}, strings.NewReader(""), &o, &e)
		done <- ran{o.String(), e.String(), c}
	}()
	var health *http.Response
	var err error
	// Bounded wait (30 s) for the listener: on a loaded machine the first
	// start (migrations, the admin's password hash) takes a while.
	for range 1200 {
		if health, err = http.Get("http://" + api + "/api/health"); err == nil {
			health.Body.Close()
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil || health.StatusCode != 200 {
		t.Fatalf("health: %v", err)
	}

	report := `{"organization-name":"s","date-range":{"start-datetime":"2026-05-02T00:00:00Z","end-datetime":"2026-05-02T23:59:59Z"},
"contact-info":"t@s.example","report-id":"serve-1","policies":[{"policy":{"policy-type":"sts","policy-domain":"example.com"},
"summary":{"total-successful-session-count":10,"total-failure-session-count":4}}]}`
	resp, err := http.Post("http://"+recv+"/tlsrpt", "application/tlsrpt+json", strings.NewReader(report))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("POST: %v %v", resp, err)
	}
	resp.Body.Close()

	get := func(auth string) (int, []byte) {
		req, _ := http.NewRequest("GET", "http://"+api+"/api/reports?kind=tls", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := get(""); code != 401 {
		t.Errorf("no token: HTTP %d", code)
	}
	code, body := get("Bearer " + tok)
	if code != 200 || !bytes.Contains(body, []byte(`"report_id": "serve-1"`)) {
		t.Errorf("reports: HTTP %d %s", code, body)
	}

	// The alert reaches the webhook (the import kicked the rules).
	var got []string
	for range 400 {
		mu.Lock()
		got = append([]string(nil), hooks...)
		mu.Unlock()
		if len(got) > 0 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("webhook got %d signed alerts, want 1", len(got))
	}
	var a alert.Alert
	if err := json.Unmarshal([]byte(got[0]), &a); err != nil || a.Rule != "tls" || a.Domain != "example.com" || a.Value != 4 {
		t.Errorf("alert %v: %s", err, got[0])
	}
	// The web admin answers on the same listener: a page asks for a login.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page, err := noFollow.Get("http://" + api + "/")
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode/100 != 3 || !strings.HasPrefix(page.Header.Get("Location"), "/login") {
		t.Errorf("GET /: HTTP %d to %q, want a redirect to the login page", page.StatusCode, page.Header.Get("Location"))
	}
	// The report dashboards are wired to the store: logged out, they ask
	// for a login too.
	dash, err := noFollow.Get("http://" + api + "/reports")
	if err != nil {
		t.Fatal(err)
	}
	dash.Body.Close()
	if dash.StatusCode/100 != 3 || !strings.HasPrefix(dash.Header.Get("Location"), "/login") {
		t.Errorf("GET /reports: HTTP %d to %q, want the login page", dash.StatusCode, dash.Header.Get("Location"))
	}
	login, err := http.Get("http://" + api + "/login")
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := io.ReadAll(login.Body)
	login.Body.Close()
	if login.StatusCode != 200 || !bytes.Contains(lb, []byte(`type="password"`)) {
		t.Errorf("GET /login: HTTP %d, no password field", login.StatusCode)
	}

	stop()
	r := <-done
	if !strings.Contains(r.err, `web admin: created account "admin" with password `) {
		t.Errorf("the first run did not print the admin's one-time password:\n%s", r.err)
	}
	res := checkEnvelope(t, r.out, "serve")
	if r.code != 0 || res["api"] != api || res["https_receiver"] != recv || res["alert_rules"] != float64(1) {
		t.Errorf("serve: exit %d %v\n%s", r.code, res, r.err)
	}
	if strings.Contains(r.err, tok) || strings.Contains(r.err, "0123456789abcdef0123") {
		t.Error("a secret was logged")
	}
	if !strings.Contains(r.err, "msg=alert") || !strings.Contains(r.err, "webhook delivered") {
		t.Errorf("log lacks the alert:\n%s", r.err)
	}
}

func TestAlertsCheck(t *testing.T) {
	data := t.TempDir()
	writeConfig(t, data, `[[alert]]
name = "quarantine"
kind = "quarantine_growth"
threshold = 0
window = "1h"
`)
	if out, _, code := cli(t, "alerts", "check", "--data", data); code != 0 || !strings.Contains(out, "1 rules checked: nothing fires.") {
		t.Errorf("empty store: exit %d\n%s", code, out)
	}
	junk := filepath.Join(t.TempDir(), "junk.txt")
	os.WriteFile(junk, []byte("not a report"), 0o600)
	if _, _, code := cli(t, "reports", "import", junk, "--data", data); code != 1 {
		t.Fatalf("import junk: exit %d", code)
	}
	out, _, code := cli(t, "alerts", "check", "--data", data)
	if code != 1 || !strings.Contains(out, "NEW     quarantine (quarantine_growth): 1 items quarantined") {
		t.Errorf("after a quarantine: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, "alerts", "check", "--data", data, "--json")
	res := checkEnvelope(t, out, "alerts check")
	if code != 1 || len(res["fired"].([]any)) != 0 || len(res["firing"].([]any)) != 1 {
		t.Errorf("second check: exit %d %v", code, res)
	}
}

// TestServeIMAPReceiver: serve reads the report mailbox on its schedule,
// through the same import as `reports fetch`, and the report shows in the
// API.
func TestServeIMAPReceiver(t *testing.T) {
	ctx := context.Background()
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := lab.StartDovecot(ctx, lab.DovecotConfig{Cert: leaf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Stop() })
	b, err := os.ReadFile(filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "mox", "xs4all.eml"))
	if err != nil {
		t.Fatal(err)
	}
	appendIMAP(t, dv.IMAPS, ca, []byte(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")))

	data := t.TempDir()
	caFile, pwFile := filepath.Join(data, "ca.pem"), filepath.Join(data, "imap-password")
	os.WriteFile(caFile, ca.PEM, 0o644)
	os.WriteFile(pwFile, []byte("alice-password\n"), 0o600)
	api := freePort(t)
	writeConfig(t, data, fmt.Sprintf(`[web]
listen = %q
[receiver.imap]
enabled = true
url = "imaps://alice@example.test@mx1.example.test/INBOX"
password_file = %q
interval = "1s"
`, api, pwFile))
	out, _, code := cli(t, "token", "create", "--data", data)
	if code != 0 {
		t.Fatal(out)
	}
	tok := strings.TrimSpace(out)

	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan string, 1)
	go func() {
		var o, e bytes.Buffer
		run(sctx, []string{"serve", "--data", data, "--resolver=" + startLabDNS(t), "--tls-ca", caFile,
			"--connect-map", "993=" + dv.IMAPS}, strings.NewReader(""), &o, &e)
		done <- o.String() + e.String()
	}()
	var body []byte
	for range 400 {
		req, _ := http.NewRequest("GET", "http://"+api+"/api/reports?kind=dmarc", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Contains(body, []byte(`"kind": "dmarc"`)) {
				break
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	stop()
	logs := <-done
	if !bytes.Contains(body, []byte(`"kind": "dmarc"`)) {
		t.Fatalf("the polled report never reached the API: %s\n%s", body, logs)
	}
	if !strings.Contains(logs, "IMAP          mx1.example.test:993/INBOX (polled)") || !strings.Contains(logs, "msg=\"imap receiver\"") {
		t.Errorf("serve did not say it polls the mailbox:\n%s", logs)
	}
	if strings.Contains(logs, "alice-password") {
		t.Error("the IMAP password reached the output")
	}
}
