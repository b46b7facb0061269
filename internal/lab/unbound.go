package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// UnboundConfig describes a lab unbound: a real validating resolver that
// serves the signed zones itself (with their trust anchors) and forwards
// the lab's other zones to the lab's DNS server.
type UnboundConfig struct {
	Forward string // host:port of the lab DNS server
	// ForwardZones are the zones sent to Forward, usually the lab server's
	// Zones(). Unbound gives a forward-zone precedence over an auth-zone,
	// so forwarding "." (or any parent of a signed zone) would hide the
	// signed zones: each zone is forwarded by name, and parents of signed
	// zones are left out.
	ForwardZones []string
	Signed       []*SignedZone
}

// Unbound is a running lab resolver. Answers from the signed zones carry an
// AD bit that unbound earned by validating them; everything else is
// insecure (no trust anchor above it), so AD is clear.
type Unbound struct {
	Addr    string // host:port, UDP and TCP
	Dir     string
	LogFile string
	cmd     *exec.Cmd
	done    chan error
}

// StartUnbound writes a configuration and runs unbound in the foreground
// on a free loopback port.
func StartUnbound(ctx context.Context, cfg UnboundConfig) (*Unbound, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if err := need("unbound", "unbound"); err != nil {
		return nil, err
	}
	dir, err := workDir("mxray-unbound-")
	if err != nil {
		return nil, err
	}
	u := &Unbound{Dir: dir, LogFile: filepath.Join(dir, "unbound.log")}
	var b strings.Builder
	err = withStartLock(func() error {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		u.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		fmt.Fprintf(&b, `server:
  interface: 127.0.0.1@%[1]d
  port: %[1]d
  do-ip6: no
  username: ""
  chroot: ""
  directory: "%[2]s"
  pidfile: "%[2]s/unbound.pid"
  logfile: "%[3]s"
  use-syslog: no
  verbosity: 1
  val-log-level: 2
  do-not-query-localhost: no
  module-config: "validator iterator"
  # The lab's names sit under special-use TLDs that unbound answers
  # itself by default (RFC 6761); hand them to the lab instead.
  local-zone: "test." nodefault
  local-zone: "invalid." nodefault
  local-zone: "127.in-addr.arpa." nodefault
  cache-max-ttl: 5
  cache-max-negative-ttl: 1
`, ports[0], dir, u.LogFile)
		for _, z := range cfg.Signed {
			fmt.Fprintf(&b, "  trust-anchor: \"%s\"\n", strings.ReplaceAll(z.DS.String(), "\t", " "))
		}
		for _, z := range cfg.Signed {
			file := filepath.Join(dir, strings.TrimSuffix(z.Origin, ".")+".zone")
			if err := os.WriteFile(file, []byte(z.Text()), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(&b, "auth-zone:\n  name: %q\n  zonefile: %q\n  for-upstream: yes\n  for-downstream: no\n  fallback-enabled: no\n", z.Origin, file)
		}
		if cfg.Forward != "" {
			host, port, err := net.SplitHostPort(cfg.Forward)
			if err != nil {
				return fmt.Errorf("lab: unbound forward %q: %w", cfg.Forward, err)
			}
		zones:
			for _, z := range cfg.ForwardZones {
				for _, sz := range cfg.Signed {
					if dns.IsSubDomain(z, sz.Origin) {
						// Forwarding a parent would hide the signed zone:
						// leave the parent (a catch-all such as "test.")
						// out; its other names do not resolve through
						// unbound.
						continue zones
					}
				}
				fmt.Fprintf(&b, "forward-zone:\n  name: %q\n  forward-addr: %s@%s\n", dns.Fqdn(z), host, port)
			}
		}
		conf := filepath.Join(dir, "unbound.conf")
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return err
		}
		if out, err := runCmd(ctx, "unbound-checkconf", conf); err != nil {
			return fmt.Errorf("lab: unbound config: %v\n%s", err, out)
		}
		u.cmd = exec.Command("unbound", "-d", "-c", conf)
		u.cmd.Stdout = nil
		u.cmd.Stderr = nil
		if err := u.cmd.Start(); err != nil {
			return fmt.Errorf("lab: unbound: %w", err)
		}
		u.done = make(chan error, 1)
		go func() { u.done <- u.cmd.Wait() }()
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := waitListening(wctx, u.Addr); err != nil {
			return fmt.Errorf("%v\n%s", err, readTail(u.LogFile, 4000))
		}
		return nil
	})
	if err != nil {
		u.Stop()
		return nil, err
	}
	return u, nil
}

// Stop ends unbound and removes its directory.
func (u *Unbound) Stop() error {
	if u == nil {
		return nil
	}
	if u.cmd != nil && u.cmd.Process != nil {
		u.cmd.Process.Signal(os.Interrupt)
		select {
		case <-u.done:
		case <-time.After(10 * time.Second):
			u.cmd.Process.Kill()
			<-u.done
		}
	}
	if os.Getenv("MXRAY_LAB_KEEP") == "" {
		os.RemoveAll(u.Dir)
	}
	return nil
}
