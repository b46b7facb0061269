package delivery

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/mtasts"
	"github.com/mxray/mxray/internal/smtpc"
	"github.com/mxray/mxray/internal/tlsinfo"
)

// minDaysLeft is when an approaching expiry becomes a warning: ACME
// clients renew 30 days ahead, so under two weeks means renewal is broken.
const minDaysLeft = 14

// servers talks to each address of each MX in preference order, stopping
// at the first that answers the recipient question unless AllMX, and then
// decides the verdict.
func (r *runner) servers(ctx context.Context) {
	decided := false
	for _, m := range r.res.MX {
		if m.Error != "" {
			continue
		}
		if hp := r.policies[m.Host]; hp.skip != "" {
			r.res.Attempts = append(r.res.Attempts, *r.skipHost(m, hp))
			continue
		}
		for _, ipText := range m.Addrs {
			if ctx.Err() != nil {
				break
			}
			ip, err := netip.ParseAddr(ipText)
			if err != nil {
				continue
			}
			a := r.attempt(ctx, m, ip)
			r.res.Attempts = append(r.res.Attempts, *a)
			if a.Outcome == Accepted || a.Outcome == Rejected {
				decided = true
			}
			if decided && !r.t.AllMX {
				break
			}
		}
		if decided && !r.t.AllMX {
			break
		}
	}
	r.verdict(ctx)
}

// skipHost records a host a sender would not connect to, because of its
// TLS policy, with a skipped connect step that says why.
func (r *runner) skipHost(m MX, hp hostPolicy) *Attempt {
	a := &Attempt{Host: m.Host, Preference: m.Preference, Policy: hp.policy}
	s := &session{r: r, a: a}
	done := s.begin(StepConnect, "connect to "+m.Host)
	title := fmt.Sprintf("not used: %s (%s)", hp.skip, hp.policy.name())
	if hp.skipAs == Deferred {
		title = fmt.Sprintf("deferred: %s (%s)", hp.skip, hp.policy.name())
	}
	done(diag.Step{Status: diag.Skip, Title: title,
		Detail: hp.skipText + ". A sender tries the next MX host, or keeps the message queued.", RFC: hp.skipRFC})
	a.Outcome, a.Step, a.Error = hp.skipAs, hp.skipStep, hp.skip
	return a
}

// verdict decides from the attempts, in the order tried: the first
// recipient answer (accepted or rejected) decides, as it would for a
// sender; else a temporary failure means the mail would be queued (a 4yz,
// a deferred TLSA lookup, or every usable host excluded by its TLS
// policy); else every host refused; else nothing could be tested from
// here.
func (r *runner) verdict(ctx context.Context) {
	first := func(outcomes ...Outcome) *Attempt {
		for i := range r.res.Attempts {
			for _, o := range outcomes {
				if r.res.Attempts[i].Outcome == o {
					return &r.res.Attempts[i]
				}
			}
		}
		return nil
	}
	// notUsed lists the hosts their TLS policies kept a sender away from.
	type hostText struct{ host, text string }
	var notUsed []hostText
	for _, a := range r.res.Attempts {
		if a.Outcome == Excluded || a.Outcome == Deferred && a.Step == StepDANE {
			notUsed = append(notUsed, hostText{a.Host, fmt.Sprintf("%s (%s: %s)", a.Host, a.Policy.name(), a.Error)})
		}
	}
	list := func(skip string) string {
		var out []string
		for _, n := range notUsed {
			if n.host != skip {
				out = append(out, n.text)
			}
		}
		return strings.Join(out, "; ")
	}
	set := func(v Verdict, a *Attempt, reason string) {
		if others := list(a.Host); others != "" {
			reason += "; not used: " + others
		}
		r.decide(v, a.Step, reason)
		r.res.DecidedHost, r.res.DecidedIP = a.Host, a.IP
	}
	who := func(a *Attempt) string {
		if a.IP == "" {
			return a.Host
		}
		return fmt.Sprintf("%s (%s)", a.Host, a.IP)
	}
	if a := first(Accepted, Rejected); a != nil {
		switch {
		case a.Outcome == Accepted:
			set(Deliverable, a, fmt.Sprintf("%s accepted <%s>: %s", who(a), r.rcpt, a.Reply))
		case a.Step == StepMail && a.Reply == nil:
			set(Undeliverable, a, fmt.Sprintf("%s does not support SMTPUTF8, which the address needs: a sender would bounce", who(a)))
		case a.Step == StepMail:
			set(Undeliverable, a, fmt.Sprintf("%s refused the sender <%s>: %s", who(a), r.t.MailFrom, a.Reply))
		default:
			set(Undeliverable, a, fmt.Sprintf("%s rejected <%s>: %s", who(a), r.rcpt, a.Reply))
		}
		return
	}
	if a := first(Deferred); a != nil {
		if a.Reply == nil {
			set(Temporary, a, fmt.Sprintf("%s deferred: %s; a sender would queue the message and retry", who(a), a.Error))
		} else {
			set(Temporary, a, fmt.Sprintf("%s deferred (%s): a sender would queue the message and retry", who(a), a.Reply))
		}
		return
	}
	if a := first(Excluded); a != nil && first(Failed) == nil {
		r.decide(Temporary, a.Step, "no mail host may be used: "+list("")+
			"; a sender keeps the message queued and retries")
		r.res.DecidedHost, r.res.DecidedIP = a.Host, a.IP
		return
	}
	if a := first(Refused); a != nil && first(Excluded) == nil {
		set(Undeliverable, a, fmt.Sprintf("every mail host refused the conversation; %s said %s", who(a), a.Reply))
		return
	}
	if a := first(Failed); a != nil {
		reason := fmt.Sprintf("could not test: no mail host could be reached from here; %s: %s", who(a), a.Error)
		set(Error, a, reason)
		return
	}
	r.decide(Error, StepAddresses, "could not test: no address was tried")
	if ctx.Err() != nil {
		r.res.Reason = "could not test: the deadline passed before any mail host was tried"
	}
}

