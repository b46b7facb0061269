// Package server is `mxray serve`: the JSON API over the report store, and
// the report receivers — an HTTPS endpoint for SMTP TLS reports (RFC 8460
// §3) and a small SMTP server for report mailboxes (RFC 5321) — that feed
// what they receive through the same import path as `mxray reports
// import` (internal/ingest), so that quarantine and duplicates behave the
// same whichever way a report arrives.
//
// Everything listens on 127.0.0.1 unless configured otherwise, and the
// receivers are off unless enabled. Every API call but /api/health needs
// an API token (Authorization: Bearer, RFC 6750 §2.1); the store keeps
// only the tokens' SHA-256 and compares hashes in constant time.
//
// Not supported: the web admin pages and server-sent events, SMTP AUTH,
// BDAT/CHUNKING (RFC 3030), SMTPUTF8 (RFC 6531), DSN parameters (RFC 3461,
// ignored), TLS client certificates, and checking that what is posted to
// the TLS report endpoint is a TLS report (any report that imports is
// kept).
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
)

// Default listen addresses: loopback only (DESIGN.md, "Safety").
const (
	DefaultListen      = "127.0.0.1:8025"
	DefaultHTTPSListen = "127.0.0.1:8443"
	DefaultSMTPListen  = "127.0.0.1:2525"
	DefaultTLSRPTPath  = "/tlsrpt"
	// DefaultMaxBytes bounds one received report or message.
	DefaultMaxBytes = 32 << 20
)

// Sentinel errors.
var (
	// ErrConfig: the configuration cannot be served (a missing
	// certificate, no recipients for the SMTP receiver).
	ErrConfig = errors.New("server: bad configuration")
	// ErrListen: an address could not be listened on.
	ErrListen = errors.New("server: cannot listen")
)

// Config is what `mxray serve` serves.
type Config struct {
	Listen string // the JSON API; DefaultListen when ""
	// CertFile and KeyFile make the API and web admin listener speak
	// HTTPS (`--tls-cert`/`--tls-key`, [web] tls_cert/tls_key); without
	// them it speaks plain HTTP.
	CertFile, KeyFile string
	HTTPS             HTTPSConfig
	SMTP              SMTPConfig
}

// HTTPSConfig is the HTTPS receiver of TLS reports (RFC 8460 §5.4).
type HTTPSConfig struct {
	Enabled  bool
	Listen   string // DefaultHTTPSListen when ""
	Path     string // DefaultTLSRPTPath when ""
	MaxBytes int64  // DefaultMaxBytes when 0
	// CertFile and KeyFile make it HTTPS; without them it speaks plain
	// HTTP, for a reverse proxy in front of it.
	CertFile, KeyFile string
}

// SMTPConfig is the SMTP receiver for report mailboxes.
type SMTPConfig struct {
	Enabled    bool
	Listen     string   // DefaultSMTPListen when ""
	Hostname   string   // in the greeting; "mxray" when ""
	Recipients []string // the only addresses accepted (RCPT TO)
	MaxBytes   int64    // one message; DefaultMaxBytes when 0
	// CertFile and KeyFile enable STARTTLS (RFC 3207).
	CertFile, KeyFile string
	MaxConns          int           // concurrent sessions; 32 when 0
	CommandTimeout    time.Duration // waiting for one command or DATA line; 5 minutes when 0 (RFC 5321 §4.5.3.2.7)
	SessionTimeout    time.Duration // one whole connection; 30 minutes when 0
}

// Server runs the API and the enabled receivers.
type Server struct {
	cfg Config
	db  *store.DB
	env diag.Env
	// AfterImport, when set, is called after each received blob was
	// imported (the alert rules run there).
	AfterImport func(ctx context.Context)
	// Web, when set, is the web admin, served on the API's listener for
	// every path outside /api/.
	Web http.Handler

	api, https, smtp net.Listener
	tlsAPI, tlsHTTPS *tls.Config
	smtpd            *smtpServer
}

// New returns a server of cfg over db. env supplies the clock and the log.
func New(cfg Config, db *store.DB, env diag.Env) *Server {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	h := &cfg.HTTPS
	if h.Listen == "" {
		h.Listen = DefaultHTTPSListen
	}
	if h.Path == "" {
		h.Path = DefaultTLSRPTPath
	}
	if !strings.HasPrefix(h.Path, "/") {
		h.Path = "/" + h.Path
	}
	if h.MaxBytes <= 0 {
		h.MaxBytes = DefaultMaxBytes
	}
	m := &cfg.SMTP
	if m.Listen == "" {
		m.Listen = DefaultSMTPListen
	}
	if m.Hostname == "" {
		m.Hostname = "mxray"
	}
	if m.MaxBytes <= 0 {
		m.MaxBytes = DefaultMaxBytes
	}
	if m.MaxConns <= 0 {
		m.MaxConns = 32
	}
	if m.CommandTimeout <= 0 {
		m.CommandTimeout = 5 * time.Minute
	}
	if m.SessionTimeout <= 0 {
		m.SessionTimeout = 30 * time.Minute
	}
	return &Server{cfg: cfg, db: db, env: env}
}

// Config returns the configuration with its defaults filled in.
func (s *Server) Config() Config { return s.cfg }

func loadCert(what, cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	if cert == "" || key == "" {
		return nil, fmt.Errorf("%w: %s needs both tls_cert and tls_key", ErrConfig, what)
	}
	// Read the files here so that an error names the file at fault.
	certPEM, err := os.ReadFile(cert)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: certificate: %v", ErrConfig, what, err)
	}
	keyPEM, err := os.ReadFile(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: key: %v", ErrConfig, what, err)
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: certificate %s, key %s: %v", ErrConfig, what, cert, key, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12}, nil
}

