package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/probe/wire"
	"github.com/mxray/mxray/internal/smtpc"
	"github.com/mxray/mxray/internal/tlsinfo"
)

// minDaysLeft is when an approaching expiry becomes a warning: ACME
// clients renew 30 days ahead, so under two weeks means renewal is broken.
const minDaysLeft = 14

// The open-relay check's addresses: both in RFC 2606's reserved .invalid
// domain, so that nothing could ever be delivered even by a broken server
// (and the check never sends DATA).
const (
	RelayFrom = "relay-test@mxray.invalid"
	RelayTo   = "probe@example.invalid"
)

// svc is one service's probe in progress.
type svc struct {
	env  diag.Env
	t    Target
	svc  Service
	port int
	out  *collect
	res  *ServiceResult
	s    session
	ip   string
	ap   netip.AddrPort

	implicit   *tls.ConnectionState // the handshake of an implicit-TLS service
	sameIP     bool                 // the connection comes from the server's own address
	tlsUp      bool
	mechsClear []string // login mechanisms offered before STARTTLS
}

func probeService(ctx context.Context, env diag.Env, t Target, service Service, addrs []netip.Addr) ServiceResult {
	p := &svc{env: env, t: t, svc: service, port: service.Port(), out: &collect{},
		res: &ServiceResult{Service: service}}
	if t.Port > 0 {
		p.port = t.Port
	}
	p.res.Port = p.port
	p.res.AuthMechanisms = []string{}
	skip := Cell{Status: diag.Skip, Text: "-"}
	p.res.Matrix = Matrix{Connect: skip, TLS: skip, Cert: skip, Auth: skip, Login: skip}
	p.run(ctx, addrs)
	p.res.Steps = p.out.steps
	p.res.Status = diag.Worst(p.res.Steps)
	return *p.res
}

// begin starts a step; the returned func finishes it with the transcript
// lines said meanwhile, the host and the IP.
func (p *svc) begin(id, title string) func(diag.Step) diag.Step {
	tr := diag.Begin(p.env, p.out, string(p.svc)+"."+id, string(p.svc)+": "+title)
	mark := -1
	if p.s != nil {
		mark = p.s.mark()
	}
	return func(st diag.Step) diag.Step {
		st.Host, st.IP = p.t.Host, p.ip
		if st.Title != "" {
			st.Title = string(p.svc) + ": " + st.Title
		}
		if p.s != nil {
			st.Transcript = p.s.since(max(mark, 0))
		}
		return tr.Done(st)
	}
}

func (p *svc) run(ctx context.Context, addrs []netip.Addr) {
	conn, ok := p.connect(ctx, addrs)
	if !ok {
		return
	}
	defer conn.Close()
	if p.svc.ImplicitTLS() {
		tc, ok := p.implicitTLS(ctx, conn)
		if !ok {
			return
		}
		conn = tc
	}
	p.s = newSession(p.env, p.svc, conn, p.t.Host, p.t.Helo)
	defer func() { p.s.quit(ctx) }()
	if !p.greeting(ctx) || !p.capabilities(ctx) {
		return
	}
	if !p.svc.ImplicitTLS() && !p.startTLS(ctx) {
		return
	}
	if p.tlsUp {
		p.certificate()
		p.versions(ctx)
	}
	p.auth()
	p.login(ctx)
	if p.svc == SMTP {
		p.relay(ctx)
	}
}

// dial connects to the first address that answers.
func (p *svc) dial(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if p.env.Dialer == nil {
		return nil, errors.New("probe: no dialer in env")
	}
	d := p.env.Limits.Connect
	if d <= 0 {
		d = diag.DefaultLimits.Connect
	}
	dctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, d))
	defer cancel()
	return p.env.Dialer.DialAddr(dctx, ap)
}

