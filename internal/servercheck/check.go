// Package servercheck runs `mxray server check`: it inspects the Postfix
// and Dovecot of this host from the inside — are they running, what
// listens on the mail ports, what postfix check says, a lint of postconf
// and doveconf (open relay, TLS, SMTP AUTH before TLS, SMTP smuggling,
// DANE, where mail is stored), relayhost and milter reachability,
// Maildir permissions, disk space, client addresses hidden by a proxy,
// and firewall rules — and reports every finding as a diag.Step with its
// cause and its fix. It also writes the support bundle (bundle.go).
//
// Postfix is read with postconf and postfix check (-c CONFIG_DIR for
// another instance), Dovecot with doveconf (-c FILE) in 2.3 and 2.4
// syntax. Commands run through an injectable Runner.
//
// Not supported: Postfix multi-instance groups as a whole (check one
// instance at a time with -c); Dovecot director/proxy setups; firewall
// rules reached through jumps to user chains, named nft sets and
// firewalld zones; lookup tables (mynetworks or milter lists in files).
package servercheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/dovecot"
	"github.com/mxray/mxray/internal/postfix"
)

// Disk is the space of one file system.
type Disk struct {
	Path       string `json:"path"`
	TotalBytes uint64 `json:"total_bytes"`
	FreeBytes  uint64 `json:"free_bytes"` // available to unprivileged users
	Files      uint64 `json:"files"`
	FreeFiles  uint64 `json:"free_files"`
}

// Statfs reads a file system's space with statfs(2).
func Statfs(path string) (Disk, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(path, &s); err != nil {
		return Disk{}, err
	}
	bs := uint64(s.Bsize)
	return Disk{Path: path, TotalBytes: s.Blocks * bs, FreeBytes: s.Bavail * bs, Files: s.Files, FreeFiles: s.Ffree}, nil
}

// Options select the instances to check and inject the host.
type Options struct {
	ConfigDir     string     // Postfix -c; "" the default instance
	DovecotConfig string     // doveconf -c; "" the default
	PublicIP      netip.Addr // the server's public address, for the PTR check; zero skips it
	MaildirRoot   string     // where Maildirs live; "" derives it from Dovecot's mail location
	Logs          []string   // mail log files; nil derives them (maillog_file, log_path, /var/log/mail.log)
	LogLines      int        // how many lines of each log to read; 0 means 2000

	Runner    postfix.Runner                    // nil runs the programs in PATH
	ProcNet   string                            // "/proc/net" unless set
	Statfs    func(string) (Disk, error)        // nil is Statfs
	LookupUID func(name string) (string, error) // nil is os/user
}

// PostfixInfo is what was found about Postfix.
type PostfixInfo struct {
	Installed bool   `json:"installed"`
	Running   bool   `json:"running"`
	ConfigDir string `json:"config_dir,omitempty"`
	Version   string `json:"version,omitempty"`
	MX        bool   `json:"mx"` // receives mail for domains (postfix.IsMX)
	PID       int    `json:"pid,omitempty"`
}

// DovecotInfo is what was found about Dovecot.
type DovecotInfo struct {
	Installed  bool              `json:"installed"`
	Running    bool              `json:"running"`
	ConfigFile string            `json:"config_file,omitempty"`
	Version    string            `json:"version,omitempty"`
	Syntax     string            `json:"syntax,omitempty"` // "2.3" or "2.4"
	Location   *dovecot.Location `json:"mail_location,omitempty"`
}

// Result is the outcome of a server check.
type Result struct {
	Status    diag.Status         `json:"status"` // the worst step
	Counts    map[diag.Status]int `json:"counts"`
	Postfix   PostfixInfo         `json:"postfix"`
	Dovecot   DovecotInfo         `json:"dovecot"`
	Listeners []Listener          `json:"listeners"` // on the mail ports
	Logs      []string            `json:"logs"`      // the log files read
	Steps     []diag.Step         `json:"-"`
}

type checker struct {
	ctx  context.Context
	env  diag.Env
	opts Options
	sink diag.Sink
	res  *Result

	pf       *postfix.Config
	params   postfix.Params // effective; nil when Postfix is unusable
	defaults postfix.Params
	services []postfix.Service
	dvTools  *dovecot.Tools
	dv       *dovecot.Config
	all      []Listener
}

