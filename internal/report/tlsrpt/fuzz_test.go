package tlsrpt

import (
	"errors"
	"testing"
)

// FuzzParse checks that no input makes the parser panic or return a report
// that breaks the package's promises.
func FuzzParse(f *testing.F) {
	f.Add([]byte(rfcExample))
	f.Add([]byte(report(okPolicies)))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxBytes: 1 << 16, MaxDepth: 8, MaxPolicies: 10, MaxFailureDetails: 10}
		r, err := ParseBytes(data, lim)
		if err != nil {
			if r != nil {
				t.Fatal("report returned with an error")
			}
			for _, s := range []error{ErrSyntax, ErrMissing, ErrInvalid, ErrTooLarge, ErrTooDeep, ErrTooManyPolicies, ErrTooManyFailureDetails} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if r.ReportID == "" || r.Reporter() == "" || r.DateRange.Start.IsZero() || r.DateRange.End.IsZero() {
			t.Fatalf("accepted report without identity: %+v", r)
		}
		if len(r.Policies) > lim.MaxPolicies {
			t.Fatalf("%d policies", len(r.Policies))
		}
		n := 0
		for _, p := range r.Policies {
			n += len(p.FailureDetails)
			for _, fd := range p.FailureDetails {
				if fd.ResultType == "" || fd.FailedSessionCount < 0 {
					t.Fatalf("bad failure details accepted: %+v", fd)
				}
			}
			if p.Summary.TotalFailureSessionCount < 0 || p.Summary.TotalSuccessfulSessionCount < 0 {
				t.Fatal("negative summary accepted")
			}
		}
		if n > lim.MaxFailureDetails || len(r.Warnings) > MaxWarnings {
			t.Fatalf("%d failure details, %d warnings", n, len(r.Warnings))
		}
	})
}
