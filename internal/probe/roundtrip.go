package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/imapc"
	"github.com/mxray/mxray/internal/smtpc"
)

// RoundTripHeader carries the round trip's token in the test message.
const RoundTripHeader = "X-Mxray-Roundtrip"

// RoundTripTarget describes one round trip: submit one message, find it
// in the mailbox, delete it.
type RoundTripTarget struct {
	// Submission and IMAP are HOST or HOST:PORT. Submission defaults to
	// port 587 (STARTTLS; 465 is implicit TLS), IMAP to 993 (implicit
	// TLS; any other port uses STARTTLS).
	Submission, IMAP string
	// User and Password log in to both; the password never reaches the
	// transcript, the steps or the log.
	User, Password string
	From, To       string
	// Mailbox is searched for the message (default INBOX): To must be
	// delivered to User's Mailbox.
	Mailbox string
	// Wait is how long to wait for the message (default 60 s); Poll the
	// first interval between searches (default 100 ms, doubling up to
	// 2 s).
	Wait, Poll time.Duration
	Helo       string
	// Token tags the message (RoundTripHeader and Message-ID); the caller
	// makes it unique and unguessable.
	Token string
}

// Verdict is the outcome of a round trip.
type Verdict string

const (
	Delivered    Verdict = "delivered"     // the message arrived and was deleted
	NotDelivered Verdict = "not-delivered" // sent, but not in the mailbox within Wait
	Refused      Verdict = "refused"       // a login or the message was refused
	Unchecked    Verdict = "unchecked"     // could not test: a server did not answer
)

// Headers are the trace fields of the message as it arrived.
type Headers struct {
	Received                 []string `json:"received"`
	AuthenticationResults    []string `json:"authentication_results"`
	DKIMSignature            []string `json:"dkim_signature"`
	ReceivedSPF              []string `json:"received_spf,omitempty"`
	ARCAuthenticationResults []string `json:"arc_authentication_results,omitempty"`
}

// RoundTripResult is everything a round trip found.
type RoundTripResult struct {
	Verdict   Verdict     `json:"verdict"`
	Status    diag.Status `json:"status"`
	Reason    string      `json:"reason"`
	Token     string      `json:"token"`
	MessageID string      `json:"message_id"`
	From      string      `json:"from"`
	To        string      `json:"to"`
	// QueueReply is the submission server's answer to the message
	// ("250 2.0.0 Ok: queued as …").
	QueueReply string `json:"queue_reply,omitempty"`
	// LatencyMS is from the server's acceptance of the message to the
	// search that found it (so within one poll interval).
	LatencyMS float64  `json:"latency_ms,omitempty"`
	Polls     int      `json:"polls"`
	UID       uint32   `json:"uid,omitempty"`
	Headers   *Headers `json:"headers,omitempty"`
	// Deleted: flagged \Deleted; Expunged: removed (UID EXPUNGE).
	Deleted  bool        `json:"deleted"`
	Expunged bool        `json:"expunged"`
	Steps    []diag.Step `json:"-"`
}

// Round-trip step ids.
const (
	StepRTIMAPConnect   = "imap.connect"
	StepRTIMAPLogin     = "imap.login"
	StepRTSubmitConnect = "submission.connect"
	StepRTSubmitLogin   = "submission.login"
	StepRTSubmitSend    = "submission.send"
	StepRTWait          = "imap.wait"
	StepRTHeaders       = "imap.headers"
	StepRTDelete        = "imap.delete"
)

// ErrBadTarget: a host:port that cannot be used.
var ErrBadTarget = errors.New("probe: bad round-trip target")

// SplitHostPort reads HOST or HOST:PORT ([IPv6]:PORT), with def as the
// port when none is given.
func SplitHostPort(s string, def int) (string, int, error) {
	if s == "" {
		return "", 0, fmt.Errorf("%w: empty host", ErrBadTarget)
	}
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 || h == "" {
			return "", 0, fmt.Errorf("%w: %q: bad port", ErrBadTarget, s)
		}
		return h, n, nil
	}
	if strings.ContainsAny(s, " /@") {
		return "", 0, fmt.Errorf("%w: %q", ErrBadTarget, s)
	}
	return strings.Trim(s, "[]"), def, nil
}

