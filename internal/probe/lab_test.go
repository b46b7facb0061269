package probe

import (
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/imapc"
	"github.com/mxray/mxray/internal/lab"
)

// fromOtherIP forwards connections to target from the source address
// 127.0.0.2. Dovecot treats a client whose address equals its own as
// secure and offers it plaintext logins; through this proxy the lab's
// Dovecot shows what a real remote client sees.
func fromOtherIP(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
				s, err := d.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().String()
}

// world is a lab: Postfix (with SASL through Dovecot and LMTP delivery to
// it, when both run) and Dovecot, reached through the connect map.
type world struct {
	env diag.Env
	ca  *lab.CA
	pf  *lab.Postfix
	dv  *lab.Dovecot
}

type worldOpts struct {
	dovecot *lab.DovecotConfig // nil: no Dovecot
	postfix *lab.PostfixConfig // nil: no Postfix
	sameIP  bool               // connect to Dovecot from 127.0.0.1 directly
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func startWorld(t *testing.T, o worldOpts) *world {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	ca, err := lab.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	if err := lab.LoadScenarios(dns); err != nil {
		t.Fatal(err)
	}
	w := &world{ca: ca}
	cm := dnsx.ConnectMap{465: closedPort(t)}
	if o.dovecot != nil {
		if w.dv, err = lab.StartDovecot(ctx, *o.dovecot); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.dv.Stop() })
		for port, addr := range map[int]string{143: w.dv.IMAP, 993: w.dv.IMAPS, 110: w.dv.POP3, 995: w.dv.POP3S, 4190: w.dv.Sieve} {
			switch {
			case addr == "":
				cm[port] = closedPort(t)
			case o.sameIP:
				cm[port] = addr
			default:
				cm[port] = fromOtherIP(t, addr)
			}
		}
	}
	if o.postfix != nil {
		cfg := *o.postfix
		if w.dv != nil {
			cfg.LMTP, cfg.SASLAuth = w.dv.LMTP, w.dv.Auth
		}
		if w.pf, err = lab.StartPostfix(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.pf.Stop() })
		cm[25] = w.pf.SMTP
		cm[587] = w.pf.Submission
		if w.pf.Submission == "" {
			cm[587] = closedPort(t)
		}
	}
	client := dnsx.New([]string{dns.Addr})
	w.env = diag.Env{
		Resolver: client,
		Dialer:   &dnsx.Dialer{Resolver: client, ConnectMap: cm},
		Roots:    ca.Pool(),
		Limits:   diag.Limits{Connect: 3 * time.Second, Command: 10 * time.Second, DNS: 2 * time.Second, DNSTry: 2},
	}
	return w
}

// certWorld starts a world whose servers have the certificate cert makes
// with the world's CA.
func certWorld(t *testing.T, cert func(ca *lab.CA) *lab.Leaf, dv *lab.DovecotConfig, pf *lab.PostfixConfig, sameIP bool) *world {
	t.Helper()
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert(ca)
	if dv != nil {
		dv.Cert = leaf
	}
	if pf != nil {
		pf.Cert = leaf
	}
	w := startWorld(t, worldOpts{dovecot: dv, postfix: pf, sameIP: sameIP})
	w.ca = ca
	w.env.Roots = ca.Pool()
	return w
}

func issue(names []string, o lab.CertOptions) func(ca *lab.CA) *lab.Leaf {
	return func(ca *lab.CA) *lab.Leaf {
		if o.Now.IsZero() {
			o.Now = time.Now()
		}
		l, err := ca.Issue(names, o)
		if err != nil {
			panic(err)
		}
		return l
	}
}

func find(t *testing.T, res Result, svc Service) ServiceResult {
	t.Helper()
	for _, s := range res.Services {
		if s.Service == svc {
			return s
		}
	}
	t.Fatalf("no result for %s", svc)
	return ServiceResult{}
}

func step(t *testing.T, s ServiceResult, id string) diag.Step {
	t.Helper()
	for _, st := range s.Steps {
		if st.ID == string(s.Service)+"."+id {
			return st
		}
	}
	t.Fatalf("%s: no step %s; have %v", s.Service, id, stepIDs(s.Steps))
	return diag.Step{}
}

