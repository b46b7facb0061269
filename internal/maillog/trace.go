package maillog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// QueryKind says what a trace query names.
type QueryKind string

const (
	QueryQueueID   QueryKind = "queue-id"   // a Postfix queue id ("4AB12C3D4E")
	QueryAddress   QueryKind = "address"    // an envelope sender or recipient; also tried as a Message-ID
	QueryMessageID QueryKind = "message-id" // a Message-ID, given in angle brackets or without '@'
)

// Outcome is what became of a traced message.
type Outcome string

const (
	OutcomeDelivered Outcome = "delivered" // every recipient's last attempt was status=sent
	OutcomeBounced   Outcome = "bounced"   // every recipient bounced: a non-delivery notification was (or will be) sent
	OutcomePartial   Outcome = "partial"   // some recipients delivered, the others bounced
	OutcomeDeferred  Outcome = "deferred"  // at least one recipient is still waiting after a temporary failure
	OutcomeExpired   Outcome = "expired"   // the queue lifetime ran out; returned to the sender
	OutcomeRejected  Outcome = "rejected"  // refused by smtpd, cleanup or a milter; never queued or dropped from the queue
	OutcomeDiscarded Outcome = "discarded" // accepted and silently dropped by a discard action
	OutcomeHeld      Outcome = "held"      // put on hold; it waits for `postsuper -H`
	OutcomeDeleted   Outcome = "deleted"   // removed by postsuper before it was delivered
	OutcomeRemoved   Outcome = "removed"   // left the queue, but no delivery is in the input (rotated away?)
	OutcomeQueued    Outcome = "queued"    // accepted; no delivery attempt in the input yet
)

// TraceEvent is one log line of a message's life.
type TraceEvent struct {
	Time    time.Time `json:"time,omitzero"`
	Program string    `json:"program"`
	PID     int       `json:"pid,omitempty"`
	Event   Event     `json:"event"`
	// Detail says in words what happened; Fields holds what the line
	// carried (the Entry's fields other than time, program and event).
	Detail string         `json:"detail"`
	Fields map[string]any `json:"fields,omitempty"`
	Line   string         `json:"line"` // the log line as read: the evidence
}

// TraceRecipient is where one recipient stands after the last attempt
// in the input.
type TraceRecipient struct {
	Address  string  `json:"address"`
	OrigTo   string  `json:"orig_to,omitempty"`
	Status   Status  `json:"status,omitempty"` // of the last attempt; "rejected" for a NOQUEUE reject
	DSN      string  `json:"dsn,omitempty"`
	Relay    string  `json:"relay,omitempty"`
	Reply    string  `json:"reply,omitempty"`
	Attempts int     `json:"attempts"`
	Delay    float64 `json:"delay,omitempty"` // seconds from arrival to the last attempt
}

// TraceLink connects two queue files of one message's story.
type TraceLink struct {
	QueueID string `json:"queue_id"`
	// Relation is how they are related, in Postfix's words: "sender
	// non-delivery notification", "delay notification", ... for a
	// notification, "queued as" for a hand-over to this same server
	// (content filter, relay to itself).
	Relation string `json:"relation"`
}

// TracedMessage is one queue file's life, from its first line to
// "removed" (queue ids are reused, so a later message with the same id
// is another TracedMessage), or an SMTP transaction refused before
// queueing (QueueID "NOQUEUE").
type TracedMessage struct {
	QueueID      string           `json:"queue_id"`
	MessageID    string           `json:"message_id,omitempty"`
	From         *string          `json:"from,omitempty"` // "" is the null sender <>; absent when no line says
	Size         int64            `json:"size,omitempty"`
	NRcpt        int              `json:"nrcpt,omitempty"`
	Client       string           `json:"client,omitempty"` // name[address] it came from
	SASLUsername string           `json:"sasl_username,omitempty"`
	Recipients   []TraceRecipient `json:"recipients"`
	Outcome      Outcome          `json:"outcome"`
	Removed      bool             `json:"removed"` // the "removed" line was seen
	First        time.Time        `json:"first,omitzero"`
	Last         time.Time        `json:"last,omitzero"`
	// Matched is false for a message shown only because a matched one led
	// to it (its bounce, or its next hop on this server).
	Matched      bool         `json:"matched"`
	FollowedFrom *TraceLink   `json:"followed_from,omitempty"`
	Links        []TraceLink  `json:"links,omitempty"`
	Events       []TraceEvent `json:"events"`
}

