package main

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/maillog"
)

// defaultMailLog is where Debian's rsyslog writes the mail log.
const defaultMailLog = "/var/log/mail.log"

func newLogsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Analyse Postfix and Dovecot logs",
	}
	var compat bool
	summary := &cobra.Command{
		Use:   "summary [FILE...]",
		Short: "Summarise mail logs: pflogsumm's grand totals and much more",
		Long: `Summarise Postfix and Dovecot logs: received, delivered, deferred, bounced,
rejected, bytes, senders and recipients (pflogsumm's grand totals, counted the
same way), traffic per day and hour, per-domain delivery with delays, top
senders and recipients, deferral, bounce and reject reasons, warnings, SMTP
connections and Dovecot logins.

FILE may be plain or gzip-rotated (detected by content), or - for standard
input; give rotated files oldest first. Without FILE, /var/log/mail.log is read.
Syslog, RFC 3339 (rsyslog, Postfix's maillog_file) and journalctl short-iso and
json lines are read; unknown lines are counted, never fatal.`,
		Example: `  mxray logs summary /var/log/mail.log.2.gz /var/log/mail.log.1 /var/log/mail.log
  journalctl -o short-iso -u postfix@- | mxray logs summary -
  mxray logs summary --json mail.log`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLogsSummary(cmd.Context(), a, args, compat)
		},
	}
	summary.Flags().BoolVar(&compat, "pflogsumm-compat", false, "count only what Debian's pflogsumm 1.1.5 counts (see internal/maillog/PFLOGSUMM.md)")
	cmd.AddCommand(summary)
	return cmd
}

func runLogsSummary(ctx context.Context, a *app, paths []string, compat bool) error {
	if len(paths) == 0 {
		if _, err := os.Stat(defaultMailLog); errors.Is(err, fs.ErrNotExist) {
			return diag.Usagef("no FILE given and %s does not exist (on journald-only systems: journalctl -o short-iso -u postfix@- -u dovecot | mxray logs summary -)", defaultMailLog)
		}
		paths = []string{defaultMailLog}
	}
	var rs []io.Reader
	for _, p := range paths {
		if p == "-" {
			r, err := maillog.NewReader(a.stdin)
			if err != nil {
				return diag.Usagef("standard input: %v", err)
			}
			rs = append(rs, r)
			continue
		}
		f, err := maillog.Open(p)
		if err != nil {
			return diag.Usagef("%v", err)
		}
		defer f.Close()
		rs = append(rs, f)
	}
	opts := maillog.Options{Reference: a.env.Clock(), Location: time.Local, PflogsummCompat: compat, Logger: a.log}
	s, err := maillog.Summarize(ctx, opts, rs...)
	if err != nil {
		if errors.Is(err, maillog.ErrGzip) {
			return diag.Usagef("%v", err)
		}
		return err
	}
	return a.out.Result("logs summary", s, func(w io.Writer, _ *diag.Output) {
		maillog.WriteText(w, s)
	})
}
