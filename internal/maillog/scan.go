package maillog

import (
	"bytes"
	"time"
)

// Counting a line happens in two steps so that the expensive one can run
// on several cores: scanLine is pure (it reads the line and the options
// and writes an op), apply folds ops into the accumulator's maps strictly
// in input order, because pflogsumm's counts depend on order (a queue id's
// size must be seen before its deliveries).

type opKind uint8

const (
	opUnparsed opKind = iota
	opOther
	opDovecot
	opPostfix
)

// actKind is the branch of pflogsumm's if/elsif chain a Postfix line took.
type actKind uint8

const (
	actNone          actKind = iota
	actCleanupReject         // a1 action, a2 part, reason
	actWarning               // reason
	actFatal                 // reason
	actPanic                 // reason
	actReject                // a1 kind, a2 stage, reason
	actClient                // a1 client domain, flag: pflogsumm's value is defined
	actFromSize              // a1 sender, a2 size digits
	actDelivery              // a1 recipient, a2 relay, num delay, status, flag forwarded, reason
	actPickup
)

type extraKind uint8

const (
	exNone        extraKind = iota
	exConnect               // ex = program name
	exLost                  // smtpd lost connection
	exTimeout               // smtpd timeout
	exTLS                   // smtpd TLS established
	exSASL                  // ex = client address
	exPSConnect             // ex = program name
	exPSPass                // PASS NEW/OLD
	exPSViolation           // ex = violation name
	exConnFail              // ex = reason
)

const (
	stOther uint8 = iota
	stSent
	stDeferred
	stBounced
)

// rawOp is what scanLine reads from one line, as slices of the line (or
// of scratch buffers); pack turns it into an op.
type rawOp struct {
	kind   opKind
	act    actKind
	extra  extraKind
	status uint8
	flag   bool
	cmd    []byte
	qid    []byte
	a1, a2 []byte
	reason []byte
	ex     []byte
	num    float64
}

// op is one scanned line as the applying goroutine sees it: small and
// free of pointers (the garbage collector never scans a chunk's ops), its
// strings kept as spans of the chunk's data or arena.
type op struct {
	kind    opKind
	act     actKind
	extra   extraKind
	status  uint8
	flag    bool
	qpacked bool
	hour    uint8
	day     int32 // yyyymmdd of the wall clock
	dove    int32 // index+1 in the chunk's doves
	num     float64
	qkey    uint64
	cmd     span
	qid     span
	a1, a2  span
	reason  span
	ex      span
}

// span locates bytes in a chunk: in its data, or (with arenaBit) in its
// arena.
type span struct{ off, n uint32 }

const arenaBit = 1 << 31

// lineSrc is what the spans of a run of ops point into.
type lineSrc struct {
	data, arena []byte
	doves       []doveOp
}

func (l *lineSrc) bytes(s span) []byte {
	if s.off&arenaBit != 0 {
		o := s.off &^ arenaBit
		return l.arena[o : o+s.n : o+s.n]
	}
	return l.data[s.off : s.off+s.n : s.off+s.n]
}

type doveOp struct {
	event             Event
	status            Status
	service, user, ip string
}

// scanner holds what scanLine needs besides the line: options and small
// scratch buffers. Each goroutine has its own.
type scanner struct {
	msgAt       int // where the current line's message starts in rest
	compat      bool
	refY, refMD int
	loc         *time.Location
	jbuf        []byte
	gbuf, lbuf  []byte // gimmeDomain's and lowerDomainPart's results
	out         lineSrc
}

func (a *Accumulator) scanner() *scanner {
	return &scanner{compat: a.compat, refY: a.refY, refMD: a.refMD, loc: a.loc}
}

// span returns where b is: in the data being scanned when it points
// there, else in a copy appended to the arena.
func (sc *scanner) span(b []byte) span {
	if len(b) == 0 {
		return span{}
	}
	base := sc.out.data
	if off := cap(base) - cap(b); off >= 0 && off+len(b) <= len(base) && &base[off] == &b[0] {
		return span{uint32(off), uint32(len(b))}
	}
	o := len(sc.out.arena)
	sc.out.arena = append(sc.out.arena, b...)
	return span{uint32(o) | arenaBit, uint32(len(b))}
}

