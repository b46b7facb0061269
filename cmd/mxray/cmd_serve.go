package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/alert"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/ingest/imapsrc"
	"github.com/mxray/mxray/internal/server"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/web"
)

func newServeCmd(a *app) *cobra.Command {
	var listen string
	var allowPrivate bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the JSON API, the report receivers and the alerts",
		Long: `Serve the JSON API over the report database (docs/openapi.yaml), the
report receivers and the alert rules, until interrupted.

The API listens on 127.0.0.1:8025 unless --listen or [web] listen says
otherwise, and every call but /api/health needs a token from
'mxray token create' (Authorization: Bearer TOKEN).

The receivers are off unless enabled in the config file:
  [receiver.https]  RFC 8460 endpoint for TLS reports (POST /tlsrpt)
  [receiver.smtp]   SMTP server for report mailboxes (relay them from Postfix)
Both store what they receive the way 'mxray reports import' does.

[[alert]] rules are checked after every received report and every minute;
alerts go to the log and to every [[webhook]], signed (X-Mxray-Signature)
and retried from a persistent outbox until delivered.

--timeout applies only when given: without it, serve runs until SIGINT or
SIGTERM, then finishes the requests under way and stops.`,
		Example: `  mxray token create --name grafana
  mxray serve
  curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8025/api/summary?since=7d`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runServe(reportsContext(cmd, a), a, listen, cmd.Flags().Changed("listen"), allowPrivate)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", server.DefaultListen, "API and web admin address ADDR:PORT (default: [web] listen, else 127.0.0.1:8025)")
	cmd.Flags().BoolVar(&allowPrivate, "allow-private", false, "let the web admin's troubleshooters connect to private, loopback and link-local addresses even when listening beyond loopback")
	return cmd
}

// serverConfig is the server configuration of the config file.
func (c *config) serverConfig() server.Config {
	m, h := c.Receiver.SMTP, c.Receiver.HTTPS
	return server.Config{
		Listen: c.Web.Listen,
		HTTPS: server.HTTPSConfig{Enabled: h.Enabled, Listen: h.Listen, Path: h.Path, MaxBytes: h.MaxSize,
			CertFile: h.TLSCert, KeyFile: h.TLSKey},
		SMTP: server.SMTPConfig{Enabled: m.Enabled, Listen: m.Listen, Hostname: m.Hostname, Recipients: m.Recipients,
			MaxBytes: m.MaxMessageSize, CertFile: m.TLSCert, KeyFile: m.TLSKey, MaxConns: m.MaxConnections,
			CommandTimeout: m.CommandTimeout.Duration, SessionTimeout: m.SessionTimeout.Duration},
	}
}

// alertConfig returns the [[alert]] rules and [[webhook]]s, checked.
func (c *config) alertConfig() ([]store.AlertRule, []store.Webhook, error) {
	var rules []store.AlertRule
	seen := map[string]bool{}
	for _, r := range c.Alert {
		rule := store.AlertRule{Name: r.Name, Kind: r.Kind, Domain: r.Domain, Threshold: r.Threshold,
			MinVolume: r.MinVolume, Window: r.Window.Duration}
		if err := alert.Validate(rule); err != nil {
			return nil, nil, diag.Usagef("config %s: [[alert]]: %v", c.path, err)
		}
		if seen[r.Name] {
			return nil, nil, diag.Usagef("config %s: two [[alert]] rules named %q", c.path, r.Name)
		}
		seen[r.Name] = true
		rules = append(rules, rule)
	}
	var hooks []store.Webhook
	seen = map[string]bool{}
	for _, w := range c.Webhook {
		h := store.Webhook{Name: w.Name, URL: w.URL, Secret: w.Secret}
		if w.SecretFile != "" {
			if w.Secret != "" {
				return nil, nil, diag.Usagef("config %s: webhook %q: secret and secret_file are exclusive", c.path, w.Name)
			}
			b, err := os.ReadFile(w.SecretFile)
			if err != nil {
				return nil, nil, diag.Usagef("config %s: webhook %q: %v", c.path, w.Name, err)
			}
			h.Secret = strings.TrimSpace(string(b))
		}
		if err := alert.ValidateWebhook(h); err != nil {
			return nil, nil, diag.Usagef("config %s: [[webhook]]: %v", c.path, err)
		}
		if seen[w.Name] {
			return nil, nil, diag.Usagef("config %s: two [[webhook]]s named %q", c.path, w.Name)
		}
		seen[w.Name] = true
		hooks = append(hooks, h)
	}
	return rules, hooks, nil
}

