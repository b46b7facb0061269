package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe"
)

type probeOpts struct {
	Service      string
	Port         int
	User         string
	PasswordFile string
	Helo         string
}

func newProbeCmd(a *app) *cobra.Command {
	var o probeOpts
	cmd := &cobra.Command{
		Use:   "probe HOST",
		Short: "Check a host's SMTP, submission, IMAP, POP3 and ManageSieve services from the outside",
		Long: `Probe the mail services of HOST the way a mail client and a sending server see
them, all services in parallel: smtp (25), submission (587), submissions (465),
imap (143), imaps (993), pop3 (110), pop3s (995) and sieve (4190, ManageSieve).

For each service: the TCP connection (refused, timed out or unreachable are
told apart), the greeting and capabilities, STARTTLS or implicit TLS with the
certificate judged (chain, names, dates, key), each TLS version from 1.0 to 1.3
tried on its own handshake (SSL 3.0 cannot be tested: Go does not implement
it), the login mechanisms with a warning when a password login is offered
before TLS, and with --user a real login over TLS (never in cleartext). On
port 25 it checks that the server is no open relay (MAIL FROM and RCPT TO
in the reserved .invalid domain; it stops before DATA: nothing is sent).

The password comes from --password-file, else $MXRAY_PASSWORD, else a prompt;
it never appears in the output, the transcript or the log.

With --service all (the default) a port that refuses the connection only means
the service is not offered; a service named with --service must answer.
Certificate problems on port 25 are warnings (senders deliver whatever the
certificate, RFC 7435); on client ports they are failures.

Exit codes: 0 everything answered fine (warnings too, unless --strict); 1 a
problem: a failed login, a bad certificate, no TLS on a client port, an open
relay, a named service that does not answer, a host name that does not exist;
2 bad usage or no password; 3 could not check (DNS failure, nothing answered,
deadline passed).`,
		Example: `  mxray probe mail.example.com
  mxray probe mail.example.com --service imaps,submission --user alice@example.com --password-file ~/.pw
  mxray probe mx.example.com --service smtp --json`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runProbe(cmd.Context(), a, o, args[0], cmd.Flags().Changed("service"))
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Service, "service", "all", "services to probe, comma-separated: all, smtp, submission, submissions, imap, imaps, pop3, pop3s, sieve")
	f.IntVar(&o.Port, "port", 0, "port to use instead of the service's well-known one (with a single --service)")
	f.StringVar(&o.User, "user", "", "log in as this user on the client services (over TLS only)")
	f.StringVar(&o.PasswordFile, "password-file", "", "file whose first line is the password (else $MXRAY_PASSWORD, else a prompt)")
	f.StringVar(&o.Helo, "helo", "", "name to send in EHLO (default: this machine's host name)")
	return cmd
}

func runProbe(ctx context.Context, a *app, o probeOpts, host string, serviceGiven bool) error {
	svcs, explicit, err := probe.ParseServices(o.Service)
	if err != nil {
		return diag.Usagef("--service: %v", err)
	}
	if !serviceGiven {
		explicit = false
	}
	if o.Port != 0 && (o.Port < 0 || o.Port > 65535) {
		return diag.Usagef("--port %d: want 1 to 65535", o.Port)
	}
	if o.Port != 0 && len(svcs) != 1 {
		return diag.Usagef("--port needs exactly one --service")
	}
	host = strings.TrimSuffix(strings.TrimSpace(host), ".")
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		host = ip.String()
	} else if host == "" || strings.ContainsAny(host, " \t/@:[]<>") {
		return diag.Usagef("HOST %q: want a host name or an IP address", host)
	}
	if o.Helo == "" {
		o.Helo = defaultHelo()
	}
	if strings.ContainsAny(o.Helo, " \t\r\n<>") {
		return diag.Usagef("--helo %q: want a host name", o.Helo)
	}
	t := probe.Target{Host: host, Services: svcs, Explicit: explicit, Port: o.Port, User: o.User, Helo: o.Helo}
	if o.User == "" && o.PasswordFile != "" {
		return diag.Usagef("--password-file needs --user")
	}
	if o.User != "" {
		if strings.ContainsAny(o.User, "\r\n\x00") {
			return diag.Usagef("--user: line breaks are not allowed")
		}
		if t.Password, err = a.readSecret(o.PasswordFile, fmt.Sprintf("Password for %s: ", o.User)); err != nil {
			return err
		}
	}

	// JSON streams the steps as they come; text shows the matrix first
	// and the steps below it.
	rec := &diag.Recorder{}
	sink := diag.Sink(rec)
	if a.out.JSON {
		sink = a.out.Sink()
	}
	res := probe.Run(ctx, a.env, t, sink)
	if err := a.out.Result("probe", res, func(w io.Writer, out *diag.Output) { writeProbeText(w, out, res) }); err != nil {
		return err
	}
	switch w := diag.Worst(res.Steps); {
	case res.Unchecked != "":
		return diag.Uncheckedf("%s", res.Unchecked)
	case res.NotFound, w == diag.Fail:
		return diag.Found
	case w == diag.Warn && a.opts.Strict:
		return diag.Found
	}
	return nil
}

