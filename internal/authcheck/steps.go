package authcheck

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/arc"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dkim"
	"github.com/mxray/mxray/internal/dmarc"
	"github.com/mxray/mxray/internal/iprev"
	"github.com/mxray/mxray/internal/spf"
)

// spfStep turns an SPF result into its step. The HELO check weighs less:
// receivers act on the MAIL FROM result and DMARC never uses HELO's
// unless MAIL FROM is empty.
func spfStep(r spf.Result, helo bool) diag.Step {
	st := diag.Step{Detail: spfDetail(r), Hint: r.Hint, RFC: r.RFC, Data: r}
	what := "MAIL FROM " + r.Sender
	if helo {
		what = "HELO " + r.Domain
	}
	st.Title = fmt.Sprintf("SPF %s for %s", r.Status, what)
	switch r.Status {
	case spf.Pass:
		st.Status = diag.OK
	case spf.Fail, spf.Permerror:
		st.Status = diag.Fail
		if helo {
			st.Status = diag.Warn
		}
	case spf.Temperror:
		st.Status = diag.Warn
		st.Title += " (could not check)"
	case spf.None, spf.Neutral, spf.Softfail:
		st.Status = diag.Warn
		if helo {
			st.Status = diag.Info
		}
	default:
		st.Status = diag.Warn
	}
	return st
}

func spfDetail(r spf.Result) string {
	var b strings.Builder
	if r.Problem != "" {
		b.WriteString(r.Problem + "\n")
	}
	if r.Explanation != "" {
		fmt.Fprintf(&b, "explanation: %s\n", r.Explanation)
	}
	fmt.Fprintf(&b, "DNS lookups: %d of %d, void lookups: %d of %d\n", r.Lookups, spf.MaxLookups, r.VoidLookups, spf.MaxVoidLookups)
	if r.Trace != nil {
		renderTrace(&b, r.Trace, 0)
	}
	return strings.TrimRight(b.String(), "\n")
}

// renderTrace writes the SPF trace tree, includes and redirects nested.
func renderTrace(b *strings.Builder, n *spf.Node, depth int) {
	ind := strings.Repeat("  ", depth)
	var line string
	if n.Kind == "record" {
		line = ind + n.Domain
		switch {
		case n.Record != "":
			line += ": " + strconv.Quote(n.Record)
		case n.Error == "":
			line += ": no SPF record"
		}
		if n.Result != "" {
			line += " → " + string(n.Result)
		}
	} else {
		line = ind + n.Term
		if n.Spec != "" && n.Expanded != "" && n.Spec != n.Expanded {
			line += fmt.Sprintf(" [%s → %s]", n.Spec, n.Expanded)
		}
		switch {
		case n.Skipped:
			line += "  (not evaluated)"
		case n.Kind == string(spf.KindInclude) || n.Kind == string(spf.KindRedirect):
			if n.Result != "" {
				line += " → " + string(n.Result)
			}
			if n.Matched {
				line += ", matched"
			}
		case n.Matched:
			line += " → matched"
		case n.Kind == string(spf.KindExp) || n.Kind == string(spf.KindUnknown):
		default:
			line += " → no match"
		}
	}
	var notes []string
	for _, q := range n.Queries {
		if n.Kind == "record" && q.Type == "TXT" {
			continue // the record itself is shown on the line
		}
		a := q.Status
		if len(q.Answers) > 0 {
			a = strings.Join(q.Answers, ", ")
		}
		notes = append(notes, fmt.Sprintf("%s %s: %s", q.Name, q.Type, a))
	}
	if n.Note != "" {
		notes = append(notes, n.Note)
	}
	if n.Error != "" {
		notes = append(notes, n.Error)
	}
	if n.Limit != "" {
		notes = append(notes, "over the "+n.Limit+" limit")
	}
	if len(notes) > 0 {
		line += "  (" + strings.Join(notes, "; ") + ")"
	}
	b.WriteString(line + "\n")
	for _, c := range n.Children {
		renderTrace(b, c, depth+1)
	}
}

