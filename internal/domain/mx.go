package domain

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/iprev"
	"github.com/mxray/mxray/internal/spf"
)

// MXSection is the evidence of the MX section.
type MXSection struct {
	Records []string `json:"records,omitempty"`
	AD      bool     `json:"ad"`
	NullMX  bool     `json:"null_mx,omitempty"`
	// Implicit: no MX records, the domain's own address receives mail.
	Implicit bool     `json:"implicit,omitempty"`
	Hosts    []MXHost `json:"hosts"`
	Error    string   `json:"error,omitempty"`
}

// MXHost is one mail host with its addresses and their reverse DNS.
type MXHost struct {
	Preference uint16   `json:"preference"`
	Host       string   `json:"host"`
	CNAME      string   `json:"cname,omitempty"`
	Addrs      []MXAddr `json:"addrs"`
	Error      string   `json:"error,omitempty"`
	ips        []netip.Addr
}

// MXAddr is one address of a mail host and its iprev result.
type MXAddr struct {
	IP        string       `json:"ip"`
	Iprev     iprev.Status `json:"iprev"`
	PTR       []string     `json:"ptr"`
	Confirmed []string     `json:"confirmed"`
	// MatchesHost: a forward-confirmed PTR name is the MX host name.
	MatchesHost bool `json:"matches_host"`
}

// mxHosts returns the names of the MX hosts (after the section ran).
func (r *runner) mxHosts() []string {
	var out []string
	for _, h := range r.res.MX.Hosts {
		out = append(out, h.Host)
	}
	return out
}