func (p *svc) connect(ctx context.Context, addrs []netip.Addr) (net.Conn, bool) {
	done := p.begin(StepConnect, fmt.Sprintf("connect to port %d", p.port))
	var errs []string
	var last error
	for _, a := range addrs {
		ap := netip.AddrPortFrom(a, uint16(p.port))
		p.ip = a.String()
		conn, err := p.dial(ctx, ap)
		if err == nil {
			p.ap = ap
			p.res.Address, p.res.ConnectedTo = ap.String(), conn.RemoteAddr().String()
			p.sameIP = sameHost(conn.LocalAddr(), conn.RemoteAddr())
			p.res.Matrix.Connect = Cell{diag.OK, "ok"}
			data := map[string]any{"address": ap.String(), "connected_to": p.res.ConnectedTo}
			if len(errs) > 0 {
				data["failed"] = errs
			}
			done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("connected to %s", ap), Data: data})
			return conn, true
		}
		last = err
		errs = append(errs, fmt.Sprintf("%s: %v", ap, err))
		if ctx.Err() != nil {
			break
		}
	}
	p.res.Error = last.Error()
	st := diag.Step{Status: diag.Fail, Data: map[string]any{"errors": errs}}
	if len(addrs) > 0 {
		p.res.Address = netip.AddrPortFrom(addrs[len(addrs)-1], uint16(p.port)).String()
	}
	word := "error"
	port := p.port
	switch {
	case errors.Is(last, dnsx.ErrConnRefused):
		word = "refused"
		st.Title = fmt.Sprintf("connection refused on port %d", port)
		st.Detail = fmt.Sprintf("%s refused the connection to port %d: nothing listens there, or a firewall rejects it.", p.t.Host, port)
		st.Hint = fmt.Sprintf("If the server should offer %s, check that the daemon listens on port %d (ss -ltn 'sport = :%d') and that the firewall lets TCP %d in.", p.svc, port, port, port)
		if !p.t.Explicit {
			// Not every server offers every service: with --service all
			// a closed port only means "not offered".
			st.Status = diag.Info
			st.Title = fmt.Sprintf("not offered (connection refused on port %d)", port)
		}
	case errors.Is(last, dnsx.ErrConnTimeout):
		word = "timeout"
		st.Title = fmt.Sprintf("no answer on port %d (timeout)", port)
		st.Detail = fmt.Sprintf("No answer from %s port %d: a firewall drops the packets, or the host is down.", p.t.Host, port)
		if p.svc == SMTP {
			st.Detail += "\nMany ISPs, hosting providers and clouds (AWS, Google Cloud, Azure, most home connections) block OUTGOING port 25, which looks exactly like this."
			st.Hint = "Run the probe from a machine that may send mail; if port 25 also times out there, check the server's firewall."
		} else {
			st.Hint = fmt.Sprintf("Check the server's firewall for TCP %d, and any firewall on this side.", port)
		}
		if !p.t.Explicit {
			st.Status = diag.Warn
		}
	case errors.Is(last, dnsx.ErrHostUnreachable):
		word = "unreachable"
		st.Title = "host unreachable"
		st.Detail = fmt.Sprintf("No route to %s from here (with IPv6 addresses, a missing IPv6 connectivity on this machine is the usual cause).", p.t.Host)
		if !p.t.Explicit {
			st.Status = diag.Warn
		}
	default:
		st.Title = "connection failed"
		st.Detail = last.Error()
	}
	p.res.Matrix.Connect = Cell{st.Status, word}
	done(st)
	return nil, false
}

// tlsConfig is how the probe handshakes: like a client that will judge
// the certificate afterwards (so that every problem is reported, not
// only the first), accepting any version Go can speak so that an old
// server is shown rather than failed.
func (p *svc) tlsConfig() *tls.Config {
	cfg := &tls.Config{InsecureSkipVerify: true, RootCAs: p.env.Roots, MinVersion: tls.VersionTLS10}
	if _, err := netip.ParseAddr(p.t.Host); err != nil {
		cfg.ServerName = p.t.Host
	}
	return cfg
}

func (p *svc) commandLimit(ctx context.Context) time.Duration {
	d := p.env.Limits.Command
	if d <= 0 {
		d = diag.DefaultLimits.Command
	}
	return diag.Fit(ctx, d)
}

