package maillog

import (
	"strconv"
	"strings"
)

// isQueueID reports whether tok looks like a Postfix queue id: NOQUEUE,
// a short id (upper-case hex) or a long id (enable_long_queue_ids:
// letters and digits, with at least one digit).
func isQueueID(tok string) bool {
	if tok == "NOQUEUE" {
		return true
	}
	if len(tok) < 5 || len(tok) > 32 {
		return false
	}
	hex, digit, upper := true, false, false
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'A' && c <= 'F':
			upper = true
		case c >= 'G' && c <= 'Z':
			upper = true
			hex = false
		case c >= 'a' && c <= 'z':
			hex = false
		default:
			return false
		}
	}
	if hex {
		return true
	}
	return digit && upper
}

func levelOf(tok string) (Level, bool) {
	switch tok {
	case "warning":
		return LevelWarning, true
	case "fatal":
		return LevelFatal, true
	case "panic":
		return LevelPanic, true
	case "error":
		return LevelError, true
	case "info":
		return LevelInfo, true
	}
	return "", false
}

// parsePostfix interprets the message of a Postfix line.
func parsePostfix(e *Entry, msg string) {
	e.Event = EventOther
	body := msg
	// Up to two prefixes: queue id and level, in either order
	// ("ABC: warning: header ...", "warning: ABC: sender_canonical_maps ...").
	for k := 0; k < 2; k++ {
		i := strings.Index(body, ": ")
		if i <= 0 {
			break
		}
		tok := body[:i]
		if l, ok := levelOf(tok); ok && e.Level == "" {
			e.Level = l
			body = body[i+2:]
			continue
		}
		if e.QueueID == "" && isQueueID(tok) {
			e.QueueID = tok
			body = body[i+2:]
			continue
		}
		break
	}
	if body == "removed" && e.QueueID == "" {
		// "removed" alone on a line with no id is not a queue event.
		e.Message = body
		return
	}
	e.Message = stripKVTail(body)
	switch {
	case e.Level == LevelWarning && parseSASLFailure(e, body):
	case strings.HasPrefix(body, "client="):
		e.Event = EventClient
		parseKVList(e, body, ", ")
	case strings.HasPrefix(body, "message-id=") || strings.HasPrefix(body, "resent-message-id="):
		e.Event = EventMessageID
		v := body[strings.IndexByte(body, '=')+1:]
		if len(v) >= 2 && v[0] == '<' && v[len(v)-1] == '>' {
			v = v[1 : len(v)-1]
		}
		e.MessageID = v
	case strings.HasPrefix(body, "from=<") && e.QueueID != "":
		parseKVList(e, body, ", ")
		if e.Status == StatusExpired {
			e.Event = EventExpired
		} else {
			e.Event = EventQueued
		}
	case (strings.HasPrefix(body, "to=") || strings.HasPrefix(body, "orig_to=")) && strings.Contains(body, "status="):
		parseDelivery(e, body)
	case body == "removed":
		e.Event = EventRemoved
	case strings.HasPrefix(body, "uid=") || strings.HasPrefix(body, "sender="):
		e.Event = EventPickup
		for _, f := range strings.Fields(body) {
			if v, ok := strings.CutPrefix(f, "from=<"); ok {
				e.From = strings.TrimSuffix(v, ">")
			}
		}
	case strings.Contains(body, " notification: "):
		i := strings.Index(body, " notification: ")
		e.Event = EventNotification
		e.Detail = body[:i+len(" notification")]
		e.RelatedQueueID = body[i+len(" notification: "):]
	case parseAction(e, body):
	case strings.HasPrefix(body, "connect from "):
		e.Event = EventConnect
		e.Client, _ = parseEndpoint(body[len("connect from "):])
	case strings.HasPrefix(body, "disconnect from "):
		e.Event = EventDisconnect
		c := body[len("disconnect from "):]
		ep, n := parseEndpoint(c)
		e.Client = ep
		e.Commands = strings.TrimSpace(c[n:])
	case strings.HasPrefix(body, "CONNECT from "):
		e.Event = EventConnect
		c := body[len("CONNECT from "):]
		e.Client, _ = parseEndpoint(c)
	case strings.HasPrefix(body, "DISCONNECT "):
		e.Event = EventDisconnect
		e.Client, _ = parseEndpoint(body[len("DISCONNECT "):])
	case parsePostscreen(e, body):
	case strings.Contains(body, "TLS connection established "):
		parseTLS(e, body)
	case strings.HasPrefix(body, "connect to "):
		e.Event = EventConnectFailed
		c := body[len("connect to "):]
		ep, n := parseEndpoint(c)
		e.Relay = ep
		e.Detail = strings.TrimPrefix(c[n:], ": ")
	case strings.HasPrefix(body, "lost connection with ") || strings.HasPrefix(body, "conversation with "):
		e.Event = EventLostConnection
		e.Detail = "lost connection"
		c := body[strings.Index(body, "with ")+5:]
		if strings.HasPrefix(body, "conversation") {
			e.Event = EventTimeout
			e.Detail = "timed out"
		}
		ep, n := parseEndpoint(c)
		e.Relay = ep
		rest := c[n:]
		if i := strings.Index(rest, " while "); i >= 0 {
			e.Stage = rest[i+len(" while "):]
		}
	case strings.HasPrefix(body, "host ") && strings.Contains(body, " said: "):
		e.Event = EventRemoteReply
		c := body[len("host "):]
		ep, _ := parseEndpoint(c)
		e.Relay = ep
		setRemoteReply(e, c[strings.Index(c, " said: ")+len(" said: "):])
	case strings.HasPrefix(body, "host ") && strings.Contains(body, " refused to talk to me: "):
		e.Event = EventRemoteReply
		c := body[len("host "):]
		e.Relay, _ = parseEndpoint(c)
		e.Reply = c[strings.Index(c, " refused to talk to me: ")+len(" refused to talk to me: "):]
	case strings.HasPrefix(body, "SASL authentication failed; server ") && strings.Contains(body, " said: "):
		e.Event = EventRemoteReply
		e.Detail = "SASL authentication failed"
		c := body[len("SASL authentication failed; server "):]
		e.Relay, _ = parseEndpoint(c)
		setRemoteReply(e, c[strings.Index(c, " said: ")+len(" said: "):])
	case strings.HasPrefix(body, "SSL_connect error to ") || strings.HasPrefix(body, "certificate verification failed for "):
		e.Event = EventTLSError
		c := body[strings.Index(body, "o ")+2:]
		if strings.HasPrefix(body, "certificate") {
			c = body[len("certificate verification failed for "):]
		}
		ep, n := parseEndpoint(c)
		e.Relay = ep
		e.Detail = strings.TrimPrefix(c[n:], ": ")
	case strings.HasPrefix(body, "statistics: ") && strings.Contains(body, " for ("):
		// anvil: "max connection rate 1/60s for (smtpd:192.0.2.1) at ..."
		c := body[strings.Index(body, " for (")+len(" for ("):]
		if j := strings.IndexByte(c, ')'); j >= 0 {
			c = c[:j]
			svc, addr, _ := strings.Cut(c, ":")
			if looksLikeIP(svc) && strings.Contains(svc, ".") {
				// an inet listener "127.0.0.1:2525:address"
				_, addr, _ = strings.Cut(addr, ":")
			}
			e.Client.IP = addr
		}
	case strings.HasPrefix(body, "addr ") && strings.Contains(body, " listed by domain "):
		// dnsblog
		e.Client.IP = body[len("addr "):strings.Index(body, " listed by domain ")]
	case parseSMTPDProblem(e, body):
	default:
		parseWarningClient(e, body)
		if e.Relay.IsZero() && (e.Service == "smtp" || e.Service == "lmtp") {
			// "enabling PIX workarounds: ... for host[ip]:25" and kin.
			if i := strings.LastIndex(body, " for "); i >= 0 {
				if ep, n := parseEndpoint(body[i+5:]); n > 0 {
					e.Relay = ep
				}
			}
		}
	}
}

