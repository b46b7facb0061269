// Package tlsrpt parses SMTP TLS reports (RFC 8460 §4): the JSON documents
// in which sending MTAs tell a domain how many TLS sessions to its MX hosts
// succeeded or failed under its MTA-STS (RFC 8461) or DANE (RFC 7672)
// policy, and why.
//
// The parser is tolerant of what real reporters send: a missing
// sending-mta-ip or receiving-mx-hostname, a missing policy-domain or
// contact-info (null or absent), mx-host as a single string instead of an
// array (as in RFC 8460's own example), numbers sent as strings, values in
// upper case (normalised), result types outside the RFC's vocabulary (kept
// and noted in Warnings). It is strict where the report would lose its
// meaning: a missing report-id or date-range, a reporter that names itself
// neither by organization-name nor by contact-info, and negative or
// non-numeric counts are errors.
//
// Limits bound the input size, JSON nesting depth, number of policies and
// number of failure-details (see Limits).
//
// Not supported: checking a report against the policy actually published
// (that belongs to the analysis), and decompression or MIME (see ingest).
package tlsrpt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors; every error returned wraps one of them.
var (
	ErrSyntax                = errors.New("tlsrpt: malformed JSON")
	ErrMissing               = errors.New("tlsrpt: required field missing")
	ErrInvalid               = errors.New("tlsrpt: invalid value")
	ErrTooLarge              = errors.New("tlsrpt: report exceeds size limit")
	ErrTooDeep               = errors.New("tlsrpt: JSON nested too deeply")
	ErrTooManyPolicies       = errors.New("tlsrpt: too many policies")
	ErrTooManyFailureDetails = errors.New("tlsrpt: too many failure-details")
)

// Limits bounds the resources one report may use. A zero field takes the
// default from DefaultLimits.
type Limits struct {
	MaxBytes          int64 // bytes of JSON
	MaxDepth          int   // nesting of objects and arrays
	MaxPolicies       int   // entries in policies
	MaxFailureDetails int   // failure-details over all policies
}

// DefaultLimits are far above anything seen from real reporters, whose
// reports are a few kilobytes.
func DefaultLimits() Limits {
	return Limits{MaxBytes: 16 << 20, MaxDepth: 16, MaxPolicies: 10_000, MaxFailureDetails: 100_000}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxPolicies <= 0 {
		l.MaxPolicies = d.MaxPolicies
	}
	if l.MaxFailureDetails <= 0 {
		l.MaxFailureDetails = d.MaxFailureDetails
	}
	return l
}

// Report is an SMTP TLS report (RFC 8460 §4.4).
type Report struct {
	OrganizationName string
	DateRange        DateRange
	ContactInfo      string
	ReportID         string
	Policies         []PolicyResult
	// Warnings lists what was tolerated, each distinct warning once.
	Warnings []string
}

// Reporter names who sent the report: the organization-name, or the
// contact-info when that is missing. With ReportID it identifies a report.
func (r *Report) Reporter() string {
	if r.OrganizationName != "" {
		return r.OrganizationName
	}
	return r.ContactInfo
}

// DateRange is the reporting period, in UTC.
type DateRange struct {
	Start time.Time
	End   time.Time
}

// PolicyResult is one entry of policies: a policy and the sessions under it.
type PolicyResult struct {
	Policy         Policy
	Summary        Summary
	FailureDetails []FailureDetails
}

// Policy is the policy the sender applied (RFC 8460 §4.3).
type Policy struct {
	Type   PolicyType
	String []string // the policy as the sender saw it, one line or TLSA record per entry
	Domain string
	MXHost []string
}

// Summary counts sessions (RFC 8460 §4.4).
type Summary struct {
	TotalSuccessfulSessionCount int64
	TotalFailureSessionCount    int64
}

// FailureDetails describes one kind of failure (RFC 8460 §4.4). Addresses
// are kept as sent; reporters disagree on their formatting.
type FailureDetails struct {
	ResultType            ResultType
	SendingMTAIP          string
	ReceivingMXHostname   string
	ReceivingMXHelo       string
	ReceivingIP           string
	FailedSessionCount    int64
	AdditionalInformation string
	FailureReasonCode     string
}