func (p *svc) implicitTLS(ctx context.Context, conn net.Conn) (net.Conn, bool) {
	done := p.begin(StepTLS, "TLS handshake (implicit TLS)")
	hctx, cancel := context.WithTimeout(ctx, p.commandLimit(ctx))
	defer cancel()
	tc := tls.Client(conn, p.tlsConfig())
	if err := tc.HandshakeContext(hctx); err != nil {
		p.res.Error = err.Error()
		p.res.Matrix.TLS = Cell{diag.Fail, "failed"}
		done(diag.Step{Status: diag.Fail, Title: "TLS handshake failed",
			Detail: wire.Classify(hctx, err).Error() + "\nPort " + fmt.Sprint(p.port) + " expects TLS from the first byte (RFC 8314 §3); a server speaking cleartext here, or a broken TLS setup, fails like this.",
			Hint:   "Check the server's certificate and key files and its TLS protocol settings.", RFC: "RFC 8314 §3"})
		return nil, false
	}
	st := tc.ConnectionState()
	p.implicit = &st
	p.tlsUp = true
	p.res.TLS = p.inspect(st)
	done(p.tlsStep(st))
	return tc, true
}

func (p *svc) inspect(st tls.ConnectionState) *tlsinfo.Info {
	info := tlsinfo.Inspect(st, p.t.Host, p.env.Roots, p.env.Clock())
	return &info
}

// tlsStep judges the negotiated version.
func (p *svc) tlsStep(st tls.ConnectionState) diag.Step {
	info := p.res.TLS
	step := diag.Step{Status: diag.OK, Title: fmt.Sprintf("TLS: %s, %s", info.Version, info.CipherSuite),
		Data: map[string]any{"version": info.Version, "cipher_suite": info.CipherSuite}}
	if p.svc.ImplicitTLS() {
		step.RFC = "RFC 8314 §3"
	} else {
		step.RFC = map[string]string{"smtp": "RFC 3207", "imap": "RFC 9051 §6.2.1", "pop3": "RFC 2595 §4", "sieve": "RFC 5804 §2.2"}[p.svc.Proto()]
	}
	p.res.Matrix.TLS = Cell{diag.OK, info.Version}
	if st.Version < tls.VersionTLS12 {
		step.Status = diag.Warn
		step.Detail = info.Version + " is deprecated (RFC 8996): current clients refuse it."
		step.Hint = "Enable TLS 1.2 and 1.3 on the server."
		p.res.Matrix.TLS.Status = diag.Warn
	}
	return step
}

func (p *svc) greeting(ctx context.Context) bool {
	done := p.begin(StepGreeting, "greeting")
	text, ok, err := p.s.greet(ctx)
	p.res.Greeting = text
	if err != nil {
		p.res.Error = err.Error()
		done(diag.Step{Status: diag.Fail, Title: "no greeting", Detail: explainErr(err, p.svc)})
		return false
	}
	if !ok {
		done(diag.Step{Status: diag.Fail, Title: "greeting refuses service: " + text,
			Detail: "The server answers but will not serve this client now (overload, a blocklisted address, or a rate limit)."})
		return false
	}
	done(diag.Step{Status: diag.OK, Title: "greeting: " + text, Data: map[string]string{"greeting": text}})
	return true
}

func explainErr(err error, s Service) string {
	switch {
	case errors.Is(err, wire.ErrTimeout) || errors.Is(err, smtpc.ErrTimeout):
		return err.Error() + "\nThe server accepted the connection but did not answer in time."
	case errors.Is(err, wire.ErrClosed) || errors.Is(err, smtpc.ErrClosed):
		return err.Error() + "\nThe server hung up without answering."
	case errors.Is(err, wire.ErrProtocol) || errors.Is(err, smtpc.ErrProtocol):
		return err.Error() + fmt.Sprintf("\nIs a %s server listening on this port?", strings.ToUpper(s.Proto()))
	}
	return err.Error()
}