// session is one attempt in progress.
type session struct {
	r  *runner
	a  *Attempt
	c  *smtpc.Client
	hp hostPolicy
}

// step runs one per-server step: it records the transcript lines the
// step produced and fills in the host and IP.
func (s *session) begin(id, title string) func(diag.Step) diag.Step {
	tr := diag.Begin(s.r.env, s.r.sink, id, title)
	mark := 0
	if s.c != nil {
		mark = s.c.Mark()
	}
	return func(st diag.Step) diag.Step {
		st.Host, st.IP = s.a.Host, s.a.IP
		if s.c != nil {
			st.Transcript = s.c.Since(mark)
		}
		out := tr.Done(st)
		s.a.Steps = append(s.a.Steps, out)
		return out
	}
}

// end records how the attempt ended.
func (s *session) end(o Outcome, step string, reply *smtpc.Reply, err error) {
	s.a.Outcome, s.a.Step, s.a.Reply = o, step, reply
	if err != nil {
		s.a.Error = err.Error()
	}
}

func (r *runner) attempt(ctx context.Context, m MX, ip netip.Addr) *Attempt {
	hp := r.policies[m.Host]
	if hp.policy == "" {
		hp.policy = Opportunistic
	}
	a := &Attempt{Host: m.Host, IP: ip.String(), Preference: m.Preference, Policy: hp.policy}
	s := &session{r: r, a: a, hp: hp}
	ap := netip.AddrPortFrom(ip, uint16(r.t.Port))
	defer func() {
		if s.c != nil {
			s.c.Close()
			a.Transcript = s.c.Transcript()
		}
	}()

	if !s.connect(ctx, ap) || !s.banner(ctx) || !s.ehlo(ctx) {
		return a
	}
	tlsOK, ok := s.starttls(ctx, m)
	if !ok {
		return a
	}
	if tlsOK {
		if !s.certificate(ctx, m) || !s.ehloTLS(ctx) {
			return a
		}
	} else {
		for _, id := range []string{StepCertificate, StepEHLOTLS} {
			done := s.begin(id, id)
			done(diag.Step{Status: diag.Skip, Title: id + ": skipped, no TLS session"})
		}
	}
	if !s.mail(ctx) {
		return a
	}
	s.rcpt(ctx)
	if a.Outcome != Failed {
		s.rset(ctx)
		s.quit(ctx)
	}
	return a
}

