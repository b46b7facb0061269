package postfix

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/mxray/mxray/internal/diag"
)

// LintParams are the parameters Lint reads; pass their effective values
// (Config.Effective) as LintInput.Params.
var LintParams = []string{
	"mail_version", "myhostname", "mydomain", "mydestination", "mynetworks", "inet_interfaces",
	"relay_domains", "virtual_mailbox_domains", "virtual_alias_domains",
	"smtpd_relay_restrictions", "smtpd_recipient_restrictions",
	"smtpd_tls_cert_file", "smtpd_tls_chain_files", "smtpd_tls_security_level", "smtpd_use_tls", "smtpd_enforce_tls",
	"smtpd_sasl_auth_enable", "smtpd_tls_auth_only",
	"smtpd_forbid_bare_newline", "smtpd_data_restrictions", "smtpd_discard_ehlo_keywords",
	"smtp_tls_security_level", "smtp_use_tls", "smtp_enforce_tls", "smtp_dns_support_level",
	"relayhost", "smtpd_milters", "non_smtpd_milters", "queue_directory", "maillog_file",
	"local_transport", "mailbox_transport", "mailbox_command", "home_mailbox", "mail_spool_directory",
	"virtual_transport", "virtual_mailbox_base",
}

// LintDefaults are the parameters whose built-in defaults (postconf -d)
// Lint explains: the SMTP smuggling default changed between releases.
var LintDefaults = []string{"mail_version", "smtpd_forbid_bare_newline"}

// LintInput is what the lint rules read.
type LintInput struct {
	Params   Params    // effective values (postconf -x LintParams...)
	Defaults Params    // built-in defaults (postconf -d LintDefaults...)
	Services []Service // master.cf (postconf -M); -o overrides of smtpd services are honoured
}

// Lint applies mxray's configuration rules to one Postfix instance and
// returns one step per rule, ok when the rule found nothing. Each step's
// Data holds the parameter values the rule read.
func Lint(in LintInput) []diag.Step {
	p := in.Params
	return []diag.Step{
		lintMynetworks(p),
		lintRelay(p),
		lintMyhostname(p),
		lintInetInterfaces(p),
		lintTLSInbound(p),
		lintAuthTLS(p, in.Services),
		lintSmuggling(p, in.Defaults),
		lintTLSOutbound(p),
	}
}

func data(p Params, names ...string) map[string]string {
	m := map[string]string{}
	for _, n := range names {
		if v, ok := p[n]; ok {
			m[n] = v
		}
	}
	return m
}

// Public reports whether a is a globally routable address: not loopback,
// private (RFC 1918, RFC 4193), link-local, CGNAT (RFC 6598) or
// documentation space.
func Public(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsUnspecified() || a.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"), // RFC 6598 shared address space
	netip.MustParsePrefix("192.0.2.0/24"),  // RFC 5737
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // RFC 2544 benchmarking
	netip.MustParsePrefix("2001:db8::/32"), // RFC 3849
}

// ParseNetwork reads one mynetworks item: "a.b.c.d/n", "[v6::]/n" or a
// single address. ok is false for host names, files and lookup tables.
func ParseNetwork(item string) (netip.Prefix, bool) {
	s := strings.TrimPrefix(item, "!")
	s = strings.Replace(strings.Replace(s, "[", "", 1), "]", "", 1)
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return netip.PrefixFrom(a, a.BitLen()), true
	}
	pr, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	if pr.Addr().Is4In6() {
		// [::ffff:127.0.0.0]/104 is 127.0.0.0/8 written as IPv6.
		bits := pr.Bits() - 96
		if bits < 0 {
			bits = 0
		}
		pr = netip.PrefixFrom(pr.Addr().Unmap(), bits)
	}
	return pr.Masked(), true
}

