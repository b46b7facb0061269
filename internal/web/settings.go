package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/alert"
	"github.com/mxray/mxray/internal/store"
)

// The settings page: the alert rules and webhooks, which live in the
// store, listed and edited one at a time (add, edit, delete; every form
// carries the CSRF token, every value is checked by alert.Validate and
// alert.ValidateWebhook), and the report receivers, read-only
// (Config.Receivers). A webhook's secret is write-only: never rendered,
// kept when an edit leaves it empty.
//
// `mxray serve` loads the rules and webhooks of its config file with
// store.SetAlertConfig when it starts, which replaces every rule and
// webhook held: what is edited here lasts until the next start, unless
// the config file says the same.

// Receiver describes one report receiver for the settings page.
type Receiver struct {
	Name    string // "HTTPS", "SMTP", "IMAP"
	Address string // where it listens or what it polls
	Detail  string // anything else worth knowing; may be ""
}

// settingsPage is the data of the settings page.
type settingsPage struct {
	NoStore   bool
	Rules     []ruleRow
	Webhooks  []webhookRow
	Kinds     []string
	Rule      ruleForm
	Webhook   webhookForm
	Receivers []Receiver
}

type ruleRow struct {
	store.AlertRule
	Edit string
}

func (r ruleRow) WindowText() string { return windowText(r.Window) }

// webhookRow is a webhook as listed: never its secret.
type webhookRow struct {
	Name, URL string
	HasSecret bool
	Edit      string
}

// ruleForm is the rule form's values, as typed.
type ruleForm struct {
	Old, Name, Kind, Domain, Threshold, MinVolume, Window string
	Error                                                 string
}

// webhookForm is the webhook form's values, as typed, without the
// secret.
type webhookForm struct {
	Old, Name, URL string
	Error          string
}