func (r *runner) mxSection() []diag.Step {
	sec := &r.res.MX
	sec.Hosts = []MXHost{}
	resp, err := r.env.Resolver.Query(r.ctx, r.fqdn, dns.TypeMX)
	if resp != nil {
		sec.AD = resp.AD
		for _, rr := range resp.Records {
			sec.Records = append(sec.Records, dnsx.RRString(rr))
		}
	}
	switch {
	case errors.Is(err, dnsx.ErrNXDomain):
		sec.Error = dnsWord(err)
		return []diag.Step{step(StepMX, diag.Fail, r.domain+" does not exist (NXDOMAIN)",
			"The DNS says there is no such domain: nothing else about it can work.",
			"Check the spelling, the registration and the delegation (mxray dns "+r.domain+" NS).", "RFC 8020")}
	case err != nil && !errors.Is(err, dnsx.ErrNoData):
		sec.Error = dnsWord(err)
		r.unchecked(StepMX, "MX: "+dnsWord(err))
		return []diag.Step{step(StepMX, diag.Fail, "MX lookup failed: "+dnsWord(err),
			err.Error()+"\nSenders keep mail queued while the lookup fails.",
			"Check the domain's name servers and DNSSEC (mxray dns "+r.domain+" MX), or try another --resolver.", "RFC 5321 §5.1")}
	}
	var steps []diag.Step
	var hosts []*MXHost
	null := false
	if resp != nil {
		seen := map[string]bool{}
		for _, m := range resp.MX() {
			h := hostName(m.Mx)
			if h == "" {
				null = true
				continue
			}
			if !seen[h] {
				seen[h] = true
				hosts = append(hosts, &MXHost{Preference: m.Preference, Host: h})
			}
		}
	}
	switch {
	case null && len(hosts) == 0:
		sec.NullMX = true
		return []diag.Step{step(StepMX, diag.Info, r.domain+" publishes a null MX: it accepts no mail",
			"Its only MX is \"0 .\" (RFC 7505): senders bounce mail to it at once. That is right for a domain that only sends, or sends nothing.",
			"", "RFC 7505 §3")}
	case len(hosts) == 0:
		sec.Implicit = true
		hosts = []*MXHost{{Host: r.domain}}
		steps = append(steps, step(StepMX, diag.Warn, "no MX records: senders use the domain's own address (implicit MX)",
			"Without MX records, senders deliver to the A/AAAA records of "+r.domain+" (RFC 5321 §5.1). Many filters distrust domains without MX.",
			"Publish an MX record, e.g. "+r.domain+". MX 10 mail."+r.domain+".", "RFC 5321 §5.1"))
	case null:
		steps = append(steps, step(StepMX, diag.Warn, "a null MX is published next to real MX records",
			"RFC 7505 §3 forbids mixing \"0 .\" with other MX records; senders may bounce or ignore it.",
			"Remove the \"0 .\" MX record.", "RFC 7505 §3"))
	}
	slices.SortStableFunc(hosts, func(a, b *MXHost) int {
		return cmp.Or(cmp.Compare(a.Preference, b.Preference), strings.Compare(a.Host, b.Host))
	})
	if !sec.Implicit && !null {
		var names []string
		for _, h := range hosts {
			names = append(names, fmt.Sprintf("%s (%d)", h.Host, h.Preference))
		}
		steps = append(steps, step(StepMX, diag.OK, "MX: "+strings.Join(names, ", "), strings.Join(sec.Records, "\n"), "", "RFC 5321 §5.1"))
	}

	// Addresses of every host, then the reverse DNS of every address.
	r.parallel(len(hosts), func(i int) {
		h := hosts[i]
		if _, err := netip.ParseAddr(h.Host); err == nil {
			h.Error = "an IP address, not a host name"
			return
		}
		ipr, err := dnsx.LookupIP(r.ctx, r.env.Resolver, h.Host, dnsx.IPv4|dnsx.IPv6)
		if err != nil {
			h.Error = dnsWord(err)
			if dnsx.Temporary(err) {
				r.unchecked(StepMX, "addresses of "+h.Host+": "+dnsWord(err))
			}
			return
		}
		h.ips = ipr.Addrs
		for _, resp := range []*dnsx.Response{ipr.A, ipr.AAAA} {
			if resp != nil && len(resp.Chain) > 0 && h.CNAME == "" {
				h.CNAME = hostName(resp.Final())
			}
		}
	})
	type job struct {
		h  *MXHost
		ip netip.Addr
		r  iprev.Result
	}
	var jobs []*job
	for _, h := range hosts {
		for _, ip := range h.ips {
			jobs = append(jobs, &job{h: h, ip: ip})
		}
	}
	r.parallel(len(jobs), func(i int) {
		j := jobs[i]
		j.r = iprev.Check(r.ctx, r.env, j.ip, j.h.Host)
	})
	byHost := map[*MXHost][]*job{}
	for _, j := range jobs {
		byHost[j.h] = append(byHost[j.h], j)
	}
	for _, h := range hosts {
		h.Addrs = []MXAddr{}
		if h.Error != "" {
			s := step(StepMXHost, diag.Fail, fmt.Sprintf("MX %s has no usable address: %s", h.Host, h.Error),
				"Senders cannot deliver to this host.",
				"Publish A (and AAAA) records for "+h.Host+", or remove the MX record.", "RFC 5321 §5.1")
			if strings.HasPrefix(h.Error, "an IP") {
				s.Detail = "MX data must be a host name (RFC 1035 §3.3.9); MTAs skip this record."
				s.Hint = "Publish an A record for a name and point the MX at it."
			}
			s.Host = h.Host
			steps = append(steps, s)
			sec.Hosts = append(sec.Hosts, *h)
			continue
		}
		if h.CNAME != "" {
			s := step(StepMXHost, diag.Warn, fmt.Sprintf("MX %s is an alias (CNAME) for %s", h.Host, h.CNAME),
				"RFC 2181 §10.3 forbids MX records naming an alias; most MTAs follow it anyway, some do not.",
				"Point the MX at the canonical name "+h.CNAME+".", "RFC 2181 §10.3")
			s.Host = h.Host
			steps = append(steps, s)
		}
		for _, j := range byHost[h] {
			a := MXAddr{IP: j.ip.String(), Iprev: j.r.Status, PTR: j.r.PTR, Confirmed: j.r.Confirmed, MatchesHost: j.r.HeloConfirmed}
			h.Addrs = append(h.Addrs, a)
			steps = append(steps, iprevStep(StepMXHost, h.Host, j.ip, j.r, "MX "+h.Host))
		}
		sec.Hosts = append(sec.Hosts, *h)
	}
	return steps
}

