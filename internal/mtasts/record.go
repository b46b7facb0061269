package mtasts

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Record is a parsed `_mta-sts` TXT record (RFC 8461 §3.1).
type Record struct {
	Raw        string  `json:"raw"`
	ID         string  `json:"id"`
	Extensions []Field `json:"extensions,omitempty"`
	// Warnings are defects a sender tolerates (a repeated field).
	Warnings []string `json:"warnings,omitempty"`
}

// RecordError is a syntax error in a TXT record; it wraps ErrRecordSyntax.
type RecordError struct {
	Record string
	Reason string
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("%v %q: %s", ErrRecordSyntax, e.Record, e.Reason)
}

func (e *RecordError) Unwrap() error { return ErrRecordSyntax }

// isSTS reports whether a TXT record claims to be an MTA-STS record: it
// begins with "v=STSv1" followed by the field delimiter or its end.
// RFC 8461 §3.1: "records that do not begin with "v=STSv1;" are
// discarded"; the ABNF also allows blanks before the ";".
func isSTS(txt string) bool {
	rest, ok := strings.CutPrefix(txt, "v=STSv1")
	return ok && (rest == "" || rest[0] == ';' || rest[0] == ' ' || rest[0] == '\t')
}

// ParseRecord parses one `_mta-sts` TXT record, strictly per the ABNF of
// RFC 8461 §3.1:
//
//	sts-text-record = sts-version 1*(sts-field-delim sts-field) [sts-field-delim]
//	sts-field-delim = *WSP ";" *WSP
//	sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//	sts-extension   = sts-ext-name "=" sts-ext-value
func ParseRecord(txt string) (*Record, error) {
	bad := func(format string, args ...any) (*Record, error) {
		return nil, &RecordError{Record: txt, Reason: fmt.Sprintf(format, args...)}
	}
	rest, ok := strings.CutPrefix(txt, "v=STSv1")
	if !ok {
		return bad(`it must begin with "v=STSv1" (case matters)`)
	}
	r := &Record{Raw: txt}
	seenID := false
	fields := 0
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		if rest[0] != ';' {
			return bad("expected \";\" before %q", clip(rest))
		}
		rest = strings.TrimLeft(rest[1:], " \t")
		if rest == "" {
			break // a trailing delimiter is allowed
		}
		end := strings.IndexAny(rest, "; \t")
		if end < 0 {
			end = len(rest)
		}
		tok := rest[:end]
		rest = rest[end:]
		name, value, ok := strings.Cut(tok, "=")
		if !ok {
			return bad("field %q has no \"=\"", tok)
		}
		fields++
		switch {
		case name == "id":
			if value == "" || len(value) > 32 || !allAlnum(value) {
				return bad("id %q must be 1 to 32 letters and digits", value)
			}
			if seenID {
				r.Warnings = append(r.Warnings, fmt.Sprintf("id given twice; the first (%s) counts", r.ID))
				continue
			}
			r.ID, seenID = value, true
		case name == "v":
			return bad("v= may appear only once, at the start")
		case !validExtName(name):
			return bad("field name %q is not a valid extension name", name)
		case value == "" || strings.ContainsAny(value, "="):
			return bad("extension %s has an invalid value %q", name, value)
		default:
			for i := 0; i < len(value); i++ {
				if value[i] < 0x21 || value[i] > 0x7e {
					return bad("extension %s has an invalid character in %q", name, value)
				}
			}
			r.Extensions = append(r.Extensions, Field{Name: name, Value: value})
		}
	}
	if fields == 0 || !seenID {
		return bad("the id field is required")
	}
	return r, nil
}

func allAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// RecordResult is the outcome of looking up a domain's `_mta-sts` record.
type RecordResult struct {
	Status Status `json:"status"`
	Domain string `json:"domain"`
	Name   string `json:"name"` // the name queried, fully qualified
	Rcode  string `json:"rcode,omitempty"`
	AD     bool   `json:"ad"`
	// TXT holds every TXT record at the name, as published (strings
	// concatenated, RFC 8461 §3.1).
	TXT      []string      `json:"txt,omitempty"`
	Record   *Record       `json:"record,omitempty"`
	Findings []Finding     `json:"findings,omitempty"`
	Error    string        `json:"error,omitempty"`
	Err      error         `json:"-"`
	Elapsed  time.Duration `json:"-"`
}

