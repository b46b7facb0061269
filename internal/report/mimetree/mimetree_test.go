package mimetree

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flat is what a test compares: one row per part, in document order.
type flat struct {
	Path, Type, Filename, Body string
	Defects                    []string
}

func flatten(p *Part) []flat {
	var out []flat
	p.Walk(func(q *Part) bool {
		f := flat{Path: q.Path, Type: q.MediaType, Filename: q.Filename, Defects: q.Defects}
		if !q.IsMultipart() && q.Embedded() == nil {
			f.Body = q.Text()
		}
		out = append(out, f)
		return true
	})
	return out
}

// eol rewrites a test message written with "\n" to the given line ending.
func eol(s, nl string) string { return strings.ReplaceAll(s, "\n", nl) }

const reportMsg = `From: MAILER-DAEMON@example.net
To: a@example.org
Subject: =?UTF-8?Q?Undelivered_Mail?= =?UTF-8?B?IOKAlCByZXR1cm5lZA==?=
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="outer"

preamble is ignored
--outer
Content-Type: text/plain; charset=us-ascii

Mail could not be delivered.
--outer
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; b@example.com
Action: failed
Status: 5.1.1
--outer
Content-Type: message/rfc822

From: a@example.org
Subject: hello
Content-Type: multipart/alternative; boundary=inner

--inner
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

caf=C3=A9 soft=
break=20
--inner
Content-Type: text/html
Content-Transfer-Encoding: base64

PGI+aGk8
L2I+
--inner--
--outer
Content-Type: text/rfc822-headers

From: a@example.org
Subject: hello
--outer--
epilogue
`