// scanLine reads one line, which must lie in sc.out.data, into o, which
// must be zero. It reports whether the line counts as Postfix or Dovecot
// (and so has a time that moves the summary's first and last).
func (sc *scanner) scanLine(line []byte, o *op) bool {
	if len(line) > 0 && line[0] == '{' {
		if sc.compat {
			return false
		}
		syn, ok := sc.journal(line)
		if !ok {
			return false
		}
		line = syn
	}
	var h header
	if !parseHeader(line, &h) {
		return false
	}
	rest := h.rest
	hostless := h.hostless()
	if hostless && h.host != nil {
		rest = line[len(line)-len(h.rest)-len(h.host)-1:]
	}
	var cmd, qid []byte
	isPostfix := false
	msgAt := 0
	if h.pflogsumm || !sc.compat {
		pr := h.rest
		if hostless && !sc.compat {
			pr = rest
		}
		if !hostless || !sc.compat {
			cmd, qid, msgAt, isPostfix = postfixCmd(pr, sc.compat)
			if isPostfix {
				rest = pr
			}
		}
	}
	if !isPostfix {
		o.kind = opOther
		if sc.compat {
			return false
		}
		return sc.dovecotLine(rest, hostless, o)
	}
	o.kind = opPostfix
	o.day, o.hour = sc.dayHour(&h)
	// Not a composite literal: building one on the stack and copying it
	// stalls on store forwarding, a third of this function's time.
	var r rawOp
	r.cmd, r.qid = cmd, qid
	sc.msgAt = msgAt
	sc.chain(rest, &r)
	switch r.act {
	case actClient, actFromSize, actDelivery, actPickup:
		o.qkey, o.qpacked = qidKey(qid)
	}
	sc.extras(rest, msgAt, &r)
	o.act, o.extra, o.status, o.flag, o.num = r.act, r.extra, r.status, r.flag, r.num
	o.cmd = sc.span(r.cmd)
	o.qid = sc.span(r.qid)
	o.a1 = sc.span(r.a1)
	o.a2 = sc.span(r.a2)
	o.reason = sc.span(r.reason)
	o.ex = sc.span(r.ex)
	return true
}

// journal turns a "journalctl -o json" record into a syslog line.
func (sc *scanner) journal(line []byte) ([]byte, bool) {
	a := Accumulator{loc: sc.loc, jbuf: sc.jbuf}
	syn, ok := a.journalJSON(line)
	sc.jbuf = a.jbuf
	return syn, ok
}

// dovecotLine scans a line that is not Postfix's as Dovecot's. It is a
// function of its own so that scanLine's frame stays small.
func (sc *scanner) dovecotLine(rest []byte, hostless bool, o *op) bool {
	var t tag
	if !parseTag(rest, &t) {
		return false
	}
	d := dovecotTag(t.name, t.msg, hostless)
	if d == nil {
		return false
	}
	o.kind = opDovecot
	var e Entry
	d.fill(&e, "")
	sc.out.doves = append(sc.out.doves, doveOp{event: e.Event, status: e.Status, service: d.service, user: e.SASLUsername, ip: e.Client.IP})
	o.dove = int32(len(sc.out.doves))
	return true
}

// dayHour returns the line's wall-clock day (yyyymmdd) and hour.
func (sc *scanner) dayHour(h *header) (int32, uint8) {
	switch h.format {
	case tsSyslog:
		y := inferYear(sc.refY, sc.refMD, h.mon, h.day)
		return int32(y*10000 + h.mon*100 + h.day), uint8(h.hour % 24)
	case tsTAI64N:
		var s stamp
		sc.stamp(h, &s)
		return int32(s.year*10000 + s.mon*100 + s.day), uint8(s.hour % 24)
	}
	return int32(h.year*10000 + h.mon*100 + h.day), uint8(h.hour % 24)
}