// Run checks the server and sends one step per check to sink.
func Run(ctx context.Context, env diag.Env, opts Options, sink diag.Sink) *Result {
	if opts.LogLines <= 0 {
		opts.LogLines = 2000
	}
	if opts.ProcNet == "" {
		opts.ProcNet = "/proc/net"
	}
	if opts.Statfs == nil {
		opts.Statfs = Statfs
	}
	if opts.LookupUID == nil {
		opts.LookupUID = func(n string) (string, error) {
			u, err := user.Lookup(n)
			if err != nil {
				return "", err
			}
			return u.Uid, nil
		}
	}
	var rec diag.Recorder
	c := &checker{ctx: ctx, env: env, opts: opts, sink: diag.Tee(&rec, sink), res: &Result{Counts: map[diag.Status]int{}, Listeners: []Listener{}, Logs: []string{}}}
	c.pf = &postfix.Config{Runner: opts.Runner, ConfigDir: opts.ConfigDir, Logger: env.Log()}
	var dr dovecot.Runner
	if opts.Runner != nil {
		dr = opts.Runner
	}
	c.dvTools = &dovecot.Tools{Runner: dr, ConfigFile: opts.DovecotConfig, Logger: env.Log()}
	c.res.Postfix.ConfigDir = opts.ConfigDir
	c.res.Dovecot.ConfigFile = opts.DovecotConfig

	c.postfixRunning()
	c.dovecotRunning()
	c.ports()
	c.postfixCheck()
	if c.params != nil {
		for _, st := range postfix.Lint(postfix.LintInput{Params: c.params, Defaults: c.defaults, Services: c.services}) {
			c.emit(st)
		}
		c.ptr()
		c.relayhost()
		c.milters()
	}
	c.mailbox()
	if c.dv != nil {
		for _, st := range dovecot.Lint(c.dv) {
			c.emit(st)
		}
	}
	c.maildirs()
	c.disks()
	c.clientIPs()
	c.firewall()

	c.res.Steps = rec.Steps
	c.res.Status = diag.Worst(rec.Steps)
	for _, s := range rec.Steps {
		c.res.Counts[s.Status]++
	}
	return c.res
}

// emit sends a finished step that needed no time of its own.
func (c *checker) emit(st diag.Step) {
	diag.Begin(c.env, c.sink, st.ID, st.Title).Done(st)
}

func (c *checker) begin(id, title string) *diag.Tracker { return diag.Begin(c.env, c.sink, id, title) }

// alive reports whether a process exists (signal 0; EPERM means it
// exists but belongs to someone else).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (c *checker) postfixRunning() {
	tr := c.begin("postfix.running", "Postfix is running")
	_, _, err := c.pf.NonDefault(c.ctx)
	where := "the default instance"
	if c.opts.ConfigDir != "" {
		where = c.opts.ConfigDir
	}
	switch {
	case errors.Is(err, postfix.ErrNotInstalled):
		tr.Done(diag.Step{Status: diag.Skip, Title: "Postfix is not installed", Detail: "postconf is not in PATH"})
		return
	case errors.Is(err, postfix.ErrNoConfig):
		c.res.Postfix.Installed = true
		st := diag.Step{Status: diag.Skip, Title: "Postfix has no configuration", Detail: err.Error()}
		if c.opts.ConfigDir != "" {
			st.Status, st.Hint = diag.Fail, "-c must name the directory that holds main.cf"
		}
		tr.Done(st)
		return
	case err != nil:
		c.res.Postfix.Installed = true
		tr.Done(diag.Step{Status: diag.Fail, Title: "postconf cannot read the configuration", Detail: err.Error(),
			Hint: "run postconf -n" + dashC(c.opts.ConfigDir) + " and fix what it reports"})
		return
	}
	c.res.Postfix.Installed = true
	c.params, err = c.pf.Effective(c.ctx, postfix.LintParams...)
	if err != nil {
		tr.Done(diag.Step{Status: diag.Fail, Title: "postconf cannot read the configuration", Detail: err.Error()})
		return
	}
	c.defaults, _ = c.pf.Defaults(c.ctx, postfix.LintDefaults...)
	if c.defaults == nil {
		c.defaults = postfix.Params{}
	}
	c.services, _ = c.pf.Services(c.ctx)
	c.res.Postfix.Version = c.params["mail_version"]
	c.res.Postfix.MX = postfix.IsMX(c.params)

	pidFile := filepath.Join(c.params["queue_directory"], "pid", "master.pid")
	pid := readPID(pidFile)
	data := map[string]any{"pid_file": pidFile, "pid": pid}
	if alive(pid) {
		c.res.Postfix.Running, c.res.Postfix.PID = true, pid
		tr.Done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("Postfix %s is running (%s)", c.res.Postfix.Version, where),
			Detail: fmt.Sprintf("master pid %d from %s", pid, pidFile), Data: data})
		return
	}
	// The pid file may live elsewhere on a packaged system; ask Postfix.
	if _, _, err := c.run("postfix", withC(c.opts.ConfigDir, "status")...); err == nil {
		c.res.Postfix.Running = true
		tr.Done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("Postfix %s is running (%s)", c.res.Postfix.Version, where),
			Detail: "postfix status: running", Data: data})
		return
	}
	detail := fmt.Sprintf("no live master process: %s ", pidFile)
	if pid == 0 {
		detail += "is missing"
	} else {
		detail += fmt.Sprintf("names pid %d, which does not exist", pid)
	}
	tr.Done(diag.Step{Status: diag.Fail, Title: "Postfix is installed but not running (" + where + ")", Detail: detail, Data: data,
		Hint: "start it (systemctl start postfix, or postfix" + dashC(c.opts.ConfigDir) + " start) and read its log for why it stopped"})
}