// TraceResult is every message that matched a query, with the ones they
// led to.
type TraceResult struct {
	Query    string          `json:"query"`
	Kind     QueryKind       `json:"kind"`
	Matched  int             `json:"matched"` // messages that matched the query themselves
	Messages []TracedMessage `json:"messages"`
}

// ParseQuery classifies a trace query: a queue id, an address, or a
// Message-ID (in angle brackets, or without '@').
func ParseQuery(q string) (string, QueryKind) {
	q = strings.TrimSpace(q)
	if len(q) > 2 && q[0] == '<' && q[len(q)-1] == '>' {
		return q[1 : len(q)-1], QueryMessageID
	}
	if strings.Contains(q, "@") {
		return q, QueryAddress
	}
	if q != "NOQUEUE" && isQueueID(q) {
		return q, QueryQueueID
	}
	return q, QueryMessageID
}

// tracedEntry is a line kept for a trace.
type tracedEntry struct {
	seq  int64
	e    Entry
	line string
}

type lifeLink struct {
	child    *life
	relation string
}

// life is one queue file's lines between its creation and "removed".
type life struct {
	qid       string
	entries   []tracedEntry
	start     int64
	closed    bool
	removed   bool
	queued    bool // a qmgr "from=" line was seen: a new client= starts another life
	keep      bool
	matched   bool
	evicted   bool
	msgID     string
	links     []lifeLink
	parent    *life
	parentRel string
}

type procKey struct {
	program string
	pid     int
}

type session struct {
	pending []tracedEntry // connect and TLS lines before the first message
	lives   []*life
}

// recentLives is how many finished, unmatched lives a Tracer remembers so
// that a match found later (a bounce linked after its parent's removal)
// can still follow them.
const recentLives = 8192

// Tracer follows messages through a log fed to it line by line. It keeps
// the lines of messages in the queue, of matching messages and of a
// window of recent ones, not the whole log.
type Tracer struct {
	query    string
	kind     QueryKind
	seq      int64
	open     map[string]*life
	byQID    map[string][]*life // finished lives still held
	byMsgID  map[string]*life
	ring     []*life
	ringAt   int
	kept     []*life
	sessions map[procKey]*session
	smtp     map[procKey][]tracedEntry // smtp/lmtp connection lines awaiting their delivery line
}

// NewTracer returns a Tracer for a query as ParseQuery reads it.
func NewTracer(query string) *Tracer {
	q, kind := ParseQuery(query)
	return &Tracer{
		query: q, kind: kind,
		open:     make(map[string]*life),
		byQID:    make(map[string][]*life),
		byMsgID:  make(map[string]*life),
		ring:     make([]*life, recentLives),
		sessions: make(map[procKey]*session),
		smtp:     make(map[procKey][]tracedEntry),
	}
}

