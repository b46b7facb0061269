package spf

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Kind names a mechanism or modifier.
type Kind string

// The mechanisms (RFC 7208 §5) and modifiers (§6) of an SPF record.
const (
	KindAll      Kind = "all"      // always matches (§5.1)
	KindInclude  Kind = "include"  // matches when another domain's record passes (§5.2)
	KindA        Kind = "a"        // matches the domain's A/AAAA addresses (§5.3)
	KindMX       Kind = "mx"       // matches the addresses of the domain's MX hosts (§5.4)
	KindPTR      Kind = "ptr"      // matches a validated reverse name under the domain (§5.5, do not use)
	KindIP4      Kind = "ip4"      // matches an IPv4 network (§5.6)
	KindIP6      Kind = "ip6"      // matches an IPv6 network (§5.6)
	KindExists   Kind = "exists"   // matches when the domain has an A record (§5.7)
	KindRedirect Kind = "redirect" // evaluate another domain's record when nothing matched (§6.1)
	KindExp      Kind = "exp"      // where to find the explanation of a fail (§6.2)
	KindUnknown  Kind = "unknown"  // an unknown modifier, ignored (§6)
)

// IsModifier reports whether k is a modifier rather than a mechanism.
func (k Kind) IsModifier() bool { return k == KindRedirect || k == KindExp || k == KindUnknown }

// Qualifier is a mechanism's prefix (RFC 7208 §4.6.2).
type Qualifier string

// The four qualifiers; "+" is the default.
const (
	QPass     Qualifier = "+" // a match means pass
	QFail     Qualifier = "-" // a match means fail
	QSoftfail Qualifier = "~" // a match means softfail
	QNeutral  Qualifier = "?" // a match means neutral
)

// Status returns the result a match with this qualifier produces.
func (q Qualifier) Status() Status {
	switch q {
	case QFail:
		return Fail
	case QSoftfail:
		return Softfail
	case QNeutral:
		return Neutral
	}
	return Pass
}

// Term is one mechanism or modifier of a record, as written and as parsed.
type Term struct {
	Text      string    `json:"text"` // as written in the record
	Kind      Kind      `json:"kind"`
	Qualifier Qualifier `json:"qualifier,omitempty"` // mechanisms only; "+" when absent
	// DomainSpec is the domain-spec (§4.8) as written, macros unexpanded;
	// empty for a, mx and ptr without one (the current domain is used).
	DomainSpec string `json:"domain_spec,omitempty"`
	// Network is the ip4/ip6 network.
	Network netip.Prefix `json:"network,omitzero"`
	// CIDR4 and CIDR6 are the dual-cidr-length of a and mx (§5.6), -1 when
	// absent (a /32 or /128 match); JSON omits them then.
	CIDR4 int `json:"-"`
	CIDR6 int `json:"-"`
	// Name and Value are an unknown modifier's.
	Name  string `json:"name,omitempty"`
	Value string `json:"value,omitempty"`

	spec macroString
}

// MarshalJSON writes cidr4 and cidr6 only when the term has them.
func (t *Term) MarshalJSON() ([]byte, error) {
	type plain Term
	var c4, c6 *int
	if t.CIDR4 >= 0 {
		c4 = &t.CIDR4
	}
	if t.CIDR6 >= 0 {
		c6 = &t.CIDR6
	}
	return json.Marshal(struct {
		*plain
		CIDR4 *int `json:"cidr4,omitempty"`
		CIDR6 *int `json:"cidr6,omitempty"`
	}{(*plain)(t), c4, c6})
}

// Record is a parsed SPF record (RFC 7208 §4.5, §12).
type Record struct {
	Text  string  `json:"text"`  // as published
	Terms []*Term `json:"terms"` // every term in order, modifiers included
	// Redirect and Exp point into Terms when the record has them.
	Redirect *Term `json:"-"`
	Exp      *Term `json:"-"`
	HasAll   bool  `json:"-"` // an "all" mechanism is present (redirect is then ignored, §6.1)
}

// Errors of Parse, all wrapping ErrSyntax.
var (
	// ErrSyntax is any syntax error in a record (a permerror, RFC 7208 §4.6).
	ErrSyntax = errors.New("spf: syntax error")
	// ErrNotSPF means the text is not an SPF version 1 record at all.
	ErrNotSPF = errors.New("spf: not an SPF record (no v=spf1)")
)

// SyntaxError says which term is wrong and why.
type SyntaxError struct {
	Term   string // the offending term, or the whole record
	Reason string
}

func (e *SyntaxError) Error() string {
	if e.Term == "" {
		return "spf: syntax error: " + e.Reason
	}
	return fmt.Sprintf("spf: syntax error in %q: %s", e.Term, e.Reason)
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }

