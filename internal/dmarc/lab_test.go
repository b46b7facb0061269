package dmarc_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dmarc"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// TestLabScenarios evaluates the lab's DMARC scenario domains over real
// DNS (UDP on loopback), as `mxray auth` does.
func TestLabScenarios(t *testing.T) {
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := lab.LoadScenarios(s); err != nil {
		t.Fatal(err)
	}
	c := dnsx.New([]string{s.Addr})
	c.Timeout, c.Tries = 500*time.Millisecond, 1
	env := diag.Env{Resolver: c}

	tests := []struct {
		name  string
		in    dmarc.Input
		want  []string // result, policy domain, org domain, policy tag, policy, RFC 7489 result
		walk  []string
		diffs string
	}{
		{name: "tree walk to the organizational domain",
			in:   dmarc.Input{FromDomain: "a.b.c.dmarc-walk.test", SPF: dmarc.SPFInput{Result: "pass", Domain: "dmarc-walk.test"}},
			want: []string{"pass", "dmarc-walk.test", "dmarc-walk.test", "sp", "quarantine", "pass"},
			walk: []string{"a.b.c.dmarc-walk.test", "b.c.dmarc-walk.test", "c.dmarc-walk.test", "dmarc-walk.test", "test"}},
		{name: "np for a name that does not exist",
			in:    dmarc.Input{FromDomain: "x.ghost.dmarc-walk.test", SPF: dmarc.SPFInput{Result: "fail", Domain: "x.ghost.dmarc-walk.test"}},
			want:  []string{"fail", "dmarc-walk.test", "dmarc-walk.test", "np", "reject", "fail"},
			diffs: "RFC 7489 does not know np"},
		{name: "strict alignment",
			in:   dmarc.Input{FromDomain: "dmarc-strict.test", SPF: dmarc.SPFInput{Result: "pass", Domain: "bounce.dmarc-strict.test"}},
			want: []string{"fail", "dmarc-strict.test", "dmarc-strict.test", "p", "reject", "fail"}},
		{name: "psd=y splits the organizations",
			in:    dmarc.Input{FromDomain: "org.psd.test", DKIM: []dmarc.DKIMInput{{Domain: "mail.org.psd.test", Result: "pass"}}},
			want:  []string{"pass", "psd.test", "org.psd.test", "p", "reject", "pass"},
			walk:  []string{"org.psd.test", "psd.test"},
			diffs: "RFC 7489's public suffix list gives psd.test"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := dmarc.Evaluate(context.Background(), env, tc.in)
			got := []string{string(r.Status), r.PolicyDomain, r.OrgDomain, r.PolicyTag, string(r.Policy), string(r.RFC7489.Status)}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s\n%s", diff, r.Problem)
			}
			if tc.walk != nil {
				if diff := cmp.Diff(tc.walk, r.Walk.Names); diff != "" {
					t.Errorf("walk (-want +got):\n%s", diff)
				}
			}
			if !strings.Contains(strings.Join(r.Differences, "\n"), tc.diffs) {
				t.Errorf("differences lack %q: %q", tc.diffs, r.Differences)
			}
		})
	}
}
