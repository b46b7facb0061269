package dmarc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/dnsx/dnsxtest"
)

const evalZone = `
_dmarc.example.com.        TXT "v=DMARC1; p=reject; sp=quarantine; np=reject; rua=mailto:agg@example.com,mailto:x@reports.example.net,mailto:y@noauth.example.org"
example.com.               A   192.0.2.1
sub.example.com.           A   192.0.2.2
example.com._report._dmarc.reports.example.net. TXT "v=DMARC1"
_dmarc.strict.test.        TXT "v=DMARC1; p=reject; adkim=s; aspf=s"
_dmarc.testing.test.       TXT "v=DMARC1; p=reject; t=y; pct=50"
_dmarc.dept.corp.com.      TXT "v=DMARC1; p=reject; psd=n"
_dmarc.corp.com.           TXT "v=DMARC1; p=none"
_dmarc.badp.test.          TXT "v=DMARC1; p=block"
_dmarc.badp-rua.test.      TXT "v=DMARC1; p=block; rua=mailto:r@badp-rua.test"
_dmarc.nop.test.           TXT "v=DMARC1; adkim=s"
_dmarc.dup.org.            TXT "v=DMARC1; p=none"
_dmarc.dup.org.            TXT "v=DMARC1; p=reject"
_dmarc.org.                TXT "v=DMARC1; p=quarantine; psd=y"
`

// outcome is what a person reads off a Result.
type outcome struct {
	Status       Status
	PolicyDomain string
	OrgDomain    string
	SPFAligned   bool
	DKIMAligned  bool
	PolicyTag    string
	Policy       Policy
	Disposition  Policy
	Legacy       Status
	LegacyDisp   Policy
}

func outcomeOf(r Result) outcome {
	return outcome{r.Status, r.PolicyDomain, r.OrgDomain, r.SPFAligned, r.DKIMAligned, r.PolicyTag, r.Policy, r.Disposition, r.RFC7489.Status, r.RFC7489.Disposition}
}

func spfPass(d string) SPFInput { return SPFInput{Result: "pass", Domain: d, Identity: "mailfrom"} }