// Trace reads the inputs in order and returns every message matching
// query, following bounces and hand-overs to the same server.
func Trace(ctx context.Context, query string, opts Options, since time.Time, rs ...io.Reader) (*TraceResult, error) {
	t := NewTracer(query)
	err := Each(ctx, opts, since, rs, func(line []byte, e Entry) error {
		t.Add(string(line), e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res := t.Result()
	if opts.Logger != nil {
		opts.Logger.Debug("maillog trace", "query", res.Query, "kind", res.Kind, "lines", t.seq,
			"matched", res.Matched, "messages", len(res.Messages))
	}
	return res, nil
}

// Add feeds the next line of the log and its parsed Entry.
func (t *Tracer) Add(line string, e Entry) {
	t.seq++
	te := tracedEntry{seq: t.seq, e: e, line: line}
	switch e.Daemon {
	case DaemonPostfix:
		t.addPostfix(te)
	case DaemonDovecot:
		if e.Event == EventDelivery && e.MessageID != "" {
			if l := t.byMsgID[e.MessageID]; l != nil && !l.evicted {
				l.entries = append(l.entries, te)
			}
		}
	}
}

func (t *Tracer) addPostfix(te tracedEntry) {
	e := &te.e
	key := procKey{e.Program, e.PID}
	if e.QueueID == "" {
		switch {
		case e.Service == "smtpd" && e.Event == EventConnect:
			t.sessions[key] = &session{pending: []tracedEntry{te}}
		case e.Service == "smtpd" && e.Event == EventTLS:
			if s := t.sessions[key]; s != nil && len(s.lives) == 0 {
				s.pending = append(s.pending, te)
			}
		case e.Service == "smtpd" && e.Event == EventDisconnect:
			if s := t.sessions[key]; s != nil {
				for _, l := range s.lives {
					if !l.evicted {
						l.entries = append(l.entries, te)
					}
				}
				delete(t.sessions, key)
			}
		case (e.Service == "smtp" || e.Service == "lmtp") && (e.Event == EventTLS || e.Event == EventConnectFailed):
			if p := t.smtp[key]; len(p) < 8 {
				t.smtp[key] = append(p, te)
			}
		}
		return
	}
	if e.QueueID == "NOQUEUE" {
		if e.Event == EventReject && t.kind == QueryAddress && (strings.EqualFold(e.From, t.query) || strings.EqualFold(e.To, t.query)) {
			l := &life{qid: "NOQUEUE", start: te.seq, closed: true, keep: true, matched: true}
			if s := t.sessions[key]; s != nil {
				l.entries = append(l.entries, s.pending...)
				s.lives = append(s.lives, l)
			}
			l.entries = append(l.entries, te)
			t.kept = append(t.kept, l)
		}
		return
	}

	l := t.open[e.QueueID]
	if l != nil && l.queued && (e.Event == EventClient || e.Event == EventPickup) {
		// The id was reused and the "removed" line is missing.
		t.finish(l)
		l = nil
	}
	if l == nil {
		l = &life{qid: e.QueueID, start: te.seq}
		t.open[e.QueueID] = l
	}
	switch e.Event {
	case EventClient:
		if s := t.sessions[key]; s != nil && e.Service == "smtpd" {
			if len(s.lives) == 0 {
				l.entries = append(l.entries, s.pending...)
			} else if len(s.pending) > 0 {
				l.entries = append(l.entries, s.pending[0]) // the connect line
			}
			s.lives = append(s.lives, l)
		}
	case EventMessageID:
		if l.msgID == "" {
			l.msgID = e.MessageID
			t.byMsgID[e.MessageID] = l
		}
	case EventQueued:
		l.queued = true
	case EventDelivery:
		if p := t.smtp[key]; len(p) > 0 {
			l.entries = append(l.entries, p...)
			delete(t.smtp, key)
		}
	}
	l.entries = append(l.entries, te)
	if e.RelatedQueueID != "" && e.RelatedQueueID != e.QueueID {
		switch {
		case e.Event == EventNotification:
			t.link(l, e.RelatedQueueID, e.Detail, false)
		case e.Event == EventDelivery && e.Status == StatusSent:
			t.link(l, e.RelatedQueueID, "queued as", true)
		}
	}
	if e.Event == EventRemoved {
		l.removed = true
		t.finish(l)
	}
}

// link records that parent led to the life of queue id qid: the one open
// now, or the last one held.
func (t *Tracer) link(parent *life, qid, relation string, sameMessage bool) {
	child := t.open[qid]
	if child == nil {
		if held := t.byQID[qid]; len(held) > 0 {
			child = held[len(held)-1]
		}
	}
	if child == nil || child == parent || child.parent != nil {
		return
	}
	if sameMessage && child.msgID != "" && parent.msgID != "" && child.msgID != parent.msgID {
		return // a remote server's queue id that happens to exist here too
	}
	child.parent, child.parentRel = parent, relation
	parent.links = append(parent.links, lifeLink{child, relation})
	if parent.keep {
		t.keepTree(child)
	}
}

// matches reports whether a life matches the query.
func (t *Tracer) matches(l *life) bool {
	switch t.kind {
	case QueryQueueID:
		return l.qid == t.query
	case QueryMessageID:
		return l.msgID == t.query
	}
	if strings.EqualFold(l.msgID, t.query) {
		return true
	}
	for _, te := range l.entries {
		e := &te.e
		if e.Daemon == DaemonPostfix && e.QueueID == l.qid &&
			(strings.EqualFold(e.From, t.query) || strings.EqualFold(e.To, t.query) || strings.EqualFold(e.OrigTo, t.query)) {
			return true
		}
	}
	return false
}

func (t *Tracer) keepTree(l *life) {
	if l.keep || l.evicted {
		return
	}
	l.keep = true
	if l.closed {
		t.kept = append(t.kept, l)
	}
	for _, c := range l.links {
		t.keepTree(c.child)
	}
}

// finish closes a life: kept if it matches or a kept one led to it,
// otherwise remembered for a while.
func (t *Tracer) finish(l *life) {
	if t.open[l.qid] == l {
		delete(t.open, l.qid)
	}
	l.closed = true
	if t.matches(l) {
		l.matched = true
		if !l.keep {
			t.keepTree(l)
			return
		}
	}
	if l.keep {
		t.kept = append(t.kept, l)
		return
	}
	t.byQID[l.qid] = append(t.byQID[l.qid], l)
	if old := t.ring[t.ringAt]; old != nil {
		t.evict(old)
	}
	t.ring[t.ringAt] = l
	t.ringAt = (t.ringAt + 1) % len(t.ring)
}

func (t *Tracer) evict(l *life) {
	if h := t.byQID[l.qid]; len(h) > 0 {
		for i, x := range h {
			if x == l {
				h = append(h[:i], h[i+1:]...)
				break
			}
		}
		if len(h) == 0 {
			delete(t.byQID, l.qid)
		} else {
			t.byQID[l.qid] = h
		}
	}
	if l.keep {
		return
	}
	l.evicted = true
	if l.msgID != "" && t.byMsgID[l.msgID] == l {
		delete(t.byMsgID, l.msgID)
	}
	l.entries = nil
}

// Result returns the matching messages found so far, oldest first, each
// followed by the messages it led to.
func (t *Tracer) Result() *TraceResult {
	ids := make([]string, 0, len(t.open))
	for id := range t.open {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		l := t.open[id]
		if !l.keep && t.matches(l) {
			l.matched = true
			t.keepTree(l)
		}
	}
	lives := append([]*life(nil), t.kept...)
	for _, id := range ids {
		if l := t.open[id]; l.keep {
			lives = append(lives, l)
		}
	}
	seen := make(map[*life]bool)
	var out []*life
	for _, l := range lives {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start < out[j].start })
	// Each message is followed by the ones it led to.
	var ordered []*life
	done := make(map[*life]bool)
	var walk func(l *life)
	walk = func(l *life) {
		if done[l] || !seen[l] {
			return
		}
		done[l] = true
		ordered = append(ordered, l)
		for _, c := range l.links {
			walk(c.child)
		}
	}
	for _, l := range out {
		if l.parent == nil || !seen[l.parent] {
			walk(l)
		}
	}
	for _, l := range out {
		walk(l) // cycles, should a log ever link back
	}
	res := &TraceResult{Query: t.query, Kind: t.kind, Messages: []TracedMessage{}}
	for _, l := range ordered {
		m := l.message()
		if m.Matched {
			res.Matched++
		}
		res.Messages = append(res.Messages, m)
	}
	return res
}

// message builds the report of one life.
func (l *life) message() TracedMessage {
	entries := append([]tracedEntry(nil), l.entries...)
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].seq < entries[j].seq })
	m := TracedMessage{QueueID: l.qid, MessageID: l.msgID, Removed: l.removed, Matched: l.matched, Recipients: []TraceRecipient{}, Events: []TraceEvent{}}
	if l.parent != nil {
		m.FollowedFrom = &TraceLink{QueueID: l.parent.qid, Relation: l.parentRel}
	}
	for _, c := range l.links {
		m.Links = append(m.Links, TraceLink{QueueID: c.child.qid, Relation: c.relation})
	}
	rcpt := map[string]int{}
	var rejected, discarded, expired, held, deleted bool
	fromSet := false
	for _, te := range entries {
		e := te.e
		if !e.Time.IsZero() {
			if m.First.IsZero() {
				m.First = e.Time
			}
			m.Last = e.Time
		}
		m.Events = append(m.Events, TraceEvent{Time: e.Time, Program: e.Program, PID: e.PID, Event: e.Event,
			Detail: describe(&e), Fields: fields(&e), Line: te.line})
		if e.Daemon != DaemonPostfix || (e.QueueID != l.qid && l.qid != "NOQUEUE") {
			continue
		}
		switch e.Event {
		case EventClient:
			m.Client = e.Client.String()
			m.SASLUsername = e.SASLUsername
		case EventPickup:
			if !fromSet && e.From != "" {
				m.From = &e.From
			}
		case EventQueued, EventExpired:
			if !fromSet {
				m.From, fromSet = &e.From, true
			}
			if e.Size > 0 {
				m.Size = e.Size
			}
			if e.NRcpt > 0 {
				m.NRcpt = e.NRcpt
			}
			if e.Event == EventExpired {
				expired = true
			}
		case EventDelivery:
			k := strings.ToLower(e.To) + "\x00" + strings.ToLower(e.OrigTo)
			i, ok := rcpt[k]
			if !ok {
				i = len(m.Recipients)
				rcpt[k] = i
				m.Recipients = append(m.Recipients, TraceRecipient{Address: e.To, OrigTo: e.OrigTo})
			}
			r := &m.Recipients[i]
			r.Status, r.DSN, r.Relay, r.Reply, r.Delay = e.Status, e.DSN, e.Relay.String(), e.Reply, e.Delay
			r.Attempts++
		case EventReject:
			switch e.Reject.Action {
			case "reject", "milter-reject", "proxy-reject":
				rejected = true
			case "discard", "milter-discard":
				discarded = true
			case "hold", "milter-hold":
				held = true
			}
			if l.qid == "NOQUEUE" {
				m.From, fromSet = &e.From, true
				m.Client = e.Client.String()
				if e.To != "" {
					m.Recipients = append(m.Recipients, TraceRecipient{Address: e.To, Status: "rejected", Reply: rejectReply(e.Reject), Attempts: 1})
				}
			}
		case EventRemoved:
			deleted = e.Service == "postsuper"
		case EventOther:
			if e.Service == "postsuper" {
				switch e.Message {
				case "placed on hold":
					held = true
				case "released from hold":
					held = false
				}
			}
		}
	}
	m.Outcome = outcome(m.Recipients, l.removed, rejected, discarded, expired, held, deleted)
	return m
}