// setRemoteReply stores a remote server's reply, moving "(in reply to X
// command)" into Stage.
func setRemoteReply(e *Entry, r string) {
	if i := strings.LastIndex(r, " (in reply to "); i >= 0 && strings.HasSuffix(r, " command)") {
		e.Stage = r[i+len(" (in reply to ") : len(r)-len(" command)")]
		r = r[:i]
	}
	e.Reply = r
}

// stripKVTail removes Postfix's "; from=<...> to=<...> proto=... helo=<...>"
// from the end of a message.
func stripKVTail(s string) string {
	if i := kvTailIndex(s); i >= 0 {
		return s[:i]
	}
	return s
}

func kvTailIndex(s string) int {
	for _, m := range []string{"; from=<", "; to=<", "; proto=", "; helo=<"} {
		if i := strings.LastIndex(s, m); i >= 0 {
			return i
		}
	}
	return -1
}

// parseKVList reads "k=v, k=v" (or space-separated) fields into e.
func parseKVList(e *Entry, s, sep string) {
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return
		}
		key := s[:eq]
		s = s[eq+1:]
		var val string
		if strings.HasPrefix(s, "<") {
			// Addresses may contain the separator; they end at the '>'
			// followed by the separator or the end.
			end := -1
			for off := 0; ; {
				j := strings.IndexByte(s[off:], '>')
				if j < 0 {
					break
				}
				j += off
				if j+1 == len(s) || strings.HasPrefix(s[j+1:], sep) || s[j+1] == ' ' || s[j+1] == ',' {
					end = j
					break
				}
				off = j + 1
			}
			if end < 0 {
				val, s = s[1:], ""
			} else {
				val, s = s[1:end], s[end+1:]
			}
		} else {
			j := strings.Index(s, sep)
			if j < 0 {
				val, s = s, ""
			} else {
				val, s = s[:j], s[j:]
			}
		}
		s = strings.TrimPrefix(s, sep)
		s = strings.TrimLeft(s, " ,")
		setField(e, key, val)
	}
}

