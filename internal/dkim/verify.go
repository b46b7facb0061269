package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// MaxSignatures is how many DKIM-Signature fields Verify checks; the rest
// are reported as neutral/not-checked. RFC 6376 §4.2 lets verifiers limit
// the signatures they check, as a defence against denial of service.
const MaxSignatures = 10

// ClockSkew is the tolerance for t= in the future and x= in the past.
const ClockSkew = 5 * time.Minute

// Verify checks every DKIM-Signature of a message (up to MaxSignatures),
// top first, and returns one Result per signature; none when the message
// is unsigned. A message whose header cannot be parsed gives one permerror
// Result with ReasonMessage.
func Verify(ctx context.Context, env diag.Env, message []byte) []Result {
	start := env.Clock()
	m, err := ParseMessage(message)
	if err != nil {
		return []Result{{Status: Permerror, Reason: ReasonMessage, Field: KindDKIM,
			Detail: err.Error(), Err: err}}
	}
	var out []Result
	for i, f := range m.Fields {
		if !strings.EqualFold(f.Name, string(KindDKIM)) {
			continue
		}
		if len(out) >= MaxSignatures {
			out = append(out, Result{Status: Neutral, Reason: ReasonNotChecked, Field: KindDKIM,
				Index: i, Signature: f.Value(),
				Detail: fmt.Sprintf("mxray verifies at most %d signatures per message", MaxSignatures)})
			continue
		}
		out = append(out, VerifyField(ctx, env, m, i, KindDKIM, nil))
	}
	for _, r := range out {
		env.Log().Debug("dkim verify", "d", r.Domain, "s", r.Selector, "status", r.Status,
			"reason", r.Reason, "elapsed", env.Clock().Sub(start))
	}
	return out
}

