package ingest

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/report/dmarcrpt"
	"github.com/mxray/mxray/internal/report/tlsrpt"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// walkAll runs Walk and returns origin → data (or "ERR: …").
func walkAll(t *testing.T, paths []string, max int64) (map[string]string, error) {
	t.Helper()
	got := map[string]string{}
	err := Walk(context.Background(), paths, max, func(b Blob) error {
		if _, dup := got[b.Origin]; dup {
			t.Errorf("origin %s seen twice", b.Origin)
		}
		if b.Err != nil {
			got[b.Origin] = "ERR: " + b.Err.Error()
		} else {
			got[b.Origin] = string(b.Data)
		}
		return nil
	})
	return got, err
}

const mbox = "From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n" +
	"Subject: one\n\nbody one\n>From the start of a line\n>>From twice\n\n" +
	"From someone@example.com Fri Jan  2 00:00:00 2026\n" +
	"Subject: two\n\nline\nFrom here, not a separator (no empty line before)\n\n" +
	"From third@example.com Sat Jan  3 00:00:00 2026\r\n" +
	"Subject: three\r\n\r\ncrlf body\r\n"

func TestWalk(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a.xml"), "<feedback/>")
	write(t, filepath.Join(dir, "sub", "deeper", "b.json"), "{}")
	write(t, filepath.Join(dir, ".hidden"), "skipped")
	write(t, filepath.Join(dir, "sub", ".git", "config"), "skipped")
	write(t, filepath.Join(dir, "box.mbox"), mbox)
	md := filepath.Join(dir, "Maildir")
	write(t, filepath.Join(md, "cur", "1.host:2,S"), "Subject: cur\n\nx")
	write(t, filepath.Join(md, "new", "2.host"), "Subject: new\n\ny")
	write(t, filepath.Join(md, "tmp", "3.host"), "being written")
	write(t, filepath.Join(md, "dovecot-uidlist"), "index, not mail")
	write(t, filepath.Join(md, ".Reports", "cur", "4.host:2,"), "Subject: sub-folder\n\nz")
	os.MkdirAll(filepath.Join(md, ".Reports", "new"), 0o755)
	if err := os.Symlink(dir, filepath.Join(dir, "sub", "loop")); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "big"), strings.Repeat("x", 200))

	got, err := walkAll(t, []string{dir, filepath.Join(dir, "missing.xml")}, 128)
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), "missing.xml: no such file or directory") {
		t.Errorf("error %v, want ErrUnreadable naming missing.xml", err)
	}
	p := func(s string) string { return filepath.Join(dir, s) }
	want := map[string]string{
		p("a.xml"):                          "<feedback/>",
		p("sub/deeper/b.json"):              "{}",
		p("box.mbox#1"):                     "Subject: one\n\nbody one\nFrom the start of a line\n>From twice\n",
		p("box.mbox#2"):                     "Subject: two\n\nline\nFrom here, not a separator (no empty line before)\n",
		p("box.mbox#3"):                     "Subject: three\r\n\r\ncrlf body\r\n",
		p("Maildir/cur/1.host:2,S"):         "Subject: cur\n\nx",
		p("Maildir/new/2.host"):             "Subject: new\n\ny",
		p("Maildir/.Reports/cur/4.host:2,"): "Subject: sub-folder\n\nz",
		p("big"):                            "ERR: ingest: size limit exceeded: file larger than 128 bytes",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("blobs (-want +got):\n%s", diff)
	}
}

func TestWalkStopsOnCallbackError(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "a"), "1")
	write(t, filepath.Join(dir, "b"), "2")
	stop := errors.New("stop")
	n := 0
	err := Walk(context.Background(), []string{dir}, 0, func(Blob) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Walk = %v after %d blobs, want the callback's error after 1", err, n)
	}
}

