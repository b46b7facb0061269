package mtasts_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/mtasts"
)

// FuzzParsePolicy checks the promises of ParsePolicy on any body: no
// panic, a policy always returned, errors only as PolicyErrors wrapping
// ErrPolicySyntax, and a policy without errors that is complete and whose
// patterns are valid.
func FuzzParsePolicy(f *testing.F) {
	f.Add("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n")
	f.Add("version: STSv1\nmode: none\nmax_age: 0")
	f.Add("mode: testing\nmode: enforce\n\nmx: a.\nx: y\n")
	f.Fuzz(func(t *testing.T, body string) {
		p, err := mtasts.ParsePolicy(body)
		if p == nil {
			t.Fatal("nil policy")
		}
		if err != nil {
			var pe mtasts.PolicyErrors
			if !errors.Is(err, mtasts.ErrPolicySyntax) || !errors.As(err, &pe) || len(pe) == 0 {
				t.Fatalf("error %v is not PolicyErrors", err)
			}
			return
		}
		if p.Version != "STSv1" || p.MaxAge < 0 || p.MaxAge > mtasts.MaxMaxAge {
			t.Fatalf("accepted %+v", p)
		}
		switch p.Mode {
		case mtasts.ModeEnforce, mtasts.ModeTesting:
			if len(p.MX) == 0 {
				t.Fatalf("mode %s without mx accepted", p.Mode)
			}
		case mtasts.ModeNone:
		default:
			t.Fatalf("mode %q accepted", p.Mode)
		}
		for _, m := range p.MX {
			if m == "" || strings.ContainsAny(m, " \t\r\n") || strings.HasSuffix(m, ".") || strings.Contains(strings.TrimPrefix(m, "*."), "*") {
				t.Fatalf("pattern %q accepted", m)
			}
			if !strings.HasPrefix(m, "*.") && !p.Match(m) {
				t.Fatalf("pattern %q does not match itself", m)
			}
		}
	})
}

// FuzzParseRecord checks ParseRecord: no panic, an error or a record with
// a valid id, and the discard rule agreeing with the parser.
func FuzzParseRecord(f *testing.F) {
	f.Add("v=STSv1; id=20160831085700Z;")
	f.Add("v=STSv1 ;\tid=abc ; ext=1")
	f.Add("v=STSv1; id=a; id=b; x=a=b")
	f.Fuzz(func(t *testing.T, txt string) {
		r, err := mtasts.ParseRecord(txt)
		if err != nil {
			if r != nil || !errors.Is(err, mtasts.ErrRecordSyntax) {
				t.Fatalf("%v with %v", err, r)
			}
			return
		}
		if r.ID == "" || len(r.ID) > 32 || r.Raw != txt || !strings.HasPrefix(txt, "v=STSv1") {
			t.Fatalf("accepted %+v", r)
		}
	})
}
