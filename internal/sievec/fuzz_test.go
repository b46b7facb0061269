package sievec

import (
	"testing"

	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

func FuzzTokenize(f *testing.F) {
	for _, s := range []string{`"SASL" "PLAIN"`, `OK (SASL "x") "y"`, `NO "a \"b\""`, `"open`, `(x`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		toks, err := Tokenize(line)
		if err != nil {
			return
		}
		for _, tk := range toks {
			if tk.Kind == Atom && tk.Text == "" {
				t.Errorf("empty atom from %q", line)
			}
		}
	})
}

// FuzzReadResponse feeds a server's bytes to the client as its greeting.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("\"IMPLEMENTATION\" \"x\"\r\n\"SIEVE\" {3}\r\nabc\r\nOK \"ready\"\r\n"))
	f.Add([]byte("\"SASL\" {3+}\r\nabc\r\nNO (TRYLATER) \"busy\"\r\n"))
	f.Add([]byte("BYE \"bye\"\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := wiretest.Pipe(data)
		defer conn.Close()
		c := New(wiretest.Env(nil), conn, "sieve.test")
		r, err := c.Greeting(wiretest.Ctx(t))
		if err == nil && r.Status != OK && r.Status != NO && r.Status != BYE {
			t.Errorf("status %q", r.Status)
		}
	})
}
