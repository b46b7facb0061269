// Package dsn reads bounces: delivery status notifications in the format of
// RFC 3464 (and RFC 6533 message/global-delivery-status), the plain-text
// bounces that many MTAs and services still send (Postfix, Exim, qmail,
// Sendmail, Exchange, Gmail, Yahoo, Amazon SES...), and tells them apart
// from auto-replies (RFC 3834) and other mail.
//
// Parse returns a Report whose Kind says what the message is: a Bounce
// (hard or soft by the status class, RFC 3463 §3.1), a Delay, a positive
// notification (Delivered, Relayed, Expanded), an AutoReply or NotBounce.
// For every recipient the report carries the address, the action, the
// enhanced status code, the SMTP reply code, the diagnostic text and the
// remote MTA where the message states them, and where each value came from
// (Recipient.Source). The original message's header is returned when the
// bounce includes it, as a part or inline after the usual separator lines.
//
// Explain maps an enhanced status code to its meaning, the likely cause
// and what an administrator can do about it.
//
// A message that looks like a bounce (sent by a mailer-daemon, a bounce
// subject, a multipart/report) from which no recipient can be read fails
// with ErrUnrecognised; MIME errors from mimetree (limits) are passed on.
//
// Not supported: bounces whose text is in a language other than English
// beyond a few common subjects; per-MTA reason tables like sisimai's (the
// status code is taken as stated, or inferred from a few common phrases and
// marked so); message/global-delivery-status fields in UTF-8 are read as
// they are, without RFC 6533 utf-8-addr decoding.
package dsn

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/report/mimetree"
)

// Kind classifies a message.
type Kind string

const (
	Bounce    Kind = "bounce"     // delivery to at least one recipient failed
	Delay     Kind = "delay"      // delivery is delayed and still being retried
	Delivered Kind = "delivered"  // positive DSN: delivered to the recipient's mailbox
	Relayed   Kind = "relayed"    // positive DSN: relayed to a system that sends no DSNs
	Expanded  Kind = "expanded"   // positive DSN: delivered and forwarded to several addresses
	AutoReply Kind = "auto-reply" // an automatic reply such as a vacation notice (RFC 3834)
	NotBounce Kind = "not-bounce" // none of the above
)

// Severity of a bounce, from the class of its status code (RFC 3463 §3.1).
type Severity string

const (
	Hard Severity = "hard" // class 5, permanent failure: retrying will not help
	Soft Severity = "soft" // class 4, persistent transient failure: it may work later
)

// Action is the Action field of a recipient (RFC 3464 §2.3.3).
type Action string

const (
	ActionFailed    Action = "failed"    // could not be delivered
	ActionDelayed   Action = "delayed"   // not delivered yet, still trying
	ActionDelivered Action = "delivered" // delivered
	ActionRelayed   Action = "relayed"   // relayed to a system that will not send a DSN
	ActionExpanded  Action = "expanded"  // delivered to a list or alias and expanded
)

// Format says how the report was read.
type Format string

const (
	FormatDSN  Format = "rfc3464" // a message/delivery-status part
	FormatText Format = "text"    // heuristics over the human-readable text
	FormatSES  Format = "ses"     // an Amazon SES notification in JSON
	FormatNone Format = ""        // not a bounce
)

// Source says where a recipient's status came from.
type Source string

const (
	SourceDSN      Source = "delivery-status" // the Status field of a delivery-status part
	SourceText     Source = "text"            // a code stated in the text or the Diagnostic-Code
	SourceInferred Source = "inferred"        // guessed from words such as "user unknown"
)

// Errors.
var (
	ErrUnrecognised = errors.New("dsn: bounce format not recognised")
)

// Report is a classified message.
type Report struct {
	Kind     Kind
	Severity Severity // for Bounce: from the first failed recipient
	Format   Format

	// Header is the header of the message itself.
	Header  mimetree.Header
	From    string // RFC 2047 decoded
	Subject string // RFC 2047 decoded

	// Per-message fields (RFC 3464 §2.2).
	ReportingMTA       string
	ReceivedFromMTA    string
	ArrivalDate        string
	OriginalEnvelopeID string

	Recipients []Recipient

	HumanReadable string // the text the bounce shows to a person
	Original      *Original

	// AutoReplyReason says which signal made the message an auto-reply.
	AutoReplyReason string
}

