package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// levelTrace is below slog's Debug: every DNS query and protocol line.
const levelTrace = slog.LevelDebug - 4

// globalOpts are the persistent flags shared by every command (DESIGN.md,
// "Flags"), after the config file and the flags are merged.
type globalOpts struct {
	JSON       bool
	Strict     bool
	Resolvers  []string
	Timeout    time.Duration
	LogLevel   string
	TLSCA      string
	TLSCert    string // what mxray serves: `mxray serve`'s web listener
	TLSKey     string
	ConnectMap string
	Data       string
	DB         string
	Config     string
}

// app is what a command's run function gets: the merged options, the
// injected world and the output streams.
type app struct {
	opts   globalOpts
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	cfg    *config

	servers []string // the resolvers in use, host:port

	env     diag.Env
	out     *diag.Output
	log     *slog.Logger
	started bool   // a command's RunE was reached
	cleanup func() // cancels the run's deadline
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *app {
	return &app{stdin: stdin, stdout: stdout, stderr: stderr}
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "mxray",
		Short: "Find out why mail does not flow, and prove when it does",
		Long: `mxray tests mail delivery and authentication from the outside, reads what
Postfix and Dovecot do inside the server, and reads the DMARC and TLS reports
the rest of the internet sends about a domain — explaining every finding.

Exit codes: 0 fine, 1 a problem was found, 2 bad usage or input,
3 could not check (resolver or network unreachable, deadline passed).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setup(cmd); err != nil {
				return err
			}
			a.started = true
			return nil
		},
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetIn(a.stdin)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return diag.Usagef("%v", err) })

	f := root.PersistentFlags()
	o := &a.opts
	f.BoolVar(&o.JSON, "json", false, "print JSON Lines (steps, then one result line) instead of text")
	f.BoolVar(&o.Strict, "strict", false, "treat warnings as problems (exit 1)")
	f.StringArrayVar(&o.Resolvers, "resolver", nil, "DNS resolver HOST[:PORT] to ask (repeatable; default: /etc/resolv.conf)")
	f.DurationVar(&o.Timeout, "timeout", 60*time.Second, "deadline for the whole run")
	f.StringVar(&o.LogLevel, "log-level", "info", "log detail on stderr: info, debug or trace (every DNS query and protocol line)")
	f.StringVar(&o.TLSCA, "tls-ca", "", "PEM file of extra trusted CA certificates, added to the system's")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate (chain) for what mxray serves: HTTPS for serve's API and web admin (with --tls-key)")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&o.ConnectMap, "connect-map", "", "redirect outgoing connections by port: PORT=HOST:PORT or PORT=:PORT, comma-separated")
	f.StringVar(&o.Data, "data", defaultDataDir(), "data directory (SQLite database, default config file)")
	f.StringVar(&o.DB, "db", "", "PostgreSQL URL to use instead of the SQLite file in --data")
	f.StringVar(&o.Config, "config", "", "config file (default DATA/mxray.toml; unknown keys are an error)")
	_ = f.MarkHidden("connect-map")

	root.AddCommand(
		// Outside-in tests.
		newDeliveryCmd(a), newAuthCmd(a), newSPFCmd(a), newProbeCmd(a), newRoundtripCmd(a),
		newDomainCmd(a), newDoctorCmd(a), newDNSCmd(a), newLabCmd(a),
		// Inside the server.
		newLogsCmd(a), newQueueCmd(a), newServerCmd(a), newBundleCmd(a),
		// Reports in, and one place for everything.
		newReportsCmd(a), newBounceCmd(a), newServeCmd(a), newTokenCmd(a), newAlertsCmd(a), newAdminCmd(a),
		newVersionCmd(a),
	)
	return root
}

func defaultDataDir() string {
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "mxray")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "share", "mxray")
	}
	return "mxray-data"
}

// setup merges the config file under the flags and builds the Env.
func (a *app) setup(cmd *cobra.Command) error {
	flags := cmd.Flags()
	cfgPath, explicit := a.opts.Config, a.opts.Config != ""
	if !explicit {
		cfgPath = filepath.Join(a.opts.Data, "mxray.toml")
	}
	cfg, err := loadConfig(cfgPath, explicit)
	if err != nil {
		return diag.Usagef("%v", err)
	}
	a.cfg = cfg
	if err := cfg.applyGlobals(&a.opts, flags.Changed); err != nil {
		return diag.Usagef("%v", err)
	}

	level, err := parseLevel(a.opts.LogLevel)
	if err != nil {
		return err
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(_ []string, at slog.Attr) slog.Attr {
			if at.Key == slog.LevelKey && at.Value.Any() == levelTrace {
				return slog.String(slog.LevelKey, "TRACE")
			}
			return at
		},
	}))

	isTTY := false
	if f, ok := a.stdout.(*os.File); ok {
		isTTY = term.IsTerminal(int(f.Fd()))
	}
	a.out = &diag.Output{
		W:           a.stdout,
		JSON:        a.opts.JSON,
		TTY:         isTTY,
		Color:       isTTY && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb",
		Transcripts: level <= levelTrace,
	}

	servers := a.opts.Resolvers
	if len(servers) == 0 {
		servers, err = dnsx.SystemServers("/etc/resolv.conf")
		if err != nil {
			return diag.Uncheckedf("%v (use --resolver)", err)
		}
	} else {
		for i, s := range servers {
			if servers[i], err = dnsx.ParseServer(s); err != nil {
				return diag.Usagef("--resolver: %v", err)
			}
		}
	}
	if a.opts.Timeout <= 0 {
		return diag.Usagef("--timeout must be positive, got %s", a.opts.Timeout)
	}
	a.servers = servers
	limits := cfg.limits()
	client := dnsx.New(servers)
	client.Timeout = limits.DNS
	client.Tries = limits.DNSTry
	client.Logger = a.log
	if level <= levelTrace {
		client.Trace = func(e dnsx.TraceEvent) {
			a.log.Log(context.Background(), levelTrace, "dns", "name", e.Name, "type", e.Type,
				"server", e.Server, "transport", e.Transport, "rcode", e.Rcode, "ad", e.AD,
				"answer", strings.Join(e.Answer, " | "), "elapsed", e.Elapsed, "cached", e.Cached, "err", e.Err)
		}
	}
	cm, err := dnsx.ParseConnectMap(a.opts.ConnectMap)
	if err != nil {
		return diag.Usagef("--connect-map: %v", err)
	}
	roots, err := loadRoots(a.opts.TLSCA)
	if err != nil {
		return diag.Usagef("--tls-ca: %v", err)
	}
	a.env = diag.Env{
		Resolver: client,
		Dialer:   &dnsx.Dialer{Resolver: client, ConnectMap: cm, Timeout: limits.Connect},
		Roots:    roots,
		Now:      time.Now,
		Logger:   a.log,
		Limits:   limits,
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), a.opts.Timeout)
	cmd.SetContext(ctx)
	a.cleanup = cancel
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "info", "":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "trace":
		return levelTrace, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, diag.Usagef("--log-level %q: want info, debug or trace", s)
}

// loadRoots returns the system roots plus the certificates of file.
func loadRoots(file string) (*x509.CertPool, error) {
	if file == "" {
		return nil, nil // the system's, which crypto/tls loads itself
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// exactArgs and rangeArgs wrap cobra's argument checks as usage errors.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(n)(cmd, args); err != nil {
			return diag.Usagef("%s: %v", cmd.CommandPath(), err)
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.MinimumNArgs(n)(cmd, args); err != nil {
			return diag.Usagef("%s: %v", cmd.CommandPath(), err)
		}
		return nil
	}
}
