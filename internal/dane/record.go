// Package dane looks up and applies the DANE TLSA records of SMTP servers
// (RFC 7672, with RFC 6698 for TLSA and RFC 7671 for its operational
// updates): it finds `_25._tcp.<mx>` TLSA records and says whether a sender
// may use them (only when the resolver validated them with DNSSEC, RFC 7672
// §2.2), which records are usable for SMTP (DANE-TA(2) and DANE-EE(3),
// RFC 7672 §3.1), and whether a server's certificate chain matches them
// (Verify), with the reasons when it does not.
//
// mxray does not validate DNSSEC itself: it trusts the AD bit of a
// validating resolver (RFC 6698 §4.1, RFC 7672 §2.1). Not supported: CNAME
// expansion of the MX host name into a second TLSA base domain (RFC 7672
// §2.2.3; the TLSA name's own CNAME chain is followed and shown), and
// checking names against the common name when a certificate has no DNS
// subject alternative names.
package dane

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Usage is a TLSA certificate usage (RFC 6698 §2.1.1, RFC 7218 names).
type Usage uint8

const (
	PKIXTA Usage = 0 // PKIX-TA: CA constraint; not usable for SMTP (RFC 7672 §3.1.3)
	PKIXEE Usage = 1 // PKIX-EE: service certificate constraint; not usable for SMTP
	DANETA Usage = 2 // DANE-TA: trust anchor assertion
	DANEEE Usage = 3 // DANE-EE: domain-issued certificate
)

func (u Usage) String() string {
	switch u {
	case PKIXTA:
		return "PKIX-TA(0)"
	case PKIXEE:
		return "PKIX-EE(1)"
	case DANETA:
		return "DANE-TA(2)"
	case DANEEE:
		return "DANE-EE(3)"
	}
	return "usage(" + strconv.Itoa(int(u)) + ")"
}

// Selector says which part of a certificate is matched (RFC 6698 §2.1.2).
type Selector uint8

const (
	SelectorCert Selector = 0 // Cert(0): the whole DER certificate
	SelectorSPKI Selector = 1 // SPKI(1): the DER SubjectPublicKeyInfo
)

func (s Selector) String() string {
	switch s {
	case SelectorCert:
		return "Cert(0)"
	case SelectorSPKI:
		return "SPKI(1)"
	}
	return "selector(" + strconv.Itoa(int(s)) + ")"
}

// Matching is how the selected data is compared (RFC 6698 §2.1.3).
type Matching uint8

const (
	MatchFull   Matching = 0 // Full(0): the data itself
	MatchSHA256 Matching = 1 // SHA2-256(1)
	MatchSHA512 Matching = 2 // SHA2-512(2)
)

func (m Matching) String() string {
	switch m {
	case MatchFull:
		return "Full(0)"
	case MatchSHA256:
		return "SHA2-256(1)"
	case MatchSHA512:
		return "SHA2-512(2)"
	}
	return "matching(" + strconv.Itoa(int(m)) + ")"
}

// Sentinel errors; test with errors.Is.
var (
	ErrRecordSyntax = errors.New("dane: invalid TLSA record")
	ErrNoChain      = errors.New("dane: the server presented no certificate")
	ErrNoUsable     = errors.New("dane: no usable TLSA record")
	ErrNoMatch      = errors.New("dane: no TLSA record matches the server's certificates")
	ErrLookup       = errors.New("dane: TLSA lookup failed")
)

// Record is one TLSA record with its usability for SMTP.
type Record struct {
	Usage    Usage    `json:"usage"`
	Selector Selector `json:"selector"`
	Matching Matching `json:"matching_type"`
	Data     string   `json:"data"` // lower-case hex
	// Text is the record data in presentation format, "3 1 1 ab…".
	Text   string `json:"text"`
	Usable bool   `json:"usable"`
	// Unusable says why a record cannot be used (RFC 7672 §3.1.3, RFC 6698 §7.2).
	Unusable string `json:"unusable,omitempty"`
}

// NewRecord builds a Record and judges its usability.
func NewRecord(u Usage, s Selector, m Matching, data []byte) Record {
	r := Record{Usage: u, Selector: s, Matching: m, Data: hex.EncodeToString(data)}
	r.Text = fmt.Sprintf("%d %d %d %s", u, s, m, r.Data)
	r.Unusable = unusable(r, data)
	r.Usable = r.Unusable == ""
	return r
}