func dashC(dir string) string {
	if dir == "" {
		return ""
	}
	return " -c " + dir
}

func withC(dir string, args ...string) []string {
	if dir == "" {
		return args
	}
	return append([]string{"-c", dir}, args...)
}

func (c *checker) run(name string, args ...string) ([]byte, []byte, error) {
	r := c.opts.Runner
	if r == nil {
		r = postfix.ExecRunner{}
	}
	return r.Run(c.ctx, nil, name, args...)
}

func (c *checker) dovecotRunning() {
	tr := c.begin("dovecot.running", "Dovecot is running")
	cfg, _, err := c.dvTools.NonDefault(c.ctx)
	switch {
	case errors.Is(err, dovecot.ErrNotInstalled):
		tr.Done(diag.Step{Status: diag.Skip, Title: "Dovecot is not installed", Detail: "doveconf is not in PATH"})
		return
	case err != nil:
		c.res.Dovecot.Installed = true
		st := diag.Step{Status: diag.Fail, Title: "doveconf cannot read the configuration", Detail: err.Error(),
			Hint: "run doveconf -n" + dashC(c.opts.DovecotConfig) + " and fix what it reports"}
		if c.opts.DovecotConfig == "" {
			if _, serr := os.Stat("/etc/dovecot/dovecot.conf"); serr != nil {
				st = diag.Step{Status: diag.Skip, Title: "Dovecot has no configuration", Detail: err.Error()}
			}
		}
		tr.Done(st)
		return
	}
	c.res.Dovecot.Installed = true
	c.dv = cfg
	c.res.Dovecot.Syntax = "2.3"
	if cfg.V24() {
		c.res.Dovecot.Syntax = "2.4"
	}
	loc := cfg.Location()
	c.res.Dovecot.Location = &loc
	c.res.Dovecot.Version, _ = c.dvTools.Version(c.ctx)
	base, _ := c.dvTools.Value(c.ctx, "base_dir")
	pidFile := filepath.Join(base, "master.pid")
	pid := 0
	if base != "" {
		pid = readPID(pidFile)
	}
	data := map[string]any{"pid_file": pidFile, "pid": pid, "syntax": c.res.Dovecot.Syntax}
	title := "Dovecot " + firstWord(c.res.Dovecot.Version) + " is running"
	if alive(pid) {
		c.res.Dovecot.Running = true
		tr.Done(diag.Step{Status: diag.OK, Title: title, Detail: fmt.Sprintf("master pid %d from %s; configuration in %s syntax", pid, pidFile, c.res.Dovecot.Syntax), Data: data})
		return
	}
	if _, err := c.dvTools.Who(c.ctx); err == nil {
		c.res.Dovecot.Running = true
		tr.Done(diag.Step{Status: diag.OK, Title: title, Detail: "doveadm who answers", Data: data})
		return
	} else {
		data["doveadm"] = err.Error()
	}
	tr.Done(diag.Step{Status: diag.Fail, Title: "Dovecot is installed but not running", Data: data,
		Detail: fmt.Sprintf("no live master process (%s), and doveadm who gets no answer", pidFile),
		Hint:   "start it (systemctl start dovecot, or dovecot" + dashC(c.opts.DovecotConfig) + ") and read its log for why it stopped"})
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}

