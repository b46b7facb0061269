package delivery

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// mxData is the evidence of the mx step.
type mxData struct {
	Query   string   `json:"query"`
	Records []string `json:"records,omitempty"`
	AD      bool     `json:"ad"` // the answer was DNSSEC-validated
	MX      []MX     `json:"mx"`
}

// hostAddrs is the evidence of the addresses step, one per host.
type hostAddrs struct {
	Host  string   `json:"host"`
	Addrs []string `json:"addrs"`
	Error string   `json:"error,omitempty"`
}

// mxStep looks up the MX records and, at once, the addresses of every host
// they name (in parallel); the address step reports those. It returns
// false when the test is decided already.
func (r *runner) mxStep(ctx context.Context) ([]*MX, bool) {
	domain := r.res.Domain
	tr := diag.Begin(r.env, r.sink, StepMX, "MX records of "+domain)
	st := diag.Step{RFC: "RFC 5321 §5.1"}
	data := mxData{Query: domain + " MX", MX: []MX{}}
	resp, err := r.env.Resolver.Query(ctx, r.fqdn, dns.TypeMX)
	if resp != nil {
		data.AD = resp.AD
		for _, rr := range resp.Records {
			data.Records = append(data.Records, dnsx.RRString(rr))
		}
	}
	var de *dnsx.Error
	if errors.As(err, &de) && de.Response != nil {
		data.AD = de.Response.AD
	}

	var mxs []*MX
	var notes []string
	var warn bool
	switch {
	case errors.Is(err, dnsx.ErrNXDomain):
		st.Status = diag.Fail
		st.Title = domain + " does not exist (NXDOMAIN)"
		st.Detail = "The DNS says there is no such domain: a sender bounces mail to it at once."
		st.Hint = "Check the spelling. If the domain is yours, check its registration and delegation (mxray dns " + domain + " NS)."
		st.RFC = "RFC 5321 §5.1; RFC 8020"
		st.Data = data
		tr.Done(st)
		r.decide(Undeliverable, StepMX, domain+" does not exist (NXDOMAIN)")
		return nil, false
	case errors.Is(err, dnsx.ErrNoData) || err == nil && len(resp.MX()) == 0:
		// RFC 5321 §5.1: "If an empty list of MXs is returned, the address
		// is treated as if it was associated with an implicit MX RR, with a
		// preference of 0, pointing to that host."
		r.res.ImplicitMX = true
		mxs = []*MX{{Preference: 0, Host: domain, Implicit: true}}
		warn = true
		st.Title = "no MX records: the domain's own address is its mail host (implicit MX)"
		notes = append(notes, "Senders fall back to the A/AAAA records of "+domain+" (RFC 5321 §5.1). This works, but an explicit MX is clearer, and some filters distrust domains without one.")
		st.Hint = "Publish an MX record, e.g. " + domain + ". MX 10 mail." + domain + "."
	case err != nil:
		st.Status = diag.Fail
		st.Title = "MX lookup failed: " + dnsKind(err)
		st.Detail = dnsProblem(err) + "\nA sender would keep the message queued and retry; the test cannot go on."
		st.Hint = "Check the domain's name servers and DNSSEC (mxray dns " + domain + " MX), or try another --resolver."
		st.Data = data
		tr.Done(st)
		r.decide(Error, StepMX, "could not look up the MX records of "+domain+": "+dnsKind(err))
		return nil, false
	default:
		var null bool
		seen := map[string]*MX{}
		for _, rec := range resp.MX() {
			host := hostName(rec.Mx)
			if host == "" {
				null = true
				continue
			}
			if m, ok := seen[host]; ok {
				m.Preference = min(m.Preference, rec.Preference)
				continue
			}
			m := &MX{Preference: rec.Preference, Host: host}
			if _, err := netip.ParseAddr(host); err == nil {
				m.IPLiteral = true
			}
			seen[host] = m
			mxs = append(mxs, m)
		}
		if null && len(mxs) == 0 {
			// RFC 7505 §3: a single MX of preference 0 naming the root says
			// the domain accepts no mail.
			r.res.NullMX = true
			st.Status = diag.Fail
			st.Title = domain + " has a null MX: this domain accepts no mail"
			st.Detail = "Its only MX record is \"0 .\" (RFC 7505): the owner declares that the domain receives no email. A sender bounces at once (RFC 7505 §4.2)."
			st.Hint = "If the domain should receive mail, replace the null MX with real MX records."
			st.RFC = "RFC 7505 §3"
			st.Data = data
			tr.Done(st)
			r.decide(Undeliverable, StepMX, domain+" publishes a null MX (RFC 7505): it accepts no mail")
			return nil, false
		}
		if null {
			warn = true
			notes = append(notes, "A null MX (\".\") is published next to real ones; RFC 7505 §3 forbids that. Senders ignore it or bounce; the test ignores it.")
		}
		slices.SortStableFunc(mxs, func(a, b *MX) int {
			return cmp.Or(cmp.Compare(a.Preference, b.Preference), strings.Compare(a.Host, b.Host))
		})
	}

	r.lookupAll(ctx, mxs)

	for _, m := range mxs {
		switch {
		case m.IPLiteral:
			warn = true
			notes = append(notes, fmt.Sprintf("The MX names %s, an IP address, not a host name. MX data must be a domain name (RFC 1035 §3.3.9, RFC 5321 §5.1); MTAs such as Postfix skip such a record, and so does this test.", m.Host))
			st.Hint = "Publish an A record for a name (mail." + domain + ". A " + m.Host + ") and point the MX at that name."
		case m.CNAME != "":
			warn = true
			notes = append(notes, fmt.Sprintf("The MX names %s, an alias (CNAME) for %s. RFC 2181 §10.3 forbids MX records naming an alias; most MTAs follow it anyway, some do not.", m.Host, m.CNAME))
			st.Hint = "Point the MX at the canonical name " + m.CNAME + "."
			st.RFC = "RFC 5321 §5.1; RFC 2181 §10.3"
		}
	}
	var names []string
	for _, m := range mxs {
		data.MX = append(data.MX, *m)
		if !m.Implicit {
			names = append(names, fmt.Sprintf("%s (%d)", m.Host, m.Preference))
		}
	}
	if st.Title == "" {
		st.Title = "MX: " + strings.Join(names, ", ")
	}
	st.Status = diag.OK
	if warn {
		st.Status = diag.Warn
	}
	var lines []string
	for _, m := range mxs {
		if !m.Implicit {
			lines = append(lines, fmt.Sprintf("%d %s", m.Preference, m.Host))
		}
	}
	st.Detail = strings.Join(append(lines, notes...), "\n")
	st.Data = data
	tr.Done(st)
	for _, m := range mxs {
		r.res.MX = append(r.res.MX, *m)
	}
	return mxs, true
}

