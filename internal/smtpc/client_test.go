package smtpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// fake is a scripted SMTP server on 127.0.0.1:0. handle gets each command
// line and returns the raw reply to send ("" sends nothing; close ends
// the session).
type fake struct {
	ln       net.Listener
	greeting string
	handle   func(s *session, line string) (reply string, close bool)

	mu   sync.Mutex
	seen []string // every line received
}

type session struct {
	conn net.Conn
	r    *bufio.Reader
	tls  *tls.Config
}

func startFake(t *testing.T, greeting string, handle func(s *session, line string) (string, bool)) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{ln: ln, greeting: greeting, handle: handle}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fake) serve(c net.Conn) {
	defer c.Close()
	s := &session{conn: c, r: bufio.NewReader(c)}
	if f.greeting != "" {
		io.WriteString(c, f.greeting)
	}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.mu.Lock()
		f.seen = append(f.seen, line)
		f.mu.Unlock()
		reply, done := f.handle(s, line)
		if reply != "" {
			io.WriteString(s.conn, reply)
		}
		if done {
			return
		}
	}
}

func (f *fake) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

func testEnv(logw io.Writer) diag.Env {
	env := diag.Env{
		Dialer: &dnsx.Dialer{},
		Limits: diag.Limits{Connect: 2 * time.Second, Command: 2 * time.Second},
	}
	if logw != nil {
		env.Logger = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: levelTrace}))
	}
	return env
}

