package mtasts_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/mtasts"
)

func TestParseRecord(t *testing.T) {
	cases := []struct {
		in      string
		want    *mtasts.Record
		wantErr string // part of the reason, "" for success
	}{
		{in: "v=STSv1; id=20160831085700Z;", want: &mtasts.Record{Raw: "v=STSv1; id=20160831085700Z;", ID: "20160831085700Z"}},
		{in: "v=STSv1;id=1", want: &mtasts.Record{Raw: "v=STSv1;id=1", ID: "1"}},
		{in: "v=STSv1 ;\tid=abc ; ", want: &mtasts.Record{Raw: "v=STSv1 ;\tid=abc ; ", ID: "abc"}},
		{in: "v=STSv1; id=a; ext-1.x=val!ue", want: &mtasts.Record{Raw: "v=STSv1; id=a; ext-1.x=val!ue", ID: "a",
			Extensions: []mtasts.Field{{Name: "ext-1.x", Value: "val!ue"}}}},
		{in: "v=STSv1; id=a; id=b", want: &mtasts.Record{Raw: "v=STSv1; id=a; id=b", ID: "a",
			Warnings: []string{"id given twice; the first (a) counts"}}},
		{in: "v=STSv1", wantErr: "the id field is required"},
		{in: "v=STSv1;", wantErr: "the id field is required"},
		{in: "v=STSv1; ext=1", wantErr: "the id field is required"},
		{in: "v=stsv1; id=1", wantErr: `must begin with "v=STSv1"`},
		{in: " v=STSv1; id=1", wantErr: `must begin with "v=STSv1"`},
		{in: "v=STSv1; id=" + strings.Repeat("a", 33), wantErr: "1 to 32 letters and digits"},
		{in: "v=STSv1; id=2016-08-31", wantErr: "1 to 32 letters and digits"},
		{in: "v=STSv1; id=", wantErr: "1 to 32 letters and digits"},
		{in: "v=STSv1 id=1", wantErr: `expected ";"`},
		{in: "v=STSv1; id=1 2", wantErr: `expected ";"`},
		{in: "v=STSv1; id", wantErr: `has no "="`},
		{in: "v=STSv1; id=1; _x=1", wantErr: "not a valid extension name"},
		{in: "v=STSv1; id=1; x=a=b", wantErr: "invalid value"},
		{in: "v=STSv1; id=1; x=", wantErr: "invalid value"},
		{in: "v=STSv1; id=1; x=é", wantErr: "invalid character"},
		{in: "v=STSv1; v=STSv1; id=1", wantErr: "only once"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := mtasts.ParseRecord(c.in)
			if c.wantErr != "" {
				var re *mtasts.RecordError
				if !errors.Is(err, mtasts.ErrRecordSyntax) || !errors.As(err, &re) || !strings.Contains(re.Reason, c.wantErr) {
					t.Fatalf("ParseRecord(%q) = %v, %v; want an error saying %q", c.in, got, err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestParsePolicy(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want *mtasts.Policy
		errs []string // reasons of the PolicyErrors, in order
	}{
		{
			name: "rfc example CRLF",
			in:   "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmx: backupmx.example.com\r\nmax_age: 604800\r\n",
			want: &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeEnforce, MaxAge: 604800,
				MX: []string{"mail.example.com", "*.example.net", "backupmx.example.com"}},
		},
		{
			name: "LF, no final newline, blanks after values, upper-case mx, extension",
			in:   "version: STSv1 \nmode:testing\nmx: MX1.Example.TEST\nmax_age:\t0\nx-note: hello world",
			want: &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeTesting, MaxAge: 0,
				MX: []string{"mx1.example.test"}, Extensions: []mtasts.Field{{Name: "x-note", Value: "hello world"}}},
		},
		{
			name: "mode none needs no mx",
			in:   "version: STSv1\nmode: none\nmax_age: 86400\n",
			want: &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeNone, MaxAge: 86400},
		},
		{
			name: "duplicates, blank line and trailing dot are tolerated",
			in:   "version: STSv1\nmode: testing\nmode: enforce\n\nmx: mx.example.test.\nmax_age: 31557600\n",
			want: &mtasts.Policy{Version: "STSv1", Mode: mtasts.ModeTesting, MaxAge: 31557600, MX: []string{"mx.example.test"},
				Warnings: []string{
					`line 3 repeats "mode"; only the first counts`,
					"line 4 is blank; the ABNF has no blank lines, most senders skip them",
					`line 5: mx "mx.example.test." ends in a dot, which the ABNF does not allow; senders may not match it`,
				}},
		},
		{
			name: "every error is reported",
			in:   "version: STSv2\nmode: Enforce\nmx: *mail.example.com\nmx: mail.*.example.com\nmx: -bad.example.com\nmx: exämple.com\nmax_age: 31557601\njunk\n x: y\n_bad: 1\n",
			errs: []string{
				`version must be "STSv1"`,
				`mode must be "enforce", "testing" or "none" (lower case)`,
				`mx "*mail.example.com": a wildcard may only be the whole left-most label ("*.example.com")`,
				`mx "mail.*.example.com": a wildcard may only be the whole left-most label ("*.example.com")`,
				`mx "-bad.example.com": label "-bad" begins or ends with a hyphen`,
				`mx "exämple.com" is not ASCII: internationalized names must be given as A-labels (xn--…)`,
				"max_age 31557601 is above the maximum of 31557600 seconds (one year)",
				`not a "name: value" line`,
				"blanks around the field name are not allowed",
				`"_bad" is not a valid field name`,
			},
		},
		{
			name: "missing fields",
			in:   "mode: enforce\n",
			errs: []string{"the version field is missing", "the max_age field is missing",
				"no mx field: a policy in mode enforce must list the MX hosts it allows"},
		},
		{
			name: "max_age syntax",
			in:   "version: STSv1\nmode: none\nmax_age: -1\n",
			errs: []string{"max_age must be 1 to 10 digits"},
		},
		{
			name: "html error page",
			in:   "<html><body>Not here</body></html>\n",
			errs: []string{`not a "name: value" line`, "the version field is missing", "the mode field is missing", "the max_age field is missing"},
		},
		{
			name: "bare CR",
			in:   "version: STSv1\rmode: none\nmax_age: 1\n",
			errs: []string{"a bare CR inside the line (lines end in LF or CRLF)", "the version field is missing", "the mode field is missing"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := mtasts.ParsePolicy(c.in)
			if c.errs != nil {
				var pe mtasts.PolicyErrors
				if !errors.Is(err, mtasts.ErrPolicySyntax) || !errors.As(err, &pe) {
					t.Fatalf("err = %v, want PolicyErrors", err)
				}
				var reasons []string
				for _, e := range pe {
					reasons = append(reasons, e.Reason)
				}
				if d := cmp.Diff(c.errs, reasons); d != "" {
					t.Errorf("errors (-want +got)\n%s", d)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(c.want, got); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	p := &mtasts.Policy{MX: []string{"mail.example.com", "*.example.net"}}
	cases := []struct {
		host    string
		pattern string
	}{
		{"mail.example.com", "mail.example.com"},
		{"MAIL.Example.COM.", "mail.example.com"},
		{"mx1.example.net", "*.example.net"},
		{"example.net", ""},     // the wildcard needs one label
		{"a.b.example.net", ""}, // and only one (RFC 8461 §4.1)
		{"mail.example.com.evil", ""},
		{"xmail.example.com", ""},
		{".example.net", ""},
		{"", ""},
	}
	for _, c := range cases {
		got, ok := p.Matching(c.host)
		if got != c.pattern || ok != (c.pattern != "") || p.Match(c.host) != ok {
			t.Errorf("Matching(%q) = %q, %v; want %q", c.host, got, ok, c.pattern)
		}
	}
	var none *mtasts.Policy
	if none.Match("mail.example.com") {
		t.Error("a nil policy matched")
	}
}