func (p *svc) capabilities(ctx context.Context) bool {
	title := map[string]string{"smtp": "EHLO " + p.t.Helo, "imap": "CAPABILITY", "pop3": "CAPA", "sieve": "capabilities"}[p.svc.Proto()]
	done := p.begin(StepCapabilities, title)
	caps, refused, err := p.s.capa(ctx)
	if err != nil {
		p.res.Error = err.Error()
		done(diag.Step{Status: diag.Fail, Title: title + " failed", Detail: explainErr(err, p.svc)})
		return false
	}
	if p.svc.ImplicitTLS() {
		p.res.CapabilitiesTLS = caps
	} else {
		p.res.Capabilities = caps
		p.mechsClear = p.s.mechs()
	}
	if refused != "" {
		st := diag.Step{Status: diag.Warn, Title: title + " refused: " + refused}
		if p.svc.Proto() == "smtp" {
			st.Status = diag.Fail
			st.Hint = "Give --helo this machine's fully qualified name (the one its reverse DNS shows)."
		}
		done(st)
		return st.Status != diag.Fail
	}
	done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("%d capabilities", len(caps)), Detail: strings.Join(caps, ", "),
		Data: map[string]any{"capabilities": caps}})
	return true
}

// startTLS upgrades a STARTTLS service; false ends the probe of the
// service (a failed handshake leaves the connection unusable).
func (p *svc) startTLS(ctx context.Context) bool {
	verb := map[string]string{"smtp": "STARTTLS", "imap": "STARTTLS", "pop3": "STLS", "sieve": "STARTTLS"}[p.svc.Proto()]
	done := p.begin(StepTLS, verb)
	bad := diag.Fail
	if !p.svc.clientFacing() {
		bad = diag.Warn
	}
	if !p.s.offersStartTLS() {
		p.res.Matrix.TLS = Cell{bad, "none"}
		st := diag.Step{Status: bad, Title: verb + " not offered: everything travels in cleartext"}
		if p.svc.clientFacing() {
			st.Detail = "Without TLS, passwords and mail can be read and altered on the way; current clients refuse to log in, or worse, do it in cleartext."
			st.Hint = "Give the server a certificate and enable TLS (Dovecot: ssl = required, ssl_cert, ssl_key; Postfix submission: smtpd_tls_security_level = encrypt)."
			st.RFC = "RFC 8314 §3"
		} else {
			st.Detail = "Senders deliver to this server unencrypted, readable and alterable on the way."
			st.Hint = "Give the MTA a certificate and enable STARTTLS (Postfix: smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level = may)."
			st.RFC = "RFC 3207; RFC 7435"
		}
		done(st)
		return true
	}
	refused, err := p.s.startTLS(ctx, p.tlsConfig())
	if err != nil {
		p.res.Error = err.Error()
		p.res.Matrix.TLS = Cell{diag.Fail, "failed"}
		done(diag.Step{Status: diag.Fail, Title: verb + " failed", Detail: explainErr(err, p.svc),
			Hint: "Check the server's certificate and key files and its TLS protocol settings."})
		return false
	}
	if refused != "" {
		p.res.Matrix.TLS = Cell{bad, "refused"}
		done(diag.Step{Status: bad, Title: verb + " refused: " + refused,
			Detail: "The server announced TLS but refused it.", Hint: "Check the server's TLS configuration and its log."})
		return true
	}
	st := *p.s.tlsState()
	p.tlsUp = true
	p.res.TLS = p.inspect(st)
	step := p.tlsStep(st)
	// RFC 3207 §4.2, RFC 9051 §6.2.1, RFC 2595 §4: what was learnt before
	// TLS is forgotten; ask again.
	caps, _, err := p.s.capa(ctx)
	if err != nil {
		p.res.Error = err.Error()
		step.Status, step.Detail = diag.Fail, "after the handshake: "+explainErr(err, p.svc)
		p.res.Matrix.TLS.Status = diag.Fail
		done(step)
		return false
	}
	p.res.CapabilitiesTLS = caps
	step.Data.(map[string]any)["capabilities"] = caps
	done(step)
	return true
}

