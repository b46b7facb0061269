package maillog

import "bytes"

// tsFormat says which timestamp a line starts with.
type tsFormat uint8

const (
	tsNone         tsFormat = iota // no timestamp recognised
	tsSyslog                       // "Nov  2 00:00:00" (RFC 3164, no year)
	tsRFC3339                      // "2024-01-02T03:04:05.123456+00:00" (rsyslog, Postfix maillog_file)
	tsISOBasicZone                 // "2024-01-02T03:04:05+0100" (journalctl -o short-iso)
	tsISOSpace                     // "2013-08-11 03:56:40" (Dovecot's own log file, no host)
	tsISONoZone                    // "2024-01-02T03:04:05" (rsyslog without zone)
	tsTAI64N                       // "@400000004c91b044077a9e94" (daemontools multilog)
)

// header is the byte-level view of one line's syslog prefix. Every slice
// points into the caller's line; nothing is copied.
type header struct {
	format tsFormat
	// pflogsumm is true when pflogsumm 1.1.5 itself would accept the
	// timestamp and host (its two header regular expressions).
	pflogsumm bool

	year, mon, day, hour, min, sec, nsec int // wall clock as written; mon 0 = unknown
	hasOffset                            bool
	offset                               int // seconds east of UTC
	tai                                  int64
	taiNsec                              int

	host []byte
	// rest is everything after the host and one space, what pflogsumm
	// calls $logRmdr.
	rest []byte
}

