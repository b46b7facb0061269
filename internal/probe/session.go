package probe

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/imapc"
	"github.com/mxray/mxray/internal/pop3c"
	"github.com/mxray/mxray/internal/sievec"
	"github.com/mxray/mxray/internal/smtpc"
)

// session is what the probe needs of each protocol's client.
type session interface {
	// greet reads the greeting; ok is false when the server refuses
	// service (SMTP 4yz/5yz, IMAP BYE, POP3 -ERR, ManageSieve NO/BYE).
	greet(ctx context.Context) (text string, ok bool, err error)
	// capa asks for the capabilities (EHLO, CAPABILITY, CAPA; ManageSieve
	// sends them unasked with the greeting and after STARTTLS).
	capa(ctx context.Context) (caps []string, refused string, err error)
	offersStartTLS() bool
	// startTLS asks for TLS and handshakes; refused is the server's
	// answer when it says no (the session stays in cleartext).
	startTLS(ctx context.Context, cfg *tls.Config) (refused string, err error)
	// mechs are the ways to log in the server offers now: SASL
	// mechanisms, and IMAP's LOGIN and POP3's USER commands.
	mechs() []string
	// login authenticates; ok reports success, reply is the server's
	// answer (never the credentials).
	login(ctx context.Context, user, pass string) (mech string, ok bool, reply string, err error)
	quit(ctx context.Context)
	mark() int
	since(int) []string
	tlsState() *tls.ConnectionState
}

// newSession wraps conn (already in TLS for implicit-TLS services).
func newSession(env diag.Env, svc Service, conn net.Conn, host, helo string) session {
	switch svc.Proto() {
	case "smtp":
		return &smtpSession{c: smtpc.New(env, conn, host), helo: helo}
	case "imap":
		c := imapc.New(env, conn, host)
		return &imapSession{c: c}
	case "pop3":
		return &pop3Session{c: pop3c.New(env, conn, host)}
	}
	return &sieveSession{c: sievec.New(env, conn, host)}
}

// LOGIN and USER as mechanisms: the IMAP LOGIN command (RFC 9051
// §6.2.3) and POP3's USER/PASS (RFC 1939 §7), both cleartext passwords.
const (
	mechIMAPLogin = "LOGIN-COMMAND"
	mechPOP3User  = "USER"
)

// cleartext are the mechanisms that send the password itself.
func cleartext(mechs []string) []string {
	var out []string
	for _, m := range mechs {
		switch m {
		case "PLAIN", "LOGIN", mechIMAPLogin, mechPOP3User:
			out = append(out, m)
		}
	}
	return out
}

type smtpSession struct {
	c    *smtpc.Client
	helo string
}

func (s *smtpSession) greet(ctx context.Context) (string, bool, error) {
	r, err := s.c.Greeting(ctx)
	return r.String(), err == nil && r.Code == 220, err
}

func (s *smtpSession) capa(ctx context.Context) ([]string, string, error) {
	r, _, err := s.c.Hello(ctx, s.helo)
	if err != nil {
		return nil, "", err
	}
	if r.Code != 250 {
		return nil, r.String(), nil
	}
	ext, ok := s.c.Extensions()
	if !ok {
		return []string{}, "", nil // HELO: no extensions
	}
	return ext.List(), "", nil
}

func (s *smtpSession) offersStartTLS() bool {
	ext, _ := s.c.Extensions()
	return ext.Has("STARTTLS")
}

func (s *smtpSession) startTLS(ctx context.Context, cfg *tls.Config) (string, error) {
	r, err := s.c.StartTLS(ctx, cfg)
	if err == nil && r.Code != 220 {
		return r.String(), nil
	}
	return "", err
}

func (s *smtpSession) mechs() []string {
	ext, _ := s.c.Extensions()
	return ext.Auth()
}

func (s *smtpSession) login(ctx context.Context, user, pass string) (string, bool, string, error) {
	mech := pickMech(s.mechs(), "PLAIN", "LOGIN")
	if mech == "" {
		return "", false, "", fmt.Errorf("the server offers neither AUTH PLAIN nor AUTH LOGIN (offered: %s)", listOrNone(s.mechs()))
	}
	r, err := s.c.Auth(ctx, mech, user, pass)
	return mech, err == nil && r.Code == 235, r.String(), err
}

func (s *smtpSession) quit(ctx context.Context) {
	s.c.Quit(ctx)
	s.c.Close()
}

func (s *smtpSession) mark() int                      { return s.c.Mark() }
func (s *smtpSession) since(m int) []string           { return s.c.Since(m) }
func (s *smtpSession) tlsState() *tls.ConnectionState { return s.c.TLS() }

type imapSession struct{ c *imapc.Client }

func (s *imapSession) greet(ctx context.Context) (string, bool, error) {
	r, err := s.c.Greeting(ctx)
	return r.String(), err == nil && (r.Status == imapc.OK || r.Status == imapc.PREAUTH), err
}

func (s *imapSession) capa(ctx context.Context) ([]string, string, error) {
	caps, r, err := s.c.Capability(ctx)
	if err != nil {
		return nil, "", err
	}
	if r.Status != imapc.OK {
		return nil, r.String(), nil
	}
	return caps, "", nil
}