func dkimStep(d DKIM) diag.Step {
	st := diag.Step{Data: d, RFC: "RFC 6376 §6"}
	if len(d.Signatures) == 0 {
		st.Status = diag.Warn
		st.Title = "DKIM none: the message is not signed"
		st.Hint = "sign outgoing mail with DKIM as the From: domain: it survives forwarding, where SPF does not"
		return st
	}
	pass, temp := 0, 0
	var lines, hints []string
	for i, s := range d.Signatures {
		line := fmt.Sprintf("signature %d: d=%s s=%s %s → %s", i+1, s.Domain, s.Selector, s.Algorithm, s.Status)
		if s.Reason != "" {
			line += " (" + string(s.Reason) + ")"
		}
		if s.Detail != "" {
			line += ": " + s.Detail
		}
		if s.Query != "" {
			line += "\n  key: " + s.Query
			if s.Key != nil {
				line += " found"
			}
		}
		for _, w := range s.Warnings {
			line += "\n  warning: " + string(w)
		}
		lines = append(lines, line)
		switch s.Status {
		case dkim.Pass:
			pass++
		case dkim.Temperror:
			temp++
		}
		if h := dkimHint(s.Result); h != "" {
			hints = append(hints, h)
		}
	}
	st.Detail = strings.Join(lines, "\n")
	st.Hint = strings.Join(dedupe(hints), "; ")
	n := len(d.Signatures)
	switch {
	case pass == n:
		st.Status = diag.OK
		st.Title = fmt.Sprintf("DKIM pass: %s", plural(n, "signature verifies", "signatures verify"))
	case pass > 0:
		st.Status = diag.Warn
		st.Title = fmt.Sprintf("DKIM pass: %d of %d signatures verify", pass, n)
	case temp > 0:
		st.Status = diag.Warn
		st.Title = "DKIM temperror: a key could not be fetched (could not check)"
	default:
		st.Status = diag.Fail
		st.Title = fmt.Sprintf("DKIM %s: no signature verifies", d.Result)
	}
	return st
}

// dkimHint says how to fix a signature that did not pass.
func dkimHint(r dkim.Result) string {
	switch r.Reason {
	case "":
		return ""
	case dkim.ReasonBodyHash:
		return "the body changed after signing (a footer, a rewritten line ending, a mailing list): sign after the last change, or use c=relaxed/relaxed"
	case dkim.ReasonSignature:
		return "a signed header changed after signing, or the key published at " + r.Query + " is not the signer's: compare the hashed headers and the key"
	case dkim.ReasonKeyNotFound:
		return "publish the public key as a TXT record at " + r.Query
	case dkim.ReasonKeyRevoked:
		return "the key at " + r.Query + " is revoked (empty p=): sign with the current selector"
	case dkim.ReasonKeyTooShort:
		return "use an RSA key of at least 2048 bits (RFC 8301)"
	case dkim.ReasonAlgorithm:
		return "sign with rsa-sha256 or ed25519-sha256 (RFC 8301 forbids rsa-sha1)"
	case dkim.ReasonExpired:
		return "the signature expired (x=): check the signer's clock and the x= it sets"
	case dkim.ReasonDNS:
		return "retry later; the key's name servers did not answer"
	}
	return "fix the signature: " + string(r.Reason)
}

func arcStep(a ARC) diag.Step {
	st := diag.Step{Data: a, RFC: "RFC 8617 §5.2"}
	c := a.Chain
	switch arc.Status(a.Result) {
	case arc.None:
		st.Status, st.Title = diag.Info, "ARC none: the message carries no ARC set (normal for mail that was not forwarded)"
		st.RFC = ""
	case arc.Pass:
		st.Status = diag.OK
		st.Title = fmt.Sprintf("ARC pass: %s verifies", plural(c.N, "set", "sets"))
	default:
		st.Status = diag.Warn
		st.Title = "ARC fail: the chain is broken, so receivers ignore it"
		st.Detail = strings.TrimSpace(fmt.Sprintf("%s %s", c.Reason, c.Detail))
		if c.Instance > 0 {
			st.Detail += fmt.Sprintf(" (set i=%d, %s)", c.Instance, c.Field)
		}
		st.Hint = "an intermediary's ARC signature no longer verifies: the message changed after it sealed, or its key is not published"
	}
	if c != nil && len(c.Sets) > 0 {
		var lines []string
		for _, s := range c.Sets {
			lines = append(lines, fmt.Sprintf("i=%d %s cv=%s: %s", s.Instance, s.AuthServID, s.CV, s.Results))
		}
		st.Detail = strings.TrimSpace(st.Detail + "\n" + strings.Join(lines, "\n"))
	}
	return st
}

