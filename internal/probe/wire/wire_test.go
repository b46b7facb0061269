package wire_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/probe/wire"
	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func TestReadLine(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{"abc\r\n", "abc", nil},
		{"bare lf\n", "bare lf", nil},
		{strings.Repeat("x", 20) + "\r\n", "", wire.ErrProtocol},
		{"partial", "partial", io.ErrUnexpectedEOF},
		{"", "", io.EOF},
	}
	for _, tc := range tests {
		got, err := wire.ReadLine(bufio.NewReaderSize(strings.NewReader(tc.in), 16), 16)
		if got != tc.want || !errors.Is(err, tc.err) && !(tc.err == nil && err == nil) {
			t.Errorf("ReadLine(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestClean(t *testing.T) {
	if got := wire.Clean("ok\x1b[31mred\x7f\ttab"); got != `ok\x1b[31mred\x7f`+"\ttab" {
		t.Errorf("Clean = %q", got)
	}
	if err := wire.CheckArg("a\rb"); !errors.Is(err, wire.ErrBadArgument) {
		t.Errorf("CheckArg: %v", err)
	}
}

// TestStartTLSInjection: octets the server sends after its go-ahead and
// before the handshake would be read as if protected; they are refused.
func TestStartTLSInjection(t *testing.T) {
	srv := wiretest.Start(t, "+OK hi\r\n", nil, func(s *wiretest.Session, line string) (string, bool) {
		return "+OK go ahead\r\n+OK injected\r\n", false
	})
	ctx := context.Background()
	c, err := wire.DialAddr(ctx, wiretest.Env(nil), "pop3", "x.test", netip.MustParseAddrPort(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ReadLine(ctx)
	c.WriteLine(ctx, "STLS", "")
	c.ReadLine(ctx)
	if err := c.StartTLS(ctx, &tls.Config{InsecureSkipVerify: true}); !errors.Is(err, wire.ErrProtocol) {
		t.Errorf("got %v, want ErrProtocol", err)
	}
}

// TestHandshakeRefused: a server that closes instead of handshaking gives
// ErrTLS, not a timeout.
func TestHandshakeRefused(t *testing.T) {
	srv := wiretest.Start(t, "+OK hi\r\n", nil, func(s *wiretest.Session, line string) (string, bool) {
		return "+OK go ahead\r\n", true
	})
	ctx := context.Background()
	c, err := wire.DialAddr(ctx, wiretest.Env(nil), "pop3", "x.test", netip.MustParseAddrPort(srv.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.ReadLine(ctx)
	c.WriteLine(ctx, "STLS", "")
	c.ReadLine(ctx)
	err = c.StartTLS(ctx, &tls.Config{InsecureSkipVerify: true})
	if !errors.Is(err, wire.ErrTLS) || errors.Is(err, wire.ErrTimeout) {
		t.Errorf("got %v, want ErrTLS and not ErrTimeout", err)
	}
	if tr := strings.Join(c.Since(0), "\n"); tr != "S: +OK hi\nC: STLS\nS: +OK go ahead" {
		t.Errorf("transcript:\n%s", tr)
	}
}