// Recipient is one recipient's delivery status (RFC 3464 §2.3).
type Recipient struct {
	FinalRecipient    string // address, without type and angle brackets
	OriginalRecipient string
	Action            Action
	Status            string // enhanced status code, e.g. "5.1.1"
	StatusSource      Source
	SMTPCode          int    // the SMTP reply code, e.g. 550; 0 when not stated
	DiagnosticType    string // e.g. "smtp"
	DiagnosticCode    string // the remote server's reply or the MTA's explanation
	RemoteMTA         string
	LastAttemptDate   string
	WillRetryUntil    string
	// Fields holds the recipient's delivery-status group, unknown fields
	// included; empty for text bounces.
	Fields mimetree.Header
}

// Original is the header of the bounced message.
type Original struct {
	Header    mimetree.Header
	From      string // RFC 2047 decoded
	To        string // RFC 2047 decoded
	Subject   string // RFC 2047 decoded
	MessageID string
	Date      string
}

// Parse classifies and reads a message with mimetree.DefaultLimits.
func Parse(raw []byte) (*Report, error) {
	return ParseLimits(raw, mimetree.DefaultLimits)
}

// ParseLimits is Parse with the MIME limits lim.
func ParseLimits(raw []byte, lim mimetree.Limits) (*Report, error) {
	root, err := mimetree.ParseLimits(raw, lim)
	if err != nil {
		return nil, fmt.Errorf("dsn: %w", err)
	}
	return FromTree(root)
}

// FromTree classifies an already parsed message.
func FromTree(root *mimetree.Part) (*Report, error) {
	r := &Report{
		Header:  root.Header,
		From:    root.Header.Decoded("From"),
		Subject: root.Header.Decoded("Subject"),
	}
	r.HumanReadable = humanText(root)
	r.Original = findOriginal(root, r.HumanReadable)

	if ds := findOutside(root, isDeliveryStatus); ds != nil {
		r.readDeliveryStatus(ds.Body)
		if len(r.Recipients) > 0 {
			r.Format = FormatDSN
			r.classify()
			return r, nil
		}
	}
	r.Recipients = nil
	fromDaemon := isDaemon(root.Header.Get("From"))
	if reason := autoReplyHeader(root.Header); reason != "" && !fromDaemon {
		r.Kind, r.AutoReplyReason = AutoReply, reason
		return r, nil
	}
	if r.readSES(r.HumanReadable) {
		r.Format = FormatSES
		r.classify()
		return r, nil
	}
	if looksLikeBounce(root, r.Subject, r.HumanReadable, fromDaemon) {
		// Some gateways forward the DSN they received as an attachment
		// with an empty note of their own.
		if inner := findOutside(root, func(p *mimetree.Part) bool { return p.Embedded() != nil && p != root }); inner != nil {
			if ds := findOutside(inner.Embedded(), isDeliveryStatus); ds != nil {
				r.Recipients = nil
				r.readDeliveryStatus(ds.Body)
				if len(r.Recipients) > 0 {
					r.Format = FormatDSN
					if o := findOriginal(inner.Embedded(), ""); o != nil {
						r.Original = o
					}
					r.classify()
					return r, nil
				}
			}
		}
		r.readText(root)
		if len(r.Recipients) > 0 {
			r.Format = FormatText
			r.classify()
			return r, nil
		}
		if reason := autoReplySubject(r.Subject); reason != "" {
			r.Kind, r.AutoReplyReason = AutoReply, reason
			return r, nil
		}
		return nil, fmt.Errorf("%w: no recipient found (subject %q)", ErrUnrecognised, r.Subject)
	}
	if reason := autoReplySubject(r.Subject); reason != "" {
		r.Kind, r.AutoReplyReason = AutoReply, reason
		return r, nil
	}
	r.Kind = NotBounce
	return r, nil
}

// classify sets Kind and Severity from the recipients' actions.
func (r *Report) classify() {
	var failed, delayed, delivered, relayed, expanded *Recipient
	for i := range r.Recipients {
		rc := &r.Recipients[i]
		switch effectiveAction(rc) {
		case ActionFailed:
			if failed == nil {
				failed = rc
			}
		case ActionDelayed:
			if delayed == nil {
				delayed = rc
			}
		case ActionDelivered:
			delivered = rc
		case ActionRelayed:
			relayed = rc
		case ActionExpanded:
			expanded = rc
		}
	}
	switch {
	case failed != nil:
		r.Kind = Bounce
		// RFC 3463 §3.1: class 4 is a persistent transient failure, class 5
		// a permanent one.
		if strings.HasPrefix(failed.Status, "4.") {
			r.Severity = Soft
		} else {
			r.Severity = Hard
		}
	case delayed != nil:
		r.Kind = Delay
	case expanded != nil:
		r.Kind = Expanded
	case relayed != nil:
		r.Kind = Relayed
	case delivered != nil:
		r.Kind = Delivered
	default:
		r.Kind = NotBounce
	}
}

