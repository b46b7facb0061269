package imapc

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/probe/wire/wiretest"
)

// message is the mailbox's UID 7 for the fetch tests.
const message = "From: a@b.test\r\nSubject: report\r\n\r\nbody\r\n"

// fetchServer answers the fetch commands; caps are announced on
// CAPABILITY.
func fetchServer(caps string) wiretest.Handler {
	return func(s *wiretest.Session, line string) (string, bool) {
		tag, cmd, _ := strings.Cut(line, " ")
		switch cmd {
		case "CAPABILITY":
			return "* CAPABILITY IMAP4rev1 " + caps + "\r\n" + tag + " OK done\r\n", false
		case `LIST "" ""`:
			return `* LIST (\Noselect) "." ""` + "\r\n" + tag + " OK List completed.\r\n", false
		case `CREATE "mxray.processed"`:
			return tag + " OK Create completed.\r\n", false
		case `CREATE "INBOX"`:
			return tag + " NO [ALREADYEXISTS] Mailbox already exists\r\n", false
		case `CREATE "bad"`:
			return tag + " NO [CANNOT] Invalid mailbox name\r\n", false
		case "UID SEARCH 1:3 UNDELETED":
			return "* SEARCH 7 9\r\n" + tag + " OK Search completed.\r\n", false
		case "UID FETCH 7 (RFC822.SIZE)":
			return fmt.Sprintf("* 1 FETCH (UID 7 RFC822.SIZE %d)\r\n%s OK Fetch completed.\r\n", len(message), tag), false
		case "UID FETCH 8 (RFC822.SIZE)", "UID FETCH 8 (BODY.PEEK[])":
			return tag + " OK Fetch completed.\r\n", false
		case "UID FETCH 7 (BODY.PEEK[])":
			// Dovecot sends the UID after the literal, and an unrelated
			// untagged response may come first.
			return fmt.Sprintf("* 3 EXISTS\r\n* 1 FETCH (BODY[] {%d}\r\n%s UID 7)\r\n%s OK Fetch completed.\r\n", len(message), message, tag), false
		case "UID MOVE 7 \"mxray.processed\"":
			return "* OK [COPYUID 1 7 1] Moved UIDs.\r\n* 1 EXPUNGE\r\n" + tag + " OK Move completed.\r\n", false
		case "UID COPY 7 \"mxray.processed\"":
			return tag + " OK [COPYUID 1 7 1] Copy completed.\r\n", false
		case `UID STORE 7 +FLAGS.SILENT (\Deleted)`:
			return tag + " OK Store completed.\r\n", false
		case "UID EXPUNGE 7":
			return "* 1 EXPUNGE\r\n" + tag + " OK Expunge completed.\r\n", false
		case "NOOP":
			return tag + " OK NOOP completed.\r\n", false
		}
		return tag + " BAD Error in IMAP command\r\n", false
	}
}