func setField(e *Entry, key, val string) {
	switch key {
	case "from":
		e.From = val
	case "to":
		e.To = val
	case "orig_to":
		e.OrigTo = val
	case "relay":
		e.Relay = parseRelay(val)
	case "delay":
		e.Delay, _ = strconv.ParseFloat(val, 64)
	case "delays":
		if d, ok := ParseDelays(val); ok {
			e.Delays = &d
		}
	case "dsn":
		e.DSN = val
	case "tls":
		e.TLSFeatures = val
	case "status":
		// "status=expired, returned to sender"
		e.Status = Status(val)
	case "size":
		e.Size, _ = strconv.ParseInt(val, 10, 64)
	case "nrcpt":
		v := val
		if i := strings.IndexByte(v, ' '); i >= 0 {
			v = v[:i]
		}
		e.NRcpt, _ = strconv.Atoi(v)
	case "client":
		e.Client, _ = parseEndpoint(val)
	case "sasl_method":
		e.SASLMethod = val
	case "sasl_username":
		e.SASLUsername = val
	case "message-id":
		e.MessageID = val
	case "proto":
		if e.Reject != nil {
			e.Reject.Proto = val
		}
	case "helo":
		if e.Reject != nil {
			e.Reject.Helo = val
		}
	}
}

// ParseDelays parses Postfix's "delays=a/b/c/d" value.
func ParseDelays(s string) (Delays, bool) {
	var v [4]float64
	for i := 0; i < 4; i++ {
		j := strings.IndexByte(s, '/')
		part := s
		if i < 3 {
			if j < 0 {
				return Delays{}, false
			}
			part, s = s[:j], s[j+1:]
		} else if j >= 0 {
			return Delays{}, false
		}
		f, err := strconv.ParseFloat(part, 64)
		if err != nil {
			return Delays{}, false
		}
		v[i] = f
	}
	return Delays{v[0], v[1], v[2], v[3]}, true
}

