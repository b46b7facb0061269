package dkim

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrKeySyntax is returned for a key record that cannot be used (RFC 6376
// §3.6.1).
var ErrKeySyntax = errors.New("dkim: key record syntax error")

// Key is a public key record as published and as parsed.
type Key struct {
	Record   string   `json:"record"`             // the TXT record, strings joined
	Type     string   `json:"type"`               // k=: rsa or ed25519
	Bits     int      `json:"bits"`               // key size (256 for ed25519)
	Hashes   []string `json:"hashes,omitempty"`   // h=: acceptable hashes; empty allows all
	Services []string `json:"services,omitempty"` // s=: service types; empty means "*"
	Flags    []string `json:"flags,omitempty"`    // t=: y (testing), s (strict identity)
	Notes    string   `json:"notes,omitempty"`    // n=
	Revoked  bool     `json:"revoked,omitempty"`  // p= is empty
	pub      crypto.PublicKey
}

// Testing reports the t=y flag: the domain is testing DKIM (RFC 6376
// §3.6.1).
func (k *Key) Testing() bool { return hasFold(k.Flags, "y") }

// Strict reports the t=s flag: i= must be in d= itself, not a subdomain.
func (k *Key) Strict() bool { return hasFold(k.Flags, "s") }

// ParseKey reads a key record (RFC 6376 §3.6.1, RFC 8463 §4.2). A record
// with an empty p= parses, with Revoked set. Errors wrap ErrKeySyntax.
func ParseKey(record string) (*Key, error) {
	tags, err := ParseTags(record)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySyntax, err)
	}
	k := &Key{Record: record, Type: "rsa"}
	// RFC 6376 §3.6.1 v=: "If specified, this tag MUST be set to "DKIM1"
	// (without the quotes). This tag MUST be the first tag in the record."
	if v, ok := tags.Get("v"); ok {
		if v != "DKIM1" || tags[0].Name != "v" {
			return nil, fmt.Errorf("%w: v=%s (want DKIM1, first)", ErrKeySyntax, v)
		}
	}
	if v, ok := tags.Get("h"); ok {
		k.Hashes = splitList(v)
	}
	if v, ok := tags.Get("k"); ok {
		k.Type = stripFWS(v)
	}
	if v, ok := tags.Get("s"); ok {
		k.Services = splitList(v)
	}
	if v, ok := tags.Get("t"); ok {
		k.Flags = splitList(v)
	}
	k.Notes, _ = tags.Get("n")
	p, ok := tags.Get("p")
	if !ok {
		return nil, fmt.Errorf("%w: no p= tag", ErrKeySyntax)
	}
	p = stripFWS(p)
	if p == "" {
		k.Revoked = true
		return k, nil
	}
	data, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return nil, fmt.Errorf("%w: p= is not base64: %v", ErrKeySyntax, err)
	}
	switch k.Type {
	case "rsa":
		// RFC 6376 §3.6.1 names RSAPublicKey, but what signers publish is
		// SubjectPublicKeyInfo (as in its own Appendix C); accept both.
		pub, err := x509.ParsePKIXPublicKey(data)
		if err != nil {
			rk, err2 := x509.ParsePKCS1PublicKey(data)
			if err2 != nil {
				return nil, fmt.Errorf("%w: p= is not an RSA public key: %v", ErrKeySyntax, err)
			}
			pub = rk
		}
		rk, ok := pub.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%w: p= holds a %T, not an RSA key", ErrKeySyntax, pub)
		}
		k.pub, k.Bits = rk, rk.N.BitLen()
	case "ed25519":
		// RFC 8463 §4.2: the raw 32-byte public key, base64.
		if len(data) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: ed25519 p= is %d bytes, want 32", ErrKeySyntax, len(data))
		}
		k.pub, k.Bits = ed25519.PublicKey(data), 256
	default:
		return nil, fmt.Errorf("%w: unknown key type k=%s", ErrKeySyntax, k.Type)
	}
	return k, nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(stripFWS(v), ":") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func hasFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
