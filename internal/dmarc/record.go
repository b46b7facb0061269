package dmarc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// Policy is a Domain Owner Assessment Policy (the p, sp and np tags).
type Policy string

// The three policies of RFC 9989 §4.7.
const (
	// PolicyNone: the Domain Owner expresses no preference (monitoring).
	PolicyNone Policy = "none"
	// PolicyQuarantine: failing mail is suspicious (spam folder).
	PolicyQuarantine Policy = "quarantine"
	// PolicyReject: failing mail should be refused.
	PolicyReject Policy = "reject"
)

// lower returns the policy one level below p: what t=y asks for (RFC 9989
// §4.7) and what RFC 7489 §6.6.4 gives the messages pct did not select.
func (p Policy) lower() Policy {
	switch p {
	case PolicyReject:
		return PolicyQuarantine
	case PolicyQuarantine:
		return PolicyNone
	}
	return p
}

// Alignment is an identifier alignment mode (adkim, aspf).
type Alignment string

// The two alignment modes of RFC 9989 §3.2 ("Identifier Alignment").
const (
	// Relaxed: the two domains have the same Organizational Domain.
	Relaxed Alignment = "r"
	// Strict: the two domains are identical.
	Strict Alignment = "s"
)

// Word spells the mode out for people.
func (a Alignment) Word() string {
	if a == Strict {
		return "strict"
	}
	return "relaxed"
}

// PSD is the value of the psd tag (RFC 9989 §4.7).
type PSD string

// The three values of psd.
const (
	// PSDYes: the domain is a Public Suffix Domain.
	PSDYes PSD = "y"
	// PSDNo: the domain is an Organizational Domain.
	PSDNo PSD = "n"
	// PSDUnknown: the default; the DNS Tree Walk decides.
	PSDUnknown PSD = "u"
)

// Sentinel errors of Parse; test with errors.Is.
var (
	// ErrNotDMARC: the text does not begin with v=DMARC1, so it is not a
	// DMARC record and is discarded (RFC 9989 §4.10 step 2).
	ErrNotDMARC = errors.New("dmarc: not a DMARC record (must begin with v=DMARC1)")
)

// DefectKind classifies a defect of a record.
type DefectKind string

// Kinds of defect.
const (
	// DefectInvalid: a known tag with a value its grammar does not allow;
	// the tag is ignored and its default applies (RFC 9989 §4.7).
	DefectInvalid DefectKind = "invalid"
	// DefectUnknown: a tag DMARC does not define; ignored (RFC 9989 §4.7).
	DefectUnknown DefectKind = "unknown"
	// DefectRemoved: a tag RFC 9989 removed (pct, rf, ri); RFC 9989
	// receivers ignore it, RFC 7489 receivers still apply it.
	DefectRemoved DefectKind = "removed"
	// DefectSyntax: a part of the record that is not tag=value, or a tag
	// given twice; ignored.
	DefectSyntax DefectKind = "syntax"
	// DefectAdvice: valid, but worth knowing (older receivers, missing p).
	DefectAdvice DefectKind = "advice"
)

// Defect is one problem found in a record, explained.
type Defect struct {
	Kind    DefectKind `json:"kind"`
	Tag     string     `json:"tag,omitempty"`
	Value   string     `json:"value,omitempty"`
	Problem string     `json:"problem"`
}

// URI is one reporting destination of rua or ruf (RFC 9989 §4.7).
type URI struct {
	Raw    string `json:"uri"`
	Scheme string `json:"scheme,omitempty"`
	// Address and Domain are the mailbox and its domain of a mailto: URI.
	Address string `json:"address,omitempty"`
	Domain  string `json:"domain,omitempty"`
	// Size is RFC 7489's "!size" suffix, which RFC 9989 dropped (reporters
	// ignore it).
	Size    string `json:"size,omitempty"`
	Valid   bool   `json:"valid"`
	Problem string `json:"problem,omitempty"`
}

