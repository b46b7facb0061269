package maillog

import (
	"strings"
)

// doveMsg is a Dovecot message split into its prefix and body.
type doveMsg struct {
	service string // imap-login, auth, auth-worker, imap, lmtp, ...
	parens  string // what followed the service in parentheses: user, pid, "user,ip,..."
	body    string // after the prefix and level
	level   Level
	pamUnix bool // a pam_unix(dovecot:auth) line logged under another ident
}

// dovecotServices are the process names Dovecot writes in its own log file
// (no syslog ident), used to recognise hostless lines.
var dovecotServices = map[string]bool{
	"imap-login": true, "pop3-login": true, "submission-login": true, "managesieve-login": true,
	"auth": true, "auth-worker": true, "imap": true, "pop3": true, "lmtp": true, "lda": true,
	"submission": true, "managesieve": true, "master": true, "config": true, "doveadm": true,
	"indexer": true, "indexer-worker": true, "dict": true, "anvil": true, "log": true, "stats": true,
	"quota-status": true, "replicator": true, "dsync": true,
}

// dovecotTag recognises a Dovecot line from its tag and message, or
// returns nil.
func dovecotTag(name, msg []byte, hostless bool) *doveMsg {
	n := string(name)
	var m string
	switch {
	case n == "dovecot":
		m = string(msg)
	case n == "dovecot-auth":
		m = "auth: " + string(msg)
	case strings.HasPrefix(n, "dovecot-"):
		m = n[len("dovecot-"):] + ": " + string(msg)
	case n == "auth" && strings.Contains(string(msg), "(dovecot:auth)"):
		m = "auth: " + string(msg)
	case hostless && dovecotServices[n]:
		if len(msg) > 0 && msg[0] == '(' {
			m = n + string(msg)
		} else {
			m = n + ": " + string(msg)
		}
	default:
		return nil
	}
	for strings.HasPrefix(m, "dovecot: ") {
		m = m[len("dovecot: "):]
	}
	d := &doveMsg{}
	// service, then "(...)" and "<...>" groups, then ": ".
	i := 0
	for i < len(m) && (isWord(m[i]) || m[i] == '-') {
		i++
	}
	d.service = m[:i]
	j := i
	if j < len(m) && m[j] == '(' {
		if k := strings.IndexByte(m[j:], ')'); k >= 0 {
			d.parens = m[j+1 : j+k]
			j += k + 1
		}
	}
	for j < len(m) && m[j] == '<' {
		k := strings.IndexByte(m[j:], '>')
		if k < 0 {
			break
		}
		j += k + 1
	}
	if strings.HasPrefix(m[j:], ": ") {
		m = m[j+2:]
	} else if i == 0 {
		return nil
	}
	for _, l := range []struct {
		p string
		l Level
	}{{"Info: ", LevelInfo}, {"Warning: ", LevelWarning}, {"Error: ", LevelError}, {"Fatal: ", LevelFatal}, {"Panic: ", LevelPanic}, {"Debug: ", LevelNone}} {
		if strings.HasPrefix(m, l.p) {
			d.level = l.l
			m = m[len(l.p):]
			break
		}
	}
	d.body = m
	d.pamUnix = strings.HasPrefix(m, "pam_unix(dovecot:")
	return d
}

// authPhrases mark a failed password check in auth and auth-worker lines.
var authPhrases = []string{"unknown user", "Password mismatch", "password mismatch", "pam_authenticate() failed", "invalid credentials", "Authentication failure"}

// fill interprets the message for e.
func (d *doveMsg) fill(e *Entry, raw string) {
	e.Instance = "dovecot"
	e.Service = d.service
	e.Level = d.level
	e.Message = d.body
	e.Event = EventOther
	b := d.body
	switch {
	case d.pamUnix:
		if strings.Contains(b, "authentication failure") {
			e.Event = EventAuthFailure
			e.Client.IP = spaceKV(b, "rhost=", " ")
			e.SASLUsername = spaceKV(b, "user=", " ")
		}
	case strings.HasSuffix(d.service, "-login"):
		switch {
		case strings.HasPrefix(b, "Login: "):
			e.Event = EventLogin
		case strings.Contains(b, "(auth failed") || strings.Contains(b, "(auth_failed)") ||
			strings.Contains(b, "(tried to use dis") || strings.Contains(b, "(proxy dest auth failed)"):
			e.Event = EventAuthFailure
		case strings.Contains(b, "(no auth attempts") || strings.Contains(b, "(no_auth_attempts)") ||
			strings.Contains(b, "(disconnected before auth was ready") || strings.Contains(b, "(client didn't finish SASL auth") ||
			strings.Contains(b, "(disconnected during TLS handshake)") || strings.Contains(b, "(tls_handshake_not_finished)"):
			e.Event = EventLoginAborted
		}
		if e.Event != EventOther {
			e.SASLUsername = spaceKV(b, "user=<", ">")
			e.SASLMethod = spaceKV(b, "method=", ",")
			e.Client.IP = spaceKV(b, "rip=", ",")
		}
	case d.service == "auth" || d.service == "auth-worker":
		at := -1
		for _, p := range authPhrases {
			if i := strings.Index(b, p); i >= 0 && (at < 0 || i < at) {
				at = i
			}
		}
		if at < 0 {
			return
		}
		e.Event = EventAuthFailure
		e.Detail = strings.TrimSpace(b[at:])
		// The last "driver(user,ip,...)" before the phrase names them;
		// Dovecot 2.4 puts them in the prefix: "auth(user,ip,...)".
		group := ""
		if k := strings.LastIndex(b[:at], "): "); k >= 0 {
			if o := strings.LastIndexByte(b[:k], '('); o >= 0 && strings.IndexByte(b[o:k], ',') >= 0 {
				group = b[o+1 : k]
			}
		}
		if group == "" && strings.IndexByte(d.parens, ',') >= 0 {
			group = d.parens
		}
		if group != "" {
			parts := strings.Split(group, ",")
			e.SASLUsername = parts[0]
			if len(parts) > 1 && looksLikeIP(parts[1]) {
				e.Client.IP = parts[1]
			}
		}
	case d.service == "lmtp" || d.service == "lda":
		switch {
		case strings.Contains(b, "saved mail to "):
			e.Event = EventDelivery
			e.Status = StatusSent
		case strings.Contains(b, "save failed") || strings.Contains(b, "rejected"):
			e.Event = EventDelivery
			e.Status = StatusDeferred
		}
		if e.Event == EventDelivery {
			e.SASLUsername = d.parens
			if strings.HasPrefix(b, "msgid=<") {
				if k := strings.IndexByte(b, '>'); k > 0 {
					e.MessageID = b[len("msgid=<"):k]
				}
			}
		}
	}
}

// spaceKV returns the value of key (at the start of s or after a space or
// comma) up to end.
func spaceKV(s, key, end string) string {
	for off := 0; ; {
		i := strings.Index(s[off:], key)
		if i < 0 {
			return ""
		}
		i += off
		off = i + 1
		if i > 0 && s[i-1] != ' ' && s[i-1] != ',' {
			continue
		}
		v := s[i+len(key):]
		if j := strings.Index(v, end); j >= 0 {
			v = v[:j]
		}
		return strings.TrimSpace(v)
	}
}

func looksLikeIP(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isHexDotColon(s[i]) {
			return false
		}
	}
	return strings.ContainsAny(s, ".:")
}
