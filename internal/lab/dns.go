// Package lab is mxray's local test world, also offered to users as
// `mxray lab`: a DNS server on loopback answering from zone-file text
// (RFC 1035 §5 master format) with injectable faults, a test certificate
// authority and HTTPS server, launchers for real Postfix, Dovecot and
// unbound (Debian's packages) on loopback and high ports, and the scenario
// domains every command can be tried against offline.
//
// Nothing here touches /etc/postfix, /etc/dovecot or the network beyond
// 127.0.0.0/8.
package lab

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// ZoneOptions are the behaviours of one zone of the lab's DNS server.
type ZoneOptions struct {
	// AD marks every answer from the zone as DNSSEC-validated, as a
	// validating resolver would (unit tests; for an AD bit a resolver
	// earned, see Unbound).
	AD bool
	// Latency delays every answer.
	Latency time.Duration
	// ServFail answers SERVFAIL; EDE adds an RFC 8914 extended error.
	ServFail bool
	EDE      *dns.EDNS0_EDE
	// Drop never answers, so clients time out.
	Drop bool
	// Truncate answers every UDP query with TC set and no records, forcing
	// clients over to TCP.
	Truncate bool
}

// Zone is one zone the DNS server answers for.
type Zone struct {
	Origin string // fully qualified, lower case
	Opts   ZoneOptions
	soa    *dns.SOA
	names  map[string][]dns.RR // owner (lower case) → records
}

// DNSServer is an authoritative-and-recursive-looking DNS server for the
// lab: it answers every question from its zones (chasing CNAMEs across
// them, as a recursive resolver would), on UDP and TCP at one address.
type DNSServer struct {
	Addr string // host:port of both listeners

	mu      sync.RWMutex
	zones   map[string]*Zone
	udp     *dns.Server
	tcp     *dns.Server
	queries atomic.Int64
}

