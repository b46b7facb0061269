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

type op struct {
	kind   opKind
	act    actKind
	extra  extraKind
	status uint8
	flag   bool
	hour   uint8
	day    int32 // yyyymmdd of the wall clock
	num    float64
	cmd    []byte
	qid    qref
	a1, a2 []byte
	reason []byte
	ex     []byte
	dove   *doveOp
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
}

func (a *Accumulator) scanner() *scanner {
	return &scanner{compat: a.compat, refY: a.refY, refMD: a.refMD, loc: a.loc}
}

// scanLine reads one line into o, which must be zero, and, when the line
// counts, its wall-clock time into st.
func (sc *scanner) scanLine(line []byte, o *op, st *stamp) {
	if len(line) > 0 && line[0] == '{' {
		if sc.compat {
			return
		}
		a := Accumulator{loc: sc.loc, jbuf: sc.jbuf}
		syn, ok := a.journalJSON(line)
		sc.jbuf = a.jbuf
		if !ok {
			return
		}
		line = syn
	}
	var h header
	if !parseHeader(line, &h) {
		return
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
			return
		}
		var t tag
		if !parseTag(rest, &t) {
			return
		}
		d := dovecotTag(t.name, t.msg, hostless)
		if d == nil {
			return
		}
		o.kind = opDovecot
		sc.stamp(&h, st)
		var e Entry
		d.fill(&e, "")
		o.dove = &doveOp{event: e.Event, status: e.Status, service: d.service, user: e.SASLUsername, ip: e.Client.IP}
		return
	}
	o.kind = opPostfix
	sc.stamp(&h, st)
	o.hour = uint8(st.hour % 24)
	o.day = int32(st.year*10000 + st.mon*100 + st.day)
	o.cmd, o.qid.id = cmd, qid
	sc.msgAt = msgAt
	sc.chain(rest, o)
	switch o.act {
	case actClient, actFromSize, actDelivery, actPickup:
		o.qid = newQref(qid)
	}
	sc.extras(rest, msgAt, o)
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
func (sc *scanner) chain(rest []byte, o *op) {
	cmd, qid := o.cmd, o.qid.id
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
		if c, ok := smtpdClientFast(rest, sc.msgAt); ok {
			o.act = actClient
			var buf []byte
			o.a1, o.flag = gimmeDomain(c, &buf)
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
			addr = lowerDomainPart(addr, nil)
		}
		o.act, o.a1, o.a2 = actFromSize, addr, size
		return
	}
	if isDelivery {
		o.act, o.a1, o.a2 = actDelivery, lowerDomainPart(d.addr, nil), d.relay
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
func (sc *scanner) extras(rest []byte, msgAt int, o *op) {
	cmd := o.cmd
	switch string(cmd) {
	case "smtpd", "postscreen", "smtp", "lmtp":
	default:
		return
	}
	name := func() []byte {
		n := 0
		for n < len(rest) && rest[n] != '[' && rest[n] != ':' {
			n++
		}
		return rest[:n]
	}
	msg := rest[msgAt:]
	switch string(cmd) {
	case "smtpd":
		switch {
		case bytes.HasPrefix(msg, bConnectFrom):
			o.extra, o.ex = exConnect, name()
		case hasPrefix(msg, "lost connection after "):
			o.extra = exLost
		case hasPrefix(msg, "timeout after "):
			o.extra = exTimeout
		case hasPrefix(msg, "warning: "):
			if ip, ok := saslFailureIP(msg[9:]); ok {
				o.extra, o.ex = exSASL, ip
			}
		case (hasPrefix(msg, "Anonymous TLS") || hasPrefix(msg, "Trusted TLS") || hasPrefix(msg, "Untrusted TLS") || hasPrefix(msg, "Verified TLS")) && bytes.Contains(msg, bTLSEst):
			o.extra = exTLS
		}
	case "postscreen":
		switch {
		case hasPrefix(msg, "CONNECT from "):
			o.extra, o.ex = exPSConnect, name()
		case hasPrefix(msg, "PASS NEW ") || hasPrefix(msg, "PASS OLD "):
			o.extra = exPSPass
		default:
			if v := postscreenViolation(msg); v != "" {
				o.extra, o.ex = exPSViolation, []byte(v)
			}
		}
	case "smtp", "lmtp":
		if q := skipQueueID(msg); hasPrefix(q, "connect to ") {
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

// AddLine counts one line (without its newline). It never fails: lines it
// cannot read are counted in Lines.Unparsed.
func (a *Accumulator) AddLine(line []byte) {
	if a.sc == nil {
		a.sc = a.scanner()
	}
	var o op
	var st stamp
	a.sc.scanLine(line, &o, &st)
	a.apply(&o)
	if st.set {
		if !a.first.set {
			a.first = st
		}
		a.last = st
	}
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

// apply folds one scanned line into the counters.
func (a *Accumulator) apply(o *op) {
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
		a.applyDovecot(o.dove)
		return
	}
	a.lines.Postfix++
	t := &a.t
	hr := &a.perHour[o.hour]
	day := a.dayTraffic(o.day)
	qid := o.qid
	switch o.act {
	case actCleanupReject:
		switch string(o.a1) {
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
		switch string(o.a1) {
		case "warning":
			action = "reject_warning"
		case "hold", "discard":
			action = string(o.a1)
		}
		a.rejects[rejKey{action, "cleanup", a.intern(o.a2), a.intern(o.reason)}]++
	case actWarning:
		a.warnings[reasonKey{a.intern(o.cmd), a.intern(o.reason)}]++
	case actFatal:
		a.fatals[reasonKey{a.intern(o.cmd), a.intern(o.reason)}]++
	case actPanic:
		a.panics[reasonKey{a.intern(o.cmd), a.intern(o.reason)}]++
	case actReject:
		// pflogsumm's proc_smtpd_reject: it always counts.
		switch string(o.a1) {
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
		a.rejects[rejKey{a.intern(o.a1), a.intern(o.cmd), a.intern(o.a2), a.intern(o.reason)}]++
	case actClient:
		hr.Received++
		day.Received++
		t.Received++
		v := ""
		if o.flag {
			// Not interned: with "unknown[ip]" clients this is the
			// address, different for nearly every message.
			v = string(o.a1)
		}
		m := a.q.get(qid)
		m.rcvd, m.rcvdSet = v, true
	case actFromSize:
		a.applyFromSize(o)
	case actDelivery:
		a.applyDelivery(o, hr, day)
	case actPickup:
		hr.Received++
		day.Received++
		t.Received++
		m := a.q.get(qid)
		m.rcvd, m.rcvdSet = "pickup", true
	}
	switch o.extra {
	case exConnect:
		a.conns[a.intern(o.ex)]++
	case exLost:
		a.smtp.LostConnections++
	case exTimeout:
		a.smtp.Timeouts++
	case exTLS:
		a.smtp.TLSConnections++
	case exSASL:
		a.smtp.SASLFailures++
		a.saslByIP[a.intern(o.ex)]++
	case exPSConnect:
		a.smtp.Postscreen.Connections++
		a.conns[a.intern(o.ex)]++
	case exPSPass:
		a.smtp.Postscreen.Passed++
	case exPSViolation:
		a.psViol[a.intern(o.ex)]++
	case exConnFail:
		a.connFail[reasonKey{"", a.intern(o.ex)}]++
	}
}

func (a *Accumulator) applyFromSize(o *op) {
	t := &a.t
	qid := o.qid
	m := a.q.get(qid)
	if m.sizeSet && m.truthy {
		return // pflogsumm: "avoid double-counting!"
	}
	addr := o.a1 // lower-cased after the '@' by the scanner
	if len(addr) == 0 {
		addr = bFromEmpty
	}
	size := o.a2
	n := perlInt(size)
	m.size, m.sizeSet, m.truthy = n, true, !(len(size) == 1 && size[0] == '0')
	dom := m.rcvd
	if !m.rcvdSet || dom == "" || dom == "0" {
		return
	}
	// The sender's domain, else the client's (or, for pickup, the
	// address itself).
	var domAddr []byte
	if at := bytes.IndexByte(addr, '@'); at > 0 && at+1 < len(addr) {
		domAddr = addr[at+1:]
	} else if dom == "pickup" {
		domAddr = addr
	} else {
		domAddr = append(a.buf2[:0], dom...)
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
	m.rcvd, m.rcvdSet = "", false
}

var bFromEmpty = []byte("from=<>")

func (a *Accumulator) applyDelivery(o *op, hr, day *Traffic) {
	t := &a.t
	qid := o.qid
	addr := o.a1
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
		if m := a.q.get(qid); m.sizeSet && m.truthy {
			ds.bytes += m.size
			us.bytes += m.size
			t.BytesDelivered += m.size
		}
	case stDeferred:
		a.deferrals[reasonKey{a.intern(o.cmd), a.intern(o.reason)}]++
		hr.Deferred++
		day.Deferred++
		t.Deferrals++
		if m := a.q.get(qid); !m.deferred {
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
		a.bounces[reasonKey{a.intern(o.a2), a.intern(o.reason)}]++
		hr.Bounced++
		day.Bounced++
		t.Bounced++
	}
}

func (a *Accumulator) applyDovecot(d *doveOp) {
	switch d.event {
	case EventLogin:
		a.dove.Logins++
		a.doveLogins[a.intern([]byte(d.service))]++
	case EventAuthFailure:
		a.dove.LoginFailures++
		if d.user != "" {
			a.doveUser[a.intern([]byte(d.user))]++
		}
		if d.ip != "" {
			a.doveIP[a.intern([]byte(d.ip))]++
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
