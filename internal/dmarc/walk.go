package dmarc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// Answers of a Query.
const (
	AnswerRecord    = "dmarc-record"     // exactly one v=DMARC1 record
	AnswerMultiple  = "multiple-records" // more than one: all discarded (RFC 9989 §4.10 step 2)
	AnswerNoDMARC   = "no-dmarc-record"  // TXT records, none of them DMARC
	AnswerNXDomain  = "nxdomain"
	AnswerNoData    = "nodata"
	AnswerTemperror = "temperror" // SERVFAIL, timeout, unreachable resolver
	AnswerExists    = "exists"    // A/AAAA/MX records (existence check)
)

// Query is one DNS question the evaluation asked and what came back.
type Query struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Purpose string   `json:"purpose"`
	Answer  string   `json:"answer"`
	TXT     []string `json:"txt,omitempty"` // every TXT string at the name, as published
	AD      bool     `json:"ad"`
	Error   string   `json:"error,omitempty"`
}

// Found is a name where the walk found exactly one valid DMARC record.
type Found struct {
	Domain string  `json:"domain"`
	Record string  `json:"record"`
	Parsed *Record `json:"-"`
}

// Walk is one DNS Tree Walk (RFC 9989 §4.10) and the Organizational Domain
// it selects (§4.10.2).
type Walk struct {
	Start string `json:"start"`
	// Names are the domains whose _dmarc name was queried, in order.
	Names []string `json:"names"`
	// Found lists the names holding exactly one DMARC record, longest
	// first.
	Found []Found `json:"found"`
	// Stopped says why the walk ended before the top-level domain.
	Stopped   string `json:"stopped,omitempty"`
	OrgDomain string `json:"organizational_domain"`
	OrgReason string `json:"organizational_domain_reason"`
	Error     string `json:"error,omitempty"`
	// Err is set when a temporary DNS error ended the walk: OrgDomain is
	// then only the start domain, not a finding. It wraps ErrDNS.
	Err error `json:"-"`
}

// at returns the record found at domain, if any.
func (w *Walk) at(domain string) *Found {
	for i := range w.Found {
		if w.Found[i].Domain == domain {
			return &w.Found[i]
		}
	}
	return nil
}

// walkNames returns the domains a DNS Tree Walk from start queries, in
// order (RFC 9989 §4.10 steps 3-7): start; then, for a name of 8 or more
// labels, its 7 rightmost labels, else its parent; then one label less
// each time, down to and including the top-level domain.
func walkNames(start string) []string {
	labels := strings.Split(start, ".")
	out := []string{start}
	// RFC 9989 §4.10 step 4: "If x >= 8, remove the left-most
	// (highest-numbered) labels from the subject domain until 7 labels
	// remain."
	next := 1
	if len(labels) >= 8 {
		next = len(labels) - 7
	}
	for i := next; i < len(labels); i++ {
		out = append(out, strings.Join(labels[i:], "."))
	}
	return out
}

// dnsCache asks each DNS question once per evaluation and keeps the
// evidence in order.
type dnsCache struct {
	ctx     context.Context
	env     diag.Env
	queries []Query
	txt     map[string]*txtAnswer
	walks   map[string]*Walk
}

type txtAnswer struct {
	answer string
	record *Found // when answer is AnswerRecord
	err    error  // temporary errors only
}

func newCache(ctx context.Context, env diag.Env) *dnsCache {
	return &dnsCache{ctx: ctx, env: env, txt: map[string]*txtAnswer{}, walks: map[string]*Walk{}}
}

// query asks name/qtype and records it.
func (c *dnsCache) query(name string, qtype uint16, purpose string) (*dnsx.Response, Query, error) {
	q := Query{Name: name, Type: dnsx.TypeString(qtype), Purpose: purpose}
	resp, err := c.env.Resolver.Query(c.ctx, dns.Fqdn(name), qtype)
	var de *dnsx.Error
	if errors.As(err, &de) && de.Response != nil {
		q.AD = de.Response.AD
	}
	switch {
	case err == nil:
		q.AD = resp.AD
		q.Answer = AnswerExists
		if qtype == dns.TypeTXT {
			q.TXT = resp.TXT()
		}
	case errors.Is(err, dnsx.ErrNXDomain):
		q.Answer = AnswerNXDomain
	case errors.Is(err, dnsx.ErrNoData):
		q.Answer = AnswerNoData
	default:
		q.Answer = AnswerTemperror
		q.Error = err.Error()
	}
	return resp, q, err
}

