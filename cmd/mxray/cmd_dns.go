package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// defaultDNSTypes are asked when no type is given for a name.
var defaultDNSTypes = []string{"A", "AAAA", "MX", "TXT"}

func newDNSCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "dns NAME [TYPE...]",
		Short: "Look up DNS records, with TTLs, the AD flag, rcode and timing",
		Long: `Look up DNS records through mxray's resolver (--resolver, else /etc/resolv.conf).

NAME is a domain name, or an IP address for its PTR record. TYPE is any record
type (A, AAAA, MX, TXT, PTR, SRV, TLSA, CNAME, NS, SOA, CAA, ...); without one,
A, AAAA, MX and TXT are asked.

Exit codes: 0 records found; 1 NXDOMAIN, or NODATA for a type you named (for
the default set: the name has no records at all); 3 SERVFAIL, timeout or an
unreachable resolver.`,
		Example: `  mxray dns example.com MX
  mxray dns 192.0.2.1
  mxray dns _25._tcp.mx.example.com TLSA --json`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDNS(cmd.Context(), a, args)
		},
	}
}

// dnsAnswer is one record of a dns result.
type dnsAnswer struct {
	Name string `json:"name"`
	Type string `json:"type"`
	TTL  uint32 `json:"ttl"`
	Data string `json:"data"`
}

// dnsQuery is the outcome of one question; Status is ok, nxdomain, nodata,
// servfail, timeout, refused or error.
type dnsQuery struct {
	Type       string               `json:"type"`
	Status     string               `json:"status"`
	Rcode      string               `json:"rcode,omitempty"`
	AD         bool                 `json:"ad"`
	Server     string               `json:"server,omitempty"`
	Transport  string               `json:"transport,omitempty"`
	ElapsedMS  float64              `json:"elapsed_ms"`
	CNAMEChain []dnsAnswer          `json:"cname_chain,omitempty"`
	Answers    []dnsAnswer          `json:"answers"`
	EDE        []dnsx.ExtendedError `json:"ede,omitempty"`
	Message    string               `json:"message,omitempty"`
	err        error
}

type dnsResult struct {
	Name      string     `json:"name"`
	Queried   string     `json:"queried"` // the name actually asked (reverse name for an IP)
	Resolvers []string   `json:"resolvers"`
	Queries   []dnsQuery `json:"queries"`
}

func runDNS(ctx context.Context, a *app, args []string) error {
	name, typeArgs := args[0], args[1:]
	queried := name
	explicit := len(typeArgs) > 0
	if ip, err := netip.ParseAddr(name); err == nil {
		queried = dnsx.ReverseName(ip)
		if !explicit {
			typeArgs = []string{"PTR"}
			explicit = true
		}
	} else if !explicit {
		typeArgs = defaultDNSTypes
	}
	fq, err := dnsx.Fqdn(queried)
	if err != nil {
		return diag.Usagef("%v", err)
	}
	var types []uint16
	for _, s := range typeArgs {
		t, err := dnsx.ParseType(s)
		if err != nil {
			return diag.Usagef("%v", err)
		}
		types = append(types, t)
	}

	res := dnsResult{Name: name, Queried: fq, Resolvers: a.servers}
	res.Queries = make([]dnsQuery, len(types))
	var wg sync.WaitGroup
	for i, t := range types {
		wg.Go(func() { res.Queries[i] = lookupOne(ctx, a.env, fq, t) })
	}
	wg.Wait()

	if err := a.out.Result("dns", res, func(w io.Writer, o *diag.Output) { writeDNSText(w, o, res) }); err != nil {
		return err
	}
	if err := dnsExit(res.Queries, explicit); err != nil {
		return err
	}
	// NODATA for one of the default types is a warning: exit 1 with --strict.
	for _, q := range res.Queries {
		if q.Status != "ok" {
			return a.statusExit(diag.Warn)
		}
	}
	return nil
}

func lookupOne(ctx context.Context, env diag.Env, name string, t uint16) dnsQuery {
	q := dnsQuery{Type: dnsx.TypeString(t), Answers: []dnsAnswer{}}
	start := env.Clock()
	resp, err := env.Resolver.Query(ctx, name, t)
	q.ElapsedMS = diag.Millis(env.Clock().Sub(start))
	var de *dnsx.Error
	if errors.As(err, &de) && de.Response != nil {
		resp = de.Response
	}
	if resp != nil {
		q.Rcode = dns.RcodeToString[resp.Rcode]
		q.AD = resp.AD
		q.Server, q.Transport = resp.Server, resp.Transport
		q.EDE = resp.EDE
		for _, c := range resp.Chain {
			q.CNAMEChain = append(q.CNAMEChain, answerOf(c))
		}
		for _, rr := range resp.Records {
			q.Answers = append(q.Answers, answerOf(rr))
		}
	}
	q.err = err
	q.Status, q.Message = describeDNSError(name, q.Type, err)
	return q
}

