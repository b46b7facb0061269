package dane

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// State is what a TLSA lookup means for a sending MTA.
type State string

const (
	StateDANE      State = "dane"      // validated records, at least one usable: the server must be authenticated with them
	StateUnusable  State = "unusable"  // validated records, none usable: TLS is required but cannot be authenticated
	StateNone      State = "none"      // no TLSA records: no DANE for this host
	StateInsecure  State = "insecure"  // records found but not validated (AD clear): senders must ignore them
	StateTemperror State = "temperror" // the lookup failed (SERVFAIL: possibly bogus; timeout): delivery must be deferred
)

// ZoneCheck is the best-effort answer to "why was there no AD bit?": is
// the zone unsigned, or signed but not validated by this resolver?
type ZoneCheck struct {
	Apex string `json:"apex,omitempty"` // the zone the host name is in
	// DNSKEY is true when the zone publishes DNSKEY records (it is signed);
	// DNSKEYAD when that answer was validated.
	DNSKEY   bool `json:"dnskey"`
	DNSKEYAD bool `json:"dnskey_ad"`
	// DS is true when a DS record for the zone was found (the parent
	// vouches for the key).
	DS bool `json:"ds"`
	// Verdict is "unsigned", "not-validated" or "unknown".
	Verdict string `json:"verdict"`
	Text    string `json:"text"`
}

// Lookup is the outcome of a TLSA lookup with its evidence.
type Lookup struct {
	State   State    `json:"state"`
	Host    string   `json:"host"`
	Port    int      `json:"port"`
	Name    string   `json:"name"` // the name queried, _port._tcp.host.
	Rcode   string   `json:"rcode,omitempty"`
	AD      bool     `json:"ad"`
	Chain   []string `json:"cname_chain,omitempty"`
	Records []Record `json:"records,omitempty"`
	// Zone explains a missing AD bit, when it was looked into.
	Zone    *ZoneCheck    `json:"zone,omitempty"`
	Summary string        `json:"summary"`
	Hint    string        `json:"hint,omitempty"`
	RFC     string        `json:"rfc,omitempty"`
	Error   string        `json:"error,omitempty"`
	Err     error         `json:"-"`
	Elapsed time.Duration `json:"-"`
}

// Usable returns the records a sender may use.
func (l Lookup) Usable() []Record {
	var out []Record
	for _, r := range l.Records {
		if r.Usable {
			out = append(out, r)
		}
	}
	return out
}

// Status judges the lookup for a person: ok (DANE in force), info (no
// DANE), warn (records a sender ignores or cannot use), fail (delivery
// would be deferred).
func (l Lookup) Status() diag.Status {
	switch l.State {
	case StateDANE:
		return diag.OK
	case StateNone:
		return diag.Info
	case StateTemperror:
		return diag.Fail
	}
	return diag.Warn
}

// LookupTLSA looks up the TLSA records of an SMTP server: _port._tcp.host
// (RFC 7672 §2.2.3; port 25 for MX hosts).
func LookupTLSA(ctx context.Context, env diag.Env, host string, port int) Lookup {
	start := env.Clock()
	l := lookupTLSA(ctx, env, host, port)
	l.Elapsed = env.Clock().Sub(start)
	if l.Err != nil {
		l.Error = l.Err.Error()
	}
	env.Log().Debug("tlsa lookup", "name", l.Name, "state", l.State, "ad", l.AD, "elapsed", l.Elapsed, "err", l.Err)
	return l
}

