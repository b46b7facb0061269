package smtpc

import (
	"bufio"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reply
		err  error
	}{
		{name: "single line", in: "220 mx.example ESMTP\r\n",
			want: Reply{Code: 220, Lines: []string{"mx.example ESMTP"}}},
		{name: "multi-line", in: "250-mx.example\r\n250-SIZE 100\r\n250 STARTTLS\r\n",
			want: Reply{Code: 250, Lines: []string{"mx.example", "SIZE 100", "STARTTLS"}}},
		{name: "enhanced code stripped from every line",
			in:   "550-5.1.1 <nobody@example.test>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n",
			want: Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"<nobody@example.test>: Recipient address rejected:", "User unknown"}}},
		{name: "enhanced code of another class is text",
			in:   "250 5.1.1 odd\r\n",
			want: Reply{Code: 250, Lines: []string{"5.1.1 odd"}}},
		{name: "greylisting", in: "450 4.2.0 Greylisted, try again in 300 seconds\r\n",
			want: Reply{Code: 450, Enhanced: "4.2.0", Lines: []string{"Greylisted, try again in 300 seconds"}}},
		{name: "code without text", in: "250\r\n", want: Reply{Code: 250, Lines: []string{""}}},
		{name: "bare LF accepted", in: "221 bye\n", want: Reply{Code: 221, Lines: []string{"bye"}}},
		{name: "control characters escaped", in: "220 hi\x1b[31m\r\n",
			want: Reply{Code: 220, Lines: []string{`hi\x1b[31m`}}},
		{name: "code changes mid-reply", in: "250-a\r\n251 b\r\n", err: ErrProtocol},
		{name: "not a reply", in: "HTTP/1.1 400 Bad Request\r\n", err: ErrProtocol},
		{name: "first digit out of range", in: "650 no\r\n", err: ErrProtocol},
		{name: "bad separator", in: "250:ok\r\n", err: ErrProtocol},
		{name: "empty line", in: "\r\n", err: ErrProtocol},
		{name: "line too long", in: "250 " + strings.Repeat("x", MaxLineLen) + "\r\n", err: ErrProtocol},
		{name: "endless lines", in: strings.Repeat("250-more\r\n", MaxReplyLines+5), err: ErrProtocol},
		{name: "closed mid-reply", in: "250-first\r\n", err: ErrClosed},
		{name: "closed mid-line", in: "250 par", err: ErrClosed},
		{name: "closed before reply", in: "", err: ErrClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadReply(bufio.NewReader(strings.NewReader(tc.in)))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReplyClasses(t *testing.T) {
	tests := []struct {
		code                       int
		positive, temporary, perma bool
	}{
		{250, true, false, false},
		{354, true, false, false},
		{421, false, true, false},
		{450, false, true, false},
		{550, false, false, true},
		{554, false, false, true},
	}
	for _, tc := range tests {
		r := Reply{Code: tc.code}
		if r.Positive() != tc.positive || r.Temporary() != tc.temporary || r.Permanent() != tc.perma {
			t.Errorf("%d: positive %v temporary %v permanent %v", tc.code, r.Positive(), r.Temporary(), r.Permanent())
		}
	}
	r := Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"<x@y>: Recipient address rejected:", "User unknown"}}
	if got, want := r.String(), "550 5.1.1 <x@y>: Recipient address rejected: User unknown"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseEHLO(t *testing.T) {
	r := Reply{Code: 250, Lines: []string{
		"mx1.example.test Hello", "PIPELINING", "SIZE 10240000", "starttls", "AUTH PLAIN LOGIN",
		"AUTH=PLAIN LOGIN", "ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "REQUIRETLS", "CHUNKING",
	}}
	e := ParseEHLO(r)
	if e.Domain != "mx1.example.test" {
		t.Errorf("Domain = %q", e.Domain)
	}
	for _, k := range []string{"PIPELINING", "STARTTLS", "starttls", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "REQUIRETLS", "CHUNKING"} {
		if !e.Has(k) {
			t.Errorf("Has(%q) = false", k)
		}
	}
	if e.Has("DSN") {
		t.Errorf("Has(DSN) = true")
	}
	if n, ok := e.Size(); !ok || n != 10240000 {
		t.Errorf("Size() = %d, %v", n, ok)
	}
	if diff := cmp.Diff([]string{"PLAIN", "LOGIN"}, e.Auth()); diff != "" {
		t.Errorf("Auth (-want +got):\n%s", diff)
	}
	want := []string{"8BITMIME", "AUTH PLAIN LOGIN", "CHUNKING", "ENHANCEDSTATUSCODES", "PIPELINING", "REQUIRETLS", "SIZE 10240000", "SMTPUTF8", "STARTTLS"}
	if diff := cmp.Diff(want, e.List()); diff != "" {
		t.Errorf("List (-want +got):\n%s", diff)
	}
	// Pre-standard AUTH= alone still gives the mechanisms.
	e = ParseEHLO(Reply{Code: 250, Lines: []string{"old.example", "AUTH=LOGIN"}})
	if diff := cmp.Diff([]string{"LOGIN"}, e.Auth()); diff != "" {
		t.Errorf("AUTH= (-want +got):\n%s", diff)
	}
	if _, ok := e.Size(); ok {
		t.Errorf("Size announced without SIZE")
	}
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte("220 mx.example ESMTP\r\n"))
	f.Add([]byte("250-mx\r\n250-SIZE 1\r\n250 AUTH=PLAIN\r\n"))
	f.Add([]byte("550 5.1.1 no\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadReply(bufio.NewReaderSize(strings.NewReader(string(data)), 16))
		if err != nil {
			if !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrClosed) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		if r.Code < 200 || r.Code > 559 || len(r.Lines) == 0 || len(r.Lines) > MaxReplyLines {
			t.Fatalf("accepted an impossible reply: %+v", r)
		}
		for _, l := range r.Lines {
			if strings.ContainsAny(l, "\r\n\x1b") {
				t.Fatalf("control character in text %q", l)
			}
		}
		_ = r.String()
		e := ParseEHLO(r)
		e.Size()
		e.Auth()
		e.List()
	})
}