// VerifyField verifies the signature in m.Fields[idx], a field of the
// given kind, the way RFC 6376 §6.1 verifies a DKIM-Signature. For
// KindSeal, sealed lists the indexes of the fields the seal signs in order
// (RFC 8617 §5.1.1), not counting the seal itself, which always comes
// last. It is exported for package arc; others use Verify.
func VerifyField(ctx context.Context, env diag.Env, m *Message, idx int, kind Kind, sealed []int) Result {
	f := m.Fields[idx]
	r := Result{Field: kind, Index: idx, Signature: f.Value()}
	perm := func(reason Reason, format string, args ...any) Result {
		r.Status, r.Reason, r.Detail = Permerror, reason, fmt.Sprintf(format, args...)
		return r
	}
	tags, err := ParseTags(r.Signature)
	if err != nil {
		r.Err = err
		return perm(ReasonSyntax, "%v", err)
	}
	required := []string{"v", "a", "b", "bh", "d", "h", "s"} // RFC 6376 §6.1.1
	switch kind {
	case KindAMS:
		required = []string{"i", "a", "b", "bh", "d", "h", "s"} // RFC 8617 §4.1.2
	case KindSeal:
		required = []string{"i", "a", "b", "d", "s", "cv"} // RFC 8617 §4.1.3
	}
	for _, t := range required {
		if v, ok := tags.Get(t); !ok {
			return perm(ReasonSyntax, "missing required tag %s=", t)
		} else if stripFWS(v) == "" && t != "h" {
			return perm(ReasonSyntax, "empty %s= tag", t)
		}
	}
	get := func(name string) string { v, _ := tags.Get(name); return stripFWS(v) }

	if kind == KindDKIM {
		// RFC 6376 §6.1.1: an unknown version is PERMFAIL.
		if v := get("v"); v != "1" {
			return perm(ReasonSyntax, "v=%s: only version 1 is defined", v)
		}
	}
	if kind == KindSeal {
		// RFC 8617 §4.1.3: "the DKIM "h" tag is NOT allowed and if found,
		// MUST result in a cv status of "fail"".
		if _, ok := tags.Get("h"); ok {
			return perm(ReasonSyntax, "h= is not allowed in an ARC-Seal")
		}
	} else {
		r.Canon = get("c")
	}
	r.Algorithm = get("a")
	r.Domain = get("d")
	r.Selector = get("s")

	var keyType string
	switch r.Algorithm {
	case "rsa-sha256":
		keyType = "rsa"
	case "ed25519-sha256": // RFC 8463 §3
		keyType = "ed25519"
	case "rsa-sha1":
		// RFC 8301 §3.1: "rsa-sha1 MUST NOT be used for signing or
		// verifying." It is no longer an algorithm a verifier implements,
		// so the signature is one with an unsupported a=: PERMFAIL by RFC
		// 6376 §6.1.1.
		return perm(ReasonAlgorithm, "a=rsa-sha1 must not be used for verifying (RFC 8301 §3.1)")
	default:
		return perm(ReasonAlgorithm, "a=%s is not a supported algorithm", r.Algorithm)
	}
	hcanon, bcanon := Relaxed, Relaxed // RFC 8617 §4.1.3: seals use relaxed
	if kind != KindSeal {
		if hcanon, bcanon, err = parseCanon(r.Canon); err != nil {
			return perm(ReasonSyntax, "c=%s: %v", r.Canon, err)
		}
	}
	if _, err := dnsx.Fqdn(r.Domain); err != nil || strings.HasPrefix(r.Domain, ".") {
		return perm(ReasonSyntax, "d=%s is not a domain name", r.Domain)
	}
	query, err := dnsx.Fqdn(r.Selector + "._domainkey." + r.Domain)
	if err != nil || strings.HasPrefix(r.Selector, ".") || strings.HasSuffix(r.Selector, ".") {
		return perm(ReasonSyntax, "s=%s is not a valid selector", r.Selector)
	}

	if kind != KindSeal {
		for _, h := range strings.Split(get("h"), ":") {
			if h == "" {
				// RFC 6376 §3.5: h= is a list of one or more field names.
				return perm(ReasonSyntax, "h= has an empty header name")
			}
			if !validFieldName(h) {
				return perm(ReasonSyntax, "h= names an invalid header field %q", h)
			}
			r.Headers = append(r.Headers, h)
		}
	}
	if kind == KindAMS && hasFold(r.Headers, string(KindSeal)) {
		// RFC 8617 §4.1.2: ARC header fields "MUST NOT be included in the
		// list of header fields covered by the signature of the AMS". We
		// enforce it for ARC-Seal, the chain's own signatures, as the ARC
		// test suite and OpenARC do; AMS signers commonly list
		// ARC-Authentication-Results, which is tolerated.
		return perm(ReasonSyntax, "h= lists ARC-Seal, which an ARC-Message-Signature must not sign (RFC 8617 §4.1.2)")
	}
	if kind == KindDKIM {
		// RFC 6376 §5.4: "The From header field MUST be signed".
		if !hasFold(r.Headers, "from") {
			return perm(ReasonFromUnsigned, "h= does not list From")
		}
		r.Identity = "@" + r.Domain
		if v, ok := tags.Get("i"); ok {
			r.Identity = stripFWS(v)
			at := strings.LastIndexByte(r.Identity, '@')
			if at < 0 {
				return perm(ReasonSyntax, "i=%s has no @", r.Identity)
			}
			// RFC 6376 §3.5 i=: the domain part "MUST be the same as, or a
			// subdomain of, the value of the "d=" tag".
			if dom := r.Identity[at+1:]; !strings.EqualFold(dom, r.Domain) && !hasSuffixFold(dom, "."+r.Domain) {
				return perm(ReasonIdentity, "i=%s is not within d=%s", r.Identity, r.Domain)
			}
		}
	} else {
		n, err := parseInstance(get("i"))
		if err != nil {
			return perm(ReasonSyntax, "i=%s: %v", get("i"), err)
		}
		r.Instance = n
	}
	if v, ok := tags.Get("q"); ok && kind != KindSeal {
		if !hasFold(splitList(v), "dns/txt") {
			return perm(ReasonSyntax, "q=%s does not offer dns/txt", stripFWS(v))
		}
	}
	if v, ok := tags.Get("l"); ok && kind != KindSeal {
		n, err := parseDecimal(stripFWS(v))
		if err != nil {
			return perm(ReasonSyntax, "l=%s: %v", stripFWS(v), err)
		}
		r.BodyLength = &n
	}
	var tsec, xsec int64
	if v, ok := tags.Get("t"); ok {
		if tsec, err = parseDecimal(stripFWS(v)); err != nil {
			return perm(ReasonSyntax, "t=%s: %v", stripFWS(v), err)
		}
		r.Timestamp = time.Unix(tsec, 0).UTC()
	}
	if v, ok := tags.Get("x"); ok && kind != KindSeal {
		if xsec, err = parseDecimal(stripFWS(v)); err != nil {
			return perm(ReasonSyntax, "x=%s: %v", stripFWS(v), err)
		}
		r.Expiration = time.Unix(xsec, 0).UTC()
		// RFC 6376 §3.5 x=: "the value of the "x=" tag MUST be greater
		// than the value of the "t=" tag if both are present".
		if !r.Timestamp.IsZero() && xsec <= tsec {
			return perm(ReasonSyntax, "x=%d is not after t=%d", xsec, tsec)
		}
	}
	sig, err := base64.StdEncoding.DecodeString(get("b"))
	if err != nil {
		return perm(ReasonSyntax, "b= is not base64: %v", err)
	}
	var bh []byte
	if kind != KindSeal {
		if bh, err = base64.StdEncoding.DecodeString(get("bh")); err != nil {
			return perm(ReasonSyntax, "bh= is not base64: %v", err)
		}
		r.BodyHashGiven = base64.StdEncoding.EncodeToString(bh)
	}

	// The body hash (RFC 6376 §3.7), computed before anything else can stop
	// us, as it is evidence in itself.
	bodyOK := true
	if kind != KindSeal {
		body := CanonBody(bcanon, m.Body)
		r.BodyBytes = int64(len(body))
		if r.BodyLength != nil {
			if *r.BodyLength > r.BodyBytes {
				// RFC 6376 §3.5 l=: the count cannot exceed the
				// canonicalized body; such a signature cannot verify.
				return perm(ReasonBodyLength, "l=%d but the canonicalized body has %d bytes", *r.BodyLength, r.BodyBytes)
			}
			body = body[:*r.BodyLength]
			if r.UnsignedBytes = r.BodyBytes - *r.BodyLength; r.UnsignedBytes > 0 {
				r.Warnings = append(r.Warnings, WarnPartialBody)
			}
		}
		sum := sha256.Sum256(body)
		r.BodyHashComputed = base64.StdEncoding.EncodeToString(sum[:])
		bodyOK = subtle.ConstantTimeCompare(sum[:], bh) == 1
	}

	// The header hash (RFC 6376 §3.7, RFC 8617 §5.1.1).
	var block []byte
	if kind == KindSeal {
		for _, i := range sealed {
			block = append(block, CanonHeader(Relaxed, m.Fields[i].Raw)...)
		}
	} else {
		block = headerBlock(m, hcanon, r.Headers)
	}
	self := CanonHeader(hcanon, withoutB(f.Raw))
	block = append(block, bytes.TrimSuffix(self, []byte("\r\n"))...)
	r.HashedHeaders = string(block)
	digest := sha256.Sum256(block)

	now := env.Clock()
	if !r.Expiration.IsZero() && now.After(r.Expiration.Add(ClockSkew)) {
		// RFC 6376 §6.1.1: "Verifiers MAY ignore the DKIM-Signature
		// header field and return PERMFAIL (signature expired)."
		return perm(ReasonExpired, "x= expired at %s", r.Expiration.Format(time.RFC3339))
	}
	if !r.Timestamp.IsZero() && r.Timestamp.After(now.Add(ClockSkew)) {
		// RFC 6376 §3.5 t=: "Verifiers MAY ignore signatures with a
		// timestamp in the future."
		return perm(ReasonFuture, "t= is %s, after now (%s) by more than %s",
			r.Timestamp.Format(time.RFC3339), now.UTC().Format(time.RFC3339), ClockSkew)
	}

	// The key (RFC 6376 §6.1.2).
	r.Query = strings.TrimSuffix(query, ".")
	qctx := ctx
	if env.Limits.DNS > 0 {
		tries := max(env.Limits.DNSTry, 1)
		var cancel context.CancelFunc
		qctx, cancel = context.WithTimeout(ctx, diag.Fit(ctx, env.Limits.DNS*time.Duration(tries)))
		defer cancel()
	}
	resp, err := env.Resolver.Query(qctx, query, dns.TypeTXT)
	if err != nil {
		r.Err = err
		switch {
		case errors.Is(err, dnsx.ErrNXDomain), errors.Is(err, dnsx.ErrNoData):
			return perm(ReasonKeyNotFound, "no key at %s: %v", r.Query, err)
		case dnsx.Temporary(err) || errors.Is(err, context.DeadlineExceeded):
			// RFC 6376 §6.1.2 step 2: "If the query for the public key
			// fails to respond, the Verifier MAY seek a later verification
			// attempt by returning TEMPFAIL (key unavailable)."
			r.Status, r.Reason, r.Detail = Temperror, ReasonDNS, err.Error()
			return r
		default:
			return perm(ReasonKeyNotFound, "key lookup %s: %v", r.Query, err)
		}
	}
	r.KeyRecords = resp.TXT()
	if len(r.KeyRecords) == 0 {
		return perm(ReasonKeyNotFound, "no TXT record at %s", r.Query)
	}
	// RFC 6376 §6.1.2 step 3: with several records a verifier "may cycle
	// through the key records"; the best outcome wins, ties to the first.
	var best Result
	for i, rec := range r.KeyRecords {
		c := r
		c.Warnings = append([]Warning(nil), r.Warnings...)
		checkKey(&c, kind, rec, keyType, digest[:], sig, bodyOK)
		if i == 0 || rank(c.Status) < rank(best.Status) {
			best = c
		}
	}
	return best
}