func lookupTLSA(ctx context.Context, env diag.Env, host string, port int) Lookup {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	l := Lookup{Host: h, Port: port}
	name, err := dnsx.Fqdn(fmt.Sprintf("_%d._tcp.%s", port, h))
	if err != nil {
		l.State, l.Err = StateTemperror, fmt.Errorf("%w: %w", ErrLookup, err)
		l.Summary = fmt.Sprintf("cannot look up TLSA records for %q: %v", host, err)
		return l
	}
	l.Name = name
	shown := strings.TrimSuffix(name, ".")
	resp, err := env.Resolver.Query(ctx, name, dns.TypeTLSA)
	if err != nil {
		var de *dnsx.Error
		if errors.As(err, &de) && de.Response != nil {
			l.Rcode, l.AD = dns.RcodeToString[de.Response.Rcode], de.Response.AD
			l.Chain = chain(de.Response)
		}
		if errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData) {
			l.State, l.RFC = StateNone, "RFC 7672 §2.2"
			if l.AD {
				l.Summary = fmt.Sprintf("no TLSA records at %s (%s, authenticated denial): no DANE for %s; senders use opportunistic TLS", shown, l.Rcode, h)
			} else {
				l.Summary = fmt.Sprintf("no TLSA records at %s (%s, not validated): no DANE for %s", shown, l.Rcode, h)
				l.Zone = checkZone(ctx, env, h)
			}
			l.Hint = "to have senders authenticate this server, sign the zone with DNSSEC and publish a TLSA record, e.g. 3 1 1 <SHA-256 of the server's public key>"
			return l
		}
		// RFC 7672 §2.1.1: a lookup that fails (SERVFAIL, which a
		// validating resolver also returns for bogus answers) or times
		// out leaves the client unable to tell; it must not fall back to
		// unauthenticated delivery, but defer.
		l.State, l.RFC, l.Err = StateTemperror, "RFC 7672 §2.1.1, §2.2", fmt.Errorf("%w: %w", ErrLookup, err)
		l.Summary = fmt.Sprintf("the TLSA lookup of %s failed (%v): the answer may be bogus (a DNSSEC validation failure); a DANE sender must defer delivery to %s", shown, err, h)
		l.Hint = "check the zone's signatures and DS (e.g. with dnsviz or delv), or the resolver's reachability"
		return l
	}
	l.Rcode, l.AD, l.Chain = dns.RcodeToString[resp.Rcode], resp.AD, chain(resp)
	for _, rr := range resp.Records {
		if t, ok := rr.(*dns.TLSA); ok {
			l.Records = append(l.Records, FromRR(t))
		}
	}
	if !l.AD {
		// RFC 7672 §2.2: TLSA records that are not DNSSEC-validated
		// ("insecure") are ignored by senders.
		l.State, l.RFC = StateInsecure, "RFC 7672 §2.2"
		l.Zone = checkZone(ctx, env, h)
		l.Summary = fmt.Sprintf("%d TLSA record(s) at %s, but not validated (no AD bit): senders ignore them. %s",
			len(l.Records), shown, l.Zone.Text)
		l.Hint = "use a validating resolver (--resolver), and sign the zone with a DS in its parent"
		return l
	}
	usable := len(l.Usable())
	if usable == 0 {
		// RFC 7672 §2.2: with validated TLSA records that are all
		// unusable, TLS is still mandatory but unauthenticated.
		l.State, l.RFC = StateUnusable, "RFC 7672 §2.2, §3.1.3"
		l.Summary = fmt.Sprintf("%d validated TLSA record(s) at %s, none usable for SMTP: senders require TLS but cannot authenticate %s",
			len(l.Records), shown, h)
		l.Hint = "publish a DANE-EE(3) record, e.g. 3 1 1 <SHA-256 of the server's public key>"
		return l
	}
	l.State, l.RFC = StateDANE, "RFC 7672 §2.2, §3"
	l.Summary = fmt.Sprintf("%d validated TLSA record(s) at %s (AD), %d usable: senders require TLS and a certificate matching them",
		len(l.Records), shown, usable)
	return l
}

func chain(r *dnsx.Response) []string {
	var out []string
	for _, c := range r.Chain {
		out = append(out, dnsx.RRString(c))
	}
	return out
}

// checkZone finds the zone of host (from the SOA), whether it publishes
// DNSKEY records and whether its parent has a DS, to tell an unsigned
// zone from a resolver that does not validate.
func checkZone(ctx context.Context, env diag.Env, host string) *ZoneCheck {
	z := &ZoneCheck{Verdict: "unknown"}
	apex := ""
	if r, err := env.Resolver.Query(ctx, host, dns.TypeSOA); err == nil {
		if len(r.Records) > 0 {
			apex = r.Records[0].Header().Name
		}
	} else {
		var de *dnsx.Error
		if errors.As(err, &de) && de.Response != nil {
			for _, rr := range de.Response.Authority {
				if soa, ok := rr.(*dns.SOA); ok {
					apex = soa.Hdr.Name
				}
			}
		}
	}
	if apex == "" {
		z.Text = "Could not find the zone of " + host + " to tell whether it is signed."
		return z
	}
	z.Apex = strings.TrimSuffix(strings.ToLower(apex), ".")
	k, err := env.Resolver.Query(ctx, apex, dns.TypeDNSKEY)
	switch {
	case err == nil && len(k.Records) > 0:
		z.DNSKEY, z.DNSKEYAD = true, k.AD
	case errors.Is(err, dnsx.ErrNoData) || errors.Is(err, dnsx.ErrNXDomain):
		z.Verdict = "unsigned"
		z.Text = fmt.Sprintf("The zone %s is not signed (no DNSKEY): DANE needs DNSSEC.", z.Apex)
		return z
	default:
		z.Text = fmt.Sprintf("The DNSKEY lookup of %s failed (%v).", z.Apex, err)
		return z
	}
	if d, err := env.Resolver.Query(ctx, apex, dns.TypeDS); err == nil && len(d.Records) > 0 {
		z.DS = true
	}
	switch {
	case z.DNSKEYAD:
		z.Text = fmt.Sprintf("The zone %s is signed and its keys validate, yet this answer was not validated: the name may be in another zone.", z.Apex)
	case z.DS:
		z.Verdict = "not-validated"
		z.Text = fmt.Sprintf("The zone %s is signed and has a DS in its parent, but the answer was not validated: your resolver does not validate DNSSEC; use a validating resolver.", z.Apex)
	default:
		z.Verdict = "not-validated"
		z.Text = fmt.Sprintf("The zone %s publishes DNSKEY records but the answer was not validated: either your resolver does not validate DNSSEC, or no DS for %s is published in its parent.", z.Apex, z.Apex)
	}
	return z
}