// effectiveAction maps the actions of RFC 3464 §2.3.3 to themselves and
// the non-standard ones seen in the wild to the nearest standard one:
// Postfix address verification ("deliverable", "undeliverable"), SendGrid
// ("expired"). An unknown or missing action follows the status class.
func effectiveAction(rc *Recipient) Action {
	switch rc.Action {
	case ActionFailed, ActionDelayed, ActionDelivered, ActionRelayed, ActionExpanded:
		return rc.Action
	case "undeliverable", "expired", "bounced", "failure":
		return ActionFailed
	case "deliverable":
		return ActionDelivered
	}
	switch firstByte(rc.Status, 0) {
	case '5':
		return ActionFailed
	case '4':
		return ActionDelayed
	case '2':
		return ActionDelivered
	}
	return ""
}

func isDeliveryStatus(p *mimetree.Part) bool {
	// RFC 6533 §6.2 adds message/global-delivery-status.
	return p.MediaType == "message/delivery-status" || p.MediaType == "message/global-delivery-status"
}

// findOutside returns the first part that matches without looking inside
// attached messages: a bounce of a bounce carries the inner one as its
// original message.
func findOutside(root *mimetree.Part, match func(*mimetree.Part) bool) *mimetree.Part {
	if match(root) {
		return root
	}
	if root.Embedded() != nil && root.Depth > 0 {
		return nil
	}
	for _, c := range root.Children {
		if p := findOutside(c, match); p != nil {
			return p
		}
	}
	return nil
}

// readDeliveryStatus parses the field groups of a delivery-status body
// (RFC 3464 §2.1): one per-message group, then one group per recipient.
func (r *Report) readDeliveryStatus(body []byte) {
	rest := body
	for n := 0; len(rest) > 0 && n < maxGroups; n++ {
		h, next, err := mimetree.SplitHeader(rest)
		if err != nil || len(next) >= len(rest) {
			break
		}
		rest = next
		if len(h.Fields) == 0 {
			continue
		}
		r.perMessage(h)
		if h.Get("Final-Recipient") == "" && h.Get("Original-Recipient") == "" && h.Get("Action") == "" {
			continue
		}
		if len(r.Recipients) >= maxRecipients {
			break
		}
		rc := recipientFromFields(h)
		// A group without an address or without anything that says what
		// happened is no evidence; a DSN of only such groups is read as
		// if it had none.
		if rc.FinalRecipient == "" || effectiveAction(&rc) == "" {
			continue
		}
		r.Recipients = append(r.Recipients, rc)
	}
}

const (
	maxGroups     = 2000
	maxRecipients = 1000
)

func (r *Report) perMessage(h mimetree.Header) {
	set := func(dst *string, name string) {
		if *dst == "" {
			*dst = typedValue(h.Get(name))
		}
	}
	set(&r.ReportingMTA, "Reporting-MTA")
	set(&r.ReceivedFromMTA, "Received-From-MTA")
	if r.ArrivalDate == "" {
		r.ArrivalDate = h.Get("Arrival-Date")
	}
	if r.OriginalEnvelopeID == "" {
		r.OriginalEnvelopeID = h.Get("Original-Envelope-Id")
	}
}