type rt struct {
	env  diag.Env
	t    RoundTripTarget
	sink diag.Sink
	res  *RoundTripResult
}

// RoundTrip sends one message tagged with t.Token through submission
// (STARTTLS or implicit TLS, then AUTH), waits for it in the IMAP mailbox,
// reports the latency and its trace headers, and deletes it. Both
// connections verify the server's certificate against env.Roots: the
// password is sent only to a server that proves its name.
func RoundTrip(ctx context.Context, env diag.Env, t RoundTripTarget, out diag.Sink) RoundTripResult {
	rec := &diag.Recorder{}
	r := &rt{env: env, t: t, sink: diag.Tee(out, rec), res: &RoundTripResult{Token: t.Token, From: t.From, To: t.To}}
	if r.t.Mailbox == "" {
		r.t.Mailbox = "INBOX"
	}
	if r.t.Wait <= 0 {
		r.t.Wait = 60 * time.Second
	}
	if r.t.Poll <= 0 {
		r.t.Poll = 100 * time.Millisecond
	}
	r.res.MessageID = "<mxray-roundtrip-" + t.Token + "@" + domainOf(t.From) + ">"
	r.run(ctx)
	r.res.Steps = rec.Steps
	r.res.Status = diag.Worst(rec.Steps)
	return *r.res
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 && i < len(addr)-1 {
		return addr[i+1:]
	}
	return "mxray.invalid"
}

func (r *rt) decide(v Verdict, reason string) {
	if r.res.Verdict == "" {
		r.res.Verdict, r.res.Reason = v, reason
	}
}

// begin starts a step whose transcript comes from marks of conn.
func (r *rt) begin(id, title string, tr transcript) func(diag.Step) diag.Step {
	t := diag.Begin(r.env, r.sink, id, title)
	mark := 0
	if tr != nil {
		mark = tr.Mark()
	}
	return func(st diag.Step) diag.Step {
		if tr != nil {
			st.Transcript = tr.Since(mark)
		}
		return t.Done(st)
	}
}

type transcript interface {
	Mark() int
	Since(int) []string
}

