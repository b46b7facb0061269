package lab

import (
	"crypto"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// SignedZone is a zone signed with DNSSEC (RFC 4033-4035) by the lab: one
// ECDSA P-256 key (algorithm 13, RFC 6605) used as a combined signing key,
// RRSIGs over every RRset, and an NSEC chain for authenticated denial.
type SignedZone struct {
	Origin  string
	Records []dns.RR
	Key     *dns.DNSKEY
	DS      *dns.DS // the trust anchor a validator is given
}

// SignZone signs z, valid from an hour before now for 30 days.
func SignZone(z *Zone, now time.Time) (*SignedZone, error) {
	key := &dns.DNSKEY{
		Hdr:       dns.RR_Header{Name: z.Origin, Rrtype: dns.TypeDNSKEY, Class: dns.ClassINET, Ttl: 300},
		Flags:     257, // zone key + secure entry point
		Protocol:  3,
		Algorithm: dns.ECDSAP256SHA256,
	}
	priv, err := key.Generate(256)
	if err != nil {
		return nil, fmt.Errorf("lab: dnssec key: %w", err)
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("lab: dnssec key is not a crypto.Signer")
	}
	rrs := append(z.Records(), key)

	// Group into RRsets by owner and type; collect types per owner.
	type setKey struct {
		name string
		typ  uint16
	}
	sets := map[setKey][]dns.RR{}
	types := map[string]map[uint16]bool{}
	for _, rr := range rrs {
		h := rr.Header()
		k := setKey{strings.ToLower(h.Name), h.Rrtype}
		sets[k] = append(sets[k], rr)
		if types[k.name] == nil {
			types[k.name] = map[uint16]bool{}
		}
		types[k.name][h.Rrtype] = true
	}
	owners := make([]string, 0, len(types))
	for n := range types {
		owners = append(owners, n)
	}
	sort.Slice(owners, func(i, j int) bool { return canonicalLess(owners[i], owners[j]) })

	// RFC 4034 §4: each owner's NSEC names the next owner, the last wraps
	// to the apex; its TTL is the SOA minimum (RFC 4034 §4).
	minTTL := z.soa.Minttl
	for i, n := range owners {
		bitmap := []uint16{dns.TypeRRSIG, dns.TypeNSEC}
		for t := range types[n] {
			bitmap = append(bitmap, t)
		}
		sort.Slice(bitmap, func(a, b int) bool { return bitmap[a] < bitmap[b] })
		nsec := &dns.NSEC{
			Hdr:        dns.RR_Header{Name: n, Rrtype: dns.TypeNSEC, Class: dns.ClassINET, Ttl: minTTL},
			NextDomain: owners[(i+1)%len(owners)],
			TypeBitMap: bitmap,
		}
		sets[setKey{n, dns.TypeNSEC}] = []dns.RR{nsec}
	}

	out := &SignedZone{Origin: z.Origin, Key: key, DS: key.ToDS(dns.SHA256)}
	keys := make([]setKey, 0, len(sets))
	for k := range sets {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return canonicalLess(keys[i].name, keys[j].name)
		}
		return keys[i].typ < keys[j].typ
	})
	for _, k := range keys {
		set := sets[k]
		sig := &dns.RRSIG{
			Hdr:        dns.RR_Header{Name: k.name, Rrtype: dns.TypeRRSIG, Class: dns.ClassINET, Ttl: set[0].Header().Ttl},
			KeyTag:     key.KeyTag(),
			SignerName: z.Origin,
			Algorithm:  key.Algorithm,
			Inception:  uint32(now.Add(-time.Hour).Unix()),
			Expiration: uint32(now.Add(30 * 24 * time.Hour).Unix()),
		}
		if err := sig.Sign(signer, set); err != nil {
			return nil, fmt.Errorf("lab: signing %s %s: %w", k.name, dns.TypeToString[k.typ], err)
		}
		out.Records = append(out.Records, set...)
		out.Records = append(out.Records, sig)
	}
	return out, nil
}

// Text returns the signed zone in master-file format.
func (s *SignedZone) Text() string {
	var b strings.Builder
	for _, rr := range s.Records {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// canonicalLess orders names as RFC 4034 §6.1 requires: by labels from the
// right, each compared as lower-case octets.
func canonicalLess(a, b string) bool {
	la := dns.SplitDomainName(strings.ToLower(a))
	lb := dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if la[i] != lb[j] {
			return la[i] < lb[j]
		}
	}
	return len(la) < len(lb)
}
