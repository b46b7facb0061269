package mimetree

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/textproto"
	"strings"
)

// Header is a parsed header block (RFC 5322 §2.2).
type Header struct {
	// Raw is the block as received, line endings included, without the
	// empty line that ends it.
	Raw []byte
	// Fields lists the fields in order, values unfolded (RFC 5322 §2.2.3)
	// and trimmed, not RFC 2047 decoded.
	Fields []Field
	// Map holds the same values keyed by textproto.CanonicalMIMEHeaderKey.
	Map textproto.MIMEHeader
}

// Field is one header field.
type Field struct {
	Name  string // as written
	Value string // unfolded and trimmed
}

// Get returns the first value of the field, case-insensitive, or "".
func (h Header) Get(name string) string {
	if h.Map == nil {
		return ""
	}
	return h.Map.Get(name)
}

// Values returns every value of the field in order.
func (h Header) Values(name string) []string {
	if h.Map == nil {
		return nil
	}
	return h.Map.Values(name)
}

// Decoded returns the first value of the field with RFC 2047 encoded words
// decoded. Words in a charset mxray cannot convert stay encoded.
func (h Header) Decoded(name string) string {
	return decodeWords(h.Get(name))
}

// ParseHeader parses a header block such as the body of a
// text/rfc822-headers part or one field group of a message/delivery-status
// part, with DefaultLimits.MaxHeaderBytes. Leading empty lines are skipped;
// whatever follows the empty line that ends the block is ignored.
func ParseHeader(b []byte) (Header, error) {
	h, _, err := SplitHeader(b)
	return h, err
}

// SplitHeader is ParseHeader that also returns what follows the block
// (after its ending empty line), so that consecutive field groups can be
// read one by one.
func SplitHeader(b []byte) (Header, []byte, error) {
	for len(b) > 0 {
		line, next, eol := nextLine(b, 0)
		if len(bytes.Trim(line, " \t")) != 0 || eol == 0 {
			break
		}
		b = b[next:]
	}
	h, rest, _, err := splitHeader(b, DefaultLimits.MaxHeaderBytes)
	return h, rest, err
}

// splitHeader reads the header block at the start of raw and returns it,
// the body after the empty line, and the defects it tolerated.
func splitHeader(raw []byte, max int) (Header, []byte, []string, error) {
	h := Header{Map: textproto.MIMEHeader{}}
	var defects []string
	// Each field is kept as the span of raw from after its colon to the end
	// of its last continuation line and unfolded once at the end, so that
	// a long run of continuation lines costs linear time.
	type span struct {
		name       string
		start, end int
	}
	var spans []span
	end := len(raw) // end of the header block
	body := raw[len(raw):]
	for i := 0; i < len(raw); {
		if i > max {
			return Header{}, nil, nil, fmt.Errorf("%w: over %d bytes", ErrHeaderTooLarge, max)
		}
		line, next, eol := nextLine(raw, i)
		if len(line) == 0 {
			end, body = i, raw[next:]
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(spans) == 0 {
				defects = append(defects, "header starts with a continuation line")
			} else {
				spans[len(spans)-1].end = next - eol
			}
			i = next
			continue
		}
		name, ok := fieldName(line)
		if !ok && len(spans) > 0 && looksLikeParam(line) {
			// Broken folding seen from several MTAs: a Content-Type
			// parameter such as boundary="..." on a line of its own
			// without leading whitespace.
			defects = append(defects, "unindented continuation line")
			spans[len(spans)-1].end = next - eol
			i = next
			continue
		}
		if !ok {
			// Python's email package does the same: a line that is not a
			// field ends the header and starts the body.
			defects = append(defects, "header line without a field name")
			end, body = i, raw[i:]
			break
		}
		colon := i + bytes.IndexByte(line, ':')
		spans = append(spans, span{name: name, start: colon + 1, end: next - eol})
		i = next
	}
	if end > max {
		return Header{}, nil, nil, fmt.Errorf("%w: over %d bytes", ErrHeaderTooLarge, max)
	}
	h.Raw = raw[:end]
	h.Fields = make([]Field, len(spans))
	for k, sp := range spans {
		v := unfold(raw[sp.start:sp.end])
		h.Fields[k] = Field{Name: sp.name, Value: v}
		h.Map.Add(sp.name, v)
	}
	return h, body, defects, nil
}

