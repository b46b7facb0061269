package spf

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// labEnv serves the lab's scenario domains plus extra zones.
func labEnv(t *testing.T, extra map[string]string) diag.Env {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := lab.LoadScenarios(s); err != nil {
		t.Fatal(err)
	}
	for origin, text := range extra {
		if err := s.AddZone(origin, text, lab.ZoneOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := dnsx.New([]string{s.Addr})
	c.Timeout, c.Tries = 200*time.Millisecond, 1
	return diag.Env{Resolver: c, Limits: diag.Limits{DNS: 200 * time.Millisecond, DNSTry: 1},
		Now: func() time.Time { return time.Unix(1700000000, 0) }}
}

func TestCheck(t *testing.T) {
	env := labEnv(t, map[string]string{
		"v6.test": `
@     TXT  "v=spf1 ip6:2001:db8::/64 a:host.v6.test//128 -all"
host  AAAA 2001:db8:1::5
`,
		"helo.test": `
mx  TXT "v=spf1 a -all"
mx  A   127.0.0.9
`,
	})
	type want struct {
		status  Status
		err     error
		sender  string
		matched string
		lookups int
		voids   int
		exp     string
		problem string
	}
	tests := []struct {
		name string
		q    Query
		want want
	}{
		{"pass", Query{IP: mustIP("127.0.0.1"), MailFrom: "user@example.test"},
			want{status: Pass, sender: "user@example.test", matched: "ip4:127.0.0.0/8"}},
		{"fail with default explanation", Query{IP: mustIP("192.0.2.1"), MailFrom: "user@example.test"},
			want{status: Fail, sender: "user@example.test", matched: "-all",
				exp: "example.test does not authorize 192.0.2.1 to send mail (SPF fail)", problem: `"-all" in the record of example.test matched`}},
		{"bounce checks postmaster@HELO", Query{IP: mustIP("127.0.0.1"), Helo: "example.test"},
			want{status: Pass, sender: "postmaster@example.test", matched: "ip4:127.0.0.0/8"}},
		{"helo identity", Query{IP: mustIP("127.0.0.9"), MailFrom: "x@example.test", Helo: "mx.helo.test", Identity: ScopeHelo},
			want{status: Pass, sender: "postmaster@mx.helo.test", matched: "a", lookups: 1}},
		{"no local part", Query{IP: mustIP("127.0.0.1"), MailFrom: "@example.test"},
			want{status: Pass, sender: "postmaster@example.test", matched: "ip4:127.0.0.0/8"}},
		{"IPv4-mapped client", Query{IP: mustIP("::ffff:127.0.0.1"), MailFrom: "user@example.test"},
			want{status: Pass, sender: "user@example.test", matched: "ip4:127.0.0.0/8"}},
		{"ipv6 network", Query{IP: mustIP("2001:db8::25"), MailFrom: "a@v6.test"},
			want{status: Pass, sender: "a@v6.test", matched: "ip6:2001:db8::/64"}},
		{"ipv6 a//128", Query{IP: mustIP("2001:db8:1::5"), MailFrom: "a@v6.test"},
			want{status: Pass, sender: "a@v6.test", matched: "a:host.v6.test//128", lookups: 1}},
		{"no record", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@nomx.test"},
			want{status: None, err: ErrNoRecord, sender: "a@nomx.test", problem: "nomx.test publishes no SPF record"}},
		{"nxdomain", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@nowhere.example.test"},
			want{status: None, err: ErrNoRecord, sender: "a@nowhere.example.test"}},
		{"single label", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@localhost"},
			want{status: None, err: ErrInvalidDomain, sender: "a@localhost", problem: "not a checkable domain name"}},
		{"two records", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@spf-two.test"},
			want{status: Permerror, err: ErrMultipleRecords, sender: "a@spf-two.test", problem: "more than one SPF record"}},
		{"too many lookups", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@spf-toomany.test"},
			want{status: Permerror, err: ErrTooManyLookups, sender: "a@spf-toomany.test", lookups: 11,
				problem: "too many DNS lookups: include:_spf.spf-toomany.test → include:_more.spf-toomany.test pushed the count to 11 (the limit is 10)"}},
		{"too many void lookups", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@spf-void.test"},
			want{status: Permerror, err: ErrTooManyVoidLookups, sender: "a@spf-void.test", lookups: 4, voids: 3,
				problem: "too many void lookups: include:_spf.spf-void.test → exists:%{i}.bl.spf-void.test got NXDOMAIN or NODATA answer number 3 (the limit is 2)"}},
		{"macro pass", Query{IP: mustIP("127.0.0.1"), MailFrom: "alice+news@spf-macro.test"},
			want{status: Pass, sender: "alice+news@spf-macro.test", matched: "exists:%{ir}.%{l1r+-}._spf.%{d}", lookups: 1}},
		{"macro fail with exp", Query{IP: mustIP("127.0.0.1"), MailFrom: "bob@spf-macro.test"},
			want{status: Fail, sender: "bob@spf-macro.test", matched: "-all", lookups: 1, voids: 1,
				exp: "127.0.0.1 is not allowed to send mail as bob for spf-macro.test"}},
		{"servfail", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@servfail.test"},
			want{status: Temperror, err: ErrDNS, sender: "a@servfail.test", problem: "a DNS lookup failed"}},
		{"timeout", Query{IP: mustIP("127.0.0.1"), MailFrom: "a@timeout.test"},
			want{status: Temperror, err: ErrDNS, sender: "a@timeout.test"}},
		{"no IP", Query{MailFrom: "a@example.test"}, want{status: Permerror, err: ErrBadQuery}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := Check(context.Background(), env, tc.q)
			got := want{status: res.Status, sender: res.Sender, matched: res.Matched,
				lookups: res.Lookups, voids: res.VoidLookups, exp: res.Explanation, err: tc.want.err, problem: tc.want.problem}
			if tc.want.err != nil && !errors.Is(res.Err, tc.want.err) {
				t.Errorf("Err = %v, want errors.Is %v", res.Err, tc.want.err)
			}
			if !strings.Contains(res.Problem, tc.want.problem) {
				t.Errorf("Problem = %q, want it to contain %q", res.Problem, tc.want.problem)
			}
			if res.Status != Pass && (res.Problem == "" || res.Hint == "" || res.RFC == "") {
				t.Errorf("a %s result without problem/hint/rfc: %+v", res.Status, res)
			}
			if res.Trace == nil {
				t.Fatal("no trace")
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(want{}), cmp.Comparer(func(a, b error) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s\n%s", diff, dumpTrace(res.Trace))
			}
		})
	}
}

func mustIP(s string) netip.Addr { return netip.MustParseAddr(s) }

// shape renders the tree as "kind term [lookups/void] flags" lines, the
// part of the trace a person reads to find the culprit.
func shape(n *Node, depth int, out *[]string) {
	line := strings.Repeat("  ", depth) + n.Kind
	if n.Term != "" {
		line += " " + n.Term
	}
	if n.Kind == "record" {
		line += " " + n.Domain + " → " + string(n.Result)
	}
	line += " [" + itoa(n.Lookups) + "/" + itoa(n.VoidLookups) + "]"
	if n.Matched {
		line += " matched"
	}
	if n.Skipped {
		line += " skipped"
	}
	if n.Limit != "" {
		line += " OVER " + n.Limit
	}
	*out = append(*out, line)
	for _, c := range n.Children {
		shape(c, depth+1, out)
	}
}

func TestTraceTooManyLookups(t *testing.T) {
	env := labEnv(t, nil)
	res := Check(context.Background(), env, Query{IP: mustIP("127.0.0.1"), MailFrom: "a@spf-toomany.test"})
	var got []string
	shape(res.Trace, 0, &got)
	want := []string{
		"record spf-toomany.test → permerror [11/0]",
		"  mx mx [1/0]",
		"  a a [2/0]",
		"  include include:_spf.spf-toomany.test [11/0]",
		"    record _spf.spf-toomany.test → permerror [11/0]",
		"      a a:h1.spf-toomany.test [4/0]",
		"      a a:h2.spf-toomany.test [5/0]",
		"      a a:h3.spf-toomany.test [6/0]",
		"      a a:h4.spf-toomany.test [7/0]",
		"      a a:h5.spf-toomany.test [8/0]",
		"      a a:h6.spf-toomany.test [9/0]",
		"      a a:h7.spf-toomany.test [10/0]",
		"      include include:_more.spf-toomany.test [11/0] OVER lookups",
		"  all -all [0/0] skipped",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("trace (-want +got):\n%s", diff)
	}
	// The record as published and every query are evidence.
	if res.Record != "v=spf1 mx a include:_spf.spf-toomany.test -all" || res.Parsed == nil || len(res.Parsed.Terms) != 4 {
		t.Errorf("record %q parsed %+v", res.Record, res.Parsed)
	}
	mx := res.Trace.Children[0]
	wantQ := []Lookup{
		{Name: "spf-toomany.test", Type: "MX", Status: "ok", Answers: []string{"10 mx.spf-toomany.test."}},
		{Name: "mx.spf-toomany.test", Type: "A", Status: "ok", Answers: []string{"192.0.2.11"}},
	}
	if diff := cmp.Diff(wantQ, mx.Queries); diff != "" {
		t.Errorf("mx queries (-want +got):\n%s", diff)
	}
}

func TestTraceMacroAndExplanation(t *testing.T) {
	env := labEnv(t, nil)
	res := Check(context.Background(), env, Query{IP: mustIP("127.0.0.1"), MailFrom: "bob@spf-macro.test"})
	ex := res.Trace.Children[0]
	if ex.Spec != "%{ir}.%{l1r+-}._spf.%{d}" || ex.Expanded != "1.0.0.127.bob._spf.spf-macro.test" {
		t.Errorf("exists: spec %q expanded %q", ex.Spec, ex.Expanded)
	}
	if len(ex.Queries) != 1 || ex.Queries[0].Status != "nxdomain" || ex.VoidLookups != 1 {
		t.Errorf("exists queries %+v void %d", ex.Queries, ex.VoidLookups)
	}
	exp := res.Trace.Children[1]
	if exp.Kind != "exp" || exp.Expanded != "explain._spf.spf-macro.test" || !strings.HasPrefix(exp.Note, "explanation: 127.0.0.1 is not allowed") {
		t.Errorf("exp node %+v", exp)
	}
}

func TestTracePTRAndPMacro(t *testing.T) {
	env := labEnv(t, map[string]string{
		"ptr.test": `
@       TXT "v=spf1 ptr:example.test exists:%{p}.ok.ptr.test -all"
mx1.example.test.ok A 127.0.0.2
`,
	})
	// 127.0.0.1 has PTR mx1.example.test (lab scenario), whose A is
	// 127.0.0.1: a validated name under example.test.
	res := Check(context.Background(), env, Query{IP: mustIP("127.0.0.1"), MailFrom: "a@ptr.test"})
	if res.Status != Pass || res.Matched != "ptr:example.test" {
		t.Errorf("ptr: %s matched %q\n%s", res.Status, res.Matched, dumpTrace(res.Trace))
	}
	if n := res.Trace.Children[0]; !strings.Contains(n.Note, "validated names: mx1.example.test") {
		t.Errorf("ptr note %q", n.Note)
	}
}

func TestCheckRespectsDeadline(t *testing.T) {
	env := labEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := Check(ctx, env, Query{IP: mustIP("127.0.0.1"), MailFrom: "a@example.test"})
	if res.Status != Temperror || !errors.Is(res.Err, ErrDNS) {
		t.Errorf("cancelled check: %s %v", res.Status, res.Err)
	}
}