// alertWorkers builds the rule evaluator and the webhook notifier.
func alertWorkers(a *app, db *store.DB) (*alert.Evaluator, *alert.Notifier) {
	client := &http.Client{Timeout: a.env.Limits.HTTP, Transport: &http.Transport{
		DialContext: a.env.Dialer.DialContext, TLSClientConfig: &tls.Config{RootCAs: a.env.Roots}}}
	return &alert.Evaluator{DB: db, Now: a.env.Clock, Log: a.log},
		&alert.Notifier{DB: db, Client: client, Now: a.env.Clock, Log: a.log}
}

// serveResult is printed when serve stops.
type serveResult struct {
	API           string `json:"api"`
	HTTPSReceiver string `json:"https_receiver,omitempty"`
	SMTPReceiver  string `json:"smtp_receiver,omitempty"`
	IMAPReceiver  string `json:"imap_receiver,omitempty"` // server/folder polled`
	Rules         int    `json:"alert_rules"`
	Webhooks      int    `json:"webhooks"`
}

func runServe(ctx context.Context, a *app, listen string, listenSet, allowPrivate bool) error {
	cfg := a.cfg.serverConfig()
	if listenSet {
		cfg.Listen = listen
	}
	if (a.opts.TLSCert == "") != (a.opts.TLSKey == "") {
		return diag.Usagef("--tls-cert and --tls-key ([web] tls_cert, tls_key) go together: give both for HTTPS, or neither")
	}
	cfg.CertFile, cfg.KeyFile = a.opts.TLSCert, a.opts.TLSKey
	rules, hooks, err := a.cfg.alertConfig()
	if err != nil {
		return err
	}
	db, err := reportsOpen(ctx, a)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.SetAlertConfig(ctx, rules, hooks); err != nil {
		return diag.Uncheckedf("%v", err)
	}
	srv := server.New(cfg, db, a.env)
	if err := srv.Listen(); err != nil {
		if errors.Is(err, server.ErrConfig) {
			return diag.Usagef("%v", err)
		}
		return diag.Uncheckedf("%v", err)
	}
	api, https, smtp := srv.Addrs()
	pw, created, err := web.EnsureAdmin(ctx, db, a.env.Clock())
	if err != nil {
		return diag.Uncheckedf("web admin: %v", err)
	}
	if created {
		// The one time this password is shown: on the terminal, not in a log.
		fmt.Fprintf(a.stderr, "web admin: created account %q with password %s (shown once; mxray admin reset-password makes a new one)\n", web.AdminName, pw)
	}
	// The receivers, for the settings page; the IMAP one is read here so
	// that a bad [receiver.imap] stops serve before anything runs.
	var receivers []web.Receiver
	if https != "" {
		receivers = append(receivers, web.Receiver{Name: "HTTPS", Address: https, Detail: "TLS reports (RFC 8460) at " + srv.Config().HTTPS.Path})
	}
	if smtp != "" {
		receivers = append(receivers, web.Receiver{Name: "SMTP", Address: smtp, Detail: "for " + strings.Join(srv.Config().SMTP.Recipients, ", ")})
	}
	var imapCfg *imapsrc.Config
	var imapEvery time.Duration
	if ic := a.cfg.Receiver.IMAP; ic.Enabled {
		fc, every, err := imapReceiver(a, ic)
		if err != nil {
			return err
		}
		imapCfg, imapEvery = &fc, every
		receivers = append(receivers, web.Receiver{Name: "IMAP", Address: fc.Address + "/" + fc.Folder, Detail: "polled every " + every.String()})
	}
	srv.Web, err = web.New(web.Config{
		Store: db, Reports: db, Alerts: db, Env: a.env, Now: a.env.Clock, Logger: a.log,
		Reprocess: web.Reprocessor(db, reportsImporter(a, db)),
		Receivers: receivers,
		// Troubleshooting from a server reachable by others must not
		// reach into the admin's own network (SSRF).
		AllowPrivate: allowPrivate || web.LoopbackOnly(api),
		// Under HTTPS the cookies are Secure and take the __Host- prefix.
		Secure: srv.TLS(),
	})
	if err != nil {
		return diag.Uncheckedf("web admin: %v", err)
	}
	ev, no := alertWorkers(a, db)
	runner := alert.NewRunner(ev, no, a.log)
	srv.AfterImport = func(context.Context) { runner.Kick() }

	res := serveResult{API: api, HTTPSReceiver: https, SMTPReceiver: smtp, Rules: len(rules), Webhooks: len(hooks)}
	var poll func(context.Context)
	if imapCfg != nil {
		fc := *imapCfg
		res.IMAPReceiver = fc.Address + "/" + fc.Folder
		poll = func(ctx context.Context) { pollIMAP(ctx, a, db, fc, imapEvery, runner.Kick) }
	}
	if !a.opts.JSON {
		writeServeStart(a.stdout, res, srv.Config())
	}
	rctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); runner.Run(rctx) }()
	if poll != nil {
		wg.Add(1)
		go func() { defer wg.Done(); poll(rctx) }()
	}
	err = srv.Serve(ctx)
	stop()
	wg.Wait()
	if err != nil {
		return diag.Uncheckedf("%v", err)
	}
	return a.out.Result("serve", res, nil)
}

