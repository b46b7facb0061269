package web

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/authcheck"
	"github.com/mxray/mxray/internal/dkim"
)

// signedMessage is a message from alice@dmarc-strict.test signed with
// the lab's key sel._domainkey.dmarc-strict.test (lab.Scenarios).
func signedMessage(t *testing.T) []byte {
	t.Helper()
	seed := sha256.Sum256([]byte("mxray lab dkim key: sel._domainkey.dmarc-strict.test"))
	msg := []byte("From: Alice <alice@dmarc-strict.test>\nTo: bob@example.test\nSubject: hello\n" +
		"Date: Mon, 01 Jun 2026 12:00:00 +0000\nMessage-ID: <1@example.test>\n\nHello Bob.\n")
	out, err := dkim.Sign(msg, dkim.SignOptions{Domain: "dmarc-strict.test", Selector: "sel", Key: ed25519.NewKeyFromSeed(seed[:])})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// postMultipart posts fields and an optional file as multipart/form-data.
func (b *browser) postMultipart(path string, fields url.Values, file string, content []byte) *httptest.ResponseRecorder {
	b.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for k, vs := range fields {
		for _, v := range vs {
			mw.WriteField(k, v)
		}
	}
	if file != "" {
		fw, err := mw.CreateFormFile(file, "message.eml")
		if err != nil {
			b.t.Fatal(err)
		}
		fw.Write(content)
	}
	mw.Close()
	req := httptest.NewRequest("POST", path, &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return b.do(req)
}

// lastResult checks the stream's shape (every step started before it
// finished, one result event last, of command) and returns the events.
func streamOf(t *testing.T, w *httptest.ResponseRecorder, command string) ([]sseEvent, map[string]string) {
	t.Helper()
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/event-stream; charset=utf-8" {
		t.Fatalf("run: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	evs := events(t, w.Body.String())
	steps := map[string]string{}
	started := map[string]bool{}
	for i, e := range evs {
		switch e.Name {
		case "start":
			started[e.Data["id"].(string)] = true
		case "step":
			id := e.Data["id"].(string)
			steps[id] = e.Data["status"].(string)
			// The domain audit sends findings that have no start of
			// their own (several per check), as its CLI --json does.
			if !started[id] && id != StepGuard && command != "domain" {
				t.Errorf("step %s without a start event", id)
			}
		case "result":
			if i != len(evs)-1 || e.Data["command"] != command {
				t.Errorf("result event %d of %d: %s", i+1, len(evs), e.Raw)
			}
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].Name != "result" {
		t.Fatalf("no result event last:\n%s", w.Body)
	}
	return evs, steps
}

func TestDMARCStream(t *testing.T) {
	env := labEnv(t)
	f := newFixture(t, env, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	tok := csrf(t, b.get("/troubleshoot/dmarc").Body.String())
	base := url.Values{"csrf": {tok}, "ip": {"127.0.0.1"}, "helo": {"mx1.example.test"}, "mail_from": {"user@bounce.dmarc-strict.test"}}

	// The signed message, uploaded: DKIM passes and aligns (strict), SPF
	// passes but does not align; DMARC passes.
	evs, steps := streamOf(t, b.postMultipart("/troubleshoot/dmarc/run", base, "message_file", signedMessage(t)), "auth")
	for id, want := range map[string]string{"spf-mailfrom": "ok", "dkim": "ok", "dmarc": "ok", "iprev": "ok"} {
		if steps[id] != want {
			t.Errorf("step %s = %q, want %s (all %v)", id, steps[id], want, steps)
		}
	}
	res := evs[len(evs)-1]
	dm := res.Data["dmarc"].(map[string]any)
	if dm["result"] != "pass" || !strings.Contains(res.Data["authentication_results"].(string), "dkim=pass header.d=dmarc-strict.test header.s=sel") {
		t.Errorf("result %s", res.Raw)
	}
	if spf := dm["spf"].(map[string]any); spf["aligned"] != false || spf["domain"] != "bounce.dmarc-strict.test" {
		t.Errorf("SPF alignment %v", spf)
	}
	// The SPF step carries its trace tree for the page.
	for _, e := range evs {
		if e.Name == "step" && e.Data["id"] == "spf-mailfrom" {
			tr, _ := e.Data["data"].(map[string]any)["trace"].(map[string]any)
			if tr == nil || tr["domain"] != "bounce.dmarc-strict.test" || len(tr["children"].([]any)) == 0 {
				t.Errorf("spf trace %v", tr)
			}
		}
	}

	// The same message pasted, with a footer a list added: the body hash
	// fails, DMARC fails (p=reject).
	tampered := base
	tampered = url.Values{}
	for k, v := range base {
		tampered[k] = v
	}
	tampered.Set("message", string(signedMessage(t))+"-- \nfooter added by a list\n")
	evs, steps = streamOf(t, b.post("/troubleshoot/dmarc/run", tampered), "auth")
	res = evs[len(evs)-1]
	if steps["dkim"] != "fail" || res.Data["dmarc"].(map[string]any)["result"] != "fail" ||
		!strings.Contains(res.Raw, "dkim=fail (body-hash-mismatch)") {
		t.Errorf("tampered: steps %v, result %s", steps, res.Raw)
	}

	// No message: DKIM skipped, DMARC on the MAIL FROM domain.
	nomsg := url.Values{"csrf": {tok}, "ip": {"127.0.0.1"}, "helo": {"mx1.example.test"}, "mail_from": {"alice@dkim.test"}}
	evs, steps = streamOf(t, b.post("/troubleshoot/dmarc/run", nomsg), "auth")
	if steps["dkim"] != "skip" || evs[len(evs)-1].Data["dmarc"].(map[string]any)["result"] != "pass" {
		t.Errorf("no message: %v %s", steps, evs[len(evs)-1].Raw)
	}
}

func TestDMARCRefusals(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	form := url.Values{"ip": {"127.0.0.1"}, "helo": {"mx1.example.test"}, "mail_from": {"a@example.test"}}
	if w := b.post("/troubleshoot/dmarc/run", form); w.Code != http.StatusUnauthorized {
		t.Errorf("without a session: %d, want 401", w.Code)
	}
	if w := b.get("/troubleshoot/dmarc"); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login?next=") {
		t.Errorf("page without a session: %d %q", w.Code, w.Header().Get("Location"))
	}
	b.mustLogin(f.password)
	if w := b.post("/troubleshoot/dmarc/run", form); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "CSRF") {
		t.Errorf("without the token: %d %s", w.Code, w.Body)
	}
	if w := b.postMultipart("/troubleshoot/dmarc/run", form, "message_file", []byte("From: a@example.test\n\nx\n")); w.Code != http.StatusForbidden {
		t.Errorf("multipart without the token: %d %s", w.Code, w.Body)
	}
	tok := csrf(t, b.get("/troubleshoot/dmarc").Body.String())
	for field, bad := range map[string]string{"ip": "not-an-ip", "helo": "", "mail_from": "no-at-sign"} {
		v := url.Values{"csrf": {tok}}
		for k, x := range form {
			v[k] = x
		}
		v.Set(field, bad)
		if w := b.post("/troubleshoot/dmarc/run", v); w.Code != http.StatusBadRequest {
			t.Errorf("%s=%q: %d %s, want 400", field, bad, w.Code, w.Body)
		}
	}
	// A message over 25 MiB is refused before anything runs, as the CLI
	// refuses it.
	form.Set("csrf", tok)
	big := bytes.Repeat([]byte("x"), authcheck.MaxMessage+1)
	if w := b.postMultipart("/troubleshoot/dmarc/run", form, "message_file", big); w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "25 MiB") {
		t.Errorf("26 MiB upload: %d %.200s", w.Code, w.Body)
	}
	huge := bytes.Repeat([]byte("x"), maxMessageForm+1)
	if w := b.postMultipart("/troubleshoot/dmarc/run", form, "message_file", huge); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("body over the form limit: %d %.200s", w.Code, w.Body)
	}
}

func TestConnectionStream(t *testing.T) {
	env := labEnv(t) // port 25 of every host is the lab's Postfix
	f := newFixture(t, env, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	tok := csrf(t, b.get("/troubleshoot/connection").Body.String())
	evs, steps := streamOf(t, b.post("/troubleshoot/connection/run", url.Values{"csrf": {tok}, "host": {"mx1.example.test"}, "service": {"smtp"}}), "probe")
	if steps["smtp.connect"] != "ok" {
		t.Errorf("steps %v", steps)
	}
	res := evs[len(evs)-1]
	svcs, _ := res.Data["services"].([]any)
	if len(svcs) != 1 {
		t.Fatalf("services %s", res.Raw)
	}
	m := svcs[0].(map[string]any)["matrix"].(map[string]any)
	if c := m["connect"].(map[string]any); c["status"] != "ok" || svcs[0].(map[string]any)["service"] != "smtp" {
		t.Errorf("matrix %v", m)
	}
	for _, col := range []string{"tls", "cert", "auth"} {
		if _, ok := m[col].(map[string]any)["status"]; !ok {
			t.Errorf("matrix has no %s cell: %v", col, m)
		}
	}

	// Refusals.
	if w := b.post("/troubleshoot/connection/run", url.Values{"host": {"mx1.example.test"}, "service": {"smtp"}}); w.Code != http.StatusForbidden {
		t.Errorf("without the token: %d", w.Code)
	}
	for _, v := range []url.Values{{"host": {"a b"}, "service": {"smtp"}}, {"host": {"mx1.example.test"}}, {"host": {"mx1.example.test"}, "service": {"gopher"}}} {
		v.Set("csrf", tok)
		if w := b.post("/troubleshoot/connection/run", v); w.Code != http.StatusBadRequest {
			t.Errorf("%v: %d %s, want 400", v, w.Code, w.Body)
		}
	}
	if w := f.browser(t, "192.0.2.2").post("/troubleshoot/connection/run", url.Values{"host": {"x.test"}}); w.Code != http.StatusUnauthorized {
		t.Errorf("without a session: %d", w.Code)
	}
}

// TestConnectionGuard: without AllowPrivate the loopback host is not
// reached, by name (the guard step) or as an address (refused at once).
func TestConnectionGuard(t *testing.T) {
	env := labEnv(t)
	f := newFixture(t, env, func(c *Config) { c.AllowPrivate = false })
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	tok := csrf(t, b.get("/troubleshoot/connection").Body.String())
	for _, host := range []string{"127.0.0.1", "[::1]", "10.1.2.3"} {
		if w := b.post("/troubleshoot/connection/run", url.Values{"csrf": {tok}, "host": {host}, "service": {"smtp"}}); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "server-side request forgery") {
			t.Errorf("%s: %d %s", host, w.Code, w.Body)
		}
	}
	_, steps := streamOf(t, b.post("/troubleshoot/connection/run", url.Values{"csrf": {tok}, "host": {"mx1.example.test"}, "service": {"smtp"}}), "probe")
	if steps[StepGuard] != "fail" || steps["smtp.connect"] == "ok" {
		t.Errorf("steps %v", steps)
	}
}

func TestDomainStream(t *testing.T) {
	env := labEnv(t)
	f := newFixture(t, env, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	tok := csrf(t, b.get("/troubleshoot/domain").Body.String())
	evs, steps := streamOf(t, b.post("/troubleshoot/domain/run", url.Values{"csrf": {tok}, "domain": {"dkim.test"}, "selectors": {"rsa2048, ed"}}), "domain")
	res := evs[len(evs)-1]
	if res.Data["domain"] != "dkim.test" || res.Data["counts"] == nil {
		t.Errorf("result %s", res.Raw)
	}
	// Both selectors' keys are found; the lab's MX host has no reverse
	// DNS of its own name (a failure the page lists first).
	if steps["spf"] != "ok" || steps["dkim"] != "ok" || steps["dmarc"] != "ok" || steps["mx-host"] != "fail" {
		t.Errorf("steps %v", steps)
	}
	var dkimTitles string
	for _, e := range evs {
		if e.Name == "step" && e.Data["id"] == "dkim" {
			dkimTitles += e.Data["title"].(string) + "\n"
		}
	}
	if !strings.Contains(dkimTitles, "selector rsa2048") || !strings.Contains(dkimTitles, "selector ed") {
		t.Errorf("dkim findings do not name both selectors:\n%s", dkimTitles)
	}
	for _, v := range []url.Values{{"domain": {""}}, {"domain": {"a b.test"}}, {"domain": {"dkim.test"}, "selectors": {"a/b"}}} {
		v.Set("csrf", tok)
		if w := b.post("/troubleshoot/domain/run", v); w.Code != http.StatusBadRequest {
			t.Errorf("%v: %d %s, want 400", v, w.Code, w.Body)
		}
	}
	if w := b.post("/troubleshoot/domain/run", url.Values{"domain": {"dkim.test"}}); w.Code != http.StatusForbidden {
		t.Errorf("without the token: %d", w.Code)
	}
	if w := f.browser(t, "192.0.2.2").post("/troubleshoot/domain/run", url.Values{"domain": {"dkim.test"}}); w.Code != http.StatusUnauthorized {
		t.Errorf("without a session: %d", w.Code)
	}
}

// TestRunsShareTheRateLimit: the troubleshooters draw on one budget per
// client.
func TestRunsShareTheRateLimit(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	tok := csrf(t, b.get("/troubleshoot/domain").Body.String())
	for i := range runsPerWindow {
		if w := b.post("/troubleshoot/domain/run", url.Values{"csrf": {tok}, "domain": {"example.test"}, "selectors": {"s1"}}); w.Code != http.StatusOK {
			t.Fatalf("run %d: %d", i+1, w.Code)
		}
	}
	for _, w := range []*httptest.ResponseRecorder{
		b.post("/troubleshoot/dmarc/run", url.Values{"csrf": {tok}, "ip": {"192.0.2.1"}, "helo": {"a.test"}, "mail_from": {""}}),
		b.post("/troubleshoot/connection/run", url.Values{"csrf": {tok}, "host": {"a.test"}, "service": {"smtp"}}),
		b.get("/troubleshoot/delivery/run?target=example.test"),
	} {
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
			t.Errorf("over the limit: %d %s", w.Code, w.Body)
		}
	}
}
