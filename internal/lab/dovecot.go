package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DovecotConfig describes a lab Dovecot instance. The zero value serves
// alice@example.test (password "alice-password") over IMAP, POP3, LMTP and
// ManageSieve without TLS, plaintext logins allowed.
type DovecotConfig struct {
	// Users maps addresses to passwords.
	Users map[string]string
	// Cert enables TLS: STARTTLS on imap, pop3 and sieve, implicit TLS on
	// imaps and pop3s. Plaintext logins are then refused before TLS unless
	// PlaintextAuth is set.
	Cert          *Leaf
	PlaintextAuth bool
	// Extra is appended to the generated dovecot.conf.
	Extra string
}

// Dovecot is a running lab instance, started with `dovecot -c FILE`. It
// never touches /etc/dovecot.
type Dovecot struct {
	IMAP, IMAPS, POP3, POP3S, LMTP, Sieve string // host:port; IMAPS/POP3S only with a certificate
	Auth                                  string // auth listener for Postfix SASL
	Dir, ConfigFile, LogFile, MailDir     string
}

// DefaultUsers are the lab's mailboxes when none are given.
var DefaultUsers = map[string]string{"alice@example.test": "alice-password", "postmaster@example.test": "postmaster-password"}

// StartDovecot writes an instance's configuration into a new directory and
// starts it on free loopback ports. Stop it with Stop.
func StartDovecot(ctx context.Context, cfg DovecotConfig) (*Dovecot, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := need("dovecot", "dovecot-imapd"); err != nil {
		return nil, err
	}
	mailUser, err := user.Lookup("mail")
	if err != nil {
		return nil, fmt.Errorf("lab: %w", err)
	}
	dir, err := workDir("mxray-dovecot-")
	if err != nil {
		return nil, err
	}
	d := &Dovecot{
		Dir:        dir,
		ConfigFile: filepath.Join(dir, "dovecot.conf"),
		LogFile:    filepath.Join(dir, "log", "dovecot.log"),
		MailDir:    filepath.Join(dir, "mail"),
	}
	for _, sub := range []string{"run", "log", "mail"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.Atoi(mailUser.Uid)
	gid, _ := strconv.Atoi(mailUser.Gid)
	if err := os.Chown(d.MailDir, uid, gid); err != nil {
		return nil, err
	}
	users := cfg.Users
	if len(users) == 0 {
		users = DefaultUsers
	}
	var pw strings.Builder
	addrs := make([]string, 0, len(users))
	for a := range users {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	for _, a := range addrs {
		if strings.ContainsAny(a+users[a], ":\n") {
			return nil, fmt.Errorf("lab: dovecot user %q: ':' and newlines cannot go into a passwd-file", a)
		}
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", a, users[a])
	}
	// The passwd-file is read by the auth process, which runs as the
	// dovecot user.
	pwFile := filepath.Join(dir, "passwd")
	if err := os.WriteFile(pwFile, []byte(pw.String()), 0o600); err != nil {
		return nil, err
	}
	if dv, err := user.Lookup("dovecot"); err == nil {
		u, _ := strconv.Atoi(dv.Uid)
		g, _ := strconv.Atoi(dv.Gid)
		if err := os.Chown(pwFile, u, g); err != nil {
			return nil, err
		}
	}

	err = withStartLock(func() error {
		ports, err := freePorts(7)
		if err != nil {
			return err
		}
		hp := func(i int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i])) }
		d.IMAP, d.POP3, d.LMTP, d.Sieve, d.Auth = hp(0), hp(1), hp(2), hp(3), hp(4)
		if cfg.Cert != nil {
			d.IMAPS, d.POP3S = hp(5), hp(6)
		}
		conf, err := d.config(cfg, ports, mailUser.Uid)
		if err != nil {
			return err
		}
		if err := os.WriteFile(d.ConfigFile, []byte(conf), 0o644); err != nil {
			return err
		}
		if _, err := runCmd(ctx, "dovecot", "-c", d.ConfigFile); err != nil {
			return fmt.Errorf("lab: %v\n%s", err, readTail(d.LogFile, 4000))
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		listen := []string{d.IMAP, d.POP3, d.LMTP, d.Auth}
		if cfg.Cert != nil {
			listen = append(listen, d.IMAPS, d.POP3S)
		}
		if hasManageSieve() {
			listen = append(listen, d.Sieve)
		} else {
			d.Sieve = ""
		}
		if err := waitListening(wctx, listen...); err != nil {
			return fmt.Errorf("%v\n%s", err, readTail(d.LogFile, 4000))
		}
		return nil
	})
	if err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

func hasManageSieve() bool {
	_, err := os.Stat("/usr/lib/dovecot/managesieve-login")
	return err == nil
}

func (d *Dovecot) config(cfg DovecotConfig, ports []int, mailUID string) (string, error) {
	var b strings.Builder
	protocols := "imap pop3 lmtp"
	if hasManageSieve() {
		protocols += " sieve"
	}
	fmt.Fprintf(&b, `# mxray lab instance; generated, do not edit
base_dir = %[1]s/run
log_path = %[2]s
info_log_path = %[2]s
protocols = %[3]s
listen = 127.0.0.1
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
mail_location = maildir:%[4]s/%%d/%%n/Maildir
first_valid_uid = %[5]s
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[1]s/passwd
}
userdb {
  driver = static
  args = uid=mail gid=mail home=%[4]s/%%d/%%n
}
protocol lmtp {
  auth_username_format = %%Lu
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = %[6]d
  }
}
service lmtp {
  inet_listener lmtp {
    port = %[7]d
  }
}
`, d.Dir, d.LogFile, protocols, d.MailDir, mailUID, ports[4], ports[2])
	imaps, pop3s := 0, 0
	if cfg.Cert != nil {
		cert, key, err := cfg.Cert.WriteFiles(d.Dir, "dovecot")
		if err != nil {
			return "", err
		}
		imaps, pop3s = ports[5], ports[6]
		fmt.Fprintf(&b, "ssl = yes\nssl_cert = <%s\nssl_key = <%s\nssl_dh = </usr/share/dovecot/dh.pem\n", cert, key)
		fmt.Fprintf(&b, "disable_plaintext_auth = %s\n", yesNo(!cfg.PlaintextAuth))
	} else {
		b.WriteString("ssl = no\ndisable_plaintext_auth = no\n")
	}
	fmt.Fprintf(&b, `service imap-login {
  inet_listener imap {
    port = %d
  }
  inet_listener imaps {
    port = %d
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %d
  }
  inet_listener pop3s {
    port = %d
  }
}
`, ports[0], imaps, ports[1], pop3s)
	if hasManageSieve() {
		fmt.Fprintf(&b, "service managesieve-login {\n  inet_listener sieve {\n    port = %d\n  }\n}\n", ports[3])
	}
	b.WriteString(cfg.Extra)
	return b.String(), nil
}

func yesNo(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

// Log returns the instance's log so far.
func (d *Dovecot) Log() (string, error) {
	b, err := os.ReadFile(d.LogFile)
	return string(b), err
}

// Stop stops the instance, waits until its IMAP port is closed and removes
// its directory.
func (d *Dovecot) Stop() error {
	if d == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var err error
	if _, serr := os.Stat(filepath.Join(d.Dir, "run", "master.pid")); serr == nil {
		if _, err = runCmd(ctx, "doveadm", "-c", d.ConfigFile, "stop"); err == nil && d.IMAP != "" {
			err = waitClosed(ctx, d.IMAP)
		}
	}
	if os.Getenv("MXRAY_LAB_KEEP") == "" {
		os.RemoveAll(d.Dir)
	}
	return err
}
