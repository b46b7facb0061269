package dmarcrpt

import (
	"bytes"
	"io"
)

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
