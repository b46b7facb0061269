package web

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

// failureReport is a DMARC failure report (RFC 6591) imported by
// importFailure: source 10.10.10.10, reported domain example.com.
const failureReport = "parsedmarc/dmarc_ruf_report_linkedin.eml"

func importFailure(t *testing.T, f *fixture) {
	t.Helper()
	path := filepath.Join(testutil.Shared(t, "dmarc-failure-reports"), filepath.FromSlash(failureReport))
	im := &ingest.Importer{Store: f.db, Now: func() time.Time { return t0 }, Workers: 1}
	if st, err := im.Import(context.Background(), func(ctx context.Context, fn func(ingest.Blob) error) error {
		return ingest.Walk(ctx, []string{path}, 0, fn)
	}); err != nil || st.Imported != 1 {
		t.Fatalf("import: %v (%+v)", err, st)
	}
}

func TestNewPagesNeedLogin(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.7")
	for _, p := range []string{"/reports/failure", "/alerts", "/settings", "/settings?rule=x"} {
		w := b.get(p)
		if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login?next="+url.QueryEscape(p) {
			t.Errorf("GET %s logged out: %d %q", p, w.Code, w.Header().Get("Location"))
		}
	}
	for _, p := range []string{"/reports/quarantine/1/reprocess", "/settings/rules", "/settings/rules/delete", "/settings/webhooks", "/settings/webhooks/delete"} {
		if w := b.post(p, url.Values{"name": {"x"}}); w.Code != http.StatusUnauthorized {
			t.Errorf("POST %s logged out: %d, want 401", p, w.Code)
		}
	}
	// Logged in, a POST without the form token is refused and changes
	// nothing.
	b.mustLogin(f.password)
	form := url.Values{"name": {"r"}, "kind": {"new_source"}, "threshold": {"0"}, "window": {"24h"},
		"url": {"https://hooks.example/x"}, "secret": {"0123456789abcdef"}}
	for _, p := range []string{"/reports/quarantine/1/reprocess", "/settings/rules", "/settings/rules/delete", "/settings/webhooks", "/settings/webhooks/delete"} {
		if w := b.post(p, form); w.Code != http.StatusForbidden {
			t.Errorf("POST %s without token: %d, want 403", p, w.Code)
		}
	}
	ctx := context.Background()
	if rules, _ := f.db.AlertRules(ctx); len(rules) != 0 {
		t.Errorf("rules stored without a token: %+v", rules)
	}
	if hooks, _ := f.db.Webhooks(ctx); len(hooks) != 0 {
		t.Errorf("webhooks stored without a token: %+v", hooks)
	}
}

func TestFailureReports(t *testing.T) {
	f, b := reportsBrowser(t)
	importFailure(t, f)
	w := b.get("/reports/failure")
	body := w.Body.String()
	if w.Code != http.StatusOK {
		t.Fatalf("list: %d\n%s", w.Code, body)
	}
	mustContain(t, "failure list", body, `<table class="data" id="failures">`, "<td>auth-failure</td>", `<td class="mono">10.10.10.10</td>`,
		"<td>dmarc</td>", `aria-current="page">Failure reports</a>`)
	heads, _ := f.db.ReportList(context.Background(), store.ListFilter{Kind: store.KindFailure})
	if len(heads) != 1 {
		t.Fatalf("failure reports %+v", heads)
	}
	id := heads[0].ID
	link := "/reports/" + itoa(id)
	if !hasLink(body, link) || !hasLink(body, dmarcLink("10.10.10.10", heads[0].Domain, "")) {
		t.Errorf("no link to %s or to the troubleshooter in %v", link, links(body))
	}
	w = b.get(link)
	body = w.Body.String()
	mustContain(t, "failure report", body, `<dl class="facts" id="failure">`, "<dt>Feedback type</dt><dd>auth-failure</dd>",
		"<dt>Auth failure</dt><dd>dmarc</dd>", `<pre class="headers" id="original-headers">`)
	rep, _ := f.db.Report(context.Background(), id, 0)
	if rep.Failure.OriginalHeaderText == "" || rep.Failure.OriginalFrom == "" {
		t.Fatalf("the sample has no original headers: %+v", rep.Failure)
	}
	first, _, _ := strings.Cut(rep.Failure.OriginalHeaderText, "\n")
	mustContain(t, "original headers", body, escape(strings.TrimRight(first, "\r")), escape(rep.Failure.OriginalFrom))

	// Other domains: none.
	if body := b.get("/reports/failure?domain=nothing.example").Body.String(); !strings.Contains(body, "No failure reports for nothing.example yet.") {
		t.Errorf("filtered list:\n%s", body)
	}
}

