package diag

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Schema is the version of the JSON result envelope (docs/json.md).
const Schema = 1

// Output is where a command writes its result: human text or JSON Lines,
// on stdout. Logs and progress never go here.
type Output struct {
	W    io.Writer
	JSON bool // JSON Lines instead of text
	// TTY enables the live "running" line; Color adds ANSI colours (only
	// on a terminal, and never when NO_COLOR is set — the CLI decides).
	TTY   bool
	Color bool
	// Transcripts prints each step's protocol transcript in text mode
	// (--log-level trace); JSON always carries them.
	Transcripts bool

	mu      sync.Mutex
	running string // the live line currently shown, if any
}

// Sink returns the Sink that renders steps to this output.
func (o *Output) Sink() Sink { return (*outSink)(o) }

type outSink Output

func (s *outSink) Start(st Step) {
	o := (*Output)(s)
	if o.JSON || !o.TTY {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clearRunning()
	o.running = "  … " + st.Title
	fmt.Fprint(o.W, o.paint(dim, o.running))
}

func (s *outSink) Finish(st Step) {
	o := (*Output)(s)
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.JSON {
		writeJSONLine(o.W, stepLine(st))
		return
	}
	o.clearRunning()
	o.writeStep(st)
}

func (o *Output) clearRunning() {
	if o.running != "" {
		fmt.Fprint(o.W, "\r\x1b[K")
		o.running = ""
	}
}

// jsonStep is a Step as JSON Lines carries it.
type jsonStep struct {
	Type string `json:"type"`
	Step
	ElapsedMS float64 `json:"elapsed_ms"`
}

func stepLine(st Step) jsonStep {
	return jsonStep{Type: "step", Step: st, ElapsedMS: Millis(st.Elapsed)}
}

// Millis converts a duration to milliseconds with microsecond precision,
// the unit of every *_ms field.
func Millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond).Microseconds()) / 1000
}

const (
	red    = "31"
	green  = "32"
	yellow = "33"
	blue   = "34"
	dim    = "2"
	bold   = "1"
)

func (o *Output) paint(code, s string) string {
	if !o.Color || s == "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// Mark returns the status tag shown before a step: words, so the text
// reads the same without colour.
func (o *Output) Mark(s Status) string {
	switch s {
	case OK:
		return o.paint(green, "[ ok ]")
	case Warn:
		return o.paint(yellow, "[warn]")
	case Fail:
		return o.paint(red, "[FAIL]")
	case Info:
		return o.paint(blue, "[info]")
	}
	return o.paint(dim, "[skip]")
}

func (o *Output) writeStep(st Step) {
	var b strings.Builder
	title := st.Title
	if st.Host != "" || st.IP != "" {
		title += o.paint(dim, " ("+strings.Trim(st.Host+" "+st.IP, " ")+")")
	}
	fmt.Fprintf(&b, "%s %s", o.Mark(st.Status), title)
	if st.Elapsed > 0 {
		fmt.Fprintf(&b, "  %s", o.paint(dim, FormatElapsed(st.Elapsed)))
	}
	b.WriteByte('\n')
	indent := func(prefix, text string) {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			fmt.Fprintf(&b, "       %s%s\n", prefix, line)
		}
	}
	if st.Detail != "" {
		indent("", st.Detail)
	}
	if st.Hint != "" {
		indent(o.paint(bold, "fix: "), st.Hint)
	}
	if st.RFC != "" {
		indent(o.paint(dim, "see: "), st.RFC)
	}
	if o.Transcripts {
		for _, l := range st.Transcript {
			indent("", o.paint(dim, l))
		}
	}
	io.WriteString(o.W, b.String())
}

// FormatElapsed shows a duration the way a person reads timings: "850 µs",
// "12 ms", "1.4 s".
func FormatElapsed(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%d µs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// Result writes the command's result: in JSON mode exactly one line
// {"type":"result","command":NAME,"schema":1, …v's fields}; otherwise it
// calls human to write text. v must marshal to a JSON object.
func (o *Output) Result(command string, v any, human func(w io.Writer, o *Output)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.clearRunning()
	if !o.JSON {
		if human != nil {
			human(o.W, o)
		}
		return nil
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("diag: encoding %s result: %w", command, err)
	}
	body = bytes.TrimSpace(body)
	if len(body) < 2 || body[0] != '{' {
		return fmt.Errorf("diag: %s result is not a JSON object", command)
	}
	head, _ := json.Marshal(struct {
		Type    string `json:"type"`
		Command string `json:"command"`
		Schema  int    `json:"schema"`
	}{"result", command, Schema})
	var line bytes.Buffer
	line.Write(head[:len(head)-1])
	if len(body) > 2 {
		line.WriteByte(',')
		line.Write(body[1:])
	} else {
		line.WriteByte('}')
	}
	line.WriteByte('\n')
	_, err = o.W.Write(line.Bytes())
	return err
}

// Paint colours s with an ANSI code when colour is on, for command
// renderers that want the same palette ("31" red, "32" green, "33" yellow,
// "2" dim, "1" bold).
func (o *Output) Paint(code, s string) string { return o.paint(code, s) }

func writeJSONLine(w io.Writer, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"type": "error", "error": err.Error()})
	}
	b = append(b, '\n')
	w.Write(b)
}