func TestEvaluate(t *testing.T) {
	tests := []struct {
		name  string
		in    Input
		want  outcome
		diffs []string // phrases the Differences must contain
		err   error
	}{
		{
			name: "relaxed SPF alignment passes",
			in:   Input{FromDomain: "example.com", SPF: spfPass("bounce.example.com")},
			want: outcome{Pass, "example.com", "example.com", true, false, "p", PolicyReject, PolicyNone, Pass, PolicyNone},
		},
		{
			name: "aligned DKIM passes when SPF fails",
			in: Input{FromDomain: "example.com", SPF: SPFInput{Result: "fail", Domain: "example.com"},
				DKIM: []DKIMInput{{Domain: "other.example", Result: "pass"}, {Domain: "example.com", Selector: "s1", Result: "pass"}}},
			want: outcome{Pass, "example.com", "example.com", false, true, "p", PolicyReject, PolicyNone, Pass, PolicyNone},
		},
		{
			name: "unaligned pass fails: p=reject",
			in:   Input{FromDomain: "example.com", SPF: spfPass("mailer.example.net"), DKIM: []DKIMInput{{Domain: "mailer.example.net", Result: "pass"}}},
			want: outcome{Fail, "example.com", "example.com", false, false, "p", PolicyReject, PolicyReject, Fail, PolicyReject},
			err:  ErrNotAligned,
		},
		{
			name: "existing subdomain gets sp",
			in:   Input{FromDomain: "sub.example.com", SPF: spfPass("elsewhere.example.net")},
			want: outcome{Fail, "example.com", "example.com", false, false, "sp", PolicyQuarantine, PolicyQuarantine, Fail, PolicyQuarantine},
		},
		{
			name:  "non-existent subdomain gets np",
			in:    Input{FromDomain: "ghost.example.com", SPF: spfPass("elsewhere.example.net")},
			want:  outcome{Fail, "example.com", "example.com", false, false, "np", PolicyReject, PolicyReject, Fail, PolicyQuarantine},
			diffs: []string{"np=reject applies because ghost.example.com does not exist; RFC 7489 does not know np and applies sp=quarantine"},
		},
		{
			name:  "strict alignment refuses a subdomain",
			in:    Input{FromDomain: "strict.test", SPF: spfPass("bounce.strict.test"), DKIM: []DKIMInput{{Domain: "mail.strict.test", Result: "pass"}}},
			want:  outcome{Fail, "strict.test", "strict.test", false, false, "p", PolicyReject, PolicyReject, Fail, PolicyReject},
			diffs: []string{},
		},
		{
			name: "t=y lowers reject to quarantine; pct applies under RFC 7489",
			in:   Input{FromDomain: "testing.test", SPF: SPFInput{Result: "softfail", Domain: "testing.test"}},
			want: outcome{Fail, "testing.test", "testing.test", false, false, "p", PolicyQuarantine, PolicyQuarantine, Fail, PolicyReject},
			diffs: []string{"t=y (testing): RFC 9989 receivers apply quarantine instead of reject",
				"pct=50: RFC 7489 receivers apply reject to 50% of failing messages and quarantine to the rest"},
		},
		{
			name: "psd=n makes a department its own organization",
			in:   Input{FromDomain: "a.dept.corp.com", SPF: spfPass("corp.com")},
			want: outcome{Fail, "dept.corp.com", "dept.corp.com", false, false, "p", PolicyReject, PolicyReject, Pass, PolicyNone},
			diffs: []string{"organizational domain of a.dept.corp.com: RFC 9989's DNS tree walk gives dept.corp.com",
				"RFC 7489's public suffix list gives corp.com",
				"policy record: RFC 9989 uses _dmarc.dept.corp.com; RFC 7489 uses _dmarc.corp.com",
				"SPF domain corp.com: aligned under RFC 7489",
				"result: RFC 9989 fail, RFC 7489 pass"},
		},
		{
			name: "no record anywhere",
			in:   Input{FromDomain: "nodmarc.example.net", SPF: spfPass("nodmarc.example.net")},
			want: outcome{None, "", "nodmarc.example.net", true, false, "", "", PolicyNone, None, PolicyNone},
			err:  ErrNoPolicy,
		},
		{
			name: "invalid p without rua: no DMARC processing",
			in:   Input{FromDomain: "badp.test", SPF: spfPass("badp.test")},
			want: outcome{Permerror, "badp.test", "badp.test", true, false, "", "", PolicyNone, Permerror, PolicyNone},
			err:  ErrInvalidPolicy,
		},
		{
			name: "invalid p with rua: p=none",
			in:   Input{FromDomain: "badp-rua.test", SPF: SPFInput{Result: "fail", Domain: "badp-rua.test"}},
			want: outcome{Fail, "badp-rua.test", "badp-rua.test", false, false, "p", PolicyNone, PolicyNone, Fail, PolicyNone},
		},
		{
			name:  "no p and no rua: RFC 9989 p=none, RFC 7489 nothing",
			in:    Input{FromDomain: "nop.test", SPF: SPFInput{Result: "fail", Domain: "nop.test"}},
			want:  outcome{Fail, "nop.test", "nop.test", false, false, "p", PolicyNone, PolicyNone, Permerror, PolicyNone},
			diffs: []string{"the record has no p tag: RFC 9989 treats it as p=none"},
		},
		{
			name: "two records at the author domain: RFC 9989 walks up, RFC 7489 stops",
			in:   Input{FromDomain: "dup.org", SPF: SPFInput{Result: "fail", Domain: "dup.org"}},
			want: outcome{Fail, "org", "dup.org", false, false, "p", PolicyQuarantine, PolicyQuarantine, None, PolicyNone},
			diffs: []string{"policy record: RFC 9989 uses _dmarc.org; RFC 7489 uses no record",
				"disposition of this message: RFC 9989 receivers quarantine it (spam folder), RFC 7489 receivers deliver it"},
		},
		{
			name: "invalid author domain",
			in:   Input{FromDomain: "bad..name"},
			want: outcome{Permerror, "", "", false, false, "", "", PolicyNone, Permerror, PolicyNone},
			err:  ErrInvalidDomain,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := dnsxtest.New(t, evalZone)
			res := Evaluate(context.Background(), f.Env(), tc.in)
			if diff := cmp.Diff(tc.want, outcomeOf(res)); diff != "" {
				t.Errorf("(-want +got):\n%s\nproblem: %s\ndifferences: %q", diff, res.Problem, res.Differences)
			}
			if tc.err != nil && !errors.Is(res.Err, tc.err) {
				t.Errorf("Err = %v, want %v", res.Err, tc.err)
			}
			if res.Status != Pass && res.Status != None && res.Problem == "" {
				t.Errorf("%s without a problem explained", res.Status)
			}
			joined := strings.Join(res.Differences, "\n")
			for _, d := range tc.diffs {
				if !strings.Contains(joined, d) {
					t.Errorf("differences lack %q:\n%s", d, joined)
				}
			}
			if tc.diffs != nil && len(tc.diffs) == 0 && len(res.Differences) != 0 {
				t.Errorf("unexpected differences: %q", res.Differences)
			}
			// Every DNS question is in the evidence, and only once.
			seen := map[string]bool{}
			for _, q := range res.Queries {
				k := q.Name + " " + q.Type
				if seen[k] {
					t.Errorf("query %s asked twice", k)
				}
				seen[k] = true
			}
			if len(f.Asked) != len(res.Queries) {
				t.Errorf("%d questions asked, %d in the evidence:\n%q", len(f.Asked), len(res.Queries), f.Asked)
			}
		})
	}
}

