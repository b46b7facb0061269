// Package tlsinfo summarises a TLS session and judges the server's
// certificate chain against trusted roots and a host name (RFC 5280 path
// validation as Go's crypto/x509 does it; name matching per RFC 6125 §6,
// which RFC 7672 §3.2.3 and RFC 8461 §4.2 build on for SMTP).
//
// It never fails a handshake: callers that must carry on whatever the
// certificate — opportunistic STARTTLS (RFC 7435), where a sending MTA
// encrypts even to a server whose certificate does not verify — handshake
// with InsecureSkipVerify and ask Inspect what is wrong, so that every
// problem is reported instead of the first one ending the conversation.
//
// Not supported: revocation (OCSP, CRLs), certificate transparency, and
// DANE (see internal/dane, which uses the chain kept here).
package tlsinfo

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"strings"
	"time"
)

// Problem is one thing wrong with a certificate chain.
type Problem string

const (
	OK               Problem = "ok"                // the chain verifies for the name
	NoCertificate    Problem = "no-certificate"    // the server sent none
	Expired          Problem = "expired"           // the leaf's notAfter has passed
	NotYetValid      Problem = "not-yet-valid"     // the leaf's notBefore is in the future
	WrongName        Problem = "wrong-name"        // the leaf is not valid for the host name
	SelfSigned       Problem = "self-signed"       // the leaf signed itself; no CA vouches for it
	UnknownAuthority Problem = "unknown-authority" // the chain does not lead to a trusted root
	Invalid          Problem = "invalid"           // another reason (usage, constraints, bad signature)
)

// Cert describes one certificate of the chain.
type Cert struct {
	Subject            string    `json:"subject"`
	Issuer             string    `json:"issuer"`
	DNSNames           []string  `json:"dns_names,omitempty"`
	IPAddresses        []string  `json:"ip_addresses,omitempty"`
	NotBefore          time.Time `json:"not_before"`
	NotAfter           time.Time `json:"not_after"`
	DaysLeft           int       `json:"days_left"` // whole days until NotAfter; negative once expired
	KeyType            string    `json:"key_type"`  // RSA, ECDSA, Ed25519
	KeyBits            int       `json:"key_bits"`
	SignatureAlgorithm string    `json:"signature_algorithm"`
	IsCA               bool      `json:"is_ca,omitempty"`
	SHA256             string    `json:"sha256"` // of the DER certificate, hex
}

// Verification is the judgement of a chain for a host name.
type Verification struct {
	// Status is the first of Problems, or OK.
	Status Problem `json:"status"`
	// Problems lists everything found, most serious first: the chain's
	// authority, then its dates, then the name.
	Problems []Problem `json:"problems,omitempty"`
	Host     string    `json:"host"` // the name checked
	// Names are the names the leaf is valid for (its SANs, or its common
	// name when it has none), shown when the name is wrong.
	Names []string `json:"names,omitempty"`
	// Errors holds crypto/x509's words for each problem.
	Errors []string `json:"errors,omitempty"`
}

// Has reports whether p is among the problems.
func (v Verification) Has(p Problem) bool {
	for _, q := range v.Problems {
		if q == p {
			return true
		}
	}
	return false
}

// Info is the summary of a TLS session.
type Info struct {
	Version     string `json:"version"` // "TLS 1.3"
	CipherSuite string `json:"cipher_suite"`
	ALPN        string `json:"alpn,omitempty"`
	// ServerName is the SNI the client sent (empty for an IP address).
	ServerName   string       `json:"server_name,omitempty"`
	Chain        []Cert       `json:"chain"` // as the server sent it, leaf first
	Verification Verification `json:"verification"`
}

