// Package arf parses Abuse Reporting Format feedback reports (RFC 5965),
// including DMARC failure reports, which are ARF reports of feedback type
// auth-failure (RFC 6591, RFC 9991; RFC 7489 §7.3 before it).
//
// Parse takes a whole message and returns a Report: every field of the
// message/feedback-report part (RFC 5965 §3.1, §3.2; RFC 6591 §3.1, §3.2),
// the human-readable part, and the original message or its header
// (message/rfc822, message/global or text/rfc822-headers) with its From,
// Subject and Message-ID. Unknown fields are kept in Report.Fields.
//
// A message that is not an ARF report fails with an error wrapping
// ErrNotARF and one reason: ErrNotMultipartReport, ErrWrongReportType,
// ErrNoFeedbackPart or ErrMissingField. Errors from the MIME layer
// (mimetree limits) are passed on wrapped and are not ErrNotARF.
//
// Tolerated departures from the RFCs seen in real reports are accepted and
// listed in Report.Deviations: a multipart/mixed container that still holds
// a message/feedback-report part (Netease), a missing report-type
// parameter, Received-Date instead of Arrival-Date (pre-RFC drafts),
// text/rfc822-header for text/rfc822-headers.
//
// Not supported: ARF reports forwarded inside another message (the report
// must be the message given), and the redaction scheme of RFC 6590 (redacted
// values are returned as they are).
package arf

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/mxray/mxray/internal/report/mimetree"
)

// FeedbackType is the Feedback-Type field (RFC 5965 §3.1, §7.3 registry).
// Values outside the registry are kept as written, in lower case.
type FeedbackType string

const (
	Abuse       FeedbackType = "abuse"        // unsolicited or otherwise abusive mail
	AuthFailure FeedbackType = "auth-failure" // failed authentication: DMARC/SPF/DKIM failure report (RFC 6591)
	Fraud       FeedbackType = "fraud"        // fraudulent or phishing mail
	NotSpam     FeedbackType = "not-spam"     // mail wrongly classified as spam (RFC 6650)
	Other       FeedbackType = "other"        // anything not covered by the other types
	Virus       FeedbackType = "virus"        // a virus was found in the message
)

// AuthFailureType is the Auth-Failure field of an auth-failure report
// (RFC 6591 §3.2, §6.3 registry; dmarc added by RFC 7489 §12.5).
type AuthFailureType string

const (
	FailAdsp      AuthFailureType = "adsp"      // the message failed an ADSP check
	FailBodyHash  AuthFailureType = "bodyhash"  // a DKIM body hash did not match
	FailRevoked   AuthFailureType = "revoked"   // the DKIM key had been revoked
	FailSignature AuthFailureType = "signature" // a DKIM signature did not verify
	FailSPF       AuthFailureType = "spf"       // the SPF check failed
	FailDMARC     AuthFailureType = "dmarc"     // the DMARC check failed
)

// DeliveryResult is the Delivery-Result field (RFC 6591 §3.2).
type DeliveryResult string

const (
	Delivered      DeliveryResult = "delivered" // delivered to the recipient's inbox
	DeliveredSpam  DeliveryResult = "spam"      // delivered to a spam folder
	DeliveryPolicy DeliveryResult = "policy"    // not delivered, by local policy
	DeliveryReject DeliveryResult = "reject"    // rejected
	DeliveryOther  DeliveryResult = "other"     // some other outcome
)

// Errors. A near miss wraps ErrNotARF and exactly one of the reasons.
var (
	ErrNotARF             = errors.New("arf: not an ARF report")
	ErrNotMultipartReport = errors.New("arf: not multipart/report")
	ErrWrongReportType    = errors.New("arf: report-type is not feedback-report")
	ErrNoFeedbackPart     = errors.New("arf: no message/feedback-report part")
	ErrMissingField       = errors.New("arf: required field missing")
)

// Report is a parsed feedback report.
type Report struct {
	// Header is the header of the report message itself.
	Header  mimetree.Header
	Subject string // RFC 2047 decoded

	// RFC 5965 §3.1 required fields.
	FeedbackType FeedbackType
	UserAgent    string
	Version      string

	// RFC 5965 §3.2 optional fields.
	OriginalEnvelopeID    string
	OriginalMailFrom      string   // without angle brackets; "" for the null path
	OriginalRcptTo        []string // without angle brackets
	ArrivalDate           string   // as written
	ArrivalTime           time.Time
	ReportingMTA          string
	SourceIP              netip.Addr // invalid when absent or unparsable (see Deviations)
	Incidents             int        // 0 when absent
	AuthenticationResults []string
	ReportedDomain        []string
	ReportedURI           []string

	// RFC 6591 §3.1, §3.2 fields of auth-failure reports.
	AuthFailure             AuthFailureType
	DeliveryResult          DeliveryResult
	DKIMDomain              string
	DKIMIdentity            string
	DKIMSelector            string
	DKIMCanonicalizedHeader []byte // base64 decoded
	DKIMCanonicalizedBody   []byte // base64 decoded
	SPFDNS                  string
	// IdentityAlignment lists the aligned mechanisms ("spf", "dkim") or
	// "none" (RFC 7489 §7.3.1).
	IdentityAlignment []string

	// Fields holds the whole message/feedback-report part, unknown fields
	// included.
	Fields mimetree.Header

	HumanReadable string // the first text part, line endings normalised
	Original      *Original

	// Deviations lists what was wrong with the report but tolerated.
	Deviations []string
}

