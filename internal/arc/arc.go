// Package arc validates Authenticated Received Chains (RFC 8617): the
// ARC-Seal, ARC-Message-Signature and ARC-Authentication-Results header
// fields that intermediaries (mailing lists, forwarders, filtering
// services) add so that later receivers can see the authentication
// results each hop recorded before it changed the message.
//
// Verify follows the validator actions of RFC 8617 §5.2 and reports the
// chain validation status (none, pass, fail), the oldest instance whose
// message signature still verifies ("oldest-pass", step 5), every hop's
// recorded results, and on fail the instance, header field and reason where
// the chain breaks. Signatures are verified with package dkim, which shares
// its tag parser, canonicalization and key lookup.
//
// Not supported: sealing (mxray validates, it does not forward mail), the
// multiple-algorithm sets of the ARC-MULTI draft, and Authentication-Results
// payload parsing beyond its authserv-id (the payload is shown as
// recorded).
package arc

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dkim"
)

// Status is a chain validation status (RFC 8617 §4.4), also the RFC 8601
// token of the "arc" method.
type Status string

// The three chain validation statuses.
const (
	None Status = "none" // the message carries no ARC set
	Pass Status = "pass" // every seal and the newest message signature verify
	Fail Status = "fail" // the chain is broken: treat it as absent (RFC 8617 §5.2)
)

// Reason says why a chain failed.
type Reason string

// The reasons, in the order RFC 8617 §5.2 checks them.
const (
	ReasonMessage   Reason = "malformed-message"   // the header cannot be split into fields
	ReasonTooMany   Reason = "too-many-sets"       // instances above 50 (step 1)
	ReasonLatestCV  Reason = "newest-seal-cv-fail" // the newest ARC-Seal says cv=fail (step 2)
	ReasonStructure Reason = "structure"           // a field is missing, repeated, unparseable, or instances have a gap (step 3)
	ReasonCV        Reason = "cv-invalid"          // cv= is not none for i=1 and pass above (step 3)
	ReasonSignature Reason = "ams-invalid"         // the newest ARC-Message-Signature does not verify (step 4)
	ReasonSeal      Reason = "seal-invalid"        // an ARC-Seal does not verify (step 6)
)

// MaxInstances is the highest instance value (RFC 8617 §4.2.1).
const MaxInstances = 50

// The header field names.
const (
	FieldSeal      = "ARC-Seal"
	FieldSignature = "ARC-Message-Signature"
	FieldResults   = "ARC-Authentication-Results"
)

// Set is one ARC set: what one hop recorded and signed.
type Set struct {
	Instance int `json:"instance"`
	// AuthServID and Results are the hop's ARC-Authentication-Results:
	// the server that judged, and what it found (the authres payload as
	// recorded, after "i=N;").
	AuthServID string `json:"authserv_id,omitempty"`
	Results    string `json:"results,omitempty"`
	CV         string `json:"cv,omitempty"` // the seal's cv= tag
	// Seal and Signature are the verification of the ARC-Seal and the
	// ARC-Message-Signature, when the validation reached them.
	Seal      *dkim.Result `json:"seal,omitempty"`
	Signature *dkim.Result `json:"signature,omitempty"`
}

