package maillog

import (
	"strconv"
	"strings"
	"time"
)

// Daemon says which mail program wrote a line.
type Daemon string

const (
	DaemonNone    Daemon = ""        // the line has no recognisable timestamp and program
	DaemonPostfix Daemon = "postfix" // any Postfix instance and service
	DaemonDovecot Daemon = "dovecot" // Dovecot, by syslog or in its own log file
	DaemonOther   Daemon = "other"   // another program (amavis, opendkim, ...)
)

// Level is the severity a daemon gave a message.
type Level string

const (
	LevelNone    Level = ""        // no explicit level (Postfix's normal "info" lines)
	LevelInfo    Level = "info"    // "info:" (Postfix header_checks INFO, Dovecot "Info:")
	LevelWarning Level = "warning" // "warning:" — something is wrong but work goes on
	LevelError   Level = "error"   // "error:" (Postfix), "Error:" (Dovecot)
	LevelFatal   Level = "fatal"   // the process gave up
	LevelPanic   Level = "panic"   // a software bug was detected
)

// Event is what a line reports.
type Event string

const (
	EventUnparsed        Event = "unparsed"         // no timestamp or program could be read
	EventOther           Event = "other"            // a message mxray does not model; see Entry.Message
	EventConnect         Event = "connect"          // smtpd "connect from", postscreen "CONNECT from"
	EventDisconnect      Event = "disconnect"       // smtpd "disconnect from", postscreen "DISCONNECT"
	EventClient          Event = "client"           // smtpd accepted a message: queue id and client
	EventPickup          Event = "pickup"           // a locally submitted message entered the queue
	EventMessageID       Event = "message-id"       // cleanup logged the Message-ID
	EventQueued          Event = "queued"           // qmgr: from, size, nrcpt (queue active)
	EventDelivery        Event = "delivery"         // a delivery attempt: to, relay, delays, dsn, status
	EventExpired         Event = "expired"          // the message stayed too long in the queue
	EventRemoved         Event = "removed"          // the message left the queue
	EventNotification    Event = "notification"     // bounce/defer/trace created a DSN; see RelatedQueueID
	EventReject          Event = "reject"           // an access or content action: see Entry.Reject
	EventAuthFailure     Event = "auth-failure"     // a failed SASL (Postfix) or login (Dovecot) attempt
	EventAuthUnavailable Event = "auth-unavailable" // authentication failed because the auth server was unreachable
	EventLogin           Event = "login"            // a successful Dovecot login
	EventLoginAborted    Event = "login-aborted"    // a Dovecot client left before trying to authenticate
	EventLostConnection  Event = "lost-connection"  // the peer went away; Stage says when
	EventTimeout         Event = "timeout"          // the peer was too slow; Stage says when
	EventTooManyErrors   Event = "too-many-errors"  // smtpd hung up on a client that made too many errors
	EventPipelining      Event = "pipelining"       // improper command pipelining
	EventTLSError        Event = "tls-error"        // the TLS handshake failed
	EventProtocolError   Event = "protocol-error"   // another "... after STAGE from client" problem
	EventTLS             Event = "tls"              // a TLS connection was established; see Entry.TLS
	EventConnectFailed   Event = "connect-failed"   // the SMTP client could not connect to Relay
	EventRemoteReply     Event = "remote-reply"     // the remote server said something (host X said: ...)
	EventPostscreen      Event = "postscreen"       // a postscreen verdict (PASS NEW, ...); see Detail
	EventViolation       Event = "violation"        // a postscreen test failed (PREGREET, DNSBL, ...); see Detail
)

// Status is a delivery status as Postfix writes it after "status=".
type Status string

const (
	StatusSent     Status = "sent"     // delivered (or relayed) successfully
	StatusDeferred Status = "deferred" // a temporary failure; it will be retried
	StatusBounced  Status = "bounced"  // a permanent failure; a bounce was or will be sent
	StatusExpired  Status = "expired"  // the queue lifetime ran out
)

// Endpoint is a peer as Postfix writes it: "name[address]:port", or a
// transport name such as "local" or "name[private/dovecot-lmtp]".
type Endpoint struct {
	Host    string `json:"host,omitempty"`    // name as logged; "unknown" when reverse DNS failed
	IP      string `json:"ip,omitempty"`      // address inside the brackets
	Port    int    `json:"port,omitempty"`    // after the closing bracket, when logged
	Service string `json:"service,omitempty"` // a UNIX socket inside the brackets ("private/dovecot-lmtp")
}

