package dkim

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrMessage is returned for a message whose header cannot be split into
// fields (RFC 5322 §2.2).
var ErrMessage = errors.New("dkim: malformed message header")

// maxHeaderFields bounds the work done on one message.
const maxHeaderFields = 1000

// Field is one header field exactly as it appears in the message (line
// endings normalised to CRLF), which is what canonicalization needs.
type Field struct {
	Name string // as written, without the colon or trailing whitespace
	// Raw is the whole field: name, colon, value and every folded line,
	// ending with CRLF.
	Raw []byte
}

// Value returns the field body after the colon, unchanged (folding kept).
func (f Field) Value() string {
	i := bytes.IndexByte(f.Raw, ':')
	return strings.TrimSuffix(string(f.Raw[i+1:]), "\r\n")
}

// Message is a message split into its header fields, top first, and body.
type Message struct {
	Fields []Field
	Body   []byte // after the empty line; nil when there is none
}

// ParseMessage splits a message into raw header fields and body. Bare LF
// line endings are turned into CRLF first, as verifiers receiving mail
// from a local mailbox must (RFC 6376 §5.3 requires CRLF). A message
// without an empty line is all header.
func ParseMessage(msg []byte) (*Message, error) {
	msg = toCRLF(msg)
	m := &Message{}
	rest := msg
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\r\n"))
		if !found {
			line, after = rest, nil
		}
		if len(line) == 0 {
			m.Body = after
			if m.Body == nil {
				m.Body = []byte{}
			}
			return m, nil
		}
		full := append(append([]byte{}, line...), '\r', '\n')
		if isWSP(line[0]) {
			if len(m.Fields) == 0 {
				return nil, fmt.Errorf("%w: continuation line before the first field", ErrMessage)
			}
			f := &m.Fields[len(m.Fields)-1]
			f.Raw = append(f.Raw, full...)
		} else {
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return nil, fmt.Errorf("%w: line %q is not a header field", ErrMessage, clip(line))
			}
			name := strings.TrimRight(string(line[:colon]), " \t")
			if name == "" || strings.ContainsAny(name, " \t") {
				return nil, fmt.Errorf("%w: bad field name %q", ErrMessage, clip(line[:colon]))
			}
			if len(m.Fields) == maxHeaderFields {
				return nil, fmt.Errorf("%w: more than %d header fields", ErrMessage, maxHeaderFields)
			}
			m.Fields = append(m.Fields, Field{Name: name, Raw: full})
		}
		rest = after
	}
	return m, nil
}

func clip(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// toCRLF turns every LF not preceded by CR into CRLF.
func toCRLF(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}