func (c *checker) ports() {
	tr := c.begin("ports", "Listening mail ports")
	var errs []string
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(filepath.Join(c.opts.ProcNet, f))
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		ls, err := ParseProcNet(b)
		if err != nil {
			errs = append(errs, err.Error())
		}
		c.all = append(c.all, ls...)
	}
	if len(errs) == 2 {
		tr.Done(diag.Step{Status: diag.Skip, Title: "Cannot read the listening sockets", Detail: strings.Join(errs, "\n")})
		return
	}
	mail := OnPorts(c.all, MailPorts)
	c.res.Listeners = mail
	byPort := map[int][]string{}
	for _, l := range mail {
		byPort[l.Port] = append(byPort[l.Port], l.String())
	}
	var lines []string
	for _, p := range MailPorts {
		if len(byPort[p]) > 0 {
			lines = append(lines, fmt.Sprintf("%d: %s", p, strings.Join(byPort[p], ", ")))
		}
	}
	st := diag.Step{Status: diag.Info, Data: mail, Detail: strings.Join(lines, "\n")}
	if len(lines) == 0 {
		st.Detail = "nothing listens on 25, 465, 587, 110, 143, 993, 995 or 4190"
	}
	if !c.res.Postfix.MX || !c.res.Postfix.Running {
		tr.Done(st)
		return
	}
	var on25 []Listener
	for _, l := range mail {
		if l.Port == 25 {
			on25 = append(on25, l)
		}
	}
	loop := len(on25) > 0
	for _, l := range on25 {
		loop = loop && l.Loopback()
	}
	switch {
	case loop:
		st.Status, st.Title = diag.Fail, "Port 25 listens on loopback only, but this server is an MX"
		st.Hint = "set inet_interfaces = all (then postfix stop; postfix start), and check master.cf's smtp service line"
	case len(on25) == 0:
		other := ""
		for _, s := range c.services {
			if s.Type == "inet" && s.Command == "smtpd" && s.Port() != 25 && strings.Contains(s.Name, ":") {
				other = s.Name
			}
		}
		if other != "" {
			st.Detail += "\nsmtpd listens on " + other + " instead of port 25 (a port-25 stand-in or port forwarding)"
		} else {
			st.Status, st.Title = diag.Warn, "Nothing listens on port 25, but this server is an MX"
			st.Hint = "check master.cf's smtp inet service and that no other program holds port 25"
		}
	default:
		st.Status = diag.OK
	}
	tr.Done(st)
}

func (c *checker) postfixCheck() {
	if !c.res.Postfix.Installed || c.params == nil {
		return
	}
	tr := c.begin("postfix.check", "postfix check finds nothing to fix")
	r, err := c.pf.Check(c.ctx)
	switch {
	case err != nil:
		tr.Done(diag.Step{Status: diag.Skip, Title: "postfix check could not run", Detail: err.Error()})
	case !r.OK || len(r.Errors) > 0:
		tr.Done(diag.Step{Status: diag.Fail, Title: "postfix check reports errors", Detail: strings.Join(append(r.Errors, r.Warnings...), "\n"), Data: r,
			Hint: "fix what postfix check" + dashC(c.opts.ConfigDir) + " prints, most often ownership and permissions (postfix set-permissions)"})
	case len(r.Warnings) > 0:
		tr.Done(diag.Step{Status: diag.Warn, Title: "postfix check prints warnings", Detail: strings.Join(r.Warnings, "\n"), Data: r,
			Hint: "fix what postfix check" + dashC(c.opts.ConfigDir) + " prints"})
	default:
		tr.Done(diag.Step{Status: diag.OK, Data: r})
	}
}