// LookupRecord looks up and parses the `_mta-sts.<domain>` TXT record.
func LookupRecord(ctx context.Context, env diag.Env, domain string) RecordResult {
	start := env.Clock()
	res := lookupRecord(ctx, env, domain)
	res.Elapsed = env.Clock().Sub(start)
	if res.Err != nil {
		res.Error = res.Err.Error()
	}
	env.Log().Debug("mta-sts record", "domain", domain, "status", res.Status, "elapsed", res.Elapsed, "err", res.Err)
	return res
}

func lookupRecord(ctx context.Context, env diag.Env, domain string) RecordResult {
	res := RecordResult{Domain: strings.TrimSuffix(strings.ToLower(domain), ".")}
	fq, err := dnsx.Fqdn("_mta-sts." + res.Domain)
	if err != nil {
		res.Status, res.Err = Permerror, err
		return res
	}
	res.Name = fq
	resp, err := env.Resolver.Query(ctx, fq, dns.TypeTXT)
	if err != nil {
		var de *dnsx.Error
		if errors.As(err, &de) && de.Response != nil {
			res.Rcode, res.AD = dns.RcodeToString[de.Response.Rcode], de.Response.AD
		}
		res.Err = err
		switch {
		case errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData):
			res.Status = None
			res.Findings = append(res.Findings, finding(diag.Info, "RFC 8461 §3.1",
				fmt.Sprintf("no TXT record at %s (%s): the domain publishes no MTA-STS policy", strings.TrimSuffix(fq, "."), res.Rcode)))
		default:
			res.Status = Temperror
			res.Findings = append(res.Findings, finding(diag.Warn, "RFC 8461 §3.1",
				fmt.Sprintf("the lookup of %s failed: %v", strings.TrimSuffix(fq, "."), err)))
		}
		return res
	}
	res.Rcode, res.AD = dns.RcodeToString[resp.Rcode], resp.AD
	res.TXT = resp.TXT()
	var cands []string
	for _, t := range res.TXT {
		if isSTS(t) {
			cands = append(cands, t)
		} else {
			res.Findings = append(res.Findings, finding(diag.Info, "RFC 8461 §3.1",
				fmt.Sprintf("ignored a TXT record that does not begin with v=STSv1: %q", t)))
		}
	}
	switch len(cands) {
	case 0:
		res.Status = None
		res.Findings = append(res.Findings, finding(diag.Warn, "RFC 8461 §3.1",
			fmt.Sprintf("%s has TXT records but none begins with v=STSv1: senders find no policy", strings.TrimSuffix(fq, "."))))
		return res
	case 1:
	default:
		// RFC 8461 §3.1: > If the number of resulting records is not one,
		// ... senders MUST assume the recipient domain does not have an
		// available MTA-STS Policy.
		res.Status, res.Err = Permerror, fmt.Errorf("%w: %d records begin with v=STSv1, senders need exactly one", ErrRecordSyntax, len(cands))
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.1",
			fmt.Sprintf("%d TXT records begin with v=STSv1 (%s); with more than one, senders assume there is no policy",
				len(cands), strings.Join(quoteAll(cands), ", "))))
		return res
	}
	rec, err := ParseRecord(cands[0])
	if err != nil {
		// RFC 8461 §3.1: a syntactically invalid record means no policy.
		res.Status, res.Err = Permerror, err
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.1",
			fmt.Sprintf("%v; senders treat an invalid record as no policy", err)))
		return res
	}
	res.Status, res.Record = Pass, rec
	for _, w := range rec.Warnings {
		res.Findings = append(res.Findings, finding(diag.Warn, "RFC 8461 §3.1", w))
	}
	return res
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}
