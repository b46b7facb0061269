package mimetree

import "fmt"

// decodeBase64 decodes RFC 2045 §6.8 base64 the way mail readers do:
// characters outside the alphabet (line breaks, spaces, stray punctuation)
// are skipped, missing padding is accepted, and padding in the middle ends
// one run of encoded data and starts the next, as happens when encoded
// chunks are concatenated. The URL-safe alphabet is accepted too. bad
// reports that something had to be skipped or dropped beyond whitespace.
func decodeBase64(src []byte, max int) (out []byte, bad bool, err error) {
	// Decoded size is at most 3/4 of the input; check before allocating.
	if est := len(src) / 4 * 3; est > max {
		n := 0
		for _, c := range src {
			if b64val(c) >= 0 {
				n++
			}
		}
		if n/4*3 > max {
			return nil, false, fmt.Errorf("%w: base64 body decodes to about %d bytes, limit %d", ErrPartTooLarge, n/4*3, max)
		}
	}
	out = make([]byte, 0, len(src)/4*3+3)
	var quad [4]byte
	n := 0
	flush := func() {
		switch n {
		case 1:
			bad = true // a lone character carries no full byte
		case 2:
			out = append(out, quad[0]<<2|quad[1]>>4)
		case 3:
			out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2)
		}
		n = 0
	}
	for _, c := range src {
		if c == '=' {
			flush()
			continue
		}
		v := b64val(c)
		if v < 0 {
			if c != '\r' && c != '\n' && c != ' ' && c != '\t' {
				bad = true
			}
			continue
		}
		quad[n] = byte(v)
		n++
		if n == 4 {
			out = append(out, quad[0]<<2|quad[1]>>4, quad[1]<<4|quad[2]>>2, quad[2]<<6|quad[3])
			n = 0
		}
	}
	flush()
	return out, bad, nil
}

// b64val maps a character of the standard or URL-safe base64 alphabet
// (RFC 4648 §4, §5) to its value, or -1.
func b64val(c byte) int {
	switch {
	case c >= 'A' && c <= 'Z':
		return int(c - 'A')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 26
	case c >= '0' && c <= '9':
		return int(c-'0') + 52
	case c == '+' || c == '-':
		return 62
	case c == '/' || c == '_':
		return 63
	}
	return -1
}

// decodeQP decodes quoted-printable (RFC 2045 §6.7) leniently: "=XX" with
// hex digits in either case is a byte, "=" before a line ending (after
// optional whitespace) is a soft line break, any other "=" is kept, and
// trailing whitespace on a line is dropped (rule 3). Line endings are kept
// as they are; CRLF, LF and bare CR are all recognised.
func decodeQP(src []byte) []byte {
	out := make([]byte, 0, len(src))
	for i := 0; i < len(src); {
		line, next, eol := nextLine(src, i)
		// Rule 3: trailing whitespace is not part of the data.
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
			line = line[:len(line)-1]
		}
		soft := false
		for j := 0; j < len(line); j++ {
			c := line[j]
			if c != '=' {
				out = append(out, c)
				continue
			}
			if j == len(line)-1 {
				soft = true
				break
			}
			if j+2 < len(line) {
				hi, lo := unhex(line[j+1]), unhex(line[j+2])
				if hi >= 0 && lo >= 0 {
					out = append(out, byte(hi<<4|lo))
					j += 2
					continue
				}
			}
			out = append(out, '=')
		}
		if !soft && eol > 0 {
			out = append(out, src[next-eol:next]...)
		}
		i = next
	}
	return out
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