func (c *checker) ptr() {
	tr := c.begin("postfix.ptr", "The public address resolves back to myhostname")
	host := strings.TrimSuffix(strings.ToLower(c.params["myhostname"]), ".")
	ip := c.opts.PublicIP
	if !ip.IsValid() {
		tr.Done(diag.Step{Status: diag.Skip, Detail: "give --public-ip ADDRESS to compare its PTR record with myhostname = " + host})
		return
	}
	st := diag.Step{IP: ip.String(), Host: host, RFC: "RFC 8601 §3"}
	if c.env.Resolver == nil {
		st.Status, st.Detail = diag.Skip, "no resolver"
		tr.Done(st)
		return
	}
	rev := dnsx.ReverseName(ip)
	resp, err := c.env.Resolver.Query(c.ctx, rev, dns.TypePTR)
	if err != nil {
		st.Detail = fmt.Sprintf("PTR %s: %v", rev, err)
		if dnsx.Temporary(err) {
			st.Status, st.Title = diag.Skip, "Could not look up the PTR record"
		} else {
			st.Status, st.Title = diag.Fail, "The public address has no PTR record"
			st.Hint = fmt.Sprintf("ask whoever owns %s (your hosting provider) to set its PTR to %s", ip, host)
		}
		tr.Done(st)
		return
	}
	var names []string
	match := false
	for _, n := range resp.Names() {
		n = strings.TrimSuffix(strings.ToLower(n), ".")
		names = append(names, n)
		match = match || n == host
	}
	st.Data = map[string]any{"ptr": names, "myhostname": host}
	st.Detail = fmt.Sprintf("PTR %s = %s; myhostname = %s", rev, strings.Join(names, ", "), host)
	if !match {
		st.Status, st.Title = diag.Warn, "The PTR name of the public address is not myhostname"
		st.Hint = fmt.Sprintf("make them agree: set myhostname = %s, or have the PTR of %s changed to %s (and give that name an A/AAAA record)", firstOr(names, host), ip, host)
		tr.Done(st)
		return
	}
	// RFC 8601 §3 (iprev): the name must resolve back to the address.
	ips, err := dnsx.LookupIP(c.ctx, c.env.Resolver, host, dnsx.IPv4|dnsx.IPv6)
	confirmed := false
	if err == nil {
		for _, a := range ips.Addrs {
			confirmed = confirmed || a == ip.Unmap()
		}
	}
	if !confirmed {
		st.Status, st.Title = diag.Warn, "myhostname does not resolve back to the public address"
		st.Detail += fmt.Sprintf("\n%s has no A/AAAA record %s", host, ip)
		st.Hint = fmt.Sprintf("add %s IN A %s (forward-confirmed reverse DNS)", host, ip)
		tr.Done(st)
		return
	}
	st.Status = diag.OK
	tr.Done(st)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

func (c *checker) connectLimit() time.Duration {
	d := c.env.Limits.Connect
	if d <= 0 || d > 5*time.Second {
		d = 5 * time.Second
	}
	return diag.Fit(c.ctx, d)
}

func (c *checker) relayhost() {
	tr := c.begin("postfix.relayhost", "relayhost is reachable")
	rh, ok := postfix.ParseRelayhost(c.params["relayhost"])
	if !ok {
		tr.Done(diag.Step{Status: diag.Skip, Title: "No relayhost: Postfix delivers directly to each domain's MX"})
		return
	}
	host := rh.Host
	st := diag.Step{Host: host, Data: rh}
	if rh.MX && c.env.Resolver != nil {
		if resp, err := c.env.Resolver.Query(c.ctx, host, dns.TypeMX); err == nil && len(resp.MX()) > 0 {
			host = strings.TrimSuffix(resp.MX()[0].Mx, ".")
			st.Detail = fmt.Sprintf("relayhost %s is not in brackets: Postfix uses its MX %s\n", rh.Host, host)
		}
	}
	if c.env.Dialer == nil {
		st.Status, st.Detail = diag.Skip, "no dialer"
		tr.Done(st)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.connectLimit())
	defer cancel()
	addr := net.JoinHostPort(host, strconv.Itoa(rh.Port))
	conn, err := c.env.Dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		st.Status, st.Title = diag.Fail, "relayhost "+addr+" is unreachable"
		st.Detail += err.Error()
		st.Hint = "all outgoing mail waits in the deferred queue: check the relayhost name and port, and that outgoing connections to it are allowed"
		tr.Done(st)
		return
	}
	st.IP = conn.RemoteAddr().String()
	conn.Close()
	st.Status = diag.OK
	st.Detail += "connected to " + addr
	tr.Done(st)
}

func (c *checker) milters() {
	tr := c.begin("postfix.milters", "Milters answer")
	ms := postfix.Milters(c.params)
	if len(ms) == 0 {
		tr.Done(diag.Step{Status: diag.Skip, Title: "No milters configured"})
		return
	}
	var bad, good, opaque []string
	for _, m := range ms {
		if m.Network == "" {
			opaque = append(opaque, m.Spec)
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.connectLimit())
		var conn net.Conn
		var err error
		if m.Network == "unix" {
			// A UNIX socket is a local file, not the network: the connect
			// map and the resolver do not apply.
			var d net.Dialer
			conn, err = d.DialContext(ctx, "unix", m.Address)
		} else if c.env.Dialer != nil {
			conn, err = c.env.Dialer.DialContext(ctx, "tcp", m.Address)
		} else {
			err = errors.New("no dialer")
		}
		cancel()
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", m.Spec, err))
			continue
		}
		conn.Close()
		good = append(good, m.Spec)
	}
	st := diag.Step{Status: diag.OK, Data: ms}
	var lines []string
	if len(good) > 0 {
		lines = append(lines, "answering: "+strings.Join(good, ", "))
	}
	if len(opaque) > 0 {
		lines = append(lines, "not checked: "+strings.Join(opaque, ", "))
	}
	if len(bad) > 0 {
		st.Status, st.Title = diag.Fail, "A milter does not answer"
		lines = append(bad, lines...)
		st.Hint = "start the milter (opendkim, rspamd, ...) or fix the socket path; with milter_default_action = tempfail (the default) every message is deferred while it is down"
	}
	st.Detail = strings.Join(lines, "\n")
	tr.Done(st)
}

