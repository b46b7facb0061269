package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/ingest/imapsrc"
)

func newReportsFetchCmd(a *app) *cobra.Command {
	var imapURL, pwFile, processed, failed string
	cmd := &cobra.Command{
		Use:   "fetch --imap imaps://USER@HOST[:PORT]/FOLDER",
		Short: "Fetch reports from an IMAP mailbox into the database, then file the messages away",
		Long: `Read every message in an IMAP folder (INBOX when none is given) into the
database in --data, as "reports import" would, then move each message: to the
processed folder once its reports are committed, or to the failed folder when
something in it was quarantined. Both folders are created when missing; write
them with "/" between levels.

imaps:// is TLS from the start (port 993); imap:// is STARTTLS (port 143), and
no password is sent to a server that does not offer it. The certificate is
verified (--tls-ca adds a CA). The password comes from --password-file, else
$MXRAY_PASSWORD, else a prompt.

A run can be interrupted at any point and started again: a message is moved
only after its reports are committed, and one stored but not moved is a
duplicate on the next run and is moved then. Messages are read with
BODY.PEEK, so their \Seen flag is not changed.

Exit codes: 0 everything imported (or already there); 1 something was
quarantined; 2 bad usage or no password; 3 could not connect or log in, the
run was interrupted, or a message could not be moved.`,
		Example: `  mxray reports fetch --imap imaps://dmarc@example.com@imap.example.com/INBOX --password-file ~/.dmarc-pw
  mxray reports fetch --imap imap://reports@mail.example.com:143/DMARC --processed-folder Archive/DMARC --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReportsFetch(reportsContext(cmd, a), a, imapURL, pwFile, processed, failed)
		},
	}
	f := cmd.Flags()
	f.StringVar(&imapURL, "imap", "", "mailbox to read: imaps://USER@HOST[:PORT]/FOLDER or imap://… (STARTTLS)")
	f.StringVar(&pwFile, "password-file", "", "file whose first line is the password")
	f.StringVar(&processed, "processed-folder", imapsrc.DefaultProcessed, "where messages go once their reports are stored")
	f.StringVar(&failed, "failed-folder", imapsrc.DefaultFailed, "where messages with something quarantined go")
	return cmd
}

// parseIMAPURL reads imaps://USER@HOST[:PORT]/FOLDER (RFC 5092's form,
// without its ;UID parts). The user may hold an unescaped "@".
func parseIMAPURL(s string) (imapsrc.Config, error) {
	var cfg imapsrc.Config
	if s == "" {
		return cfg, diag.Usagef("--imap is required: imaps://USER@HOST[:PORT]/FOLDER")
	}
	u, err := url.Parse(s)
	if err != nil {
		return cfg, diag.Usagef("--imap: %v", err)
	}
	port := ""
	switch u.Scheme {
	case "imaps":
		cfg.Security, port = imapsrc.ImplicitTLS, "993"
	case "imap":
		cfg.Security, port = imapsrc.StartTLS, "143"
	default:
		return cfg, diag.Usagef("--imap %q: the scheme must be imaps:// or imap://", s)
	}
	if u.User == nil || u.User.Username() == "" {
		return cfg, diag.Usagef("--imap %q: no user (imaps://USER@HOST/FOLDER)", s)
	}
	if _, set := u.User.Password(); set {
		return cfg, diag.Usagef("--imap: a password in the URL would show in process lists; use --password-file")
	}
	if u.Hostname() == "" {
		return cfg, diag.Usagef("--imap %q: no host", s)
	}
	if u.Port() != "" {
		port = u.Port()
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return cfg, diag.Usagef("--imap %q: no query or fragment expected", s)
	}
	cfg.User = u.User.Username()
	cfg.Address = net.JoinHostPort(u.Hostname(), port)
	cfg.Folder = strings.Trim(u.Path, "/")
	return cfg, nil
}

func runReportsFetch(ctx context.Context, a *app, imapURL, pwFile, processed, failed string) error {
	cfg, err := parseIMAPURL(imapURL)
	if err != nil {
		return err
	}
	cfg.Processed, cfg.Failed = processed, failed
	if cfg.Password, err = a.readSecret(pwFile, "IMAP password for "+cfg.User+": "); err != nil {
		return err
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	im := reportsImporter(a, db)
	res, ferr := imapsrc.Fetch(ctx, a.env, cfg, im, a.out.Sink())
	if err := a.out.Result("reports fetch", res, func(w io.Writer, o *diag.Output) { writeReportsFetch(w, o, res) }); err != nil {
		return err
	}
	switch {
	case ferr != nil:
		return diag.Uncheckedf("%v", ferr)
	case res.Left > 0:
		return diag.Uncheckedf("%d message(s) could not be moved; the next run tries again", res.Left)
	case res.Quarantined > 0:
		return diag.Found
	}
	return nil
}

func writeReportsFetch(w io.Writer, o *diag.Output, res *imapsrc.Result) {
	fmt.Fprintf(w, "fetched %d messages from %s on %s: %d reports imported (%d DMARC with %d records, %d TLS, %d failure), %d bounces, %d duplicates, %d quarantined\n",
		res.Fetched, res.Folder, res.Server, res.Imported, res.DMARC, res.Records, res.TLS, res.Failure, res.Bounces, res.Duplicates, res.Quarantined)
	fmt.Fprintf(w, "moved %d to %s, %d to %s", res.Moved, res.Processed, res.MovedFailed, res.Failed)
	if res.Left > 0 {
		fmt.Fprintf(w, ", %d left in %s", res.Left, res.Folder)
	}
	fmt.Fprintln(w)
	for _, m := range res.Messages {
		for _, q := range m.Outcomes {
			if q.Result == ingest.Quarantined {
				fmt.Fprintf(w, "  %s UID %d quarantined as #%d: %s\n", o.Mark(diag.Warn), m.UID, q.ID, q.Reason)
			}
		}
		if m.Error != "" {
			fmt.Fprintf(w, "  %s UID %d left in %s: %s\n", o.Mark(diag.Fail), m.UID, res.Folder, m.Error)
		}
	}
	if res.Interruption != "" {
		fmt.Fprintf(w, "%s interrupted: %s\n  run again: what was stored stays, and nothing is counted twice\n", o.Mark(diag.Fail), res.Interruption)
	}
}
