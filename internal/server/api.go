package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/store"
)

// TokenPrefix starts every API token, so that a leaked one is easy to
// recognise (and to scan for).
const TokenPrefix = "mxr_"

// NewToken returns a new API token: 32 random bytes, base64url, after
// TokenPrefix.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("server: token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// HashToken is what the store keeps of a token: its SHA-256, hex.
func HashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// authenticate returns the id of the active token that the request's
// bearer credentials (RFC 6750 §2.1) match, or 0.
func (s *Server) authenticate(ctx context.Context, r *http.Request) (int64, error) {
	scheme, cred, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	// RFC 7235 §2.1: the scheme is case-insensitive.
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(cred) == "" {
		return 0, nil
	}
	got := []byte(HashToken(strings.TrimSpace(cred)))
	toks, err := s.db.ActiveTokens(ctx)
	if err != nil {
		return 0, err
	}
	var id int64
	// Every hash is compared, in constant time, whatever matched.
	for _, t := range toks {
		if subtle.ConstantTimeCompare(got, []byte(t.Hash)) == 1 {
			id = t.ID
		}
	}
	return id, nil
}

// APIHandler serves the JSON API (docs/openapi.yaml).
func (s *Server) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/reports", s.listReports)
	mux.HandleFunc("GET /api/reports/{id}", s.getReport)
	mux.HandleFunc("GET /api/summary", s.summary)
	mux.HandleFunc("GET /api/quarantine", s.quarantine)
	mux.HandleFunc("GET /api/tls", s.tlsSummary)
	mux.HandleFunc("GET /api/alerts", s.alerts)
	mux.HandleFunc("GET /api/webhooks/outbox", s.outbox)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API endpoint")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.URL.Path == "/api/health" {
			s.health(w, r)
			return
		}
		id, err := s.authenticate(r.Context(), r)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "store unavailable")
			return
		}
		if id == 0 {
			// RFC 6750 §3: the challenge names the scheme.
			w.Header().Set("WWW-Authenticate", `Bearer realm="mxray"`)
			writeError(w, http.StatusUnauthorized, "a valid API token is required (Authorization: Bearer TOKEN; see mxray token create)")
			return
		}
		if err := s.db.TokenUsed(r.Context(), id, s.env.Clock()); err != nil {
			s.env.Log().Warn("token use not recorded", "token_id", id, "err", err)
		}
		s.env.Log().Debug("api", "method", r.Method, "path", r.URL.Path, "token_id", id)
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// storeError answers a store failure: 404 for what is not there, else 503.
func (s *Server) storeError(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.env.Log().Warn("api: store", "err", err)
	writeError(w, http.StatusServiceUnavailable, "store unavailable")
}

