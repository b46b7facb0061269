package doctor

import (
	"fmt"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/smtpc"
)

// Row is a row of the classic mail troubleshooting matrix: the symptom a
// user reports, which the doctor names for every problem it finds.
type Row string

const (
	RowDNS         Row = "dns"                // NXDOMAIN, SERVFAIL, timeouts, missing MX or addresses
	RowFirewall    Row = "firewall"           // connections time out: a filter drops packets (maybe on this side)
	RowRefused     Row = "connection-refused" // the port is closed: the service is down or not listening
	RowWrongIP     Row = "wrong-ip"           // nothing or something else answers; PTR/EHLO do not match
	RowUnknownUser Row = "unknown-user"       // RCPT 550 5.1.1: no such mailbox
	RowStuck       Row = "mail-stuck"         // 4yz replies: greylisting, overload, deferral
	RowAuth        Row = "authentication"     // SPF/DKIM/DMARC policy, login failures
	RowTLS         Row = "tls"                // certificates, STARTTLS, MTA-STS, DANE
	RowReputation  Row = "reputation"         // blocklists, open relay, policy rejections (5.7.x)
	RowConfig      Row = "configuration"      // everything else: client settings, SRV, BIMI, HELO
)

// Rows are the matrix rows in the order problems of equal severity are
// shown: what blocks everything else first.
var Rows = []Row{RowDNS, RowFirewall, RowRefused, RowWrongIP, RowUnknownUser, RowStuck, RowAuth, RowTLS, RowReputation, RowConfig}

func (r Row) rank() int {
	for i, x := range Rows {
		if x == r {
			return i
		}
	}
	return len(Rows)
}

// Title is how the row is named in the text report.
func (r Row) Title() string {
	return map[Row]string{
		RowDNS: "DNS resolution", RowFirewall: "firewall blocking", RowRefused: "connection refused",
		RowWrongIP: "wrong IP", RowUnknownUser: "unknown user", RowStuck: "mail stuck",
		RowAuth: "authentication", RowTLS: "TLS", RowReputation: "reputation", RowConfig: "configuration",
	}[r]
}

// rule maps the steps it matches to a row, a likely cause and a fix.
// The first matching rule wins.
type rule struct {
	part  Part
	id    string // the step id within the part; for probe steps without the service ("connect")
	match func(st diag.Step) bool
	row   Row
	cause string // {host}, {ip} and {port} are replaced
	fix   string // used when the step has no hint of its own
	// dedupe names problems that are the same finding seen by two parts
	// ("title": the same row, IP and title; "id": the same row and step
	// id; else the same row and this word).
	dedupe string
}

func titleHas(words ...string) func(diag.Step) bool {
	return func(st diag.Step) bool {
		t := strings.ToLower(st.Title)
		for _, w := range words {
			if strings.Contains(t, w) {
				return true
			}
		}
		return false
	}
}

// reply returns the SMTP reply a delivery step carries as evidence.
func reply(st diag.Step) (smtpc.Reply, bool) {
	m, ok := st.Data.(map[string]any)
	if !ok {
		return smtpc.Reply{}, false
	}
	r, ok := m["reply"].(smtpc.Reply)
	return r, ok
}

func replyIs(f func(r smtpc.Reply) bool) func(diag.Step) bool {
	return func(st diag.Step) bool {
		r, ok := reply(st)
		return ok && f(r)
	}
}

const (
	causeRefused = "{ip} answered port {port} with a TCP reset: nothing listens there. The service is down, listens on another address " +
		"or port, or a firewall rejects the connection; or the DNS points to an address where the server is not (wrong IP)."
	fixRefused = "On the server: is the daemon running and listening on {ip} port {port} (ss -ltn 'sport = :{port}')? " +
		"Does the firewall let TCP {port} in? Is {host}'s A/AAAA record the server's address?"
	causeTimeout = "No answer from {ip} port {port}: a firewall drops the packets, or the host is down. For port 25 the block is often " +
		"on THIS side: many ISPs, clouds and home networks block outgoing port 25, so this may be the local network where mxray runs."
	fixTimeout = "Run mxray from another network (or the mail server itself): if it answers there, the block is local; " +
		"if not, check the server's firewall and that the host is up."
)