// Original is the reported message or its header.
type Original struct {
	MediaType string // message/rfc822, message/global or text/rfc822-headers
	Header    mimetree.Header
	// Message is the parsed original message; nil when only its header was
	// sent.
	Message   *mimetree.Part
	From      string // RFC 2047 decoded
	To        string // RFC 2047 decoded
	Subject   string // RFC 2047 decoded
	MessageID string
	Date      string
}

// Parse parses a feedback report with mimetree.DefaultLimits.
func Parse(raw []byte) (*Report, error) {
	return ParseLimits(raw, mimetree.DefaultLimits)
}

// ParseLimits parses a feedback report within the MIME limits lim.
func ParseLimits(raw []byte, lim mimetree.Limits) (*Report, error) {
	root, err := mimetree.ParseLimits(raw, lim)
	if err != nil {
		return nil, fmt.Errorf("arf: %w", err)
	}
	return FromTree(root)
}

// FromTree reads a report from an already parsed message, for callers that
// parsed it to decide what it is.
func FromTree(root *mimetree.Part) (*Report, error) {
	r := &Report{Header: root.Header, Subject: root.Header.Decoded("Subject")}
	fb, err := r.findFeedbackPart(root)
	if err != nil {
		return nil, err
	}
	f, err := mimetree.ParseHeader(fb.Body)
	if err != nil {
		return nil, fmt.Errorf("arf: feedback-report part: %w", err)
	}
	r.Fields = f
	if err := r.readFields(f); err != nil {
		return nil, err
	}
	r.readParts(root)
	return r, nil
}

// findFeedbackPart applies RFC 5965 §2: the report is a multipart/report
// with report-type=feedback-report whose second part is
// message/feedback-report. The part is taken wherever it is among the
// report's direct children.
func (r *Report) findFeedbackPart(root *mimetree.Part) (*mimetree.Part, error) {
	var fb *mimetree.Part
	for _, c := range root.Children {
		if c.MediaType == "message/feedback-report" {
			fb = c
			break
		}
	}
	switch {
	case root.MediaType != "multipart/report":
		if fb == nil || !root.IsMultipart() {
			return nil, fmt.Errorf("%w: %w: top-level type is %s", ErrNotARF, ErrNotMultipartReport, root.MediaType)
		}
		r.Deviations = append(r.Deviations, "report sent as "+root.MediaType+", not multipart/report (RFC 5965 §2)")
	case !strings.EqualFold(root.Params["report-type"], "feedback-report"):
		rt := root.Params["report-type"]
		if rt != "" {
			return nil, fmt.Errorf("%w: %w: report-type=%s", ErrNotARF, ErrWrongReportType, rt)
		}
		if fb != nil {
			r.Deviations = append(r.Deviations, "multipart/report without report-type (RFC 5965 §2)")
		}
	}
	if fb == nil {
		return nil, fmt.Errorf("%w: %w", ErrNotARF, ErrNoFeedbackPart)
	}
	return fb, nil
}