// dialTLS connects to host:port and, for implicit TLS, handshakes with
// full verification.
func (r *rt) dial(ctx context.Context, host string, port int, implicit bool) (net.Conn, error) {
	if r.env.Dialer == nil {
		return nil, errors.New("probe: no dialer in env")
	}
	d := r.env.Limits.Connect
	if d <= 0 {
		d = diag.DefaultLimits.Connect
	}
	dctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, d))
	defer cancel()
	conn, err := r.env.Dialer.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil || !implicit {
		return conn, err
	}
	c := r.env.Limits.Command
	if c <= 0 {
		c = diag.DefaultLimits.Command
	}
	hctx, hcancel := context.WithTimeout(ctx, diag.Fit(ctx, c))
	defer hcancel()
	tc := tls.Client(conn, r.tlsConfig(host))
	if err := tc.HandshakeContext(hctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

func (r *rt) tlsConfig(host string) *tls.Config {
	return &tls.Config{ServerName: host, RootCAs: r.env.Roots}
}

// tlsHint explains a verification failure.
const tlsHint = "The round trip sends the password only to a server whose certificate verifies for its name. " +
	"Run `mxray probe HOST` to see what is wrong with the certificate; for a private CA, give it with --tls-ca."

func (r *rt) run(ctx context.Context) {
	ihost, iport, _ := SplitHostPort(r.t.IMAP, 993)
	im := r.imapOpen(ctx, ihost, iport)
	if im == nil {
		return
	}
	defer im.Logout(ctx)
	mbox := r.imapLogin(ctx, im)
	if mbox == nil {
		return
	}
	if !r.submit(ctx) {
		return
	}
	uid, ok := r.wait(ctx, im)
	if !ok {
		return
	}
	r.headers(ctx, im, uid)
	r.delete(ctx, im, uid)
	if r.res.Verdict == "" {
		r.decide(Delivered, fmt.Sprintf("the message arrived in %s's %s %s after submission", r.t.User, r.t.Mailbox,
			diag.FormatElapsed(time.Duration(r.res.LatencyMS*float64(time.Millisecond)))))
	}
}

func (r *rt) fail(done func(diag.Step) diag.Step, v Verdict, title, detail, hint string) {
	done(diag.Step{Status: diag.Fail, Title: title, Detail: detail, Hint: hint})
	r.decide(v, title)
}

func (r *rt) imapOpen(ctx context.Context, host string, port int) *imapc.Client {
	implicit := port == 993
	done := r.begin(StepRTIMAPConnect, fmt.Sprintf("IMAP: connect to %s port %d", host, port), nil)
	conn, err := r.dial(ctx, host, port, implicit)
	if err != nil {
		v := Unchecked
		hint := ""
		if strings.Contains(err.Error(), "TLS handshake") {
			v, hint = Refused, tlsHint
		}
		r.fail(done, v, "IMAP: cannot connect to "+net.JoinHostPort(host, strconv.Itoa(port)), err.Error(), hint)
		return nil
	}
	c := imapc.New(r.env, conn, host)
	g, err := c.Greeting(ctx)
	if err == nil && g.Status != imapc.OK {
		err = fmt.Errorf("greeting: %s", g)
	}
	if err == nil {
		_, _, err = c.Capability(ctx)
	}
	if err == nil && !implicit {
		var sr imapc.Response
		switch {
		case !c.Has("STARTTLS"):
			err = errors.New("the server does not offer STARTTLS: mxray will not send the password in cleartext")
		default:
			if sr, err = c.StartTLS(ctx, nil); err == nil && sr.Status != imapc.OK {
				err = fmt.Errorf("STARTTLS refused: %s", sr)
			}
			if err == nil {
				_, _, err = c.Capability(ctx)
			}
		}
	}
	st := diag.Step{Host: host, IP: remoteIP(conn)}
	if err != nil {
		c.Close()
		v, hint := Unchecked, ""
		if errors.Is(err, imapc.ErrTLS) {
			v, hint = Refused, tlsHint
		}
		if strings.Contains(err.Error(), "STARTTLS") {
			v = Refused
		}
		st.Status, st.Title, st.Hint, st.Transcript = diag.Fail, "IMAP: "+err.Error(), hint, c.Since(0)
		done(st)
		r.decide(v, st.Title)
		return nil
	}
	st.Status = diag.OK
	st.Title = fmt.Sprintf("IMAP: %s, %s", tls.VersionName(tlsOf(conn, c).Version), g)
	st.Transcript = c.Since(0)
	done(st)
	return c
}

func tlsOf(conn net.Conn, c *imapc.Client) *tls.ConnectionState {
	if st := c.TLS(); st != nil {
		return st
	}
	if tc, ok := conn.(*tls.Conn); ok {
		st := tc.ConnectionState()
		return &st
	}
	return &tls.ConnectionState{}
}

func remoteIP(conn net.Conn) string {
	if h, _, err := net.SplitHostPort(conn.RemoteAddr().String()); err == nil {
		return h
	}
	return ""
}

func (r *rt) imapLogin(ctx context.Context, c *imapc.Client) *imapc.Mailbox {
	done := r.begin(StepRTIMAPLogin, "IMAP: log in as "+r.t.User, c)
	var resp imapc.Response
	var err error
	if c.Has("AUTH=PLAIN") {
		resp, err = c.Authenticate(ctx, "PLAIN", r.t.User, r.t.Password)
	} else {
		resp, err = c.Login(ctx, r.t.User, r.t.Password)
	}
	if err != nil {
		r.fail(done, Unchecked, "IMAP: login failed", err.Error(), "")
		return nil
	}
	if resp.Status != imapc.OK {
		r.fail(done, Refused, "IMAP: login refused: "+resp.String(), "", "Check --user and the password.")
		return nil
	}
	mb, sr, err := c.Select(ctx, r.t.Mailbox)
	if err != nil {
		r.fail(done, Refused, "IMAP: cannot open "+r.t.Mailbox+": "+sr.String(), err.Error(), "")
		return nil
	}
	done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("IMAP: logged in as %s; %s has %d messages", r.t.User, mb.Name, mb.Exists),
		Data: map[string]any{"login": resp.String(), "mailbox": mb}})
	return &mb
}

