// Package iprev checks the reverse DNS of a connecting IP address the way
// RFC 8601 §3 ("iprev", first in RFC 5451) defines it, a check also known
// as forward-confirmed reverse DNS (FCrDNS): the address's PTR names are
// looked up, and a name passes when its own A or AAAA records contain the
// address. It also says whether a confirmed name is the EHLO name, because
// many receivers reject or score mail when it is not.
//
// Not supported: DNSSEC validation (the AD flag is only recorded); a PTR
// name that is a CNAME is followed like any other answer.
package iprev

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Status is an iprev result, spelled as in RFC 8601 §2.7.3.
type Status string

// The iprev results.
const (
	// Pass: a PTR name's addresses include the IP address.
	Pass Status = "pass"
	// Fail: PTR names exist, but none of them resolves back to the address.
	Fail Status = "fail"
	// Temperror: a DNS error a retry may resolve.
	Temperror Status = "temperror"
	// Permerror: the address has no PTR record at all.
	Permerror Status = "permerror"
)

// MaxNames bounds the PTR names checked, as RFC 7208 §4.6.4 bounds the
// "ptr" mechanism: a reverse zone could list hundreds.
const MaxNames = 10

// Sentinel errors in Result.Err; test with errors.Is.
var (
	ErrNoPTR        = errors.New("iprev: no PTR record")
	ErrNotConfirmed = errors.New("iprev: no PTR name resolves back to the address")
	ErrDNS          = errors.New("iprev: DNS error")
	ErrBadIP        = errors.New("iprev: invalid IP address")
)

// Lookup is one DNS question and its answer.
type Lookup struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Status  string   `json:"status"` // ok, nxdomain, nodata, temperror
	Answers []string `json:"answers,omitempty"`
	AD      bool     `json:"ad"`
	Error   string   `json:"error,omitempty"`
}

// Name is one PTR name and what its forward lookup returned.
type Name struct {
	Name      string   `json:"name"`
	Addrs     []string `json:"addrs"`
	Confirmed bool     `json:"confirmed"`
	Problem   string   `json:"problem,omitempty"`
}

// Result is an iprev check with its evidence.
type Result struct {
	Status      Status `json:"result"`
	IP          string `json:"ip"`
	ReverseName string `json:"reverse_name"`
	// PTR lists every PTR name as published; Names the ones checked (at
	// most MaxNames).
	PTR       []string `json:"ptr"`
	Names     []Name   `json:"names"`
	Confirmed []string `json:"confirmed"`
	// Helo is the EHLO name given; HeloConfirmed tells whether it is one
	// of the confirmed names.
	Helo          string   `json:"helo,omitempty"`
	HeloConfirmed bool     `json:"helo_confirmed"`
	HeloNote      string   `json:"helo_note,omitempty"`
	Lookups       []Lookup `json:"lookups"`
	Problem       string   `json:"problem,omitempty"`
	Hint          string   `json:"hint,omitempty"`
	RFC           string   `json:"rfc,omitempty"`
	Err           error    `json:"-"`
}

