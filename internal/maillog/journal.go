package maillog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrNoJournal is returned when journalctl cannot be run or cannot read
// the journal.
var ErrNoJournal = errors.New("maillog: cannot read the systemd journal")

// journalUnits are always asked for: Debian's postfix@-.service (the
// default instance), a plain postfix.service, and Dovecot.
var journalUnits = []string{"postfix.service", "postfix@-.service", "dovecot.service"}

// Journal reads Postfix's and Dovecot's records from the systemd journal
// with journalctl -o json, which ParseLine reads.
type Journal struct {
	// Command is the journalctl to run; "" means "journalctl" from PATH.
	Command string
	// Since limits the records to those at or after it (--since); zero
	// means all.
	Since  time.Time
	Logger *slog.Logger
}

func (j Journal) command() string {
	if j.Command == "" {
		return "journalctl"
	}
	return j.Command
}

// Args finds the syslog identifiers and units of Postfix and Dovecot in
// the journal (journalctl -F) and returns the arguments that select
// them. Journal matches on one field are alternatives; "+" joins the
// identifier matches and the unit matches into one disjunction, so a
// Postfix program run outside the unit (sendmail, postsuper) is included.
func (j Journal) Args(ctx context.Context) ([]string, error) {
	ids, err := j.fieldValues(ctx, "SYSLOG_IDENTIFIER")
	if err != nil {
		return nil, err
	}
	units, err := j.fieldValues(ctx, "_SYSTEMD_UNIT")
	if err != nil {
		return nil, err
	}
	args := []string{"-o", "json", "--no-pager", "-q"}
	if !j.Since.IsZero() {
		args = append(args, "--since", "@"+strconv.FormatInt(j.Since.Unix(), 10))
	}
	var idm []string
	for _, v := range ids {
		if mailProgram(v) {
			idm = append(idm, "SYSLOG_IDENTIFIER="+v)
		}
	}
	um := map[string]bool{}
	for _, u := range journalUnits {
		um[u] = true
	}
	for _, u := range units {
		if mailProgram(u) {
			um[u] = true
		}
	}
	var uml []string
	for u := range um {
		uml = append(uml, "_SYSTEMD_UNIT="+u)
	}
	sort.Strings(idm)
	sort.Strings(uml)
	args = append(args, idm...)
	if len(idm) > 0 {
		args = append(args, "+")
	}
	return append(args, uml...), nil
}

func mailProgram(v string) bool {
	return strings.HasPrefix(v, "postfix") || strings.HasPrefix(v, "dovecot")
}

func (j Journal) fieldValues(ctx context.Context, field string) ([]string, error) {
	cmd := exec.CommandContext(ctx, j.command(), "-F", field)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, journalErr(err, &stderr)
	}
	var vals []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			vals = append(vals, l)
		}
	}
	return vals, nil
}

func journalErr(err error, stderr *bytes.Buffer) error {
	msg := strings.TrimSpace(stderr.String())
	if msg == "" {
		return fmt.Errorf("%w: %v", ErrNoJournal, err)
	}
	return fmt.Errorf("%w: %v: %s", ErrNoJournal, err, msg)
}

// Open starts journalctl and returns its output (JSON lines) with the
// arguments it was run with. Reading returns the failure of journalctl
// after its last line; Close stops it.
func (j Journal) Open(ctx context.Context) (io.ReadCloser, []string, error) {
	args, err := j.Args(ctx)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, j.command(), args...)
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %v", ErrNoJournal, err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %v", ErrNoJournal, err)
	}
	if j.Logger != nil {
		j.Logger.Debug("journalctl started", "args", strings.Join(args, " "))
	}
	return &journalReader{cmd: cmd, out: out, stderr: stderr, cancel: cancel}, args, nil
}

type journalReader struct {
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr *bytes.Buffer
	cancel context.CancelFunc
	once   sync.Once
	werr   error
}

func (r *journalReader) wait() error {
	r.once.Do(func() {
		if err := r.cmd.Wait(); err != nil {
			r.werr = journalErr(err, r.stderr)
		}
		r.cancel()
	})
	return r.werr
}

func (r *journalReader) Read(p []byte) (int, error) {
	n, err := r.out.Read(p)
	if errors.Is(err, io.EOF) {
		if werr := r.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (r *journalReader) Close() error {
	r.cancel()
	r.wait()
	return nil
}
