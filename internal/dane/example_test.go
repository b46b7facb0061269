package dane_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/lab"
)

// A signed zone validated by the lab's unbound, the same zone from a
// server that does not validate, and a tampered copy.
func ExampleLookupTLSA() {
	ctx := context.Background()
	now := time.Now()
	ca, _ := lab.NewCA(now)
	leaf, _ := ca.Issue([]string{"mx.dane.test"}, lab.CertOptions{Now: now})
	ee := dane.NewRecord(dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256, dane.Association(leaf.Cert, dane.SelectorSPKI, dane.MatchSHA256))
	zone := "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee.Text + "\n"
	signed := func(origin string) *lab.SignedZone {
		z, _ := lab.ParseZone(origin, strings.ReplaceAll(zone, "dane.test", origin))
		s, _ := lab.SignZone(z, now)
		return s
	}
	good, bogus := signed("dane.test"), signed("bogus.test")
	for _, rr := range bogus.Records {
		if t, ok := rr.(*dns.TLSA); ok {
			t.Certificate = strings.Repeat("00", 32) // after signing: bogus
		}
	}
	labDNS, _ := lab.StartDNS("127.0.0.1:0")
	defer labDNS.Close()
	labDNS.AddZone("plain.test", zone, lab.ZoneOptions{})
	ub, err := lab.StartUnbound(ctx, lab.UnboundConfig{Forward: labDNS.Addr, ForwardZones: labDNS.Zones(), Signed: []*lab.SignedZone{good, bogus}})
	if err != nil {
		panic(err)
	}
	defer ub.Stop()
	nonValidating, _ := lab.StartDNS("127.0.0.1:0")
	defer nonValidating.Close()
	nonValidating.AddZone("dane.test", good.Text(), lab.ZoneOptions{})

	l := dane.LookupTLSA(ctx, env(ub.Addr), "mx.dane.test", 25)
	fmt.Printf("[%s] %s\n", l.Status(), l.Summary)
	v := dane.Verify(l.Records, []*x509.Certificate{leaf.Cert, ca.Cert}, "mx.dane.test", now)
	fmt.Printf("  verify: %s (record %s matched certificate %d)\n", v.Result, v.Match.Record.Usage, v.Match.Cert)
	l = dane.LookupTLSA(ctx, env(nonValidating.Addr), "mx.dane.test", 25)
	fmt.Printf("[%s] %s\n", l.Status(), l.Summary)
	l = dane.LookupTLSA(ctx, env(ub.Addr), "mx.plain.test", 25)
	fmt.Printf("[%s] %s\n", l.Status(), l.Summary)
	l = dane.LookupTLSA(ctx, env(ub.Addr), "mx.bogus.test", 25)
	fmt.Printf("[%s] %s, rcode %s\n", l.Status(), l.State, l.Rcode)
	l = dane.LookupTLSA(ctx, env(ub.Addr), "nomx.dane.test", 25)
	fmt.Printf("[%s] %s\n", l.Status(), l.Summary)
	// Output:
	// [ok] 1 validated TLSA record(s) at _25._tcp.mx.dane.test (AD), 1 usable: senders require TLS and a certificate matching them
	//   verify: pass (record DANE-EE(3) matched certificate 0)
	// [warn] 1 TLSA record(s) at _25._tcp.mx.dane.test, but not validated (no AD bit): senders ignore them. The zone dane.test publishes DNSKEY records but the answer was not validated: either your resolver does not validate DNSSEC, or no DS for dane.test is published in its parent.
	// [warn] 1 TLSA record(s) at _25._tcp.mx.plain.test, but not validated (no AD bit): senders ignore them. The zone plain.test is not signed (no DNSKEY): DANE needs DNSSEC.
	// [fail] temperror, rcode SERVFAIL
	// [info] no TLSA records at _25._tcp.nomx.dane.test (NXDOMAIN, authenticated denial): no DANE for nomx.dane.test; senders use opportunistic TLS
}
