// Package dnsxtest holds an in-memory dnsx.Resolver for unit tests that
// need DNS answers without a server (tier 1 of the test convention); tests
// that need a real server use the lab's DNS server instead.
package dnsxtest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Fake answers from records given as master-file lines: NXDOMAIN for a
// name with no records and nothing below it, NODATA for one that exists
// without the asked type, SERVFAIL for the names given as failing. Every
// question is recorded in Asked as "name TYPE".
type Fake struct {
	rrs  []dns.RR
	fail map[string]bool

	mu    sync.Mutex
	Asked []string
}

// New parses zone (one record per line, absolute names) and marks the
// names in fail as answering SERVFAIL.
func New(t testing.TB, zone string, fail ...string) *Fake {
	t.Helper()
	f := &Fake{fail: map[string]bool{}}
	for _, line := range strings.Split(zone, "\n") {
		if line = strings.TrimSpace(line); line == "" {
			continue
		}
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		rr.Header().Name = strings.ToLower(rr.Header().Name)
		f.rrs = append(f.rrs, rr)
	}
	for _, n := range fail {
		f.fail[dns.Fqdn(strings.ToLower(n))] = true
	}
	return f
}

// Env returns a diag.Env whose resolver is f.
func (f *Fake) Env() diag.Env { return diag.Env{Resolver: f} }

// Query implements dnsx.Resolver.
func (f *Fake) Query(_ context.Context, name string, qtype uint16) (*dnsx.Response, error) {
	name = dns.Fqdn(strings.ToLower(name))
	f.mu.Lock()
	f.Asked = append(f.Asked, strings.TrimSuffix(name, ".")+" "+dnsx.TypeString(qtype))
	f.mu.Unlock()
	if f.fail[name] {
		return nil, &dnsx.Error{Name: name, Type: qtype, Err: dnsx.ErrServFail}
	}
	resp := &dnsx.Response{Name: name, Type: qtype}
	exists := false
	for _, rr := range f.rrs {
		h := rr.Header()
		if h.Name == name {
			exists = true
			if h.Rrtype == qtype {
				resp.Records = append(resp.Records, rr)
			}
		} else if strings.HasSuffix(h.Name, "."+name) {
			exists = true
		}
	}
	switch {
	case len(resp.Records) > 0:
		return resp, nil
	case exists:
		return nil, &dnsx.Error{Name: name, Type: qtype, Err: dnsx.ErrNoData, Response: resp}
	}
	return nil, &dnsx.Error{Name: name, Type: qtype, Err: dnsx.ErrNXDomain, Response: resp}
}
