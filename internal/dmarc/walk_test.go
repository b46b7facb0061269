package dmarc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/dnsx/dnsxtest"
)

func TestWalkNames(t *testing.T) {
	tests := []struct {
		start string
		want  []string
	}{
		{"com", []string{"com"}},
		{"example.com", []string{"example.com", "com"}},
		{"a.mail.example.com", []string{"a.mail.example.com", "mail.example.com", "example.com", "com"}},
		// RFC 9989 §4.10's own example: 13 labels, eight queries.
		{"a.b.c.d.e.f.g.h.i.j.mail.example.com", []string{
			"a.b.c.d.e.f.g.h.i.j.mail.example.com", "g.h.i.j.mail.example.com", "h.i.j.mail.example.com",
			"i.j.mail.example.com", "j.mail.example.com", "mail.example.com", "example.com", "com"}},
		// Exactly 8 labels: the jump to 7 is the same as one label less.
		{"a.b.c.d.e.f.example.com", []string{"a.b.c.d.e.f.example.com", "b.c.d.e.f.example.com",
			"c.d.e.f.example.com", "d.e.f.example.com", "e.f.example.com", "f.example.com", "example.com", "com"}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, walkNames(tc.start)); diff != "" {
			t.Errorf("walkNames(%s) (-want +got):\n%s", tc.start, diff)
		}
		if n := len(walkNames(tc.start)); n > 8 {
			t.Errorf("walkNames(%s): %d queries, RFC 9989 allows at most 8", tc.start, n)
		}
	}
}

// walkZone publishes records for the tree walk cases.
const walkZone = `
_dmarc.example.com.            TXT "v=DMARC1; p=reject"
_dmarc.mail.example.com.       TXT "v=DMARC1; p=none"
_dmarc.dept.example.com.       TXT "v=DMARC1; p=quarantine; psd=n"
_dmarc.com.                    TXT "v=DMARC1; p=none; psd=y"
_dmarc.gov.                    TXT "v=DMARC1; p=reject; psd=y"
_dmarc.twice.example.org.      TXT "v=DMARC1; p=none"
_dmarc.twice.example.org.      TXT "v=DMARC1; p=reject"
_dmarc.example.org.            TXT "v=spf1 -all"
_dmarc.psd.example.net.        TXT "v=DMARC1; p=reject; psd=y"
`

func TestTreeWalkOrgDomain(t *testing.T) {
	tests := []struct {
		start  string
		org    string
		reason string   // a phrase of the reason
		names  []string // the walk, when it matters
		found  []string
	}{
		// The record with the fewest labels, under a psd=y at com: the
		// walk stops at _dmarc.com, psd=y → one label below it.
		{start: "a.mail.example.com", org: "example.com", reason: "psd=y",
			names: []string{"a.mail.example.com", "mail.example.com", "example.com", "com"},
			found: []string{"mail.example.com", "example.com", "com"}},
		// psd=n stops the walk and wins.
		{start: "x.dept.example.com", org: "dept.example.com", reason: "psd=n",
			names: []string{"x.dept.example.com", "dept.example.com"}, found: []string{"dept.example.com"}},
		// psd=y at the start: a PSD is its own organizational domain.
		{start: "gov", org: "gov", reason: "its own", names: []string{"gov"}, found: []string{"gov"}},
		{start: "agency.gov", org: "agency.gov", reason: "one label below",
			names: []string{"agency.gov", "gov"}, found: []string{"gov"}},
		// Two records at one name count as none; TXT that is not DMARC
		// does not count either; nothing found → the name itself.
		{start: "a.twice.example.org", org: "a.twice.example.org", reason: "no DMARC record",
			names: []string{"a.twice.example.org", "twice.example.org", "example.org", "org"}, found: []string{}},
		// Fewest labels without any psd.
		{start: "b.psd.example.net", org: "b.psd.example.net", reason: "one label below",
			names: []string{"b.psd.example.net", "psd.example.net"}, found: []string{"psd.example.net"}},
	}
	for _, tc := range tests {
		t.Run(tc.start, func(t *testing.T) {
			f := dnsxtest.New(t, walkZone)
			w, qs := TreeWalk(context.Background(), f.Env(), tc.start)
			if w.OrgDomain != tc.org || !strings.Contains(w.OrgReason, tc.reason) {
				t.Errorf("org = %s (%s), want %s (%s)", w.OrgDomain, w.OrgReason, tc.org, tc.reason)
			}
			if diff := cmp.Diff(tc.names, w.Names); diff != "" {
				t.Errorf("names (-want +got):\n%s", diff)
			}
			var found []string
			for _, fd := range w.Found {
				found = append(found, fd.Domain)
			}
			if diff := cmp.Diff(tc.found, append([]string{}, found...)); diff != "" {
				t.Errorf("found (-want +got):\n%s", diff)
			}
			if len(qs) != len(w.Names) {
				t.Errorf("%d queries recorded for %d names", len(qs), len(w.Names))
			}
		})
	}
}

func TestTreeWalkTemperror(t *testing.T) {
	f := dnsxtest.New(t, walkZone, "_dmarc.example.com")
	w, qs := TreeWalk(context.Background(), f.Env(), "a.mail.example.com")
	if !errors.Is(w.Err, ErrDNS) || w.OrgDomain != "a.mail.example.com" {
		t.Fatalf("walk = %+v, want ErrDNS and the start as org domain", w)
	}
	last := qs[len(qs)-1]
	if last.Name != "_dmarc.example.com" || last.Answer != AnswerTemperror || last.Error == "" {
		t.Errorf("last query %+v, want the failing one with its error", last)
	}
}
