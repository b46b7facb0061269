package maillog

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/testutil"
)

// traceLog is a hand-written log: a message deferred once then delivered,
// a message that bounces (with its notification), a refused recipient,
// and an unrelated message that reuses the first queue id later.
const traceLog = `Nov  2 10:00:00 mx postfix/smtpd[100]: connect from client.example[192.0.2.10]
Nov  2 10:00:00 mx postfix/smtpd[100]: Anonymous TLS connection established from client.example[192.0.2.10]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Nov  2 10:00:01 mx postfix/smtpd[100]: 4AB12C3D4E: client=client.example[192.0.2.10], sasl_method=PLAIN, sasl_username=alice
Nov  2 10:00:01 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m1@client.example>
Nov  2 10:00:01 mx postfix/qmgr[102]: 4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)
Nov  2 10:00:02 mx postfix/smtp[103]: connect to mx.dest.example[198.51.100.7]:25: Connection refused
Nov  2 10:00:02 mx postfix/smtp[103]: 4AB12C3D4E: to=<bob@dest.example>, relay=none, delay=1, delays=0.1/0.01/0.89/0, dsn=4.4.1, status=deferred (connect to mx.dest.example[198.51.100.7]:25: Connection refused)
Nov  2 10:00:03 mx postfix/smtpd[100]: NOQUEUE: reject: RCPT from client.example[192.0.2.10]: 550 5.1.1 <nobody@dest.example>: Recipient address rejected: User unknown; from=<alice@client.example> to=<nobody@dest.example> proto=ESMTP helo=<client.example>
Nov  2 10:00:05 mx postfix/smtpd[100]: disconnect from client.example[192.0.2.10] ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6
Nov  2 10:10:00 mx postfix/qmgr[102]: 4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)
Nov  2 10:10:01 mx postfix/smtp[104]: 4AB12C3D4E: to=<bob@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=600, delays=599/0.01/0.5/0.49, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 99)
Nov  2 10:10:01 mx postfix/qmgr[102]: 4AB12C3D4E: removed
Nov  2 10:20:00 mx postfix/pickup[105]: 5BC23D4E5F: uid=0 from=<root>
Nov  2 10:20:00 mx postfix/cleanup[101]: 5BC23D4E5F: message-id=<m2@mx.example>
Nov  2 10:20:00 mx postfix/qmgr[102]: 5BC23D4E5F: from=<root@mx.example>, size=500, nrcpt=1 (queue active)
Nov  2 10:20:01 mx postfix/smtp[104]: 5BC23D4E5F: host mx.dest.example[198.51.100.7] said: 550 5.1.1 <carol@dest.example>: no such user (in reply to RCPT TO command)
Nov  2 10:20:01 mx postfix/smtp[104]: 5BC23D4E5F: to=<carol@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=5.1.1, status=bounced (host mx.dest.example[198.51.100.7] said: 550 5.1.1 <carol@dest.example>: no such user (in reply to RCPT TO command))
Nov  2 10:20:01 mx postfix/cleanup[101]: 6CD34E5F60: message-id=<20241102102001.6CD34E5F60@mx.example>
Nov  2 10:20:01 mx postfix/bounce[106]: 5BC23D4E5F: sender non-delivery notification: 6CD34E5F60
Nov  2 10:20:01 mx postfix/qmgr[102]: 6CD34E5F60: from=<>, size=2400, nrcpt=1 (queue active)
Nov  2 10:20:01 mx postfix/qmgr[102]: 5BC23D4E5F: removed
Nov  2 10:20:02 mx postfix/local[107]: 6CD34E5F60: to=<root@mx.example>, relay=local, delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (delivered to mailbox)
Nov  2 10:20:02 mx postfix/qmgr[102]: 6CD34E5F60: removed
Nov  2 11:00:00 mx postfix/smtpd[200]: connect from other.example[192.0.2.20]
Nov  2 11:00:00 mx postfix/smtpd[200]: 4AB12C3D4E: client=other.example[192.0.2.20]
Nov  2 11:00:00 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m3@other.example>
Nov  2 11:00:00 mx postfix/qmgr[102]: 4AB12C3D4E: from=<dave@other.example>, size=99, nrcpt=1 (queue active)
Nov  2 11:00:01 mx postfix/smtp[104]: 4AB12C3D4E: to=<erin@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=1, delays=0.1/0/0.5/0.4, dsn=4.7.1, status=deferred (host mx.dest.example[198.51.100.7] said: 451 4.7.1 greylisted (in reply to RCPT TO command))
`