func writeProbeText(w io.Writer, o *diag.Output, res probe.Result) {
	fmt.Fprintf(w, "%s %s", o.Paint("1", "Host"), res.Host)
	if len(res.Addresses) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(res.Addresses, ", "))
	}
	fmt.Fprintln(w)
	if len(res.Services) > 0 {
		fmt.Fprintln(w)
		cols := []string{"service", "port", "connect", "TLS", "cert", "auth", "login"}
		rows := [][]probe.Cell{}
		for _, s := range res.Services {
			m := s.Matrix
			rows = append(rows, []probe.Cell{{Status: diag.Info, Text: string(s.Service)}, {Status: diag.Info, Text: fmt.Sprint(s.Port)},
				m.Connect, m.TLS, m.Cert, m.Auth, m.Login})
		}
		width := make([]int, len(cols))
		for i, c := range cols {
			width[i] = len(c)
		}
		text := func(c probe.Cell) string {
			switch c.Status {
			case diag.Fail:
				return "X " + c.Text
			case diag.Warn:
				return "! " + c.Text
			}
			return c.Text
		}
		for _, r := range rows {
			for i, c := range r {
				width[i] = max(width[i], len([]rune(text(c))))
			}
		}
		var head strings.Builder
		for i, c := range cols {
			fmt.Fprintf(&head, "%-*s  ", width[i], c)
		}
		fmt.Fprintln(w, strings.TrimRight(head.String(), " "))
		for _, r := range rows {
			var line strings.Builder
			for i, c := range r {
				s := fmt.Sprintf("%-*s", width[i], text(c))
				switch c.Status {
				case diag.Fail:
					s = o.Paint("31", s)
				case diag.Warn:
					s = o.Paint("33", s)
				}
				line.WriteString(s + "  ")
			}
			fmt.Fprintln(w, strings.TrimRight(line.String(), " "))
		}
		fmt.Fprintln(w, o.Paint("2", "(X = problem, ! = warning; details below)"))
	}
	// The steps, as every command shows them.
	steps := &diag.Output{W: w, Color: o.Color, Transcripts: o.Transcripts}
	sink := steps.Sink()
	cur := ""
	for _, st := range res.Steps {
		name, _, _ := strings.Cut(st.ID, ".")
		if name != cur {
			cur = name
			fmt.Fprintf(w, "\n%s\n", o.Paint("1", name))
		}
		sink.Finish(st)
	}
	fmt.Fprintln(w)
	switch {
	case res.Unchecked != "":
		fmt.Fprintf(w, "%s  %s\n", o.Paint("31", "COULD NOT CHECK"), res.Unchecked)
	case diag.Worst(res.Steps) == diag.Fail:
		fmt.Fprintf(w, "%s  %s\n", o.Paint("31", "PROBLEMS FOUND"), problemList(res))
	case diag.Worst(res.Steps) == diag.Warn:
		fmt.Fprintf(w, "%s  %s\n", o.Paint("33", "WORKS, WITH WARNINGS"), problemList(res))
	default:
		fmt.Fprintf(w, "%s\n", o.Paint("32", "ALL SERVICES OK"))
	}
}

// problemList names the services with a warning or failure.
func problemList(res probe.Result) string {
	var out []string
	for _, s := range res.Services {
		if s.Status == diag.Fail || s.Status == diag.Warn {
			out = append(out, fmt.Sprintf("%s (%s)", s.Service, s.Status))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, ", ")
}
