package dmarcrpt

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, exceed its limits,
// or return a report that breaks the promises of the package: an error and
// a report never together, and every accepted report identifies itself.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal("", "", "")))
	f.Add([]byte(rfc9990Report))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxBytes: 1 << 20, MaxDepth: 16, MaxFieldLen: 1024, MaxRecords: 100}
		rep, err := Parse(bytes.NewReader(data), lim)
		if err != nil {
			if rep != nil {
				t.Fatal("report returned with an error")
			}
			for _, s := range []error{ErrSyntax, ErrDoctype, ErrCharset, ErrNotFeedback, ErrMissing, ErrInvalid, ErrTooLarge, ErrTooDeep, ErrFieldTooLong, ErrTooManyRecords, ErrRecordsFirst} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if rep.Metadata.ReportID == "" || rep.Metadata.Reporter() == "" || rep.Policy.Domain == "" {
			t.Fatalf("accepted report without identity: %+v", rep.Feedback)
		}
		if rep.Metadata.DateRange.Begin.IsZero() || rep.Metadata.DateRange.End.IsZero() {
			t.Fatal("accepted report without date range")
		}
		if len(rep.Records) != rep.Feedback.Records || len(rep.Records) > lim.MaxRecords {
			t.Fatalf("records = %d, counted %d", len(rep.Records), rep.Feedback.Records)
		}
		for _, r := range rep.Records {
			if !r.SourceIP.IsValid() {
				t.Fatal("record without source IP accepted")
			}
		}
		if len(rep.Warnings) > MaxWarnings {
			t.Fatalf("%d warnings", len(rep.Warnings))
		}
	})
}
