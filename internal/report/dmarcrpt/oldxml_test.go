package dmarcrpt

// This file keeps the encoding/xml implementation of the oldDecoder that the
// scanner of scan.go replaced, as the reference of the differential fuzz
// target FuzzScannerMatchesEncodingXML. Only tests use it.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"encoding/xml"
)

// Parse reads a whole report and keeps every record.
func oldParse(r io.Reader, lim Limits) (*Report, error) {
	d := newOldDecoder(r, lim)
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
// checked, so a caller may use them (through a oldDecoder) before the first
// record. An error from fn stops decoding and is returned as is.
func oldDecode(r io.Reader, lim Limits, fn func(*Record) error) (*Feedback, error) {
	d := newOldDecoder(r, lim)
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

// oldDecoder reads a report one record at a time.
type oldDecoder struct {
	lim Limits
	x   *xml.Decoder
	sq  *squeezer

	stack    []xml.Name
	text     []byte
	fb       Feedback
	warned   map[string]bool
	interned map[string]string
	state    decState
	pending  bool // the start tag of a record has been read
	haveMeta bool
	havePol  bool
	err      error // sticky
}

// newOldDecoder returns a oldDecoder reading from r within lim. It reads the
// first bytes of r to find a byte order mark; a read error is reported by
// the first call of Feedback or Next.
func newOldDecoder(r io.Reader, lim Limits) *oldDecoder {
	lim = lim.withDefaults()
	cr := &countReader{r: r, max: lim.MaxBytes}
	d := &oldDecoder{lim: lim}
	d.sq = newSqueezer(cr)
	if b := d.sq.peek(3); bytes.Equal(b, []byte{0xEF, 0xBB, 0xBF}) {
		d.sq.i += 3
	} else if len(b) >= 2 && (b[0] == 0xFE && b[1] == 0xFF || b[0] == 0xFF && b[1] == 0xFE) {
		d.err = fmt.Errorf("%w: UTF-16 byte order mark", ErrCharset)
	}
	x := xml.NewDecoder(d.sq)
	x.Strict = true
	x.CharsetReader = charsetReader
	d.x = x
	return d
}

// Feedback returns the report's metadata and policy, reading up to the first
// record if Next has not been called yet. The returned value is the
// decoder's own: Records, Messages and Warnings keep growing until Next
// returns io.EOF.
func (d *oldDecoder) Feedback() (*Feedback, error) {
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
func (d *oldDecoder) Next() (*Record, error) {
	rec := &Record{}
	if err := d.nextInto(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func (d *oldDecoder) nextInto(rec *Record) error {
	if d.err != nil {
		return d.err
	}
	err := d.next(rec)
	if err != nil && err != io.EOF {
		d.err = err
	}
	return err
}

func (d *oldDecoder) next(rec *Record) error {
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
		switch t := t.(type) {
		case xml.StartElement:
			if t.Name.Local == "record" {
				d.pending = true
			} else if err := d.skip(); err != nil {
				return err
			}
		case xml.EndElement:
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
func (d *oldDecoder) readHeader() error {
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
		switch t := t.(type) {
		case xml.StartElement:
			switch t.Name.Local {
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
		case xml.EndElement:
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
func (d *oldDecoder) findFeedback() error {
	for {
		t, err := d.token()
		if err == io.EOF {
			if len(d.stack) > 0 {
				return fmt.Errorf("%w: <%s> never closed", ErrSyntax, d.stack[len(d.stack)-1].Local)
			}
			return fmt.Errorf("%w: no <feedback> element", ErrNotFeedback)
		}
		if err != nil {
			return err
		}
		switch t := t.(type) {
		case xml.StartElement:
			if t.Name.Local == "feedback" {
				for _, a := range t.Attr {
					if t.Name.Space == "" && a.Name.Space == "" && a.Name.Local == "xmlns" ||
						t.Name.Space != "" && a.Name.Space == "xmlns" && a.Name.Local == t.Name.Space {
						d.fb.Namespace = a.Value
					}
				}
				if len(d.stack) > 1 {
					d.warn(fmt.Sprintf("<feedback> is wrapped in <%s>", d.stack[0].Local))
				}
				return nil
			}
			if len(d.stack) > 1 {
				return fmt.Errorf("%w: root element is <%s>", ErrNotFeedback, d.stack[0].Local)
			}
		case xml.EndElement:
			if len(d.stack) == 0 {
				return fmt.Errorf("%w: no <feedback> element", ErrNotFeedback)
			}
		}
	}
}

func (d *oldDecoder) checkHeader() error {
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

func (d *oldDecoder) metadata(m *ReportMetadata) error {
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

func (d *oldDecoder) dateRange(dr *DateRange) error {
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

func (d *oldDecoder) policy(p *PolicyPublished) error {
	return d.children(func(name string) (err error) {
		const ctx = "policy_published/"
		switch name {
		case "domain":
			p.Domain, err = d.str()
		case "adkim":
			p.ADKIM, err = oldEnum(d, ctx+name, alignments)
		case "aspf":
			p.ASPF, err = oldEnum(d, ctx+name, alignments)
		case "p":
			p.P, err = oldEnum(d, ctx+name, policies)
		case "sp":
			p.SP, err = oldEnum(d, ctx+name, policies)
		case "np":
			p.NP, err = oldEnum(d, ctx+name, policies)
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
			p.Testing, err = oldEnum(d, ctx+name, testings)
		case "discovery_method":
			p.DiscoveryMethod, err = oldEnum(d, ctx+name, discoveries)
		case "psd":
			p.PSD, err = oldEnum(d, ctx+name, psds)
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *oldDecoder) record(rec *Record) error {
	var haveIP, haveCount bool
	err := d.children(func(name string) error {
		switch name {
		case "row":
			return d.children(func(name string) error {
				switch name {
				case "source_ip":
					b, err := d.leaf()
					if err != nil || len(b) == 0 {
						return err
					}
					ip, perr := netip.ParseAddr(string(b))
					if perr != nil {
						return fmt.Errorf("%w: record %d: source_ip %q is not an IP address", ErrInvalid, d.fb.Records, b)
					}
					rec.SourceIP = ip.Unmap()
					haveIP = true
				case "count":
					b, err := d.leaf()
					if err != nil || len(b) == 0 {
						return err
					}
					n, ok := parseUint(b)
					if !ok {
						return fmt.Errorf("%w: record %d: count %q is not a number", ErrInvalid, d.fb.Records, b)
					}
					rec.Count = n
					haveCount = true
				case "policy_evaluated":
					return d.policyEvaluated(&rec.PolicyEvaluated)
				default:
					return d.skip()
				}
				return nil
			})
		case "identifiers":
			return d.children(func(name string) (err error) {
				switch name {
				case "header_from":
					rec.Identifiers.HeaderFrom, err = d.str()
				case "envelope_from":
					rec.Identifiers.EnvelopeFrom, err = d.str()
				case "envelope_to":
					rec.Identifiers.EnvelopeTo, err = d.str()
				default:
					err = d.skip()
				}
				return err
			})
		case "auth_results":
			return d.children(func(name string) error {
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
					return d.skip()
				}
				return nil
			})
		default:
			return d.skip()
		}
	})
	if err != nil {
		return err
	}
	// RFC 7489 Appendix C: row/source_ip and row/count are required; without
	// them a record says nothing about who sent how much.
	if !haveIP {
		return fmt.Errorf("%w: record %d: row/source_ip", ErrMissing, d.fb.Records)
	}
	if !haveCount {
		return fmt.Errorf("%w: record %d: row/count", ErrMissing, d.fb.Records)
	}
	return nil
}

func (d *oldDecoder) policyEvaluated(pe *PolicyEvaluated) error {
	return d.children(func(name string) (err error) {
		const ctx = "policy_evaluated/"
		switch name {
		case "disposition":
			pe.Disposition, err = oldEnum(d, ctx+name, dispositions)
		case "dkim":
			pe.DKIM, err = oldEnum(d, ctx+name, dmarcResults)
		case "spf":
			pe.SPF, err = oldEnum(d, ctx+name, dmarcResults)
		case "reason":
			var r Reason
			err = d.children(func(name string) (err error) {
				switch name {
				case "type":
					r.Type, err = oldEnum(d, "policy_evaluated/reason/type", reasonTypes)
				case "comment":
					r.Comment, err = d.str()
				default:
					err = d.skip()
				}
				return err
			})
			if err != nil {
				return err
			}
			if r.Type == "" && r.Comment == "" {
				d.warn("empty policy_evaluated/reason ignored")
				return nil
			}
			pe.Reasons = append(pe.Reasons, r)
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *oldDecoder) dkim(r *DKIMAuthResult) error {
	return d.children(func(name string) (err error) {
		switch name {
		case "domain":
			r.Domain, err = d.str()
		case "selector":
			r.Selector, err = d.str()
		case "result":
			r.Result, err = oldEnum(d, "auth_results/dkim/result", dkimResults)
		case "human_result":
			r.HumanResult, err = d.str()
		default:
			err = d.skip()
		}
		return err
	})
}

func (d *oldDecoder) spf(r *SPFAuthResult) error {
	return d.children(func(name string) (err error) {
		switch name {
		case "domain":
			r.Domain, err = d.str()
		case "scope":
			r.Scope, err = oldEnum(d, "auth_results/spf/scope", spfScopes)
		case "result":
			r.Result, err = oldEnum(d, "auth_results/spf/result", spfResults)
		case "human_result":
			r.HumanResult, err = d.str()
		default:
			err = d.skip()
		}
		return err
	})
}

// children calls fn with the local name of each child element of the element
// whose start tag was just read; fn must consume the child through its end
// tag. It returns after the element's end tag.
func (d *oldDecoder) children(fn func(name string) error) error {
	for {
		t, err := d.token()
		if err != nil {
			return d.eof(err)
		}
		switch t := t.(type) {
		case xml.StartElement:
			if err := fn(t.Name.Local); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		}
	}
}

// leaf returns the trimmed text of the element whose start tag was just
// read, consuming it through its end tag. Child elements inside it are
// skipped. The result is valid until the next call.
func (d *oldDecoder) leaf() ([]byte, error) {
	d.text = d.text[:0]
	depth := len(d.stack)
	for {
		t, err := d.token()
		if err != nil {
			return nil, d.eof(err)
		}
		switch t := t.(type) {
		case xml.CharData:
			if len(d.stack) == depth {
				if len(d.text)+len(t) > d.lim.MaxFieldLen {
					return nil, fmt.Errorf("%w: <%s> longer than %d bytes", ErrFieldTooLong, d.stack[depth-1].Local, d.lim.MaxFieldLen)
				}
				d.text = append(d.text, t...)
			}
		case xml.EndElement:
			if len(d.stack) < depth {
				return bytes.TrimSpace(d.text), nil
			}
		}
	}
}

// str reads a leaf as a string. Short values are interned: the same few
// domains and selectors repeat in every record of a large report, and
// sharing them saves an allocation per field and the memory of Parse.
func (d *oldDecoder) str() (string, error) {
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
func oldEnum[T ~string](d *oldDecoder, field string, set []T) (T, error) {
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
func (d *oldDecoder) skip() error {
	depth := len(d.stack)
	for len(d.stack) >= depth {
		if _, err := d.token(); err != nil {
			return d.eof(err)
		}
	}
	return nil
}

// token returns the next start tag, end tag or text, enforcing the limits
// and the safety rules, and checking that tags nest properly.
func (d *oldDecoder) token() (xml.Token, error) {
	for {
		tok, err := d.x.RawToken()
		if err != nil {
			var se *xml.SyntaxError
			var re readError
			switch {
			case err == io.EOF:
				return nil, err
			case errors.As(err, &re):
				// The input itself failed; pass that on unchanged.
				return nil, re.err
			case errors.Is(err, ErrTooLarge):
				return nil, err
			case errors.Is(err, ErrCharset):
				return nil, fmt.Errorf("%w: %s", ErrCharset, strings.TrimPrefix(err.Error(), "xml: "))
			case errors.As(err, &se):
				// The decoder's own line number counts the squeezed
				// input; the squeezer knows the real one.
				msg := se.Msg
				if msg == "unexpected EOF" {
					msg = "unexpected end of input"
				}
				return nil, fmt.Errorf("%w: line %d%s: %s", ErrSyntax, d.sq.line+1, d.where(), msg)
			}
			// encoding/xml reports some problems, such as an
			// unsupported XML version, as plain errors.
			return nil, fmt.Errorf("%w: line %d: %s", ErrSyntax, d.sq.line+1, strings.TrimPrefix(err.Error(), "xml: "))
		}
		// tok is returned as received: converting the concrete value back
		// to an interface would allocate once per token.
		switch t := tok.(type) {
		case xml.StartElement:
			if len(d.stack) >= d.lim.MaxDepth {
				return nil, fmt.Errorf("%w: more than %d levels", ErrTooDeep, d.lim.MaxDepth)
			}
			d.stack = append(d.stack, t.Name)
			return tok, nil
		case xml.EndElement:
			if len(d.stack) == 0 {
				return nil, fmt.Errorf("%w: unexpected </%s>", ErrSyntax, t.Name.Local)
			}
			if top := d.stack[len(d.stack)-1]; top != t.Name {
				return nil, fmt.Errorf("%w: line %d: <%s> closed by </%s>", ErrSyntax, d.sq.line+1, top.Local, t.Name.Local)
			}
			d.stack = d.stack[:len(d.stack)-1]
			return tok, nil
		case xml.CharData:
			return tok, nil
		case xml.Directive:
			// A DTD can declare entities that expand without bound
			// ("billion laughs"); no DMARC report needs one.
			s := strings.TrimSpace(string(t))
			if len(s) >= 6 && (strings.EqualFold(s[:6], "DOCTYP") || strings.EqualFold(s[:6], "ENTITY")) {
				return nil, fmt.Errorf("%w: line %d: <!%.20s", ErrDoctype, d.sq.line+1, s)
			}
		}
		// Comments, processing instructions and other directives carry
		// nothing a report needs.
	}
}

// where names the element being read, for error messages.
func (d *oldDecoder) where() string {
	if len(d.stack) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(" in ")
	for i, n := range d.stack {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(n.Local)
		if n.Local == "record" && d.state == stateRecords {
			fmt.Fprintf(&b, "[%d]", d.fb.Records)
		}
	}
	return b.String()
}

func (d *oldDecoder) eof(err error) error {
	if err == io.EOF {
		name := "document"
		if len(d.stack) > 0 {
			name = "<" + d.stack[len(d.stack)-1].Local + ">"
		}
		return fmt.Errorf("%w: unexpected end of input inside %s%s", ErrSyntax, name, d.where())
	}
	return err
}

func (d *oldDecoder) warn(msg string) {
	if d.warned[msg] || len(d.fb.Warnings) >= MaxWarnings {
		return
	}
	if d.warned == nil {
		d.warned = map[string]bool{}
	}
	d.warned[msg] = true
	d.fb.Warnings = append(d.fb.Warnings, msg)
}

// charsetReader lets encoding/xml read the few non-UTF-8 declarations that
// reporters use; everything else is refused rather than misread.
func charsetReader(label string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "utf8", "us-ascii", "ascii":
		return r, nil
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		return &latin1Reader{r: r}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrCharset, label)
}

// squeezer is the byte source of the XML decoder: a buffered reader that
// also drops whitespace running from a '>' to the next '<' (the indentation
// between tags). Such whitespace would otherwise become a text token per
// line and dominate the decoder's work on large indented reports, and it
// never carries meaning in a report, whose text values are trimmed anyway.
// Runs that cross a buffer boundary are passed through unchanged, which is
// only slower. The squeezer counts input lines so that syntax errors name
// the line of the original input.
type squeezer struct {
	r    io.Reader
	buf  []byte // unread data is buf[i:]
	i    int
	err  error
	line int // newlines consumed so far
	skip int // newlines in a dropped run, counted once the byte after it is read
	mem  []byte
}

func newSqueezer(r io.Reader) *squeezer {
	return &squeezer{r: r, mem: make([]byte, 64<<10)}
}

// peek returns up to n unread bytes without consuming them.
func (s *squeezer) peek(n int) []byte {
	if len(s.buf)-s.i < n && s.i == 0 && s.err == nil {
		for len(s.buf) < n && s.err == nil {
			m, err := s.r.Read(s.mem[len(s.buf):])
			s.buf = s.mem[:len(s.buf)+m]
			s.err = err
		}
	}
	return s.buf[s.i:min(len(s.buf), s.i+n)]
}

func (s *squeezer) fill() bool {
	for s.err == nil {
		n, err := s.r.Read(s.mem)
		s.buf, s.i, s.err = s.mem[:n], 0, err
		if n > 0 {
			return true
		}
	}
	return false
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\t' || c == '\r' }

func (s *squeezer) ReadByte() (byte, error) {
	if s.i >= len(s.buf) && !s.fill() {
		return 0, s.err
	}
	c := s.buf[s.i]
	s.i++
	if s.skip > 0 {
		// Counted only now, so that an error about the tag before the
		// run names that tag's line.
		s.line += s.skip
		s.skip = 0
	}
	switch c {
	case '\n':
		s.line++
	case '>':
		j := s.i
		for j < len(s.buf) && isXMLSpace(s.buf[j]) {
			j++
		}
		if j > s.i && j < len(s.buf) && s.buf[j] == '<' {
			s.skip = bytes.Count(s.buf[s.i:j], []byte{'\n'})
			s.i = j
		}
	}
	return c, nil
}

// Read makes squeezer an io.Reader; encoding/xml uses only ReadByte.
func (s *squeezer) Read(p []byte) (int, error) {
	for i := range p {
		c, err := s.ReadByte()
		if err != nil {
			return i, err
		}
		p[i] = c
	}
	return len(p), nil
}
