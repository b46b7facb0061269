package dnsx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// Dial errors, so that a diagnostic can tell a closed port from a filtered
// one (RFC-free, but the first question of every mail admin).
var (
	ErrConnRefused     = errors.New("dnsx: connection refused (nothing listens on the port, or a firewall rejects)")
	ErrConnTimeout     = errors.New("dnsx: connection timed out (a firewall drops the packets, or the host is down)")
	ErrHostUnreachable = errors.New("dnsx: host or network unreachable (no route)")
	ErrNoAddress       = errors.New("dnsx: host name has no address")
)

// ClassifyDial maps a dial error onto ErrConnRefused, ErrConnTimeout or
// ErrHostUnreachable, wrapping the original; other errors pass unchanged.
func ClassifyDial(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	switch {
	case errors.Is(err, ErrConnRefused) || errors.Is(err, ErrConnTimeout) || errors.Is(err, ErrHostUnreachable):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %w", ErrConnRefused, err)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%w: %w", ErrHostUnreachable, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%w: %w", ErrConnTimeout, err)
	}
	return err
}

// ConnectMap redirects outgoing connections by destination port, so that
// the lab and the tests can stand in for "port 25 of the MX" without owning
// port 25. An entry maps a port either to a fixed HOST:PORT (every
// connection to that port goes there) or to :PORT (same address, other
// port).
type ConnectMap map[int]string

// ParseConnectMap reads "25=127.0.0.1:2525,443=:8443".
func ParseConnectMap(s string) (ConnectMap, error) {
	m := ConnectMap{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		port, err := strconv.Atoi(strings.TrimSpace(k))
		if !ok || err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("dnsx: connect map entry %q: want PORT=HOST:PORT or PORT=:PORT", item)
		}
		v = strings.TrimSpace(v)
		host, p, err := net.SplitHostPort(v)
		if err != nil {
			return nil, fmt.Errorf("dnsx: connect map entry %q: %v", item, err)
		}
		if n, err := strconv.Atoi(p); err != nil || n <= 0 || n > 65535 {
			return nil, fmt.Errorf("dnsx: connect map entry %q: bad port %q", item, p)
		}
		if host != "" {
			if _, err := netip.ParseAddr(host); err != nil {
				return nil, fmt.Errorf("dnsx: connect map entry %q: target must be an IP address", item)
			}
		}
		m[port] = v
	}
	return m, nil
}

// String gives the map back in the form ParseConnectMap reads, ports in order.
func (m ConnectMap) String() string {
	ports := make([]int, 0, len(m))
	for p := range m {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	var parts []string
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%d=%s", p, m[p]))
	}
	return strings.Join(parts, ",")
}

// Apply returns the address to dial instead of addr (an IP:port).
func (m ConnectMap) Apply(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	p, _ := strconv.Atoi(port)
	to, ok := m[p]
	if !ok {
		return addr
	}
	th, tp, _ := net.SplitHostPort(to)
	if th == "" {
		th = host
	}
	return net.JoinHostPort(th, tp)
}

// Dialer makes every outgoing TCP connection of mxray. Host names are
// resolved through Resolver (never the system resolver), addresses are
// tried in order, and the ConnectMap is applied last.
type Dialer struct {
	Resolver   Resolver
	ConnectMap ConnectMap
	// Timeout bounds one connection attempt; the context bounds the whole.
	Timeout time.Duration
	// Network restricts name resolution: "tcp4", "tcp6" or "tcp" (both).
	Network string
	// Allow, when set, is asked about every address about to be dialed,
	// looked up or given as a literal, before the connect map: an error
	// refuses the connection. The web admin uses it to keep its
	// troubleshooters out of private networks.
	Allow func(netip.Addr) error
}

// DialContext connects to address (HOST:PORT). A host name is looked up
// (A and AAAA) through the Dialer's Resolver and each address tried in turn;
// the error of the last attempt is returned, classified by ClassifyDial.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		if d.Resolver == nil {
			return nil, fmt.Errorf("dnsx: dial %s: no resolver", address)
		}
		ips, err := LookupIP(ctx, d.Resolver, host, familyOf(d.Network, network))
		if err != nil {
			return nil, err
		}
		addrs = ips.Addrs
	}
	var last error
	for _, a := range addrs {
		c, err := d.DialAddr(ctx, netip.AddrPortFrom(a, mustPort(port)))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// DialAddr connects to one address, applying the connect map.
func (d *Dialer) DialAddr(ctx context.Context, ap netip.AddrPort) (net.Conn, error) {
	if d.Allow != nil {
		if err := d.Allow(ap.Addr()); err != nil {
			return nil, err
		}
	}
	target := d.ConnectMap.Apply(ap.String())
	nd := net.Dialer{Timeout: d.Timeout}
	c, err := nd.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, ClassifyDial(err)
	}
	return c, nil
}

func mustPort(p string) uint16 {
	n, _ := strconv.ParseUint(p, 10, 16)
	return uint16(n)
}

func familyOf(restrict, network string) Family {
	for _, n := range []string{restrict, network} {
		switch n {
		case "tcp4":
			return IPv4
		case "tcp6":
			return IPv6
		}
	}
	return IPv4 | IPv6
}

// Family selects the address families of a lookup.
type Family int

const (
	IPv4 Family = 1 << iota // A records
	IPv6                    // AAAA records
)

// IPResult is the outcome of looking up both address families of a name.
type IPResult struct {
	Addrs []netip.Addr // IPv4 first, then IPv6
	A     *Response
	AAAA  *Response
	ErrA  error // nil, or the A lookup's error
	Err6  error // nil, or the AAAA lookup's error
	AD    bool  // every answer was validated
}

// LookupIP looks up A and AAAA in parallel. It fails only when no address
// was found: with the more telling of the two errors (a temporary failure
// wins over NODATA, so a broken server is not mistaken for "no address").
func LookupIP(ctx context.Context, r Resolver, host string, fam Family) (*IPResult, error) {
	res := &IPResult{AD: true}
	var wg sync.WaitGroup
	if fam&IPv4 != 0 {
		wg.Go(func() { res.A, res.ErrA = r.Query(ctx, host, dns.TypeA) })
	}
	if fam&IPv6 != 0 {
		wg.Go(func() { res.AAAA, res.Err6 = r.Query(ctx, host, dns.TypeAAAA) })
	}
	wg.Wait()
	for _, resp := range []*Response{res.A, res.AAAA} {
		if resp != nil {
			res.Addrs = append(res.Addrs, resp.Addrs()...)
			res.AD = res.AD && resp.AD
		}
	}
	if len(res.Addrs) > 0 {
		return res, nil
	}
	for _, err := range []error{res.ErrA, res.Err6} {
		if err != nil && Temporary(err) {
			return res, err
		}
	}
	for _, err := range []error{res.ErrA, res.Err6} {
		if err != nil && errors.Is(err, ErrNXDomain) {
			return res, err
		}
	}
	if res.ErrA != nil {
		return res, fmt.Errorf("%w: %w", ErrNoAddress, res.ErrA)
	}
	if res.Err6 != nil {
		return res, fmt.Errorf("%w: %w", ErrNoAddress, res.Err6)
	}
	return res, fmt.Errorf("%w: %s", ErrNoAddress, host)
}