func (p *svc) certificate() {
	done := p.begin(StepCertificate, "certificate")
	info := p.res.TLS
	v := info.Verification
	st := diag.Step{Status: diag.OK, Data: info}
	bad := diag.Fail
	if !p.svc.clientFacing() {
		bad = diag.Warn
		st.RFC = "RFC 7435; RFC 3207 §4.1"
	} else {
		st.RFC = "RFC 8314 §4.1; RFC 6125 §6"
	}
	var lines []string
	days := 0
	if len(info.Chain) > 0 {
		l := info.Chain[0]
		days = l.DaysLeft
		lines = append(lines,
			fmt.Sprintf("subject %s, issued by %s", l.Subject, l.Issuer),
			fmt.Sprintf("names: %s", strings.Join(append(append([]string(nil), l.DNSNames...), l.IPAddresses...), ", ")),
			fmt.Sprintf("valid %s to %s (%d days left), %s %d-bit key, %s",
				l.NotBefore.Format("2006-01-02"), l.NotAfter.Format("2006-01-02"), l.DaysLeft, l.KeyType, l.KeyBits, l.SignatureAlgorithm))
	}
	switch {
	case v.Status == tlsinfo.OK && days < minDaysLeft:
		st.Status = diag.Warn
		st.Title = fmt.Sprintf("certificate valid for %s but expires in %d days", v.Host, days)
		st.Hint = "Renew it now; check that automatic renewal (certbot/acme) runs and reloads the server."
		p.res.Matrix.Cert = Cell{diag.Warn, fmt.Sprintf("%dd left", days)}
	case v.Status == tlsinfo.OK:
		st.Title = fmt.Sprintf("certificate valid for %s, trusted, %d days left", v.Host, days)
		p.res.Matrix.Cert = Cell{diag.OK, fmt.Sprintf("ok, %dd", days)}
	default:
		st.Status = bad
		var words []string
		for _, pr := range v.Problems {
			words = append(words, string(pr))
		}
		st.Title = "certificate problem: " + strings.Join(words, ", ")
		for _, pr := range v.Problems {
			lines = append(lines, certExplain(pr, v))
		}
		lines = append(lines, v.Errors...)
		st.Hint = "Install a certificate from a public CA (Let's Encrypt) for " + v.Host + ", with its intermediate chain."
		if p.svc.clientFacing() {
			lines = append(lines, "Mail clients refuse this certificate or make their users click through a warning.")
		} else {
			lines = append(lines, "Senders without DANE or MTA-STS deliver anyway (opportunistic TLS); those with them refuse.")
		}
		p.res.Matrix.Cert = Cell{bad, words[0]}
	}
	st.Detail = strings.Join(lines, "\n")
	done(st)
}

func certExplain(p tlsinfo.Problem, v tlsinfo.Verification) string {
	switch p {
	case tlsinfo.Expired:
		return "The certificate has expired."
	case tlsinfo.NotYetValid:
		return "The certificate is not valid yet (or this machine's clock is wrong)."
	case tlsinfo.WrongName:
		return fmt.Sprintf("The certificate is not valid for %s; it names %s.", v.Host, strings.Join(v.Names, ", "))
	case tlsinfo.SelfSigned:
		return "The certificate is self-signed: no CA vouches for it."
	case tlsinfo.UnknownAuthority:
		return "The chain does not lead to a trusted root (a missing intermediate, or a private CA; give yours with --tls-ca)."
	case tlsinfo.NoCertificate:
		return "The server sent no certificate."
	}
	return "The chain is invalid."
}

// tlsVersions are the versions tried one by one. SSL 3.0 is not among
// them: Go's crypto/tls does not implement it.
var tlsVersions = []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}

