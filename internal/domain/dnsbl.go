package domain

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// DNSBLSection is the evidence of the blocklist section.
type DNSBLSection struct {
	Lists  []DNSBLList  `json:"lists"`
	Checks []DNSBLCheck `json:"checks"`
}

// DNSBLList is one blocklist and whether it answers as RFC 5782 §5
// requires (127.0.0.2 listed, 127.0.0.1 not).
type DNSBLList struct {
	Zone    string `json:"zone"`
	Working bool   `json:"working"`
	Problem string `json:"problem,omitempty"`
}

// DNSBLCheck is one address against every list.
type DNSBLCheck struct {
	IP     string         `json:"ip"`
	Role   string         `json:"role"` // "MX host", "outbound"
	Listed []DNSBLListing `json:"listed"`
	Errors []string       `json:"errors,omitempty"`
}

// DNSBLListing is one list's entry for an address.
type DNSBLListing struct {
	Zone   string   `json:"zone"`
	Name   string   `json:"name"`
	Codes  []string `json:"codes"` // the A records, 127.0.0.x
	Reason string   `json:"reason,omitempty"`
}

// errBLRefused and errBLBogus are answers that are not a listing.
var (
	errBLRefused = errors.New("the list refused the query (127.255.255.x): lists such as Spamhaus refuse queries from public resolvers and unregistered users")
	errBLBogus   = errors.New("the answer is not in 127.0.0.0/8: the list (or a resolver rewriting NXDOMAIN) answers wrongly")
)

// blName returns the DNSBL query name of ip under zone (RFC 5782 §2.1,
// §2.4): the reversed octets or nibbles, as in the reverse zone.
func blName(ip netip.Addr, zone string) string {
	rev := dnsx.ReverseName(ip)
	rev = strings.TrimSuffix(strings.TrimSuffix(rev, "in-addr.arpa."), "ip6.arpa.")
	return rev + strings.TrimSuffix(zone, ".") + "."
}

// blLookup asks one list about one address: listed with the codes, not
// listed (nil, nil), or an error.
func (r *runner) blLookup(ip netip.Addr, zone string) (*DNSBLListing, error) {
	name := blName(ip, zone)
	resp, err := r.env.Resolver.Query(r.ctx, name, dns.TypeA)
	if err != nil {
		if absent(err) {
			return nil, nil // RFC 5782 §2.1: NXDOMAIN means not listed
		}
		return nil, err
	}
	l := &DNSBLListing{Zone: zone, Name: strings.TrimSuffix(name, ".")}
	for _, a := range resp.Addrs() {
		l.Codes = append(l.Codes, a.String())
		b := a.As4()
		switch {
		case !a.Is4() || b[0] != 127:
			return nil, errBLBogus
		case b[1] == 255 && b[2] == 255:
			return nil, errBLRefused
		}
	}
	if len(l.Codes) == 0 {
		return nil, nil
	}
	return l, nil
}

