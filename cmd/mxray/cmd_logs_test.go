package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/testutil"
)

// oneMessage is a hand-written log: one message received and delivered,
// one recipient rejected, one SASL failure.
const oneMessage = `Nov  2 10:00:00 mx postfix/smtpd[100]: connect from client.example[192.0.2.10]
Nov  2 10:00:01 mx postfix/smtpd[100]: 4AB12C3D4E: client=client.example[192.0.2.10]
Nov  2 10:00:01 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m1@client.example>
Nov  2 10:00:01 mx postfix/qmgr[102]: 4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)
Nov  2 10:00:02 mx postfix/smtp[103]: 4AB12C3D4E: to=<bob@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 99)
Nov  2 10:00:02 mx postfix/qmgr[102]: 4AB12C3D4E: removed
Nov  2 10:00:03 mx postfix/smtpd[100]: NOQUEUE: reject: RCPT from client.example[192.0.2.10]: 550 5.1.1 <nobody@mx.example>: Recipient address rejected: User unknown in virtual mailbox table; from=<alice@client.example> to=<nobody@mx.example> proto=ESMTP helo=<client.example>
Nov  2 10:00:04 mx postfix/smtpd[100]: warning: unknown[203.0.113.5]: SASL LOGIN authentication failed: UGFzc3dvcmQ6
Nov  2 10:00:05 mx postfix/smtpd[100]: disconnect from client.example[192.0.2.10] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5/6
`

// stampedLog has RFC 3339 timestamps (Postfix's maillog_file), so that
// golden files do not depend on the year the test runs in: a message
// deferred, retried and bounced with its notification, and password
// guessing over SMTP and IMAP.
const stampedLog = `2026-03-01T10:00:00.000000+01:00 mx postfix/smtpd[100]: connect from client.example[192.0.2.10]
2026-03-01T10:00:01.000000+01:00 mx postfix/smtpd[100]: 4AB12C3D4E: client=client.example[192.0.2.10], sasl_method=PLAIN, sasl_username=alice
2026-03-01T10:00:01.100000+01:00 mx postfix/cleanup[101]: 4AB12C3D4E: message-id=<m1@client.example>
2026-03-01T10:00:01.200000+01:00 mx postfix/qmgr[102]: 4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)
2026-03-01T10:00:02.000000+01:00 mx postfix/smtpd[100]: disconnect from client.example[192.0.2.10] ehlo=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=6
2026-03-01T10:00:03.000000+01:00 mx postfix/smtp[103]: 4AB12C3D4E: host mx.dest.example[198.51.100.7] said: 451 4.7.1 greylisted, try again later (in reply to RCPT TO command)
2026-03-01T10:00:03.100000+01:00 mx postfix/smtp[103]: 4AB12C3D4E: to=<bob@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=2.1, delays=1.2/0.01/0.5/0.39, dsn=4.7.1, status=deferred (host mx.dest.example[198.51.100.7] said: 451 4.7.1 greylisted, try again later (in reply to RCPT TO command))
2026-03-01T10:05:00.000000+01:00 mx postfix/qmgr[102]: 4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)
2026-03-01T10:05:01.000000+01:00 mx postfix/smtp[104]: 4AB12C3D4E: to=<bob@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=300, delays=299/0.01/0.5/0.49, dsn=5.1.1, status=bounced (host mx.dest.example[198.51.100.7] said: 550 5.1.1 <bob@dest.example>: no such user (in reply to RCPT TO command))
2026-03-01T10:05:01.100000+01:00 mx postfix/cleanup[101]: 6CD34E5F60: message-id=<20260301090501.6CD34E5F60@mx.example>
2026-03-01T10:05:01.200000+01:00 mx postfix/bounce[105]: 4AB12C3D4E: sender non-delivery notification: 6CD34E5F60
2026-03-01T10:05:01.300000+01:00 mx postfix/qmgr[102]: 6CD34E5F60: from=<>, size=3000, nrcpt=1 (queue active)
2026-03-01T10:05:01.400000+01:00 mx postfix/qmgr[102]: 4AB12C3D4E: removed
2026-03-01T10:05:02.000000+01:00 mx postfix/smtp[104]: 6CD34E5F60: to=<alice@client.example>, relay=mx.client.example[192.0.2.10]:25, delay=0.9, delays=0/0/0.4/0.5, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1234)
2026-03-01T10:05:02.100000+01:00 mx postfix/qmgr[102]: 6CD34E5F60: removed
2026-03-01T11:00:00.000000+01:00 mx postfix/submission/smtpd[200]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: authentication failure, sasl_username=admin
2026-03-01T11:00:01.000000+01:00 mx postfix/submission/smtpd[200]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: authentication failure, sasl_username=info
2026-03-01T11:00:02.000000+01:00 mx postfix/submission/smtpd[200]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: authentication failure, sasl_username=admin
2026-03-01T11:00:03.000000+01:00 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=198.51.100.2, lip=192.0.2.1, TLS
2026-03-01T11:00:04.000000+01:00 mx dovecot: imap-login: Login: user=<alice>, method=PLAIN, rip=198.51.100.2, lip=192.0.2.1, mpid=7, TLS
`

