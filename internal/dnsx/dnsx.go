// Package dnsx is the one DNS resolver every part of mxray uses (RFC 1035,
// EDNS0 per RFC 6891, extended DNS errors per RFC 8914), built on
// github.com/miekg/dns. It asks recursive servers over UDP with EDNS0 and
// the DO bit, retries over TCP when an answer is truncated, reports the AD
// flag, the rcode (NXDOMAIN, NODATA and SERVFAIL are different findings),
// extended errors, TTLs and timing, follows CNAME chains, caches per run with
// concurrent identical queries collapsed into one, and calls a trace hook
// for every exchange so that `--log-level trace` can show each query.
//
// It also holds the Dialer through which mxray makes every outgoing
// connection: it resolves host names through the Resolver and applies the
// connect map used by the lab and the tests.
//
// Not supported: DNSSEC validation of its own (mxray trusts the AD bit of a
// validating resolver, RFC 6698 §4.1 / RFC 7672 §2.1), DNS over TLS/HTTPS,
// search domains from resolv.conf (every name is taken as fully qualified).
package dnsx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver answers DNS questions. Query returns the answer for name and
// qtype, or an *Error that wraps one of the sentinel errors below.
type Resolver interface {
	Query(ctx context.Context, name string, qtype uint16) (*Response, error)
}

// Sentinel errors, each wrapped by *Error. Test with errors.Is.
var (
	ErrNXDomain    = errors.New("dnsx: no such domain (NXDOMAIN)")
	ErrNoData      = errors.New("dnsx: no records of this type (NODATA)")
	ErrServFail    = errors.New("dnsx: server failure (SERVFAIL)")
	ErrRefused     = errors.New("dnsx: query refused (REFUSED)")
	ErrTimeout     = errors.New("dnsx: no answer before the timeout")
	ErrUnreachable = errors.New("dnsx: resolver unreachable")
	ErrRcode       = errors.New("dnsx: unexpected rcode")
	ErrCNAMELoop   = errors.New("dnsx: CNAME chain too long or looping")
	ErrBadName     = errors.New("dnsx: invalid domain name")
	ErrNoServers   = errors.New("dnsx: no resolver configured")
)

// Error is a failed lookup with its evidence.
type Error struct {
	Name   string // the name asked, fully qualified
	Type   uint16
	Server string // the last server asked, host:port
	Err    error  // one of the sentinel errors
	Cause  error  // the underlying network error, if any
	// Response is the server's answer when there was one (NXDOMAIN, NODATA,
	// SERVFAIL): its SOA, AD flag and extended errors are evidence too.
	Response *Response
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "lookup %s %s", strings.TrimSuffix(e.Name, "."), TypeString(e.Type))
	if e.Server != "" {
		fmt.Fprintf(&b, " via %s", e.Server)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	if e.Response != nil {
		for _, x := range e.Response.EDE {
			fmt.Fprintf(&b, " [%s]", x)
		}
	}
	if e.Cause != nil {
		fmt.Fprintf(&b, " (%v)", e.Cause)
	}
	return b.String()
}

// Unwrap lets errors.Is see both the sentinel and the network cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Err, e.Cause}
	}
	return []error{e.Err}
}

// Temporary reports whether a retry later may give another answer: the
// difference between "this name has no such record" (a finding) and "could
// not check".
func (e *Error) Temporary() bool { return Temporary(e) }

// Temporary reports whether err is a DNS failure that a later retry may
// resolve (SERVFAIL, timeout, unreachable or refusing resolver), as opposed
// to a definite answer (NXDOMAIN, NODATA).
func Temporary(err error) bool {
	return errors.Is(err, ErrServFail) || errors.Is(err, ErrTimeout) ||
		errors.Is(err, ErrUnreachable) || errors.Is(err, ErrRefused) ||
		errors.Is(err, ErrRcode) || errors.Is(err, ErrNoServers)
}

// Response is a successful answer, with its evidence.
type Response struct {
	Name  string // the name asked, fully qualified
	Type  uint16
	Rcode int
	// AD is true when the resolver validated every answer in the chain
	// with DNSSEC (RFC 4035 §3.2.3).
	AD bool
	// Records are the answer's records of the asked type (owned by the
	// last name of the CNAME chain).
	Records []dns.RR
	// Chain lists the CNAME records followed from Name, in order.
	Chain []*dns.CNAME
	// Authority holds the SOA of a negative answer.
	Authority []dns.RR
	EDE       []ExtendedError
	Server    string // host:port of the server that answered
	Transport string // "udp" or "tcp"
	Elapsed   time.Duration
	Cached    bool
}

