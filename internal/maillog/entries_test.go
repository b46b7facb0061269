package maillog

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

func TestEachLongLinesAndSince(t *testing.T) {
	long := "Nov  2 10:00:00 mx postfix/smtpd[1]: " + strings.Repeat("x", MaxLineLength)
	in := "Nov  2 09:00:00 mx postfix/qmgr[1]: 4AB12C3D4E: removed\n" + long + "\nno timestamp at all\nNov  2 11:00:00 mx postfix/qmgr[1]: 5BC23D4E5F: removed"
	var got []string
	err := Each(context.Background(), Options{Reference: ref}, time.Date(2024, 11, 2, 10, 0, 0, 0, time.UTC),
		[]io.Reader{strings.NewReader(in)}, func(line []byte, e Entry) error {
			got = append(got, string(e.Event)+" "+e.QueueID)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	// The old line is before --since, the long one is skipped, the line
	// without timestamp is kept, the last has no newline.
	if want := []string{"unparsed ", "removed 5BC23D4E5F"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}

	r := SinceReader(context.Background(), strings.NewReader(in), time.Date(2024, 11, 2, 10, 30, 0, 0, time.UTC), Options{Reference: ref})
	out, err := io.ReadAll(r)
	r.Close()
	if err != nil || string(out) != "no timestamp at all\nNov  2 11:00:00 mx postfix/qmgr[1]: 5BC23D4E5F: removed\n" {
		t.Errorf("SinceReader: %q %v", out, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Each(ctx, Options{}, time.Time{}, []io.Reader{strings.NewReader(in)}, func([]byte, Entry) error { return nil }); err == nil {
		t.Error("a cancelled context did not stop Each")
	}
}

// FuzzTrace feeds arbitrary logs to the tracer and the authentication
// counter: they must not panic, and every traced message must carry its
// events. Seeds live in testdata/fuzz/FuzzTrace.
func FuzzTrace(f *testing.F) {
	f.Add([]byte(traceLog), "4AB12C3D4E")
	f.Add([]byte(traceLog), "alice@client.example")
	f.Fuzz(func(t *testing.T, log []byte, query string) {
		tr := NewTracer(query)
		ac := NewAuthCounter()
		for _, line := range bytes.Split(log, []byte("\n")) {
			e := ParseLine(line, Options{Reference: ref})
			tr.Add(string(line), e)
			ac.Add(e)
		}
		res := tr.Result()
		for _, m := range res.Messages {
			if len(m.Events) == 0 || m.Outcome == "" {
				t.Fatalf("message without events or outcome: %+v", m)
			}
		}
		if r := ac.Report(3); len(r.ByIP) > 3 || len(r.ByUser) > 3 {
			t.Fatalf("top 3 gave %d and %d rows", len(r.ByIP), len(r.ByUser))
		}
	})
}