// TLS reports whether the API and web admin listener speaks HTTPS.
func (s *Server) TLS() bool { return s.cfg.CertFile != "" && s.cfg.KeyFile != "" }

// Listen opens every listener, so that a bad address or certificate is
// reported before anything is served.
func (s *Server) Listen() error {
	var err error
	if s.tlsAPI, err = loadCert("web", s.cfg.CertFile, s.cfg.KeyFile); err != nil {
		return err
	}
	if s.cfg.SMTP.Enabled && len(s.cfg.SMTP.Recipients) == 0 {
		return fmt.Errorf("%w: receiver.smtp needs at least one recipient", ErrConfig)
	}
	if s.cfg.HTTPS.Enabled {
		if s.tlsHTTPS, err = loadCert("receiver.https", s.cfg.HTTPS.CertFile, s.cfg.HTTPS.KeyFile); err != nil {
			return err
		}
	}
	var smtpTLS *tls.Config
	if s.cfg.SMTP.Enabled {
		if smtpTLS, err = loadCert("receiver.smtp", s.cfg.SMTP.CertFile, s.cfg.SMTP.KeyFile); err != nil {
			return err
		}
	}
	listen := func(what, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%w: %s %s: %v", ErrListen, what, addr, err)
		}
		return ln, nil
	}
	if s.api, err = listen("api", s.cfg.Listen); err != nil {
		return err
	}
	if s.cfg.HTTPS.Enabled {
		if s.https, err = listen("receiver.https", s.cfg.HTTPS.Listen); err != nil {
			return err
		}
	}
	if s.cfg.SMTP.Enabled {
		if s.smtp, err = listen("receiver.smtp", s.cfg.SMTP.Listen); err != nil {
			return err
		}
		s.smtpd = newSMTPServer(s, smtpTLS)
	}
	return nil
}

// Close closes the listeners opened by Listen (Serve does it itself).
func (s *Server) Close() {
	for _, ln := range []net.Listener{s.api, s.https, s.smtp} {
		if ln != nil {
			ln.Close()
		}
	}
}

// Addrs returns the addresses listened on: the API, and the HTTPS and
// SMTP receivers ("" when off).
func (s *Server) Addrs() (api, https, smtp string) {
	get := func(ln net.Listener) string {
		if ln == nil {
			return ""
		}
		return ln.Addr().String()
	}
	return get(s.api), get(s.https), get(s.smtp)
}

// shutdownGrace is how long a shutdown waits for requests and sessions.
const shutdownGrace = 10 * time.Second

// Handler serves the web listener: the JSON API under /api/ and, when Web
// is set, the web admin everywhere else.
func (s *Server) Handler() http.Handler {
	api := s.APIHandler()
	if s.Web == nil {
		return api
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/", s.Web)
	return mux
}

// Serve serves until ctx is done, then stops accepting, lets what is under
// way finish (for up to ten seconds) and returns. Listen must have
// succeeded.
func (s *Server) Serve(ctx context.Context) error {
	if s.api == nil {
		return fmt.Errorf("%w: Serve before Listen", ErrConfig)
	}
	log := s.env.Log()
	// net/http's own complaints (TLS handshake errors, a plain request to
	// the HTTPS port) go to the run's log, at debug level.
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelDebug)
	servers := []*http.Server{{Handler: s.Handler(), ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: s.tlsAPI, ErrorLog: errLog, BaseContext: func(net.Listener) context.Context { return ctx }}}
	lns := []net.Listener{s.api}
	if s.https != nil {
		servers = append(servers, &http.Server{Handler: s.ReceiverHandler(), ReadHeaderTimeout: 30 * time.Second,
			ReadTimeout: 5 * time.Minute, TLSConfig: s.tlsHTTPS, ErrorLog: errLog, BaseContext: func(net.Listener) context.Context { return ctx }})
		lns = append(lns, s.https)
	}
	errc := make(chan error, len(servers)+1)
	var wg sync.WaitGroup
	for i, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if hs.TLSConfig != nil {
				err = hs.ServeTLS(lns[i], "", "")
			} else {
				err = hs.Serve(lns[i])
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	if s.smtpd != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.smtpd.serve(ctx, s.smtp); err != nil {
				errc <- err
			}
		}()
	}
	api, https, smtp := s.Addrs()
	log.Info("serving", "api", api, "https_receiver", https, "smtp_receiver", smtp)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	for _, hs := range servers {
		hs.Shutdown(sctx)
	}
	if s.smtpd != nil {
		s.smtpd.shutdown(sctx)
	}
	wg.Wait()
	log.Info("stopped")
	return err
}

// importBlob runs one received blob through the import path of `mxray
// reports import`. An error means the store failed: nothing is known to be
// kept and the sender should retry.
func (s *Server) importBlob(ctx context.Context, origin string, data []byte) ([]ingest.Outcome, error) {
	var outs []ingest.Outcome
	im := &ingest.Importer{Store: s.db, Now: s.env.Clock, Log: s.env.Log(), Workers: 1,
		Outcome: func(o ingest.Outcome) { outs = append(outs, o) }}
	_, err := im.Import(ctx, func(ctx context.Context, fn func(ingest.Blob) error) error {
		return fn(ingest.Blob{Origin: origin, Data: data})
	})
	if err != nil {
		s.env.Log().Warn("import failed", "origin", origin, "bytes", len(data), "err", err)
		return outs, err
	}
	for _, o := range outs {
		s.env.Log().Info("received", "origin", origin, "kind", o.Kind, "result", o.Result, "id", o.ID, "reason", o.Reason)
	}
	if s.AfterImport != nil {
		s.AfterImport(ctx)
	}
	return outs, nil
}
