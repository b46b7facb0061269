package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/store"
)

func TestMain(m *testing.M) {
	// The production work factor costs ~0.3 s a hash; tests that are not
	// about hashing use a small one (TestPasswordHash checks the real one).
	iterations = 1000
	code := m.Run()
	closeBrowser()
	os.Exit(code)
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable clock for sessions and rate limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	h        http.Handler
	db       *store.DB
	clock    *clock
	password string // the admin's
}

// newFixture opens an empty SQLite store, creates the admin and returns
// the web admin on env (a resolver that answers nothing when env is zero).
func newFixture(t *testing.T, env diag.Env, tweak func(*Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.OpenFile(ctx, filepath.Join(t.TempDir(), "mxray.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	pw, created, err := EnsureAdmin(ctx, db, t0)
	if err != nil || !created {
		t.Fatalf("EnsureAdmin = %v, %v", created, err)
	}
	if env.Resolver == nil {
		r := dnsx.New([]string{"127.0.0.1:1"})
		env = diag.Env{Resolver: r, Dialer: &dnsx.Dialer{Resolver: r}}
	}
	c := &clock{t: t0}
	cfg := Config{Store: db, Reports: db, Alerts: db, Env: env, Now: c.Now, AllowPrivate: true,
		Reprocess: Reprocessor(db, &ingest.Importer{Store: db, Now: func() time.Time { return t0 }, Workers: 1}),
		Receivers: []Receiver{{Name: "HTTPS", Address: "127.0.0.1:8443", Detail: "POST /report"}}}
	if tweak != nil {
		tweak(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, db: db, clock: c, password: pw}
}

// browser drives the handler in process, keeping cookies, from one
// client address.
type browser struct {
	t       *testing.T
	h       http.Handler
	ip      string
	cookies map[string]*http.Cookie
	header  http.Header // extra request headers
}

func (f *fixture) browser(t *testing.T, ip string) *browser {
	return &browser{t: t, h: f.h, ip: ip, cookies: map[string]*http.Cookie{}}
}

func (b *browser) do(req *http.Request) *httptest.ResponseRecorder {
	b.t.Helper()
	req.RemoteAddr = b.ip + ":40000"
	if strings.Contains(b.ip, ":") {
		req.RemoteAddr = "[" + b.ip + "]:40000"
	}
	for _, c := range b.cookies {
		req.AddCookie(c)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, req)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	return w
}

func (b *browser) get(path string) *httptest.ResponseRecorder {
	b.t.Helper()
	return b.do(httptest.NewRequest("GET", path, nil))
}

func (b *browser) post(path string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	req := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the form token of a page.
func csrf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", body)
	}
	return m[1]
}

// login logs in and returns the response to the POST.
func (b *browser) login(name, password string) *httptest.ResponseRecorder {
	b.t.Helper()
	tok := csrf(b.t, b.get("/login").Body.String())
	return b.post("/login", url.Values{"csrf": {tok}, "name": {name}, "password": {password}})
}

func (b *browser) mustLogin(password string) {
	b.t.Helper()
	if w := b.login(AdminName, password); w.Code != http.StatusSeeOther {
		b.t.Fatalf("login: %d %s", w.Code, w.Body)
	}
}

// Lab world: example.test's MX is mx1.example.test at 127.0.0.1, where
// a real Postfix answers on the port-25 stand-in.
var labZones = map[string]string{
	"example.test": "@ MX 10 mx1\nmx1 A 127.0.0.1\n",
	"ipmx.test":    "@ MX 10 127.0.0.1.\n",
	"v6.test":      "@ MX 10 mx\nmx AAAA fe80::1\n",
}

func labEnv(t *testing.T) diag.Env {
	t.Helper()
	srv, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	// The scenario domains (lab.Scenarios) and, over them, labZones.
	if err := lab.LoadScenarios(srv); err != nil {
		t.Fatal(err)
	}
	for origin, zone := range labZones {
		if err := srv.AddZone(origin, zone, lab.ZoneOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{Domains: []string{"example.test"}})
	if err != nil {
		t.Fatalf("lab Postfix (the test command installs Debian's postfix, tests run as root): %v", err)
	}
	t.Cleanup(func() { pf.Stop() })
	client := dnsx.New([]string{srv.Addr})
	client.Timeout = 500 * time.Millisecond
	client.Tries = 2
	return diag.Env{
		Resolver: client,
		Dialer:   &dnsx.Dialer{Resolver: client, ConnectMap: dnsx.ConnectMap{25: pf.SMTP}},
		Limits:   diag.Limits{Connect: 5 * time.Second, Command: 20 * time.Second, DNS: 500 * time.Millisecond, DNSTry: 2, HTTP: 2 * time.Second},
	}
}

// noEnv: tests that run no troubleshooter.
var noEnv = diag.Env{}
