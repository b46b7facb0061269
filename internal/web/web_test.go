package web

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/store"
)

func TestEnsureAdmin(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	pw, created, err := EnsureAdmin(context.Background(), f.db, t0)
	if err != nil || created || pw != "" {
		t.Errorf("second EnsureAdmin = %q, %v, %v; want nothing created", pw, created, err)
	}
	if len(f.password) < 40 {
		t.Errorf("first password %q is short", f.password)
	}
	a, err := f.db.AdminByName(context.Background(), AdminName)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.PasswordHash, f.password) || !checkPassword(a.PasswordHash, f.password) {
		t.Errorf("stored %q: not the hash of the password", a.PasswordHash)
	}
	// ResetPassword: the old password and sessions stop working.
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	npw, err := ResetPassword(context.Background(), f.db, AdminName)
	if err != nil {
		t.Fatal(err)
	}
	if w := b.get("/troubleshoot/delivery"); w.Code != http.StatusSeeOther {
		t.Errorf("a session outlived the password reset: %d", w.Code)
	}
	if w := b.login(AdminName, f.password); w.Code != http.StatusUnauthorized {
		t.Errorf("old password after reset: %d, want 401", w.Code)
	}
	b.mustLogin(npw)
}

func TestLogin(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")

	// Not logged in: pages send to the login, keeping where to go.
	w := b.get("/troubleshoot/dmarc")
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next=%2Ftroubleshoot%2Fdmarc" {
		t.Fatalf("GET without session: %d %q", w.Code, w.Header().Get("Location"))
	}
	tok := csrf(t, b.get("/login?next=%2Ftroubleshoot%2Fdmarc").Body.String())

	w = b.post("/login", url.Values{"csrf": {tok}, "name": {"admin"}, "password": {"wrong"}, "next": {"/troubleshoot/dmarc"}})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "Wrong account name or password.") {
		t.Errorf("bad password: %d\n%s", w.Code, w.Body)
	}
	w = b.login("nobody", f.password)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("unknown account: %d", w.Code)
	}

	tok = csrf(t, b.get("/login").Body.String())
	w = b.post("/login", url.Values{"csrf": {tok}, "name": {"admin"}, "password": {f.password}, "next": {"/troubleshoot/dmarc"}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/troubleshoot/dmarc" {
		t.Fatalf("login: %d %q\n%s", w.Code, w.Header().Get("Location"), w.Body)
	}
	var sc *http.Cookie
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionCookie {
			sc = c
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" || len(sc.Value) != 43 {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Lax, Path=/, a 32-byte id", sc)
	}
	// The store knows the session by the id's hash only.
	if _, err := f.db.AdminSession(context.Background(), store.Hash([]byte(sc.Value)), t0); err != nil {
		t.Errorf("session not stored by its hash: %v", err)
	}
	w = b.get("/troubleshoot/dmarc")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `<form id="dmarc-form"`) || !strings.Contains(w.Body.String(), `<span class="who">admin</span>`) {
		t.Errorf("page after login: %d\n%s", w.Code, w.Body)
	}
	// The login page sends a logged-in user on.
	if w := b.get("/login"); w.Code != http.StatusSeeOther {
		t.Errorf("GET /login while logged in: %d", w.Code)
	}
	if a, _ := f.db.AdminByName(context.Background(), "admin"); !a.LastLogin.Equal(t0) {
		t.Errorf("last login %v, want %v", a.LastLogin, t0)
	}
}

func TestSecureCookies(t *testing.T) {
	f := newFixture(t, noEnv, func(c *Config) { c.Secure = true })
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	c, ok := b.cookies["__Host-"+sessionCookie]
	if !ok {
		t.Fatalf("no __Host- session cookie under TLS: %v", b.cookies)
	}
	_ = c
	w := b.get("/troubleshoot/delivery")
	if w.Code != http.StatusOK {
		t.Errorf("page with the __Host- cookie: %d", w.Code)
	}
}

