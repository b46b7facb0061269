package servercheck

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dovecot"
	"github.com/mxray/mxray/internal/postfix"
)

// BundleOptions say what goes into a support bundle.
type BundleOptions struct {
	Check Options // the instances, logs and runner; Check.LogLines is the log tail length
	Host  string  // this host's name, for the manifest
	// CheckJSON renders the server check as `mxray server check --json`
	// prints it; nil renders it with diag.Output.
	CheckJSON func(steps []diag.Step, res *Result) []byte
}

// Member is one file of a bundle.
type Member struct {
	Name       string     `json:"name"`
	Bytes      int        `json:"bytes"`
	Source     string     `json:"source"`               // the command or file it came from
	Redactions Redactions `json:"redactions,omitempty"` // key name → values redacted
}

// Missing is a part the bundle could not include.
type Missing struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Manifest lists a bundle's contents.
type Manifest struct {
	Created string    `json:"created"` // RFC 3339, UTC
	Host    string    `json:"host"`
	Members []Member  `json:"members"`
	Missing []Missing `json:"missing"`
	// Redacted is the total number of values replaced by <redacted>.
	Redacted int `json:"redacted"`
}

type bundler struct {
	ctx      context.Context
	env      diag.Env
	opts     BundleOptions
	tw       *tar.Writer
	now      time.Time
	manifest Manifest
	runner   postfix.Runner
}

// WriteBundle writes a tar.gz support bundle to w and returns its
// manifest (also inside, as MANIFEST.txt). Every configuration value
// whose key names a password, key, secret, token or credential is
// redacted, and so are inline name=secret pairs and {SCHEME}passwords;
// files that hold secrets (sasl_passwd maps, passwd-files, TLS keys) are
// never read. A part that cannot be collected is listed as missing with
// the reason; only a failure to write w is an error.
func WriteBundle(ctx context.Context, env diag.Env, opts BundleOptions, w io.Writer) (*Manifest, error) {
	if opts.Check.LogLines <= 0 {
		opts.Check.LogLines = 2000
	}
	gz := gzip.NewWriter(w)
	b := &bundler{ctx: ctx, env: env, opts: opts, tw: tar.NewWriter(gz), now: env.Clock().UTC(), runner: opts.Check.Runner}
	if b.runner == nil {
		b.runner = postfix.ExecRunner{}
	}
	b.manifest = Manifest{Created: b.now.Format(time.RFC3339), Host: opts.Host, Members: []Member{}, Missing: []Missing{}}
	if err := b.collect(); err != nil {
		return nil, err
	}
	for _, m := range b.manifest.Members {
		b.manifest.Redacted += m.Redactions.Total()
	}
	if err := b.add("MANIFEST.txt", []byte(b.manifestText()), "this list"); err != nil {
		return nil, err
	}
	if err := b.tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return &b.manifest, nil
}

func (b *bundler) add(name string, data []byte, source string) error {
	hdr := &tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: b.now, Typeflag: tar.TypeReg}
	if err := b.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if _, err := b.tw.Write(data); err != nil {
		return err
	}
	if name != "MANIFEST.txt" {
		b.manifest.Members = append(b.manifest.Members, Member{Name: name, Bytes: len(data), Source: source})
	}
	return nil
}

func (b *bundler) addRedacted(name string, data []byte, source string, red Redactions) error {
	if err := b.add(name, data, source); err != nil {
		return err
	}
	if len(red) > 0 {
		b.manifest.Members[len(b.manifest.Members)-1].Redactions = red
	}
	return nil
}

func (b *bundler) missing(name, reason string) {
	b.manifest.Missing = append(b.manifest.Missing, Missing{Name: name, Reason: reason})
}

func cmdString(name string, args ...string) string {
	return strings.TrimSpace(name + " " + strings.Join(args, " "))
}

