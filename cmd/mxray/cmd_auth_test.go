package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mxray/mxray/internal/dkim"
)

// labDKIMKey is the key of sel._domainkey.dmarc-strict.test in the lab
// scenarios (see internal/lab/scenarios.go).
func labDKIMKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("mxray lab dkim key: sel._domainkey.dmarc-strict.test"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// message builds a small message with LF line endings.
func message(from string) []byte {
	return []byte("From: Alice <" + from + ">\nTo: bob@example.test\nSubject: hello\n" +
		"Date: Mon, 01 Jun 2026 12:00:00 +0000\nMessage-ID: <1@example.test>\n\nHello Bob.\n")
}

func signed(t *testing.T, msg []byte, domain string) []byte {
	t.Helper()
	out, err := dkim.Sign(msg, dkim.SignOptions{Domain: domain, Selector: "sel", Key: labDKIMKey()})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crlf gives a message CRLF line endings throughout.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
}

// cliIn runs a command line with stdin.
func cliIn(t *testing.T, stdin []byte, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, bytes.NewReader(stdin), &out, &errb)
	return out.String(), errb.String(), code
}

func TestAuth(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	strictSigned := write("strict-signed.eml", signed(t, message("alice@dmarc-strict.test"), "dmarc-strict.test"))
	strictUnsigned := write("strict-unsigned.eml", message("alice@dmarc-strict.test"))
	// Signed, then changed in transit: the body hash no longer matches.
	tampered := write("tampered.eml", append(signed(t, message("alice@dmarc-strict.test"), "dmarc-strict.test"), []byte("-- \nfooter added by a list\n")...))
	psd := write("psd.eml", message("alice@org.psd.test"))
	twoFrom := write("two-from.eml", []byte("From: a@example.test\nFrom: b@example.test\nSubject: x\n\nbody\n"))

	tests := []struct {
		name   string
		args   []string
		stdin  []byte
		code   int
		golden string
		text   []string
	}{
		{name: "pass without message", code: 0, golden: "auth_pass.jsonl",
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@example.test", "--json"}},
		{name: "strict alignment, DKIM saves it", code: 0, golden: "auth_strict_signed.jsonl",
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@bounce.dmarc-strict.test", "--message", strictSigned, "--json"}},
		{name: "strict alignment, unsigned: reject", code: 1, golden: "auth_strict_unsigned.jsonl",
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@bounce.dmarc-strict.test", "--message", strictUnsigned, "--json"}},
		{name: "tree walk: subdomain gets sp", code: 1, golden: "auth_walk.jsonl",
			args: []string{"--ip", "127.0.2.2", "--helo", "mx.iprev.test", "--mail-from", "user@a.b.c.dmarc-walk.test", "--json"}},
		{name: "psd=y: RFC 9989 and RFC 7489 disagree", code: 1, golden: "auth_psd.jsonl",
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@other.psd.test", "--message", psd, "--json"}},
		{name: "iprev not forward-confirmed", code: 1, golden: "auth_iprev.jsonl",
			args: []string{"--ip", "127.0.2.1", "--helo", "norev.iprev.test", "--mail-from", "user@example.test", "--json"}},
		{name: "text: strict explains", code: 1,
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@bounce.dmarc-strict.test", "--message", strictUnsigned},
			text: []string{
				"[info] ARC none",
				"From: dmarc-strict.test | SPF domain: bounce.dmarc-strict.test (pass, not aligned, strict) | DKIM: no signature",
				"the policy asks for strict alignment (aspf=s)",
				"a receiver following RFC 9989 would reject it",
				"Authentication-Results: mxray;\n\tspf=pass smtp.mailfrom=user@bounce.dmarc-strict.test;",
				"dkim=none (message not signed);",
				"dmarc=fail (p=reject dis=reject) header.from=dmarc-strict.test;",
			}},
		{name: "text: body changed after signing", code: 1,
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@bounce.dmarc-strict.test", "--message", tampered},
			text: []string{"[FAIL] DKIM fail: no signature verifies", "body-hash-mismatch", "the body changed after signing",
				"dkim=fail (body-hash-mismatch) header.d=dmarc-strict.test header.s=sel header.b="}},
		{name: "text: np for a name that does not exist", code: 1,
			args: []string{"--ip", "127.0.2.2", "--helo", "mx.iprev.test", "--mail-from", "user@ghost.dmarc-walk.test"},
			text: []string{"→ np=reject", "author domain exists: no",
				"differs from RFC 7489: np=reject applies because ghost.dmarc-walk.test does not exist; RFC 7489 does not know np and applies sp=quarantine",
				"ruf mailto:ruf@psd.test: external and NOT authorized",
				"rua mailto:dmarc@dmarc-strict.test: external, authorized by dmarc-walk.test._report._dmarc.dmarc-strict.test"}},
		{name: "message on stdin, CRLF, custom authserv-id", code: 0, stdin: crlf(signed(t, message("alice@dmarc-strict.test"), "dmarc-strict.test")),
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "", "--message", "-", "--authserv-id", "mx.example.net"},
			text: []string{"Authentication-Results: mx.example.net;", "spf=none smtp.mailfrom=postmaster@mx1.example.test",
				"dkim=pass header.d=dmarc-strict.test header.s=sel", "DKIM d=dmarc-strict.test (pass, aligned, strict)"}},
		{name: "two From fields: permerror", code: 1,
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@example.test", "--message", twoFrom},
			text: []string{"the message has 2 From: header fields", "dmarc=permerror"}},
		{name: "servfail: could not check", code: 3,
			args: []string{"--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "user@servfail.test"},
			text: []string{"DMARC could not be evaluated (temporary DNS error)"}},
		{name: "warning exits 1 only with --strict", code: 1,
			args: []string{"--ip", "127.0.0.1", "--helo", "mail.example.test", "--mail-from", "user@example.test", "--strict"},
			text: []string{"[warn] iprev pass: 127.0.0.1 is mx1.example.test, forward-confirmed, but EHLO says mail.example.test", "a very common cause of rejections"}},
		{name: "helo mismatch without --strict", code: 0,
			args: []string{"--ip", "127.0.0.1", "--helo", "mail.example.test", "--mail-from", "user@example.test"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cliIn(t, tc.stdin, append([]string{"auth", res}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				checkEnvelope(t, out, "auth")
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

func TestAuthSteps(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	out, _, _ := cli(t, "auth", res, "--ip", "127.0.0.1", "--helo", "mx1.example.test", "--mail-from", "u@example.test", "--json")
	last := checkEnvelope(t, out, "auth")
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if i := strings.Index(l, `"id":"`); i >= 0 && strings.HasPrefix(l, `{"type":"step"`) {
			ids = append(ids, strings.SplitN(l[i+6:], `"`, 2)[0])
		}
	}
	if got := strings.Join(ids, ","); got != "spf-mailfrom,spf-helo,dkim,arc,dmarc,iprev" {
		t.Errorf("step ids %s", got)
	}
	for _, k := range []string{"spf_mailfrom", "spf_helo", "dkim", "arc", "dmarc", "iprev"} {
		obj, ok := last[k].(map[string]any)
		if !ok || obj["result"] == nil {
			t.Errorf("result.%s has no result field: %v", k, last[k])
		}
	}
	want := "mxray; spf=pass smtp.mailfrom=u@example.test; spf=none smtp.helo=mx1.example.test; dmarc=pass (p=reject dis=none) header.from=example.test; iprev=pass (mx1.example.test) policy.iprev=127.0.0.1"
	if last["authentication_results"] != want {
		t.Errorf("authentication_results\n got %v\nwant %s", last["authentication_results"], want)
	}
	if d := last["dkim"].(map[string]any); d["checked"] != false || !strings.Contains(d["note"].(string), "no message given") {
		t.Errorf("dkim without a message: %v", d)
	}
}

func TestAuthUsage(t *testing.T) {
	big := make([]byte, 25<<20+1)
	tests := []struct {
		args  []string
		stdin []byte
		msg   string
	}{
		{[]string{"auth", "--helo", "h", "--mail-from", "a@b.c"}, nil, "--ip is required"},
		{[]string{"auth", "--ip", "1.2.3.4", "--mail-from", "a@b.c"}, nil, "--helo is required"},
		{[]string{"auth", "--ip", "1.2.3.4", "--helo", "h"}, nil, "--mail-from is required"},
		{[]string{"auth", "--ip", "nope", "--helo", "h", "--mail-from", "a@b.c"}, nil, `--ip "nope" is not an IP address`},
		{[]string{"auth", "--ip", "1.2.3.4", "--helo", "h", "--mail-from", "no-at"}, nil, "want LOCAL@DOMAIN"},
		{[]string{"auth", "--ip", "1.2.3.4", "--helo", "h", "--mail-from", "a@b.c", "--message", "/nonexistent/msg"}, nil, "no such file"},
		{[]string{"auth", "--ip", "1.2.3.4", "--helo", "h", "--mail-from", "a@b.c", "--message", "-"}, nil, "is empty"},
		{[]string{"auth", "--ip", "1.2.3.4", "--helo", "h", "--mail-from", "a@b.c", "--message", "-"}, big, "more than 25 MiB"},
	}
	for _, tc := range tests {
		_, errOut, code := cliIn(t, tc.stdin, append(tc.args, "--resolver", "127.0.0.1:1")...)
		if code != 2 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errOut, tc.msg)
		}
	}
}