// legacySuites are every suite Go implements, insecure ones included:
// TLS 1.0 and 1.1 servers often speak only CBC or RSA key exchange, which
// Go leaves out by default; asking for them lets the probe see whether the
// server accepts the version at all.
func legacySuites() []uint16 {
	var ids []uint16
	for _, s := range tls.CipherSuites() {
		ids = append(ids, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		ids = append(ids, s.ID)
	}
	return ids
}

// versions tries a separate handshake limited to each version, in
// parallel, each on a new connection.
func (p *svc) versions(ctx context.Context) {
	done := p.begin(StepVersions, "TLS versions accepted")
	res := make([]VersionResult, len(tlsVersions))
	var wg sync.WaitGroup
	for i, v := range tlsVersions {
		wg.Go(func() { res[i] = p.tryVersion(ctx, v) })
	}
	wg.Wait()
	p.res.TLSVersions = res
	var acc, lines []string
	legacy, modern := false, false
	for _, r := range res {
		switch {
		case r.Accepted:
			acc = append(acc, r.Version)
			lines = append(lines, fmt.Sprintf("%s: accepted (%s)", r.Version, r.CipherSuite))
			if r.Version == "TLS 1.0" || r.Version == "TLS 1.1" {
				legacy = true
			} else {
				modern = true
			}
		default:
			lines = append(lines, fmt.Sprintf("%s: refused (%s)", r.Version, r.Error))
		}
	}
	lines = append(lines, "SSL 3.0: not tested (Go's crypto/tls does not implement it; servers should refuse it, RFC 7568)")
	st := diag.Step{Status: diag.OK, Title: "accepts " + listOrNone(acc), Detail: strings.Join(lines, "\n"),
		RFC: "RFC 8996; RFC 8446", Data: res}
	switch {
	case legacy:
		st.Status = diag.Warn
		var old []string
		for _, r := range res[:2] {
			if r.Accepted {
				old = append(old, strings.TrimPrefix(r.Version, "TLS "))
			}
		}
		p.res.Matrix.TLS = Cell{diag.Warn, p.res.Matrix.TLS.Text + " (also " + strings.Join(old, ", ") + ")"}
		st.Hint = "Disable TLS 1.0 and 1.1 (Postfix: smtpd_tls_protocols = >=TLSv1.2; Dovecot: ssl_min_protocol = TLSv1.2); RFC 8996 deprecates them."
	case !modern:
		st.Status = diag.Warn
		st.Title = "no version could be confirmed separately"
	}
	done(st)
}

func (p *svc) tryVersion(ctx context.Context, v uint16) VersionResult {
	r := VersionResult{Version: tls.VersionName(v)}
	cfg := p.tlsConfig()
	cfg.MinVersion, cfg.MaxVersion = v, v
	if v < tls.VersionTLS13 {
		cfg.CipherSuites = legacySuites()
	}
	conn, err := p.dial(ctx, p.ap)
	if err != nil {
		r.Error = "not tested: " + err.Error()
		return r
	}
	defer conn.Close()
	var st *tls.ConnectionState
	if p.svc.ImplicitTLS() {
		hctx, cancel := context.WithTimeout(ctx, p.commandLimit(ctx))
		defer cancel()
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(hctx); err != nil {
			r.Error = shortTLSErr(err)
			return r
		}
		cs := tc.ConnectionState()
		st = &cs
		defer tc.Close()
	} else {
		// A quiet session: its transcript is not part of the steps.
		env := p.env
		s := newSession(env, p.svc, conn, p.t.Host, p.t.Helo)
		if _, ok, err := s.greet(ctx); err != nil || !ok {
			r.Error = "not tested: no usable greeting"
			return r
		}
		if _, _, err := s.capa(ctx); err != nil {
			r.Error = "not tested: " + err.Error()
			return r
		}
		refused, err := s.startTLS(ctx, cfg)
		switch {
		case err != nil:
			r.Error = shortTLSErr(err)
			return r
		case refused != "":
			r.Error = "not tested: STARTTLS refused: " + refused
			return r
		}
		st = s.tlsState()
		s.quit(ctx)
	}
	r.Accepted = true
	r.CipherSuite = tls.CipherSuiteName(st.CipherSuite)
	return r
}

// shortTLSErr keeps the words of a handshake error that tell why.
func shortTLSErr(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, wire.ErrClosed) || errors.Is(err, smtpc.ErrClosed) {
		return "the server closed the connection during the handshake"
	}
	s := err.Error()
	if i := strings.LastIndex(s, "tls: "); i >= 0 {
		return s[i:]
	}
	return s
}

