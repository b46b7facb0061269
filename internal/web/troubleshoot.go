package web

import (
	"context"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/mxray/mxray/internal/authcheck"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/domain"
	"github.com/mxray/mxray/internal/probe"
	"github.com/mxray/mxray/internal/store"
)

// The DMARC, connection and domain troubleshooters: a page with a form
// and a POST that streams the run (see stream). The runs are POSTs, not
// GETs like the delivery test, because the DMARC form uploads a message;
// all three carry the CSRF token in the form like every POST. Refusals
// come before the stream, as plain text: 400 for bad input, 413 for a
// message over 25 MiB, 429 over the rate limit.

func (s *server) dmarcPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	s.render(w, http.StatusOK, "dmarc", page{Title: "DMARC", Nav: "/troubleshoot/dmarc", User: sess.Admin, CSRF: sess.CSRF,
		MaxMessage: sizeText(authcheck.MaxMessage),
		// Prefilled by the report pages' links from a failing source.
		IP: r.URL.Query().Get("ip"), Helo: r.URL.Query().Get("helo"), MailFrom: r.URL.Query().Get("mail_from")})
}

func (s *server) connectionPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	var svcs []string
	for _, sv := range probe.Services {
		svcs = append(svcs, string(sv))
	}
	s.render(w, http.StatusOK, "connection", page{Title: "Connection", Nav: "/troubleshoot/connection", User: sess.Admin, CSRF: sess.CSRF,
		Target: r.URL.Query().Get("host"), Services: svcs})
}

func (s *server) domainPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	s.render(w, http.StatusOK, "domain", page{Title: "Domain", Nav: "/troubleshoot/domain", User: sess.Admin, CSRF: sess.CSRF,
		Target: r.URL.Query().Get("domain")})
}

func badRequest(w http.ResponseWriter, msg string) {
	http.Error(w, msg, http.StatusBadRequest)
}

// dmarcTarget reads the DMARC form as `mxray auth` reads its flags: ip,
// helo, mail_from (empty for a bounce), and the message pasted in
// "message" or uploaded as "message_file".
func dmarcTarget(r *http.Request) (authcheck.Target, int, string) {
	ip, err := netip.ParseAddr(strings.TrimSpace(r.PostFormValue("ip")))
	if err != nil || ip.Zone() != "" {
		return authcheck.Target{}, http.StatusBadRequest, "IP: give the SMTP client's IP address (IPv4 or IPv6)."
	}
	from := strings.TrimSpace(r.PostFormValue("mail_from"))
	if strings.HasPrefix(from, "<") && strings.HasSuffix(from, ">") {
		from = from[1 : len(from)-1]
	}
	if from != "" {
		i := strings.LastIndexByte(from, '@')
		if i <= 0 || i == len(from)-1 || strings.ContainsAny(from, " \t\r\n") {
			return authcheck.Target{}, http.StatusBadRequest, "MAIL FROM: give LOCAL@DOMAIN, or leave it empty for a bounce."
		}
	}
	helo := strings.TrimSpace(r.PostFormValue("helo"))
	if helo == "" || strings.ContainsAny(helo, " \t\r\n") {
		return authcheck.Target{}, http.StatusBadRequest, "EHLO: give the name the client said in HELO/EHLO."
	}
	t := authcheck.Target{IP: ip, Helo: helo, MailFrom: from, AuthServID: authcheck.DefaultAuthServID}
	msg, code, text := formMessage(r)
	if code != 0 {
		return t, code, text
	}
	t.Message = msg
	return t, 0, ""
}

// formMessage returns the uploaded message, else the pasted one, else
// nil; at most authcheck.MaxMessage bytes.
func formMessage(r *http.Request) ([]byte, int, string) {
	tooLarge := "The message is larger than " + sizeText(authcheck.MaxMessage) + " (" + authcheck.ErrMessageLarge.Error() + ")."
	if r.MultipartForm != nil {
		if fhs := r.MultipartForm.File["message_file"]; len(fhs) > 0 && fhs[0].Size > 0 {
			b, err := readPart(fhs[0])
			switch {
			case errors.Is(err, authcheck.ErrMessageLarge):
				return nil, http.StatusRequestEntityTooLarge, tooLarge
			case err != nil:
				return nil, http.StatusBadRequest, "The uploaded message could not be read: " + err.Error()
			}
			return b, 0, ""
		}
	}
	pasted := r.PostFormValue("message")
	if strings.TrimSpace(pasted) == "" {
		return nil, 0, ""
	}
	if len(pasted) > authcheck.MaxMessage {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	return []byte(pasted), 0, ""
}

func readPart(fh *multipart.FileHeader) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, authcheck.MaxMessage+1))
	if err != nil {
		return nil, err
	}
	if len(b) > authcheck.MaxMessage {
		return nil, authcheck.ErrMessageLarge
	}
	return b, nil
}