// stampOf returns the time of a line that scanLine counted.
func (sc *scanner) stampOf(line []byte) stamp {
	if len(line) > 0 && line[0] == '{' {
		syn, ok := sc.journal(line)
		if !ok {
			return stamp{}
		}
		line = syn
	}
	var h header
	if !parseHeader(line, &h) {
		return stamp{}
	}
	var s stamp
	sc.stamp(&h, &s)
	return s
}

func (sc *scanner) stamp(h *header, s *stamp) {
	*s = stamp{set: true, year: h.year, mon: h.mon, day: h.day, hour: h.hour, min: h.min, sec: h.sec, nsec: h.nsec, hasOffset: h.hasOffset, offset: h.offset}
	switch h.format {
	case tsSyslog:
		s.year = inferYear(sc.refY, sc.refMD, h.mon, h.day)
	case tsTAI64N:
		t := time.Unix(h.tai, int64(h.taiNsec)).In(sc.loc)
		s.year, s.mon, s.day = t.Year(), int(t.Month()), t.Day()
		s.hour, s.min, s.sec, s.nsec = t.Hour(), t.Minute(), t.Second(), t.Nanosecond()
	}
}

// chain decides which branch of pflogsumm 1.1.5's if/elsif chain a line
// takes and captures what that branch needs.
func (sc *scanner) chain(rest []byte, o *rawOp) {
	cmd, qid := o.cmd, o.qid
	if string(cmd) == "cleanup" {
		if act, part, text, ok := cleanupReject(rest); ok {
			o.act, o.a1, o.a2, o.reason = actCleanupReject, act, part, cleanupReason(text)
			return
		}
	}
	switch string(qid) {
	case "warning":
		o.act, o.reason = actWarning, trimReason(stripClientPrefix(afterLast(rest, "warning: ")), 66)
		return
	case "fatal":
		o.act, o.reason = actFatal, trimReason(afterLast(rest, "fatal: "), 66)
		return
	case "panic":
		o.act, o.reason = actPanic, trimReason(afterLast(rest, "panic: "), 66)
		return
	case "reject", "reject_warning", "hold", "discard":
		o.act, o.a1 = actReject, qid
		o.a2, o.reason = smtpdRejectReason(rest, qid)
		return
	}
	switch string(cmd) {
	case "master":
		return
	case "smtpd", "postscreen":
		// Both expressions below hold "]: \w+: ". Its ": " followed by
		// a word character is at or after the first such ": ", which
		// ended where the message starts (msgAt), so the second ": "
		// lies in the message: without a ':' there, neither matches.
		if m := sc.msgAt; m <= len(rest) && bytes.IndexByte(rest[m:], ':') < 0 {
			return
		}
		if c, ok := smtpdClientFast(rest, sc.msgAt); ok {
			o.act = actClient
			o.a1, o.flag = gimmeDomain(c, &sc.gbuf)
			return
		}
		if kind, ok := smtpdRejectKind(rest); ok {
			o.act, o.a1 = actReject, kind
			o.a2, o.reason = smtpdRejectReason(rest, kind)
		}
		return
	}
	var d delivery
	addr, size, isFrom, isDelivery := fromSizeOrDelivery(rest, &d, !sc.compat)
	if isFrom {
		if len(addr) > 0 {
			addr = lowerDomainPart(addr, &sc.lbuf)
		}
		o.act, o.a1, o.a2 = actFromSize, addr, size
		return
	}
	if isDelivery {
		o.act, o.a1, o.a2 = actDelivery, lowerDomainPart(d.addr, &sc.lbuf), d.relay
		o.num = perlNum(d.delay)
		switch string(d.status) {
		case "sent":
			o.status = stSent
			o.flag = bytes.Contains(d.rmdr, bForwarded)
		case "deferred":
			o.status = stDeferred
			o.reason = deferReason(rest)
		case "bounced":
			o.status = stBounced
			o.reason = bounceReason(rest)
		}
		return
	}
	if string(cmd) == "pickup" && (bytes.Contains(rest, bSenderEq) || bytes.Contains(rest, bUIDEq)) {
		o.act = actPickup
	}
}

var (
	bConnectFrom = []byte("connect from ")
	bTLSEst      = []byte("TLS connection established from ")
)

