package spf

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// termSummary is what a person reads off a parsed term.
func termSummary(t *Term) string {
	s := string(t.Kind)
	if t.Qualifier != "" && t.Qualifier != QPass {
		s = string(t.Qualifier) + s
	}
	if t.DomainSpec != "" {
		s += " " + t.DomainSpec
	}
	if t.Network.IsValid() {
		s += " " + t.Network.String()
	}
	if t.CIDR4 >= 0 || t.CIDR6 >= 0 {
		s += " cidr " + itoa(t.CIDR4) + "/" + itoa(t.CIDR6)
	}
	if t.Kind == KindUnknown {
		s += " " + t.Name + "=" + t.Value
	}
	return s
}

func itoa(n int) string {
	if n < 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

func TestParse(t *testing.T) {
	tests := []struct {
		rec  string
		want []string
		err  string // substring of the error, "" for success
	}{
		{rec: "v=spf1", want: nil},
		{rec: "V=SPF1 -ALL", want: []string{"-all"}},
		{rec: "v=spf1  ip4:192.0.2.0/24   ~all ", want: []string{"ip4 192.0.2.0/24", "~all"}},
		{rec: "v=spf1 ip4:192.0.2.1 ip6:2001:db8::/32 ?all", want: []string{"ip4 192.0.2.1/32", "ip6 2001:db8::/32", "?all"}},
		{rec: "v=spf1 a mx/24 a:mail.example.com//64 mx:example.org/16//48 -all",
			want: []string{"a", "mx cidr 24/-", "a mail.example.com cidr -/64", "mx example.org cidr 16/48", "-all"}},
		{rec: "v=spf1 include:_spf.google.com exists:%{i}._spf.%{d} ptr ptr:example.com redirect=_spf.example.com exp=exp.%{d}",
			want: []string{"include _spf.google.com", "exists %{i}._spf.%{d}", "ptr", "ptr example.com", "redirect _spf.example.com", "exp exp.%{d}"}},
		{rec: "v=spf1 moo.cow-far_out=man:dog/cat -all", want: []string{"unknown moo.cow-far_out=man:dog/cat", "-all"}},
		{rec: "v=spf1 a:foo.example.com.", want: []string{"a foo.example.com."}},
		{rec: "v=spf1 a:1-2.example.1-2", want: []string{"a 1-2.example.1-2"}},

		{rec: "v=spf10", err: "not an SPF record"},
		{rec: "txt record", err: "not an SPF record"},
		{rec: "v=spf1 -all moo", err: `unknown mechanism "moo"`},
		{rec: "v=spf1 -all.", err: "unknown mechanism"},
		{rec: "v=spf1 -all:foo", err: "all takes no argument"},
		{rec: "v=spf1 all/8", err: "all takes no argument"},
		{rec: "v=spf1 ip4:1.2.3.4/33", err: "bad prefix length"},
		{rec: "v=spf1 ip4:1.2.3.4/032", err: "bad prefix length"},
		{rec: "v=spf1 ip4:2001:db8::1", err: "not an IPv4 address"},
		{rec: "v=spf1 ip6:1.2.3.4", err: "not an IPv6 address"},
		{rec: "v=spf1 ip6:fe80::1%eth0", err: "not an IPv6 address"},
		{rec: "v=spf1 a//129", err: "bad IPv6 prefix length"},
		{rec: "v=spf1 a:", err: "expected a:DOMAIN"},
		{rec: "v=spf1 a:museum", err: "must end in a macro or in .TOPLABEL"},
		{rec: "v=spf1 a:museum.", err: "must end in a macro or in .TOPLABEL"},
		{rec: "v=spf1 a:1.2.3.4", err: ".TOPLABEL"},
		{rec: "v=spf1 include:example.com/24", err: "TOPLABEL"},
		{rec: "v=spf1 include:", err: "include needs a domain"},
		{rec: "v=spf1 redirect=", err: "redirect= needs a domain"},
		{rec: "v=spf1 exp=", err: "exp= needs a domain"},
		{rec: "v=spf1 redirect:example.com", err: "redirect is a modifier"},
		{rec: "v=spf1 redirect=a.example redirect=b.example", err: "appears more than once"},
		{rec: "v=spf1 exp=a.example exp=b.example", err: "appears more than once"},
		{rec: "v=spf1 exists:%{x}.example.com", err: "unknown macro letter"},
		{rec: "v=spf1 exists:%{d0}.example.com", err: "must not be zero"},
		{rec: "v=spf1 exists:%{c}.example.com", err: "allowed only in explanations"},
		{rec: "v=spf1 exists:%(ir).example.com", err: "is not a macro"},
		{rec: "v=spf1 exists:%{ir.example.com", err: "unterminated macro"},
		{rec: "v=spf1 exists:%{ir;}.example.com", err: "not a delimiter"},
		{rec: "v=spf1 exists:foo%", err: "lone %"},
		{rec: "v=spf1 a:b\rptr -all", err: "0x0d"},
		{rec: "v=spf1 a:\xef\xbb\xbfexample.com", err: "0xef"},
		{rec: "v=spf1 foo=%{q}", err: "unknown macro letter"},
	}
	for _, tc := range tests {
		t.Run(tc.rec, func(t *testing.T) {
			r, err := Parse(tc.rec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse(%q) error %v, want one containing %q", tc.rec, err, tc.err)
				}
				if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNotSPF) {
					t.Errorf("error %v wraps neither ErrSyntax nor ErrNotSPF", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.rec, err)
			}
			var got []string
			for _, term := range r.Terms {
				got = append(got, termSummary(term))
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Parse(%q) terms (-want +got):\n%s", tc.rec, diff)
			}
		})
	}
}

