package dmarcrpt

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// scanner is the XML tokenizer of the Decoder: a streaming, bounded reader
// of XML 1.0 documents that hands the Decoder only what a report is made
// of, start tags, end tags and, when asked for, the text of the element
// being read. It replaces encoding/xml, which allocates for every token and
// spent more time than all the rest of an import.
//
// It checks what encoding/xml in strict mode checks (names, attribute
// syntax, entity and character references, UTF-8 and the XML character
// range in text, "--" in comments, "]]>" outside CDATA) and reads the same
// things: the predefined entities and numeric character references,
// CDATA sections, comments, processing instructions (the XML declaration's
// version and encoding), directives (which the Decoder refuses when they
// declare a DTD or an entity), namespace prefixes (kept apart from the
// local name, as encoding/xml's RawToken does) and \r\n line ends.
//
// Memory is bounded by the 64 KiB buffer, the text being collected (the
// Decoder's field limit) and names (the same limit): text that is not
// collected, comments and directives are validated and dropped as they are
// read, never held whole.
type scanner struct {
	r     io.Reader
	mem   []byte
	buf   []byte // mem[:n]; the unread bytes are buf[pos:]
	pos   int
	rerr  error // what r returned after the bytes in buf (io.EOF at the end)
	line  int   // newlines consumed
	limit int   // longest name, attribute value or collected text

	name      qname // of the last start or end tag
	needClose bool  // the last start tag was <x/>: its end comes next
	attrs     []attr
	attrBuf   []byte
	names     map[string]qname
	recent    [256]nameSlot // a cache in front of names, which costs a hash per tag
	scratch   []byte
	cdata     bool // the text being read is a CDATA section
}

// qname is an element or attribute name as written: prefix and local part.
type qname struct{ space, local string }

type nameSlot struct {
	raw string
	q   qname
}

func slotOf(b []byte) int {
	n := len(b)
	return (n*131 + int(b[0])*31 + int(b[n/2])*7 + int(b[n-1])) & 255
}

type attr struct {
	name       qname
	start, end int // of the value in attrBuf
}

type tokKind uint8

const (
	tokStart tokKind = iota + 1
	tokEnd
)

// syntaxError is a well-formedness error at a line of the input (counted
// from 0); the Decoder adds the element path.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

// errFieldFull says the text being collected reached the limit; the
// Decoder names the element.
var errFieldFull = errors.New("field full")

func newScanner(r io.Reader, limit int) *scanner {
	return &scanner{r: r, mem: make([]byte, 64<<10), limit: limit}
}

func (s *scanner) syntax(msg string) error { return &syntaxError{line: s.line, msg: msg} }

// more makes at least n (a few) unread bytes available, unless the input
// ends or fails first, which it records in s.rerr.
func (s *scanner) more(n int) bool {
	empty := 0
	for len(s.buf)-s.pos < n {
		if s.rerr != nil {
			return false
		}
		if s.pos > 0 {
			k := copy(s.mem, s.buf[s.pos:])
			s.buf, s.pos = s.mem[:k], 0
		}
		m, err := s.r.Read(s.mem[len(s.buf):])
		s.buf = s.mem[:len(s.buf)+m]
		if err != nil {
			s.rerr = err
		} else if m == 0 {
			if empty++; empty > 100 {
				s.rerr = io.ErrNoProgress
			}
		}
	}
	return true
}

// endErr is the error for an input that ends or fails inside markup.
func (s *scanner) endErr() error {
	if s.rerr == io.EOF {
		return s.syntax("unexpected end of input")
	}
	return s.readErr()
}

func (s *scanner) readErr() error {
	var re readError
	if errors.As(s.rerr, &re) {
		return re.err
	}
	return s.rerr
}

func (s *scanner) getc() (byte, error) {
	if s.pos >= len(s.buf) && !s.more(1) {
		return 0, s.endErr()
	}
	c := s.buf[s.pos]
	s.pos++
	if c == '\n' {
		s.line++
	}
	return c, nil
}

// ungetc steps back over the byte getc just returned.
func (s *scanner) ungetc() {
	s.pos--
	if s.buf[s.pos] == '\n' {
		s.line--
	}
}

func (s *scanner) space() {
	for {
		if s.pos >= len(s.buf) && !s.more(1) {
			return
		}
		switch s.buf[s.pos] {
		case '\n':
			s.line++
		case ' ', '\r', '\t':
		default:
			return
		}
		s.pos++
	}
}

