package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/testutil"
)

func TestBounce(t *testing.T) {
	dir := testutil.Shared(t, "dsn-bounces")
	f := func(name string) string { return filepath.Join(dir, "sisimai", name) }
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		text   []string
	}{
		{name: "rfc3464 hard bounce", args: []string{f("bsd/lhost-postfix-01.eml"), "--json"}, code: 1, golden: "bounce_postfix.jsonl"},
		{name: "text bounce explained", args: []string{f("bsd/lhost-postfix-01.eml")}, code: 1, text: []string{
			"[FAIL] a bounce: delivery to 1 of 1 recipient(s) failed permanently",
			"[FAIL] r@p351355.pool.example.ne.jp: failed 5.1.1",
			"meaning: ", "likely cause: ", "fix: ", "see: "}},
		{name: "soft bounce", args: []string{f("bsd/lhost-qmail-06.eml")}, code: 1, text: []string{"[warn] kijitora@example.jp: failed 4.2.2",
			"retries class 4 failures"}},
		{name: "delivered", args: []string{f("bsd/rfc3464-28.eml")}, code: 0, text: []string{
			"[ ok ] a delivery notification: the message reached 1 recipient(s); nothing failed", "[ ok ] kijitora@neko.example.jp: deliverable 2.1.5"}},
		{name: "auto-reply", args: []string{f("bsd/rfc3834-02.eml")}, code: 0, text: []string{"[info] an auto-reply (RFC 3834), not a bounce",
			"auto-reply because: Subject: Automatic reply"}},
		{name: "not a bounce", args: []string{f("not-bounce/is-not-bounce-02.eml")}, code: 0, text: []string{"not a bounce: no delivery status"}},
		{name: "missing file", args: []string{f("nope.eml")}, code: 2},
		{name: "two files", args: []string{f("bsd/rfc3834-02.eml"), f("bsd/rfc3834-04.eml")}, code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, append([]string{"bounce"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				checkEnvelope(t, out, "bounce")
				golden(t, tc.golden, strings.ReplaceAll(out, dir, "SHARED"))
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

func TestBounceFromStdin(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(testutil.Shared(t, "dsn-bounces"), "sisimai", "bsd", "lhost-exim-01.eml"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"bounce", "-"}, bytes.NewReader(raw), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "kijitora@example.ed.jp: failed 5.7.0") {
		t.Errorf("stdin: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run(context.Background(), []string{"bounce", "-"}, strings.NewReader(" \n"), &out, &errb)
	if code != 2 {
		t.Errorf("empty stdin: exit %d, want 2", code)
	}
}