func TestQuarantineReprocess(t *testing.T) {
	f, b := reportsBrowser(t)
	ctx := context.Background()
	// An aggregate report a former mxray could not read.
	raw, err := os.ReadFile(filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "dmarc-report-viewer", "hardfail.xml"))
	if err != nil {
		t.Fatal(err)
	}
	raw = []byte(strings.Replace(string(raw), "<report_id>", "<report_id>requeued-", 1))
	good, _, err := f.db.Quarantine(ctx, store.QuarantineItem{At: t0, Origin: "old/hardfail.xml", Reason: "old parser", Raw: raw})
	if err != nil {
		t.Fatal(err)
	}
	items, _ := f.db.QuarantineList(ctx)
	if len(items) != 2 {
		t.Fatalf("quarantine %+v", items)
	}
	bad := items[0].ID // invalid_xml.xml
	page := b.get("/reports/quarantine").Body.String()
	mustContain(t, "quarantine", page, `action="/reports/quarantine/`+itoa(bad)+`/reprocess"`, `action="/reports/quarantine/`+itoa(good)+`/reprocess"`)
	tok := csrf(t, page)
	before, _ := f.db.ReportList(ctx, store.ListFilter{Kind: store.KindDMARC})

	w := b.post("/reports/quarantine/"+itoa(good)+"/reprocess", url.Values{"csrf": {tok}})
	mustContain(t, "imported", w.Body.String(), "Item "+itoa(good)+" was imported and removed from the quarantine.")
	if w.Code != http.StatusOK {
		t.Errorf("re-process: %d", w.Code)
	}
	after, _ := f.db.ReportList(ctx, store.ListFilter{Kind: store.KindDMARC})
	if len(after) != len(before)+1 {
		t.Errorf("reports %d → %d, want one more", len(before), len(after))
	}
	if _, err := f.db.QuarantineGet(ctx, good); err == nil {
		t.Error("the imported item is still quarantined")
	}

	w = b.post("/reports/quarantine/"+itoa(bad)+"/reprocess", url.Values{"csrf": {tok}})
	mustContain(t, "still failing", w.Body.String(), `<p class="msg error" role="alert" id="outcome">Item `+itoa(bad)+` still fails: `)
	if q, err := f.db.QuarantineGet(ctx, bad); err != nil || q.Reason == "" || !strings.Contains(w.Body.String(), escape(q.Reason)) {
		t.Errorf("the failing item: %+v %v", q, err)
	}
	if w := b.post("/reports/quarantine/"+itoa(good)+"/reprocess", url.Values{"csrf": {tok}}); w.Code != http.StatusNotFound {
		t.Errorf("re-processing a removed item: %d", w.Code)
	}

	// Without Config.Reprocess, no button and no handler.
	g := newFixture(t, noEnv, func(c *Config) { c.Reprocess = nil })
	gb := g.browser(t, "192.0.2.9")
	gb.mustLogin(g.password)
	if body := gb.get("/reports/quarantine").Body.String(); strings.Contains(body, "Re-process</button>") {
		t.Error("a re-process button without Config.Reprocess")
	}
}

