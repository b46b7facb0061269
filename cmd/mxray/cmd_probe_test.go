package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
)

// mailLab is real Postfix (submission with SASL through Dovecot, LMTP
// delivery to it) and Dovecot with a lab CA certificate for
// mx1.example.test, reached through --connect-map. Dovecot is reached from
// 127.0.0.2 (see fromOtherAddr) so that it behaves as for a remote client.
type mailLab struct {
	args   []string // --resolver, --connect-map, --tls-ca
	pwFile string
}

func startMailLab(t *testing.T) *mailLab {
	t.Helper()
	ctx := context.Background()
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := lab.StartDovecot(ctx, lab.DovecotConfig{Cert: leaf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Stop() })
	pf, err := lab.StartPostfix(ctx, lab.PostfixConfig{Cert: leaf, LMTP: dv.LMTP, SASLAuth: dv.Auth})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	pwFile := filepath.Join(dir, "pw")
	os.WriteFile(caFile, ca.PEM, 0o644)
	os.WriteFile(pwFile, []byte("alice-password\n"), 0o600)
	cm := []string{"25=" + pf.SMTP, "587=" + pf.Submission, "465=" + closedAddr(t),
		"143=" + fromOtherAddr(t, dv.IMAP), "993=" + fromOtherAddr(t, dv.IMAPS),
		"110=" + fromOtherAddr(t, dv.POP3), "995=" + fromOtherAddr(t, dv.POP3S), "4190=" + fromOtherAddr(t, dv.Sieve)}
	return &mailLab{
		args:   []string{"--resolver=" + startLabDNS(t), "--connect-map", strings.Join(cm, ","), "--tls-ca", caFile},
		pwFile: pwFile,
	}
}

func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// fromOtherAddr forwards to target from the source address 127.0.0.2:
// Dovecot treats a client on its own address as secure and would offer it
// plaintext logins that it refuses to everyone else.
func fromOtherAddr(t *testing.T, target string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
				s, err := d.Dial("tcp", target)
				if err != nil {
					return
				}
				defer s.Close()
				go func() { io.Copy(s, c); s.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, s)
			}()
		}
	}()
	return ln.Addr().String()
}

// mailVolatile are the parts of probe and roundtrip output that change
// from run to run: certificate dates and hashes, queue ids, Dovecot's
// timings, UIDs, the round trip's token and latency.
var mailVolatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`), "DATE"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\d`), "DATE"},
	{regexp.MustCompile(`[0-9a-f]{64}`), "SHA256"},
	{regexp.MustCompile(`\d+ days left`), "N days left"},
	{regexp.MustCompile(`"days_left":\d+`), `"days_left":N`},
	{regexp.MustCompile(`ok, \d+d`), "ok, Nd"},
	{regexp.MustCompile(`queued as [0-9A-F]+`), "queued as QID"},
	{regexp.MustCompile(`ESMTPSA id [0-9A-F]+`), "ESMTPSA id QID"},
	{regexp.MustCompile(`\(\d+\.\d+ \+ \d+\.\d+( \+ \d+\.\d+)? secs\)`), "(T secs)"},
	{regexp.MustCompile(`[a-z2-7]{26}`), "TOKEN"},
	{regexp.MustCompile(`\w{3}, \d\d? \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}( \(UTC\))?`), "RFC5322DATE"},
	{regexp.MustCompile(`by \S+ with LMTP id \S+`), "by HOST with LMTP id ID"},
	{regexp.MustCompile(`"(latency_ms|uid|uid_validity|uid_next|exists|polls|size)":[0-9.]+`), `"$1":N`},
	{regexp.MustCompile(`"uids":\[[0-9,]+\]`), `"uids":[N]`},
	{regexp.MustCompile(`(UIDVALIDITY|UIDNEXT|UID STORE|UID EXPUNGE|UID FETCH|SEARCH|\(UID) \d+`), "$1 N"},
	{regexp.MustCompile(`\* \d+ (EXISTS|RECENT|FETCH|EXPUNGE)`), "* N $1"},
	{regexp.MustCompile(`(literal|message): \d+ octets`), "$1: N octets"},
	{regexp.MustCompile(`"([CS]): a\d+ `), `"$1: aN `},
	{regexp.MustCompile(`INBOX [0-9.]+ (µs|ms|s) after`), "INBOX T after"},
	{regexp.MustCompile(`SIZE=\d+`), "SIZE=N"},
	{regexp.MustCompile(`has \d+ messages`), "has N messages"},
	{regexp.MustCompile(`found after [^,]+, \d+ searches`), "found after T, N searches"},
}