// brief is what a test checks of a traced message.
type brief struct {
	QID     string
	Outcome Outcome
	Matched bool
	From    string // the parent's queue id
	Events  []Event
	Rcpt    string // address: status/attempts
	Removed bool
	MsgID   string
}

func briefs(r *TraceResult) []brief {
	var out []brief
	for _, m := range r.Messages {
		b := brief{QID: m.QueueID, Outcome: m.Outcome, Matched: m.Matched, Removed: m.Removed, MsgID: m.MessageID}
		if m.FollowedFrom != nil {
			b.From = m.FollowedFrom.QueueID
		}
		for _, e := range m.Events {
			b.Events = append(b.Events, e.Event)
		}
		var rs []string
		for _, r := range m.Recipients {
			rs = append(rs, r.Address+": "+string(r.Status)+"/"+string(rune('0'+r.Attempts)))
		}
		b.Rcpt = strings.Join(rs, ", ")
		out = append(out, b)
	}
	return out
}

func TestTrace(t *testing.T) {
	delivered := brief{QID: "4AB12C3D4E", Outcome: OutcomeDelivered, Matched: true, Removed: true, MsgID: "m1@client.example",
		Events: []Event{EventConnect, EventTLS, EventClient, EventMessageID, EventQueued, EventConnectFailed, EventDelivery,
			EventDisconnect, EventQueued, EventDelivery, EventRemoved},
		Rcpt: "bob@dest.example: sent/2"}
	bounced := brief{QID: "5BC23D4E5F", Outcome: OutcomeBounced, Matched: true, Removed: true, MsgID: "m2@mx.example",
		Events: []Event{EventPickup, EventMessageID, EventQueued, EventRemoteReply, EventDelivery, EventNotification, EventRemoved},
		Rcpt:   "carol@dest.example: bounced/1"}
	notification := brief{QID: "6CD34E5F60", Outcome: OutcomeDelivered, From: "5BC23D4E5F", Removed: true, MsgID: "20241102102001.6CD34E5F60@mx.example",
		Events: []Event{EventMessageID, EventQueued, EventDelivery, EventRemoved}, Rcpt: "root@mx.example: sent/1"}
	reused := brief{QID: "4AB12C3D4E", Outcome: OutcomeDeferred, Matched: true, MsgID: "m3@other.example",
		Events: []Event{EventConnect, EventClient, EventMessageID, EventQueued, EventDelivery}, Rcpt: "erin@dest.example: deferred/1"}
	refused := brief{QID: "NOQUEUE", Outcome: OutcomeRejected, Matched: true,
		Events: []Event{EventConnect, EventTLS, EventReject, EventDisconnect}, Rcpt: "nobody@dest.example: rejected/1"}

	tests := []struct {
		query string
		kind  QueryKind
		want  []brief
	}{
		// Queue ids are reused: two messages, each bounded by "removed".
		{"4AB12C3D4E", QueryQueueID, []brief{delivered, reused}},
		// The bounce is followed to its own queue id.
		{"5BC23D4E5F", QueryQueueID, []brief{bounced, notification}},
		{"<m2@mx.example>", QueryMessageID, []brief{bounced, notification}},
		{"m3@other.example", QueryAddress, []brief{reused}}, // a Message-ID without brackets
		{"Carol@dest.example", QueryAddress, []brief{bounced, notification}},
		// The sender matches the queued message and the refused recipient.
		{"alice@client.example", QueryAddress, []brief{delivered, refused}},
		{"nobody@nowhere.example", QueryAddress, nil},
		{"ABCDEF0123", QueryQueueID, nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			res, err := Trace(context.Background(), tc.query, Options{Reference: ref}, time.Time{}, strings.NewReader(traceLog))
			if err != nil {
				t.Fatal(err)
			}
			if res.Kind != tc.kind {
				t.Errorf("kind %s, want %s", res.Kind, tc.kind)
			}
			if diff := cmp.Diff(tc.want, briefs(res)); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
			want := 0
			for _, b := range tc.want {
				if b.Matched {
					want++
				}
			}
			if res.Matched != want {
				t.Errorf("matched %d, want %d", res.Matched, want)
			}
		})
	}
}

