package main

import (
	"strings"
	"testing"
)

func TestSPF(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string   // for --json runs
		text   []string // for text runs
		stderr string
	}{
		{name: "pass json", args: []string{"--ip", "127.0.0.1", "--mail-from", "alice@example.test", "--json"}, code: 0, golden: "spf_pass.jsonl"},
		{name: "pass text", args: []string{"--ip", "127.0.0.1", "--mail-from", "alice@example.test"}, code: 0,
			text: []string{"[ ok ] SPF pass for alice@example.test from 127.0.0.1", "=> ip4:127.0.0.0/8", "MATCH → pass", "-all                               not evaluated"}},
		{name: "too many lookups json", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@spf-toomany.test", "--json"}, code: 1, golden: "spf_toomany.jsonl"},
		{name: "too many lookups text", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@spf-toomany.test"}, code: 1,
			text: []string{
				"[FAIL] SPF permerror for a@spf-toomany.test",
				"DNS lookups 11/10",
				"!! include:_more.spf-toomany.test     OVER THE LIMIT: DNS lookup 11 of at most 10",
				"problem: too many DNS lookups: include:_spf.spf-toomany.test → include:_more.spf-toomany.test pushed the count to 11",
				"fix: flatten or remove includes",
				"see: RFC 7208 §4.6.4",
			}},
		{name: "two records json", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@spf-two.test", "--json"}, code: 1, golden: "spf_two.jsonl"},
		{name: "macro fail json", args: []string{"--ip", "127.0.0.1", "--mail-from", "bob@spf-macro.test", "--json"}, code: 1, golden: "spf_macro_fail.jsonl"},
		{name: "macro pass text", args: []string{"--ip", "127.0.0.1", "--mail-from", "alice+news@spf-macro.test"}, code: 0,
			text: []string{"expands to 1.0.0.127.alice._spf.spf-macro.test", "A 1.0.0.127.alice._spf.spf-macro.test → 127.0.0.2"}},
		{name: "void json", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@spf-void.test", "--json"}, code: 1, golden: "spf_void.jsonl"},
		{name: "bounce checks postmaster@helo", args: []string{"--ip", "127.0.0.1", "--mail-from", "", "--helo", "example.test"}, code: 0,
			text: []string{"SPF pass for postmaster@example.test"}},
		{name: "no record", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@nomx.test"}, code: 1,
			text: []string{"[warn] SPF none", "nomx.test publishes no SPF record"}},
		{name: "servfail is temperror", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@servfail.test"}, code: 3,
			text: []string{"SPF temperror", "SERVFAIL"}, stderr: "spf: temperror for servfail.test"},
		{name: "timeout is temperror", args: []string{"--ip", "127.0.0.1", "--mail-from", "a@timeout.test", "--timeout", "1s"}, code: 3,
			text: []string{"TXT timeout.test → TIMEOUT"}},

		{name: "missing ip", args: []string{"--mail-from", "a@example.test"}, code: 2, stderr: "--ip is required"},
		{name: "bad ip", args: []string{"--ip", "300.1.1.1", "--mail-from", "a@example.test"}, code: 2, stderr: `--ip "300.1.1.1" is not an IP address`},
		{name: "missing mail-from", args: []string{"--ip", "127.0.0.1"}, code: 2, stderr: "--mail-from is required"},
		{name: "mail-from without @", args: []string{"--ip", "127.0.0.1", "--mail-from", "nobody"}, code: 2, stderr: "want LOCAL@DOMAIN"},
		{name: "bounce without helo", args: []string{"--ip", "127.0.0.1", "--mail-from", ""}, code: 2, stderr: "give --helo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, append([]string{"spf", res}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				last := checkEnvelope(t, out, "spf")
				for _, k := range []string{"result", "explanation", "domain", "record", "trace", "lookups", "void_lookups"} {
					if _, ok := last[k]; !ok && k != "explanation" && k != "record" {
						t.Errorf("result line lacks %q", k)
					}
				}
				golden(t, tc.golden, out)
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errOut)
			}
		})
	}
}