func (p *svc) auth() {
	done := p.begin(StepAuth, "login mechanisms")
	after := p.s.mechs()
	p.res.AuthMechanisms = append([]string{}, after...)
	st := diag.Step{Status: diag.OK, Data: map[string]any{"mechanisms": after}}
	var clear []string
	if !p.svc.ImplicitTLS() && p.tlsUp {
		clear = cleartext(p.mechsClear)
		p.res.AuthBeforeTLS = clear
		st.Data.(map[string]any)["before_tls"] = p.mechsClear
	}
	text := listOrNone(after)
	switch {
	case p.svc == SMTP && len(after) == 0:
		st.Status, st.Title = diag.Info, "no AUTH offered (normal for an MX: log in on submission)"
	case p.svc == SMTP:
		st.Status, st.Title = diag.Info, "AUTH offered on port 25: "+text
		st.Detail = "Port 25 is for mail between servers; clients should submit on 587 or 465 (RFC 8314 §3.3). Offering AUTH here invites password guessing."
	case len(clear) > 0:
		st.Status = diag.Warn
		st.Title = "password login offered before TLS: " + strings.Join(clear, " ")
		st.Detail = "Before STARTTLS the server offers " + strings.Join(clear, ", ") + ": a client that does not insist on TLS sends the password in cleartext, readable by anyone on the path."
		st.Hint = map[string]string{
			"smtp":  "Postfix: smtpd_tls_auth_only = yes (or smtpd_tls_security_level = encrypt on submission).",
			"imap":  "Dovecot: disable_plaintext_auth = yes (2.4: auth_allow_cleartext = no), so that IMAP announces LOGINDISABLED before STARTTLS.",
			"pop3":  "Dovecot: disable_plaintext_auth = yes (2.4: auth_allow_cleartext = no).",
			"sieve": "Dovecot: disable_plaintext_auth = yes (2.4: auth_allow_cleartext = no).",
		}[p.svc.Proto()]
		st.RFC = map[string]string{"smtp": "RFC 4954 §4", "imap": "RFC 9051 §6.2.3", "pop3": "RFC 2595 §2.2", "sieve": "RFC 5804 §2.1"}[p.svc.Proto()]
		text += " (+cleartext before TLS)"
		if p.sameIP && p.svc.Proto() != "smtp" {
			st.Detail += "\nThis probe connects from the server's own address, which Dovecot treats as secure (it offers plaintext logins there that it refuses to other clients): probe from another machine to see what clients see."
		}
	case !p.tlsUp && len(cleartext(after)) > 0:
		st.Status = diag.Warn
		st.Title = "password login only in cleartext: " + text
		st.Detail = "There is no TLS, so every login sends the password readable on the path."
	case len(after) == 0:
		st.Status, st.Title = diag.Warn, "no login mechanism offered"
		st.Detail = "Clients cannot log in here."
	default:
		st.Title = "login mechanisms: " + text
	}
	p.res.Matrix.Auth = Cell{st.Status, text}
	done(st)
}