func TestTraceDetails(t *testing.T) {
	res, err := Trace(context.Background(), "4AB12C3D4E", Options{Reference: ref}, time.Time{}, strings.NewReader(traceLog))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Messages[0]
	if m.From == nil || *m.From != "alice@client.example" || m.Size != 1234 || m.NRcpt != 1 || m.Client != "client.example[192.0.2.10]" || m.SASLUsername != "alice" {
		t.Errorf("message header: %+v", m)
	}
	var sent TraceEvent
	for _, e := range m.Events {
		if e.Event == EventDelivery && strings.HasPrefix(e.Detail, "sent") {
			sent = e
		}
	}
	for _, s := range []string{"sent to <bob@dest.example> via mx.dest.example[198.51.100.7]:25", "dsn 2.0.0", "delay 600 s",
		"599 s before the queue manager (a)", "0.01 s in the queue manager (b)", "0.5 s connection setup", "0.49 s transmission (d)", "250 2.0.0 Ok: queued as 99"} {
		if !strings.Contains(sent.Detail, s) {
			t.Errorf("delivery detail lacks %q: %s", s, sent.Detail)
		}
	}
	if sent.Fields["dsn"] != "2.0.0" || sent.Fields["status"] != "sent" || sent.Fields["delays"] == nil || sent.PID != 104 || sent.Program != "postfix/smtp" {
		t.Errorf("delivery event: %+v", sent)
	}
	if !strings.HasSuffix(sent.Line, "status=sent (250 2.0.0 Ok: queued as 99)") {
		t.Errorf("the evidence line is %q", sent.Line)
	}
	// The remote server's "queued as 99" is not a queue file here: no link.
	if len(m.Links) != 0 {
		t.Errorf("links %+v", m.Links)
	}

	var b bytes.Buffer
	if err := WriteTrace(&b, res); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"2 message(s) match queue-id \"4AB12C3D4E\"", "4AB12C3D4E  <m1@client.example>  → DELIVERED",
		"cannot connect to mx.dest.example[198.51.100.7]:25: Connection refused", "— will be retried",
		"recipient <bob@dest.example>: sent 2.0.0 after 2 attempt(s)", "→ DEFERRED"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, b.String())
		}
	}
	b.Reset()
	empty, _ := Trace(context.Background(), "nobody@x.example", Options{}, time.Time{}, strings.NewReader(traceLog))
	WriteTrace(&b, empty)
	if !strings.Contains(b.String(), "No message matches address") {
		t.Errorf("no-match text: %q", b.String())
	}
}

func TestTraceSince(t *testing.T) {
	since := time.Date(2024, 11, 2, 10, 30, 0, 0, time.UTC)
	res, err := Trace(context.Background(), "4AB12C3D4E", Options{Reference: ref}, since, strings.NewReader(traceLog))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Messages) != 1 || res.Messages[0].MessageID != "m3@other.example" {
		t.Errorf("since %s: %+v", since, briefs(res))
	}
}

