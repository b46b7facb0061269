// Package web is the web admin of `mxray serve`: server-rendered pages
// (html/template, every asset embedded, no CDN, usable offline, on a phone
// and from the keyboard) behind a login, and the troubleshooters run live
// in the browser over server-sent events (HTML Living Standard §9.2) that
// carry the same JSON objects as the CLI's --json lines (DESIGN.md,
// "JSON"), plus {"type":"start"} events.
//
// Security, in one place:
//   - Accounts live in the store (store.Admin); passwords only as
//     PBKDF2-HMAC-SHA256 (RFC 8018 §5.2, crypto/pbkdf2) with 600,000
//     iterations and a 16-byte random salt per password, the iteration
//     count OWASP advises for PBKDF2-HMAC-SHA256. Argon2id and bcrypt
//     would need golang.org/x/crypto, which mxray does not carry.
//   - Sessions: a random 32-byte id in a cookie (HttpOnly, SameSite=Lax,
//     Secure and the __Host- prefix under TLS, RFC 6265bis §4.1.3.2);
//     the store keeps only its SHA-256, with an absolute expiry.
//   - CSRF: every POST must carry the session's synchronizer token (403
//     without it); the login form, before there is a session, a
//     double-submit token in a cookie of its own. net/http's
//     CrossOriginProtection (Sec-Fetch-Site, Origin) refuses cross-origin
//     POSTs first, and the event stream, a GET, refuses cross-site
//     Sec-Fetch-Site.
//   - Rate limits, in memory: 5 failed logins per client address (IPv6
//     by /64) and per account name in 15 minutes, then 429; 10
//     troubleshooting runs per client address a minute.
//   - Unless Config.AllowPrivate, the troubleshooters do not reach
//     loopback, private, link-local, CGNAT or otherwise non-global
//     addresses (server-side request forgery): a resolver wrapper fails
//     every A/AAAA answer holding one and every MX naming one as an IP
//     literal, and the dialer resolves through it, so the check is made
//     on the addresses actually dialed.
//
// The troubleshooters: Email delivery (delivery.Run, a GET stream), and
// DMARC (authcheck.Run, with an optional message pasted or uploaded, at
// most 25 MiB), Connection (probe.Run, without credentials) and Domain
// (domain.Run), whose runs are POSTs carrying the CSRF token.
//
// The report dashboards (reports.go, Config.Reports): DMARC aggregate
// data by policy domain with an inline-SVG chart, sources and one report's
// records, each failing source one click from the DMARC troubleshooter;
// TLS reports by domain, MX and result type, one click from the delivery
// test; failure reports (ARF, RFC 5965 and RFC 6591) with their fields and
// original headers; the quarantine, each item re-processed with one
// button (Config.Reprocess).
//
// Alerts (alerts.go, Config.Alerts): the alerts raised and the delivery
// status of their webhooks. Settings (settings.go): the alert rules and
// webhooks added, edited and deleted in the store (until the next start
// of `mxray serve`, which replaces them with the config file's), and the
// receivers, read-only.
//
// Not supported yet: a login in the connection test (no credentials
// are taken in the browser); importing or deleting reports from the
// browser; accounts and API tokens managed from the browser; idle session timeout (sessions end at their absolute
// expiry or on logout); trusting X-Forwarded-For behind a proxy (limits
// count the proxy's address then); a page without JavaScript for the
// live run.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/authcheck"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/store"
)

// Sentinel errors.
var (
	// ErrConfig: New was given an unusable Config.
	ErrConfig = errors.New("web: invalid configuration")
	// ErrPrivateAddress: a troubleshooter would have reached a
	// non-global address while Config.AllowPrivate is off.
	ErrPrivateAddress = errors.New("web: address not reachable from the web admin (loopback, private or link-local)")
)

// Accounts is what the web admin needs of the store: *store.DB.
type Accounts interface {
	AdminCount(ctx context.Context) (int, error)
	AdminCreate(ctx context.Context, name, passwordHash string, at time.Time) (int64, bool, error)
	AdminByName(ctx context.Context, name string) (store.Admin, error)
	AdminSetPassword(ctx context.Context, name, passwordHash string) error
	AdminLoggedIn(ctx context.Context, id int64, at time.Time) error
	AdminSessionCreate(ctx context.Context, s store.AdminSession) error
	AdminSession(ctx context.Context, hash string, now time.Time) (store.AdminSession, error)
	AdminSessionDelete(ctx context.Context, hash string) error
	AdminSessionsExpire(ctx context.Context, now time.Time) (int64, error)
}