func TestEvaluateStrictExplains(t *testing.T) {
	f := dnsxtest.New(t, evalZone)
	res := Evaluate(context.Background(), f.Env(), Input{FromDomain: "strict.test", SPF: spfPass("bounce.strict.test")})
	if !strings.Contains(res.SPF.Reason, "strict alignment (aspf=s)") || !strings.Contains(res.Hint, "strict alignment") {
		t.Errorf("reason %q / hint %q do not explain strict alignment", res.SPF.Reason, res.Hint)
	}
	if !strings.Contains(res.Problem, "SPF passed for bounce.strict.test, which is not aligned") {
		t.Errorf("problem %q", res.Problem)
	}
}

func TestEvaluateTemperror(t *testing.T) {
	f := dnsxtest.New(t, evalZone, "_dmarc.example.com")
	res := Evaluate(context.Background(), f.Env(), Input{FromDomain: "example.com", SPF: spfPass("example.com")})
	if res.Status != Temperror || !errors.Is(res.Err, ErrDNS) {
		t.Errorf("status %s err %v, want temperror wrapping ErrDNS", res.Status, res.Err)
	}
	// A DNS error while aligning a relaxed identifier: fail would be
	// premature.
	f = dnsxtest.New(t, evalZone, "_dmarc.example.net")
	res = Evaluate(context.Background(), f.Env(), Input{FromDomain: "example.com", SPF: spfPass("bounce.example.net")})
	if res.Status != Temperror {
		t.Errorf("status %s, want temperror (%s)", res.Status, res.Problem)
	}
}

func TestReportDestinations(t *testing.T) {
	f := dnsxtest.New(t, evalZone)
	res := Evaluate(context.Background(), f.Env(), Input{FromDomain: "example.com", SPF: spfPass("example.com")})
	type dest struct {
		Domain             string
		External, Verified bool
		Query              string
	}
	var got []dest
	for _, d := range res.Reports {
		got = append(got, dest{d.Domain, d.External, d.Verified, d.Query})
	}
	want := []dest{
		{"example.com", false, true, ""},
		{"reports.example.net", true, true, "example.com._report._dmarc.reports.example.net"},
		{"noauth.example.org", true, false, "example.com._report._dmarc.noauth.example.org"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p := res.Reports[2].Problem; !strings.Contains(p, "will not send rua reports there") {
		t.Errorf("problem %q", p)
	}
}
