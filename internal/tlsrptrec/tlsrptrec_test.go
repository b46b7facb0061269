package tlsrptrec_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/tlsrptrec"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want *tlsrptrec.Record
		err  string
	}{
		{in: "v=TLSRPTv1; rua=mailto:reports@example.com", want: &tlsrptrec.Record{Raw: "v=TLSRPTv1; rua=mailto:reports@example.com",
			RUA: []tlsrptrec.URI{{Raw: "mailto:reports@example.com", Scheme: "mailto", Target: "reports@example.com"}}}},
		{in: "v=TLSRPTv1;rua=mailto:a@example.com , https://reporting.example.com/v1/tlsrpt;", want: &tlsrptrec.Record{
			Raw: "v=TLSRPTv1;rua=mailto:a@example.com , https://reporting.example.com/v1/tlsrpt;",
			RUA: []tlsrptrec.URI{{Raw: "mailto:a@example.com", Scheme: "mailto", Target: "a@example.com"},
				{Raw: "https://reporting.example.com/v1/tlsrpt", Scheme: "https", Target: "https://reporting.example.com/v1/tlsrpt"}}}},
		{in: "v=TLSRPTv1; rua=ftp://x.example; x-a=1", want: &tlsrptrec.Record{Raw: "v=TLSRPTv1; rua=ftp://x.example; x-a=1",
			RUA:        []tlsrptrec.URI{{Raw: "ftp://x.example", Scheme: "ftp"}},
			Extensions: []tlsrptrec.Field{{Name: "x-a", Value: "1"}},
			Warnings:   []string{`rua URI "ftp://x.example" has scheme ftp; RFC 8460 §3 defines only mailto: and https:, senders ignore it`}}},
		{in: "v=TLSRPTv1", err: "rua= field is required"},
		{in: "v=TLSRPTv1; x=1", err: "rua= field is required"},
		{in: "v=tlsrptv1; rua=mailto:a@example.com", err: `must begin with "v=TLSRPTv1"`},
		{in: "v=TLSRPTv1 rua=mailto:a@example.com", err: `expected ";"`},
		{in: "v=TLSRPTv1; rua=mailto:not-an-address", err: "is not a mail address"},
		{in: "v=TLSRPTv1; rua=https:///path", err: "needs a host"},
		{in: "v=TLSRPTv1; rua=reports@example.com", err: "no scheme"},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com,", err: "empty URI"},
		{in: "v=TLSRPTv1; rua", err: `has no "="`},
		{in: "v=TLSRPTv1; rua=mailto:a@example.com; _x=1", err: "not a valid extension name"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := tlsrptrec.Parse(c.in)
			if c.err != "" {
				if !errors.Is(err, tlsrptrec.ErrSyntax) || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("Parse = %+v, %v; want an error with %q", got, err, c.err)
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

func TestLookup(t *testing.T) {
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddZone("one.test", `_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@one.test"`+"\n_smtp._tls TXT \"v=spf1 -all\"\n", lab.ZoneOptions{})
	s.AddZone("two.test", "_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:a@two.test\"\n_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:b@two.test\"\n", lab.ZoneOptions{})
	s.AddZone("bad.test", "_smtp._tls TXT \"v=TLSRPTv1; rua=tls@bad.test\"\n", lab.ZoneOptions{})
	s.AddZone("none.test", "@ A 127.0.0.1\n", lab.ZoneOptions{})
	s.AddZone("down.test", "@ A 127.0.0.1\n", lab.ZoneOptions{ServFail: true})
	c := dnsx.New([]string{s.Addr})
	c.Timeout, c.Tries = 2*time.Second, 1
	env := diag.Env{Resolver: c}
	for _, tc := range []struct {
		domain string
		status tlsrptrec.Status
		ruas   int
	}{
		{"one.test", tlsrptrec.Pass, 1},
		{"two.test", tlsrptrec.Permerror, 0},
		{"bad.test", tlsrptrec.Permerror, 0},
		{"none.test", tlsrptrec.None, 0},
		{"down.test", tlsrptrec.Temperror, 0},
	} {
		r := tlsrptrec.Lookup(context.Background(), env, tc.domain)
		n := 0
		if r.Record != nil {
			n = len(r.Record.RUA)
		}
		if r.Status != tc.status || n != tc.ruas || len(r.Findings) == 0 && tc.status != tlsrptrec.Pass {
			t.Errorf("%s: %s with %d rua, findings %v; want %s with %d", tc.domain, r.Status, n, r.Findings, tc.status, tc.ruas)
		}
		if r.Name != "_smtp._tls."+tc.domain+"." {
			t.Errorf("name %q", r.Name)
		}
	}
}

// FuzzParse checks Parse: no panic; an ErrSyntax error, or a record with
// at least one rua URI, each with a scheme.
func FuzzParse(f *testing.F) {
	f.Add("v=TLSRPTv1; rua=mailto:reports@example.com")
	f.Add("v=TLSRPTv1;rua=mailto:a@example.com , https://r.example/x;x=1;")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := tlsrptrec.Parse(s)
		if err != nil {
			if r != nil || !errors.Is(err, tlsrptrec.ErrSyntax) {
				t.Fatalf("%+v, %v", r, err)
			}
			return
		}
		if len(r.RUA) == 0 {
			t.Fatal("no rua")
		}
		for _, u := range r.RUA {
			if u.Scheme == "" || (u.Scheme == "mailto" || u.Scheme == "https") && u.Target == "" {
				t.Fatalf("uri %+v", u)
			}
		}
	})
}
