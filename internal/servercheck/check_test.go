package servercheck

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/postfix"
)

// fakeHost answers Postfix's and Dovecot's tools with recorded output
// (Postfix 3.7.11 and Dovecot 2.3.19.1 on Debian 12, trimmed); a tool it
// has no answer for is "not installed".
type fakeHost struct {
	params       postfix.Params // postconf -x and -n
	defaults     string         // postconf -d
	master       string         // postconf -M
	check        string         // postfix check's stderr
	checkFails   bool
	status       bool   // postfix status exits 0
	doveconf     string // doveconf -n; "" not installed
	baseDir      string
	who          bool
	nft          string // nft -j list ruleset; "" not installed
	iptables     string
	noPostfix    bool
	ran          []string
	queueListing string
}

func (h *fakeHost) Run(_ context.Context, _ []byte, name string, args ...string) ([]byte, []byte, error) {
	h.ran = append(h.ran, strings.Join(append([]string{name}, args...), " "))
	if len(args) >= 2 && args[0] == "-c" {
		args = args[2:]
	}
	notFound := &exec.Error{Name: name, Err: exec.ErrNotFound}
	failed := &exec.ExitError{}
	first := ""
	if len(args) > 0 {
		first = args[0]
	}
	switch name {
	case "postconf", "postfix", "postqueue":
		if h.noPostfix {
			return nil, nil, notFound
		}
	}
	switch name + " " + first {
	case "postconf -n":
		var b strings.Builder
		for _, k := range sortedKeys(h.params) {
			fmt.Fprintf(&b, "%s = %s\n", k, h.params[k])
		}
		return []byte(b.String()), nil, nil
	case "postconf -x":
		var b strings.Builder
		for _, k := range args[1:] {
			if v, ok := h.params[k]; ok {
				fmt.Fprintf(&b, "%s = %s\n", k, v)
			}
		}
		return []byte(b.String()), nil, nil
	case "postconf -d":
		return []byte(h.defaults), nil, nil
	case "postconf -M":
		return []byte(h.master), nil, nil
	case "postfix check":
		if h.checkFails {
			return nil, []byte(h.check), failed
		}
		return nil, []byte(h.check), nil
	case "postfix status":
		if h.status {
			return nil, nil, nil
		}
		return nil, []byte("postfix/postfix-script: the Postfix mail system is not running\n"), failed
	case "postqueue -j":
		return []byte(h.queueListing), nil, nil
	case "doveconf -n":
		if h.doveconf == "" {
			return nil, nil, notFound
		}
		return []byte(h.doveconf), nil, nil
	case "doveconf -h":
		return []byte(h.baseDir + "\n"), nil, nil
	case "doveadm who":
		if h.who {
			return []byte("username # proto (pids) (ips)\n"), nil, nil
		}
		return nil, []byte("Fatal: net_connect_unix(/run/dovecot/anvil) failed: No such file or directory\n"), failed
	case "dovecot --version":
		if h.doveconf == "" {
			return nil, nil, notFound
		}
		return []byte("2.3.19.1 (9b53102964)\n"), nil, nil
	case "nft -j":
		if h.nft == "" {
			return nil, nil, notFound
		}
		return []byte(h.nft), nil, nil
	case "iptables-save ":
		if h.iptables == "" {
			return nil, nil, notFound
		}
		return []byte(h.iptables), nil, nil
	}
	return nil, nil, notFound
}