func unusable(r Record, data []byte) string {
	switch r.Usage {
	case DANETA, DANEEE:
	case PKIXTA, PKIXEE:
		// RFC 7672 §3.1.3: SMTP clients treat PKIX-TA(0) and PKIX-EE(1)
		// records as unusable: MX hosts have no shared set of public CAs.
		return fmt.Sprintf("usage %s is not usable for SMTP (RFC 7672 §3.1.3): publish DANE-EE(3) or DANE-TA(2)", r.Usage)
	default:
		return fmt.Sprintf("unknown usage %d (RFC 6698 §2.1.1)", r.Usage)
	}
	if r.Selector > SelectorSPKI {
		return fmt.Sprintf("unknown selector %d (RFC 6698 §2.1.2)", r.Selector)
	}
	switch want := map[Matching]int{MatchSHA256: sha256.Size, MatchSHA512: sha512.Size}[r.Matching]; {
	case r.Matching > MatchSHA512:
		return fmt.Sprintf("unknown matching type %d (RFC 6698 §2.1.3)", r.Matching)
	case r.Matching != MatchFull && len(data) != want:
		return fmt.Sprintf("a %s digest has %d bytes, this one %d: the record is malformed", r.Matching, want, len(data))
	case r.Matching == MatchFull && len(data) == 0:
		return "empty certificate association data"
	case r.Matching == MatchFull && r.Selector == SelectorCert:
		if _, err := x509.ParseCertificate(data); err != nil {
			return fmt.Sprintf("the full certificate does not parse: %v", err)
		}
	case r.Matching == MatchFull && r.Selector == SelectorSPKI:
		if _, err := x509.ParsePKIXPublicKey(data); err != nil {
			return fmt.Sprintf("the full public key does not parse: %v", err)
		}
	}
	return ""
}

// FromRR converts a TLSA resource record.
func FromRR(rr *dns.TLSA) Record {
	data, err := hex.DecodeString(rr.Certificate)
	if err != nil {
		r := NewRecord(Usage(rr.Usage), Selector(rr.Selector), Matching(rr.MatchingType), nil)
		r.Data, r.Text = strings.ToLower(rr.Certificate), fmt.Sprintf("%d %d %d %s", rr.Usage, rr.Selector, rr.MatchingType, rr.Certificate)
		r.Usable, r.Unusable = false, "the association data is not hexadecimal"
		return r
	}
	return NewRecord(Usage(rr.Usage), Selector(rr.Selector), Matching(rr.MatchingType), data)
}

// ParseRecord reads TLSA record data in presentation format (RFC 6698
// §2.2): "usage selector matching-type hex", where the hex may be split by
// blanks. Mnemonics (RFC 7218: DANE-EE, SPKI, SHA2-256) are accepted too.
// A record that parses but cannot be used is returned with Usable false.
func ParseRecord(s string) (Record, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return Record{}, fmt.Errorf("%w: %q: want \"usage selector matching-type data\"", ErrRecordSyntax, s)
	}
	var nums [3]uint8
	for i, names := range []map[string]uint8{
		{"PKIX-TA": 0, "PKIX-EE": 1, "DANE-TA": 2, "DANE-EE": 3},
		{"CERT": 0, "SPKI": 1},
		{"FULL": 0, "SHA2-256": 1, "SHA2-512": 2},
	} {
		if v, ok := names[strings.ToUpper(f[i])]; ok {
			nums[i] = v
			continue
		}
		v, err := strconv.ParseUint(f[i], 10, 8)
		if err != nil {
			return Record{}, fmt.Errorf("%w: %q: field %d (%q) is not a number from 0 to 255", ErrRecordSyntax, s, i+1, f[i])
		}
		nums[i] = uint8(v)
	}
	data, err := hex.DecodeString(strings.Join(f[3:], ""))
	if err != nil {
		return Record{}, fmt.Errorf("%w: %q: the association data is not hexadecimal: %v", ErrRecordSyntax, s, err)
	}
	return NewRecord(Usage(nums[0]), Selector(nums[1]), Matching(nums[2]), data), nil
}

// Association computes the data a record with this selector and matching
// type holds for cert: what to publish, and what Verify compares.
func Association(cert *x509.Certificate, s Selector, m Matching) []byte {
	var in []byte
	switch s {
	case SelectorCert:
		in = cert.Raw
	case SelectorSPKI:
		in = cert.RawSubjectPublicKeyInfo
	default:
		return nil
	}
	switch m {
	case MatchFull:
		return in
	case MatchSHA256:
		h := sha256.Sum256(in)
		return h[:]
	case MatchSHA512:
		h := sha512.Sum512(in)
		return h[:]
	}
	return nil
}

// Matches reports whether the record's association data is cert's.
func (r Record) Matches(cert *x509.Certificate) bool {
	data, err := hex.DecodeString(r.Data)
	if err != nil {
		return false
	}
	want := Association(cert, r.Selector, r.Matching)
	return want != nil && string(want) == string(data)
}