func dial(t *testing.T, env diag.Env, f *fake) *Client {
	t.Helper()
	c, err := DialAddr(context.Background(), env, "mx.test", netip.MustParseAddrPort(f.ln.Addr().String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// basic answers like a small MTA.
func basic(s *session, line string) (string, bool) {
	u := strings.ToUpper(line)
	switch {
	case strings.HasPrefix(u, "EHLO"):
		return "250-mx.test hello\r\n250-SIZE 1000\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n", false
	case strings.HasPrefix(u, "HELO"):
		return "250 mx.test\r\n", false
	case strings.HasPrefix(u, "MAIL"):
		return "250 2.1.0 Ok\r\n", false
	case strings.HasPrefix(u, "RCPT TO:<NOBODY"):
		return "550-5.1.1 <nobody@mx.test>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n", false
	case strings.HasPrefix(u, "RCPT"):
		return "250 2.1.5 Ok\r\n", false
	case u == "RSET", u == "NOOP":
		return "250 2.0.0 Ok\r\n", false
	case u == "QUIT":
		return "221 2.0.0 Bye\r\n", true
	}
	return "502 5.5.2 Error: command not recognized\r\n", false
}

func TestSession(t *testing.T) {
	f := startFake(t, "220-mx.test ESMTP\r\n220 no UCE\r\n", basic)
	c := dial(t, testEnv(nil), f)
	ctx := context.Background()

	g, err := c.Greeting(ctx)
	if err != nil || g.Code != 220 || len(g.Lines) != 2 {
		t.Fatalf("greeting %+v, %v", g, err)
	}
	if _, ok := c.Extensions(); ok {
		t.Errorf("extensions known before EHLO")
	}
	if r, helo, err := c.Hello(ctx, "client.test"); err != nil || r.Code != 250 || helo {
		t.Fatalf("EHLO: %+v helo=%v %v", r, helo, err)
	}
	ext, ok := c.Extensions()
	if !ok || !ext.Has("SMTPUTF8") {
		t.Fatalf("extensions %+v", ext)
	}
	if r, err := c.Mail(ctx, "", MailParams{Size: 42, SMTPUTF8: true}); err != nil || r.Code != 250 || r.Enhanced != "2.1.0" {
		t.Fatalf("MAIL: %+v %v", r, err)
	}
	r, err := c.Rcpt(ctx, "nobody@mx.test")
	if err != nil || !r.Permanent() || r.Enhanced != "5.1.1" || r.Command != "RCPT TO:<nobody@mx.test>" {
		t.Fatalf("RCPT: %+v %v", r, err)
	}
	if r, err := c.Rcpt(ctx, "alice@mx.test"); err != nil || r.Code != 250 {
		t.Fatalf("RCPT: %+v %v", r, err)
	}
	mark := c.Mark()
	if r, err := c.Rset(ctx); err != nil || r.Code != 250 {
		t.Fatalf("RSET: %+v %v", r, err)
	}
	if diff := cmp.Diff([]string{"C: RSET", "S: 250 2.0.0 Ok"}, c.Since(mark)); diff != "" {
		t.Errorf("Since (-want +got):\n%s", diff)
	}
	if r, err := c.Noop(ctx); err != nil || r.Code != 250 {
		t.Fatalf("NOOP: %+v %v", r, err)
	}
	if r, err := c.Quit(ctx); err != nil || r.Code != 221 {
		t.Fatalf("QUIT: %+v %v", r, err)
	}

	want := []string{
		"S: 220-mx.test ESMTP", "S: 220 no UCE",
		"C: EHLO client.test", "S: 250-mx.test hello", "S: 250-SIZE 1000", "S: 250-SMTPUTF8", "S: 250 ENHANCEDSTATUSCODES",
		"C: MAIL FROM:<> SIZE=42 SMTPUTF8", "S: 250 2.1.0 Ok",
		"C: RCPT TO:<nobody@mx.test>", "S: 550-5.1.1 <nobody@mx.test>: Recipient address rejected:", "S: 550 5.1.1 User unknown",
		"C: RCPT TO:<alice@mx.test>", "S: 250 2.1.5 Ok",
		"C: RSET", "S: 250 2.0.0 Ok",
		"C: NOOP", "S: 250 2.0.0 Ok",
		"C: QUIT", "S: 221 2.0.0 Bye",
	}
	if diff := cmp.Diff(want, c.Since(0)); diff != "" {
		t.Errorf("transcript (-want +got):\n%s", diff)
	}
	tr := c.Transcript()
	for i := 1; i < len(tr); i++ {
		if tr[i].Offset < tr[i-1].Offset {
			t.Errorf("offsets go backwards at line %d: %v", i, tr)
		}
	}
}

func TestHeloFallback(t *testing.T) {
	f := startFake(t, "220 old.test\r\n", func(s *session, line string) (string, bool) {
		if strings.HasPrefix(line, "EHLO") {
			return "500 5.5.1 unknown command\r\n", false
		}
		return basic(s, line)
	})
	c := dial(t, testEnv(nil), f)
	ctx := context.Background()
	c.Greeting(ctx)
	r, helo, err := c.Hello(ctx, "client.test")
	if err != nil || !helo || r.Code != 250 {
		t.Fatalf("Hello: %+v helo=%v %v", r, helo, err)
	}
	if _, ok := c.Extensions(); ok {
		t.Errorf("extensions after HELO")
	}
	// Without SMTPUTF8 announced, a UTF-8 transaction is refused here,
	// before anything is sent.
	if _, err := c.Mail(ctx, "", MailParams{SMTPUTF8: true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("MAIL SMTPUTF8 without the extension: %v, want ErrUnsupported", err)
	}
	for _, l := range f.lines() {
		if strings.HasPrefix(l, "MAIL") {
			t.Errorf("MAIL was sent: %q", l)
		}
	}
}

func TestAuthIsRedacted(t *testing.T) {
	const user, pass = "alice@mx.test", "s3cret-Pa55"
	var got [][2]string
	var mu sync.Mutex
	f := startFake(t, "220 mx.test\r\n", func(s *session, line string) (string, bool) {
		dec := func(b64 string) string {
			b, _ := base64.StdEncoding.DecodeString(b64)
			return string(b)
		}
		switch {
		case strings.HasPrefix(line, "AUTH PLAIN "):
			parts := strings.Split(dec(strings.TrimPrefix(line, "AUTH PLAIN ")), "\x00")
			mu.Lock()
			got = append(got, [2]string{parts[1], parts[2]})
			mu.Unlock()
			return "235 2.7.0 Authentication successful\r\n", false
		}
		return basic(s, line)
	})
	// AUTH LOGIN needs a conversation: script it by hand.
	loginFake := startFake(t, "220 mx.test\r\n", func(s *session, line string) (string, bool) {
		if line != "AUTH LOGIN" {
			return basic(s, line)
		}
		io.WriteString(s.conn, "334 VXNlcm5hbWU6\r\n")
		u, _ := s.r.ReadString('\n')
		io.WriteString(s.conn, "334 UGFzc3dvcmQ6\r\n")
		p, _ := s.r.ReadString('\n')
		ub, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(u))
		pb, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(p))
		mu.Lock()
		got = append(got, [2]string{string(ub), string(pb)})
		mu.Unlock()
		return "235 2.7.0 Authentication successful\r\n", false
	})

	var logs bytes.Buffer
	env := testEnv(&logs)
	ctx := context.Background()
	var transcript []string
	for _, tc := range []struct {
		f    *fake
		mech string
	}{{f, "PLAIN"}, {loginFake, "LOGIN"}} {
		c := dial(t, env, tc.f)
		c.Greeting(ctx)
		c.Ehlo(ctx, "client.test")
		r, err := c.Auth(ctx, tc.mech, user, pass)
		if err != nil || r.Code != 235 {
			t.Fatalf("AUTH %s: %+v %v", tc.mech, r, err)
		}
		c.Quit(ctx)
		transcript = append(transcript, c.Since(0)...)
	}
	if diff := cmp.Diff([][2]string{{user, pass}, {user, pass}}, got); diff != "" {
		t.Errorf("server got (-want +got):\n%s", diff)
	}
	all := strings.Join(transcript, "\n") + "\n" + logs.String()
	secrets := []string{pass, base64.StdEncoding.EncodeToString([]byte(pass)),
		base64.StdEncoding.EncodeToString([]byte(user)),
		base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("secret %q appears in the transcript or log:\n%s", s, all)
		}
	}
	for _, want := range []string{"C: AUTH PLAIN <redacted>", "C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: <redacted>"} {
		if !strings.Contains(all, want) {
			t.Errorf("transcript lacks %q:\n%s", want, all)
		}
	}
	if !strings.Contains(logs.String(), "level=DEBUG-4") || !strings.Contains(logs.String(), "AUTH PLAIN <redacted>") {
		t.Errorf("the trace log lacks the redacted protocol lines:\n%s", logs.String())
	}
	if _, err := (&Client{}).Auth(ctx, "CRAM-MD5", user, pass); !errors.Is(err, ErrUnsupported) {
		t.Errorf("unknown mechanism: %v, want ErrUnsupported", err)
	}
}

func TestErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("silent server times out", func(t *testing.T) {
		f := startFake(t, "", func(*session, string) (string, bool) { return "", false })
		env := testEnv(nil)
		env.Limits.Command = 100 * time.Millisecond
		c := dial(t, env, f)
		if _, err := c.Greeting(ctx); !errors.Is(err, ErrTimeout) {
			t.Fatalf("greeting: %v, want ErrTimeout", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		f := startFake(t, "", func(*session, string) (string, bool) { return "", false })
		c := dial(t, testEnv(nil), f)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := c.Greeting(cctx); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.Canceled) {
			t.Fatalf("greeting: %v, want ErrTimeout wrapping context.Canceled", err)
		}
	})
	t.Run("server hangs up", func(t *testing.T) {
		f := startFake(t, "220 mx.test\r\n", func(*session, string) (string, bool) { return "", true })
		c := dial(t, testEnv(nil), f)
		c.Greeting(ctx)
		if _, err := c.Ehlo(ctx, "client.test"); !errors.Is(err, ErrClosed) {
			t.Fatalf("EHLO: %v, want ErrClosed", err)
		}
	})
	t.Run("endless reply", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
			for {
				if _, err := io.WriteString(c, "220-still talking\r\n"); err != nil {
					return
				}
			}
		}()
		c, err := DialAddr(ctx, testEnv(nil), "mx.test", netip.MustParseAddrPort(ln.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Greeting(ctx); !errors.Is(err, ErrProtocol) {
			t.Fatalf("greeting: %v, want ErrProtocol", err)
		}
		if n := len(c.Transcript()); n > MaxReplyLines {
			t.Errorf("kept %d lines of an endless reply", n)
		}
	})
	t.Run("refused connection", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := netip.MustParseAddrPort(ln.Addr().String())
		ln.Close()
		_, err := DialAddr(ctx, testEnv(nil), "mx.test", addr)
		if !errors.Is(err, dnsx.ErrConnRefused) {
			t.Fatalf("dial: %v, want dnsx.ErrConnRefused", err)
		}
	})
	t.Run("connect map applies", func(t *testing.T) {
		f := startFake(t, "220 mapped\r\n", basic)
		env := testEnv(nil)
		env.Dialer.ConnectMap = dnsx.ConnectMap{25: f.ln.Addr().String()}
		c, err := Dial(ctx, env, "127.0.0.1:25")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if r, err := c.Greeting(ctx); err != nil || r.Text() != "mapped" {
			t.Fatalf("greeting %+v %v", r, err)
		}
	})
}