func lintMynetworks(p Params) diag.Step {
	st := diag.Step{ID: "postfix.mynetworks", Title: "mynetworks trusts only local networks", Status: diag.OK,
		RFC: "RFC 5321 §7.1", Data: data(p, "mynetworks")}
	v, ok := p["mynetworks"]
	if !ok {
		st.Status, st.Title = diag.Skip, "mynetworks not known"
		return st
	}
	var broad, wide, opaque []string
	for _, item := range List(v) {
		if strings.HasPrefix(item, "!") {
			continue
		}
		pr, ok := ParseNetwork(item)
		if !ok {
			opaque = append(opaque, item)
			continue
		}
		pub := Public(pr.Addr())
		switch {
		case pr.Bits() == 0:
			broad = append(broad, item)
		case pr.Addr().Is4() && pub && pr.Bits() < 16, pr.Addr().Is6() && pub && pr.Bits() < 32:
			broad = append(broad, item)
		case pr.Addr().Is4() && pub && pr.Bits() < 24, pr.Addr().Is6() && pub && pr.Bits() < 48:
			wide = append(wide, item)
		}
	}
	switch {
	case len(broad) > 0:
		st.Status, st.Title = diag.Fail, "Open relay risk: mynetworks trusts a huge part of the internet"
		st.Detail = fmt.Sprintf("mynetworks = %s\n%s: every client there may relay mail anywhere (permit_mynetworks)", v, strings.Join(broad, ", "))
		st.Hint = "list only your own hosts and LAN in mynetworks, e.g. mynetworks = 127.0.0.0/8 [::1]/128; let remote users authenticate (SASL) instead"
	case len(wide) > 0:
		st.Status, st.Title = diag.Warn, "mynetworks trusts a wide public range"
		st.Detail = fmt.Sprintf("mynetworks = %s\n%s: are all these hosts yours?", v, strings.Join(wide, ", "))
		st.Hint = "narrow mynetworks to the addresses of your own servers"
	default:
		st.Detail = "mynetworks = " + v
		if len(opaque) > 0 {
			st.Detail += "\nnot evaluated (names, files, tables): " + strings.Join(opaque, ", ")
		}
	}
	return st
}

// protects reports how a restriction list handles a client that is not
// trusted and a recipient in a domain that is not ours: "reject" when a
// reject_unauth_destination (or defer_, or a bare reject) comes before
// any bare permit, "permit" when a bare permit comes first, "" when the
// list ends without deciding.
func protects(list string) string {
	for _, r := range List(list) {
		switch strings.ToLower(r) {
		case "reject_unauth_destination", "defer_unauth_destination", "reject", "defer":
			return "reject"
		case "permit":
			return "permit"
		}
	}
	return ""
}

func lintRelay(p Params) diag.Step {
	st := diag.Step{ID: "postfix.relay", Title: "Relaying is refused to unauthenticated clients", Status: diag.OK,
		RFC: "RFC 5321 §7.1", Data: data(p, "smtpd_relay_restrictions", "smtpd_recipient_restrictions")}
	rel, okR := p["smtpd_relay_restrictions"]
	rcpt, okC := p["smtpd_recipient_restrictions"]
	if !okR && !okC {
		st.Status, st.Title = diag.Skip, "relay restrictions not known"
		return st
	}
	// Postfix ≥ 2.10 evaluates smtpd_relay_restrictions, then
	// smtpd_recipient_restrictions: relaying is refused when either list
	// rejects an unauthorised destination before a bare permit.
	if protects(rel) == "reject" || protects(rcpt) == "reject" {
		st.Detail = fmt.Sprintf("smtpd_relay_restrictions = %s\nsmtpd_recipient_restrictions = %s", rel, rcpt)
		return st
	}
	st.Status, st.Title = diag.Fail, "Open relay risk: no reject_unauth_destination in the relay restrictions"
	st.Detail = fmt.Sprintf("smtpd_relay_restrictions = %s\nsmtpd_recipient_restrictions = %s\nneither list refuses mail for other domains from unauthenticated clients", rel, rcpt)
	st.Hint = "set smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"
	return st
}

// FQDN reports whether name is a fully qualified domain name: at least
// two labels, letters, digits and hyphens, not an address.
func FQDN(name string) bool {
	name = strings.TrimSuffix(name, ".")
	if _, err := netip.ParseAddr(name); err == nil {
		return false
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return false
			}
		}
	}
	tld := strings.ToLower(labels[len(labels)-1])
	return tld != "localdomain" && tld != "local" && tld != "localhost" && tld != "lan" && tld != "internal"
}