// lookupAll finds the addresses and the TLSA records of every host, all
// at once: none of these lookups depends on another.
func (r *runner) lookupAll(ctx context.Context, mxs []*MX) {
	var wg sync.WaitGroup
	for _, m := range mxs {
		if m.IPLiteral {
			continue
		}
		wg.Go(func() {
			l := dane.LookupTLSA(ctx, r.env, m.Host, r.t.Port)
			m.tlsa = &l
		})
		wg.Go(func() {
			res, err := dnsx.LookupIP(ctx, r.env.Resolver, m.Host, r.family())
			m.lookErr = err
			if res != nil {
				m.ips = res.Addrs
				m.addrAD = res.AD && len(res.Addrs) > 0
				m.CNAME = cnameOf(res, m.Host)
			}
			for _, ip := range m.ips {
				m.Addrs = append(m.Addrs, ip.String())
			}
			if m.Addrs == nil {
				m.Addrs = []string{}
			}
		})
	}
	wg.Wait()
}

// cnameOf returns the canonical name when host is an alias.
func cnameOf(res *dnsx.IPResult, host string) string {
	var resps []*dnsx.Response
	for _, resp := range []*dnsx.Response{res.A, res.AAAA} {
		if resp != nil {
			resps = append(resps, resp)
		}
	}
	for _, err := range []error{res.ErrA, res.Err6} {
		var de *dnsx.Error
		if errors.As(err, &de) && de.Response != nil {
			resps = append(resps, de.Response)
		}
	}
	for _, resp := range resps {
		if len(resp.Chain) > 0 {
			if f := hostName(resp.Final()); f != host {
				return f
			}
		}
	}
	return ""
}

