package dane_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/lab"
)

func TestParseRecord(t *testing.T) {
	sha256hex := strings.Repeat("ab", 32)
	cases := []struct {
		in       string
		text     string // "" when a syntax error is expected
		unusable string // part of the reason, "" when usable
	}{
		{in: "3 1 1 " + sha256hex, text: "3 1 1 " + sha256hex},
		{in: "3 1 1 " + strings.ToUpper(sha256hex[:32]) + " " + sha256hex[32:], text: "3 1 1 " + sha256hex},
		{in: "DANE-EE SPKI SHA2-256 " + sha256hex, text: "3 1 1 " + sha256hex},
		{in: "2 0 2 " + strings.Repeat("cd", 64), text: "2 0 2 " + strings.Repeat("cd", 64)},
		{in: "3 1 1 " + sha256hex[:62], text: "3 1 1 " + sha256hex[:62], unusable: "a SHA2-256(1) digest has 32 bytes, this one 31"},
		{in: "3 0 2 " + sha256hex, text: "3 0 2 " + sha256hex, unusable: "a SHA2-512(2) digest has 64 bytes, this one 32"},
		{in: "1 1 1 " + sha256hex, text: "1 1 1 " + sha256hex, unusable: "PKIX-EE(1) is not usable for SMTP"},
		{in: "0 0 1 " + sha256hex, text: "0 0 1 " + sha256hex, unusable: "PKIX-TA(0) is not usable for SMTP"},
		{in: "4 1 1 " + sha256hex, text: "4 1 1 " + sha256hex, unusable: "unknown usage 4"},
		{in: "3 2 1 " + sha256hex, text: "3 2 1 " + sha256hex, unusable: "unknown selector 2"},
		{in: "3 1 3 " + sha256hex, text: "3 1 3 " + sha256hex, unusable: "unknown matching type 3"},
		{in: "3 0 0 0102", text: "3 0 0 0102", unusable: "the full certificate does not parse"},
		{in: "3 1 0 0102", text: "3 1 0 0102", unusable: "the full public key does not parse"},
		{in: "3 1 1"},
		{in: "3 1 x " + sha256hex},
		{in: "256 1 1 " + sha256hex},
		{in: "3 1 1 zz"},
		{in: "3 1 1 abc"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			r, err := dane.ParseRecord(c.in)
			if c.text == "" {
				if !errors.Is(err, dane.ErrRecordSyntax) {
					t.Fatalf("ParseRecord(%q) = %+v, %v; want a syntax error", c.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Text != c.text || r.Usable != (c.unusable == "") || !strings.Contains(r.Unusable, c.unusable) {
				t.Errorf("got %q usable=%v (%s); want %q, unusable %q", r.Text, r.Usable, r.Unusable, c.text, c.unusable)
			}
		})
	}
}

// pki is a root CA, an intermediate under it, and server certificates.
type pki struct {
	now   time.Time
	root  *lab.CA
	inter *lab.CA
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	now := time.Now()
	root, err := lab.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "mxray lab intermediate"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Cert, key.Public(), root.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &pki{now: now, root: root, inter: &lab.CA{Cert: cert, Key: key}}
}

func (p *pki) leaf(t *testing.T, ca *lab.CA, name string, o lab.CertOptions) *x509.Certificate {
	t.Helper()
	o.Now = p.now
	l, err := ca.Issue([]string{name}, o)
	if err != nil {
		t.Fatal(err)
	}
	return l.Cert
}

func rec(t *testing.T, u dane.Usage, s dane.Selector, m dane.Matching, c *x509.Certificate) dane.Record {
	t.Helper()
	r := dane.NewRecord(u, s, m, dane.Association(c, s, m))
	if !r.Usable && u >= dane.DANETA {
		t.Fatalf("record %s unusable: %s", r.Text, r.Unusable)
	}
	return r
}

func TestVerify(t *testing.T) {
	p := newPKI(t)
	const mx = "mx1.dane.test"
	good := p.leaf(t, p.inter, mx, lab.CertOptions{})
	other := p.leaf(t, p.inter, "other.dane.test", lab.CertOptions{})
	expired := p.leaf(t, p.inter, mx, lab.CertOptions{NotBefore: p.now.AddDate(0, -2, 0), NotAfter: p.now.AddDate(0, 0, -1)})
	selfSigned := p.leaf(t, p.root, "wrong.example", lab.CertOptions{SelfSigned: true})
	p2 := newPKI(t)
	stranger := p2.leaf(t, p2.root, mx, lab.CertOptions{}) // from another CA
	full := []*x509.Certificate{good, p.inter.Cert, p.root.Cert}

	spkiFull := func(c *x509.Certificate) dane.Record {
		return dane.NewRecord(dane.DANETA, dane.SelectorSPKI, dane.MatchFull, c.RawSubjectPublicKeyInfo)
	}
	type want struct {
		Result dane.Result
		Cert   int    // of the match
		Name   string // of the match
		Miss   string // part of the first miss's reason
	}
	cases := []struct {
		name    string
		records []dane.Record
		chain   []*x509.Certificate
		mx      string
		want    want
		err     error
	}{
		{"3 1 1 leaf", []dane.Record{rec(t, 3, 1, 1, good)}, full, mx, want{Result: dane.Pass}, nil},
		{"3 0 1 leaf", []dane.Record{rec(t, 3, 0, 1, good)}, full, mx, want{Result: dane.Pass}, nil},
		{"3 0 2 leaf", []dane.Record{rec(t, 3, 0, 2, good)}, full, mx, want{Result: dane.Pass}, nil},
		{"3 1 0 leaf", []dane.Record{rec(t, 3, 1, 0, good)}, full, mx, want{Result: dane.Pass}, nil},
		{"3 0 0 leaf", []dane.Record{rec(t, 3, 0, 0, good)}, full, mx, want{Result: dane.Pass}, nil},
		{"DANE-EE ignores names and expiry", []dane.Record{rec(t, 3, 1, 1, expired), rec(t, 3, 1, 1, selfSigned)},
			[]*x509.Certificate{selfSigned}, "mx1.dane.test", want{Result: dane.Pass}, nil},
		{"DANE-EE wrong key", []dane.Record{rec(t, 3, 1, 1, other)}, full, mx,
			want{Result: dane.Fail, Miss: "does not match the server's public key"}, dane.ErrNoMatch},
		{"DANE-TA root in chain", []dane.Record{rec(t, 2, 0, 1, p.root.Cert)}, full, mx,
			want{Result: dane.Pass, Cert: 2, Name: mx}, nil},
		{"DANE-TA intermediate", []dane.Record{rec(t, 2, 1, 1, p.inter.Cert)}, full, "MX1.dane.test.",
			want{Result: dane.Pass, Cert: 1, Name: mx}, nil},
		{"DANE-TA checks the name", []dane.Record{rec(t, 2, 0, 1, p.root.Cert)}, []*x509.Certificate{other, p.inter.Cert, p.root.Cert}, mx,
			want{Result: dane.Fail, Miss: "the server certificate names other.dane.test, not mx1.dane.test"}, dane.ErrNoMatch},
		{"DANE-TA checks expiry", []dane.Record{rec(t, 2, 0, 1, p.root.Cert)}, []*x509.Certificate{expired, p.inter.Cert, p.root.Cert}, mx,
			want{Result: dane.Fail, Miss: "the chain does not verify up to it"}, dane.ErrNoMatch},
		{"DANE-TA anchor did not sign the chain", []dane.Record{rec(t, 2, 0, 1, p.root.Cert)}, []*x509.Certificate{stranger, p.inter.Cert, p.root.Cert}, mx,
			want{Result: dane.Fail, Miss: "the chain does not verify up to it"}, dane.ErrNoMatch},
		{"DANE-TA anchor not sent", []dane.Record{rec(t, 2, 1, 1, p.root.Cert)}, []*x509.Certificate{good, p.inter.Cert}, mx,
			want{Result: dane.Fail, Miss: "a DANE-TA(2) anchor must be in the chain unless published as 2 1 0"}, dane.ErrNoMatch},
		{"DANE-TA 2 1 0 anchor not sent", []dane.Record{spkiFull(p.root.Cert)}, []*x509.Certificate{good, p.inter.Cert}, mx,
			want{Result: dane.Pass, Cert: -1, Name: mx}, nil},
		{"DANE-TA 2 1 0 signs the leaf", []dane.Record{spkiFull(p.inter.Cert)}, []*x509.Certificate{good}, mx,
			want{Result: dane.Pass, Cert: -1, Name: mx}, nil},
		{"DANE-TA 2 1 0 unrelated key", []dane.Record{spkiFull(other)}, []*x509.Certificate{good, p.inter.Cert}, mx,
			want{Result: dane.Fail, Miss: "signed none of the presented certificates"}, dane.ErrNoMatch},
		{"DANE-TA on the leaf", []dane.Record{rec(t, 2, 1, 1, good)}, full, mx,
			want{Result: dane.Fail, Miss: "publish it as DANE-EE(3)"}, dane.ErrNoMatch},
		{"second record matches", []dane.Record{rec(t, 3, 1, 1, other), rec(t, 2, 0, 1, p.root.Cert)}, full, mx,
			want{Result: dane.Pass, Cert: 2, Name: mx}, nil},
		{"only PKIX records", []dane.Record{rec(t, 1, 1, 1, good), rec(t, 0, 0, 1, p.root.Cert)}, full, mx,
			want{Result: dane.None}, dane.ErrNoUsable},
		{"malformed digest", []dane.Record{dane.NewRecord(3, 1, 1, dane.Association(good, 1, 1)[:31])}, full, mx,
			want{Result: dane.None}, dane.ErrNoUsable},
		{"no chain", []dane.Record{rec(t, 3, 1, 1, good)}, nil, mx, want{Result: dane.Fail}, dane.ErrNoChain},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := dane.Verify(c.records, c.chain, c.mx, p.now)
			g := want{Result: v.Result}
			if v.Match != nil {
				g.Cert, g.Name = v.Match.Cert, v.Match.Name
			}
			if c.want.Miss != "" && len(v.Misses) > 0 && strings.Contains(v.Misses[0].Reason, c.want.Miss) {
				g.Miss = c.want.Miss
			}
			if d := cmp.Diff(c.want, g); d != "" {
				t.Errorf("(-want +got)\n%s\n%+v", d, v)
			}
			if !errors.Is(v.Err, c.err) || (c.err == nil) != (v.Err == nil) {
				t.Errorf("err = %v, want %v", v.Err, c.err)
			}
			if v.Summary == "" {
				t.Error("no summary")
			}
		})
	}
}

func TestAssociation(t *testing.T) {
	p := newPKI(t)
	c := p.leaf(t, p.root, "mx.test", lab.CertOptions{})
	// Published data, as a person would compute it with openssl, must
	// round-trip through the presentation format.
	for _, s := range []dane.Selector{dane.SelectorCert, dane.SelectorSPKI} {
		for _, m := range []dane.Matching{dane.MatchFull, dane.MatchSHA256, dane.MatchSHA512} {
			r, err := dane.ParseRecord("3 " + string(rune('0'+s)) + " " + string(rune('0'+m)) + " " + hex.EncodeToString(dane.Association(c, s, m)))
			if err != nil || !r.Usable || !r.Matches(c) {
				t.Errorf("3 %d %d: %+v, %v", s, m, r, err)
			}
		}
	}
}
