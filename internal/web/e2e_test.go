package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/mxray/mxray/internal/store"
)

// One headless Chromium for the whole test binary, started on first use.
var browserOnce struct {
	sync.Once
	ctx    context.Context // the browser's context; tabs derive from it
	cancel func()
	dir    string
	err    error
}

func closeBrowser() {
	if browserOnce.cancel != nil {
		browserOnce.cancel()
		os.RemoveAll(browserOnce.dir)
	}
}

// chromium returns a new tab of the shared browser.
func chromium(t *testing.T) context.Context {
	t.Helper()
	browserOnce.Do(func() {
		path, err := exec.LookPath("chromium")
		if err != nil {
			browserOnce.err = fmt.Errorf("Chromium is missing: apt-get install -y chromium (scripts/test-deps.sh installs it): %w", err)
			return
		}
		if browserOnce.dir, err = os.MkdirTemp("", "mxray-chromium-"); err != nil {
			browserOnce.err = err
			return
		}
		opts := []chromedp.ExecAllocatorOption{
			chromedp.ExecPath(path),
			chromedp.Flag("headless", "new"),
			chromedp.NoSandbox, // tests run as root
			chromedp.Flag("disable-dev-shm-usage", true),
			chromedp.DisableGPU,
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.NoFirstRun,
			chromedp.NoDefaultBrowserCheck,
			chromedp.UserDataDir(browserOnce.dir),
			chromedp.WindowSize(1280, 900),
		}
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		if err := chromedp.Do(bctx); err != nil { // starts the browser
			bcancel()
			acancel()
			browserOnce.err = fmt.Errorf("starting Chromium: %w", err)
			return
		}
		browserOnce.ctx = bctx
		browserOnce.cancel = func() { bcancel(); acancel() }
	})
	if browserOnce.err != nil {
		t.Fatal(browserOnce.err)
	}
	tab, cancel := chromedp.NewContext(browserOnce.ctx)
	t.Cleanup(cancel)
	ctx, cancel2 := context.WithTimeout(tab, 90*time.Second)
	t.Cleanup(cancel2)
	return ctx
}

// screenshots is where the end-to-end test saves its pictures:
// $MXRAY_SCREENSHOTS, else a temporary directory.
func screenshots(t *testing.T) string {
	if d := os.Getenv("MXRAY_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

func shoot(dir, name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, t) // quality 100: PNG
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
	})
}

