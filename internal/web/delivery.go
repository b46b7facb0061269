package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mxray/mxray/internal/delivery"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/store"
)

// StepGuard is the id of the step the web admin adds when it refused to
// reach an address (Config.AllowPrivate off).
const StepGuard = "guard"

func (s *server) deliveryPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	s.render(w, http.StatusOK, "delivery", page{Title: "Email delivery", Nav: "/troubleshoot/delivery",
		User: sess.Admin, CSRF: sess.CSRF, Target: r.URL.Query().Get("target")})
}

// deliveryRun streams the delivery test (see stream). Refusals come
// before the stream starts, as plain text with their status: 400 for a
// bad target, 429 over the rate limit, 403 from another site.
func (s *server) deliveryRun(w http.ResponseWriter, r *http.Request, _ *store.AdminSession) {
	// A GET is exempt from CrossOriginProtection; this one makes outgoing
	// connections, so another site must not start it (SameSite=Lax would
	// still send the cookie on a top-level navigation).
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		http.Error(w, "cross-site request refused", http.StatusForbidden)
		return
	}
	target, err := delivery.ParseTarget(r.URL.Query().Get("target"))
	if err != nil {
		http.Error(w, "Give an address (local@domain) or a domain name: "+err.Error(), http.StatusBadRequest)
		return
	}
	label := target.Address + target.Domain
	s.stream(w, r, "delivery", label, func(ctx context.Context, env diag.Env, sink diag.Sink) any {
		res := delivery.Run(ctx, env, target, sink)
		s.log.Debug("web: delivery test", "target", label, "verdict", res.Verdict)
		return res
	})
}

// stream runs one troubleshooter as server-sent events (HTML Living
// Standard §9.2): "start" and "step" events while it runs, one "result"
// event at the end, each data line one JSON object as the CLI's --json
// prints it for command. It takes one run from the client's rate limit
// first (429 over it, before the stream starts) and, unless
// Config.AllowPrivate, runs fn behind the address guard, adding a
// StepGuard step that names what it refused.
func (s *server) stream(w http.ResponseWriter, r *http.Request, command, label string, fn func(ctx context.Context, env diag.Env, sink diag.Sink) any) {
	if wait, ok := s.runs.take(clientKey(r)); !ok {
		secs := int(wait.Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		http.Error(w, fmt.Sprintf("Too many tests: at most %d a minute. Try again in %d s.", runsPerWindow, secs),
			http.StatusTooManyRequests)
		return
	}
	env := s.cfg.Env
	var g *guard
	if !s.cfg.AllowPrivate {
		env, g = guarded(env)
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RunTimeout)
	defer cancel()

	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{}) // a run outlasts the server's WriteTimeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not hold the stream back
	w.WriteHeader(http.StatusOK)
	sink := &sseSink{w: w, flush: rc.Flush}
	sink.comment("mxray " + command + " " + label)

	res := fn(ctx, env, sink)
	if g != nil {
		if refused := g.Refused(); len(refused) > 0 {
			sink.Finish(diag.Step{ID: StepGuard, Status: diag.Fail,
				Title:  "the web admin did not reach private or loopback addresses",
				Detail: "The DNS led to addresses this server does not connect to for a browser (server-side request forgery protection):\n" + strings.Join(refused, "\n"),
				Hint:   "Run the test from the command line (mxray " + command + "), or set allow_private when the admin listens on loopback only.",
				Data:   map[string]any{"refused": refused}})
		}
	}
	var buf bytes.Buffer
	out := &diag.Output{W: &buf, JSON: true}
	if err := out.Result(command, res, nil); err != nil {
		s.log.Error("web: result", "command", command, "err", err)
		return
	}
	sink.event("result", bytes.TrimSpace(buf.Bytes()))
}

// sseSink writes steps as server-sent events and flushes each at once.
// Writes fail silently once the browser has gone; the request's context
// then ends the run.
type sseSink struct {
	mu    sync.Mutex
	w     io.Writer
	flush func() error
}

func (k *sseSink) Start(st diag.Step)  { k.event("start", diag.StartJSON(st)) }
func (k *sseSink) Finish(st diag.Step) { k.event("step", diag.StepJSON(st)) }

// event writes one event; data is one line of JSON (encoding/json
// escapes newlines inside strings), so one data: line.
func (k *sseSink) event(name string, data []byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var b bytes.Buffer
	b.WriteString("event: ")
	b.WriteString(name)
	b.WriteString("\ndata: ")
	b.Write(bytes.ReplaceAll(data, []byte("\n"), []byte("\ndata: ")))
	b.WriteString("\n\n")
	k.w.Write(b.Bytes())
	k.flush()
}

func (k *sseSink) comment(text string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	io.WriteString(k.w, ": "+strings.ReplaceAll(text, "\n", " ")+"\n\n")
	k.flush()
}
