// Package mimetree parses an Internet message (RFC 5322) with MIME bodies
// (RFC 2045, RFC 2046) into a bounded tree of parts. It is the one MIME
// parser of mxray: report parsers (arf, dsn, dmarcrpt, tlsrpt) and ingest use
// it to reach the part they want.
//
// Parse returns the root *Part. Every Part carries:
//
//   - Header: the raw header block, the fields in order, and a
//     textproto.MIMEHeader map; Header.Decoded decodes RFC 2047 encoded words.
//   - MediaType (lower case, "text/plain" when absent or unusable, per
//     RFC 2045 §5.2), Params (RFC 2231 continuations and charsets decoded),
//     Disposition and Filename (Content-Disposition filename, else the
//     Content-Type name parameter).
//   - Body: the transfer-decoded content (base64, tolerant of line breaks,
//     stray characters and missing padding; quoted-printable; 7bit, 8bit and
//     binary unchanged). For multipart/* Body is the raw content between the
//     header and the end of the part.
//   - Children: the body parts of a multipart/*, or for message/rfc822 and
//     message/global the single embedded message, parsed as a message.
//     text/rfc822-headers stays a leaf whose Body is a header block; read it
//     with ParseHeader.
//   - Defects: what was wrong but tolerated (no closing boundary, bad
//     base64, a header line without a colon...), for evidence.
//
// CRLF, LF and bare CR line endings are all accepted, also mixed; Body keeps
// the line endings of the input, Part.Text normalises them to LF.
//
// Limits bounds the input size, the header block size, the decoded size per
// part and in total, the nesting depth and the number of parts. Exceeding a
// limit fails the whole parse with one of the sentinel errors (ErrTooLarge,
// ErrHeaderTooLarge, ErrPartTooLarge, ErrDecodedTooLarge, ErrTooDeep,
// ErrTooManyParts); malformed input never panics.
//
// Walk visits parts depth first; Find and FindAll select parts by media type
// ("text/plain", or "multipart/*"); Embedded returns the message inside a
// message/rfc822 part.
//
// The API, kept stable for the report parsers and ingest:
//
//	Parse(raw) / ParseLimits(raw, lim) -> *Part  parse a whole message
//	ParseHeader(b) / SplitHeader(b)              read header blocks (text/rfc822-headers,
//	                                             the field groups of message/delivery-status
//	                                             and message/feedback-report)
//	DecodeWords(s)                               RFC 2047 encoded words, never failing
//	NormalizeNewlines(b), MatchType(t, pattern)  small helpers
//
// Not supported: charset conversion beyond UTF-8, US-ASCII and ISO-8859-1 /
// Windows-1252 (Part.Text and Header.Decoded leave other charsets as they
// are); the obsolete uuencode and binhex encodings; message/partial
// reassembly; message/external-body.
package mimetree

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
)

// Limits bounds what Parse accepts. A zero field means the value in
// DefaultLimits.
type Limits struct {
	MaxInputBytes   int // size of the raw message
	MaxHeaderBytes  int // size of one header block
	MaxPartBytes    int // decoded size of one part's body
	MaxDecodedBytes int // sum of the decoded bodies of all non-multipart parts
	MaxDepth        int // nesting of multiparts and embedded messages; the root is depth 0
	MaxParts        int // number of parts, the root included
}

// DefaultLimits are generous for mail (a message over 64 MiB does not cross
// the Internet) and small enough that a hostile message cannot exhaust
// memory.
var DefaultLimits = Limits{
	MaxInputBytes:   64 << 20,
	MaxHeaderBytes:  1 << 20,
	MaxPartBytes:    64 << 20,
	MaxDecodedBytes: 128 << 20,
	MaxDepth:        20,
	MaxParts:        1000,
}

// Errors returned when a limit is exceeded; they are wrapped with details
// and are meant to be tested with errors.Is.
var (
	ErrTooLarge        = errors.New("mimetree: message too large")
	ErrHeaderTooLarge  = errors.New("mimetree: header too large")
	ErrPartTooLarge    = errors.New("mimetree: decoded part too large")
	ErrDecodedTooLarge = errors.New("mimetree: decoded message too large")
	ErrTooDeep         = errors.New("mimetree: too deep")
	ErrTooManyParts    = errors.New("mimetree: too many parts")
)