func (s *session) connect(ctx context.Context, ap netip.AddrPort) bool {
	env := s.r.env
	done := s.begin(StepConnect, fmt.Sprintf("connect to %s port %d", ap.Addr(), ap.Port()))
	c, err := smtpc.DialAddr(ctx, env, s.a.Host, ap)
	if err == nil {
		s.c = c
		done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("connected to %s port %d", ap.Addr(), ap.Port()),
			Data: map[string]string{"address": ap.String(), "connected_to": c.RemoteAddr().String()}})
		return true
	}
	limit := diag.Fit(ctx, env.Limits.Connect)
	if env.Limits.Connect == 0 {
		limit = diag.Fit(ctx, diag.DefaultLimits.Connect)
	}
	st := diag.Step{Status: diag.Fail, Data: map[string]string{"address": ap.String(), "error": err.Error()}}
	port := ap.Port()
	switch {
	case errors.Is(err, dnsx.ErrConnRefused):
		st.Title = fmt.Sprintf("connection refused on port %d", port)
		st.Detail = fmt.Sprintf("%s refused the connection to port %d: nothing listens there, or a firewall rejects it.", ap.Addr(), port)
		st.Hint = fmt.Sprintf("On the mail server, check that the MTA listens on port %d of this address (ss -ltn 'sport = :%d') and that the firewall lets TCP %d in.", port, port, port)
	case errors.Is(err, dnsx.ErrConnTimeout):
		st.Title = fmt.Sprintf("no answer on port %d (timeout)", port)
		st.Detail = fmt.Sprintf("No answer from %s port %d within %s: a firewall drops the packets, or the host is down.\n"+
			"Many ISPs, hosting providers and clouds (AWS, Google Cloud, Azure, most home connections) block OUTGOING port 25, which looks exactly like this.", ap.Addr(), port, limit.Round(time.Millisecond))
		st.Hint = "Run the test from a machine that may send mail (the mail server itself, say); if it also times out there, check the receiving server's firewall."
	case errors.Is(err, dnsx.ErrHostUnreachable):
		st.Title = "host unreachable"
		st.Detail = fmt.Sprintf("No route to %s from here (with IPv6 addresses, a missing IPv6 connectivity on this machine is the usual cause).", ap.Addr())
		st.Hint = "Try --ipv4, or test from another network."
	default:
		st.Title = "connection failed"
		st.Detail = err.Error()
	}
	done(st)
	s.end(Failed, StepConnect, nil, err)
	return false
}

// replyData is the evidence of a step that got one reply.
func replyData(r smtpc.Reply) map[string]any { return map[string]any{"reply": r} }

// failReply ends the attempt on a negative reply to a step: 4yz defers,
// 5yz is the given permanent outcome; anything else is a protocol failure.
func (s *session) failReply(ctx context.Context, step string, r smtpc.Reply, permanent Outcome) {
	switch {
	case r.Temporary():
		s.end(Deferred, step, &r, nil)
	case r.Permanent():
		s.end(permanent, step, &r, nil)
	default:
		s.end(Failed, step, &r, fmt.Errorf("unexpected reply %s", r))
	}
	s.quit(ctx)
}

// failErr ends the attempt on a transport error and explains it.
func (s *session) failErr(ctx context.Context, done func(diag.Step) diag.Step, step, what string, err error) bool {
	st := diag.Step{Status: diag.Fail, Data: map[string]string{"error": err.Error()}}
	lim := diag.Fit(ctx, s.r.env.Limits.Command)
	if s.r.env.Limits.Command == 0 {
		lim = diag.Fit(ctx, diag.DefaultLimits.Command)
	}
	switch {
	case errors.Is(err, smtpc.ErrTimeout):
		st.Title = fmt.Sprintf("%s: no answer within %s", what, lim.Round(time.Millisecond))
		st.Detail = "The server accepted the connection but did not answer in time. An overloaded or broken MTA does this, and so does a firewall or proxy that intercepts port 25."
		if step == StepBanner {
			st.Hint = "Check the MTA's load and its DNS lookups of connecting clients (a slow reverse lookup delays the greeting); check for a proxy or security appliance in front of it."
		}
	case errors.Is(err, smtpc.ErrClosed):
		st.Title = what + ": the server closed the connection"
		st.Detail = "The server hung up without an SMTP reply. Some servers do this to clients they distrust (a blocklisted address, no reverse DNS, a too-early command)."
	case errors.Is(err, smtpc.ErrProtocol):
		st.Title = what + ": not an SMTP reply"
		st.Detail = err.Error() + "\nIs an SMTP server listening on this port?"
	case errors.Is(err, smtpc.ErrTLS):
		st.Title = what + ": TLS handshake failed"
		st.Detail = err.Error() + "\nThe server offered STARTTLS but the handshake failed: the connection is unusable. Senders either retry in cleartext or give up on this server."
		st.Hint = "Check the server's TLS configuration (certificate and key files, protocol versions and ciphers): openssl s_client -starttls smtp -connect HOST:25."
		st.RFC = "RFC 3207 §4"
	default:
		st.Title = what + " failed"
		st.Detail = err.Error()
	}
	done(st)
	s.end(Failed, step, nil, err)
	return false
}