func sortedKeys(p postfix.Params) []string {
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// world is a sound Postfix MX delivering to Dovecot by LMTP, both
// running, on a temporary directory.
type world struct {
	t     *testing.T
	dir   string
	host  *fakeHost
	opts  Options
	env   diag.Env
	disks map[string]Disk
}

func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	queue := filepath.Join(dir, "spool")
	os.MkdirAll(filepath.Join(queue, "pid"), 0o755)
	pid := []byte(fmt.Sprintf("%11d\n", os.Getpid())) // a live process: this test
	os.WriteFile(filepath.Join(queue, "pid", "master.pid"), pid, 0o644)
	base := filepath.Join(dir, "run")
	os.MkdirAll(base, 0o755)
	os.WriteFile(filepath.Join(base, "master.pid"), pid, 0o644)
	mail := filepath.Join(dir, "mail")
	os.MkdirAll(mail, 0o755)
	proc := filepath.Join(dir, "proc")
	os.MkdirAll(proc, 0o755)
	os.WriteFile(filepath.Join(proc, "tcp"), []byte(procTCP), 0o644)
	os.WriteFile(filepath.Join(proc, "tcp6"), []byte(procTCP6), 0o644)
	params := postfix.ParseParams([]byte(`mail_version = 3.7.11
myhostname = mx1.example.test
mydomain = example.test
mydestination = mx1.example.test, localhost
mynetworks = 127.0.0.0/8 [::1]/128
inet_interfaces = all
virtual_mailbox_domains = example.test
virtual_transport = lmtp:unix:private/dovecot-lmtp
smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_tls_chain_files = /etc/ssl/mx.pem
smtpd_tls_security_level = may
smtpd_sasl_auth_enable = no
smtpd_forbid_bare_newline = normalize
smtp_tls_security_level = may
smtp_dns_support_level = enabled
local_transport = local:$myhostname
mailbox_transport = lmtp:unix:private/dovecot-lmtp
relayhost =
smtpd_milters =
non_smtpd_milters =
maillog_file =
`))
	params["queue_directory"] = queue
	h := &fakeHost{
		params:   params,
		defaults: "mail_version = 3.7.11\nsmtpd_forbid_bare_newline = no\n",
		master:   "smtp       inet  n       -       y       -       -       smtpd\n",
		doveconf: "# 2.3.19.1 (9b53102964): /etc/dovecot/dovecot.conf\nmail_location = maildir:" + mail + "/%d/%n/Maildir\n" +
			"ssl_cert = </etc/ssl/mx.pem\nuserdb {\n  args = uid=8 gid=8\n  driver = static\n}\n",
		baseDir: base,
	}
	w := &world{t: t, dir: dir, host: h, disks: map[string]Disk{}}
	w.opts = Options{Runner: h, ProcNet: proc, Logs: []string{filepath.Join(dir, "mail.log")}, LogLines: 2000,
		Statfs: func(p string) (Disk, error) {
			if d, ok := w.disks[p]; ok {
				return d, nil
			}
			return Disk{TotalBytes: 100 << 30, FreeBytes: 50 << 30, Files: 1000, FreeFiles: 900}, nil
		},
		LookupUID: func(string) (string, error) { return "8", nil }}
	w.env = diag.Env{Dialer: &dnsx.Dialer{Timeout: 2 * time.Second}, Limits: diag.Limits{Connect: 2 * time.Second}}
	return w
}

func (w *world) run() (*Result, map[string]diag.Step) {
	w.t.Helper()
	res := Run(context.Background(), w.env, w.opts, diag.Discard)
	m := map[string]diag.Step{}
	for _, s := range res.Steps {
		if _, dup := m[s.ID]; dup {
			w.t.Errorf("step id %s twice", s.ID)
		}
		m[s.ID] = s
	}
	return res, m
}

func TestRunCleanHasNoFail(t *testing.T) {
	w := newWorld(t)
	res, steps := w.run()
	for _, s := range res.Steps {
		if s.Status == diag.Fail || s.Status == diag.Warn {
			t.Errorf("%s: %s %s\n%s", s.ID, s.Status, s.Title, s.Detail)
		}
	}
	for _, id := range []string{"postfix.running", "dovecot.running", "ports", "postfix.check", "postfix.relay", "postfix.mynetworks", "mailbox.format", "disk.queue"} {
		if steps[id].Status != diag.OK {
			t.Errorf("%s = %s %s", id, steps[id].Status, steps[id].Detail)
		}
	}
	if !res.Postfix.Running || !res.Postfix.MX || !res.Dovecot.Running || res.Dovecot.Syntax != "2.3" || len(res.Listeners) != 6 {
		t.Errorf("result %+v", res)
	}
	if steps["firewall"].Status != diag.Skip || !strings.Contains(steps["firewall"].Detail, "nft is not installed") || !strings.Contains(steps["firewall"].Detail, "iptables-save is not installed") {
		t.Errorf("firewall without tools: %+v", steps["firewall"])
	}
}

