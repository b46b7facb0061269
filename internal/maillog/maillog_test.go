package maillog

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var ref = time.Date(2025, 1, 10, 12, 0, 0, 0, time.UTC)

func TestParseLineFormats(t *testing.T) {
	cet := time.FixedZone("", 3600)
	tests := []struct {
		name string
		line string
		want Entry
	}{{
		name: "syslog, year from reference",
		line: "Nov  2 00:00:01 mx1 postfix/smtpd[24965]: 612DD272D1: client=unknown[192.77.202.167]",
		want: Entry{Time: time.Date(2024, 11, 2, 0, 0, 1, 0, time.UTC), Host: "mx1", Program: "postfix/smtpd", Instance: "postfix",
			Service: "smtpd", PID: 24965, Daemon: DaemonPostfix, Event: EventClient, QueueID: "612DD272D1",
			Message: "client=unknown[192.77.202.167]", Client: Endpoint{Host: "unknown", IP: "192.77.202.167"}},
	}, {
		name: "Postfix maillog_file, RFC 3339 with microseconds",
		line: "2024-01-02T03:04:05.123456+01:00 mx postfix-out/smtp[77]: ABCDEF123: to=<Bob@Example.org>, orig_to=<b@x>, relay=mx.example.org[192.0.2.7]:25, delay=1.5, delays=0.1/0.2/0.3/0.9, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 99AA00BB)",
		want: Entry{Time: time.Date(2024, 1, 2, 3, 4, 5, 123456000, cet), Host: "mx", Program: "postfix-out/smtp", Instance: "postfix-out",
			Service: "smtp", PID: 77, Daemon: DaemonPostfix, Event: EventDelivery, QueueID: "ABCDEF123",
			Message: "to=<Bob@Example.org>, orig_to=<b@x>, relay=mx.example.org[192.0.2.7]:25, delay=1.5, delays=0.1/0.2/0.3/0.9, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 99AA00BB)",
			To:      "Bob@Example.org", OrigTo: "b@x", Relay: Endpoint{Host: "mx.example.org", IP: "192.0.2.7", Port: 25}, Delay: 1.5,
			Delays: &Delays{0.1, 0.2, 0.3, 0.9}, DSN: "2.0.0", Status: StatusSent, Reply: "250 2.0.0 Ok: queued as 99AA00BB", RelatedQueueID: "99AA00BB"},
	}, {
		name: "journalctl -o short-iso",
		line: "2024-01-02T03:04:05+0100 mx postfix/sender-cleanup/cleanup[5]: 4F5C64474F: message-id=<a@b>",
		want: Entry{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, cet), Host: "mx", Program: "postfix/sender-cleanup/cleanup", Instance: "postfix",
			Service: "cleanup", PID: 5, Daemon: DaemonPostfix, Event: EventMessageID, QueueID: "4F5C64474F", Message: "message-id=<a@b>", MessageID: "a@b"},
	}, {
		name: "journalctl -o json",
		line: `{"__REALTIME_TIMESTAMP":"1704164645000000","_HOSTNAME":"mx","SYSLOG_IDENTIFIER":"postfix/qmgr","_PID":"999","MESSAGE":"0F5383D: from=<a@b.example>, size=5360, nrcpt=1 (queue active)"}`,
		want: Entry{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Host: "mx", Program: "postfix/qmgr", Instance: "postfix",
			Service: "qmgr", PID: 999, Daemon: DaemonPostfix, Event: EventQueued, QueueID: "0F5383D",
			Message: "from=<a@b.example>, size=5360, nrcpt=1 (queue active)", From: "a@b.example", Size: 5360, NRcpt: 1},
	}, {
		name: "Dovecot's own log file, no host",
		line: "2013-08-11 03:56:40 auth-worker(default): Info: pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
		want: Entry{Time: time.Date(2013, 8, 11, 3, 56, 40, 0, time.UTC), Program: "auth-worker", Instance: "dovecot", Service: "auth-worker",
			Daemon: DaemonDovecot, Level: LevelInfo, Event: EventAuthFailure,
			Message: "pam(username,1.2.3.4): pam_authenticate() failed: Authentication failure (password mismatch?)",
			Client:  Endpoint{IP: "1.2.3.4"}, SASLUsername: "username", Detail: "pam_authenticate() failed: Authentication failure (password mismatch?)"},
	}, {
		name: "Dovecot login by syslog",
		line: "Nov  2 00:01:00 mx1 dovecot[152]: imap-login: Login: user=<bob@example.com>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1, mpid=7, TLS, session=<x>",
		want: Entry{Time: time.Date(2024, 11, 2, 0, 1, 0, 0, time.UTC), Host: "mx1", Program: "dovecot", Instance: "dovecot", Service: "imap-login",
			PID: 152, Daemon: DaemonDovecot, Event: EventLogin, Message: "Login: user=<bob@example.com>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1, mpid=7, TLS, session=<x>",
			Client: Endpoint{IP: "192.0.2.9"}, SASLUsername: "bob@example.com", SASLMethod: "PLAIN"},
	}, {
		name: "NOQUEUE reject with reply parts",
		line: "Nov  2 00:00:03 mx1 postfix/smtpd[28636]: NOQUEUE: reject: RCPT from mail22.example.org[198.60.214.43]: 550 5.1.1 <mallory@gmail.example>: Recipient address rejected: User unknown in virtual mailbox table; from=<billing@shop.example> to=<mallory@gmail.example> proto=ESMTP helo=<WIN-3KD8>",
		want: Entry{Time: time.Date(2024, 11, 2, 0, 0, 3, 0, time.UTC), Host: "mx1", Program: "postfix/smtpd", Instance: "postfix", Service: "smtpd",
			PID: 28636, Daemon: DaemonPostfix, Event: EventReject, QueueID: "NOQUEUE",
			Message: "reject: RCPT from mail22.example.org[198.60.214.43]: 550 5.1.1 <mallory@gmail.example>: Recipient address rejected: User unknown in virtual mailbox table",
			Client:  Endpoint{Host: "mail22.example.org", IP: "198.60.214.43"}, From: "billing@shop.example", To: "mallory@gmail.example",
			Reject: &Reject{Action: "reject", Stage: "RCPT", Code: 550, Enhanced: "5.1.1", Data: "mallory@gmail.example",
				Text: "Recipient address rejected: User unknown in virtual mailbox table", Proto: "ESMTP", Helo: "WIN-3KD8"}},
	}, {
		name: "SASL failure with username",
		line: "Nov  4 09:11:01 mail postfix/submission/smtpd[1234]: warning: unknown[192.0.2.152]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=admin",
		want: Entry{Time: time.Date(2024, 11, 4, 9, 11, 1, 0, time.UTC), Host: "mail", Program: "postfix/submission/smtpd", Instance: "postfix", Service: "smtpd",
			PID: 1234, Daemon: DaemonPostfix, Level: LevelWarning, Event: EventAuthFailure,
			Message: "SASL LOGIN authentication failed: (reason unavailable), sasl_username=admin",
			Client:  Endpoint{Host: "unknown", IP: "192.0.2.152"}, SASLMethod: "LOGIN", SASLUsername: "admin", Detail: "(reason unavailable)"},
	}, {
		name: "another program",
		line: "Nov  2 00:00:00 mx1 amavis[123]: (123-01) Passed CLEAN",
		want: Entry{Time: time.Date(2024, 11, 2, 0, 0, 0, 0, time.UTC), Host: "mx1", Program: "amavis", Instance: "amavis", Service: "amavis",
			PID: 123, Daemon: DaemonOther, Event: EventOther, Message: "(123-01) Passed CLEAN"},
	}, {
		name: "not a log line",
		line: "# failJSON: { \"match\": false }",
		want: Entry{Event: EventUnparsed},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseLine([]byte(tt.line), Options{Reference: ref})
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApproxTime(0)); diff != "" {
				t.Errorf("ParseLine(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

// A log read in January with December lines before January lines spans
// two years.
func TestYearBoundary(t *testing.T) {
	log := "Dec 31 23:59:59 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n" +
		"Jan  1 00:00:01 mx postfix/smtpd[1]: disconnect from a[192.0.2.1]\n"
	for _, tt := range []struct {
		ref        time.Time
		first, end string
	}{
		{time.Date(2025, 1, 1, 0, 5, 0, 0, time.UTC), "2024-12-31T23:59:59Z", "2025-01-01T00:00:01Z"},
		{time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), "2024-12-31T23:59:59Z", "2025-01-01T00:00:01Z"},
		// Clock skew: a line a few hours after the reference is still
		// taken as recent, not as a year old.
		{time.Date(2024, 12, 31, 20, 0, 0, 0, time.UTC), "2024-12-31T23:59:59Z", "2025-01-01T00:00:01Z"},
		// Read much later, the same lines are still one year apart.
		{time.Date(2025, 11, 15, 0, 0, 0, 0, time.UTC), "2024-12-31T23:59:59Z", "2025-01-01T00:00:01Z"},
	} {
		s, err := Summarize(context.Background(), Options{Reference: tt.ref}, strings.NewReader(log))
		if err != nil {
			t.Fatal(err)
		}
		got := []string{s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339)}
		if diff := cmp.Diff([]string{tt.first, tt.end}, got); diff != "" {
			t.Errorf("reference %v (-want +got):\n%s", tt.ref, diff)
		}
		var days []string
		for _, d := range s.PerDay {
			days = append(days, d.Date)
		}
		if len(days) != 0 {
			t.Errorf("per-day rows for lines without traffic: %v", days)
		}
	}
}

func TestPerDayAndHour(t *testing.T) {
	log := strings.Join([]string{
		"Dec 31 23:10:00 mx postfix/smtpd[1]: AAAAA1: client=a.example.com[192.0.2.1]",
		"Dec 31 23:10:01 mx postfix/qmgr[2]: AAAAA1: from=<s@example.com>, size=100, nrcpt=1 (queue active)",
		"Jan  1 00:10:02 mx postfix/smtp[3]: AAAAA1: to=<r@example.net>, relay=mx.example.net[192.0.2.9]:25, delay=3600, delays=1/1/1/3597, dsn=2.0.0, status=sent (250 ok)",
		"Jan  1 00:20:00 mx postfix/smtp[3]: BBBBB2: to=<r@example.net>, relay=none, delay=9, delays=1/1/1/6, dsn=4.4.1, status=deferred (connect to mx.example.net[192.0.2.9]:25: Connection timed out)",
	}, "\n")
	s, err := Summarize(context.Background(), Options{Reference: ref}, strings.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	wantDays := []DayTraffic{
		{Date: "2024-12-31", Traffic: Traffic{Received: 1}},
		{Date: "2025-01-01", Traffic: Traffic{Delivered: 1, Deferred: 1}},
	}
	if diff := cmp.Diff(wantDays, s.PerDay); diff != "" {
		t.Errorf("per day (-want +got):\n%s", diff)
	}
	if s.PerHour[23].Received != 1 || s.PerHour[0].Delivered != 1 || s.PerHour[0].Deferred != 1 {
		t.Errorf("per hour: %+v", s.PerHour)
	}
	wantDom := []DomainStats{{Domain: "example.net", Count: 1, Bytes: 100, Deferrals: 1, AvgDelay: 3600, MaxDelay: 3600}}
	if diff := cmp.Diff(wantDom, s.ByRecipientDomain); diff != "" {
		t.Errorf("domains (-want +got):\n%s", diff)
	}
	wantDef := []Reason{{Group: "smtp", Text: "Connection timed out", Count: 1}}
	if diff := cmp.Diff(wantDef, s.Deferrals); diff != "" {
		t.Errorf("deferrals (-want +got):\n%s", diff)
	}
}

// The documented differences from pflogsumm (PFLOGSUMM.md): for each, the
// real pflogsumm skips the lines (its totals equal our compat totals) and
// mxray counts them.
func TestPflogsummDifferences(t *testing.T) {
	flow := func(ts func(i int) string, prog func(svc string) string) string {
		return strings.Join([]string{
			ts(0) + " mx " + prog("smtpd") + "[1]: ABCDE1: client=mail.example.com[192.0.2.1]",
			ts(1) + " mx " + prog("qmgr") + "[2]: ABCDE1: from=<s@example.com>, size=1000, nrcpt=1 (queue active)",
			ts(2) + " mx " + prog("smtp") + "[3]: ABCDE1: to=<r@example.net>, relay=mx.example.net[192.0.2.9]:25, delay=1, delays=0.1/0.1/0.1/0.7, dsn=2.0.0, status=sent (250 ok)",
			ts(3) + " mx " + prog("smtpd") + "[1]: NOQUEUE: reject: RCPT from x[192.0.2.2]: 554 5.7.1 <r@example.net>: Relay access denied; from=<a@b.example> to=<r@example.net> proto=ESMTP helo=<x>",
			ts(4) + " mx " + prog("cleanup") + "[4]: ABCDE2: reject: header Subject: spam from x[192.0.2.2]; from=<a@b.example> to=<r@example.net> proto=ESMTP helo=<x>: 5.7.1 no",
		}, "\n") + "\n"
	}
	syslogTS := func(i int) string { return "Nov  2 00:00:0" + string(rune('0'+i)) }
	counted := Totals{Received: 1, Delivered: 1, Rejected: 2, RejectedPercent: 66, BytesReceived: 1000, BytesDelivered: 1000,
		Senders: 1, SendingDomains: 1, Recipients: 1, RecipientDomains: 1}
	tests := []struct {
		name string
		log  string
	}{
		{"multi-instance syslog name", flow(syslogTS, func(s string) string { return "postfix-out/" + s })},
		{"nested service name", flow(syslogTS, func(s string) string { return "postfix/amavis-in/" + s })},
		{"Postfix 3.10 tls= field", strings.ReplaceAll(flow(syslogTS, func(s string) string { return "postfix/" + s }), "delays=0.1/0.1/0.1/0.7, ", "delays=0.1/0.1/0.1/0.7, tls=may, ")},
		{"journalctl short-iso zone", flow(func(i int) string { return "2024-11-02T00:00:0" + string(rune('0'+i)) + "+0100" }, func(s string) string { return "postfix/" + s })},
		{"ISO timestamp without zone", flow(func(i int) string { return "2024-11-02T00:00:0" + string(rune('0'+i)) }, func(s string) string { return "postfix/" + s })},
	}
	dir := t.TempDir()
	exactScript := exactPflogsumm(t, dir)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "mail.log")
			if err := os.WriteFile(p, []byte(tt.log), 0o644); err != nil {
				t.Fatal(err)
			}
			compat := summarizeFile(t, p, true)
			if diff := cmp.Diff(pflogsummTotals(t, exactScript, p), totalsMap(compat, exact)); diff != "" {
				t.Errorf("compat differs from pflogsumm (-pflogsumm +compat):\n%s", diff)
			}
			if compat.Received+compat.Delivered != 0 && tt.name != "multi-instance syslog name" {
				// pflogsumm sees the reject lines of some cases but must
				// miss the message.
				t.Logf("pflogsumm counts %+v", compat)
			}
			if diff := cmp.Diff(counted, summarizeFile(t, p, false)); diff != "" {
				t.Errorf("mxray totals (-want +got):\n%s", diff)
			}
			if compat == counted {
				t.Errorf("pflogsumm counts this input fully; it is not a difference")
			}
		})
	}
}