func syntaxErr(term, format string, args ...any) error {
	return &SyntaxError{Term: term, Reason: fmt.Sprintf(format, args...)}
}

// isSPF reports whether a TXT string is an SPF version 1 record: it starts
// with "v=spf1" followed by a space or the end (RFC 7208 §4.5), in any case.
func isSPF(txt string) bool {
	if len(txt) < 6 || !strings.EqualFold(txt[:6], "v=spf1") {
		return false
	}
	return len(txt) == 6 || txt[6] == ' '
}

// Parse reads an SPF record. It checks the whole record, so a syntax error
// anywhere is found before anything is evaluated (RFC 7208 §4.6). An error
// wraps ErrSyntax, or ErrNotSPF when the text does not start with v=spf1.
func Parse(txt string) (*Record, error) {
	if !isSPF(txt) {
		return nil, ErrNotSPF
	}
	r := &Record{Text: txt}
	// RFC 7208 §3.1/§4.6.1: the record is 7-bit ASCII and terms are
	// separated by spaces only; control characters are errors.
	for i := 0; i < len(txt); i++ {
		if c := txt[i]; c < 0x20 || c > 0x7e {
			return nil, syntaxErr("", "character 0x%02x at offset %d (records are printable ASCII; terms are separated by spaces only)", c, i)
		}
	}
	for _, f := range strings.Split(txt[6:], " ") {
		if f == "" {
			continue // §4.6.1: 1*SP between terms, trailing spaces allowed
		}
		t, err := parseTerm(f)
		if err != nil {
			return nil, err
		}
		switch t.Kind {
		case KindRedirect, KindExp:
			// RFC 7208 §6: these two modifiers MUST NOT appear more than once.
			if (t.Kind == KindRedirect && r.Redirect != nil) || (t.Kind == KindExp && r.Exp != nil) {
				return nil, syntaxErr(f, "%s= appears more than once (RFC 7208 §6)", t.Kind)
			}
			if t.Kind == KindRedirect {
				r.Redirect = t
			} else {
				r.Exp = t
			}
		case KindAll:
			r.HasAll = true
		}
		r.Terms = append(r.Terms, t)
	}
	return r, nil
}

// modifierName returns the length of a modifier name at the start of s
// followed by "=", or 0. name = ALPHA *( ALPHA / DIGIT / "-" / "_" / "." ).
func modifierName(s string) int {
	if s == "" || !isAlpha(s[0]) {
		return 0
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '=':
			return i
		case isAlpha(c) || isDigit(c) || c == '-' || c == '_' || c == '.':
		default:
			return 0
		}
	}
	return 0
}

func parseTerm(f string) (*Term, error) {
	t := &Term{Text: f, CIDR4: -1, CIDR6: -1}
	if n := modifierName(f); n > 0 {
		name, value := f[:n], f[n+1:]
		switch strings.ToLower(name) {
		case "redirect":
			t.Kind = KindRedirect
		case "exp":
			t.Kind = KindExp
		default:
			// Unknown modifiers are ignored, but their value must still be
			// a valid macro-string (§4.6.1, §6).
			t.Kind, t.Name, t.Value = KindUnknown, name, value
			if _, err := parseMacroString(value, false); err != nil {
				return nil, syntaxErr(f, "%v", err)
			}
			return t, nil
		}
		if value == "" {
			return nil, syntaxErr(f, "%s= needs a domain", t.Kind)
		}
		ms, err := parseDomainSpec(value)
		if err != nil {
			return nil, syntaxErr(f, "%v", err)
		}
		t.DomainSpec, t.spec = value, ms
		return t, nil
	}

	t.Qualifier = QPass
	rest := f
	switch rest[0] {
	case '+', '-', '~', '?':
		t.Qualifier = Qualifier(rest[:1])
		rest = rest[1:]
	}
	end := strings.IndexAny(rest, ":/")
	if end < 0 {
		end = len(rest)
	}
	name, arg := strings.ToLower(rest[:end]), rest[end:]
	t.Kind = Kind(name)
	switch t.Kind {
	case KindAll:
		if arg != "" {
			return nil, syntaxErr(f, "all takes no argument")
		}
	case KindInclude, KindExists:
		if !strings.HasPrefix(arg, ":") || len(arg) == 1 {
			return nil, syntaxErr(f, "%s needs a domain: %s:DOMAIN", name, name)
		}
		ms, err := parseDomainSpec(arg[1:])
		if err != nil {
			return nil, syntaxErr(f, "%v", err)
		}
		t.DomainSpec, t.spec = arg[1:], ms
	case KindA, KindMX, KindPTR:
		spec := arg
		if t.Kind != KindPTR {
			var err error
			spec, t.CIDR4, t.CIDR6, err = cutDualCIDR(arg)
			if err != nil {
				return nil, syntaxErr(f, "%v", err)
			}
		}
		if spec != "" {
			if spec[0] != ':' || len(spec) == 1 {
				return nil, syntaxErr(f, "expected %s:DOMAIN", name)
			}
			ms, err := parseDomainSpec(spec[1:])
			if err != nil {
				return nil, syntaxErr(f, "%v", err)
			}
			t.DomainSpec, t.spec = spec[1:], ms
		}
	case KindIP4, KindIP6:
		if !strings.HasPrefix(arg, ":") {
			return nil, syntaxErr(f, "%s needs a network: %s:ADDRESS[/LENGTH]", name, name)
		}
		p, err := parseNetwork(arg[1:], t.Kind == KindIP4)
		if err != nil {
			return nil, syntaxErr(f, "%v", err)
		}
		t.Network = p
	case KindRedirect, KindExp:
		return nil, syntaxErr(f, "%s is a modifier: write %s=DOMAIN", name, name)
	default:
		return nil, syntaxErr(f, "unknown mechanism %q", rest[:end])
	}
	return t, nil
}