func TestFetchCommands(t *testing.T) {
	srv := wiretest.Start(t, "* OK ready\r\n", nil, fetchServer("MOVE UIDPLUS"))
	c := dial(t, wiretest.Env(nil), srv)
	ctx := wiretest.Ctx(t)
	c.Greeting(ctx)
	c.Capability(ctx)

	d, _, err := c.Delimiter(ctx)
	if err != nil || d != "." {
		t.Errorf("Delimiter = %q, %v; want .", d, err)
	}
	if existed, _, err := c.Create(ctx, "mxray.processed"); err != nil || existed {
		t.Errorf("Create new: existed %v, %v", existed, err)
	}
	if existed, _, err := c.Create(ctx, "INBOX"); err != nil || !existed {
		t.Errorf("Create existing: existed %v, %v; want true, nil", existed, err)
	}
	if _, r, err := c.Create(ctx, "bad"); !errors.Is(err, ErrNo) || r.Code != "CANNOT" {
		t.Errorf("Create refused: %v %+v; want ErrNo", err, r)
	}
	uids, _, err := c.SearchWindow(ctx, 1, 3)
	if diff := cmp.Diff([]uint32{7, 9}, uids); err != nil || diff != "" {
		t.Errorf("SearchWindow (-want +got):\n%s %v", diff, err)
	}
	if _, _, err := c.SearchWindow(ctx, 0, 3); !errors.Is(err, ErrBadArgument) {
		t.Errorf("SearchWindow 0:3: %v", err)
	}
	if n, _, err := c.FetchSize(ctx, 7); err != nil || n != int64(len(message)) {
		t.Errorf("FetchSize = %d, %v", n, err)
	}
	if _, _, err := c.FetchSize(ctx, 8); !errors.Is(err, ErrNoMessage) {
		t.Errorf("FetchSize of a gone message: %v, want ErrNoMessage", err)
	}
	body, _, err := c.FetchMessage(ctx, 7, 1000)
	if err != nil || string(body) != message {
		t.Fatalf("FetchMessage = %q, %v", body, err)
	}
	if _, _, err := c.FetchMessage(ctx, 8, 1000); !errors.Is(err, ErrNoMessage) {
		t.Errorf("FetchMessage of a gone message: %v, want ErrNoMessage", err)
	}
	// Over the limit: dropped, and the session goes on.
	if _, _, err := c.FetchMessage(ctx, 7, 10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("FetchMessage over the limit: %v, want ErrTooLarge", err)
	}
	if r, err := c.Noop(ctx); err != nil || r.Status != OK {
		t.Errorf("NOOP after a dropped message: %+v %v", r, err)
	}
	m, _, err := c.Move(ctx, 7, "mxray.processed")
	if err != nil || m != Moved {
		t.Errorf("Move = %q, %v; want %q", m, err, Moved)
	}
	tr := strings.Join(c.Since(0), "\n")
	for _, want := range []string{"S: <literal: 41 octets>", "S: <literal: 41 octets, dropped>", `C: a13 UID MOVE 7 "mxray.processed"`} {
		if !strings.Contains(tr, want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	if strings.Contains(tr, "Subject: report") {
		t.Errorf("the message's octets reached the transcript:\n%s", tr)
	}
}

func TestMoveFallbacks(t *testing.T) {
	tests := []struct {
		caps string
		want MoveMethod
		sent []string
	}{
		{"UIDPLUS", CopyExpunged, []string{`UID COPY 7 "mxray.processed"`, `UID STORE 7 +FLAGS.SILENT (\Deleted)`, "UID EXPUNGE 7"}},
		{"", CopyFlagged, []string{`UID COPY 7 "mxray.processed"`, `UID STORE 7 +FLAGS.SILENT (\Deleted)`}},
	}
	for _, tc := range tests {
		t.Run(tc.caps, func(t *testing.T) {
			srv := wiretest.Start(t, "* OK ready\r\n", nil, fetchServer(tc.caps))
			c := dial(t, wiretest.Env(nil), srv)
			ctx := wiretest.Ctx(t)
			c.Greeting(ctx)
			c.Capability(ctx)
			m, _, err := c.Move(ctx, 7, "mxray.processed")
			if err != nil || m != tc.want {
				t.Fatalf("Move = %q, %v; want %q", m, err, tc.want)
			}
			var sent []string
			for _, l := range srv.Lines()[1:] {
				_, cmd, _ := strings.Cut(l, " ")
				sent = append(sent, cmd)
			}
			if diff := cmp.Diff(tc.sent, sent); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseListDelimiter(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`(\Noselect) "/" ""`, "/", true},
		{`(\Noselect) "." ""`, ".", true},
		{`(\Noselect) "\\" ""`, `\`, true},
		{`() NIL ""`, "", true},
		{`(\Noselect) "" ""`, "", false},
		{`"/" ""`, "", false},
		{`(\Noselect`, "", false},
		{`() "ab" ""`, "", false},
	}
	for _, tc := range tests {
		got, ok := ParseListDelimiter(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseListDelimiter(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzFetchMessage feeds a server's bytes to FetchMessage after a
// greeting: whatever comes, it returns without panic, and a message it
// returns is never larger than the limit.
func FuzzFetchMessage(f *testing.F) {
	f.Add([]byte("* OK ready\r\n* 1 FETCH (UID 7 BODY[] {5}\r\nabcde)\r\na1 OK done\r\n"))
	f.Add([]byte("* OK ready\r\n* 1 FETCH (BODY[] {5}\r\nabcde UID 7)\r\na1 OK done\r\n"))
	f.Add([]byte("* OK ready\r\n* 1 FETCH (UID 7 BODY[] {50}\r\n" + strings.Repeat("x", 50) + ")\r\na1 OK done\r\n"))
	f.Add([]byte("* OK ready\r\n* 1 FETCH (UID 7 BODY[] {999999999999}\r\n"))
	f.Add([]byte("* OK ready\r\n* 1 FETCH (UID 7 FLAGS {3}\r\nabc BODY[] {2}\r\nab)\r\na1 NO gone\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		conn := wiretest.Pipe(data)
		defer conn.Close()
		c := New(wiretest.Env(nil), conn, "imap.test")
		ctx := wiretest.Ctx(t)
		if _, err := c.Greeting(ctx); err != nil {
			return
		}
		b, _, err := c.FetchMessage(ctx, 7, 20)
		if err == nil && len(b) > 20 {
			t.Errorf("returned %d octets over a limit of 20", len(b))
		}
		if err == nil && b == nil {
			t.Error("no message and no error")
		}
	})
}

func FuzzParseListDelimiter(f *testing.F) {
	for _, s := range []string{`(\Noselect) "/" ""`, `() NIL ""`, `(\HasChildren) "\\" "a"`, `(`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := ParseListDelimiter(s)
		if len(d) > 1 || !ok && d != "" {
			t.Errorf("ParseListDelimiter(%q) = %q, %v", s, d, ok)
		}
	})
}
