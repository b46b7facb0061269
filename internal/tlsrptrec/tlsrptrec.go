// Package tlsrptrec looks up and parses a domain's SMTP TLS Reporting
// policy record: the `_smtp._tls` TXT record of RFC 8460 §3
// ("v=TLSRPTv1; rua=mailto:…,https://…"), which tells senders where to send
// their TLS reports. Parsing the reports themselves is internal/report/tlsrpt.
//
// Not supported: checking that a mailto: address accepts mail or that an
// https: endpoint answers (the delivery and domain audits do that).
package tlsrptrec

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Status is the outcome of a lookup, spelled as in RFC 8601.
type Status string

const (
	Pass      Status = "pass"      // exactly one valid record
	None      Status = "none"      // no TLS-RPT record: senders send no reports
	Permerror Status = "permerror" // records published but unusable (several, or invalid)
	Temperror Status = "temperror" // the lookup failed; a retry may succeed
)

// ErrSyntax is wrapped by every parse error.
var ErrSyntax = errors.New("tlsrptrec: invalid TLS-RPT record")

// URI is one reporting address of rua=.
type URI struct {
	Raw    string `json:"raw"`
	Scheme string `json:"scheme"`           // "mailto" or "https"
	Target string `json:"target,omitempty"` // the address, or the URL
}

// Field is an extension field, kept as published.
type Field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Record is a parsed `_smtp._tls` record.
type Record struct {
	Raw        string   `json:"raw"`
	RUA        []URI    `json:"rua"`
	Extensions []Field  `json:"extensions,omitempty"`
	Warnings   []string `json:"warnings,omitempty"`
}