func TestRunFindings(t *testing.T) {
	tests := []struct {
		name  string
		setup func(w *world)
		id    string
		want  diag.Status
		text  string
	}{
		{"nothing installed", func(w *world) { w.host.noPostfix, w.host.doveconf = true, "" }, "postfix.running", diag.Skip, "not installed"},
		{"dovecot not installed", func(w *world) { w.host.doveconf = "" }, "dovecot.running", diag.Skip, "not installed"},
		{"postfix stopped", func(w *world) { os.Remove(filepath.Join(w.dir, "spool", "pid", "master.pid")) }, "postfix.running", diag.Fail, "not running"},
		{"postfix running per postfix status", func(w *world) {
			os.Remove(filepath.Join(w.dir, "spool", "pid", "master.pid"))
			w.host.status = true
		}, "postfix.running", diag.OK, "postfix status"},
		{"dovecot stopped", func(w *world) { os.Remove(filepath.Join(w.dir, "run", "master.pid")) }, "dovecot.running", diag.Fail, "not running"},
		{"dovecot answers doveadm", func(w *world) { os.Remove(filepath.Join(w.dir, "run", "master.pid")); w.host.who = true }, "dovecot.running", diag.OK, "doveadm who"},
		{"postfix check warns", func(w *world) {
			w.host.check = "postfix/postfix-script: warning: not owned by postfix: /var/lib/postfix/.\n"
		}, "postfix.check", diag.Warn, "not owned"},
		{"postfix check fails", func(w *world) {
			w.host.check, w.host.checkFails = "postfix/postfix-script: fatal: unable to create missing queue directories\n", true
		}, "postfix.check", diag.Fail, "missing queue"},
		{"open relay planted", func(w *world) { w.host.params["mynetworks"] = "0.0.0.0/0" }, "postfix.mynetworks", diag.Fail, "Open relay"},
		{"port 25 loopback only on MX", func(w *world) {
			os.WriteFile(filepath.Join(w.opts.ProcNet, "tcp"), []byte("sl\n0: 0100007F:0019 00000000:0000 0A\n"), 0o644)
			os.WriteFile(filepath.Join(w.opts.ProcNet, "tcp6"), nil, 0o644)
		}, "ports", diag.Fail, "loopback only"},
		{"nothing on 25 on MX", func(w *world) {
			os.WriteFile(filepath.Join(w.opts.ProcNet, "tcp"), nil, 0o644)
			os.WriteFile(filepath.Join(w.opts.ProcNet, "tcp6"), nil, 0o644)
		}, "ports", diag.Warn, "Nothing listens on port 25"},
		{"port-25 stand-in", func(w *world) {
			os.WriteFile(filepath.Join(w.opts.ProcNet, "tcp"), nil, 0o644)
			os.WriteFile(filepath.Join(w.opts.ProcNet, "tcp6"), nil, 0o644)
			w.host.master = "127.0.0.1:2525 inet n - n - - smtpd\n"
		}, "ports", diag.Info, "127.0.0.1:2525"},
		{"maildir vs mbox", func(w *world) {
			w.host.params["mailbox_transport"] = ""
			w.host.params["home_mailbox"] = "Maildir/"
			w.host.params["virtual_mailbox_domains"] = ""
			w.host.doveconf = "mail_location = mbox:~/mail:INBOX=/var/mail/%u\n"
		}, "mailbox.format", diag.Fail, "Postfix writes Maildir (~/Maildir), Dovecot reads mbox"},
		{"maildir path mismatch", func(w *world) {
			w.host.params["mailbox_transport"] = ""
			w.host.params["home_mailbox"] = "Maildir/"
			w.host.params["virtual_mailbox_domains"] = ""
			w.host.doveconf = "mail_location = maildir:~/Mail\n"
		}, "mailbox.format", diag.Fail, "path mismatch"},
		{"maildir paths agree", func(w *world) {
			w.host.params["mailbox_transport"] = ""
			w.host.params["home_mailbox"] = "Maildir/"
			w.host.params["virtual_mailbox_domains"] = ""
			w.host.doveconf = "mail_location = maildir:~/Maildir\n"
		}, "mailbox.format", diag.OK, "writes maildir ~/Maildir"},
		{"mbox spool agrees (2.4)", func(w *world) {
			w.host.params["mailbox_transport"] = ""
			w.host.params["virtual_mailbox_domains"] = ""
			w.host.doveconf = "dovecot_config_version = 2.4.0\nmail_driver = mbox\nmail_path = ~/mail\nmail_inbox_path = /var/mail/%{user}\n"
		}, "mailbox.format", diag.OK, "mail_driver/mail_path"},
		{"relayhost unreachable", func(w *world) { w.host.params["relayhost"] = "[127.0.0.1]:" + closedPort(t) }, "postfix.relayhost", diag.Fail, "unreachable"},
		{"relayhost reachable", func(w *world) { w.host.params["relayhost"] = "[127.0.0.1]:" + openPort(t) }, "postfix.relayhost", diag.OK, "connected"},
		{"milter down", func(w *world) {
			w.host.params["smtpd_milters"] = "unix:" + filepath.Join(w.dir, "nothing.sock") + ", inet:127.0.0.1:" + openPort(t)
		}, "postfix.milters", diag.Fail, "nothing.sock"},
		{"milters up", func(w *world) {
			sock := filepath.Join(w.dir, "m.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			w.host.params["smtpd_milters"] = "unix:" + sock
		}, "postfix.milters", diag.OK, "answering"},
		{"disk low", func(w *world) {
			w.disks[filepath.Join(w.dir, "spool")] = Disk{TotalBytes: 100, FreeBytes: 5, Files: 10, FreeFiles: 9}
		}, "disk.queue", diag.Warn, "5.0%"},
		{"inodes exhausted", func(w *world) {
			w.disks[filepath.Join(w.dir, "spool")] = Disk{TotalBytes: 100, FreeBytes: 50, Files: 1000, FreeFiles: 10}
		}, "disk.queue", diag.Fail, "inodes 1.0% free"},
		{"mail disk found", func(w *world) {}, "disk.mail", diag.OK, filepath.Join("mail")},
		{"docker gateway", func(w *world) { writeConnects(t, w.opts.Logs[0], "172.17.0.1", 40) }, "logs.client_ip", diag.Warn, "hides the real client IP"},
		{"docker gateway in mynetworks", func(w *world) {
			writeConnects(t, w.opts.Logs[0], "172.17.0.1", 40)
			w.host.params["mynetworks"] = "127.0.0.0/8 172.16.0.0/12"
		}, "logs.client_ip", diag.Fail, "open relay"},
		{"varied clients", func(w *world) { writeConnects(t, w.opts.Logs[0], "", 40) }, "logs.client_ip", diag.OK, "40 smtpd connections"},
		{"few connects", func(w *world) { writeConnects(t, w.opts.Logs[0], "172.17.0.1", 3) }, "logs.client_ip", diag.Info, "too few"},
		{"nft drops 25", func(w *world) { w.host.nft = nftRuleset }, "firewall", diag.Warn, "port 25: drop"},
		{"iptables clean", func(w *world) {
			w.host.iptables = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p tcp --dport 25 -j ACCEPT\nCOMMIT\n"
		}, "firewall", diag.OK, "iptables-save"},
		{"smuggling default", func(w *world) { w.host.params["smtpd_forbid_bare_newline"] = "no" }, "postfix.smuggling", diag.Warn, "3.9"},
		{"maildir world-writable", func(w *world) {
			md := filepath.Join(w.dir, "mail", "example.test", "bob", "Maildir")
			for _, s := range []string{"cur", "new", "tmp"} {
				os.MkdirAll(filepath.Join(md, s), 0o700)
				os.Chown(filepath.Join(md, s), 8, 8)
			}
			os.Chmod(md, 0o777)
			os.Chown(md, 8, 8)
		}, "maildir.permissions", diag.Fail, "world-writable"},
		{"maildir root flag", func(w *world) {
			md := filepath.Join(w.dir, "other", "u", "Maildir")
			for _, s := range []string{"cur", "new", "tmp"} {
				os.MkdirAll(filepath.Join(md, s), 0o700)
				os.Chown(filepath.Join(md, s), 8, 8)
			}
			os.Chown(md, 8, 8)
			os.Chmod(md, 0o700)
			w.opts.MaildirRoot = filepath.Join(w.dir, "other")
		}, "maildir.permissions", diag.OK, "1 Maildir(s)"},
		{"no maildirs", func(w *world) {}, "maildir.permissions", diag.Info, "No Maildirs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			tc.setup(w)
			_, steps := w.run()
			st, ok := steps[tc.id]
			if !ok {
				t.Fatalf("no step %s", tc.id)
			}
			if st.Status != tc.want {
				t.Errorf("%s = %s, want %s: %s\n%s", tc.id, st.Status, tc.want, st.Title, st.Detail)
			}
			if !strings.Contains(st.Title+"\n"+st.Detail, tc.text) {
				t.Errorf("%s lacks %q: %s\n%s", tc.id, tc.text, st.Title, st.Detail)
			}
			if (st.Status == diag.Fail || st.Status == diag.Warn) && st.Hint == "" {
				t.Errorf("finding without a fix: %+v", st)
			}
		})
	}
}

