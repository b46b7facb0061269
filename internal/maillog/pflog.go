package maillog

import (
	"bytes"
	"strconv"
)

// This file holds the byte-level matchers that reproduce, one by one, the
// regular expressions Debian's pflogsumm 1.1.5 applies to the remainder of
// a line after the host name. Each function names the expression it stands
// for; they follow Perl's leftmost-match semantics, including the
// unanchored searches, because the grand totals must come out identical.

var (
	bSizeEq     = []byte(", size=")
	bToLT       = []byte("to=<")
	bClientEq   = []byte(": client=")
	bCleanupBr  = []byte("/cleanup[")
	bForwarded  = []byte("forwarded as ")
	bSenderEq   = []byte(": sender=")
	bUIDEq      = []byte(": uid=")
	bHeaderSp   = []byte(": header ")
	bBodySp     = []byte(": body ")
	bEOMSp      = []byte(": END-OF-MESSAGE ")
	bBracketCol = []byte("]: ")
)

func hasPrefix(s []byte, p string) bool {
	return len(s) >= len(p) && string(s[:len(p)]) == p
}

// postfixCmd is pflogsumm's
//
//	m#^(?:postfix|$syslogName)(?:/(?:smtps|submission))?/([^\[:]*).*?: ([^:\s]+)#
//	|| m#^((?:postfix)(?:-script)?)(?:\[\d+\])?: ([^:\s]+)#
//
// in compat mode. Otherwise any syslog name "postfix" or "postfix-*"
// (multi-instance) is accepted and the command is the last path element of
// the program name, so "postfix-out/smtp" and "postfix/sender-cleanup/cleanup"
// count as smtp and cleanup.
func postfixCmd(rest []byte, compat bool) (cmd, qid []byte, msgAt int, ok bool) {
	if !hasPrefix(rest, "postfix") {
		return nil, nil, 0, false
	}
	if compat {
		if len(rest) > 8 && rest[7] == '/' {
			p := rest[8:]
			if hasPrefix(p, "smtps/") {
				p = p[6:]
			} else if hasPrefix(p, "submission/") {
				p = p[11:]
			}
			i := 0
			for i < len(p) && p[i] != '[' && p[i] != ':' {
				i++
			}
			if q, at := firstColonToken(p[i:]); q != nil {
				return p[:i], q, len(rest) - len(p) + i + at, true
			}
		}
		return scriptCmd(rest)
	}
	// The program name as pflogsumm delimits it: up to '[' or ':'.
	// "postfix" itself holds none of the bytes the loop looks for.
	i := len("postfix")
	slash := -1
	stop := &nameStop
	for {
		for i < len(rest) && !stop[rest[i]] {
			i++
		}
		if i >= len(rest) || rest[i] != '/' {
			break
		}
		if slash < 0 && i != len("postfix") && !validInstance(rest[:i]) {
			return nil, nil, 0, false
		}
		slash = i
		i++
	}
	if slash < 0 {
		if string(rest[:i]) == "postfix-script" || string(rest[:i]) == "postfix" {
			return scriptCmd(rest)
		}
		if validInstance(rest[:i]) {
			// "postfix-out[12]: fatal: ...": the postfix(1) command of
			// an instance, counted like pflogsumm's "postfix[12]: ...".
			if q, at, ok := directToken(rest, i); ok {
				return bPostfix, q, at, true
			}
		}
		return nil, nil, 0, false
	}
	if q, at := firstColonToken(rest[i:]); q != nil {
		return rest[slash+1 : i], q, i + at, true
	}
	return nil, nil, 0, false
}

var bPostfix = []byte("postfix")

// nameStop marks the bytes postfixCmd stops at in a program name.
var nameStop = [256]bool{'[': true, ':': true, '/': true}

// validInstance reports whether the first element of a program name is a
// Postfix syslog_name: "postfix" or "postfix-<instance>".
func validInstance(s []byte) bool {
	if string(s) == "postfix" {
		return true
	}
	return len(s) > 8 && hasPrefix(s, "postfix-") && string(s) != "postfix-script"
}

