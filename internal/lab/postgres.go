package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres is a running lab PostgreSQL: a fresh cluster in a temporary
// directory, listening on a free port on 127.0.0.1 (and on a unix socket
// in its own directory), trusting every local connection. It is for
// tests: fsync is off.
type Postgres struct {
	Addr    string // 127.0.0.1:port
	Dir     string // the temporary directory: data/, sock/, postgres.log
	LogFile string
	// Version is the major version, the directory under
	// /usr/lib/postgresql whose binaries run it.
	Version string

	bin      string
	cred     *syscall.Credential // the postgres user, when started as root
	cmd      *exec.Cmd
	done     chan error
	stopOnce bool
}

// PostgresRoot is where Debian installs PostgreSQL's server binaries,
// one directory per major version.
var PostgresRoot = "/usr/lib/postgresql"

// ErrPostgresName: a database name outside [a-z0-9_].
var ErrPostgresName = errors.New("lab: database names are lower-case letters, digits and _")

// postgresBin returns the bin directory of the newest PostgreSQL
// installed, and its version.
func postgresBin() (string, string, error) {
	ents, err := os.ReadDir(PostgresRoot)
	var versions []string
	for _, e := range ents {
		if _, err := strconv.ParseFloat(e.Name(), 64); err == nil {
			if _, err := os.Stat(filepath.Join(PostgresRoot, e.Name(), "bin", "initdb")); err == nil {
				versions = append(versions, e.Name())
			}
		}
	}
	if len(versions) == 0 {
		return "", "", fmt.Errorf("%w: %s/*/bin/initdb (Debian package postgresql): %v", ErrNotInstalled, PostgresRoot, err)
	}
	sort.Slice(versions, func(i, j int) bool {
		a, _ := strconv.ParseFloat(versions[i], 64)
		b, _ := strconv.ParseFloat(versions[j], 64)
		return a < b
	})
	v := versions[len(versions)-1]
	return filepath.Join(PostgresRoot, v, "bin"), v, nil
}

// StartPostgres creates a cluster and starts PostgreSQL. Debian's initdb
// refuses to run as root, so as root the cluster belongs to, and the
// server runs as, the postgres user; otherwise the current user.
//
// The cluster's default collation is ICU's en-US, as on a typical
// production server, so that tests catch code that assumes text sorts
// byte by byte.
func StartPostgres(ctx context.Context) (*Postgres, error) {
	bin, version, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := workDir("mxray-postgres-")
	if err != nil {
		return nil, err
	}
	p := &Postgres{Dir: dir, LogFile: filepath.Join(dir, "postgres.log"), Version: version, bin: bin}
	if err := p.start(ctx); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) start(ctx context.Context) error {
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("%w: user postgres (Debian package postgresql): %v", ErrNotInstalled, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(p.Dir, uid, gid); err != nil {
			return fmt.Errorf("lab: postgres: %w", err)
		}
	}
	data, sock := filepath.Join(p.Dir, "data"), filepath.Join(p.Dir, "sock")
	if out, err := p.run(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
		"--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US", "--no-sync"); err != nil {
		return fmt.Errorf("lab: initdb: %v\n%s", err, out)
	}
	if out, err := p.run(ctx, "sh", "-c", "mkdir -m 700 "+sock); err != nil {
		return fmt.Errorf("lab: postgres socket directory: %v\n%s", err, out)
	}
	log, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	return withStartLock(func() error {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		p.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
		p.cmd = exec.Command(filepath.Join(p.bin, "postgres"), "-D", data, "-p", strconv.Itoa(ports[0]),
			"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+sock,
			// A test database: nothing needs to survive a crash.
			"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
			"-c", "max_connections=100", "-c", "shared_buffers=32MB")
		p.cmd.Dir, p.cmd.Stdout, p.cmd.Stderr = p.Dir, log, log
		p.cmd.Env = []string{"LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin"}
		if p.cred != nil {
			p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
		}
		if err := p.cmd.Start(); err != nil {
			return fmt.Errorf("lab: postgres: %w", err)
		}
		p.done = make(chan error, 1)
		go func() { p.done <- p.cmd.Wait() }()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		// Listening is not ready: the server refuses connections while it
		// starts up. Wait until a session works.
		for {
			c, err := pgx.Connect(wctx, p.URL("postgres"))
			if err == nil {
				c.Close(wctx)
				return nil
			}
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("lab: postgres exited: %v\n%s", err, readTail(p.LogFile, 4000))
			case <-wctx.Done():
				return fmt.Errorf("lab: postgres never accepted a session: %v\n%s", err, readTail(p.LogFile, 4000))
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// run runs one of PostgreSQL's programs (or a shell command) as the
// cluster's owner.
func (p *Postgres) run(ctx context.Context, name string, args ...string) (string, error) {
	if !strings.Contains(name, "/") && name != "sh" {
		name = filepath.Join(p.bin, name)
	}
	f, err := os.CreateTemp(p.Dir, "cmd-")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = p.Dir, f, f
	cmd.Env = []string{"LC_ALL=C.UTF-8", "PATH=/usr/bin:/bin"}
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return string(out), err
}

// URL returns the URL of database name on this server.
func (p *Postgres) URL(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: p.Addr, Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

var dbName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// CreateDatabase creates an empty database and returns its URL
// (postgres://postgres@127.0.0.1:PORT/NAME?sslmode=disable).
func (p *Postgres) CreateDatabase(ctx context.Context, name string) (string, error) {
	if !dbName.MatchString(name) {
		return "", fmt.Errorf("%w: %q", ErrPostgresName, name)
	}
	c, err := pgx.Connect(ctx, p.URL("postgres"))
	if err != nil {
		return "", fmt.Errorf("lab: postgres: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("lab: postgres: create database %s: %w", name, err)
	}
	return p.URL(name), nil
}

// Stop stops the server (pg_ctl stop -m fast: sessions are ended) and
// removes its directory, unless MXRAY_LAB_KEEP is set.
func (p *Postgres) Stop() error {
	if p == nil || p.stopOnce {
		return nil
	}
	p.stopOnce = true
	var err error
	if p.cmd != nil && p.cmd.Process != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, perr := p.run(ctx, "pg_ctl", "stop", "-D", filepath.Join(p.Dir, "data"), "-m", "fast", "-w"); perr != nil {
			err = fmt.Errorf("lab: pg_ctl stop: %v: %s", perr, strings.TrimSpace(out))
			p.cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if os.Getenv("MXRAY_LAB_KEEP") == "" {
		os.RemoveAll(p.Dir)
	}
	return err
}