func TestOpenGzip(t *testing.T) {
	dir := t.TempDir()
	line := "Nov  2 00:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n"
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.Repeat(line, 3)))
	zw.Close()
	// Named without .gz: detection is by magic bytes.
	for name, data := range map[string][]byte{"mail.log.2": gz.Bytes(), "mail.log": []byte(strings.Repeat(line, 3))} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		f, err := Open(p)
		if err != nil {
			t.Fatal(err)
		}
		s, err := Summarize(context.Background(), Options{}, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if s.Lines.Postfix != 3 {
			t.Errorf("%s: %+v", name, s.Lines)
		}
	}
	// A corrupt gzip stream is an error, not silently short input.
	p := filepath.Join(dir, "bad")
	os.WriteFile(p, append(gz.Bytes()[:20:20], 0, 0, 0), 0o644)
	f, err := Open(p)
	if err == nil {
		_, err = Summarize(context.Background(), Options{}, f)
		f.Close()
	}
	if !errors.Is(err, ErrGzip) {
		t.Errorf("corrupt gzip: err = %v, want ErrGzip", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// Lines longer than MaxLineLength are counted once as unparsed; the lines
// around them still count.
func TestLongLine(t *testing.T) {
	line := "Nov  2 00:00:00 mx postfix/smtpd[1]: connect from a[192.0.2.1]\n"
	in := line + strings.Repeat("x", 3*MaxLineLength) + "\n" + line + "no newline at the end"
	s, err := Summarize(context.Background(), Options{}, strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := LineCounts{Total: 4, Postfix: 2, Unparsed: 2}
	if diff := cmp.Diff(want, s.Lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Summarize(ctx, Options{}, strings.NewReader("x\n")); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestWriteText(t *testing.T) {
	p := generateLog(t, t.TempDir(), "300")
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Summarize(context.Background(), Options{Reference: ref}, f)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteText(&b, s); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Grand Totals", "received", "bytes delivered", "Per-Hour Traffic Summary", "Host/Domain Summary: Message Delivery",
		"Senders by message size", "Message Deferrals", "Message Bounces", "Rejects, warnings, holds and discards",
		"SASL authentication failures", "postscreen connections", "Dovecot", "login failures",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if s.SMTP.SASLFailures == 0 || s.Dovecot.LoginFailures == 0 || s.SMTP.Postscreen.Connections == 0 || len(s.Rejects) == 0 {
		t.Errorf("generated traffic not summarised: smtp %+v dovecot %+v", s.SMTP, s.Dovecot)
	}
}