func (r *Report) readFields(f mimetree.Header) error {
	// RFC 5965 §3.1: Feedback-Type, User-Agent and Version MUST appear
	// exactly once.
	var missing []string
	for _, name := range []string{"Feedback-Type", "User-Agent", "Version"} {
		switch n := len(f.Values(name)); {
		case n == 0 || strings.TrimSpace(f.Get(name)) == "":
			missing = append(missing, name)
		case n > 1:
			r.Deviations = append(r.Deviations, name+" appears more than once (RFC 5965 §3.1)")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %w: %s", ErrNotARF, ErrMissingField, strings.Join(missing, ", "))
	}
	r.FeedbackType = FeedbackType(strings.ToLower(f.Get("Feedback-Type")))
	r.UserAgent = f.Get("User-Agent")
	r.Version = f.Get("Version")

	r.OriginalEnvelopeID = f.Get("Original-Envelope-Id")
	r.OriginalMailFrom = stripAngle(f.Get("Original-Mail-From"))
	for _, v := range f.Values("Original-Rcpt-To") {
		r.OriginalRcptTo = append(r.OriginalRcptTo, stripAngle(v))
	}
	r.ArrivalDate = f.Get("Arrival-Date")
	if r.ArrivalDate == "" && f.Get("Received-Date") != "" {
		r.ArrivalDate = f.Get("Received-Date")
		r.Deviations = append(r.Deviations, "Received-Date used instead of Arrival-Date (RFC 5965 §3.2)")
	}
	if r.ArrivalDate != "" {
		if t, err := mail.ParseDate(r.ArrivalDate); err == nil {
			r.ArrivalTime = t
		} else {
			r.Deviations = append(r.Deviations, "unparsable Arrival-Date "+strconv.Quote(r.ArrivalDate))
		}
	}
	r.ReportingMTA = f.Get("Reporting-MTA")
	if s := f.Get("Source-IP"); s != "" {
		ip, err := netip.ParseAddr(strings.Trim(s, "[] "))
		if err == nil {
			r.SourceIP = ip
		} else {
			r.Deviations = append(r.Deviations, "unparsable Source-IP "+strconv.Quote(s))
		}
	}
	if s := f.Get("Incidents"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			r.Incidents = n
		} else {
			r.Deviations = append(r.Deviations, "unparsable Incidents "+strconv.Quote(s))
		}
	}
	r.AuthenticationResults = nonEmpty(f.Values("Authentication-Results"))
	r.ReportedDomain = nonEmpty(f.Values("Reported-Domain"))
	r.ReportedURI = nonEmpty(f.Values("Reported-URI"))

	r.AuthFailure = AuthFailureType(strings.ToLower(f.Get("Auth-Failure")))
	r.DeliveryResult = DeliveryResult(strings.ToLower(f.Get("Delivery-Result")))
	r.DKIMDomain = f.Get("DKIM-Domain")
	r.DKIMIdentity = f.Get("DKIM-Identity")
	r.DKIMSelector = f.Get("DKIM-Selector")
	r.DKIMCanonicalizedHeader = r.base64Field(f, "DKIM-Canonicalized-Header")
	r.DKIMCanonicalizedBody = r.base64Field(f, "DKIM-Canonicalized-Body")
	r.SPFDNS = f.Get("SPF-DNS")
	if s := f.Get("Identity-Alignment"); s != "" {
		for _, v := range strings.Split(s, ",") {
			if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
				r.IdentityAlignment = append(r.IdentityAlignment, v)
			}
		}
	}
	return nil
}

// base64Field decodes a field that RFC 6591 §3.2 says is base64 encoded.
func (r *Report) base64Field(f mimetree.Header, name string) []byte {
	s := f.Get(name)
	if s == "" {
		return nil
	}
	s = strings.Map(func(c rune) rune {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			return -1
		}
		return c
	}, s)
	b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		r.Deviations = append(r.Deviations, name+" is not valid base64")
		return nil
	}
	return b
}

// readParts finds the human-readable part and the original message among
// the direct children of the report (RFC 5965 §2 (b) and (d)).
func (r *Report) readParts(root *mimetree.Part) {
	for _, c := range root.Children {
		switch {
		case r.HumanReadable == "" && strings.HasPrefix(c.MediaType, "text/") && !isHeadersType(c.MediaType):
			r.HumanReadable = c.Text()
		case r.HumanReadable == "" && c.MediaType == "multipart/alternative":
			if t := c.Find("text/plain"); t != nil {
				r.HumanReadable = t.Text()
			}
		case r.Original == nil && c.Embedded() != nil:
			m := c.Embedded()
			r.Original = &Original{MediaType: c.MediaType, Header: m.Header, Message: m}
		case r.Original == nil && isHeadersType(c.MediaType):
			if c.MediaType != "text/rfc822-headers" {
				r.Deviations = append(r.Deviations, c.MediaType+" used for text/rfc822-headers")
			}
			h, err := mimetree.ParseHeader(c.Body)
			if err != nil {
				r.Deviations = append(r.Deviations, "original headers: "+err.Error())
				continue
			}
			r.Original = &Original{MediaType: "text/rfc822-headers", Header: h}
		}
	}
	if o := r.Original; o != nil {
		o.From = o.Header.Decoded("From")
		o.To = o.Header.Decoded("To")
		o.Subject = o.Header.Decoded("Subject")
		o.MessageID = o.Header.Get("Message-Id")
		o.Date = o.Header.Get("Date")
	}
}

func isHeadersType(t string) bool {
	return t == "text/rfc822-headers" || t == "text/rfc822-header"
}

func stripAngle(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		s = s[1 : len(s)-1]
	}
	return s
}

func nonEmpty(vs []string) []string {
	var out []string
	for _, v := range vs {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}