func TestSettingsRulesAndWebhooks(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.8")
	b.mustLogin(f.password)
	ctx := context.Background()
	page := b.get("/settings").Body.String()
	mustContain(t, "settings", page, `id="restart-note"`, "<strong>replaces</strong>", "127.0.0.1:8443", `<option value="quarantine_growth">`)
	tok := csrf(t, page)
	post := func(path string, v url.Values) (int, string, string) {
		t.Helper()
		v.Set("csrf", tok)
		w := b.post(path, v)
		return w.Code, w.Header().Get("Location"), w.Body.String()
	}

	// Add a rule.
	code, loc, _ := post("/settings/rules", url.Values{"name": {"fail"}, "kind": {"dmarc_fail_rate"}, "domain": {"Example.com"},
		"threshold": {"5.5"}, "min_volume": {"100"}, "window": {"24h"}})
	if code != http.StatusSeeOther {
		t.Fatalf("add rule: %d", code)
	}
	if body := b.get(loc).Body.String(); !strings.Contains(body, "Rule &#34;fail&#34; saved.") {
		t.Errorf("no notice after adding:\n%s", body)
	}
	want := []store.AlertRule{{Name: "fail", Kind: "dmarc_fail_rate", Domain: "example.com", Threshold: 5.5, MinVolume: 100, Window: 24 * time.Hour}}
	if got, err := f.db.AlertRules(ctx); err != nil || !cmp.Equal(want, got) {
		t.Errorf("rules %+v %v", got, err)
	}
	// Server-side validation, with the values kept.
	for _, tc := range []struct {
		form url.Values
		msg  string
	}{
		{url.Values{"name": {"x"}, "kind": {"nope"}, "threshold": {"1"}, "window": {"1h"}}, `kind &#34;nope&#34;: want one of`},
		{url.Values{"name": {"x"}, "kind": {"dmarc_fail_rate"}, "threshold": {"100"}, "window": {"1h"}}, "threshold 100 out of range."},
		{url.Values{"name": {"x"}, "kind": {"new_source"}, "threshold": {"a"}, "window": {"1h"}}, "Threshold &#34;a&#34; is not a number."},
		{url.Values{"name": {"x"}, "kind": {"new_source"}, "threshold": {"1"}, "window": {"1 day"}}, "is not a duration"},
		{url.Values{"name": {"x"}, "kind": {"new_source"}, "threshold": {"1"}, "window": {"1h"}, "min_volume": {"-1"}}, "min_volume must not be negative."},
		{url.Values{"name": {""}, "kind": {"new_source"}, "threshold": {"1"}, "window": {"1h"}}, "The rule needs a name."},
		{url.Values{"name": {"fail"}, "kind": {"new_source"}, "threshold": {"1"}, "window": {"1h"}}, "There is a rule named &#34;fail&#34; already."},
	} {
		code, _, body := post("/settings/rules", tc.form)
		if code != http.StatusBadRequest || !strings.Contains(body, tc.msg) {
			t.Errorf("%v: %d, no %q", tc.form, code, tc.msg)
		}
		if tc.form.Get("window") == "1 day" && !strings.Contains(body, `value="1 day"`) {
			t.Error("the form lost what was typed")
		}
	}
	// Edit it (renamed), from its edit link.
	page = b.get("/settings").Body.String()
	if !hasLink(page, "/settings?rule=fail#rule-form") {
		t.Fatalf("no edit link: %v", links(page))
	}
	mustContain(t, "edit form", b.get("/settings?rule=fail").Body.String(), `name="old" value="fail"`, `value="5.5"`, `value="24h"`)
	code, _, _ = post("/settings/rules", url.Values{"old": {"fail"}, "name": {"fail-rate"}, "kind": {"tls_failures"}, "domain": {""},
		"threshold": {"3"}, "min_volume": {""}, "window": {"90m"}})
	want = []store.AlertRule{{Name: "fail-rate", Kind: "tls_failures", Threshold: 3, Window: 90 * time.Minute}}
	if got, _ := f.db.AlertRules(ctx); code != http.StatusSeeOther || !cmp.Equal(want, got) {
		t.Errorf("edit: %d, rules %+v", code, got)
	}
	// Delete it.
	code, _, _ = post("/settings/rules/delete", url.Values{"name": {"fail-rate"}})
	if got, _ := f.db.AlertRules(ctx); code != http.StatusSeeOther || len(got) != 0 {
		t.Errorf("delete: %d, rules %+v", code, got)
	}
	if code, _, body := post("/settings/rules/delete", url.Values{"name": {"fail-rate"}}); code != http.StatusNotFound || !strings.Contains(body, "There is no rule named") {
		t.Errorf("deleting again: %d", code)
	}

	// Webhooks: the secret is never rendered.
	const secret = "s3cret-0123456789-abcdef"
	code, _, _ = post("/settings/webhooks", url.Values{"name": {"ops"}, "url": {"https://hooks.example/ops"}, "secret": {secret}})
	if code != http.StatusSeeOther {
		t.Fatalf("add webhook: %d", code)
	}
	if code, _, body := post("/settings/webhooks", url.Values{"name": {"short"}, "url": {"https://hooks.example/s"}, "secret": {"short"}}); code != http.StatusBadRequest || !strings.Contains(body, "secret must be at least 16 characters.") {
		t.Errorf("short secret: %d", code)
	}
	if code, _, body := post("/settings/webhooks", url.Values{"name": {"ftp"}, "url": {"ftp://hooks.example/s"}, "secret": {secret}}); code != http.StatusBadRequest || !strings.Contains(body, "url must be http:// or https://.") {
		t.Errorf("bad URL: %d", code)
	}
	if code, _, body := post("/settings/webhooks", url.Values{"name": {"new"}, "url": {"https://hooks.example/s"}}); code != http.StatusBadRequest || !strings.Contains(body, "secret must be") {
		t.Errorf("new webhook without a secret: %d", code)
	}
	// Edited with the secret left empty: URL changed, secret kept.
	code, _, _ = post("/settings/webhooks", url.Values{"old": {"ops"}, "name": {"ops"}, "url": {"https://hooks.example/ops2"}, "secret": {""}})
	hooks, _ := f.db.Webhooks(ctx)
	if code != http.StatusSeeOther || !cmp.Equal([]store.Webhook{{Name: "ops", URL: "https://hooks.example/ops2", Secret: secret}}, hooks) {
		t.Errorf("edit webhook: %d %+v", code, hooks)
	}
	for _, p := range []string{"/settings", "/settings?webhook=ops", "/alerts"} {
		body := b.get(p).Body.String()
		if strings.Contains(body, secret) || strings.Contains(body, "s3cret") {
			t.Errorf("%s shows the webhook secret", p)
		}
	}
	mustContain(t, "webhook edit form", b.get("/settings?webhook=ops").Body.String(), `name="old" value="ops"`, "unchanged when left empty", "set (not shown)")
	code, _, _ = post("/settings/webhooks/delete", url.Values{"name": {"ops"}})
	if hooks, _ := f.db.Webhooks(ctx); code != http.StatusSeeOther || len(hooks) != 0 {
		t.Errorf("delete webhook: %d %+v", code, hooks)
	}
}