// ParseSince reads a since value: a date (2006-01-02), an RFC 3339 time,
// a number of days (30d) or weeks (2w), or a Go duration (12h), counted
// back from now.
func ParseSince(now time.Time, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if n := len(v); n > 1 && unit[v[n-1]] != 0 {
		if k, err := strconv.Atoi(v[:n-1]); err == nil && k >= 0 {
			return now.Add(-time.Duration(k) * unit[v[n-1]]), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("since %q: want 30d, 12h, 2w, 2006-01-02 or an RFC 3339 time", v)
}

// Reports is the answer of GET /api/reports.
type Reports struct {
	Reports []store.ReportHead `json:"reports"`
	// Next is the before= value of the next page, set when this page is
	// full (the next page may then be empty).
	Next int64 `json:"next,omitempty"`
}

func (s *Server) listReports(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := ParseSince(s.env.Clock(), q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f := store.ListFilter{Kind: store.Kind(q.Get("kind")), Domain: q.Get("domain"), Since: since}
	switch f.Kind {
	case "", store.KindDMARC, store.KindTLS, store.KindFailure, store.KindBounce:
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("kind %q: want dmarc, tls, failure or bounce", f.Kind))
		return
	}
	num := func(name string, max int64) (int64, bool) {
		v := q.Get(name)
		if v == "" {
			return 0, true
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > max {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s %q: want a number from 1 to %d", name, v, max))
			return 0, false
		}
		return n, true
	}
	limit, ok := num("limit", 1000)
	if !ok {
		return
	}
	if f.Before, ok = num("before", 1<<62); !ok {
		return
	}
	f.Limit = 100
	if limit > 0 {
		f.Limit = int(limit)
	}
	list, err := s.db.ReportList(r.Context(), f)
	if err != nil {
		s.storeError(w, err)
		return
	}
	res := Reports{Reports: list}
	if len(list) == f.Limit {
		res.Next = list[len(list)-1].ID
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusBadRequest, "the report id is a positive number")
		return
	}
	records := 1000
	if v := r.URL.Query().Get("records"); v != "" {
		if records, err = strconv.Atoi(v); err != nil || records < 0 {
			writeError(w, http.StatusBadRequest, "records: want a number, 0 for all")
			return
		}
	}
	rep, err := s.db.Report(r.Context(), id, records)
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (s *Server) summary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := ParseSince(s.env.Clock(), q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	top := 10
	if v := q.Get("top"); v != "" {
		if top, err = strconv.Atoi(v); err != nil || top < 1 || top > 1000 {
			writeError(w, http.StatusBadRequest, "top: want a number from 1 to 1000")
			return
		}
	}
	sum, err := s.db.Summary(r.Context(), store.Filter{Domain: q.Get("domain"), Since: since, Top: top})
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sum)
}

// Quarantine is the answer of GET /api/quarantine.
type Quarantine struct {
	Items []store.QuarantineItem `json:"items"`
}

func (s *Server) quarantine(w http.ResponseWriter, r *http.Request) {
	items, err := s.db.QuarantineList(r.Context())
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Quarantine{Items: items})
}

// TLS is the answer of GET /api/tls: the SMTP TLS reports (RFC 8460) by
// policy domain, with failed sessions by MX and result type.
type TLS struct {
	Reports int64              `json:"reports"` // TLS reports selected
	Domains []store.TLSSummary `json:"domains"`
}

func (s *Server) tlsSummary(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := ParseSince(s.env.Clock(), q.Get("since"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sum, err := s.db.Summary(r.Context(), store.Filter{Domain: q.Get("domain"), Since: since, Top: 1})
	if err != nil {
		s.storeError(w, err)
		return
	}
	res := TLS{Reports: sum.Totals.TLS, Domains: sum.TLS}
	if res.Domains == nil {
		res.Domains = []store.TLSSummary{}
	}
	writeJSON(w, http.StatusOK, res)
}

// Alerts is the answer of GET /api/alerts: the alerts raised, newest
// first.
type Alerts struct {
	Alerts []AlertItem `json:"alerts"`
}

// AlertItem is one alert raised: the store's row and, as detail, the
// JSON document that was sent to the webhooks.
type AlertItem struct {
	store.Alert
	Detail json.RawMessage `json:"detail,omitempty"`
}

func (s *Server) alerts(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q: want a number from 1 to 1000", v))
			return
		}
		limit = n
	}
	list, err := s.db.Alerts(r.Context(), limit)
	if err != nil {
		s.storeError(w, err)
		return
	}
	res := Alerts{Alerts: make([]AlertItem, 0, len(list))}
	for _, a := range list {
		it := AlertItem{Alert: a}
		if json.Valid([]byte(a.Body)) {
			it.Detail = json.RawMessage(a.Body)
		}
		res.Alerts = append(res.Alerts, it)
	}
	writeJSON(w, http.StatusOK, res)
}

// Outbox is the answer of GET /api/webhooks/outbox: the webhook outbox
// summed up per webhook name.
type Outbox struct {
	Webhooks []store.WebhookStatus `json:"webhooks"`
}

func (s *Server) outbox(w http.ResponseWriter, r *http.Request) {
	st, err := s.db.OutboxStatus(r.Context())
	if err != nil {
		s.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, Outbox{Webhooks: st})
}

// Health is the answer of GET /api/health, which needs no token.
type Health struct {
	Status string `json:"status"` // ok, or unavailable (HTTP 503)
	Schema int    `json:"schema,omitempty"`
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "GET only")
		return
	}
	v, err := s.db.Version(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok", Schema: v})
}
