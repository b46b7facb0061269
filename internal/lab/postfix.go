package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PostfixConfig describes a lab Postfix instance. The zero value is a
// receiving MX for example.test that accepts postmaster@ and alice@ and
// discards what it receives.
type PostfixConfig struct {
	Hostname string   // myhostname; default mx1.example.test
	Domains  []string // virtual mailbox domains; default example.test
	// Users are the accepted recipients (full addresses); default
	// postmaster@ and alice@ of each domain. Others get 550 5.1.1.
	Users []string
	// Cert enables STARTTLS with this certificate.
	Cert *Leaf
	// LMTP delivers accepted mail to this host:port (Dovecot's LMTP);
	// without it, mail is discarded after acceptance.
	LMTP string
	// SASLAuth is Dovecot's auth listener (host:port): enables a
	// submission listener with SMTP AUTH.
	SASLAuth string
	// Main adds or overrides main.cf parameters.
	Main map[string]string
}

// Postfix is a running lab instance, started with `postfix -c DIR start`.
// It never touches /etc/postfix.
type Postfix struct {
	SMTP       string // host:port of the port-25 stand-in
	Submission string // host:port with SASL, when configured
	Dir        string // everything of the instance lives here
	ConfigDir  string
	QueueDir   string
	LogFile    string
}

// masterServices are the daemons a lab instance runs, chroot off: Debian's
// chrooted services cannot reach sockets in a temporary directory.
const masterServices = `pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`

