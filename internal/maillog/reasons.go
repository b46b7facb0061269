package maillog

import (
	"bytes"
	"strings"
)

// The functions here group reasons for the report tables. They are
// mxray's own normalisation (pflogsumm's differs and is not needed for the
// totals): numbers, addresses and hosts that make every line unique are
// cut so that the same cause lands in one row.

func afterLast(s []byte, sep string) []byte {
	if i := lastIndex(s, sep); i >= 0 {
		return s[i+len(sep):]
	}
	return s
}

// lastIndex is bytes.LastIndex for a short separator, without the
// Rabin-Karp set-up that dominates on lines of a hundred bytes.
func lastIndex(s []byte, sep string) int {
	if len(sep) == 0 {
		return len(s)
	}
	c := sep[0]
	for end := len(s) - len(sep) + 1; end > 0; {
		i := bytes.LastIndexByte(s[:end], c)
		if i < 0 {
			return -1
		}
		if string(s[i:i+len(sep)]) == sep {
			return i
		}
		end = i
	}
	return -1
}

// trimReason shortens s to at most n bytes, marking the cut with "...".
func trimReason(s []byte, n int) []byte {
	if len(s) <= n {
		return s
	}
	return append(append([]byte(nil), s[:n-3]...), "..."...)
}

// deferReason is the text in "status=deferred (...)", shortened to what
// the remote said, without the reply code.
func deferReason(rest []byte) []byte {
	i := bytes.Index(rest, []byte(", status=deferred ("))
	if i < 0 {
		return nil
	}
	r := rest[i+len(", status=deferred ("):]
	if j := bytes.IndexByte(r, ')'); j >= 0 {
		r = r[:j]
	}
	return normalizeRemote(r)
}

// bounceReason is the text in "status=bounced (...)".
func bounceReason(rest []byte) []byte {
	i := bytes.Index(rest, []byte(", status=bounced ("))
	if i < 0 {
		return nil
	}
	r := rest[i+len(", status=bounced ("):]
	if j := bytes.LastIndexByte(r, ')'); j >= 0 {
		r = r[:j]
	}
	return normalizeRemote(r)
}

// normalizeRemote reduces "host x[1.2.3.4] said: 450 4.2.0 <a@b>: text
// (in reply to RCPT TO command)" to "4.2.0 text".
func normalizeRemote(r []byte) []byte {
	if i := lastIndex(r, " said: "); i >= 0 {
		r = r[i+len(" said: "):]
	}
	if i := bytes.Index(r, []byte(" (in reply to ")); i >= 0 {
		r = r[:i]
	}
	r = bytes.TrimPrefix(r, []byte("connect to "))
	if len(r) > 4 && isDigit(r[0]) && isDigit(r[1]) && isDigit(r[2]) && (r[3] == ' ' || r[3] == '-') {
		r = r[4:]
	}
	if r2, ok := cutAngle(r); ok {
		r = r2
	}
	// "mx.example.com[192.0.2.1]:25: Connection timed out" -> the reason.
	if i := bytes.Index(r, []byte("]:")); i >= 0 && bytes.IndexByte(r[:i], ' ') < 0 {
		s := r[i+2:]
		for len(s) > 0 && isDigit(s[0]) {
			s = s[1:]
		}
		r = bytes.TrimPrefix(s, []byte(": "))
	}
	return trimReason(r, 80)
}

// cutAngle drops a leading "<something>: " or a "<something>" after an
// enhanced status code.
func cutAngle(r []byte) ([]byte, bool) {
	s := r
	code := []byte(nil)
	if n := enhancedLen(string(s)); n > 0 {
		code, s = s[:n+1], s[n+1:]
	}
	if len(s) > 0 && s[0] == '<' {
		if j := bytes.Index(s, []byte(">: ")); j >= 0 {
			out := append(append([]byte(nil), code...), s[j+3:]...)
			return out, true
		}
	}
	return r, false
}

// smtpdRejectReason returns the SMTP stage and a grouped reason for an
// smtpd/postscreen reject line.
func smtpdRejectReason(rest, kind []byte) (stage, reason []byte) {
	i := bytes.Index(rest, append(append([]byte(nil), kind...), ": "...))
	if i < 0 {
		return nil, nil
	}
	s := rest[i+len(kind)+2:]
	sp := bytes.IndexByte(s, ' ')
	if sp < 0 {
		return s, nil
	}
	stage = s[:sp]
	s = s[sp+1:]
	// "from client[ip]: reply" or "from [ip]:port: reply"
	if j := bytes.Index(s, []byte("]: ")); j >= 0 {
		s = s[j+3:]
	} else if j := bytes.Index(s, []byte("]:")); j >= 0 {
		s = s[j+2:]
		for len(s) > 0 && isDigit(s[0]) {
			s = s[1:]
		}
		s = bytes.TrimPrefix(s, []byte(": "))
	}
	if j := bytes.Index(s, []byte("; from=<")); j >= 0 {
		s = s[:j]
	} else if j := bytes.Index(s, []byte("; to=<")); j >= 0 {
		s = s[:j]
	} else if j := bytes.Index(s, []byte("; proto=")); j >= 0 {
		s = s[:j]
	}
	var r Reject
	parseReply(&r, string(s))
	text := r.Text
	if k := strings.Index(text, "blocked using "); k >= 0 {
		text = text[k:]
		if e := strings.IndexAny(text, ";,"); e >= 0 {
			text = text[:e]
		}
	}
	if k := strings.Index(text, ", ["); k >= 0 {
		text = text[:k]
	}
	if k := strings.IndexByte(text, ';'); k >= 0 {
		text = text[:k]
	}
	if text == "" && r.Enhanced != "" {
		text = r.Enhanced
	}
	return stage, trimReason([]byte(text), 80)
}

// cleanupReason shortens a header/body check's text: the matched header or
// body line without the client and envelope.
func cleanupReason(text []byte) []byte {
	if i := bytes.Index(text, []byte("; from=<")); i >= 0 {
		text = text[:i]
	}
	if i := lastIndex(text, " from "); i >= 0 {
		text = text[:i]
	}
	return trimReason(text, 64)
}

// stripClientPrefix drops a leading "host[addr]: " or "host[addr]:port: "
// so that per-client warnings ("unknown[192.0.2.1]: SASL LOGIN
// authentication failed: ...") group into one row.
func stripClientPrefix(s []byte) []byte {
	i := bytes.IndexByte(s, '[')
	if i < 0 || bytes.IndexByte(s[:i], ' ') >= 0 {
		return s
	}
	j := bytes.IndexByte(s[i:], ']')
	if j < 0 {
		return s
	}
	r := s[i+j+1:]
	if len(r) > 0 && r[0] == ':' && len(r) > 1 && isDigit(r[1]) {
		r = r[1:]
		for len(r) > 0 && isDigit(r[0]) {
			r = r[1:]
		}
	}
	if !bytes.HasPrefix(r, colonSpace) {
		return s
	}
	return r[2:]
}
