package web

import (
	"context"
	"html"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/dnsx/dnsxtest"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

// reportFiles are imported into the fixture's store: three aggregate
// reports for example.com on three days, one for mydomain.org whose only
// source fails DMARC, one for foo-bar.io whose only source passes, the RFC 8460 example TLS report for
// company-y.example, and a broken file for the quarantine.
var reportFiles = []string{
	"dmarc-aggregate/parsedmarc/aggregate/example.net!example.com!1529366400!1529452799.xml",
	"dmarc-aggregate/parsedmarc/aggregate/veeam.com!example.com!1530133200!1530219600.xml",
	"dmarc-aggregate/parsedmarc/aggregate/usssa.com!example.com!1538784000!1538870399.xml",
	"dmarc-aggregate/dmarc-report-viewer/hardfail.xml",
	"dmarc-aggregate/dmarc-report-viewer/google.xml",
	"smtp-tls-reports/parsedmarc/rfc8460.json",
	"dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml",
}

// importReports imports reportFiles into f's store as `mxray reports
// import` does.
func importReports(t *testing.T, f *fixture) {
	t.Helper()
	var paths []string
	for _, p := range reportFiles {
		set, rest, _ := strings.Cut(p, "/")
		paths = append(paths, filepath.Join(testutil.Shared(t, set), filepath.FromSlash(rest)))
	}
	im := &ingest.Importer{Store: f.db, Now: func() time.Time { return t0 }, Workers: 1}
	st, err := im.Import(context.Background(), func(ctx context.Context, fn func(ingest.Blob) error) error {
		return ingest.Walk(ctx, paths, 0, fn)
	})
	if err != nil {
		t.Fatalf("import: %v (%+v)", err, st)
	}
}

var hrefs = regexp.MustCompile(`href="([^"]+)"`)

// links returns the page's link targets, unescaped.
func links(body string) []string {
	var out []string
	for _, m := range hrefs.FindAllStringSubmatch(body, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func hasLink(body, want string) bool {
	for _, l := range links(body) {
		if l == want {
			return true
		}
	}
	return false
}

// reportsBrowser is logged in to a web admin whose store holds
// reportFiles.
func reportsBrowser(t *testing.T) (*fixture, *browser) {
	t.Helper()
	f := newFixture(t, noEnv, nil)
	importReports(t, f)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	return f, b
}

func page200(t *testing.T, b *browser, path string) string {
	t.Helper()
	w := b.get(path)
	if w.Code != http.StatusOK {
		t.Fatalf("%s: %d\n%s", path, w.Code, w.Body)
	}
	body := w.Body.String()
	if strings.Contains(body, "http://") && !strings.Contains(body, `xmlns="http://www.w3.org/2000/svg"`) || strings.Contains(body, "https://") {
		t.Errorf("%s refers to another site (assets must be embedded)", path)
	}
	return body
}

func mustContain(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(body, s) {
			t.Errorf("%s: no %q", what, s)
		}
	}
}

func TestReportsDMARC(t *testing.T) {
	_, b := reportsBrowser(t)
	body := page200(t, b, "/reports")
	mustContain(t, "/reports", body,
		`<a href="/reports" aria-current="page">Reports</a>`, // main navigation
		`<a href="/reports" aria-current="page">DMARC</a>`,   // tabs
		`<option value="example.com">example.com</option>`,
		`<option value="mydomain.org">mydomain.org</option>`,
		`<option value="foo-bar.io">foo-bar.io</option>`,
		// example.com: 3 reports, 4 messages, none passing.
		`<a href="/reports?domain=example.com">example.com</a></th><td class="num">3</td><td class="num">4</td><td class="num">0 (0.0 %)</td>`,
		`<td>none: 4</td>`,
		// The chart, one bar a day (4 days with example.com's and
		// mydomain.org's, foo-bar.io's), the numbers in words too.
		`<svg id="dmarc-chart"`, `<desc id="chart-desc">5 days from 2018-06-19 to 2024-09-23`,
		`<title>2018-10-06: 2 messages, 0 pass, 2 fail</title>`,
		`<th scope="row">2024-03-06</th><td class="num">1</td><td class="num">1</td><td class="num">0</td>`,
		// The source failing everywhere, seen by three reporters.
		`<th scope="row" class="mono">199.230.200.36</th><td>example.com</td><td class="num">3</td><td class="num">3</td><td class="num">0.0 %</td><td class="num">0.0 %</td><td class="num">0.0 %</td><td>example.net, usssa.com, veeam.com</td>`,
		// foo-bar.io's source passes: no link.
		`<th scope="row" class="mono">1.2.3.4</th><td>foo-bar.io</td><td class="num">1</td><td class="num">0</td><td class="num">100.0 %</td><td class="num">100.0 %</td><td class="num">100.0 %</td>`,
		`all pass`,
		`<a href="/reports/1">#1</a>`,
	)
	for _, want := range []string{
		"/troubleshoot/dmarc?ip=199.230.200.36&mail_from=postmaster%40example.com",
		"/troubleshoot/dmarc?ip=12.20.127.40&mail_from=postmaster%40example.com",
		"/troubleshoot/dmarc?ip=42.42.42.42&mail_from=postmaster%40mydomain.org",
	} {
		if !hasLink(body, want) {
			t.Errorf("/reports: no link to %s", want)
		}
	}
	if hasLink(body, "/troubleshoot/dmarc?ip=1.2.3.4&mail_from=postmaster%40foo-bar.io") {
		t.Error("a troubleshooting link for a source that passes")
	}

	// One domain selected: only its data.
	one := page200(t, b, "/reports?domain=MyDomain.org")
	mustContain(t, "one domain", one, `<option value="mydomain.org" selected>`, `<desc id="chart-desc">1 days from 2024-09-23`)
	if strings.Contains(one, "199.230.200.36") || strings.Contains(one, `href="/reports/1"`) {
		t.Error("the domain filter shows another domain's sources or reports")
	}

	// The link opens the DMARC troubleshooter prefilled.
	form := page200(t, b, "/troubleshoot/dmarc?ip=42.42.42.42&mail_from=postmaster%40mydomain.org")
	mustContain(t, "prefilled DMARC form", form,
		`id="ip" name="ip" value="42.42.42.42"`,
		`id="mail_from" name="mail_from" value="postmaster@mydomain.org"`,
		`id="helo" name="helo" value="" autofocus`)
	form = page200(t, b, "/troubleshoot/dmarc?ip=42.42.42.42&helo=mx.mydomain.org")
	mustContain(t, "prefilled EHLO", form, `id="helo" name="helo" value="mx.mydomain.org" placeholder`)
}

func TestReportDrillDown(t *testing.T) {
	_, b := reportsBrowser(t)
	body := page200(t, b, "/reports/1")
	mustContain(t, "/reports/1", body, `<h1>Report 1</h1>`,
		`<dt>Reporter</dt><dd>example.net</dd>`, `<dt>Domain</dt><dd>example.com</dd>`,
		`p=none sp=none adkim=r aspf=r pct=100`, `1 records, 1 messages.`,
		`<tr><th scope="row" class="mono">199.230.200.36</th><td class="num">1</td><td>none</td><td>fail</td><td>fail</td><td><strong>fail</strong></td>`)
	if !hasLink(body, "/troubleshoot/dmarc?ip=199.230.200.36&mail_from=postmaster%40example.com") {
		t.Error("/reports/1: no troubleshooting link on the failing record")
	}
	for path, want := range map[string]int{"/reports/999": 404, "/reports/x": 404, "/reports/0": 404} {
		if w := b.get(path); w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

func TestReportsTLS(t *testing.T) {
	f, b := reportsBrowser(t)
	body := page200(t, b, "/reports/tls")
	mustContain(t, "/reports/tls", body, `<a href="/reports/tls" aria-current="page">TLS</a>`,
		`<h2 id="tls-company-y.example">company-y.example</h2>`,
		`policy sts · <strong>5326</strong> successful sessions, <strong>303</strong> failed (94.6 % success)`,
		`<th scope="row" class="mono">mx2.mail.company-y.example</th><td>starttls-not-supported</td><td class="num">200</td>`,
		`<th scope="row" class="mono">mx1.mail.company-y.example</th><td>certificate-expired</td><td class="num">100</td>`,
		// Sessions over time: the RFC 8460 example's day, its totals.
		`<svg id="tls-chart"`, `<title id="chart-title">TLS sessions per day, successful and failed</title>`,
		`5629 sessions, 5326 successful, 303 failed</title>`,
		`<td class="num">5629</td><td class="num">5326</td><td class="num">303</td>`)
	want := "/troubleshoot/delivery?run=1&target=company-y.example"
	if !hasLink(body, want) {
		t.Errorf("/reports/tls: no link to %s", want)
	}
	// The link's page is prefilled (delivery.js runs it when the link
	// came from mxray's own pages).
	mustContain(t, "delivery page", page200(t, b, want), `id="target" name="target" value="company-y.example"`)
	if js := b.get("/static/delivery.js").Body.String(); !strings.Contains(js, `q.get("run") !== "1"`) || !strings.Contains(js, "document.referrer") {
		t.Error("delivery.js does not run a report page's link")
	}
	// The TLS report's own page lists its failures.
	heads, err := f.db.ReportList(context.Background(), store.ListFilter{Kind: store.KindTLS})
	if err != nil || len(heads) != 1 {
		t.Fatalf("TLS reports: %v %v", heads, err)
	}
	mustContain(t, "TLS report", page200(t, b, "/reports/"+strconv.FormatInt(heads[0].ID, 10)),
		`<dt>Kind</dt><dd>tls</dd>`, `5326 successful sessions, 303 failed.`,
		`certificate-expired: 100 sessions at <span class="mono">mx1.mail.company-y.example</span>`)
}

func TestReportsQuarantine(t *testing.T) {
	// Without Config.Reprocess the page is read-only and points to the
	// command line (TestQuarantineReprocess has the button).
	f := newFixture(t, noEnv, func(c *Config) { c.Reprocess = nil })
	importReports(t, f)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	body := page200(t, b, "/reports/quarantine")
	mustContain(t, "/reports/quarantine", body, `<a href="/reports/quarantine" aria-current="page">Quarantine</a>`,
		`<tr><th scope="row">1</th><td>2026-05-01 12:00 UTC</td>`, `invalid_xml.xml</td>`, `dmarcrpt: malformed XML`,
		`mxray reports quarantine --reprocess`)
	if strings.Contains(body, "<form class=\"card") || strings.Contains(body, `method="post" action="/reports`) {
		t.Error("the quarantine page offers an action; it is read-only")
	}
}

func TestReportsEmptyAndUnconfigured(t *testing.T) {
	f := newFixture(t, noEnv, func(c *Config) { c.Reports = nil })
	b := f.browser(t, "192.0.2.1")
	// Unauthenticated: the login page, coming back afterwards.
	for _, p := range []string{"/reports", "/reports/tls", "/reports/quarantine", "/reports/1"} {
		w := b.get(p)
		if loc := w.Header().Get("Location"); w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
			t.Errorf("%s without login: %d %q", p, w.Code, loc)
		}
	}
	b.mustLogin(f.password)
	for _, p := range []string{"/reports", "/reports/tls", "/reports/quarantine", "/reports/1"} {
		mustContain(t, p, page200(t, b, p), "The report store is not configured")
	}
	e := newFixture(t, noEnv, nil)
	eb := e.browser(t, "192.0.2.1")
	eb.mustLogin(e.password)
	mustContain(t, "empty", page200(t, eb, "/reports"), "No DMARC aggregate reports yet.")
	mustContain(t, "empty", page200(t, eb, "/reports/tls"), "No TLS reports yet.")
	mustContain(t, "empty", page200(t, eb, "/reports/quarantine"), "The quarantine is empty.")
}

func TestDMARCChart(t *testing.T) {
	if got := dmarcChart(nil); got != "" {
		t.Errorf("no periods: %q", got)
	}
	d := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	svg := string(dmarcChart([]period{{Day: d, Messages: 10, Pass: 7}, {Day: d.AddDate(0, 0, 1), Messages: 4, Pass: 4}}))
	for _, want := range []string{
		`<title>2026-01-02: 10 messages, 7 pass, 3 fail</title>`,
		`<title>2026-01-03: 4 messages, 4 pass, 0 fail</title>`,
		`class="tick" text-anchor="end">10</text>`, // the scale's top
		`fill="url(#hatch)"`,
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart: no %q\n%s", want, svg)
		}
	}
	if n := strings.Count(svg, `class="bar-fail-hatched"`); n != 1 {
		t.Errorf("%d failing bars, want 1 (none for a day without failures)", n)
	}
}

// TestReportsSourcePTR: a source's PTR name is shown under its IP and
// becomes the EHLO name of its one-click troubleshooter link.
func TestReportsSourcePTR(t *testing.T) {
	env := dnsxtest.New(t, "42.42.42.42.in-addr.arpa. 300 IN PTR mail.mydomain.org.").Env()
	env.Dialer = &dnsx.Dialer{Resolver: env.Resolver}
	f := newFixture(t, env, nil)
	importReports(t, f)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	body := page200(t, b, "/reports")
	mustContain(t, "/reports", body,
		`<th scope="row" class="mono">42.42.42.42<br><span class="note">mail.mydomain.org</span></th>`)
	link := "/troubleshoot/dmarc?helo=mail.mydomain.org&amp;ip=42.42.42.42&amp;mail_from=postmaster%40mydomain.org"
	if !strings.Contains(body, link) {
		t.Errorf("no one-click link with the PTR as EHLO (%s) in:\n%s", link, body)
	}
	// A source without a PTR keeps a link without EHLO.
	if !strings.Contains(body, `<th scope="row" class="mono">199.230.200.36</th>`) {
		t.Error("a source without PTR changed")
	}
}