// extras notes what pflogsumm does not count: connections, SASL failures,
// postscreen verdicts, connection failures of the SMTP client.
func (sc *scanner) extras(rest []byte, msgAt int, o *rawOp) {
	name := func() []byte {
		n := 0
		for n < len(rest) && rest[n] != '[' && rest[n] != ':' {
			n++
		}
		return rest[:n]
	}
	msg := rest[msgAt:]
	if len(msg) == 0 {
		return
	}
	switch string(o.cmd) {
	case "smtpd":
		// The first byte tells the prefixes apart.
		switch msg[0] {
		case 'c':
			if bytes.HasPrefix(msg, bConnectFrom) {
				o.extra, o.ex = exConnect, name()
			}
		case 'l':
			if hasPrefix(msg, "lost connection after ") {
				o.extra = exLost
			}
		case 't':
			if hasPrefix(msg, "timeout after ") {
				o.extra = exTimeout
			}
		case 'w':
			if hasPrefix(msg, "warning: ") {
				if ip, ok := saslFailureIP(msg[9:]); ok {
					o.extra, o.ex = exSASL, ip
				}
			}
		case 'A', 'T', 'U', 'V':
			if (hasPrefix(msg, "Anonymous TLS") || hasPrefix(msg, "Trusted TLS") || hasPrefix(msg, "Untrusted TLS") || hasPrefix(msg, "Verified TLS")) && bytes.Contains(msg, bTLSEst) {
				o.extra = exTLS
			}
		}
	case "postscreen":
		switch {
		case hasPrefix(msg, "CONNECT from "):
			o.extra, o.ex = exPSConnect, name()
		case hasPrefix(msg, "PASS NEW ") || hasPrefix(msg, "PASS OLD "):
			o.extra = exPSPass
		default:
			if v := postscreenViolation(msg); v != "" {
				o.extra, o.ex = exPSViolation, msg[:len(v)]
			}
		}
	case "smtp", "lmtp":
		if q, ok := connectTo(msg); ok {
			if i := bytes.Index(q, colonSpace); i > 0 {
				r := q[i+2:]
				if j := bytes.Index(r, colonSpace); j >= 0 && isAllDigits(r[:j]) {
					r = r[j+2:]
				}
				o.extra, o.ex = exConnFail, trimReason(r, 80)
			}
		}
	}
}

// connectTo returns msg without a leading "QUEUEID: " when what is left
// starts with "connect to ".
func connectTo(msg []byte) ([]byte, bool) {
	if hasPrefix(msg, "connect to ") {
		return msg, true
	}
	i := 0
	for i < len(msg) && isWord(msg[i]) {
		i++
	}
	if i > 0 && hasPrefix(msg[i:], ": connect to ") && isQueueID(string(msg[:i])) {
		return msg[i+2:], true
	}
	return nil, false
}

// AddLine counts one line (without its newline). It never fails: lines it
// cannot read are counted in Lines.Unparsed.
func (a *Accumulator) AddLine(line []byte) {
	if a.sc == nil {
		a.sc = a.scanner()
	}
	sc := a.sc
	sc.out = lineSrc{data: line, arena: sc.out.arena[:0], doves: sc.out.doves[:0]}
	var o op
	if sc.scanLine(line, &o) {
		st := sc.stampOf(line)
		if !a.first.set {
			a.first = st
		}
		a.last = st
	}
	a.apply(&sc.out, &o)
	sc.out.data = nil
}

func (a *Accumulator) dayTraffic(day int32) *Traffic {
	if a.lastDay == day && a.lastDayT != nil {
		return a.lastDayT
	}
	d := a.perDay[int(day)]
	if d == nil {
		d = new(Traffic)
		a.perDay[int(day)] = d
	}
	a.lastDay, a.lastDayT = day, d
	return d
}