// RFC 7208 §7.4's examples, and the transformations around them.
func TestMacroExpansion(t *testing.T) {
	v4 := &macroEnv{
		sender: "strong-bad@email.example.com", local: "strong-bad", senderDomain: "email.example.com",
		domain: "email.example.com", helo: "mx.example.org", ip: netip.MustParseAddr("192.0.2.3"),
		now: 1700000000,
	}
	v6 := *v4
	v6.ip = netip.MustParseAddr("2001:db8::cb01")
	tests := []struct {
		in   string
		env  *macroEnv
		exp  bool
		want string
	}{
		{in: "%{s}", env: v4, want: "strong-bad@email.example.com"},
		{in: "%{o}", env: v4, want: "email.example.com"},
		{in: "%{d}", env: v4, want: "email.example.com"},
		{in: "%{d4}", env: v4, want: "email.example.com"},
		{in: "%{d3}", env: v4, want: "email.example.com"},
		{in: "%{d2}", env: v4, want: "example.com"},
		{in: "%{d1}", env: v4, want: "com"},
		{in: "%{dr}", env: v4, want: "com.example.email"},
		{in: "%{d2r}", env: v4, want: "example.email"},
		{in: "%{l}", env: v4, want: "strong-bad"},
		{in: "%{l-}", env: v4, want: "strong.bad"},
		{in: "%{lr}", env: v4, want: "strong-bad"},
		{in: "%{lr-}", env: v4, want: "bad.strong"},
		{in: "%{l1r-}", env: v4, want: "strong"},
		{in: "%{ir}.%{v}._spf.%{d2}", env: v4, want: "3.2.0.192.in-addr._spf.example.com"},
		{in: "%{lr-}.lp._spf.%{d2}", env: v4, want: "bad.strong.lp._spf.example.com"},
		{in: "%{lr-}.lp.%{ir}.%{v}._spf.%{d2}", env: v4, want: "bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
		{in: "%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}", env: v4, want: "3.2.0.192.in-addr.strong.lp._spf.example.com"},
		{in: "%{d2}.trusted-domains.example.net", env: v4, want: "example.com.trusted-domains.example.net"},
		{in: "%{ir}.%{v}._spf.%{d2}", env: &v6, want: "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2.ip6._spf.example.com"},
		{in: "%{h}", env: v4, want: "mx.example.org"},
		{in: "%%%_%-", env: v4, want: "% %20"},
		{in: "%{S}", env: v4, want: "strong-bad%40email.example.com"},
		{in: "%{l2r+-}", env: &macroEnv{local: "foo-bar+zip+quux"}, want: "bar.foo"},
		{in: "%{c} at %{t} by %{r}", env: &v6, exp: true, want: "2001:db8::cb01 at 1700000000 by unknown"},
		{in: "%{d200}", env: v4, want: "email.example.com"},
	}
	for _, tc := range tests {
		ms, err := parseMacroString(tc.in, tc.exp)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := ms.expand(tc.env); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTargetNameTruncation(t *testing.T) {
	long := strings.Repeat("abcdefghi.", 30) + "example.com" // 311 octets
	got, err := targetName(long)
	if err != nil {
		t.Fatal(err)
	}
	// RFC 7208 §7.3: whole labels are removed from the left.
	if len(got) > 253 || !strings.HasSuffix(got, ".example.com") || !strings.HasPrefix(got, "abcdefghi.") {
		t.Errorf("targetName truncated to %q (%d octets)", got, len(got))
	}
	if _, err := targetName("a..example.com"); err == nil {
		t.Error("empty label accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=spf1 -all",
		"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx/24//64 ptr ~all",
		"v=spf1 include:_spf.example.com exists:%{ir}.%{l1r+-}._spf.%{d} redirect=%{d2}.example.net exp=exp.%{d}",
		"v=spf1 moo.cow-far_out=man:dog/cat ?all",
		"v=spf1 a:%{H}.bar -all",
	} {
		f.Add(s)
	}
	env := &macroEnv{sender: "a@b.example", local: "a", senderDomain: "b.example", domain: "b.example",
		helo: "h.example", ip: netip.MustParseAddr("2001:db8::1")}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrNotSPF) {
				t.Fatalf("error %v wraps neither ErrSyntax nor ErrNotSPF", err)
			}
			return
		}
		var texts []string
		for _, term := range r.Terms {
			if term.Text == "" || strings.Contains(term.Text, " ") {
				t.Fatalf("term text %q", term.Text)
			}
			texts = append(texts, term.Text)
			_ = term.spec.expand(env)
		}
		// The terms alone make the same record again.
		r2, err := Parse("v=spf1 " + strings.Join(texts, " "))
		if err != nil || len(r2.Terms) != len(r.Terms) {
			t.Fatalf("reparse of %q: %v", s, err)
		}
	})
}

func TestTermJSON(t *testing.T) {
	r, err := Parse("v=spf1 a/24//0 ip4:192.0.2.0/24")
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(r.Terms)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"text":"a/24//0","kind":"a","qualifier":"+","cidr4":24,"cidr6":0},` +
		`{"text":"ip4:192.0.2.0/24","kind":"ip4","qualifier":"+","network":"192.0.2.0/24"}]`
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
