package pop3c

import (
	"testing"

	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func FuzzParseReply(f *testing.F) {
	for _, s := range []string{"+OK", "-ERR [AUTH] no", "+OK 1 2", "-ERR [x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseReply(line)
		if err == nil && !r.OK && len(line) >= 3 && line[:3] == "+OK" {
			t.Errorf("%q parsed as -ERR", line)
		}
	})
}

// FuzzReadResponse feeds a server's bytes to the client after a greeting.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("+OK hi\r\n+OK\r\nCAPA\r\nSASL PLAIN\r\n.\r\n"))
	f.Add([]byte("+OK hi\r\n-ERR no\r\n"))
	f.Add([]byte("+OK\r\n+OK\r\n..x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := wiretest.Pipe(data)
		defer conn.Close()
		c := New(wiretest.Env(nil), conn, "pop.test")
		ctx := wiretest.Ctx(t)
		if _, err := c.Greeting(ctx); err != nil {
			return
		}
		caps, r, err := c.Capa(ctx)
		if err == nil && r.OK && caps == nil {
			t.Error("+OK CAPA without capabilities")
		}
	})
}