func (p *svc) login(ctx context.Context) {
	if !p.svc.clientFacing() {
		return
	}
	done := p.begin(StepLogin, "login")
	if p.t.User == "" {
		done(diag.Step{Status: diag.Skip, Title: "login not tried (no --user)"})
		return
	}
	p.res.Login = &Login{User: p.t.User}
	if !p.tlsUp {
		p.res.Matrix.Login = Cell{diag.Warn, "not tried"}
		p.res.Login.Error = "no TLS session"
		done(diag.Step{Status: diag.Warn, Title: "login not tried: no TLS session",
			Detail: "mxray never sends a password over an unencrypted connection."})
		return
	}
	mech, ok, reply, err := p.s.login(ctx, p.t.User, p.t.Password)
	p.res.Login.Mechanism, p.res.Login.OK, p.res.Login.Reply = mech, ok, reply
	data := map[string]any{"user": p.t.User, "mechanism": mech, "reply": reply}
	switch {
	case err != nil:
		p.res.Login.Error = err.Error()
		p.res.Matrix.Login = Cell{diag.Fail, "error"}
		done(diag.Step{Status: diag.Fail, Title: "login failed", Detail: explainErr(err, p.svc), Data: data})
	case !ok:
		p.res.Matrix.Login = Cell{diag.Fail, "failed"}
		done(diag.Step{Status: diag.Fail, Title: fmt.Sprintf("login as %s refused: %s", p.t.User, reply),
			Detail: "The server refused the user name or the password (the answer above is the server's own).",
			Hint:   "Check the password; the server's log (journalctl -u dovecot, /var/log/mail.log) says which part was wrong.", Data: data})
	default:
		p.res.Matrix.Login = Cell{diag.OK, "ok"}
		done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("logged in as %s (%s): %s", p.t.User, mech, reply), Data: data})
	}
}

// relay asks the server to accept mail from and to domains that are not
// its own, and expects a refusal; it never sends DATA.
func (p *svc) relay(ctx context.Context) {
	sm, ok := p.s.(*smtpSession)
	if !ok {
		return
	}
	done := p.begin(StepRelay, "open relay check")
	rel := &Relay{MailFrom: RelayFrom, RcptTo: RelayTo}
	p.res.Relay = rel
	st := diag.Step{RFC: "RFC 5321 §3.6.2; RFC 2505", Data: rel}
	mr, err := sm.c.Mail(ctx, RelayFrom, smtpc.MailParams{})
	if err != nil {
		st.Status, st.Title, st.Detail = diag.Warn, "relay check failed", explainErr(err, p.svc)
		done(st)
		return
	}
	rel.MailReply = mr.String()
	if mr.Code != 250 {
		st.Status, st.Title = diag.Info, "relay not tested: the sender was refused: "+mr.String()
		done(st)
		return
	}
	rr, err := sm.c.Rcpt(ctx, RelayTo)
	sm.c.Rset(ctx)
	if err != nil {
		st.Status, st.Title, st.Detail = diag.Warn, "relay check failed", explainErr(err, p.svc)
		done(st)
		return
	}
	rel.RcptReply = rr.String()
	switch {
	case rr.Positive():
		rel.Open = true
		st.Status = diag.Fail
		st.Title = "OPEN RELAY: accepted mail for a foreign domain: " + rr.String()
		st.Detail = fmt.Sprintf("MAIL FROM:<%s> and RCPT TO:<%s> are both foreign to this server, yet it accepted the recipient: spammers will use it, and blocklists will list it within hours. (No message was sent: the check stops before DATA.)", RelayFrom, RelayTo)
		st.Hint = "Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination, and a tight mynetworks."
	case rr.Temporary():
		st.Status = diag.Warn
		st.Title = "relay check inconclusive: " + rr.String()
		st.Detail = "A temporary refusal may become an acceptance later; rerun the probe."
	default:
		st.Status = diag.OK
		st.Title = "not an open relay: " + rr.String()
		if !strings.HasPrefix(rr.Enhanced, "5.7.") {
			st.Detail = "Refused, though not with a 5.7.x (security/policy) code."
		}
	}
	done(st)
}

// Strings lists the services' names.
func Strings(svcs []Service) []string {
	var out []string
	for _, s := range svcs {
		out = append(out, string(s))
	}
	return slices.Clip(out)
}

// sameHost reports two socket addresses on the same IP.
func sameHost(a, b net.Addr) bool {
	ha, _, err1 := net.SplitHostPort(a.String())
	hb, _, err2 := net.SplitHostPort(b.String())
	return err1 == nil && err2 == nil && ha == hb
}