func TestLoginCSRF(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	tok := csrf(t, b.get("/login").Body.String())
	for _, tc := range []struct {
		name string
		form url.Values
		drop bool // drop the login cookie
	}{
		{"no token", url.Values{"name": {"admin"}, "password": {f.password}}, false},
		{"wrong token", url.Values{"csrf": {tok + "x"}, "name": {"admin"}, "password": {f.password}}, false},
		{"no cookie", url.Values{"csrf": {tok}, "name": {"admin"}, "password": {f.password}}, true},
	} {
		b2 := f.browser(t, "192.0.2.2")
		if !tc.drop {
			b2.cookies = b.cookies
		}
		if w := b2.post("/login", tc.form); w.Code != http.StatusForbidden {
			t.Errorf("%s: %d, want 403", tc.name, w.Code)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	for i := range loginFailures {
		if w := b.login("admin", "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, w.Code)
		}
	}
	// Blocked now, even with the right password, from this address …
	w := b.login("admin", f.password)
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "Too many failed logins: try again in 15 minute(s).") ||
		w.Header().Get("Retry-After") != "900" {
		t.Errorf("6th attempt: %d Retry-After %q\n%s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// … and for this account from another address.
	other := f.browser(t, "2001:db8::1")
	if w := other.login("admin", f.password); w.Code != http.StatusTooManyRequests {
		t.Errorf("same account from another address: %d, want 429", w.Code)
	}
	// Another account from another address is not blocked.
	if w := other.login("someone", "x"); w.Code != http.StatusUnauthorized {
		t.Errorf("other account, other address: %d, want 401", w.Code)
	}
	f.clock.Add(loginWindow)
	b.mustLogin(f.password)
}

func TestLoginRateLimitIPv6Prefix(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	for i := range loginFailures {
		b := f.browser(t, "2001:db8:1:2::"+string(rune('a'+i)))
		if w := b.login("user"+string(rune('a'+i)), "wrong"); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i+1, w.Code)
		}
	}
	if w := f.browser(t, "2001:db8:1:2::ff").login("admin", f.password); w.Code != http.StatusTooManyRequests {
		t.Errorf("another address of the same /64: %d, want 429", w.Code)
	}
	f.browser(t, "2001:db8:1:3::1").mustLogin(f.password)
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, noEnv, func(c *Config) { c.SessionTTL = time.Hour })
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	f.clock.Add(59 * time.Minute)
	if w := b.get("/troubleshoot/delivery"); w.Code != http.StatusOK {
		t.Fatalf("before expiry: %d", w.Code)
	}
	f.clock.Add(time.Minute)
	if w := b.get("/troubleshoot/delivery"); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
		t.Errorf("after expiry: %d %q", w.Code, w.Header().Get("Location"))
	}
	if w := b.get("/troubleshoot/delivery/run?target=example.test"); w.Code != http.StatusUnauthorized {
		t.Errorf("event stream after expiry: %d, want 401", w.Code)
	}
	// A new login sweeps the expired session out of the store.
	b.mustLogin(f.password)
	n, err := f.db.AdminSessionsExpire(context.Background(), f.clock.Now())
	if err != nil || n != 0 {
		t.Errorf("expired sessions left after a login: %d, %v", n, err)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	tok := csrf(t, b.get("/troubleshoot/delivery").Body.String())
	for _, form := range []url.Values{{}, {"csrf": {""}}, {"csrf": {tok[:42]}}, {"csrf": {tok + "A"}}} {
		w := b.post("/logout", form)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "CSRF") {
			t.Errorf("logout with %v: %d %s, want 403", form, w.Code, w.Body)
		}
	}
	if w := b.get("/troubleshoot/delivery"); w.Code != http.StatusOK {
		t.Fatalf("session ended by a refused logout: %d", w.Code)
	}
	// Another session's token is refused too.
	other := f.browser(t, "192.0.2.9")
	other.mustLogin(f.password)
	otherTok := csrf(t, other.get("/settings").Body.String())
	if otherTok == tok {
		t.Fatal("two sessions share a CSRF token")
	}
	if w := b.post("/logout", url.Values{"csrf": {otherTok}}); w.Code != http.StatusForbidden {
		t.Errorf("another session's token: %d, want 403", w.Code)
	}
	// A cross-origin POST is refused even with the token.
	b.header = http.Header{"Sec-Fetch-Site": {"cross-site"}}
	if w := b.post("/logout", url.Values{"csrf": {tok}}); w.Code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", w.Code)
	}
	if w := b.get("/troubleshoot/delivery/run?target=example.test"); w.Code != http.StatusForbidden {
		t.Errorf("cross-site event stream: %d, want 403", w.Code)
	}
	b.header = nil
}

