// Package dmarcrpt parses DMARC aggregate feedback reports: RFC 9990 (XML
// namespace urn:ietf:params:xml:ns:dmarc-2.0), RFC 7489 Appendix C, and the
// pre-RFC draft schema that some reporters still send (no namespace).
//
// Reports are read token by token with a streaming XML scanner of this
// package (see scan.go: it checks what encoding/xml in strict mode checks,
// at a fraction of the cost), so a report with hundreds of thousands of
// records is processed with flat memory through a Decoder (or Decode with a
// callback); Parse is the convenience form that keeps every record.
//
// The parser is tolerant of what real reporters send: any namespace or none,
// a byte order mark, surrounding whitespace, values in any letter case
// (normalised to the lower-case constants of this package; values outside
// the RFC's vocabulary are kept as sent and noted in Feedback.Warnings),
// missing optional elements, unknown elements (skipped), and a <feedback>
// wrapped in one stray element such as <xs:schema>. It is strict where the
// report would lose its meaning: a missing report_id, reporter (org_name and
// email both empty), date range or policy domain, and a record without a
// valid source_ip or count are errors.
//
// For safety it rejects DTDs and entity declarations, bounds the input size,
// element depth, length of any field and number of records (see Limits), and
// accepts only UTF-8, US-ASCII and ISO-8859-1 documents.
//
// Reading stops at </feedback>: whatever follows is not read. Syntax errors
// name the line of the input and the element path being read.
//
// Not supported: the RFC 9990 <extension> element's content (skipped), XML
// Schema validation, and documents in UTF-16 or other character sets.
package dmarcrpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"
)

// Sentinel errors; every error returned wraps exactly one of them.
var (
	ErrSyntax         = errors.New("dmarcrpt: malformed XML")
	ErrDoctype        = errors.New("dmarcrpt: DTD or entity declaration not allowed")
	ErrCharset        = errors.New("dmarcrpt: unsupported character set")
	ErrNotFeedback    = errors.New("dmarcrpt: not a DMARC aggregate report")
	ErrMissing        = errors.New("dmarcrpt: required element missing")
	ErrInvalid        = errors.New("dmarcrpt: invalid value")
	ErrTooLarge       = errors.New("dmarcrpt: report exceeds size limit")
	ErrTooDeep        = errors.New("dmarcrpt: elements nested too deeply")
	ErrFieldTooLong   = errors.New("dmarcrpt: element text too long")
	ErrTooManyRecords = errors.New("dmarcrpt: too many records")
	ErrRecordsFirst   = errors.New("dmarcrpt: record before report metadata")
)

// Limits bounds the resources one report may use. A zero field takes the
// default from DefaultLimits.
type Limits struct {
	MaxBytes    int64 // bytes read from the input
	MaxDepth    int   // element nesting
	MaxFieldLen int   // bytes of text in one element
	MaxRecords  int   // <record> elements
}

