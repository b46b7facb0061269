package store

import (
	"encoding/json"
	"unicode/utf8"

	"github.com/mxray/mxray/internal/report/dmarcrpt"
)

// The record columns hold small JSON arrays, written by hand: going through
// encoding/json per record would cost more than storing the record.

// jsonList encodes a list of strings as a JSON array; "[]" when empty.
func jsonList(l []string) string {
	if len(l) == 0 {
		return "[]"
	}
	b := []byte{'['}
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return string(append(b, ']'))
}

func parseList(s string) []string {
	var l []string
	if s != "" {
		json.Unmarshal([]byte(s), &l)
	}
	return l
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json does.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return append(b, '"')
}

// storedAuth is one DKIM or SPF result of a record as the store keeps it:
// short keys, since every record carries them.
type storedAuth struct {
	Domain      string `json:"d"`
	Selector    string `json:"s,omitempty"` // DKIM selector, or SPF scope
	Result      string `json:"r"`
	HumanResult string `json:"h,omitempty"`
}

// DKIMAuth is a DKIM result of a record (<auth_results><dkim>).
type DKIMAuth struct {
	Domain      string `json:"domain"`
	Selector    string `json:"selector,omitempty"`
	Result      string `json:"result"`
	HumanResult string `json:"human_result,omitempty"`
}

// SPFAuth is an SPF result of a record (<auth_results><spf>).
type SPFAuth struct {
	Domain      string `json:"domain"`
	Scope       string `json:"scope,omitempty"`
	Result      string `json:"result"`
	HumanResult string `json:"human_result,omitempty"`
}

func parseDKIM(s string) []DKIMAuth {
	var out []DKIMAuth
	for _, a := range parseJSON[storedAuth](s) {
		out = append(out, DKIMAuth(a))
	}
	return out
}

func parseSPF(s string) []SPFAuth {
	var out []SPFAuth
	for _, a := range parseJSON[storedAuth](s) {
		out = append(out, SPFAuth{Domain: a.Domain, Scope: a.Selector, Result: a.Result, HumanResult: a.HumanResult})
	}
	return out
}

func appendAuth(b []byte, d, s, r, h string) []byte {
	b = append(b, `{"d":`...)
	b = appendString(b, d)
	if s != "" {
		b = append(b, `,"s":`...)
		b = appendString(b, s)
	}
	b = append(b, `,"r":`...)
	b = appendString(b, r)
	if h != "" {
		b = append(b, `,"h":`...)
		b = appendString(b, h)
	}
	return append(b, '}')
}

func appendDKIM(b []byte, l []dmarcrpt.DKIMAuthResult) []byte {
	b = append(b, '[')
	for i, a := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAuth(b, a.Domain, a.Selector, string(a.Result), a.HumanResult)
	}
	return append(b, ']')
}

func appendSPF(b []byte, l []dmarcrpt.SPFAuthResult) []byte {
	b = append(b, '[')
	for i, a := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendAuth(b, a.Domain, string(a.Scope), string(a.Result), a.HumanResult)
	}
	return append(b, ']')
}

// Reason is a policy override reason of a record.
type Reason struct {
	Type    string `json:"type"`
	Comment string `json:"comment,omitempty"`
}

func appendReasons(b []byte, l []dmarcrpt.Reason) []byte {
	b = append(b, '[')
	for i, r := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":`...)
		b = appendString(b, string(r.Type))
		if r.Comment != "" {
			b = append(b, `,"comment":`...)
			b = appendString(b, r.Comment)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func parseJSON[T any](s string) []T {
	var l []T
	if s != "" {
		json.Unmarshal([]byte(s), &l)
	}
	return l
}