func (s *session) banner(ctx context.Context) bool {
	done := s.begin(StepBanner, "greeting")
	r, err := s.c.Greeting(ctx)
	if err != nil {
		return s.failErr(ctx, done, StepBanner, "greeting", err)
	}
	st := diag.Step{RFC: "RFC 5321 §4.3.1", Data: replyData(r)}
	switch {
	case r.Code == 220:
		st.Status, st.Title = diag.OK, "greeting: "+r.String()
		done(st)
		return true
	case r.Temporary():
		st.Status, st.Title = diag.Fail, "greeting refuses service for now: "+r.String()
		st.Detail = "The server is up but will not talk now (421: shutting down, overloaded, or rate-limiting this client). A sender tries the next host, or later."
	case r.Permanent():
		st.Status, st.Title = diag.Fail, "greeting refuses service: "+r.String()
		st.Detail = "A 5yz greeting (usually 554) means the server will not accept mail from this client: often a blocklisted address or missing reverse DNS of the machine running the test. A sender tries the next host (RFC 5321 §3.1)."
		st.Hint = "Read the server's words above; check this machine's address in blocklists and its reverse DNS."
	default:
		st.Status, st.Title = diag.Fail, "unexpected greeting: "+r.String()
	}
	done(st)
	s.failReply(ctx, StepBanner, r, Refused)
	return false
}

func (s *session) ehlo(ctx context.Context) bool {
	helo := s.r.t.Helo
	done := s.begin(StepEHLO, "EHLO "+helo)
	r, usedHelo, err := s.c.Hello(ctx, helo)
	if err != nil {
		return s.failErr(ctx, done, StepEHLO, "EHLO", err)
	}
	st := diag.Step{RFC: "RFC 5321 §4.1.1.1"}
	data := map[string]any{"reply": r, "helo": usedHelo}
	ext, ok := s.c.Extensions()
	if ok {
		data["extensions"] = ext.List()
	}
	st.Data = data
	switch {
	case r.Code == 250 && !usedHelo:
		st.Status = diag.OK
		st.Title = fmt.Sprintf("EHLO accepted: %s", ext.Domain)
		st.Detail = "extensions: " + strings.Join(ext.List(), ", ")
		done(st)
		return true
	case r.Code == 250:
		st.Status = diag.Warn
		st.Title = "EHLO refused, HELO accepted"
		st.Detail = "The server does not speak ESMTP: no extensions, so no STARTTLS, no SIZE, no 8BITMIME. Mail to it travels in cleartext."
		st.Hint = "Use an MTA that supports EHLO (every current one does); something in front of the server may be filtering the command."
		done(st)
		return true
	}
	st.Status = diag.Fail
	st.Title = "EHLO refused: " + r.String()
	if r.Permanent() {
		st.Detail = "Both EHLO and HELO were refused. Servers refuse HELO names that are not fully qualified or do not resolve."
		st.Hint = "Run with --helo set to this machine's fully qualified name (the name its reverse DNS gives)."
	}
	done(st)
	s.failReply(ctx, StepEHLO, r, Refused)
	return false
}

