package main

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/lab"
)

// with returns base followed by more, in a new slice: the table's rows
// must not share one backing array.
func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}

func TestDelivery(t *testing.T) {
	// Postfix without a certificate: the goldens then hold no dates.
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{Domains: []string{"example.test", "backupmx.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()

	common := []string{"delivery", "--resolver=" + startLabDNS(t), "--helo", "probe.mxray.test"}
	toPostfix := with(common, "--connect-map", "25="+pf.SMTP)
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		text   []string
	}{
		{name: "accepted", args: with(toPostfix, "alice@example.test", "--json"), code: 0, golden: "delivery_accepted.jsonl"},
		{name: "unknown recipient", args: with(toPostfix, "nobody@example.test", "--json"), code: 1, golden: "delivery_unknown_recipient.jsonl"},
		{name: "null MX", args: with(common, "nullmx.test", "--json"), code: 1, golden: "delivery_nullmx.jsonl"},
		{name: "accepted, text", args: with(toPostfix, "alice@example.test"), code: 0, text: []string{
			"[ ok ] MX: mx1.example.test (10)",
			"[ ok ] greeting: 220 mx1.example.test ESMTP Postfix (mx1.example.test 127.0.0.1)",
			"[warn] STARTTLS not offered: mail would travel in cleartext (mx1.example.test 127.0.0.1)",
			"[ ok ] recipient <alice@example.test> accepted: 250 2.1.5 Ok",
			"DELIVERABLE  mx1.example.test (127.0.0.1) accepted <alice@example.test>: 250 2.1.5 Ok",
			"No message was sent",
		}},
		{name: "strict turns warnings into exit 1", args: with(toPostfix, "alice@example.test", "--strict"), code: 1},
		{name: "backup MX", args: with(toPostfix, "backupmx.test"), code: 0, text: []string{
			"[warn] 1 of 2 mail hosts have no usable address", "mx-gone.backupmx.test: NXDOMAIN", "<postmaster@backupmx.test> accepted"}},
		{name: "MX is an IP literal", args: with(common, "ipmx.test"), code: 1, text: []string{
			"[warn] MX: 127.0.0.1 (10)", "an IP address, not a host name", "UNDELIVERABLE"}},
		{name: "servfail", args: with(common, "servfail.test"), code: 3, text: []string{"MX lookup failed: SERVFAIL", "COULD NOT TEST"}},
		{name: "port closed", args: with(common, "--connect-map", "25="+closed, "alice@example.test"), code: 3, text: []string{
			"[FAIL] connection refused on port 25", "COULD NOT TEST"}},
		{name: "trace shows transcripts", args: with(toPostfix, "nobody@example.test", "--log-level", "trace"), code: 1, text: []string{
			"C: RCPT TO:<nobody@example.test>", "S: 550 5.1.1 <nobody@example.test>: Recipient address rejected"}},
		{name: "both families", args: with(common, "--ipv4", "--ipv6", "example.test"), code: 2},
		{name: "bad address", args: with(common, "al ice@example.test"), code: 2},
		{name: "invalid internationalised domain", args: with(common, "ü..test"), code: 2},
		{name: "bad port", args: with(common, "--port", "0", "example.test"), code: 2},
		{name: "mail-from with brackets", args: with(common, "--mail-from", "<a@b.test>", "example.test"), code: 2},
		{name: "no argument", args: common[:1], code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				res := checkEnvelope(t, out, "delivery")
				for _, k := range []string{"verdict", "decided_by", "domain", "mx", "reason"} {
					if _, ok := res[k]; !ok {
						t.Errorf("result lacks %q: %v", k, res)
					}
				}
				golden(t, tc.golden, out) // normalises elapsed_ms and loopback ports
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

// TestDeliveryPolicies runs the delivery test against the lab World with
// its servers: the MTA-STS scenarios through the lab's DNS and HTTPS, the
// DANE scenarios through the lab's validating unbound.
func TestDeliveryPolicies(t *testing.T) {
	w, err := lab.StartWorld(context.Background(), lab.WorldOptions{Servers: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if w.Unbound == nil {
		t.Fatal("the lab World started no unbound: install unbound (scripts/test-deps.sh)")
	}
	common := []string{"delivery", "--connect-map", w.ConnectMap.String(), "--tls-ca", w.CAFile, "--helo", "probe.mxray.test"}
	plain := with(common, "--resolver", w.DNS.Addr)
	validating := with(common, "--resolver", w.Unbound.Addr)
	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		text   []string
	}{
		{name: "MTA-STS enforce, MX outside the policy", args: with(plain, "sts-badmx.test", "--json"), code: 1, golden: "delivery_mtasts_badmx.jsonl"},
		{name: "MTA-STS enforce, MX in the policy", args: with(plain, "alice@sts-good.test"), code: 0, text: []string{
			"[ ok ] MTA-STS enforce: mx mx1.example.test",
			"[info] TLS-RPT: senders report TLS failures to mailto:tls-reports@sts-good.test",
			"(as MTA-STS requires) (mx1.example.test 127.0.0.1)",
			"DELIVERABLE  mx1.example.test (127.0.0.1) accepted <alice@sts-good.test>"}},
		{name: "DANE bogus TLSA: deferred", args: with(validating, "dane-bogus.test", "--json"), code: 1, golden: "delivery_dane_bogus.jsonl"},
		{name: "DANE-EE match", args: with(validating, "alice@dane.test"), code: 0, text: []string{
			"[ ok ] DANE: mx.dane.test: 1 usable validated TLSA record(s)",
			"[ ok ] certificate authenticated by DANE",
			"DANE-EE(3) ignores the names and dates of the certificate",
			"DELIVERABLE  mx.dane.test (127.0.0.1) accepted <alice@dane.test>"}},
		{name: "DANE mismatch", args: with(validating, "dane-bad.test"), code: 1, text: []string{
			"[FAIL] certificate does not match the DANE TLSA records: a DANE sender must not deliver to this host",
			"TEMPORARY FAILURE  no mail host may be used: mx.dane-bad.test (DANE: certificate does not match the TLSA records)"}},
		{name: "DANE records without a validating resolver", args: with(plain, "alice@dane.test"), code: 0, text: []string{
			"[warn] DANE: mx.dane.test: TLSA records not validated, ignored",
			"either your resolver does not validate DNSSEC",
			"(opportunistic TLS still encrypts)",
			"DELIVERABLE"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				checkEnvelope(t, out, "delivery")
				golden(t, tc.golden, normalizePolicyRun(out))
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

// policyVolatile are the fields of a policy run that change with every
// lab: certificate dates and digests, TLSA data, the lab's directory.
var policyVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`"(not_before|not_after)":"[^"]*"`), `"$1":"DATE"`},
	{regexp.MustCompile(`[0-9a-f]{64}`), `HEX`},
	{regexp.MustCompile(`127\.0\.0\.1@[0-9]+`), `127.0.0.1@PORT`},
}

func normalizePolicyRun(out string) string {
	for _, v := range policyVolatile {
		out = v.re.ReplaceAllString(out, v.with)
	}
	return out
}