// StartDNS starts a server on addr ("127.0.0.1:0" picks a free port, the
// same for UDP and TCP).
func StartDNS(addr string) (*DNSServer, error) {
	s := &DNSServer{zones: map[string]*Zone{}}
	var pc net.PacketConn
	var ln net.Listener
	var err error
	// Find a port free for both UDP and TCP.
	for range 20 {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("lab: dns listen udp %s: %w", addr, err)
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if !strings.HasSuffix(addr, ":0") {
			return nil, fmt.Errorf("lab: dns listen tcp %s: %w", addr, err)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("lab: dns listen: %w", err)
	}
	s.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	var wg sync.WaitGroup
	wg.Add(2)
	s.udp.NotifyStartedFunc = wg.Done
	s.tcp.NotifyStartedFunc = wg.Done
	go s.udp.ActivateAndServe()
	go s.tcp.ActivateAndServe()
	wg.Wait()
	return s, nil
}

// Close stops both listeners.
func (s *DNSServer) Close() error {
	s.udp.Shutdown()
	s.tcp.Shutdown()
	return nil
}

// Queries returns how many questions the server has received.
func (s *DNSServer) Queries() int64 { return s.queries.Load() }

// AddZone loads a zone from master-file text. Records without a TTL get
// 300 s; relative names are under origin. A zone without SOA gets one.
// Adding a zone that exists replaces it.
func (s *DNSServer) AddZone(origin, text string, opts ZoneOptions) error {
	z, err := ParseZone(origin, text)
	if err != nil {
		return err
	}
	z.Opts = opts
	s.mu.Lock()
	s.zones[z.Origin] = z
	s.mu.Unlock()
	return nil
}

// SetOptions changes the behaviour of a loaded zone.
func (s *DNSServer) SetOptions(origin string, opts ZoneOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	z, ok := s.zones[strings.ToLower(dns.Fqdn(origin))]
	if !ok {
		return fmt.Errorf("lab: no zone %s", origin)
	}
	z.Opts = opts
	return nil
}

// Zones lists the loaded zones' origins, sorted.
func (s *DNSServer) Zones() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []string
	for o := range s.zones {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// ParseZone reads master-file text into a Zone.
func ParseZone(origin, text string) (*Zone, error) {
	origin = strings.ToLower(dns.Fqdn(origin))
	z := &Zone{Origin: origin, names: map[string][]dns.RR{}}
	zp := dns.NewZoneParser(strings.NewReader(text), origin, "")
	zp.SetDefaultTTL(300)
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		h := rr.Header()
		h.Name = strings.ToLower(h.Name)
		if !dns.IsSubDomain(origin, h.Name) {
			return nil, fmt.Errorf("lab: zone %s: record %s is outside the zone", origin, h.Name)
		}
		if soa, ok := rr.(*dns.SOA); ok && h.Name == origin {
			z.soa = soa
			continue
		}
		z.names[h.Name] = append(z.names[h.Name], rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("lab: zone %s: %w", origin, err)
	}
	if z.soa == nil {
		// The root zone's made-up server names must not become "ns..".
		apex := origin
		if apex == "." {
			apex = "lab."
		}
		z.soa = &dns.SOA{
			Hdr: dns.RR_Header{Name: origin, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 300},
			Ns:  "ns." + apex, Mbox: "hostmaster." + apex,
			Serial: 1, Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 60,
		}
	}
	return z, nil
}

// Records returns every record of the zone (SOA first), for signing and
// for writing the zone out.
func (z *Zone) Records() []dns.RR {
	out := []dns.RR{z.soa}
	owners := make([]string, 0, len(z.names))
	for n := range z.names {
		owners = append(owners, n)
	}
	sort.Strings(owners)
	for _, n := range owners {
		out = append(out, z.names[n]...)
	}
	return out
}

// zoneFor returns the zone with the longest origin that contains name.
func (s *DNSServer) zoneFor(name string) *Zone {
	for n := name; ; {
		if z, ok := s.zones[n]; ok {
			return z
		}
		if n == "." {
			return nil
		}
		i := strings.IndexByte(n, '.')
		if i == len(n)-1 {
			n = "."
		} else {
			n = n[i+1:]
		}
	}
}

func (s *DNSServer) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	qname := strings.ToLower(q.Name)
	s.mu.RLock()
	z := s.zoneFor(qname)
	var opts ZoneOptions
	if z != nil {
		opts = z.Opts
	}
	s.mu.RUnlock()

	if opts.Drop {
		return
	}
	if opts.Latency > 0 {
		time.Sleep(opts.Latency)
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	udp := w.LocalAddr().Network() == "udp"
	size := dns.MinMsgSize
	if o := req.IsEdns0(); o != nil {
		m.SetEdns0(o.UDPSize(), o.Do())
		size = max(int(o.UDPSize()), dns.MinMsgSize)
	}
	switch {
	case z == nil:
		m.Rcode = dns.RcodeRefused
	case opts.ServFail:
		m.Rcode = dns.RcodeServerFailure
		if opts.EDE != nil {
			if o := m.IsEdns0(); o != nil {
				o.Option = append(o.Option, opts.EDE)
			}
		}
	case opts.Truncate && udp:
		m.Truncated = true
	default:
		s.mu.RLock()
		s.answer(m, qname, q.Qtype)
		s.mu.RUnlock()
	}
	if udp {
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// answer fills m for qname/qtype, following CNAMEs across the zones.
func (s *DNSServer) answer(m *dns.Msg, qname string, qtype uint16) {
	ad := true
	for hop := 0; hop < 10; hop++ {
		z := s.zoneFor(qname)
		if z == nil {
			break // a CNAME out of the lab: answer with the chain so far
		}
		ad = ad && z.Opts.AD
		rrs, exists := z.lookup(qname)
		var cname *dns.CNAME
		matched := false
		for _, rr := range rrs {
			t := rr.Header().Rrtype
			if t == qtype || qtype == dns.TypeANY {
				m.Answer = append(m.Answer, withName(rr, qname))
				matched = true
			}
			if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
				cname = c
			}
		}
		if !matched && cname != nil {
			m.Answer = append(m.Answer, withName(cname, qname))
			qname = strings.ToLower(cname.Target)
			continue
		}
		if !matched {
			m.Ns = append(m.Ns, z.soa)
			if !exists && len(m.Answer) == 0 {
				m.Rcode = dns.RcodeNameError
			}
		}
		break
	}
	m.AuthenticatedData = ad
}

// lookup returns the records at name, or at the wildcard that covers it
// (RFC 4592, simplified: the nearest "*." ancestor inside the zone), and
// whether the name exists (has records or names below it).
func (z *Zone) lookup(name string) ([]dns.RR, bool) {
	if rrs, ok := z.names[name]; ok {
		return rrs, true
	}
	for n := range z.names {
		if strings.HasSuffix(n, "."+name) {
			return nil, true // empty non-terminal: NODATA, not NXDOMAIN
		}
	}
	for n := name; n != z.Origin && strings.Contains(n, "."); {
		n = n[strings.IndexByte(n, '.')+1:]
		if rrs, ok := z.names["*."+n]; ok {
			return rrs, true
		}
		if n == z.Origin {
			break
		}
	}
	return nil, false
}

func withName(rr dns.RR, name string) dns.RR {
	if rr.Header().Name == name {
		return rr
	}
	c := dns.Copy(rr)
	c.Header().Name = name
	return c
}