// next returns the next start or end tag, or io.EOF at the end of the
// input. Text before it is appended to *text when text is not nil (up to
// the limit, then errFieldFull), and otherwise checked and dropped.
func (s *scanner) next(text *[]byte) (tokKind, error) {
	if s.needClose {
		s.needClose = false
		return tokEnd, nil
	}
	for {
		if s.pos >= len(s.buf) && !s.more(1) {
			if s.rerr == io.EOF {
				return 0, io.EOF
			}
			return 0, s.readErr()
		}
		if s.buf[s.pos] != '<' {
			if err := s.chars(0, text); err != nil {
				return 0, err
			}
			continue
		}
		s.pos++
		c, err := s.getc()
		if err != nil {
			return 0, err
		}
		switch c {
		case '/':
			return tokEnd, s.endTag()
		case '?':
			err = s.procInst()
		case '!':
			err = s.bang(text)
		default:
			s.ungetc()
			return tokStart, s.startTag()
		}
		if err != nil {
			return 0, err
		}
	}
}

func isNameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == ':' || c == '.' || c == '-' || c >= utf8.RuneSelf
}

// readName reads the bytes that may form a name; the result is valid until
// the next read.
func (s *scanner) readName() ([]byte, error) {
	i := s.pos
	for i < len(s.buf) && isNameByte(s.buf[i]) {
		i++
	}
	if i < len(s.buf) {
		b := s.buf[s.pos:i]
		s.pos = i
		return b, nil
	}
	// The name runs to the end of the buffer.
	s.scratch = append(s.scratch[:0], s.buf[s.pos:i]...)
	s.pos = i
	for {
		if !s.more(1) {
			return nil, s.endErr()
		}
		c := s.buf[s.pos]
		if !isNameByte(c) {
			return s.scratch, nil
		}
		if len(s.scratch) >= s.limit {
			return nil, fmt.Errorf("%w: line %d: name longer than %d bytes", ErrFieldTooLong, s.line+1, s.limit)
		}
		s.scratch = append(s.scratch, c)
		s.pos++
	}
}

// validName reports whether b is an XML name. ASCII names are checked
// here; the rare others are handed to encoding/xml, whose tables of name
// characters are the reference.
func validName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	ascii := true
	for i, c := range b {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if i == 0 && !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c == ':') {
			return false
		}
	}
	if ascii {
		return true
	}
	if !utf8.Valid(b) {
		return false
	}
	// Colons do not change whether a name is valid, but would make
	// encoding/xml read a prefix.
	probe := "<" + strings.ReplaceAll(string(b), ":", "_") + "/>"
	t, err := xml.NewDecoder(strings.NewReader(probe)).RawToken()
	if err != nil {
		return false
	}
	se, ok := t.(xml.StartElement)
	return ok && se.Name.Space == "" && "<"+se.Name.Local+"/>" == probe
}

// qname checks and interns a name; noName is the error when it is not an
// element or attribute name.
func (s *scanner) qname(b []byte, noName string) (qname, error) {
	if len(b) == 0 {
		return qname{}, s.syntax(noName)
	}
	slot := &s.recent[slotOf(b)]
	if slot.raw == string(b) {
		return slot.q, nil
	}
	if q, ok := s.names[string(b)]; ok {
		*slot = nameSlot{raw: q.full(), q: q}
		return q, nil
	}
	if !validName(b) {
		return qname{}, s.syntax("invalid XML name: " + string(b))
	}
	full := string(b)
	var q qname
	switch strings.Count(full, ":") {
	case 0:
		q.local = full
	case 1:
		space, local, _ := strings.Cut(full, ":")
		if space == "" || local == "" {
			q.local = full
		} else {
			q.space, q.local = space, local
		}
	default:
		return qname{}, s.syntax(noName)
	}
	if len(s.names) < 4096 {
		if s.names == nil {
			s.names = make(map[string]qname)
		}
		s.names[full] = q
	}
	*slot = nameSlot{raw: full, q: q}
	return q, nil
}

func (q qname) full() string {
	if q.space == "" {
		return q.local
	}
	return q.space + ":" + q.local
}