// mailbox compares where Postfix writes mail with where Dovecot reads it.
func (c *checker) mailbox() {
	if c.params == nil || c.dv == nil {
		return
	}
	tr := c.begin("mailbox.format", "Postfix delivers where Dovecot reads")
	loc := c.dv.Location()
	dels := postfix.Deliveries(c.params, c.services)
	st := diag.Step{Status: diag.OK, Data: map[string]any{"postfix": dels, "dovecot": loc}}
	var lines, bad []string
	for _, d := range dels {
		line := fmt.Sprintf("%s mail: %s", d.Class, d.Transport)
		switch d.Via {
		case "dovecot":
			line += " (Dovecot delivers: format and path are Dovecot's own)"
		case "other", "command":
			line += " (not delivered into a mailbox Dovecot reads)"
		case "postfix":
			line += fmt.Sprintf(" writes %s %s", orUnknown(d.Format), d.Path)
			if msg := compareLocation(d, loc); msg != "" {
				bad = append(bad, msg)
			}
		}
		lines = append(lines, line)
	}
	lines = append(lines, fmt.Sprintf("Dovecot (%s): %s", loc.Source, orUnknown(loc.Raw)))
	st.Detail = strings.Join(lines, "\n")
	switch {
	case len(dels) == 0:
		st.Status, st.Title = diag.Skip, "Postfix delivers no mail locally"
	case len(bad) > 0:
		st.Status, st.Title = diag.Fail, "Postfix delivers mail where Dovecot does not look"
		st.Detail = strings.Join(bad, "\n") + "\n" + st.Detail
		st.Hint = "deliver through Dovecot instead: virtual_transport = lmtp:unix:private/dovecot-lmtp (or mailbox_transport for local users), so that Dovecot writes its own format and path"
	}
	tr.Done(st)
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// normPath makes Postfix's and Dovecot's path templates comparable.
func normPath(p string) string {
	p = strings.TrimSuffix(strings.TrimSpace(p), "/")
	for _, v := range []string{"%{user}", "%{user | username}", "%{user|username}", "%{username}", "%Lu", "%n", "$user", "${user}"} {
		p = strings.ReplaceAll(p, v, "%u")
	}
	p = strings.ReplaceAll(p, "%h", "~")
	p = strings.ReplaceAll(p, "%{home}", "~")
	return p
}

func compareLocation(d postfix.Delivery, loc dovecot.Location) string {
	if loc.Driver == "" {
		return "" // Dovecot autodetects ~/Maildir, ~/mail and /var/mail/%u
	}
	drv := strings.ToLower(loc.Driver)
	switch {
	case d.Format == "maildir" && drv != "maildir":
		return fmt.Sprintf("Postfix writes Maildir (%s), Dovecot reads %s: new mail never shows up", d.Path, drv)
	case d.Format == "mbox" && drv == "maildir":
		return fmt.Sprintf("Postfix writes mbox (%s), Dovecot reads Maildir: new mail never shows up", d.Path)
	case d.Format == "mbox" && drv != "mbox":
		return fmt.Sprintf("Postfix writes mbox (%s), Dovecot reads %s", d.Path, drv)
	case d.Format == "maildir" && loc.Path != "" && normPath(loc.Path) != normPath(d.Path):
		return fmt.Sprintf("path mismatch: Postfix writes Maildir %s, Dovecot reads %s", d.Path, loc.Path)
	case d.Format == "mbox" && loc.Inbox != "" && normPath(loc.Inbox) != normPath(d.Path):
		return fmt.Sprintf("path mismatch: Postfix writes the INBOX to %s, Dovecot reads INBOX=%s", d.Path, loc.Inbox)
	}
	return ""
}

// maildirRoots returns the Maildirs to check and where they were looked
// for.
func (c *checker) findMaildirs() ([]string, string, error) {
	if c.opts.MaildirRoot != "" {
		return dovecot.FindMaildirs(c.opts.MaildirRoot, 4, 500), c.opts.MaildirRoot, nil
	}
	if c.dv == nil {
		return nil, "", errors.New("no Dovecot configuration and no --maildir-root")
	}
	loc := c.dv.Location()
	if !strings.EqualFold(loc.Driver, "maildir") {
		return nil, "", fmt.Errorf("Dovecot's mail driver is %q, not maildir", loc.Driver)
	}
	pat, err := loc.Glob(loc.Path)
	if err != nil {
		return nil, "", fmt.Errorf("%w (use --maildir-root)", err)
	}
	matches, err := filepath.Glob(pat)
	if err != nil {
		return nil, pat, err
	}
	var out []string
	for _, m := range matches {
		if dovecot.IsMaildir(m) && len(out) < 500 {
			out = append(out, m)
		}
	}
	return out, pat, nil
}

func (c *checker) maildirs() {
	tr := c.begin("maildir.permissions", "Maildirs are private to their owner")
	dirs, where, err := c.findMaildirs()
	if err != nil {
		tr.Done(diag.Step{Status: diag.Skip, Title: "Maildir permissions not checked", Detail: err.Error()})
		return
	}
	if len(dirs) == 0 {
		tr.Done(diag.Step{Status: diag.Info, Title: "No Maildirs found", Detail: "looked for " + where})
		return
	}
	want := -1
	if c.dv != nil {
		want = dovecot.ResolveUID(c.dv.MailUID(), c.opts.LookupUID)
	}
	st := diag.Step{Status: diag.OK}
	var checks []dovecot.MaildirCheck
	var lines []string
	for _, d := range dirs {
		r, err := dovecot.CheckMaildir(d, want)
		if err != nil {
			continue
		}
		checks = append(checks, r)
		if r.Status.Worse(st.Status) {
			st.Status = r.Status
		}
		for _, p := range r.Problems {
			lines = append(lines, d+": "+p)
		}
	}
	st.Data = checks
	if st.Status == diag.OK {
		st.Detail = fmt.Sprintf("%d Maildir(s) under %s: mode 0700, owner as expected", len(checks), where)
	} else {
		st.Title = "Maildir permissions or ownership are wrong"
		st.Detail = strings.Join(lines, "\n")
		owner := "the user the mail belongs to"
		if want >= 0 {
			owner = fmt.Sprintf("uid %d", want)
		}
		st.Hint = fmt.Sprintf("chmod 0700 the Maildir and its cur, new and tmp; chown -R them to %s", owner)
	}
	tr.Done(st)
}

// mailRoot is the existing directory closest to where mailboxes live.
func (c *checker) mailRoot() string {
	cand := c.opts.MaildirRoot
	if cand == "" && c.dv != nil {
		loc := c.dv.Location()
		if p, err := loc.Glob(loc.Path); err == nil {
			cand = p
		}
	}
	if cand == "" && c.params != nil {
		for _, d := range postfix.Deliveries(c.params, c.services) {
			if d.Via == "postfix" && strings.HasPrefix(d.Path, "/") {
				cand = d.Path
				break
			}
		}
	}
	if i := strings.IndexAny(cand, "*?[%~"); i >= 0 {
		cand = filepath.Dir(cand[:i] + "x")
	}
	for cand != "" && cand != "/" && cand != "." {
		if fi, err := os.Stat(cand); err == nil && fi.IsDir() {
			return cand
		}
		cand = filepath.Dir(cand)
	}
	return ""
}

func (c *checker) disks() {
	type target struct{ id, what, path string }
	var ts []target
	if c.params != nil && c.params["queue_directory"] != "" {
		ts = append(ts, target{"disk.queue", "the Postfix queue", c.params["queue_directory"]})
	}
	if r := c.mailRoot(); r != "" {
		ts = append(ts, target{"disk.mail", "the mailboxes", r})
	}
	for _, t := range ts {
		tr := c.begin(t.id, "Free space for "+t.what)
		d, err := c.opts.Statfs(t.path)
		if err != nil {
			tr.Done(diag.Step{Status: diag.Skip, Detail: err.Error()})
			continue
		}
		d.Path = t.path
		st := diag.Step{Status: diag.OK, Data: d}
		bytesPct := pct(d.FreeBytes, d.TotalBytes)
		filesPct := pct(d.FreeFiles, d.Files)
		st.Detail = fmt.Sprintf("%s: %s free of %s (%.1f%%), inodes %.1f%% free", t.path, human(d.FreeBytes), human(d.TotalBytes), bytesPct, filesPct)
		low := min(bytesPct, filesPct)
		switch {
		case low < 2:
			st.Status, st.Title = diag.Fail, "Almost no space left for "+t.what
		case low < 10:
			st.Status, st.Title = diag.Warn, "Little space left for "+t.what
		}
		if st.Status != diag.OK {
			st.Hint = "free space or grow the file system: Postfix refuses mail (452 4.3.1 Insufficient system storage) when queue_minfree is reached, and Dovecot cannot save"
		}
		tr.Done(st)
	}
}

func pct(free, total uint64) float64 {
	if total == 0 {
		return 100 // no inode limit (btrfs reports 0 files)
	}
	return float64(free) * 100 / float64(total)
}

func human(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	div, exp := uint64(unit), 0
	for n := b / unit; n >= unit; n /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(b)/float64(div), "KMGTPE"[exp])
}