func (r *runner) dnsblSection() []diag.Step {
	sec := &r.res.DNSBL
	sec.Lists, sec.Checks = []DNSBLList{}, []DNSBLCheck{}
	if len(r.t.DNSBL) == 0 {
		return nil
	}
	r.after(StepMX)
	type addr struct {
		ip   netip.Addr
		role string
	}
	var addrs []addr
	seen := map[netip.Addr]bool{}
	for _, h := range r.res.MX.Hosts {
		for _, a := range h.Addrs {
			ip, err := netip.ParseAddr(a.IP)
			if err == nil && !seen[ip] {
				seen[ip] = true
				addrs = append(addrs, addr{ip, "MX " + h.Host})
			}
		}
	}
	for _, ip := range r.t.OutboundIPs {
		if !seen[ip] {
			seen[ip] = true
			addrs = append(addrs, addr{ip, "outbound"})
		}
	}

	// RFC 5782 §5: every IPv4 list must list 127.0.0.2 and must not list
	// 127.0.0.1; a list that does not is dead, or answers everything.
	lists := make([]DNSBLList, len(r.t.DNSBL))
	test2, test1 := netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.1")
	r.parallel(len(lists), func(i int) {
		zone := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r.t.DNSBL[i])), ".")
		l := DNSBLList{Zone: zone}
		hit2, err2 := r.blLookup(test2, zone)
		hit1, err1 := r.blLookup(test1, zone)
		switch {
		case err2 != nil:
			l.Problem = "the test entry 127.0.0.2 could not be looked up: " + dnsWord(err2)
		case err1 != nil:
			l.Problem = "127.0.0.1 could not be looked up: " + dnsWord(err1)
		case hit2 == nil:
			l.Problem = "the test entry 127.0.0.2 is not listed: the list does not exist or does not answer"
		case hit1 != nil:
			l.Problem = "127.0.0.1 is listed: the list answers every query, so its answers mean nothing"
		default:
			l.Working = true
		}
		lists[i] = l
	})
	sec.Lists = lists

	type job struct {
		a, l int
		hit  *DNSBLListing
		err  error
	}
	var jobs []*job
	for i := range addrs {
		for j := range lists {
			jobs = append(jobs, &job{a: i, l: j})
		}
	}
	r.parallel(len(jobs), func(k int) {
		j := jobs[k]
		j.hit, j.err = r.blLookup(addrs[j.a].ip, lists[j.l].Zone)
		if j.hit != nil {
			// RFC 5782 §2.1: the TXT record at the same name gives the reason.
			if resp, err := r.env.Resolver.Query(r.ctx, j.hit.Name+".", dns.TypeTXT); err == nil {
				j.hit.Reason = strings.Join(resp.TXT(), " ")
			}
		}
	})

	var steps []diag.Step
	for _, l := range lists {
		if !l.Working {
			steps = append(steps, step(StepDNSBL, diag.Warn, fmt.Sprintf("blocklist %s does not answer as RFC 5782 requires; its results are ignored", l.Zone),
				l.Problem, "Check the zone name (--dnsbl), and ask the list with your own resolver: several lists refuse large public resolvers.", "RFC 5782 §5"))
		}
	}
	for i, a := range addrs {
		c := DNSBLCheck{IP: a.ip.String(), Role: a.role, Listed: []DNSBLListing{}}
		var clean []string
		for _, j := range jobs {
			if j.a != i {
				continue
			}
			l := lists[j.l]
			switch {
			case j.err != nil:
				c.Errors = append(c.Errors, l.Zone+": "+dnsWord(j.err))
			case j.hit != nil:
				c.Listed = append(c.Listed, *j.hit)
				s := step(StepDNSBL, diag.Fail, fmt.Sprintf("%s (%s) is listed on %s (%s)", a.ip, a.role, l.Zone, strings.Join(j.hit.Codes, ", ")),
					orDefault(j.hit.Reason, "the list gives no reason (no TXT record)"),
					"Find out why (the list's web site explains its codes), stop the cause (an open relay, a compromised account, a spam run), then request removal.", "RFC 5782 §2.1")
				s.IP = a.ip.String()
				if !l.Working {
					s.Status = diag.Warn
				}
				steps = append(steps, s)
			case l.Working:
				clean = append(clean, l.Zone)
			}
		}
		if len(clean) > 0 {
			s := step(StepDNSBL, diag.OK, fmt.Sprintf("%s (%s) is not listed on %s", a.ip, a.role, strings.Join(clean, ", ")), "", "", "RFC 5782 §2.1")
			s.IP = a.ip.String()
			steps = append(steps, s)
		}
		if len(c.Errors) > 0 {
			s := step(StepDNSBL, diag.Warn, fmt.Sprintf("%s (%s): some blocklists could not be asked", a.ip, a.role), strings.Join(c.Errors, "\n"), "", "RFC 5782 §2.1")
			s.IP = a.ip.String()
			steps = append(steps, s)
		}
		sec.Checks = append(sec.Checks, c)
	}
	return steps
}
