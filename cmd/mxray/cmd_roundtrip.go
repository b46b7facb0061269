package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe"
)

type roundtripOpts struct {
	Submission   string
	IMAP         string
	User         string
	PasswordFile string
	From         string
	To           string
	Mailbox      string
	Wait         time.Duration
	Helo         string
}

func newRoundtripCmd(a *app) *cobra.Command {
	var o roundtripOpts
	cmd := &cobra.Command{
		Use:   "roundtrip --submission HOST[:PORT] --imap HOST[:PORT] --user U --to ADDR",
		Short: "Send one test message through submission and wait for it in the IMAP mailbox",
		Long: `Prove that mail flows end to end: log in to IMAP, send ONE uniquely tagged test
message through the submission server (STARTTLS or implicit TLS on 465, then
AUTH), wait until it shows up in the mailbox, report the latency and the
message's trace headers (Received chain, Authentication-Results,
DKIM-Signature), then delete it (UID STORE \Deleted and UID EXPUNGE).

This is the only mxray command that sends a message. --to must be delivered
into --user's mailbox (the same account, or an alias of it). Both servers'
certificates must verify for their names (give a private CA with --tls-ca):
the password is never sent to an unverified server or in cleartext.

--submission defaults to port 587 (465 means implicit TLS); --imap to 993
(implicit TLS; any other port uses STARTTLS). The password comes from
--password-file, else $MXRAY_PASSWORD, else a prompt.

Exit codes: 0 delivered; 1 not delivered within --wait, or a login or the
message was refused; 2 bad usage or no password; 3 could not check (a server
did not answer, deadline passed).`,
		Example: `  mxray roundtrip --submission mail.example.com --imap mail.example.com --user alice@example.com --to alice@example.com
  mxray roundtrip --submission smtp.example.com:465 --imap imap.example.com --user alice --from alice@example.com --to alice@example.com --wait 2m --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRoundtrip(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Submission, "submission", "", "submission server HOST[:PORT] (port 587 by default)")
	f.StringVar(&o.IMAP, "imap", "", "IMAP server HOST[:PORT] (port 993 by default)")
	f.StringVar(&o.User, "user", "", "user name for submission and IMAP")
	f.StringVar(&o.PasswordFile, "password-file", "", "file whose first line is the password (else $MXRAY_PASSWORD, else a prompt)")
	f.StringVar(&o.From, "from", "", "sender address (default: --user, when it is an address)")
	f.StringVar(&o.To, "to", "", "recipient address, delivered to --user's mailbox")
	f.StringVar(&o.Mailbox, "mailbox", "INBOX", "IMAP mailbox the message is delivered to")
	f.DurationVar(&o.Wait, "wait", 60*time.Second, "how long to wait for the message to arrive")
	f.StringVar(&o.Helo, "helo", "", "name to send in EHLO (default: this machine's host name)")
	return cmd
}

func runRoundtrip(ctx context.Context, a *app, o roundtripOpts) error {
	for _, req := range []struct{ name, v string }{{"--submission", o.Submission}, {"--imap", o.IMAP}, {"--user", o.User}, {"--to", o.To}} {
		if req.v == "" {
			return diag.Usagef("roundtrip needs %s", req.name)
		}
	}
	if _, _, err := probe.SplitHostPort(o.Submission, 587); err != nil {
		return diag.Usagef("--submission: %v", err)
	}
	if _, _, err := probe.SplitHostPort(o.IMAP, 993); err != nil {
		return diag.Usagef("--imap: %v", err)
	}
	if o.From == "" {
		if !strings.Contains(o.User, "@") {
			return diag.Usagef("--user %q is not an address: give --from", o.User)
		}
		o.From = o.User
	}
	for _, ad := range []struct{ name, v string }{{"--from", o.From}, {"--to", o.To}} {
		if l, d, ok := strings.Cut(ad.v, "@"); !ok || l == "" || d == "" || strings.ContainsAny(ad.v, " \t\r\n<>\"") {
			return diag.Usagef("%s %q: want a bare address (local@domain)", ad.name, ad.v)
		}
	}
	if strings.ContainsAny(o.User, "\r\n\x00") {
		return diag.Usagef("--user: line breaks are not allowed")
	}
	if o.Wait <= 0 {
		return diag.Usagef("--wait must be positive")
	}
	if o.Helo == "" {
		o.Helo = defaultHelo()
	}
	pw, err := a.readSecret(o.PasswordFile, fmt.Sprintf("Password for %s: ", o.User))
	if err != nil {
		return err
	}
	t := probe.RoundTripTarget{Submission: o.Submission, IMAP: o.IMAP, User: o.User, Password: pw,
		From: o.From, To: o.To, Mailbox: o.Mailbox, Wait: o.Wait, Helo: o.Helo,
		Token: strings.ToLower(rand.Text())}
	res := probe.RoundTrip(ctx, a.env, t, a.out.Sink())
	if err := a.out.Result("roundtrip", res, func(w io.Writer, out *diag.Output) { writeRoundtripText(w, out, res) }); err != nil {
		return err
	}
	switch res.Verdict {
	case probe.Delivered:
		if a.opts.Strict && res.Status == diag.Warn {
			return diag.Found
		}
		return nil
	case probe.NotDelivered, probe.Refused:
		return diag.Found
	}
	return diag.Uncheckedf("%s", res.Reason)
}

func writeRoundtripText(w io.Writer, o *diag.Output, res probe.RoundTripResult) {
	var mark string
	switch res.Verdict {
	case probe.Delivered:
		mark = o.Paint("32", "DELIVERED")
	case probe.NotDelivered:
		mark = o.Paint("31", "NOT DELIVERED")
	case probe.Refused:
		mark = o.Paint("31", "REFUSED")
	default:
		mark = o.Paint("31", "COULD NOT TEST")
	}
	fmt.Fprintf(w, "\n%s  %s\n", o.Paint("1", mark), res.Reason)
	if res.Headers != nil && len(res.Headers.Received) > 0 {
		fmt.Fprintf(w, "Path (newest first):\n")
		for _, r := range res.Headers.Received {
			fmt.Fprintf(w, "  %s\n", r)
		}
	}
}
