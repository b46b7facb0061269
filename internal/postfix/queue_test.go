package postfix

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testdata/postqueue-j.jsonl is postqueue -j of the lab instance in
// TestRealQueue (three deferred messages), plus two hand-written rows for
// what the lab does not produce: a held bounce and an active message with
// forced expiry and an unknown member. testdata/postcat.txt is postcat -q
// of one of the three.
func recorded(t *testing.T) []Message {
	t.Helper()
	f, err := os.Open("testdata/postqueue-j.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msgs, err := ParseQueueJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

var recordedNow = time.Unix(1795308882+125, 0)

func TestParseQueueJSON(t *testing.T) {
	msgs := recorded(t)
	if len(msgs) != 5 {
		t.Fatalf("%d messages, want 5", len(msgs))
	}
	SetAges(msgs, recordedNow)
	want := Message{QueueName: QueueDeferred, QueueID: "318B698AF14", ArrivalTime: time.Unix(1795308882, 0).UTC(), AgeSeconds: 125,
		MessageSize: 393, Sender: "sender@src.test", Recipients: []Recipient{
			{"bob@example.test", "connect to 127.0.0.1[127.0.0.1]:1: Connection refused"},
			{"carol@other.test", "connect to 127.0.0.1[127.0.0.1]:1: Connection refused"}}}
	if diff := cmp.Diff(want, msgs[0]); diff != "" {
		t.Errorf("first message (-want +got):\n%s", diff)
	}
	if m := msgs[4]; m.QueueName != QueueActive || !m.ForcedExpire || len(m.Recipients) != 2 {
		t.Errorf("active row %+v", m)
	}
	if m := msgs[3]; m.Sender != "" || m.QueueName != QueueHold || m.Recipients[0].DelayReason != "" {
		t.Errorf("held bounce %+v", m)
	}

	// The queue changed during the listing: one entry per id, the last.
	dup := `{"queue_name": "active", "queue_id": "ABCDE12345", "recipients": []}
{"queue_name": "deferred", "queue_id": "ABCDE12345", "recipients": null}
`
	got, err := ParseQueueJSON(strings.NewReader(dup))
	if err != nil || len(got) != 1 || got[0].QueueName != QueueDeferred || got[0].Recipients == nil {
		t.Errorf("duplicate: %+v %v", got, err)
	}
	if got, err := ParseQueueJSON(strings.NewReader("")); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty queue: %#v %v", got, err)
	}
	for _, bad := range []string{"postqueue: fatal: Queue report unavailable - mail system is down\n", `{"queue_id": "-d ALL"}`, `{"queue_id": 5}`} {
		if _, err := ParseQueueJSON(strings.NewReader(bad)); !errors.Is(err, ErrBadListing) {
			t.Errorf("%q: %v, want ErrBadListing", bad, err)
		}
	}
}

func TestSummarize(t *testing.T) {
	msgs := recorded(t)
	SetAges(msgs, recordedNow)
	s := Summarize(msgs)
	want := Summary{Messages: 5, Recipients: 7, Bytes: 393 + 398 + 403 + 1200 + 800,
		ByQueue:  []Count{{"deferred", 3, 393 + 398 + 403}, {"active", 1, 800}, {"hold", 1, 1200}},
		ByDomain: []DomainCount{{"example.test", 2, 2}, {"gmail.example", 2, 1}, {"other.test", 2, 2}, {"src.test", 1, 1}},
		ByReason: []ReasonCount{
			{"connect to …: Connection refused", 4, "connect to 127.0.0.1[127.0.0.1]:1: Connection refused"},
			{"host … said: 421 4.7.0 Try again later (in reply to end of DATA command)", 2,
				"host mx1.gmail.example[192.0.2.5] said: 421 4.7.0 Try again later (in reply to end of DATA command)"}},
		Oldest: &msgs[3]}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}
	if s.Oldest.AgeSeconds != 1795308882+125-1795300000 {
		t.Errorf("oldest age %d", s.Oldest.AgeSeconds)
	}
}

