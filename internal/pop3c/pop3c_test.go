package pop3c

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func dial(t *testing.T, env diag.Env, srv *wiretest.Server) *Client {
	t.Helper()
	c, err := DialAddr(context.Background(), env, "pop.test", netip.MustParseAddrPort(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func server(s *wiretest.Session, line string) (string, bool) {
	switch {
	case line == "CAPA":
		return "+OK\r\nCAPA\r\nUSER\r\nSASL PLAIN LOGIN\r\n..dotted\r\nSTLS\r\n.\r\n", false
	case line == "USER alice":
		return "+OK\r\n", false
	case line == "PASS s3cret":
		return "+OK Logged in.\r\n", false
	case strings.HasPrefix(line, "PASS "):
		return "-ERR [AUTH] Authentication failed.\r\n", false
	case line == "AUTH PLAIN AGFsaWNlAHMzY3JldA==":
		return "+OK Logged in.\r\n", false
	case line == "STAT":
		return "+OK 2 320\r\n", false
	case line == "QUIT":
		return "+OK Logging out.\r\n", true
	}
	return "-ERR Unknown command.\r\n", false
}

func TestSession(t *testing.T) {
	var logb bytes.Buffer
	srv := wiretest.Start(t, "+OK Dovecot ready.\r\n", nil, server)
	c := dial(t, wiretest.Env(&logb), srv)
	ctx := wiretest.Ctx(t)
	if g, err := c.Greeting(ctx); err != nil || !g.OK || g.Text != "Dovecot ready." {
		t.Fatalf("greeting %+v %v", g, err)
	}
	caps, _, err := c.Capa(ctx)
	if diff := cmp.Diff([]string{"CAPA", "USER", "SASL PLAIN LOGIN", ".DOTTED", "STLS"}, caps); err != nil || diff != "" {
		t.Fatalf("CAPA (-want +got):\n%s %v", diff, err)
	}
	if !c.Has("stls") || !c.Has("USER") || c.Has("TOP") {
		t.Errorf("Has: %v", caps)
	}
	if diff := cmp.Diff([]string{"PLAIN", "LOGIN"}, c.SASL()); diff != "" {
		t.Errorf("SASL (-want +got):\n%s", diff)
	}
	r, err := c.UserPass(ctx, "alice", "wrong")
	if err != nil || r.OK || r.Code != "AUTH" || r.String() != "-ERR [AUTH] Authentication failed." {
		t.Fatalf("wrong password: %+v %v", r, err)
	}
	if r, err := c.UserPass(ctx, "alice", "s3cret"); err != nil || !r.OK {
		t.Fatalf("USER/PASS: %+v %v", r, err)
	}
	if r, err := c.Auth(ctx, "PLAIN", "alice", "s3cret"); err != nil || !r.OK {
		t.Fatalf("AUTH PLAIN: %+v %v", r, err)
	}
	if r, err := c.Stat(ctx); err != nil || r.Text != "2 320" {
		t.Errorf("STAT: %+v %v", r, err)
	}
	if _, err := c.Auth(ctx, "XOAUTH2", "a", "b"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("XOAUTH2: %v", err)
	}
	if _, err := c.UserPass(ctx, "alice", "x\r\nQUIT"); !errors.Is(err, ErrBadArgument) {
		t.Errorf("injected line: %v", err)
	}
	c.Quit(ctx)
	tr := strings.Join(c.Since(0), "\n")
	for _, want := range []string{"C: USER alice", "C: PASS <redacted>", "C: AUTH PLAIN <redacted>", "S: -ERR [AUTH] Authentication failed."} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	for _, secret := range []string{"s3cret", "wrong", "AGFsaWNl"} {
		if strings.Contains(tr+logb.String(), secret) {
			t.Errorf("%q reached the transcript or the log", secret)
		}
	}
}

func TestLimitsAndErrors(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  error
	}{
		{"too many lines", "+OK\r\n" + strings.Repeat("X\r\n", MaxLines+1) + ".\r\n", ErrProtocol},
		{"line too long", "+OK " + strings.Repeat("x", MaxLine) + "\r\n", ErrProtocol},
		{"not POP3", "* OK IMAP here\r\n", ErrProtocol},
		{"closed mid-list", "+OK\r\nCAPA\r\n", ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := wiretest.Start(t, "+OK hi\r\n", nil, func(s *wiretest.Session, line string) (string, bool) { return tc.reply, true })
			c := dial(t, wiretest.Env(nil), srv)
			ctx := wiretest.Ctx(t)
			c.Greeting(ctx)
			if _, _, err := c.Capa(ctx); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestParseReply(t *testing.T) {
	tests := []struct {
		in   string
		want Reply
		err  bool
	}{
		{"+OK", Reply{OK: true}, false},
		{"+OK 2 320", Reply{OK: true, Text: "2 320"}, false},
		{"-ERR [SYS/TEMP] try later", Reply{Code: "SYS/TEMP", Text: "try later"}, false},
		{"-ERR [bad", Reply{Text: "[bad"}, false},
		{"+OKAY", Reply{}, true},
		{"OK", Reply{}, true},
	}
	for _, tc := range tests {
		got, err := ParseReply(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseReply(%q) error %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseReply(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}