func monthNum(a, b, c byte) int {
	switch a {
	case 'J':
		if b == 'a' && c == 'n' {
			return 1
		}
		if b == 'u' {
			if c == 'n' {
				return 6
			}
			if c == 'l' {
				return 7
			}
		}
	case 'F':
		if b == 'e' && c == 'b' {
			return 2
		}
	case 'M':
		if b == 'a' {
			if c == 'r' {
				return 3
			}
			if c == 'y' {
				return 5
			}
		}
	case 'A':
		if b == 'p' && c == 'r' {
			return 4
		}
		if b == 'u' && c == 'g' {
			return 8
		}
	case 'S':
		if b == 'e' && c == 'p' {
			return 9
		}
	case 'O':
		if b == 'c' && c == 't' {
			return 10
		}
	case 'N':
		if b == 'o' && c == 'v' {
			return 11
		}
	case 'D':
		if b == 'e' && c == 'c' {
			return 12
		}
	}
	return 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Byte classes, as tables: the scanners test every byte of most lines.
var (
	spaceTab  [256]bool // Perl's \s
	wordTab   [256]bool // Perl's \w (ASCII)
	tokenStop [256]bool // ':' or \s: the end of pflogsumm's [^:\s]+
)

func init() {
	for _, c := range []byte(" \t\n\r\f\v") {
		spaceTab[c] = true
		tokenStop[c] = true
	}
	tokenStop[':'] = true
	for c := 0; c < 256; c++ {
		wordTab[c] = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
	}
}

// isPerlSpace reports whether c is in Perl's \s class.
func isPerlSpace(c byte) bool { return spaceTab[c] }

func isWord(c byte) bool { return wordTab[c] }

func d2(b []byte, i int) (int, bool) {
	if i+1 >= len(b) || !isDigit(b[i]) || !isDigit(b[i+1]) {
		return 0, false
	}
	return int(b[i]-'0')*10 + int(b[i+1]-'0'), true
}

// hms parses "HH:MM:SS" at b[i:].
func (h *header) hms(b []byte, i int) bool {
	if i < 0 || i+8 > len(b) {
		return false
	}
	s := b[i : i+8]
	h0, h1, m0, m1, s0, s1 := s[0]-'0', s[1]-'0', s[3]-'0', s[4]-'0', s[6]-'0', s[7]-'0'
	if h0 > 9 || h1 > 9 || m0 > 9 || m1 > 9 || s0 > 9 || s1 > 9 || s[2] != ':' || s[5] != ':' {
		return false
	}
	h.hour, h.min, h.sec = int(h0)*10+int(h1), int(m0)*10+int(m1), int(s0)*10+int(s1)
	return true
}

// parseHeader recognises the timestamp and host of a line. It returns
// false when no timestamp format matches. The rules for tsSyslog and
// tsRFC3339 are pflogsumm's: any three characters as the month, one or two
// spaces, a one- or two-digit day; a host of non-space characters followed
// by exactly one space and at least one more character.
//
// h must be the zero header; callers declare a fresh one per line.
func parseHeader(b []byte, h *header) bool {
	n := len(b)
	if n < 16 {
		return false
	}
	i := 0
	switch {
	case b[3] == ' ' && (isDigit(b[4]) || b[4] == ' '):
		// "Mmm dd HH:MM:SS" or "Mmm  d HH:MM:SS" or "Mmm d HH:MM:SS".
		if b[0] == '\n' || b[1] == '\n' || b[2] == '\n' {
			return false
		}
		j := 4
		if b[j] == ' ' {
			j++
		}
		if !isDigit(b[j]) {
			return false
		}
		day := int(b[j] - '0')
		j++
		if isDigit(b[j]) {
			day = day*10 + int(b[j]-'0')
			j++
		}
		if j+9 > n || b[j] != ' ' || !h.hms(b, j+1) {
			return false
		}
		h.format = tsSyslog
		h.mon = monthNum(b[0], b[1], b[2])
		h.day = day
		i = j + 9
	case isDigit(b[0]) && n >= 20 && b[4] == '-' && b[7] == '-' && (b[10] == 'T' || b[10] == ' '):
		y := 0
		for k := 0; k < 4; k++ {
			if !isDigit(b[k]) {
				return false
			}
			y = y*10 + int(b[k]-'0')
		}
		mon, ok1 := d2(b, 5)
		day, ok2 := d2(b, 8)
		if !ok1 || !ok2 || !h.hms(b, 11) {
			return false
		}
		h.year, h.mon, h.day = y, mon, day
		j := 19
		if j < n && b[j] == '.' {
			j++
			start := j
			frac := 0
			for j < n && isDigit(b[j]) {
				if j-start < 9 {
					frac = frac*10 + int(b[j]-'0')
				}
				j++
			}
			if j == start {
				return false
			}
			for k := j - start; k < 9; k++ {
				frac *= 10
			}
			h.nsec = frac
		}
		if b[10] == ' ' {
			h.format = tsISOSpace
		} else if j < n && b[j] == 'Z' {
			h.format = tsRFC3339
			h.hasOffset = true
			j++
		} else if j+3 <= n && (b[j] == '+' || b[j] == '-') {
			hh, ok := d2(b, j+1)
			if !ok {
				return false
			}
			sign := 1
			if b[j] == '-' {
				sign = -1
			}
			var mm int
			if j+6 <= n && b[j+3] == ':' {
				mm, ok = d2(b, j+4)
				h.format = tsRFC3339
				j += 6
			} else {
				mm, ok = d2(b, j+3)
				h.format = tsISOBasicZone
				j += 5
			}
			if !ok {
				return false
			}
			h.hasOffset = true
			h.offset = sign * (hh*3600 + mm*60)
		} else {
			// An ISO timestamp without a zone: local time.
			h.format = tsISONoZone
		}
		i = j
	case b[0] == '@' && n >= 26:
		var v uint64
		for k := 1; k < 25; k++ {
			c := b[k]
			var d byte
			switch {
			case isDigit(c):
				d = c - '0'
			case c >= 'a' && c <= 'f':
				d = c - 'a' + 10
			default:
				return false
			}
			if k <= 16 {
				v = v<<4 | uint64(d)
			} else {
				h.taiNsec = h.taiNsec<<4 | int(d)
			}
		}
		// TAI64 label 2^62 + seconds. libtai adds TAI's 10 s lead over
		// UTC; fail2ban's test data (our reference) does not, so neither
		// do we: the difference is immaterial for mail logs.
		h.tai = int64(v - (1 << 62))
		h.format = tsTAI64N
		i = 25
	default:
		return false
	}
	// A single space, then the host (\S+), then a single space and the rest.
	if i >= n || b[i] != ' ' {
		return false
	}
	i++
	hs := i
	for i < n && !isPerlSpace(b[i]) {
		i++
	}
	if i == hs || i+1 >= n || b[i] != ' ' {
		// No host token followed by something: keep the line if the
		// format can be hostless, with everything after the time as rest.
		h.host = nil
		h.pflogsumm = false
		h.rest = b[hs:]
		return h.format == tsISOSpace || h.format == tsTAI64N || len(h.rest) > 0
	}
	h.host = b[hs:i]
	h.rest = b[i+1:]
	h.pflogsumm = h.format == tsSyslog || h.format == tsRFC3339
	if h.format == tsISOSpace || h.format == tsTAI64N {
		// These formats come from Dovecot's own log file and multilog,
		// which write no host.
		h.rest = b[hs:]
		h.host = nil
	}
	return true
}

// hostless reports whether the token parsed as the host is really the
// program tag of a log file that carries no host name ("Jan 29 09:33:58
// pop3-login: Info: ..."). Host names never end in a colon.
func (h *header) hostless() bool {
	if h.host == nil {
		return true
	}
	if h.host[len(h.host)-1] == ':' {
		return true
	}
	for _, c := range h.host {
		if c == '(' {
			return true
		}
	}
	return false
}

// tag is the parsed program part of a line: "postfix/submission/smtpd[123]: ".
type tag struct {
	name    []byte // "postfix/submission/smtpd", "dovecot", "auth-worker"
	pid     int
	hasPID  bool
	nameEnd int    // index in rest where name ends (pflogsumm's cmd end)
	msg     []byte // after the tag's ": "
}

// parseTag splits rest into program name, pid and message. The name ends at
// '[', ':', '(' or white space; a following "(...)" (Dovecot's
// "auth-worker(123):") is part of the message prefix, so the name stops
// there and the message starts at the name's end.
func parseTag(rest []byte, t *tag) bool {
	*t = tag{}
	i := 0
	n := len(rest)
	for i < n {
		c := rest[i]
		if c == '[' || c == ':' || c == '(' || c == ' ' || c == '\t' {
			break
		}
		i++
	}
	if i == 0 || i == n {
		return false
	}
	t.name = rest[:i]
	t.nameEnd = i
	if rest[i] == '[' {
		j := i + 1
		pid := 0
		for j < n && isDigit(rest[j]) {
			pid = pid*10 + int(rest[j]-'0')
			j++
		}
		if j == i+1 || j >= n || rest[j] != ']' {
			return false
		}
		t.pid, t.hasPID = pid, true
		i = j + 1
		if i == n {
			return false
		}
	}
	if rest[i] == '(' {
		// "auth-worker(304): pam(...)": the parenthesised part stays
		// with the message so that Dovecot parsing sees it.
		t.msg = rest[i:]
		return true
	}
	if i+1 < n && rest[i] == ':' && rest[i+1] == ' ' {
		t.msg = rest[i+2:]
		return true
	}
	if i+1 == n && rest[i] == ':' {
		t.msg = rest[n:]
		return true
	}
	return false
}

// stripSolarisID removes the "[ID 123456 mail.info] " that Solaris syslog
// inserts after the tag, as pflogsumm does.
func stripSolarisID(msg []byte) []byte {
	if len(msg) < 6 || msg[0] != '[' || msg[1] != 'I' || msg[2] != 'D' || msg[3] != ' ' {
		return msg
	}
	j := 4
	for j < len(msg) && isDigit(msg[j]) {
		j++
	}
	if j == 4 || j >= len(msg) || msg[j] != ' ' {
		return msg
	}
	k := bytes.IndexByte(msg[j:], ']')
	if k <= 1 || j+k+1 >= len(msg) || msg[j+k+1] != ' ' {
		return msg
	}
	return msg[j+k+2:]
}

// firstColonToken implements pflogsumm's ".*?: ([^:\s]+)": the token after
// the first ": " that is followed by a character other than ':' or space.
// It also returns where that token starts.
func firstColonToken(s []byte) ([]byte, int) {
	base := 0
	// Fast path for the usual "[pid]: token".
	if len(s) > 3 && s[0] == '[' {
		j := 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		stop := &tokenStop
		if j+3 < len(s) && s[j] == ']' && s[j+1] == ':' && s[j+2] == ' ' && !stop[s[j+3]] {
			k := j + 4
			for k < len(s) && !stop[s[k]] {
				k++
			}
			return s[j+3 : k], j + 3
		}
	}
	for {
		i := bytes.Index(s, colonSpace)
		if i < 0 || i+2 >= len(s) {
			return nil, 0
		}
		s = s[i+2:]
		base += i + 2
		if !tokenStop[s[0]] {
			j := 1
			for j < len(s) && !tokenStop[s[j]] {
				j++
			}
			return s[:j], base
		}
		// The character after ": " was ':' or space; the lazy ".*?"
		// moves on to the next ": ", which may start right here.
	}
}

var colonSpace = []byte(": ")