// Part is one node of the tree: the message itself, a body part of a
// multipart, or an embedded message.
type Part struct {
	// Path numbers the part like IMAP sections: "" for the root, "1", "2.1"...
	// An embedded message has the path of the part that carries it plus ".0".
	Path   string
	Depth  int
	Header Header

	MediaType        string            // lower case type/subtype, e.g. "multipart/report"
	Params           map[string]string // Content-Type parameters, keys in lower case
	Disposition      string            // lower case, "" when absent
	Filename         string            // RFC 2231 and RFC 2047 decoded
	TransferEncoding string            // lower case Content-Transfer-Encoding, "" when absent

	Body     []byte
	Children []*Part
	Defects  []string
}

// Charset returns the charset parameter in lower case, "" when absent.
func (p *Part) Charset() string { return strings.ToLower(p.Params["charset"]) }

// IsMultipart reports whether the part is a multipart/* container.
func (p *Part) IsMultipart() bool { return strings.HasPrefix(p.MediaType, "multipart/") }

// Embedded returns the message carried by a message/rfc822 or message/global
// part, or nil.
func (p *Part) Embedded() *Part {
	if isMessageType(p.MediaType) && len(p.Children) == 1 {
		return p.Children[0]
	}
	return nil
}

// Text returns the body as a string with line endings normalised to "\n",
// converted from ISO-8859-1 or Windows-1252 when the charset says so. Other
// charsets are returned unconverted.
func (p *Part) Text() string {
	b := NormalizeNewlines(p.Body)
	switch p.Charset() {
	case "iso-8859-1", "latin1", "latin-1", "windows-1252", "cp1252":
		return latin1(b)
	}
	return string(b)
}

// Walk calls fn for p and its descendants, depth first in document order,
// and stops when fn returns false.
func (p *Part) Walk(fn func(*Part) bool) {
	p.walk(fn)
}

func (p *Part) walk(fn func(*Part) bool) bool {
	if !fn(p) {
		return false
	}
	for _, c := range p.Children {
		if !c.walk(fn) {
			return false
		}
	}
	return true
}

// Find returns the first part (depth first, p included) whose media type
// matches, or nil. mediaType is "type/subtype" or "type/*", case-insensitive.
func (p *Part) Find(mediaType string) *Part {
	var found *Part
	p.Walk(func(q *Part) bool {
		if MatchType(q.MediaType, mediaType) {
			found = q
			return false
		}
		return true
	})
	return found
}

// FindAll returns every part (depth first, p included) whose media type
// matches.
func (p *Part) FindAll(mediaType string) []*Part {
	var all []*Part
	p.Walk(func(q *Part) bool {
		if MatchType(q.MediaType, mediaType) {
			all = append(all, q)
		}
		return true
	})
	return all
}

// MatchType reports whether mediaType matches pattern, "type/subtype" or
// "type/*", ignoring case.
func MatchType(mediaType, pattern string) bool {
	pattern = strings.ToLower(pattern)
	mediaType = strings.ToLower(mediaType)
	if prefix, ok := strings.CutSuffix(pattern, "/*"); ok {
		return strings.HasPrefix(mediaType, prefix+"/")
	}
	return mediaType == pattern
}

// Parse parses a message with DefaultLimits.
func Parse(raw []byte) (*Part, error) {
	return ParseLimits(raw, DefaultLimits)
}