// starttls returns whether a TLS session is up, and false in ok when the
// attempt is over.
func (s *session) starttls(ctx context.Context, m MX) (tlsUp, ok bool) {
	done := s.begin(StepStartTLS, "STARTTLS")
	ext, _ := s.c.Extensions()
	pol := s.hp.policy
	if !ext.Has("STARTTLS") && pol.required() {
		done(diag.Step{Status: diag.Fail, Title: "STARTTLS not offered: " + pol.name() + " requires TLS, a sender must not deliver to this host",
			Detail: "The server does not announce STARTTLS. " + requiredWhy(pol),
			Hint:   "Enable STARTTLS on the server (Postfix: smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level = may).",
			RFC:    policyRFC(pol)})
		s.exclude(ctx, StepStartTLS, "STARTTLS not offered")
		return false, false
	}
	if !ext.Has("STARTTLS") {
		done(diag.Step{Status: diag.Warn, Title: "STARTTLS not offered: mail would travel in cleartext",
			Detail: "The server does not announce STARTTLS, so every sender delivers to it unencrypted, readable and alterable on the way.",
			Hint:   "Give the MTA a certificate and enable STARTTLS (Postfix: smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level = may).",
			RFC:    "RFC 3207; RFC 7435"})
		return false, true
	}
	cfg := &tls.Config{
		ServerName: m.Host,
		// Opportunistic TLS (RFC 7435 §1.3): encrypt whatever the
		// certificate says, and judge it afterwards (certificate step).
		InsecureSkipVerify: true,
		RootCAs:            s.r.env.Roots,
		// Old servers still speak TLS 1.0/1.1; a sender would use it, and
		// the test should show it rather than fail.
		MinVersion: tls.VersionTLS10,
	}
	r, err := s.c.StartTLS(ctx, cfg)
	if err != nil {
		s.failErr(ctx, done, StepStartTLS, "STARTTLS", err)
		if pol.required() && errors.Is(err, smtpc.ErrTLS) {
			// The handshake failed: under DANE or MTA-STS enforce the
			// host is unusable, not merely unreachable.
			s.a.Outcome = Excluded
			s.a.Error = "TLS handshake failed: " + s.a.Error
		}
		return false, false
	}
	if r.Code != 220 && pol.required() {
		done(diag.Step{Status: diag.Fail, Title: "STARTTLS refused: " + r.String() + "; " + pol.name() + " requires TLS, a sender must not deliver to this host",
			Detail: "The server announced STARTTLS but refused it. " + requiredWhy(pol),
			Hint:   "Check the MTA's TLS configuration and its log for the reason.",
			RFC:    policyRFC(pol), Data: replyData(r)})
		s.exclude(ctx, StepStartTLS, "STARTTLS refused: "+r.String())
		return false, false
	}
	if r.Code != 220 {
		done(diag.Step{Status: diag.Warn, Title: "STARTTLS refused: " + r.String(),
			Detail: "The server announced STARTTLS but refused it. Senders continue in cleartext (RFC 3207 §4).",
			Hint:   "Check the MTA's TLS configuration and its log for the reason.",
			RFC:    "RFC 3207 §4", Data: replyData(r)})
		return false, true
	}
	st := s.c.TLS()
	info := tlsinfo.Inspect(*st, m.Host, s.r.env.Roots, s.r.env.Clock())
	s.a.TLS = &info
	step := diag.Step{Status: diag.OK, Title: fmt.Sprintf("STARTTLS: %s, %s", info.Version, info.CipherSuite),
		RFC: "RFC 3207", Data: map[string]any{"reply": r, "version": info.Version, "cipher_suite": info.CipherSuite}}
	if st.Version < tls.VersionTLS12 {
		step.Status = diag.Warn
		step.Detail = info.Version + " is deprecated (RFC 8996): senders that require TLS 1.2 fall back to cleartext or refuse."
		step.Hint = "Enable TLS 1.2 and 1.3 on the server."
	}
	done(step)
	return true, true
}

// exclude ends an attempt that the host's TLS policy forbids, politely.
func (s *session) exclude(ctx context.Context, step, why string) {
	s.end(Excluded, step, nil, errors.New(why))
	s.quit(ctx)
}

// requiredWhy explains, for a person, why a policy makes TLS mandatory.
func requiredWhy(p TLSPolicy) string {
	switch p {
	case DANE, DANEUnusable:
		return "The host publishes DNSSEC-validated TLSA records: a DANE sender requires TLS and does not deliver to it in cleartext (RFC 7672 §2.2); it tries the next MX host or keeps the message queued."
	case MTASTS:
		return "The domain's MTA-STS policy is in mode enforce: senders deliver only over TLS with a valid certificate (RFC 8461 §5); they try the next MX host or keep the message queued."
	}
	return ""
}

func policyRFC(p TLSPolicy) string {
	switch p {
	case DANE, DANEUnusable:
		return "RFC 7672 §2.2"
	case MTASTS, MTASTSTesting:
		return "RFC 8461 §4.2, §5"
	}
	return "RFC 7435; RFC 3207 §4.1"
}

// certData is the evidence of the certificate step: the tlsinfo summary,
// flattened, plus the policy and the DANE verification.
type certData struct {
	*tlsinfo.Info
	Policy TLSPolicy          `json:"policy"`
	DANE   *dane.Verification `json:"dane,omitempty"`
}

