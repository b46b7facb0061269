package arf

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mxray/mxray/internal/report/mimetree"
	"github.com/mxray/mxray/internal/testutil"
)

// summary is what the tests check of a Report.
type summary struct {
	FeedbackType     FeedbackType
	UserAgent        string
	ReportedDomain   []string
	SourceIP         string
	OriginalMailFrom string
	OriginalRcptTo   []string
	AuthFailure      AuthFailureType
	DeliveryResult   DeliveryResult
	OriginalType     string
	OriginalFrom     string
	OriginalSubject  string
	OriginalMsgID    string
	Deviations       []string
}

func summarize(r *Report) summary {
	s := summary{
		FeedbackType:     r.FeedbackType,
		UserAgent:        r.UserAgent,
		ReportedDomain:   r.ReportedDomain,
		OriginalMailFrom: r.OriginalMailFrom,
		OriginalRcptTo:   r.OriginalRcptTo,
		AuthFailure:      r.AuthFailure,
		DeliveryResult:   r.DeliveryResult,
		Deviations:       r.Deviations,
	}
	if r.SourceIP.IsValid() {
		s.SourceIP = r.SourceIP.String()
	}
	if o := r.Original; o != nil {
		s.OriginalType, s.OriginalFrom, s.OriginalSubject, s.OriginalMsgID = o.MediaType, o.From, o.Subject, o.MessageID
	}
	return s
}

const devReceivedDate = "Received-Date used instead of Arrival-Date (RFC 5965 §3.2)"