// isTLSRPT reports whether a TXT record claims to be a TLS-RPT record
// (RFC 8460 §3: others are discarded).
func isTLSRPT(txt string) bool {
	rest, ok := strings.CutPrefix(txt, "v=TLSRPTv1")
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// Parse parses one record per the ABNF of RFC 8460 §3:
//
//	tlsrpt-record = tlsrpt-version 1*(field-delim tlsrpt-field) [field-delim]
//	field-delim   = *WSP ";" *WSP
//	tlsrpt-rua    = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
//
// rua= is required; of the URIs, mailto: and https: are the two schemes
// RFC 8460 defines, others are kept with a warning.
func Parse(txt string) (*Record, error) {
	bad := func(format string, args ...any) (*Record, error) {
		return nil, fmt.Errorf("%w %q: %s", ErrSyntax, txt, fmt.Sprintf(format, args...))
	}
	rest, ok := strings.CutPrefix(txt, "v=TLSRPTv1")
	if !ok {
		return bad(`it must begin with "v=TLSRPTv1"`)
	}
	r := &Record{Raw: txt}
	seenRUA := false
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ';' {
			return bad("expected \";\" before %q", rest)
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		if rest == "" {
			break
		}
		field := rest
		if i := strings.IndexByte(rest, ';'); i >= 0 {
			field, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		field = strings.TrimRight(field, " \t")
		name, value, ok := strings.Cut(field, "=")
		if !ok {
			return bad("field %q has no \"=\"", field)
		}
		switch {
		case name == "rua":
			if seenRUA {
				r.Warnings = append(r.Warnings, "rua= given twice; the first counts")
				continue
			}
			seenRUA = true
			for _, u := range strings.Split(value, ",") {
				u = strings.Trim(u, " \t")
				uri, warn, err := parseURI(u)
				if err != "" {
					return bad("rua URI %q: %s", u, err)
				}
				if warn != "" {
					r.Warnings = append(r.Warnings, warn)
				}
				r.RUA = append(r.RUA, uri)
			}
		case name == "v":
			return bad("v= may appear only once, at the start")
		case !validExtName(name):
			return bad("field name %q is not a valid extension name", name)
		default:
			if value == "" || strings.ContainsAny(value, "= \t") {
				return bad("extension %s has an invalid value %q", name, value)
			}
			for i := 0; i < len(value); i++ {
				if value[i] < 0x21 || value[i] > 0x7e {
					return bad("extension %s has an invalid character in %q", name, value)
				}
			}
			r.Extensions = append(r.Extensions, Field{Name: name, Value: value})
		}
	}
	if !seenRUA {
		return bad("the rua= field is required")
	}
	return r, nil
}

func parseURI(s string) (URI, string, string) {
	if s == "" {
		return URI{}, "", "empty URI"
	}
	if strings.ContainsAny(s, " \t") {
		return URI{}, "", "blanks are not allowed in a URI"
	}
	u, err := url.Parse(s)
	if err != nil {
		return URI{}, "", err.Error()
	}
	out := URI{Raw: s, Scheme: strings.ToLower(u.Scheme)}
	switch out.Scheme {
	case "mailto":
		addr := u.Opaque
		if i := strings.IndexByte(addr, '?'); i >= 0 {
			addr = addr[:i]
		}
		if a, err := url.PathUnescape(addr); err == nil {
			addr = a
		}
		if _, err := mail.ParseAddress(addr); err != nil || !strings.Contains(addr, "@") {
			return URI{}, "", fmt.Sprintf("%q is not a mail address", addr)
		}
		out.Target = addr
	case "https":
		if u.Host == "" {
			return URI{}, "", "an https URI needs a host"
		}
		out.Target = u.String()
	case "":
		return URI{}, "", "no scheme (want mailto: or https:)"
	default:
		return out, fmt.Sprintf("rua URI %q has scheme %s; RFC 8460 §3 defines only mailto: and https:, senders ignore it", s, out.Scheme), ""
	}
	return out, "", ""
}

func validExtName(s string) bool {
	if len(s) == 0 || len(s) > 32 || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !alnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// Finding is one defect or remark.
type Finding struct {
	Status diag.Status `json:"status"`
	Text   string      `json:"text"`
	RFC    string      `json:"rfc,omitempty"`
}

// Result is the outcome of a lookup with its evidence.
type Result struct {
	Status   Status        `json:"status"`
	Domain   string        `json:"domain"`
	Name     string        `json:"name"`
	Rcode    string        `json:"rcode,omitempty"`
	AD       bool          `json:"ad"`
	TXT      []string      `json:"txt,omitempty"`
	Record   *Record       `json:"record,omitempty"`
	Findings []Finding     `json:"findings,omitempty"`
	Error    string        `json:"error,omitempty"`
	Err      error         `json:"-"`
	Elapsed  time.Duration `json:"-"`
}

// Lookup looks up and parses `_smtp._tls.<domain>`.
func Lookup(ctx context.Context, env diag.Env, domain string) Result {
	start := env.Clock()
	res := lookup(ctx, env, domain)
	res.Elapsed = env.Clock().Sub(start)
	if res.Err != nil {
		res.Error = res.Err.Error()
	}
	env.Log().Debug("tls-rpt record", "domain", res.Domain, "status", res.Status, "elapsed", res.Elapsed, "err", res.Err)
	return res
}

func lookup(ctx context.Context, env diag.Env, domain string) Result {
	const rfc = "RFC 8460 §3"
	res := Result{Domain: strings.TrimSuffix(strings.ToLower(domain), ".")}
	name, err := dnsx.Fqdn("_smtp._tls." + res.Domain)
	if err != nil {
		res.Status, res.Err = Permerror, err
		return res
	}
	res.Name = name
	shown := strings.TrimSuffix(name, ".")
	resp, err := env.Resolver.Query(ctx, name, dns.TypeTXT)
	if err != nil {
		var de *dnsx.Error
		if errors.As(err, &de) && de.Response != nil {
			res.Rcode, res.AD = dns.RcodeToString[de.Response.Rcode], de.Response.AD
		}
		res.Err = err
		if errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData) {
			res.Status = None
			res.Findings = append(res.Findings, Finding{diag.Info, fmt.Sprintf("no TLS-RPT record at %s: senders send no TLS reports", shown), rfc})
		} else {
			res.Status = Temperror
			res.Findings = append(res.Findings, Finding{diag.Warn, fmt.Sprintf("the lookup of %s failed: %v", shown, err), rfc})
		}
		return res
	}
	res.Rcode, res.AD, res.TXT = dns.RcodeToString[resp.Rcode], resp.AD, resp.TXT()
	var cands []string
	for _, t := range res.TXT {
		if isTLSRPT(t) {
			cands = append(cands, t)
		}
	}
	switch len(cands) {
	case 0:
		res.Status = None
		res.Findings = append(res.Findings, Finding{diag.Warn, fmt.Sprintf("%s has TXT records but none begins with v=TLSRPTv1", shown), rfc})
		return res
	case 1:
	default:
		// RFC 8460 §3: with more than one record, senders assume the
		// domain does not implement TLS-RPT.
		res.Status, res.Err = Permerror, fmt.Errorf("%w: %d records begin with v=TLSRPTv1", ErrSyntax, len(cands))
		res.Findings = append(res.Findings, Finding{diag.Fail, fmt.Sprintf("%d records at %s begin with v=TLSRPTv1; senders then assume there is no TLS-RPT policy", len(cands), shown), rfc})
		return res
	}
	rec, err := Parse(cands[0])
	if err != nil {
		res.Status, res.Err = Permerror, err
		res.Findings = append(res.Findings, Finding{diag.Fail, err.Error(), rfc})
		return res
	}
	res.Status, res.Record = Pass, rec
	for _, w := range rec.Warnings {
		res.Findings = append(res.Findings, Finding{diag.Warn, w, rfc})
	}
	return res
}