// parseRelay reads a relay= value: "host[ip]:port", "host[private/x]",
// "local", "none".
func parseRelay(s string) Endpoint {
	if ep, n := parseEndpoint(s); n > 0 && (ep.IP != "" || ep.Service != "") {
		return ep
	}
	return Endpoint{Host: s}
}

// parseEndpoint reads "host[addr]:port", "[addr]:port" or "host[addr]" at
// the start of s and returns how many bytes it used.
func parseEndpoint(s string) (Endpoint, int) {
	var ep Endpoint
	i := strings.IndexByte(s, '[')
	if i < 0 || strings.ContainsAny(s[:i], " ,;") {
		return ep, 0
	}
	j := strings.IndexByte(s[i:], ']')
	if j < 0 {
		return ep, 0
	}
	j += i
	ep.Host = s[:i]
	inner := s[i+1 : j]
	if strings.ContainsAny(inner, "/") && !strings.ContainsAny(inner, ":.") || strings.HasPrefix(inner, "private/") || strings.HasPrefix(inner, "public/") {
		ep.Service = inner
	} else {
		ep.IP = strings.TrimPrefix(inner, "IPv6:")
	}
	n := j + 1
	if n+1 < len(s) && s[n] == ':' && isDigit(s[n+1]) {
		k := n + 1
		for k < len(s) && isDigit(s[k]) {
			k++
		}
		ep.Port, _ = strconv.Atoi(s[n+1 : k])
		n = k
	}
	return ep, n
}

// parseDelivery reads "to=<..>, orig_to=<..>, relay=.., delay=.., delays=..,
// dsn=.., status=sent (reply)".
func parseDelivery(e *Entry, body string) {
	e.Event = EventDelivery
	i := strings.Index(body, "status=")
	parseKVList(e, strings.TrimRight(body[:i], ", "), ", ")
	st := body[i+len("status="):]
	j := strings.IndexByte(st, ' ')
	if j < 0 {
		e.Status = Status(st)
		return
	}
	e.Status = Status(st[:j])
	r := st[j+1:]
	if strings.HasPrefix(r, "(") && strings.HasSuffix(r, ")") {
		r = r[1 : len(r)-1]
	}
	e.Reply = r
	if k := strings.Index(r, "queued as "); k >= 0 {
		id := r[k+len("queued as "):]
		if m := strings.IndexAny(id, " ,;)"); m >= 0 {
			id = id[:m]
		}
		if isQueueID(id) {
			e.RelatedQueueID = id
		}
	}
}

// parseSASLFailure reads "host[ip](:port)?: SASL LOGIN authentication
// failed: reason(, sasl_username=user)?".
func parseSASLFailure(e *Entry, body string) bool {
	i := strings.Index(body, "]: SASL ")
	if i < 0 {
		j := strings.Index(body, ": SASL ")
		if j < 0 {
			return false
		}
		i = j - 1 // "unknown[1.2.3.4]:55729: SASL": port form
		if k := strings.LastIndexByte(body[:j], ']'); k >= 0 {
			i = k
		}
	}
	ep, n := parseEndpoint(body)
	if n == 0 || ep.IP == "" {
		return false
	}
	rest := strings.TrimPrefix(body[n:], ": ")
	const failed = " authentication failed"
	f := strings.Index(rest, failed)
	if !strings.HasPrefix(rest, "SASL ") || f < 0 {
		return false
	}
	e.Client = ep
	if f >= len("SASL ") { // "SASL authentication failed" names no method
		e.SASLMethod = rest[len("SASL "):f]
	}
	reason := strings.TrimPrefix(strings.TrimPrefix(rest[f+len(failed):], ":"), " ")
	if k := strings.LastIndex(reason, ", sasl_username="); k >= 0 {
		e.SASLUsername = reason[k+len(", sasl_username="):]
		reason = reason[:k]
	}
	e.Detail = reason
	e.Message = rest
	e.Event = EventAuthFailure
	if strings.Contains(reason, "Connection lost to authentication server") {
		e.Event = EventAuthUnavailable
	}
	return true
}

