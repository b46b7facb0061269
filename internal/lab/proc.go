package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// lockPath serialises the start of daemons across processes: `go test`
// runs packages in parallel, and between picking a free port and the
// daemon binding it another package must not pick the same one.
var lockPath = filepath.Join(os.TempDir(), "mxray-lab.lock")

// withStartLock runs fn holding the lab's cross-process start lock.
func withStartLock(fn func() error) error {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("lab: start lock: %w", err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lab: start lock: %w", err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return fn()
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 at the time of
// the call. Call it under withStartLock.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("lab: free port: %w", err)
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitListening waits until every address accepts TCP connections.
func waitListening(ctx context.Context, addrs ...string) error {
	for _, a := range addrs {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("lab: %s never started listening: %w", a, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitClosed waits until nothing accepts connections on addr any more.
func waitClosed(ctx context.Context, addr string) error {
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return nil
		}
		c.Close()
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab: %s still listening after stop", addr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runCmd runs a program and returns its combined output, which the error
// carries too. Output goes through a file, not a pipe: daemons (postfix
// start, dovecot) fork a master that inherits the descriptors, and a pipe
// would stay open for the master's whole life.
func runCmd(ctx context.Context, name string, args ...string) (string, error) {
	f, err := os.CreateTemp("", "mxray-lab-cmd-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ErrNotRoot is returned by the launchers of real daemons when the process
// is not root: Postfix and Dovecot drop privileges to their own users,
// which only root can do. CI and the test command run as root.
var ErrNotRoot = errors.New("lab: starting real Postfix/Dovecot/unbound needs root")

// ErrNotInstalled names a Debian package that is missing.
var ErrNotInstalled = errors.New("lab: not installed (run scripts/test-deps.sh)")

func need(binary, pkg string) error {
	if _, err := exec.LookPath(binary); err != nil {
		return fmt.Errorf("%w: %s (Debian package %s)", ErrNotInstalled, binary, pkg)
	}
	return nil
}

// workDir makes a world-traversable directory for a daemon: its users
// (postfix, dovecot, mail) must reach their files inside.
func workDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	return dir, nil
}

func readTail(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}