// certificate judges the certificate by the host's TLS policy: against
// the TLSA records under DANE (RFC 7672 §3), as a PKIX chain valid for the
// MX host name under MTA-STS (RFC 8461 §4.2), else as an opportunistic
// sender does, for whom every problem is a warning (RFC 7435; RFC 3207
// §4.1). It returns false when the policy forbids the host: the attempt
// is then over.
func (s *session) certificate(ctx context.Context, m MX) bool {
	done := s.begin(StepCertificate, "certificate")
	info := s.a.TLS
	v := info.Verification
	pol := s.hp.policy
	data := certData{Info: info, Policy: pol}
	st := diag.Step{Status: diag.OK, RFC: policyRFC(pol), Data: data}
	var lines []string
	if len(info.Chain) > 0 {
		l := info.Chain[0]
		lines = append(lines,
			fmt.Sprintf("subject %s, issued by %s", l.Subject, l.Issuer),
			fmt.Sprintf("names: %s", strings.Join(append(append([]string(nil), l.DNSNames...), l.IPAddresses...), ", ")),
			fmt.Sprintf("valid %s to %s (%d days left), %s %d-bit key, %s",
				l.NotBefore.Format("2006-01-02"), l.NotAfter.Format("2006-01-02"), l.DaysLeft, l.KeyType, l.KeyBits, l.SignatureAlgorithm),
			fmt.Sprintf("chain of %d certificate(s)", len(info.Chain)))
	}
	var problems, hints []string
	for _, p := range v.Problems {
		switch p {
		case tlsinfo.Expired:
			problems = append(problems, "EXPIRED: the certificate's validity has ended.")
			hints = append(hints, "Renew the certificate and reload the MTA.")
		case tlsinfo.NotYetValid:
			problems = append(problems, "NOT YET VALID: the certificate's validity has not started (check the server's clock).")
		case tlsinfo.WrongName:
			problems = append(problems, fmt.Sprintf("WRONG NAME: the certificate is for %s, not %s.", strings.Join(v.Names, ", "), m.Host))
			hints = append(hints, "Issue a certificate that names "+m.Host+" (the name in the MX record).")
		case tlsinfo.SelfSigned:
			problems = append(problems, "SELF-SIGNED: no certificate authority vouches for it.")
			hints = append(hints, "Use a certificate from a public CA (Let's Encrypt, for one) — or publish DANE TLSA records.")
		case tlsinfo.UnknownAuthority:
			problems = append(problems, "UNKNOWN AUTHORITY: the chain does not lead to a trusted root (a missing intermediate, or a private CA).")
			hints = append(hints, "Serve the full chain (leaf then intermediates; Postfix: smtpd_tls_chain_files or a fullchain file).")
		case tlsinfo.Invalid:
			problems = append(problems, "INVALID: "+strings.Join(v.Errors, "; "))
		case tlsinfo.NoCertificate:
			problems = append(problems, "The server sent no certificate.")
		}
	}
	expiring := len(info.Chain) > 0 && info.Chain[0].DaysLeft < minDaysLeft && len(v.Problems) == 0
	validTitle := func() string {
		if len(info.Chain) == 0 {
			return "certificate valid for " + m.Host
		}
		return fmt.Sprintf("certificate valid for %s, %d days left", m.Host, info.Chain[0].DaysLeft)
	}
	excluded := ""

	switch pol {
	case DANE:
		dv := dane.Verify(s.hp.tlsa.Records, s.c.TLS().PeerCertificates, m.Host, s.r.env.Clock())
		data.DANE = &dv
		st.Data = data
		if dv.Result == dane.Pass {
			st.Title = "certificate authenticated by DANE: " + dv.Summary
			if len(problems) > 0 {
				lines = append(lines, "A PKIX check (not what a DANE sender does) finds: "+strings.Join(problems, " "))
				if dv.Match != nil && dv.Match.Record.Usage == dane.DANEEE {
					lines = append(lines, "DANE-EE(3) ignores the names and dates of the certificate (RFC 7672 §3.1.1): DANE senders deliver.")
				}
				if sts := s.r.res.MTASTS; sts != nil && sts.Outcome.Mode == mtasts.ModeEnforce {
					st.Status = diag.Warn
					lines = append(lines, "The domain also enforces MTA-STS: senders that do MTA-STS but not DANE refuse this certificate.")
					st.Hint = strings.Join(hints, "\n")
				}
			}
			break
		}
		st.Status = diag.Fail
		st.Title = "certificate does not match the DANE TLSA records: a DANE sender must not deliver to this host"
		lines = append(lines, dv.Summary)
		for _, miss := range dv.Misses {
			lines = append(lines, fmt.Sprintf("  %s: %s", miss.Record, miss.Reason))
		}
		lines = append(lines, requiredWhy(pol))
		st.Hint = "Publish TLSA records that match the certificate the server presents (e.g. 3 1 1 <SHA-256 of its public key>), or serve the key the records describe. When changing keys, publish the new TLSA record first and wait for the old one's TTL."
		st.RFC = "RFC 7672 §3, §2.2"
		excluded = "certificate does not match the TLSA records"
	case MTASTS:
		if len(v.Problems) > 0 {
			// RFC 8461 §4.2: the certificate must be PKIX-valid and name
			// the MX host; in mode enforce a failing host is not used.
			st.Status = diag.Fail
			st.Title = "certificate problem: " + problemList(v.Problems) + "; MTA-STS enforce: senders must not deliver to this host"
			lines = append(lines, problems...)
			lines = append(lines, requiredWhy(pol))
			st.Hint = strings.Join(hints, "\n")
			excluded = "certificate not valid for " + m.Host + " (" + problemList(v.Problems) + ")"
			break
		}
		st.Title = validTitle() + " (as MTA-STS requires)"
	case MTASTSTesting:
		if len(v.Problems) > 0 {
			st.Status = diag.Warn
			st.Title = "certificate problem: " + problemList(v.Problems) + " (MTA-STS testing: reported, mail still delivered)"
			lines = append(lines, problems...)
			lines = append(lines, "In mode testing senders report this through TLS-RPT and deliver anyway; switching the policy to enforce would stop mail to this host (RFC 8461 §4.2, §5).")
			st.Hint = strings.Join(hints, "\n")
			break
		}
		st.Title = validTitle() + " (as MTA-STS requires)"
	default:
		if len(v.Problems) > 0 {
			st.Status = diag.Warn
			st.Title = "certificate problem: " + problemList(v.Problems) + " (opportunistic TLS still encrypts)"
			lines = append(lines, problems...)
			if pol == DANEUnusable {
				lines = append(lines, "The host's TLSA records are validated but none is usable: DANE senders require TLS but do not authenticate the server (RFC 7672 §2.2).")
			} else {
				lines = append(lines, "Without DANE or MTA-STS, senders encrypt to this server anyway (RFC 7435) — but a domain that adopts MTA-STS or DANE will stop receiving mail until this is fixed.")
			}
			st.Hint = strings.Join(hints, "\n")
			break
		}
		st.Title = validTitle()
	}
	if st.Status == diag.OK && expiring {
		st.Status = diag.Warn
		st.Title = fmt.Sprintf("certificate expires in %d days", info.Chain[0].DaysLeft)
		st.Hint = "Check that automatic renewal works, and that the MTA reloads the renewed certificate."
	}
	st.Detail = strings.Join(lines, "\n")
	done(st)
	if excluded != "" {
		s.exclude(ctx, StepCertificate, excluded)
		return false
	}
	return true
}