// scriptCmd is m#^((?:postfix)(?:-script)?)(?:\[\d+\])?: ([^:\s]+)#.
func scriptCmd(rest []byte) (cmd, qid []byte, msgAt int, ok bool) {
	if hasPrefix(rest[7:], "-script") {
		if q, at, ok := directToken(rest, 14); ok {
			return rest[:14], q, at, true
		}
	}
	if q, at, ok := directToken(rest, 7); ok {
		return rest[:7], q, at, true
	}
	return nil, nil, 0, false
}

// directToken matches (?:\[\d+\])?: ([^:\s]+) at rest[n:].
func directToken(rest []byte, n int) ([]byte, int, bool) {
	j := n
	if j < len(rest) && rest[j] == '[' {
		k := j + 1
		for k < len(rest) && isDigit(rest[k]) {
			k++
		}
		if k > j+1 && k < len(rest) && rest[k] == ']' {
			j = k + 1
		}
	}
	if j+2 < len(rest) && rest[j] == ':' && rest[j+1] == ' ' && rest[j+2] != ':' && !isPerlSpace(rest[j+2]) {
		k := j + 2
		for k < len(rest) && rest[k] != ':' && !isPerlSpace(rest[k]) {
			k++
		}
		return rest[j+2 : k], j + 2, true
	}
	return nil, 0, false
}

// cleanupReject is
//
//	/\/cleanup\[\d+\]: .*?\b((?:milter-)?reject|warning|hold|discard): (header|body|END-OF-MESSAGE) (.*)$/
//
// returning the action, the part (header, body, END-OF-MESSAGE) and the rest.
func cleanupReject(rest []byte) (action, part, text []byte, ok bool) {
	// The first "/cleanup[digits]: " decides: a later one could only match
	// a subset of what the first one's ".*?" already covers.
	s := rest
	start := -1
	for off := 0; ; {
		i := bytes.Index(s[off:], bCleanupBr)
		if i < 0 {
			return nil, nil, nil, false
		}
		j := off + i + len(bCleanupBr)
		k := j
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		if k > j && k+2 < len(s) && s[k] == ']' && s[k+1] == ':' && s[k+2] == ' ' {
			start = k + 3
			break
		}
		off = off + i + 1
	}
	// Every ": " after start is a candidate for ": (header|body|END-OF-MESSAGE) ";
	// the leftmost keyword start wins, and keywords end at their ": ", so
	// the first candidate that validates is the leftmost.
	for off := start; ; {
		i := bytes.Index(s[off:], colonSpace)
		if i < 0 {
			return nil, nil, nil, false
		}
		p := off + i
		off = p + 1
		t := s[p+2:]
		var part []byte
		switch {
		case hasPrefix(t, "header "):
			part = t[:6]
		case hasPrefix(t, "body "):
			part = t[:4]
		case hasPrefix(t, "END-OF-MESSAGE "):
			part = t[:14]
		default:
			continue
		}
		if a, _ := cleanupKeyword(s, start, p); a != nil {
			return a, part, t[len(part)+1:], true
		}
	}
}

// cleanupKeyword checks that s[:p] ends with one of the cleanup actions
// starting at a word boundary at or after start, and returns the leftmost
// such action with its start.
func cleanupKeyword(s []byte, start, p int) ([]byte, int) {
	bound := func(i int) bool { return i >= start && (i == 0 || !isWord(s[i-1])) }
	for _, kw := range []string{"milter-reject", "reject", "warning", "hold", "discard"} {
		i := p - len(kw)
		if i >= start && string(s[i:p]) == kw && bound(i) {
			return s[i:p], i
		}
	}
	return nil, -1
}

// smtpdClient is /\[\d+\]: \w+: client=(.+?)(,|$)/. Candidates are found
// through the '=' bytes, which most lines have few of.
func smtpdClient(rest []byte) ([]byte, bool) {
	for off := 0; ; {
		e := bytes.IndexByte(rest[off:], '=')
		if e < 0 {
			return nil, false
		}
		e += off
		off = e + 1
		p := e - len(bClientEq) + 1 // where ": client=" would start
		if p < 0 || !bytes.Equal(rest[p:e+1], bClientEq) {
			continue
		}
		// \w+ ending at p, preceded by "]: ", digits and '['.
		w := p
		for w > 0 && isWord(rest[w-1]) {
			w--
		}
		if w == p || w < 3 || rest[w-1] != ' ' || rest[w-2] != ':' || rest[w-3] != ']' {
			continue
		}
		d := w - 3
		for d > 0 && isDigit(rest[d-1]) {
			d--
		}
		if d == w-3 || d == 0 || rest[d-1] != '[' {
			continue
		}
		v := rest[p+len(bClientEq):]
		if len(v) == 0 {
			continue
		}
		if c := bytes.IndexByte(v[1:], ','); c >= 0 {
			return v[:c+1], true
		}
		return v, true
	}
}