// addressStep reports the addresses found; false when no host has one.
func (r *runner) addressStep(mxs []*MX) bool {
	tr := diag.Begin(r.env, r.sink, StepAddresses, "addresses of the mail hosts")
	st := diag.Step{RFC: "RFC 5321 §5.1"}
	fam := ""
	switch {
	case r.t.IPv4Only:
		fam = " (IPv4 only)"
	case r.t.IPv6Only:
		fam = " (IPv6 only)"
	}
	var data []hostAddrs
	var lines []string
	usable, temporary := 0, false
	var missing []string
	for i, m := range mxs {
		switch {
		case m.IPLiteral:
			m.Error = "not looked up: the MX names an IP address"
		case len(m.ips) == 0:
			m.Error = dnsProblem(m.lookErr)
			temporary = temporary || dnsx.Temporary(m.lookErr)
		}
		r.res.MX[i] = *m
		data = append(data, hostAddrs{Host: m.Host, Addrs: m.Addrs, Error: m.Error})
		if m.Error != "" {
			lines = append(lines, fmt.Sprintf("%s: %s", m.Host, m.Error))
			missing = append(missing, m.Host)
			continue
		}
		usable++
		lines = append(lines, fmt.Sprintf("%s: %s", m.Host, strings.Join(m.Addrs, ", ")))
	}
	st.Detail = strings.Join(lines, "\n")
	st.Data = map[string]any{"hosts": data}
	switch {
	case usable == len(mxs):
		st.Status = diag.OK
		if len(mxs) == 1 {
			st.Title = fmt.Sprintf("addresses%s: %s → %s", fam, mxs[0].Host, strings.Join(mxs[0].Addrs, ", "))
		} else {
			st.Title = fmt.Sprintf("addresses%s of %d mail hosts found", fam, len(mxs))
		}
	case usable > 0:
		st.Status = diag.Warn
		st.Title = fmt.Sprintf("%d of %d mail hosts have no usable address%s", len(missing), len(mxs), fam)
		st.Hint = "Publish A/AAAA records for " + strings.Join(missing, ", ") + ", or remove the MX records that name them."
	default:
		st.Status = diag.Fail
		st.Title = "no mail host has a usable address" + fam
		if mxs[0].Implicit {
			st.Title = r.res.Domain + " has neither MX records nor an address" + fam
		}
		st.Hint = "Publish A/AAAA records for " + strings.Join(missing, ", ") + ", or point the MX at a host that has them."
	}
	tr.Done(st)
	if usable > 0 {
		return true
	}
	switch {
	case temporary:
		r.decide(Error, StepAddresses, "could not look up the addresses of the mail hosts of "+r.res.Domain)
	case mxs[0].Implicit:
		r.decide(Undeliverable, StepAddresses, r.res.Domain+" has neither MX records nor an address"+fam+": it cannot receive mail")
	default:
		r.decide(Undeliverable, StepAddresses, "no mail host of "+r.res.Domain+" has an address"+fam)
	}
	return false
}

// dnsKind names a DNS failure in a word or two.
func dnsKind(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, dnsx.ErrNXDomain):
		return "NXDOMAIN"
	case errors.Is(err, dnsx.ErrNoData):
		return "no address records (NODATA)"
	case errors.Is(err, dnsx.ErrNoAddress):
		return "no address"
	case errors.Is(err, dnsx.ErrServFail):
		return "SERVFAIL"
	case errors.Is(err, dnsx.ErrTimeout):
		return "timeout"
	case errors.Is(err, dnsx.ErrRefused):
		return "REFUSED"
	case errors.Is(err, dnsx.ErrUnreachable):
		return "resolver unreachable"
	}
	return "error"
}

// dnsProblem explains a DNS failure for a person.
func dnsProblem(err error) string {
	var ede string
	var de *dnsx.Error
	if errors.As(err, &de) && de.Response != nil {
		for _, x := range de.Response.EDE {
			ede += " [" + x.String() + "]"
		}
	}
	switch {
	case err == nil:
		return ""
	case errors.Is(err, dnsx.ErrNXDomain):
		return "NXDOMAIN: the name does not exist"
	case errors.Is(err, dnsx.ErrNoData), errors.Is(err, dnsx.ErrNoAddress):
		return "the name exists but has no address records"
	case errors.Is(err, dnsx.ErrServFail):
		return "SERVFAIL: the resolver could not get an answer — often a DNSSEC validation failure or unreachable name servers" + ede
	case errors.Is(err, dnsx.ErrTimeout):
		return "timeout: no answer from the resolver, or the domain's name servers do not answer"
	case errors.Is(err, dnsx.ErrRefused):
		return "REFUSED: the resolver will not answer this question"
	}
	return err.Error()
}