// dmarcRun streams `mxray auth`: SPF, DKIM, ARC, DMARC and iprev.
func (s *server) dmarcRun(w http.ResponseWriter, r *http.Request, _ *store.AdminSession) {
	t, code, msg := dmarcTarget(r)
	if code != 0 {
		http.Error(w, msg, code)
		return
	}
	s.stream(w, r, "auth", t.MailFrom+" from "+t.IP.String(), func(ctx context.Context, env diag.Env, sink diag.Sink) any {
		res := authcheck.Run(ctx, env, t, sink)
		s.log.Debug("web: DMARC check", "mail_from", t.MailFrom, "ip", t.IP, "dmarc", res.DMARC.Status)
		return res
	})
}

// probeHelo is the EHLO name of the connection test, as the CLI's
// default: this machine's host name.
func probeHelo() string {
	h, err := os.Hostname()
	if err != nil || h == "" || strings.ContainsAny(h, " \t\r\n<>") {
		return "localhost"
	}
	return h
}

// connectionRun streams `mxray probe HOST --service ...`, without
// credentials: no login is tried from the browser in this version.
func (s *server) connectionRun(w http.ResponseWriter, r *http.Request, _ *store.AdminSession) {
	host := strings.TrimSuffix(strings.TrimSpace(r.PostFormValue("host")), ".")
	ipHost := false
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		host, ipHost = ip.String(), true
		// The dialer's guard would refuse every connection to it anyway;
		// refusing the run up front answers with why, instead of a run
		// whose every step fails.
		if !s.cfg.AllowPrivate && !reachable(ip) {
			http.Error(w, "The web admin does not connect to "+host+" (loopback, private or link-local: server-side request forgery protection). Run mxray probe on the command line.", http.StatusBadRequest)
			return
		}
	}
	if host == "" || (!ipHost && strings.ContainsAny(host, " \t\r\n/@:[]<>")) {
		badRequest(w, "Host: give a host name or an IP address.")
		return
	}
	chosen := r.PostForm["service"]
	if len(chosen) == 0 {
		badRequest(w, "Services: tick at least one.")
		return
	}
	svcs, _, err := probe.ParseServices(strings.Join(chosen, ","))
	if err != nil {
		badRequest(w, "Services: "+err.Error())
		return
	}
	// Every service ticked is the CLI's default "all": a port that
	// refuses only means the service is not offered. Naming some makes
	// them required, as --service does.
	t := probe.Target{Host: host, Services: svcs, Explicit: len(svcs) < len(probe.Services), Helo: probeHelo()}
	s.stream(w, r, "probe", host, func(ctx context.Context, env diag.Env, sink diag.Sink) any {
		res := probe.Run(ctx, env, t, sink)
		s.log.Debug("web: connection test", "host", host, "status", res.Status)
		return res
	})
}

// domainRun streams `mxray domain DOMAIN [--dkim-selector ...]`.
func (s *server) domainRun(w http.ResponseWriter, r *http.Request, _ *store.AdminSession) {
	t, err := domain.ParseTarget(r.PostFormValue("domain"))
	if err != nil {
		badRequest(w, "Domain: give a domain name such as example.com ("+err.Error()+").")
		return
	}
	for _, sel := range strings.FieldsFunc(r.PostFormValue("selectors"), func(c rune) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' }) {
		if strings.ContainsAny(sel, "/@") || strings.HasPrefix(sel, ".") || strings.HasSuffix(sel, ".") {
			badRequest(w, "DKIM selectors: "+sel+" is not a selector (a DNS label, e.g. s1).")
			return
		}
		t.Selectors = append(t.Selectors, strings.ToLower(sel))
	}
	s.stream(w, r, "domain", t.Domain, func(ctx context.Context, env diag.Env, sink diag.Sink) any {
		res := domain.Run(ctx, env, t, sink)
		s.log.Debug("web: domain audit", "domain", t.Domain, "worst", res.Worst)
		return res
	})
}
