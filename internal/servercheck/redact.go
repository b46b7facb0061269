package servercheck

import (
	"regexp"
	"sort"
	"strings"
)

// Redacted replaces every secret value in a bundle.
const Redacted = "<redacted>"

// secretKey matches the names of settings whose values are secrets (or
// name where secrets are kept): whole values are replaced.
var secretKey = regexp.MustCompile(`(?i)password|passwd|secret|key|token|credential`)

// inlineSecret matches name=value pairs inside a value or a log line
// (Dovecot's "args = ... password=x", SQL connect strings).
var inlineSecret = regexp.MustCompile(`(?i)\b([a-z0-9_.-]*(?:password|passwd|secret|key|token|credential)[a-z0-9_.-]*)=("[^"]*"|\S+)`)

// schemePassword matches a password with a Dovecot scheme prefix:
// {PLAIN}secret, {SHA512-CRYPT}$6$..., {CRAM-MD5}....
var schemePassword = regexp.MustCompile(`\{[A-Z0-9][A-Z0-9._-]*\}[^\s:,;)"']+`)

// givenPassword matches what Dovecot logs with auth_verbose_passwords.
var givenPassword = regexp.MustCompile(`(?i)(given password: )[^)\n]*`)

// Redactions counts what was redacted, by key name (or by pattern for
// inline matches: "{SCHEME}", "given password").
type Redactions map[string]int

// Add merges o into r.
func (r Redactions) Add(o Redactions) {
	for k, n := range o {
		r[k] += n
	}
}

// Keys returns the key names, sorted.
func (r Redactions) Keys() []string {
	ks := make([]string, 0, len(r))
	for k := range r {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Total is the number of values redacted.
func (r Redactions) Total() int {
	n := 0
	for _, v := range r {
		n += v
	}
	return n
}

// settingName is what a configuration key looks like.
var settingName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// hiddenByDoveconf is how doveconf -n shows a secret it knows of.
const hiddenByDoveconf = "# hidden, use -P to show it"

// RedactConfig redacts "key = value" configuration text (postconf -n,
// postconf -M, doveconf -n): the whole value of a key whose name looks
// secret, then inline secrets in every remaining line. A continuation
// line of a redacted value is dropped.
func RedactConfig(text string) (string, Redactions) {
	red := Redactions{}
	var b strings.Builder
	dropping := false
	for _, line := range strings.SplitAfter(text, "\n") {
		body := strings.TrimRight(line, "\r\n")
		nl := line[len(body):]
		if dropping && body != "" && (body[0] == ' ' || body[0] == '\t') && !strings.Contains(body, "=") && !strings.HasSuffix(strings.TrimSpace(body), "{") && strings.TrimSpace(body) != "}" {
			continue // continuation of a redacted postconf value
		}
		dropping = false
		trim := strings.TrimSpace(body)
		if k, v, ok := strings.Cut(trim, "="); ok && !strings.HasPrefix(trim, "#") {
			key := strings.TrimSpace(k)
			val := strings.TrimSpace(v)
			if settingName.MatchString(key) && secretKey.MatchString(key) && val != "" && val != hiddenByDoveconf {
				indent := body[:len(body)-len(strings.TrimLeft(body, " \t"))]
				b.WriteString(indent + key + " = " + Redacted + nl)
				red[key]++
				dropping = true
				continue
			}
		}
		out, r := RedactInline(body)
		red.Add(r)
		b.WriteString(out + nl)
	}
	return b.String(), red
}

// RedactInline redacts name=secret pairs, {SCHEME}passwords and Dovecot's
// "given password: ..." in one line of text.
func RedactInline(s string) (string, Redactions) {
	red := Redactions{}
	s = inlineSecret.ReplaceAllStringFunc(s, func(m string) string {
		sub := inlineSecret.FindStringSubmatch(m)
		red[sub[1]]++
		return sub[1] + "=" + Redacted
	})
	s = schemePassword.ReplaceAllStringFunc(s, func(m string) string {
		red["{SCHEME}password"]++
		return m[:strings.IndexByte(m, '}')+1] + Redacted
	})
	s = givenPassword.ReplaceAllStringFunc(s, func(m string) string {
		red["given password"]++
		return m[:strings.Index(strings.ToLower(m), "given password: ")+len("given password: ")] + Redacted
	})
	return s, red
}