var actions = []string{
	"proxy-accept", "proxy-reject", "reject_warning", "reject", "hold", "discard", "filter", "redirect", "defer_if_permit", "defer_if_reject", "defer",
	"milter-reject", "milter-discard", "milter-hold", "milter-header-redirect", "milter-redirect",
	"prepend", "replace", "strip", "bcc", "warning", "info",
}

// parseAction reads access-control and content actions:
//
//	reject: RCPT from host[ip]: 550 5.1.1 <a@b>: Recipient address rejected: ...; from=<..> to=<..> proto=ESMTP helo=<..>
//	reject: header Subject: x from host[ip]; from=<..> to=<..> proto=ESMTP helo=<..>: 5.7.1 text
func parseAction(e *Entry, body string) bool {
	var action string
	for _, a := range actions {
		if strings.HasPrefix(body, a) && strings.HasPrefix(body[len(a):], ": ") {
			action = a
			break
		}
	}
	if action == "" && (e.Level == LevelWarning || e.Level == LevelInfo) && isContentStage(body) {
		// cleanup's WARN and INFO: "ABC: warning: header Subject: ..."
		action = string(e.Level)
		body = action + ": " + body
	}
	if action == "" {
		return false
	}
	r := &Reject{Action: action}
	e.Reject = r
	e.Event = EventReject
	s := body[len(action)+2:]
	if isContentStage(s) {
		sp := strings.IndexByte(s, ' ')
		r.Stage = s[:sp]
		s = s[sp+1:]
		tail := kvTailIndex(s)
		text := s
		if tail >= 0 {
			text = s[:tail]
			kv := s[tail+2:]
			// A trailing ": text" after helo=<...> is the reply or the
			// redirect target.
			if k := strings.LastIndex(kv, ">: "); k >= 0 {
				r.Text = kv[k+3:]
				kv = kv[:k+1]
			}
			parseKVList(e, kv, " ")
		}
		if k := strings.LastIndex(text, " from "); k >= 0 {
			if ep, n := parseEndpoint(text[k+6:]); n > 0 && k+6+n == len(text) {
				e.Client = ep
				text = text[:k]
			}
		}
		if r.Stage == "END-OF-MESSAGE" && strings.HasPrefix(text, "from ") {
			// milter-reject: END-OF-MESSAGE from host[ip]: 5.7.1 text
			if ep, n := parseEndpoint(text[5:]); n > 0 {
				e.Client = ep
				parseReply(r, strings.TrimPrefix(text[5+n:], ": "))
				e.Message = stripKVTail(body)
				return true
			}
		}
		if r.Text == "" {
			r.Text = text
		} else {
			r.Data = text
		}
		return true
	}
	// "STAGE from client: reply; kv", or for smtpd_proxy_filter
	// "proxy-accept: STAGE: reply; kv".
	sp := strings.IndexByte(s, ' ')
	if sp < 0 {
		return true
	}
	r.Stage = s[:sp]
	s = s[sp+1:]
	if strings.HasSuffix(r.Stage, ":") {
		r.Stage = strings.TrimSuffix(r.Stage, ":")
	} else {
		if !strings.HasPrefix(s, "from ") {
			return true
		}
		s = s[len("from "):]
		ep, n := parseEndpoint(s)
		e.Client = ep
		s = strings.TrimPrefix(s[n:], ":")
		s = strings.TrimPrefix(s, " ")
	}
	reply := s
	if tail := kvTailIndex(s); tail >= 0 {
		reply = s[:tail]
		sep := " "
		if strings.Contains(s[tail:], ">, ") {
			sep = ", " // postscreen
		}
		parseKVList(e, s[tail+2:], sep)
	}
	parseReply(r, reply)
	return true
}