// Tag is one tag=value pair as published.
type Tag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is a parsed DMARC Policy Record. Tags that are absent or invalid
// hold their defaults, and Has says which tags were validly present.
type Record struct {
	Raw  string `json:"raw"`
	Tags []Tag  `json:"tags"` // as published, in order
	// P is the policy; empty when p is absent or invalid (see PolicyFor).
	P     Policy    `json:"p,omitempty"`
	SP    Policy    `json:"sp,omitempty"`
	NP    Policy    `json:"np,omitempty"`
	ADKIM Alignment `json:"adkim"`
	ASPF  Alignment `json:"aspf"`
	FO    []string  `json:"fo,omitempty"`
	RUA   []URI     `json:"rua,omitempty"`
	RUF   []URI     `json:"ruf,omitempty"`
	// T is t=y: the Domain Owner is testing its policy (RFC 9989 §4.7).
	T   bool `json:"t"`
	PSD PSD  `json:"psd"`
	// Pct, RF and RI are RFC 7489's tags that RFC 9989 removed; Pct is
	// 100 when absent or invalid.
	Pct int    `json:"pct"`
	RF  string `json:"rf,omitempty"`
	RI  int    `json:"ri,omitempty"`
	// Has lists the tags present with a valid value.
	Has     map[string]bool `json:"-"`
	Defects []Defect        `json:"defects,omitempty"`
	// InvalidPolicy is set when p is present but invalid, or sp or np is
	// invalid: RFC 9989 §4.10.1 then falls back to p=none if rua holds a
	// valid URI, and otherwise applies no DMARC processing.
	InvalidPolicy bool `json:"invalid_policy,omitempty"`
}

// ValidRUA reports whether rua holds at least one valid URI.
func (r *Record) ValidRUA() bool {
	for _, u := range r.RUA {
		if u.Valid {
			return true
		}
	}
	return false
}

// Parse reads a DMARC record (RFC 9989 §4.7, §4.8). It fails only when the
// text is not a DMARC record at all (ErrNotDMARC); every other problem is
// listed in Defects and the tag concerned is ignored, as RFC 9989 §4.7
// requires ("Syntax errors in the remainder of the record MUST be discarded
// in favor of default values (if any) or ignored outright").
func Parse(txt string) (*Record, error) {
	r := &Record{Raw: txt, ADKIM: Relaxed, ASPF: Relaxed, PSD: PSDUnknown, Pct: 100, Has: map[string]bool{}}
	parts := strings.Split(txt, ";")
	// RFC 9989 §4.7: v "MUST be the first tag"; its value "MUST match
	// precisely" (case-sensitive, §4.8 %s"DMARC1").
	name, value, ok := strings.Cut(parts[0], "=")
	name, value = trimWSP(name), trimWSP(value)
	if !ok || name != "v" {
		return nil, fmt.Errorf("%w: the first tag is %q", ErrNotDMARC, trimWSP(parts[0]))
	}
	if value != "DMARC1" {
		if strings.EqualFold(value, "DMARC1") {
			return nil, fmt.Errorf("%w: v=%s must be spelled exactly v=DMARC1 (the value is case-sensitive, RFC 9989 §4.8)", ErrNotDMARC, value)
		}
		return nil, fmt.Errorf("%w: v=%s is not DMARC1", ErrNotDMARC, value)
	}
	r.Tags = append(r.Tags, Tag{Name: "v", Value: value})
	seen := map[string]bool{"v": true}
	for i, part := range parts[1:] {
		part = trimWSP(part)
		if part == "" {
			if i != len(parts)-2 {
				r.defect(DefectSyntax, "", "", "an empty part between two semicolons (ignored)")
			}
			continue
		}
		name, value, ok := strings.Cut(part, "=")
		name, value = trimWSP(name), trimWSP(value)
		if !ok {
			r.defect(DefectSyntax, "", part, fmt.Sprintf("%q is not tag=value; ignored", part))
			continue
		}
		r.Tags = append(r.Tags, Tag{Name: name, Value: value})
		if seen[name] {
			r.defect(DefectSyntax, name, value, fmt.Sprintf("%s is given more than once; only the first is used", name))
			continue
		}
		seen[name] = true
		r.tag(name, value)
	}
	r.advise()
	return r, nil
}

func trimWSP(s string) string { return strings.Trim(s, " \t\r\n") }