// Config configures the web admin.
type Config struct {
	Store Accounts
	// Reports is what the report pages read (*store.DB); when nil they
	// say the report store is not configured.
	Reports ReportsReader
	// Alerts is what the alert and settings pages read and write
	// (*store.DB); when nil they say the alert store is not configured.
	Alerts AlertStore
	// Reprocess runs one quarantined item through ingestion again
	// (Reprocessor builds it): ok when it was imported and left the
	// quarantine, else the reason it still fails. When nil the
	// quarantine page has no re-process button.
	Reprocess func(ctx context.Context, id int64) (ok bool, reason string, err error)
	// Receivers describes the report receivers, shown read-only on the
	// settings page.
	Receivers []Receiver
	// Env is the world the troubleshooters run in (the serve command's).
	Env diag.Env
	// Now is the clock of sessions and rate limits; Env.Clock when nil.
	Now func() time.Time
	// Secure marks cookies Secure (and __Host-): set it when serving TLS.
	Secure bool
	Logger *slog.Logger
	// AllowPrivate lets troubleshooters reach loopback, private and
	// link-local addresses. Set it when the server listens on loopback
	// only (see LoopbackOnly) or for a lab; leave it off otherwise.
	AllowPrivate bool
	// SessionTTL is how long a login lasts; default 12 hours.
	SessionTTL time.Duration
	// RunTimeout bounds one troubleshooting run; default 2 minutes.
	RunTimeout time.Duration
}

