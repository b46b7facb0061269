package dnsx_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

func startLab(t *testing.T) *lab.DNSServer {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addZone(t *testing.T, s *lab.DNSServer, origin, text string, opts lab.ZoneOptions) {
	t.Helper()
	if err := s.AddZone(origin, text, opts); err != nil {
		t.Fatal(err)
	}
}

func newClient(s *lab.DNSServer) *dnsx.Client {
	c := dnsx.New([]string{s.Addr})
	c.Timeout = 300 * time.Millisecond
	c.Tries = 1
	return c
}

const exampleZone = `
@        MX 10 mx1
@        MX 20 mx2
@        TXT "v=spf1 " "-all"
mx1      A 127.0.0.1
mx1      AAAA ::1
mx2      A 127.0.0.2
www      CNAME alias.other.test.
sub.deep A 127.0.0.9
`

func TestQueryAnswersAndAD(t *testing.T) {
	s := startLab(t)
	addZone(t, s, "example.test", exampleZone, lab.ZoneOptions{AD: true})
	addZone(t, s, "plain.test", "@ MX 0 .\n", lab.ZoneOptions{})
	c := newClient(s)
	ctx := context.Background()

	r, err := c.Query(ctx, "Example.TEST", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mx := range r.MX() {
		got = append(got, fmt.Sprintf("%d %s", mx.Preference, mx.Mx))
	}
	if diff := cmp.Diff([]string{"10 mx1.example.test.", "20 mx2.example.test."}, got); diff != "" {
		t.Errorf("MX (-want +got):\n%s", diff)
	}
	if !r.AD || r.Transport != "udp" || r.TTL() != 300 || r.Name != "example.test." {
		t.Errorf("AD=%v transport=%s ttl=%d name=%s, want AD over udp, ttl 300, example.test.", r.AD, r.Transport, r.TTL(), r.Name)
	}
	txt, err := c.Query(ctx, "example.test", dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"v=spf1 -all"}, txt.TXT()); diff != "" {
		t.Errorf("TXT strings are joined (-want +got):\n%s", diff)
	}
	r, err = c.Query(ctx, "plain.test", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	if r.AD {
		t.Error("AD set for a zone the lab does not mark validated")
	}
}

func TestNegativeAnswersAreDistinct(t *testing.T) {
	s := startLab(t)
	addZone(t, s, "example.test", exampleZone, lab.ZoneOptions{})
	addZone(t, s, "broken.test", "@ A 127.0.0.1\n", lab.ZoneOptions{ServFail: true,
		EDE: &dns.EDNS0_EDE{InfoCode: dns.ExtendedErrorCodeDNSBogus, ExtraText: "signature expired"}})
	addZone(t, s, "silent.test", "@ A 127.0.0.1\n", lab.ZoneOptions{Drop: true})
	c := newClient(s)
	ctx := context.Background()

	tests := []struct {
		name      string
		qtype     uint16
		want      error
		temporary bool
		contains  string
	}{
		{"nope.example.test", dns.TypeA, dnsx.ErrNXDomain, false, "NXDOMAIN"},
		{"mx1.example.test", dns.TypeMX, dnsx.ErrNoData, false, "NODATA"},
		{"deep.example.test", dns.TypeA, dnsx.ErrNoData, false, "NODATA"}, // empty non-terminal
		{"broken.test", dns.TypeA, dnsx.ErrServFail, true, "DNSSEC Bogus: signature expired"},
		{"silent.test", dns.TypeA, dnsx.ErrTimeout, true, "timeout"},
		{"outside.invalid", dns.TypeA, dnsx.ErrRefused, true, "REFUSED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Query(ctx, tc.name, tc.qtype)
			if r != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Query = %v, %v; want nil and %v", r, err, tc.want)
			}
			if dnsx.Temporary(err) != tc.temporary {
				t.Errorf("Temporary(%v) = %v, want %v", err, !tc.temporary, tc.temporary)
			}
			if !strings.Contains(err.Error(), tc.contains) {
				t.Errorf("error %q does not say %q", err, tc.contains)
			}
		})
	}
}

