package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
Nov  2 10:00:05 mx postfix/smtpd[100]: disconnect from client.example[192.0.2.10] ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6
`

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
}