func answerOf(rr dns.RR) dnsAnswer {
	h := rr.Header()
	return dnsAnswer{Name: h.Name, Type: dnsx.TypeString(h.Rrtype), TTL: h.Ttl, Data: dnsx.RData(rr)}
}

// describeDNSError names the outcome and says what it means for a person.
func describeDNSError(name, typ string, err error) (status, msg string) {
	n := strings.TrimSuffix(name, ".")
	var de *dnsx.Error
	server := "the resolver"
	if errors.As(err, &de) && de.Server != "" {
		server = de.Server
	}
	switch {
	case err == nil:
		return "ok", ""
	case errors.Is(err, dnsx.ErrNXDomain):
		return "nxdomain", fmt.Sprintf("NXDOMAIN: %s does not exist", n)
	case errors.Is(err, dnsx.ErrNoData):
		return "nodata", fmt.Sprintf("NODATA: %s exists but has no %s records", n, typ)
	case errors.Is(err, dnsx.ErrServFail):
		return "servfail", fmt.Sprintf("SERVFAIL: %s could not get an answer for %s — often a DNSSEC validation failure or unreachable authoritative servers; could not check", server, n)
	case errors.Is(err, dnsx.ErrTimeout):
		return "timeout", fmt.Sprintf("timeout: no answer from %s — the resolver is unreachable or the domain's name servers do not answer; could not check", server)
	case errors.Is(err, dnsx.ErrRefused):
		return "refused", fmt.Sprintf("REFUSED: %s will not answer for %s (not a recursive resolver for this client?); could not check", server, n)
	case errors.Is(err, dnsx.ErrUnreachable):
		return "error", fmt.Sprintf("cannot reach %s: %v", server, err)
	}
	return "error", err.Error()
}

// dnsExit: SERVFAIL/timeout anywhere → 3; NXDOMAIN → 1; NODATA for a type
// the user named → 1; for the default set only when no type had records.
func dnsExit(qs []dnsQuery, explicit bool) error {
	anyRecords := false
	var finding error
	for _, q := range qs {
		switch {
		case q.err == nil:
			anyRecords = true
		case dnsx.Temporary(q.err) || !errors.Is(q.err, dnsx.ErrNXDomain) && !errors.Is(q.err, dnsx.ErrNoData):
			return diag.Uncheckedf("%s", q.Message)
		case errors.Is(q.err, dnsx.ErrNXDomain) || explicit:
			finding = diag.Found
		}
	}
	if finding != nil || !anyRecords {
		return diag.Found
	}
	return nil
}

func writeDNSText(w io.Writer, o *diag.Output, res dnsResult) {
	for _, q := range res.Queries {
		flags := []string{}
		if q.Rcode != "" {
			flags = append(flags, q.Rcode)
		}
		if q.AD {
			flags = append(flags, o.Paint("32", "AD (validated)"))
		}
		via := ""
		if q.Server != "" {
			via = fmt.Sprintf(" via %s/%s", q.Server, q.Transport)
		}
		mark := o.Mark(diag.OK)
		switch q.Status {
		case "ok":
		case "nodata", "nxdomain":
			mark = o.Mark(diag.Warn)
		default:
			mark = o.Mark(diag.Fail)
		}
		fmt.Fprintf(w, "%s %s %s  %s%s %s\n", mark, strings.TrimSuffix(res.Queried, "."), q.Type,
			strings.Join(flags, ", "), o.Paint("2", via), o.Paint("2", fmt.Sprintf("%.1f ms", q.ElapsedMS)))
		for _, c := range q.CNAMEChain {
			fmt.Fprintf(w, "       %s  %d  CNAME  %s\n", c.Name, c.TTL, c.Data)
		}
		for _, an := range q.Answers {
			fmt.Fprintf(w, "       %s  %d  %s  %s\n", an.Name, an.TTL, an.Type, an.Data)
		}
		for _, e := range q.EDE {
			fmt.Fprintf(w, "       extended error: %s\n", e)
		}
		if q.Message != "" {
			fmt.Fprintf(w, "       %s\n", q.Message)
		}
	}
}
