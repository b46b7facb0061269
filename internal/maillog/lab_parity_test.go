package maillog

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/lab"
)

// TestLabPostfixParity sends real traffic through the lab's real Postfix
// with swaks — accepted, rejected, deferred to an unreachable relay and
// bounced — and compares mxray's grand totals with pflogsumm's on the log
// Postfix itself wrote.
func TestLabPostfixParity(t *testing.T) {
	if _, err := exec.LookPath("swaks"); err != nil {
		t.Fatalf("swaks is needed (apt-get install -y swaks): %v", err)
	}
	ctx := context.Background()
	// bounce.test's server refuses every recipient with 550: Postfix
	// bounces the message after queueing it.
	refuser, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer refuser.Close()
	go serveRefusingSMTP(refuser)
	pf, err := lab.StartPostfix(ctx, lab.PostfixConfig{Main: map[string]string{
		"relay_domains": "deferred.test, bounce.test",
		// Port 9 of loopback is closed: deliveries there are deferred.
		"transport_maps": "inline:{ deferred.test=smtp:[127.0.0.1]:9, bounce.test=smtp:[" +
			strings.Replace(refuser.Addr().String(), ":", "]:", 1) + " }",
		// Bounce notifications to the outside sender stay in the queue
		// instead of looking up client.test in the system's DNS.
		"default_transport": "smtp:[127.0.0.1]:9",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Stop()

	send := func(to string) string {
		t.Helper()
		out, _ := exec.Command("swaks", "--server", pf.SMTP, "--helo", "client.test",
			"--from", "sender@client.test", "--to", to, "--body", "parity test").CombinedOutput()
		return string(out)
	}
	for _, to := range []string{"alice@example.test", "postmaster@example.test", "a@deferred.test", "b@bounce.test"} {
		if out := send(to); !strings.Contains(out, "250 2.0.0 Ok: queued") {
			t.Fatalf("swaks to %s was not queued:\n%s", to, out)
		}
	}
	if out := send("nobody@example.test"); !strings.Contains(out, "550 5.1.1") {
		t.Fatalf("unknown recipient was not rejected:\n%s", out)
	}

	// Wait (bounded) until Postfix has logged every outcome.
	deadline := time.Now().Add(60 * time.Second)
	for {
		log, _ := pf.Log()
		if strings.Count(log, "status=sent") >= 2 && strings.Contains(log, "status=deferred") &&
			strings.Contains(log, "status=bounced") && strings.Contains(log, "reject: RCPT") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postfix did not log every outcome within 60 s:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Postfix keeps retrying the deferred message and appending to its
	// log: both tools read one snapshot of it.
	live, err := pf.Log()
	if err != nil {
		t.Fatal(err)
	}
	snapshot := filepath.Join(t.TempDir(), "postfix.log")
	if err := os.WriteFile(snapshot, []byte(live), 0o644); err != nil {
		t.Fatal(err)
	}
	got := summarizeFile(t, snapshot, true)
	want := pflogsummTotals(t, exactPflogsumm(t, t.TempDir()), snapshot)
	if diff := cmp.Diff(want, totalsMap(got, exact)); diff != "" {
		t.Errorf("grand totals on the lab's real Postfix log (-pflogsumm +mxray):\n%s", diff)
	}
	if def := summarizeFile(t, snapshot, false); def != got {
		t.Errorf("default mode differs from pflogsumm mode on a plain Postfix log:\n%+v\n%+v", def, got)
	}
	// Trace the bounced message: its life ends in a bounce, and the
	// non-delivery notification Postfix generated is followed under its
	// own queue id.
	f, err := Open(snapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr, err := Trace(ctx, "b@bounce.test", Options{Reference: parityRef}, time.Time{}, f)
	if err != nil {
		t.Fatal(err)
	}
	var bounced, notice *TracedMessage
	for i := range tr.Messages {
		m := &tr.Messages[i]
		switch {
		case m.Matched && m.Outcome == OutcomeBounced:
			bounced = m
		case !m.Matched && m.FollowedFrom != nil:
			notice = m
		}
	}
	if bounced == nil || notice == nil || notice.QueueID == bounced.QueueID || notice.From == nil || *notice.From != "" {
		t.Errorf("trace of the bounced message: want it bounced and its notification (from <>) followed under another queue id; got %+v", tr)
	}

	// The traffic really happened.
	if got.Received < 4 || got.Delivered < 2 || got.Rejected != 1 || got.Bounced < 1 || got.Deferred < 1 {
		t.Errorf("totals %+v: want ≥4 received, ≥2 delivered, 1 rejected, ≥1 bounced, ≥1 deferred", got)
	}
}

// serveRefusingSMTP answers SMTP sessions and refuses every recipient.
func serveRefusingSMTP(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			r := bufio.NewReader(c)
			c.Write([]byte("220 refuser.test ESMTP\r\n"))
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
				case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
					c.Write([]byte("250 refuser.test\r\n"))
				case strings.HasPrefix(cmd, "RCPT"):
					c.Write([]byte("550 5.1.1 no such user here\r\n"))
				case strings.HasPrefix(cmd, "QUIT"):
					c.Write([]byte("221 bye\r\n"))
					return
				default:
					c.Write([]byte("250 ok\r\n"))
				}
			}
		}()
	}
}
