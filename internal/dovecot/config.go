// Package dovecot reads a Dovecot configuration as doveconf -n prints it
// — both the 2.3 syntax (mail_location, ssl_cert, disable_plaintext_auth)
// and the 2.4 one (dovecot_config_version, mail_driver/mail_path,
// ssl_server_cert_file, auth_allow_cleartext, named passdb/userdb
// sections) — and checks what Postfix and administrators most often get
// wrong around it: where mail is stored, TLS and cleartext logins, and
// the permissions of Maildirs (Maildir as described in Dovecot's and
// qmail's maildir(5) documentation; there is no RFC).
//
// Not supported: !include and conf.d files read directly (doveconf -n
// resolves them); heredoc values (key = <<EOF); dict and SQL files;
// dbox and mbox integrity checks (only their location is compared).
package dovecot

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
)

var (
	// ErrNotInstalled: doveconf is not in PATH.
	ErrNotInstalled = errors.New("dovecot: not installed")
	// ErrNoConfig: doveconf could not read the configuration file.
	ErrNoConfig = errors.New("dovecot: cannot read the configuration")
)

// Setting is one "key = value" line.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Section is a "type [name] { ... }" block, or the top level.
type Section struct {
	Type     string     `json:"type,omitempty"` // "passdb", "service", "protocol", "inet_listener", ...
	Name     string     `json:"name,omitempty"` // "imap-login", "lmtp", "" when unnamed
	Settings []Setting  `json:"settings,omitempty"`
	Sections []*Section `json:"sections,omitempty"`
}

// Config is a parsed Dovecot configuration.
type Config struct {
	Root *Section
	// Header is doveconf's first comment line ("# 2.3.19.1 (9b53102964):
	// /etc/dovecot/dovecot.conf"), if present.
	Header string
}

// Parse reads doveconf -n output or a dovecot.conf without includes.
// It never fails: a line it cannot read is skipped, an unbalanced "}" is
// ignored, unclosed sections end at the end of input.
func Parse(b []byte) *Config {
	c := &Config{Root: &Section{}}
	stack := []*Section{c.Root}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(strings.TrimRight(sc.Text(), "\r"))
		if line == "" {
			continue
		}
		if line[0] == '#' {
			if c.Header == "" && len(stack) == 1 && len(c.Root.Settings) == 0 {
				c.Header = strings.TrimSpace(line[1:])
			}
			continue
		}
		cur := stack[len(stack)-1]
		switch {
		case line == "}":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case strings.HasSuffix(line, "{") && !strings.Contains(line, "="):
			head := strings.TrimSpace(strings.TrimSuffix(line, "{"))
			typ, name, _ := strings.Cut(head, " ")
			s := &Section{Type: typ, Name: unquote(strings.TrimSpace(name))}
			cur.Sections = append(cur.Sections, s)
			stack = append(stack, s)
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				continue
			}
			cur.Settings = append(cur.Settings, Setting{Key: k, Value: unquote(strings.TrimSpace(v))})
		}
	}
	return c
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `\"`, `"`)
	}
	return s
}

// Get returns a top-level setting. In 2.4 syntax a setting may also be
// written inside an unnamed section named after its prefix
// ("ssl_server { cert_file = ... }" is ssl_server_cert_file).
func (c *Config) Get(key string) (string, bool) {
	return c.Root.Get(key)
}

// Get returns the section's own setting key (the last one wins), or the
// same setting in a prefix section.
func (s *Section) Get(key string) (string, bool) {
	v, found := "", false
	for _, st := range s.Settings {
		if st.Key == key {
			v, found = st.Value, true
		}
	}
	if found {
		return v, true
	}
	for _, sub := range s.Sections {
		if sub.Name == "" && strings.HasPrefix(key, sub.Type+"_") {
			if v, ok := sub.Get(strings.TrimPrefix(key, sub.Type+"_")); ok {
				return v, true
			}
		}
	}
	return "", false
}

// Find returns the sections of a type, at any depth.
func (s *Section) Find(typ string) []*Section {
	var out []*Section
	for _, sub := range s.Sections {
		if sub.Type == typ {
			out = append(out, sub)
		}
		out = append(out, sub.Find(typ)...)
	}
	return out
}

// V24 reports whether the configuration uses Dovecot 2.4 syntax: 2.4
// requires dovecot_config_version as its first setting.
func (c *Config) V24() bool {
	_, ok := c.Get("dovecot_config_version")
	return ok
}

// Runner runs Dovecot's tools; the same method set as postfix.Runner, so
// one implementation serves both.
type Runner interface {
	Run(ctx context.Context, stdin []byte, name string, args ...string) (stdout, stderr []byte, err error)
}

type execRunner struct{}

func (execRunner) Run(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// Tools runs doveconf and doveadm on one Dovecot configuration.
type Tools struct {
	Runner     Runner // nil runs the programs found in PATH
	ConfigFile string // -c; "" means Dovecot's default
	Logger     *slog.Logger
}

func (t *Tools) run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	r := t.Runner
	if r == nil {
		r = execRunner{}
	}
	if t.ConfigFile != "" {
		args = append([]string{"-c", t.ConfigFile}, args...)
	}
	out, errb, err := r.Run(ctx, nil, name, args...)
	if t.Logger != nil {
		t.Logger.Debug("dovecot command", "cmd", name+" "+strings.Join(args, " "), "stdout_bytes", len(out),
			"stderr", strings.TrimSpace(string(errb)), "err", err)
	}
	if err != nil && errors.Is(err, exec.ErrNotFound) {
		return out, errb, fmt.Errorf("%w: %s: %v", ErrNotInstalled, name, err)
	}
	return out, errb, err
}

// NonDefault runs doveconf -n: the settings that differ from the
// defaults, with includes resolved and secrets Dovecot knows of hidden.
func (t *Tools) NonDefault(ctx context.Context) (*Config, []byte, error) {
	out, errb, err := t.run(ctx, "doveconf", "-n")
	if err != nil {
		if errors.Is(err, ErrNotInstalled) || ctx.Err() != nil {
			return nil, out, err
		}
		return nil, out, fmt.Errorf("%w: %s", ErrNoConfig, firstLine(errb, err))
	}
	return Parse(out), out, nil
}

// Value runs doveconf -h KEY: one setting's value in effect, defaults
// included.
func (t *Tools) Value(ctx context.Context, key string) (string, error) {
	out, errb, err := t.run(ctx, "doveconf", "-h", key)
	if err != nil {
		if errors.Is(err, ErrNotInstalled) || ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("dovecot: doveconf -h %s: %s", key, firstLine(errb, err))
	}
	return strings.TrimSpace(string(out)), nil
}

// Who runs doveadm who, which needs a running Dovecot (it asks anvil).
func (t *Tools) Who(ctx context.Context) (string, error) {
	out, errb, err := t.run(ctx, "doveadm", "who")
	if err != nil {
		if errors.Is(err, ErrNotInstalled) || ctx.Err() != nil {
			return "", err
		}
		return "", fmt.Errorf("dovecot: doveadm who: %s", firstLine(errb, err))
	}
	return string(out), nil
}

// Version runs dovecot --version.
func (t *Tools) Version(ctx context.Context) (string, error) {
	r := t.Runner
	if r == nil {
		r = execRunner{}
	}
	out, errb, err := r.Run(ctx, nil, "dovecot", "--version")
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
		}
		return "", fmt.Errorf("dovecot: dovecot --version: %s", firstLine(errb, err))
	}
	return strings.TrimSpace(string(out)), nil
}

func firstLine(b []byte, err error) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return err.Error()
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