func writeLog(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mail.log")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLogsSummary(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "mail.log")
	os.WriteFile(plain, []byte(oneMessage), 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(oneMessage))
	zw.Close()
	rotated := filepath.Join(dir, "mail.log.1.gz")
	os.WriteFile(rotated, gz.Bytes(), 0o644)

	out, errOut, code := cli(t, "logs", "summary", "--json", plain)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	res := checkEnvelope(t, out, "logs summary")
	totals := res["totals"].(map[string]any)
	for k, want := range map[string]float64{"received": 1, "delivered": 1, "rejected": 1, "bytes_received": 1234, "bytes_delivered": 1234, "senders": 1, "recipients": 1} {
		if totals[k] != want {
			t.Errorf("totals.%s = %v, want %v", k, totals[k], want)
		}
	}

	// A gzip-rotated file and the plain one: counted twice, in order.
	out, _, code = cli(t, "logs", "summary", "--json", rotated, plain)
	var twice struct {
		Totals struct{ Received, Delivered int } `json:"totals"`
	}
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &twice) != nil || twice.Totals.Received != 2 || twice.Totals.Delivered != 2 {
		t.Errorf("rotated + plain: exit %d, totals %+v", code, twice.Totals)
	}

	// Standard input, text output.
	var stdout, stderr bytes.Buffer
	code = run(context.Background(), []string{"logs", "summary", "-"}, strings.NewReader(oneMessage), &stdout, &stderr)
	if code != 0 || !strings.Contains(stdout.String(), "Grand Totals") || !strings.Contains(stdout.String(), "1  delivered") {
		t.Errorf("stdin: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}

	if _, errOut, code := cli(t, "logs", "summary", filepath.Join(dir, "missing.log")); code != 2 || !strings.Contains(errOut, "missing.log") {
		t.Errorf("missing file: exit %d, %q; want 2 naming the file", code, errOut)
	}

	// --since on a file: only the lines from 11:00 on (the guesses).
	out, errOut, code = cli(t, "logs", "summary", "--json", "--since", "2026-03-01T11:00:00+01:00", writeLog(t, stampedLog))
	var since struct {
		Totals struct{ Received int } `json:"totals"`
		Lines  struct{ Total int }    `json:"lines"`
	}
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &since) != nil || since.Totals.Received != 0 || since.Lines.Total != 5 {
		t.Errorf("--since: exit %d %s, %+v", code, errOut, since)
	}
}

