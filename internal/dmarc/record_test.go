package dmarc

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// view is what a person reads off a parsed record.
type view struct {
	P, SP, NP   Policy
	ADKIM, ASPF Alignment
	T           bool
	PSD         PSD
	Pct         int
	RUA         []string // valid destinations' domains
	Invalid     bool
	Defects     []string // "kind tag"
}

func viewOf(r *Record) view {
	v := view{P: r.P, SP: r.SP, NP: r.NP, ADKIM: r.ADKIM, ASPF: r.ASPF, T: r.T, PSD: r.PSD, Pct: r.Pct, Invalid: r.InvalidPolicy}
	for _, u := range r.RUA {
		if u.Valid {
			v.RUA = append(v.RUA, u.Domain)
		}
	}
	for _, d := range r.Defects {
		v.Defects = append(v.Defects, string(d.Kind)+" "+d.Tag)
	}
	return v
}

func base(mod func(*view)) view {
	v := view{ADKIM: Relaxed, ASPF: Relaxed, PSD: PSDUnknown, Pct: 100}
	mod(&v)
	return v
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		txt  string
		want view
	}{
		{"minimal", "v=DMARC1; p=none", base(func(v *view) { v.P = PolicyNone })},
		{"full RFC 9989", "v=DMARC1; p=reject; sp=quarantine; np=reject; adkim=s; aspf=s; t=y; psd=n; fo=1; rua=mailto:a@example.com,mailto:b@example.net; ruf=mailto:f@example.com",
			base(func(v *view) {
				v.P, v.SP, v.NP, v.ADKIM, v.ASPF, v.T, v.PSD = PolicyReject, PolicyQuarantine, PolicyReject, Strict, Strict, true, PSDNo
				v.RUA = []string{"example.com", "example.net"}
			})},
		{"whitespace, case of values, trailing semicolon", " v = DMARC1 ;p = Reject ; ADKIM=s;", base(func(v *view) {
			v.P = PolicyReject
			v.Defects = []string{"unknown ADKIM"}
		})},
		{"legacy tags flagged", "v=DMARC1; p=quarantine; pct=20; rf=afrf; ri=86400", base(func(v *view) {
			v.P, v.Pct = PolicyQuarantine, 20
			v.Defects = []string{"removed pct", "removed rf", "removed ri"}
		})},
		{"invalid pct", "v=DMARC1; p=reject; pct=150", base(func(v *view) {
			v.P = PolicyReject
			v.Defects = []string{"invalid pct", "removed pct"}
		})},
		{"unknown tag ignored", "v=DMARC1; p=none; foo=bar", base(func(v *view) {
			v.P = PolicyNone
			v.Defects = []string{"unknown foo"}
		})},
		{"invalid p", "v=DMARC1; p=block; rua=mailto:r@example.com", base(func(v *view) {
			v.Invalid, v.RUA = true, []string{"example.com"}
			v.Defects = []string{"invalid p"}
		})},
		{"invalid values of known tags", "v=DMARC1; p=none; adkim=x; aspf=relaxed; t=yes; psd=maybe; fo=2; sp=never", base(func(v *view) {
			v.P, v.Invalid = PolicyNone, true
			v.Defects = []string{"invalid adkim", "invalid aspf", "invalid t", "invalid psd", "invalid fo", "invalid sp"}
		})},
		{"p missing, rua valid", "v=DMARC1; rua=mailto:r@example.com", base(func(v *view) {
			v.RUA = []string{"example.com"}
			v.Defects = []string{"advice p"}
		})},
		{"p missing, no rua", "v=DMARC1; adkim=s", base(func(v *view) {
			v.ADKIM = Strict
			v.Defects = []string{"advice p"}
		})},
		{"p not second", "v=DMARC1; rua=mailto:r@example.com; p=reject", base(func(v *view) {
			v.P, v.RUA = PolicyReject, []string{"example.com"}
			v.Defects = []string{"advice p"}
		})},
		{"duplicate tag", "v=DMARC1; p=none; p=reject", base(func(v *view) {
			v.P = PolicyNone
			v.Defects = []string{"syntax p"}
		})},
		{"not tag=value", "v=DMARC1; p=none; junk", base(func(v *view) {
			v.P = PolicyNone
			v.Defects = []string{"syntax "}
		})},
		{"rua with size and bad URIs", "v=DMARC1; p=none; rua=mailto:a@example.com!10m, example.org, mailto:nobody, https://r.example/x", base(func(v *view) {
			v.P = PolicyNone
			v.RUA = []string{"example.com", ""}
			v.Defects = []string{"advice rua", "invalid rua", "invalid rua"}
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Parse(tc.txt)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.txt, err)
			}
			if diff := cmp.Diff(tc.want, viewOf(r)); diff != "" {
				t.Errorf("Parse(%q) (-want +got):\n%s\n%+v", tc.txt, diff, r.Defects)
			}
			for _, d := range r.Defects {
				if d.Problem == "" {
					t.Errorf("defect %+v has no explanation", d)
				}
			}
		})
	}
}

