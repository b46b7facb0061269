package postfix

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
)

// startDeferringPostfix runs a lab Postfix whose mailbox transport points
// at a closed port, so that everything accepted sits in the deferred
// queue; retries are an hour apart, so it stays there during the test.
func startDeferringPostfix(t *testing.T) *lab.Postfix {
	t.Helper()
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{
		Domains: []string{"example.test", "other.test"},
		Users:   []string{"alice@example.test", "bob@example.test", "carol@other.test"},
		LMTP:    "127.0.0.1:1",
		Main: map[string]string{
			"queue_run_delay":      "3600s",
			"minimal_backoff_time": "3600s",
			"maximal_backoff_time": "3600s",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	return pf
}

// submit sends one message with swaks.
func submit(t *testing.T, pf *lab.Postfix, from string, to ...string) {
	t.Helper()
	out, err := exec.Command("swaks", "--server", pf.SMTP, "--from", from, "--to", strings.Join(to, ","),
		"--h-Subject", "mxray queue test", "--body", "queued on purpose").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s", err, out)
	}
}

// waitQueue polls the queue until cond holds, for at most 30 s.
func waitQueue(t *testing.T, q *Queue, what string, cond func([]Message) bool) []Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs, err := q.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if cond(msgs) {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue never reached %s: %+v", what, msgs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func inQueue(name QueueName, n int) func([]Message) bool {
	return func(msgs []Message) bool {
		c := 0
		for _, m := range msgs {
			if m.QueueName == name {
				c++
			}
		}
		return c == n && len(msgs) == n
	}
}

func TestRealQueue(t *testing.T) {
	pf := startDeferringPostfix(t)
	ctx := context.Background()
	q := &Queue{ConfigDir: pf.ConfigDir}
	submit(t, pf, "sender@src.test", "alice@example.test")
	submit(t, pf, "sender@src.test", "bob@example.test", "carol@other.test")
	submit(t, pf, "other@src.test", "carol@other.test")
	msgs := waitQueue(t, q, "3 deferred messages with delay reasons", func(msgs []Message) bool {
		if !inQueue(QueueDeferred, 3)(msgs) {
			return false
		}
		for _, m := range msgs {
			for _, r := range m.Recipients {
				if r.DelayReason == "" {
					return false
				}
			}
		}
		return true
	})

	s := Summarize(msgs)
	if s.Messages != 3 || s.Recipients != 4 || len(s.ByQueue) != 1 || s.ByQueue[0].Name != "deferred" {
		t.Errorf("summary %+v", s)
	}
	if len(s.ByDomain) != 2 || s.ByDomain[0] != (DomainCount{"example.test", 2, 2}) || s.ByDomain[1] != (DomainCount{"other.test", 2, 2}) {
		t.Errorf("by domain %+v", s.ByDomain)
	}
	if len(s.ByReason) != 1 || s.ByReason[0].Recipients != 4 || s.ByReason[0].Reason != "connect to …: Connection refused" {
		t.Errorf("by reason %+v", s.ByReason)
	}

	// show: postcat with the instance's configuration.
	carolOnly, _ := Select(msgs, Selector{Domain: "other.test"})
	var single Message
	for _, m := range carolOnly {
		if len(m.Recipients) == 1 {
			single = m
		}
	}
	f, err := q.Show(ctx, single.QueueID)
	if err != nil {
		t.Fatal(err)
	}
	if f.QueueID != single.QueueID || f.QueueName != QueueDeferred || !strings.Contains(f.Headers, "Subject: mxray queue test") ||
		!strings.Contains(f.Body, "queued on purpose") || !hasField(f.Envelope, "sender", "other@src.test") || !hasField(f.Envelope, "recipient", "carol@other.test") {
		t.Errorf("postcat: %+v", f)
	}
	if _, err := q.Show(ctx, "ABCDEF12345"); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("show of a missing id: %v, want ErrNoSuchMessage", err)
	}

	// hold two, release one, delete by domain, then the rest.
	held, err := q.Hold(ctx, IDs(carolOnly))
	if err != nil || held != 2 {
		t.Fatalf("hold: %d, %v", held, err)
	}
	msgs = waitQueue(t, q, "2 held", func(msgs []Message) bool {
		sel, _ := Select(msgs, Selector{All: true, In: []QueueName{QueueHold}})
		return len(sel) == 2
	})
	if n, err := q.Release(ctx, []string{single.QueueID}); err != nil || n != 1 {
		t.Fatalf("release: %d, %v", n, err)
	}
	msgs = waitQueue(t, q, "1 held", func(msgs []Message) bool {
		sel, _ := Select(msgs, Selector{All: true, In: []QueueName{QueueHold}})
		return len(sel) == 1 && len(msgs) == 3
	})
	if err := q.Retry(ctx, single.QueueID); err != nil {
		t.Errorf("retry: %v", err)
	}
	if err := q.Flush(ctx); err != nil {
		t.Errorf("flush: %v", err)
	}
	sel, _ := Select(msgs, Selector{Domain: "OTHER.test"})
	if n, err := q.Delete(ctx, IDs(sel)); err != nil || n != 2 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	msgs = waitQueue(t, q, "one message left", func(msgs []Message) bool { return len(msgs) == 1 })
	if msgs[0].Recipients[0].Address != "alice@example.test" {
		t.Errorf("left %+v", msgs[0])
	}
	if n, err := q.Delete(ctx, IDs(msgs)); err != nil || n != 1 {
		t.Fatalf("delete the rest: %d, %v", n, err)
	}
	waitQueue(t, q, "empty", func(msgs []Message) bool { return len(msgs) == 0 })
}

func TestRealPostfixStopped(t *testing.T) {
	pf := startDeferringPostfix(t)
	dir := pf.ConfigDir
	if err := pf.Stop(); err != nil {
		t.Fatal(err)
	}
	_ = dir
	// The instance's directory is gone with Stop; a configuration
	// directory without Postfix behind it is the same fault.
	q := &Queue{ConfigDir: t.TempDir()}
	if _, err := q.List(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("list without Postfix: %v, want ErrUnavailable", err)
	}
}

func hasField(fs []Field, name, value string) bool {
	for _, f := range fs {
		if f.Name == name && f.Value == value {
			return true
		}
	}
	return false
}