// windowText writes a window as the config file takes it (a Go
// duration), without the trailing zero units.
func windowText(d time.Duration) string {
	switch {
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d > 0 && d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

func fmtNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// settingsNotices are the messages a redirect after a change shows.
var settingsNotices = map[string]string{
	"rule-saved":      "Rule %q saved.",
	"rule-deleted":    "Rule %q deleted.",
	"webhook-saved":   "Webhook %q saved.",
	"webhook-deleted": "Webhook %q deleted.",
}

func (s *server) settingsPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	q := r.URL.Query()
	p := page{}
	if f, ok := settingsNotices[q.Get("done")]; ok {
		p.Notice = fmt.Sprintf(f, q.Get("name"))
	}
	s.renderSettings(w, r, sess, http.StatusOK, p, nil, nil)
}

// renderSettings shows the settings page; rf and wf, when set, are forms
// sent back with their error, else the forms are empty or hold the rule
// or webhook the query names for editing.
func (s *server) renderSettings(w http.ResponseWriter, r *http.Request, sess *store.AdminSession, code int, p page, rf *ruleForm, wf *webhookForm) {
	sp := &settingsPage{NoStore: s.cfg.Alerts == nil, Receivers: s.cfg.Receivers}
	for _, k := range alert.Kinds {
		sp.Kinds = append(sp.Kinds, string(k))
	}
	p.Title, p.Nav, p.User, p.CSRF, p.Data = "Settings", "/settings", sess.Admin, sess.CSRF, sp
	if sp.NoStore {
		s.render(w, code, "settings", p)
		return
	}
	ctx := r.Context()
	rules, err := s.cfg.Alerts.AlertRules(ctx)
	if err != nil {
		s.storeError(w, err)
		return
	}
	hooks, err := s.cfg.Alerts.Webhooks(ctx)
	if err != nil {
		s.storeError(w, err)
		return
	}
	editRule, editHook := r.URL.Query().Get("rule"), r.URL.Query().Get("webhook")
	for _, ru := range rules {
		sp.Rules = append(sp.Rules, ruleRow{AlertRule: ru, Edit: "/settings?" + url.Values{"rule": {ru.Name}}.Encode() + "#rule-form"})
		if rf == nil && ru.Name == editRule && editRule != "" {
			sp.Rule = ruleForm{Old: ru.Name, Name: ru.Name, Kind: ru.Kind, Domain: ru.Domain, Threshold: fmtNumber(ru.Threshold),
				MinVolume: strconv.FormatInt(ru.MinVolume, 10), Window: windowText(ru.Window)}
		}
	}
	for _, h := range hooks {
		sp.Webhooks = append(sp.Webhooks, webhookRow{Name: h.Name, URL: h.URL, HasSecret: h.Secret != "",
			Edit: "/settings?" + url.Values{"webhook": {h.Name}}.Encode() + "#webhook-form"})
		if wf == nil && h.Name == editHook && editHook != "" {
			sp.Webhook = webhookForm{Old: h.Name, Name: h.Name, URL: h.URL}
		}
	}
	if rf != nil {
		sp.Rule = *rf
	}
	if wf != nil {
		sp.Webhook = *wf
	}
	if sp.Rule.Kind == "" {
		sp.Rule.Kind = string(alert.DMARCFailRate)
	}
	s.render(w, code, "settings", p)
}

// settingsDone redirects to the settings page with a notice.
func settingsDone(w http.ResponseWriter, r *http.Request, what, name string) {
	http.Redirect(w, r, "/settings?"+url.Values{"done": {what}, "name": {name}}.Encode(), http.StatusSeeOther)
}

func (s *server) noAlertStore(w http.ResponseWriter) bool {
	if s.cfg.Alerts == nil {
		http.Error(w, "the alert store is not configured", http.StatusNotFound)
		return true
	}
	return false
}

// parseRule reads the rule form; the error is for the user.
func parseRule(f ruleForm) (store.AlertRule, error) {
	ru := store.AlertRule{Name: f.Name, Kind: f.Kind, Domain: strings.ToLower(f.Domain)}
	var err error
	if f.Name == "" {
		return ru, errors.New("The rule needs a name.")
	}
	if ru.Threshold, err = strconv.ParseFloat(f.Threshold, 64); err != nil || math.IsInf(ru.Threshold, 0) || math.IsNaN(ru.Threshold) {
		return ru, fmt.Errorf("Threshold %q is not a number.", f.Threshold)
	}
	if f.MinVolume == "" {
		f.MinVolume = "0"
	}
	if ru.MinVolume, err = strconv.ParseInt(f.MinVolume, 10, 64); err != nil {
		return ru, fmt.Errorf("Minimum volume %q is not a whole number.", f.MinVolume)
	}
	if ru.Window, err = time.ParseDuration(f.Window); err != nil {
		return ru, fmt.Errorf("Window %q is not a duration: write it as 30m, 24h or 168h.", f.Window)
	}
	if ru.Window%time.Second != 0 {
		return ru, fmt.Errorf("Window %q: whole seconds only.", f.Window)
	}
	if ru.Domain != "" && (strings.ContainsAny(ru.Domain, " \t/@:") || strings.HasPrefix(ru.Domain, ".")) {
		return ru, fmt.Errorf("Domain %q is not a domain name (leave it empty for every domain).", f.Domain)
	}
	if err := alert.Validate(ru); err != nil {
		return ru, fmt.Errorf("%s.", strings.TrimPrefix(err.Error(), "alert: "))
	}
	return ru, nil
}

func (s *server) ruleSave(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	if s.noAlertStore(w) {
		return
	}
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	f := ruleForm{Old: v("old"), Name: v("name"), Kind: v("kind"), Domain: v("domain"), Threshold: v("threshold"),
		MinVolume: v("min_volume"), Window: v("window")}
	ru, err := parseRule(f)
	if err == nil {
		err = s.cfg.Alerts.AlertRulePut(r.Context(), f.Old, ru)
		switch {
		case errors.Is(err, store.ErrDuplicate):
			err = fmt.Errorf("There is a rule named %q already.", ru.Name)
		case errors.Is(err, store.ErrNotFound):
			err = fmt.Errorf("The rule %q is gone (deleted meanwhile?).", f.Old)
		case err != nil:
			s.storeError(w, err)
			return
		}
	}
	if err != nil {
		f.Error = err.Error()
		s.renderSettings(w, r, sess, http.StatusBadRequest, page{Error: f.Error}, &f, nil)
		return
	}
	settingsDone(w, r, "rule-saved", ru.Name)
}

func (s *server) ruleDelete(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	if s.noAlertStore(w) {
		return
	}
	name := r.PostFormValue("name")
	err := s.cfg.Alerts.AlertRuleDelete(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.renderSettings(w, r, sess, http.StatusNotFound, page{Error: fmt.Sprintf("There is no rule named %q.", name)}, nil, nil)
		return
	}
	if err != nil {
		s.storeError(w, err)
		return
	}
	settingsDone(w, r, "rule-deleted", name)
}

func (s *server) webhookSave(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	if s.noAlertStore(w) {
		return
	}
	v := func(k string) string { return strings.TrimSpace(r.PostFormValue(k)) }
	f := webhookForm{Old: v("old"), Name: v("name"), URL: v("url")}
	h := store.Webhook{Name: f.Name, URL: f.URL, Secret: v("secret")}
	check := h
	if check.Secret == "" && f.Old != "" {
		check.Secret = strings.Repeat("x", 16) // the secret held is kept
	}
	err := alert.ValidateWebhook(check)
	if err != nil {
		err = fmt.Errorf("%s.", strings.TrimPrefix(err.Error(), "alert: "))
	} else {
		err = s.cfg.Alerts.WebhookPut(r.Context(), f.Old, h)
		switch {
		case errors.Is(err, store.ErrDuplicate):
			err = fmt.Errorf("There is a webhook named %q already.", h.Name)
		case errors.Is(err, store.ErrNotFound):
			err = fmt.Errorf("The webhook %q is gone (deleted meanwhile?).", f.Old)
		case err != nil:
			s.storeError(w, err)
			return
		}
	}
	if err != nil {
		f.Error = err.Error()
		s.renderSettings(w, r, sess, http.StatusBadRequest, page{Error: f.Error}, nil, &f)
		return
	}
	settingsDone(w, r, "webhook-saved", h.Name)
}

func (s *server) webhookDelete(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	if s.noAlertStore(w) {
		return
	}
	name := r.PostFormValue("name")
	err := s.cfg.Alerts.WebhookDelete(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		s.renderSettings(w, r, sess, http.StatusNotFound, page{Error: fmt.Sprintf("There is no webhook named %q.", name)}, nil, nil)
		return
	}
	if err != nil {
		s.storeError(w, err)
		return
	}
	settingsDone(w, r, "webhook-deleted", name)
}
