package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/delivery"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/doctor"
	"github.com/mxray/mxray/internal/domain"
)

type doctorOpts struct {
	Helo         string
	MailFrom     string
	User         string
	PasswordFile string
	DNSBL        []string
	Selectors    []string
}

func newDoctorCmd(a *app) *cobra.Command {
	var o doctorOpts
	cmd := &cobra.Command{
		Use:   "doctor DOMAIN|ADDRESS",
		Short: "Diagnose a mail domain or address: every outside check, one report of problems with causes and fixes",
		Long: `Run the domain audit (mxray domain), the delivery test (mxray delivery; for a
bare DOMAIN the recipient is postmaster@DOMAIN) and the probes (mxray probe) of
the MX hosts (port 25) and of the servers the domain advertises to mail clients
(SRV, autoconfig, Autodiscover), concurrently, and print one report:

  first the problems, worst first, each with the row of the classic mail
  troubleshooting matrix it belongs to — DNS resolution, firewall blocking,
  connection refused, wrong IP, unknown user, mail stuck, authentication
  (and TLS, reputation, configuration) — its likely cause and its fix;
  then what is fine, one line per check group.

With --user, the advertised client servers are also logged in to (over TLS
only); the password comes from --password-file, else $MXRAY_PASSWORD, else a
prompt. Nothing is ever sent: the delivery test stops before DATA.

--json prints every step of the three parts in a fixed order, ids prefixed by
the part (domain.*, delivery.*, probe.*, doctor.*), then one result with
problems[], ok[] and the three sub-results (docs/json.md).

Exit codes: 0 no failure (warnings exit 1 only with --strict); 1 a problem was
found; 2 bad usage; 3 nothing could be checked (the MX lookup failed with
SERVFAIL or a timeout and no mail server was reached).`,
		Example: `  mxray doctor example.com
  mxray doctor alice@example.com --user alice@example.com --password-file ~/.pw
  mxray doctor example.com --dnsbl none --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDoctor(cmd.Context(), a, o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Helo, "helo", "", "name to send in EHLO (default: this machine's host name)")
	f.StringVar(&o.MailFrom, "mail-from", "", "sender for MAIL FROM in the delivery test (default: the null sender <>)")
	f.StringVar(&o.User, "user", "", "log in as this user on the advertised client servers (over TLS only)")
	f.StringVar(&o.PasswordFile, "password-file", "", "file whose first line is the password (else $MXRAY_PASSWORD, else a prompt)")
	f.StringSliceVar(&o.DNSBL, "dnsbl", domain.DefaultDNSBL, "DNS blocklist zones to ask (comma-separated; \"none\" for none)")
	f.StringSliceVar(&o.Selectors, "dkim-selector", nil, "DKIM selector to check (repeatable; default: try common selectors)")
	return cmd
}

func runDoctor(ctx context.Context, a *app, o doctorOpts, arg string) error {
	dt, err := delivery.ParseTarget(arg)
	if err != nil {
		return diag.Usagef("%v", err)
	}
	tgt, err := domain.ParseTarget(dt.Domain)
	if err != nil {
		return diag.Usagef("%v", err)
	}
	t := doctor.Target{Domain: tgt.Domain, Address: dt.Address, Helo: o.Helo, MailFrom: o.MailFrom, DNSBL: []string{}}
	if t.Helo == "" {
		t.Helo = defaultHelo()
	}
	if strings.ContainsAny(t.Helo, " \t\r\n<>") {
		return diag.Usagef("--helo %q: want a host name", t.Helo)
	}
	if strings.ContainsAny(t.MailFrom, " \t\r\n<>") {
		return diag.Usagef("--mail-from %q: give the bare address, without angle brackets or spaces", t.MailFrom)
	}
	for _, z := range o.DNSBL {
		z = strings.TrimSpace(z)
		switch {
		case z == "" || strings.EqualFold(z, "none"):
			continue
		case strings.ContainsAny(z, " \t/@:"):
			return diag.Usagef("--dnsbl %q is not a zone name", z)
		}
		t.DNSBL = append(t.DNSBL, z)
	}
	for _, s := range o.Selectors {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" || strings.ContainsAny(s, " \t/@") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") {
			return diag.Usagef("--dkim-selector %q is not a selector (a DNS label, e.g. s1)", s)
		}
		t.Selectors = append(t.Selectors, s)
	}
	if o.User == "" && o.PasswordFile != "" {
		return diag.Usagef("--password-file needs --user")
	}
	if o.User != "" {
		if strings.ContainsAny(o.User, "\r\n\x00") {
			return diag.Usagef("--user: line breaks are not allowed")
		}
		t.User = o.User
		if t.Password, err = a.readSecret(o.PasswordFile, fmt.Sprintf("Password for %s: ", o.User)); err != nil {
			return err
		}
	}

	sink := a.out.Sink()
	if !a.out.JSON {
		sink = startOnly{sink} // the report is written at the end
	}
	res := doctor.Run(ctx, a.env, t, sink)
	if err := a.out.Result("doctor", res, func(w io.Writer, out *diag.Output) { writeDoctorText(w, out, res) }); err != nil {
		return err
	}
	if !res.Checked {
		return diag.Uncheckedf("doctor %s: nothing could be checked: %s", res.Domain, strings.Join(res.Unchecked, "; "))
	}
	return a.statusExit(res.Worst)
}

func writeDoctorText(w io.Writer, o *diag.Output, res doctor.Result) {
	fails, warns := 0, 0
	for _, p := range res.Problems {
		if p.Severity == diag.Fail {
			fails++
		} else {
			warns++
		}
	}
	fmt.Fprintf(w, "%s  recipient <%s>: %s\n", o.Paint("1", "Doctor for "+res.Domain), res.Recipient, res.Delivery.Verdict)
	fmt.Fprintf(w, "%d problems (%d fail, %d warn); %d check groups fine\n", len(res.Problems), fails, warns, len(res.OK))
	if len(res.Problems) > 0 {
		fmt.Fprintf(w, "\n%s\n", o.Paint("1", "Problems, worst first"))
	}
	indent := func(prefix, text string) {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			fmt.Fprintf(w, "       %s%s\n", prefix, line)
		}
	}
	for _, p := range res.Problems {
		fmt.Fprintf(w, "%s %s %s %s\n", o.Mark(p.Severity), o.Paint("1", "["+p.Row.Title()+"]"), o.Paint("2", p.Step+":"), p.Title)
		if p.Host != "" || p.IP != "" {
			indent("", "at "+strings.TrimSpace(p.Host+" "+p.IP))
		}
		indent(o.Paint("1", "cause: "), p.Cause)
		indent(o.Paint("1", "fix:   "), p.Fix)
		if p.RFC != "" {
			indent(o.Paint("2", "see:   "), p.RFC)
		}
		if p.Repeats > 0 {
			indent(o.Paint("2", "and:   "), fmt.Sprintf("%d more %s steps like this", p.Repeats, p.Step))
		}
		if len(p.Also) > 0 {
			indent(o.Paint("2", "also:  "), strings.Join(p.Also, ", "))
		}
	}
	if len(res.OK) > 0 {
		fmt.Fprintf(w, "\n%s\n", o.Paint("1", "Fine"))
	}
	for _, g := range res.OK {
		more := ""
		if len(g.Titles) > 1 {
			more = fmt.Sprintf(" (+%d more)", len(g.Titles)-1)
		}
		partly := ""
		if g.Problems > 0 {
			partly = fmt.Sprintf(", %d problem(s) above", g.Problems)
		}
		fmt.Fprintf(w, "%s %s %d ok%s: %s%s\n", o.Mark(diag.OK), o.Paint("2", g.Group+":"), g.OK, partly, g.Titles[0], more)
	}
	if len(res.Unchecked) > 0 {
		word := "NOT CHECKED"
		if !res.Checked {
			word = "NOTHING COULD BE CHECKED"
		}
		fmt.Fprintf(w, "\n%s %s\n", o.Paint("31", word), strings.Join(res.Unchecked, "; "))
	}
}
