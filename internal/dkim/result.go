package dkim

import "time"

// Status is the result of one signature, an RFC 8601 §2.7.1 token.
type Status string

// The results a signature can have (RFC 8601 §2.7.1).
const (
	// Pass: the signature verified with the published key.
	Pass Status = "pass"
	// Fail: the signature was checked and did not verify (body hash or
	// header signature), or the key is revoked (RFC 6376 §3.6.1 p=).
	Fail Status = "fail"
	// Neutral: the signature was not checked (more signatures than
	// MaxSignatures).
	Neutral Status = "neutral"
	// Policy: the signature is unacceptable whatever its verification:
	// an RSA key under 1024 bits (RFC 8301 §3.2).
	Policy Status = "policy"
	// Temperror: the key could not be fetched (DNS failure); a retry may
	// succeed.
	Temperror Status = "temperror"
	// Permerror: the signature cannot be checked and a retry will not
	// help: a syntax error, no key, an unsupported or forbidden algorithm,
	// an expired signature.
	Permerror Status = "permerror"
	// None: the message is not signed. Verify reports it as an empty
	// result list; the constant is for callers that summarise.
	None Status = "none"
)

// Reason is why a signature did not pass, or "" when it did.
type Reason string

// The reasons a signature can fail.
const (
	ReasonBodyHash     Reason = "body-hash-mismatch"     // bh= differs from the body's hash: the body changed
	ReasonSignature    Reason = "signature-mismatch"     // b= does not verify: a signed header changed, or the wrong key
	ReasonKeyNotFound  Reason = "key-not-found"          // no TXT record at selector._domainkey.domain (NXDOMAIN/NODATA)
	ReasonKeyRevoked   Reason = "key-revoked"            // the record has an empty p=
	ReasonKeySyntax    Reason = "key-syntax"             // the record or its key data cannot be parsed
	ReasonKeyService   Reason = "key-not-for-email"      // the record's s= excludes email
	ReasonKeyHash      Reason = "key-hash-not-allowed"   // the record's h= excludes the signature's hash
	ReasonKeyType      Reason = "key-type-mismatch"      // the record's k= does not match a=
	ReasonKeyTooShort  Reason = "key-too-short"          // an RSA key under 1024 bits
	ReasonExpired      Reason = "signature-expired"      // x= is in the past
	ReasonFuture       Reason = "signature-in-future"    // t= is in the future (beyond ClockSkew)
	ReasonAlgorithm    Reason = "unsupported-algorithm"  // a= unknown, or rsa-sha1 (RFC 8301 §3.1)
	ReasonFromUnsigned Reason = "from-not-signed"        // h= does not list From (RFC 6376 §5.4)
	ReasonIdentity     Reason = "identity-not-in-domain" // i= outside d= (or not d= itself under t=s)
	ReasonBodyLength   Reason = "body-length-too-long"   // l= is longer than the body
	ReasonDNS          Reason = "dns-temperror"          // the key lookup failed temporarily
	ReasonSyntax       Reason = "syntax-error"           // the signature field breaks the syntax; Detail names the tag
	ReasonNotChecked   Reason = "not-checked"            // beyond MaxSignatures
	ReasonMessage      Reason = "malformed-message"      // the message header could not be parsed
)

// Warning is something a person should know about a signature that does
// not change its result.
type Warning string

// The warnings.
const (
	// WarnTesting: the key has t=y; RFC 6376 §3.6.1 asks verifiers to
	// treat the message as unsigned whatever the result.
	WarnTesting Warning = "testing-mode"
	// WarnKeyShort: an RSA key under 2048 bits (RFC 8301 §3.2: signers
	// SHOULD use at least 2048).
	WarnKeyShort Warning = "key-under-2048-bits"
	// WarnPartialBody: l= covers only part of the body, so anything can be
	// appended (RFC 6376 §8.2); UnsignedBytes says how much.
	WarnPartialBody Warning = "body-partly-unsigned"
)

// Kind is the header field a signature is carried in.
type Kind string

// The three signature fields that share DKIM's verification.
const (
	KindDKIM Kind = "DKIM-Signature"        // RFC 6376
	KindAMS  Kind = "ARC-Message-Signature" // RFC 8617 §4.1.2
	KindSeal Kind = "ARC-Seal"              // RFC 8617 §4.1.3
)

// Result is the verification of one signature, with its evidence.
type Result struct {
	Status   Status    `json:"status"`
	Reason   Reason    `json:"reason,omitempty"`
	Detail   string    `json:"detail,omitempty"` // the exact cause, for a person
	Warnings []Warning `json:"warnings,omitempty"`

	Field     Kind   `json:"field"`
	Index     int    `json:"index"`     // position among the header fields, 0 at the top
	Signature string `json:"signature"` // the field's value as published

	// The signature's tags (RFC 6376 §3.5).
	Domain     string    `json:"d,omitempty"`
	Selector   string    `json:"s,omitempty"`
	Algorithm  string    `json:"a,omitempty"`
	Canon      string    `json:"c,omitempty"`
	Headers    []string  `json:"h,omitempty"`
	Identity   string    `json:"i,omitempty"`        // the AUID of a DKIM-Signature
	Instance   int       `json:"instance,omitempty"` // i= of an ARC field
	Timestamp  time.Time `json:"t,omitzero"`
	Expiration time.Time `json:"x,omitzero"`
	BodyLength *int64    `json:"l,omitempty"`

	// The body as canonicalized, and what l= leaves out.
	BodyBytes        int64  `json:"body_bytes"`
	UnsignedBytes    int64  `json:"unsigned_bytes,omitempty"`
	BodyHashGiven    string `json:"bh,omitempty"`
	BodyHashComputed string `json:"bh_computed,omitempty"`
	// SignatureVerified reports whether b= verified over the headers,
	// whatever the body hash: true with a body-hash mismatch means only the
	// body changed.
	SignatureVerified bool `json:"signature_verified"`
	Testing           bool `json:"testing,omitempty"`

	// The key: the name queried, every TXT record found there, and the
	// record used.
	Query      string   `json:"query,omitempty"`
	KeyRecords []string `json:"key_records,omitempty"`
	Key        *Key     `json:"key,omitempty"`

	// HashedHeaders is the canonicalized header block that was hashed,
	// signature field last with an empty b=: what to compare with the
	// signer's when the header signature does not verify.
	HashedHeaders string `json:"hashed_headers,omitempty"`

	Err error `json:"-"` // the underlying error, when there is one
}
