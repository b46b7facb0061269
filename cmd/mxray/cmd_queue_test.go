package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/postfix"
)

// fakePostfixTools puts postqueue, postsuper and postcat stand-ins first
// in PATH: postqueue -j prints the recorded listing of internal/postfix's
// tests; every run appends its arguments (and postsuper its standard
// input) to DIR/ran, so a test can see that nothing was changed.
func fakePostfixTools(t *testing.T) (dir string) {
	t.Helper()
	dir = t.TempDir()
	listing, err := os.ReadFile(filepath.Join("..", "..", "internal", "postfix", "testdata", "postqueue-j.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "listing"), listing, 0o644)
	ran := filepath.Join(dir, "ran")
	scripts := map[string]string{
		"postqueue": "echo postqueue \"$@\" >> " + ran + "\ncase \"$*\" in *-j*) cat " + dir + "/listing;; esac\n",
		"postsuper": "echo postsuper \"$@\" >> " + ran + "\ncat >> " + ran + "\necho 'postsuper: Deleted: 2 messages' >&2\n",
		"postcat":   "echo postcat \"$@\" >> " + ran + "\necho 'postcat: fatal: open queue file FFFFF00000: No such file or directory' >&2\nexit 1\n",
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

// ages depend on when the test runs.
var ageRe = regexp.MustCompile(`"age_seconds":[0-9-]+`)

func TestQueueRecorded(t *testing.T) {
	dir := fakePostfixTools(t)
	ran := func() string { b, _ := os.ReadFile(filepath.Join(dir, "ran")); return string(b) }

	out, errOut, code := cli(t, "queue", "list", "--json", "-c", "/etc/postfix-out")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkEnvelope(t, out, "queue list")
	golden(t, "queue_list.jsonl", ageRe.ReplaceAllString(out, `"age_seconds":0`))
	if !strings.Contains(ran(), "postqueue -c /etc/postfix-out -j") {
		t.Errorf("postqueue ran as %q", ran())
	}

	out, errOut, code = cli(t, "queue", "summary", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	checkEnvelope(t, out, "queue summary")
	golden(t, "queue_summary.jsonl", ageRe.ReplaceAllString(out, `"age_seconds":0`))

	out, _, _ = cli(t, "queue", "summary")
	for _, s := range []string{"5 message(s), 7 recipient(s), 3194 bytes", "3  deferred", "4  connect to …: Connection refused", "Oldest: 4F1A298AF20 (hold queue)"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary text lacks %q:\n%s", s, out)
		}
	}
	out, _, _ = cli(t, "queue", "list")
	if !strings.Contains(out, "318B698AF14    deferred") || !strings.Contains(out, "(connect to 127.0.0.1[127.0.0.1]:1: Connection refused)") || !strings.Contains(out, "<>") {
		t.Errorf("list text:\n%s", out)
	}

	// Without --yes: what would be touched, exit 2, postsuper never runs.
	before := ran()
	out, errOut, code = cli(t, "queue", "delete", "--deferred", "--domain", "other.test")
	if code != 2 || !strings.Contains(out, "Would delete 2 message(s)") || !strings.Contains(out, "Nothing was changed") || !strings.Contains(errOut, "without --yes") ||
		!strings.Contains(out, "deleted for all its recipients") {
		t.Errorf("delete without --yes: exit %d\n%s\n%s", code, out, errOut)
	}
	out, _, code = cli(t, "queue", "hold", "--all", "--json")
	res := checkEnvelope(t, out, "queue hold")
	if code != 2 || res["applied"] != false || len(res["selected"].([]any)) != 4 {
		t.Errorf("hold --all without --yes: exit %d %v", code, res)
	}
	if strings.Contains(strings.TrimPrefix(ran(), before), "postsuper") {
		t.Errorf("postsuper ran without --yes: %q", ran())
	}

	// With --yes: the selected ids on postsuper's standard input.
	out, errOut, code = cli(t, "queue", "delete", "--deferred", "--domain", "other.test", "--yes", "--json")
	res = checkEnvelope(t, out, "queue delete")
	if code != 0 || res["applied"] != true || res["count"] != float64(2) {
		t.Errorf("delete --yes: exit %d %v %s", code, res, errOut)
	}
	if !strings.Contains(ran(), "postsuper -d -\n318B698AF14\n017CF98AF19\n") {
		t.Errorf("postsuper ran as %q", ran())
	}

	// Named ids: one unknown (exit 1 after acting on the rest), one bad.
	_, errOut, code = cli(t, "queue", "release", "4F1A298AF20", "FFFFF00000", "--yes")
	if code != 1 || !strings.Contains(errOut, "not in the queue: FFFFF00000") || !strings.Contains(ran(), "postsuper -H -\n4F1A298AF20\n") {
		t.Errorf("release with an unknown id: exit %d %q\n%s", code, errOut, ran())
	}
	for _, args := range [][]string{{"queue", "delete", "ALL", "--yes"}, {"queue", "delete", "--yes"}, {"queue", "show", "../x"}, {"queue", "retry", "-"}} {
		if _, errOut, code := cli(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
	if _, errOut, code := cli(t, "queue", "show", "FFFFF00000"); code != 1 || !strings.Contains(errOut, "no such message") {
		t.Errorf("show of a missing id: exit %d %q", code, errOut)
	}
	if _, _, code := cli(t, "queue", "retry", "FFFFF00000"); code != 1 {
		t.Errorf("retry of a missing id: exit %d", code)
	}
	if out, _, code := cli(t, "queue", "delete", "--domain", "nowhere.example", "--yes"); code != 0 || !strings.Contains(out, "Nothing to delete") {
		t.Errorf("empty selection: exit %d %q", code, out)
	}
}

func TestQueueWithoutPostfix(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, errOut, code := cli(t, "queue", "list")
	if code != 3 || !strings.Contains(errOut, "postqueue is not installed") || !strings.Contains(errOut, "is Postfix installed and running?") {
		t.Errorf("no postqueue: exit %d, %q", code, errOut)
	}
}

// The real thing: a lab Postfix whose mailbox transport points at a
// closed port, so that what it accepts stays deferred (retries an hour
// apart). Its log is traced afterwards.
func TestQueueRealPostfix(t *testing.T) {
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{
		Domains: []string{"example.test", "other.test"},
		Users:   []string{"alice@example.test", "bob@example.test", "carol@other.test"},
		LMTP:    "127.0.0.1:1",
		Main:    map[string]string{"queue_run_delay": "3600s", "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	for _, to := range []string{"alice@example.test", "bob@example.test,carol@other.test", "carol@other.test"} {
		if out, err := exec.Command("swaks", "--server", pf.SMTP, "--from", "sender@src.test", "--to", to, "--h-Subject", "mxray queue test").CombinedOutput(); err != nil {
			t.Fatalf("swaks: %v\n%s", err, out)
		}
	}
	q := &postfix.Queue{ConfigDir: pf.ConfigDir}
	// listing waits (bounded) until the queue holds n messages in queue
	// name (all when name is "") and returns it.
	listing := func(n int, name postfix.QueueName) []postfix.Message {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			msgs, err := q.List(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			c := 0
			for _, m := range msgs {
				if (name == "" || m.QueueName == name) && (len(m.Recipients) == 0 || m.Recipients[0].DelayReason != "" || name != postfix.QueueDeferred) {
					c++
				}
			}
			if c == n && (name == "" || len(msgs) == n || name == postfix.QueueHold) {
				return msgs
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue never held %d %s messages: %+v", n, name, msgs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	msgs := listing(3, postfix.QueueDeferred)
	c := []string{"-c", pf.ConfigDir}

	out, errOut, code := cli(t, append([]string{"queue", "list", "--json"}, c...)...)
	res := checkEnvelope(t, out, "queue list")
	if code != 0 || len(res["messages"].([]any)) != 3 || res["config_dir"] != pf.ConfigDir {
		t.Fatalf("list: exit %d %s\n%s", code, errOut, out)
	}
	out, _, code = cli(t, append([]string{"queue", "summary"}, c...)...)
	if code != 0 || !strings.Contains(out, "3 message(s), 4 recipient(s)") || !strings.Contains(out, "4  connect to …: Connection refused") {
		t.Errorf("summary: exit %d\n%s", code, out)
	}
	id := msgs[0].QueueID
	out, _, code = cli(t, append([]string{"queue", "show", id}, c...)...)
	if code != 0 || !strings.Contains(out, "Subject: mxray queue test") || !strings.Contains(out, "delay reason for ") {
		t.Errorf("show: exit %d\n%s", code, out)
	}
	if _, errOut, code := cli(t, append([]string{"queue", "retry", id}, c...)...); code != 0 {
		t.Errorf("retry: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, append([]string{"queue", "flush"}, c...)...); code != 0 {
		t.Errorf("flush: exit %d %s", code, errOut)
	}
	msgs = listing(3, "")

	// hold without --yes changes nothing.
	_, _, code = cli(t, append([]string{"queue", "hold", "--domain", "other.test"}, c...)...)
	if code != 2 {
		t.Errorf("hold without --yes: exit %d", code)
	}
	if after := listing(3, ""); countIn(after, postfix.QueueHold) != 0 {
		t.Errorf("hold without --yes held something: %+v", after)
	}
	out, errOut, code = cli(t, append([]string{"queue", "hold", "--domain", "other.test", "--yes"}, c...)...)
	if code != 0 || !strings.Contains(out, "postsuper reports 2 message(s) changed") {
		t.Errorf("hold: exit %d %s\n%s", code, errOut, out)
	}
	listing(2, postfix.QueueHold)
	if _, errOut, code := cli(t, append([]string{"queue", "release", "--all", "--yes"}, c...)...); code != 0 {
		t.Errorf("release: exit %d %s", code, errOut)
	}
	listing(0, postfix.QueueHold)
	if _, errOut, code := cli(t, append([]string{"queue", "delete", "ABCDEF12345", "--yes"}, c...)...); code != 1 || !strings.Contains(errOut, "not in the queue") {
		t.Errorf("delete of an unknown id: exit %d %q", code, errOut)
	}
	out, errOut, code = cli(t, append([]string{"queue", "delete", "--all", "--yes", "--json"}, c...)...)
	res = checkEnvelope(t, out, "queue delete")
	if code != 0 || res["count"] != float64(3) {
		t.Errorf("delete --all: exit %d %s %v", code, errOut, res)
	}
	listing(0, "")

	// The log tells the story of each: deferred, held, released, deleted.
	var deleted string
	for _, m := range msgs {
		if len(m.Recipients) == 1 && m.Recipients[0].Address == "carol@other.test" {
			deleted = m.QueueID
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code = cli(t, "logs", "trace", "--json", deleted, pf.LogFile)
		if code == 0 && strings.Contains(out, `"outcome":"deleted"`) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var tr struct {
		Messages []struct {
			Outcome string
			Events  []struct{ Event, Detail string }
		}
	}
	json.Unmarshal([]byte(out), &tr)
	if code != 0 || len(tr.Messages) != 1 || tr.Messages[0].Outcome != "deleted" {
		t.Fatalf("trace of %s: exit %d %s\n%s", deleted, code, errOut, out)
	}
	var story []string
	for _, e := range tr.Messages[0].Events {
		story = append(story, e.Event+": "+e.Detail)
	}
	all := strings.Join(story, "\n")
	for _, s := range []string{"connect: connection from localhost[127.0.0.1]", "queued: from <sender@src.test>",
		"connect-failed: cannot connect to 127.0.0.1[127.0.0.1]:1: Connection refused",
		"delivery: deferred to <carol@other.test>", "placed on hold", "released from hold", "removed: deleted from the queue by postsuper"} {
		if !strings.Contains(all, s) {
			t.Errorf("trace lacks %q:\n%s", s, all)
		}
	}
}

func countIn(msgs []postfix.Message, name postfix.QueueName) int {
	n := 0
	for _, m := range msgs {
		if m.QueueName == name {
			n++
		}
	}
	return n
}
