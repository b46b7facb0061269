package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/authcheck"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dmarc"
)

type authOpts struct {
	ip, helo, mailFrom, message, authservID string
}

func newAuthCmd(a *app) *cobra.Command {
	var o authOpts
	cmd := &cobra.Command{
		Use:   "auth --ip IP --helo HOST --mail-from ADDRESS [--message FILE|-]",
		Short: "Check SPF, DKIM, ARC, DMARC and reverse DNS as a receiver would, and explain the verdict",
		Long: `Authenticate one message the way a receiving mail server does, and say why it
passes or fails: SPF (RFC 7208) for MAIL FROM and HELO with the trace of every
lookup, every DKIM signature (RFC 6376) with the reason it failed, the ARC
chain (RFC 8617), DMARC (RFC 9989) with identifier alignment side by side and
the policy a receiver applies — and where a receiver still on RFC 7489 (public
suffix list, pct) decides differently — and the reverse DNS of the IP
(iprev, RFC 8601 §3) compared with the HELO name. It prints the
Authentication-Results header field a receiver would add.

Without --message, DKIM and ARC are skipped and DMARC uses the MAIL FROM domain
as the From: domain. --message reads a whole message (header and body, CRLF or
LF line endings, at most 25 MiB); - reads it from stdin. Nothing is sent.

Step ids (--json): spf-mailfrom, spf-helo, dkim, arc, dmarc, iprev.

Exit codes: 0 DMARC passes and no step failed (a warning exits 1 only with
--strict); 1 DMARC fail, none or permerror, or a failed step (SPF fail, no
signature verifies, iprev fail); 2 bad usage or an unreadable message;
3 DMARC temperror (a DNS lookup failed: could not check).`,
		Example: `  mxray auth --ip 192.0.2.1 --helo mail.example.com --mail-from alice@example.com
  mxray auth --ip 192.0.2.1 --helo mail.example.com --mail-from alice@example.com --message msg.eml
  sendmail-output | mxray auth --ip 192.0.2.1 --helo mail.example.com --mail-from '' --message - --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			for _, name := range []string{"ip", "helo", "mail-from"} {
				if !f.Changed(name) {
					return diag.Usagef("mxray auth: --%s is required (--mail-from '' for a bounce)", name)
				}
			}
			return runAuth(cmd.Context(), a, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.ip, "ip", "", "the SMTP client's IP address (IPv4 or IPv6)")
	f.StringVar(&o.helo, "helo", "", "the HELO/EHLO name the client gave")
	f.StringVar(&o.mailFrom, "mail-from", "", "the envelope sender (MAIL FROM); '' for a bounce")
	f.StringVar(&o.message, "message", "", "the message to check: a file, or - for stdin")
	f.StringVar(&o.authservID, "authserv-id", authcheck.DefaultAuthServID, "the authserv-id of the Authentication-Results field")
	return cmd
}

func runAuth(ctx context.Context, a *app, o authOpts) error {
	ip, err := netip.ParseAddr(strings.TrimSpace(o.ip))
	if err != nil || ip.Zone() != "" {
		return diag.Usagef("--ip %q is not an IP address", o.ip)
	}
	from := strings.TrimSpace(o.mailFrom)
	if strings.HasPrefix(from, "<") && strings.HasSuffix(from, ">") {
		from = from[1 : len(from)-1]
	}
	if from != "" {
		i := strings.LastIndexByte(from, '@')
		if i <= 0 || i == len(from)-1 || strings.ContainsAny(from, " \t") {
			return diag.Usagef("--mail-from %q: want LOCAL@DOMAIN (or '' for a bounce)", o.mailFrom)
		}
	}
	helo := strings.TrimSpace(o.helo)
	if helo == "" {
		return diag.Usagef("--helo is empty: give the name the client said in HELO/EHLO")
	}
	t := authcheck.Target{IP: ip, Helo: helo, MailFrom: from, AuthServID: o.authservID}
	if o.message != "" {
		if t.Message, err = readMessage(a, o.message); err != nil {
			return err
		}
	}
	res := authcheck.Run(ctx, a.env, t, a.out.Sink())
	if err := a.out.Result("auth", res, func(w io.Writer, out *diag.Output) { writeAuthText(w, out, res) }); err != nil {
		return err
	}
	switch res.DMARC.Status {
	case dmarc.Pass:
		return a.statusExit(res.Worst)
	case dmarc.Temperror:
		return diag.Uncheckedf("auth: DMARC temperror: %s", res.DMARC.Problem)
	}
	return diag.Found
}

// readMessage reads --message: a file or stdin, at most MaxMessage bytes.
func readMessage(a *app, name string) ([]byte, error) {
	var r io.Reader = a.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, diag.Usagef("--message: %v", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, authcheck.MaxMessage+1))
	if err != nil {
		return nil, diag.Usagef("--message: %v", err)
	}
	if len(b) > authcheck.MaxMessage {
		return nil, diag.Usagef("--message: %v (more than %d MiB)", authcheck.ErrMessageLarge, authcheck.MaxMessage>>20)
	}
	if len(b) == 0 {
		return nil, diag.Usagef("--message %s is empty", name)
	}
	return b, nil
}

func writeAuthText(w io.Writer, o *diag.Output, res authcheck.Result) {
	fmt.Fprintln(w)
	fmt.Fprintln(w, o.Paint("1", res.DMARC.Verdict()))
	fmt.Fprintf(w, "  %s\n", res.Alignment)
	if d := res.DMARC; d.Status == dmarc.Fail {
		fmt.Fprintf(w, "  a receiver following RFC 9989 would %s; one following RFC 7489 would %s\n",
			disposition(d.Disposition), disposition(d.RFC7489.Disposition))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, authcheck.HeaderField(res.AuthenticationResults))
}

func disposition(p dmarc.Policy) string {
	switch p {
	case dmarc.PolicyReject:
		return "reject it"
	case dmarc.PolicyQuarantine:
		return "quarantine it"
	}
	return "deliver it"
}