// apply folds one scanned line into the counters; src holds its bytes.
func (a *Accumulator) apply(src *lineSrc, o *op) {
	a.lines.Total++
	switch o.kind {
	case opUnparsed:
		a.lines.Unparsed++
		return
	case opOther:
		a.lines.Other++
		return
	case opDovecot:
		a.lines.Dovecot++
		a.applyDovecot(&src.doves[o.dove-1])
		return
	}
	a.lines.Postfix++
	t := &a.t
	hr := &a.perHour[o.hour]
	day := a.dayTraffic(o.day)
	switch o.act {
	case actCleanupReject:
		a1 := src.bytes(o.a1)
		switch string(a1) {
		case "reject", "milter-reject":
			t.Rejected++
		case "warning":
			t.RejectWarnings++
		case "hold":
			t.Held++
		case "discard":
			t.Discarded++
		}
		hr.Rejected++
		day.Rejected++
		action := "reject"
		switch string(a1) {
		case "warning":
			action = "reject_warning"
		case "hold", "discard":
			action = string(a1)
		}
		a.rejects[rejKey{action, "cleanup", a.intern(src.bytes(o.a2)), a.intern(src.bytes(o.reason))}]++
	case actWarning:
		a.warnings[reasonKey{a.intern(src.bytes(o.cmd)), a.intern(src.bytes(o.reason))}]++
	case actFatal:
		a.fatals[reasonKey{a.intern(src.bytes(o.cmd)), a.intern(src.bytes(o.reason))}]++
	case actPanic:
		a.panics[reasonKey{a.intern(src.bytes(o.cmd)), a.intern(src.bytes(o.reason))}]++
	case actReject:
		// pflogsumm's proc_smtpd_reject: it always counts.
		a1 := src.bytes(o.a1)
		switch string(a1) {
		case "reject":
			t.Rejected++
		case "reject_warning":
			t.RejectWarnings++
		case "hold":
			t.Held++
		case "discard":
			t.Discarded++
		}
		hr.Rejected++
		day.Rejected++
		a.rejects[rejKey{a.intern(a1), a.intern(src.bytes(o.cmd)), a.intern(src.bytes(o.a2)), a.intern(src.bytes(o.reason))}]++
	case actClient:
		hr.Received++
		day.Received++
		t.Received++
		var v []byte
		if o.flag {
			v = src.bytes(o.a1)
		}
		a.q.setRcvd(a.q.get(a.qref(src, o)), v)
	case actFromSize:
		a.applyFromSize(src, o)
	case actDelivery:
		a.applyDelivery(src, o, hr, day)
	case actPickup:
		hr.Received++
		day.Received++
		t.Received++
		m := a.q.get(a.qref(src, o))
		m.rcvd, m.rcvdSet = rcvdPickup, true
	}
	switch o.extra {
	case exNone:
	case exConnect:
		a.conns.add(src.bytes(o.ex))
	case exLost:
		a.smtp.LostConnections++
	case exTimeout:
		a.smtp.Timeouts++
	case exTLS:
		a.smtp.TLSConnections++
	case exSASL:
		a.smtp.SASLFailures++
		a.saslByIP.add(src.bytes(o.ex))
	case exPSConnect:
		a.smtp.Postscreen.Connections++
		a.conns.add(src.bytes(o.ex))
	case exPSPass:
		a.smtp.Postscreen.Passed++
	case exPSViolation:
		a.psViol.add(src.bytes(o.ex))
	case exConnFail:
		a.connFail[reasonKey{"", a.intern(src.bytes(o.ex))}]++
	}
}

func (a *Accumulator) qref(src *lineSrc, o *op) qref {
	if o.qpacked {
		return qref{key: o.qkey, packed: true}
	}
	return qref{id: src.bytes(o.qid)}
}