func writeServeStart(w io.Writer, r serveResult, cfg server.Config) {
	apiScheme := "http"
	if cfg.CertFile != "" {
		apiScheme = "https"
	}
	fmt.Fprintf(w, "Web admin     %s://%s/ (account %s)\n", apiScheme, r.API, web.AdminName)
	fmt.Fprintf(w, "API           %s://%s/api/ (Authorization: Bearer TOKEN; mxray token create)\n", apiScheme, r.API)
	if r.HTTPSReceiver != "" {
		scheme := "http"
		if cfg.HTTPS.CertFile != "" {
			scheme = "https"
		}
		fmt.Fprintf(w, "TLS reports   %s://%s%s (POST application/tlsrpt+json or +gzip)\n", scheme, r.HTTPSReceiver, cfg.HTTPS.Path)
	}
	if r.SMTPReceiver != "" {
		fmt.Fprintf(w, "SMTP          %s for %s\n", r.SMTPReceiver, strings.Join(cfg.SMTP.Recipients, ", "))
	}
	if r.IMAPReceiver != "" {
		fmt.Fprintf(w, "IMAP          %s (polled)\n", r.IMAPReceiver)
	}
	fmt.Fprintf(w, "Alerts        %d rules, %d webhooks\n", r.Rules, r.Webhooks)
}

// imapReceiver reads [receiver.imap]: the mailbox, its password (from
// password_file, else $MXRAY_PASSWORD) and the polling interval.
func imapReceiver(a *app, ic imapReceiverConfig) (imapsrc.Config, time.Duration, error) {
	fc, err := parseIMAPURL(ic.URL)
	if err != nil {
		return fc, 0, diag.Usagef("[receiver.imap] url: %v", err)
	}
	fc.Processed, fc.Failed = imapsrc.DefaultProcessed, imapsrc.DefaultFailed
	if ic.ProcessedFolder != "" {
		fc.Processed = ic.ProcessedFolder
	}
	if ic.FailedFolder != "" {
		fc.Failed = ic.FailedFolder
	}
	if fc.Password, err = a.readSecret(ic.PasswordFile, "IMAP password for "+fc.User+": "); err != nil {
		return fc, 0, err
	}
	every := 5 * time.Minute
	if ic.Interval.Duration > 0 {
		every = ic.Interval.Duration
	}
	return fc, every, nil
}

// pollIMAP reads the report mailbox now and then every interval until ctx
// ends, through the same import as `reports fetch`; what it imported
// wakes the alert rules. Failures are logged and retried at the next turn.
func pollIMAP(ctx context.Context, a *app, db *store.DB, fc imapsrc.Config, every time.Duration, kick func()) {
	im := reportsImporter(a, db)
	for {
		res, err := imapsrc.Fetch(ctx, a.env, fc, im, diag.Discard)
		if err != nil && ctx.Err() == nil {
			a.log.Warn("imap receiver", "server", fc.Address, "folder", fc.Folder, "err", err)
		}
		if res != nil {
			a.log.Info("imap receiver", "server", fc.Address, "folder", fc.Folder, "fetched", res.Fetched,
				"imported", res.Imported, "duplicates", res.Duplicates, "quarantined", res.Quarantined)
			if res.Imported+res.Quarantined > 0 {
				kick()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