// LogFiles returns the mail logs to read: the given ones, else Postfix's
// maillog_file, Dovecot's log_path and info_log_path when they are files,
// and the usual syslog files that exist.
func LogFiles(given []string, params postfix.Params, dv *dovecot.Config) []string {
	if len(given) > 0 {
		return given
	}
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if p == "" || seen[p] || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "/dev/") {
			return
		}
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			return
		}
		seen[p] = true
		out = append(out, p)
	}
	if params != nil {
		add(params["maillog_file"])
	}
	if dv != nil {
		for _, k := range []string{"log_path", "info_log_path"} {
			v, _ := dv.Get(k)
			add(v)
		}
	}
	for _, p := range []string{"/var/log/mail.log", "/var/log/maillog", "/var/log/mail/mail.log"} {
		add(p)
	}
	return out
}

func (c *checker) clientIPs() {
	tr := c.begin("logs.client_ip", "The log shows real client addresses")
	files := LogFiles(c.opts.Logs, c.params, c.dv)
	c.res.Logs = append(c.res.Logs, files...)
	if len(files) == 0 {
		tr.Done(diag.Step{Status: diag.Skip, Detail: "no mail log found (give --log FILE; a journald-only system needs journalctl)"})
		return
	}
	var all []byte
	for _, f := range files {
		b, err := Tail(f, c.opts.LogLines, 64<<20)
		if err == nil {
			all = append(all, b...)
		}
	}
	ips := CountClients(all)
	st := diag.Step{Status: diag.OK, Data: ips}
	st.Detail = fmt.Sprintf("%d smtpd connections in the last %d lines of %s", ips.Connects, c.opts.LogLines, strings.Join(files, ", "))
	const minConnects = 20
	switch {
	case ips.Connects < minConnects:
		st.Status = diag.Info
		st.Detail += fmt.Sprintf("; too few to judge (%d needed)", minConnects)
	case ips.TopShare >= 0.95 && Gateway(ips.Top):
		st.Status, st.Title = diag.Warn, "A proxy or container network hides the real client IP: SPF and rate limits misfire"
		st.Detail += fmt.Sprintf("\n%.0f%% of them come from %s, a private address", ips.TopShare*100, ips.Top)
		st.Hint = "publish port 25 without NAT (Docker: network_mode host, or a userland-proxy-free setup), or use a proxy that speaks the HAProxy protocol (postscreen_upstream_proxy_protocol / smtpd_upstream_proxy_protocol)"
		if a, err := netip.ParseAddr(ips.Top); err == nil && c.params != nil && inNetworks(a, c.params["mynetworks"]) {
			st.Status = diag.Fail
			st.Detail += "\nand " + ips.Top + " is in mynetworks: every client on the internet is trusted — an open relay"
		}
	}
	tr.Done(st)
}