// run runs browser actions or fails the test.
func run(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value, or fails the test.
func get[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBrowser logs in with a real Chromium, runs the delivery test against
// the lab and watches the steps arrive, and checks that a form posted
// without its CSRF token is refused.
func TestBrowser(t *testing.T) {
	env := labEnv(t)
	f := newFixture(t, env, nil)
	importReports(t, f)
	importFailure(t, f)
	srv := httptest.NewServer(f.h)
	t.Cleanup(srv.Close)
	ctx := chromium(t)
	dir := screenshots(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }

	run(t, ctx, "login page",
		chromedp.Navigate(srv.URL+"/troubleshoot/delivery"),
		chromedp.WaitVisible(css("#password")),
		shoot(dir, "1-login"))
	if loc := get(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/login?next=%2Ftroubleshoot%2Fdelivery") {
		t.Errorf("not sent to the login: %s", loc)
	}

	// A wrong password first: the page says so in words.
	run(t, ctx, "bad login",
		chromedp.SendKeys(css("#name"), "admin"),
		chromedp.SendKeys(css("#password"), "wrong"),
		chromedp.Submit(css("#login")),
		chromedp.WaitVisible(css(".msg.error")))
	if msg := get(t, ctx, chromedp.Text(css(".msg.error"))); !strings.Contains(msg, "Wrong account name or password.") {
		t.Errorf("login error %q", msg)
	}

	run(t, ctx, "login and delivery test",
		chromedp.SendKeys(css("#password"), f.password),
		chromedp.Submit(css("#login")),
		chromedp.WaitVisible(css("#target")),
		shoot(dir, "2-delivery-form"),
		chromedp.SendKeys(css("#target"), "alice@example.test"),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#verdict[data-verdict]")))
	if loc := get(t, ctx, chromedp.Location()); !strings.HasSuffix(loc, "/troubleshoot/delivery?target=alice%40example.test") {
		t.Errorf("after login and run at %s", loc)
	}
	verdict := get(t, ctx, chromedp.AttributeValue(css("#verdict"), "data-verdict"))
	stepIDs := get(t, ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("#steps li")].map(li => li.dataset.id + ":" + li.dataset.status).join(" ")`))
	stepText := get(t, ctx, chromedp.Text(css("#steps")))
	if verdict.Value != "deliverable" {
		t.Errorf("verdict %q, want deliverable; steps %s", verdict.Value, stepIDs)
	}
	for _, want := range []string{"mx:ok", "connect:ok", "rcpt:ok", "rset:info", "quit:info"} {
		if !strings.Contains(" "+stepIDs+" ", " "+want+" ") {
			t.Errorf("step list %q has no %s", stepIDs, want)
		}
	}
	if strings.Contains(stepIDs, "running") {
		t.Errorf("a step still shows as running: %s", stepIDs)
	}
	// Status in words, not only colour; the transcript folds open.
	if !strings.Contains(stepText, "OK") || !strings.Contains(stepText, "Transcript (") {
		t.Errorf("steps read %q", stepText)
	}
	run(t, ctx, "open a transcript",
		chromedp.Click(css(`#steps li[data-id="rcpt"] summary`)),
		chromedp.WaitVisible(css(`#steps li[data-id="rcpt"] details pre`)),
		shoot(dir, "3-delivery-result"))
	if tr := get(t, ctx, chromedp.Text(css(`#steps li[data-id="rcpt"] details pre`))); !strings.Contains(tr, "RCPT TO:<alice@example.test>") {
		t.Errorf("rcpt transcript %q", tr)
	}

	// The DMARC page: one check with a signed message pasted; the
	// result shows DMARC, the alignment and the Authentication-Results.
	msgJSON, _ := json.Marshal(string(signedMessage(t)))
	run(t, ctx, "DMARC check",
		chromedp.Navigate(srv.URL+"/troubleshoot/dmarc"),
		chromedp.WaitVisible(css("#mail_from")),
		chromedp.SendKeys(css("#mail_from"), "user@bounce.dmarc-strict.test"),
		chromedp.SendKeys(css("#ip"), "127.0.0.1"),
		chromedp.SendKeys(css("#helo"), "mx1.example.test"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { document.getElementById("message").value = `+string(msgJSON)+`; return true; })()`)(ctx, tg)
			return err
		}),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#dmarc-result[data-result]")),
		shoot(dir, "7-dmarc-result"))
	if r := get(t, ctx, chromedp.AttributeValue(css("#dmarc-result"), "data-result")); r.Value != "pass" {
		t.Errorf("DMARC result %q, want pass", r.Value)
	}
	if ar := get(t, ctx, chromedp.Text(css("#auth-results"))); !strings.Contains(ar, "dkim=pass header.d=dmarc-strict.test") {
		t.Errorf("Authentication-Results %q", ar)
	}
	if tree := get(t, ctx, chromedp.Text(css(`#steps li[data-id="spf-mailfrom"] ul.trace`))); !strings.Contains(tree, "bounce.dmarc-strict.test") {
		t.Errorf("SPF trace %q", tree)
	}
	run(t, ctx, "connection and domain pages",
		chromedp.Navigate(srv.URL+"/troubleshoot/connection"),
		chromedp.WaitVisible(css("#host")),
		shoot(dir, "8-connection-form"),
		chromedp.Navigate(srv.URL+"/troubleshoot/domain"),
		chromedp.WaitVisible(css("#domain")),
		shoot(dir, "9-domain-form"))

	// On a phone: nothing wider than the screen.
	run(t, ctx, "phone",
		chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile),
		chromedp.Navigate(srv.URL+"/troubleshoot/delivery?target=postmaster%40example.test"),
		chromedp.WaitVisible(css("#target")),
		chromedp.Click(css("#run")),
		chromedp.WaitVisible(css("#verdict[data-verdict]")),
		shoot(dir, "4-phone-delivery"))
	if get(t, ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)) {
		t.Error("the page is wider than a phone's screen")
	}
	run(t, ctx, "desktop", chromedp.EmulateViewport(1280, 900))

	// Reports → DMARC: the failing source's link opens the DMARC
	// troubleshooter prefilled with its IP and the domain.
	run(t, ctx, "reports one-click troubleshooting",
		chromedp.Navigate(srv.URL+"/reports?domain=mydomain.org"),
		chromedp.WaitVisible(css("#dmarc-chart")),
		shoot(dir, "10-reports-dmarc"),
		chromedp.Click(css("#sources a.action")),
		chromedp.WaitVisible(css("#dmarc-form")))
	if ip := get(t, ctx, chromedp.Value(css("#ip"))); ip != "42.42.42.42" {
		t.Errorf("prefilled IP %q", ip)
	}
	if from := get(t, ctx, chromedp.Value(css("#mail_from"))); from != "postmaster@mydomain.org" {
		t.Errorf("prefilled MAIL FROM %q", from)
	}
	if focused := get(t, ctx, chromedp.Evaluate[string](`document.activeElement.id`)); focused != "helo" {
		t.Errorf("focus on %q, want the EHLO field", focused)
	}

	// The failure reports, one of them, the quarantine with its
	// re-process buttons, the alerts and the settings.
	ctxDB := context.Background()
	f.db.SetAlertConfig(ctxDB, []store.AlertRule{{Name: "fail-rate", Kind: "dmarc_fail_rate", Domain: "mydomain.org", Threshold: 5, MinVolume: 10, Window: 24 * time.Hour}},
		[]store.Webhook{{Name: "ops", URL: "https://hooks.example/mxray", Secret: "0123456789abcdef"}})
	f.db.AlertFire(ctxDB, store.Alert{Rule: "fail-rate", Kind: "dmarc_fail_rate", Subject: "mydomain.org", At: t0, Body: `{"type":"alert","rule":"fail-rate"}`})
	if ob, _ := f.db.Outbox(ctxDB); len(ob) == 1 {
		f.db.OutboxFailed(ctxDB, ob[0].ID, t0.Add(time.Minute), "HTTP 503")
	}
	run(t, ctx, "failure reports, quarantine, alerts, settings",
		chromedp.Navigate(srv.URL+"/reports/failure"),
		chromedp.WaitVisible(css("#failures")),
		shoot(dir, "11-reports-failure"),
		chromedp.Click(css("#failures tbody th a")),
		chromedp.WaitVisible(css("#original-headers")),
		shoot(dir, "12-failure-report"),
		chromedp.Navigate(srv.URL+"/reports/quarantine"),
		chromedp.WaitVisible(css("#quarantine button")),
		shoot(dir, "13-quarantine"),
		chromedp.Navigate(srv.URL+"/alerts"),
		chromedp.WaitVisible(css("#alerts")),
		shoot(dir, "14-alerts"),
		chromedp.Navigate(srv.URL+"/settings?rule=fail-rate"),
		chromedp.WaitVisible(css("#rule-form")),
		shoot(dir, "15-settings"))
	if v := get(t, ctx, chromedp.Value(css("#rule-window"))); v != "24h" {
		t.Errorf("rule form window %q", v)
	}

	// A form posted without its CSRF token is refused, and the session
	// survives it.
	run(t, ctx, "post without token",
		chromedp.Navigate(srv.URL+"/settings"),
		chromedp.WaitVisible(css("form.logout")),
		shoot(dir, "5-settings"),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := chromedp.Evaluate[bool](`(() => { const f = document.querySelector("form.logout"); f.querySelector("[name=csrf]").remove(); f.submit(); return true; })()`)(ctx, tg)
			return err
		}),
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			for { // until the browser shows the answer to the POST
				loc, err := chromedp.Location()(ctx, tg)
				if err != nil {
					return err
				}
				if strings.HasSuffix(loc, "/logout") {
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(50 * time.Millisecond):
				}
			}
		}),
		chromedp.WaitReady(css("body")),
		shoot(dir, "6-csrf-refused"))
	if body := get(t, ctx, chromedp.Text(css("body"))); !strings.Contains(body, "CSRF protection") {
		t.Errorf("logout without token: page %q", body)
	}
	run(t, ctx, "still logged in",
		chromedp.Navigate(srv.URL+"/settings"),
		chromedp.WaitVisible(css("form.logout")))
	status := get(t, ctx, chromedp.Evaluate[int](`fetch("/logout", {method: "POST", body: new URLSearchParams({x: "1"})}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	if status != 403 {
		t.Errorf("POST without token from the page: %d, want 403", status)
	}
	// Logging out with the form works.
	run(t, ctx, "logout",
		chromedp.Click(css("form.logout button")),
		chromedp.WaitVisible(css("#password")),
		chromedp.Navigate(srv.URL+"/settings"),
		chromedp.WaitVisible(css("#password")))
	t.Logf("screenshots in %s", dir)
}