// DefaultLimits fit the largest reports seen in practice (a few hundred
// thousand records) with room to spare.
func DefaultLimits() Limits {
	return Limits{
		MaxBytes:    512 << 20,
		MaxDepth:    32,
		MaxFieldLen: 64 << 10,
		MaxRecords:  2_000_000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxBytes <= 0 {
		l.MaxBytes = d.MaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxFieldLen <= 0 {
		l.MaxFieldLen = d.MaxFieldLen
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = d.MaxRecords
	}
	return l
}

// Parse reads a whole report and keeps every record.
func Parse(r io.Reader, lim Limits) (*Report, error) {
	d := NewDecoder(r, lim)
	rep := &Report{}
	for {
		// Records are decoded in place, saving a copy and an allocation
		// per record.
		rep.Records = append(rep.Records, Record{})
		err := d.nextInto(&rep.Records[len(rep.Records)-1])
		if err == io.EOF {
			rep.Records = rep.Records[:len(rep.Records)-1]
			break
		}
		if err != nil {
			return nil, err
		}
	}
	fb, err := d.Feedback()
	if err != nil {
		return nil, err
	}
	rep.Feedback = *fb
	return rep, nil
}

// Decode reads a report, calling fn for each record in document order. fn
// is called only after the report's metadata and policy have been read and
// checked, so a caller may use them (through a Decoder) before the first
// record. An error from fn stops decoding and is returned as is.
func Decode(r io.Reader, lim Limits, fn func(*Record) error) (*Feedback, error) {
	d := NewDecoder(r, lim)
	for {
		rec, err := d.Next()
		if err == io.EOF {
			return d.Feedback()
		}
		if err != nil {
			return nil, err
		}
		if err := fn(rec); err != nil {
			return nil, err
		}
	}
}

// Decoder reads a report one record at a time.
type Decoder struct {
	lim Limits
	sc  *scanner

	stack    []qname
	text     []byte
	leafAt   int // collect the text of the element at this depth
	fb       Feedback
	warned   map[string]bool
	interned map[string]string
	state    decState
	pending  bool // the start tag of a record has been read
	haveMeta bool
	havePol  bool
	err      error // sticky
}

type decState int

const (
	stateStart   decState = iota // before <feedback>
	stateHeader                  // inside <feedback>, before the first record
	stateRecords                 // header checked, reading records
	stateDone                    // </feedback> seen
)

// NewDecoder returns a Decoder reading from r within lim. It reads the
// first bytes of r to find a byte order mark; a read error is reported by
// the first call of Feedback or Next.
func NewDecoder(r io.Reader, lim Limits) *Decoder {
	lim = lim.withDefaults()
	cr := &countReader{r: r, max: lim.MaxBytes}
	d := &Decoder{lim: lim, sc: newScanner(cr, lim.MaxFieldLen)}
	d.sc.more(3)
	if b := d.sc.buf; bytes.HasPrefix(b, []byte{0xEF, 0xBB, 0xBF}) {
		d.sc.pos += 3
	} else if len(b) >= 2 && (b[0] == 0xFE && b[1] == 0xFF || b[0] == 0xFF && b[1] == 0xFE) {
		d.err = fmt.Errorf("%w: UTF-16 byte order mark", ErrCharset)
	}
	return d
}

// Feedback returns the report's metadata and policy, reading up to the first
// record if Next has not been called yet. The returned value is the
// decoder's own: Records, Messages and Warnings keep growing until Next
// returns io.EOF.
func (d *Decoder) Feedback() (*Feedback, error) {
	if d.err != nil {
		return nil, d.err
	}
	if d.state < stateRecords {
		if err := d.readHeader(); err != nil {
			d.err = err
			return nil, err
		}
	}
	return &d.fb, nil
}

// Next returns the next record, or io.EOF after the last one.
func (d *Decoder) Next() (*Record, error) {
	rec := &Record{}
	if err := d.nextInto(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (d *Decoder) nextInto(rec *Record) error {
	if d.err != nil {
		return d.err
	}
	err := d.next(rec)
	if err != nil && err != io.EOF {
		d.err = err
	}
	return err
}

func (d *Decoder) next(rec *Record) error {
	if d.state < stateRecords {
		if err := d.readHeader(); err != nil {
			return err
		}
	}
	for !d.pending {
		if d.state == stateDone {
			return io.EOF
		}
		t, err := d.token()
		if err != nil {
			return d.eof(err)
		}
		switch t {
		case tokStart:
			if d.sc.name.local == "record" {
				d.pending = true
			} else if err := d.skip(); err != nil {
				return err
			}
		case tokEnd:
			d.state = stateDone
		}
	}
	d.pending = false
	if d.fb.Records >= d.lim.MaxRecords {
		return fmt.Errorf("%w: more than %d", ErrTooManyRecords, d.lim.MaxRecords)
	}
	d.fb.Records++
	if err := d.record(rec); err != nil {
		return err
	}
	d.fb.Messages += rec.Count
	return nil
}

// readHeader finds <feedback> and reads its children up to the first record
// or its end, then checks that the report identifies itself.
func (d *Decoder) readHeader() error {
	if d.state == stateStart {
		if err := d.findFeedback(); err != nil {
			return err
		}
		d.state = stateHeader
	}
	for d.state == stateHeader {
		t, err := d.token()
		if err != nil {
			return d.eof(err)
		}
		switch t {
		case tokStart:
			switch d.sc.name.local {
			case "version":
				d.fb.Version, err = d.str()
			case "report_metadata":
				d.haveMeta = true
				err = d.metadata(&d.fb.Metadata)
			case "policy_published":
				d.havePol = true
				err = d.policy(&d.fb.Policy)
			case "record":
				d.pending = true
				d.state = stateRecords
			default:
				err = d.skip()
			}
			if err != nil {
				return err
			}
		case tokEnd:
			d.state = stateDone
		}
	}
	if d.pending && !d.haveMeta {
		return fmt.Errorf("%w: <record> appears before <report_metadata>", ErrRecordsFirst)
	}
	if err := d.checkHeader(); err != nil {
		return err
	}
	if d.state == stateDone {
		d.warn("report has no <record> (RFC 7489 Appendix C requires at least one)")
	} else {
		d.state = stateRecords
	}
	return nil
}

// findFeedback reads up to the <feedback> start tag. It accepts <feedback>
// as the root or as the child of one wrapping element, which some reporters
// produce by pasting the schema's <xs:schema> opening tag before the report.
func (d *Decoder) findFeedback() error {
	for {
		t, err := d.token()
		if err == io.EOF {
			if len(d.stack) > 0 {
				return fmt.Errorf("%w: <%s> never closed", ErrSyntax, d.stack[len(d.stack)-1].local)
			}
			return fmt.Errorf("%w: no <feedback> element", ErrNotFeedback)
		}
		if err != nil {
			return err
		}
		switch t {
		case tokStart:
			if n := d.sc.name; n.local == "feedback" {
				for _, a := range d.sc.attrs {
					if n.space == "" && a.name.space == "" && a.name.local == "xmlns" ||
						n.space != "" && a.name.space == "xmlns" && a.name.local == n.space {
						d.fb.Namespace = string(d.sc.attrBuf[a.start:a.end])
					}
				}
				if len(d.stack) > 1 {
					d.warn(fmt.Sprintf("<feedback> is wrapped in <%s>", d.stack[0].local))
				}
				return nil
			}
			if len(d.stack) > 1 {
				return fmt.Errorf("%w: root element is <%s>", ErrNotFeedback, d.stack[0].local)
			}
		case tokEnd:
			if len(d.stack) == 0 {
				return fmt.Errorf("%w: no <feedback> element", ErrNotFeedback)
			}
		}
	}
}

func (d *Decoder) checkHeader() error {
	if !d.haveMeta {
		return fmt.Errorf("%w: report_metadata", ErrMissing)
	}
	m := &d.fb.Metadata
	if m.ReportID == "" {
		return fmt.Errorf("%w: report_metadata/report_id", ErrMissing)
	}
	if m.OrgName == "" {
		if m.Email == "" {
			return fmt.Errorf("%w: report_metadata/org_name (and no email to name the reporter)", ErrMissing)
		}
		d.warn("report_metadata/org_name is empty; reporter named by the email domain")
	}
	if m.DateRange.Begin.IsZero() || m.DateRange.End.IsZero() {
		return fmt.Errorf("%w: report_metadata/date_range begin and end", ErrMissing)
	}
	if m.DateRange.End.Before(m.DateRange.Begin) {
		d.warn("report_metadata/date_range ends before it begins")
	}
	if !d.havePol || d.fb.Policy.Domain == "" {
		return fmt.Errorf("%w: policy_published/domain", ErrMissing)
	}
	return nil
}

func (d *Decoder) metadata(m *ReportMetadata) error {
	return d.children(func(name string) (err error) {
		switch name {
		case "org_name":
			m.OrgName, err = d.str()
		case "email":
			m.Email, err = d.str()
		case "extra_contact_info":
			m.ExtraContactInfo, err = d.str()
		case "report_id":
			m.ReportID, err = d.str()
		case "date_range":
			err = d.dateRange(&m.DateRange)
		case "error":
			var s string
			if s, err = d.str(); err == nil && s != "" {
				m.Errors = append(m.Errors, s)
			}
		case "generator":
			m.Generator, err = d.str()
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *Decoder) dateRange(dr *DateRange) error {
	return d.children(func(name string) error {
		var t *time.Time
		switch name {
		case "begin":
			t = &dr.Begin
		case "end":
			t = &dr.End
		default:
			return d.skip()
		}
		b, err := d.leaf()
		if err != nil {
			return err
		}
		secs, ok := parseUnix(b)
		if !ok {
			return fmt.Errorf("%w: date_range/%s %q is not a Unix time", ErrInvalid, name, b)
		}
		*t = time.Unix(secs, 0).UTC()
		return nil
	})
}

func (d *Decoder) policy(p *PolicyPublished) error {
	return d.children(func(name string) (err error) {
		const ctx = "policy_published/"
		switch name {
		case "domain":
			p.Domain, err = d.str()
		case "adkim":
			p.ADKIM, err = enum(d, ctx+name, alignments)
		case "aspf":
			p.ASPF, err = enum(d, ctx+name, alignments)
		case "p":
			p.P, err = enum(d, ctx+name, policies)
		case "sp":
			p.SP, err = enum(d, ctx+name, policies)
		case "np":
			p.NP, err = enum(d, ctx+name, policies)
		case "pct":
			var b []byte
			if b, err = d.leaf(); err != nil || len(b) == 0 {
				return err
			}
			n, ok := parseUint(b)
			if !ok || n > 100 {
				d.warn(fmt.Sprintf("policy_published/pct %q is not 0-100; ignored", b))
				return nil
			}
			pct := int(n)
			p.Pct = &pct
		case "fo":
			p.FO, err = d.str()
		case "testing", "t":
			p.Testing, err = enum(d, ctx+name, testings)
		case "discovery_method":
			p.DiscoveryMethod, err = enum(d, ctx+name, discoveries)
		case "psd":
			p.PSD, err = enum(d, ctx+name, psds)
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *Decoder) record(rec *Record) error {
	// The record's elements are read in loops over child rather than with
	// children's callbacks: closures in this recursion escape to the heap,
	// which cost an allocation per element of every record.
	var haveIP, haveCount bool
	for {
		name, err := d.child()
		if err != nil {
			return err
		}
		switch name {
		case "":
			// RFC 7489 Appendix C: row/source_ip and row/count are
			// required; without them a record says nothing about who
			// sent how much.
			if !haveIP {
				return fmt.Errorf("%w: record %d: row/source_ip", ErrMissing, d.fb.Records)
			}
			if !haveCount {
				return fmt.Errorf("%w: record %d: row/count", ErrMissing, d.fb.Records)
			}
			return nil
		case "row":
			err = d.row(rec, &haveIP, &haveCount)
		case "identifiers":
			err = d.identifiers(&rec.Identifiers)
		case "auth_results":
			err = d.authResults(rec)
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) row(rec *Record, haveIP, haveCount *bool) error {
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "source_ip":
			b, err := d.leaf()
			if err != nil {
				return err
			}
			if len(b) == 0 {
				continue
			}
			ip, perr := netip.ParseAddr(string(b))
			if perr != nil {
				return fmt.Errorf("%w: record %d: source_ip %q is not an IP address", ErrInvalid, d.fb.Records, b)
			}
			rec.SourceIP = ip.Unmap()
			*haveIP = true
		case "count":
			b, err := d.leaf()
			if err != nil {
				return err
			}
			if len(b) == 0 {
				continue
			}
			n, ok := parseUint(b)
			if !ok {
				return fmt.Errorf("%w: record %d: count %q is not a number", ErrInvalid, d.fb.Records, b)
			}
			rec.Count = n
			*haveCount = true
		case "policy_evaluated":
			err = d.policyEvaluated(&rec.PolicyEvaluated)
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) identifiers(id *Identifiers) error {
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "header_from":
			id.HeaderFrom, err = d.str()
		case "envelope_from":
			id.EnvelopeFrom, err = d.str()
		case "envelope_to":
			id.EnvelopeTo, err = d.str()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) authResults(rec *Record) error {
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "dkim":
			var r DKIMAuthResult
			if err := d.dkim(&r); err != nil {
				return err
			}
			rec.DKIM = append(rec.DKIM, r)
		case "spf":
			var r SPFAuthResult
			if err := d.spf(&r); err != nil {
				return err
			}
			rec.SPF = append(rec.SPF, r)
		default:
			if err := d.skip(); err != nil {
				return err
			}
		}
	}
}

func (d *Decoder) policyEvaluated(pe *PolicyEvaluated) error {
	const ctx = "policy_evaluated/"
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "disposition":
			pe.Disposition, err = enum(d, ctx+"disposition", dispositions)
		case "dkim":
			pe.DKIM, err = enum(d, ctx+"dkim", dmarcResults)
		case "spf":
			pe.SPF, err = enum(d, ctx+"spf", dmarcResults)
		case "reason":
			var r Reason
			if err = d.reason(&r); err != nil {
				return err
			}
			if r.Type == "" && r.Comment == "" {
				d.warn("empty policy_evaluated/reason ignored")
				continue
			}
			pe.Reasons = append(pe.Reasons, r)
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) reason(r *Reason) error {
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "type":
			r.Type, err = enum(d, "policy_evaluated/reason/type", reasonTypes)
		case "comment":
			r.Comment, err = d.str()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) dkim(r *DKIMAuthResult) error {
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "domain":
			r.Domain, err = d.str()
		case "selector":
			r.Selector, err = d.str()
		case "result":
			r.Result, err = enum(d, "auth_results/dkim/result", dkimResults)
		case "human_result":
			r.HumanResult, err = d.str()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

func (d *Decoder) spf(r *SPFAuthResult) error {
	for {
		name, err := d.child()
		if err != nil || name == "" {
			return err
		}
		switch name {
		case "domain":
			r.Domain, err = d.str()
		case "scope":
			r.Scope, err = enum(d, "auth_results/spf/scope", spfScopes)
		case "result":
			r.Result, err = enum(d, "auth_results/spf/result", spfResults)
		case "human_result":
			r.HumanResult, err = d.str()
		default:
			err = d.skip()
		}
		if err != nil {
			return err
		}
	}
}

// child reads up to the next child element of the element whose start tag
// was read last and returns its local name, or "" after the element's end
// tag (a name is never empty). The caller must consume the child through
// its end tag.
func (d *Decoder) child() (string, error) {
	for {
		t, err := d.token()
		if err != nil {
			return "", d.eof(err)
		}
		switch t {
		case tokStart:
			return d.sc.name.local, nil
		case tokEnd:
			return "", nil
		}
	}
}

// children calls fn with the local name of each child element of the element
// whose start tag was just read; fn must consume the child through its end
// tag. It returns after the element's end tag.
func (d *Decoder) children(fn func(name string) error) error {
	for {
		t, err := d.token()
		if err != nil {
			return d.eof(err)
		}
		switch t {
		case tokStart:
			if err := fn(d.sc.name.local); err != nil {
				return err
			}
		case tokEnd:
			return nil
		}
	}
}

// leaf returns the trimmed text of the element whose start tag was just
// read, consuming it through its end tag. Child elements inside it are
// skipped. The result is valid until the next call.
func (d *Decoder) leaf() ([]byte, error) {
	d.text = d.text[:0]
	depth := len(d.stack)
	d.leafAt = depth
	defer func() { d.leafAt = 0 }()
	for {
		t, err := d.token()
		if err != nil {
			return nil, d.eof(err)
		}
		if t == tokEnd && len(d.stack) < depth {
			return bytes.TrimSpace(d.text), nil
		}
	}
}

// str reads a leaf as a string. Short values are interned: the same few
// domains and selectors repeat in every record of a large report, and
// sharing them saves an allocation per field and the memory of Parse.
func (d *Decoder) str() (string, error) {
	b, err := d.leaf()
	if err != nil {
		return "", err
	}
	if len(b) > 64 {
		return string(b), nil
	}
	if s, ok := d.interned[string(b)]; ok {
		return s, nil
	}
	s := string(b)
	if len(d.interned) < 4096 {
		if d.interned == nil {
			d.interned = make(map[string]string)
		}
		d.interned[s] = s
	}
	return s, nil
}

// enum reads a leaf holding one of set, matched without regard to case.
// A value outside set is kept as sent and warned about.
func enum[T ~string](d *Decoder, field string, set []T) (T, error) {
	b, err := d.leaf()
	if err != nil || len(b) == 0 {
		return "", err
	}
	for _, k := range set {
		if asciiEqualFold(b, string(k)) {
			return k, nil
		}
	}
	v := string(b)
	d.warn(fmt.Sprintf("%s %q is not a value the RFCs define", field, v))
	return T(v), nil
}

// skip consumes the element whose start tag was just read.
func (d *Decoder) skip() error {
	depth := len(d.stack)
	for len(d.stack) >= depth {
		if _, err := d.token(); err != nil {
			return d.eof(err)
		}
	}
	return nil
}

// token returns the next start or end tag, enforcing the limits and
// checking that tags nest properly. The text before it is collected into
// d.text when a leaf at this depth is being read, and otherwise checked
// and dropped. Comments, processing instructions and directives other than
// a DTD carry nothing a report needs and are passed over.
func (d *Decoder) token() (tokKind, error) {
	var text *[]byte
	if d.leafAt > 0 && len(d.stack) == d.leafAt {
		text = &d.text
	}
	t, err := d.sc.next(text)
	if err != nil {
		var se *syntaxError
		switch {
		case err == errFieldFull:
			return 0, fmt.Errorf("%w: <%s> longer than %d bytes", ErrFieldTooLong, d.stack[len(d.stack)-1].local, d.lim.MaxFieldLen)
		case errors.As(err, &se):
			return 0, fmt.Errorf("%w: line %d%s: %s", ErrSyntax, se.line+1, d.where(), se.msg)
		}
		// io.EOF, a read error of the input, or a limit or character
		// set error that names itself.
		return 0, err
	}
	if t == tokStart {
		if len(d.stack) >= d.lim.MaxDepth {
			return 0, fmt.Errorf("%w: more than %d levels", ErrTooDeep, d.lim.MaxDepth)
		}
		d.stack = append(d.stack, d.sc.name)
		return t, nil
	}
	if len(d.stack) == 0 {
		return 0, fmt.Errorf("%w: unexpected </%s>", ErrSyntax, d.sc.name.local)
	}
	if top := d.stack[len(d.stack)-1]; top != d.sc.name {
		return 0, fmt.Errorf("%w: line %d: <%s> closed by </%s>", ErrSyntax, d.sc.line+1, top.local, d.sc.name.local)
	}
	d.stack = d.stack[:len(d.stack)-1]
	return t, nil
}

// where names the element being read, for error messages.
func (d *Decoder) where() string {
	if len(d.stack) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" in ")
	for i, n := range d.stack {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(n.local)
		if n.local == "record" && d.state == stateRecords {
			fmt.Fprintf(&b, "[%d]", d.fb.Records)
		}
	}
	return b.String()
}

func (d *Decoder) eof(err error) error {
	if err == io.EOF {
		name := "document"
		if len(d.stack) > 0 {
			name = "<" + d.stack[len(d.stack)-1].local + ">"
		}
		return fmt.Errorf("%w: unexpected end of input inside %s%s", ErrSyntax, name, d.where())
	}
	return err
}

func (d *Decoder) warn(msg string) {
	if d.warned[msg] || len(d.fb.Warnings) >= MaxWarnings {
		return
	}
	if d.warned == nil {
		d.warned = map[string]bool{}
	}
	d.warned[msg] = true
	d.fb.Warnings = append(d.fb.Warnings, msg)
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// parseUnix accepts integer seconds, and tolerates a fractional part, which
// a few reporters append.
func parseUnix(b []byte) (int64, bool) {
	if i := bytes.IndexByte(b, '.'); i > 0 {
		if _, ok := parseUint(b[i+1:]); !ok {
			return 0, false
		}
		b = b[:i]
	}
	n, ok := parseUint(b)
	if !ok || n == 0 || n > 1<<40 {
		return 0, false
	}
	return int64(n), true
}

// countReader fails once more than max bytes have been read, so that
// neither the XML decoder's buffers nor the caller's work can grow with an
// endless input.
type countReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		return 0, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	}
	if int64(len(p)) > c.max-c.n+1 {
		p = p[:c.max-c.n+1]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	}
	if err != nil && err != io.EOF {
		err = readError{err}
	}
	return n, err
}

// readError marks an error of the input reader, so that it is not taken
// for a syntax error.
type readError struct{ err error }

func (e readError) Error() string { return e.err.Error() }
func (e readError) Unwrap() error { return e.err }

// latin1Reader converts ISO-8859-1 to UTF-8.
type latin1Reader struct {
	r    io.Reader
	in   []byte
	obuf []byte
	out  []byte // unread part of obuf
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	if len(l.out) == 0 {
		if l.in == nil {
			l.in = make([]byte, 4096)
		}
		n, err := l.r.Read(l.in)
		l.obuf = l.obuf[:0]
		for _, c := range l.in[:n] {
			if c < 0x80 {
				l.obuf = append(l.obuf, c)
			} else {
				l.obuf = append(l.obuf, 0xC0|c>>6, 0x80|c&0x3F)
			}
		}
		l.out = l.obuf
		if len(l.out) == 0 {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}