func recipientFromFields(h mimetree.Header) Recipient {
	rc := Recipient{
		FinalRecipient:    address(typedValue(h.Get("Final-Recipient"))),
		OriginalRecipient: address(typedValue(h.Get("Original-Recipient"))),
		Action:            Action(strings.ToLower(firstWord(h.Get("Action")))),
		RemoteMTA:         hostName(typedValue(h.Get("Remote-MTA"))),
		LastAttemptDate:   h.Get("Last-Attempt-Date"),
		WillRetryUntil:    h.Get("Will-Retry-Until"),
		Fields:            h,
	}
	if rc.FinalRecipient == "" {
		rc.FinalRecipient = rc.OriginalRecipient
	}
	if st := findStatus(h.Get("Status"), true); st != "" {
		rc.Status, rc.StatusSource = st, SourceDSN
	}
	// RFC 3464 §2.3.6: Diagnostic-Code is "diagnostic-type; text".
	if dc := h.Get("Diagnostic-Code"); dc != "" {
		typ, text, ok := strings.Cut(dc, ";")
		if ok && !strings.ContainsAny(strings.TrimSpace(typ), " \t") {
			rc.DiagnosticType = strings.ToLower(strings.TrimSpace(typ))
			rc.DiagnosticCode = strings.TrimSpace(text)
		} else {
			rc.DiagnosticCode = strings.TrimSpace(dc)
		}
		rc.SMTPCode = findSMTPCode(rc.DiagnosticCode, true)
		// A generic or absent Status is refined by a more specific code
		// stated in the diagnostic.
		if st := findStatus(rc.DiagnosticCode, false); st != "" && (rc.Status == "" || strings.HasSuffix(rc.Status, ".0.0")) && st[0] == firstByte(rc.Status, st[0]) {
			rc.Status, rc.StatusSource = st, SourceText
		}
	}
	if rc.Action == "" {
		switch firstByte(rc.Status, 0) {
		case '5':
			rc.Action = ActionFailed
		case '4':
			rc.Action = ActionDelayed
		case '2':
			rc.Action = ActionDelivered
		}
	}
	if rc.Status == "" && effectiveAction(&rc) != ActionDelivered {
		// RFC 3464 §2.3.4 makes Status required; some MTAs leave it out
		// or empty.
		switch st := inferStatus(rc.DiagnosticCode); {
		case st != "":
			rc.Status, rc.StatusSource = st, SourceInferred
		case rc.SMTPCode >= 400:
			rc.Status, rc.StatusSource = strconv.Itoa(rc.SMTPCode/100)+".0.0", SourceInferred
		case effectiveAction(&rc) == ActionFailed:
			rc.Status, rc.StatusSource = "5.0.0", SourceInferred
		case effectiveAction(&rc) == ActionDelayed:
			rc.Status, rc.StatusSource = "4.0.0", SourceInferred
		}
	}
	return rc
}

func firstByte(s string, def byte) byte {
	if s == "" {
		return def
	}
	return s[0]
}

// typedValue strips the type of "type; value" fields such as
// Reporting-MTA: dns; mx.example.com (RFC 3464 §2.1.2).
func typedValue(s string) string {
	if _, v, ok := strings.Cut(s, ";"); ok {
		return strings.TrimSpace(v)
	}
	return strings.TrimSpace(s)
}

// hostName keeps the host of a Remote-MTA value and drops the comments
// that some MTAs append: "mx.example.jp. (192.0.2.1, the server for...)".
func hostName(s string) string {
	if i := strings.IndexAny(s, " \t([<"); i > 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(strings.Trim(s, "[]"), ".")
}

// address strips angle brackets and surrounding junk from an address.
func address(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	return strings.Trim(s, "<>\"' \t")
}

func firstWord(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, " \t(;"); i >= 0 {
		s = s[:i]
	}
	return s
}

// statusRe matches an enhanced status code (RFC 3463 §2): class "." subject
// "." detail, subject and detail of 1 to 3 digits.
var statusRe = regexp.MustCompile(`([245])\.(\d{1,3})\.(\d{1,3})`)

// findStatus returns the first enhanced status code in s that is not part
// of a longer dotted number (an IP address or a version). With any set,
// class 2 codes count too; text bounces only look for failures.
func findStatus(s string, any bool) string {
	for _, m := range statusRe.FindAllStringIndex(s, -1) {
		i, j := m[0], m[1]
		if i > 0 && (isDigit(s[i-1]) || s[i-1] == '.') {
			continue
		}
		if j < len(s) && (isDigit(s[j]) || (s[j] == '.' && j+1 < len(s) && isDigit(s[j+1]))) {
			continue
		}
		if !any && s[i] == '2' {
			continue
		}
		return s[i:j]
	}
	return ""
}

// smtpCodeRe matches an SMTP reply code (RFC 5321 §4.2) as bounces quote
// it: at the start of a line or after a space, colon, bracket or "#",
// followed by a space, a hyphen or the end.
var smtpCodeRe = regexp.MustCompile(`(?:^|[\s:(\[#"'])([245][0-5]\d)(?:[\s\-]|$)`)

func findSMTPCode(s string, any bool) int {
	for _, m := range smtpCodeRe.FindAllStringSubmatchIndex(s, -1) {
		code := s[m[2]:m[3]]
		if !any && code[0] == '2' {
			continue
		}
		n, _ := strconv.Atoi(code)
		return n
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