// Final returns the name the records belong to: Name, or the last CNAME
// target.
func (r *Response) Final() string {
	if len(r.Chain) == 0 {
		return r.Name
	}
	return r.Chain[len(r.Chain)-1].Target
}

// TTL returns the smallest TTL of the records (0 when there are none).
func (r *Response) TTL() uint32 {
	var min uint32
	for i, rr := range r.Records {
		if t := rr.Header().Ttl; i == 0 || t < min {
			min = t
		}
	}
	return min
}

// MX returns the MX records, in the order received.
func (r *Response) MX() []*dns.MX { return typed[*dns.MX](r.Records) }

// TXT returns each TXT record as one string: its character-strings
// concatenated, as RFC 7208 §3.3 and RFC 6376 §3.6.2.2 require.
func (r *Response) TXT() []string {
	var out []string
	for _, t := range typed[*dns.TXT](r.Records) {
		out = append(out, strings.Join(t.Txt, ""))
	}
	return out
}

// Addrs returns the A and AAAA addresses of the answer.
func (r *Response) Addrs() []netip.Addr {
	var out []netip.Addr
	for _, rr := range r.Records {
		var ip net.IP
		switch v := rr.(type) {
		case *dns.A:
			ip = v.A
		case *dns.AAAA:
			ip = v.AAAA
		default:
			continue
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// Names returns the target names of PTR, NS and CNAME records.
func (r *Response) Names() []string {
	var out []string
	for _, rr := range r.Records {
		switch v := rr.(type) {
		case *dns.PTR:
			out = append(out, v.Ptr)
		case *dns.NS:
			out = append(out, v.Ns)
		case *dns.CNAME:
			out = append(out, v.Target)
		}
	}
	return out
}

func typed[T dns.RR](rrs []dns.RR) []T {
	var out []T
	for _, rr := range rrs {
		if v, ok := rr.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// ExtendedError is an RFC 8914 extended DNS error from the answer.
type ExtendedError struct {
	Code uint16 `json:"code"`
	Text string `json:"text,omitempty"`
}

func (e ExtendedError) String() string {
	name := dns.ExtendedErrorCodeToString[e.Code]
	if name == "" {
		name = "EDE " + strconv.Itoa(int(e.Code))
	}
	if e.Text != "" {
		return name + ": " + e.Text
	}
	return name
}

// TypeString names a record type ("MX"), or TYPEnnn for unknown ones.
func TypeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return "TYPE" + strconv.Itoa(int(t))
}

// ParseType reads a record type name such as "mx" or "TYPE52".
func ParseType(s string) (uint16, error) {
	u := strings.ToUpper(s)
	if t, ok := dns.StringToType[u]; ok {
		return t, nil
	}
	if n, ok := strings.CutPrefix(u, "TYPE"); ok {
		if v, err := strconv.ParseUint(n, 10, 16); err == nil {
			return uint16(v), nil
		}
	}
	return 0, fmt.Errorf("dnsx: unknown record type %q", s)
}

// Fqdn checks a domain name and returns it fully qualified and lower case.
func Fqdn(name string) (string, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	if n == "" || n == "." {
		if n == "." {
			return ".", nil
		}
		return "", fmt.Errorf("%w: empty name", ErrBadName)
	}
	if _, ok := dns.IsDomainName(n); !ok {
		return "", fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return dns.Fqdn(n), nil
}

// ReverseName returns the in-addr.arpa or ip6.arpa name of an address
// (RFC 1035 §3.5, RFC 3596 §2.5).
func ReverseName(ip netip.Addr) string {
	n, _ := dns.ReverseAddr(ip.Unmap().String())
	return n
}

// ParseServer reads a resolver address as given to --resolver: HOST or
// HOST:PORT, IPv6 in brackets when a port is given, port 53 by default.
func ParseServer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("dnsx: empty resolver address")
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil {
			return "", fmt.Errorf("dnsx: resolver %q: %w", s, err)
		}
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", fmt.Errorf("dnsx: resolver %q: want HOST or HOST:PORT (IPv6 in brackets)", s)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", fmt.Errorf("dnsx: resolver %q: bad port %q", s, port)
	}
	if host == "" {
		return "", fmt.Errorf("dnsx: resolver %q: missing host", s)
	}
	return net.JoinHostPort(host, port), nil
}

// SystemServers returns the name servers of a resolv.conf file.
func SystemServers(path string) ([]string, error) {
	cfg, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("dnsx: reading %s: %w", path, err)
	}
	var out []string
	for _, s := range cfg.Servers {
		out = append(out, net.JoinHostPort(s, cfg.Port))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %s lists no nameserver", ErrNoServers, path)
	}
	return out, nil
}