func stepIDs(steps []diag.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.ID+"="+string(s.Status))
	}
	return out
}

func want(t *testing.T, s ServiceResult, id string, status diag.Status, title string) diag.Step {
	t.Helper()
	st := step(t, s, id)
	if st.Status != status || !strings.Contains(st.Title, title) {
		t.Errorf("%s: status %s, title %q; want %s and %q\n%s\n%s", st.ID, st.Status, st.Title, status, title, st.Detail, strings.Join(st.Transcript, "\n"))
	}
	return st
}

func probeAll(t *testing.T, w *world, host string, svcs []Service, explicit bool, user, pass string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return Run(ctx, w.env, Target{Host: host, Services: svcs, Explicit: explicit, User: user, Password: pass, Helo: "probe.mxray.test"}, diag.Discard)
}

const alice, alicePW = "alice@example.test", "alice-password"

// TestGoodSetup: real Postfix (SASL through Dovecot) and Dovecot with a
// lab CA certificate for the name probed, seen from another address.
func TestGoodSetup(t *testing.T) {
	w := certWorld(t, issue([]string{"mx1.example.test"}, lab.CertOptions{}),
		&lab.DovecotConfig{}, &lab.PostfixConfig{}, false)

	res := probeAll(t, w, "mx1.example.test", Services, false, alice, alicePW)
	if res.Unchecked != "" || strings.Join(res.Addresses, ",") != "127.0.0.1" {
		t.Fatalf("unchecked %q, addresses %v", res.Unchecked, res.Addresses)
	}
	for _, svc := range []Service{Submission, IMAP, IMAPS, POP3, POP3S, Sieve} {
		s := find(t, res, svc)
		want(t, s, StepCertificate, diag.OK, "certificate valid for mx1.example.test, trusted")
		want(t, s, StepLogin, diag.OK, "logged in as alice@example.test")
		if s.Matrix.Login != (Cell{diag.OK, "ok"}) || s.Matrix.Connect != (Cell{diag.OK, "ok"}) {
			t.Errorf("%s matrix %+v", svc, s.Matrix)
		}
		for _, l := range s.Steps {
			if strings.Contains(strings.Join(l.Transcript, "\n")+l.Detail+l.Title, alicePW) {
				t.Errorf("%s: the password is in step %s", svc, l.ID)
			}
		}
	}
	// From another address Dovecot announces LOGINDISABLED and no SASL
	// before STARTTLS: no plaintext finding.
	for _, svc := range []Service{IMAP, POP3, Sieve} {
		s := find(t, res, svc)
		want(t, s, StepAuth, diag.OK, "login mechanisms: PLAIN LOGIN")
		if len(s.AuthBeforeTLS) != 0 {
			t.Errorf("%s: auth before TLS %v", svc, s.AuthBeforeTLS)
		}
	}
	imap := find(t, res, IMAP)
	if !strings.Contains(strings.Join(imap.Capabilities, " "), "LOGINDISABLED") {
		t.Errorf("imap capabilities before TLS: %v", imap.Capabilities)
	}
	want(t, imap, StepTLS, diag.OK, "TLS: TLS 1.3")
	v := want(t, imap, StepVersions, diag.OK, "accepts TLS 1.2 TLS 1.3")
	if !strings.Contains(v.Detail, "SSL 3.0: not tested") {
		t.Errorf("versions detail does not say SSL 3.0 is untested:\n%s", v.Detail)
	}
	smtp := find(t, res, SMTP)
	want(t, smtp, StepRelay, diag.OK, "not an open relay: 554 5.7.1")
	want(t, smtp, StepAuth, diag.Info, "no AUTH offered")
	if smtp.Relay == nil || smtp.Relay.Open {
		t.Errorf("relay %+v", smtp.Relay)
	}
	sub := find(t, res, Submission)
	want(t, sub, StepLogin, diag.OK, "(PLAIN): 235 2.7.0 Authentication successful")
	// Submission with smtpd_tls_security_level = encrypt announces AUTH
	// only after STARTTLS.
	if len(sub.AuthBeforeTLS) != 0 {
		t.Errorf("submission auth before TLS: %v", sub.AuthBeforeTLS)
	}
	s465 := find(t, res, Submissions)
	want(t, s465, StepConnect, diag.Info, "not offered (connection refused on port 465)")
	if len(s465.Steps) != 1 {
		t.Errorf("submissions went on after a refused connection: %v", stepIDs(s465.Steps))
	}
	// Steps come in a stable order: services in the order of Services.
	var order []string
	for _, st := range res.Steps {
		name, _, _ := strings.Cut(st.ID, ".")
		if len(order) == 0 || order[len(order)-1] != name {
			order = append(order, name)
		}
	}
	if strings.Join(order, ",") != "address,smtp,submission,submissions,imap,imaps,pop3,pop3s,sieve" {
		t.Errorf("step order %v", order)
	}

	t.Run("wrong password", func(t *testing.T) {
		res := probeAll(t, w, "mx1.example.test", []Service{Submission, IMAPS, POP3, Sieve}, true, alice, "not-the-password")
		for _, s := range res.Services {
			st := want(t, s, StepLogin, diag.Fail, "refused")
			if s.Login == nil || s.Login.OK || s.Login.Reply == "" {
				t.Errorf("%s login %+v", s.Service, s.Login)
			}
			if strings.Contains(strings.Join(st.Transcript, "\n"), "not-the-password") {
				t.Errorf("%s: password in the transcript", s.Service)
			}
		}
		if got := find(t, res, IMAPS).Login.Reply; !strings.Contains(got, "NO [AUTHENTICATIONFAILED] Authentication failed.") {
			t.Errorf("imaps reply %q", got)
		}
		if got := find(t, res, Submission).Login.Reply; !strings.HasPrefix(got, "535 5.7.8") {
			t.Errorf("submission reply %q", got)
		}
		if res.Status != diag.Fail {
			t.Errorf("status %s", res.Status)
		}
	})
	t.Run("wrong name", func(t *testing.T) {
		res := probeAll(t, w, "mail.probe.test", []Service{SMTP, IMAPS}, true, "", "")
		st := want(t, find(t, res, IMAPS), StepCertificate, diag.Fail, "certificate problem: wrong-name")
		if !strings.Contains(st.Detail, "not valid for mail.probe.test; it names mx1.example.test") {
			t.Errorf("detail:\n%s", st.Detail)
		}
		// Port 25 is opportunistic: a warning.
		want(t, find(t, res, SMTP), StepCertificate, diag.Warn, "wrong-name")
		want(t, find(t, res, IMAPS), StepLogin, diag.Skip, "no --user")
	})
	t.Run("closed port named explicitly", func(t *testing.T) {
		res := probeAll(t, w, "mx1.example.test", []Service{Submissions}, true, "", "")
		s := find(t, res, Submissions)
		want(t, s, StepConnect, diag.Fail, "connection refused on port 465")
		if s.Matrix.Connect != (Cell{diag.Fail, "refused"}) || res.Unchecked != "" {
			t.Errorf("matrix %+v, unchecked %q", s.Matrix.Connect, res.Unchecked)
		}
	})
	t.Run("nothing answers", func(t *testing.T) {
		env := w.env
		env.Dialer = &dnsx.Dialer{Resolver: env.Resolver, ConnectMap: dnsx.ConnectMap{}}
		for _, p := range Services {
			env.Dialer.ConnectMap[p.Port()] = closedPort(t)
		}
		res := Run(context.Background(), env, Target{Host: "mx1.example.test", Services: Services, Helo: "x.test"}, diag.Discard)
		if res.Unchecked == "" {
			t.Error("no service answered, yet the probe claims to have checked")
		}
	})
	t.Run("no such host", func(t *testing.T) {
		res := probeAll(t, w, "nope.example.test", Services, false, "", "")
		if !res.NotFound || res.Status != diag.Fail || len(res.Services) != 0 {
			t.Errorf("not found %v, status %s", res.NotFound, res.Status)
		}
	})
	t.Run("roundtrip", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		rt := RoundTripTarget{Submission: "mx1.example.test", IMAP: "mx1.example.test", User: alice, Password: alicePW,
			From: alice, To: alice, Wait: 30 * time.Second, Helo: "probe.mxray.test", Token: "labtoken1"}
		res := RoundTrip(ctx, w.env, rt, diag.Discard)
		if res.Verdict != Delivered || !res.Expunged || res.Headers == nil || len(res.Headers.Received) < 2 {
			t.Fatalf("verdict %s (%s), expunged %v, headers %+v\n%v", res.Verdict, res.Reason, res.Expunged, res.Headers, stepIDs(res.Steps))
		}
		if !strings.Contains(res.Headers.Received[1], "with ESMTPSA") || !strings.Contains(res.Headers.Received[0], "with LMTP") {
			t.Errorf("Received chain %q", res.Headers.Received)
		}
		if !strings.HasPrefix(res.QueueReply, "250 2.0.0 Ok: queued as") || res.MessageID != "<mxray-roundtrip-labtoken1@example.test>" {
			t.Errorf("queue reply %q, message id %q", res.QueueReply, res.MessageID)
		}
		for _, st := range res.Steps {
			if strings.Contains(strings.Join(st.Transcript, "\n"), alicePW) {
				t.Errorf("the password is in step %s", st.ID)
			}
		}
		// Deleted: a second search finds nothing.
		c := connectIMAP(t, w.env)
		if uids, _, err := c.SearchHeader(ctx, RoundTripHeader, "labtoken1"); err != nil || len(uids) != 0 {
			t.Errorf("after the round trip: %v %v", uids, err)
		}

		rt.Password, rt.Token = "wrong", "labtoken2"
		if res := RoundTrip(ctx, w.env, rt, diag.Discard); res.Verdict != Refused || !strings.Contains(res.Reason, "IMAP: login refused") {
			t.Errorf("wrong password: %s %q", res.Verdict, res.Reason)
		}
		rt.Password = alicePW
		env := w.env
		env.Roots = nil // the lab CA is not trusted: no password is sent
		res = RoundTrip(ctx, env, rt, diag.Discard)
		if res.Verdict != Refused || len(res.Steps) != 1 || !strings.Contains(res.Steps[0].Hint, "--tls-ca") {
			t.Errorf("untrusted CA: %s %q %v", res.Verdict, res.Reason, stepIDs(res.Steps))
		}
		rt.To = "nobody@example.test"
		if res := RoundTrip(ctx, w.env, rt, diag.Discard); res.Verdict != Refused || !strings.Contains(res.Reason, "recipient refused: 550 5.1.1") {
			t.Errorf("unknown recipient: %s %q", res.Verdict, res.Reason)
		}
	})
}

