package imapc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func dial(t *testing.T, env diag.Env, srv *wiretest.Server) *Client {
	t.Helper()
	c, err := DialAddr(context.Background(), env, "imap.test", netip.MustParseAddrPort(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// server answers like a small IMAP server; header is alice's one message.
const header = "Received: from a by b; Mon, 1 Jan 2026 00:00:00 +0000\r\nX-Mxray-Roundtrip: tok\r\n\r\n"

func server(sasl bool, uidplus bool) wiretest.Handler {
	return func(s *wiretest.Session, line string) (string, bool) {
		tag, cmd, _ := strings.Cut(line, " ")
		caps := "IMAP4rev1 AUTH=PLAIN"
		if sasl {
			caps += " SASL-IR"
		}
		if uidplus {
			caps += " UIDPLUS"
		}
		switch {
		case cmd == "CAPABILITY":
			return "* CAPABILITY " + caps + "\r\n" + tag + " OK done\r\n", false
		case strings.HasPrefix(cmd, "LOGIN "):
			if cmd == `LOGIN "alice" "s3cr\"et"` {
				return tag + " OK [CAPABILITY IMAP4rev1 UIDPLUS] Logged in\r\n", false
			}
			return tag + " NO [AUTHENTICATIONFAILED] Authentication failed.\r\n", false
		case cmd == "AUTHENTICATE PLAIN":
			return "+ \r\n", false
		case strings.HasPrefix(cmd, "AUTHENTICATE PLAIN "):
			return tag + " OK Logged in\r\n", false
		case tag == "AGFsaWNlAHMzY3IiZXQ=": // the continuation: \0alice\0s3cr"et
			return "a2 OK Logged in\r\n", false
		case cmd == `SELECT "INBOX"`:
			return "* 1 EXISTS\r\n* OK [UIDVALIDITY 1700000000] UIDs valid\r\n* OK [UIDNEXT 8] Predicted next UID\r\n" + tag + " OK [READ-WRITE] Select completed.\r\n", false
		case cmd == `UID SEARCH HEADER "X-Mxray-Roundtrip" "tok"`:
			return "* SEARCH 7\r\n" + tag + " OK Search completed.\r\n", false
		case cmd == "UID FETCH 7 (BODY.PEEK[HEADER])":
			return fmt.Sprintf("* 1 FETCH (UID 7 BODY[HEADER] {%d}\r\n%s)\r\n%s OK Fetch completed.\r\n", len(header), header, tag), false
		case cmd == `UID STORE 7 +FLAGS.SILENT (\Deleted)`:
			return tag + " OK Store completed.\r\n", false
		case cmd == "UID EXPUNGE 7":
			return "* 1 EXPUNGE\r\n" + tag + " OK Expunge completed.\r\n", false
		case cmd == "NOOP":
			return tag + " OK NOOP completed.\r\n", false
		case cmd == "LOGOUT":
			return "* BYE Logging out\r\n" + tag + " OK Logout completed.\r\n", true
		}
		return tag + " BAD Error in IMAP command\r\n", false
	}
}

func TestSession(t *testing.T) {
	var logb bytes.Buffer
	srv := wiretest.Start(t, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n", nil, server(false, true))
	c := dial(t, wiretest.Env(&logb), srv)
	ctx := wiretest.Ctx(t)

	g, err := c.Greeting(ctx)
	if err != nil || g.Status != OK || g.Text != "ready" {
		t.Fatalf("greeting %+v %v", g, err)
	}
	if !c.Has("logindisabled") || !c.Has("STARTTLS") {
		t.Errorf("capabilities from the greeting's code: %v", c.Caps())
	}
	if _, err := c.Login(ctx, "alice", "s3cr\"et"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("LOGIN despite LOGINDISABLED: %v", err)
	}
	caps, _, err := c.Capability(ctx)
	if diff := cmp.Diff([]string{"IMAP4REV1", "AUTH=PLAIN", "UIDPLUS"}, caps); err != nil || diff != "" {
		t.Fatalf("CAPABILITY (-want +got):\n%s %v", diff, err)
	}
	if diff := cmp.Diff([]string{"PLAIN"}, c.AuthMechs()); diff != "" {
		t.Errorf("AuthMechs (-want +got):\n%s", diff)
	}
	r, err := c.Login(ctx, "alice", "wrong")
	if err != nil || r.Status != NO || r.Code != "AUTHENTICATIONFAILED" {
		t.Fatalf("wrong password: %+v %v", r, err)
	}
	r, err = c.Login(ctx, "alice", "s3cr\"et")
	if err != nil || r.Status != OK {
		t.Fatalf("LOGIN: %+v %v", r, err)
	}
	if !c.Has("UIDPLUS") || c.Has("AUTH=PLAIN") {
		t.Errorf("capabilities from the login's code: %v", c.Caps())
	}
	mb, _, err := c.Select(ctx, "INBOX")
	if diff := cmp.Diff(Mailbox{Name: "INBOX", Exists: 1, UIDValidity: 1700000000, UIDNext: 8}, mb); err != nil || diff != "" {
		t.Errorf("SELECT (-want +got):\n%s %v", diff, err)
	}
	uids, _, err := c.SearchHeader(ctx, "X-Mxray-Roundtrip", "tok")
	if err != nil || len(uids) != 1 || uids[0] != 7 {
		t.Fatalf("SEARCH: %v %v", uids, err)
	}
	h, _, err := c.FetchHeader(ctx, 7)
	if err != nil || string(h) != header {
		t.Fatalf("FETCH: %q %v", h, err)
	}
	expunged, _, err := c.Delete(ctx, 7)
	if err != nil || !expunged {
		t.Errorf("Delete: %v %v", expunged, err)
	}
	if r, err := c.Logout(ctx); err != nil || r.Status != OK {
		t.Errorf("LOGOUT %+v %v", r, err)
	}

	tr := strings.Join(c.Since(0), "\n")
	for _, want := range []string{
		`C: a2 LOGIN "alice" <redacted>`,
		"S: a2 NO [AUTHENTICATIONFAILED] Authentication failed.",
		"S: <literal: 81 octets>",
		`C: a7 UID STORE 7 +FLAGS.SILENT (\Deleted)`,
		"C: a8 UID EXPUNGE 7",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	for _, secret := range []string{"s3cr", "wrong"} {
		if strings.Contains(tr, secret) || strings.Contains(logb.String(), secret) {
			t.Errorf("the password %q reached the transcript or the log:\n%s\n%s", secret, tr, logb.String())
		}
	}
	if !strings.Contains(logb.String(), "level=DEBUG-4") {
		t.Errorf("no trace lines in the log:\n%s", logb.String())
	}
}

// TestAuthenticateRedacted covers AUTHENTICATE PLAIN with the initial
// response (SASL-IR) and after a continuation: neither the base64 nor the
// password reaches the transcript or the log.
func TestAuthenticateRedacted(t *testing.T) {
	for _, sasl := range []bool{true, false} {
		t.Run(fmt.Sprint("sasl-ir=", sasl), func(t *testing.T) {
			var logb bytes.Buffer
			srv := wiretest.Start(t, "* OK ready\r\n", nil, server(sasl, false))
			c := dial(t, wiretest.Env(&logb), srv)
			ctx := wiretest.Ctx(t)
			c.Greeting(ctx)
			c.Capability(ctx)
			r, err := c.Authenticate(ctx, "PLAIN", "alice", "s3cr\"et")
			if err != nil || r.Status != OK {
				t.Fatalf("AUTHENTICATE: %+v %v", r, err)
			}
			tr := strings.Join(c.Since(0), "\n")
			want := "C: a2 AUTHENTICATE PLAIN <redacted>"
			if !sasl {
				want = "C: a2 AUTHENTICATE PLAIN\nS: + \nC: <redacted>"
			}
			if !strings.Contains(tr, want) {
				t.Errorf("transcript lacks %q:\n%s", want, tr)
			}
			for _, secret := range []string{"s3cr", "AGFsaWNl"} {
				if strings.Contains(tr+logb.String(), secret) {
					t.Errorf("%q reached the transcript or the log", secret)
				}
			}
			if _, err := c.Authenticate(ctx, "CRAM-MD5", "a", "b"); !errors.Is(err, ErrUnsupported) {
				t.Errorf("CRAM-MD5: %v", err)
			}
		})
	}
}

func TestDeleteWithoutUIDPLUS(t *testing.T) {
	srv := wiretest.Start(t, "* OK ready\r\n", nil, server(false, false))
	c := dial(t, wiretest.Env(nil), srv)
	ctx := wiretest.Ctx(t)
	c.Greeting(ctx)
	c.Capability(ctx)
	expunged, _, err := c.Delete(ctx, 7)
	if err != nil || expunged {
		t.Errorf("Delete without UIDPLUS: expunged %v, %v; want flagged only", expunged, err)
	}
	for _, l := range srv.Lines() {
		if strings.Contains(l, "EXPUNGE") {
			t.Errorf("sent %q: a plain EXPUNGE would remove other flagged messages", l)
		}
	}
}

func TestLimitsAndErrors(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		want  error
	}{
		{"literal too big", fmt.Sprintf("* 1 FETCH (BODY[HEADER] {%d}\r\n", MaxLiteral+1), ErrProtocol},
		{"line too long", "* " + strings.Repeat("x", MaxLine+10) + "\r\n", ErrProtocol},
		{"wrong tag", "zz OK done\r\n", ErrProtocol},
		{"not IMAP", "HTTP/1.1 400 Bad Request\r\n", ErrProtocol},
		{"continuation", "+ go ahead\r\n", ErrProtocol},
		{"closed", "", ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := wiretest.Start(t, "* OK ready\r\n", nil, func(s *wiretest.Session, line string) (string, bool) {
				return tc.reply, tc.reply == ""
			})
			c := dial(t, wiretest.Env(nil), srv)
			ctx := wiretest.Ctx(t)
			c.Greeting(ctx)
			if _, err := c.Noop(ctx); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("too many untagged", func(t *testing.T) {
		srv := wiretest.Start(t, "* OK ready\r\n", nil, func(s *wiretest.Session, line string) (string, bool) {
			return strings.Repeat("* 1 EXISTS\r\n", MaxUntagged+1), false
		})
		c := dial(t, wiretest.Env(nil), srv)
		ctx := wiretest.Ctx(t)
		c.Greeting(ctx)
		if _, err := c.Noop(ctx); !errors.Is(err, ErrProtocol) {
			t.Errorf("got %v, want ErrProtocol", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		srv := wiretest.Start(t, "* OK ready\r\n", nil, func(s *wiretest.Session, line string) (string, bool) { return "", false })
		env := wiretest.Env(nil)
		env.Limits.Command = 50e6 // 50 ms
		c := dial(t, env, srv)
		ctx := wiretest.Ctx(t)
		c.Greeting(ctx)
		if _, err := c.Noop(ctx); !errors.Is(err, ErrTimeout) {
			t.Errorf("got %v, want ErrTimeout", err)
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		srv := wiretest.Start(t, "* OK ready\r\n", nil, server(false, false))
		c := dial(t, wiretest.Env(nil), srv)
		ctx := wiretest.Ctx(t)
		c.Greeting(ctx)
		for _, call := range []func() error{
			func() error { _, err := c.Login(ctx, "a\r\nb LOGOUT", "x"); return err },
			func() error { _, err := c.Login(ctx, "a", "pässword"); return err },
			func() error { _, _, err := c.Select(ctx, "IN\nBOX"); return err },
			func() error { _, _, err := c.SearchHeader(ctx, "X", "a\x00"); return err },
		} {
			if err := call(); !errors.Is(err, ErrBadArgument) {
				t.Errorf("got %v, want ErrBadArgument", err)
			}
		}
		for _, l := range srv.Lines() {
			if strings.Contains(l, "LOGOUT") || strings.Contains(l, "LOGIN") {
				t.Errorf("server received %q", l)
			}
		}
	})
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		want Response
		err  bool
	}{
		{"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.", Response{Tag: "*", Status: OK, Code: "CAPABILITY IMAP4rev1 AUTH=PLAIN", Text: "Dovecot ready."}, false},
		{"a1 no [AUTHENTICATIONFAILED] Authentication failed.", Response{Tag: "a1", Status: NO, Code: "AUTHENTICATIONFAILED", Text: "Authentication failed."}, false},
		{"a2 BAD", Response{Tag: "a2", Status: BAD}, false},
		{"* BYE shutting down\x1b[2J", Response{Tag: "*", Status: BYE, Text: `shutting down\x1b[2J`}, false},
		{"* PREAUTH welcome", Response{Tag: "*", Status: PREAUTH, Text: "welcome"}, false},
		{"a1 MAYBE x", Response{}, true},
		{"a1", Response{}, true},
		{"a1 OK [unterminated", Response{}, true},
	}
	for _, tc := range tests {
		got, err := ParseStatus(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseStatus(%q) error %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseStatus(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseFetchHeader(t *testing.T) {
	lits := [][][]byte{{[]byte("flags")}, {[]byte("body"), []byte("HDR")}}
	untagged := []string{"1 FETCH (UID 3 BODY[HEADER] {5})", "2 FETCH (UID 9 X-GM {4} BODY[HEADER] {3})"}
	if h, ok := ParseFetchHeader(untagged, lits, 9); !ok || string(h) != "HDR" {
		t.Errorf("UID 9: %q %v", h, ok)
	}
	if h, ok := ParseFetchHeader(untagged, lits, 3); !ok || string(h) != "flags" {
		t.Errorf("UID 3: %q %v", h, ok)
	}
	if _, ok := ParseFetchHeader(untagged, lits, 4); ok {
		t.Error("UID 4 found")
	}
	if _, ok := ParseFetchHeader([]string{"1 FETCH (UID 3 BODY[HEADER] {5})"}, nil, 3); ok {
		t.Error("found a header without its literal")
	}
}

func TestSearchParse(t *testing.T) {
	got, err := ParseSearch([]string{"SEARCH 1 22 333", "3 EXISTS", "search"})
	if diff := cmp.Diff([]uint32{1, 22, 333}, got); err != nil || diff != "" {
		t.Errorf("(-want +got):\n%s %v", diff, err)
	}
	if _, err := ParseSearch([]string{"SEARCH 1 x"}); !errors.Is(err, ErrProtocol) {
		t.Errorf("bad number: %v", err)
	}
}
