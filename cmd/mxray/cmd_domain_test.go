package main

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/lab"
)

// TestDomain runs the audit against the whole lab world, real Postfix and
// Dovecot included: the servers domain-good.test advertises to mail
// clients are the lab's mx1.example.test.
func TestDomain(t *testing.T) {
	w, err := lab.StartWorld(context.Background(), lab.WorldOptions{Servers: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	common := []string{"domain", "--resolver=" + w.DNS.Addr, "--tls-ca", w.CAFile,
		"--connect-map", w.ConnectMap.String() + ",2526=" + closed, "--dnsbl", "bl.test"}
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		text   []string
	}{
		{name: "good domain", args: with(common, "domain-good.test", "--json"), code: 0, golden: "domain_good.jsonl"},
		{name: "bad domain", args: with(common, "domain-bad.test", "--dkim-selector", "k1,s1024", "--outbound-ip", "127.0.0.2", "--json"), code: 1, golden: "domain_bad.jsonl"},
		{name: "good domain, text", args: with(common, "domain-good.test"), code: 0, text: []string{
			"Domain audit of domain-good.test  0 fail,",
			"[ ok ] client-server: imap mx1.example.test:993 (implicit TLS): connect ok; TLS 1.3; certificate ok",
			"[ ok ] dkim: DKIM selector mail: RSA key of 2048 bits",
			"[info] srv: SRV _pop3._tcp: target \".\": the service is not offered",
		}},
		{name: "bad domain, text, worst first", args: with(common, "domain-bad.test"), code: 1, text: []string{
			"Failures\n[FAIL] spf-lookups: SPF needs more than 10 DNS lookups",
			"[FAIL] client-server: submission imap.domain-bad.test:2526 (STARTTLS): connect refused",
			"fix: Clients refuse the certificate: install one valid for imap.domain-bad.test",
			"[FAIL] dnsbl: 127.0.0.10 (MX mx.domain-bad.test) is listed on bl.test (127.0.0.4)",
			"       lab: 127.0.0.10 sent mail to spam traps",
			"[warn] dkim: DKIM selector s1024: RSA key of 1024 bits is weak",
		}},
		{name: "warnings exit 0", args: with(common, "example.test"), code: 0, text: []string{"0 fail"}},
		{name: "warnings with --strict exit 1", args: with(common, "example.test", "--strict"), code: 1},
		{name: "SERVFAIL: could not check", args: with(common, "servfail.test"), code: 3, text: []string{"INCOMPLETE DNS could not be checked: MX: SERVFAIL"}},
		{name: "bad domain name", args: with(common, "not a domain"), code: 2},
		{name: "address instead of domain", args: with(common, "alice@example.test"), code: 2},
		{name: "bad outbound ip", args: with(common, "example.test", "--outbound-ip", "mail.example.test"), code: 2},
		{name: "bad selector", args: with(common, "example.test", "--dkim-selector", "a b"), code: 2},
		{name: "bad dnsbl", args: with(common, "example.test", "--dnsbl", "http://bl"), code: 2},
		{name: "no argument", args: common[:1], code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				res := checkEnvelope(t, out, "domain")
				for _, k := range []string{"domain", "worst", "counts", "mx", "spf", "dmarc", "dkim", "mta_sts", "tls_rpt", "bimi", "srv", "autoconfig", "autodiscover", "client_servers", "dnsbl"} {
					if _, ok := res[k]; !ok {
						t.Errorf("result lacks %q", k)
					}
				}
				golden(t, tc.golden, out)
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestDomainJSONStepsMatchCounts checks that the result's counts are the
// steps printed, so a consumer can trust either.
func TestDomainJSONStepsMatchCounts(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	out, _, _ := cli(t, "domain", res, "--dnsbl", "none", "spf-toomany.test", "--json")
	n := map[string]int{}
	var last map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var obj map[string]any
		if err := json.Unmarshal([]byte(l), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["type"] == "step" {
			n[obj["status"].(string)]++
		}
		last = obj
	}
	counts := last["counts"].(map[string]any)
	for _, st := range []string{"fail", "warn", "ok", "info"} {
		if int(counts[st].(float64)) != n[st] {
			t.Errorf("counts[%s] = %v, %d steps", st, counts[st], n[st])
		}
	}
	if n["fail"] == 0 {
		t.Errorf("spf-toomany.test audit found no failure:\n%s", out)
	}
}