// TestNoCommandInjection: an argument with a line break would smuggle a
// second command (DATA, say) into the session; it is refused unsent.
func TestNoCommandInjection(t *testing.T) {
	f := startFake(t, "220 mx.test\r\n", basic)
	c := dial(t, testEnv(nil), f)
	ctx := context.Background()
	c.Greeting(ctx)
	c.Ehlo(ctx, "client.test")
	for _, call := range []func() error{
		func() error { _, err := c.Mail(ctx, "a@b.test>\r\nDATA", MailParams{}); return err },
		func() error { _, err := c.Rcpt(ctx, "x@y.test\r\nDATA"); return err },
		func() error { _, err := c.Rcpt(ctx, "x@y.test> NOTIFY=NEVER"); return err },
		func() error { _, err := c.Ehlo(ctx, "a\r\nDATA"); return err },
		func() error { _, err := c.Rcpt(ctx, ""); return err },
	} {
		if err := call(); !errors.Is(err, ErrBadArgument) {
			t.Errorf("got %v, want ErrBadArgument", err)
		}
	}
	c.Quit(ctx)
	for _, l := range f.lines() {
		if strings.Contains(strings.ToUpper(l), "DATA") || strings.HasPrefix(l, "MAIL") || strings.HasPrefix(l, "RCPT") {
			t.Errorf("server received %q", l)
		}
	}
}

