package imapc

import (
	"testing"

	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{"* OK [CAPABILITY IMAP4rev1] ready", "a1 NO [ALERT] x", "a1 BAD", "* BYE", "a1 OK [x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseStatus(line)
		if err == nil && (r.Tag == "" || r.Status == "") {
			t.Errorf("accepted %q without tag or status: %+v", line, r)
		}
	})
}

// FuzzReadResponse feeds a server's bytes to a client after a greeting:
// whatever comes, the client returns (within the limits) without panic.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("* OK ready\r\n* 1 FETCH (UID 7 BODY[HEADER] {5}\r\nabcde)\r\na1 OK done\r\n"))
	f.Add([]byte("* OK ready\r\n* SEARCH 1 2\r\na1 OK\r\n"))
	f.Add([]byte("* OK ready\r\n* 1 FETCH (BODY[HEADER] {99999999}\r\n"))
	f.Add([]byte("* PREAUTH\r\n+ \r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := wiretest.Pipe(data)
		defer conn.Close()
		c := New(wiretest.Env(nil), conn, "imap.test")
		ctx := wiretest.Ctx(t)
		if _, err := c.Greeting(ctx); err != nil {
			return
		}
		r, _, err := c.FetchHeader(ctx, 7)
		if err == nil && r == nil {
			t.Error("no header and no error")
		}
	})
}