func rank(s Status) int {
	switch s {
	case Pass:
		return 0
	case Policy:
		return 1
	case Fail:
		return 2
	}
	return 3
}

// checkKey finishes r with one key record (RFC 6376 §6.1.2 steps 4–6 and
// §6.1.3).
func checkKey(r *Result, kind Kind, record, keyType string, digest, sig []byte, bodyOK bool) {
	fail := func(st Status, reason Reason, format string, args ...any) {
		r.Status, r.Reason, r.Detail = st, reason, fmt.Sprintf(format, args...)
	}
	k, err := ParseKey(record)
	if err != nil {
		r.Err = err
		fail(Permerror, ReasonKeySyntax, "%v", err)
		return
	}
	r.Key = k
	if k.Revoked {
		// RFC 6376 §3.6.1 p=: "An empty value means that this public key
		// has been revoked"; §6.1.2 step 6 treats it as a failed check.
		fail(Fail, ReasonKeyRevoked, "the key at %s is revoked (empty p=)", r.Query)
		return
	}
	if len(k.Services) > 0 && !hasFold(k.Services, "*") && !hasFold(k.Services, "email") {
		// RFC 6376 §3.6.1 s=: the key is not meant for email.
		fail(Permerror, ReasonKeyService, "the key's s=%s does not include email", strings.Join(k.Services, ":"))
		return
	}
	if len(k.Hashes) > 0 && !hasFold(k.Hashes, "sha256") {
		// RFC 6376 §6.1.2 step 5.
		fail(Permerror, ReasonKeyHash, "the key's h=%s does not allow sha256", strings.Join(k.Hashes, ":"))
		return
	}
	if k.Type != keyType {
		// RFC 6376 §6.1.2 step 6: "inappropriate key algorithm".
		fail(Permerror, ReasonKeyType, "the key is k=%s but the signature is a=%s", k.Type, r.Algorithm)
		return
	}
	if kind == KindDKIM && k.Strict() {
		// RFC 6376 §3.6.1 t=s: the i= domain must equal d=.
		at := strings.LastIndexByte(r.Identity, '@')
		if !strings.EqualFold(r.Identity[at+1:], r.Domain) {
			fail(Permerror, ReasonIdentity, "the key has t=s but i=%s is not in d=%s itself", r.Identity, r.Domain)
			return
		}
	}
	if k.Testing() {
		r.Testing = true
		r.Warnings = append(r.Warnings, WarnTesting)
	}
	if k.Type == "rsa" {
		if k.Bits < 1024 {
			// RFC 8301 §3.2: verifiers must handle 1024–4096 bits; smaller
			// keys are factorable and not acceptable.
			fail(Policy, ReasonKeyTooShort, "the RSA key has %d bits; at least 1024 are required (RFC 8301 §3.2)", k.Bits)
			return
		}
		if k.Bits < 2048 {
			r.Warnings = append(r.Warnings, WarnKeyShort)
		}
		r.SignatureVerified = rsa.VerifyPKCS1v15(k.pub.(*rsa.PublicKey), crypto.SHA256, digest, sig) == nil
	} else {
		// RFC 8463 §3: Ed25519 signs the SHA-256 hash.
		r.SignatureVerified = ed25519.Verify(k.pub.(ed25519.PublicKey), digest, sig)
	}
	switch {
	case !bodyOK:
		// RFC 6376 §6.1.3: "PERMFAIL (body hash did not verify)".
		how := "the header signature does not verify either"
		if r.SignatureVerified {
			how = "the header signature verifies, so only the body changed"
		}
		fail(Fail, ReasonBodyHash, "body hash %s, signature says %s; %s", r.BodyHashComputed, r.BodyHashGiven, how)
	case !r.SignatureVerified:
		fail(Fail, ReasonSignature, "b= does not verify with the key at %s", r.Query)
	default:
		r.Status, r.Reason, r.Detail = Pass, "", ""
	}
}

