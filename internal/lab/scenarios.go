package lab

import (
	"github.com/miekg/dns"
)

// Scenario is a domain of the lab world that shows one situation a mail
// admin meets. Later features add theirs here, so that `mxray lab` offers
// every command something to try offline.
type Scenario struct {
	Domain      string
	Description string
	Zone        string // master-file text, names relative to Domain
	Opts        ZoneOptions
}

// Scenarios returns the lab's scenario domains. Addresses are on loopback;
// the mail host of every good domain is 127.0.0.1, where `mxray lab
// --servers` runs Postfix (reached through the printed --connect-map).
func Scenarios() []Scenario {
	return []Scenario{
		{
			Domain:      "example.test",
			Description: "a good domain: MX, SPF, DMARC; answers DNSSEC-validated (AD)",
			Zone: `
@       MX  10 mx1
@       A   127.0.0.1
@       TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc  TXT "v=DMARC1; p=reject; rua=mailto:dmarc@example.test"
mx1     A   127.0.0.1
www     CNAME example.test.
`,
			Opts: ZoneOptions{AD: true},
		},
		{
			Domain:      "nullmx.test",
			Description: "null MX (RFC 7505): the domain accepts no mail",
			Zone:        "@ MX 0 .\n@ A 127.0.0.1\n",
		},
		{
			Domain:      "nomx.test",
			Description: "no MX record: mail goes to the A record (implicit MX, RFC 5321 §5.1)",
			Zone:        "@ A 127.0.0.1\n",
		},
		{
			Domain:      "badmx.test",
			Description: "the MX names a host that does not exist",
			Zone:        "@ MX 10 mx.nonexistent.badmx.test.\n",
		},
		{
			Domain:      "cnamemx.test",
			Description: "the MX names a CNAME (RFC 2181 §10.3 forbids it)",
			Zone:        "@ MX 10 mail\nmail CNAME mx1.example.test.\n",
		},
		{
			Domain:      "servfail.test",
			Description: "every answer is SERVFAIL (a broken or bogus-signed zone)",
			Zone:        "@ MX 10 mx1.example.test.\n",
			Opts: ZoneOptions{ServFail: true, EDE: &dns.EDNS0_EDE{
				InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "lab: signature expired"}},
		},
		{
			Domain:      "timeout.test",
			Description: "the name servers never answer (timeouts)",
			Zone:        "@ MX 10 mx1.example.test.\n",
			Opts:        ZoneOptions{Drop: true},
		},
		{
			Domain:      "tcp.test",
			Description: "every UDP answer is truncated, so resolvers retry over TCP",
			Zone:        "@ MX 10 mx1.example.test.\n@ TXT \"v=spf1 -all\"\n",
			Opts:        ZoneOptions{Truncate: true},
		},
		{
			Domain:      "127.in-addr.arpa",
			Description: "reverse DNS of the lab's loopback addresses",
			Zone:        "1.0.0 PTR mx1.example.test.\n",
		},
	}
}

// LoadScenarios adds every scenario zone to s.
func LoadScenarios(s *DNSServer) error {
	for _, sc := range Scenarios() {
		if err := s.AddZone(sc.Domain, sc.Zone, sc.Opts); err != nil {
			return err
		}
	}
	return nil
}