// Check runs iprev for ip (RFC 8601 §3) and compares the confirmed names
// with helo (which may be empty). It always returns a Status.
func Check(ctx context.Context, env diag.Env, ip netip.Addr, helo string) Result {
	start := env.Clock()
	res := Result{PTR: []string{}, Names: []Name{}, Confirmed: []string{}, Lookups: []Lookup{}, RFC: "RFC 8601 §3"}
	helo = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(helo)), ".")
	res.Helo = helo
	defer func() {
		env.Log().Debug("iprev", "ip", res.IP, "result", res.Status, "confirmed", res.Confirmed,
			"elapsed", env.Clock().Sub(start))
	}()
	if !ip.IsValid() {
		res.Status = Permerror
		res.Err = ErrBadIP
		res.Problem = "no valid IP address to check"
		return res
	}
	ip = ip.Unmap()
	res.IP = ip.String()
	res.ReverseName = dnsx.ReverseName(ip)

	ptr, err := lookup(ctx, env, &res, res.ReverseName, dns.TypePTR)
	switch {
	case err != nil && dnsx.Temporary(err):
		res.Status = Temperror
		res.Err = fmt.Errorf("%w: %w", ErrDNS, err)
		res.Problem = fmt.Sprintf("the PTR lookup of %s failed: %v", res.IP, err)
		res.Hint = "retry later; if it persists, the reverse zone's name servers are failing"
		return res
	case err != nil || len(ptr.Names()) == 0:
		// RFC 8601 §2.7.3: permerror when "no PTR data are published for
		// the connecting IP address".
		res.Status = Permerror
		res.Err = ErrNoPTR
		res.Problem = fmt.Sprintf("%s has no PTR record (%s): many receivers reject mail from addresses without reverse DNS", res.IP, describe(err))
		res.Hint = fmt.Sprintf("ask whoever runs the address block (your hosting provider or ISP) to set the PTR of %s to the server's name, e.g. the name it uses in EHLO, and give that name an A/AAAA record with %s", res.IP, res.IP)
		return res
	}
	for _, n := range ptr.Names() {
		res.PTR = append(res.PTR, strings.TrimSuffix(strings.ToLower(n), "."))
	}
	names := res.PTR
	if len(names) > MaxNames {
		names = names[:MaxNames]
	}
	qtype := dns.TypeA
	if ip.Is6() {
		qtype = dns.TypeAAAA
	}
	temporary := false
	for _, n := range names {
		nm := Name{Name: n, Addrs: []string{}}
		resp, err := lookup(ctx, env, &res, n, qtype)
		switch {
		case err != nil && dnsx.Temporary(err):
			temporary = true
			nm.Problem = "could not check: " + err.Error()
		case err != nil:
			nm.Problem = fmt.Sprintf("%s has no %s record (%s)", n, dnsx.TypeString(qtype), describe(err))
		default:
			for _, a := range resp.Addrs() {
				nm.Addrs = append(nm.Addrs, a.String())
				if a == ip {
					nm.Confirmed = true
				}
			}
			if !nm.Confirmed {
				nm.Problem = fmt.Sprintf("%s resolves to %s, not to %s", n, strings.Join(nm.Addrs, ", "), res.IP)
			}
		}
		if nm.Confirmed {
			res.Confirmed = append(res.Confirmed, n)
		}
		res.Names = append(res.Names, nm)
	}
	res.heloCheck()
	switch {
	case len(res.Confirmed) > 0:
		res.Status = Pass
		res.RFC = ""
		if helo != "" && !res.HeloConfirmed {
			res.Hint = fmt.Sprintf("make the server say EHLO %s, or point the PTR of %s at %s and give %s an A/AAAA record with %s", res.Confirmed[0], res.IP, helo, helo, res.IP)
		}
	case temporary:
		res.Status = Temperror
		res.Err = ErrDNS
		res.Problem = "no PTR name could be confirmed, and a DNS error kept one from being checked"
		res.Hint = "retry later"
	default:
		res.Status = Fail
		res.Err = ErrNotConfirmed
		var why []string
		for _, n := range res.Names {
			why = append(why, n.Problem)
		}
		res.Problem = fmt.Sprintf("the PTR names of %s do not resolve back to it, so reverse DNS is not forward-confirmed: %s", res.IP, strings.Join(why, "; "))
		res.Hint = fmt.Sprintf("add %s %s to the A/AAAA records of %s, or change the PTR of %s to a name that has it", dnsx.TypeString(qtype), res.IP, names[0], res.IP)
	}
	if len(res.PTR) > MaxNames {
		res.Problem = strings.TrimPrefix(res.Problem+fmt.Sprintf("; only the first %d of %d PTR names were checked", MaxNames, len(res.PTR)), "; ")
	}
	return res
}

// heloCheck compares the EHLO name with the confirmed names.
func (r *Result) heloCheck() {
	if r.Helo == "" {
		return
	}
	for _, n := range r.Confirmed {
		if n == r.Helo {
			r.HeloConfirmed = true
		}
	}
	switch {
	case r.HeloConfirmed:
		r.HeloNote = fmt.Sprintf("EHLO %s is the forward-confirmed reverse name of %s", r.Helo, r.IP)
	case len(r.Confirmed) > 0:
		r.HeloNote = fmt.Sprintf("EHLO %s is not the forward-confirmed reverse name of %s (%s): a very common cause of rejections and spam scoring", r.Helo, r.IP, strings.Join(r.Confirmed, ", "))
	default:
		r.HeloNote = fmt.Sprintf("EHLO %s cannot match: %s has no forward-confirmed reverse name", r.Helo, r.IP)
	}
}

func lookup(ctx context.Context, env diag.Env, res *Result, name string, qtype uint16) (*dnsx.Response, error) {
	l := Lookup{Name: strings.TrimSuffix(name, "."), Type: dnsx.TypeString(qtype)}
	resp, err := env.Resolver.Query(ctx, dns.Fqdn(name), qtype)
	switch {
	case err == nil:
		l.Status, l.AD = "ok", resp.AD
		for _, rr := range resp.Records {
			l.Answers = append(l.Answers, dnsx.RData(rr))
		}
	case errors.Is(err, dnsx.ErrNXDomain):
		l.Status = "nxdomain"
	case errors.Is(err, dnsx.ErrNoData):
		l.Status = "nodata"
	default:
		l.Status, l.Error = "temperror", err.Error()
	}
	res.Lookups = append(res.Lookups, l)
	return resp, err
}

func describe(err error) string {
	switch {
	case err == nil:
		return "empty answer"
	case errors.Is(err, dnsx.ErrNXDomain):
		return "NXDOMAIN"
	case errors.Is(err, dnsx.ErrNoData):
		return "NODATA"
	}
	return err.Error()
}