// Result is the validation of a message's chain, with its evidence.
type Result struct {
	Status Status `json:"status"`
	Reason Reason `json:"reason,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Instance and Field locate the break: the set and header field where
	// validation failed (zero and "" when it is not tied to one).
	Instance int    `json:"instance,omitempty"`
	Field    string `json:"field,omitempty"`
	// N is the highest instance found.
	N int `json:"n"`
	// OldestPass is RFC 8617 §5.2 step 5's value: the lowest instance from
	// which every ARC-Message-Signature verifies, 0 when all do. Set only
	// when the chain passes.
	OldestPass int   `json:"oldest_pass"`
	Sets       []Set `json:"sets,omitempty"`
}

// field is one ARC header field of the message.
type field struct {
	index    int // in the message's fields
	name     string
	instance int
	cv       string // ARC-Seal
	authserv string // ARC-Authentication-Results
	results  string
}

// set gathers the fields of one instance.
type set struct{ aar, ams, as []field }

// Verify validates the chain of a message (RFC 8617 §5.2).
func Verify(ctx context.Context, env diag.Env, message []byte) Result {
	start := env.Clock()
	r := verify(ctx, env, message)
	env.Log().Debug("arc verify", "status", r.Status, "reason", r.Reason, "n", r.N,
		"instance", r.Instance, "elapsed", env.Clock().Sub(start))
	return r
}

func verify(ctx context.Context, env diag.Env, message []byte) Result {
	m, err := dkim.ParseMessage(message)
	if err != nil {
		return Result{Status: Fail, Reason: ReasonMessage, Detail: err.Error()}
	}
	sets := map[int]*set{}
	n := 0
	for i, f := range m.Fields {
		var name string
		switch {
		case strings.EqualFold(f.Name, FieldSeal):
			name = FieldSeal
		case strings.EqualFold(f.Name, FieldSignature):
			name = FieldSignature
		case strings.EqualFold(f.Name, FieldResults):
			name = FieldResults
		default:
			continue
		}
		af, err := parseField(i, name, f.Value())
		if err != nil {
			reason := ReasonStructure
			if err == errTooHigh {
				reason = ReasonTooMany // RFC 8617 §5.2 step 1
			}
			return Result{Status: Fail, Reason: reason, Field: name,
				Detail: fmt.Sprintf("%s (header field %d): %v", name, i+1, err)}
		}
		s := sets[af.instance]
		if s == nil {
			s = &set{}
			sets[af.instance] = s
		}
		switch name {
		case FieldSeal:
			s.as = append(s.as, af)
		case FieldSignature:
			s.ams = append(s.ams, af)
		default:
			s.aar = append(s.aar, af)
		}
		n = max(n, af.instance)
	}
	// RFC 8617 §5.2 step 1: no sets, no chain.
	if len(sets) == 0 {
		return Result{Status: None}
	}
	r := Result{N: n}
	for i := 1; i <= n; i++ {
		st := Set{Instance: i}
		if s := sets[i]; s != nil {
			if len(s.aar) > 0 {
				st.AuthServID, st.Results = s.aar[0].authserv, s.aar[0].results
			}
			if len(s.as) > 0 {
				st.CV = s.as[0].cv
			}
		}
		r.Sets = append(r.Sets, st)
	}
	fail := func(reason Reason, instance int, field, format string, args ...any) Result {
		r.Status, r.Reason, r.Instance, r.Field = Fail, reason, instance, field
		r.Detail = fmt.Sprintf(format, args...)
		return r
	}
	// RFC 8617 §5.2 step 2: a chain its newest sealer declared failed
	// stays failed.
	if s := sets[n]; s != nil && len(s.as) == 1 && strings.EqualFold(s.as[0].cv, "fail") {
		return fail(ReasonLatestCV, n, FieldSeal, "the newest seal (i=%d) records cv=fail", n)
	}
	// RFC 8617 §5.2 step 3: exactly one field of each kind per instance,
	// instances 1..N without gaps, cv=none at 1 and pass above.
	for i := 1; i <= n; i++ {
		s := sets[i]
		if s == nil {
			return fail(ReasonStructure, i, "", "instance %d is missing (instances must run 1..%d)", i, n)
		}
		for _, k := range []struct {
			name string
			fs   []field
		}{{FieldResults, s.aar}, {FieldSignature, s.ams}, {FieldSeal, s.as}} {
			if len(k.fs) != 1 {
				return fail(ReasonStructure, i, k.name, "instance %d has %d %s fields, want exactly 1", i, len(k.fs), k.name)
			}
		}
		want := "pass"
		if i == 1 {
			want = "none"
		}
		if !strings.EqualFold(s.as[0].cv, want) {
			return fail(ReasonCV, i, FieldSeal, "seal i=%d has cv=%s, want cv=%s", i, s.as[0].cv, want)
		}
	}
	// RFC 8617 §5.2 step 4: the newest message signature must verify.
	ams := dkim.VerifyField(ctx, env, m, sets[n].ams[0].index, dkim.KindAMS, nil)
	r.Sets[n-1].Signature = &ams
	if ams.Status != dkim.Pass {
		return fail(ReasonSignature, n, FieldSignature, "ARC-Message-Signature i=%d: %s %s: %s", n, ams.Status, ams.Reason, ams.Detail)
	}
	// Step 5 (optional, done for the evidence): oldest-pass.
	oldest := 0
	for i := n - 1; i >= 1; i-- {
		res := dkim.VerifyField(ctx, env, m, sets[i].ams[0].index, dkim.KindAMS, nil)
		r.Sets[i-1].Signature = &res
		if res.Status != dkim.Pass {
			oldest = i + 1
			break
		}
	}
	// Step 6: every seal, newest first, over the sets up to its own in
	// the order of RFC 8617 §5.1.1 (AAR, AMS, AS per instance).
	for i := n; i >= 1; i-- {
		var sealed []int
		for j := 1; j <= i; j++ {
			sealed = append(sealed, sets[j].aar[0].index, sets[j].ams[0].index)
			if j < i {
				sealed = append(sealed, sets[j].as[0].index)
			}
		}
		res := dkim.VerifyField(ctx, env, m, sets[i].as[0].index, dkim.KindSeal, sealed)
		r.Sets[i-1].Seal = &res
		if res.Status != dkim.Pass {
			return fail(ReasonSeal, i, FieldSeal, "ARC-Seal i=%d: %s %s: %s", i, res.Status, res.Reason, res.Detail)
		}
	}
	r.Status, r.OldestPass = Pass, oldest
	return r
}

var errTooHigh = fmt.Errorf("instance above %d", MaxInstances)

// parseField reads the instance of an ARC header field, and the cv= of a
// seal or the payload of an ARC-Authentication-Results.
func parseField(index int, name, value string) (field, error) {
	f := field{index: index, name: name}
	if name == FieldResults {
		// RFC 8617 §4.1.1: arc-info = instance [CFWS] ";" authres-payload,
		// instance = [CFWS] %s"i" [CFWS] "=" [CFWS] position.
		v := strings.TrimLeft(value, " \t\r\n")
		rest, ok := strings.CutPrefix(v, "i")
		if !ok {
			return f, fmt.Errorf("does not start with the instance tag i=")
		}
		rest = strings.TrimLeft(rest, " \t\r\n")
		if rest, ok = strings.CutPrefix(rest, "="); !ok {
			return f, fmt.Errorf("does not start with the instance tag i=")
		}
		pos, payload, ok := strings.Cut(rest, ";")
		if !ok {
			return f, fmt.Errorf("no ';' after the instance tag")
		}
		n, err := parseInstance(strings.Trim(pos, " \t\r\n"))
		if err != nil {
			return f, err
		}
		f.instance = n
		f.results = strings.Join(strings.Fields(payload), " ")
		id, _, _ := strings.Cut(f.results, ";")
		f.authserv = strings.TrimSpace(id)
		return f, nil
	}
	tags, err := dkim.ParseTags(value)
	if err != nil {
		return f, err
	}
	i, ok := tags.Get("i")
	if !ok {
		return f, fmt.Errorf("no instance tag i=")
	}
	if f.instance, err = parseInstance(strings.Trim(i, " \t\r\n")); err != nil {
		return f, err
	}
	if name == FieldSeal {
		cv, _ := tags.Get("cv")
		f.cv = strings.Trim(cv, " \t\r\n")
	}
	return f, nil
}

// parseInstance reads position = 1*2DIGIT, 1..50 (RFC 8617 §3.9, §4.2.1).
func parseInstance(s string) (int, error) {
	if len(s) == 0 || len(s) > 2 || strings.Trim(s, "0123456789") != "" {
		if strings.Trim(s, "0123456789") == "" && len(s) > 2 {
			return 0, errTooHigh
		}
		return 0, fmt.Errorf("instance i=%q is not a number from 1 to %d", s, MaxInstances)
	}
	n, _ := strconv.Atoi(s)
	if n < 1 {
		return 0, fmt.Errorf("instance i=%q is not a number from 1 to %d", s, MaxInstances)
	}
	if n > MaxInstances {
		return 0, errTooHigh
	}
	return n, nil
}