func outcome(rs []TraceRecipient, removed, rejected, discarded, expired, held, deleted bool) Outcome {
	switch {
	case rejected:
		return OutcomeRejected
	case discarded:
		return OutcomeDiscarded
	case expired:
		return OutcomeExpired
	}
	sent, bounced, waiting := 0, 0, 0
	for _, r := range rs {
		switch r.Status {
		case StatusSent:
			sent++
		case StatusBounced, StatusExpired:
			bounced++
		default:
			waiting++
		}
	}
	switch {
	case len(rs) > 0 && waiting == 0 && bounced == 0:
		return OutcomeDelivered
	case len(rs) > 0 && waiting == 0 && sent == 0:
		return OutcomeBounced
	case len(rs) > 0 && waiting == 0:
		return OutcomePartial
	case deleted:
		return OutcomeDeleted
	case held && !removed:
		return OutcomeHeld
	case waiting > 0 && !removed:
		return OutcomeDeferred
	case removed:
		return OutcomeRemoved
	}
	return OutcomeQueued
}

func rejectReply(r *Reject) string {
	var parts []string
	if r.Code != 0 {
		parts = append(parts, strconv.Itoa(r.Code))
	}
	if r.Enhanced != "" {
		parts = append(parts, r.Enhanced)
	}
	switch {
	case r.Data != "" && strings.HasPrefix(r.Text, "blocked using "):
		parts = append(parts, "["+r.Data+"] "+r.Text)
	case r.Data != "":
		parts = append(parts, "<"+r.Data+">: "+r.Text)
	case r.Text != "":
		parts = append(parts, r.Text)
	}
	return strings.Join(parts, " ")
}