// corpus names every file of ../shared/testdata/dmarc-failure-reports.
// doc marks files that are not samples; err is the reason a near miss is
// rejected with.
var corpus = map[string]struct {
	doc  bool
	err  error
	want summary
}{
	"SOURCE.md":           {doc: true},
	"parsedmarc/LICENSE":  {doc: true},
	"sisimai-arf/LICENSE": {doc: true},
	"parsedmarc/DMARC Failure Report for domain.de (mail-from=sharepoint@domain.de, ip=10.10.10.10).eml": {want: summary{
		FeedbackType: AuthFailure, UserAgent: "Lua/1.0", ReportedDomain: []string{"domain.de"}, SourceIP: "10.10.10.10",
		OriginalMailFrom: "sharepoint@domain.de", OriginalRcptTo: []string{"peter.pan@domain.de"},
		AuthFailure: FailDMARC, DeliveryResult: "smg-policy-action",
		OriginalType: "message/rfc822", OriginalFrom: `"Interaktive Wettbewerber-Übersicht" <sharepoint@domain.de>`,
		OriginalSubject: "Subject", OriginalMsgID: "<38.E7.30937.BD6E1BB5@ mailrelay.de>",
	}},
	"parsedmarc/[Netease DMARC Failure Report] Rent Reminder.eml": {want: summary{
		FeedbackType: AuthFailure, UserAgent: "NtesDmarcReporter/1.0", ReportedDomain: []string{"cardinal.com"}, SourceIP: "167.89.69.24",
		OriginalMailFrom: "bounces+1137616-c1ad-xsj399=163.com@email.entrata.com", DeliveryResult: Delivered,
		OriginalType: "message/rfc822", OriginalFrom: "700 on Washington <info@cardinal.com>",
		OriginalSubject: "Rent Reminder", OriginalMsgID: "<oguVx1AxQayV5Sv2nYK-rA@ismtpd0007p1las1.sendgrid.net>",
		Deviations: []string{"report sent as multipart/mixed, not multipart/report (RFC 5965 §2)"},
	}},
	"parsedmarc/dmarc_ruf_report_linkedin.crlf.eml":   {want: linkedin},
	"parsedmarc/dmarc_ruf_report_linkedin.eml":        {want: linkedin},
	"parsedmarc/exim_plain_text_only_no_arf_part.eml": {err: ErrNoFeedbackPart},
	"sisimai-arf/arf-01.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "SMP-FBL", ReportedDomain: []string{"example.ed.jp"}, SourceIP: "192.0.2.89",
		OriginalType: "message/rfc822", OriginalFrom: `"Email Abuse" <abuse@example.ed.jp>`, OriginalSubject: "Kijitora cat family",
		Deviations: []string{devReceivedDate},
	}},
	"sisimai-arf/arf-02.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "Yahoo!-Mail-Feedback/1.0", ReportedDomain: []string{"example.com"},
		OriginalMailFrom: "shironeko@example.com", OriginalRcptTo: []string{"this-local-part-does-not-exist-on-yahoo@yahoo.com"},
		OriginalType: "message/rfc822", OriginalFrom: `"Shironeko Nyanko" <shironeko@example.com>`, OriginalSubject: "Nyaaaaaaaan",
		OriginalMsgID: "<000000000000000000000000.smtp@example.com>",
		Deviations:    []string{devReceivedDate},
	}},
	"sisimai-arf/arf-11.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "ARF-Agent/1.0",
		OriginalType: "message/rfc822", OriginalFrom: "<shironeko@example.net>", OriginalSubject: "Nyaaan",
		OriginalMsgID: "ffffffffffffffffffffffffff0000000000@example.net",
	}},
	"sisimai-arf/arf-12.eml": {want: summary{
		FeedbackType: "opt-out", UserAgent: "ARF-Agent/1.0",
		OriginalType: "text/rfc822-headers", OriginalFrom: "<shironeko@example.net>", OriginalSubject: "Nyaaan",
		OriginalMsgID: "0000000000000000000000000@example.net",
		Deviations:    []string{"text/rfc822-header used for text/rfc822-headers"},
	}},
	"sisimai-arf/arf-14.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "Yahoo!-Mail-Feedback/2.0", ReportedDomain: []string{"amazonses.com"},
		OriginalMailFrom: "2222222222222222-22222222-0000-eeee-ffff-222222222222-222222@amazonses.com",
		OriginalRcptTo:   []string{"kijitora@y.example.com"},
		OriginalType:     "message/rfc822", OriginalFrom: "Kijitora <kijitora@example.jp>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<2222222222222222-00000000-eeee-eeee-ffff-222222222222-111111@email.amazonses.com>",
		Deviations:    []string{devReceivedDate},
	}},
	"sisimai-arf/arf-15.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "ReturnPathFBL/1.0", SourceIP: "192.0.2.222", OriginalMailFrom: "kijitora@example.net",
		OriginalType: "message/rfc822", OriginalFrom: "Kijitora <kijitora@example.net>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<ffffffffffffffffffffffff00000000@example.net>",
	}},
	"sisimai-arf/arf-16.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "ReturnPathFBL/1.0", ReportedDomain: []string{"example.com", "example.org"}, SourceIP: "192.0.2.1",
		OriginalMailFrom: "neko@example.jp",
		OriginalRcptTo: []string{"kijitora@example.com", "sironeko@example.com", "mikeneko@example.com", "sabatora@example.com",
			"sirokiji@example.org", "kuroneko@example.com", "sabineko@example.com"},
		OriginalType: "message/rfc822", OriginalFrom: "Neko <neko@example.jp>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<ffffffffffffffffffffffff0000000@example.jp>",
	}},
	"sisimai-arf/arf-17.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "abusix-py/0.1", SourceIP: "192.0.2.3", OriginalMailFrom: "sironeko@example.jp",
		OriginalRcptTo: []string{"kijitora@example.com", "sabatora@example.net"},
		OriginalType:   "message/rfc822", OriginalFrom: `"Sironeko" <sironeko@example.jp>`, OriginalSubject: "Nyaan",
		OriginalMsgID: "<EEEEEEEE-0000-0000-0000-EEEEEEEE2222@example.net>",
	}},
	"sisimai-arf/arf-18.eml": {want: summary{
		FeedbackType: AuthFailure, UserAgent: "Lua/1.0", ReportedDomain: []string{"example.net"}, SourceIP: "192.0.2.222",
		OriginalMailFrom: "sironeko@example.org", OriginalRcptTo: []string{"kijitora@example.com"},
		AuthFailure: FailDMARC, DeliveryResult: Delivered,
		OriginalType: "message/rfc822", OriginalFrom: "Sironeko <sironeko@example.org>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<000000002.2222222.1500000000022@example.net>",
	}},
	"sisimai-arf/arf-19.eml": {want: summary{
		FeedbackType: AuthFailure, UserAgent: "NtesDmarcReporter/1.0", ReportedDomain: []string{"example.net"}, SourceIP: "203.0.113.2",
		OriginalMailFrom: "sironeko@neko.example.com", DeliveryResult: Delivered,
		OriginalType: "text/rfc822-headers", OriginalFrom: "<sironeko@example.net>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<000000000.2222222.0000000000002@example.net>",
	}},
	"sisimai-arf/arf-20.eml": {want: summary{
		FeedbackType: AuthFailure, UserAgent: "OpenDMARC-Filter/1.3.0", ReportedDomain: []string{"example.net"}, SourceIP: "203.0.113.2",
		OriginalMailFrom: "dmarc-bounces@ietf.example.org", AuthFailure: FailDMARC,
		OriginalType: "text/rfc822-headers", OriginalFrom: "<sironeko@example.net>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<000000000eee@example.net>",
	}},
	"sisimai-arf/arf-21.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "ReturnPathFBL/1.0", SourceIP: "198.51.100.224", OriginalMailFrom: "sironeko@example.net",
		OriginalType: "message/rfc822", OriginalFrom: "Neko <sironeko@example.net>", OriginalSubject: "Nyaan",
		OriginalMsgID: "<00000000000000000000000022222222@example.net>",
	}},
	// Hotmail/Outlook JMRP complaints: multipart/mixed with the message
	// attached, no feedback-report part.
	"sisimai-arf/arf-22.eml": {err: ErrNotMultipartReport},
	"sisimai-arf/arf-23.eml": {err: ErrNotMultipartReport},
	"sisimai-arf/arf-24.eml": {err: ErrNotMultipartReport},
	"sisimai-arf/arf-25.eml": {want: summary{
		FeedbackType: Abuse, UserAgent: "ReturnPathFBL/2.0", ReportedDomain: []string{"example.com"}, SourceIP: "10.0.0.1",
		OriginalMailFrom: "alice@example.com", OriginalRcptTo: []string{"hashed@example.com"},
		OriginalType: "message/rfc822", // the original is "REDACTED"
	}},
	// A plain-text "unsubscribe" message.
	"sisimai-arf/arf-26.eml": {err: ErrNotMultipartReport},
}

