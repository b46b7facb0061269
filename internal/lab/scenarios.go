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
	// Files are served as text/plain by the lab's HTTPS server (`mxray
	// lab`), keyed "host/path": "mta-sts.example.test/.well-known/mta-sts.txt".
	// Each host gets a certificate from the lab CA.
	Files map[string]string
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
		{
			Domain:      "spf-toomany.test",
			Description: "SPF: a nested include pushes the record past 10 DNS lookups (permerror, RFC 7208 §4.6.4)",
			Zone: `
@       TXT "v=spf1 mx a include:_spf.spf-toomany.test -all"
@       MX  10 mx
@       A   192.0.2.10
mx      A   192.0.2.11
_spf    TXT "v=spf1 a:h1.spf-toomany.test a:h2.spf-toomany.test a:h3.spf-toomany.test a:h4.spf-toomany.test a:h5.spf-toomany.test a:h6.spf-toomany.test a:h7.spf-toomany.test include:_more.spf-toomany.test"
_more   TXT "v=spf1 ip4:127.0.0.1 -all"
h1      A   192.0.2.21
h2      A   192.0.2.22
h3      A   192.0.2.23
h4      A   192.0.2.24
h5      A   192.0.2.25
h6      A   192.0.2.26
h7      A   192.0.2.27
`,
		},
		{
			Domain:      "spf-two.test",
			Description: "SPF: two v=spf1 records at one name (permerror, RFC 7208 §4.5)",
			Zone: `
@       TXT "v=spf1 ip4:127.0.0.1 -all"
@       TXT "v=spf1 a ~all"
@       A   127.0.0.1
`,
		},
		{
			Domain:      "spf-macro.test",
			Description: "SPF: a per-user exists: macro and an exp= explanation (alice@ may send from 127.0.0.1, nobody else)",
			Zone: `
@                     TXT "v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} exp=explain._spf.%{d} -all"
1.0.0.127.alice._spf  A   127.0.0.2
explain._spf          TXT "%{i} is not allowed to send mail as %{l} for %{d}"
`,
		},
		{
			Domain:      "spf-void.test",
			Description: "SPF: terms naming names that do not exist exceed the 2 void lookups (permerror, RFC 7208 §4.6.4)",
			Zone: `
@       TXT "v=spf1 a:old-relay.spf-void.test mx:gone.spf-void.test include:_spf.spf-void.test -all"
_spf    TXT "v=spf1 exists:%{i}.bl.spf-void.test ip4:127.0.0.1 -all"
`,
		},
		{
			Domain:      DKIMDomain,
			Description: "DKIM: valid keys (selector rsa2048: RSA 2048, selector ed: Ed25519) whose private halves are lab.DKIMKeyRSA / lab.DKIMKeyEd25519",
			Zone: `
@                        TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc                   TXT "v=DMARC1; p=reject"
` + DKIMSelectorRSA + `._domainkey     TXT ` + dkimRecordRSA + `
` + DKIMSelectorEd25519 + `._domainkey          TXT ` + dkimRecordEd25519 + `
`,
		},
		{
			Domain:      DKIMRevokedDomain,
			Description: "DKIM: the key of selector rsa2048 is revoked (empty p=, RFC 6376 §3.6.1): every signature fails",
			Zone:        DKIMSelectorRSA + "._domainkey TXT \"v=DKIM1; k=rsa; p=\"\n",
		},
		{
			Domain:      "sts-good.test",
			Description: "MTA-STS in mode enforce; the policy lists the domain's MX (RFC 8461)",
			Zone: `
@            MX  10 mx1.example.test.
@            TXT "v=spf1 ip4:127.0.0.0/8 -all"
mta-sts      A   127.0.0.1
_mta-sts     TXT "v=STSv1; id=20250101T000000"
_smtp._tls   TXT "v=TLSRPTv1; rua=mailto:tls-reports@sts-good.test"
`,
			Files: map[string]string{
				"mta-sts.sts-good.test/.well-known/mta-sts.txt": "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.test\r\nmax_age: 604800\r\n",
			},
		},
		{
			Domain:      "sts-badmx.test",
			Description: "MTA-STS in mode enforce, but the policy does not list the MX: senders must not deliver (RFC 8461 §4.1)",
			Zone: `
@            MX  10 mx1.example.test.
mta-sts      A   127.0.0.1
_mta-sts     TXT "v=STSv1; id=20250101T000000"
`,
			Files: map[string]string{
				"mta-sts.sts-badmx.test/.well-known/mta-sts.txt": "version: STSv1\nmode: enforce\nmx: mail.sts-badmx.test\nmax_age: 604800\n",
			},
		},
		{
			Domain:      "ipmx.test",
			Description: "delivery: the MX names an IP address, not a host (Postfix and mxray skip it: undeliverable)",
			Zone:        "@ MX 10 127.0.0.1.\n@ A 127.0.0.1\n",
		},
		{
			Domain:      "backupmx.test",
			Description: "delivery: the preferred MX has no address; the backup MX (mx1.example.test) takes the mail",
			Zone:        "@ MX 10 mx-gone\n@ MX 20 mx1.example.test.\n",
		},
		{
			Domain: "test",
			Description: "the lab's top-level domain: names no scenario defines answer NXDOMAIN, as on the Internet, " +
				"so the DMARC tree walk (RFC 9989 §4.10) can reach _dmarc.test",
			Zone: "",
		},
		{
			Domain: "dmarc-strict.test",
			Description: "DMARC p=reject with strict alignment (adkim=s, aspf=s): SPF for bounce.dmarc-strict.test passes but does not align; " +
				"DKIM key sel._domainkey is Ed25519 from the seed SHA-256(\"mxray lab dkim key: sel._domainkey.dmarc-strict.test\")",
			Zone: `
@                TXT "v=spf1 ip4:127.0.0.0/8 -all"
@                MX  10 mx1.example.test.
bounce           TXT "v=spf1 ip4:127.0.0.0/8 -all"
_dmarc           TXT "v=DMARC1; p=reject; adkim=s; aspf=s; rua=mailto:dmarc@dmarc-strict.test"
sel._domainkey   TXT "v=DKIM1; k=ed25519; p=VA5Vh4ViyYMgevxKrchy0tuI2JTuFHi5ZGNb3JDnOcI="
dmarc-walk.test._report._dmarc TXT "v=DMARC1"
`,
		},
		{
			Domain: "dmarc-walk.test",
			Description: "DMARC DNS tree walk: a.b.c.dmarc-walk.test has no record of its own, so _dmarc.dmarc-walk.test applies " +
				"(sp=quarantine for existing subdomains, np=reject for names that do not exist); reports go to a verified external destination",
			Zone: `
@       TXT "v=spf1 ip4:127.0.0.1 -all"
@       MX  10 mx1.example.test.
a.b.c   TXT "v=spf1 ip4:127.0.0.1 -all"
_dmarc  TXT "v=DMARC1; p=none; sp=quarantine; np=reject; rua=mailto:dmarc@dmarc-strict.test; ruf=mailto:ruf@psd.test"
`,
		},
		{
			Domain: "psd.test",
			Description: "DMARC psd=y: psd.test declares itself a public suffix domain, so org.psd.test and other.psd.test are " +
				"separate organizations (RFC 9989), while RFC 7489's public suffix list lumps them together under psd.test",
			Zone: `
_dmarc      TXT "v=DMARC1; p=reject; psd=y"
org         TXT "v=spf1 ip4:127.0.0.0/8 -all"
mail.org    TXT "v=spf1 ip4:127.0.0.0/8 -all"
other       TXT "v=spf1 ip4:127.0.0.0/8 -all"
`,
		},
		{
			Domain:      "iprev.test",
			Description: "iprev (RFC 8601 §3): 127.0.2.1's PTR names norev.iprev.test, whose A record is 127.0.2.99, so reverse DNS is not forward-confirmed",
			Zone: `
@       TXT "v=spf1 ip4:127.0.2.0/24 -all"
norev   A   127.0.2.99
mx      A   127.0.2.2
`,
		},
		{
			Domain:      "2.0.127.in-addr.arpa",
			Description: "reverse DNS of 127.0.2.x for the iprev scenario (127.0.2.1 is not forward-confirmed, 127.0.2.2 is, 127.0.2.3 has no PTR)",
			Zone:        "1 PTR norev.iprev.test.\n2 PTR mx.iprev.test.\n",
		},
		{
			Domain: "domain-good.test",
			Description: "domain audit (mxray domain): everything present and consistent — MX with forward-confirmed reverse DNS, SPF, DMARC p=reject, " +
				"DKIM selector mail, MTA-STS enforce matching the MX, TLS-RPT, BIMI, SRV records (RFC 6186/8314), Thunderbird autoconfig and Outlook " +
				"Autodiscover naming mx1.example.test (IMAPS 993, submission 587: the servers of mxray lab --servers)",
			Zone: `
@                   MX  10 mx1.example.test.
@                   A   127.0.0.1
@                   TXT "v=spf1 mx ip4:127.0.0.0/8 -all"
_dmarc              TXT "v=DMARC1; p=reject; rua=mailto:dmarc@domain-good.test"
mail._domainkey     TXT ` + dkimRecordRSA + `
mta-sts             A   127.0.0.1
_mta-sts            TXT "v=STSv1; id=20260101T000000"
_smtp._tls          TXT "v=TLSRPTv1; rua=mailto:tls-reports@domain-good.test"
default._bimi       TXT "v=BIMI1; l=https://domain-good.test/bimi/logo.svg"
autoconfig          A   127.0.0.1
autodiscover        A   127.0.0.1
_submissions._tcp   SRV 0 0 0 .
_submission._tcp    SRV 0 1 587 mx1.example.test.
_imaps._tcp         SRV 0 1 993 mx1.example.test.
_imap._tcp          SRV 0 0 0 .
_pop3s._tcp         SRV 0 0 0 .
_pop3._tcp          SRV 0 0 0 .
_autodiscover._tcp  SRV 0 0 443 autodiscover.domain-good.test.
`,
			Files: map[string]string{
				"mta-sts.domain-good.test/.well-known/mta-sts.txt":             "version: STSv1\nmode: enforce\nmx: mx1.example.test\nmax_age: 604800\n",
				"autoconfig.domain-good.test/mail/config-v1.1.xml":             domainGoodAutoconfig,
				"domain-good.test/.well-known/autoconfig/mail/config-v1.1.xml": domainGoodAutoconfig,
				"autodiscover.domain-good.test/autodiscover/autodiscover.xml":  domainGoodAutodiscover,
			},
		},
		{
			Domain: "domain-bad.test",
			Description: "domain audit (mxray domain): everything wrong — MX without reverse DNS and listed on bl.test, SPF over 10 lookups with ?all, " +
				"DMARC p=none pct=50 with an unauthorized external rua, DKIM k1 revoked and s1024 weak, MTA-STS policy not matching the MX, " +
				"SRV _imaps \".\" while autoconfig advertises IMAPS, a POP3 server without TLS and submission on port 2526 where nothing listens",
			Zone: `
@                   MX  10 mx
mx                  A   127.0.0.10
imap                A   127.0.0.1
@                   TXT "v=spf1 mx a include:_spf.spf-toomany.test ?all"
_dmarc              TXT "v=DMARC1; p=none; pct=50; rua=mailto:dmarc@example.test"
k1._domainkey       TXT "v=DKIM1; k=rsa; p="
s1024._domainkey    TXT "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDLoKgXmpjupbalPvd2v+0veQnGMseBVUh8AwAFvVuuV1pLnyfnO9OxvelG/1W54MPGMtYe7IE8RwXmpRQOpDtQTATaktz0BBsMlKABpRP+xB4m+spTO+USjjYk4ChdNWmFw/8MGB/jsxzCyiGapMAleCRQF23B0Puzsu6/UtIELQIDAQAB"
mta-sts             A   127.0.0.1
_mta-sts            TXT "v=STSv1; id=20260101T000000"
autoconfig          A   127.0.0.1
_imaps._tcp         SRV 0 0 0 .
_submission._tcp    SRV 0 1 587 mail.domain-bad.test.
`,
			Files: map[string]string{
				"mta-sts.domain-bad.test/.well-known/mta-sts.txt": "version: STSv1\nmode: enforce\nmx: mail.domain-bad.test\nmax_age: 604800\n",
				"autoconfig.domain-bad.test/mail/config-v1.1.xml": domainBadAutoconfig,
			},
		},
		{
			Domain: "bl.test",
			Description: "a DNS blocklist (RFC 5782) for mxray domain --dnsbl bl.test: the test entry 127.0.0.2 is listed, 127.0.0.1 is not, " +
				"and 127.0.0.10 (the MX of domain-bad.test) is listed with a reason",
			Zone: `
2.0.0.127    A    127.0.0.2
2.0.0.127    TXT  "RFC 5782 test entry"
10.0.0.127   A    127.0.0.4
10.0.0.127   TXT  "lab: 127.0.0.10 sent mail to spam traps"
`,
		},
		{
			Domain: "probe.test",
			Description: "mxray probe: mail.probe.test reaches the servers of mxray lab --servers, whose certificate names " +
				"mx1.example.test only (a wrong-name certificate); closed.probe.test is an address where nothing listens",
			Zone: "mail    A   127.0.0.1\nclosed  A   127.0.0.9\n",
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

// The client configuration documents of the domain audit scenarios.
const (
	domainGoodAutoconfig = `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="domain-good.test">
    <domain>domain-good.test</domain>
    <displayName>mxray lab (good)</displayName>
    <incomingServer type="imap">
      <hostname>mx1.example.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>mx1.example.test</hostname>
      <port>587</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
`
	domainGoodAutodiscover = `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
      <Protocol>
        <Type>IMAP</Type>
        <Server>mx1.example.test</Server>
        <Port>993</Port>
        <SSL>on</SSL>
        <SPA>off</SPA>
        <AuthRequired>on</AuthRequired>
      </Protocol>
      <Protocol>
        <Type>SMTP</Type>
        <Server>mx1.example.test</Server>
        <Port>587</Port>
        <Encryption>TLS</Encryption>
        <SPA>off</SPA>
        <AuthRequired>on</AuthRequired>
      </Protocol>
    </Account>
  </Response>
</Autodiscover>
`
	domainBadAutoconfig = `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="domain-bad.test">
    <domain>domain-bad.test</domain>
    <incomingServer type="imap">
      <hostname>imap.domain-bad.test</hostname>
      <port>993</port>
      <socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="pop3">
      <hostname>imap.domain-bad.test</hostname>
      <port>110</port>
      <socketType>plain</socketType>
      <username>%EMAILLOCALPART%</username>
      <authentication>password-cleartext</authentication>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>imap.domain-bad.test</hostname>
      <port>2526</port>
      <socketType>STARTTLS</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>password-cleartext</authentication>
    </outgoingServer>
  </emailProvider>
</clientConfig>
`
)
