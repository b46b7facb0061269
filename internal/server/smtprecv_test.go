package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/store"
)

// reportMail is a DMARC report as receivers mail it, the XML inline.
func reportMail(id string) string {
	return "From: noreply-dmarc@receiver.example\r\nTo: dmarc@reports.test\r\n" +
		"Subject: Report Domain: example.com Submitter: receiver.example Report-ID: " + id + "\r\n" +
		"Message-ID: <" + id + "@receiver.example>\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: text/xml\r\nContent-Disposition: attachment; filename=\"receiver.example!example.com!1777593600!1777679999.xml\"\r\n\r\n" +
		strings.ReplaceAll(dmarcXML(id), "\n", "\r\n")
}

// smtpClient is a bare SMTP client that shows every reply.
type smtpClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(t *testing.T, addr string) (*smtpClient, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc := &smtpClient{t: t, c: c, r: bufio.NewReader(c)}
	return sc, sc.reply()
}

// reply reads one (multi-line) reply, waiting at most a minute.
func (sc *smtpClient) reply() string {
	sc.t.Helper()
	sc.c.SetReadDeadline(time.Now().Add(time.Minute))
	var lines []string
	for {
		l, err := sc.r.ReadString('\n')
		if err != nil {
			return strings.Join(append(lines, "EOF: "+err.Error()), "\n")
		}
		lines = append(lines, strings.TrimRight(l, "\r\n"))
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

func (sc *smtpClient) cmd(line string) string {
	sc.t.Helper()
	fmt.Fprintf(sc.c, "%s\r\n", line)
	return sc.reply()
}

func wantPrefix(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.HasPrefix(got, want) {
		t.Errorf("%s: %q, want %q…", what, got, want)
	}
}

func TestSMTPReceiverSession(t *testing.T) {
	ts := startServer(t, Config{SMTP: SMTPConfig{Enabled: true, Hostname: "reports.test",
		Recipients: []string{"DMARC@reports.test", "tlsrpt@reports.test"}, MaxBytes: 8192}})
	ctx := context.Background()
	sc, banner := dialSMTP(t, ts.smtp)
	wantPrefix(t, "banner", banner, "220 reports.test ESMTP")
	wantPrefix(t, "MAIL before EHLO", sc.cmd("MAIL FROM:<a@b.example>"), "503 5.5.1")
	ehlo := sc.cmd("EHLO client.example")
	for _, ext := range []string{"250-reports.test", "SIZE 8192", "PIPELINING", "ENHANCEDSTATUSCODES"} {
		if !strings.Contains(ehlo, ext) {
			t.Errorf("EHLO reply lacks %q:\n%s", ext, ehlo)
		}
	}
	if strings.Contains(ehlo, "STARTTLS") {
		t.Errorf("STARTTLS offered without a certificate:\n%s", ehlo)
	}
	wantPrefix(t, "RCPT before MAIL", sc.cmd("RCPT TO:<dmarc@reports.test>"), "503 5.5.1")
	wantPrefix(t, "declared size too big", sc.cmd("MAIL FROM:<a@b.example> SIZE=9000"), "552 5.3.4")
	wantPrefix(t, "MAIL", sc.cmd("MAIL FROM:<a@b.example> SIZE=900"), "250 2.1.0")
	wantPrefix(t, "nested MAIL", sc.cmd("MAIL FROM:<a@b.example>"), "503 5.5.1")
	wantPrefix(t, "unknown recipient", sc.cmd("RCPT TO:<postmaster@reports.test>"), "550 5.1.1")
	wantPrefix(t, "DATA without recipient", sc.cmd("DATA"), "503 5.5.1")
	wantPrefix(t, "recipient, any case", sc.cmd("RCPT TO:<dmarc@Reports.Test>"), "250 2.1.5")
	wantPrefix(t, "DATA", sc.cmd("DATA"), "354")
	fmt.Fprint(sc.c, strings.ReplaceAll(reportMail("smtp-1"), "\r\n<feedback>", "\r\n<feedback>\r\n..\r\n")+".\r\n")
	wantPrefix(t, "message accepted", sc.reply(), "250 2.0.0 OK: imported")

	// A message that is not a report is kept in the quarantine, with its
	// dot-stuffing undone.
	sc.cmd("MAIL FROM:<>")
	sc.cmd("RCPT TO:<tlsrpt@reports.test>")
	sc.cmd("DATA")
	fmt.Fprint(sc.c, "Subject: hello\r\n\r\n..leading dot\r\n...two\r\n.\r\n")
	wantPrefix(t, "non-report", sc.reply(), "250 2.0.0 OK: quarantined")
	items, err := ts.db.QuarantineList(ctx)
	if err != nil || len(items) != 1 {
		t.Fatalf("quarantine %v, %v", items, err)
	}
	q, _ := ts.db.QuarantineGet(ctx, items[0].ID)
	if want := "Subject: hello\r\n\r\n.leading dot\r\n..two\r\n"; string(q.Raw) != want {
		t.Errorf("received %q, want %q", q.Raw, want)
	}

	// Too big: read to the end, then refused; the session goes on.
	sc.cmd("MAIL FROM:<>")
	sc.cmd("RCPT TO:<tlsrpt@reports.test>")
	sc.cmd("DATA")
	fmt.Fprint(sc.c, "Subject: big\r\n\r\n"+strings.Repeat(strings.Repeat("x", 100)+"\r\n", 100)+".\r\n")
	wantPrefix(t, "too big", sc.reply(), "552 5.3.4")
	wantPrefix(t, "RSET", sc.cmd("RSET"), "250 2.0.0")
	wantPrefix(t, "NOOP", sc.cmd("NOOP"), "250 2.0.0")
	wantPrefix(t, "unknown command", sc.cmd("BDAT 10 LAST"), "500 5.5.2")
	wantPrefix(t, "long line", sc.cmd("NOOP "+strings.Repeat("x", 5000)), "500 5.5.2")
	wantPrefix(t, "STARTTLS without certificate", sc.cmd("STARTTLS"), "502 5.5.1")

	list, err := ts.db.ReportList(ctx, store.ListFilter{})
	if err != nil || len(list) != 1 || list[0].ReportID != "smtp-1" || !strings.HasPrefix(list[0].Source, "smtp:127.0.0.1") {
		t.Errorf("stored %+v, %v", list, err)
	}

	// The store fails: 451, so that the sender keeps the message.
	ts.db.Close()
	sc.cmd("MAIL FROM:<>")
	sc.cmd("RCPT TO:<dmarc@reports.test>")
	sc.cmd("DATA")
	fmt.Fprint(sc.c, reportMail("smtp-2")+".\r\n")
	wantPrefix(t, "store unavailable", sc.reply(), "451 4.3.0")
	wantPrefix(t, "QUIT", sc.cmd("QUIT"), "221 2.0.0")
}

func TestSMTPReceiverLimits(t *testing.T) {
	ts := startServer(t, Config{SMTP: SMTPConfig{Enabled: true, Recipients: []string{"dmarc@reports.test"},
		MaxConns: 1, CommandTimeout: 300 * time.Millisecond}})
	first, banner := dialSMTP(t, ts.smtp)
	wantPrefix(t, "first connection", banner, "220 ")
	_, busy := dialSMTP(t, ts.smtp)
	wantPrefix(t, "second connection", busy, "421 4.3.2")
	// The idle first session is closed after the command time limit.
	wantPrefix(t, "idle session", first.reply(), "421 4.4.2")
	if got := first.reply(); !strings.Contains(got, "EOF") {
		t.Errorf("after 421: %q, want the connection closed", got)
	}
	// Its slot is free again once it is gone.
	var again string
	for range 50 {
		var c *smtpClient
		c, again = dialSMTP(t, ts.smtp)
		if strings.HasPrefix(again, "220") {
			c.cmd("QUIT")
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantPrefix(t, "after the first closed", again, "220 ")
}

func writeCert(t *testing.T) (ca *lab.CA, cert, key string) {
	t.Helper()
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"reports.test", "127.0.0.1"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, leaf.CertPEM, 0o600)
	os.WriteFile(key, leaf.KeyPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "ca.pem"), ca.PEM, 0o600)
	return ca, cert, key
}

// swaks sends a report with swaks (the real client) and returns its
// transcript.
func swaks(t *testing.T, addr string, args ...string) (string, error) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("swaks", append([]string{"--server", host, "--port", port, "--from", "noreply-dmarc@receiver.example",
		"--helo", "receiver.example", "--data", "-", "--timeout", "60"}, args...)...)
	cmd.Stdin = strings.NewReader(reportMail("swaks-" + strings.Join(args, "")))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestSMTPReceiverWithSwaks(t *testing.T) {
	_, cert, key := writeCert(t)
	ts := startServer(t, Config{SMTP: SMTPConfig{Enabled: true, Hostname: "reports.test",
		Recipients: []string{"dmarc@reports.test"}, CertFile: cert, KeyFile: key}})
	ctx := context.Background()

	out, err := swaks(t, ts.smtp, "--to", "dmarc@reports.test")
	if err != nil || !strings.Contains(out, "<-  250 2.0.0 OK: imported") {
		t.Fatalf("plain: %v\n%s", err, out)
	}
	out, err = swaks(t, ts.smtp, "--to", "dmarc@reports.test", "--tls")
	if err != nil || !strings.Contains(out, "TLS started") || !strings.Contains(out, "250 2.0.0 OK: imported") {
		t.Fatalf("STARTTLS: %v\n%s", err, out)
	}
	out, err = swaks(t, ts.smtp, "--to", "someone@reports.test")
	if err == nil || !strings.Contains(out, "<** 550 5.1.1") {
		t.Errorf("unknown recipient: %v\n%s", err, out)
	}
	list, err := ts.db.ReportList(ctx, store.ListFilter{Kind: store.KindDMARC})
	if err != nil || len(list) != 2 {
		t.Errorf("stored %+v, %v; want 2 DMARC reports", list, err)
	}
}

// TestPostfixRelaysToTheReceiver is the setup of docs/parts/serve.md: a
// real Postfix routes reports.test to the SMTP receiver by transport_maps.
func TestPostfixRelaysToTheReceiver(t *testing.T) {
	ts := startServer(t, Config{SMTP: SMTPConfig{Enabled: true, Hostname: "reports.test",
		Recipients: []string{"dmarc@reports.test"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, port, _ := net.SplitHostPort(ts.smtp)
	pf, err := lab.StartPostfix(ctx, lab.PostfixConfig{Main: map[string]string{
		"relay_domains":  "reports.test",
		"transport_maps": "inline:{ reports.test=smtp:[127.0.0.1]:" + port + " }",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Stop()
	out, err := swaks(t, pf.SMTP, "--to", "dmarc@reports.test")
	if err != nil {
		t.Fatalf("swaks through Postfix: %v\n%s", err, out)
	}
	for ctx.Err() == nil {
		list, err := ts.db.ReportList(ctx, store.ListFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 {
			if !strings.HasPrefix(list[0].Source, "smtp:127.0.0.1") || list[0].Domain != "example.com" {
				t.Errorf("stored %+v", list[0])
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	log, _ := os.ReadFile(pf.LogFile)
	t.Fatalf("the report never reached the store; Postfix log:\n%s", log)
}