func lintMyhostname(p Params) diag.Step {
	st := diag.Step{ID: "postfix.myhostname", Title: "myhostname is a fully qualified domain name", Status: diag.OK,
		RFC: "RFC 5321 §4.1.1.1", Data: data(p, "myhostname")}
	h, ok := p["myhostname"]
	if !ok {
		st.Status, st.Title = diag.Skip, "myhostname not known"
		return st
	}
	st.Detail = "myhostname = " + h
	if !FQDN(h) {
		st.Status, st.Title = diag.Fail, "myhostname is not a fully qualified domain name"
		st.Detail += "\nPostfix greets other servers with this name (EHLO); many receivers reject or score a name that is not a public FQDN"
		st.Hint = "set myhostname = mail.example.com (the name the server's public address resolves back to)"
	}
	return st
}

// IsMX reports whether the instance receives mail for domains from the
// internet: it has virtual, relay or extra local domains. A null client
// (only $myhostname and localhost) is not an MX.
func IsMX(p Params) bool {
	for _, n := range []string{"virtual_mailbox_domains", "virtual_alias_domains", "relay_domains"} {
		if len(List(p[n])) > 0 {
			return true
		}
	}
	host := strings.ToLower(p["myhostname"])
	for _, d := range List(p["mydestination"]) {
		d = strings.ToLower(d)
		if d == host || d == "localhost" || strings.HasPrefix(d, "localhost.") || strings.HasPrefix(d, "$") {
			continue
		}
		return true
	}
	return false
}

// LoopbackOnly reports whether inet_interfaces lets smtpd listen only on
// loopback addresses.
func LoopbackOnly(v string) bool {
	items := List(v)
	if len(items) == 0 {
		return false
	}
	for _, it := range items {
		if it == "loopback-only" || it == "localhost" {
			continue
		}
		a, err := netip.ParseAddr(strings.Trim(it, "[]"))
		if err != nil || !a.IsLoopback() {
			return false
		}
	}
	return true
}

func lintInetInterfaces(p Params) diag.Step {
	st := diag.Step{ID: "postfix.inet_interfaces", Title: "Postfix listens on the network", Status: diag.OK,
		Data: data(p, "inet_interfaces", "mydestination", "virtual_mailbox_domains", "virtual_alias_domains", "relay_domains")}
	v, ok := p["inet_interfaces"]
	if !ok {
		st.Status, st.Title = diag.Skip, "inet_interfaces not known"
		return st
	}
	st.Detail = "inet_interfaces = " + v
	switch {
	case !LoopbackOnly(v):
	case IsMX(p):
		st.Status, st.Title = diag.Fail, "inet_interfaces = loopback only, but this server receives mail for domains"
		st.Detail += "\nno other server can connect to this MX; mail for its domains cannot arrive"
		st.Hint = "set inet_interfaces = all (then postfix stop; postfix start: a reload does not rebind)"
	default:
		st.Status, st.Title = diag.Info, "Postfix listens on loopback only (a null client or a local relay)"
	}
	return st
}

// TLSCert reports whether smtpd has a certificate.
func TLSCert(p Params) bool {
	return strings.TrimSpace(p["smtpd_tls_cert_file"]) != "" || strings.TrimSpace(p["smtpd_tls_chain_files"]) != ""
}

// tlsLevel is the effective smtpd_tls_security_level, honouring the
// legacy smtpd_use_tls and smtpd_enforce_tls when it is empty.
func tlsLevel(p Params, level, use, enforce string) string {
	if l := strings.TrimSpace(p[level]); l != "" {
		return l
	}
	switch {
	case Bool(p[enforce]):
		return "encrypt"
	case Bool(p[use]):
		return "may"
	}
	return "none"
}

func lintTLSInbound(p Params) diag.Step {
	st := diag.Step{ID: "postfix.tls_inbound", Title: "smtpd offers STARTTLS", Status: diag.OK, RFC: "RFC 3207",
		Data: data(p, "smtpd_tls_cert_file", "smtpd_tls_chain_files", "smtpd_tls_security_level", "smtpd_use_tls")}
	level := tlsLevel(p, "smtpd_tls_security_level", "smtpd_use_tls", "smtpd_enforce_tls")
	st.Detail = "smtpd_tls_security_level = " + level
	switch {
	case !TLSCert(p):
		st.Status, st.Title = diag.Warn, "No TLS: smtpd has no certificate"
		st.Detail += "\nsmtpd_tls_cert_file and smtpd_tls_chain_files are empty: mail arrives in clear text, and MTA-STS or DANE cannot be published"
		st.Hint = "set smtpd_tls_chain_files = /etc/letsencrypt/live/mx.example.com/privkey.pem, /etc/letsencrypt/live/mx.example.com/fullchain.pem and smtpd_tls_security_level = may"
	case level == "none":
		st.Status, st.Title = diag.Warn, "No TLS: smtpd_tls_security_level = none"
		st.Detail += "\na certificate is configured but STARTTLS is not offered"
		st.Hint = "set smtpd_tls_security_level = may (not encrypt on port 25: RFC 3207 §4 forbids requiring TLS of a public MX)"
	}
	return st
}