// message builds the test message: RFC 5322 fields, the token in a header
// of its own and in the Message-ID.
func (r *rt) message() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: <%s>\r\n", r.t.From)
	fmt.Fprintf(&b, "To: <%s>\r\n", r.t.To)
	fmt.Fprintf(&b, "Subject: mxray round-trip test %s\r\n", r.t.Token)
	fmt.Fprintf(&b, "Date: %s\r\n", r.env.Clock().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: %s\r\n", r.res.MessageID)
	fmt.Fprintf(&b, "%s: %s\r\n", RoundTripHeader, r.t.Token)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.WriteString("This message was sent by `mxray roundtrip` to measure delivery from\r\n" +
		"submission to this mailbox. mxray deletes it as soon as it arrives;\r\n" +
		"if you can read it, the test did not finish and you may delete it.\r\n")
	return b.Bytes()
}

func (r *rt) submit(ctx context.Context) bool {
	host, port, _ := SplitHostPort(r.t.Submission, 587)
	implicit := port == 465
	done := r.begin(StepRTSubmitConnect, fmt.Sprintf("submission: connect to %s port %d", host, port), nil)
	conn, err := r.dial(ctx, host, port, implicit)
	if err != nil {
		v, hint := Unchecked, ""
		if strings.Contains(err.Error(), "TLS handshake") {
			v, hint = Refused, tlsHint
		}
		r.fail(done, v, "submission: cannot connect to "+net.JoinHostPort(host, strconv.Itoa(port)), err.Error(), hint)
		return false
	}
	c := smtpc.New(r.env, conn, host)
	defer c.Close()
	fail := func(v Verdict, title string, err error, hint string) bool {
		d := ""
		if err != nil {
			d = err.Error()
		}
		done(diag.Step{Status: diag.Fail, Title: title, Detail: d, Hint: hint, Host: host, IP: remoteIP(conn), Transcript: c.Since(0)})
		r.decide(v, title)
		return false
	}
	g, err := c.Greeting(ctx)
	if err != nil || g.Code != 220 {
		return fail(Unchecked, "submission: no usable greeting: "+g.String(), err, "")
	}
	if er, _, err := c.Hello(ctx, r.t.Helo); err != nil || er.Code != 250 {
		return fail(Refused, "submission: EHLO refused: "+er.String(), err, "")
	}
	if !implicit {
		ext, _ := c.Extensions()
		if !ext.Has("STARTTLS") {
			return fail(Refused, "submission: STARTTLS not offered: mxray will not send the password in cleartext", nil, "")
		}
		sr, err := c.StartTLS(ctx, r.tlsConfig(host))
		if err != nil || sr.Code != 220 {
			hint := ""
			if errors.Is(err, smtpc.ErrTLS) {
				hint = tlsHint
			}
			return fail(Refused, "submission: STARTTLS failed: "+sr.String(), err, hint)
		}
		if er, _, err := c.Hello(ctx, r.t.Helo); err != nil || er.Code != 250 {
			return fail(Refused, "submission: EHLO after STARTTLS refused: "+er.String(), err, "")
		}
	}
	version := "TLS"
	if st := c.TLS(); st != nil {
		version = tls.VersionName(st.Version)
	} else if tc, ok := conn.(*tls.Conn); ok {
		version = tls.VersionName(tc.ConnectionState().Version)
	}
	done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("submission: %s, %s", version, g), Host: host, IP: remoteIP(conn), Transcript: c.Since(0)})

	done = r.begin(StepRTSubmitLogin, "submission: log in as "+r.t.User, c)
	ext, _ := c.Extensions()
	mech := pickMech(ext.Auth(), "PLAIN", "LOGIN")
	if mech == "" {
		r.fail(done, Refused, "submission: no AUTH PLAIN or LOGIN offered (offered: "+listOrNone(ext.Auth())+")", "", "")
		return false
	}
	ar, err := c.Auth(ctx, mech, r.t.User, r.t.Password)
	if err != nil {
		r.fail(done, Unchecked, "submission: AUTH failed", err.Error(), "")
		return false
	}
	if ar.Code != 235 {
		r.fail(done, Refused, "submission: login refused: "+ar.String(), "", "Check --user and the password.")
		return false
	}
	done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("submission: logged in as %s (AUTH %s): %s", r.t.User, mech, ar), RFC: "RFC 4954"})

	done = r.begin(StepRTSubmitSend, "submission: send the test message", c)
	msg := r.message()
	mr, err := c.Mail(ctx, r.t.From, smtpc.MailParams{Size: int64(len(msg))})
	if err != nil || mr.Code != 250 {
		r.fail(done, Refused, "submission: sender refused: "+mr.String(), errText(err), "The submission server may insist that --from be an address the user owns.")
		return false
	}
	rr, err := c.Rcpt(ctx, r.t.To)
	if err != nil || !rr.Positive() {
		c.Rset(ctx)
		r.fail(done, Refused, "submission: recipient refused: "+rr.String(), errText(err), "")
		return false
	}
	dr, err := smtpc.SendMessageForRoundTrip(ctx, c, msg)
	if err != nil || dr.Code != 250 {
		r.fail(done, Refused, "submission: message refused: "+dr.String(), errText(err), "")
		return false
	}
	r.res.QueueReply = dr.String()
	c.Quit(ctx)
	done(diag.Step{Status: diag.OK, Title: "submission: message accepted: " + dr.String(), RFC: "RFC 6409",
		Data: map[string]any{"message_id": r.res.MessageID, "token": r.t.Token, "size": len(msg)}})
	return true
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// wait polls the mailbox (NOOP, then UID SEARCH HEADER) until the message
// is there or Wait has passed, at growing intervals from Poll to 2 s.
func (r *rt) wait(ctx context.Context, c *imapc.Client) (uint32, bool) {
	done := r.begin(StepRTWait, fmt.Sprintf("IMAP: wait up to %s for the message", r.t.Wait), c)
	start := r.env.Clock()
	deadline := start.Add(r.t.Wait)
	interval := r.t.Poll
	for {
		r.res.Polls++
		if _, err := c.Noop(ctx); err != nil {
			r.fail(done, Unchecked, "IMAP: connection lost while waiting", err.Error(), "")
			return 0, false
		}
		uids, _, err := c.SearchHeader(ctx, RoundTripHeader, r.t.Token)
		if err != nil {
			r.fail(done, Unchecked, "IMAP: SEARCH failed", err.Error(), "")
			return 0, false
		}
		now := r.env.Clock()
		if len(uids) > 0 {
			lat := now.Sub(start)
			r.res.LatencyMS = diag.Millis(lat)
			r.res.UID = uids[0]
			done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("IMAP: the message arrived (found after %s, %d searches)", diag.FormatElapsed(lat), r.res.Polls),
				Data: map[string]any{"uids": uids, "latency_ms": r.res.LatencyMS, "polls": r.res.Polls}})
			return uids[0], true
		}
		if !now.Before(deadline) || ctx.Err() != nil {
			title := fmt.Sprintf("IMAP: the message did not arrive within %s", r.t.Wait)
			done(diag.Step{Status: diag.Fail, Title: title,
				Detail: fmt.Sprintf("The submission server accepted it (%s), but after %d searches it is not in %s's %s. It may be queued, deferred, filtered into another folder, or bounced: the server's mail log knows (mxray logs trace %s).",
					r.res.QueueReply, r.res.Polls, r.t.User, r.t.Mailbox, r.res.MessageID),
				Hint: fmt.Sprintf("If it arrives later, it carries the header %s: %s; delete it by hand.", RoundTripHeader, r.t.Token)})
			r.decide(NotDelivered, title)
			return 0, false
		}
		sleep := min(interval, deadline.Sub(now))
		select {
		case <-ctx.Done():
		case <-time.After(sleep):
		}
		interval = min(interval*2, 2*time.Second)
	}
}

