package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/maillog"
)

// defaultMailLog is where Debian's rsyslog writes the mail log; without
// it the journal is read. Variables so that tests can point elsewhere.
var (
	defaultMailLog    = "/var/log/mail.log"
	journalctlCommand = "journalctl"
)

func newLogsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Analyse Postfix and Dovecot logs",
		Long: `Analyse Postfix and Dovecot logs: summary, one message's trace, authentication
failures, and following a log as it grows.

Without FILE, /var/log/mail.log is read if it exists, else the systemd journal
(journalctl -o json, Postfix's and Dovecot's identifiers and units); stderr
says which.`,
	}
	var compat bool
	var since string
	summary := &cobra.Command{
		Use:   "summary [FILE...]",
		Short: "Summarise mail logs: pflogsumm's grand totals and much more",
		Long: `Summarise Postfix and Dovecot logs: received, delivered, deferred, bounced,
rejected, bytes, senders and recipients (pflogsumm's grand totals, counted the
same way), traffic per day and hour, per-domain delivery with delays, top
senders and recipients, deferral, bounce and reject reasons, warnings, SMTP
connections and Dovecot logins.

FILE may be plain or gzip-rotated (detected by content), or - for standard
input; give rotated files oldest first. Without FILE, /var/log/mail.log is
read, else the systemd journal. Syslog, RFC 3339 (rsyslog, Postfix's
maillog_file) and journalctl short-iso and json lines are read; unknown lines
are counted, never fatal.`,
		Example: `  mxray logs summary /var/log/mail.log.2.gz /var/log/mail.log.1 /var/log/mail.log
  journalctl -o short-iso -u postfix@- | mxray logs summary -
  mxray logs summary --since 24h --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogsSummary(cmd.Context(), a, args, compat, since)
		},
	}
	summary.Flags().BoolVar(&compat, "pflogsumm-compat", false, "count only what Debian's pflogsumm 1.1.5 counts (see internal/maillog/PFLOGSUMM.md)")
	summary.Flags().StringVar(&since, "since", "", "only lines at or after this time: a duration back (24h, 90m, 7d) or a date (2006-01-02[ 15:04[:05]], RFC 3339)")
	cmd.AddCommand(summary, newLogsTraceCmd(a), newLogsAuthCmd(a), newLogsFollowCmd(a))
	return cmd
}

const sinceHelp = "only lines at or after this time: a duration back (24h, 90m, 7d) or a date (2006-01-02[ 15:04[:05]], RFC 3339)"

// parseSince reads --since: a duration back from now ("24h", "7d") or a
// local date and time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 {
			return now.AddDate(0, 0, -d), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			d = -d
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, diag.Usagef("--since %q: want a duration (24h, 90m, 7d) or a date (2006-01-02, 2006-01-02 15:04, RFC 3339)", s)
}

// logInputs opens the inputs of a logs command: the files named, - for
// standard input, or with none the system's mail log or journal. The
// journal is asked for the --since window itself; files are filtered
// later. close releases everything.
type logInputs struct {
	readers []io.Reader
	closers []io.Closer
	journal bool // the journal already applied --since
}

func (in *logInputs) Close() {
	for _, c := range in.closers {
		c.Close()
	}
}

func openLogInputs(ctx context.Context, a *app, paths []string, since time.Time) (*logInputs, error) {
	in := &logInputs{}
	if len(paths) == 0 {
		if _, err := os.Stat(defaultMailLog); err == nil {
			a.log.Info("reading the mail log", "file", defaultMailLog)
			paths = []string{defaultMailLog}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, diag.Usagef("%s: %v", defaultMailLog, err)
		} else {
			j := maillog.Journal{Command: journalctlCommand, Since: since, Logger: a.log}
			r, args, err := j.Open(ctx)
			if err != nil {
				return nil, diag.Usagef("no FILE given, %s does not exist, and %v", defaultMailLog, err)
			}
			a.log.Info("reading the systemd journal", "command", journalctlCommand+" "+strings.Join(args, " "))
			in.readers = append(in.readers, r)
			in.closers = append(in.closers, r)
			in.journal = true
			return in, nil
		}
	}
	for _, p := range paths {
		if p == "-" {
			r, err := maillog.NewReader(a.stdin)
			if err != nil {
				in.Close()
				return nil, diag.Usagef("standard input: %v", err)
			}
			in.readers = append(in.readers, r)
			continue
		}
		f, err := maillog.Open(p)
		if err != nil {
			in.Close()
			return nil, diag.Usagef("%v", err)
		}
		in.readers = append(in.readers, f)
		in.closers = append(in.closers, f)
	}
	return in, nil
}

// readErr classifies an error met while reading log input.
func readErr(err error) error {
	switch {
	case errors.Is(err, maillog.ErrGzip):
		return diag.Usagef("%v", err)
	case errors.Is(err, maillog.ErrNoJournal):
		return diag.Uncheckedf("%v", err)
	}
	return err
}

func (a *app) logOptions() maillog.Options {
	return maillog.Options{Reference: a.env.Clock(), Location: time.Local, Logger: a.log}
}

func runLogsSummary(ctx context.Context, a *app, paths []string, compat bool, sinceArg string) error {
	since, err := parseSince(sinceArg, a.env.Clock())
	if err != nil {
		return err
	}
	in, err := openLogInputs(ctx, a, paths, since)
	if err != nil {
		return err
	}
	defer in.Close()
	opts := a.logOptions()
	opts.PflogsummCompat = compat
	rs := in.readers
	if !since.IsZero() && !in.journal {
		for i, r := range rs {
			sr := maillog.SinceReader(ctx, r, since, opts)
			defer sr.Close()
			rs[i] = sr
		}
	}
	s, err := maillog.Summarize(ctx, opts, rs...)
	if err != nil {
		return readErr(err)
	}
	return a.out.Result("logs summary", s, func(w io.Writer, _ *diag.Output) {
		maillog.WriteText(w, s)
	})
}

func newLogsTraceCmd(a *app) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "trace QUEUE-ID|ADDRESS|MESSAGE-ID [FILE...]",
		Short: "Follow one message's life through Postfix: connection, queue, every delivery attempt, bounce",
		Long: `Show the life of every message that matches, as a timeline across Postfix's
processes: the SMTP connection, the Message-ID, the queue manager's sender,
size and recipient count, each delivery attempt (recipient, relay, delay and
its a/b/c/d breakdown: before the queue manager, in it, connection setup,
transmission; DSN, status, the remote server's reply), deferrals and retries,
the bounce notification (followed to its own queue id), hand-overs to this
same server ("queued as", e.g. through a content filter), and the removal.

A queue id names one message at a time (Postfix reuses ids: a message ends at
its "removed" line). An address matches the envelope sender, any recipient and
any refused recipient (NOQUEUE rejects); a Message-ID may be given with or
without angle brackets.

Exit codes: 0 a message matched, 1 none did, 2 bad input.`,
		Example: `  mxray logs trace 4AB12C3D4E
  mxray logs trace bob@example.com /var/log/mail.log.1 /var/log/mail.log
  mxray logs trace '<m1@client.example>' --json`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogsTrace(cmd.Context(), a, args[0], args[1:], since)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", sinceHelp)
	return cmd
}

func runLogsTrace(ctx context.Context, a *app, query string, paths []string, sinceArg string) error {
	if strings.TrimSpace(query) == "" {
		return diag.Usagef("logs trace: empty query")
	}
	since, err := parseSince(sinceArg, a.env.Clock())
	if err != nil {
		return err
	}
	in, err := openLogInputs(ctx, a, paths, since)
	if err != nil {
		return err
	}
	defer in.Close()
	res, err := maillog.Trace(ctx, query, a.logOptions(), since, in.readers...)
	if err != nil {
		return readErr(err)
	}
	if err := a.out.Result("logs trace", res, func(w io.Writer, _ *diag.Output) {
		maillog.WriteTrace(w, res)
	}); err != nil {
		return err
	}
	if res.Matched == 0 {
		return diag.Found
	}
	return nil
}

func newLogsAuthCmd(a *app) *cobra.Command {
	var since string
	var top int
	cmd := &cobra.Command{
		Use:   "auth [FILE...]",
		Short: "Authentication failures by client address and by user: brute force stands out",
		Long: `Count failed SASL authentications (Postfix smtpd) and failed logins (Dovecot
auth, imap-login, pop3-login, ...) by client IP and by user name, with first
and last time seen, the users an address tried and the addresses a user was
tried from, most failures first. Successful logins are counted for the same
addresses and users: failures followed by a login may be a guessed password.
Failures because the authentication server was unreachable are counted apart.`,
		Example: `  mxray logs auth --since 24h
  mxray logs auth --top 20 /var/log/mail.log --json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if top < 0 {
				return diag.Usagef("--top must be 0 (all) or more, got %d", top)
			}
			return runLogsAuth(cmd.Context(), a, args, since, top)
		},
	}
	cmd.Flags().StringVar(&since, "since", "", sinceHelp)
	cmd.Flags().IntVar(&top, "top", 10, "rows per table (0: all)")
	return cmd
}

