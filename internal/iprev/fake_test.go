package iprev

import (
	"context"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// fakeDNS answers from records given as master-file lines; names listed in
// fail answer SERVFAIL. Every question is counted.
type fakeDNS struct {
	rrs   []dns.RR
	fail  map[string]bool
	asked []string
}

func newFake(t *testing.T, zone string, fail ...string) *fakeDNS {
	t.Helper()
	f := &fakeDNS{fail: map[string]bool{}}
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
		f.fail[dns.Fqdn(n)] = true
	}
	return f
}

func (f *fakeDNS) Query(_ context.Context, name string, qtype uint16) (*dnsx.Response, error) {
	name = strings.ToLower(name)
	f.asked = append(f.asked, strings.TrimSuffix(name, ".")+" "+dnsx.TypeString(qtype))
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

func envOf(r dnsx.Resolver) diag.Env { return diag.Env{Resolver: r} }