func TestMboxMessageTooLarge(t *testing.T) {
	dir := t.TempDir()
	box := "From a\nSubject: small\n\nok\n\nFrom b\nSubject: big\n\n" + strings.Repeat("y", 200) + "\n\nFrom c\nSubject: after\n\nok\n"
	write(t, filepath.Join(dir, "m"), box)
	got, err := walkAll(t, []string{filepath.Join(dir, "m")}, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		filepath.Join(dir, "m#1"): "Subject: small\n\nok\n",
		filepath.Join(dir, "m#2"): "ERR: ingest: size limit exceeded: message larger than 100 bytes",
		filepath.Join(dir, "m#3"): "Subject: after\n\nok\n",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func FuzzMbox(f *testing.F) {
	f.Add([]byte(mbox))
	f.Add([]byte("From \n\nFrom \nFrom x\n>From\n"))
	f.Add([]byte("From a\r\n\r\n\r\nFrom b"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if !bytes.HasPrefix(data, []byte("From ")) {
			data = append([]byte("From "), data...)
		}
		var total int
		w := &walker{ctx: context.Background(), max: 1 << 20, fn: func(b Blob) error {
			total += len(b.Data)
			return nil
		}}
		if err := w.mbox("fuzz", bufio.NewReaderSize(bytes.NewReader(data), 16)); err != nil {
			t.Fatal(err)
		}
		if total > len(data) {
			t.Errorf("messages hold %d bytes, more than the %d of the mbox", total, len(data))
		}
	})
}

// importer returns an Importer on a fresh store.
func importer(t *testing.T) (*Importer, *store.DB) {
	t.Helper()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "data"), store.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &Importer{Store: db, Now: func() time.Time { return now }, Workers: 2}, db
}

func blobs(list ...Blob) func(context.Context, func(Blob) error) error {
	return func(_ context.Context, fn func(Blob) error) error {
		for _, b := range list {
			if err := fn(b); err != nil {
				return err
			}
		}
		return nil
	}
}

func shared(t *testing.T, set, name string) Blob {
	t.Helper()
	p := filepath.Join(testutil.Shared(t, set), name)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return Blob{Origin: set + "/" + name, Data: b}
}

func TestImport(t *testing.T) {
	ctx := context.Background()
	im, db := importer(t)
	var outs []Outcome
	im.Outcome = func(o Outcome) { outs = append(outs, o) }
	input := []Blob{
		shared(t, "dmarc-aggregate", "mox/google.eml"),
		shared(t, "dmarc-aggregate", "parsedmarc/extract_report/nice-input.xml.gz"),
		shared(t, "dmarc-aggregate", "parsedmarc/extract_report/nice-input.xml.zip"), // the same XML
		shared(t, "smtp-tls-reports", "dmarc-report-viewer/rfc-example.json"),
		shared(t, "dmarc-failure-reports", "sisimai-arf/arf-01.eml"),
		shared(t, "dsn-bounces", "sisimai/bsd/rfc3464-03.eml"),     // RFC 3464
		shared(t, "dsn-bounces", "sisimai/bsd/lhost-qmail-06.eml"), // text
		shared(t, "dsn-bounces", "sisimai/bsd/rfc3834-02.eml"),     // auto-reply
		shared(t, "dmarc-aggregate", "parsedmarc/aggregate/invalid_xml.xml"),
		{Origin: "empty", Data: nil},
		{Origin: "bad.gz", Data: []byte{0x1f, 0x8b, 8, 0, 0, 0}},
		{Origin: "huge", Err: fmt.Errorf("%w: file larger than 1 bytes", ErrTooLarge)},
	}
	st, err := im.Import(ctx, blobs(input...))
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{Blobs: 12, Payloads: 12, Imported: 4, DMARC: 2, TLS: 1, Failure: 1, Bounces: 2, Duplicates: 1, Quarantined: 5,
		Records: 22, Messages: 5 + 3047}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	reasons := map[string]string{}
	for _, o := range outs {
		if o.Result == Quarantined {
			reasons[o.Origin] = o.Reason
		}
	}
	for origin, reason := range map[string]string{
		"dsn-bounces/sisimai/bsd/rfc3834-02.eml":               "an auto-reply",
		"dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml": "dmarcrpt: malformed XML: line 5",
		"empty":  "ingest: empty input",
		"bad.gz": "ingest: corrupt compressed data",
		"huge":   "file larger than 1 bytes",
	} {
		if !strings.Contains(reasons[origin], reason) {
			t.Errorf("%s: quarantine reason %q, want %q in it", origin, reasons[origin], reason)
		}
	}
	// The quarantine keeps the bytes as they came.
	items, _ := db.QuarantineList(ctx)
	for _, it := range items {
		if it.Origin == "dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml" {
			q, _ := db.QuarantineGet(ctx, it.ID)
			if !bytes.Equal(q.Raw, input[8].Data) {
				t.Errorf("quarantined bytes differ from the file")
			}
		}
	}

	// A second import changes nothing.
	sum1, _ := db.Summary(ctx, store.Filter{})
	outs = nil
	st, err = im.Import(ctx, blobs(input...))
	if err != nil {
		t.Fatal(err)
	}
	want = Stats{Blobs: 12, Payloads: 12, Duplicates: 7, Quarantined: 5}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("second import (-want +got):\n%s", diff)
	}
	for _, o := range outs {
		if o.Result == Quarantined && !o.Already {
			t.Errorf("%s quarantined again as new", o.Origin)
		}
	}
	sum2, _ := db.Summary(ctx, store.Filter{})
	if diff := cmp.Diff(sum1, sum2); diff != "" {
		t.Errorf("second import changed the summary (-first +second):\n%s", diff)
	}
}

