package mtasts

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxMaxAge is the largest max_age a policy may give (RFC 8461 §3.2: "an
// integer between 0 and 31557600").
const MaxMaxAge = 31557600

// Policy is a parsed MTA-STS policy (RFC 8461 §3.2).
type Policy struct {
	Version string `json:"version"`
	Mode    Mode   `json:"mode"`
	// MX are the patterns as published, trailing dots removed.
	MX         []string `json:"mx"`
	MaxAge     int64    `json:"max_age"` // seconds
	Extensions []Field  `json:"extensions,omitempty"`
	// Warnings are defects a sender tolerates (a repeated field, a blank
	// line, a trailing dot).
	Warnings []string `json:"warnings,omitempty"`
}

// PolicyError is one syntax error in a policy, with its line (1-based).
// It wraps ErrPolicySyntax.
type PolicyError struct {
	Line   int    `json:"line"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

func (e *PolicyError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("%v: %s", ErrPolicySyntax, e.Reason)
	}
	return fmt.Sprintf("%v: line %d %q: %s", ErrPolicySyntax, e.Line, e.Text, e.Reason)
}

func (e *PolicyError) Unwrap() error { return ErrPolicySyntax }

// PolicyErrors are all the syntax errors of one policy.
type PolicyErrors []*PolicyError

func (es PolicyErrors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap lets errors.Is and errors.As see each error.
func (es PolicyErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// ParsePolicy parses a policy body. Lines end in CRLF or LF (RFC 8461
// §3.2's ABNF: sts-policy-term = LF / CRLF); unknown fields are kept as
// extensions and otherwise ignored; of a repeated field other than mx the
// first counts. It returns the policy with every error found (as
// PolicyErrors) or the policy alone; a policy with errors is one a sender
// must not use.
func ParsePolicy(body string) (*Policy, error) {
	p := &Policy{}
	var errs PolicyErrors
	fail := func(line int, text, format string, args ...any) {
		errs = append(errs, &PolicyError{Line: line, Text: text, Reason: fmt.Sprintf(format, args...)})
	}
	if !utf8.ValidString(body) {
		fail(0, "", "the body is not valid UTF-8")
	}
	seen := map[string]bool{}
	lines := strings.Split(body, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the final terminator is optional
	}
	for i, line := range lines {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimRight(line, " \t") == "" {
			p.Warnings = append(p.Warnings, fmt.Sprintf("line %d is blank; the ABNF has no blank lines, most senders skip them", n))
			continue
		}
		if strings.ContainsRune(line, '\r') {
			fail(n, line, "a bare CR inside the line (lines end in LF or CRLF)")
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			fail(n, line, `not a "name: value" line`)
			continue
		}
		// sts-policy-field-delim = ":" *WSP; trailing WSP is allowed.
		value = strings.Trim(value, " \t")
		if name != strings.TrimRight(name, " \t") || name != strings.TrimLeft(name, " \t") {
			fail(n, line, "blanks around the field name are not allowed")
			continue
		}
		if name != "mx" && seen[name] {
			// RFC 8461 §3.2: > If any non-repeated field -- i.e., all
			// fields excluding "mx" -- is duplicated, all entries except
			// for the first SHALL be ignored.
			p.Warnings = append(p.Warnings, fmt.Sprintf("line %d repeats %q; only the first counts", n, name))
			continue
		}
		seen[name] = true
		switch name {
		case "version":
			if value != "STSv1" {
				fail(n, line, `version must be "STSv1"`)
				continue
			}
			p.Version = value
		case "mode":
			switch Mode(value) {
			case ModeEnforce, ModeTesting, ModeNone:
				p.Mode = Mode(value)
			default:
				fail(n, line, `mode must be "enforce", "testing" or "none" (lower case)`)
			}
		case "max_age":
			// sts-policy-max-age-value = 1*10(DIGIT)
			if value == "" || len(value) > 10 || strings.Trim(value, "0123456789") != "" {
				fail(n, line, "max_age must be 1 to 10 digits")
				continue
			}
			v, _ := strconv.ParseInt(value, 10, 64)
			if v > MaxMaxAge {
				fail(n, line, "max_age %d is above the maximum of %d seconds (one year)", v, MaxMaxAge)
				continue
			}
			p.MaxAge = v
		case "mx":
			pat, warn, err := checkPattern(value)
			if err != "" {
				fail(n, line, "mx %s", err)
				continue
			}
			if warn != "" {
				p.Warnings = append(p.Warnings, fmt.Sprintf("line %d: %s", n, warn))
			}
			p.MX = append(p.MX, pat)
		default:
			if !validExtName(name) {
				fail(n, line, "%q is not a valid field name", name)
				continue
			}
			if value == "" {
				fail(n, line, "field %s has no value", name)
				continue
			}
			p.Extensions = append(p.Extensions, Field{Name: name, Value: value})
		}
	}
	if !seen["version"] {
		fail(0, "", "the version field is missing")
	}
	if !seen["mode"] {
		fail(0, "", "the mode field is missing")
	}
	if !seen["max_age"] {
		fail(0, "", "the max_age field is missing")
	}
	if len(p.MX) == 0 && !seen["mx"] && (p.Mode == ModeEnforce || p.Mode == ModeTesting) {
		fail(0, "", "no mx field: a policy in mode %s must list the MX hosts it allows", p.Mode)
	}
	if len(errs) > 0 {
		return p, errs
	}
	return p, nil
}

// checkPattern checks an mx value: ["*."] Domain, in A-labels (RFC 8461
// §3.2). It returns the pattern lower-cased and without a trailing dot,
// a warning, or an error text.
func checkPattern(v string) (pat, warn, err string) {
	if v == "" {
		return "", "", "value is empty"
	}
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			// RFC 8461 §3.2: IDNs MUST be given as A-labels.
			return "", "", fmt.Sprintf("%q is not ASCII: internationalized names must be given as A-labels (xn--…)", v)
		}
	}
	if strings.HasSuffix(v, ".") {
		warn = fmt.Sprintf("mx %q ends in a dot, which the ABNF does not allow; senders may not match it", v)
		v = strings.TrimSuffix(v, ".")
	}
	d := strings.TrimPrefix(v, "*.")
	if strings.Contains(d, "*") {
		return "", "", fmt.Sprintf("%q: a wildcard may only be the whole left-most label (\"*.example.com\")", v)
	}
	if msg := checkDomain(d); msg != "" {
		return "", "", fmt.Sprintf("%q: %s", v, msg)
	}
	return strings.ToLower(v), warn, ""
}

// checkDomain checks RFC 5321's Domain: dot-separated labels of letters,
// digits and inner hyphens.
func checkDomain(d string) string {
	if d == "" {
		return "empty domain"
	}
	if len(d) > 253 {
		return "domain longer than 253 characters"
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if l == "" {
			return "empty label"
		}
		if len(l) > 63 {
			return "label longer than 63 characters"
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Sprintf("label %q begins or ends with a hyphen", l)
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !isAlnum(c) && c != '-' {
				return fmt.Sprintf("label %q has the character %q", l, c)
			}
		}
	}
	return ""
}

// Match reports whether mxHost matches one of the policy's mx patterns.
func (p *Policy) Match(mxHost string) bool {
	_, ok := p.Matching(mxHost)
	return ok
}

// Matching returns the first mx pattern that mxHost matches. RFC 8461
// §4.1: matching is case-insensitive and a "*." wildcard stands for
// exactly one whole left-most label: "*.example.com" matches
// "mail.example.com" but neither "example.com" nor "foo.bar.example.com".
func (p *Policy) Matching(mxHost string) (pattern string, ok bool) {
	if p == nil {
		return "", false
	}
	h := strings.ToLower(strings.TrimSuffix(mxHost, "."))
	for _, pat := range p.MX {
		if MatchPattern(pat, h) {
			return pat, true
		}
	}
	return "", false
}

// MatchPattern matches one host name against one mx pattern (RFC 8461 §4.1).
func MatchPattern(pattern, host string) bool {
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" || pattern == "" {
		return false
	}
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		label, rest, found := strings.Cut(host, ".")
		return found && label != "" && rest == suffix
	}
	return pattern == host
}