func (r *Record) defect(k DefectKind, tag, value, problem string) {
	r.Defects = append(r.Defects, Defect{Kind: k, Tag: tag, Value: value, Problem: problem})
}

func (r *Record) invalid(tag, value, want string) {
	r.defect(DefectInvalid, tag, value, fmt.Sprintf("%s=%s is not valid (want %s); the tag is ignored", tag, value, want))
}

// removed is the note RFC 9989 makes necessary for pct, rf and ri.
const removed = "removed in RFC 9989 (RFC 9989 receivers ignore it; RFC 7489 receivers still apply it)"

func (r *Record) tag(name, value string) {
	low := strings.ToLower(value)
	switch name {
	case "p", "sp", "np":
		// RFC 9989 §4.8: dmarc-request = "none" / "quarantine" / "reject"
		// (ABNF literals are case-insensitive).
		switch Policy(low) {
		case PolicyNone, PolicyQuarantine, PolicyReject:
			r.Has[name] = true
			switch name {
			case "p":
				r.P = Policy(low)
			case "sp":
				r.SP = Policy(low)
			default:
				r.NP = Policy(low)
			}
		default:
			r.invalid(name, value, "none, quarantine or reject")
			r.InvalidPolicy = true
		}
	case "adkim", "aspf":
		if low != "r" && low != "s" {
			r.invalid(name, value, "r (relaxed) or s (strict)")
			return
		}
		r.Has[name] = true
		if name == "adkim" {
			r.ADKIM = Alignment(low)
		} else {
			r.ASPF = Alignment(low)
		}
	case "t":
		if low != "y" && low != "n" {
			r.invalid(name, value, "y or n")
			return
		}
		r.Has[name] = true
		r.T = low == "y"
	case "psd":
		if low != "y" && low != "n" && low != "u" {
			r.invalid(name, value, "y, n or u")
			return
		}
		r.Has[name] = true
		r.PSD = PSD(low)
	case "fo":
		// RFC 9989 §4.8 lists 0, 1, d, s, d:s, s:d; RFC 7489 allowed any
		// colon-separated list of them, which we accept too.
		opts := strings.Split(low, ":")
		for _, o := range opts {
			if o = trimWSP(o); o != "0" && o != "1" && o != "d" && o != "s" {
				r.invalid(name, value, "a colon-separated list of 0, 1, d, s")
				return
			}
		}
		for i := range opts {
			opts[i] = trimWSP(opts[i])
		}
		r.Has[name] = true
		r.FO = opts
	case "rua", "ruf":
		uris := parseURIs(value)
		if name == "rua" {
			r.RUA = uris
		} else {
			r.RUF = uris
		}
		valid := 0
		for _, u := range uris {
			if u.Valid {
				valid++
			} else {
				r.defect(DefectInvalid, name, u.Raw, fmt.Sprintf("%s destination %q is not usable: %s", name, u.Raw, u.Problem))
			}
			if u.Size != "" {
				r.defect(DefectAdvice, name, u.Raw, fmt.Sprintf("the size limit !%s is %s", u.Size, "removed in RFC 9989 (reporters ignore it)"))
			}
		}
		if valid > 0 {
			r.Has[name] = true
		}
	case "pct":
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 || n > 100 {
			r.invalid(name, value, "an integer from 0 to 100")
			r.defect(DefectRemoved, name, value, "pct is "+removed)
			return
		}
		r.Has[name] = true
		r.Pct = n
		r.defect(DefectRemoved, name, value, "pct is "+removed)
	case "rf":
		r.Has[name] = true
		r.RF = value
		r.defect(DefectRemoved, name, value, "rf is "+removed)
	case "ri":
		n, err := strconv.ParseUint(value, 10, 31)
		if err != nil {
			r.invalid(name, value, "a number of seconds")
		} else {
			r.Has[name] = true
			r.RI = int(n)
		}
		r.defect(DefectRemoved, name, value, "ri is "+removed)
	default:
		msg := fmt.Sprintf("%s is not a DMARC tag; ignored (RFC 9989 §4.7: unknown tags MUST be ignored)", name)
		// Tag names are case-sensitive, as in DKIM's tag-list (RFC 6376
		// §3.2), which DMARC records follow.
		if known(strings.ToLower(name)) {
			msg = fmt.Sprintf("%s is not a DMARC tag: tag names are case-sensitive, write %s; ignored", name, strings.ToLower(name))
		}
		r.defect(DefectUnknown, name, value, msg)
	}
}

