package dsn

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mxray/mxray/internal/report/mimetree"
)

const dsnMsg = `From: MAILER-DAEMON@mx.example.net (Mail Delivery System)
To: sender@example.org
Subject: Undelivered Mail Returned to Sender
Content-Type: multipart/report; report-type=delivery-status; boundary=b

--b
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.
--b
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Tue, 30 Apr 2019 02:09:00 +0000

Final-Recipient: rfc822; <gone@example.com>
Original-Recipient: rfc822;Gone@example.com
Action: failed
Status: 5.0.0 (permanent failure)
Remote-MTA: dns; mx.example.com. (192.0.2.1)
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address
 rejected: User unknown
Last-Attempt-Date: Tue, 30 Apr 2019 02:09:01 +0000

Final-Recipient: rfc822; later@example.com
Action: delayed
Status: 4.4.1
Will-Retry-Until: Fri, 3 May 2019 02:09:00 +0000

--b
Content-Type: text/rfc822-headers

From: Sender <sender@example.org>
To: gone@example.com
Subject: =?utf-8?q?H=C3=A9llo?=
Message-ID: <1@example.org>
--b--
`

func TestParseDSN(t *testing.T) {
	want := &Report{
		Kind:         Bounce,
		Severity:     Hard,
		Format:       FormatDSN,
		From:         "MAILER-DAEMON@mx.example.net (Mail Delivery System)",
		Subject:      "Undelivered Mail Returned to Sender",
		ReportingMTA: "mx.example.net",
		ArrivalDate:  "Tue, 30 Apr 2019 02:09:00 +0000",
		Recipients: []Recipient{{
			FinalRecipient:    "gone@example.com",
			OriginalRecipient: "Gone@example.com",
			Action:            ActionFailed,
			Status:            "5.1.1", // refined from 5.0.0 by the diagnostic
			StatusSource:      SourceText,
			SMTPCode:          550,
			DiagnosticType:    "smtp",
			DiagnosticCode:    "550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
			RemoteMTA:         "mx.example.com",
			LastAttemptDate:   "Tue, 30 Apr 2019 02:09:01 +0000",
		}, {
			FinalRecipient: "later@example.com",
			Action:         ActionDelayed,
			Status:         "4.4.1",
			StatusSource:   SourceDSN,
			WillRetryUntil: "Fri, 3 May 2019 02:09:00 +0000",
		}},
		HumanReadable: "I'm sorry to have to inform you that your message could not be delivered.",
		Original: &Original{
			From:      "Sender <sender@example.org>",
			To:        "gone@example.com",
			Subject:   "Héllo",
			MessageID: "<1@example.org>",
		},
	}
	ignore := cmpopts.IgnoreTypes(mimetree.Header{})
	for _, nl := range []string{"\n", "\r\n", "\r"} {
		got, err := Parse([]byte(strings.ReplaceAll(dsnMsg, "\n", nl)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got, ignore); diff != "" {
			t.Errorf("%q: report (-want +got):\n%s", nl, diff)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		msg      string
		kind     Kind
		severity Severity
		rcpt     []Recipient // address, status, code, remote MTA only
		reason   string
	}{{
		name: "postfix text bounce",
		msg: "From: MAILER-DAEMON@a.example\nTo: s@example.org\nSubject: Undelivered Mail Returned to Sender\n\n" +
			"<u@example.com>: host mx.example.com[192.0.2.7] said: 552 5.2.2 <u@example.com>:\n    Mailbox full (in reply to RCPT TO command)\n",
		kind: Bounce, severity: Hard,
		rcpt: []Recipient{{FinalRecipient: "u@example.com", Status: "5.2.2", SMTPCode: 552, RemoteMTA: "mx.example.com"}},
	}, {
		name: "qmail soft failure, two recipients",
		msg: "From: MAILER-DAEMON@q.example\nTo: s@example.org\nSubject: failure notice\n\n" +
			"I'm afraid I wasn't able to deliver your message to the following addresses.\n\n" +
			"<a@example.com>:\n192.0.2.9 does not like recipient.\nRemote host said: 452 4.2.2 over quota\n\n" +
			"<b@example.com>:\nSorry, no mailbox here by that name.\n\n--- Below this line is a copy of the message.\n\nFrom: s@example.org\nTo: c@example.com\n",
		kind: Bounce, severity: Soft,
		rcpt: []Recipient{
			{FinalRecipient: "a@example.com", Status: "4.2.2", SMTPCode: 452, RemoteMTA: "192.0.2.9"},
			{FinalRecipient: "b@example.com", Status: "5.1.1"},
		},
	}, {
		name: "delay warning",
		msg:  "From: Mail Delivery System <MAILER-DAEMON@e.example>\nTo: s@example.org\nSubject: Warning: message 1abc delayed 24 hours\n\n  slow@example.com\n    retry timeout not reached\n",
		kind: Delay,
		rcpt: []Recipient{{FinalRecipient: "slow@example.com", Status: "5.4.7"}},
	}, {
		name:   "RFC 3834 auto-reply",
		msg:    "From: a@example.com\nTo: s@example.org\nAuto-Submitted: auto-replied (vacation)\nSubject: Re: hi\n\nI am away.\n",
		kind:   AutoReply,
		reason: "Auto-Submitted: auto-replied (vacation)",
	}, {
		name:   "out of office subject",
		msg:    "From: a@example.com\nTo: s@example.org\nSubject: Out of Office: hi\n\nI am away.\n",
		kind:   AutoReply,
		reason: "Subject: Out of Office",
	}, {
		name: "auto-generated bounce is not an auto-reply",
		msg:  "From: MAILER-DAEMON@x.example\nTo: s@example.org\nAuto-Submitted: auto-replied\nSubject: failure notice\n\n<u@example.com>:\n550 5.1.1 no such user\n",
		kind: Bounce, severity: Hard,
		rcpt: []Recipient{{FinalRecipient: "u@example.com", Status: "5.1.1", SMTPCode: 550}},
	}, {
		name: "ordinary mail",
		msg:  "From: a@example.com\nTo: s@example.org\nSubject: lunch?\n\nAt 550 Main St, version 5.1.1 of the menu.\n",
		kind: NotBounce,
	}, {
		name: "IP addresses are not status codes",
		msg:  "From: postmaster@x.example\nTo: s@example.org\nSubject: Delivery failure\n\nu@example.com: connection to 10.4.5.6 failed: user unknown\n",
		kind: Bounce, severity: Hard,
		rcpt: []Recipient{{FinalRecipient: "u@example.com", Status: "5.1.1"}},
	}, {
		name: "positive DSN",
		msg: "From: MAILER-DAEMON@x.example\nTo: s@example.org\nSubject: Successful Mail Delivery Report\nContent-Type: multipart/report; report-type=delivery-status; boundary=z\n\n" +
			"--z\n\ndelivered\n--z\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x.example\n\nFinal-Recipient: rfc822; u@example.com\nAction: relayed\nStatus: 2.0.0\n--z--\n",
		kind: Relayed,
		rcpt: []Recipient{{FinalRecipient: "u@example.com", Status: "2.0.0"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			var rcpt []Recipient
			for _, rc := range r.Recipients {
				rcpt = append(rcpt, Recipient{FinalRecipient: rc.FinalRecipient, Status: rc.Status, SMTPCode: rc.SMTPCode, RemoteMTA: rc.RemoteMTA})
			}
			got := []any{r.Kind, r.Severity, rcpt, r.AutoReplyReason}
			want := []any{tt.kind, tt.severity, tt.rcpt, tt.reason}
			if diff := cmp.Diff(want, got, cmpopts.IgnoreTypes(mimetree.Header{})); diff != "" {
				t.Errorf("kind, severity, recipients, reason (-want +got):\n%s", diff)
			}
			checkInvariants(t, r)
		})
	}
}

func TestErrors(t *testing.T) {
	_, err := Parse([]byte("From: MAILER-DAEMON@x.example\nTo: s@example.org\nSubject: Returned mail\n\nSomething went wrong.\n"))
	if !errors.Is(err, ErrUnrecognised) {
		t.Errorf("bounce without recipient: err = %v, want ErrUnrecognised", err)
	}
	_, err = ParseLimits([]byte(dsnMsg), mimetree.Limits{MaxParts: 2})
	if !errors.Is(err, mimetree.ErrTooManyParts) {
		t.Errorf("err = %v, want mimetree.ErrTooManyParts", err)
	}
}

func TestExplain(t *testing.T) {
	tests := []struct {
		in                         string
		valid, known, temp         bool
		meaning, subject, wantsRef string
	}{
		{"5.1.1", true, true, false, "Bad destination mailbox address", "Addressing status", "RFC 3463 §3.3"},
		{" 5.2.2 ", true, true, false, "Mailbox full", "Mailbox status", "RFC 3463 §3.4"},
		{"4.4.1", true, true, true, "No answer from host", "Network and routing status", "RFC 3463 §3.6"},
		{"5.7.1", true, true, false, "Delivery not authorized, message refused", "Security or policy status", "RFC 3463 §3.9"},
		{"5.7.26", true, true, false, "Multiple authentication checks failed", "Security or policy status", "RFC 7372 §3.4"},
		{"4.7.0", true, true, true, "Other or undefined security status", "Security or policy status", "RFC 3463 §3.9"},
		{"4.2.0", true, true, true, "Other or undefined mailbox status", "Mailbox status", "RFC 3463 §3.4"},
		{"2.0.0", true, true, false, "Success: the message was accepted.", "Other or undefined status", "RFC 3463 §3.1"},
		{"5.7.509", true, false, false, "Security or policy status (5.7.509 is not in mxray's table)", "Security or policy status", ianaRef},
		{"5.1", false, false, false, "Not an enhanced status code (class.subject.detail, RFC 3463 §2).", "", ""},
		{"3.1.1", false, false, false, "Not an enhanced status code (class.subject.detail, RFC 3463 §2).", "", ""},
		{"5.-1.1", false, false, false, "Not an enhanced status code (class.subject.detail, RFC 3463 §2).", "", ""},
	}
	for _, tt := range tests {
		e := Explain(tt.in)
		got := []any{e.Valid, e.Known, e.Temporary, e.Meaning, e.Subject, e.Reference}
		want := []any{tt.valid, tt.known, tt.temp, tt.meaning, tt.subject, tt.wantsRef}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Explain(%q) (-want +got):\n%s", tt.in, diff)
		}
		if e.Valid && e.Fix == "" {
			t.Errorf("Explain(%q): no fix", tt.in)
		}
	}
	// Every table entry must be complete.
	for k, c := range codes {
		if c.meaning == "" || c.cause == "" || c.fix == "" || c.ref == "" {
			t.Errorf("codes[%q] incomplete: %+v", k, c)
		}
	}
}

func TestFindStatus(t *testing.T) {
	tests := []struct{ in, want string }{
		{"550 5.1.1 user unknown", "5.1.1"},
		{"host [10.4.5.6]: 550 user", ""},
		{"#5.1.1 chkusr", "5.1.1"},
		{"Exim 4.92 and 5.7.26", "5.7.26"},
		{"250 2.0.0 ok", ""},
		{"v1.5.1.1 ", ""},
		{"5.4.312 expired", "5.4.312"},
	}
	for _, tt := range tests {
		if got := findStatus(tt.in, false); got != tt.want {
			t.Errorf("findStatus(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(dsnMsg))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseLimits(data, mimetree.Limits{MaxDepth: 8, MaxParts: 100})
		if (err == nil) == (r == nil) {
			t.Fatalf("Parse = %v, %v", r, err)
		}
		if err == nil {
			checkInvariants(t, r)
			for _, rc := range r.Recipients {
				_ = Explain(rc.Status)
			}
		}
	})
}