// ParseLimits parses a message within lim. A leading mbox "From " line is
// skipped.
func ParseLimits(raw []byte, lim Limits) (*Part, error) {
	lim = lim.withDefaults()
	if len(raw) > lim.MaxInputBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(raw), lim.MaxInputBytes)
	}
	if bytes.HasPrefix(raw, []byte("From ")) {
		_, next, _ := nextLine(raw, 0)
		raw = raw[next:]
	}
	ps := &parser{lim: lim}
	return ps.parseEntity(raw, "", 0, "text/plain")
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxInputBytes <= 0 {
		l.MaxInputBytes = d.MaxInputBytes
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.MaxPartBytes <= 0 {
		l.MaxPartBytes = d.MaxPartBytes
	}
	if l.MaxDecodedBytes <= 0 {
		l.MaxDecodedBytes = d.MaxDecodedBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxParts <= 0 {
		l.MaxParts = d.MaxParts
	}
	return l
}

type parser struct {
	lim     Limits
	parts   int
	decoded int
}

func isMessageType(t string) bool {
	return t == "message/rfc822" || t == "message/global"
}

// parseEntity parses header and body of one entity. defType is the media
// type that applies when Content-Type is absent: text/plain, or
// message/rfc822 inside multipart/digest (RFC 2046 §5.1.5).
func (ps *parser) parseEntity(raw []byte, path string, depth int, defType string) (*Part, error) {
	if depth > ps.lim.MaxDepth {
		return nil, fmt.Errorf("%w: part %q at depth %d, limit %d", ErrTooDeep, path, depth, ps.lim.MaxDepth)
	}
	ps.parts++
	if ps.parts > ps.lim.MaxParts {
		return nil, fmt.Errorf("%w: limit %d", ErrTooManyParts, ps.lim.MaxParts)
	}
	h, body, defects, err := splitHeader(raw, ps.lim.MaxHeaderBytes)
	if err != nil {
		return nil, fmt.Errorf("part %q: %w", path, err)
	}
	p := &Part{Path: path, Depth: depth, Header: h, Defects: defects}
	p.setContentType(defType)
	p.setDisposition()
	p.TransferEncoding = strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding")))

	if p.IsMultipart() {
		// RFC 2045 §6.4: a multipart must not be encoded other than
		// identity; some senders do anyway, so decode what they sent.
		if !identityEncoding(p.TransferEncoding) {
			p.Defects = append(p.Defects, "multipart with transfer encoding "+p.TransferEncoding)
			if body, err = ps.decode(p, body); err != nil {
				return nil, err
			}
		}
		p.Body = body
		if err := ps.parseMultipart(p); err != nil {
			return nil, err
		}
		return p, nil
	}

	if p.Body, err = ps.decode(p, body); err != nil {
		return nil, err
	}
	if isMessageType(p.MediaType) {
		child, err := ps.parseEntity(p.Body, joinPath(path, "0"), depth+1, "text/plain")
		if err != nil {
			return nil, err
		}
		p.Children = []*Part{child}
		return p, nil
	}
	ps.decoded += len(p.Body)
	if ps.decoded > ps.lim.MaxDecodedBytes {
		return nil, fmt.Errorf("%w: over %d bytes", ErrDecodedTooLarge, ps.lim.MaxDecodedBytes)
	}
	return p, nil
}

func joinPath(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "." + child
}

func identityEncoding(cte string) bool {
	switch cte {
	case "", "7bit", "8bit", "binary":
		return true
	}
	return false
}

// decode applies the part's Content-Transfer-Encoding (RFC 2045 §6).
func (ps *parser) decode(p *Part, body []byte) ([]byte, error) {
	var out []byte
	switch p.TransferEncoding {
	case "", "7bit", "8bit", "binary":
		out = body
	case "base64":
		var bad bool
		var err error
		out, bad, err = decodeBase64(body, ps.lim.MaxPartBytes)
		if err != nil {
			return nil, fmt.Errorf("part %q: %w", p.Path, err)
		}
		if bad {
			p.Defects = append(p.Defects, "malformed base64")
		}
	case "quoted-printable":
		out = decodeQP(body)
	default:
		// RFC 2045 §6.4: an unrecognised encoding is treated as
		// application/octet-stream; mxray keeps the bytes as they are and
		// records why.
		p.Defects = append(p.Defects, "unknown transfer encoding "+strconv.Quote(p.TransferEncoding))
		out = body
	}
	if len(out) > ps.lim.MaxPartBytes {
		return nil, fmt.Errorf("%w: part %q is %d bytes, limit %d", ErrPartTooLarge, p.Path, len(out), ps.lim.MaxPartBytes)
	}
	return out, nil
}

func (p *Part) setContentType(defType string) {
	ct := strings.TrimSpace(p.Header.Get("Content-Type"))
	p.MediaType = defType
	p.Params = map[string]string{}
	if ct == "" {
		return
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		// mime.ParseMediaType is strict; mail in the wild is not (duplicate
		// parameters, unquoted specials, stray semicolons).
		mt, params = lenientMediaType(ct)
		p.Defects = append(p.Defects, "malformed Content-Type")
	}
	mt = strings.ToLower(mt)
	if i := strings.IndexByte(mt, '/'); i <= 0 || i == len(mt)-1 {
		// RFC 2045 §5.2: syntactically invalid Content-Type defaults
		// to text/plain.
		p.Defects = append(p.Defects, "invalid media type "+strconv.Quote(mt))
		return
	}
	p.MediaType = mt
	for k, v := range params {
		p.Params[strings.ToLower(k)] = v
	}
}

func (p *Part) setDisposition() {
	cd := strings.TrimSpace(p.Header.Get("Content-Disposition"))
	var params map[string]string
	if cd != "" {
		d, ps, err := mime.ParseMediaType(cd)
		if err != nil {
			d, ps = lenientMediaType(cd)
		}
		p.Disposition = strings.ToLower(d)
		params = ps
	}
	name := params["filename"]
	if name == "" {
		name = p.Params["name"]
	}
	// RFC 2231 is the standard; RFC 2047 words inside a quoted filename are
	// not, but many clients send them.
	p.Filename = decodeWords(name)
}

// lenientMediaType splits "type/subtype; a=b; c="d"" without failing.
func lenientMediaType(s string) (string, map[string]string) {
	params := map[string]string{}
	parts := splitParams(s)
	mt := strings.TrimSpace(parts[0])
	for _, kv := range parts[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = strings.ReplaceAll(v[1:len(v)-1], `\"`, `"`)
		}
		if k == "" {
			continue
		}
		if _, dup := params[k]; !dup {
			params[k] = v
		}
	}
	return mt, params
}

