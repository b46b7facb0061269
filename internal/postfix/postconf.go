package postfix

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
)

// Errors of the configuration tools (postconf, postfix check).
var (
	// ErrNotInstalled: postconf is not in PATH.
	ErrNotInstalled = errors.New("postfix: not installed")
	// ErrNoConfig: the configuration directory has no readable main.cf.
	ErrNoConfig = errors.New("postfix: no main.cf in the configuration directory")
)

// Params are main.cf parameters by name, as postconf prints them.
type Params map[string]string

// ParseParams reads main.cf syntax, which is also what postconf prints:
// "name = value" lines, "#" comments, and continuation lines that start
// with white space. Lines without "=" are ignored (postconf's own
// warnings, if they were mixed in).
func ParseParams(b []byte) Params {
	p := Params{}
	var name string
	var val strings.Builder
	flush := func() {
		if name != "" {
			p[name] = strings.TrimSpace(val.String())
		}
		name = ""
		val.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		trim := strings.TrimSpace(line)
		if trim == "" || trim[0] == '#' {
			// main.cf(5): a comment or blank line ends nothing; a
			// continuation may follow it.
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if name != "" {
				val.WriteByte(' ')
				val.WriteString(trim)
			}
			continue
		}
		flush()
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		name = k
		val.WriteString(strings.TrimSpace(v))
	}
	flush()
	return p
}

// List splits a parameter value into its items: Postfix separates list
// items with white space and commas.
func List(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' || r == '\r' })
}

// Bool reports Postfix's reading of a boolean parameter: "yes" is true.
func Bool(v string) bool { return strings.EqualFold(strings.TrimSpace(v), "yes") }

// Service is one master.cf entry as postconf -M prints it.
type Service struct {
	Name    string   `json:"name"` // "smtp", "submission", "127.0.0.1:2525"
	Type    string   `json:"type"` // inet, unix, unix-dgram, fifo, pass
	Command string   `json:"command"`
	Args    []string `json:"args,omitempty"` // after the command: -o overrides and so on
}

// ParseMaster reads postconf -M output (or master.cf itself, with its
// continuation lines).
func ParseMaster(b []byte) []Service {
	var out []Service
	var cur []string
	flush := func() {
		if len(cur) >= 8 {
			out = append(out, Service{Name: cur[0], Type: cur[1], Command: cur[7], Args: cur[8:]})
		}
		cur = nil
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		if trim == "" || trim[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			cur = append(cur, strings.Fields(trim)...)
			continue
		}
		flush()
		cur = strings.Fields(trim)
	}
	flush()
	return out
}

// Port returns the TCP port an inet service listens on: the number after
// the last colon, or the port of a well-known service name.
func (s Service) Port() int {
	name := s.Name
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n
	}
	switch name {
	case "smtp":
		return 25
	case "submission":
		return 587
	case "smtps", "submissions":
		return 465
	}
	return 0
}

// Version is a Postfix release number.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads mail_version ("3.7.11", "3.10-20250101").
func ParseVersion(s string) (Version, bool) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "-_ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return Version{}, false
	}
	var n [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return Version{}, false
		}
		n[i] = v
	}
	return Version{n[0], n[1], n[2]}, true
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is o or later.
func (v Version) AtLeast(o Version) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

// Runner is the Runner of queue.go: Config runs postconf and postfix
// through it too.

// Config reads one Postfix instance's configuration with postconf and
// runs postfix check and postfix status on it.
type Config struct {
	Runner    Runner // nil means ExecRunner
	ConfigDir string // -c; "" means the default instance
	Logger    *slog.Logger
}

func (c *Config) run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	r := c.Runner
	if r == nil {
		r = ExecRunner{}
	}
	if c.ConfigDir != "" {
		args = append([]string{"-c", c.ConfigDir}, args...)
	}
	out, errb, err := r.Run(ctx, nil, name, args...)
	if c.Logger != nil {
		c.Logger.Debug("postfix command", "cmd", name+" "+strings.Join(args, " "), "stdout_bytes", len(out),
			"stderr", strings.TrimSpace(string(errb)), "err", err)
	}
	if err != nil {
		msg := strings.TrimSpace(string(errb))
		switch {
		case errors.Is(err, exec.ErrNotFound):
			return out, errb, fmt.Errorf("%w: %s: %v", ErrNotInstalled, name, err)
		case ctx.Err() != nil:
			return out, errb, ctx.Err()
		case strings.Contains(msg, "main.cf: No such file"):
			return out, errb, fmt.Errorf("%w: %s", ErrNoConfig, msg)
		}
	}
	return out, errb, err
}

// NonDefault returns postconf -n: the parameters set in main.cf, and the
// raw output.
func (c *Config) NonDefault(ctx context.Context) (Params, []byte, error) {
	out, errb, err := c.run(ctx, "postconf", "-n")
	if err != nil {
		return nil, out, wrapTool("postconf -n", err, errb)
	}
	return ParseParams(out), out, nil
}

// Effective returns the values in use of the named parameters, with
// $name references expanded (postconf -x). Parameters this Postfix does
// not know are absent from the result.
func (c *Config) Effective(ctx context.Context, names ...string) (Params, error) {
	out, errb, err := c.run(ctx, "postconf", append([]string{"-x"}, names...)...)
	if err != nil {
		return nil, wrapTool("postconf -x", err, errb)
	}
	return ParseParams(out), nil
}

// Defaults returns the built-in defaults of the named parameters
// (postconf -d), unexpanded.
func (c *Config) Defaults(ctx context.Context, names ...string) (Params, error) {
	out, errb, err := c.run(ctx, "postconf", append([]string{"-d"}, names...)...)
	if err != nil {
		return nil, wrapTool("postconf -d", err, errb)
	}
	return ParseParams(out), nil
}

// Services returns master.cf's services (postconf -M).
func (c *Config) Services(ctx context.Context) ([]Service, error) {
	out, errb, err := c.run(ctx, "postconf", "-M")
	if err != nil {
		return nil, wrapTool("postconf -M", err, errb)
	}
	return ParseMaster(out), nil
}

// CheckResult is what postfix check said.
type CheckResult struct {
	OK       bool     `json:"ok"`                 // exit status 0
	Warnings []string `json:"warnings,omitempty"` // "warning:" lines
	Errors   []string `json:"errors,omitempty"`   // "fatal:", "error:" and other non-warning lines
}

// Check runs postfix check, which verifies the instance's files and
// directories and prints what is wrong on standard error.
func (c *Config) Check(ctx context.Context) (CheckResult, error) {
	out, errb, err := c.run(ctx, "postfix", "check")
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return CheckResult{}, wrapTool("postfix check", err, errb)
	}
	r := CheckResult{OK: err == nil}
	for _, l := range strings.Split(string(out)+"\n"+string(errb), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case strings.Contains(l, "warning: "):
			r.Warnings = append(r.Warnings, l)
		default:
			r.Errors = append(r.Errors, l)
		}
	}
	return r, nil
}

func wrapTool(what string, err error, errb []byte) error {
	if errors.Is(err, ErrNotInstalled) || errors.Is(err, ErrNoConfig) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if msg := strings.TrimSpace(string(errb)); msg != "" {
		return fmt.Errorf("postfix: %s: %s", what, msg)
	}
	return fmt.Errorf("postfix: %s: %w", what, err)
}