// smtpdClientFast is smtpdClient for a line whose message starts at
// msgAt, right after the pid's "[digits]: " — the leftmost place a match
// can start. Only when the message does not start with "\w+: client=" is
// the rest of the line searched, and only if it contains ": client=".
func smtpdClientFast(rest []byte, msgAt int) ([]byte, bool) {
	if msgAt >= 3 && msgAt <= len(rest) && rest[msgAt-3] == ']' {
		m := rest[msgAt:]
		w := 0
		for w < len(m) && isWord(m[w]) {
			w++
		}
		if w > 0 && bytes.HasPrefix(m[w:], bClientEq) {
			if d := msgAt - 3; d > 0 && isDigit(rest[d-1]) {
				v := m[w+len(bClientEq):]
				if len(v) > 0 {
					if c := bytes.IndexByte(v[1:], ','); c >= 0 {
						return v[:c+1], true
					}
					return v, true
				}
			}
		}
		if bytes.Index(m, bClientEq) < 0 {
			return nil, false
		}
	}
	return smtpdClient(rest)
}

// smtpdRejectKind is /\[\d+\]: \w+: (reject(?:_warning)?|hold|discard): /.
// Candidates are found through the ']' bytes.
func smtpdRejectKind(rest []byte) ([]byte, bool) {
	for off := 0; ; {
		i := bytes.IndexByte(rest[off:], ']')
		if i < 0 {
			return nil, false
		}
		p := off + i
		off = p + 1
		if p+2 >= len(rest) || rest[p+1] != ':' || rest[p+2] != ' ' {
			continue
		}
		d := p
		for d > 0 && isDigit(rest[d-1]) {
			d--
		}
		if d == p || d == 0 || rest[d-1] != '[' {
			continue
		}
		w := p + 3
		e := w
		for e < len(rest) && isWord(rest[e]) {
			e++
		}
		if e == w || !hasPrefix(rest[e:], ": ") {
			continue
		}
		t := rest[e+2:]
		for _, kw := range rejectKinds {
			if hasPrefix(t, kw) && hasPrefix(t[len(kw):], ": ") {
				return t[:len(kw)], true
			}
		}
	}
}

var rejectKinds = []string{"reject_warning", "reject", "hold", "discard"}

// fromSizeOrDelivery is pflogsumm's /from=<([^>]*)>, size=(\d+)/ and, when that
// fails, its delivery expression (matchDelivery), with
// one pass over the '<' bytes to find the candidates of both.
func fromSizeOrDelivery(rest []byte, d *delivery, tls bool) (addr, size []byte, isFrom, isDelivery bool) {
	var cand [8]int
	nc := 0
	overflow := false
	for off := 0; ; {
		i := bytes.IndexByte(rest[off:], '<')
		if i < 0 {
			break
		}
		p := off + i
		off = p + 1
		if p >= 5 && string(rest[p-5:p]) == "from=" {
			if a, s, ok := fromSizeAt(rest, p+1); ok {
				return a, s, true, false
			}
		}
		if p >= 3 && string(rest[p-3:p]) == "to=" {
			if nc < len(cand) {
				cand[nc] = p - 3
				nc++
			} else {
				overflow = true
			}
		}
	}
	if overflow {
		return nil, nil, false, matchDelivery(rest, d, tls)
	}
	for _, c := range cand[:nc] {
		if deliveryAt(rest, c, d, tls) {
			return nil, nil, false, true
		}
	}
	return nil, nil, false, false
}

// fromSizeAt matches `([^>]*)>, size=(\d+)` at rest[p:].
func fromSizeAt(rest []byte, p int) (addr, size []byte, ok bool) {
	j := bytes.IndexByte(rest[p:], '>')
	if j < 0 {
		return nil, nil, false
	}
	q := p + j + 1
	if !bytes.HasPrefix(rest[q:], bSizeEq) {
		return nil, nil, false
	}
	q += len(bSizeEq)
	e := q
	for e < len(rest) && isDigit(rest[e]) {
		e++
	}
	if e == q {
		return nil, nil, false
	}
	return rest[p : p+j], rest[q:e], true
}