// PolicyType is the kind of policy applied (RFC 8460 §4.3).
type PolicyType string

const (
	PolicyTypeSTS           PolicyType = "sts"             // MTA-STS, RFC 8461
	PolicyTypeTLSA          PolicyType = "tlsa"            // DANE, RFC 7672
	PolicyTypeNoPolicyFound PolicyType = "no-policy-found" // neither was found
)

// ResultType is the failure kind (RFC 8460 §4.3).
type ResultType string

const (
	// RFC 8460 §4.3.1, negotiation failures.
	ResultStartTLSNotSupported    ResultType = "starttls-not-supported"    // the MX did not offer STARTTLS
	ResultCertificateHostMismatch ResultType = "certificate-host-mismatch" // no name in the certificate matched
	ResultCertificateExpired      ResultType = "certificate-expired"       // the certificate had expired
	ResultCertificateNotTrusted   ResultType = "certificate-not-trusted"   // no trusted chain
	ResultValidationFailure       ResultType = "validation-failure"        // other validation failure
	// RFC 8460 §4.3.2, DANE.
	ResultTLSAInvalid   ResultType = "tlsa-invalid"   // the TLSA records were unusable
	ResultDNSSECInvalid ResultType = "dnssec-invalid" // the DNSSEC chain did not validate
	ResultDANERequired  ResultType = "dane-required"  // DANE required but not usable
	// RFC 8460 §4.3.3, MTA-STS.
	ResultSTSPolicyFetchError ResultType = "sts-policy-fetch-error" // the policy could not be fetched
	ResultSTSPolicyInvalid    ResultType = "sts-policy-invalid"     // the policy did not parse
	ResultSTSWebPKIInvalid    ResultType = "sts-webpki-invalid"     // the policy host's certificate failed
)

var (
	policyTypes = []PolicyType{PolicyTypeSTS, PolicyTypeTLSA, PolicyTypeNoPolicyFound}
	resultTypes = []ResultType{
		ResultStartTLSNotSupported, ResultCertificateHostMismatch, ResultCertificateExpired,
		ResultCertificateNotTrusted, ResultValidationFailure, ResultTLSAInvalid,
		ResultDNSSECInvalid, ResultDANERequired, ResultSTSPolicyFetchError,
		ResultSTSPolicyInvalid, ResultSTSWebPKIInvalid,
	}
)

// Known reports whether the value is one RFC 8460 defines.
func (v PolicyType) Known() bool { return known(v, policyTypes) }

// Known reports whether the value is one RFC 8460 defines.
func (v ResultType) Known() bool { return known(v, resultTypes) }

func known[T ~string](v T, set []T) bool {
	for _, k := range set {
		if v == k {
			return true
		}
	}
	return false
}

// The wire types mirror RFC 8460 §4.4; lenient field types absorb the
// variants that reporters send.
type wireReport struct {
	OrganizationName *optString `json:"organization-name"`
	DateRange        *struct {
		Start optString `json:"start-datetime"`
		End   optString `json:"end-datetime"`
	} `json:"date-range"`
	ContactInfo optString     `json:"contact-info"`
	ReportID    optString     `json:"report-id"`
	Policies    []*wirePolicy `json:"policies"`
}

type wirePolicy struct {
	Policy *struct {
		Type   optString  `json:"policy-type"`
		String stringList `json:"policy-string"`
		Domain optString  `json:"policy-domain"`
		MXHost stringList `json:"mx-host"`
	} `json:"policy"`
	Summary *struct {
		Successful *count `json:"total-successful-session-count"`
		Failure    *count `json:"total-failure-session-count"`
	} `json:"summary"`
	FailureDetails []*struct {
		ResultType            optString `json:"result-type"`
		SendingMTAIP          optString `json:"sending-mta-ip"`
		ReceivingMXHostname   optString `json:"receiving-mx-hostname"`
		ReceivingMXHelo       optString `json:"receiving-mx-helo"`
		ReceivingIP           optString `json:"receiving-ip"`
		FailedSessionCount    *count    `json:"failed-session-count"`
		AdditionalInformation optString `json:"additional-information"`
		FailureReasonCode     optString `json:"failure-reason-code"`
	} `json:"failure-details"`
}