func (s *imapSession) offersStartTLS() bool { return s.c.Has("STARTTLS") }

func (s *imapSession) startTLS(ctx context.Context, cfg *tls.Config) (string, error) {
	r, err := s.c.StartTLS(ctx, cfg)
	if err == nil && r.Status != imapc.OK {
		return r.String(), nil
	}
	return "", err
}

func (s *imapSession) mechs() []string {
	m := s.c.AuthMechs()
	if !s.c.Has("LOGINDISABLED") {
		m = append(m, mechIMAPLogin)
	}
	return m
}

func (s *imapSession) login(ctx context.Context, user, pass string) (string, bool, string, error) {
	var r imapc.Response
	var err error
	mech := "AUTHENTICATE PLAIN"
	if slices.Contains(s.c.AuthMechs(), "PLAIN") {
		r, err = s.c.Authenticate(ctx, "PLAIN", user, pass)
	} else {
		mech = "LOGIN"
		r, err = s.c.Login(ctx, user, pass)
	}
	return mech, err == nil && r.Status == imapc.OK, r.String(), err
}

func (s *imapSession) quit(ctx context.Context) { s.c.Logout(ctx) }

func (s *imapSession) mark() int                      { return s.c.Mark() }
func (s *imapSession) since(m int) []string           { return s.c.Since(m) }
func (s *imapSession) tlsState() *tls.ConnectionState { return s.c.TLS() }

type pop3Session struct{ c *pop3c.Client }

func (s *pop3Session) greet(ctx context.Context) (string, bool, error) {
	r, err := s.c.Greeting(ctx)
	return r.String(), err == nil && r.OK, err
}

func (s *pop3Session) capa(ctx context.Context) ([]string, string, error) {
	caps, r, err := s.c.Capa(ctx)
	if err != nil {
		return nil, "", err
	}
	if !r.OK {
		return nil, r.String(), nil
	}
	return caps, "", nil
}

func (s *pop3Session) offersStartTLS() bool { return s.c.Has("STLS") }

func (s *pop3Session) startTLS(ctx context.Context, cfg *tls.Config) (string, error) {
	r, err := s.c.StartTLS(ctx, cfg)
	if err == nil && !r.OK {
		return r.String(), nil
	}
	return "", err
}

func (s *pop3Session) mechs() []string {
	m := s.c.SASL()
	if s.c.Has("USER") {
		m = append(m, mechPOP3User)
	}
	return m
}

func (s *pop3Session) login(ctx context.Context, user, pass string) (string, bool, string, error) {
	if slices.Contains(s.c.SASL(), "PLAIN") {
		r, err := s.c.Auth(ctx, "PLAIN", user, pass)
		return "AUTH PLAIN", err == nil && r.OK, r.String(), err
	}
	r, err := s.c.UserPass(ctx, user, pass)
	return "USER/PASS", err == nil && r.OK, r.String(), err
}

func (s *pop3Session) quit(ctx context.Context) { s.c.Quit(ctx) }

func (s *pop3Session) mark() int                      { return s.c.Mark() }
func (s *pop3Session) since(m int) []string           { return s.c.Since(m) }
func (s *pop3Session) tlsState() *tls.ConnectionState { return s.c.TLS() }

type sieveSession struct{ c *sievec.Client }

func (s *sieveSession) greet(ctx context.Context) (string, bool, error) {
	r, err := s.c.Greeting(ctx)
	return r.String(), err == nil && r.Status == sievec.OK, err
}

// capa reports what the greeting (or the re-greeting after STARTTLS)
// announced: ManageSieve needs no command for it (RFC 5804 §1.7).
func (s *sieveSession) capa(context.Context) ([]string, string, error) {
	if s.c.Caps() == nil {
		return []string{}, "", nil
	}
	return s.c.CapList(), "", nil
}

func (s *sieveSession) offersStartTLS() bool { return s.c.Has("STARTTLS") }

func (s *sieveSession) startTLS(ctx context.Context, cfg *tls.Config) (string, error) {
	r, err := s.c.StartTLS(ctx, cfg)
	if err == nil && r.Status != sievec.OK {
		return r.String(), nil
	}
	return "", err
}

func (s *sieveSession) mechs() []string { return s.c.SASL() }

func (s *sieveSession) login(ctx context.Context, user, pass string) (string, bool, string, error) {
	if !slices.Contains(s.c.SASL(), "PLAIN") {
		return "", false, "", fmt.Errorf("the server does not offer SASL PLAIN (offered: %s)", listOrNone(s.c.SASL()))
	}
	r, err := s.c.Authenticate(ctx, "PLAIN", user, pass)
	return "AUTHENTICATE PLAIN", err == nil && r.Status == sievec.OK, r.String(), err
}

func (s *sieveSession) quit(ctx context.Context) { s.c.Logout(ctx) }

func (s *sieveSession) mark() int                      { return s.c.Mark() }
func (s *sieveSession) since(m int) []string           { return s.c.Since(m) }
func (s *sieveSession) tlsState() *tls.ConnectionState { return s.c.TLS() }

func pickMech(offered []string, prefs ...string) string {
	for _, p := range prefs {
		if slices.Contains(offered, p) {
			return p
		}
	}
	return ""
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, " ")
}
