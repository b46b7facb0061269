package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/delivery"
	"github.com/mxray/mxray/internal/diag"
)

type deliveryOpts struct {
	Port     int
	Helo     string
	MailFrom string
	AllMX    bool
	IPv4     bool
	IPv6     bool
}

func newDeliveryCmd(a *app) *cobra.Command {
	var o deliveryOpts
	cmd := &cobra.Command{
		Use:   "delivery ADDRESS|DOMAIN",
		Short: "Test whether mail to an address would be accepted, without sending any",
		Long: `Test delivery to ADDRESS (or, for a bare DOMAIN, to its postmaster) the way a
sending mail server would: look up the MX records (implicit MX and null MX
included), the hosts' addresses, the domain's MTA-STS policy and TLS-RPT
record and the hosts' DANE TLSA records, then talk SMTP to each host in
preference order — greeting, EHLO, STARTTLS with the certificate judged,
MAIL FROM, RCPT TO — and stop there with RSET and QUIT. No message is ever
sent: mxray has no DATA.

Each step prints as it finishes (--json: one JSON line per step, then the
result). The certificate is judged by the policy a sender applies: DANE when
the host has DNSSEC-validated TLSA records (RFC 7672), else the MTA-STS policy
(RFC 8461), else opportunistic TLS, where every problem is only a warning
(RFC 7435). A host that fails DANE or an enforced MTA-STS policy is not used,
as a sender would not use it, and the next MX is tried. DANE needs a
validating resolver (--resolver) that sets the AD bit.

Many ISPs, hosting providers and clouds block outgoing port 25; run the test
from a machine that may send mail, or it can only say "could not test".

--helo defaults to this machine's host name; some servers refuse names that
are not fully qualified or do not resolve, so give the name its reverse DNS
shows.

Exit codes: 0 deliverable; 1 undeliverable or temporarily refused (and, with
--strict, deliverable with warnings); 3 could not test (DNS failure, no mail
host reachable from here, deadline passed).`,
		Example: `  mxray delivery alice@example.com
  mxray delivery example.com --all-mx
  mxray delivery bob@example.org --helo mail.example.net --mail-from postmaster@example.net --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDelivery(cmd.Context(), a, o, args[0])
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Port, "port", 25, "SMTP port of the mail hosts")
	f.StringVar(&o.Helo, "helo", "", "name to send in EHLO (default: this machine's host name)")
	f.StringVar(&o.MailFrom, "mail-from", "", "sender for MAIL FROM (default: the null sender <>)")
	f.BoolVar(&o.AllMX, "all-mx", false, "test every address of every MX, not only until one answers")
	f.BoolVar(&o.IPv4, "ipv4", false, "use IPv4 addresses only")
	f.BoolVar(&o.IPv6, "ipv6", false, "use IPv6 addresses only")
	return cmd
}

func runDelivery(ctx context.Context, a *app, o deliveryOpts, arg string) error {
	t, err := delivery.ParseTarget(arg)
	if err != nil {
		return diag.Usagef("%v", err)
	}
	if o.IPv4 && o.IPv6 {
		return diag.Usagef("--ipv4 and --ipv6 exclude each other")
	}
	if o.Port <= 0 || o.Port > 65535 {
		return diag.Usagef("--port %d: want 1 to 65535", o.Port)
	}
	if o.Helo == "" {
		o.Helo = defaultHelo()
	}
	if o.Helo == "" || strings.ContainsAny(o.Helo, " \t\r\n<>") {
		return diag.Usagef("--helo %q: want a host name or an address literal", o.Helo)
	}
	if strings.ContainsAny(o.MailFrom, " \t\r\n<>") {
		return diag.Usagef("--mail-from %q: give the bare address, without angle brackets or spaces", o.MailFrom)
	}
	t.Port, t.Helo, t.MailFrom = o.Port, o.Helo, o.MailFrom
	t.AllMX, t.IPv4Only, t.IPv6Only = o.AllMX, o.IPv4, o.IPv6

	res := delivery.Run(ctx, a.env, t, a.out.Sink())
	if err := a.out.Result("delivery", res, func(w io.Writer, out *diag.Output) { writeDeliveryText(w, out, res) }); err != nil {
		return err
	}
	switch res.Verdict {
	case delivery.Deliverable:
		if a.opts.Strict && diag.Worst(res.Steps) == diag.Warn {
			return diag.Found
		}
		return nil
	case delivery.Undeliverable, delivery.Temporary:
		return diag.Found
	}
	return diag.Uncheckedf("%s", res.Reason)
}

// defaultHelo is this machine's host name, as an MTA would announce itself.
func defaultHelo() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "localhost"
	}
	return h
}

func writeDeliveryText(w io.Writer, o *diag.Output, res delivery.Result) {
	var mark string
	switch res.Verdict {
	case delivery.Deliverable:
		mark = o.Paint("32", "DELIVERABLE")
	case delivery.Undeliverable:
		mark = o.Paint("31", "UNDELIVERABLE")
	case delivery.Temporary:
		mark = o.Paint("33", "TEMPORARY FAILURE")
	default:
		mark = o.Paint("31", "COULD NOT TEST")
	}
	fmt.Fprintf(w, "\n%s  %s\n", o.Paint("1", mark), res.Reason)
	for _, a := range res.Attempts {
		if a.IP != "" {
			fmt.Fprintf(w, "No message was sent: the test stops after RCPT TO.\n")
			break
		}
	}
}
