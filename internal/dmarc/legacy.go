package dmarc

import (
	"fmt"
	"strings"
)

// legacy decides what a receiver following RFC 7489 would do (§6.6.3
// policy discovery with a PSL Organizational Domain, p/sp, pct) and lists
// the differences with RFC 9989.
func (c *dnsCache) legacy(res *Result, in Input) {
	author := res.AuthorDomain
	l := &res.RFC7489
	l.Pct = 100
	l.Disposition = PolicyNone
	l.OrgDomain = OrgDomainPSL(author)

	// RFC 7489 §6.6.3 steps 1-5: the author domain's record, else the
	// Organizational Domain's; several records, or none, end discovery.
	var rec *Found
	a := c.dmarcAt(author, "policy discovery of "+author)
	switch {
	case a.err != nil:
		l.Status = Temperror
		l.Note = "a DNS error stopped policy discovery"
	case a.answer == AnswerMultiple:
		l.Status = None
		l.Note = fmt.Sprintf("_dmarc.%s holds several DMARC records: RFC 7489 stops there and applies no DMARC processing", author)
	case a.record != nil:
		rec = a.record
	case l.OrgDomain != author:
		b := c.dmarcAt(l.OrgDomain, "RFC 7489 policy discovery at the public-suffix-list organizational domain "+l.OrgDomain)
		switch {
		case b.err != nil:
			l.Status = Temperror
			l.Note = "a DNS error stopped policy discovery"
		case b.answer == AnswerMultiple:
			l.Status = None
			l.Note = fmt.Sprintf("_dmarc.%s holds several DMARC records: no DMARC processing", l.OrgDomain)
		case b.record != nil:
			rec = b.record
		}
	}
	if rec == nil && l.Status == "" {
		l.Status = None
		l.Note = "no DMARC record at the author domain or its public-suffix-list organizational domain"
	}

	// Alignment with the PSL Organizational Domain and the modes of the
	// record RFC 7489 found.
	spfMode, dkimMode := Relaxed, Relaxed
	if rec != nil {
		spfMode, dkimMode = rec.Parsed.ASPF, rec.Parsed.ADKIM
	}
	align7489 := func(id *Identifier, mode Alignment) {
		id.OrgDomainRFC7489 = OrgDomainPSL(id.Domain)
		id.AlignedRFC7489 = id.Domain != "" && id.Result == "pass" &&
			(id.Domain == author || mode == Relaxed && id.OrgDomainRFC7489 == l.OrgDomain)
	}
	align7489(&res.SPF, spfMode)
	l.SPFAligned = res.SPF.AlignedRFC7489
	for i := range res.DKIM {
		align7489(&res.DKIM[i], dkimMode)
		l.DKIMAligned = l.DKIMAligned || res.DKIM[i].AlignedRFC7489
	}

	if rec != nil {
		l.PolicyDomain = rec.Domain
		p := rec.Parsed
		_, hasP := p.tagValue("p")
		spInvalid := false
		for _, d := range p.Defects {
			if d.Kind == DefectInvalid && d.Tag == "sp" {
				spInvalid = true
			}
		}
		// RFC 7489 §6.6.3 step 6: no valid p, or an invalid sp: p=none if
		// rua is valid, else no action. np is unknown to RFC 7489.
		invalid := !p.Has["p"] || spInvalid
		switch {
		case invalid && !p.ValidRUA():
			l.Status = Permerror
			if !hasP {
				l.Note = "the record has no p tag (REQUIRED in RFC 7489 §6.3) and no valid rua: no DMARC processing"
			} else {
				l.Note = "the record has an invalid p or sp and no valid rua: no DMARC processing"
			}
		default:
			l.PolicyTag, l.Policy = "p", p.P
			if rec.Domain != author && p.Has["sp"] {
				l.PolicyTag, l.Policy = "sp", p.SP
			}
			if invalid {
				l.PolicyTag, l.Policy = "p", PolicyNone
				l.Note = "no valid p (or an invalid sp) but a valid rua: treated as p=none"
			}
			if p.Has["pct"] {
				l.Pct = p.Pct
			}
			switch {
			case l.SPFAligned || l.DKIMAligned:
				l.Status = Pass
			case res.Status == Temperror:
				l.Status = Temperror
			default:
				l.Status = Fail
				l.Disposition = l.Policy
				if l.Pct < 100 && l.Policy != PolicyNone {
					l.Note = fmt.Sprintf("pct=%d: %s for %d%% of failing messages, %s for the rest (RFC 7489 §6.6.4)", l.Pct, l.Policy, l.Pct, l.Policy.lower())
				}
			}
		}
	}
	res.Differences = differences(res, in)
}