func normalizeMail(t *testing.T, out string) string {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		// The wait step's transcript holds one search per poll: as many
		// as the timing gives.
		if strings.Contains(l, `"id":"imap.wait"`) {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "transcript")
			b, _ := json.Marshal(m)
			l = string(b)
		}
		lines = append(lines, l)
	}
	out = strings.Join(lines, "\n") + "\n"
	for _, v := range mailVolatile {
		out = v.re.ReplaceAllString(out, v.with)
	}
	return out
}

func TestProbeAndRoundtrip(t *testing.T) {
	ml := startMailLab(t)
	base := with(ml.args, "--helo", "probe.mxray.test")
	probeCmd := with([]string{"probe"}, base...)
	user := []string{"--user", "alice@example.test", "--password-file", ml.pwFile}
	rt := with([]string{"roundtrip"}, base...)
	rt = with(rt, "--submission", "mx1.example.test", "--imap", "mx1.example.test", "--to", "alice@example.test", "--wait", "30s")
	t.Setenv(secretEnv, "")

	tests := []struct {
		name   string
		args   []string
		code   int
		golden string
		text   []string
	}{
		{name: "probe all json", args: with(probeCmd, with(user, "mx1.example.test", "--json")...), code: 0, golden: "probe_good.jsonl"},
		{name: "probe text", args: with(probeCmd, with(user, "mx1.example.test")...), code: 0, text: []string{
			"service      port  connect  TLS                        cert      auth                       login",
			"smtp         25    ok       ! TLS 1.3 (also 1.0, 1.1)  ok, ",
			"submissions  465   refused  -",
			"imaps        993   ok       TLS 1.3                    ok, ",
			"[ ok ] imaps: logged in as alice@example.test (AUTHENTICATE PLAIN): a2 OK",
			"[ ok ] smtp: not an open relay: 554 5.7.1 <probe@example.invalid>: Relay access denied",
			"WORKS, WITH WARNINGS  smtp (warn), submission (warn)",
		}},
		{name: "probe strict", args: with(probeCmd, "--strict", "--service", "smtp", "mx1.example.test"), code: 1},
		{name: "wrong password", args: with(probeCmd, "--service", "imaps,submission", "--user", "alice@example.test", "--password-file", writeTemp(t, "wrong\n"), "mx1.example.test"), code: 1,
			text: []string{"[FAIL] imaps: login as alice@example.test refused: a2 NO [AUTHENTICATIONFAILED] Authentication failed.", "[FAIL] submission: login as alice@example.test refused: 535 5.7.8"}},
		{name: "closed port named", args: with(probeCmd, "--service", "submissions", "mx1.example.test", "--json"), code: 1, golden: "probe_closed.jsonl"},
		{name: "wrong name", args: with(probeCmd, "--service", "imaps", "mail.probe.test", "--json"), code: 1, golden: "probe_wrongname.jsonl"},
		{name: "no such host", args: with(probeCmd, "nope.example.test"), code: 1, text: []string{"[FAIL] no address for nope.example.test"}},
		{name: "port override", args: with(probeCmd, "--service", "imap", "--port", "993", "--timeout", "2s", "mx1.example.test"), code: 1, text: []string{"imap     993", "[FAIL] imap: no greeting"}},
		{name: "port with all", args: with(probeCmd, "--port", "993", "mx1.example.test"), code: 2},
		{name: "unknown service", args: with(probeCmd, "--service", "imap4", "mx1.example.test"), code: 2},
		{name: "password file without user", args: with(probeCmd, "--password-file", ml.pwFile, "mx1.example.test"), code: 2},
		{name: "user without password", args: with(probeCmd, "--user", "alice", "mx1.example.test"), code: 2},
		{name: "bad host", args: with(probeCmd, "user@mx1.example.test"), code: 2},

		{name: "roundtrip json", args: with(rt, with(user, "--json")...), code: 0, golden: "roundtrip_delivered.jsonl"},
		{name: "roundtrip text", args: with(rt, user...), code: 0, text: []string{
			"[ ok ] submission: message accepted: 250 2.0.0 Ok: queued as",
			"[ ok ] IMAP: test message deleted (UID STORE \\Deleted, UID EXPUNGE)",
			"DELIVERED  the message arrived in alice@example.test's INBOX",
			"with ESMTPSA id",
		}},
		{name: "roundtrip wrong password", args: with(rt, "--user", "alice@example.test", "--password-file", writeTemp(t, "wrong\n")), code: 1,
			text: []string{"REFUSED  IMAP: login refused: a2 NO [AUTHENTICATIONFAILED]"}},
		{name: "roundtrip without --to", args: with([]string{"roundtrip"}, with(base, with(user, "--submission", "x.test", "--imap", "x.test")...)...), code: 2},
		{name: "roundtrip bad from", args: with(rt, with(user, "--from", "<a@b.test>")...), code: 2},
		{name: "roundtrip user not an address", args: with(rt, "--user", "alice", "--password-file", ml.pwFile), code: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := cli(t, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			if tc.golden != "" {
				res := checkEnvelope(t, out, tc.args[0])
				if tc.args[0] == "probe" {
					for _, k := range []string{"host", "status", "services"} {
						if _, ok := res[k]; !ok {
							t.Errorf("result lacks %q", k)
						}
					}
				}
				golden(t, tc.golden, normalizeMail(t, out))
			}
			for _, s := range tc.text {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			if strings.Contains(out+errOut, "alice-password") {
				t.Error("the password is in the output")
			}
		})
	}
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPasswordNeverShown: with every protocol line traced to stderr and
// every transcript in the JSON, the password appears nowhere; the trace
// shows the redacted login lines.
func TestPasswordNeverShown(t *testing.T) {
	ml := startMailLab(t)
	const pw = "alice-password"
	t.Setenv(secretEnv, pw) // through the environment this time
	out, errOut, code := cli(t, with([]string{"probe"}, with(ml.args, "--helo", "probe.mxray.test", "--user", "alice@example.test",
		"--log-level", "trace", "--json", "mx1.example.test")...)...)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	out2, errOut2, code := cli(t, with([]string{"roundtrip"}, with(ml.args, "--helo", "probe.mxray.test", "--user", "alice@example.test",
		"--submission", "mx1.example.test", "--imap", "mx1.example.test:143", "--to", "alice@example.test", "--log-level", "trace", "--json")...)...)
	if code != 0 {
		t.Fatalf("roundtrip exit %d\n%s\n%s", code, out2, errOut2)
	}
	all := out + errOut + out2 + errOut2
	for _, secret := range []string{pw, "YWxpY2UtcGFzc3dvcmQ", "AGFsaWNlQGV4YW1wbGUudGVzdABhbGljZS1wYXNzd29yZA"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q appears in the output or the log", secret)
		}
	}
	for _, want := range []string{
		"C: AUTH PLAIN <redacted>",
		"C: a2 AUTHENTICATE PLAIN <redacted>",
		"C: AUTH PLAIN <redacted>", // pop3
		`C: AUTHENTICATE \"PLAIN\" <redacted>`,
		"level=TRACE",
	} {
		if !strings.Contains(errOut+out, want) {
			t.Errorf("trace or transcript lacks %q", want)
		}
	}
	if !strings.Contains(errOut2, "<message: ") || strings.Contains(errOut2, "This message was sent by") {
		t.Error("the roundtrip trace should show the message's size, not its text")
	}
}