// iprevStep turns an iprev result into a finding about host at ip.
func iprevStep(id, host string, ip netip.Addr, res iprev.Result, what string) diag.Step {
	var s diag.Step
	switch res.Status {
	case iprev.Pass:
		s = step(id, diag.OK, fmt.Sprintf("%s %s: reverse DNS %s, forward-confirmed", what, ip, strings.Join(res.Confirmed, ", ")),
			"PTR "+strings.Join(res.PTR, ", "), "", "RFC 8601 §3")
		if host != "" && !res.HeloConfirmed {
			s.Status = diag.Info
			s.Detail += fmt.Sprintf("\nThe confirmed name is not %s; receivers compare it with the EHLO name, which usually should be the PTR name.", host)
		}
	case iprev.Fail:
		s = step(id, diag.Warn, fmt.Sprintf("%s %s: reverse DNS %s does not resolve back to the address", what, ip, strings.Join(res.PTR, ", ")),
			res.Problem, orDefault(res.Hint, "Make the PTR name's A/AAAA record include "+ip.String()+"."), "RFC 8601 §3")
	case iprev.Permerror:
		s = step(id, diag.Warn, fmt.Sprintf("%s %s has no reverse DNS (PTR)", what, ip),
			orDefault(res.Problem, "no PTR record at "+res.ReverseName),
			"Ask whoever owns the address (the hosting provider) to set its PTR to "+orDefault(host, "the name the server gives in EHLO")+", with a matching A/AAAA record.", "RFC 8601 §3")
	default:
		s = step(id, diag.Warn, fmt.Sprintf("%s %s: reverse DNS could not be checked", what, ip),
			res.Problem, res.Hint, "RFC 8601 §3")
	}
	s.Host, s.IP = host, ip.String()
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// OutboundCheck is what the audit found about one outbound address.
type OutboundCheck struct {
	IP        string       `json:"ip"`
	Iprev     iprev.Status `json:"iprev"`
	PTR       []string     `json:"ptr"`
	Confirmed []string     `json:"confirmed"`
	// SPF is the result of the domain's SPF record for this address.
	SPF        spf.Status `json:"spf"`
	SPFMatched string     `json:"spf_matched,omitempty"`
}

// outboundSection checks each --outbound-ip: forward-confirmed reverse DNS
// and whether the domain's SPF record authorizes it.
func (r *runner) outboundSection() []diag.Step {
	if len(r.t.OutboundIPs) == 0 {
		return nil
	}
	res := make([]OutboundCheck, len(r.t.OutboundIPs))
	revs := make([]iprev.Result, len(res))
	spfs := make([]spf.Result, len(res))
	r.parallel(len(res), func(i int) {
		ip := r.t.OutboundIPs[i]
		revs[i] = iprev.Check(r.ctx, r.env, ip, "")
		spfs[i] = spf.Check(r.ctx, r.env, spf.Query{IP: ip, MailFrom: "postmaster@" + r.domain, Helo: r.domain})
	})
	var steps []diag.Step
	for i, ip := range r.t.OutboundIPs {
		res[i] = OutboundCheck{IP: ip.String(), Iprev: revs[i].Status, PTR: revs[i].PTR, Confirmed: revs[i].Confirmed,
			SPF: spfs[i].Status, SPFMatched: spfs[i].Matched}
		steps = append(steps, iprevStep(StepOutbound, "", ip, revs[i], "outbound"))
		sr := spfs[i]
		var s diag.Step
		switch sr.Status {
		case spf.Pass:
			s = step(StepOutbound, diag.OK, fmt.Sprintf("SPF of %s authorizes %s (%s)", r.domain, ip, sr.Matched), "", "", "RFC 7208 §2.6.1")
		case spf.None:
			s = step(StepOutbound, diag.Warn, fmt.Sprintf("SPF cannot authorize %s: %s has no SPF record", ip, r.domain), "", "Publish an SPF record naming "+ip.String()+".", "RFC 7208 §2.6.1")
		case spf.Temperror:
			s = step(StepOutbound, diag.Warn, fmt.Sprintf("SPF for %s could not be evaluated (temperror)", ip), sr.Problem, sr.Hint, "RFC 7208 §2.6.6")
		default:
			s = step(StepOutbound, diag.Fail, fmt.Sprintf("SPF of %s does not authorize %s: %s", r.domain, ip, sr.Status),
				orDefault(sr.Problem, "no mechanism of the record matches the address"),
				orDefault(sr.Hint, "Add ip4:/ip6: for "+ip.String()+" to the SPF record."), orDefault(sr.RFC, "RFC 7208 §2.6"))
		}
		s.IP = ip.String()
		steps = append(steps, s)
	}
	r.res.Outbound = res
	return steps
}
