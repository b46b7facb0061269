package dane_test

import (
	"errors"
	"testing"

	"github.com/mxray/mxray/internal/dane"
)

// FuzzParseRecord checks ParseRecord on any text: no panic; an error that
// is ErrRecordSyntax, or a record whose presentation form parses back to
// itself and that is usable only with a usable usage.
func FuzzParseRecord(f *testing.F) {
	f.Add("3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	f.Add("DANE-TA Cert SHA2-512 00")
	f.Add("2 1 0 3059301306072a8648ce3d020106082a8648ce3d03010703420004")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := dane.ParseRecord(s)
		if err != nil {
			if !errors.Is(err, dane.ErrRecordSyntax) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if r.Usable != (r.Unusable == "") {
			t.Fatalf("usable %v with reason %q", r.Usable, r.Unusable)
		}
		if r.Usable && r.Usage != dane.DANETA && r.Usage != dane.DANEEE {
			t.Fatalf("usage %s usable", r.Usage)
		}
		if r.Data == "" {
			return // no data: the text has nothing after the fields to round-trip
		}
		back, err := dane.ParseRecord(r.Text)
		if err != nil || back != r {
			t.Fatalf("%q → %+v → %+v, %v", s, r, back, err)
		}
	})
}