func TestAlertsPage(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	ctx := context.Background()
	hooks := []store.Webhook{{Name: "ops", URL: "http://127.0.0.1:1/ops", Secret: "0123456789abcdef"}}
	if err := f.db.SetAlertConfig(ctx, []store.AlertRule{{Name: "new", Kind: "new_source", Window: time.Hour}}, hooks); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.AlertFire(ctx, store.Alert{Rule: "new", Kind: "new_source", Subject: "example.com 192.0.2.99", At: t0, Body: `{"type":"alert","message":"new <source>"}`}); err != nil {
		t.Fatal(err)
	}
	ob, _ := f.db.Outbox(ctx)
	f.db.OutboxFailed(ctx, ob[0].ID, t0.Add(30*time.Second), "HTTP 503")
	b := f.browser(t, "192.0.2.10")
	b.mustLogin(f.password)
	body := b.get("/alerts").Body.String()
	mustContain(t, "alerts", body, `<table class="data" id="alerts">`, "<td>new</td>", "example.com 192.0.2.99", "new &lt;source&gt;",
		`<table class="data" id="webhook-status">`, `<td class="num">1</td>`, "2026-05-01 12:00 UTC", "<strong>failing</strong>", "HTTP 503")
	if strings.Contains(body, "0123456789abcdef") {
		t.Error("the alerts page shows a webhook secret")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func escape(s string) string { return template.HTMLEscapeString(s) }