func TestParseExplains(t *testing.T) {
	r, _ := Parse("v=DMARC1; p=quarantine; pct=50; P=reject; adkim=x")
	var all []string
	for _, d := range r.Defects {
		all = append(all, d.Problem)
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		"removed in RFC 9989 (RFC 9989 receivers ignore it; RFC 7489 receivers still apply it)",
		"tag names are case-sensitive, write p",
		"adkim=x is not valid (want r (relaxed) or s (strict))",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("defects lack %q:\n%s", want, text)
		}
	}
}

func TestParseNotDMARC(t *testing.T) {
	for _, txt := range []string{
		"", "v=spf1 -all", "p=reject; v=DMARC1", "v=DMARC2; p=none", "v=dmarc1; p=none", "v=DMARC1p=none", "DMARC1",
	} {
		if _, err := Parse(txt); !errors.Is(err, ErrNotDMARC) {
			t.Errorf("Parse(%q) = %v, want ErrNotDMARC", txt, err)
		}
	}
	_, err := Parse("v=dmarc1; p=none")
	if err == nil || !strings.Contains(err.Error(), "case-sensitive") {
		t.Errorf("lower-case version: %v, want an explanation of case", err)
	}
}

func TestOrgDomainPSL(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":            "example.com",
		"a.b.example.com":        "example.com",
		"mail.example.co.uk":     "example.co.uk",
		"co.uk":                  "co.uk",
		"com":                    "com",
		"x.y.example.ac.uk":      "example.ac.uk",
		"shop.example.com.au":    "example.com.au",
		"a.b.c.dmarc-walk.test":  "dmarc-walk.test",
		"Mail.Example.COM.":      "example.com",
		"host.unlisted-tld-zzz":  "host.unlisted-tld-zzz",
		"a.host.unlisted-tld-zz": "host.unlisted-tld-zz",
	} {
		if got := OrgDomainPSL(in); got != want {
			t.Errorf("OrgDomainPSL(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"v=DMARC1; p=reject; sp=none; np=quarantine; adkim=s; aspf=r; t=y; psd=u; fo=0:1:d:s; rua=mailto:a@b.c!10m,mailto:x@y.z; ruf=mailto:f@b.c",
		"v=DMARC1;p=none;pct=0;rf=afrf;ri=3600",
		"v=DMARC1; rua=mailto:%21@x!; p=",
		"v=DMARC1;;;=;a=b=c; p = reject ;",
		"v=spf1 -all",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrNotDMARC) || r != nil {
				t.Fatalf("Parse(%q) = %v, %v", s, r, err)
			}
			return
		}
		if r.ADKIM == "" || r.ASPF == "" || r.PSD == "" || r.Pct < 0 || r.Pct > 100 {
			t.Fatalf("Parse(%q): defaults missing: %+v", s, r)
		}
		for _, p := range []Policy{r.P, r.SP, r.NP} {
			if p != "" && p != PolicyNone && p != PolicyQuarantine && p != PolicyReject {
				t.Fatalf("Parse(%q): policy %q", s, p)
			}
		}
		for _, u := range append(r.RUA, r.RUF...) {
			if u.Valid && u.Scheme == "mailto" && u.Domain == "" {
				t.Fatalf("Parse(%q): valid mailto without domain: %+v", s, u)
			}
		}
	})
}