// fields is an Entry's JSON without what TraceEvent already says.
func fields(e *Entry) map[string]any {
	b, err := json.Marshal(e)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	for _, k := range []string{"time", "host", "program", "instance", "service", "pid", "daemon", "event", "message"} {
		delete(m, k)
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func angle(a string) string { return "<" + a + ">" }

func secs(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + " s" }

// ExplainDelays spells out Postfix's delays=a/b/c/d.
func ExplainDelays(d Delays) string {
	return fmt.Sprintf("%s before the queue manager (a), %s in the queue manager (b), %s connection setup: DNS, HELO, TLS (c), %s transmission (d)",
		secs(d.BeforeQmgr), secs(d.InQmgr), secs(d.ConnSetup), secs(d.Transmission))
}

// describe says in words what a line reports.
func describe(e *Entry) string {
	switch e.Event {
	case EventConnect:
		return "connection from " + e.Client.String()
	case EventDisconnect:
		s := "disconnect from " + e.Client.String()
		if e.Commands != "" {
			s += " (" + e.Commands + ")"
		}
		return s
	case EventTLS:
		if e.TLS != nil {
			return fmt.Sprintf("%s TLS %s, %s", e.TLS.Trust, e.TLS.Protocol, e.TLS.Cipher)
		}
	case EventClient:
		s := "received from " + e.Client.String()
		if e.SASLUsername != "" {
			s += ", authenticated as " + e.SASLUsername
		}
		return s
	case EventPickup:
		return "submitted locally (pickup): " + e.Message
	case EventMessageID:
		return "Message-ID " + angle(e.MessageID)
	case EventQueued:
		return fmt.Sprintf("queued: from %s, %d bytes, %d recipient(s)", angle(e.From), e.Size, e.NRcpt)
	case EventExpired:
		return "expired: too long in the queue, returned to " + angle(e.From)
	case EventDelivery:
		if e.Daemon == DaemonDovecot {
			if e.Status == StatusSent {
				return "Dovecot stored it for " + e.SASLUsername + ": " + e.Message
			}
			return "Dovecot could not store it for " + e.SASLUsername + ": " + e.Message
		}
		s := fmt.Sprintf("%s to %s", e.Status, angle(e.To))
		if e.OrigTo != "" && !strings.EqualFold(e.OrigTo, e.To) {
			s += " (originally " + angle(e.OrigTo) + ")"
		}
		if !e.Relay.IsZero() && e.Relay.String() != "none" {
			s += " via " + e.Relay.String()
		}
		if e.DSN != "" {
			s += ", dsn " + e.DSN
		}
		s += ", delay " + secs(e.Delay)
		if e.Delays != nil {
			s += " = " + ExplainDelays(*e.Delays)
		}
		if e.Reply != "" {
			s += "; " + e.Reply
		}
		switch e.Status {
		case StatusDeferred:
			s += " — will be retried"
		case StatusBounced:
			s += " — permanent failure"
		}
		return s
	case EventRemoved:
		if e.Service == "postsuper" {
			return "deleted from the queue by postsuper"
		}
		return "removed from the queue"
	case EventNotification:
		return e.Detail + " queued as " + e.RelatedQueueID
	case EventRemoteReply:
		s := e.Relay.String() + " said: " + e.Reply
		if e.Stage != "" {
			s += " (in reply to " + e.Stage + ")"
		}
		return s
	case EventConnectFailed:
		return "cannot connect to " + e.Relay.String() + ": " + e.Detail
	case EventReject:
		r := e.Reject
		s := r.Action
		if r.Stage != "" {
			s += " at " + r.Stage
		}
		if rep := rejectReply(r); rep != "" {
			s += ": " + rep
		}
		if e.To != "" {
			s += " (to " + angle(e.To) + ")"
		}
		return s
	}
	return e.Message
}

// WriteTrace writes a trace as a timeline for people.
func WriteTrace(w io.Writer, r *TraceResult) error {
	if len(r.Messages) == 0 {
		_, err := fmt.Fprintf(w, "No message matches %s %q in the input.\n", r.Kind, r.Query)
		return err
	}
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "%d message(s) match %s %q", r.Matched, r.Kind, r.Query)
	if n := len(r.Messages) - r.Matched; n > 0 {
		fmt.Fprintf(ew, ", %d more followed from them", n)
	}
	fmt.Fprintln(ew)
	day := ""
	for _, m := range r.Messages {
		fmt.Fprintf(ew, "\n%s", m.QueueID)
		if m.MessageID != "" {
			fmt.Fprintf(ew, "  %s", angle(m.MessageID))
		}
		fmt.Fprintf(ew, "  → %s\n", strings.ToUpper(string(m.Outcome)))
		if f := m.FollowedFrom; f != nil {
			if f.Relation == "queued as" {
				fmt.Fprintf(ew, "  (%s handed it over to this server, which queued it as %s)\n", f.QueueID, m.QueueID)
			} else {
				fmt.Fprintf(ew, "  (the %s for %s)\n", f.Relation, f.QueueID)
			}
		}
		from := "?"
		if m.From != nil {
			from = angle(*m.From)
		}
		fmt.Fprintf(ew, "  from %s", from)
		if m.Size > 0 {
			fmt.Fprintf(ew, ", %d bytes", m.Size)
		}
		if m.Client != "" {
			fmt.Fprintf(ew, ", client %s", m.Client)
		}
		if m.SASLUsername != "" {
			fmt.Fprintf(ew, ", user %s", m.SASLUsername)
		}
		fmt.Fprintln(ew)
		for _, ev := range m.Events {
			ts := ""
			if !ev.Time.IsZero() {
				if d := ev.Time.Format("2006-01-02"); d != day {
					day = d
					fmt.Fprintf(ew, "  %s\n", d)
				}
				ts = ev.Time.Format("15:04:05")
			}
			prog := ev.Program
			if i := strings.LastIndexByte(prog, '/'); i >= 0 && strings.HasPrefix(prog, "postfix") {
				prog = prog[i+1:]
			}
			fmt.Fprintf(ew, "    %-8s %-10s %-13s %s\n", ts, prog, ev.Event, ev.Detail)
		}
		for _, rc := range m.Recipients {
			fmt.Fprintf(ew, "  recipient %s: %s", angle(rc.Address), rc.Status)
			if rc.DSN != "" {
				fmt.Fprintf(ew, " %s", rc.DSN)
			}
			fmt.Fprintf(ew, " after %d attempt(s)", rc.Attempts)
			if rc.Reply != "" && rc.Status != StatusSent {
				fmt.Fprintf(ew, ": %s", rc.Reply)
			}
			fmt.Fprintln(ew)
		}
		for _, l := range m.Links {
			fmt.Fprintf(ew, "  → %s %s\n", l.Relation, l.QueueID)
		}
	}
	return ew.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
