package web

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// cgnat is RFC 6598's shared address space, private in all but name.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// reachable reports whether the web admin may connect to a: a global
// unicast address that is not private (RFC 1918, RFC 4193), loopback,
// link-local, CGNAT (RFC 6598) or unspecified. IPv4-mapped IPv6 is judged
// as its IPv4 address.
func reachable(a netip.Addr) bool {
	a = a.Unmap()
	return a.IsValid() && a.IsGlobalUnicast() && !a.IsPrivate() && !a.IsLoopback() &&
		!a.IsLinkLocalUnicast() && !cgnat.Contains(a)
}

// guard is a resolver that fails every answer leading to an address the
// web admin must not reach: A/AAAA answers holding one, and MX records
// naming one as an IP literal (which a sender dials without a lookup).
// Diagnostics dial only addresses they looked up, through the Env's
// resolver or the Dialer's (both are replaced by guard), so the check
// applies to exactly what is dialed — no time of check against time of
// use, whatever the name servers answer the second time.
type guard struct {
	inner dnsx.Resolver

	mu      sync.Mutex
	refused []string // "name → address", in order
}

// guarded returns env with its resolver, and its dialer's, wrapped.
func guarded(env diag.Env) (diag.Env, *guard) {
	g := &guard{inner: env.Resolver}
	env.Resolver = g
	d := *env.Dialer
	d.Resolver = g
	d.Allow = g.allow
	env.Dialer = &d
	return env, g
}

// allow is the Dialer's last word on every address it is about to dial,
// including literals (named by an autoconfig document, say) that never
// went through a lookup.
func (g *guard) allow(a netip.Addr) error {
	if reachable(a) {
		return nil
	}
	g.mu.Lock()
	g.refused = append(g.refused, "connection → "+a.String())
	g.mu.Unlock()
	return fmt.Errorf("%w: %s", ErrPrivateAddress, a)
}

// Query implements dnsx.Resolver.
func (g *guard) Query(ctx context.Context, name string, qtype uint16) (*dnsx.Response, error) {
	resp, err := g.inner.Query(ctx, name, qtype)
	if err != nil || resp == nil {
		return resp, err
	}
	var bad []netip.Addr
	switch qtype {
	case dns.TypeA, dns.TypeAAAA:
		for _, a := range resp.Addrs() {
			if !reachable(a) {
				bad = append(bad, a)
			}
		}
	case dns.TypeMX:
		for _, mx := range resp.MX() {
			if a, err := netip.ParseAddr(strings.TrimSuffix(mx.Mx, ".")); err == nil && !reachable(a) {
				bad = append(bad, a)
			}
		}
	}
	if len(bad) == 0 {
		return resp, nil
	}
	host := strings.TrimSuffix(name, ".")
	g.mu.Lock()
	for _, a := range bad {
		g.refused = append(g.refused, host+" → "+a.String())
	}
	g.mu.Unlock()
	return nil, fmt.Errorf("%w: %s %s has %s", ErrPrivateAddress, host, dnsx.TypeString(qtype), bad[0])
}

// Refused lists what the guard has refused so far.
func (g *guard) Refused() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.refused...)
}
