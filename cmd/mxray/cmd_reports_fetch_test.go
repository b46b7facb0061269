package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/ingest/imapsrc"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/testutil"
)

func TestParseIMAPURL(t *testing.T) {
	tests := []struct {
		in   string
		want imapsrc.Config
		bad  string
	}{
		{in: "imaps://alice@example.test@mx1.example.test/INBOX",
			want: imapsrc.Config{Address: "mx1.example.test:993", Security: imapsrc.ImplicitTLS, User: "alice@example.test", Folder: "INBOX"}},
		{in: "imap://dmarc@[::1]:1143/Reports/DMARC",
			want: imapsrc.Config{Address: "[::1]:1143", Security: imapsrc.StartTLS, User: "dmarc", Folder: "Reports/DMARC"}},
		{in: "imaps://u%40x@h", want: imapsrc.Config{Address: "h:993", Security: imapsrc.ImplicitTLS, User: "u@x"}},
		{in: "", bad: "--imap is required"},
		{in: "pop3://u@h/", bad: "imaps:// or imap://"},
		{in: "imaps://h/INBOX", bad: "no user"},
		{in: "imaps://u:secret@h/INBOX", bad: "--password-file"},
		{in: "imaps://u@h/INBOX?x=1", bad: "no query"},
	}
	for _, tc := range tests {
		got, err := parseIMAPURL(tc.in)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%q: %v, want an error with %q", tc.in, err, tc.bad)
			}
			continue
		}
		if diff := cmp.Diff(tc.want, got); err != nil || diff != "" {
			t.Errorf("%q (-want +got):\n%s %v", tc.in, diff, err)
		}
	}
}

type fetchJSON struct {
	Server      string `json:"server"`
	Folder      string `json:"folder"`
	Processed   string `json:"processed_folder"`
	Failed      string `json:"failed_folder"`
	Fetched     int    `json:"fetched"`
	Imported    int    `json:"imported"`
	Duplicates  int    `json:"duplicates"`
	Quarantined int    `json:"quarantined"`
	Moved       int    `json:"moved"`
	MovedFailed int    `json:"failed"`
	Left        int    `json:"left"`
	Messages    []struct {
		UID     uint32 `json:"uid"`
		Verdict string `json:"verdict"`
		Folder  string `json:"folder"`
		Method  string `json:"method"`
	} `json:"messages"`
}

// appendIMAP puts messages into alice's INBOX with APPEND over imaps.
func appendIMAP(t *testing.T, addr string, ca *lab.CA, msgs ...[]byte) {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "mx1.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	until := func(prefix string) string {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
	}
	until("* OK")
	io.WriteString(c, "l LOGIN alice@example.test alice-password\r\n")
	until("l OK")
	for i, m := range msgs {
		fmt.Fprintf(c, "p%d APPEND INBOX {%d}\r\n", i, len(m))
		until("+")
		c.Write(m)
		io.WriteString(c, "\r\n")
		if l := until(fmt.Sprintf("p%d ", i)); !strings.Contains(l, "OK") {
			t.Fatalf("APPEND: %s", l)
		}
	}
}

func TestReportsFetch(t *testing.T) {
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
	var msgs [][]byte
	for _, f := range []string{"dmarc-aggregate/mox/xs4all.eml", "smtp-tls-reports/mox/microsoft.eml"} {
		set, rest, _ := strings.Cut(f, "/")
		b, err := os.ReadFile(filepath.Join(testutil.Shared(t, set), rest))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, []byte(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")))
	}
	msgs = append(msgs, []byte("From: x@example.net\r\nSubject: hi\r\n\r\nno report here\r\n"))
	appendIMAP(t, dv.IMAPS, ca, msgs...)

	dir := t.TempDir()
	caFile, pwFile, badPw := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "pw"), filepath.Join(dir, "bad")
	os.WriteFile(caFile, ca.PEM, 0o644)
	os.WriteFile(pwFile, []byte("alice-password\n"), 0o600)
	os.WriteFile(badPw, []byte("wrong\n"), 0o600)
	data := filepath.Join(dir, "data")
	t.Setenv("MXRAY_PASSWORD", "")
	base := []string{"reports", "fetch", "--data", data, "--resolver=" + startLabDNS(t), "--tls-ca", caFile,
		"--connect-map", "993=" + dv.IMAPS + ",143=" + dv.IMAP}
	url := "imaps://alice@example.test@mx1.example.test/INBOX"

	// Wrong password: exit 3, nothing read.
	out, errOut, code := cli(t, append(base, "--imap", url, "--password-file", badPw)...)
	if code != 3 || !strings.Contains(out+errOut, "AUTHENTICATIONFAILED") {
		t.Errorf("wrong password: exit %d, want 3\n%s\n%s", code, out, errOut)
	}

	out, errOut, code = cli(t, append(base, "--imap", url, "--password-file", pwFile, "--json", "--log-level", "trace")...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one message quarantined)\n%s\n%s", code, out, errOut)
	}
	for _, id := range []string{`"id":"connect"`, `"id":"login"`, `"id":"mailbox"`, `"id":"fetch"`} {
		if !strings.Contains(out, id) {
			t.Errorf("no step %s:\n%s", id, out)
		}
	}
	if strings.Contains(out+errOut, "alice-password") {
		t.Errorf("the password reached the output or the log")
	}
	var res fetchJSON
	reportsResult(t, out, "reports fetch", &res)
	if res.Fetched != 3 || res.Imported != 2 || res.Quarantined != 1 || res.Moved != 2 || res.MovedFailed != 1 || res.Left != 0 ||
		res.Processed != "mxray.processed" || res.Failed != "mxray.failed" || res.Server != "mx1.example.test:993" {
		t.Errorf("result %+v", res)
	}
	if len(res.Messages) != 3 || res.Messages[2].Verdict != "failed" || res.Messages[2].Folder != "mxray.failed" || res.Messages[0].Method != "move" {
		t.Errorf("messages %+v", res.Messages)
	}

	// Again, over STARTTLS: nothing new.
	out, errOut, code = cli(t, append(base, "--imap", "imap://alice@example.test@mx1.example.test/INBOX", "--password-file", pwFile)...)
	if code != 0 || !strings.Contains(out, "fetched 0 messages from INBOX on mx1.example.test:143") {
		t.Errorf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = cli(t, "reports", "summary", "--data", data)
	if code != 0 || !strings.Contains(out, "1 DMARC aggregate reports (1 records, 1 messages), 1 TLS reports, 0 failure reports, 0 bounces; 1 quarantined") {
		t.Errorf("summary after two runs: exit %d\n%s", code, out)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"--password-file", pwFile},
		{"--imap", "ftp://a@b/", "--password-file", pwFile},
		{"--imap", url},
		{"--imap", url, "--password-file", filepath.Join(dir, "missing")},
	} {
		if _, errOut, code := cli(t, append(base, args...)...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errOut)
		}
	}
}