// StartPostfix writes an instance's configuration into a new directory
// and starts it on free loopback ports. Stop it with Stop.
func StartPostfix(ctx context.Context, cfg PostfixConfig) (*Postfix, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := need("postfix", "postfix"); err != nil {
		return nil, err
	}
	dir, err := workDir("mxray-postfix-")
	if err != nil {
		return nil, err
	}
	p := &Postfix{
		Dir:       dir,
		ConfigDir: filepath.Join(dir, "etc"),
		QueueDir:  filepath.Join(dir, "spool"),
		LogFile:   filepath.Join(dir, "log", "postfix.log"),
	}
	for _, d := range []string{p.ConfigDir, p.QueueDir, filepath.Dir(p.LogFile), filepath.Join(dir, "data")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pf.Gid)
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		return nil, err
	}

	err = withStartLock(func() error {
		ports, err := freePorts(2)
		if err != nil {
			return err
		}
		p.SMTP = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		master := fmt.Sprintf("%s inet n - n - - smtpd\n", p.SMTP)
		if cfg.SASLAuth != "" {
			p.Submission = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
			master += fmt.Sprintf("%s inet n - n - - smtpd\n"+
				"  -o syslog_name=postfix/submission\n"+
				"  -o smtpd_sasl_auth_enable=yes\n"+
				"  -o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"+
				"  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject\n", p.Submission)
			if cfg.Cert != nil {
				master += "  -o smtpd_tls_security_level=encrypt\n"
			}
		}
		if err := os.WriteFile(filepath.Join(p.ConfigDir, "master.cf"), []byte(master+masterServices), 0o644); err != nil {
			return err
		}
		main, err := p.mainCF(cfg)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(p.ConfigDir, "main.cf"), []byte(main), 0o644); err != nil {
			return err
		}
		if out, err := runCmd(ctx, "postfix", "-c", p.ConfigDir, "start"); err != nil {
			// Startup errors go to syslog, which may be absent: `postfix
			// check` prints its complaints to stderr.
			check, _ := runCmd(ctx, "postfix", "-c", p.ConfigDir, "check")
			return fmt.Errorf("lab: postfix start: %v\n%s\n%s\n%s", err, out, check, readTail(p.LogFile, 4000))
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		addrs := []string{p.SMTP}
		if p.Submission != "" {
			addrs = append(addrs, p.Submission)
		}
		if err := waitListening(wctx, addrs...); err != nil {
			return fmt.Errorf("%v\n%s", err, readTail(p.LogFile, 4000))
		}
		return nil
	})
	if err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postfix) mainCF(cfg PostfixConfig) (string, error) {
	host := cfg.Hostname
	if host == "" {
		host = "mx1.example.test"
	}
	domains := cfg.Domains
	if len(domains) == 0 {
		domains = []string{"example.test"}
	}
	users := cfg.Users
	if len(users) == 0 {
		for _, d := range domains {
			users = append(users, "postmaster@"+d, "alice@"+d)
		}
	}
	for _, u := range users {
		if strings.ContainsAny(u, "{}, \t\n") {
			return "", fmt.Errorf("lab: postfix user %q has characters an inline map cannot hold", u)
		}
	}
	transport := "discard:"
	if cfg.LMTP != "" {
		transport = "lmtp:inet:" + cfg.LMTP
	}
	m := map[string]string{
		"compatibility_level":      "3.6",
		"queue_directory":          p.QueueDir,
		"data_directory":           filepath.Join(p.Dir, "data"),
		"myhostname":               host,
		"mydomain":                 domains[0],
		"myorigin":                 "$myhostname",
		"mydestination":            "",
		"inet_interfaces":          "127.0.0.1",
		"inet_protocols":           "ipv4",
		"mynetworks":               "127.0.0.254/32", // nobody: the lab's clients are outsiders
		"maillog_file":             p.LogFile,
		"maillog_file_prefixes":    filepath.Dir(p.LogFile),
		"alias_maps":               "",
		"alias_database":           "",
		"biff":                     "no",
		"append_dot_mydomain":      "no",
		"smtputf8_enable":          "yes",
		"virtual_mailbox_domains":  strings.Join(domains, ", "),
		"virtual_mailbox_maps":     "inline:{ " + strings.Join(withOK(users), ", ") + " }",
		"virtual_transport":        transport,
		"smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
		// Short queue times, so that deferrals and retries happen in seconds.
		"queue_run_delay":      "2s",
		"minimal_backoff_time": "2s",
		"maximal_backoff_time": "10s",
		"smtp_connect_timeout": "5s",
	}
	if cfg.Cert != nil {
		cert, key, err := cfg.Cert.WriteFiles(p.ConfigDir, "smtpd")
		if err != nil {
			return "", err
		}
		m["smtpd_tls_cert_file"] = cert
		m["smtpd_tls_key_file"] = key
		m["smtpd_tls_security_level"] = "may"
		m["smtpd_tls_loglevel"] = "1"
	}
	if cfg.SASLAuth != "" {
		m["smtpd_sasl_type"] = "dovecot"
		m["smtpd_sasl_path"] = "inet:" + cfg.SASLAuth
	}
	for k, v := range cfg.Main {
		m[k] = v
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# mxray lab instance; generated, do not edit\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "%s = %s\n", k, m[k])
	}
	return b.String(), nil
}

func withOK(users []string) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u + "=ok"
	}
	return out
}

// Postqueue runs postqueue on the instance (for example "-j" for the
// queue as JSON lines).
func (p *Postfix) Postqueue(ctx context.Context, args ...string) (string, error) {
	return runCmd(ctx, "postqueue", append([]string{"-c", p.ConfigDir}, args...)...)
}

// Log returns the instance's log so far.
func (p *Postfix) Log() (string, error) {
	b, err := os.ReadFile(p.LogFile)
	return string(b), err
}

// Stop stops the instance, waits until its port is closed and removes its
// directory.
func (p *Postfix) Stop() error {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	if _, serr := os.Stat(filepath.Join(p.QueueDir, "pid", "master.pid")); serr == nil {
		if _, err = runCmd(ctx, "postfix", "-c", p.ConfigDir, "stop"); err == nil && p.SMTP != "" {
			err = waitClosed(ctx, p.SMTP)
		}
		if err != nil {
			// Last resort: abort kills the master and its children.
			exec.CommandContext(ctx, "postfix", "-c", p.ConfigDir, "abort").Run()
		}
	}
	if os.Getenv("MXRAY_LAB_KEEP") == "" {
		os.RemoveAll(p.Dir)
	}
	return err
}
