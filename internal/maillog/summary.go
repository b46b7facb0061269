package maillog

import (
	"log/slog"
	"sort"
	"time"
)

// Options control how lines are read.
type Options struct {
	// Reference is the time the log is read at, normally the caller's
	// "now". Traditional syslog timestamps carry no year: each line gets
	// the year that puts it at most one day after Reference, so December
	// lines followed by January lines read in January land in two years.
	// A zero Reference leaves such timestamps in year 0.
	Reference time.Time
	// Location is the zone of timestamps written without an offset; nil
	// means UTC.
	Location *time.Location
	// PflogsummCompat counts only what Debian's pflogsumm 1.1.5 counts:
	// the program must be "postfix/…" (or "postfix/smtps/…",
	// "postfix/submission/…") and the timestamp traditional or RFC 3339.
	// See PFLOGSUMM.md for the differences it turns off.
	PflogsummCompat bool
	// Logger receives one debug line per Summarize call; nil discards.
	Logger *slog.Logger
}

// Totals are pflogsumm's "Grand Totals", counted as Debian's pflogsumm
// 1.1.5 counts them. The JSON names are pflogsumm's.
type Totals struct {
	Received         int64 `json:"received"`
	Delivered        int64 `json:"delivered"`
	Forwarded        int64 `json:"forwarded"`
	Deferred         int64 `json:"deferred"`  // messages deferred at least once
	Deferrals        int64 `json:"deferrals"` // deferral log lines
	Bounced          int64 `json:"bounced"`
	Rejected         int64 `json:"rejected"`
	RejectedPercent  int   `json:"rejected_percent"` // of delivered+rejected+discarded, truncated
	RejectWarnings   int64 `json:"reject_warnings"`
	Held             int64 `json:"held"`
	Discarded        int64 `json:"discarded"`
	DiscardedPercent int   `json:"discarded_percent"`
	BytesReceived    int64 `json:"bytes_received"`
	BytesDelivered   int64 `json:"bytes_delivered"`
	Senders          int   `json:"senders"`
	SendingDomains   int   `json:"sending_domains"`
	Recipients       int   `json:"recipients"`
	RecipientDomains int   `json:"recipient_domains"`
}

// LineCounts say what the input was made of. Nothing is dropped silently:
// every line lands in exactly one of Postfix, Dovecot, Other and Unparsed.
type LineCounts struct {
	Total    int64 `json:"total"`
	Postfix  int64 `json:"postfix"`
	Dovecot  int64 `json:"dovecot"`
	Other    int64 `json:"other"`    // a timestamp, but another program
	Unparsed int64 `json:"unparsed"` // no recognisable timestamp, or too long
}

// Traffic is one row of the per-day or per-hour tables.
type Traffic struct {
	Received  int64 `json:"received"`
	Delivered int64 `json:"delivered"`
	Deferred  int64 `json:"deferred"`
	Bounced   int64 `json:"bounced"`
	Rejected  int64 `json:"rejected"` // rejects, reject warnings, holds and discards, as pflogsumm
}

// DayTraffic is Traffic on one calendar day of the log's wall clock.
type DayTraffic struct {
	Date string `json:"date"` // YYYY-MM-DD; year inferred for syslog timestamps
	Traffic
}

// DomainStats is one row of the host/domain tables.
type DomainStats struct {
	Domain    string  `json:"domain"`
	Count     int64   `json:"count"` // messages delivered to (or received from) the domain
	Bytes     int64   `json:"bytes"`
	Deferrals int64   `json:"deferrals,omitempty"`
	AvgDelay  float64 `json:"avg_delay_seconds,omitempty"`
	MaxDelay  float64 `json:"max_delay_seconds,omitempty"`
}

// AddressStats is one sender or recipient.
type AddressStats struct {
	Address string `json:"address"`
	Count   int64  `json:"count"`
	Bytes   int64  `json:"bytes"`
}