func (b *bundler) collect() error {
	o := b.opts.Check
	pf := &postfix.Config{Runner: o.Runner, ConfigDir: o.ConfigDir, Logger: b.env.Log()}
	var params postfix.Params

	// postconf -n and -M.
	if _, raw, err := pf.NonDefault(b.ctx); err != nil {
		b.missing("postconf-n.txt", reason(err))
	} else {
		text, red := RedactConfig(string(raw))
		if err := b.addRedacted("postconf-n.txt", []byte(text), cmdString("postconf", withC(o.ConfigDir, "-n")...), red); err != nil {
			return err
		}
		params, _ = pf.Effective(b.ctx, postfix.LintParams...)
		if out, errb, err := b.runner.Run(b.ctx, nil, "postconf", withC(o.ConfigDir, "-M")...); err != nil {
			b.missing("postconf-M.txt", toolErr("postconf -M", err, errb))
		} else {
			text, red := RedactConfig(string(out))
			if err := b.addRedacted("postconf-M.txt", []byte(text), cmdString("postconf", withC(o.ConfigDir, "-M")...), red); err != nil {
				return err
			}
		}
	}

	// doveconf -n.
	var dr dovecot.Runner
	if o.Runner != nil {
		dr = o.Runner
	}
	dt := &dovecot.Tools{Runner: dr, ConfigFile: o.DovecotConfig, Logger: b.env.Log()}
	var dv *dovecot.Config
	if cfg, raw, err := dt.NonDefault(b.ctx); err != nil {
		b.missing("doveconf-n.txt", reason(err))
	} else {
		dv = cfg
		text, red := RedactConfig(string(raw))
		if err := b.addRedacted("doveconf-n.txt", []byte(text), cmdString("doveconf", withC(o.DovecotConfig, "-n")...), red); err != nil {
			return err
		}
	}

	// The last lines of the mail logs.
	logs := LogFiles(o.Logs, params, dv)
	if len(logs) == 0 {
		b.missing("logs/", "no mail log found (give --log FILE; on a journald-only system use journalctl -u postfix -u dovecot)")
	}
	used := map[string]int{}
	for _, f := range logs {
		name := "logs/" + filepath.Base(f)
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("logs/%d-%s", used[name], filepath.Base(f))
		}
		data, err := Tail(f, o.LogLines, 64<<20)
		if err != nil {
			b.missing(name, err.Error())
			continue
		}
		red := Redactions{}
		var out strings.Builder
		for _, line := range strings.SplitAfter(string(data), "\n") {
			l, r := RedactInline(line)
			red.Add(r)
			out.WriteString(l)
		}
		if err := b.addRedacted(name, []byte(out.String()), fmt.Sprintf("last %d lines of %s", o.LogLines, f), red); err != nil {
			return err
		}
	}

	// mxray server check --json.
	var rec diag.Recorder
	res := Run(b.ctx, b.env, o, &rec)
	render := b.opts.CheckJSON
	if render == nil {
		render = CheckJSONLines
	}
	checkOut, red := RedactConfig(string(render(rec.Steps, res)))
	if err := b.addRedacted("server-check.jsonl", []byte(checkOut), "mxray server check --json", red); err != nil {
		return err
	}

	// Queue summary.
	q := &postfix.Queue{Runner: o.Runner, ConfigDir: o.ConfigDir, Logger: b.env.Log()}
	if msgs, err := q.List(b.ctx); err != nil {
		b.missing("queue-summary.json", reason(err))
	} else {
		postfix.SetAges(msgs, b.now)
		s := postfix.Summarize(msgs)
		js, _ := json.MarshalIndent(s, "", "  ")
		if err := b.add("queue-summary.json", append(js, '\n'), cmdString("postqueue", withC(o.ConfigDir, "-j")...)+" (counts by queue, recipient domain and delay reason; the oldest message)"); err != nil {
			return err
		}
	}

	// Listening ports.
	var ports strings.Builder
	fmt.Fprintf(&ports, "%-40s %s\n", "ADDRESS", "PORT")
	for _, l := range res.Listeners {
		fmt.Fprintf(&ports, "%-40s %d\n", l.Addr, l.Port)
	}
	if err := b.add("listening-ports.txt", []byte(ports.String()), "/proc/net/tcp and /proc/net/tcp6 (mail ports)"); err != nil {
		return err
	}

	// Versions.
	var ver strings.Builder
	if params != nil {
		fmt.Fprintf(&ver, "postfix: %s\n", params["mail_version"])
	} else {
		fmt.Fprintf(&ver, "postfix: (not available)\n")
	}
	if v, err := dt.Version(b.ctx); err == nil {
		fmt.Fprintf(&ver, "dovecot: %s\n", v)
	} else {
		fmt.Fprintf(&ver, "dovecot: (not available: %s)\n", reason(err))
	}
	fmt.Fprintf(&ver, "uname: %s\n", uname())
	if osr, err := os.ReadFile("/etc/os-release"); err == nil {
		ver.WriteString("\n/etc/os-release:\n")
		ver.Write(osr)
	} else {
		b.missing("versions.txt (os-release)", err.Error())
	}
	return b.add("versions.txt", []byte(ver.String()), "postconf mail_version, dovecot --version, uname(2), /etc/os-release")
}