// optString accepts a string or null.
type optString string

func (s *optString) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want a string, got %.20s", b)
	}
	*s = optString(strings.TrimSpace(v))
	return nil
}

// stringList accepts an array of strings, a single string, or null.
type stringList []string

func (l *stringList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*l = stringList{s}
		return nil
	}
	var v []optString
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("want an array of strings, got %.20s", b)
	}
	out := make(stringList, 0, len(v))
	for _, s := range v {
		out = append(out, string(s))
	}
	*l = out
	return nil
}

// count accepts a non-negative integer, as a number or as a string of
// digits.
type count struct {
	n int64
}

func (c *count) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f != math.Trunc(f) || f > 1<<53 {
		return fmt.Errorf("%w: count %.20q is not a non-negative integer", ErrInvalid, b)
	}
	c.n = int64(f)
	return nil
}

// Parse reads one report.
func Parse(r io.Reader, lim Limits) (*Report, error) {
	lim = lim.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, lim.MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	return ParseBytes(data, lim)
}

// ParseBytes parses a report held in memory.
func ParseBytes(data []byte, lim Limits) (*Report, error) {
	lim = lim.withDefaults()
	if int64(len(data)) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, lim.MaxBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))
	if err := checkShape(data, lim); err != nil {
		return nil, err
	}
	var w wireReport
	if err := json.Unmarshal(data, &w); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, ErrInvalid):
			return nil, err
		case errors.As(err, &se):
			return nil, fmt.Errorf("%w: at byte %d: %v", ErrSyntax, se.Offset, err)
		case errors.As(err, &te):
			return nil, fmt.Errorf("%w: %s: want %s, got %s", ErrInvalid, te.Field, te.Type, te.Value)
		}
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return convert(&w, lim)
}

