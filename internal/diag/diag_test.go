package diag

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sampleStep() Step {
	return Step{
		ID: "rcpt", Status: Fail, Title: "RCPT TO rejected", Detail: "550 5.1.1 user unknown",
		Hint: "check the address", RFC: "RFC 5321 §4.2.2", Elapsed: 12500 * time.Microsecond,
		Host: "mx1.example.test", IP: "127.0.0.1",
		Transcript: []string{"C: RCPT TO:<bob@example.test>", "S: 550 5.1.1 user unknown"},
	}
}

func TestJSONStepLine(t *testing.T) {
	var b bytes.Buffer
	o := &Output{W: &b, JSON: true}
	o.Sink().Start(Step{ID: "rcpt", Title: "RCPT TO"}) // nothing for a start in JSON Lines
	o.Sink().Finish(sampleStep())
	var got map[string]any
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, b.String())
	}
	want := map[string]any{
		"type": "step", "id": "rcpt", "status": "fail", "title": "RCPT TO rejected",
		"detail": "550 5.1.1 user unknown", "hint": "check the address", "rfc": "RFC 5321 §4.2.2",
		"host": "mx1.example.test", "ip": "127.0.0.1", "elapsed_ms": 12.5,
		"transcript": []any{"C: RCPT TO:<bob@example.test>", "S: 550 5.1.1 user unknown"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("step line (-want +got):\n%s", diff)
	}
	if strings.Count(b.String(), "\n") != 1 {
		t.Errorf("want exactly one line, got %q", b.String())
	}
}

func TestTextStep(t *testing.T) {
	var b bytes.Buffer
	o := &Output{W: &b}
	o.Sink().Finish(sampleStep())
	want := "[FAIL] RCPT TO rejected (mx1.example.test 127.0.0.1)  12 ms\n" +
		"       550 5.1.1 user unknown\n" +
		"       fix: check the address\n" +
		"       see: RFC 5321 §4.2.2\n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("text (-want +got):\n%s", diff)
	}
	// Transcripts only at trace level; colour only when asked.
	b.Reset()
	o = &Output{W: &b, Transcripts: true, Color: true}
	o.Sink().Finish(sampleStep())
	if !strings.Contains(b.String(), "S: 550 5.1.1 user unknown") || !strings.Contains(b.String(), "\x1b[31m[FAIL]") {
		t.Errorf("trace-level colour text lacks the transcript or colour:\n%q", b.String())
	}
}

func TestLiveLineIsReplacedOnATerminal(t *testing.T) {
	var b bytes.Buffer
	o := &Output{W: &b, TTY: true}
	o.Sink().Start(Step{ID: "mx", Title: "Looking up MX"})
	o.Sink().Finish(Step{ID: "mx", Status: OK, Title: "MX found"})
	got := b.String()
	if !strings.HasPrefix(got, "  … Looking up MX\r\x1b[K[ ok ] MX found") {
		t.Errorf("live line not replaced: %q", got)
	}
	// Not a terminal: no live line at all.
	b.Reset()
	o = &Output{W: &b}
	o.Sink().Start(Step{ID: "mx", Title: "Looking up MX"})
	if b.Len() != 0 {
		t.Errorf("start wrote %q when not on a terminal", b.String())
	}
}

func TestResultEnvelope(t *testing.T) {
	var b bytes.Buffer
	o := &Output{W: &b, JSON: true}
	type res struct {
		Verdict string `json:"verdict"`
		N       int    `json:"n"`
	}
	called := false
	if err := o.Result("delivery", res{"deliverable", 2}, func(io.Writer, *Output) { called = true }); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != `{"type":"result","command":"delivery","schema":1,"verdict":"deliverable","n":2}`+"\n" {
		t.Errorf("result line %q", got)
	}
	if called {
		t.Error("the human renderer ran in JSON mode")
	}
	b.Reset()
	o.Result("version", struct{}{}, nil)
	if got := b.String(); got != `{"type":"result","command":"version","schema":1}`+"\n" {
		t.Errorf("empty result %q", got)
	}
	if err := o.Result("bad", []int{1}, nil); err == nil {
		t.Error("a non-object result was accepted")
	}
	b.Reset()
	o = &Output{W: &b}
	o.Result("x", res{}, func(w io.Writer, _ *Output) { fmt.Fprint(w, "human") })
	if b.String() != "human" {
		t.Errorf("text mode wrote %q", b.String())
	}
}

func TestWorstAndRecorder(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{nil, Skip},
		{[]Status{Skip, Info}, Info},
		{[]Status{OK, Info, Skip}, OK},
		{[]Status{OK, Warn, OK}, Warn},
		{[]Status{Warn, Fail, OK}, Fail},
	}
	for _, tc := range tests {
		var steps []Step
		for _, s := range tc.in {
			steps = append(steps, Step{Status: s})
		}
		if got := Worst(steps); got != tc.want {
			t.Errorf("Worst(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	var r Recorder
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	env := Env{Now: func() time.Time { now = now.Add(5 * time.Millisecond); return now }}
	tr := Begin(env, Tee(&r, Discard), "mx", "Looking up MX")
	st := tr.Done(Step{Status: OK})
	if st.ID != "mx" || st.Title != "Looking up MX" || st.Elapsed != 5*time.Millisecond {
		t.Errorf("Done = %+v", st)
	}
	if got, ok := r.Find("mx"); !ok || got.Status != OK {
		t.Errorf("recorder: %+v %v", got, ok)
	}
}

func TestErrorClassesAndFit(t *testing.T) {
	for _, tc := range []struct {
		err   error
		class error
	}{
		{Usagef("bad %s", "flag"), ErrUsage},
		{Uncheckedf("resolver down"), ErrUnchecked},
		{Findingf("undeliverable"), ErrFinding},
		{Found, ErrFinding},
	} {
		if !errors.Is(tc.err, tc.class) {
			t.Errorf("%v is not %v", tc.err, tc.class)
		}
	}
	if Usagef("bad %s", "flag").Error() != "bad flag" {
		t.Error("message lost")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if d := Fit(ctx, time.Second); d != time.Second {
		t.Errorf("Fit under a far deadline = %v, want 1s", d)
	}
	if d := Fit(ctx, 2*time.Hour); d > time.Hour {
		t.Errorf("Fit over the deadline = %v, want at most 1h", d)
	}
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	if d := Fit(expired, time.Second); d != time.Millisecond {
		t.Errorf("Fit after the deadline = %v, want the 1ms floor", d)
	}
}