// splitParams splits at semicolons outside quoted strings.
func splitParams(s string) []string {
	var out []string
	inQuote, esc := false, false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case esc:
			esc = false
		case c == '\\' && inQuote:
			esc = true
		case c == '"':
			inQuote = !inQuote
		case c == ';' && !inQuote:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseMultipart splits p.Body at the boundary (RFC 2046 §5.1.1) and
// parses every body part.
func (ps *parser) parseMultipart(p *Part) error {
	boundary := p.Params["boundary"]
	if boundary == "" {
		p.Defects = append(p.Defects, "multipart without boundary")
		return nil
	}
	delim := []byte("--" + boundary)
	defType := "text/plain"
	if p.MediaType == "multipart/digest" {
		defType = "message/rfc822"
	}
	body := p.Body
	var (
		start  = -1 // start of the current body part's content
		closed bool
		n      int
	)
	prevEOLStart := 0 // where the previous line's line ending began
	for i := 0; i < len(body); {
		line, next, eolLen := nextLine(body, i)
		if isDelimiter(line, delim) {
			closing := bytes.HasPrefix(line[len(delim):], []byte("--"))
			if start >= 0 {
				// RFC 2046 §5.1.1: the line ending before the delimiter
				// belongs to the delimiter, not to the part.
				partEnd := prevEOLStart
				if partEnd < start {
					partEnd = start
				}
				n++
				if err := ps.addChild(p, body[start:partEnd], n, defType); err != nil {
					return err
				}
			}
			if closing {
				closed = true
				break
			}
			start = next
		}
		prevEOLStart = next - eolLen
		i = next
	}
	switch {
	case start < 0 && !closed:
		p.Defects = append(p.Defects, "no boundary found")
	case !closed:
		p.Defects = append(p.Defects, "missing closing boundary")
		n++
		if err := ps.addChild(p, body[start:], n, defType); err != nil {
			return err
		}
	}
	return nil
}

func (ps *parser) addChild(p *Part, raw []byte, n int, defType string) error {
	c, err := ps.parseEntity(raw, joinPath(p.Path, strconv.Itoa(n)), p.Depth+1, defType)
	if err != nil {
		return err
	}
	p.Children = append(p.Children, c)
	return nil
}

func isDelimiter(line, delim []byte) bool {
	if !bytes.HasPrefix(line, delim) {
		return false
	}
	rest := line[len(delim):]
	rest = bytes.TrimPrefix(rest, []byte("--"))
	// RFC 2046 §5.1.1: transport padding (LWSP) may follow the delimiter.
	return len(bytes.Trim(rest, " \t")) == 0
}

// nextLine returns the line starting at i without its line ending, the
// index after the line ending, and the length of the line ending (0 at the
// end of input). CRLF, LF and a CR not followed by LF end a line.
func nextLine(b []byte, i int) (line []byte, next, eolLen int) {
	j := bytes.IndexAny(b[i:], "\r\n")
	if j < 0 {
		return b[i:], len(b), 0
	}
	j += i
	if b[j] == '\r' && j+1 < len(b) && b[j+1] == '\n' {
		return b[i:j], j + 2, 2
	}
	return b[i:j], j + 1, 1
}

// NormalizeNewlines returns b with CRLF and bare CR replaced by LF. It
// returns b itself when there is nothing to replace.
func NormalizeNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == '\r' {
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			c = '\n'
		}
		out = append(out, c)
	}
	return out
}

func latin1(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}