func known(name string) bool {
	switch name {
	case "v", "p", "sp", "np", "adkim", "aspf", "fo", "rua", "ruf", "t", "psd", "pct", "rf", "ri":
		return true
	}
	return false
}

// advise adds the notes that concern the record as a whole.
func (r *Record) advise() {
	_, pPresent := r.tagValue("p")
	if !pPresent {
		// RFC 9989 §4.7 (p): "If this tag is not present in an otherwise
		// syntactically valid DMARC Policy Record, then the record is
		// treated as if it included p=none". RFC 7489 §6.3 made p
		// REQUIRED and §6.6.3 step 6 applies p=none only when rua is valid.
		msg := "no p tag: RFC 9989 treats the record as p=none"
		if !r.ValidRUA() {
			msg += "; RFC 7489 receivers take no action at all (no p and no valid rua)"
		} else {
			msg += " (RFC 7489 receivers too, because rua is valid)"
		}
		r.defect(DefectAdvice, "p", "", msg)
	} else if len(r.Tags) > 1 && r.Tags[1].Name != "p" {
		// RFC 7489 §6.4's grammar puts p right after v.
		r.defect(DefectAdvice, "p", "", "p is not the second tag: RFC 9989 allows any order, but RFC 7489's grammar (§6.4) puts p right after v and some older receivers insist")
	}
}

func (r *Record) tagValue(name string) (string, bool) {
	for _, t := range r.Tags {
		if t.Name == name {
			return t.Value, true
		}
	}
	return "", false
}

// parseURIs reads a dmarc-urilist (RFC 9989 §4.8), with RFC 7489's
// optional "!size" suffix.
func parseURIs(value string) []URI {
	var out []URI
	for _, raw := range strings.Split(value, ",") {
		raw = trimWSP(raw)
		u := URI{Raw: raw}
		out = append(out, u)
		p := &out[len(out)-1]
		if raw == "" {
			p.Problem = "empty URI"
			continue
		}
		body := raw
		if i := strings.LastIndexByte(body, '!'); i >= 0 {
			size := body[i+1:]
			if !validSize(size) {
				p.Problem = fmt.Sprintf("%q after \"!\" is not a size (digits with k, m, g or t); a literal \"!\" must be written %%21", size)
				continue
			}
			p.Size, body = size, body[:i]
		}
		scheme, rest, ok := strings.Cut(body, ":")
		if !ok || scheme == "" || !isScheme(scheme) {
			p.Problem = "not a URI (no scheme such as mailto:)"
			continue
		}
		p.Scheme = strings.ToLower(scheme)
		if p.Scheme != "mailto" {
			// RFC 9989 §4.7: receivers MUST support mailto: and MUST
			// ignore schemes they do not support; hardly any support
			// another.
			if rest == "" {
				p.Problem = "empty URI after the scheme"
				continue
			}
			p.Valid = true
			p.Problem = "only mailto: is widely supported; receivers ignore schemes they do not support"
			continue
		}
		addr, _, _ := strings.Cut(rest, "?")
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 || at == len(addr)-1 {
			p.Problem = fmt.Sprintf("%q is not an address local@domain", addr)
			continue
		}
		domain := strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
		if _, ok := dns.IsDomainName(domain); !ok || domain == "" {
			p.Problem = fmt.Sprintf("%q is not a domain name", domain)
			continue
		}
		p.Address, p.Domain, p.Valid = addr, domain, true
	}
	return out
}

func validSize(s string) bool {
	if s == "" {
		return false
	}
	if c := s[len(s)-1]; c == 'k' || c == 'm' || c == 'g' || c == 't' || c == 'K' || c == 'M' || c == 'G' || c == 'T' {
		s = s[:len(s)-1]
	}
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isScheme checks RFC 3986 §3.1: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func isScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