// Limits of the rate limiters.
const (
	loginFailures = 5
	loginWindow   = 15 * time.Minute
	runsPerWindow = 10
	runWindow     = time.Minute
	maxFormBytes  = 64 << 10
	// A DMARC run's form may carry a whole message (authcheck.MaxMessage,
	// 25 MiB, like the CLI's --message) besides its fields.
	maxMessageForm  = authcheck.MaxMessage + maxFormBytes
	multipartMemory = 1 << 20
	defaultTTL      = 12 * time.Hour
	defaultTimeout  = 2 * time.Minute
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type server struct {
	cfg       Config
	now       func() time.Time
	log       *slog.Logger
	pages     map[string]*template.Template
	loginIP   *limiter
	loginUser *limiter
	runs      *limiter
}

// New returns the web admin's handler, to be mounted at / (it serves
// nothing under /api/).
func New(cfg Config) (http.Handler, error) {
	if cfg.Store == nil {
		return nil, fmt.Errorf("%w: no account store", ErrConfig)
	}
	if cfg.Env.Resolver == nil || cfg.Env.Dialer == nil {
		return nil, fmt.Errorf("%w: the environment has no resolver or dialer", ErrConfig)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = defaultTTL
	}
	if cfg.RunTimeout <= 0 {
		cfg.RunTimeout = defaultTimeout
	}
	s := &server{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if s.now == nil {
		s.now = cfg.Env.Clock
	}
	if s.log == nil {
		s.log = cfg.Env.Log()
	}
	s.loginIP = newLimiter(loginFailures, loginWindow, s.now)
	s.loginUser = newLimiter(loginFailures, loginWindow, s.now)
	s.runs = newLimiter(runsPerWindow, runWindow, s.now)
	var err error
	if s.pages, err = parsePages(); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", cacheFor(time.Hour, files)))
	mux.HandleFunc("GET /login", s.loginPage)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.auth(s.logout))
	mux.HandleFunc("GET /{$}", s.auth(func(w http.ResponseWriter, r *http.Request, _ *store.AdminSession) {
		http.Redirect(w, r, "/troubleshoot/delivery", http.StatusSeeOther)
	}))
	mux.HandleFunc("GET /troubleshoot/delivery", s.auth(s.deliveryPage))
	mux.HandleFunc("GET /troubleshoot/delivery/run", s.auth(s.deliveryRun))
	mux.HandleFunc("GET /troubleshoot/dmarc", s.auth(s.dmarcPage))
	mux.HandleFunc("POST /troubleshoot/dmarc/run", s.authBody(s.dmarcRun, maxMessageForm))
	mux.HandleFunc("GET /troubleshoot/connection", s.auth(s.connectionPage))
	mux.HandleFunc("POST /troubleshoot/connection/run", s.auth(s.connectionRun))
	mux.HandleFunc("GET /troubleshoot/domain", s.auth(s.domainPage))
	mux.HandleFunc("POST /troubleshoot/domain/run", s.auth(s.domainRun))
	mux.HandleFunc("GET /reports", s.auth(s.dmarcReportsPage))
	mux.HandleFunc("GET /reports/tls", s.auth(s.tlsReportsPage))
	mux.HandleFunc("GET /reports/quarantine", s.auth(s.quarantinePage))
	mux.HandleFunc("POST /reports/quarantine/{id}/reprocess", s.auth(s.reprocess))
	mux.HandleFunc("GET /reports/failure", s.auth(s.failureReportsPage))
	mux.HandleFunc("GET /alerts", s.auth(s.alertsPage))
	mux.HandleFunc("GET /settings", s.auth(s.settingsPage))
	mux.HandleFunc("POST /settings/rules", s.auth(s.ruleSave))
	mux.HandleFunc("POST /settings/rules/delete", s.auth(s.ruleDelete))
	mux.HandleFunc("POST /settings/webhooks", s.auth(s.webhookSave))
	mux.HandleFunc("POST /settings/webhooks/delete", s.auth(s.webhookDelete))
	mux.HandleFunc("GET /reports/{id}", s.auth(s.reportPage))
	for _, p := range placeholders {
		mux.HandleFunc("GET "+p.Path, s.auth(s.placeholder(p)))
	}
	cop := http.NewCrossOriginProtection()
	return headers(cop.Handler(mux)), nil
}

// LoopbackOnly reports whether a listen address (host:port) accepts
// connections from this machine only, so that Config.AllowPrivate is
// safe: a loopback IP or "localhost". An empty host (every interface) is
// not.
func LoopbackOnly(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = listen
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// headers sets what every response carries: no framing, no sniffing, and
// a content security policy that allows the embedded assets only (no
// inline script).
func headers(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("private, max-age=%d", int(d.Seconds())))
		h.ServeHTTP(w, r)
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Nav     string // the active navigation entry's path
	User    string // the logged-in account; empty on the login page
	CSRF    string
	Error   string
	Notice  string
	Next    string
	Name    string // the login form's account name, kept after a failure
	Target  string
	Summary string // placeholders: what will come
	Command string // placeholders: the CLI command that does it today
	// Services: the connection page's checkboxes (probe.Services).
	Services []string
	// MaxMessage: the DMARC page's upload limit, in words.
	MaxMessage string
	// IP, Helo, MailFrom: the DMARC form prefilled from the query.
	IP, Helo, MailFrom string
	// Data: the report pages' (*reportsPage).
	Data any
}

// placeholders are the pages not built yet.
var placeholders = []struct{ Path, Title, Summary, Command string }{}

func (s *server) placeholder(p struct{ Path, Title, Summary, Command string }) authHandler {
	return func(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
		s.render(w, http.StatusOK, "placeholder", page{Title: p.Title, Nav: p.Path, User: sess.Admin, CSRF: sess.CSRF,
			Summary: p.Summary, Command: p.Command})
	}
}

type navEntry struct {
	Path, Label string
	Current     bool
}

var funcs = template.FuncMap{
	"navItem": func(p page, path, label string) navEntry {
		return navEntry{Path: path, Label: label, Current: p.Nav == path}
	},
	"date":  func(t time.Time) string { return t.UTC().Format(time.DateOnly) },
	"stamp": func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") },
	"size": func(n int64) string {
		if n < 1<<10 {
			return strconv.FormatInt(n, 10) + " bytes"
		}
		return sizeText(n)
	},
	"pct":  func(n, d int64) string { return pct(n, d) },
	"rate": func(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) + " %" },
	// dict passes named values to a sub-template: dict "K1" v1 "K2" v2.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, fmt.Errorf("web: dict: odd arguments")
		}
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, fmt.Errorf("web: dict: key %v", kv[i])
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
	// troubleshootLink opens the DMARC troubleshooter for a source IP
	// sending as a domain.
	"troubleshootLink": func(ip, domain string) string { return dmarcLink(ip, domain, "") },
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range []string{"login", "delivery", "dmarc", "connection", "domain", "placeholder",
		"reports_dmarc", "reports_tls", "reports_quarantine", "report", "reports_failure", "alerts", "settings"} {
		files := []string{"templates/layout.html", "templates/" + name + ".html"}
		if strings.HasPrefix(name, "report") {
			files = append(files, "templates/reports_common.html")
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return nil, fmt.Errorf("web: template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes a page; pages are never cached (they carry the CSRF
// token).
func (s *server) render(w http.ResponseWriter, code int, name string, p page) {
	var buf bytes.Buffer
	if err := s.pages[name].Execute(&buf, p); err != nil {
		s.log.Error("web: template", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}