// rules is the problem → cause → fix table. Every row of the matrix is
// reached from at least one step (TestEveryRowReachable).
var rules = []rule{
	// DNS, seen by all three parts.
	{part: PartDomain, id: "mx", match: titleHas("nxdomain", "lookup failed"), row: RowDNS, dedupe: "mx-lookup",
		cause: "The DNS gives no usable answer for the domain's MX records: NXDOMAIN means the domain does not exist (expired, typo, broken delegation); SERVFAIL or a timeout means its name servers or DNSSEC signatures are broken, so every sender queues or bounces.",
		fix:   "Check the registration and delegation (mxray dns DOMAIN NS), the name servers and DNSSEC (expired signatures, a DS record that does not match)."},
	{part: PartDelivery, id: "mx", match: titleHas("nxdomain", "lookup failed"), row: RowDNS, dedupe: "mx-lookup",
		cause: "The DNS gives no usable answer for the domain's MX records: NXDOMAIN means the domain does not exist (expired, typo, broken delegation); SERVFAIL or a timeout means its name servers or DNSSEC signatures are broken, so every sender queues or bounces.",
		fix:   "Check the registration and delegation (mxray dns DOMAIN NS), the name servers and DNSSEC (expired signatures, a DS record that does not match)."},
	{part: PartDelivery, id: "mx", match: titleHas("null mx"), row: RowDNS,
		cause: "The domain publishes a null MX (RFC 7505): it declares that it receives no mail.",
		fix:   "Replace the null MX with real MX records if the domain should receive mail."},
	{part: PartDomain, id: "mx", row: RowDNS, dedupe: "mx-records",
		cause: "The MX records are missing or malformed: senders fall back to the domain's A record or skip the record.",
		fix:   "Publish an MX record naming a host (not an IP, not a CNAME) that has A/AAAA records."},
	{part: PartDelivery, id: "mx", row: RowDNS, dedupe: "mx-records",
		cause: "The MX records are missing or malformed: senders fall back to the domain's A record or skip the record.",
		fix:   "Publish an MX record naming a host (not an IP, not a CNAME) that has A/AAAA records."},
	{part: PartDomain, id: "mx-host", match: titleHas("no usable address"), row: RowDNS, dedupe: "mx-address",
		cause: "An MX names a host without A/AAAA records (or an IP literal): senders cannot resolve where to deliver.",
		fix:   "Publish A/AAAA records for the MX host, or point the MX at a host that has them."},
	{part: PartDelivery, id: "addresses", row: RowDNS, dedupe: "mx-address",
		cause: "An MX names a host without A/AAAA records (or an IP literal): senders cannot resolve where to deliver.",
		fix:   "Publish A/AAAA records for the MX host, or point the MX at a host that has them."},
	{part: PartProbe, id: "address", row: RowDNS,
		cause: "The server's name does not resolve to an address (NXDOMAIN, no A/AAAA, or a DNS failure): clients and senders cannot find it.",
		fix:   "Publish A/AAAA records for {host}, or correct the record that names it."},

	{part: PartDomain, match: titleHas("servfail", "lookup failed", "temperror", "could not be checked"), row: RowDNS, dedupe: "id",
		cause: "A DNS lookup for the domain failed (SERVFAIL or a timeout): its name servers or DNSSEC signatures are broken, so receivers cannot check this either and treat it as a temporary error.",
		fix:   "Check the domain's name servers and DNSSEC (mxray dns DOMAIN NS; expired signatures, a DS record that does not match)."},

	// Connections.
	{part: PartDelivery, id: "connect", match: titleHas("refused"), row: RowRefused, dedupe: "title", cause: causeRefused, fix: fixRefused},
	{part: PartProbe, id: "connect", match: titleHas("refused"), row: RowRefused, dedupe: "title", cause: causeRefused, fix: fixRefused},
	{part: PartDelivery, id: "connect", match: titleHas("timeout", "unreachable"), row: RowFirewall, dedupe: "title", cause: causeTimeout, fix: fixTimeout},
	{part: PartProbe, id: "connect", match: titleHas("timeout", "unreachable"), row: RowFirewall, dedupe: "title", cause: causeTimeout, fix: fixTimeout},
	{part: PartDelivery, id: "connect", row: RowFirewall, dedupe: "title", cause: causeTimeout, fix: fixTimeout},
	{part: PartProbe, id: "connect", row: RowFirewall, dedupe: "title", cause: causeTimeout, fix: fixTimeout},

	// Something else answers, or names do not match.
	{part: PartDelivery, id: "", match: titleHas("not an smtp reply"), row: RowWrongIP,
		cause: "Something that does not speak SMTP answers at {ip} port {port}: the MX/A record points to the wrong machine, or another service holds the port.",
		fix:   "Check that {host}'s A/AAAA record is the mail server's address and that the MTA owns port {port} there."},
	{part: PartProbe, id: "greeting", match: titleHas("not a", "unexpected"), row: RowWrongIP,
		cause: "Something that does not speak this protocol answers at {ip} port {port}: the record points to the wrong machine, or another service holds the port.",
		fix:   "Check that {host}'s A/AAAA record is the server's address and which daemon listens on port {port}."},
	{part: PartDomain, id: "mx-host", match: titleHas("reverse dns", "ptr"), row: RowWrongIP,
		cause: "The reverse DNS (PTR) of the mail server's address is missing or does not resolve back: receivers distrust such servers, and it often means the A record points to an address the mail server does not own.",
		fix:   "Ask the owner of {ip} (the hosting provider) to set its PTR to the MX host name, with a matching A/AAAA record."},
	{part: PartDoctor, id: StepEHLOName, row: RowWrongIP,
		cause: "The server at {ip} introduces itself under another name than the MX host and its reverse DNS: the MX may point to another machine than intended, or the MTA's host name is not set.",
		fix:   "Set the MTA's host name (Postfix: myhostname) to the MX host name, and make the PTR of {ip} name it too."},
	{part: PartDomain, id: "outbound-ip", match: titleHas("reverse dns", "ptr"), row: RowWrongIP,
		cause: "The sending address's reverse DNS is missing or not forward-confirmed: receivers reject or junk mail from it.",
		fix:   "Set the PTR of {ip} to the name the server gives in EHLO, with a matching A/AAAA record."},

	// The recipient.
	{part: PartDelivery, id: "rcpt", match: replyIs(func(r smtpc.Reply) bool { return r.Temporary() }), row: RowStuck,
		cause: "The server answers the recipient with a temporary (4yz) reply: greylisting (first contact from this sender), a full mailbox, rate limits or an overloaded server. Senders keep the mail queued and retry, so it arrives late or bounces after days.",
		fix:   "Retry in a few minutes (greylisting passes on retry); otherwise read the server's words and its log (postqueue -p, journalctl -u postfix)."},
	{part: PartDelivery, id: "rcpt", match: replyIs(func(r smtpc.Reply) bool {
		return strings.HasPrefix(r.Enhanced, "5.7.")
	}), row: RowReputation,
		cause: "The server rejects the recipient for policy reasons (5.7.x): relaying denied, a blocklist, or a rule about the sending client.",
		fix:   "Read the server's words; check that the domain is a local or relay domain on the MX and that this client's address is not blocklisted."},
	{part: PartDelivery, id: "rcpt", match: replyIs(func(r smtpc.Reply) bool {
		return strings.HasPrefix(r.Enhanced, "5.2.")
	}), row: RowStuck,
		cause: "The mailbox exists but cannot take mail now (5.2.x: full or disabled): senders bounce.",
		fix:   "Free space in the mailbox or raise its quota."},
	{part: PartDelivery, id: "rcpt", match: replyIs(func(r smtpc.Reply) bool { return r.Permanent() }), row: RowUnknownUser,
		cause: "The server says this mailbox does not exist (550 5.1.1 user unknown): a typo in the address, a deleted account, or a missing alias or virtual mailbox map on the server.",
		fix:   "Check the address; on the server, create the mailbox or alias (Postfix: virtual_mailbox_maps / virtual_alias_maps, then postmap)."},
	{part: PartDelivery, id: "rcpt", match: titleHas("no answer"), row: RowStuck,
		cause: "The server did not answer the recipient in time: overload, slow lookups (LDAP, SQL, policy service) or a proxy in between.",
		fix:   "Check the MTA's load and its recipient lookups."},

	// Temporary refusals anywhere in the conversation.
	{part: PartDelivery, id: "", match: replyIs(func(r smtpc.Reply) bool { return r.Temporary() }), row: RowStuck,
		cause: "The server answers with a temporary (4yz) reply: it is overloaded, shutting down, rate-limiting or greylisting this client. Senders keep the mail queued and retry.",
		fix:   "Read the server's words and its log; check the MTA's load, limits and policy services."},
	{part: PartDelivery, id: "banner", match: titleHas("no answer"), row: RowStuck,
		cause: "The server accepted the connection but its greeting did not come in time: an overloaded MTA, a slow reverse lookup of the client, or a proxy in between. Senders give up and retry later.",
		fix:   "Check the MTA's load and DNS; look for a proxy or security appliance in front of it."},
	{part: PartDelivery, id: "banner", row: RowReputation,
		cause: "The server refuses to talk to this client (5yz greeting or hang-up): usually a blocklisted or reverse-DNS-less address of the machine running mxray.",
		fix:   "Read the server's words; check this machine's address in blocklists and its reverse DNS, or test from the sending server."},
	{part: PartDelivery, id: "mail", row: RowConfig,
		cause: "The server refuses the sender address: the null sender <> must be accepted (bounces), other senders may be refused by policy.",
		fix:   "Accept the null sender; check sender restrictions (Postfix: smtpd_sender_restrictions)."},
	{part: PartDelivery, id: "ehlo", match: titleHas("helo accepted"), row: RowTLS,
		cause: "The server does not speak ESMTP, so it cannot offer STARTTLS: mail to it travels in cleartext.",
		fix:   "Use an MTA that supports EHLO; something in front of the server may filter the command."},
	{part: PartDelivery, id: "ehlo", row: RowConfig,
		cause: "The server refuses the EHLO/HELO name of this client.",
		fix:   "Run with --helo set to this machine's fully qualified name."},

	// Authentication.
	{part: PartProbe, id: "login", row: RowAuth,
		cause: "The server refused the login: wrong user name or password, the wrong user name format (full address vs local part), a disabled account, or a mechanism the server does not allow.",
		fix:   "Check the credentials; the server's log (journalctl -u dovecot, /var/log/mail.log) says which part was wrong."},
	{part: PartDomain, id: "spf", row: RowAuth, cause: "The SPF record is missing or broken: receivers cannot tell which servers may send for the domain, and DMARC cannot pass on SPF.", fix: "Publish exactly one valid v=spf1 record ending in -all or ~all."},
	{part: PartDomain, id: "spf-lookups", row: RowAuth, cause: "SPF evaluation needs too many DNS lookups (over 10) or void lookups: receivers return permerror, which fails DMARC's SPF half.", fix: "Flatten includes or replace a/mx terms with ip4/ip6 ranges."},
	{part: PartDomain, id: "spf-all", row: RowAuth, cause: "The SPF policy does not say what to do with other senders (?all, +all or no all): forgers pass or are neutral.", fix: "End the record with -all (or ~all while testing)."},
	{part: PartDomain, id: "dmarc", row: RowAuth, cause: "No valid DMARC record: receivers apply no policy to forged mail and send no reports.", fix: "Publish _dmarc.DOMAIN TXT \"v=DMARC1; p=none; rua=mailto:...\" and tighten to quarantine/reject."},
	{part: PartDomain, id: "dmarc-policy", row: RowAuth, cause: "The DMARC policy is weak (p=none, partial pct/t): forged mail from the domain is still delivered.", fix: "Move to p=quarantine, then p=reject, once reports show your own mail aligns."},
	{part: PartDomain, id: "dmarc-reports", row: RowAuth, cause: "DMARC reports cannot be delivered as published (an external destination did not authorize them, or none is given).", fix: "Publish the authorization record at the external destination (RFC 9990 §3) or use a local address."},
	{part: PartDomain, id: "dkim", row: RowAuth, cause: "A DKIM key is missing, revoked or weak: signatures made with it fail or are distrusted, and DMARC cannot pass on DKIM.", fix: "Publish a 2048-bit RSA or Ed25519 key at the selector your server signs with."},
	{part: PartDomain, id: "outbound-ip", row: RowAuth, cause: "The SPF record does not authorize the sending address: receivers fail SPF for mail from it.", fix: "Add the address to the SPF record."},

	// TLS.
	{part: PartDomain, id: "mta-sts", row: RowTLS, cause: "The MTA-STS record or policy is broken: senders that enforce it may refuse to deliver.", fix: "Serve a valid policy at https://mta-sts.DOMAIN/.well-known/mta-sts.txt and keep the record's id current."},
	{part: PartDomain, id: "mta-sts-mx", row: RowTLS, dedupe: "mta-sts-mx", cause: "An MX is not covered by the MTA-STS policy: senders enforcing it will not deliver there.", fix: "List every MX host in the policy's mx: lines, then change the record's id."},
	{part: PartDomain, id: "tls-rpt", row: RowTLS, cause: "No TLS-RPT record: you never hear about TLS failures senders see.", fix: "Publish _smtp._tls.DOMAIN TXT \"v=TLSRPTv1; rua=mailto:...\"."},
	{part: PartDelivery, id: "mta-sts", match: titleHas("not in the policy"), row: RowTLS, dedupe: "mta-sts-mx",
		cause: "An MX is not covered by the MTA-STS policy: senders enforcing it will not deliver there.", fix: "List every MX host in the policy's mx: lines, then change the record's id."},
	{part: PartDelivery, id: "mta-sts", row: RowTLS, cause: "The MTA-STS policy does not fit the MX hosts: senders enforcing it will not deliver.", fix: "Make the policy list every MX host and serve it over valid HTTPS."},
	{part: PartDelivery, id: "tls-rpt", row: RowTLS, cause: "No TLS-RPT record: you never hear about TLS failures senders see.", fix: "Publish _smtp._tls.DOMAIN TXT \"v=TLSRPTv1; rua=mailto:...\"."},
	{part: PartDelivery, id: "", row: RowTLS, match: func(st diag.Step) bool {
		return map[string]bool{"dane": true, "starttls": true, "certificate": true, "ehlo-tls": true}[st.ID]
	}, cause: "TLS on the MX is missing or does not authenticate: senders deliver in cleartext, or (with DANE or MTA-STS enforce) not at all.", fix: "Install a valid certificate for the MX name and enable STARTTLS; keep TLSA records in step with the key."},
	{part: PartProbe, id: "", match: func(st diag.Step) bool {
		return map[string]bool{"tls": true, "certificate": true, "tls-versions": true, "auth": true, "capabilities": true}[st.ID]
	}, row: RowTLS,
		cause: "The service's TLS is missing, outdated or its certificate does not verify for {host}: clients refuse to connect or send passwords in cleartext.",
		fix:   "Install a certificate valid for {host} from a public CA, offer TLS 1.2+, and allow password logins only over TLS."},

	// Reputation.
	{part: PartDomain, id: "dnsbl", row: RowReputation, cause: "An address of the domain's mail servers is on a DNS blocklist: receivers using it reject or junk its mail.", fix: "Find and stop the cause (compromised account, open relay, spam trap hits), then request delisting."},
	{part: PartProbe, id: "relay", row: RowReputation, cause: "The server accepts mail for foreign domains from anyone (open relay): spammers will use it and blocklists list it.", fix: "Postfix: smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination."},

	// Client settings and everything else.
	{part: PartDomain, id: "client-server", match: titleHas("refused"), row: RowRefused, cause: causeRefused, fix: fixRefused},
	{part: PartDomain, id: "client-server", match: titleHas("timeout"), row: RowFirewall, cause: causeTimeout, fix: fixTimeout},
	{part: PartDomain, id: "client-server", match: titleHas("without tls", "certificate", "tls"), row: RowTLS,
		cause: "A server advertised to mail clients has no TLS or a certificate that does not verify: clients refuse it or send passwords in cleartext.", fix: "Advertise implicit TLS (993, 995, 465) with a valid certificate."},
	{part: PartDomain, id: "", row: RowConfig, cause: "The client settings published for the domain (SRV, autoconfig, Autodiscover) or other records are missing or inconsistent: mail clients set themselves up wrongly.", fix: "Publish consistent SRV records and autoconfig/Autodiscover documents naming the real servers."},
	{part: "", id: "", row: RowConfig, cause: "", fix: "Read the step's detail."},
}

