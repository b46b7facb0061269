package dkim

import (
	"errors"
	"fmt"
	"strings"
)

// ErrTagSyntax is returned for a tag list that breaks RFC 6376 §3.2.
var ErrTagSyntax = errors.New("dkim: tag list syntax error")

// Tag is one tag=value pair of a tag list, the value with its surrounding
// whitespace removed and inner folding kept as published.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Tags is a parsed tag list (RFC 6376 §3.2) in the order published. It is
// the syntax of DKIM-Signature, DKIM key records and the ARC header fields.
type Tags []Tag

// Get returns the value of the named tag (names are case-sensitive, RFC
// 6376 §3.2) and whether it is present.
func (ts Tags) Get(name string) (string, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

// ParseTags reads a tag list:
//
//	tag-list  =  tag-spec *( ";" tag-spec ) [ ";" ]
//	tag-spec  =  [FWS] tag-name [FWS] "=" [FWS] tag-value [FWS]
//	tag-name  =  ALPHA *ALNUMPUNC
//	tag-value =  [ tval *( 1*(WSP / FWS) tval ) ]   ; tval = 1*VALCHAR
//
// Errors wrap ErrTagSyntax and name the tag at fault. Values may hold
// UTF-8 (RFC 8616 §4), which the ABNF of RFC 6376 does not.
func ParseTags(s string) (Tags, error) {
	var out Tags
	seen := map[string]bool{}
	specs := strings.Split(s, ";")
	for i, spec := range specs {
		if isFWS(spec) {
			// RFC 6376 §3.2: only the final tag-spec may be empty (the
			// optional trailing ";"); an empty list is also allowed.
			if i == len(specs)-1 || (len(specs) == 1) {
				continue
			}
			return nil, fmt.Errorf("%w: empty tag-spec before ';' number %d", ErrTagSyntax, i+1)
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q has no '='", ErrTagSyntax, strings.TrimSpace(spec))
		}
		name = trimFWS(name)
		if !validTagName(name) {
			return nil, fmt.Errorf("%w: invalid tag name %q", ErrTagSyntax, name)
		}
		value = trimFWS(value)
		if err := checkTagValue(value); err != nil {
			return nil, fmt.Errorf("%w: tag %s=: %v", ErrTagSyntax, name, err)
		}
		// RFC 6376 §3.2
		// > Tags with duplicate names MUST NOT occur within a single
		// > tag-list; if a tag name does occur more than once, the entire
		// > tag-list is invalid.
		if seen[name] {
			return nil, fmt.Errorf("%w: duplicate tag %s=", ErrTagSyntax, name)
		}
		seen[name] = true
		out = append(out, Tag{Name: name, Value: value})
	}
	return out, nil
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func isFWSByte(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isFWS(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isFWSByte(s[i]) {
			return false
		}
	}
	return true
}

func trimFWS(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r < 0x80 && isFWSByte(byte(r)) })
}

// stripFWS removes all folding whitespace, as the base64 tags and the
// lists (h=, q=) of RFC 6376 §3.5 allow it anywhere.
func stripFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && isFWSByte(byte(r)) {
			return -1
		}
		return r
	}, s)
}

func validTagName(n string) bool {
	if n == "" || !isAlpha(n[0]) {
		return false
	}
	for i := 1; i < len(n); i++ {
		c := n[i]
		if !isAlpha(c) && !(c >= '0' && c <= '9') && c != '_' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// checkTagValue enforces tval *( 1*(WSP / FWS) tval ): VALCHAR is %x21-3A
// / %x3C-7E (";" cannot appear, the split removed it), whitespace only
// between values, and a CRLF only as part of folding (followed by WSP).
func checkTagValue(v string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\r':
			if i+2 >= len(v) || v[i+1] != '\n' || !isWSP(v[i+2]) {
				return errors.New("CR not part of folding whitespace")
			}
		case c == '\n':
			if i == 0 || v[i-1] != '\r' {
				return errors.New("bare LF")
			}
		case c == ' ' || c == '\t':
		case c >= 0x21 && c <= 0x7e:
		case c >= 0x80:
		default:
			return fmt.Errorf("control character %#02x", c)
		}
	}
	return nil
}