func isContentStage(s string) bool {
	return strings.HasPrefix(s, "header ") || strings.HasPrefix(s, "body ") || strings.HasPrefix(s, "END-OF-MESSAGE ")
}

// parseReply splits "550 5.1.1 <data>: text" into its parts.
func parseReply(r *Reject, s string) {
	if len(s) >= 4 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && s[3] == ' ' {
		r.Code, _ = strconv.Atoi(s[:3])
		s = s[4:]
	}
	if n := enhancedLen(s); n > 0 {
		r.Enhanced = s[:n]
		s = strings.TrimPrefix(s[n:], " ")
	}
	if strings.HasPrefix(s, "<") {
		if j := strings.Index(s, ">: "); j >= 0 {
			r.Data = s[1:j]
			s = s[j+3:]
		}
	} else if strings.HasPrefix(s, ": ") {
		s = s[2:]
	}
	// "Service unavailable; Client host [1.2.3.4] blocked using zen...":
	// the DNSBL name is the reason, the listed host the data.
	if i := strings.Index(s, "] blocked using "); i >= 0 && r.Data == "" {
		if j := strings.LastIndexByte(s[:i], '['); j >= 0 {
			r.Data = s[j+1 : i]
			s = s[i+2:]
		}
	}
	r.Text = s
}

// enhancedLen returns the length of an RFC 3463 code at the start of s.
func enhancedLen(s string) int {
	if len(s) < 5 || s[0] < '2' || s[0] > '5' || s[1] != '.' {
		return 0
	}
	i := 2
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == 2 || i >= len(s) || s[i] != '.' {
		return 0
	}
	j := i + 1
	for j < len(s) && isDigit(s[j]) {
		j++
	}
	if j == i+1 || j < len(s) && s[j] != ' ' {
		return 0
	}
	return j
}

var psAccess = []string{"PASS NEW", "PASS OLD", "WHITELISTED", "BLACKLISTED", "WHITELIST VETO", "ALLOWLISTED", "DENYLISTED", "ALLOWLIST VETO"}

var psViolations = []string{"PREGREET", "HANGUP", "COMMAND TIME LIMIT", "COMMAND COUNT LIMIT", "COMMAND LENGTH LIMIT",
	"NON-SMTP COMMAND", "COMMAND PIPELINING", "BARE NEWLINE", "DNSBL"}

// postscreenViolation returns the name of a postscreen violation that msg
// starts with, or "".
func postscreenViolation(msg []byte) string {
	for _, v := range psViolations {
		if hasPrefix(msg, v) && len(msg) > len(v) && msg[len(v)] == ' ' {
			return v
		}
	}
	return ""
}

func parsePostscreen(e *Entry, body string) bool {
	for _, a := range psAccess {
		if strings.HasPrefix(body, a+" [") {
			e.Event = EventPostscreen
			e.Detail = a
			e.Client, _ = parseEndpoint(body[len(a)+1:])
			return true
		}
	}
	v := postscreenViolation([]byte(body))
	if v == "" {
		return false
	}
	e.Event = EventViolation
	e.Detail = v
	if i := strings.Index(body, " ["); i >= 0 {
		e.Client, _ = parseEndpoint(body[i+1:])
	}
	if i := strings.Index(body, " after "); i >= 0 && v != "HANGUP" && v != "PREGREET" {
		st := body[i+len(" after "):]
		if j := strings.IndexAny(st, ": "); j >= 0 {
			st = st[:j]
		}
		e.Stage = st
	}
	return true
}