// writeConnects writes n smtpd connects, all from ip but the first
// (ip "" makes every client different).
func writeConnects(t *testing.T, path, ip string, n int) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		a := ip
		if a == "" || i == 0 {
			a = "198.51.100." + strconv.Itoa(i+1)
		}
		fmt.Fprintf(&b, "2026-01-02T10:00:00.000000+00:00 mx postfix/smtpd[%d]: connect from unknown[%s]\n", 100+i, a)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return strconv.Itoa(p)
}

func TestRunPTR(t *testing.T) {
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.AddZone("113.0.203.in-addr.arpa", "9 PTR mx1.example.test.\n10 PTR other.example.test.\n", lab.ZoneOptions{})
	s.AddZone("example.test", "mx1 A 203.0.113.9\nother A 203.0.113.99\n", lab.ZoneOptions{})
	r := dnsx.New([]string{s.Addr})
	r.Timeout = 2 * time.Second
	tests := []struct {
		ip   string
		want diag.Status
		text string
	}{
		{"203.0.113.9", diag.OK, "PTR 9.113.0.203.in-addr.arpa. = mx1.example.test"},
		{"203.0.113.10", diag.Warn, "set myhostname = other.example.test"},
		{"203.0.113.11", diag.Fail, "no PTR"},
		{"", diag.Skip, "--public-ip"},
	}
	for _, tc := range tests {
		w := newWorld(t)
		w.env.Resolver = r
		if tc.ip != "" {
			w.opts.PublicIP = netip.MustParseAddr(tc.ip)
		}
		_, steps := w.run()
		st := steps["postfix.ptr"]
		if st.Status != tc.want || !strings.Contains(st.Title+st.Detail+st.Hint, tc.text) {
			t.Errorf("%s: %s %s\n%s\n%s", tc.ip, st.Status, st.Title, st.Detail, st.Hint)
		}
	}
}
