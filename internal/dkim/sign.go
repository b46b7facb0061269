package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
)

// SignOptions configure Sign. Sign exists for tests and the lab (building
// signed messages to verify); mxray does not sign mail.
type SignOptions struct {
	Domain   string        // d=
	Selector string        // s=
	Key      crypto.Signer // *rsa.PrivateKey or ed25519.PrivateKey
	// Headers is h=, in order; a name may repeat (oversigning). Default:
	// From, To, Subject, Date, Message-ID.
	Headers []string
	Canon   string    // c=, default relaxed/relaxed
	AUID    string    // i=, omitted when empty
	Time    time.Time // t=, omitted when zero
	Expire  time.Time // x=, omitted when zero
	// BodyLength sets l= to that many bytes of the canonicalized body when
	// positive.
	BodyLength int64
	// Algorithm overrides a= (for example "rsa-sha1", to test that it is
	// refused); by default it follows the key.
	Algorithm string
}

// Sign returns message with a DKIM-Signature field prepended (RFC 6376
// §5). It is for tests and the lab.
func Sign(message []byte, o SignOptions) ([]byte, error) {
	m, err := ParseMessage(message)
	if err != nil {
		return nil, err
	}
	alg := o.Algorithm
	if alg == "" {
		switch o.Key.(type) {
		case *rsa.PrivateKey:
			alg = "rsa-sha256"
		case ed25519.PrivateKey:
			alg = "ed25519-sha256"
		default:
			return nil, fmt.Errorf("dkim: sign: unsupported key %T", o.Key)
		}
	}
	var newHash func() hash.Hash = sha256.New
	hashID := crypto.SHA256
	if strings.HasSuffix(alg, "-sha1") {
		newHash, hashID = sha1.New, crypto.SHA1
	}
	canon := o.Canon
	if canon == "" {
		canon = "relaxed/relaxed"
	}
	hc, bc, err := parseCanon(canon)
	if err != nil {
		return nil, fmt.Errorf("dkim: sign: %w", err)
	}
	headers := o.Headers
	if len(headers) == 0 {
		headers = []string{"From", "To", "Subject", "Date", "Message-ID"}
	}
	body := CanonBody(bc, m.Body)
	if o.BodyLength > 0 {
		if o.BodyLength > int64(len(body)) {
			return nil, errors.New("dkim: sign: BodyLength exceeds the body")
		}
		body = body[:o.BodyLength]
	}
	bh := newHash()
	bh.Write(body)

	tags := []string{"v=1", "a=" + alg, "c=" + canon, "d=" + o.Domain, "s=" + o.Selector}
	if o.AUID != "" {
		tags = append(tags, "i="+o.AUID)
	}
	if !o.Time.IsZero() {
		tags = append(tags, fmt.Sprintf("t=%d", o.Time.Unix()))
	}
	if !o.Expire.IsZero() {
		tags = append(tags, fmt.Sprintf("x=%d", o.Expire.Unix()))
	}
	if o.BodyLength > 0 {
		tags = append(tags, fmt.Sprintf("l=%d", o.BodyLength))
	}
	tags = append(tags, "h="+strings.Join(headers, ":"), "bh="+base64.StdEncoding.EncodeToString(bh.Sum(nil)), "b=")
	field := []byte("DKIM-Signature: " + strings.Join(tags, ";\r\n\t") + "\r\n")

	h := newHash()
	h.Write(headerBlock(m, hc, headers))
	h.Write(bytes.TrimSuffix(CanonHeader(hc, field), []byte("\r\n")))
	digest := h.Sum(nil)
	var sig []byte
	switch k := o.Key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, hashID, digest)
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, digest) // RFC 8463 §3: PureEdDSA over the hash
	}
	if err != nil {
		return nil, fmt.Errorf("dkim: sign: %w", err)
	}
	field = append(bytes.TrimSuffix(field, []byte("\r\n")), base64.StdEncoding.EncodeToString(sig)...)
	field = append(field, "\r\n"...)
	return append(field, toCRLF(message)...), nil
}