// effective returns the service's value of a parameter: its -o override
// or the main.cf value.
func effective(p Params, s Service, name string) string {
	v, _ := override(s, name)
	if v != nil {
		return *v
	}
	return p[name]
}

func override(s Service, name string) (*string, bool) {
	for i := 0; i < len(s.Args); i++ {
		a := s.Args[i]
		var kv string
		switch {
		case a == "-o" && i+1 < len(s.Args):
			kv = s.Args[i+1]
			i++
		case strings.HasPrefix(a, "-o"):
			kv = a[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return &v, true
		}
	}
	return nil, false
}

func lintAuthTLS(p Params, services []Service) diag.Step {
	st := diag.Step{ID: "postfix.auth_tls", Title: "SMTP AUTH only after TLS", Status: diag.OK, RFC: "RFC 4954 §4",
		Data: data(p, "smtpd_sasl_auth_enable", "smtpd_tls_auth_only", "smtpd_tls_security_level")}
	type ep struct {
		name string
		s    Service
	}
	eps := []ep{{"main.cf", Service{}}}
	for _, s := range services {
		if s.Type == "inet" && s.Command == "smtpd" {
			if _, ok := override(s, "smtpd_sasl_auth_enable"); ok {
				eps = append(eps, ep{s.Name, s})
			}
		}
	}
	var bad, weak, on []string
	for _, e := range eps {
		if !Bool(effective(p, e.s, "smtpd_sasl_auth_enable")) {
			continue
		}
		on = append(on, e.name)
		level := effective(p, e.s, "smtpd_tls_security_level")
		if level == "" {
			level = tlsLevel(p, "smtpd_tls_security_level", "smtpd_use_tls", "smtpd_enforce_tls")
		}
		wrap, _ := override(e.s, "smtpd_tls_wrappermode")
		implicit := wrap != nil && Bool(*wrap)
		switch {
		case !TLSCert(p) || level == "none" && !implicit:
			bad = append(bad, e.name)
		case level == "encrypt" || implicit || Bool(effective(p, e.s, "smtpd_tls_auth_only")):
		default:
			weak = append(weak, e.name)
		}
	}
	switch {
	case len(on) == 0:
		st.Status, st.Title = diag.Skip, "SMTP AUTH is not enabled"
	case len(bad) > 0:
		st.Status, st.Title = diag.Fail, "SMTP AUTH without TLS: passwords travel in clear text"
		st.Detail = "SASL is on without TLS for: " + strings.Join(bad, ", ")
		st.Hint = "configure a certificate (smtpd_tls_chain_files) and set smtpd_tls_auth_only = yes, or use the submission service with -o smtpd_tls_security_level=encrypt"
	case len(weak) > 0:
		st.Status, st.Title = diag.Warn, "SMTP AUTH is offered before STARTTLS"
		st.Detail = "smtpd_tls_auth_only = no for: " + strings.Join(weak, ", ") + "; a client may send its password before TLS"
		st.Hint = "set smtpd_tls_auth_only = yes"
	default:
		st.Detail = "SASL on for: " + strings.Join(on, ", ") + "; only after TLS"
	}
	return st
}

// SmugglingFixed are the first releases of each stable series with
// smtpd_forbid_bare_newline (December 2023). Postfix 3.9 and later
// normalise bare newlines by default.
var SmugglingFixed = []Version{{3, 8, 4}, {3, 7, 9}, {3, 6, 13}, {3, 5, 23}}

func lintSmuggling(p, d Params) diag.Step {
	st := diag.Step{ID: "postfix.smuggling", Title: "Protected against SMTP smuggling", Status: diag.OK, RFC: "RFC 5321 §2.3.8",
		Data: data(p, "mail_version", "smtpd_forbid_bare_newline", "smtpd_data_restrictions", "smtpd_discard_ehlo_keywords")}
	ver, vok := ParseVersion(p["mail_version"])
	if !vok {
		ver, vok = ParseVersion(d["mail_version"])
	}
	v, known := p["smtpd_forbid_bare_newline"]
	def := d["smtpd_forbid_bare_newline"]
	if !known {
		// This Postfix predates the parameter: only the December 2023
		// workaround protects it.
		workaround := strings.Contains(p["smtpd_data_restrictions"], "reject_unauth_pipelining") &&
			strings.Contains(strings.ToLower(p["smtpd_discard_ehlo_keywords"]), "chunking")
		st.Detail = fmt.Sprintf("Postfix %s has no smtpd_forbid_bare_newline (added in %s)", verString(ver, vok), fixedList())
		if workaround {
			st.Status, st.Title = diag.Warn, "SMTP smuggling: only the short-term workaround is in place"
			st.Hint = "upgrade Postfix to a release with smtpd_forbid_bare_newline and set it to normalize"
			return st
		}
		st.Status, st.Title = diag.Warn, "SMTP smuggling: this Postfix cannot refuse bare newlines"
		st.Hint = "upgrade Postfix; meanwhile set smtpd_data_restrictions = reject_unauth_pipelining and smtpd_discard_ehlo_keywords = chunking"
		return st
	}
	st.Detail = "smtpd_forbid_bare_newline = " + v
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "normalize", "reject":
		return st
	}
	st.Status, st.Title = diag.Warn, "SMTP smuggling: smtpd_forbid_bare_newline = no"
	if def != "" {
		st.Detail += fmt.Sprintf(" (the default of Postfix %s is %q", verString(ver, vok), def)
		if vok && !ver.AtLeast(Version{3, 9, 0}) {
			st.Detail += "; only Postfix 3.9 and later normalise by default"
		}
		st.Detail += ")"
	}
	st.Detail += "\na sender can hide a second message behind a bare <LF>.<LF> and spoof your domain's users past SPF"
	st.Hint = "set smtpd_forbid_bare_newline = normalize (releases before 3.8.5, 3.7.10, 3.6.14 and 3.5.24 know only yes) and smtpd_forbid_bare_newline_exclusions = $mynetworks"
	return st
}

