package dkim

import (
	"bytes"
	"fmt"
	"strings"
)

// Canon is a canonicalization algorithm (RFC 6376 §3.4).
type Canon string

// The two canonicalization algorithms of RFC 6376 §3.4.
const (
	Simple  Canon = "simple"  // tolerates no change at all (§3.4.1, §3.4.3)
	Relaxed Canon = "relaxed" // tolerates whitespace and header-name case changes (§3.4.2, §3.4.4)
)

// parseCanon reads c= ("header/body"; either part defaults to simple,
// RFC 6376 §3.5).
func parseCanon(s string) (header, body Canon, err error) {
	s = stripFWS(s)
	h, b, _ := strings.Cut(s, "/")
	if h == "" {
		h = "simple"
	}
	if b == "" {
		b = "simple"
	}
	header, body = Canon(h), Canon(b)
	for _, c := range []Canon{header, body} {
		if c != Simple && c != Relaxed {
			return "", "", fmt.Errorf("unknown canonicalization %q", c)
		}
	}
	return header, body, nil
}

// CanonHeader canonicalizes one raw header field (name, colon, value,
// folding, ending CRLF).
func CanonHeader(c Canon, raw []byte) []byte {
	if c == Simple {
		// RFC 6376 §3.4.1: the field is presented exactly as it is.
		return raw
	}
	// RFC 6376 §3.4.2: lower-case the name, unfold, reduce whitespace runs
	// to one SP, drop whitespace at the end of the value and around the
	// colon.
	colon := bytes.IndexByte(raw, ':')
	name := strings.ToLower(strings.TrimRight(string(raw[:colon]), " \t"))
	out := make([]byte, 0, len(raw))
	out = append(out, name...)
	out = append(out, ':')
	v := raw[colon+1:]
	space := false
	started := false
	for _, c := range v {
		switch c {
		case '\r', '\n':
			continue
		case ' ', '\t':
			space = true
			continue
		}
		if space && started {
			out = append(out, ' ')
		}
		space = false
		started = true
		out = append(out, c)
	}
	return append(out, '\r', '\n')
}

// CanonBody canonicalizes a body (CRLF line endings).
func CanonBody(c Canon, body []byte) []byte {
	if c == Simple {
		// RFC 6376 §3.4.3: drop empty lines at the end; an empty body, or
		// one without a final CRLF, gets one CRLF.
		b := body
		for bytes.HasSuffix(b, []byte("\r\n")) {
			b = b[:len(b)-2]
		}
		out := make([]byte, 0, len(b)+2)
		out = append(out, b...)
		return append(out, '\r', '\n')
	}
	// RFC 6376 §3.4.4: drop whitespace at line ends, reduce runs of
	// whitespace to one SP, drop empty lines at the end; a non-empty body
	// ends with CRLF, an empty one stays empty.
	out := make([]byte, 0, len(body))
	rest := body
	for len(rest) > 0 {
		line, after, found := bytes.Cut(rest, []byte("\r\n"))
		if !found {
			after = nil
		}
		space := false
		for _, c := range line {
			if c == ' ' || c == '\t' {
				space = true
				continue
			}
			if space {
				out = append(out, ' ')
				space = false
			}
			out = append(out, c)
		}
		out = append(out, '\r', '\n')
		rest = after
	}
	for bytes.HasSuffix(out, []byte("\r\n\r\n")) {
		out = out[:len(out)-2]
	}
	if bytes.Equal(out, []byte("\r\n")) {
		out = out[:0]
	}
	return out
}

// withoutB returns the raw signature field with the value of its b= tag
// deleted (RFC 6376 §3.7: "with the value of the "b=" tag (including all
// surrounding whitespace) deleted"), everything else kept byte for byte.
func withoutB(raw []byte) []byte {
	colon := bytes.IndexByte(raw, ':')
	out := append([]byte{}, raw[:colon+1]...)
	v := raw[colon+1:]
	for len(v) > 0 {
		end := bytes.IndexByte(v, ';')
		spec := v
		if end >= 0 {
			spec = v[:end]
		}
		if eq := bytes.IndexByte(spec, '='); eq >= 0 && trimFWS(string(spec[:eq])) == "b" {
			out = append(out, spec[:eq+1]...)
		} else {
			out = append(out, spec...)
		}
		if end < 0 {
			break
		}
		out = append(out, ';')
		v = v[end+1:]
	}
	// Keep the field's line ending, which the loop above copied with the
	// last spec unless the b= tag was last.
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}