// Classify maps one finished step of a part to a problem, when its status
// is fail or warn. The step's id is the part's own (without the part
// prefix); probe steps keep their service prefix ("smtp.connect").
func Classify(part Part, st diag.Step) (Problem, bool) {
	if st.Status != diag.Fail && st.Status != diag.Warn {
		return Problem{}, false
	}
	id := st.ID
	if part == PartProbe {
		if i := strings.IndexByte(id, '.'); i >= 0 {
			id = id[i+1:]
		}
	}
	bare := st
	bare.ID = id // what the rules match on
	for _, r := range rules {
		if r.part != "" && r.part != part || r.id != "" && r.id != id || r.match != nil && !r.match(bare) {
			continue
		}
		port := portOf(st)
		repl := strings.NewReplacer("{host}", orWord(st.Host, "the host"), "{ip}", orWord(st.IP, orWord(st.Host, "the server")), "{port}", orWord(port, "the port"))
		p := Problem{
			Severity: st.Status, Part: part, Step: string(part) + "." + st.ID, Title: st.Title,
			Cause: repl.Replace(r.cause), Fix: st.Hint, RFC: st.RFC, Row: r.row, Host: st.Host, IP: st.IP,
		}
		if p.Cause == "" {
			p.Cause = firstLine(st.Detail)
		}
		if p.Fix == "" {
			p.Fix = repl.Replace(r.fix)
		}
		switch r.dedupe {
		case "":
		case "title":
			p.key = fmt.Sprintf("%s|%s|%s", r.row, st.IP, stripService(st.Title))
		case "id":
			p.key = string(r.row) + "|" + string(part) + "." + st.ID
		default:
			p.key = string(r.row) + "|" + r.dedupe
		}
		return p, true
	}
	return Problem{}, false // unreachable: the last rule matches everything
}

// portOf finds the port a connection step was about, from its title
// ("connection refused on port 25") or its evidence.
func portOf(st diag.Step) string {
	if i := strings.LastIndex(st.Title, "port "); i >= 0 {
		f := strings.Fields(st.Title[i+5:])
		if len(f) > 0 {
			return strings.Trim(f[0], "():,")
		}
	}
	return ""
}

func stripService(title string) string {
	if i := strings.Index(title, ": "); i >= 0 && !strings.Contains(title[:i], " ") {
		return title[i+2:]
	}
	return title
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
