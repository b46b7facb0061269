package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/lab"
)

// TestDoctor runs the doctor against the whole lab world: real Postfix
// and Dovecot behind mx1.example.test, the scenario domains in its DNS.
func TestDoctor(t *testing.T) {
	w, err := lab.StartWorld(context.Background(), lab.WorldOptions{Servers: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	closed := closedAddr(t)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("wrong-password\n"), 0o600)
	goodPW := filepath.Join(t.TempDir(), "good")
	os.WriteFile(goodPW, []byte("alice-password\n"), 0o600)
	common := []string{"doctor", "--resolver=" + w.DNS.Addr, "--tls-ca", w.CAFile, "--helo", "doctor.mxray.test",
		"--connect-map", w.ConnectMap.String() + ",2526=" + closed, "--dnsbl", "bl.test", "--timeout", "20s"}
	// The MX port closed: port 25 goes to a port where nothing listens.
	port25Closed := []string{"doctor", "--resolver=" + w.DNS.Addr, "--tls-ca", w.CAFile, "--helo", "doctor.mxray.test",
		"--connect-map", strings.ReplaceAll(w.ConnectMap.String(), "25=", "2525=") + ",25=" + closed, "--dnsbl", "none"}
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		text   []string // in this order
		rows   []string // matrix rows that must be among the problems
		none   []string // rows that must not
	}{
		{name: "good domain", args: with(common, "example.test", "--json"), code: 0, golden: "doctor_good.jsonl",
			none: []string{"unknown-user", "connection-refused", "dns", "firewall", "wrong-ip", "mail-stuck"}},
		{name: "good domain, text", args: with(common, "example.test"), code: 0, text: []string{
			"Doctor for example.test  recipient <postmaster@example.test>: deliverable",
			"\nFine\n",
			"[ ok ] domain.mx: 1 ok: MX: mx1.example.test (10)",
			"[ ok ] delivery.rcpt: 1 ok: recipient <postmaster@example.test> accepted",
			"[ ok ] probe.smtp mx1.example.test:",
			"[ ok ] doctor.ehlo-name: 1 ok: mx1.example.test (127.0.0.1) introduces itself as mx1.example.test, the MX host name",
		}},
		{name: "advertised client servers are probed and logged in to", args: with(common, "domain-good.test", "--user", "alice@example.test", "--password-file", goodPW), code: 1, text: []string{
			// The lab's Postfix does not receive mail for domain-good.test.
			"[FAIL] [reputation] delivery.rcpt: recipient <postmaster@domain-good.test> rejected: 554 5.7.1",
			"[ ok ] probe.smtp mx1.example.test:",
			"[ ok ] probe.imaps mx1.example.test: 8 ok:",
			"[ ok ] probe.submission mx1.example.test:",
		}},
		{name: "bad domain", args: with(common, "domain-bad.test", "--json"), code: 1, golden: "doctor_bad.jsonl",
			rows: []string{"dns", "connection-refused", "authentication", "reputation", "wrong-ip", "tls", "configuration"}},
		{name: "bad domain, text, worst first", args: with(common, "domain-bad.test"), code: 1, text: []string{
			"recipient <postmaster@domain-bad.test>: temporary",
			"Problems, worst first\n",
			"[FAIL] [DNS resolution] probe.address: no address for mail.domain-bad.test",
			"[FAIL] [connection refused] probe.smtp.connect: smtp: connection refused on port 25",
			"cause: 127.0.0.10 answered port 25 with a TCP reset",
			"[FAIL] [connection refused] probe.submission.connect: submission: connection refused on port 2526",
			"[FAIL] [authentication] domain.spf-lookups: SPF needs more than 10 DNS lookups",
			"[FAIL] [TLS] domain.mta-sts-mx: mx.domain-bad.test matches no mx of the enforced policy",
			"also:  delivery.mta-sts",
			"[FAIL] [reputation] domain.dnsbl:",
			"[warn] [wrong IP] domain.mx-host: MX mx.domain-bad.test 127.0.0.10 has no reverse DNS (PTR)",
			"[warn] [authentication] domain.spf-all:",
			"\nFine\n",
		}},
		{name: "unknown user", args: with(common, "nobody@example.test", "--json"), code: 1, golden: "doctor_unknown_user.jsonl",
			rows: []string{"unknown-user"}},
		{name: "unknown user, text", args: with(common, "nobody@example.test"), code: 1, text: []string{
			"recipient <nobody@example.test>: undeliverable",
			"[FAIL] [unknown user] delivery.rcpt: recipient <nobody@example.test> rejected: 550 5.1.1",
			"cause: The server says this mailbox does not exist",
		}},
		{name: "MX port closed", args: with(port25Closed, "example.test"), code: 1, text: []string{
			"[FAIL] [connection refused] delivery.connect: connection refused on port 25",
			"also:  probe.smtp.connect",
		}},
		{name: "login failure", args: with(common, "domain-good.test", "--user", "alice@example.test", "--password-file", pw), code: 1, text: []string{
			"[FAIL] [authentication] probe.imaps.login: imaps: login as alice@example.test refused",
		}},
		{name: "SERVFAIL: nothing checked", args: with(common, "servfail.test"), code: 3, text: []string{
			"[FAIL] [DNS resolution] domain.mx: MX lookup failed: SERVFAIL",
			"also:  delivery.mx",
			"NOTHING COULD BE CHECKED",
		}},
		{name: "NXDOMAIN is a finding", args: with(common, "nope-nothing.test"), code: 1, text: []string{"[DNS resolution]", "NXDOMAIN"}},
		{name: "bad argument", args: with(common, "not a domain"), code: 2},
		{name: "password without user", args: with(common, "example.test", "--password-file", pw), code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				res := checkEnvelope(t, out, "doctor")
				for _, k := range []string{"domain", "recipient", "worst", "checked", "problems", "ok", "matrix", "domain_audit", "delivery", "probes"} {
					if _, ok := res[k]; !ok {
						t.Errorf("result lacks %q", k)
					}
				}
				rows := map[string]bool{}
				for _, p := range res["problems"].([]any) {
					p := p.(map[string]any)
					rows[p["matrix_row"].(string)] = true
					for _, k := range []string{"severity", "part", "step", "title", "cause", "fix", "matrix_row"} {
						if s, _ := p[k].(string); s == "" {
							t.Errorf("problem %v lacks %s", p["step"], k)
						}
					}
				}
				for _, r := range tc.rows {
					if !rows[r] {
						t.Errorf("no problem in row %s: %v", r, rows)
					}
				}
				for _, r := range tc.none {
					if rows[r] {
						t.Errorf("a problem in row %s", r)
					}
				}
				checkStepOrder(t, out)
				// Ports the lab took from the ephemeral range, on any loopback address.
				golden(t, tc.golden, ephemeralPort.ReplaceAllString(normalizeMail(t, out), "$1:PORT"))
			}
			rest := out
			for _, s := range tc.text {
				i := strings.Index(rest, s)
				if i < 0 {
					t.Fatalf("output lacks %q (after the previous line):\n%s", s, out)
				}
				rest = rest[i+len(s):]
			}
			if strings.Contains(out+errOut, "wrong-password") || strings.Contains(out+errOut, "alice-password") {
				t.Error("the password was shown")
			}
		})
	}
}

var ephemeralPort = regexp.MustCompile(`(127\.0\.0\.\d+):[3-6]\d{4}\b`)

// checkStepOrder checks the fixed order of the parts in the JSON steps.
func checkStepOrder(t *testing.T, out string) {
	t.Helper()
	rank := map[string]int{"domain": 0, "delivery": 1, "probe": 2, "doctor": 3}
	last := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var obj map[string]any
		json.Unmarshal([]byte(l), &obj)
		if obj["type"] != "step" {
			continue
		}
		part, _, _ := strings.Cut(obj["id"].(string), ".")
		r, ok := rank[part]
		if !ok || r < last {
			t.Fatalf("step %v out of order or without a part prefix", obj["id"])
		}
		last = r
	}
}