// Reason counts one grouped reason; Group is the service (deferrals,
// warnings), the relay (bounces) or the client address (SASL failures).
type Reason struct {
	Group string `json:"group,omitempty"`
	Text  string `json:"text"`
	Count int64  `json:"count"`
}

// RejectReason counts rejects grouped by action, service, SMTP stage and
// normalised reason.
type RejectReason struct {
	Action  string `json:"action"` // reject, reject_warning, hold, discard
	Service string `json:"service"`
	Stage   string `json:"stage"` // RCPT, DATA, header, body, ...
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
}

// Count is a named counter.
type Count struct {
	Name  string `json:"name"`
	Count int64  `json:"count"`
}

// SMTPStats counts connection-level events of smtpd and postscreen.
type SMTPStats struct {
	Connections      []Count  `json:"connections"` // per program, e.g. postfix/submission/smtpd
	LostConnections  int64    `json:"lost_connections"`
	Timeouts         int64    `json:"timeouts"`
	TLSConnections   int64    `json:"tls_connections"`
	SASLFailures     int64    `json:"sasl_failures"`
	SASLFailuresByIP []Count  `json:"sasl_failures_by_ip,omitempty"`
	Postscreen       PSStats  `json:"postscreen"`
	ConnectFailures  []Reason `json:"connect_failures,omitempty"` // smtp/lmtp "connect to ...: reason", grouped by reason
}

// PSStats counts postscreen's verdicts.
type PSStats struct {
	Connections int64   `json:"connections"`
	Passed      int64   `json:"passed"` // PASS NEW, PASS OLD
	Violations  []Count `json:"violations,omitempty"`
}

// DovecotStats counts Dovecot logins and failures.
type DovecotStats struct {
	Logins           int64   `json:"logins"`
	LoginFailures    int64   `json:"login_failures"`
	AbortedLogins    int64   `json:"aborted_logins"` // disconnected before any authentication attempt
	LoginsByService  []Count `json:"logins_by_service,omitempty"`
	FailuresByUser   []Count `json:"failures_by_user,omitempty"`
	FailuresByIP     []Count `json:"failures_by_ip,omitempty"`
	Deliveries       int64   `json:"deliveries"` // lmtp/lda "saved mail to"
	DeliveryFailures int64   `json:"delivery_failures"`
}

// Summary is the result of reading one or more logs.
type Summary struct {
	Totals            Totals         `json:"totals"`
	Lines             LineCounts     `json:"lines"`
	First             time.Time      `json:"first,omitzero"`
	Last              time.Time      `json:"last,omitzero"`
	PerDay            []DayTraffic   `json:"per_day"`
	PerHour           [24]Traffic    `json:"per_hour"`
	ByRecipientDomain []DomainStats  `json:"by_recipient_domain"`
	BySendingDomain   []DomainStats  `json:"by_sending_domain"`
	Senders           []AddressStats `json:"by_sender"`
	Recipients        []AddressStats `json:"by_recipient"`
	Deferrals         []Reason       `json:"deferral_reasons"`
	Bounces           []Reason       `json:"bounce_reasons"`
	Rejects           []RejectReason `json:"reject_reasons"`
	Warnings          []Reason       `json:"warnings"`
	Fatals            []Reason       `json:"fatals"`
	Panics            []Reason       `json:"panics"`
	SMTP              SMTPStats      `json:"smtp"`
	Dovecot           DovecotStats   `json:"dovecot"`
}

type domStat struct {
	count, bytes, deferrals int64
	delaySum, delayMax      float64
	hasMax                  bool
}

type addrStat struct{ count, bytes int64 }

type rejKey struct{ action, service, stage, reason string }

type reasonKey struct{ group, text string }