// delivery holds the captures of pflogsumm's delivery expression.
type delivery struct {
	addr, relay, delay, status, rmdr []byte
}

// matchDelivery is
//
//	/to=<([^>]*)>, (?:orig_to=<[^>]*>, )?relay=([^,]+), (?:conn_use=[^,]+, )?delay=([^,]+), (?:delays=[^,]+, )?(?:dsn=[^,]+, )?status=(\S+)(.*)$/
//
// The optional groups start with literals that the element after them
// cannot start with, so taking a group whenever it matches is what the
// backtracking engine ends up doing too. With tls set, Postfix 3.10's
// "tls=..., " field after delays= is allowed as well (not pflogsumm's).
func matchDelivery(s []byte, d *delivery, tls bool) bool {
	for off := 0; ; {
		i := bytes.Index(s[off:], bToLT)
		if i < 0 {
			return false
		}
		if deliveryAt(s, off+i, d, tls) {
			return true
		}
		off = off + i + 1
	}
}

// deliveryAt matches the delivery expression with "to=<" at s[at:].
func deliveryAt(s []byte, at int, d *delivery, tls bool) bool {
	p := at + len(bToLT)
	j := bytes.IndexByte(s[p:], '>')
	if j < 0 {
		return false
	}
	d.addr = s[p : p+j]
	q := p + j + 1
	if !hasPrefix(s[q:], ", ") {
		return false
	}
	q += 2
	if hasPrefix(s[q:], "orig_to=<") {
		if k := bytes.IndexByte(s[q+9:], '>'); k >= 0 && hasPrefix(s[q+9+k+1:], ", ") {
			q = q + 9 + k + 3
		}
	}
	var ok bool
	if d.relay, q, ok = kvNoComma(s, q, "relay="); !ok {
		return false
	}
	q = optKV(s, q, "conn_use=")
	if d.delay, q, ok = kvNoComma(s, q, "delay="); !ok {
		return false
	}
	q = optKV(s, q, "delays=")
	if tls {
		q = optKV(s, q, "tls=")
	}
	q = optKV(s, q, "dsn=")
	if !hasPrefix(s[q:], "status=") {
		return false
	}
	q += 7
	e := q
	for e < len(s) && !isPerlSpace(s[e]) {
		e++
	}
	if e == q {
		return false
	}
	d.status, d.rmdr = s[q:e], s[e:]
	return true
}

// kvNoComma matches `name([^,]+), ` at s[q:].
func kvNoComma(s []byte, q int, name string) ([]byte, int, bool) {
	if !hasPrefix(s[q:], name) {
		return nil, q, false
	}
	v := q + len(name)
	k := bytes.IndexByte(s[v:], ',')
	if k <= 0 || !hasPrefix(s[v+k:], ", ") {
		return nil, q, false
	}
	return s[v : v+k], v + k + 2, true
}

// optKV matches `(?:name[^,]+, )?` at s[q:].
func optKV(s []byte, q int, name string) int {
	if _, nq, ok := kvNoComma(s, q, name); ok {
		return nq
	}
	return q
}