// Inspect summarises cs and verifies the peer chain for host against roots
// (nil: the system's) at now.
func Inspect(cs tls.ConnectionState, host string, roots *x509.CertPool, now time.Time) Info {
	info := Info{
		Version:     tls.VersionName(cs.Version),
		CipherSuite: tls.CipherSuiteName(cs.CipherSuite),
		ALPN:        cs.NegotiatedProtocol,
		ServerName:  cs.ServerName,
	}
	for _, c := range cs.PeerCertificates {
		info.Chain = append(info.Chain, Describe(c, now))
	}
	info.Verification = Verify(cs.PeerCertificates, host, roots, now)
	return info
}

// Describe summarises one certificate.
func Describe(c *x509.Certificate, now time.Time) Cert {
	sum := sha256.Sum256(c.Raw)
	out := Cert{
		Subject:            c.Subject.String(),
		Issuer:             c.Issuer.String(),
		DNSNames:           c.DNSNames,
		NotBefore:          c.NotBefore.UTC(),
		NotAfter:           c.NotAfter.UTC(),
		DaysLeft:           daysUntil(now, c.NotAfter),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		IsCA:               c.IsCA,
		SHA256:             hex.EncodeToString(sum[:]),
	}
	for _, ip := range c.IPAddresses {
		out.IPAddresses = append(out.IPAddresses, ip.String())
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		out.KeyType, out.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		out.KeyType, out.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		out.KeyType, out.KeyBits = "Ed25519", 256
	default:
		out.KeyType = c.PublicKeyAlgorithm.String()
	}
	return out
}

// daysUntil counts whole days from now to t, rounding towards zero: 0 in
// the last day before expiry and in the first day after it, which is why
// expiry itself is judged on the dates (Verify), never on DaysLeft.
func daysUntil(now, t time.Time) int {
	return int(t.Sub(now) / (24 * time.Hour))
}

// Verify judges chain (leaf first, as the server sent it) for host at now.
// Each problem is checked on its own, so that an expired certificate with
// the wrong name shows both.
func Verify(chain []*x509.Certificate, host string, roots *x509.CertPool, now time.Time) Verification {
	v := Verification{Host: strings.TrimSuffix(host, ".")}
	if len(chain) == 0 {
		v.Status, v.Problems = NoCertificate, []Problem{NoCertificate}
		return v
	}
	leaf := chain[0]
	add := func(p Problem, err error) {
		v.Problems = append(v.Problems, p)
		if err != nil {
			v.Errors = append(v.Errors, err.Error())
		}
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}

	// The path, at a time inside the leaf's validity, so that an expired
	// leaf does not hide an unknown issuer.
	at := now
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		at = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at})
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case err == nil:
	case errors.As(err, &ua) && selfSigned(leaf):
		add(SelfSigned, err)
	case errors.As(err, &ua):
		add(UnknownAuthority, err)
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		// An intermediate outside its validity.
		add(Expired, err)
	default:
		add(Invalid, err)
	}

	// RFC 5280 §4.1.2.5: the validity period, inclusive.
	switch {
	case now.After(leaf.NotAfter):
		add(Expired, nil)
	case now.Before(leaf.NotBefore):
		add(NotYetValid, nil)
	}

	// RFC 6125 §6.4: the reference identity against the SANs.
	if v.Host != "" {
		if err := leaf.VerifyHostname(v.Host); err != nil {
			add(WrongName, err)
			v.Names = leafNames(leaf)
		}
	}
	v.Problems = dedupe(v.Problems)
	v.Status = OK
	if len(v.Problems) > 0 {
		v.Status = v.Problems[0]
	}
	return v
}

// selfSigned reports a certificate whose signature its own key verifies.
// (CheckSignatureFrom would insist that the signer be a CA, which a
// self-signed server certificate usually is not.)
func selfSigned(c *x509.Certificate) bool {
	return c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func leafNames(c *x509.Certificate) []string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		// Go (like browsers) ignores the common name for matching; show
		// it so the user sees why.
		names = append(names, c.Subject.CommonName+" (common name only; not used for matching)")
	}
	return names
}

func dedupe(ps []Problem) []Problem {
	var out []Problem
	seen := map[Problem]bool{}
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
