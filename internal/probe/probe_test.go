package probe

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func fakeEnv(cm dnsx.ConnectMap) diag.Env {
	env := wiretest.Env(nil)
	env.Dialer = &dnsx.Dialer{ConnectMap: cm}
	return env
}

// TestLegacyTLSAccepted: a POP3S server that still speaks TLS 1.0 and 1.1
// is found out, each version on its own handshake.
func TestLegacyTLSAccepted(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, MinVersion: tls.VersionTLS10}
	srv := wiretest.Start(t, "+OK old server\r\n", cfg, func(s *wiretest.Session, line string) (string, bool) {
		switch line {
		case "CAPA":
			return "+OK\r\nUSER\r\n.\r\n", false
		case "QUIT":
			return "+OK bye\r\n", true
		}
		return "-ERR no\r\n", false
	})
	env := fakeEnv(dnsx.ConnectMap{995: srv.Addr})
	env.Roots = ca.Pool()
	res := Run(context.Background(), env, Target{Host: "127.0.0.1", Services: []Service{POP3S}, Explicit: true}, diag.Discard)
	s := find(t, res, POP3S)
	st := want(t, s, StepVersions, diag.Warn, "accepts TLS 1.0 TLS 1.1 TLS 1.2 TLS 1.3")
	if !strings.Contains(st.Hint, "RFC 8996") {
		t.Errorf("hint %q", st.Hint)
	}
	if s.Matrix.TLS != (Cell{diag.Warn, "TLS 1.3 (also 1.0, 1.1)"}) {
		t.Errorf("TLS cell %+v", s.Matrix.TLS)
	}
	want(t, s, StepCertificate, diag.OK, "certificate valid for 127.0.0.1")
	want(t, s, StepAuth, diag.OK, "login mechanisms: USER")
}

// TestOpenRelay: a server that accepts a foreign recipient is an open
// relay; the check stops before DATA.
func TestOpenRelay(t *testing.T) {
	srv := wiretest.Start(t, "220 relay.test ESMTP\r\n", nil, func(s *wiretest.Session, line string) (string, bool) {
		switch {
		case strings.HasPrefix(line, "EHLO"):
			return "250-relay.test\r\n250 8BITMIME\r\n", false
		case strings.HasPrefix(line, "MAIL"), strings.HasPrefix(line, "RCPT"), line == "RSET":
			return "250 2.0.0 Ok\r\n", false
		case line == "QUIT":
			return "221 Bye\r\n", true
		}
		return "502 no\r\n", false
	})
	res := Run(context.Background(), fakeEnv(dnsx.ConnectMap{25: srv.Addr}),
		Target{Host: "127.0.0.1", Services: []Service{SMTP}, Explicit: true, Helo: "probe.test"}, diag.Discard)
	s := find(t, res, SMTP)
	want(t, s, StepRelay, diag.Fail, "OPEN RELAY")
	want(t, s, StepTLS, diag.Warn, "STARTTLS not offered")
	if s.Relay == nil || !s.Relay.Open {
		t.Errorf("relay %+v", s.Relay)
	}
	wantLines := []string{"EHLO probe.test", "MAIL FROM:<relay-test@mxray.invalid>", "RCPT TO:<probe@example.invalid>", "RSET", "QUIT"}
	if diff := cmp.Diff(wantLines, srv.Lines()); diff != "" {
		t.Errorf("server received (-want +got):\n%s", diff)
	}
}

func TestGreetingRefused(t *testing.T) {
	srv := wiretest.Start(t, "* BYE too many connections\r\n", nil, func(*wiretest.Session, string) (string, bool) { return "", true })
	res := Run(context.Background(), fakeEnv(dnsx.ConnectMap{143: srv.Addr}),
		Target{Host: netip.MustParseAddr("127.0.0.1").String(), Services: []Service{IMAP}, Explicit: true}, diag.Discard)
	want(t, find(t, res, IMAP), StepGreeting, diag.Fail, "greeting refuses service: * BYE too many connections")
}

func TestParseTraceHeaders(t *testing.T) {
	raw := "Return-Path: <a@b.test>\r\n" +
		"Received: from mx1 by mx2\r\n  with LMTP; Sun, 1 Jan 2026\r\n" +
		"Authentication-Results: mx2.test;\r\n\tdkim=pass header.d=b.test\r\n" +
		"DKIM-Signature: v=1; a=rsa-sha256; d=b.test; s=sel;\r\n bh=abc=; b=longsig\r\n" +
		"Received: from client by mx1 with ESMTPSA\r\n" +
		"Subject: x\r\n\r\nReceived: in the body, ignored\r\n"
	got := ParseTraceHeaders([]byte(raw))
	want := Headers{
		Received:              []string{"from mx1 by mx2 with LMTP; Sun, 1 Jan 2026", "from client by mx1 with ESMTPSA"},
		AuthenticationResults: []string{"mx2.test; dkim=pass header.d=b.test"},
		DKIMSignature:         []string{"a=rsa-sha256; d=b.test; s=sel"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestSplitHostPort(t *testing.T) {
	for in, want := range map[string]string{"mail.test": "mail.test 587", "mail.test:465": "mail.test 465", "[::1]:25": "::1 25", "[::1]": "::1 587"} {
		h, p, err := SplitHostPort(in, 587)
		if got := h + " " + strconv.Itoa(p); err != nil || got != want {
			t.Errorf("SplitHostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "a:0", "a:x", "a b", "user@host"} {
		if _, _, err := SplitHostPort(bad, 587); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