// bigReport is an aggregate report of n records, larger than streamMin
// for n above about 2,000.
func bigReport(id string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<feedback><report_metadata><org_name>big.example</org_name><email>d@big.example</email><report_id>%s</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
<policy_published><domain>example.org</domain><p>none</p></policy_published>
`, id)
	for i := range n {
		fmt.Fprintf(&b, "<record><row><source_ip>192.0.2.%d</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.org</header_from></identifiers><auth_results><spf><domain>example.org</domain><result>pass</result></spf></auth_results></record>\n", i%256)
	}
	b.WriteString("</feedback>\n")
	return b.String()
}

func TestImportStreamsLargeReports(t *testing.T) {
	ctx := context.Background()
	im, db := importer(t)
	good := bigReport("good", 3000)
	if len(good) < streamMin {
		t.Fatalf("report of %d bytes would not be streamed", len(good))
	}
	bad := bigReport("bad", 3000)
	cut := len(bad)*9/10 + strings.Index(bad[len(bad)*9/10:], "\n<record>") + 1
	bad = bad[:cut] + "<record><row><source_ip>not an ip</source_ip><count>1</count></row></record>\n" + bad[cut:]
	st, err := im.Import(ctx, blobs(Blob{Origin: "good.xml.gz", Data: gz(t, []byte(good))}, Blob{Origin: "bad.xml", Data: []byte(bad)}))
	if err != nil {
		t.Fatal(err)
	}
	if st.Imported != 1 || st.Records != 3000 || st.Messages != 3000 || st.Quarantined != 1 {
		t.Errorf("stats %+v", st)
	}
	sum, _ := db.Summary(ctx, store.Filter{})
	if sum.Totals.DMARC != 1 || sum.Totals.Records != 3000 {
		t.Errorf("a report failing after 2,700 records left rows: %+v", sum.Totals)
	}
	items, _ := db.QuarantineList(ctx)
	if len(items) != 1 || !strings.Contains(items[0].Reason, "dmarcrpt: invalid value") || items[0].Size != int64(len(bad)) {
		t.Errorf("quarantine %+v", items)
	}
	// Streamed duplicates are recognised too, by content and by id.
	st, _ = im.Import(ctx, blobs(Blob{Origin: "again.xml", Data: []byte(good)}))
	if st.Duplicates != 1 || st.Imported != 0 {
		t.Errorf("again: %+v", st)
	}
}

func TestReprocess(t *testing.T) {
	ctx := context.Background()
	im, db := importer(t)
	strict := *im
	strict.DMARC = dmarcrpt.Limits{MaxRecords: 1}
	strict.TLS = tlsrpt.Limits{MaxPolicies: 1}
	b := shared(t, "dmarc-aggregate", "dmarc-report-viewer/outlook.xml") // 2 records
	st, err := strict.Import(ctx, blobs(b))
	if err != nil || st.Quarantined != 1 {
		t.Fatalf("strict import: %+v, %v", st, err)
	}
	items, _ := db.QuarantineList(ctx)
	q, _ := db.QuarantineGet(ctx, items[0].ID)

	// Still too strict: nothing is stored.
	outs, ok, err := strict.Reprocess(ctx, q)
	if err != nil || ok || len(outs) != 1 || !strings.Contains(outs[0].Reason, "too many records") {
		t.Errorf("strict reprocess: %+v %v %v", outs, ok, err)
	}
	outs, ok, err = im.Reprocess(ctx, q)
	if err != nil || !ok || len(outs) != 1 || outs[0].Result != Imported || outs[0].Records != 2 {
		t.Fatalf("reprocess: %+v %v %v", outs, ok, err)
	}
	r, err := db.Report(ctx, outs[0].ID, 0)
	if err != nil || r.Reporter != "Outlook.com" || len(r.DMARC.Records) != 2 {
		t.Errorf("reprocessed report %+v, %v", r, err)
	}
	// Once more: a duplicate, which is success too.
	if outs, ok, _ := im.Reprocess(ctx, q); !ok || outs[0].Result != Duplicate {
		t.Errorf("reprocess again: %+v %v", outs, ok)
	}
}

// breakTLS makes the store refuse TLS reports with an error of its own, a
// failure that is not store.ErrInvalid: a trigger aborts the insert.
func breakTLS(t *testing.T, db *store.DB) {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER disk_on_fire BEFORE INSERT ON tls_reports BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`); err != nil {
		t.Fatal(err)
	}
}