// checkShape rejects input that is not a JSON object or that nests deeper
// than allowed, before anything is decoded. It counts brackets outside
// strings; json.Unmarshal checks the syntax itself afterwards. (The
// counts of policies and failure-details are checked after decoding: the
// byte limit already bounds the memory that decoding takes.)
func checkShape(data []byte, lim Limits) error {
	t := bytes.TrimLeft(data, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return fmt.Errorf("%w: not a JSON object", ErrSyntax)
	}
	depth, inString, escaped := 0, false, false
	for _, c := range t {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > lim.MaxDepth {
				return fmt.Errorf("%w: more than %d levels", ErrTooDeep, lim.MaxDepth)
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

func convert(w *wireReport, lim Limits) (*Report, error) {
	r := &Report{}
	warn := func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		for _, m := range r.Warnings {
			if m == msg {
				return
			}
		}
		if len(r.Warnings) < MaxWarnings {
			r.Warnings = append(r.Warnings, msg)
		}
	}
	if w.OrganizationName != nil {
		r.OrganizationName = string(*w.OrganizationName)
	}
	r.ContactInfo = string(w.ContactInfo)
	r.ReportID = string(w.ReportID)
	// RFC 8460 §4.4: report-id and date-range are REQUIRED; without them a
	// report can be neither deduplicated nor placed in time.
	if r.ReportID == "" {
		return nil, fmt.Errorf("%w: report-id", ErrMissing)
	}
	if r.Reporter() == "" {
		return nil, fmt.Errorf("%w: organization-name (and no contact-info to name the reporter)", ErrMissing)
	}
	if r.OrganizationName == "" {
		warn("organization-name missing; reporter named by contact-info")
	}
	if r.ContactInfo == "" {
		warn("contact-info missing")
	}
	if w.DateRange == nil || w.DateRange.Start == "" || w.DateRange.End == "" {
		return nil, fmt.Errorf("%w: date-range start-datetime and end-datetime", ErrMissing)
	}
	var err error
	if r.DateRange.Start, err = parseTime(string(w.DateRange.Start), warn); err != nil {
		return nil, fmt.Errorf("%w: date-range start-datetime: %v", ErrInvalid, err)
	}
	if r.DateRange.End, err = parseTime(string(w.DateRange.End), warn); err != nil {
		return nil, fmt.Errorf("%w: date-range end-datetime: %v", ErrInvalid, err)
	}
	if r.DateRange.End.Before(r.DateRange.Start) {
		warn("date-range ends before it starts")
	}
	if len(w.Policies) > lim.MaxPolicies {
		return nil, fmt.Errorf("%w: %d, limit %d", ErrTooManyPolicies, len(w.Policies), lim.MaxPolicies)
	}
	if len(w.Policies) == 0 {
		warn("no policies (RFC 8460 §4.4 requires at least one)")
	}
	details := 0
	for i, wp := range w.Policies {
		if wp == nil {
			warn("policies[%d] is null", i)
			continue
		}
		var pr PolicyResult
		if p := wp.Policy; p != nil {
			pr.Policy = Policy{
				Type:   enum(string(p.Type), policyTypes, "policy-type", warn),
				String: p.String,
				Domain: string(p.Domain),
				MXHost: p.MXHost,
			}
		}
		if pr.Policy.Type == "" {
			warn("policies[%d]: policy-type missing", i)
		}
		if pr.Policy.Domain == "" {
			warn("policies[%d]: policy-domain missing", i)
		}
		if s := wp.Summary; s != nil && s.Successful != nil && s.Failure != nil {
			pr.Summary = Summary{TotalSuccessfulSessionCount: s.Successful.n, TotalFailureSessionCount: s.Failure.n}
		} else {
			if s != nil && s.Successful != nil {
				pr.Summary.TotalSuccessfulSessionCount = s.Successful.n
			}
			if s != nil && s.Failure != nil {
				pr.Summary.TotalFailureSessionCount = s.Failure.n
			}
			warn("policies[%d]: summary incomplete; missing counts taken as 0", i)
		}
		details += len(wp.FailureDetails)
		if details > lim.MaxFailureDetails {
			return nil, fmt.Errorf("%w: limit %d", ErrTooManyFailureDetails, lim.MaxFailureDetails)
		}
		for j, fd := range wp.FailureDetails {
			if fd == nil {
				warn("policies[%d].failure-details[%d] is null", i, j)
				continue
			}
			d := FailureDetails{
				ResultType:            enum(string(fd.ResultType), resultTypes, "result-type", warn),
				SendingMTAIP:          string(fd.SendingMTAIP),
				ReceivingMXHostname:   string(fd.ReceivingMXHostname),
				ReceivingMXHelo:       string(fd.ReceivingMXHelo),
				ReceivingIP:           string(fd.ReceivingIP),
				AdditionalInformation: string(fd.AdditionalInformation),
				FailureReasonCode:     string(fd.FailureReasonCode),
			}
			if d.ResultType == "" {
				return nil, fmt.Errorf("%w: policies[%d].failure-details[%d].result-type", ErrMissing, i, j)
			}
			if fd.FailedSessionCount == nil {
				return nil, fmt.Errorf("%w: policies[%d].failure-details[%d].failed-session-count", ErrMissing, i, j)
			}
			d.FailedSessionCount = fd.FailedSessionCount.n
			pr.FailureDetails = append(pr.FailureDetails, d)
		}
		r.Policies = append(r.Policies, pr)
	}
	return r, nil
}

// MaxWarnings caps Report.Warnings.
const MaxWarnings = 32

// enum matches v against set without regard to case; a value outside set is
// kept as sent and warned about.
func enum[T ~string](v string, set []T, field string, warn func(string, ...any)) T {
	if v == "" {
		return ""
	}
	for _, k := range set {
		if strings.EqualFold(v, string(k)) {
			return k
		}
	}
	warn("%s %q is not a value RFC 8460 defines", field, v)
	return T(v)
}

// parseTime reads an RFC 3339 date-time (RFC 8460 §4.4). A time without a
// zone, which some reporters send, is taken as UTC with a warning.
func parseTime(s string, warn func(string, ...any)) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			warn("date-time %q has no time zone; taken as UTC", s)
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 date-time", s)
}