func TestLogout(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	id := b.cookies[sessionCookie].Value
	tok := csrf(t, b.get("/reports").Body.String())
	w := b.post("/logout", url.Values{"csrf": {tok}})
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" {
		t.Fatalf("logout: %d %q", w.Code, w.Header().Get("Location"))
	}
	if _, ok := b.cookies[sessionCookie]; ok {
		t.Error("logout left the session cookie")
	}
	// The old id no longer works, even if the browser kept it.
	b.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: id}
	if w := b.get("/reports"); w.Code != http.StatusSeeOther {
		t.Errorf("old session id after logout: %d", w.Code)
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	if w := b.get("/static/style.css"); w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/css") {
		t.Errorf("style.css without login: %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if w := b.get("/static/stream.js"); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "text/event-stream") {
		t.Errorf("stream.js: %d", w.Code)
	}
	for _, js := range []string{"delivery.js", "troubleshoot.js"} {
		if w := b.get("/static/" + js); w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "window.mxray") {
			t.Errorf("%s: %d, or it does not use stream.js", js, w.Code)
		}
	}
	b.mustLogin(f.password)
	if w := b.get("/"); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/troubleshoot/delivery" {
		t.Errorf("GET /: %d %q", w.Code, w.Header().Get("Location"))
	}
	for _, tc := range []struct{ path, want string }{
		{"/troubleshoot/delivery", `<form id="delivery-form"`},
		{"/troubleshoot/delivery?target=a%40b.example", `value="a@b.example"`},
		{"/troubleshoot/dmarc", `<form id="dmarc-form"`},
		{"/troubleshoot/connection", `<input type="checkbox" name="service" value="sieve" checked>`},
		{"/troubleshoot/domain", `<form id="domain-form"`},
		{"/reports", "No DMARC aggregate reports yet."},
		{"/settings", `<form method="post" action="/settings/rules">`},
		{"/alerts", "No alert has been raised."},
		{"/reports/failure", "No failure reports yet."},
	} {
		w := b.get(tc.path)
		body := w.Body.String()
		if w.Code != http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d, no %q\n%s", tc.path, w.Code, tc.want, body)
			continue
		}
		path, _, _ := strings.Cut(tc.path, "?")
		if !strings.Contains(body, `<a href="`+path+`" aria-current="page">`) {
			t.Errorf("%s: the navigation does not mark the page current", tc.path)
		}
		for _, s := range []string{`name="viewport"`, `<main id="main"`, `href="#main"`, `name="csrf"`} {
			if !strings.Contains(body, s) {
				t.Errorf("%s: no %s", tc.path, s)
			}
		}
		h := w.Header()
		if !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") || h.Get("X-Frame-Options") != "DENY" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", tc.path, h)
		}
		if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s refers to another site (assets must be embedded)", tc.path)
		}
	}
	// Nothing under /api/ (internal/server's) nor elsewhere.
	for _, p := range []string{"/api/reports", "/nothing", "/static/missing.css"} {
		if w := b.get(p); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	// Templates escape what the user typed.
	if w := b.get("/troubleshoot/delivery?target=%22%3E%3Cscript%3E"); strings.Contains(w.Body.String(), `"><script>`) {
		t.Error("target not escaped")
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/reports":             "/reports",
		"/troubleshoot/a?b=c":  "/troubleshoot/a?b=c",
		"":                     "/troubleshoot/delivery",
		"https://evil.example": "/troubleshoot/delivery",
		"//evil.example":       "/troubleshoot/delivery",
		"/\\evil.example":      "/troubleshoot/delivery",
		"/a\r\nSet-Cookie: x":  "/troubleshoot/delivery",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for in, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:8080": true, "localhost:8080": true, "127.0.0.2:80": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:8080": false, "192.0.2.1:443": false, "example.com:80": false,
	} {
		if got := LoopbackOnly(in); got != want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestReachable(t *testing.T) {
	for in, want := range map[string]bool{
		"192.0.2.1": true, "8.8.8.8": true, "2001:4860::8888": true,
		"127.0.0.1": false, "10.1.2.3": false, "172.16.0.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.0.1": false, "0.0.0.0": false, "::1": false, "fe80::1": false, "fd00::1": false, "::ffff:127.0.0.1": false,
		"::ffff:10.0.0.1": false, "224.0.0.1": false, "::": false, "255.255.255.255": false,
	} {
		if got := reachable(netip.MustParseAddr(in)); got != want {
			t.Errorf("reachable(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestLimiter(t *testing.T) {
	c := &clock{t: t0}
	l := newLimiter(2, time.Minute, c.Now)
	var got []bool
	for range 3 {
		_, ok := l.take("a")
		got = append(got, ok)
	}
	_, okB := l.take("b")
	c.Add(30 * time.Second)
	wait, blocked := l.blocked("a")
	c.Add(30 * time.Second)
	_, okAgain := l.take("a")
	want := []bool{true, true, false}
	if diff := cmp.Diff(want, got); diff != "" || !okB || !blocked || wait != 30*time.Second || !okAgain {
		t.Errorf("takes (-want +got):\n%s b %v, blocked %v after 30 s, wait %v; after the window %v", diff, okB, blocked, wait, okAgain)
	}
	for i := range sweepAt + 10 {
		l.add(string(rune(i)))
	}
	c.Add(2 * time.Minute)
	l.add("z")
	if len(l.hits) != 1 {
		t.Errorf("%d keys kept after they all expired, want 1", len(l.hits))
	}
}

// events reads a server-sent event stream into (event, JSON object) pairs.
func events(t *testing.T, body string) []sseEvent {
	t.Helper()
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.Name = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.Raw = line[6:]
			if err := json.Unmarshal([]byte(cur.Raw), &cur.Data); err != nil {
				t.Fatalf("data line %q: %v", line, err)
			}
		case line == "" && cur.Name != "":
			out = append(out, cur)
			cur = sseEvent{}
		}
	}
	return out
}

type sseEvent struct {
	Name string
	Raw  string
	Data map[string]any
}
