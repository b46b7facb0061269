package smtpc

import (
	"context"
	"crypto/tls"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSendMessageForRoundTrip(t *testing.T) {
	var got strings.Builder
	inData := false
	f := startFake(t, "220 mx.test\r\n", func(s *session, line string) (string, bool) {
		if inData {
			if line == "." {
				inData = false
				return "250 2.0.0 Ok: queued as ABC123\r\n", false
			}
			got.WriteString(line + "\n")
			return "", false
		}
		if line == "DATA" {
			inData = true
			return "354 End data with <CR><LF>.<CR><LF>\r\n", false
		}
		return basic(s, line)
	})
	c := dial(t, testEnv(nil), f)
	ctx := context.Background()
	c.Greeting(ctx)
	c.Ehlo(ctx, "client.test")
	c.Mail(ctx, "a@client.test", MailParams{})
	c.Rcpt(ctx, "b@mx.test")
	r, err := SendMessageForRoundTrip(ctx, c, []byte("Subject: x\n\n.hidden\nend\n"))
	if err != nil || r.Code != 250 || r.Command != "." {
		t.Fatalf("reply %+v, %v", r, err)
	}
	if diff := cmp.Diff("Subject: x\n\n..hidden\nend\n", got.String()); diff != "" {
		t.Errorf("server received (-want +got):\n%s", diff)
	}
	tr := strings.Join(c.Since(0), "\n")
	if !strings.Contains(tr, "C: <message: 29 octets>") || strings.Contains(tr, "hidden") {
		t.Errorf("transcript shows the message instead of its size:\n%s", tr)
	}
	if _, err := SendMessageForRoundTrip(ctx, c, make([]byte, MaxRoundTripMessage+1)); !errors.Is(err, ErrBadArgument) {
		t.Errorf("oversized message: %v", err)
	}
}

func TestDotStuff(t *testing.T) {
	for in, want := range map[string]string{
		"a\r\nb":       "a\r\nb\r\n",
		".\n..x\n":     "..\r\n...x\r\n",
		"x\n\n":        "x\r\n\r\n",
		"":             "\r\n",
		"a\rb\n.":      "a\rb\r\n..\r\n",
		"end\r\n.\r\n": "end\r\n..\r\n",
	} {
		if got := string(DotStuff([]byte(in))); got != want {
			t.Errorf("DotStuff(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOnlyRoundTripSends pins the safety contract (DESIGN.md: nothing
// mxray does sends a message unless the user asked for a round-trip
// test): SendMessageForRoundTrip is called from internal/probe only.
func TestOnlyRoundTripSends(t *testing.T) {
	root := filepath.Join("..", "..")
	var callers []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		file, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
		if err != nil {
			return nil // another engineer's file in progress; not ours to judge
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "SendMessageForRoundTrip" {
				callers = append(callers, filepath.ToSlash(filepath.Dir(path)))
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range callers {
		if !strings.HasSuffix(c, "internal/probe") {
			t.Errorf("%s calls smtpc.SendMessageForRoundTrip; only internal/probe (mxray roundtrip) may", c)
		}
	}
	if len(callers) == 0 {
		t.Error("internal/probe no longer calls SendMessageForRoundTrip: remove it from smtpc")
	}
}

// TestStartTLSRefusedHandshake: a server that says 220 to STARTTLS and
// then hangs up (as servers refusing an old TLS version do) fails with
// ErrTLS, not with a timeout: the handshake error used to be classified
// after its context was released, which made every failure a "timeout".
func TestStartTLSRefusedHandshake(t *testing.T) {
	f := startFake(t, "220 mx.test\r\n", func(s *session, line string) (string, bool) {
		if line == "STARTTLS" {
			return "220 2.0.0 Ready\r\n", true // and close instead of a handshake
		}
		return basic(s, line)
	})
	c := dial(t, testEnv(nil), f)
	ctx := context.Background()
	c.Greeting(ctx)
	_, err := c.StartTLS(ctx, &tls.Config{InsecureSkipVerify: true})
	if !errors.Is(err, ErrTLS) || errors.Is(err, ErrTimeout) {
		t.Errorf("got %v, want ErrTLS and not ErrTimeout", err)
	}
}