func TestParseTree(t *testing.T) {
	want := []flat{
		{Path: "", Type: "multipart/report"},
		{Path: "1", Type: "text/plain", Body: "Mail could not be delivered."},
		{Path: "2", Type: "message/delivery-status", Body: "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; b@example.com\nAction: failed\nStatus: 5.1.1"},
		{Path: "3", Type: "message/rfc822"},
		{Path: "3.0", Type: "multipart/alternative"},
		{Path: "3.0.1", Type: "text/plain", Body: "café softbreak "},
		{Path: "3.0.2", Type: "text/html", Body: "<b>hi</b>"},
		{Path: "4", Type: "text/rfc822-headers", Body: "From: a@example.org\nSubject: hello"},
	}
	for _, nl := range []string{"\n", "\r\n", "\r"} {
		t.Run(fmt.Sprintf("%q", nl), func(t *testing.T) {
			root, err := Parse([]byte(eol(reportMsg, nl)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, flatten(root)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			if got, want := root.Header.Decoded("subject"), "Undelivered Mail — returned"; got != want {
				t.Errorf("decoded Subject = %q, want %q", got, want)
			}
			if got, want := root.Params["report-type"], "delivery-status"; got != want {
				t.Errorf("report-type = %q, want %q", got, want)
			}
			h, err := ParseHeader(root.Find("text/rfc822-headers").Body)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Get("SUBJECT"); got != "hello" {
				t.Errorf("rfc822-headers Subject = %q", got)
			}
			if got := root.Find("message/rfc822").Embedded().Header.Get("Subject"); got != "hello" {
				t.Errorf("embedded Subject = %q", got)
			}
			if got := len(root.FindAll("text/*")); got != 4 {
				t.Errorf("FindAll(text/*) = %d parts, want 4", got)
			}
		})
	}
}

func TestParseCases(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		want []flat
	}{{
		name: "no content type",
		msg:  "Subject: x\n\nbody\n",
		want: []flat{{Type: "text/plain", Body: "body\n"}},
	}, {
		name: "no header at all",
		msg:  "just text\nmore\n",
		want: []flat{{Type: "text/plain", Body: "just text\nmore\n", Defects: []string{"header line without a field name"}}},
	}, {
		name: "mbox From line and folded header",
		msg:  "From someone Mon Jan  1 00:00:00 2024\nContent-Type: text/plain;\n charset=utf-8\n\nx",
		want: []flat{{Type: "text/plain", Body: "x"}},
	}, {
		name: "base64 without padding, with junk and spaces",
		msg:  "Content-Transfer-Encoding: BASE64\n\naGVs bG8g\nd29y\r\nbGQ\n",
		want: []flat{{Type: "text/plain", Body: "hello world"}},
	}, {
		name: "concatenated padded base64",
		msg:  "Content-Transfer-Encoding: base64\n\nYQ==Yg==\n",
		want: []flat{{Type: "text/plain", Body: "ab"}},
	}, {
		name: "base64 with invalid characters",
		msg:  "Content-Transfer-Encoding: base64\n\naGk*\n",
		want: []flat{{Type: "text/plain", Body: "hi", Defects: []string{"malformed base64"}}},
	}, {
		name: "quoted-printable lenient",
		msg:  "Content-Transfer-Encoding: quoted-printable\n\na=3db=3D =zz end   \nx=\n",
		want: []flat{{Type: "text/plain", Body: "a=b= =zz end\nx"}},
	}, {
		name: "filename RFC 2231",
		msg:  "Content-Type: application/zip\nContent-Disposition: attachment; filename*=UTF-8''r%C3%A9port.zip\n\nx",
		want: []flat{{Type: "application/zip", Filename: "réport.zip", Body: "x"}},
	}, {
		name: "filename from Content-Type name, RFC 2047",
		msg:  "Content-Type: application/gzip; name=\"=?utf-8?q?r=C3=A9port.gz?=\"\n\nx",
		want: []flat{{Type: "application/gzip", Filename: "réport.gz", Body: "x"}},
	}, {
		name: "malformed content type falls back",
		msg:  "Content-Type: text/html; charset=utf-8; charset=latin1; foo\n\nx",
		want: []flat{{Type: "text/html", Body: "x", Defects: []string{"malformed Content-Type"}}},
	}, {
		name: "invalid media type is text/plain",
		msg:  "Content-Type: garbage\n\nx",
		want: []flat{{Type: "text/plain", Body: "x", Defects: []string{"invalid media type \"garbage\""}}},
	}, {
		name: "missing closing boundary",
		msg:  "Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\n",
		want: []flat{
			{Type: "multipart/mixed", Defects: []string{"missing closing boundary"}},
			{Path: "1", Type: "text/plain", Body: "one"},
			{Path: "2", Type: "text/plain", Body: "two\n"},
		},
	}, {
		name: "no boundary found",
		msg:  "Content-Type: multipart/mixed; boundary=b\n\nnothing here\n",
		want: []flat{{Type: "multipart/mixed", Defects: []string{"no boundary found"}}},
	}, {
		name: "digest defaults to message/rfc822",
		msg:  "Content-Type: multipart/digest; boundary=d\n\n--d\n\nSubject: one\n\nbody\n--d--\n",
		want: []flat{
			{Type: "multipart/digest"},
			{Path: "1", Type: "message/rfc822"},
			{Path: "1.0", Type: "text/plain", Body: "body"},
		},
	}, {
		name: "base64-encoded embedded message",
		msg:  "Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nU3ViamVjdDogaQoKYm9keQ==\n",
		want: []flat{
			{Type: "message/rfc822"},
			{Path: "0", Type: "text/plain", Body: "body"},
		},
	}, {
		name: "boundary with transport padding",
		msg:  "Content-Type: multipart/mixed; boundary=\"a b\"\n\n--a b \t\n\nx\n--a b--  \n",
		want: []flat{{Type: "multipart/mixed"}, {Path: "1", Type: "text/plain", Body: "x"}},
	}, {
		name: "unindented boundary parameter",
		msg:  "Content-Type: multipart/mixed;\nboundary=\"b\"\nSubject: x\n\n--b\n\nx\n--b--\n",
		want: []flat{{Type: "multipart/mixed", Defects: []string{"unindented continuation line"}}, {Path: "1", Type: "text/plain", Body: "x"}},
	}, {
		name: "latin1 text",
		msg:  "Content-Type: text/plain; charset=ISO-8859-1\nContent-Transfer-Encoding: quoted-printable\n\ncaf=E9",
		want: []flat{{Type: "text/plain", Body: "café"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := Parse([]byte(tt.msg))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, flatten(root)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeWords(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"=?iso-8859-1?q?caf=E9?=", "café"},
		{"=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=", "éé"}, // RFC 2047 §6.2: space between words dropped
		{"a =?utf-8?q?b?= c", "a b c"},
		{"=?gb2312?B?xOO6ww==?= x", "=?gb2312?B?xOO6ww==?= x"}, // unsupported charset stays encoded
		{"=?broken", "=?broken"},
		{"=?utf-8?x?abc?=", "=?utf-8?x?abc?="},
		{"=?windows-1252?q?=80?=", "\u0080"},
	}
	for _, tt := range tests {
		if got := DecodeWords(tt.in); got != tt.want {
			t.Errorf("DecodeWords(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitHeaderGroups(t *testing.T) {
	in := "\n\nReporting-MTA: dns; a\n\nFinal-Recipient: rfc822; x@y\n  folded\nAction: failed\n"
	h1, rest, err := SplitHeader([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	h2, _, err := SplitHeader(rest)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{h1.Get("reporting-mta"), h2.Get("final-recipient"), h2.Get("action")}
	if diff := cmp.Diff([]string{"dns; a", "rfc822; x@y  folded", "failed"}, got); diff != "" {
		t.Errorf("groups (-want +got):\n%s", diff)
	}
}

func TestLimits(t *testing.T) {
	nested := func(depth int) string {
		var sb strings.Builder
		for i := 0; i < depth; i++ {
			fmt.Fprintf(&sb, "Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n", i, i)
		}
		sb.WriteString("\nleaf\n")
		return sb.String()
	}
	many := func(n int) string {
		var sb strings.Builder
		sb.WriteString("Content-Type: multipart/mixed; boundary=b\n\n")
		for i := 0; i < n; i++ {
			sb.WriteString("--b\n\nx\n")
		}
		sb.WriteString("--b--\n")
		return sb.String()
	}
	tests := []struct {
		name string
		msg  string
		lim  Limits
		want error
	}{
		{"depth ok", nested(20), Limits{}, nil},
		{"too deep", nested(21), Limits{}, ErrTooDeep},
		{"too deep via message/rfc822", strings.Repeat("Content-Type: message/rfc822\n\n", 30), Limits{}, ErrTooDeep},
		{"parts ok", many(999), Limits{}, nil},
		{"too many parts", many(1000), Limits{}, ErrTooManyParts},
		{"input too large", "Subject: x\n\n" + strings.Repeat("x", 100), Limits{MaxInputBytes: 50}, ErrTooLarge},
		{"header too large", "Subject: " + strings.Repeat("x", 100) + "\n\n", Limits{MaxHeaderBytes: 50}, ErrHeaderTooLarge},
		{"header too large, no body", "Subject: " + strings.Repeat("x", 100), Limits{MaxHeaderBytes: 50}, ErrHeaderTooLarge},
		{"part too large", "\n" + strings.Repeat("x", 100), Limits{MaxPartBytes: 50}, ErrPartTooLarge},
		{"base64 part too large", "Content-Transfer-Encoding: base64\n\n" + strings.Repeat("QUFB", 100), Limits{MaxPartBytes: 50}, ErrPartTooLarge},
		{"decoded total too large", many(10), Limits{MaxDecodedBytes: 5}, ErrDecodedTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, err := ParseLimits([]byte(tt.msg), tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if (err == nil) != (root != nil) {
				t.Errorf("root = %v with err = %v", root, err)
			}
		})
	}
}

func TestWalkStops(t *testing.T) {
	root, err := Parse([]byte(reportMsg))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	root.Walk(func(p *Part) bool {
		seen = append(seen, p.Path)
		return p.Path != "2"
	})
	if diff := cmp.Diff([]string{"", "1", "2"}, seen); diff != "" {
		t.Errorf("walk (-want +got):\n%s", diff)
	}
	if p := root.Find("application/pdf"); p != nil {
		t.Errorf("Find(application/pdf) = %v, want nil", p.Path)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(reportMsg))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, err := ParseLimits(data, Limits{MaxDepth: 8, MaxParts: 100, MaxHeaderBytes: 4096})
		if err != nil {
			if root != nil {
				t.Fatalf("root with error %v", err)
			}
			return
		}
		n := 0
		root.Walk(func(p *Part) bool {
			n++
			if p.Depth > 8 {
				t.Fatalf("depth %d over limit", p.Depth)
			}
			_ = p.Text()
			_ = p.Header.Decoded("Subject")
			return true
		})
		if n > 100 {
			t.Fatalf("%d parts over limit", n)
		}
	})
}
