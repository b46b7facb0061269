package maillog

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// appendFile appends s to path, creating it.
func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestFollowAppendRotateTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	const (
		old     = "Nov  2 09:00:00 mx postfix/qmgr[1]: 0000000AAA: removed\n"
		a1      = "Nov  2 10:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: from=<a@x.example>, size=1, nrcpt=1 (queue active)"
		noise   = "Nov  2 10:00:01 mx postfix/qmgr[1]: 5BC23D4E5F: removed"
		a2      = "Nov  2 10:00:02 mx postfix/smtp[2]: 4AB12C3D4E: to=<b@y.example>, relay=none, delay=1, delays=1/0/0/0, dsn=4.4.1, status=deferred (connect to y.example[192.0.2.1]:25: Connection refused)"
		beforeR = "Nov  2 10:00:03 mx postfix/qmgr[1]: 4AB12C3D4E: from=<a@x.example>, size=1, nrcpt=1 (queue active)"
		afterR  = "Nov  2 10:00:04 mx postfix/smtp[2]: 4AB12C3D4E: to=<b@y.example>, relay=y.example[192.0.2.1]:25, delay=2, delays=1/0/0.5/0.5, dsn=2.0.0, status=sent (250 ok)"
		afterT  = "Nov  2 10:00:05 mx postfix/qmgr[1]: 4AB12C3D4E: removed"
	)
	appendFile(t, path, old)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lines := make(chan string, 100)
	type result struct {
		st  FollowStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Follow(ctx, path, FollowOptions{Options: Options{Reference: ref}, Poll: 5 * time.Millisecond, Filter: &Filter{QueueID: "4AB12C3D4E"}},
			func(line []byte, e Entry) error {
				if e.QueueID != "4AB12C3D4E" {
					t.Errorf("the filter let %q through", line)
				}
				lines <- string(line)
				return nil
			})
		done <- result{st, err}
	}()
	var got []string
	// expect waits (bounded) for the next line passed on.
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-lines:
			got = append(got, l)
			if l != want {
				t.Fatalf("got line %q, want %q", l, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no line within 10s; want %q", want)
		}
	}
	// Follow has opened the file at its end before the first append is
	// seen; until then appended lines could count as old. Appending
	// until the first line arrives avoids depending on that moment.
	for i := 0; ; i++ {
		appendFile(t, path, a1+"\n")
		select {
		case l := <-lines:
			got = append(got, l)
		case <-time.After(200 * time.Millisecond):
			continue
		}
		break
	}
	// Drain duplicates of a1 written while waiting.
	appendFile(t, path, noise+"\n")
	appendFile(t, path, a2[:40]) // half a line: passed on only once complete
	appendFile(t, path, a2[40:]+"\n")
	for {
		l := <-lines
		if l == a1 {
			continue
		}
		got = append(got, l)
		if l != a2 {
			t.Fatalf("got %q, want the completed line %q", l, a2)
		}
		break
	}

	// Rotation by rename: the line written just before it is not lost.
	appendFile(t, path, beforeR+"\n")
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	expect(beforeR)
	appendFile(t, path, noise+"\n"+afterR+"\n")
	expect(afterR)

	// Truncation (copytruncate): read again from the top.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, afterT+"\n")
	expect(afterT)

	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Follow did not return after the context was cancelled")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.st.Rotations != 1 || r.st.Truncations != 1 || r.st.Matched < 5 || r.st.Lines < 7 {
		t.Errorf("stats %+v", r.st)
	}
	if diff := cmp.Diff(a1, got[0]); diff != "" {
		t.Errorf("first line (-want +got):\n%s", diff)
	}
}

func TestFollowFromStartAndMissingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mail.log")
	appendFile(t, path, "Nov  2 10:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: removed\nNov  2 10:00:01 mx dovecot: imap-login: Login: user=<bob@example.com>, method=PLAIN, rip=192.0.2.9, lip=192.0.2.1\n")
	ctx, cancel := context.WithCancel(context.Background())
	var events []Event
	_, err := Follow(ctx, path, FollowOptions{Poll: time.Millisecond, FromStart: true, Filter: &Filter{Events: []Event{EventLogin}, Address: "BOB@example.com"}},
		func(_ []byte, e Entry) error {
			events = append(events, e.Event)
			cancel()
			return nil
		})
	if err != nil || len(events) != 1 || events[0] != EventLogin {
		t.Errorf("from start: %v %v", events, err)
	}
	if _, err := Follow(context.Background(), filepath.Join(dir, "none.log"), FollowOptions{}, nil); err == nil {
		t.Error("a missing file was followed")
	}
}

func TestFilter(t *testing.T) {
	e := ParseLine([]byte("Nov  2 10:20:01 mx postfix/bounce[106]: 5BC23D4E5F: sender non-delivery notification: 6CD34E5F60"), Options{})
	for _, tc := range []struct {
		f    *Filter
		want bool
	}{
		{nil, true},
		{&Filter{}, true},
		{&Filter{QueueID: "5BC23D4E5F"}, true},
		{&Filter{QueueID: "6CD34E5F60"}, true}, // the id it links to
		{&Filter{QueueID: "6CD34E5F6"}, false},
		{&Filter{Events: []Event{EventDelivery, EventNotification}}, true},
		{&Filter{Events: []Event{EventDelivery}}, false},
		{&Filter{Address: "x@y"}, false},
	} {
		if got := tc.f.Match(&e); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.f, got, tc.want)
		}
	}
}
