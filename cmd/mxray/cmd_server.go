package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/postfix"
	"github.com/mxray/mxray/internal/servercheck"
)

// The host as server check and bundle see it; tests replace these.
var (
	serverRunner  postfix.Runner = postfix.ExecRunner{}
	serverProcNet                = "/proc/net"
	serverStatfs                 = servercheck.Statfs
)

// serverFlags are the instance-selecting flags of server check and bundle.
type serverFlags struct {
	configDir   string
	dovecotConf string
	publicIP    string
	maildirRoot string
	logs        []string
	lines       int
}

func (f *serverFlags) register(cmd *cobra.Command, linesHelp string) {
	fl := cmd.Flags()
	fl.StringVarP(&f.configDir, "config-dir", "c", "", "Postfix configuration directory of the instance (postconf -c; default: Postfix's default)")
	fl.StringVar(&f.dovecotConf, "dovecot-config", "", "Dovecot configuration file (doveconf -c; default: Dovecot's default)")
	fl.StringVar(&f.maildirRoot, "maildir-root", "", "directory holding the Maildirs to check (default: derived from Dovecot's mail location)")
	fl.StringArrayVar(&f.logs, "log", nil, "mail log file to read (repeatable; default: maillog_file, Dovecot's log_path, /var/log/mail.log)")
	fl.IntVar(&f.lines, "lines", 2000, linesHelp)
}

func (f *serverFlags) options() (servercheck.Options, error) {
	o := servercheck.Options{
		ConfigDir: f.configDir, DovecotConfig: f.dovecotConf, MaildirRoot: f.maildirRoot,
		Logs: f.logs, LogLines: f.lines, Runner: serverRunner, ProcNet: serverProcNet, Statfs: serverStatfs,
	}
	if f.lines <= 0 {
		return o, diag.Usagef("--lines must be positive, got %d", f.lines)
	}
	if f.publicIP != "" {
		ip, err := netip.ParseAddr(f.publicIP)
		if err != nil {
			return o, diag.Usagef("--public-ip: %v", err)
		}
		o.PublicIP = ip
	}
	return o, nil
}

func newServerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Inspect the Postfix and Dovecot of this host",
	}
	var f serverFlags
	check := &cobra.Command{
		Use:   "check",
		Short: "Check this host's Postfix and Dovecot: running, ports, configuration, Maildirs, disk, logs, firewall",
		Long: `Check the Postfix and Dovecot of this host from the inside, the way an
administrator would with postconf, doveconf, postfix check, ss, df and the
mail log — and explain every finding with its cause and its fix:

  Postfix and Dovecot running; which addresses listen on the mail ports;
  postfix check; a lint of postconf (open relay risk, myhostname, loopback-only
  on an MX, TLS, SMTP AUTH before TLS, SMTP smuggling, outbound TLS and DANE);
  the PTR of --public-ip against myhostname; relayhost and milters answering;
  Postfix delivering where Dovecot reads; Dovecot TLS and cleartext logins
  (2.3 and 2.4 syntax); Maildir permissions; free space and inodes of the
  queue and the mailboxes; a proxy hiding client addresses in the log;
  firewall rules (nft or iptables-save) blocking a listening mail port.

Run it as root to read everything. Use -c CONFIG_DIR for another Postfix
instance and --dovecot-config FILE for another Dovecot.

Exit codes: 0 nothing failed (warnings too, unless --strict); 1 a check
failed; 2 bad usage.`,
		Example: `  mxray server check
  mxray server check --public-ip 192.0.2.25 --json
  mxray server check -c /etc/postfix-out --dovecot-config /etc/dovecot/dovecot.conf`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := f.options()
			if err != nil {
				return err
			}
			return runServerCheck(cmd.Context(), a, o)
		},
	}
	f.register(check, "lines of each mail log to read for the client-address check")
	check.Flags().StringVar(&f.publicIP, "public-ip", "", "the server's public address: its PTR record is compared with myhostname")
	cmd.AddCommand(check)
	return cmd
}

func runServerCheck(ctx context.Context, a *app, o servercheck.Options) error {
	res := servercheck.Run(ctx, a.env, o, a.out.Sink())
	if err := a.out.Result("server check", res, func(w io.Writer, out *diag.Output) {
		fmt.Fprintf(w, "\n%s  %d ok, %d warn, %d fail, %d info, %d skipped\n", out.Mark(res.Status),
			res.Counts[diag.OK], res.Counts[diag.Warn], res.Counts[diag.Fail], res.Counts[diag.Info], res.Counts[diag.Skip])
	}); err != nil {
		return err
	}
	return a.statusExit(res.Status)
}
