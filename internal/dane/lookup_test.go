package dane_test

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

func env(resolver string) diag.Env {
	c := dnsx.New([]string{resolver})
	c.Timeout, c.Tries = 3*time.Second, 1
	return diag.Env{Resolver: c, Limits: diag.Limits{DNS: 3 * time.Second, DNSTry: 1}}
}

func startDNS(t *testing.T) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sign(t *testing.T, origin, text string, now time.Time) *lab.SignedZone {
	t.Helper()
	z, err := lab.ParseZone(origin, text)
	if err != nil {
		t.Fatal(err)
	}
	s, err := lab.SignZone(z, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type lookupWant struct {
	State   dane.State
	Rcode   string
	AD      bool
	Records int
	Usable  int
	Verdict string // of the zone check, "" when none was made
}

func got(l dane.Lookup) lookupWant {
	g := lookupWant{State: l.State, Rcode: l.Rcode, AD: l.AD, Records: len(l.Records), Usable: len(l.Usable())}
	if l.Zone != nil {
		g.Verdict = l.Zone.Verdict
	}
	return g
}

// TestLookupLabDNS uses the plain lab DNS server, whose AD bit is set by
// zone option (a stand-in for a validating resolver).
func TestLookupLabDNS(t *testing.T) {
	p := newPKI(t)
	cert := p.leaf(t, p.root, "mx.ad.test", lab.CertOptions{})
	ee := rec(t, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256, cert)
	tlsa := "_25._tcp.mx TLSA " + ee.Text + "\nmx A 127.0.0.1\n"
	s := startDNS(t)
	s.AddZone("ad.test", tlsa+"_2525._tcp.mx TLSA "+ee.Text+"\n_25._tcp.pkix TLSA 1 1 1 "+ee.Data+"\npkix A 127.0.0.1\n", lab.ZoneOptions{AD: true})
	s.AddZone("unsigned.test", tlsa, lab.ZoneOptions{})
	// A signed zone served by a server that does not validate: DNSKEY
	// present, AD clear.
	s.AddZone("signed.test", sign(t, "signed.test", tlsa, p.now).Text(), lab.ZoneOptions{})
	s.AddZone("broken.test", tlsa, lab.ZoneOptions{ServFail: true, EDE: &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "lab"}})
	e := env(s.Addr)
	ctx := context.Background()

	cases := []struct {
		host string
		port int
		want lookupWant
		text string // part of the summary
		err  error
	}{
		{"mx.ad.test", 25, lookupWant{dane.StateDANE, "NOERROR", true, 1, 1, ""}, "1 validated TLSA record(s) at _25._tcp.mx.ad.test (AD), 1 usable", nil},
		{"MX.ad.test.", 2525, lookupWant{dane.StateDANE, "NOERROR", true, 1, 1, ""}, "_2525._tcp.mx.ad.test", nil},
		{"pkix.ad.test", 25, lookupWant{dane.StateUnusable, "NOERROR", true, 1, 0, ""}, "none usable for SMTP", nil},
		{"nomx.ad.test", 25, lookupWant{dane.StateNone, "NXDOMAIN", true, 0, 0, ""}, "authenticated denial", nil},
		{"mx.unsigned.test", 25, lookupWant{dane.StateInsecure, "NOERROR", false, 1, 1, "unsigned"}, "The zone unsigned.test is not signed", nil},
		{"nomx.unsigned.test", 25, lookupWant{dane.StateNone, "NXDOMAIN", false, 0, 0, "unsigned"}, "not validated", nil},
		{"mx.signed.test", 25, lookupWant{dane.StateInsecure, "NOERROR", false, 1, 1, "not-validated"},
			"either your resolver does not validate DNSSEC, or no DS for signed.test is published in its parent", nil},
		{"mx.broken.test", 25, lookupWant{dane.StateTemperror, "SERVFAIL", false, 0, 0, ""}, "must defer delivery to mx.broken.test", dnsx.ErrServFail},
	}
	for _, c := range cases {
		t.Run(c.host, func(t *testing.T) {
			l := dane.LookupTLSA(ctx, e, c.host, c.port)
			if d := cmp.Diff(c.want, got(l)); d != "" {
				t.Errorf("(-want +got)\n%s\n%s", d, l.Summary)
			}
			text := l.Summary
			if l.Zone != nil {
				text += " " + l.Zone.Text
			}
			if !strings.Contains(text, c.text) {
				t.Errorf("summary %q lacks %q", text, c.text)
			}
			if c.err != nil && (!errors.Is(l.Err, c.err) || !errors.Is(l.Err, dane.ErrLookup)) {
				t.Errorf("err = %v, want %v", l.Err, c.err)
			}
		})
	}
}

// TestLookupThroughUnbound has a real validating resolver earn the AD bit
// for a signed zone, refuse a tampered one (SERVFAIL: defer), and leave
// an unsigned zone insecure.
func TestLookupThroughUnbound(t *testing.T) {
	ctx := context.Background()
	p := newPKI(t)
	cert := p.leaf(t, p.inter, "mx.dane.test", lab.CertOptions{})
	chain := []*x509.Certificate{cert, p.inter.Cert, p.root.Cert}
	ee := rec(t, dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256, cert)
	ta := rec(t, dane.DANETA, dane.SelectorCert, dane.MatchSHA256, p.root.Cert)
	zone := "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee.Text + "\n_25._tcp.mx TLSA " + ta.Text + "\n"
	good := sign(t, "dane.test", zone, p.now)
	bogus := sign(t, "bogus.test", strings.ReplaceAll(zone, "dane.test", "bogus.test"), p.now)
	// Change the TLSA after signing: its RRSIG no longer matches.
	for _, rr := range bogus.Records {
		if r, ok := rr.(*dns.TLSA); ok {
			r.Certificate = strings.Repeat("00", 32)
		}
	}
	labDNS := startDNS(t)
	labDNS.AddZone("plain.test", zone, lab.ZoneOptions{AD: true}) // the lab's AD claim; unbound knows better
	ub, err := lab.StartUnbound(ctx, lab.UnboundConfig{Forward: labDNS.Addr, ForwardZones: labDNS.Zones(), Signed: []*lab.SignedZone{good, bogus}})
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Stop()
	e := env(ub.Addr)

	l := dane.LookupTLSA(ctx, e, "mx.dane.test", 25)
	if d := cmp.Diff(lookupWant{dane.StateDANE, "NOERROR", true, 2, 2, ""}, got(l)); d != "" {
		t.Fatalf("signed zone (-want +got)\n%s\n%s", d, l.Summary)
	}
	// The answer's order is the resolver's: pick the records by usage.
	var eeOnly []dane.Record
	for _, r := range l.Records {
		if r.Usage == dane.DANEEE {
			eeOnly = append(eeOnly, r)
		}
	}
	if v := dane.Verify(l.Records, chain, "mx.dane.test", p.now); v.Result != dane.Pass || v.Match == nil {
		t.Errorf("verify: %+v", v)
	}
	if v := dane.Verify(eeOnly, chain, "mx.dane.test", p.now); v.Result != dane.Pass || v.Match.Cert != 0 || v.Match.Record.Text != ee.Text {
		t.Errorf("verify DANE-EE: %+v", v)
	}
	// A server with another key fails against the DANE-EE record.
	other := p.leaf(t, p.inter, "mx.dane.test", lab.CertOptions{})
	if v := dane.Verify(eeOnly, []*x509.Certificate{other, p.inter.Cert}, "mx.dane.test", p.now); v.Result != dane.Fail {
		t.Errorf("verify with another key: %+v", v)
	}

	l = dane.LookupTLSA(ctx, e, "nomx.dane.test", 25)
	if d := cmp.Diff(lookupWant{dane.StateNone, "NXDOMAIN", true, 0, 0, ""}, got(l)); d != "" {
		t.Errorf("authenticated denial (-want +got)\n%s\n%s", d, l.Summary)
	}

	l = dane.LookupTLSA(ctx, e, "mx.bogus.test", 25)
	if d := cmp.Diff(lookupWant{dane.StateTemperror, "SERVFAIL", false, 0, 0, ""}, got(l)); d != "" {
		t.Errorf("bogus (-want +got)\n%s\n%s", d, l.Summary)
	}
	if !errors.Is(l.Err, dnsx.ErrServFail) || !strings.Contains(l.Summary, "must defer") || l.Status() != diag.Fail {
		t.Errorf("bogus: %v / %s", l.Err, l.Summary)
	}

	l = dane.LookupTLSA(ctx, e, "mx.plain.test", 25)
	if d := cmp.Diff(lookupWant{dane.StateInsecure, "NOERROR", false, 2, 2, "unsigned"}, got(l)); d != "" {
		t.Errorf("unsigned zone through unbound (-want +got)\n%s\n%s", d, l.Summary)
	}
	if !strings.Contains(l.Summary, "not validated") {
		t.Errorf("summary %q", l.Summary)
	}

	// The same signed zone served without validation: not validated, and
	// the zone check says it is signed.
	plain := startDNS(t)
	plain.AddZone("dane.test", good.Text(), lab.ZoneOptions{})
	l = dane.LookupTLSA(ctx, env(plain.Addr), "mx.dane.test", 25)
	if d := cmp.Diff(lookupWant{dane.StateInsecure, "NOERROR", false, 2, 2, "not-validated"}, got(l)); d != "" {
		t.Errorf("signed zone without a validating resolver (-want +got)\n%s\n%s", d, l.Summary)
	}
}
