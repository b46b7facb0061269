// Package diag is mxray's shared vocabulary for diagnostics: the status of a
// step, the Step events a diagnostic emits while it runs, the Sink that
// receives them, the injected world (Env) every diagnostic runs in, and the
// renderers that turn one stream of steps into terminal text or JSON Lines
// (DESIGN.md, "Data flow" and "Contracts").
//
// Every diagnostic has the shape
//
//	func Run(ctx context.Context, env diag.Env, target T, out diag.Sink) Result
//
// and reaches DNS, the network and the clock only through env.
package diag

import (
	"sync"
	"time"
)

// Status is the outcome of one step.
type Status string

const (
	OK   Status = "ok"   // the step found what it should
	Warn Status = "warn" // works, but something should be fixed
	Fail Status = "fail" // the step found a problem
	Skip Status = "skip" // not run, because an earlier step decided it or it does not apply
	Info Status = "info" // evidence only, no judgement
)

// Worse reports whether s is a worse outcome than t, in the order
// fail > warn > ok > info > skip.
func (s Status) Worse(t Status) bool { return s.rank() > t.rank() }

func (s Status) rank() int {
	switch s {
	case Fail:
		return 4
	case Warn:
		return 3
	case OK:
		return 2
	case Info:
		return 1
	}
	return 0
}

// Step is one stage of a diagnostic, sent to a Sink when it starts (Status
// empty) and again when it finishes. The same value is rendered as terminal
// text, a JSON Lines object, a server-sent event or HTML.
type Step struct {
	ID      string        `json:"id"`               // stable per command, documented in docs/json.md
	Status  Status        `json:"status,omitempty"` // empty while the step runs
	Title   string        `json:"title"`            // one line, what the step does or found
	Detail  string        `json:"detail,omitempty"` // what was asked and what came back
	Hint    string        `json:"hint,omitempty"`   // the fix, when there is something to fix
	RFC     string        `json:"rfc,omitempty"`    // e.g. "RFC 5321 §5.1"
	Elapsed time.Duration `json:"-"`
	Host    string        `json:"host,omitempty"` // the server a per-server step talked to
	IP      string        `json:"ip,omitempty"`
	// Data is the step's structured evidence; it must marshal to JSON.
	Data any `json:"data,omitempty"`
	// Transcript holds protocol lines marked "C: " and "S: ", secrets
	// already replaced by <redacted>.
	Transcript []string `json:"transcript,omitempty"`
}

// Sink receives steps as they happen. Implementations must be safe for
// concurrent use: diagnostics run independent lookups in parallel.
type Sink interface {
	Start(Step)
	Finish(Step)
}

// Discard is a Sink that drops every step.
var Discard Sink = discard{}

type discard struct{}

func (discard) Start(Step)  {}
func (discard) Finish(Step) {}

// Tee sends every step to each of the sinks, in order.
func Tee(sinks ...Sink) Sink { return tee(sinks) }

type tee []Sink

func (t tee) Start(s Step) {
	for _, k := range t {
		k.Start(s)
	}
}

func (t tee) Finish(s Step) {
	for _, k := range t {
		k.Finish(s)
	}
}

// Recorder is a Sink that keeps every finished step, for tests and for
// building a Result from the stream.
type Recorder struct {
	mu    sync.Mutex
	Steps []Step
}

// Start implements Sink.
func (r *Recorder) Start(Step) {}

// Finish implements Sink.
func (r *Recorder) Finish(s Step) {
	r.mu.Lock()
	r.Steps = append(r.Steps, s)
	r.mu.Unlock()
}

// Find returns the first finished step with the given id.
func (r *Recorder) Find(id string) (Step, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return Step{}, false
}

// Worst returns the worst status among the finished steps (Skip if none).
func Worst(steps []Step) Status {
	w := Skip
	for _, s := range steps {
		if s.Status.Worse(w) {
			w = s.Status
		}
	}
	return w
}
