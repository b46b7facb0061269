package lab_test

import (
	"context"
	"errors"
	"testing"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// TestWorldDANE: with its servers, the World runs a validating unbound
// that earns the AD bit for the DANE scenarios, refuses the bogus one,
// and the plain lab DNS serves the same records without the AD bit.
func TestWorldDANE(t *testing.T) {
	ctx := context.Background()
	w, err := lab.StartWorld(ctx, lab.WorldOptions{Servers: true})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Unbound == nil || len(w.DANE) != 3 {
		t.Fatalf("unbound %v, DANE scenarios %v", w.Unbound, w.DANE)
	}
	validating, plain := dnsx.New([]string{w.Unbound.Addr}), dnsx.New([]string{w.DNS.Addr})
	for _, c := range []struct {
		client *dnsx.Client
		name   string
		ad     bool
		err    error
	}{
		{validating, "_25._tcp.mx.dane.test", true, nil},
		{validating, "_25._tcp.mx.dane-bad.test", true, nil},
		{validating, "_25._tcp.mx.dane-bogus.test", false, dnsx.ErrServFail},
		{plain, "_25._tcp.mx.dane.test", false, nil},
		{plain, "_25._tcp.mx.dane-bogus.test", false, nil},
	} {
		r, err := c.client.Query(ctx, c.name, dns.TypeTLSA)
		if c.err != nil {
			if !errors.Is(err, c.err) {
				t.Errorf("%s: error %v, want %v", c.name, err, c.err)
			}
			continue
		}
		if err != nil || len(r.Records) != 1 || r.AD != c.ad {
			t.Errorf("%s: %v, AD %v, want one record with AD %v", c.name, err, r != nil && r.AD, c.ad)
		}
	}
	// The other scenarios still resolve through unbound.
	if r, err := validating.Query(ctx, "mx1.example.test", dns.TypeA); err != nil || len(r.Addrs()) != 1 {
		t.Errorf("mx1.example.test through unbound: %v", err)
	}
}