// differences explains each point where RFC 7489 and RFC 9989 part.
func differences(res *Result, _ Input) []string {
	l := res.RFC7489
	out := []string{}
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	if res.Walk != nil && res.Walk.Err == nil && res.OrgDomain != l.OrgDomain {
		add("organizational domain of %s: RFC 9989's DNS tree walk gives %s (%s); RFC 7489's public suffix list gives %s",
			res.AuthorDomain, res.OrgDomain, res.OrgReason, l.OrgDomain)
	}
	if res.PolicyDomain != l.PolicyDomain && res.Status != Temperror && l.Status != Temperror {
		add("policy record: RFC 9989 uses %s; RFC 7489 uses %s", where(res.PolicyDomain), where(l.PolicyDomain))
	}
	ids := append([]Identifier{res.SPF}, res.DKIM...)
	for _, id := range ids {
		if id.Domain == "" || id.Aligned == id.AlignedRFC7489 {
			continue
		}
		name := "SPF domain " + id.Domain
		if id.Mechanism == "dkim" {
			name = "DKIM d=" + id.Domain
		}
		if id.Aligned {
			add("%s: aligned under RFC 9989 (organizational domain %s); not under RFC 7489 (public suffix list gives %s, author %s)",
				name, id.OrgDomain, id.OrgDomainRFC7489, l.OrgDomain)
		} else {
			add("%s: aligned under RFC 7489 (public suffix list: both in %s); not under RFC 9989 (tree walk gives %s and %s)",
				name, l.OrgDomain, id.OrgDomain, res.OrgDomain)
		}
	}
	if res.Parsed != nil {
		p := res.Parsed
		if res.PolicyTag == "np" {
			add("np=%s applies because %s does not exist; RFC 7489 does not know np and applies %s=%s", p.NP, res.AuthorDomain, l.PolicyTag, l.Policy)
		}
		if p.T && res.Requested != PolicyNone {
			add("t=y (testing): RFC 9989 receivers apply %s instead of %s; RFC 7489 receivers do not know t and apply %s", res.Policy, res.Requested, orPolicy(l.Policy))
		}
		if !p.Has["p"] && !p.InvalidPolicy && !p.ValidRUA() {
			add("the record has no p tag: RFC 9989 treats it as p=none and evaluates DMARC; RFC 7489 (p REQUIRED, no valid rua) applies no DMARC processing")
		}
	}
	if l.PolicyDomain != "" {
		var p7489 *Record
		if l.PolicyDomain == res.PolicyDomain {
			p7489 = res.Parsed
		}
		if p7489 != nil && p7489.Has["pct"] && p7489.Pct < 100 && l.Policy != PolicyNone && l.Policy != "" {
			msg := fmt.Sprintf("pct=%d: RFC 7489 receivers apply %s to %d%% of failing messages and %s to the rest; RFC 9989 removed pct and ignores it",
				p7489.Pct, l.Policy, p7489.Pct, l.Policy.lower())
			if p7489.Pct == 0 {
				msg += " (pct=0 was the usual way to say \"testing\"; RFC 9989's t=y replaces it)"
			}
			add("%s", msg)
		}
	}
	if res.Status != l.Status {
		add("result: RFC 9989 %s, RFC 7489 %s", res.Status, l.Status)
	}
	if res.Disposition != l.Disposition {
		add("disposition of this message: RFC 9989 receivers %s, RFC 7489 receivers %s", dispositionWords(res.Disposition), dispositionWords(l.Disposition))
	}
	return out
}

func where(d string) string {
	if d == "" {
		return "no record"
	}
	return "_dmarc." + d
}

func orPolicy(p Policy) string {
	if p == "" {
		return "no policy"
	}
	return string(p)
}

// dispositionWords says what a receiver does for a disposition.
func dispositionWords(p Policy) string {
	switch p {
	case PolicyReject:
		return "reject it"
	case PolicyQuarantine:
		return "quarantine it (spam folder)"
	}
	return "deliver it (no policy action)"
}

// Verdict says in one line what the result means for the message.
func (r Result) Verdict() string {
	switch r.Status {
	case Pass:
		by := []string{}
		if r.SPFAligned {
			by = append(by, "SPF ("+r.SPF.Domain+")")
		}
		if r.DKIMAligned {
			by = append(by, "DKIM ("+r.DKIMAlignedBy+")")
		}
		return "DMARC pass through aligned " + strings.Join(by, " and ")
	case Fail:
		return fmt.Sprintf("DMARC fail: receivers following %s=%s would %s", r.PolicyTag, r.Requested, dispositionWords(r.Disposition))
	case None:
		return "no DMARC policy applies to " + r.AuthorDomain
	case Temperror:
		return "DMARC could not be evaluated (temporary DNS error)"
	}
	return "DMARC permanent error: " + r.Problem
}