// startTag reads a start tag after its '<'.
func (s *scanner) startTag() error {
	b, err := s.readName()
	if err != nil {
		return err
	}
	if s.name, err = s.qname(b, "expected element name after <"); err != nil {
		return err
	}
	s.attrs, s.attrBuf = s.attrs[:0], s.attrBuf[:0]
	// Only <feedback>'s attributes are needed: its namespace.
	keep := s.name.local == "feedback"
	for {
		s.space()
		c, err := s.getc()
		if err != nil {
			return err
		}
		switch c {
		case '/':
			if c, err = s.getc(); err != nil {
				return err
			}
			if c != '>' {
				return s.syntax("expected /> in element")
			}
			s.needClose = true
			return nil
		case '>':
			return nil
		}
		s.ungetc()
		b, err := s.readName()
		if err != nil {
			return err
		}
		a, err := s.qname(b, "expected attribute name in element")
		if err != nil {
			return err
		}
		s.space()
		if c, err = s.getc(); err != nil {
			return err
		}
		if c != '=' {
			return s.syntax("attribute name without = in element")
		}
		s.space()
		if c, err = s.getc(); err != nil {
			return err
		}
		if c != '"' && c != '\'' {
			return s.syntax("unquoted or missing attribute value in element")
		}
		var dst *[]byte
		if keep {
			dst = &s.attrBuf
		}
		start := len(s.attrBuf)
		if err := s.chars(c, dst); err != nil {
			if err == errFieldFull {
				return fmt.Errorf("%w: attributes of <%s> longer than %d bytes", ErrFieldTooLong, s.name.local, s.limit)
			}
			return err
		}
		if keep {
			s.attrs = append(s.attrs, attr{a, start, len(s.attrBuf)})
		}
	}
}

// endTag reads an end tag after its "</".
func (s *scanner) endTag() error {
	b, err := s.readName()
	if err != nil {
		return err
	}
	if s.name, err = s.qname(b, "expected element name after </"); err != nil {
		return err
	}
	s.space()
	c, err := s.getc()
	if err != nil {
		return err
	}
	if c != '>' {
		return s.syntax("invalid characters between </" + s.name.local + " and >")
	}
	return nil
}

