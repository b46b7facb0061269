package dane

import (
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Result is the outcome of Verify, spelled as in RFC 8601.
type Result string

const (
	Pass Result = "pass" // a usable record matched (and, for DANE-TA, the chain and the name checked out)
	Fail Result = "fail" // usable records exist and none matched: a DANE sender must not deliver to this server
	None Result = "none" // no usable record: TLS is required, but the server cannot be authenticated
)

// Match says which record matched which certificate.
type Match struct {
	Record Record `json:"record"`
	// Cert is the index in the presented chain of the certificate that
	// matched (0 is the server's own), or -1 for a DANE-TA public key
	// that the server did not send, which signed Anchor.
	Cert    int    `json:"cert"`
	Subject string `json:"subject"`
	// Name is the reference identifier the server certificate matched
	// (DANE-TA only; DANE-EE ignores names, RFC 7672 §3.1.1).
	Name string `json:"name,omitempty"`
}

// Attempt is one usable record that did not authenticate the server, and why.
type Attempt struct {
	Record string `json:"record"`
	Reason string `json:"reason"`
}

// Verification is the outcome of matching a chain against TLSA records.
type Verification struct {
	Result  Result    `json:"result"`
	Usable  int       `json:"usable"`
	Match   *Match    `json:"match,omitempty"`
	Misses  []Attempt `json:"misses,omitempty"`
	Summary string    `json:"summary"`
	Error   string    `json:"error,omitempty"`
	Err     error     `json:"-"`
}

// Verify checks the chain a server presented (server certificate first)
// against TLSA records (RFC 7672 §3). DANE-EE(3) matches the server's own
// certificate or key, with names and validity ignored (RFC 7672 §3.1.1).
// DANE-TA(2) matches a certificate of the chain, or (2 1 0) the full public
// key of a trust anchor the server did not send; the chain must then
// verify up to it at now, and the server certificate must carry mxHost
// (RFC 7672 §3.1.2, §3.2.2). Unusable records are skipped.
func Verify(records []Record, chain []*x509.Certificate, mxHost string, now time.Time) Verification {
	v := Verification{}
	var usable []Record
	for _, r := range records {
		if r.Usable {
			usable = append(usable, r)
		}
	}
	v.Usable = len(usable)
	ref := strings.TrimSuffix(strings.ToLower(mxHost), ".")
	switch {
	case len(usable) == 0:
		v.Result, v.Err = None, ErrNoUsable
		v.Summary = "no usable TLSA record: TLS is required but the server cannot be authenticated (RFC 7672 §2.2)"
	case len(chain) == 0:
		v.Result, v.Err = Fail, ErrNoChain
		v.Summary = "the server presented no certificate"
	}
	if v.Err != nil {
		v.Error = v.Err.Error()
		return v
	}
	for _, r := range usable {
		m, reason := try(r, chain, ref, now)
		if m != nil {
			v.Result, v.Match = Pass, m
			if m.Name != "" {
				v.Summary = fmt.Sprintf("%s matches %s, the chain verifies up to it and the certificate names %s", r.Text, m.Subject, m.Name)
			} else {
				v.Summary = fmt.Sprintf("%s matches the server's certificate (%s); DANE-EE ignores names and expiry", r.Text, m.Subject)
			}
			return v
		}
		v.Misses = append(v.Misses, Attempt{Record: r.Text, Reason: reason})
	}
	v.Result, v.Err = Fail, ErrNoMatch
	v.Error = v.Err.Error()
	v.Summary = fmt.Sprintf("none of the %d usable TLSA record(s) authenticates the server: a DANE sender must not deliver to it (RFC 7672 §2.2)", len(usable))
	return v
}

func try(r Record, chain []*x509.Certificate, ref string, now time.Time) (*Match, string) {
	leaf := chain[0]
	if r.Usage == DANEEE {
		// RFC 7672 §3.1.1: with DANE-EE(3) the client checks neither the
		// certificate's names nor its validity period.
		if r.Matches(leaf) {
			return &Match{Record: r, Cert: 0, Subject: leaf.Subject.String()}, ""
		}
		return nil, fmt.Sprintf("does not match the server's %s", describe(r.Selector))
	}
	// DANE-TA(2): a trust anchor, normally a CA certificate sent in the
	// chain (RFC 7671 §5.2.2 asks servers to include it).
	for i := 1; i < len(chain); i++ {
		if !r.Matches(chain[i]) {
			continue
		}
		if err := verifyUpTo(chain, chain[i], chain[1:i], now); err != nil {
			return nil, fmt.Sprintf("matches certificate %d (%s) but the chain does not verify up to it: %v", i, chain[i].Subject, err)
		}
		name, err := checkName(leaf, ref)
		if err != nil {
			return nil, fmt.Sprintf("matches certificate %d (%s) but %v", i, chain[i].Subject, err)
		}
		return &Match{Record: r, Cert: i, Subject: chain[i].Subject.String(), Name: name}, ""
	}
	if r.Matches(leaf) {
		return nil, "matches the server's own certificate, which a DANE-TA(2) record cannot vouch for: publish it as DANE-EE(3)"
	}
	// RFC 7671 §5.2.2: a trust anchor given as a full public key (2 1 0)
	// need not be in the chain: find the certificate it signed.
	if r.Selector == SelectorSPKI && r.Matching == MatchFull {
		data, _ := hex.DecodeString(r.Data)
		pub, err := x509.ParsePKIXPublicKey(data)
		if err != nil {
			return nil, fmt.Sprintf("the public key does not parse: %v", err)
		}
		anchor := &x509.Certificate{PublicKey: pub}
		for j := len(chain) - 1; j >= 0; j-- {
			c := chain[j]
			if anchor.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) != nil {
				continue
			}
			if err := verifyUpTo(chain, c, chain[1:max(j, 1)], now); err != nil {
				return nil, fmt.Sprintf("the key signed certificate %d (%s) but the chain does not verify: %v", j, c.Subject, err)
			}
			name, err := checkName(leaf, ref)
			if err != nil {
				return nil, fmt.Sprintf("the key signed certificate %d (%s) but %v", j, c.Subject, err)
			}
			return &Match{Record: r, Cert: -1, Subject: c.Issuer.String(), Name: name}, ""
		}
		return nil, "the trust anchor key signed none of the presented certificates"
	}
	return nil, fmt.Sprintf("matches no certificate of the chain (%d sent); a DANE-TA(2) anchor must be in the chain unless published as 2 1 0", len(chain))
}

// verifyUpTo verifies the server certificate up to anchor, trusted for
// this purpose, through the intermediates, at now.
func verifyUpTo(chain []*x509.Certificate, anchor *x509.Certificate, inter []*x509.Certificate, now time.Time) error {
	roots := x509.NewCertPool()
	roots.AddCert(anchor)
	ip := x509.NewCertPool()
	for _, c := range inter {
		ip.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: ip, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	return err
}

// checkName applies RFC 7672 §3.2.2: with DANE-TA(2) the server
// certificate must name a reference identifier, here the MX host name
// (wildcards only as the whole left-most label).
func checkName(leaf *x509.Certificate, ref string) (string, error) {
	if err := leaf.VerifyHostname(ref); err != nil {
		var hn x509.HostnameError
		if errors.As(err, &hn) {
			return "", fmt.Errorf("the server certificate names %s, not %s (RFC 7672 §3.2.2)", strings.Join(leaf.DNSNames, ", "), ref)
		}
		return "", err
	}
	return ref, nil
}

func describe(s Selector) string {
	if s == SelectorSPKI {
		return "public key"
	}
	return "certificate"
}