// TestCannotSendMessages pins the safety contract (DESIGN.md): the client
// has no way to send message content. The one exception is the separate
// function SendMessageForRoundTrip, for `mxray roundtrip` only, whose
// callers TestOnlyRoundTripSends pins.
func TestCannotSendMessages(t *testing.T) {
	typ := reflect.TypeOf(&Client{})
	for i := 0; i < typ.NumMethod(); i++ {
		switch name := strings.ToUpper(typ.Method(i).Name); name {
		case "DATA", "BDAT", "SEND", "SENDMAIL", "WRITE":
			t.Errorf("Client has method %s", typ.Method(i).Name)
		}
	}
}

func TestStartTLS(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"mx.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	handler := func(inject bool) func(s *session, line string) (string, bool) {
		return func(s *session, line string) (string, bool) {
			if line != "STARTTLS" {
				if strings.HasPrefix(line, "EHLO") {
					return "250-mx.test\r\n250 STARTTLS\r\n", false
				}
				return basic(s, line)
			}
			if inject {
				return "220 2.0.0 Ready\r\n250 injected\r\n", true
			}
			io.WriteString(s.conn, "220 2.0.0 Ready to start TLS\r\n")
			tc := tls.Server(s.conn, srvTLS)
			if err := tc.Handshake(); err != nil {
				return "", true
			}
			s.conn, s.r = tc, bufio.NewReader(tc)
			return "", false
		}
	}
	ctx := context.Background()
	env := testEnv(nil)
	env.Roots = ca.Pool()

	c := dial(t, env, startFake(t, "220 mx.test\r\n", handler(false)))
	c.Greeting(ctx)
	c.Ehlo(ctx, "client.test")
	r, err := c.StartTLS(ctx, nil) // full verification against env.Roots
	if err != nil || r.Code != 220 {
		t.Fatalf("STARTTLS: %+v %v", r, err)
	}
	st := c.TLS()
	if st == nil || !st.HandshakeComplete || st.ServerName != "mx.test" || len(st.PeerCertificates) == 0 {
		t.Fatalf("TLS state %+v", st)
	}
	if _, ok := c.Extensions(); ok {
		t.Errorf("extensions kept across STARTTLS (RFC 3207 §4.2)")
	}
	if r, err := c.Ehlo(ctx, "client.test"); err != nil || r.Code != 250 {
		t.Fatalf("EHLO over TLS: %+v %v", r, err)
	}
	if r, err := c.Quit(ctx); err != nil || r.Code != 221 {
		t.Fatalf("QUIT over TLS: %+v %v", r, err)
	}

	// Without the lab root the verifying handshake fails with ErrTLS.
	env.Roots = nil
	c = dial(t, env, startFake(t, "220 mx.test\r\n", handler(false)))
	c.Greeting(ctx)
	if _, err := c.StartTLS(ctx, nil); !errors.Is(err, ErrTLS) {
		t.Errorf("STARTTLS against an unknown CA: %v, want ErrTLS", err)
	}

	// Bytes after the 220 are a response-injection attempt.
	c = dial(t, env, startFake(t, "220 mx.test\r\n", handler(true)))
	c.Greeting(ctx)
	if _, err := c.StartTLS(ctx, &tls.Config{InsecureSkipVerify: true}); !errors.Is(err, ErrProtocol) {
		t.Errorf("injected reply: %v, want ErrProtocol", err)
	}
}
