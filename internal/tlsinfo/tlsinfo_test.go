package tlsinfo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/lab"
)

func TestVerify(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ca, err := lab.NewCA(now.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	other, err := lab.NewCA(now.AddDate(-1, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(ca *lab.CA, names []string, o lab.CertOptions) []*x509.Certificate {
		t.Helper()
		o.Now = now
		l, err := ca.Issue(names, o)
		if err != nil {
			t.Fatal(err)
		}
		var chain []*x509.Certificate
		for _, der := range l.TLS.Certificate {
			c, _ := x509.ParseCertificate(der)
			chain = append(chain, c)
		}
		return chain
	}
	mx := []string{"mx1.example.test"}
	tests := []struct {
		name     string
		chain    []*x509.Certificate
		host     string
		problems []Problem
		names    []string
	}{
		{name: "valid", chain: issue(ca, mx, lab.CertOptions{}), host: "mx1.example.test."},
		{name: "valid, name case-insensitive", chain: issue(ca, mx, lab.CertOptions{}), host: "MX1.Example.Test"},
		{name: "expired", host: "mx1.example.test", problems: []Problem{Expired},
			chain: issue(ca, mx, lab.CertOptions{NotBefore: now.AddDate(0, 0, -90), NotAfter: now.AddDate(0, 0, -2)})},
		{name: "not yet valid", host: "mx1.example.test", problems: []Problem{NotYetValid},
			chain: issue(ca, mx, lab.CertOptions{NotBefore: now.AddDate(0, 0, 2), NotAfter: now.AddDate(0, 0, 90)})},
		{name: "wrong name", host: "mx1.example.test", problems: []Problem{WrongName},
			chain: issue(ca, []string{"other.example.test", "www.example.test"}, lab.CertOptions{}),
			names: []string{"other.example.test", "www.example.test"}},
		{name: "self-signed", host: "mx1.example.test", problems: []Problem{SelfSigned},
			chain: issue(ca, mx, lab.CertOptions{SelfSigned: true})},
		{name: "unknown authority", host: "mx1.example.test", problems: []Problem{UnknownAuthority},
			chain: issue(other, mx, lab.CertOptions{})},
		{name: "leaf without its intermediate", host: "mx1.example.test", problems: []Problem{UnknownAuthority},
			chain: issue(other, mx, lab.CertOptions{})[:1]},
		{name: "everything wrong at once", host: "mx1.example.test",
			problems: []Problem{UnknownAuthority, Expired, WrongName},
			chain:    issue(other, []string{"a.test"}, lab.CertOptions{NotBefore: now.AddDate(0, 0, -90), NotAfter: now.AddDate(0, 0, -2)}),
			names:    []string{"a.test"}},
		{name: "no certificate", host: "mx1.example.test", problems: []Problem{NoCertificate}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Verify(tc.chain, tc.host, ca.Pool(), now)
			want := OK
			if len(tc.problems) > 0 {
				want = tc.problems[0]
			}
			if v.Status != want {
				t.Errorf("Status = %s, want %s (%v)", v.Status, want, v.Errors)
			}
			if diff := cmp.Diff(tc.problems, v.Problems); diff != "" {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.names, v.Names); diff != "" {
				t.Errorf("Names (-want +got):\n%s", diff)
			}
			if v.Has(WrongName) != (tc.names != nil) {
				t.Errorf("Has(WrongName) = %v", v.Has(WrongName))
			}
		})
	}
}

// TestInspectHandshake summarises a real handshake made without
// verification, the way the delivery test makes it.
func TestInspectHandshake(t *testing.T) {
	now := time.Now()
	ca, err := lab.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"other.example.test"}, lab.CertOptions{Now: now, NotAfter: now.Add(30*24*time.Hour + time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{leaf.TLS}, NextProtos: []string{"smtp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: "mx1.example.test", InsecureSkipVerify: true, NextProtos: []string{"smtp"}})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake with a wrong-name certificate must succeed without verification: %v", err)
	}
	info := Inspect(tc.ConnectionState(), "mx1.example.test", ca.Pool(), now)
	if info.Version != "TLS 1.3" || info.CipherSuite == "" || info.ALPN != "smtp" || info.ServerName != "mx1.example.test" {
		t.Errorf("session summary %+v", info)
	}
	if len(info.Chain) != 2 {
		t.Fatalf("chain of %d, want leaf and CA", len(info.Chain))
	}
	l := info.Chain[0]
	if l.Subject != "CN=other.example.test,O=mxray lab" || l.Issuer != "CN=mxray lab CA,O=mxray lab" ||
		l.KeyType != "ECDSA" || l.KeyBits != 256 || l.DaysLeft != 30 || l.SignatureAlgorithm != "ECDSA-SHA256" ||
		len(l.SHA256) != 64 || l.IsCA || !info.Chain[1].IsCA {
		t.Errorf("leaf %+v", l)
	}
	if info.Verification.Status != WrongName || info.Verification.Names[0] != "other.example.test" {
		t.Errorf("verification %+v", info.Verification)
	}
}

func TestDescribeRSA(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "legacy.test"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	d := Describe(c, now)
	if d.KeyType != "RSA" || d.KeyBits != 2048 || d.DaysLeft != 0 {
		t.Errorf("%+v", d)
	}
	// A certificate with only a common name: shown, flagged as unused.
	v := Verify([]*x509.Certificate{c}, "mx.test", nil, now)
	if !v.Has(WrongName) || !v.Has(SelfSigned) || len(v.Names) != 1 || v.Names[0] != "legacy.test (common name only; not used for matching)" {
		t.Errorf("%+v", v)
	}
}