var linkedin = summary{
	FeedbackType: AuthFailure, UserAgent: "Lua/1.0", ReportedDomain: []string{"example.com"}, SourceIP: "10.10.10.10",
	OriginalRcptTo: []string{"recipient@linkedin.com"}, AuthFailure: FailDMARC, DeliveryResult: Delivered,
	OriginalType: "message/rfc822", OriginalFrom: "Sender <sender@example.com>", OriginalSubject: "Subject line, could be UTF8 encoded",
	OriginalMsgID: "<01010101010101010101010101010101@ABAB01MS0016.someserver.loc>",
}

func TestCorpus(t *testing.T) {
	dir := testutil.Shared(t, "dmarc-failure-reports")
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		seen[rel] = true
		tt, ok := corpus[rel]
		if !ok {
			t.Errorf("%s: in the corpus but not in the test table", rel)
			return nil
		}
		if tt.doc {
			return nil
		}
		t.Run(rel, func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Parse(raw)
			if tt.err != nil {
				if !errors.Is(err, ErrNotARF) || !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want ErrNotARF and %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(r)); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			if r.HumanReadable == "" {
				t.Errorf("no human-readable part")
			}
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range corpus {
		if !seen[name] {
			t.Errorf("%s: in the test table but not in the corpus", name)
		}
	}
}

const base = `From: reports@example.net
Subject: FW: test
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=b

--b
Content-Type: text/plain

This is an authentication failure report.
--b
Content-Type: message/feedback-report

Feedback-Type: auth-failure
User-Agent: Test/1.0
Version: 1
Original-Mail-From: <>
Original-Rcpt-To: <u@example.net>
Arrival-Date: Tue, 30 Apr 2019 02:09:00 +0000
Reporting-MTA: dns; mx.example.net
Source-IP: [2001:db8::1]
Incidents: 3
Authentication-Results: mx.example.net; dmarc=fail header.from=example.com
Reported-Domain: example.com
Reported-URI: http://example.com/x
Auth-Failure: signature
Delivery-Result: spam
DKIM-Domain: example.com
DKIM-Identity: @example.com
DKIM-Selector: s1
DKIM-Canonicalized-Header: ZnJvbTp4
 DQo=
DKIM-Canonicalized-Body: eA
SPF-DNS: txt : example.com : v=spf1 -all
Identity-Alignment: spf, DKIM
X-Custom: kept

--b
Content-Type: text/rfc822-headers

From: =?utf-8?q?J=C3=B6rg?= <j@example.com>
Subject: hi
Message-ID: <1@example.com>
--b--
`

func TestParseFields(t *testing.T) {
	for _, nl := range []string{"\n", "\r\n", "\r"} {
		r, err := Parse([]byte(strings.ReplaceAll(base, "\n", nl)))
		if err != nil {
			t.Fatal(err)
		}
		got := *r
		got.Header, got.Fields, got.Original.Header = mimetree.Header{}, mimetree.Header{}, mimetree.Header{}
		want := Report{
			Subject:                 "FW: test",
			FeedbackType:            AuthFailure,
			UserAgent:               "Test/1.0",
			Version:                 "1",
			OriginalRcptTo:          []string{"u@example.net"},
			ArrivalDate:             "Tue, 30 Apr 2019 02:09:00 +0000",
			ArrivalTime:             r.ArrivalTime,
			ReportingMTA:            "dns; mx.example.net",
			SourceIP:                r.SourceIP,
			Incidents:               3,
			AuthenticationResults:   []string{"mx.example.net; dmarc=fail header.from=example.com"},
			ReportedDomain:          []string{"example.com"},
			ReportedURI:             []string{"http://example.com/x"},
			AuthFailure:             FailSignature,
			DeliveryResult:          DeliveredSpam,
			DKIMDomain:              "example.com",
			DKIMIdentity:            "@example.com",
			DKIMSelector:            "s1",
			DKIMCanonicalizedHeader: []byte("from:x\r\n"),
			DKIMCanonicalizedBody:   []byte("x"),
			SPFDNS:                  "txt : example.com : v=spf1 -all",
			IdentityAlignment:       []string{"spf", "dkim"},
			HumanReadable:           "This is an authentication failure report.",
			Original: &Original{
				MediaType: "text/rfc822-headers",
				From:      "Jörg <j@example.com>",
				Subject:   "hi",
				MessageID: "<1@example.com>",
			},
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(r.SourceIP)); diff != "" {
			t.Errorf("%q: report (-want +got):\n%s", nl, diff)
		}
		if r.SourceIP.String() != "2001:db8::1" || r.ArrivalTime.Unix() != 1556590140 {
			t.Errorf("%q: SourceIP %v, ArrivalTime %v", nl, r.SourceIP, r.ArrivalTime)
		}
		if r.Fields.Get("X-Custom") != "kept" {
			t.Errorf("%q: unknown field not kept", nl)
		}
	}
}

func TestNearMisses(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		want  error
		devia []string
	}{
		{"delivery-status report", func(s string) string {
			return strings.Replace(s, "report-type=feedback-report", "report-type=delivery-status", 1)
		}, ErrWrongReportType, nil},
		{"no feedback part", func(s string) string {
			return strings.Replace(s, "message/feedback-report", "text/plain", 1)
		}, ErrNoFeedbackPart, nil},
		{"missing Version", func(s string) string {
			return strings.Replace(s, "Version: 1\n", "", 1)
		}, ErrMissingField, nil},
		{"empty Feedback-Type", func(s string) string {
			return strings.Replace(s, "Feedback-Type: auth-failure", "Feedback-Type:", 1)
		}, ErrMissingField, nil},
		{"single text part", func(s string) string {
			return "Subject: x\n\nFeedback-Type: abuse\n"
		}, ErrNotMultipartReport, nil},
		{"no report-type is tolerated", func(s string) string {
			return strings.Replace(s, "report-type=feedback-report; ", "", 1)
		}, nil, []string{"multipart/report without report-type (RFC 5965 §2)"}},
		{"bad values are deviations", func(s string) string {
			s = strings.Replace(s, "Source-IP: [2001:db8::1]", "Source-IP: 300.1.1.1", 1)
			s = strings.Replace(s, "Incidents: 3", "Incidents: many", 1)
			return strings.Replace(s, "DKIM-Canonicalized-Body: eA", "DKIM-Canonicalized-Body: %%", 1)
		}, nil, []string{`unparsable Source-IP "300.1.1.1"`, `unparsable Incidents "many"`, "DKIM-Canonicalized-Body is not valid base64"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.edit(base)))
			if tt.want != nil {
				if !errors.Is(err, ErrNotARF) || !errors.Is(err, tt.want) || r != nil {
					t.Fatalf("Parse = %v, %v; want ErrNotARF and %v", r, err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.devia, r.Deviations); diff != "" {
				t.Errorf("deviations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLimitsPassThrough(t *testing.T) {
	_, err := ParseLimits([]byte(base), mimetree.Limits{MaxInputBytes: 100})
	if !errors.Is(err, mimetree.ErrTooLarge) || errors.Is(err, ErrNotARF) {
		t.Fatalf("err = %v, want mimetree.ErrTooLarge and not ErrNotARF", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseLimits(data, mimetree.Limits{MaxDepth: 8, MaxParts: 100})
		if (err == nil) == (r == nil) {
			t.Fatalf("Parse = %v, %v", r, err)
		}
		if err == nil && r.FeedbackType == "" {
			t.Fatalf("report without Feedback-Type")
		}
	})
}