func TestTruncationRetriesOverTCP(t *testing.T) {
	s := startLab(t)
	addZone(t, s, "tc.test", "@ A 127.0.0.7\n", lab.ZoneOptions{Truncate: true})
	// A genuinely large answer also overflows the 1232-byte EDNS0 buffer.
	var big strings.Builder
	for i := range 40 {
		fmt.Fprintf(&big, "@ TXT \"record number %02d with some padding to make the answer large\"\n", i)
	}
	addZone(t, s, "big.test", big.String(), lab.ZoneOptions{})
	c := newClient(s)
	var trace []dnsx.TraceEvent
	var mu sync.Mutex
	c.Trace = func(e dnsx.TraceEvent) { mu.Lock(); trace = append(trace, e); mu.Unlock() }

	r, err := c.Query(context.Background(), "tc.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transport != "tcp" || len(r.Addrs()) != 1 || r.Addrs()[0] != netip.MustParseAddr("127.0.0.7") {
		t.Errorf("got %v over %s, want 127.0.0.7 over tcp", r.Addrs(), r.Transport)
	}
	if len(trace) != 2 || !trace[0].Truncated || trace[0].Transport != "udp" || trace[1].Transport != "tcp" {
		t.Errorf("trace = %+v, want a truncated udp exchange then tcp", trace)
	}
	r, err = c.Query(context.Background(), "big.test", dns.TypeTXT)
	if err != nil {
		t.Fatal(err)
	}
	if r.Transport != "tcp" || len(r.TXT()) != 40 {
		t.Errorf("got %d TXT over %s, want 40 over tcp", len(r.TXT()), r.Transport)
	}
}

func TestCNAMEChain(t *testing.T) {
	s := startLab(t)
	addZone(t, s, "example.test", exampleZone, lab.ZoneOptions{AD: true})
	addZone(t, s, "other.test", "alias CNAME final.third.test.\n", lab.ZoneOptions{AD: true})
	addZone(t, s, "third.test", "final A 127.0.0.3\n", lab.ZoneOptions{})
	addZone(t, s, "loop.test", "a CNAME b\nb CNAME a\n", lab.ZoneOptions{})
	c := newClient(s)

	r, err := c.Query(context.Background(), "www.example.test", dns.TypeA)
	if err != nil {
		t.Fatal(err)
	}
	var chain []string
	for _, cn := range r.Chain {
		chain = append(chain, cn.Hdr.Name+" -> "+cn.Target)
	}
	want := []string{"www.example.test. -> alias.other.test.", "alias.other.test. -> final.third.test."}
	if diff := cmp.Diff(want, chain); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
	if r.Final() != "final.third.test." || len(r.Addrs()) != 1 {
		t.Errorf("final %s addrs %v", r.Final(), r.Addrs())
	}
	if r.AD {
		t.Error("AD must be false when one link of the chain was not validated")
	}
	if _, err := c.Query(context.Background(), "a.loop.test", dns.TypeA); !errors.Is(err, dnsx.ErrCNAMELoop) {
		t.Errorf("CNAME loop: got %v, want ErrCNAMELoop", err)
	}
}

