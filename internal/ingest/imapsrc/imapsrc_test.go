package imapsrc

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/imapc"
	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

// Reports is the mailbox's content: five report messages (three DMARC
// aggregate, two TLS) and, third, one that is no report.
func reports(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	for _, f := range []string{
		"dmarc-aggregate/mox/xs4all.eml",
		"dmarc-aggregate/mox/mailru.eml",
		"",
		"dmarc-aggregate/parsedmarc/aggregate/twilight.eml",
		"smtp-tls-reports/mox/microsoft.eml",
		"smtp-tls-reports/parsedmarc/google.com_smtp_tls_report.eml",
	} {
		if f == "" {
			out = append(out, []byte("From: someone@example.net\r\nTo: dmarc@example.test\r\nSubject: hello\r\nMessage-ID: <junk@example.net>\r\n\r\nNot a report, just words.\r\n"))
			continue
		}
		set, rest, _ := strings.Cut(f, "/")
		b, err := os.ReadFile(filepath.Join(testutil.Shared(t, set), rest))
		if err != nil {
			t.Fatal(err)
		}
		// IMAP wants CRLF line ends in APPEND.
		out = append(out, []byte(strings.ReplaceAll(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n", "\r\n")))
	}
	return out
}

// clean is what a run over reports() without trouble counts.
var clean = ingest.Stats{Blobs: 6, Payloads: 6, Imported: 5, DMARC: 3, TLS: 2, Quarantined: 1, Records: 3, Messages: 3}

type world struct {
	dv    *lab.Dovecot
	roots *x509.CertPool
	env   diag.Env
	db    *store.DB
}

func start(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	ca, err := lab.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mx1.example.test", "127.0.0.1"}, lab.CertOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := lab.StartDovecot(ctx, lab.DovecotConfig{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dv.Stop() })
	db, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{dv: dv, roots: ca.Pool(), db: db, env: diag.Env{
		Dialer: &dnsx.Dialer{},
		Roots:  ca.Pool(),
		Limits: diag.Limits{Connect: 5 * time.Second, Command: 10 * time.Second},
	}}
	w.appendAll(t, reports(t))
	return w
}

// appendAll puts messages into alice's INBOX with APPEND (RFC 9051
// §6.3.12), over a raw TLS connection.
func (w *world) appendAll(t *testing.T, msgs [][]byte) {
	t.Helper()
	c, err := tls.Dial("tcp", w.dv.IMAPS, &tls.Config{RootCAs: w.roots, ServerName: "mx1.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	until := func(tag string) string {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %s: %v", tag, err)
			}
			if strings.HasPrefix(l, tag) {
				return l
			}
		}
	}
	until("* OK")
	fmt.Fprint(c, "l LOGIN alice@example.test alice-password\r\n")
	if l := until("l "); !strings.HasPrefix(l, "l OK") {
		t.Fatalf("LOGIN: %s", l)
	}
	for i, m := range msgs {
		tag := fmt.Sprintf("p%d", i)
		fmt.Fprintf(c, "%s APPEND INBOX {%d}\r\n", tag, len(m))
		if l := until("+"); l == "" {
			t.Fatal("no continuation")
		}
		c.Write(m)
		io.WriteString(c, "\r\n")
		if l := until(tag + " "); !strings.HasPrefix(l, tag+" OK") {
			t.Fatalf("APPEND: %s", l)
		}
	}
}

// counts returns the number of messages in each folder.
func (w *world) counts(t *testing.T) map[string]int {
	t.Helper()
	ctx := context.Background()
	c, err := imapc.Dial(ctx, w.env, w.dv.IMAPS)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.ImplicitTLS(ctx, &tls.Config{RootCAs: w.roots, ServerName: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	c.Greeting(ctx)
	if r, err := c.Login(ctx, "alice@example.test", "alice-password"); err != nil || r.Status != imapc.OK {
		t.Fatalf("login: %v %v", r, err)
	}
	out := map[string]int{}
	for _, f := range []string{"INBOX", "mxray.processed", "mxray.failed"} {
		mb, _, err := c.Select(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		out[f] = mb.Exists
	}
	return out
}

func (w *world) config(addr string) Config {
	return Config{Address: addr, Security: ImplicitTLS, User: "alice@example.test", Password: "alice-password"}
}

func (w *world) fetch(t *testing.T, cfg Config) (*Result, *diag.Recorder, error) {
	t.Helper()
	rec := &diag.Recorder{}
	im := &ingest.Importer{Store: w.db}
	res, err := Fetch(context.Background(), w.env, cfg, im, rec)
	return res, rec, err
}

// totals is what the store holds at the end.
func (w *world) totals(t *testing.T) store.Totals {
	t.Helper()
	s, err := w.db.Summary(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	return s.Totals
}

var cleanTotals = store.Totals{DMARC: 3, TLS: 2, Records: 3, Messages: 3, Quarantined: 1}

var cleanFolders = map[string]int{"INBOX": 0, "mxray.processed": 5, "mxray.failed": 1}

func sumStats(rs ...*Result) ingest.Stats {
	var s ingest.Stats
	for _, r := range rs {
		addStats(&s, r.Stats)
	}
	return s
}

func TestFetchAndRerun(t *testing.T) {
	w := start(t)
	res, rec, err := w.fetch(t, w.config(w.dv.IMAPS))
	if err != nil {
		t.Fatalf("fetch: %v\n%+v", err, rec.Steps)
	}
	if diff := cmp.Diff(clean, res.Stats); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	if res.Fetched != 6 || res.Moved != 5 || res.MovedFailed != 1 || res.Left != 0 {
		t.Errorf("fetched %d, moved %d, failed %d, left %d; want 6, 5, 1, 0", res.Fetched, res.Moved, res.MovedFailed, res.Left)
	}
	if res.Processed != "mxray.processed" || res.Failed != "mxray.failed" {
		t.Errorf("folders %q %q: the server's delimiter is '.'", res.Processed, res.Failed)
	}
	bad := res.Messages[2]
	if bad.Verdict != ToFailed || bad.Folder != "mxray.failed" || bad.Method != imapc.Moved ||
		len(bad.Outcomes) != 1 || !strings.Contains(bad.Outcomes[0].Origin, ";UID=3") {
		t.Errorf("the unparseable message: %+v", bad)
	}
	if diff := cmp.Diff(cleanFolders, w.counts(t)); diff != "" {
		t.Errorf("folders (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(cleanTotals, w.totals(t)); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	login, _ := rec.Find("login")
	tr := strings.Join(login.Transcript, "\n")
	if login.Status != diag.OK || !strings.Contains(tr, "<redacted>") || strings.Contains(tr, "alice-password") {
		t.Errorf("login step %s, transcript:\n%s", login.Status, tr)
	}

	// A second run finds nothing new.
	res, _, err = w.fetch(t, w.config(w.dv.IMAPS))
	if err != nil || res.Fetched != 0 || res.Imported != 0 || res.Moved != 0 {
		t.Errorf("second run: %v, %+v", err, res)
	}
	if diff := cmp.Diff(cleanTotals, w.totals(t)); diff != "" {
		t.Errorf("store after the second run (-want +got):\n%s", diff)
	}
}

func TestCrashBetweenStoreAndMove(t *testing.T) {
	w := start(t)
	cfg := w.config(w.dv.IMAPS)
	crash := errors.New("crash")
	cfg.BeforeMove = func(uid uint32) error {
		if uid == 2 {
			return crash
		}
		return nil
	}
	first, _, err := w.fetch(t, cfg)
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, crash) {
		t.Fatalf("first run: %v, want the crash", err)
	}
	if first.Imported != 2 || first.Moved != 1 {
		t.Errorf("first run: %d imported, %d moved; want 2 (UID 1 and 2) and 1", first.Imported, first.Moved)
	}
	second, _, err := w.fetch(t, w.config(w.dv.IMAPS))
	if err != nil {
		t.Fatal(err)
	}
	// UID 2 was stored but not moved: a duplicate now, and moved.
	if second.Duplicates != 1 || second.Messages[0].UID != 2 || second.Messages[0].Outcomes[0].Result != ingest.Duplicate ||
		second.Messages[0].Folder != "mxray.processed" {
		t.Errorf("second run: %d duplicates, first message %+v", second.Duplicates, second.Messages[0])
	}
	if got := sumStats(first, second).Imported; got != clean.Imported {
		t.Errorf("imported %d over both runs, want %d", got, clean.Imported)
	}
	if first.Moved+second.Moved != 5 || first.MovedFailed+second.MovedFailed != 1 {
		t.Errorf("moved %d+%d, failed %d+%d", first.Moved, second.Moved, first.MovedFailed, second.MovedFailed)
	}
	if diff := cmp.Diff(cleanTotals, w.totals(t)); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(cleanFolders, w.counts(t)); diff != "" {
		t.Errorf("folders (-want +got):\n%s", diff)
	}
}

// proxy relays TCP connections to target; with cut > 0 it closes a
// connection once cut octets came back from the server.
type proxy struct {
	addr string
	cut  atomic.Int64
	down atomic.Int64 // octets relayed from the server, all connections
	mu   sync.Mutex
	open []net.Conn
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &proxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.open = append(p.open, c, s)
			p.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				defer c.Close()
				buf := make([]byte, 512)
				var n int64
				for {
					k, err := s.Read(buf)
					if k > 0 {
						if cut := p.cut.Load(); cut > 0 && n+int64(k) > cut {
							c.Write(buf[:cut-n])
							s.Close()
							return
						}
						c.Write(buf[:k])
						n += int64(k)
						p.down.Add(int64(k))
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

// closeAll drops every connection, as a network failure would.
func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.open {
		c.Close()
	}
}

// TestDroppedConnection cuts the connection in the middle of a run (after
// about half of what a clean run reads, and at a MOVE), then runs again:
// everything ends up stored once and moved.
func TestDroppedConnection(t *testing.T) {
	// What a clean run reads through the proxy.
	ref := start(t)
	pr := startProxy(t, ref.dv.IMAPS)
	if _, _, err := ref.fetch(t, ref.config(pr.addr)); err != nil {
		t.Fatal(err)
	}
	total := pr.down.Load()

	t.Run("after half the octets", func(t *testing.T) {
		w := start(t)
		p := startProxy(t, w.dv.IMAPS)
		p.cut.Store(total / 2)
		first, _, err := w.fetch(t, w.config(p.addr))
		if !errors.Is(err, ErrInterrupted) || !errors.Is(err, imapc.ErrClosed) {
			t.Fatalf("first run: %v, want an interruption by a closed connection", err)
		}
		second, _, err := w.fetch(t, w.config(w.dv.IMAPS))
		if err != nil {
			t.Fatal(err)
		}
		if first.Moved+first.MovedFailed == 6 || second.Fetched == 0 {
			t.Errorf("the cut came too late to test anything: first %+v", first)
		}
		if got := sumStats(first, second).Imported; got != clean.Imported {
			t.Errorf("imported %d over both runs, want %d", got, clean.Imported)
		}
		if diff := cmp.Diff(cleanTotals, w.totals(t)); diff != "" {
			t.Errorf("store (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(cleanFolders, w.counts(t)); diff != "" {
			t.Errorf("folders (-want +got):\n%s", diff)
		}
	})

	t.Run("at a move", func(t *testing.T) {
		w := start(t)
		p := startProxy(t, w.dv.IMAPS)
		cfg := w.config(p.addr)
		cfg.BeforeMove = func(uid uint32) error {
			if uid == 4 {
				p.closeAll()
			}
			return nil
		}
		first, _, err := w.fetch(t, cfg)
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("first run: %v, want an interruption", err)
		}
		if first.Imported != 3 || first.Moved != 2 || first.MovedFailed != 1 {
			t.Errorf("first run: %d imported, %d moved, %d failed; want 3, 2, 1", first.Imported, first.Moved, first.MovedFailed)
		}
		second, _, err := w.fetch(t, w.config(w.dv.IMAPS))
		if err != nil {
			t.Fatal(err)
		}
		if second.Duplicates != 1 || second.Imported != 2 {
			t.Errorf("second run: %d duplicates, %d imported; want 1 and 2", second.Duplicates, second.Imported)
		}
		if diff := cmp.Diff(cleanTotals, w.totals(t)); diff != "" {
			t.Errorf("store (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(cleanFolders, w.counts(t)); diff != "" {
			t.Errorf("folders (-want +got):\n%s", diff)
		}
	})
}

func TestConnectAndLoginFailures(t *testing.T) {
	w := start(t)
	tests := []struct {
		name string
		cfg  Config
		want error
	}{
		{"wrong password", Config{Address: w.dv.IMAPS, Security: ImplicitTLS, User: "alice@example.test", Password: "nope"}, ErrLogin},
		{"no such folder", Config{Address: w.dv.IMAPS, Security: ImplicitTLS, User: "alice@example.test", Password: "alice-password", Folder: "Nope"}, ErrLogin},
		{"untrusted certificate", Config{Address: w.dv.IMAPS, Security: ImplicitTLS, User: "alice@example.test", Password: "alice-password"}, ErrConnect},
		{"nothing listening", Config{Address: "127.0.0.1:1", Security: ImplicitTLS, User: "alice@example.test", Password: "x"}, ErrConnect},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := w.env
			if tc.name == "untrusted certificate" {
				env.Roots = x509.NewCertPool()
			}
			res, err := Fetch(context.Background(), env, tc.cfg, &ingest.Importer{Store: w.db}, diag.Discard)
			if !errors.Is(err, tc.want) || res == nil || res.Fetched != 0 {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got := w.counts(t)["INBOX"]; got != 6 {
		t.Errorf("INBOX holds %d messages after failed runs, want 6", got)
	}
}

// TestStartTLS reads through imap:// with STARTTLS, and refuses a
// server that offers no STARTTLS.
func TestStartTLS(t *testing.T) {
	w := start(t)
	cfg := w.config(w.dv.IMAP)
	cfg.Security = StartTLS
	res, rec, err := w.fetch(t, cfg)
	if err != nil || res.Imported != 5 {
		t.Fatalf("STARTTLS run: %v %+v", err, rec.Steps)
	}
	step, _ := rec.Find("connect")
	if !strings.Contains(strings.Join(step.Transcript, "\n"), "C: a2 STARTTLS") {
		t.Errorf("connect transcript:\n%s", strings.Join(step.Transcript, "\n"))
	}

	// A server without STARTTLS gets no password.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, "* OK ready\r\n")
		r := bufio.NewReader(c)
		var all strings.Builder
		for {
			l, err := r.ReadString('\n')
			all.WriteString(l)
			if err != nil {
				break
			}
			tag, _, _ := strings.Cut(l, " ")
			io.WriteString(c, "* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n"+tag+" OK done\r\n")
		}
		got <- all.String()
	}()
	cfg.Address = ln.Addr().String()
	_, err = Fetch(context.Background(), w.env, cfg, &ingest.Importer{Store: w.db}, diag.Discard)
	if !errors.Is(err, ErrConnect) || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("without STARTTLS: %v", err)
	}
	if sent := <-got; strings.Contains(sent, "AUTHENTICATE") || strings.Contains(sent, "LOGIN") {
		t.Errorf("sent credentials in cleartext:\n%s", sent)
	}
}