// dmarcAt looks up the DMARC record of domain (at _dmarc.domain), once.
func (c *dnsCache) dmarcAt(domain, purpose string) *txtAnswer {
	if a, ok := c.txt[domain]; ok {
		return a
	}
	a := &txtAnswer{}
	c.txt[domain] = a
	_, q, err := c.query("_dmarc."+domain, dns.TypeTXT, purpose)
	if err != nil {
		a.answer = q.Answer
		if q.Answer == AnswerTemperror {
			a.err = fmt.Errorf("%w: %w", ErrDNS, err)
		}
		c.queries = append(c.queries, q)
		return a
	}
	// RFC 9989 §4.10 step 2: "Records that do not start with a "v" tag
	// that identifies the current version of DMARC are discarded. If
	// multiple DMARC Policy Records are returned, they are all discarded."
	var recs []Found
	for _, t := range q.TXT {
		if p, err := Parse(t); err == nil {
			recs = append(recs, Found{Domain: domain, Record: t, Parsed: p})
		}
	}
	switch len(recs) {
	case 0:
		a.answer = AnswerNoDMARC
	case 1:
		a.answer = AnswerRecord
		a.record = &recs[0]
	default:
		a.answer = AnswerMultiple
	}
	q.Answer = a.answer
	c.queries = append(c.queries, q)
	return a
}

// walk performs the DNS Tree Walk from start, once per start domain.
func (c *dnsCache) walk(start, purpose string) *Walk {
	if w, ok := c.walks[start]; ok {
		return w
	}
	w := &Walk{Start: start, Found: []Found{}}
	c.walks[start] = w
	for _, d := range walkNames(start) {
		w.Names = append(w.Names, d)
		a := c.dmarcAt(d, purpose)
		if a.err != nil {
			w.Err = a.err
			w.Error = a.err.Error()
			w.OrgDomain = start
			w.OrgReason = fmt.Sprintf("unknown: the walk stopped at _dmarc.%s on a DNS error", d)
			return w
		}
		if a.record == nil {
			continue
		}
		w.Found = append(w.Found, *a.record)
		// RFC 9989 §4.10 step 6: "If a single record remains and it
		// contains a "psd=n" or "psd=y" tag, stop."
		if psd := a.record.Parsed.PSD; psd != PSDUnknown {
			w.Stopped = fmt.Sprintf("psd=%s at _dmarc.%s", psd, d)
			break
		}
	}
	w.OrgDomain, w.OrgReason = selectOrg(start, w.Found)
	return w
}

// selectOrg picks the Organizational Domain from the records a walk found,
// longest name first (RFC 9989 §4.10.2).
func selectOrg(start string, found []Found) (string, string) {
	for _, f := range found {
		switch f.Parsed.PSD {
		case PSDNo:
			// Rule 1: psd=n marks the Organizational Domain.
			return f.Domain, fmt.Sprintf("the record at _dmarc.%s says psd=n", f.Domain)
		case PSDYes:
			if f.Domain == start {
				// Rule 2 excludes the record where the walk started.
				return start, fmt.Sprintf("the record at _dmarc.%s says psd=y: a public suffix domain is its own organizational domain", start)
			}
			// Rule 2: one label below the public suffix domain.
			n := strings.Count(f.Domain, ".") + 2
			labels := strings.Split(start, ".")
			org := strings.Join(labels[len(labels)-n:], ".")
			return org, fmt.Sprintf("the record at _dmarc.%s says psd=y (a public suffix domain), so the organizational domain is one label below it", f.Domain)
		}
	}
	if len(found) == 0 {
		return start, "no DMARC record anywhere from the name up to the top-level domain: the name is its own organizational domain"
	}
	// Rule 3: the record at the name with the fewest labels.
	last := found[len(found)-1].Domain
	return last, fmt.Sprintf("_dmarc.%s is the record with the fewest labels the walk found", last)
}

// TreeWalk performs the DNS Tree Walk from domain (RFC 9989 §4.10) and
// returns it with every query asked, for `mxray auth` and for callers that
// only need an Organizational Domain.
func TreeWalk(ctx context.Context, env diag.Env, domain string) (*Walk, []Query) {
	c := newCache(ctx, env)
	w := c.walk(normalize(domain), "organizational domain of "+normalize(domain))
	return w, slices.Clone(c.queries)
}