// Accumulator builds a Summary line by line. It is not safe for concurrent
// use; Summarize and ReadFrom feed it from one goroutine.
type Accumulator struct {
	opts   Options
	compat bool
	loc    *time.Location
	refY   int
	refMD  int // month*100+day of Reference, plus one day of slack

	t     Totals
	lines LineCounts
	// q holds pflogsumm's %msgSizes (never pruned), %rcvdMsg and
	// %msgDfrdFlgs.
	q qidState

	senders, recips     map[string]*addrStat
	sendDoms, recipDoms map[string]*domStat

	perDay  map[int]*Traffic
	perHour [24]Traffic

	deferrals, bounces, warnings, fatals, panics map[reasonKey]int64
	rejects                                      map[rejKey]int64

	conns      counts
	smtp       SMTPStats
	saslByIP   counts
	psViol     counts
	connFail   map[reasonKey]int64
	dove       DovecotStats
	doveLogins counts
	doveUser   counts
	doveIP     counts

	strs map[string]string // interned small strings

	first, last stamp

	sc       *scanner
	lastDay  int32
	lastDayT *Traffic

	buf, buf2, jbuf []byte
}

// stamp is a wall-clock time kept as numbers until the end.
type stamp struct {
	set                                  bool
	year, mon, day, hour, min, sec, nsec int
	hasOffset                            bool
	offset                               int
}

// NewAccumulator returns an empty accumulator.
func NewAccumulator(opts Options) *Accumulator {
	a := &Accumulator{
		opts:       opts,
		compat:     opts.PflogsummCompat,
		loc:        opts.Location,
		q:          newQIDState(),
		senders:    make(map[string]*addrStat),
		recips:     make(map[string]*addrStat),
		sendDoms:   make(map[string]*domStat),
		recipDoms:  make(map[string]*domStat),
		perDay:     make(map[int]*Traffic),
		deferrals:  make(map[reasonKey]int64),
		bounces:    make(map[reasonKey]int64),
		warnings:   make(map[reasonKey]int64),
		fatals:     make(map[reasonKey]int64),
		panics:     make(map[reasonKey]int64),
		rejects:    make(map[rejKey]int64),
		conns:      make(counts),
		saslByIP:   make(counts),
		psViol:     make(counts),
		connFail:   make(map[reasonKey]int64),
		doveLogins: make(counts),
		doveUser:   make(counts),
		doveIP:     make(counts),
		strs:       make(map[string]string),
	}
	if a.loc == nil {
		a.loc = time.UTC
	}
	if !opts.Reference.IsZero() {
		r := opts.Reference.In(a.loc).AddDate(0, 0, 1)
		a.refY = r.Year()
		a.refMD = int(r.Month())*100 + r.Day()
	}
	return a
}

// inferYear gives a month and day without a year the latest year that does
// not put it after Reference (plus a day for clock and zone skew).
func (a *Accumulator) inferYear(mon, day int) int {
	return inferYear(a.refY, a.refMD, mon, day)
}

func inferYear(refY, refMD, mon, day int) int {
	if refY == 0 {
		return 0
	}
	if mon*100+day > refMD {
		return refY - 1
	}
	return refY
}

func (a *Accumulator) intern(b []byte) string {
	if s, ok := a.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(a.strs) < 1<<16 {
		a.strs[s] = s
	}
	return s
}