func dmarcStep(res Result) diag.Step {
	d := res.DMARC
	st := diag.Step{Data: d, Hint: d.Hint, RFC: d.RFC}
	var b strings.Builder
	b.WriteString(res.Alignment + "\n")
	if d.Problem != "" {
		b.WriteString(d.Problem + "\n")
	}
	if d.SPF.Reason != "" {
		fmt.Fprintf(&b, "SPF: %s\n", d.SPF.Reason)
	}
	for _, id := range d.DKIM {
		fmt.Fprintf(&b, "DKIM: %s\n", id.Reason)
	}
	if d.PolicyDomain != "" {
		fmt.Fprintf(&b, "policy: _dmarc.%s %q → %s=%s", d.PolicyDomain, d.Record, d.PolicyTag, d.Requested)
		if d.TestMode {
			fmt.Fprintf(&b, " (t=y: %s applies)", d.Policy)
		}
		b.WriteString("\n")
	}
	if d.OrgDomain != "" {
		fmt.Fprintf(&b, "organizational domain: %s (%s)\n", d.OrgDomain, d.OrgReason)
	}
	if d.Walk != nil {
		var walk []string
		for _, n := range d.Walk.Names {
			walk = append(walk, "_dmarc."+n+" "+answerOf(d.Queries, "_dmarc."+n))
		}
		fmt.Fprintf(&b, "tree walk: %s\n", strings.Join(walk, ", "))
	}
	if d.AuthorExists != "" {
		fmt.Fprintf(&b, "author domain exists: %s\n", d.AuthorExists)
	}
	if d.Parsed != nil {
		for _, df := range d.Parsed.Defects {
			fmt.Fprintf(&b, "record: %s\n", df.Problem)
		}
	}
	for _, r := range d.Reports {
		switch {
		case !r.External:
			fmt.Fprintf(&b, "%s %s: inside the organizational domain\n", r.Tag, r.URI)
		case r.Verified:
			fmt.Fprintf(&b, "%s %s: external, authorized by %s\n", r.Tag, r.URI, r.Query)
		default:
			fmt.Fprintf(&b, "%s %s: external and NOT authorized: %s\n", r.Tag, r.URI, r.Problem)
		}
	}
	l := d.RFC7489
	fmt.Fprintf(&b, "RFC 7489 receivers: %s", l.Status)
	if l.Policy != "" {
		fmt.Fprintf(&b, ", %s=%s", l.PolicyTag, l.Policy)
	}
	fmt.Fprintf(&b, ", organizational domain %s (public suffix list)", l.OrgDomain)
	if l.Note != "" {
		b.WriteString("; " + l.Note)
	}
	b.WriteString("\n")
	for _, diff := range d.Differences {
		fmt.Fprintf(&b, "differs from RFC 7489: %s\n", diff)
	}
	st.Detail = strings.TrimRight(b.String(), "\n")
	st.Title = d.Verdict()
	switch d.Status {
	case dmarc.Pass:
		st.Status = diag.OK
	case dmarc.Temperror:
		st.Status = diag.Warn
	default:
		st.Status = diag.Fail
	}
	for _, r := range d.Reports {
		if r.External && !r.Verified && st.Status == diag.OK {
			st.Status = diag.Warn
			st.Hint = "ask " + r.Domain + " to publish " + r.Query + " TXT \"v=DMARC1\", or report to an address in your own domain"
		}
	}
	return st
}

func answerOf(qs []dmarc.Query, name string) string {
	for _, q := range qs {
		if q.Name == name && q.Type == "TXT" {
			return q.Answer
		}
	}
	return "?"
}

func iprevStep(r iprev.Result) diag.Step {
	st := diag.Step{Data: r, Hint: r.Hint, RFC: r.RFC}
	var lines []string
	if r.Problem != "" {
		lines = append(lines, r.Problem)
	}
	if len(r.PTR) > 0 {
		lines = append(lines, fmt.Sprintf("PTR %s: %s", strings.TrimSuffix(r.ReverseName, "."), strings.Join(r.PTR, ", ")))
	}
	for _, n := range r.Names {
		if n.Confirmed {
			lines = append(lines, fmt.Sprintf("%s → %s: forward-confirmed", n.Name, strings.Join(n.Addrs, ", ")))
		} else if n.Problem != "" && r.Status == iprev.Pass {
			lines = append(lines, n.Problem)
		}
	}
	if r.HeloNote != "" {
		lines = append(lines, r.HeloNote)
	}
	st.Detail = strings.Join(lines, "\n")
	switch r.Status {
	case iprev.Pass:
		st.Status = diag.OK
		st.Title = fmt.Sprintf("iprev pass: %s is %s, forward-confirmed", r.IP, strings.Join(r.Confirmed, ", "))
		if r.Helo != "" && !r.HeloConfirmed {
			st.Status = diag.Warn
			st.Title += fmt.Sprintf(", but EHLO says %s", r.Helo)
			st.RFC = "RFC 5321 §4.1.4"
		}
	case iprev.Temperror:
		st.Status = diag.Warn
		st.Title = "iprev temperror: reverse DNS could not be checked"
	case iprev.Permerror:
		st.Status = diag.Fail
		st.Title = fmt.Sprintf("iprev permerror: %s has no reverse DNS", r.IP)
	default:
		st.Status = diag.Fail
		st.Title = fmt.Sprintf("iprev fail: the reverse DNS of %s is not forward-confirmed", r.IP)
	}
	return st
}