// chars reads character data: text up to a '<' (quote 0), an attribute
// value up to its closing quote, or with s.cdata the rest of a CDATA
// section. The decoded text is appended to *dst, or checked and dropped
// when dst is nil.
func (s *scanner) chars(quote byte, dst *[]byte) error {
	for {
		if s.pos >= len(s.buf) && !s.more(1) {
			if quote == 0 && !s.cdata && s.rerr == io.EOF {
				return nil // text may end the input
			}
			if s.cdata && s.rerr == io.EOF {
				return s.syntax("unexpected end of input in CDATA section")
			}
			return s.endErr()
		}
		// The common bytes, in one run.
		b := s.buf
		i, start := s.pos, s.pos
		for i < len(b) {
			c := b[i]
			if c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '&' && c != ']' && c != quote {
				i++
			} else if c == '\n' {
				s.line++
				i++
			} else if c == '\t' {
				i++
			} else {
				break
			}
		}
		if err := s.emit(dst, b[start:i]); err != nil {
			return err
		}
		s.pos = i
		if i == len(b) {
			continue
		}
		c := b[i]
		switch {
		case quote != 0 && c == quote:
			s.pos++
			return nil
		case c == '<':
			if s.cdata {
				s.pos++
				if err := s.emit(dst, b[i:i+1]); err != nil {
					return err
				}
				continue
			}
			if quote != 0 {
				return s.syntax("unescaped < inside quoted string")
			}
			return nil
		case c == '&':
			if s.cdata {
				s.pos++
				if err := s.emit(dst, b[i:i+1]); err != nil {
					return err
				}
				continue
			}
			if err := s.entity(dst); err != nil {
				return err
			}
		case c == ']':
			s.more(3)
			if quote == 0 && bytes.HasPrefix(s.buf[s.pos:], []byte("]]>")) {
				if !s.cdata {
					return s.syntax("unescaped ]]> not in CDATA section")
				}
				s.pos += 3
				return nil
			}
			s.pos++
			if err := s.emit(dst, []byte{']'}); err != nil {
				return err
			}
		case c == '\r':
			// XML 1.0 §2.11: \r\n and a lone \r are read as \n.
			s.pos++
			if err := s.emit(dst, []byte{'\n'}); err != nil {
				return err
			}
			if s.more(1) && s.buf[s.pos] == '\n' {
				s.pos++
				s.line++
			}
		case c >= utf8.RuneSelf:
			s.more(utf8.UTFMax)
			r, size := utf8.DecodeRune(s.buf[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return s.syntax("invalid UTF-8")
			}
			if !isInCharacterRange(r) {
				return s.syntax(fmt.Sprintf("illegal character code %U", r))
			}
			if err := s.emit(dst, s.buf[s.pos:s.pos+size]); err != nil {
				return err
			}
			s.pos += size
		default:
			return s.syntax(fmt.Sprintf("illegal character code %U", rune(c)))
		}
	}
}

func (s *scanner) emit(dst *[]byte, b []byte) error {
	if dst == nil || len(b) == 0 {
		return nil
	}
	if len(*dst)+len(b) > s.limit {
		return errFieldFull
	}
	*dst = append(*dst, b...)
	return nil
}

func isInCharacterRange(r rune) bool {
	// XML 1.0 §2.2 Char.
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// entity reads an entity or character reference at '&': only the five
// predefined entities exist, since DTDs are refused.
func (s *scanner) entity(dst *[]byte) error {
	s.pos++ // '&'
	ref := append(s.scratch[:0], '&')
	defer func() { s.scratch = ref[:0] }()
	bad := func(semicolon bool) error {
		e := string(ref)
		if !semicolon {
			e += " (no semicolon)"
		}
		return s.syntax("invalid character entity " + e)
	}
	c, err := s.getc()
	if err != nil {
		return err
	}
	var r rune
	if c == '#' {
		ref = append(ref, c)
		if c, err = s.getc(); err != nil {
			return err
		}
		base := 10
		if c == 'x' {
			base = 16
			ref = append(ref, c)
			if c, err = s.getc(); err != nil {
				return err
			}
		}
		digits := len(ref)
		for '0' <= c && c <= '9' || base == 16 && ('a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			if len(ref) > 32 {
				return bad(false)
			}
			ref = append(ref, c)
			if c, err = s.getc(); err != nil {
				return err
			}
		}
		if c != ';' {
			s.ungetc()
			return bad(false)
		}
		n, perr := strconv.ParseUint(string(ref[digits:]), base, 64)
		ref = append(ref, ';')
		if perr != nil || n > utf8.MaxRune {
			return bad(true)
		}
		r = rune(n)
		if !utf8.ValidRune(r) {
			r = utf8.RuneError // as encoding/xml reads a surrogate
		}
	} else {
		s.ungetc()
		for {
			if c, err = s.getc(); err != nil {
				return err
			}
			if !isNameByte(c) {
				break
			}
			if len(ref) > 32 {
				return bad(false)
			}
			ref = append(ref, c)
		}
		if c != ';' {
			s.ungetc()
			return bad(false)
		}
		ref = append(ref, ';')
		switch string(ref) {
		case "&lt;":
			r = '<'
		case "&gt;":
			r = '>'
		case "&amp;":
			r = '&'
		case "&apos;":
			r = '\''
		case "&quot;":
			r = '"'
		default:
			return bad(true)
		}
	}
	if !isInCharacterRange(r) {
		return s.syntax(fmt.Sprintf("illegal character code %U", r))
	}
	var enc [utf8.UTFMax]byte
	return s.emit(dst, enc[:utf8.EncodeRune(enc[:], r)])
}

// procInst reads a processing instruction after "<?". The XML declaration
// may name the document's character set, which applies from there on.
func (s *scanner) procInst() error {
	b, err := s.readName()
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return s.syntax("expected target name after <?")
	}
	if !validName(b) {
		return s.syntax("invalid XML name: " + string(b))
	}
	decl := string(b) == "xml"
	s.space()
	body := s.scratch[:0]
	var prev byte
	for {
		c, err := s.getc()
		if err != nil {
			return err
		}
		if prev == '?' && c == '>' {
			break
		}
		prev = c
		if decl {
			if len(body) >= s.limit {
				return fmt.Errorf("%w: line %d: XML declaration longer than %d bytes", ErrFieldTooLong, s.line+1, s.limit)
			}
			body = append(body, c)
		}
	}
	s.scratch = body[:0]
	if !decl {
		return nil
	}
	content := string(body[:max(len(body)-1, 0)]) // without the '?'
	if v := declParam(content, "version"); v != "" && v != "1.0" {
		return s.syntax(fmt.Sprintf("unsupported version %q; only version 1.0 is supported", v))
	}
	enc := declParam(content, "encoding")
	switch strings.ToLower(enc) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "l1":
		s.toLatin1()
	default:
		return fmt.Errorf("%w: %q", ErrCharset, enc)
	}
	return nil
}

