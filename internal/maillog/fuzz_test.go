package maillog

import (
	"bytes"
	"context"
	"testing"
)

// FuzzParseLine feeds arbitrary lines to the line parser and to both
// summary modes. Seeds live in testdata/fuzz/FuzzParseLine.
func FuzzParseLine(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		e := ParseLine(line, Options{Reference: ref})
		if e.Event == "" {
			t.Fatalf("no event for %q", line)
		}
		if e.Event == EventUnparsed && e.Daemon != DaemonNone {
			t.Fatalf("unparsed line with daemon %q", e.Daemon)
		}
		if len(line) == 0 || bytes.IndexByte(line, '\n') >= 0 {
			return // exactly one line for the summary comparisons
		}
		for _, compat := range []bool{false, true} {
			a := NewAccumulator(Options{Reference: ref, PflogsummCompat: compat})
			a.AddLine(line)
			s := a.Summary()
			l := s.Lines
			if l.Total != 1 || l.Postfix+l.Dovecot+l.Other+l.Unparsed != 1 {
				t.Fatalf("compat %v: lines %+v", compat, l)
			}
			if compat && l.Dovecot != 0 {
				t.Fatalf("compat mode counted a Dovecot line")
			}
			p, err := Summarize(context.Background(), Options{Reference: ref, PflogsummCompat: compat}, bytes.NewReader(line))
			if err != nil {
				t.Fatal(err)
			}
			if p.Totals != s.Totals || p.Lines != s.Lines {
				t.Fatalf("compat %v: Summarize %+v %+v != AddLine %+v %+v", compat, p.Totals, p.Lines, s.Totals, s.Lines)
			}
		}
	})
}