func TestImportStopsOnStoreFailure(t *testing.T) {
	ctx := context.Background()
	var list []Blob
	for range 20 {
		list = append(list, shared(t, "dmarc-aggregate", "mox/google.eml"))
	}
	list[3] = shared(t, "smtp-tls-reports", "dmarc-report-viewer/rfc-example.json")
	// Streamed reports queued behind the failure must not hang the import.
	for i := 4; i < 8; i++ {
		list[i] = Blob{Origin: fmt.Sprintf("big%d.xml", i), Data: []byte(bigReport(fmt.Sprint(i), 4000))}
	}
	for _, tc := range []struct {
		name                 string
		group                int
		imported, duplicates int
	}{
		// Each report committed alone: the 3 blobs before the failure stay.
		{"alone", 1, 1, 2},
		// Grouped: the failure loses the group, which held those 3 blobs.
		{"grouped", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, db := importer(t)
			im.GroupReports = tc.group
			breakTLS(t, db)
			var outs []Outcome
			im.Outcome = func(o Outcome) { outs = append(outs, o) }
			st, err := im.Import(ctx, blobs(list...))
			if err == nil || !strings.Contains(err.Error(), "disk on fire") {
				t.Fatalf("Import = %v, want the store's error", err)
			}
			if st.Imported != tc.imported || st.Duplicates != tc.duplicates || len(outs) != tc.imported+tc.duplicates {
				t.Errorf("stats %+v, %d outcomes: want %d imported and %d duplicates", st, len(outs), tc.imported, tc.duplicates)
			}
			// What the stats say is what the store holds.
			sum, err := db.Summary(ctx, store.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			if held := sum.Totals.DMARC + sum.Totals.TLS; held != int64(tc.imported) {
				t.Errorf("the store holds %d reports, want %d", held, tc.imported)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	for in, want := range map[string]string{
		"Subject: x\nMessage-ID: <a@b>\n\nbody":       "a@b",
		"Subject: x\r\nmessage-id:\r\n <c@d>\r\n\r\n": "c@d",
		"Subject: x\n\nMessage-ID: <in body>\n":       "",
		"<feedback/>":                                 "",
	} {
		if got := messageID([]byte(in)); got != want {
			t.Errorf("messageID(%q) = %q, want %q", in, got, want)
		}
	}
}

// When the input makes the storing goroutine wait, the group is
// committed after GroupDelay rather than at the end of the input: a
// source that trickles (IMAP, a receiver) has its reports stored.
func TestImportCommitsWhileInputWaits(t *testing.T) {
	ctx := context.Background()
	im, db := importer(t)
	im.GroupDelay = time.Millisecond
	committed := make(chan Outcome, 2)
	im.Outcome = func(o Outcome) { committed <- o }
	first := shared(t, "dmarc-aggregate", "mox/google.eml")
	st, err := im.Import(ctx, func(_ context.Context, fn func(Blob) error) error {
		if err := fn(first); err != nil {
			return err
		}
		select {
		case o := <-committed:
			if o.Result != Imported {
				t.Errorf("first: %+v", o)
			}
			if r, err := db.Report(ctx, o.ID, 0); err != nil || r.Reporter == "" {
				t.Errorf("the first report is not readable before the input ends: %+v, %v", r, err)
			}
		case <-time.After(time.Minute): // a hang guard, not a timing assertion
			return errors.New("the first report was not committed while the input waited")
		}
		return fn(shared(t, "smtp-tls-reports", "dmarc-report-viewer/rfc-example.json"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.Imported != 2 || st.Blobs != 2 {
		t.Errorf("stats %+v", st)
	}
}