// headerBlock concatenates the canonicalized fields named by h=, each
// occurrence of a name taking the next instance from the bottom; names with
// no instance left contribute nothing (RFC 6376 §5.4.2).
func headerBlock(m *Message, c Canon, names []string) []byte {
	used := map[string]int{}
	var out []byte
	for _, n := range names {
		key := strings.ToLower(n)
		skip := used[key]
		used[key]++
		for i := len(m.Fields) - 1; i >= 0; i-- {
			if !strings.EqualFold(m.Fields[i].Name, n) {
				continue
			}
			if skip > 0 {
				skip--
				continue
			}
			out = append(out, CanonHeader(c, m.Fields[i].Raw)...)
			break
		}
	}
	return out
}

// parseInstance reads an ARC instance tag value: 1*2DIGIT, 1 to 50 (RFC
// 8617 §4.2.1).
func parseInstance(s string) (int, error) {
	if len(s) == 0 || len(s) > 2 {
		return 0, errors.New("want 1 to 50")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 50 || s[0] == '+' || s[0] == '-' {
		return 0, errors.New("want 1 to 50")
	}
	return n, nil
}

// parseDecimal reads 1*12DIGIT (RFC 6376 §3.5 t=, x=; l= allows 76 but
// anything past int64 is longer than any body).
func parseDecimal(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, errors.New("not a decimal number of at most 18 digits")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

func validFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		// RFC 5322 §3.6.8: ftext is %d33-57 / %d59-126.
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return s != ""
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}