func reason(err error) string {
	switch {
	case errors.Is(err, postfix.ErrNotInstalled):
		return "Postfix is not installed (postconf not in PATH)"
	case errors.Is(err, postfix.ErrNoConfig):
		return "Postfix has no main.cf: " + err.Error()
	case errors.Is(err, dovecot.ErrNotInstalled):
		return "Dovecot is not installed (doveconf/dovecot not in PATH)"
	}
	return err.Error()
}

func uname() string {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "(unknown: " + err.Error() + ")"
	}
	str := func(f [65]int8) string {
		var b []byte
		for _, c := range f {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		return string(b)
	}
	return strings.Join([]string{str(u.Sysname), str(u.Nodename), str(u.Release), str(u.Version), str(u.Machine)}, " ")
}

// CheckJSONLines renders a server check the way `mxray server check
// --json` prints it: one step line each, then the result line.
func CheckJSONLines(steps []diag.Step, res *Result) []byte {
	var buf bytes.Buffer
	out := &diag.Output{W: &buf, JSON: true}
	for _, s := range steps {
		out.Sink().Finish(s)
	}
	out.Result("server check", res, nil)
	return buf.Bytes()
}

func (b *bundler) manifestText() string {
	m := b.manifest
	var s strings.Builder
	fmt.Fprintf(&s, "mxray support bundle\ncreated: %s\nhost: %s\n\n", m.Created, m.Host)
	s.WriteString("Contents:\n")
	for _, mem := range m.Members {
		fmt.Fprintf(&s, "  %-28s %8d bytes  from %s", mem.Name, mem.Bytes, mem.Source)
		if n := mem.Redactions.Total(); n > 0 {
			fmt.Fprintf(&s, "  (%d value(s) redacted)", n)
		}
		s.WriteByte('\n')
	}
	s.WriteString("\nMissing:\n")
	if len(m.Missing) == 0 {
		s.WriteString("  (nothing)\n")
	}
	for _, x := range m.Missing {
		fmt.Fprintf(&s, "  %-28s %s\n", x.Name, x.Reason)
	}
	s.WriteString("\nRedacted (values replaced by " + Redacted + "; the key names are kept):\n")
	found := false
	for _, mem := range m.Members {
		for _, k := range mem.Redactions.Keys() {
			found = true
			fmt.Fprintf(&s, "  %-28s %-40s %d\n", mem.Name, k, mem.Redactions[k])
		}
	}
	if !found {
		s.WriteString("  (nothing)\n")
	}
	fmt.Fprintf(&s, "  total: %d\n", m.Redacted)
	s.WriteString(`
Redaction rules:
  - configuration values whose key name contains password, passwd, secret,
    key, token or credential (postconf, doveconf; e.g. smtpd_tls_key_file,
    smtp_sasl_password_maps), whole;
  - name=value pairs whose name contains one of those words, anywhere
    (Dovecot passdb/userdb args, SQL connect strings, log lines);
  - passwords with a scheme prefix ({PLAIN}..., {SHA512-CRYPT}...);
  - "given password: ..." in Dovecot logs (auth_verbose_passwords).
  Files that hold secrets (sasl_passwd maps, passwd-files, TLS private
  keys) are never read; doveconf runs without -P.
Not redacted: user names, e-mail addresses, host names and client IP
addresses in the logs and the check output (they are what a diagnosis
needs); remove them yourself before sharing the bundle publicly.
`)
	return s.String()
}