func (r *rt) headers(ctx context.Context, c *imapc.Client, uid uint32) {
	done := r.begin(StepRTHeaders, "IMAP: the message's trace headers", c)
	raw, _, err := c.FetchHeader(ctx, uid)
	if err != nil {
		done(diag.Step{Status: diag.Warn, Title: "IMAP: could not fetch the header", Detail: err.Error()})
		return
	}
	h := ParseTraceHeaders(raw)
	r.res.Headers = &h
	var lines []string
	for i, rc := range h.Received {
		lines = append(lines, fmt.Sprintf("Received[%d]: %s", i, rc))
	}
	for _, a := range h.AuthenticationResults {
		lines = append(lines, "Authentication-Results: "+a)
	}
	for _, d := range h.DKIMSignature {
		lines = append(lines, "DKIM-Signature: "+d)
	}
	st := diag.Step{Status: diag.Info, Title: fmt.Sprintf("IMAP: %d Received fields, %d Authentication-Results, %d DKIM signatures",
		len(h.Received), len(h.AuthenticationResults), len(h.DKIMSignature)), Detail: strings.Join(lines, "\n"), Data: h}
	done(st)
}

// ParseTraceHeaders unfolds a message header (RFC 5322 §2.2.3) and keeps
// its trace fields in order, top (newest) first. DKIM signatures are
// summarised by their d=, s= and a= tags (the signature itself is noise
// here).
func ParseTraceHeaders(raw []byte) Headers {
	h := Headers{Received: []string{}, AuthenticationResults: []string{}, DKIMSignature: []string{}}
	var fields []string
	for _, line := range strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n") {
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] += " " + strings.TrimSpace(line)
			continue
		}
		if len(fields) == 1000 {
			break
		}
		fields = append(fields, line)
	}
	for _, f := range fields {
		name, value, ok := strings.Cut(f, ":")
		if !ok {
			continue
		}
		value = clip(strings.Join(strings.Fields(value), " "), 1000)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "received":
			h.Received = append(h.Received, value)
		case "authentication-results":
			h.AuthenticationResults = append(h.AuthenticationResults, value)
		case "arc-authentication-results":
			h.ARCAuthenticationResults = append(h.ARCAuthenticationResults, value)
		case "received-spf":
			h.ReceivedSPF = append(h.ReceivedSPF, value)
		case "dkim-signature":
			h.DKIMSignature = append(h.DKIMSignature, dkimSummary(value))
		}
	}
	return h
}