// Summary returns what has been counted so far. The accumulator can go on
// counting afterwards.
func (a *Accumulator) Summary() *Summary {
	s := &Summary{Totals: a.t, Lines: a.lines, PerHour: a.perHour}
	t := &s.Totals
	if tot := t.Delivered + t.Rejected + t.Discarded; tot > 0 {
		t.RejectedPercent = int(float64(t.Rejected) / float64(tot) * 100)
		t.DiscardedPercent = int(float64(t.Discarded) / float64(tot) * 100)
	}
	s.First = a.first.time(a.loc)
	s.Last = a.last.time(a.loc)
	days := make([]int, 0, len(a.perDay))
	for k := range a.perDay {
		days = append(days, k)
	}
	sort.Ints(days)
	for _, k := range days {
		if *a.perDay[k] != (Traffic{}) {
			s.PerDay = append(s.PerDay, DayTraffic{Date: dateString(k), Traffic: *a.perDay[k]})
		}
	}
	s.ByRecipientDomain = domList(a.recipDoms, true)
	s.BySendingDomain = domList(a.sendDoms, false)
	s.Senders = addrList(a.senders)
	s.Recipients = addrList(a.recips)
	s.Deferrals = reasonList(a.deferrals)
	s.Bounces = reasonList(a.bounces)
	s.Warnings = reasonList(a.warnings)
	s.Fatals = reasonList(a.fatals)
	s.Panics = reasonList(a.panics)
	for k, n := range a.rejects {
		s.Rejects = append(s.Rejects, RejectReason{k.action, k.service, k.stage, k.reason, n})
	}
	sort.Slice(s.Rejects, func(i, j int) bool {
		x, y := s.Rejects[i], s.Rejects[j]
		if x.Count != y.Count {
			return x.Count > y.Count
		}
		if x.Action != y.Action {
			return x.Action < y.Action
		}
		if x.Service != y.Service {
			return x.Service < y.Service
		}
		if x.Stage != y.Stage {
			return x.Stage < y.Stage
		}
		return x.Reason < y.Reason
	})
	s.SMTP = a.smtp
	s.SMTP.Connections = countList(a.conns)
	s.SMTP.SASLFailuresByIP = countList(a.saslByIP)
	s.SMTP.Postscreen.Violations = countList(a.psViol)
	s.SMTP.ConnectFailures = reasonList(a.connFail)
	s.Dovecot = a.dove
	s.Dovecot.LoginsByService = countList(a.doveLogins)
	s.Dovecot.FailuresByUser = countList(a.doveUser)
	s.Dovecot.FailuresByIP = countList(a.doveIP)
	return s
}

func dateString(k int) string {
	y, m, d := k/10000, k/100%100, k%100
	b := make([]byte, 0, 10)
	b = appendInt(b, y, 4)
	b = append(b, '-')
	b = appendInt(b, m, 2)
	b = append(b, '-')
	b = appendInt(b, d, 2)
	return string(b)
}

func appendInt(b []byte, v, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i == len(tmp) {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	for k := len(tmp) - i; k < width; k++ {
		b = append(b, '0')
	}
	return append(b, tmp[i:]...)
}

func domList(m map[string]*domStat, recip bool) []DomainStats {
	out := make([]DomainStats, 0, len(m))
	for k, v := range m {
		if recip && v.count == 0 && v.deferrals == 0 {
			continue
		}
		d := DomainStats{Domain: k, Count: v.count, Bytes: v.bytes, Deferrals: v.deferrals}
		if recip {
			if v.count > 0 {
				d.AvgDelay = v.delaySum / float64(v.count)
			}
			d.MaxDelay = v.delayMax
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Domain < out[j].Domain
	})
	return out
}

func addrList(m map[string]*addrStat) []AddressStats {
	out := make([]AddressStats, 0, len(m))
	for k, v := range m {
		out = append(out, AddressStats{k, v.count, v.bytes})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].Bytes != out[j].Bytes {
			return out[i].Bytes > out[j].Bytes
		}
		return out[i].Address < out[j].Address
	})
	return out
}

func reasonList(m map[reasonKey]int64) []Reason {
	out := make([]Reason, 0, len(m))
	for k, v := range m {
		out = append(out, Reason{k.group, k.text, v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Text < out[j].Text
	})
	return out
}

func countList(m counts) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{k, *v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	return out
}

func (s stamp) time(loc *time.Location) time.Time {
	if !s.set || s.mon < 1 || s.mon > 12 {
		return time.Time{}
	}
	if s.hasOffset {
		loc = time.FixedZone("", s.offset)
	}
	return time.Date(s.year, time.Month(s.mon), s.day, s.hour, s.min, s.sec, s.nsec, loc)
}
