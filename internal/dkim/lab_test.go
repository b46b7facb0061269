package dkim_test

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// testNow is the clock of every test: after every timestamp in the
// corpora.
var testNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// startDNS runs a lab DNS server for one test.
func startDNS(t *testing.T) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// envFor is a diag.Env that asks s, with short DNS limits so that dropped
// queries end quickly.
func envFor(s *lab.DNSServer) diag.Env {
	c := dnsx.New([]string{s.Addr})
	c.Timeout = 300 * time.Millisecond
	c.Tries = 1
	return diag.Env{
		Resolver: c,
		Now:      func() time.Time { return testNow },
		Limits:   diag.Limits{DNS: 300 * time.Millisecond, DNSTry: 1},
	}
}

// txtRR renders a TXT record in zone-file syntax, split into strings of at
// most 255 bytes (RFC 1035 §3.3).
func txtRR(name, value string) string {
	var parts []string
	for len(value) > 0 {
		n := min(len(value), 200)
		parts = append(parts, `"`+strings.ReplaceAll(value[:n], `"`, `\"`)+`"`)
		value = value[n:]
	}
	if len(parts) == 0 {
		parts = []string{`""`}
	}
	return fmt.Sprintf("%s. 300 IN TXT %s\n", name, strings.Join(parts, " "))
}

// addRecords loads name → TXT value pairs, one zone per domain (the part
// after "_domainkey."), so that missing names get NXDOMAIN with a sound SOA.
func addRecords(t *testing.T, s *lab.DNSServer, recs map[string][]string) {
	t.Helper()
	zones := map[string]*strings.Builder{}
	for name, vals := range recs {
		origin := name
		if _, d, ok := strings.Cut(name, "._domainkey."); ok {
			origin = d
		}
		if zones[origin] == nil {
			zones[origin] = &strings.Builder{}
		}
		for _, v := range vals {
			zones[origin].WriteString(txtRR(name, v))
		}
	}
	for origin, b := range zones {
		if err := s.AddZone(origin, b.String(), lab.ZoneOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

func parsePEMKey(t *testing.T, p string) crypto.Signer {
	t.Helper()
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		t.Fatal("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(blk.Bytes); err == nil {
		return k.(crypto.Signer)
	}
	k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