// IsZero reports whether nothing was logged for the endpoint.
func (e Endpoint) IsZero() bool { return e == Endpoint{} }

// Delays is Postfix's "delays=a/b/c/d" in seconds.
type Delays struct {
	BeforeQmgr   float64 `json:"before_qmgr"`  // from arrival to the active queue
	InQmgr       float64 `json:"in_qmgr"`      // in the active queue
	ConnSetup    float64 `json:"conn_setup"`   // DNS, HELO, TLS
	Transmission float64 `json:"transmission"` // sending the message
}

// Reject describes an access-control or content action of smtpd,
// postscreen or cleanup ("NOQUEUE: reject: RCPT from ...").
type Reject struct {
	Action   string `json:"action"`             // reject, reject_warning, hold, discard, filter, redirect, milter-reject, warning, info, ...
	Stage    string `json:"stage,omitempty"`    // RCPT, DATA, CONNECT, ... or header, body, END-OF-MESSAGE
	Code     int    `json:"code,omitempty"`     // SMTP reply code
	Enhanced string `json:"enhanced,omitempty"` // RFC 3463 enhanced status code
	Data     string `json:"data,omitempty"`     // what the reply refers to: the <address> or [host] in it
	Text     string `json:"text,omitempty"`     // the reply text after code and data
	Proto    string `json:"proto,omitempty"`
	Helo     string `json:"helo,omitempty"`
}

// TLSInfo is a "TLS connection established" line.
type TLSInfo struct {
	Trust    string `json:"trust"` // Anonymous, Untrusted, Trusted, Verified
	Protocol string `json:"protocol"`
	Cipher   string `json:"cipher"`
	Bits     string `json:"bits"` // "256/256"
}