// unfold removes the line endings of a folded field value (RFC 5322
// §2.2.3) and trims surrounding whitespace.
func unfold(b []byte) string {
	b = bytes.Trim(b, " \t")
	if bytes.IndexAny(b, "\r\n") < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return string(bytes.Trim(out, " \t"))
}

// fieldName returns the name of the field starting on line. RFC 5322
// §3.6.8: the name is printable US-ASCII except the colon; RFC 5322 §4.5.3
// (obsolete syntax) allows whitespace before the colon.
func fieldName(line []byte) (string, bool) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return "", false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return "", false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return "", false
		}
	}
	return string(name), true
}

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "windows-1252", "cp1252", "latin1", "latin-1":
		b, err := io.ReadAll(r)
		if err != nil {
			return nil, err
		}
		return strings.NewReader(latin1(b)), nil
	}
	return nil, fmt.Errorf("mimetree: charset %q not supported", charset)
}

// DecodeWords decodes RFC 2047 encoded words in s. Unlike
// mime.WordDecoder.DecodeHeader it never fails: a word it cannot decode
// stays as written.
func DecodeWords(s string) string { return decodeWords(s) }

func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	var sb strings.Builder
	pendingSpace := "" // whitespace after a decoded word, dropped if another follows (RFC 2047 §6.2)
	lastDecoded := false
	for len(s) > 0 {
		i := strings.Index(s, "=?")
		if i < 0 {
			sb.WriteString(pendingSpace)
			sb.WriteString(s)
			return sb.String()
		}
		prefix := s[:i]
		word, ok := encodedWord(s[i:])
		if !ok {
			sb.WriteString(pendingSpace)
			sb.WriteString(s[:i+2])
			s = s[i+2:]
			pendingSpace, lastDecoded = "", false
			continue
		}
		dec, err := wordDecoder.Decode(word)
		if err != nil {
			sb.WriteString(pendingSpace)
			sb.WriteString(prefix)
			sb.WriteString(word)
			pendingSpace, lastDecoded = "", false
			s = s[i+len(word):]
			continue
		}
		if !(lastDecoded && strings.Trim(prefix, " \t\r\n") == "") {
			sb.WriteString(pendingSpace)
			sb.WriteString(prefix)
		}
		sb.WriteString(dec)
		lastDecoded = true
		pendingSpace = ""
		s = s[i+len(word):]
		// Hold whitespace back until we know whether another word follows.
		j := 0
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		pendingSpace, s = s[:j], s[j:]
		if !strings.HasPrefix(s, "=?") {
			sb.WriteString(pendingSpace)
			pendingSpace, lastDecoded = "", false
		}
	}
	sb.WriteString(pendingSpace)
	return sb.String()
}

// encodedWord returns the encoded word "=?charset?X?text?=" at the start of
// s (RFC 2047 §2).
func encodedWord(s string) (string, bool) {
	if !strings.HasPrefix(s, "=?") {
		return "", false
	}
	q1 := strings.IndexByte(s[2:], '?')
	if q1 <= 0 {
		return "", false
	}
	q1 += 2
	if len(s) < q1+3 || s[q1+2] != '?' {
		return "", false
	}
	switch s[q1+1] {
	case 'b', 'B', 'q', 'Q':
	default:
		return "", false
	}
	end := strings.Index(s[q1+3:], "?=")
	if end < 0 {
		return "", false
	}
	w := s[:q1+3+end+2]
	if strings.ContainsAny(w, " \t\r\n") {
		return "", false
	}
	return w, true
}

// looksLikeParam reports whether line starts with a MIME parameter,
// token "=" (RFC 2045 §5.1), and has no colon before the "=".
func looksLikeParam(line []byte) bool {
	i := bytes.IndexByte(line, '=')
	if i <= 0 {
		return false
	}
	for _, c := range line[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*' || c == '.') {
			return false
		}
	}
	return true
}