// parseTLS reads "Trusted TLS connection established to host[ip]:25:
// TLSv1.3 with cipher X (256/256 bits)".
func parseTLS(e *Entry, body string) {
	i := strings.Index(body, " TLS connection established ")
	if i < 0 {
		return
	}
	e.Event = EventTLS
	t := &TLSInfo{Trust: body[:i]}
	e.TLS = t
	s := body[i+len(" TLS connection established "):]
	var peer *Endpoint
	switch {
	case strings.HasPrefix(s, "from "):
		peer, s = &e.Client, s[5:]
	case strings.HasPrefix(s, "to "):
		peer, s = &e.Relay, s[3:]
	default:
		return
	}
	ep, n := parseEndpoint(s)
	*peer = ep
	s = strings.TrimPrefix(s[n:], ": ")
	if j := strings.Index(s, " with cipher "); j >= 0 {
		t.Protocol = s[:j]
		c := s[j+len(" with cipher "):]
		if k := strings.IndexByte(c, ' '); k >= 0 {
			t.Cipher = c[:k]
			if strings.HasPrefix(c[k:], " (") {
				if m := strings.Index(c[k:], " bits)"); m >= 0 {
					t.Bits = c[k+2 : k+m]
				}
			}
		} else {
			t.Cipher = c
		}
	}
}

// parseSMTPDProblem reads "lost connection after DATA (0 bytes) from
// host[ip]" and its kin, and "SSL_accept error from host[ip]: -1".
func parseSMTPDProblem(e *Entry, body string) bool {
	if strings.HasPrefix(body, "SSL_accept error from ") {
		e.Event = EventTLSError
		e.Detail = "SSL_accept error"
		e.Client, _ = parseEndpoint(body[len("SSL_accept error from "):])
		return true
	}
	i := strings.Index(body, " after ")
	if i <= 0 {
		return false
	}
	phrase := body[:i]
	s := body[i+len(" after "):]
	sp := strings.IndexByte(s, ' ')
	if sp <= 0 {
		return false
	}
	stage := s[:sp]
	s = s[sp+1:]
	if strings.HasPrefix(s, "(") {
		if j := strings.Index(s, ") "); j >= 0 {
			s = s[j+2:]
		}
	}
	if !strings.HasPrefix(s, "from ") {
		return false
	}
	ep, n := parseEndpoint(s[5:])
	if n == 0 {
		return false
	}
	e.Client = ep
	e.Stage = stage
	e.Detail = phrase
	switch phrase {
	case "lost connection":
		e.Event = EventLostConnection
	case "timeout":
		e.Event = EventTimeout
	case "too many errors":
		e.Event = EventTooManyErrors
	case "improper command pipelining":
		e.Event = EventPipelining
	default:
		e.Event = EventProtocolError
	}
	return true
}

// parseWarningClient finds the client in free-text warnings:
// "hostname X does not resolve to address Y", "... from host[ip] for
// service smtpd".
func parseWarningClient(e *Entry, body string) {
	if strings.HasPrefix(body, "hostname ") {
		if i := strings.Index(body, " does not resolve to address "); i > 0 {
			ip := body[i+len(" does not resolve to address "):]
			if j := strings.IndexAny(ip, ": "); j >= 0 {
				ip = ip[:j]
			}
			e.Client = Endpoint{Host: body[len("hostname "):i], IP: ip}
			return
		}
	}
	if i := strings.Index(body, " from "); i >= 0 {
		if ep, n := parseEndpoint(body[i+6:]); n > 0 && ep.IP != "" {
			e.Client = ep
		}
	}
}

func isAllDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// saslFailureIP reads "host[ip]: SASL X authentication failed" from the
// text after "warning: " and returns the ip.
func saslFailureIP(s []byte) ([]byte, bool) {
	i := indexBytes(s, "]: SASL ")
	if i < 0 {
		i = indexBytes(s, ": SASL ")
		if i < 0 {
			return nil, false
		}
		// "unknown[192.0.2.237]:55729: SASL": the bracket before the port.
		k := i
		for k > 0 && s[k-1] != ']' {
			k--
		}
		if k == 0 {
			return nil, false
		}
		i = k - 1
	}
	if indexBytes(s[i:], " authentication failed") < 0 {
		return nil, false
	}
	j := i
	for j > 0 && s[j-1] != '[' {
		j--
	}
	if j == 0 {
		return nil, false
	}
	return s[j:i], true
}

func indexBytes(s []byte, sub string) int {
	return strings.Index(string(s), sub)
}