func connectIMAP(t *testing.T, env diag.Env) *imapc.Client {
	t.Helper()
	ctx := context.Background()
	r := &rt{env: env, t: RoundTripTarget{User: alice, Password: alicePW, Mailbox: "INBOX"}, sink: diag.Discard, res: &RoundTripResult{}}
	c := r.imapOpen(ctx, "mx1.example.test", 993)
	if c == nil || r.imapLogin(ctx, c) == nil {
		t.Fatalf("IMAP: %s", r.res.Reason)
	}
	t.Cleanup(func() { c.Logout(ctx) })
	return c
}

func TestExpiredCertificate(t *testing.T) {
	now := time.Now()
	w := certWorld(t, issue([]string{"mx1.example.test"}, lab.CertOptions{NotBefore: now.Add(-400 * 24 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}),
		&lab.DovecotConfig{}, nil, false)
	res := probeAll(t, w, "mx1.example.test", []Service{IMAP, IMAPS, POP3S}, true, alice, alicePW)
	for _, s := range res.Services {
		st := want(t, s, StepCertificate, diag.Fail, "certificate problem: expired")
		if s.Matrix.Cert != (Cell{diag.Fail, "expired"}) || !strings.Contains(st.Detail, "The certificate has expired.") {
			t.Errorf("%s: matrix %+v, detail %q", s.Service, s.Matrix.Cert, st.Detail)
		}
		// The probe still logs in (the user asked), and reports both.
		want(t, s, StepLogin, diag.OK, "logged in")
	}
}

func TestNoTLS(t *testing.T) {
	w := startWorld(t, worldOpts{dovecot: &lab.DovecotConfig{}, postfix: &lab.PostfixConfig{}})
	res := probeAll(t, w, "mx1.example.test", []Service{SMTP, Submission, IMAP, IMAPS, POP3, Sieve}, true, alice, alicePW)
	want(t, find(t, res, SMTP), StepTLS, diag.Warn, "STARTTLS not offered")
	for _, svc := range []Service{Submission, IMAP, POP3, Sieve} {
		s := find(t, res, svc)
		want(t, s, StepTLS, diag.Fail, "not offered: everything travels in cleartext")
		want(t, s, StepLogin, diag.Warn, "login not tried: no TLS session")
		if s.Matrix.TLS != (Cell{diag.Fail, "none"}) {
			t.Errorf("%s: TLS cell %+v", svc, s.Matrix.TLS)
		}
	}
	want(t, find(t, res, IMAP), StepAuth, diag.Warn, "password login only in cleartext")
	// Without a certificate Dovecot has no port 993: refused, and named.
	want(t, find(t, res, IMAPS), StepConnect, diag.Fail, "connection refused on port 993")
	// Not one password line left mxray.
	for _, s := range res.Services {
		for _, st := range s.Steps {
			for _, l := range st.Transcript {
				if strings.Contains(l, "LOGIN") && strings.HasPrefix(l, "C:") || strings.Contains(l, "AUTH") && strings.HasPrefix(l, "C:") {
					t.Errorf("%s sent %q in cleartext", s.Service, l)
				}
			}
		}
	}
}

// TestPlaintextBeforeTLS: Dovecot with disable_plaintext_auth = no offers
// LOGIN and SASL PLAIN before STARTTLS; seen from another address.
func TestPlaintextBeforeTLS(t *testing.T) {
	w := certWorld(t, issue([]string{"mx1.example.test"}, lab.CertOptions{}), &lab.DovecotConfig{PlaintextAuth: true}, nil, false)
	res := probeAll(t, w, "mx1.example.test", []Service{IMAP, POP3, Sieve}, true, "", "")
	for _, svc := range []Service{IMAP, POP3, Sieve} {
		s := find(t, res, svc)
		st := want(t, s, StepAuth, diag.Warn, "password login offered before TLS")
		if len(s.AuthBeforeTLS) == 0 || s.Matrix.Auth.Status != diag.Warn || !strings.Contains(st.Hint, "disable_plaintext_auth") {
			t.Errorf("%s: before TLS %v, cell %+v, hint %q", svc, s.AuthBeforeTLS, s.Matrix.Auth, st.Hint)
		}
	}
	if got := find(t, res, IMAP).AuthBeforeTLS; strings.Join(got, " ") != "PLAIN LOGIN LOGIN-COMMAND" {
		t.Errorf("imap before TLS: %v", got)
	}

	// The same server from its own address: the caveat is explained.
	w2 := &world{env: w.env}
	w2.env.Dialer = &dnsx.Dialer{Resolver: w.env.Resolver, ConnectMap: dnsx.ConnectMap{143: w.dv.IMAP}}
	res = probeAll(t, w2, "mx1.example.test", []Service{IMAP}, true, "", "")
	if st := step(t, find(t, res, IMAP), StepAuth); !strings.Contains(st.Detail, "from the server's own address") {
		t.Errorf("same-address caveat missing:\n%s", st.Detail)
	}
}

func TestParseServices(t *testing.T) {
	got, explicit, err := ParseServices("imaps, smtp,IMAPS")
	if err != nil || !explicit || strings.Join(Strings(got), ",") != "smtp,imaps" {
		t.Errorf("%v %v %v", got, explicit, err)
	}
	if got, explicit, err := ParseServices("all"); err != nil || explicit || len(got) != 8 {
		t.Errorf("all: %v %v %v", got, explicit, err)
	}
	for _, bad := range []string{"", "imap4", ","} {
		if _, _, err := ParseServices(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, s := range Services {
		if s.Port() == 0 || strconv.Itoa(s.Port()) == "" {
			t.Errorf("%s has no port", s)
		}
	}
}
