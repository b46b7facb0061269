package web

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/diag"
)

// TestDeliveryStream runs the delivery test against the lab (DNS and a
// real Postfix) through the event stream.
func TestDeliveryStream(t *testing.T) {
	env := labEnv(t)
	f := newFixture(t, env, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)

	w := b.get("/troubleshoot/delivery/run?target=alice@example.test")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "text/event-stream; charset=utf-8" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("run: %d %v\n%s", w.Code, w.Header(), w.Body)
	}
	evs := events(t, w.Body.String())
	var started, finished []string
	for i, e := range evs {
		if e.Data["type"] != e.Name {
			t.Errorf("event %s carries type %v", e.Name, e.Data["type"])
		}
		switch e.Name {
		case "start":
			started = append(started, e.Data["id"].(string))
		case "step":
			id := e.Data["id"].(string)
			finished = append(finished, id+":"+e.Data["status"].(string))
			// A step starts before it finishes.
			if i == 0 || evs[i-1].Name != "start" || evs[i-1].Data["id"] != id {
				t.Errorf("step %s not preceded by its start event", id)
			}
		case "result":
			if i != len(evs)-1 {
				t.Error("result is not the last event")
			}
		}
	}
	for _, want := range []string{"mx:ok", "addresses:ok", "connect:ok", "banner:ok", "ehlo:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"} {
		if !slices.Contains(finished, want) {
			t.Errorf("no step %s in %v", want, finished)
		}
	}
	if len(started) != len(finished) {
		t.Errorf("%d starts, %d steps", len(started), len(finished))
	}
	last := evs[len(evs)-1]
	if last.Name != "result" || last.Data["command"] != "delivery" || last.Data["schema"] != float64(diag.Schema) ||
		last.Data["verdict"] != "deliverable" || last.Data["recipient"] != "alice@example.test" || last.Data["decided_by"] != "rcpt" {
		t.Errorf("result event %s", last.Raw)
	}
	// The rcpt step's transcript shows the question asked.
	for _, e := range evs {
		if e.Name == "step" && e.Data["id"] == "rcpt" {
			tr, _ := e.Data["transcript"].([]any)
			if !slices.ContainsFunc(tr, func(l any) bool { return strings.HasPrefix(l.(string), "C: RCPT TO:<alice@example.test>") }) {
				t.Errorf("rcpt transcript %v", tr)
			}
		}
	}

	// An unknown recipient: Postfix says 550, the verdict is undeliverable.
	evs = events(t, b.get("/troubleshoot/delivery/run?target=nobody@example.test").Body.String())
	if last := evs[len(evs)-1]; last.Data["verdict"] != "undeliverable" {
		t.Errorf("unknown recipient: %s", last.Raw)
	}
}

func TestDeliveryRefusals(t *testing.T) {
	f := newFixture(t, noEnv, nil)
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	for _, target := range []string{"", "a%20b@example.test", "exa%20mple.test", "user@"} {
		w := b.get("/troubleshoot/delivery/run?target=" + target)
		if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "Give an address") {
			t.Errorf("target %q: %d %s, want 400", target, w.Code, w.Body)
		}
	}
	// Rate limit: runsPerWindow runs a minute per client. The resolver
	// answers nothing, so each run ends at once with verdict error.
	for i := range runsPerWindow {
		if w := b.get("/troubleshoot/delivery/run?target=example.test"); w.Code != http.StatusOK {
			t.Fatalf("run %d: %d %s", i+1, w.Code, w.Body)
		}
	}
	w := b.get("/troubleshoot/delivery/run?target=example.test")
	if w.Code != http.StatusTooManyRequests || !strings.Contains(w.Body.String(), "Too many tests: at most 10 a minute.") || w.Header().Get("Retry-After") == "" {
		t.Errorf("run 11: %d %s", w.Code, w.Body)
	}
	if w := f.browser(t, "192.0.2.2").get("/troubleshoot/delivery/run?target=example.test"); w.Code != http.StatusUnauthorized {
		t.Errorf("run without a session: %d, want 401", w.Code)
	}
	f.clock.Add(runWindow)
	if w := b.get("/troubleshoot/delivery/run?target=example.test"); w.Code != http.StatusOK {
		t.Errorf("after a minute: %d", w.Code)
	}
}

// TestDeliveryGuard: with AllowPrivate off, the lab's loopback mail host
// is not reached, and the stream says why.
func TestDeliveryGuard(t *testing.T) {
	env := labEnv(t)
	f := newFixture(t, env, func(c *Config) { c.AllowPrivate = false })
	b := f.browser(t, "192.0.2.1")
	b.mustLogin(f.password)
	for _, tc := range []struct{ target, refused string }{
		{"alice@example.test", "mx1.example.test → 127.0.0.1"},
		{"ipmx.test", "ipmx.test → 127.0.0.1"},
		{"v6.test", "mx.v6.test → fe80::1"},
	} {
		evs := events(t, b.get("/troubleshoot/delivery/run?target="+tc.target).Body.String())
		var guard *sseEvent
		for i, e := range evs {
			if e.Name == "step" && e.Data["id"] == "connect" {
				t.Errorf("%s: connected although the address is private: %s", tc.target, e.Raw)
			}
			if e.Name == "step" && e.Data["id"] == StepGuard {
				guard = &evs[i]
			}
		}
		if guard == nil || guard.Data["status"] != "fail" || !strings.Contains(guard.Raw, tc.refused) {
			t.Errorf("%s: guard step %+v, want it to name %s", tc.target, guard, tc.refused)
		}
		if last := evs[len(evs)-1]; last.Name != "result" || last.Data["verdict"] == "deliverable" {
			t.Errorf("%s: result %s", tc.target, last.Raw)
		}
	}
}