// gimmeDomain reproduces pflogsumm's gimme_domain: the client's domain
// ("mail.example.com[192.0.2.1]" gives "example.com"), its address when the
// name is "unknown", and ok=false when pflogsumm's value would be undef.
func gimmeDomain(c []byte, buf *[]byte) ([]byte, bool) {
	var dom, ip []byte
	matched := false
	// /^([^\[]*)\[((?:\d{1,3}\.){3}\d{1,3})\]/
	if i := bytes.IndexByte(c, '['); i >= 0 {
		if n := ipv4Prefix(c[i+1:]); n > 0 && i+1+n < len(c) && c[i+1+n] == ']' {
			dom, ip, matched = c[:i], c[i+1:i+1+n], true
		}
	}
	// /^([^\/]*)\/([0-9a-f.:]+)/i
	if !matched {
		if i := bytes.IndexByte(c, '/'); i >= 0 {
			j := i + 1
			for j < len(c) && isHexDotColon(c[j]) {
				j++
			}
			if j > i+1 {
				dom, ip, matched = c[:i], c[i+1:j], true
			}
		}
	}
	// /^([^\[\(\/]*)[\[\(\/]([^\]\)]+)[\]\)]:?\d*$/
	if !matched {
		i := bytes.IndexAny(c, "[(/")
		if i >= 0 {
			j := i + 1
			for j < len(c) && c[j] != ']' && c[j] != ')' {
				j++
			}
			if j > i+1 && j < len(c) {
				k := j + 1
				if k < len(c) && c[k] == ':' {
					k++
				}
				for k < len(c) && isDigit(c[k]) {
					k++
				}
				if k == len(c) {
					dom, ip, matched = c[:i], c[i+1:j], true
				}
			}
		}
	}
	if !matched {
		return nil, false
	}
	if len(dom) == 0 || string(dom) == "unknown" {
		return ip, true
	}
	// s/^(.*)\.([^\.]+)\.([^\.]{3}|[^\.]{2,3}\.[^\.]{2})$/\L$2.$3/
	for p := len(dom) - 1; p >= 0; p-- {
		if dom[p] != '.' {
			continue
		}
		q := bytes.IndexByte(dom[p+1:], '.')
		if q <= 0 {
			continue
		}
		q += p + 1
		if tldOK(dom[q+1:]) {
			*buf = append((*buf)[:0], dom[p+1:]...)
			lowerASCII(*buf)
			return *buf, true
		}
	}
	return dom, true
}

// tldOK is ([^\.]{3}|[^\.]{2,3}\.[^\.]{2})$.
func tldOK(s []byte) bool {
	if len(s) == 3 && bytes.IndexByte(s, '.') < 0 {
		return true
	}
	d := bytes.IndexByte(s, '.')
	return (d == 2 || d == 3) && len(s)-d-1 == 2 && bytes.IndexByte(s[d+1:], '.') < 0
}

func isHexDotColon(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}

// ipv4Prefix returns the length of a (?:\d{1,3}\.){3}\d{1,3} match at the
// start of s, as followed by ']' (the only context it is used in), or 0.
func ipv4Prefix(s []byte) int {
	i := 0
	for part := 0; part < 4; part++ {
		j := i
		for j < len(s) && j-i < 3 && isDigit(s[j]) {
			j++
		}
		if j == i {
			return 0
		}
		i = j
		if part < 3 {
			if i >= len(s) || s[i] != '.' {
				return 0
			}
			i++
		}
	}
	return i
}

func lowerASCII(b []byte) {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
}

// lowerDomainPart is s/(@.+)/\L$1/: everything from the first '@' that has
// at least one character after it is lower-cased (ASCII only, as Perl does
// for byte strings). It returns addr itself when nothing changes.
func lowerDomainPart(addr []byte, buf *[]byte) []byte {
	at := bytes.IndexByte(addr, '@')
	if at < 0 || at+1 >= len(addr) {
		return addr
	}
	upper := false
	for _, c := range addr[at:] {
		if c >= 'A' && c <= 'Z' {
			upper = true
			break
		}
	}
	if !upper {
		return addr
	}
	var b []byte
	if buf != nil {
		b = (*buf)[:0]
	}
	b = append(b, addr...)
	lowerASCII(b[at:])
	if buf != nil {
		*buf = b
	}
	return b
}

// perlNum converts a string to a number the way Perl does for the simple
// decimal forms Postfix writes ("0.42", "12"), with strconv for the rest.
func perlNum(b []byte) float64 {
	var v float64
	i := 0
	for i < len(b) && isDigit(b[i]) {
		v = v*10 + float64(b[i]-'0')
		i++
	}
	if i == len(b) {
		return v
	}
	if b[i] == '.' {
		scale := 0.1
		j := i + 1
		for j < len(b) && isDigit(b[j]) {
			v += float64(b[j]-'0') * scale
			scale /= 10
			j++
		}
		if j == len(b) {
			return v
		}
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		// Perl uses the longest numeric prefix; what was read so far.
		return v
	}
	return f
}

// perlInt converts a digit string, saturating instead of overflowing.
func perlInt(b []byte) int64 {
	var v int64
	for _, c := range b {
		if v > (1<<62)/10 {
			return 1 << 62
		}
		v = v*10 + int64(c-'0')
	}
	return v
}