func TestLogsTrace(t *testing.T) {
	log := writeLog(t, stampedLog)
	out, errOut, code := cli(t, "logs", "trace", "--json", "4AB12C3D4E", log)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkEnvelope(t, out, "logs trace")
	golden(t, "logs_trace.jsonl", out)

	out, _, code = cli(t, "logs", "trace", "bob@dest.example", log)
	for _, s := range []string{"1 message(s) match address \"bob@dest.example\", 1 more followed from them",
		"4AB12C3D4E  <m1@client.example>  → BOUNCED",
		"deferred to <bob@dest.example> via mx.dest.example[198.51.100.7]:25, dsn 4.7.1, delay 2.1 s = 1.2 s before the queue manager (a), 0.01 s in the queue manager (b), 0.5 s connection setup: DNS, HELO, TLS (c), 0.39 s transmission (d)",
		"— will be retried", "recipient <bob@dest.example>: bounced 5.1.1 after 2 attempt(s)",
		"6CD34E5F60  <20260301090501.6CD34E5F60@mx.example>  → DELIVERED", "(the sender non-delivery notification for 4AB12C3D4E)"} {
		if code != 0 || !strings.Contains(out, s) {
			t.Errorf("exit %d; text lacks %q:\n%s", code, s, out)
		}
	}

	// Nothing matched: exit 1, and the result still says what was asked.
	out, _, code = cli(t, "logs", "trace", "--json", "<nobody@nowhere.example>", log)
	res := checkEnvelope(t, out, "logs trace")
	if code != 1 || res["kind"] != "message-id" || res["matched"] != float64(0) || len(res["messages"].([]any)) != 0 {
		t.Errorf("no match: exit %d, %v", code, res)
	}
	out, _, code = cli(t, "logs", "trace", "nobody@nowhere.example", log)
	if code != 1 || !strings.Contains(out, `No message matches address "nobody@nowhere.example"`) {
		t.Errorf("no match, text: exit %d %q", code, out)
	}
	for _, args := range [][]string{{"logs", "trace"}, {"logs", "trace", "--since", "yesterday", "x@y", log}, {"logs", "trace", "x@y", log + ".missing"}} {
		if _, errOut, code := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}

func TestLogsAuth(t *testing.T) {
	out, errOut, code := cli(t, "logs", "auth", "--json", writeLog(t, stampedLog))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkEnvelope(t, out, "logs auth")
	golden(t, "logs_auth.jsonl", out)

	// fail2ban's Dovecot log, most failures first, top 3.
	dovecot := filepath.Join(testutil.Shared(t, "mail-logs"), "fail2ban", "dovecot.log")
	out, errOut, code = cli(t, "logs", "auth", "--top", "3", dovecot)
	if code != 0 || !strings.Contains(out, "By client address") || !strings.Contains(out, "By user") {
		t.Fatalf("exit %d %s\n%s", code, errOut, out)
	}
	if n := strings.Count(out, "\n  "); n > 2*(3+1) {
		t.Errorf("--top 3 printed %d rows:\n%s", n, out)
	}
	if _, _, code := cli(t, "logs", "auth", "--top", "-1", dovecot); code != 2 {
		t.Errorf("--top -1: exit %d, want 2", code)
	}
}

// fakeJournal puts a journalctl stand-in first in PATH: there is no
// journald in the test sandbox. It records its arguments in DIR/args.
func fakeJournal(t *testing.T, records string) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "records"), []byte(records), 0o644)
	script := "#!/bin/sh\n" +
		"case \"$1 $2\" in\n" +
		"\"-F SYSLOG_IDENTIFIER\") printf 'postfix/smtpd\\npostfix/qmgr\\npostfix/smtp\\nsshd\\n'; exit 0;;\n" +
		"\"-F _SYSTEMD_UNIT\") printf 'postfix@-.service\\nssh.service\\n'; exit 0;;\n" +
		"esac\n" +
		"printf '%s\\n' \"$@\" > " + dir + "/args\n" +
		"cat " + dir + "/records\n"
	os.WriteFile(filepath.Join(dir, "journalctl"), []byte(script), 0o755)
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func TestLogsFromJournal(t *testing.T) {
	old := defaultMailLog
	defaultMailLog = filepath.Join(t.TempDir(), "no-mail.log")
	t.Cleanup(func() { defaultMailLog = old })
	now := time.Now()
	var records strings.Builder
	for i, m := range []string{
		"4AB12C3D4E: client=client.example[192.0.2.10]",
		"4AB12C3D4E: from=<alice@client.example>, size=1234, nrcpt=1 (queue active)",
		"4AB12C3D4E: to=<bob@dest.example>, relay=mx.dest.example[198.51.100.7]:25, delay=1.2, delays=0.1/0.01/0.5/0.6, dsn=2.0.0, status=sent (250 ok)",
		"4AB12C3D4E: removed",
	} {
		id := []string{"postfix/smtpd", "postfix/qmgr", "postfix/smtp", "postfix/qmgr"}[i]
		rec, _ := json.Marshal(map[string]string{"__REALTIME_TIMESTAMP": strconv.FormatInt(now.Add(-time.Hour).UnixMicro()+int64(i), 10),
			"_HOSTNAME": "mx", "SYSLOG_IDENTIFIER": id, "_PID": "100", "MESSAGE": m})
		records.Write(rec)
		records.WriteByte('\n')
	}
	dir := fakeJournal(t, records.String())

	out, errOut, code := cli(t, "logs", "trace", "--json", "--since", "24h", "bob@dest.example")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	res := checkEnvelope(t, out, "logs trace")
	msgs := res["messages"].([]any)
	if len(msgs) != 1 || msgs[0].(map[string]any)["outcome"] != "delivered" {
		t.Errorf("trace from the journal: %v", res)
	}
	if !strings.Contains(errOut, "reading the systemd journal") || !strings.Contains(errOut, "journalctl -o json --no-pager -q --since @") {
		t.Errorf("stderr does not say where the lines came from:\n%s", errOut)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args"))
	a := strings.Split(strings.TrimSpace(string(args)), "\n")
	i := indexOf(a, "--since")
	if i < 0 || i+1 >= len(a) {
		t.Fatalf("journalctl ran without --since: %q", a)
	}
	sec, err := strconv.ParseInt(strings.TrimPrefix(a[i+1], "@"), 10, 64)
	if want := now.Add(-24 * time.Hour).Unix(); err != nil || sec < want-60 || sec > want+60 {
		t.Errorf("--since %s, want about @%d", a[i+1], want)
	}
	for _, m := range []string{"SYSLOG_IDENTIFIER=postfix/smtpd", "+", "_SYSTEMD_UNIT=postfix@-.service", "_SYSTEMD_UNIT=dovecot.service"} {
		if indexOf(a, m) < 0 {
			t.Errorf("journalctl arguments lack %q: %q", m, a)
		}
	}
	if indexOf(a, "SYSLOG_IDENTIFIER=sshd") >= 0 || indexOf(a, "_SYSTEMD_UNIT=ssh.service") >= 0 {
		t.Errorf("journalctl asked for other programs: %q", a)
	}

	// The summary reads the journal too.
	out, _, code = cli(t, "logs", "summary", "--json")
	var s struct {
		Totals struct{ Delivered int } `json:"totals"`
	}
	if code != 0 || json.Unmarshal([]byte(strings.TrimSpace(out)), &s) != nil || s.Totals.Delivered != 1 {
		t.Errorf("summary from the journal: exit %d %s", code, out)
	}

	// No mail log and no journalctl: say both.
	t.Setenv("PATH", t.TempDir())
	_, errOut, code = cli(t, "logs", "auth")
	if code != 2 || !strings.Contains(errOut, "does not exist") || !strings.Contains(errOut, "journal") {
		t.Errorf("no input at all: exit %d, %q", code, errOut)
	}
}

func indexOf(l []string, s string) int {
	for i, x := range l {
		if x == s {
			return i
		}
	}
	return -1
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestLogsFollow(t *testing.T) {
	path := writeLog(t, "")
	add := func(s string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"logs", "follow", "--json", "--poll", "5ms", "--from-start", "--address", "bob@dest.example", path}, strings.NewReader(""), &stdout, &stderr)
	}()
	// waitFor waits (bounded) until stdout holds n entry lines.
	waitFor := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(stdout.String(), `"type":"step","id":"entry"`) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %d entries within 10s:\n%s\n%s", n, stdout.String(), stderr.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	lines := strings.Split(strings.TrimSpace(stampedLog), "\n")
	add(lines[0] + "\n" + lines[6] + "\n") // connect (not bob's), deferred to bob
	waitFor(1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	add(lines[8] + "\n") // bounced, in the new file
	waitFor(2)
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit %d: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not stop when cancelled")
	}
	outLines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(outLines) != 3 {
		t.Fatalf("want 2 entries and a result:\n%s", stdout.String())
	}
	var e struct {
		Type   string
		ID     string
		Status string
		Title  string
		Data   struct {
			Status string `json:"status"`
		}
	}
	json.Unmarshal([]byte(outLines[1]), &e)
	if e.Type != "step" || e.ID != "entry" || e.Status != "info" || e.Title != lines[8] || e.Data.Status != "bounced" {
		t.Errorf("second entry %+v", e)
	}
	var res struct {
		Type, Command        string
		Lines, Matched       int
		Rotations, Truncated int
	}
	json.Unmarshal([]byte(outLines[2]), &res)
	if res.Type != "result" || res.Command != "logs follow" || res.Lines != 3 || res.Matched != 2 || res.Rotations != 1 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(stderr.String(), "rotated") {
		t.Errorf("stderr does not mention the rotation: %s", stderr.String())
	}

	if _, errOut, c := cli(t, "logs", "follow", "--event", "bogus", path); c != 2 || !strings.Contains(errOut, "not an event") {
		t.Errorf("--event bogus: exit %d %q", c, errOut)
	}
	if _, _, c := cli(t, "logs", "follow", path+".none"); c != 2 {
		t.Errorf("missing file: exit %d", c)
	}
}