// The lightmeter corpus: for every queue id in every file, the trace has
// one message per "removed" line (plus one still in the queue), each
// starting no earlier than the previous one ended.
func TestTraceCorpusReuse(t *testing.T) {
	dir := filepath.Join(testutil.Shared(t, "mail-logs"), "lightmeter", "test_files", "postfix_logs", "individual_files")
	files, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(files) < 30 {
		t.Fatalf("%d files, %v", len(files), err)
	}
	qidRe := regexp.MustCompile(`postfix[^ ]*/(?:qmgr|smtpd|cleanup|smtp|lmtp|local|virtual|bounce|pickup|error)\[\d+\]: ([0-9A-F]{6,}): (.*)`)
	traced := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		type count struct{ removed, after int }
		ids := map[string]*count{}
		var order []string
		for _, line := range strings.Split(string(data), "\n") {
			m := qidRe.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			c := ids[m[1]]
			if c == nil {
				c = &count{}
				ids[m[1]] = c
				order = append(order, m[1])
			}
			if m[2] == "removed" {
				c.removed++
				c.after = 0
			} else {
				c.after++
			}
		}
		for _, id := range order {
			res, err := Trace(context.Background(), id, Options{Reference: ref}, time.Time{}, bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			traced++
			c := ids[id]
			want := c.removed
			if c.after > 0 {
				want++
			}
			// A missing "removed" before a new client= line also ends a life.
			if res.Matched < want {
				t.Errorf("%s: %s: %d messages, want at least %d", filepath.Base(f), id, res.Matched, want)
			}
			for _, m := range res.Messages {
				if len(m.Events) == 0 || m.Outcome == "" {
					t.Errorf("%s: %s: empty message %+v", filepath.Base(f), id, m)
				}
				if m.Matched && m.QueueID != id {
					t.Errorf("%s: %s: matched %s", filepath.Base(f), id, m.QueueID)
				}
			}
		}
	}
	if traced < 100 {
		t.Errorf("only %d queue ids traced", traced)
	}
}

func TestTraceCorpusBounce(t *testing.T) {
	f := filepath.Join(testutil.Shared(t, "mail-logs"), "lightmeter", "test_files", "postfix_logs", "individual_files", "1_bounce_simple.log")
	data, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Trace(context.Background(), "invalid.email@example.com", Options{Reference: ref}, time.Time{}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	type link struct{ QID, From, Rel string }
	var got []link
	var outcomes []Outcome
	for _, m := range res.Messages {
		l := link{QID: m.QueueID}
		if m.FollowedFrom != nil {
			l.From, l.Rel = m.FollowedFrom.QueueID, m.FollowedFrom.Relation
		}
		got = append(got, l)
		outcomes = append(outcomes, m.Outcome)
	}
	// Through the content filter (queued as), bounced, and the
	// notification delivered by LMTP, stored by Dovecot.
	want := []link{{"4AA091855DA0", "", ""}, {"776E41855DB2", "4AA091855DA0", "queued as"}, {"A48191855DA0", "776E41855DB2", "sender non-delivery notification"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Outcome{OutcomeDelivered, OutcomeBounced, OutcomeDelivered}, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	last := res.Messages[len(res.Messages)-1]
	dovecot := false
	for _, e := range last.Events {
		dovecot = dovecot || (e.Program == "dovecot" && e.Event == EventDelivery)
	}
	if !dovecot {
		t.Errorf("Dovecot's \"saved mail to INBOX\" is not in the notification's events")
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		in, q string
		kind  QueryKind
	}{
		{"4AB12C3D4E", "4AB12C3D4E", QueryQueueID},
		{"3fZkQm1Abcz4xyz", "3fZkQm1Abcz4xyz", QueryQueueID}, // long queue id
		{"bob@example.com", "bob@example.com", QueryAddress},
		{" <m1@x> ", "m1@x", QueryMessageID},
		{"NOQUEUE", "NOQUEUE", QueryMessageID},
		{"justaword", "justaword", QueryMessageID},
	} {
		q, k := ParseQuery(tc.in)
		if q != tc.q || k != tc.kind {
			t.Errorf("ParseQuery(%q) = %q, %s; want %q, %s", tc.in, q, k, tc.q, tc.kind)
		}
	}
}