// alignmentLine puts the author domain and the identifiers side by side.
func alignmentLine(res Result) string {
	d := res.DMARC
	parts := []string{"From: " + orDash(res.FromDomain)}
	word := func(id dmarc.Identifier) string {
		a := "not aligned"
		if id.DomainAligned {
			a = "aligned"
		}
		return fmt.Sprintf("%s, %s, %s", orNone(id.Result), a, id.Mode)
	}
	if d.SPF.Domain != "" {
		parts = append(parts, fmt.Sprintf("SPF domain: %s (%s)", d.SPF.Domain, word(d.SPF)))
	} else {
		parts = append(parts, "SPF domain: none")
	}
	switch {
	case !res.DKIM.Checked:
		parts = append(parts, "DKIM: not checked (no message)")
	case len(d.DKIM) == 0:
		parts = append(parts, "DKIM: no signature")
	}
	for _, id := range d.DKIM {
		parts = append(parts, fmt.Sprintf("DKIM d=%s (%s)", id.Domain, word(id)))
	}
	return strings.Join(parts, " | ")
}

// authResults builds the resinfo list of the Authentication-Results field
// (RFC 8601 §2.2), authserv-id first.
func authResults(id string, res Result) []string {
	out := []string{id}
	out = append(out, fmt.Sprintf("spf=%s smtp.mailfrom=%s", res.SPFMailFrom.Status, pvalue(res.SPFMailFrom.Sender)))
	if res.SPFHelo != nil {
		out = append(out, fmt.Sprintf("spf=%s smtp.helo=%s", res.SPFHelo.Status, pvalue(res.SPFHelo.Domain)))
	}
	if res.DKIM.Checked {
		if len(res.DKIM.Signatures) == 0 {
			out = append(out, "dkim=none (message not signed)")
		}
		for _, s := range res.DKIM.Signatures {
			r := fmt.Sprintf("dkim=%s", s.Status)
			if s.Reason != "" {
				r += " (" + comment(string(s.Reason)) + ")"
			}
			if s.Domain != "" {
				r += " header.d=" + pvalue(s.Domain)
			}
			if s.Selector != "" {
				r += " header.s=" + pvalue(s.Selector)
			}
			// RFC 6008: the first eight characters of b= tell apart
			// signatures of one domain.
			if tags, err := dkim.ParseTags(s.Signature); err == nil {
				if b, ok := tags.Get("b"); ok {
					b = strings.Map(func(r rune) rune {
						if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
							return -1
						}
						return r
					}, b)
					if len(b) > 8 {
						b = b[:8]
					}
					if b != "" {
						r += " header.b=" + pvalue(b)
					}
				}
			}
			out = append(out, r)
		}
	}
	if res.ARC.Checked {
		r := "arc=" + res.ARC.Result
		if c := res.ARC.Chain; c != nil && c.N > 0 {
			r += fmt.Sprintf(" (i=%d)", c.N)
		}
		out = append(out, r)
	}
	d := res.DMARC
	r := "dmarc=" + string(d.Status)
	if d.PolicyTag != "" {
		r += fmt.Sprintf(" (%s=%s dis=%s)", d.PolicyTag, d.Requested, d.Disposition)
	}
	if res.FromDomain != "" {
		r += " header.from=" + pvalue(res.FromDomain)
	}
	out = append(out, r)
	r = "iprev=" + string(res.IPRev.Status)
	if len(res.IPRev.Confirmed) > 0 {
		r += " (" + comment(res.IPRev.Confirmed[0]) + ")"
	}
	r += " policy.iprev=" + pvalue(res.IPRev.IP)
	out = append(out, r)
	return out
}

// pvalue writes a property value (RFC 8601 §2.2: value or
// [local-part "@"] domain-name), quoting what a token cannot carry.
func pvalue(s string) string {
	if s == "" {
		return `""`
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_@+=/:!#$%&'*^`{|}~", c)) {
			return strconv.Quote(s)
		}
	}
	return s
}

// comment strips what would break an RFC 5322 comment.
func comment(s string) string {
	return strings.NewReplacer("(", "", ")", "", "\\", "").Replace(s)
}

// HeaderField folds the Authentication-Results value as a header field, one
// result per line.
func HeaderField(value string) string {
	return "Authentication-Results: " + strings.ReplaceAll(value, "; ", ";\n\t")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func dedupe(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
