// Package dkim verifies DomainKeys Identified Mail signatures (RFC 6376),
// with Ed25519 (RFC 8463) and the cryptographic updates of RFC 8301, and
// reports for every signature the evidence a person needs: the tags, the
// key record as published at selector._domainkey.domain, the key's type and
// size, the body hash as computed and as signed, how much of the body l=
// leaves unsigned, and the canonicalized header block that was hashed.
//
// Verify checks every DKIM-Signature of a message (at most MaxSignatures).
// ParseTags, ParseMessage, CanonHeader, CanonBody and VerifyField are the
// parts package arc shares: an ARC-Message-Signature is verified like a
// DKIM-Signature and an ARC-Seal with the same key and hash code (RFC
// 8617 §4.1.2, §4.1.3). Sign builds signed messages for tests and the lab;
// mxray itself never signs mail.
//
// Decisions where the RFCs leave room, each cited at the rule:
//   - rsa-sha1 is permerror/unsupported-algorithm (RFC 8301 §3.1: it
//     "MUST NOT be used for signing or verifying").
//   - RSA keys under 1024 bits are policy/key-too-short (RFC 8301 §3.2);
//     under 2048 bits pass with a warning.
//   - An empty p= (revoked key) is fail (RFC 6376 §6.1.2 treats it as a
//     failed signature check); a body hash mismatch and a header signature
//     mismatch are fail; everything that stops the check earlier (syntax,
//     missing key, expired x=, t= in the future beyond ClockSkew) is
//     permerror; a DNS failure is temperror.
//   - l= is honoured: the signature can pass, with a warning and the count
//     of unsigned bytes.
//   - With several key records at one name, each is tried and the best
//     result kept (RFC 6376 §6.1.2 allows either).
//
// Not supported: the q= methods other than dns/txt (none are defined), the
// z= copied header fields (parsed as a tag, not decoded), signing beyond
// the test helper, and the rsa-sha1 verification RFC 8301 forbids.
package dkim
