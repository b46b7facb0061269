package sievec

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

const caps = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" {17}\r\nfileinto vacation\r\n\"SASL\" \"\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n"

const capsTLS = "\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"VERSION\" \"1.0\"\r\nOK \"TLS negotiation successful.\"\r\n"

func dial(t *testing.T, env diag.Env, srv *wiretest.Server) *Client {
	t.Helper()
	c, err := DialAddr(context.Background(), env, "sieve.test", netip.MustParseAddrPort(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestSession(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"sieve.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
	srv := wiretest.Start(t, caps, nil, func(s *wiretest.Session, line string) (string, bool) {
		switch line {
		case "CAPABILITY":
			return caps, false
		case "STARTTLS":
			s.Conn.Write([]byte("OK \"Begin TLS negotiation now.\"\r\n"))
			if err := s.StartTLS(srvTLS); err != nil {
				return "", true
			}
			return capsTLS, false
		case `AUTHENTICATE "PLAIN" "AGFsaWNlAHMzY3JldA=="`:
			return "OK \"Logged in.\"\r\n", false
		case "LOGOUT":
			return "OK \"Logout completed.\"\r\n", true
		}
		if strings.HasPrefix(line, "AUTHENTICATE") {
			return "NO (AUTH-TOO-WEAK) \"Authentication failed.\"\r\n", false
		}
		return "NO \"Unknown command.\"\r\n", false
	})
	var logb bytes.Buffer
	env := wiretest.Env(&logb)
	env.Roots = ca.Pool()
	c := dial(t, env, srv)
	ctx := wiretest.Ctx(t)
	g, err := c.Greeting(ctx)
	if err != nil || g.Status != OK || g.Text != "Dovecot ready." {
		t.Fatalf("greeting %+v %v", g, err)
	}
	want := []string{"IMPLEMENTATION Dovecot Pigeonhole", "SASL", "SIEVE fileinto vacation", "STARTTLS", "VERSION 1.0"}
	if diff := cmp.Diff(want, c.CapList()); diff != "" {
		t.Errorf("capabilities (-want +got):\n%s", diff)
	}
	if len(c.SASL()) != 0 || !c.Has("starttls") {
		t.Errorf("SASL %v, STARTTLS %v", c.SASL(), c.Has("STARTTLS"))
	}
	if r, err := c.Capability(ctx); err != nil || r.Status != OK {
		t.Errorf("CAPABILITY %+v %v", r, err)
	}
	if r, err := c.StartTLS(ctx, nil); err != nil || r.Status != OK || c.TLS() == nil {
		t.Fatalf("STARTTLS %+v %v", r, err)
	}
	if diff := cmp.Diff([]string{"PLAIN", "LOGIN"}, c.SASL()); diff != "" || c.Has("STARTTLS") {
		t.Errorf("capabilities after TLS (-want +got):\n%s", diff)
	}
	r, err := c.Authenticate(ctx, "PLAIN", "alice", "wrong")
	if err != nil || r.Status != NO || r.Code != "AUTH-TOO-WEAK" || r.String() != `NO (AUTH-TOO-WEAK) "Authentication failed."` {
		t.Errorf("wrong password: %+v %v", r, err)
	}
	if r, err := c.Authenticate(ctx, "PLAIN", "alice", "s3cret"); err != nil || r.Status != OK {
		t.Errorf("AUTHENTICATE %+v %v", r, err)
	}
	if _, err := c.Authenticate(ctx, "SCRAM-SHA-1", "a", "b"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("SCRAM: %v", err)
	}
	c.Logout(ctx)
	tr := strings.Join(c.Since(0), "\n")
	for _, w := range []string{`C: AUTHENTICATE "PLAIN" <redacted>`, "S: <literal: 17 octets>", `S: OK "Logged in."`} {
		if !strings.Contains(tr, w) {
			t.Errorf("transcript lacks %q:\n%s", w, tr)
		}
	}
	for _, secret := range []string{"s3cret", "wrong", "AGFsaWNl"} {
		if strings.Contains(tr+logb.String(), secret) {
			t.Errorf("%q reached the transcript or the log", secret)
		}
	}
}

func TestTokenize(t *testing.T) {
	tests := []struct {
		in   string
		want []Token
		err  bool
	}{
		{`"SASL" "PLAIN LOGIN"`, []Token{{String, "SASL"}, {String, "PLAIN LOGIN"}}, false},
		{`OK (SASL "cmVzcA==") "done"`, []Token{{Atom, "OK"}, {Code, `SASL "cmVzcA=="`}, {String, "done"}}, false},
		{`NO (REFERRAL "sieve://x/") "a \"q\" \\ b"`, []Token{{Atom, "NO"}, {Code, `REFERRAL "sieve://x/"`}, {String, `a "q" \ b`}}, false},
		{`"STARTTLS"`, []Token{{String, "STARTTLS"}}, false},
		{`"open`, nil, true},
		{`"bad \x escape"`, nil, true},
		{`NO (unclosed`, nil, true},
	}
	for _, tc := range tests {
		got, err := Tokenize(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("Tokenize(%q) error %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("Tokenize(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestLimitsAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		greeting string
	}{
		{"literal too big", "\"SIEVE\" {999999}\r\n"},
		{"too many lines", strings.Repeat("\"X\"\r\n", MaxLines+1) + "OK\r\n"},
		{"line too long", "\"" + strings.Repeat("x", MaxLine) + "\"\r\n"},
		{"unterminated", "\"IMPLEMENTATION\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := wiretest.Start(t, tc.greeting, nil, func(*wiretest.Session, string) (string, bool) { return "", true })
			c := dial(t, wiretest.Env(nil), srv)
			if _, err := c.Greeting(wiretest.Ctx(t)); !errors.Is(err, ErrProtocol) {
				t.Errorf("got %v, want ErrProtocol", err)
			}
		})
	}
}