// declParam finds name="value" (or 'value') in the XML declaration, as
// encoding/xml does: the first occurrence of name= followed by a quote.
func declParam(s, name string) string {
	key := name + "="
	for {
		k := strings.Index(s, key)
		if k < 0 || k+len(key) >= len(s) {
			return ""
		}
		s = s[k+len(key):]
		if q := s[0]; q == '"' || q == '\'' {
			v, _, ok := strings.Cut(s[1:], string(q))
			if !ok {
				return ""
			}
			return v
		}
	}
}

// toLatin1 reads the rest of the input as ISO-8859-1.
func (s *scanner) toLatin1() {
	rest := bytes.NewReader(bytes.Clone(s.buf[s.pos:]))
	var src io.Reader = s.r
	if s.rerr != nil {
		src = errorReader{s.rerr}
	}
	s.r = &latin1Reader{r: io.MultiReader(rest, src)}
	s.buf, s.pos, s.rerr = s.mem[:0], 0, nil
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// bang reads what starts with "<!": a comment, a CDATA section (its text
// treated as any other), or a directive.
func (s *scanner) bang(text *[]byte) error {
	c, err := s.getc()
	if err != nil {
		return err
	}
	switch c {
	case '-':
		if c, err = s.getc(); err != nil {
			return err
		}
		if c != '-' {
			return s.syntax("invalid sequence <!- not part of <!--")
		}
		var b0, b1 byte
		for {
			if b1 != '-' && s.pos < len(s.buf) && s.buf[s.pos] != '-' {
				// Skip to the next '-': only "--" matters.
				rest := s.buf[s.pos:]
				j := bytes.IndexByte(rest, '-')
				if j < 0 {
					j = len(rest)
				}
				s.line += bytes.Count(rest[:j], []byte{'\n'})
				s.pos += j
				b0, b1 = 0, 0
				continue
			}
			if c, err = s.getc(); err != nil {
				return err
			}
			if b0 == '-' && b1 == '-' {
				if c != '>' {
					return s.syntax(`invalid sequence "--" not allowed in comments`)
				}
				return nil
			}
			b0, b1 = b1, c
		}
	case '[':
		for i := 0; i < len("CDATA["); i++ {
			if c, err = s.getc(); err != nil {
				return err
			}
			if c != "CDATA["[i] {
				return s.syntax("invalid <![ sequence")
			}
		}
		s.cdata = true
		err := s.chars(0, text)
		s.cdata = false
		return err
	}
	return s.directive(c)
}

// directive reads a directive such as <!DOCTYPE ...> after "<!" and its
// first byte c, nesting angle brackets and skipping quotes and comments as
// encoding/xml does, and refuses a DTD or an entity declaration.
func (s *scanner) directive(c byte) error {
	// A DTD can declare entities that expand without bound ("billion
	// laughs"); no DMARC report needs one.
	head := append(s.scratch[:0], c)
	defer func() { s.scratch = head[:0] }()
	var quote byte
	depth := 0
	var err error
	for {
		if c, err = s.getc(); err != nil {
			return err
		}
		if quote == 0 && c == '>' && depth == 0 {
			break
		}
		if len(head) < 64 {
			head = append(head, c)
		}
		switch {
		case c == quote:
			quote = 0
		case quote != 0:
		case c == '\'' || c == '"':
			quote = c
		case c == '>':
			depth--
		case c == '<':
			// A comment inside: <!-- ... -->.
			n := 0
			for n < 3 {
				if c, err = s.getc(); err != nil {
					return err
				}
				if c != "!--"[n] {
					break
				}
				n++
			}
			if n < 3 {
				s.ungetc()
				depth++
				continue
			}
			var b0, b1 byte
			for {
				if c, err = s.getc(); err != nil {
					return err
				}
				if b0 == '-' && b1 == '-' && c == '>' {
					break
				}
				b0, b1 = b1, c
			}
		}
	}
	t := strings.TrimSpace(string(head))
	if len(t) >= 6 && (strings.EqualFold(t[:6], "DOCTYP") || strings.EqualFold(t[:6], "ENTITY")) {
		if len(t) > 20 {
			t = t[:20]
		}
		return fmt.Errorf("%w: line %d: <!%s", ErrDoctype, s.line+1, t)
	}
	// Other directives carry nothing a report needs.
	return nil
}