func TestGroupReason(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"connect to mx.example.com[192.0.2.1]:25: Connection timed out", "connect to …: Connection timed out"},
		{"host mx.example.com[2001:db8::1] said: 450 4.2.0 <bob@example.com>: Recipient address rejected: Greylisted (in reply to RCPT TO command)",
			"host … said: 450 4.2.0 <…>: Recipient address rejected: Greylisted (in reply to RCPT TO command)"},
		{"delivery temporarily suspended: connect to [127.0.0.1]:1: Connection refused", "delivery temporarily suspended: connect to …: Connection refused"},
		{"Host or domain name not found. Name service error for name=x.example type=MX: Host not found, try again",
			"Host or domain name not found. Name service error for name=x.example type=MX: Host not found, try again"},
		{"unterminated [bracket", "unterminated [bracket"},
		{"<not an address>", "<not an address>"},
	} {
		if got := GroupReason(tc.in); got != tc.want {
			t.Errorf("GroupReason(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

func TestSelect(t *testing.T) {
	msgs := recorded(t)
	ids := func(ms []Message) string { return strings.Join(IDs(ms), " ") }
	for _, tc := range []struct {
		name    string
		sel     Selector
		want    string
		missing []string
	}{
		{"ids in listing order", Selector{IDs: []string{"0E0A298AF0F", "318B698AF14"}}, "318B698AF14 0E0A298AF0F", nil},
		{"unknown id", Selector{IDs: []string{"0E0A298AF0F", "FFFFF00000"}}, "0E0A298AF0F", []string{"FFFFF00000"}},
		{"all", Selector{All: true}, "318B698AF14 017CF98AF19 0E0A298AF0F 4F1A298AF20 5A2B398AF31", nil},
		{"deferred", Selector{Deferred: true}, "318B698AF14 017CF98AF19 0E0A298AF0F", nil},
		{"domain, any case", Selector{Domain: "GMAIL.example"}, "5A2B398AF31", nil},
		{"deferred at a domain", Selector{Deferred: true, Domain: "@other.test"}, "318B698AF14 017CF98AF19", nil},
		{"hold: not what is held", Selector{All: true, In: []QueueName{QueueIncoming, QueueActive, QueueDeferred}}, "318B698AF14 017CF98AF19 0E0A298AF0F 5A2B398AF31", nil},
		{"release: only what is held", Selector{All: true, In: []QueueName{QueueHold}}, "4F1A298AF20", nil},
		{"a named id not held", Selector{IDs: []string{"318B698AF14"}, In: []QueueName{QueueHold}}, "", nil},
		{"nothing", Selector{}, "", nil},
	} {
		got, missing := Select(msgs, tc.sel)
		if ids(got) != tc.want || !cmp.Equal(missing, tc.missing) {
			t.Errorf("%s: got %q missing %v; want %q missing %v", tc.name, ids(got), missing, tc.want, tc.missing)
		}
	}
}

func TestParsePostcat(t *testing.T) {
	raw, err := os.ReadFile("testdata/postcat.txt")
	if err != nil {
		t.Fatal(err)
	}
	f := ParsePostcat(string(raw))
	if f.QueueID != "017CF98AF19" || f.QueueName != QueueDeferred {
		t.Errorf("id %q queue %q", f.QueueID, f.QueueName)
	}
	if !hasField(f.Envelope, "sender", "other@src.test") || !hasField(f.Envelope, "recipient", "carol@other.test") ||
		!hasField(f.Envelope, "message_arrival_time", "Sun Nov 22 00:54:42 2026") || len(f.Envelope) != 24 {
		t.Errorf("envelope %d fields: %+v", len(f.Envelope), f.Envelope)
	}
	if !strings.HasPrefix(f.Headers, "Received: from vm") || !strings.HasSuffix(f.Headers, "X-Mailer: swaks v20201014.0 jetmore.org/john/code/swaks/\n") {
		t.Errorf("headers %q", f.Headers)
	}
	if f.Body != "queued on purpose\n\n\n" || len(f.Extracted) != 0 {
		t.Errorf("body %q extracted %v", f.Body, f.Extracted)
	}
}

// fakeRunner answers from a table and records what was run.
type fakeRunner struct {
	out   map[string]string // "name args..." → stdout
	err   map[string]error
	ran   []string
	stdin []string
}

func (f *fakeRunner) Run(_ context.Context, stdin []byte, name string, args ...string) ([]byte, []byte, error) {
	cmd := name + " " + strings.Join(args, " ")
	f.ran = append(f.ran, cmd)
	f.stdin = append(f.stdin, string(stdin))
	if err := f.err[cmd]; err != nil {
		return nil, []byte(err.Error()), err
	}
	out := f.out[cmd]
	if name == "postsuper" {
		return nil, []byte(out), nil // postsuper reports on stderr
	}
	return []byte(out), nil, nil
}

func TestQueueCommands(t *testing.T) {
	listing, _ := os.ReadFile("testdata/postqueue-j.jsonl")
	fr := &fakeRunner{out: map[string]string{
		"postqueue -c /etc/postfix-out -j":           string(listing),
		"postsuper -c /etc/postfix-out -d -":         "postsuper: 318B698AF14: removed\npostsuper: 0E0A298AF0F: removed\npostsuper: Deleted: 2 messages\n",
		"postsuper -c /etc/postfix-out -h -":         "postsuper: Placed on hold: 1 message\n",
		"postsuper -c /etc/postfix-out -H -":         "",
		"postcat -c /etc/postfix-out -q 017CF98AF19": "*** ENVELOPE RECORDS deferred/0/017CF98AF19 ***\nsender: a@b\n",
	}}
	q := &Queue{Runner: fr, ConfigDir: "/etc/postfix-out"}
	ctx := context.Background()
	msgs, err := q.List(ctx)
	if err != nil || len(msgs) != 5 {
		t.Fatalf("list: %d, %v", len(msgs), err)
	}
	if n, err := q.Delete(ctx, []string{"318B698AF14", "0E0A298AF0F"}); n != 2 || err != nil {
		t.Errorf("delete: %d %v", n, err)
	}
	if n, err := q.Hold(ctx, []string{"318B698AF14"}); n != 1 || err != nil {
		t.Errorf("hold: %d %v", n, err)
	}
	if n, err := q.Release(ctx, []string{"4F1A298AF20"}); n != 0 || err != nil {
		t.Errorf("release with nothing reported: %d %v", n, err)
	}
	if f, err := q.Show(ctx, "017CF98AF19"); err != nil || !hasField(f.Envelope, "sender", "a@b") {
		t.Errorf("show: %+v %v", f, err)
	}
	q.Flush(ctx)
	q.Retry(ctx, "017CF98AF19")
	wantRan := []string{"postqueue -c /etc/postfix-out -j", "postsuper -c /etc/postfix-out -d -", "postsuper -c /etc/postfix-out -h -",
		"postsuper -c /etc/postfix-out -H -", "postcat -c /etc/postfix-out -q 017CF98AF19", "postqueue -c /etc/postfix-out -f",
		"postqueue -c /etc/postfix-out -i 017CF98AF19"}
	if diff := cmp.Diff(wantRan, fr.ran); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	if fr.stdin[1] != "318B698AF14\n0E0A298AF0F\n" {
		t.Errorf("postsuper -d read %q", fr.stdin[1])
	}

	// Nothing reaches postsuper that is not a queue id.
	for _, bad := range []string{"ALL", "-d", "ABC DEF12", "../../x"} {
		if _, err := q.Delete(ctx, []string{"318B698AF14", bad}); !errors.Is(err, ErrBadQueueID) {
			t.Errorf("delete %q: %v", bad, err)
		}
		if err := q.Retry(ctx, bad); !errors.Is(err, ErrBadQueueID) {
			t.Errorf("retry %q: %v", bad, err)
		}
	}
	if n := len(fr.ran); n != len(wantRan) {
		t.Errorf("bad ids ran %v", fr.ran[len(wantRan):])
	}
}

func TestQueueUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want error
	}{
		{fmt.Errorf("exec: %q: %w", "postqueue", exec.ErrNotFound), ErrUnavailable},
		{errors.New("postqueue: fatal: Queue report unavailable - mail system is down"), ErrUnavailable},
		{errors.New("postqueue: fatal: open /etc/postfix-x/main.cf: No such file or directory"), ErrUnavailable},
		{errors.New("postqueue: fatal: something else"), nil},
	} {
		fr := &fakeRunner{err: map[string]error{"postqueue -j": tc.err}}
		_, err := (&Queue{Runner: fr}).List(context.Background())
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || (tc.want == nil && errors.Is(err, ErrUnavailable)) {
			t.Errorf("%v: got %v, want %v", tc.err, err, tc.want)
		}
	}
	// The real thing: no postqueue in PATH.
	t.Setenv("PATH", t.TempDir())
	if _, err := (&Queue{}).List(context.Background()); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("without postqueue: %v", err)
	}
}

// FuzzParseQueueJSON feeds arbitrary listings and postcat output to the
// parsers and the summary. Seeds live in testdata/fuzz/FuzzParseQueueJSON.
func FuzzParseQueueJSON(f *testing.F) {
	listing, _ := os.ReadFile("testdata/postqueue-j.jsonl")
	f.Add(listing)
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := ParseQueueJSON(bytes.NewReader(data))
		if err == nil {
			for _, m := range msgs {
				if !ValidQueueID(m.QueueID) {
					t.Fatalf("invalid id %q accepted", m.QueueID)
				}
			}
			s := Summarize(msgs)
			if s.Messages != len(msgs) {
				t.Fatalf("summary counts %d of %d", s.Messages, len(msgs))
			}
		}
		ParsePostcat(string(data))
		GroupReason(string(data))
	})
}