func TestCacheAndSingleflight(t *testing.T) {
	s := startLab(t)
	addZone(t, s, "example.test", exampleZone, lab.ZoneOptions{})
	addZone(t, s, "slow.test", "@ A 127.0.0.5\n", lab.ZoneOptions{Latency: 150 * time.Millisecond})
	c := newClient(s)
	c.Timeout = 2 * time.Second
	ctx := context.Background()

	if _, err := c.Query(ctx, "example.test", dns.TypeMX); err != nil {
		t.Fatal(err)
	}
	r, err := c.Query(ctx, "EXAMPLE.test.", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Cached || c.Exchanges() != 1 {
		t.Errorf("second query: cached=%v exchanges=%d, want a cache hit and 1 exchange", r.Cached, c.Exchanges())
	}
	// Negative answers are cached too (RFC 2308).
	for range 2 {
		if _, err := c.Query(ctx, "nope.example.test", dns.TypeA); !errors.Is(err, dnsx.ErrNXDomain) {
			t.Fatal(err)
		}
	}
	if c.Exchanges() != 2 {
		t.Errorf("exchanges = %d after a repeated NXDOMAIN, want 2", c.Exchanges())
	}

	before := s.Queries()
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := c.Query(ctx, "slow.test", dns.TypeA)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Queries() - before; n != 1 {
		t.Errorf("20 concurrent identical queries reached the server %d times, want 1", n)
	}
}

func TestFailoverToSecondServer(t *testing.T) {
	good := startLab(t)
	addZone(t, good, "example.test", exampleZone, lab.ZoneOptions{})
	dead := startLab(t)
	addZone(t, dead, "example.test", exampleZone, lab.ZoneOptions{Drop: true})
	c := dnsx.New([]string{dead.Addr, good.Addr})
	c.Timeout = 200 * time.Millisecond
	c.Tries = 1
	r, err := c.Query(context.Background(), "example.test", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	if r.Server != good.Addr {
		t.Errorf("answered by %s, want %s", r.Server, good.Addr)
	}
}

func TestIPv6Resolver(t *testing.T) {
	s, err := lab.StartDNS("[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addZone(t, s, "example.test", exampleZone, lab.ZoneOptions{})
	srv, err := dnsx.ParseServer(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	r, err := dnsx.New([]string{srv}).Query(context.Background(), "mx1.example.test", dns.TypeAAAA)
	if err != nil {
		t.Fatal(err)
	}
	if r.Server != s.Addr || len(r.Addrs()) != 1 || r.Addrs()[0] != netip.MustParseAddr("::1") {
		t.Errorf("over IPv6: server %s, addrs %v", r.Server, r.Addrs())
	}
}

func TestDeadlineBoundsTries(t *testing.T) {
	s := startLab(t)
	addZone(t, s, "silent.test", "@ A 127.0.0.1\n", lab.ZoneOptions{Drop: true})
	c := dnsx.New([]string{s.Addr}) // 3 s × 2 tries by default
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := c.Query(ctx, "silent.test", dns.TypeA)
	if !errors.Is(err, dnsx.ErrTimeout) {
		t.Fatalf("got %v, want ErrTimeout", err)
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"127.0.0.1", "127.0.0.1:53", ""},
		{"127.0.0.1:5353", "127.0.0.1:5353", ""},
		{"::1", "[::1]:53", ""},
		{"[::1]", "[::1]:53", ""},
		{"[::1]:5300", "[::1]:5300", ""},
		{"ns.example:53", "ns.example:53", ""},
		{"127.0.0.1:0", "", "bad port"},
		{"127.0.0.1:x", "", "bad port"},
		{"", "", "empty"},
		{"[::1", "", "want HOST"},
	}
	for _, tc := range tests {
		got, err := dnsx.ParseServer(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseServer(%q) = %q, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseServer(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestConnectMap(t *testing.T) {
	m, err := dnsx.ParseConnectMap("25=127.0.0.1:2525, 443=:8443,587=[::1]:2587")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ in, want string }{
		{"192.0.2.1:25", "127.0.0.1:2525"},
		{"127.0.0.3:443", "127.0.0.3:8443"},
		{"192.0.2.1:587", "[::1]:2587"},
		{"192.0.2.1:993", "192.0.2.1:993"},
	}
	for _, tc := range tests {
		if got := m.Apply(tc.in); got != tc.want {
			t.Errorf("Apply(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if got := m.String(); got != "25=127.0.0.1:2525,443=:8443,587=[::1]:2587" {
		t.Errorf("String() = %s", got)
	}
	for _, bad := range []string{"25", "x=1.2.3.4:1", "25=host.example:25", "25=1.2.3.4", "25=:0", "70000=:1"} {
		if _, err := dnsx.ParseConnectMap(bad); err == nil {
			t.Errorf("ParseConnectMap(%q) accepted", bad)
		}
	}
}

func TestDialerAllowRefusesBeforeConnecting(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	errPrivate := errors.New("private")
	var asked []netip.Addr
	d := &dnsx.Dialer{Timeout: time.Second, Allow: func(a netip.Addr) error {
		asked = append(asked, a)
		if a.IsLoopback() {
			return errPrivate
		}
		return nil
	}}
	// A literal never goes through a lookup: the hook still sees it.
	if _, err := d.DialContext(context.Background(), "tcp", ln.Addr().String()); !errors.Is(err, errPrivate) {
		t.Fatalf("dial of a refused literal: %v", err)
	}
	if len(asked) != 1 || !asked[0].IsLoopback() {
		t.Errorf("Allow asked about %v", asked)
	}
	select {
	case <-accepted:
		t.Error("the refused address was connected to")
	case <-time.After(100 * time.Millisecond):
	}
}

func TestDialerResolvesThroughResolverAndMaps(t *testing.T) {
	s := startLab(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello\n"))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	addZone(t, s, "example.test", exampleZone, lab.ZoneOptions{})
	cm, _ := dnsx.ParseConnectMap("25=:" + port)
	d := &dnsx.Dialer{Resolver: newClient(s), ConnectMap: cm, Timeout: time.Second, Network: "tcp4"}
	conn, err := d.DialContext(context.Background(), "tcp", "mx1.example.test:25")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := conn.Read(buf); err != nil || string(buf) != "hello\n" {
		t.Errorf("read %q, %v", buf, err)
	}
	conn.Close()

	// Nothing listens on port 1 of 127.0.0.1: refused, classified.
	_, err = (&dnsx.Dialer{Timeout: time.Second}).DialContext(context.Background(), "tcp", "127.0.0.1:1")
	if !errors.Is(err, dnsx.ErrConnRefused) {
		t.Errorf("dial closed port: %v, want ErrConnRefused", err)
	}
	_, err = d.DialContext(context.Background(), "tcp", "nope.example.test:25")
	if !errors.Is(err, dnsx.ErrNXDomain) {
		t.Errorf("dial unknown host: %v, want ErrNXDomain", err)
	}
}
