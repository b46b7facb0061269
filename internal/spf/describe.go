package spf

import (
	"errors"
	"fmt"
	"strings"
)

// describe fills Problem, Hint and RFC: what a person needs to read when
// the result is not pass. over is the term (with its include path) that
// broke a limit.
func (r *Result) describe(over string) {
	d := r.Domain
	ip := "the client"
	if r.IP.IsValid() {
		ip = r.IP.String()
	}
	switch r.Status {
	case Pass:
		return
	case Fail, Softfail:
		word := map[Status]string{Fail: "fails", Softfail: "softfails"}[r.Status]
		r.Problem = fmt.Sprintf("%s %s SPF for %s: %q in the record of %s matched", ip, word, d, r.Matched, r.MatchedIn)
		r.Hint = fmt.Sprintf("if %s sends mail for %s, authorize it in the SPF record of %s (an ip4:/ip6: term, or include: your provider's record) before the %q term", ip, d, d, r.Matched)
		r.RFC = "RFC 7208 §2.6.2"
	case Neutral:
		if r.Matched != "" {
			r.Problem = fmt.Sprintf("the SPF record of %s makes no assertion about %s (%q matched)", d, ip, r.Matched)
		} else {
			r.Problem = fmt.Sprintf("no term of the SPF record of %s matched %s, and it does not end in -all or ~all: the result is neutral", d, ip)
		}
		r.Hint = fmt.Sprintf("list every host that sends for %s, then end the record with -all (or ~all while testing)", d)
		r.RFC = "RFC 7208 §4.7"
	case None:
		switch {
		case errors.Is(r.Err, ErrInvalidDomain):
			r.Problem = fmt.Sprintf("%q is not a checkable domain name: %v", d, r.Err)
			r.Hint = "use a fully qualified domain name in MAIL FROM and HELO"
			r.RFC = "RFC 7208 §4.3"
		default:
			r.Problem = fmt.Sprintf("%s publishes no SPF record", d)
			r.Hint = fmt.Sprintf("publish one TXT record at %s such as \"v=spf1 mx -all\", listing every host that sends for the domain", d)
			r.RFC = "RFC 7208 §4.5"
		}
	case Temperror:
		r.Problem = fmt.Sprintf("a DNS lookup failed, so SPF could not be checked: %s", unwrapText(r.Err))
		r.Hint = "retry later; if it persists, check that the domain's name servers answer (SERVFAIL is often a DNSSEC problem)"
		r.RFC = "RFC 7208 §2.6.6"
	case Permerror:
		r.RFC = "RFC 7208 §2.6.7"
		switch {
		case errors.Is(r.Err, ErrTooManyLookups):
			r.Problem = fmt.Sprintf("too many DNS lookups: %s pushed the count to %d (the limit is %d)", over, r.Lookups, MaxLookups)
			r.Hint = "flatten or remove includes: replace include:/a/mx/ptr terms with ip4:/ip6: ranges, and drop includes of services no longer used"
			r.RFC = "RFC 7208 §4.6.4"
		case errors.Is(r.Err, ErrTooManyVoidLookups):
			r.Problem = fmt.Sprintf("too many void lookups: %s got NXDOMAIN or NODATA answer number %d (the limit is %d)", over, r.VoidLookups, MaxVoidLookups)
			r.Hint = "remove the terms that name domains which do not exist or have no such records"
			r.RFC = "RFC 7208 §4.6.4"
		case errors.Is(r.Err, ErrTooManyMX):
			r.Problem = fmt.Sprintf("too many MX records: %s: %v", over, unwrapText(r.Err))
			r.Hint = "use ip4:/ip6: or a: terms instead of mx for a domain with more than 10 MX hosts"
			r.RFC = "RFC 7208 §4.6.4"
		case errors.Is(r.Err, ErrMultipleRecords):
			r.Problem = unwrapText(r.Err)
			r.Hint = "merge them into a single TXT record starting with v=spf1 (a domain may publish only one)"
			r.RFC = "RFC 7208 §4.5"
		case errors.Is(r.Err, ErrSyntax):
			r.Problem = "the SPF record has a " + unwrapText(r.Err)
			r.Hint = "correct the term; the grammar is in RFC 7208 §12"
			r.RFC = "RFC 7208 §4.6"
		case errors.Is(r.Err, ErrIncludeNone):
			r.Problem = unwrapText(r.Err)
			r.Hint = "fix the name in the include:/redirect=, or remove it if the service is no longer used"
			r.RFC = "RFC 7208 §5.2"
		default:
			r.Problem = fmt.Sprintf("the SPF record cannot be evaluated: %s", unwrapText(r.Err))
			r.Hint = "correct the SPF record"
		}
	}
}

func unwrapText(err error) string {
	return strings.TrimPrefix(err.Error(), "spf: ")
}