func dkimSummary(v string) string {
	var keep []string
	for _, tag := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(tag), "=")
		switch strings.TrimSpace(k) {
		case "d", "s", "a":
			keep = append(keep, strings.TrimSpace(k)+"="+strings.TrimSpace(val))
		}
	}
	return strings.Join(keep, "; ")
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (r *rt) delete(ctx context.Context, c *imapc.Client, uid uint32) {
	done := r.begin(StepRTDelete, "IMAP: delete the test message", c)
	expunged, resp, err := c.Delete(ctx, uid)
	switch {
	case err != nil:
		done(diag.Step{Status: diag.Warn, Title: "IMAP: could not delete the test message: " + resp.String(), Detail: err.Error(),
			Hint: fmt.Sprintf("Delete the message with header %s: %s by hand.", RoundTripHeader, r.t.Token)})
	case !expunged:
		r.res.Deleted = true
		done(diag.Step{Status: diag.Warn, Title: "IMAP: test message flagged \\Deleted but not expunged",
			Detail: "The server lacks UIDPLUS (RFC 4315): a plain EXPUNGE would also remove every other message flagged \\Deleted in the mailbox, so mxray leaves it to the mail client."})
	default:
		r.res.Deleted, r.res.Expunged = true, true
		done(diag.Step{Status: diag.OK, Title: "IMAP: test message deleted (UID STORE \\Deleted, UID EXPUNGE)", RFC: "RFC 4315"})
	}
}
