package arc

import (
	"context"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// noKeys answers every question NXDOMAIN, so fuzzing never waits on DNS.
type noKeys struct{}

func (noKeys) Query(_ context.Context, name string, qtype uint16) (*dnsx.Response, error) {
	return nil, &dnsx.Error{Name: name, Type: qtype, Err: dnsx.ErrNXDomain}
}

var _ dnsx.Resolver = noKeys{}

// FuzzParse: the ARC header parser must never panic, and an instance it
// accepts is always 1..50.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"i=1; lists.example.org; spf=pass smtp.mfrom=jqd@d1.example",
		"a=rsa-sha256; b=abc; cv=none; d=example.org; i=1; s=dummy; t=12345",
		"i = 50 ;x", "i=0;", "i=51; a", "i=1", " i\r\n =\t2 ; z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		for _, name := range []string{FieldResults, FieldSeal, FieldSignature} {
			fl, err := parseField(0, name, v)
			if err == nil && (fl.instance < 1 || fl.instance > MaxInstances) {
				t.Fatalf("%s %q: instance %d accepted", name, v, fl.instance)
			}
		}
	})
}

// FuzzVerify: any message gets a status, and a fail always says why.
func FuzzVerify(f *testing.F) {
	f.Add("ARC-Seal: i=1; cv=none; a=rsa-sha256; b=AA; d=x.test; s=s\r\n" +
		"ARC-Message-Signature: i=1; a=rsa-sha256; b=AA; bh=AA; d=x.test; s=s; h=from\r\n" +
		"ARC-Authentication-Results: i=1; x.test; spf=pass\r\nFrom: a\r\n\r\nbody\r\n")
	f.Add("ARC-Seal: i=2; cv=fail\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		r := Verify(context.Background(), diag.Env{Resolver: noKeys{}}, []byte(msg))
		switch r.Status {
		case None, Pass:
		case Fail:
			if r.Reason == "" || r.Detail == "" {
				t.Fatalf("fail without reason: %+v", r)
			}
		default:
			t.Fatalf("status %q", r.Status)
		}
		if r.Status == None && strings.Contains(strings.ToLower(msg), "arc-seal:") && r.N != 0 {
			t.Fatalf("none with sets")
		}
	})
}
