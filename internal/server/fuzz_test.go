package server

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/store"
)

// scriptConn is a client that sends a fixed script and records the
// replies.
type scriptConn struct {
	r   io.Reader
	out bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) { return c.out.Write(p) }
func (c *scriptConn) Close() error                { return nil }
func (c *scriptConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2525}
}
func (c *scriptConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *scriptConn) SetDeadline(t time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(t time.Time) error { return nil }

// FuzzSMTPSession feeds any client input to a session: it must end when
// the input does, answer every line with well-formed replies, and never
// panic.
func FuzzSMTPSession(f *testing.F) {
	for _, s := range []string{
		"EHLO a\r\nMAIL FROM:<a@b>\r\nRCPT TO:<dmarc@reports.test>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
		"HELO a\r\nMAIL FROM:<> SIZE=99999999999999999999\r\nRCPT TO:<@relay:dmarc@reports.test>\r\nDATA\r\n" + strings.Repeat("x", 5000) + "\r\n.\r\n",
		"EHLO\r\nSTARTTLS\r\nBDAT 1\r\nmail from:<a>\r\nrcpt to:<x@y>\r\nRSET\r\nVRFY x\r\nNOOP\r\n",
		"EHLO a\nMAIL FROM:<a>\nRCPT TO:<dmarc@reports.test>\nDATA\n.\n",
		strings.Repeat("NOOP\r\n", 20) + strings.Repeat("X", 3000),
		"EHLO a\r\nMAIL FROM:<a\r\nMAIL FROM:a@b\r\nRCPT TO:\r\n",
	} {
		f.Add([]byte(s))
	}
	db, err := store.Open(context.Background(), f.TempDir(), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	srv := New(Config{SMTP: SMTPConfig{Enabled: true, Recipients: []string{"dmarc@reports.test"}, MaxBytes: 4096}}, db,
		diag.Env{Now: time.Now, Logger: slog.New(slog.DiscardHandler)})
	m := newSMTPServer(srv, nil)
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &scriptConn{r: bytes.NewReader(in)}
		se := &session{m: m, conn: c, ctx: context.Background()}
		se.run()
		out := c.out.String()
		if !strings.HasPrefix(out, "220 ") || !strings.HasSuffix(out, "\r\n") {
			t.Fatalf("replies %q", out)
		}
		for _, l := range strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n") {
			if len(l) < 4 || l[0] < '2' || l[0] > '5' || (l[3] != ' ' && l[3] != '-') {
				t.Fatalf("malformed reply line %q in %q", l, out)
			}
		}
	})
}