// Entry is one parsed log line. Fields that a line does not carry are
// empty. Strings share the memory of one copy of the line.
type Entry struct {
	Time    time.Time `json:"time,omitzero"` // zero when the line had no usable timestamp
	Host    string    `json:"host,omitempty"`
	Program string    `json:"program,omitempty"` // syslog tag without pid: "postfix/submission/smtpd"
	// Instance is the syslog name: "postfix", "postfix-out" (multi-instance)
	// or "dovecot".
	Instance string `json:"instance,omitempty"`
	// Service is the daemon within the instance: "smtpd", "cleanup",
	// "imap-login", "auth-worker".
	Service string `json:"service,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Daemon  Daemon `json:"daemon"`
	Level   Level  `json:"level,omitempty"`
	Event   Event  `json:"event"`
	QueueID string `json:"queue_id,omitempty"` // "NOQUEUE" for rejects before a queue file exists
	// Message is the free text after the queue id and level, with a
	// trailing "; from=<...> to=<...>" list removed.
	Message string `json:"message,omitempty"`

	Client Endpoint `json:"client,omitzero"` // the SMTP or IMAP/POP3 client (Dovecot's rip)
	Relay  Endpoint `json:"relay,omitzero"`  // the next hop of a delivery
	From   string   `json:"from,omitempty"`
	To     string   `json:"to,omitempty"`
	OrigTo string   `json:"orig_to,omitempty"`
	Delay  float64  `json:"delay,omitempty"`
	Delays *Delays  `json:"delays,omitempty"`
	DSN    string   `json:"dsn,omitempty"`
	// TLSFeatures is Postfix 3.10's delivery field "tls=dane/requiretls".
	TLSFeatures string `json:"tls_features,omitempty"`
	Status      Status `json:"status,omitempty"`
	Reply       string `json:"reply,omitempty"` // the text in parentheses after status=, or the remote's reply
	Size        int64  `json:"size,omitempty"`
	NRcpt       int    `json:"nrcpt,omitempty"`
	MessageID   string `json:"message_id,omitempty"`
	// SASLMethod and SASLUsername are Postfix's sasl_method and
	// sasl_username, or Dovecot's method= and user=.
	SASLMethod   string `json:"sasl_method,omitempty"`
	SASLUsername string `json:"sasl_username,omitempty"`
	// Stage is the SMTP command or protocol phase a problem happened in.
	Stage string `json:"stage,omitempty"`
	// Detail qualifies Event: the postscreen verdict or violation, the
	// phrase of a connection problem, the kind of notification.
	Detail string `json:"detail,omitempty"`
	// RelatedQueueID links to another queue file: the bounce created by a
	// notification, or the "queued as" id in a relay's reply.
	RelatedQueueID string   `json:"related_queue_id,omitempty"`
	Reject         *Reject  `json:"reject,omitempty"`
	TLS            *TLSInfo `json:"tls,omitempty"`
	Commands       string   `json:"commands,omitempty"` // smtpd's per-session command counters
}

// ParseLine parses one log line (without its newline). It never fails:
// a line it cannot read has Event EventUnparsed, a line of another
// program Daemon DaemonOther.
func ParseLine(line []byte, opts Options) Entry {
	var e Entry
	if len(line) > 0 && line[0] == '{' {
		a := Accumulator{loc: opts.Location}
		if a.loc == nil {
			a.loc = time.UTC
		}
		if syn, ok := a.journalJSON(line); ok {
			line = syn
		}
	}
	s := string(line)
	s = strings.TrimRight(s, "\r")
	b := []byte(s) // header parsing works on bytes; offsets map back to s
	var h header
	if !parseHeader(b, &h) {
		e.Event = EventUnparsed
		return e
	}
	loc := opts.Location
	if loc == nil {
		loc = time.UTC
	}
	refY, refMD := 0, 0
	if !opts.Reference.IsZero() {
		r := opts.Reference.In(loc).AddDate(0, 0, 1)
		refY, refMD = r.Year(), int(r.Month())*100+r.Day()
	}
	st := stamp{set: true, year: h.year, mon: h.mon, day: h.day, hour: h.hour, min: h.min, sec: h.sec, nsec: h.nsec, hasOffset: h.hasOffset, offset: h.offset}
	switch h.format {
	case tsSyslog:
		st.year = inferYear(refY, refMD, h.mon, h.day)
		e.Time = st.time(loc)
	case tsTAI64N:
		e.Time = time.Unix(h.tai, int64(h.taiNsec)).In(loc)
	default:
		e.Time = st.time(loc)
	}
	off := func(x []byte) int { return len(b) - len(x) }
	rest := s[off(h.rest):]
	if h.hostless() {
		if h.host != nil {
			rest = s[off(h.rest)-len(h.host)-1:]
		}
	} else {
		e.Host = s[off(h.rest)-len(h.host)-1 : off(h.rest)-1]
	}
	var t tag
	if !parseTag([]byte(rest), &t) {
		e.Daemon = DaemonOther
		e.Event = EventOther
		e.Message = rest
		return e
	}
	e.Program = rest[:len(t.name)]
	e.PID = t.pid
	msg := rest[len(rest)-len(t.msg):]
	if _, _, _, ok := postfixCmd([]byte(rest), false); ok || validInstance(t.name) || string(t.name) == "postfix-script" {
		e.Daemon = DaemonPostfix
		e.Instance, e.Service = splitProgram(e.Program)
		parsePostfix(&e, stripSolarisIDString(msg))
		return e
	}
	if d := dovecotTag(t.name, t.msg, h.hostless()); d != nil {
		e.Daemon = DaemonDovecot
		d.fill(&e, msg)
		return e
	}
	e.Daemon = DaemonOther
	e.Event = EventOther
	e.Instance, e.Service = e.Program, e.Program
	e.Message = msg
	return e
}

// splitProgram splits "postfix-out/submission/smtpd" into the instance
// "postfix-out" and the service "smtpd".
func splitProgram(p string) (instance, service string) {
	i := strings.IndexByte(p, '/')
	if i < 0 {
		if p == "postfix-script" {
			return "postfix", p
		}
		return p, "postfix"
	}
	return p[:i], p[strings.LastIndexByte(p, '/')+1:]
}

func stripSolarisIDString(msg string) string {
	b := stripSolarisID([]byte(msg))
	return msg[len(msg)-len(b):]
}

// String writes the endpoint as Postfix does: "name[addr]:port".
func (e Endpoint) String() string {
	s := e.Host
	if e.IP != "" || e.Service != "" {
		s += "[" + e.IP + e.Service + "]"
	}
	if e.Port != 0 {
		s += ":" + strconv.Itoa(e.Port)
	}
	return s
}
