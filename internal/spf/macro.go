package spf

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// macroToken is literal text or one macro-expand (RFC 7208 §7.1).
type macroToken struct {
	lit     string // literal text, or what %%, %_ and %- stand for
	esc     bool   // lit came from %%, %_ or %-
	letter  byte   // the macro letter, lower case; 0 for literal text
	upper   bool   // an upper-case letter: URL-escape the value (§7.3)
	digits  int    // keep this many right-hand parts; 0 keeps all
	reverse bool
	delims  string // split on these; "." when empty
}

type macroString []macroToken

func isEscape(t macroToken) bool { return t.esc }

// maxMacroParts bounds the DIGIT transformer; any larger value keeps all
// parts anyway (a name has at most 127 labels).
const maxMacroParts = 128

// parseMacroString reads a macro-string, or an explain-string when exp is
// true (which also allows spaces and the letters c, r and t, §7.3).
func parseMacroString(s string, exp bool) (macroString, error) {
	var out macroString
	lit := func(text string) {
		if n := len(out); n > 0 && out[n-1].letter == 0 && !out[n-1].esc {
			out[n-1].lit += text
			return
		}
		out = append(out, macroToken{lit: text})
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '%' {
			if c < 0x21 || c > 0x7e {
				if !(exp && c == ' ') {
					return nil, fmt.Errorf("character 0x%02x is not allowed in a macro-string", c)
				}
			}
			j := i + 1
			for j < len(s) && s[j] != '%' {
				j++
			}
			// Check the rest of the run the same way.
			for k := i; k < j; k++ {
				if ck := s[k]; (ck < 0x21 || ck > 0x7e) && !(exp && ck == ' ') {
					return nil, fmt.Errorf("character 0x%02x is not allowed in a macro-string", ck)
				}
			}
			lit(s[i:j])
			i = j
			continue
		}
		if i+1 >= len(s) {
			return nil, fmt.Errorf("%q ends with a lone %%", s)
		}
		switch s[i+1] {
		case '%':
			out = append(out, macroToken{lit: "%", esc: true})
			i += 2
			continue
		case '_':
			out = append(out, macroToken{lit: " ", esc: true})
			i += 2
			continue
		case '-':
			out = append(out, macroToken{lit: "%20", esc: true})
			i += 2
			continue
		case '{':
		default:
			return nil, fmt.Errorf("%q: %%%c is not a macro (write %%%% for a percent sign)", s, s[i+1])
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return nil, fmt.Errorf("%q: unterminated macro %%{", s)
		}
		body := s[i+2 : i+end]
		tok, err := parseMacroBody(body, exp)
		if err != nil {
			return nil, fmt.Errorf("macro %%{%s}: %v", body, err)
		}
		out = append(out, tok)
		i += end + 1
	}
	return out, nil
}

func parseMacroBody(b string, exp bool) (macroToken, error) {
	if b == "" {
		return macroToken{}, fmt.Errorf("no macro letter")
	}
	var t macroToken
	l := b[0]
	t.upper = l >= 'A' && l <= 'Z'
	if t.upper {
		l += 'a' - 'A'
	}
	switch l {
	case 's', 'l', 'o', 'd', 'i', 'p', 'h', 'v':
	case 'c', 'r', 't':
		if !exp {
			// RFC 7208 §7.3: c, r and t are allowed only in "exp" text.
			return t, fmt.Errorf("%%{%c} is allowed only in explanations (RFC 7208 §7.3)", b[0])
		}
	default:
		return t, fmt.Errorf("unknown macro letter %q", b[0])
	}
	t.letter = l
	rest := b[1:]
	j := 0
	for j < len(rest) && isDigit(rest[j]) {
		j++
	}
	if j > 0 {
		n := 0
		for _, d := range rest[:j] {
			n = min(n*10+int(d-'0'), maxMacroParts+1)
		}
		if n == 0 {
			// RFC 7208 §7.1: "If a DIGIT is specified, the value MUST be nonzero."
			return t, fmt.Errorf("the number of parts must not be zero")
		}
		t.digits = n
	}
	rest = rest[j:]
	if rest != "" && (rest[0] == 'r' || rest[0] == 'R') {
		t.reverse = true
		rest = rest[1:]
	}
	for k := 0; k < len(rest); k++ {
		if !strings.ContainsRune(".-+,/_=", rune(rest[k])) {
			return t, fmt.Errorf("%q is not a delimiter", rest[k])
		}
	}
	t.delims = rest
	return t, nil
}

// macroEnv holds the values macros expand to (RFC 7208 §7.2).
type macroEnv struct {
	sender, local, senderDomain, domain, helo string
	ip                                        netip.Addr
	receiver                                  string
	now                                       int64
	ptr                                       func() string // %{p}, looked up on demand
}

// expand returns the text of a macro-string (RFC 7208 §7.3).
func (ms macroString) expand(m *macroEnv) string {
	var b strings.Builder
	for _, t := range ms {
		if t.letter == 0 {
			b.WriteString(t.lit)
			continue
		}
		v := m.value(t.letter)
		v = transform(v, t)
		if t.upper {
			v = urlEscape(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

func (m *macroEnv) value(l byte) string {
	switch l {
	case 's':
		return m.sender
	case 'l':
		return m.local
	case 'o':
		return m.senderDomain
	case 'd':
		return m.domain
	case 'i':
		return dottedIP(m.ip)
	case 'p':
		if m.ptr == nil {
			return "unknown"
		}
		return m.ptr()
	case 'v':
		if m.ip.Is4() {
			return "in-addr"
		}
		return "ip6"
	case 'h':
		return m.helo
	case 'c':
		return m.ip.String()
	case 'r':
		if m.receiver == "" {
			return "unknown"
		}
		return m.receiver
	case 't':
		return strconv.FormatInt(m.now, 10)
	}
	return ""
}

// transform applies the delimiters, reversal and part count (§7.3).
func transform(v string, t macroToken) string {
	if t.digits == 0 && !t.reverse && t.delims == "" {
		return v
	}
	delims := t.delims
	if delims == "" {
		delims = "."
	}
	// Empty parts are kept: "a..b" has three (strings.FieldsFunc would
	// drop one).
	parts := splitAny(v, delims)
	if t.reverse {
		for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
			parts[i], parts[j] = parts[j], parts[i]
		}
	}
	if t.digits > 0 && t.digits < len(parts) {
		parts = parts[len(parts)-t.digits:]
	}
	return strings.Join(parts, ".")
}

func splitAny(s, delims string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(delims, s[i]) >= 0 {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// dottedIP is %{i}: dotted decimal for IPv4, dot-separated nibbles for
// IPv6 (RFC 7208 §7.3), upper-case as in the RFC's examples (§7.4).
func dottedIP(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	const hex = "0123456789ABCDEF"
	b := ip.As16()
	out := make([]byte, 0, 63)
	for i, x := range b {
		if i > 0 {
			out = append(out, '.')
		}
		out = append(out, hex[x>>4], '.', hex[x&0xf])
	}
	return string(out)
}

// urlEscape escapes every character outside RFC 3986's unreserved set, as
// RFC 7208 §7.3 requires for upper-case macro letters.
func urlEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlpha(c) || isDigit(c) || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}