// cidrLen reads a cidr-length: "0" / %x31-39 0*nDIGIT, at most max.
func cidrLen(s string, max int) (int, bool) {
	if s == "" || len(s) > 3 || (len(s) > 1 && s[0] == '0') {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
	}
	n, _ := strconv.Atoi(s)
	return n, n <= max
}

// cutDualCIDR splits "[:domain-spec][/n][//m]" into the domain part and
// the two lengths (RFC 7208 §5.6 dual-cidr-length).
func cutDualCIDR(arg string) (string, int, int, error) {
	c4, c6 := -1, -1
	if i := strings.LastIndex(arg, "//"); i >= 0 && allDigits(arg[i+2:]) {
		n, ok := cidrLen(arg[i+2:], 128)
		if !ok {
			return "", 0, 0, fmt.Errorf("bad IPv6 prefix length %q", arg[i+2:])
		}
		c6, arg = n, arg[:i]
	}
	if i := strings.LastIndexByte(arg, '/'); i >= 0 && allDigits(arg[i+1:]) && (i == 0 || arg[i-1] != '/') {
		n, ok := cidrLen(arg[i+1:], 32)
		if !ok {
			return "", 0, 0, fmt.Errorf("bad IPv4 prefix length %q", arg[i+1:])
		}
		c4, arg = n, arg[:i]
	}
	return arg, c4, c6, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// parseNetwork reads an ip4-network/ip6-network with an optional length.
func parseNetwork(s string, v4 bool) (netip.Prefix, error) {
	addr, length, hasLen := strings.Cut(s, "/")
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Zone() != "" || a.Is4() != v4 {
		fam := "IPv6"
		if v4 {
			fam = "IPv4"
		}
		return netip.Prefix{}, fmt.Errorf("%q is not an %s address", addr, fam)
	}
	bits := a.BitLen()
	if hasLen {
		n, ok := cidrLen(length, bits)
		if !ok {
			return netip.Prefix{}, fmt.Errorf("bad prefix length %q", length)
		}
		bits = n
	}
	return netip.PrefixFrom(a, bits).Masked(), nil
}

// parseDomainSpec reads a domain-spec: a macro-string that ends in a macro
// or in "." toplabel ["."] (RFC 7208 §7.1, §12). c, r and t are not
// allowed outside explanations (§7.3).
func parseDomainSpec(s string) (macroString, error) {
	ms, err := parseMacroString(s, false)
	if err != nil {
		return nil, err
	}
	if len(ms) > 0 && ms[len(ms)-1].letter != 0 {
		return ms, nil
	}
	if len(ms) > 0 && ms[len(ms)-1].lit != "" && isEscape(ms[len(ms)-1]) {
		return ms, nil // %%, %_ and %- are macro-expands too
	}
	// The trailing literal text, which may span several tokens.
	var tail string
	for i := len(ms) - 1; i >= 0 && ms[i].letter == 0 && !isEscape(ms[i]); i-- {
		tail = ms[i].lit + tail
	}
	tail = strings.TrimSuffix(tail, ".")
	dot := strings.LastIndexByte(tail, '.')
	if dot < 0 || !isTopLabel(tail[dot+1:]) {
		return nil, fmt.Errorf("domain %q must end in a macro or in .TOPLABEL (RFC 7208 §7.1)", s)
	}
	return ms, nil
}

// isTopLabel: ( *alphanum ALPHA *alphanum ) /
// ( 1*alphanum "-" *( alphanum / "-" ) alphanum ).
func isTopLabel(s string) bool {
	if s == "" {
		return false
	}
	alpha, dash := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlpha(c):
			alpha = true
		case isDigit(c):
		case c == '-':
			dash = true
		default:
			return false
		}
	}
	if dash {
		return s[0] != '-' && s[len(s)-1] != '-'
	}
	return alpha
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