func problemList(ps []tlsinfo.Problem) string {
	var out []string
	for _, p := range ps {
		out = append(out, strings.ReplaceAll(string(p), "-", " "))
	}
	return strings.Join(out, ", ")
}

func (s *session) ehloTLS(ctx context.Context) bool {
	done := s.begin(StepEHLOTLS, "EHLO inside TLS")
	r, err := s.c.Ehlo(ctx, s.r.t.Helo)
	if err != nil {
		return s.failErr(ctx, done, StepEHLOTLS, "EHLO inside TLS", err)
	}
	ext, _ := s.c.Extensions()
	st := diag.Step{RFC: "RFC 3207 §4.2", Data: map[string]any{"reply": r, "extensions": ext.List()}}
	if r.Code == 250 {
		st.Status, st.Title = diag.OK, "EHLO inside TLS accepted"
		st.Detail = "extensions: " + strings.Join(ext.List(), ", ")
		done(st)
		return true
	}
	st.Status, st.Title = diag.Fail, "EHLO inside TLS refused: "+r.String()
	done(st)
	s.failReply(ctx, StepEHLOTLS, r, Refused)
	return false
}

func (s *session) mail(ctx context.Context) bool {
	from := s.r.t.MailFrom
	done := s.begin(StepMail, "MAIL FROM:<"+from+">")
	ext, _ := s.c.Extensions()
	if s.r.utf8 && !ext.Has("SMTPUTF8") {
		done(diag.Step{Status: diag.Fail, Title: "the server does not support SMTPUTF8",
			Detail: "The address has non-ASCII characters, so it can only be delivered with SMTPUTF8 (RFC 6531), which this server does not announce: a sender would bounce the message.",
			Hint:   "Enable SMTPUTF8 on the server (Postfix: smtputf8_enable = yes), or use an ASCII address.",
			RFC:    "RFC 6531 §3.2"})
		s.end(Rejected, StepMail, nil, errors.New("SMTPUTF8 needed but not offered"))
		s.quit(ctx)
		return false
	}
	r, err := s.c.Mail(ctx, from, smtpc.MailParams{SMTPUTF8: s.r.utf8})
	if err != nil {
		return s.failErr(ctx, done, StepMail, "MAIL FROM", err)
	}
	st := diag.Step{RFC: "RFC 5321 §4.1.1.2", Data: replyData(r)}
	if r.Code == 250 {
		st.Status, st.Title = diag.OK, "sender accepted: "+r.String()
		done(st)
		return true
	}
	st.Status = diag.Fail
	st.Title = "sender refused: " + r.String()
	if from == "" {
		st.Detail = "The server refused the null sender <>, which RFC 5321 §4.5.5 requires it to accept: bounces to its users would be lost."
	} else {
		st.Detail = "The server refused the sender address. Try another --mail-from, or the null sender."
	}
	done(st)
	s.failReply(ctx, StepMail, r, Rejected)
	return false
}