func inNetworks(a netip.Addr, mynetworks string) bool {
	for _, item := range postfix.List(mynetworks) {
		if pr, ok := postfix.ParseNetwork(item); ok && pr.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

func (c *checker) firewall() {
	tr := c.begin("firewall", "No firewall rule blocks a listening mail port")
	var ports []int
	seen := map[int]bool{}
	for _, l := range c.res.Listeners {
		if !l.Loopback() && !seen[l.Port] {
			seen[l.Port] = true
			ports = append(ports, l.Port)
		}
	}
	var rules []BlockRule
	tool := ""
	out, errb, err := c.run("nft", "-j", "list", "ruleset")
	switch {
	case err == nil:
		tool = "nft"
		rules, err = ParseNft(out, ports)
		if err != nil {
			tr.Done(diag.Step{Status: diag.Skip, Detail: err.Error()})
			return
		}
	default:
		nftErr := toolErr("nft", err, errb)
		out, errb, err = c.run("iptables-save")
		if err != nil {
			tr.Done(diag.Step{Status: diag.Skip, Title: "Firewall rules not checked",
				Detail: nftErr + "\n" + toolErr("iptables-save", err, errb)})
			return
		}
		tool = "iptables-save"
		rules = ParseIptablesSave(out, ports)
	}
	st := diag.Step{Status: diag.OK, Data: map[string]any{"tool": tool, "ports": ports, "rules": rules}}
	if len(ports) == 0 {
		st.Status, st.Detail = diag.Info, "read "+tool+"; no mail port listens beyond loopback"
		tr.Done(st)
		return
	}
	if len(rules) == 0 {
		st.Detail = fmt.Sprintf("%s: no input rule drops or rejects %v (rules reached by jumps are not followed)", tool, ports)
		tr.Done(st)
		return
	}
	var lines []string
	for _, r := range rules {
		lines = append(lines, fmt.Sprintf("port %d: %s by %s", r.Port, r.Verdict, r.Rule))
	}
	st.Status, st.Title = diag.Warn, "A firewall rule drops or rejects a mail port that is listening"
	st.Detail = strings.Join(lines, "\n") + "\n(an earlier accept rule may still let some clients in)"
	st.Hint = "allow the port in the firewall (e.g. nft add rule inet filter input tcp dport 25 accept before the drop)"
	tr.Done(st)
}

func toolErr(name string, err error, errb []byte) string {
	if errors.Is(err, exec.ErrNotFound) {
		return name + " is not installed"
	}
	if s := strings.TrimSpace(string(errb)); s != "" {
		return name + ": " + s
	}
	return name + ": " + err.Error()
}