func verString(v Version, ok bool) string {
	if !ok {
		return "(unknown version)"
	}
	return v.String()
}

func fixedList() string {
	var s []string
	for _, v := range SmugglingFixed {
		s = append(s, v.String())
	}
	return strings.Join(s, ", ")
}

func lintTLSOutbound(p Params) diag.Step {
	st := diag.Step{ID: "postfix.tls_outbound", Title: "Outbound TLS", Status: diag.OK, RFC: "RFC 7672",
		Data: data(p, "smtp_tls_security_level", "smtp_dns_support_level", "smtp_use_tls")}
	level := tlsLevel(p, "smtp_tls_security_level", "smtp_use_tls", "smtp_enforce_tls")
	dns := p["smtp_dns_support_level"]
	st.Detail = fmt.Sprintf("smtp_tls_security_level = %s\nsmtp_dns_support_level = %s", level, dns)
	switch level {
	case "none":
		st.Status, st.Title = diag.Warn, "No outbound TLS: smtp_tls_security_level = none"
		st.Hint = "set smtp_tls_security_level = may (opportunistic TLS), or dane with smtp_dns_support_level = dnssec"
	case "may":
		st.Status, st.Title = diag.OK, "Outbound TLS is opportunistic (may); DANE is not used"
		st.Hint = "for DANE: smtp_tls_security_level = dane, smtp_dns_support_level = dnssec and a validating resolver"
	case "dane", "dane-only":
		if dns != "dnssec" {
			st.Status, st.Title = diag.Warn, "DANE is configured but DNSSEC lookups are off"
			st.Detail += "\nwithout smtp_dns_support_level = dnssec Postfix never sees validated TLSA records, so dane works like may"
			st.Hint = "set smtp_dns_support_level = dnssec and use a validating resolver (unbound) in /etc/resolv.conf"
			st.RFC = "RFC 7672 §2.1.1"
		} else {
			st.Title = "Outbound TLS uses DANE"
		}
	default:
		st.Title = "Outbound TLS is required (" + level + ")"
	}
	return st
}