func runLogsAuth(ctx context.Context, a *app, paths []string, sinceArg string, top int) error {
	since, err := parseSince(sinceArg, a.env.Clock())
	if err != nil {
		return err
	}
	in, err := openLogInputs(ctx, a, paths, since)
	if err != nil {
		return err
	}
	defer in.Close()
	res, err := maillog.Auth(ctx, a.logOptions(), since, top, in.readers...)
	if err != nil {
		return readErr(err)
	}
	return a.out.Result("logs auth", res, func(w io.Writer, _ *diag.Output) {
		maillog.WriteAuth(w, res)
	})
}

func newLogsFollowCmd(a *app) *cobra.Command {
	var f maillog.Filter
	var events []string
	var fromStart bool
	var poll time.Duration
	cmd := &cobra.Command{
		Use:   "follow FILE",
		Short: "Print log entries as they are written, like tail -F, with filters",
		Long: `Follow a log file as it grows, like tail -F: new lines are printed as they
arrive; when the file is rotated (renamed and created again) the old file is
read to its end and the new one followed; when it is truncated it is read from
the start. Stops on Ctrl-C, or after --timeout if given.

With --json, each entry is one step line {"type":"step","id":"entry",
"status":"info","title":<the log line>,"data":<the parsed entry>} and a
{"type":"result","command":"logs follow",…} line with the counts ends the
stream.`,
		Example: `  mxray logs follow /var/log/mail.log --address bob@example.com
  mxray logs follow /var/log/mail.log --event delivery,reject --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, e := range events {
				ok := false
				for _, k := range maillog.Events {
					if string(k) == e {
						ok = true
					}
				}
				if !ok {
					return diag.Usagef("--event %q: not an event; known: %v", e, maillog.Events)
				}
				f.Events = append(f.Events, maillog.Event(e))
			}
			ctx := cmd.Context()
			if !cmd.Flags().Changed("timeout") && cmd.Root().Context() != nil {
				// Following has no natural end: only an explicit --timeout
				// bounds it, not the default deadline of a run.
				ctx = cmd.Root().Context()
			}
			return runLogsFollow(ctx, a, args[0], &f, fromStart, poll)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.QueueID, "queue-id", "", "only lines of this queue id (or linking to it)")
	fl.StringVar(&f.Address, "address", "", "only lines with this sender, recipient or login user")
	fl.StringSliceVar(&events, "event", nil, "only these events (delivery, reject, auth-failure, ...; repeatable or comma-separated)")
	fl.BoolVar(&fromStart, "from-start", false, "print the lines already in the file first")
	fl.DurationVar(&poll, "poll", 250*time.Millisecond, "how often to check the file")
	_ = fl.MarkHidden("poll")
	return cmd
}

func runLogsFollow(ctx context.Context, a *app, path string, f *maillog.Filter, fromStart bool, poll time.Duration) error {
	if _, err := os.Stat(path); err != nil {
		return diag.Usagef("%v", err)
	}
	if f.QueueID == "" && f.Address == "" && len(f.Events) == 0 {
		f = nil
	}
	a.log.Info("following", "file", path)
	st, err := maillog.Follow(ctx, path, maillog.FollowOptions{Options: a.logOptions(), Poll: poll, FromStart: fromStart, Filter: f},
		func(line []byte, e maillog.Entry) error {
			if a.opts.JSON {
				// A stream of entries is a stream of info steps, so the JSON
				// Lines contract (steps, then one result) holds here too.
				a.out.Sink().Finish(diag.Step{ID: "entry", Status: diag.Info, Title: string(line), Data: e})
				return nil
			}
			_, err := fmt.Fprintf(a.stdout, "%s\n", line)
			return err
		})
	if err != nil {
		return diag.Usagef("%v", err)
	}
	a.log.Info("stopped following", "lines", st.Lines, "matched", st.Matched, "rotations", st.Rotations, "truncations", st.Truncations)
	if a.opts.JSON {
		return a.out.Result("logs follow", st, nil)
	}
	return nil
}