func (a *Accumulator) applyFromSize(src *lineSrc, o *op) {
	t := &a.t
	m := a.q.get(a.qref(src, o))
	if m.sizeSet && m.truthy {
		return // pflogsumm: "avoid double-counting!"
	}
	addr := src.bytes(o.a1) // lower-cased after the '@' by the scanner
	if len(addr) == 0 {
		addr = bFromEmpty
	}
	size := src.bytes(o.a2)
	n := perlInt(size)
	m.size, m.sizeSet, m.truthy = n, true, !(len(size) == 1 && size[0] == '0')
	if !m.rcvdSet || a.q.rcvdFalsy(m) {
		return
	}
	// The sender's domain, else the client's (or, for pickup, the
	// address itself).
	var domAddr []byte
	if at := bytes.IndexByte(addr, '@'); at > 0 && at+1 < len(addr) {
		domAddr = addr[at+1:]
	} else if m.rcvd == rcvdPickup {
		domAddr = addr
	} else {
		domAddr = a.q.appendRcvd(a.buf2[:0], m)
		a.buf2 = domAddr
	}
	ds := a.sendDoms[string(domAddr)]
	if ds == nil {
		ds = new(domStat)
		a.sendDoms[string(domAddr)] = ds
		t.SendingDomains++
	}
	ds.count++
	ds.bytes += n
	us := a.senders[string(addr)]
	if us == nil {
		us = new(addrStat)
		a.senders[string(addr)] = us
		t.Senders++
	}
	us.count++
	us.bytes += n
	t.BytesReceived += n
	m.rcvd, m.rcvdSet = 0, false
}

var bFromEmpty = []byte("from=<>")

func (a *Accumulator) applyDelivery(src *lineSrc, o *op, hr, day *Traffic) {
	t := &a.t
	addr := src.bytes(o.a1)
	domAddr := addr
	if at := bytes.IndexByte(addr, '@'); at > 0 {
		domAddr = addr[at+1:]
	}
	delay := o.num
	switch o.status {
	case stSent:
		if o.flag {
			t.Forwarded++
			return
		}
		ds := a.recipDoms[string(domAddr)]
		if ds == nil {
			ds = new(domStat)
			a.recipDoms[string(domAddr)] = ds
		}
		if ds.count == 0 {
			t.RecipientDomains++
		}
		ds.count++
		ds.delaySum += delay
		if !ds.hasMax || delay > ds.delayMax {
			ds.delayMax, ds.hasMax = delay, true
		}
		us := a.recips[string(addr)]
		if us == nil {
			us = new(addrStat)
			a.recips[string(addr)] = us
			t.Recipients++
		}
		us.count++
		hr.Delivered++
		day.Delivered++
		t.Delivered++
		if m := a.q.find(a.qref(src, o)); m != nil && m.sizeSet && m.truthy {
			ds.bytes += m.size
			us.bytes += m.size
			t.BytesDelivered += m.size
		}
	case stDeferred:
		a.deferrals[reasonKey{a.intern(src.bytes(o.cmd)), a.intern(src.bytes(o.reason))}]++
		hr.Deferred++
		day.Deferred++
		t.Deferrals++
		if m := a.q.get(a.qref(src, o)); !m.deferred {
			m.deferred = true
			t.Deferred++
		}
		ds := a.recipDoms[string(domAddr)]
		if ds == nil {
			ds = new(domStat)
			a.recipDoms[string(domAddr)] = ds
		}
		ds.deferrals++
		if !ds.hasMax || delay > ds.delayMax {
			ds.delayMax, ds.hasMax = delay, true
		}
	case stBounced:
		a.bounces[reasonKey{a.intern(src.bytes(o.a2)), a.intern(src.bytes(o.reason))}]++
		hr.Bounced++
		day.Bounced++
		t.Bounced++
	}
}

func (a *Accumulator) applyDovecot(d *doveOp) {
	switch d.event {
	case EventLogin:
		a.dove.Logins++
		a.doveLogins.addString(d.service)
	case EventAuthFailure:
		a.dove.LoginFailures++
		if d.user != "" {
			a.doveUser.addString(d.user)
		}
		if d.ip != "" {
			a.doveIP.addString(d.ip)
		}
	case EventLoginAborted:
		a.dove.AbortedLogins++
	case EventDelivery:
		if d.status == StatusSent {
			a.dove.Deliveries++
		} else {
			a.dove.DeliveryFailures++
		}
	}
}

// counts counts occurrences of names. Its values are pointers so that a
// name already present is counted without converting it to a string.
type counts map[string]*int64

func (c counts) add(b []byte) {
	if p := c[string(b)]; p != nil {
		*p++
		return
	}
	n := int64(1)
	c[string(b)] = &n
}

func (c counts) addString(s string) {
	if p := c[s]; p != nil {
		*p++
		return
	}
	n := int64(1)
	c[s] = &n
}