func (s *session) rcpt(ctx context.Context) {
	rcpt := s.r.rcpt
	done := s.begin(StepRcpt, "RCPT TO:<"+rcpt+">")
	r, err := s.c.Rcpt(ctx, rcpt)
	if err != nil {
		s.failErr(ctx, done, StepRcpt, "RCPT TO", err)
		return
	}
	st := diag.Step{RFC: "RFC 5321 §4.1.1.3", Data: replyData(r)}
	switch {
	case r.Code == 250 || r.Code == 251:
		st.Status, st.Title = diag.OK, fmt.Sprintf("recipient <%s> accepted: %s", rcpt, r)
		s.end(Accepted, StepRcpt, &r, nil)
	case r.Temporary():
		st.Status, st.Title = diag.Warn, fmt.Sprintf("recipient <%s> deferred: %s", rcpt, r)
		st.Detail = "A 4yz reply is temporary: a sender keeps the message queued and retries. Greylisting (RFC 6647) answers this way to first-time senders; so do full mailboxes and overloaded servers."
		st.RFC = "RFC 5321 §4.2.1; RFC 6647"
		s.end(Deferred, StepRcpt, &r, nil)
	case r.Permanent():
		st.Status, st.Title = diag.Fail, fmt.Sprintf("recipient <%s> rejected: %s", rcpt, r)
		st.Detail = "A 5yz reply is permanent: a sender bounces the message with the server's words."
		switch {
		case strings.HasPrefix(r.Enhanced, "5.1.1") || r.Code == 550 && strings.Contains(strings.ToLower(r.Text()), "unknown"):
			st.Hint = "The mailbox does not exist: check the address, or create the mailbox or alias on the server."
		case strings.HasPrefix(r.Enhanced, "5.7."):
			st.Hint = "A policy rejection (RFC 3463 5.7.x): relaying denied, a blocklist, or a rule about this client; read the server's words."
		}
		s.end(Rejected, StepRcpt, &r, nil)
	default:
		st.Status, st.Title = diag.Fail, "unexpected reply to RCPT: "+r.String()
		s.end(Failed, StepRcpt, &r, fmt.Errorf("unexpected reply %s", r))
	}
	done(st)
}

func (s *session) rset(ctx context.Context) {
	done := s.begin(StepRset, "RSET")
	r, err := s.c.Rset(ctx)
	st := diag.Step{Status: diag.Info, Title: "transaction abandoned (RSET); no message was sent", RFC: "RFC 5321 §4.1.1.5"}
	if err != nil {
		st.Detail = "RSET got no reply: " + err.Error()
	} else {
		st.Data = replyData(r)
	}
	done(st)
}

// quit ends the conversation politely; its outcome never changes the
// verdict.
func (s *session) quit(ctx context.Context) {
	done := s.begin(StepQuit, "QUIT")
	r, err := s.c.Quit(ctx)
	st := diag.Step{Status: diag.Info, Title: "QUIT: " + r.String(), RFC: "RFC 5321 §4.1.1.10"}
	if err != nil {
		st.Title = "QUIT: no reply"
		st.Detail = err.Error()
	} else {
		st.Data = replyData(r)
	}
	done(st)
}
