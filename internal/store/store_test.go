package store

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/report/arf"
	"github.com/mxray/mxray/internal/report/dmarcrpt"
	"github.com/mxray/mxray/internal/report/dsn"
	"github.com/mxray/mxray/internal/report/tlsrpt"
	"github.com/mxray/mxray/internal/testutil"
)

// rows counts the rows of each table a report touches.
func rows(t *testing.T, db *DB) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tab := range []string{"reports", "dmarc_reports", "dmarc_records", "tls_reports", "tls_policies", "tls_failures",
		"failure_reports", "bounces", "bounce_recipients", "quarantine"} {
		var n int
		if err := db.db.QueryRow(`SELECT COUNT(*) FROM ` + tab).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			out[tab] = n
		}
	}
	return out
}

func TestOpenCreatesPrivateDirAndMigratesOnce(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "a", "data")
	db, err := Open(ctx, dir, Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data directory mode %v, %v; want 0700", fi.Mode().Perm(), err)
	}
	ms, _ := db.Migrations()
	last := ms[len(ms)-1].Version
	if v, err := db.Version(ctx); err != nil || v != last {
		t.Errorf("version %d, %v; want %d", v, err, last)
	}
	db.Close()

	// Opening again applies nothing new.
	db, err = Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var at int64
	db.db.QueryRow(`SELECT COUNT(*), MAX(applied_at) FROM schema_migrations`).Scan(&n, &at)
	if n != len(ms) || at != testNow.Unix() {
		t.Errorf("schema_migrations has %d rows applied at %d, want %d at %d", n, at, len(ms), testNow.Unix())
	}
	var mode string
	db.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Errorf("journal_mode %q, want wal", mode)
	}

	// A database from a newer mxray is refused rather than misread.
	db.db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future.sql', 0)`)
	db.Close()
	if _, err := Open(ctx, dir, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("newer schema: %v, want ErrSchema", err)
	}
}

func TestMigrationsArePortable(t *testing.T) {
	ms, err := loadMigrations(postgresDialect)
	if err != nil || len(ms) == 0 || ms[0].Version != 1 {
		t.Fatalf("migrations %v, %v", ms, err)
	}
	for _, m := range ms {
		for _, bad := range []string{"{{", "AUTOINCREMENT", "WITHOUT ROWID", "BLOB", "PRAGMA", "INTEGER PRIMARY KEY",
			"datetime(", "strftime(", "julianday(", "IFNULL(", "GLOB ", "INSERT OR ", "REPLACE INTO"} {
			if strings.Contains(strings.ToUpper(m.SQL), strings.ToUpper(bad)) {
				t.Errorf("%s holds %q, which PostgreSQL would not run", m.Name, bad)
			}
		}
	}
	// The real check: every migration runs on PostgreSQL, as every
	// store test opens one (forEachEngine).
}

func TestDMARCRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		in := synthetic("rt-1", 150)
		in.Warnings = []string{"a warning"}
		in.Records[1].Identifiers.EnvelopeTo = "rcpt.example"
		in.Records[1].DKIM = append(in.Records[1].DKIM, dmarcrpt.DKIMAuthResult{Domain: "x.example", Selector: "s\x01", Result: "neutral", HumanResult: "ünïcode \\ \"q\""})
		saved, err := db.SaveDMARC(ctx, in.meta, in.Report)
		if err != nil || saved.Duplicate || saved.ID == 0 {
			t.Fatalf("SaveDMARC: %+v, %v", saved, err)
		}
		got, err := db.Report(ctx, saved.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != KindDMARC || got.Reporter != "bench.example" || got.ReportID != "rt-1" || got.Domain != "example.com" ||
			!got.Begin.Equal(in.Metadata.DateRange.Begin) || got.Source != "rt-1.xml" || !got.ImportedAt.Equal(testNow) {
			t.Errorf("report header %+v", got)
		}
		if diff := cmp.Diff([]string{"a warning"}, got.Warnings); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
		d := got.DMARC
		pct := 100
		wantPol := PolicyPublished{Domain: "example.com", ADKIM: "r", ASPF: "r", P: "reject", SP: "reject", Pct: &pct}
		if diff := cmp.Diff(wantPol, d.Policy); diff != "" {
			t.Errorf("policy (-want +got):\n%s", diff)
		}
		if d.RecordCount != 150 || int64(in.Messages) != d.Messages || len(d.Records) != 150 {
			t.Fatalf("records %d/%d, messages %d", len(d.Records), d.RecordCount, d.Messages)
		}
		for i, r := range in.Records {
			want := Record{SourceIP: r.SourceIP.String(), Count: int64(r.Count), Disposition: string(r.PolicyEvaluated.Disposition),
				DKIM: string(r.PolicyEvaluated.DKIM), SPF: string(r.PolicyEvaluated.SPF), HeaderFrom: r.Identifiers.HeaderFrom,
				EnvelopeFrom: r.Identifiers.EnvelopeFrom, EnvelopeTo: r.Identifiers.EnvelopeTo}
			for _, x := range r.PolicyEvaluated.Reasons {
				want.Reasons = append(want.Reasons, Reason{Type: string(x.Type), Comment: x.Comment})
			}
			for _, x := range r.DKIM {
				want.DKIMAuth = append(want.DKIMAuth, DKIMAuth{Domain: x.Domain, Selector: x.Selector, Result: string(x.Result), HumanResult: x.HumanResult})
			}
			for _, x := range r.SPF {
				want.SPFAuth = append(want.SPFAuth, SPFAuth{Domain: x.Domain, Scope: string(x.Scope), Result: string(x.Result), HumanResult: x.HumanResult})
			}
			if diff := cmp.Diff(want, d.Records[i]); diff != "" {
				t.Fatalf("record %d (-want +got):\n%s", i+1, diff)
			}
		}
		if got, _ := db.Report(ctx, saved.ID, 10); len(got.DMARC.Records) != 10 || got.DMARC.RecordCount != 150 {
			t.Errorf("limited to 10: %d records of %d", len(got.DMARC.Records), got.DMARC.RecordCount)
		}
		if _, err := db.Report(ctx, 999, 0); !errors.Is(err, ErrNotFound) {
			t.Errorf("missing report: %v, want ErrNotFound", err)
		}
	})
}

func TestDuplicates(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		a := synthetic("dup-1", 3)
		first, err := db.SaveDMARC(ctx, a.meta, a.Report)
		if err != nil {
			t.Fatal(err)
		}
		before := rows(t, db)

		sameContent := synthetic("dup-other-id", 3)
		sameContent.meta.Hash = a.meta.Hash
		sameID := synthetic("dup-1", 5) // same reporter and report id, other bytes
		sameID.meta.Hash = Hash([]byte("other bytes"))
		for name, r := range map[string]*testReport{"again": a, "same content": sameContent, "same reporter and id": sameID} {
			saved, err := db.SaveDMARC(ctx, r.meta, r.Report)
			if err != nil || !saved.Duplicate || saved.ID != first.ID {
				t.Errorf("%s: %+v, %v; want a duplicate of %d", name, saved, err, first.ID)
			}
		}
		if diff := cmp.Diff(before, rows(t, db)); diff != "" {
			t.Errorf("duplicates changed the tables (-before +after):\n%s", diff)
		}
		if id, err := db.Seen(ctx, a.meta.Hash); err != nil || id != first.ID {
			t.Errorf("Seen = %d, %v; want %d", id, err, first.ID)
		}
		if id, _ := db.Seen(ctx, Hash([]byte("never"))); id != 0 {
			t.Errorf("Seen of unknown content = %d", id)
		}

		// Another reporter may use the same report id.
		other := synthetic("dup-1", 2)
		other.Metadata.OrgName = "other.example"
		other.meta.Hash = Hash([]byte("other reporter"))
		if saved, err := db.SaveDMARC(ctx, other.meta, other.Report); err != nil || saved.Duplicate {
			t.Errorf("other reporter, same id: %+v, %v; want stored", saved, err)
		}
	})
}

func TestReportIsStoredWholeOrNotAtAll(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		r := synthetic("atomic", 200)
		r.Records[150].Count = math.MaxUint64 // not storable: the 151st record fails after 150 were written
		_, err := db.SaveDMARC(ctx, r.meta, r.Report)
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("SaveDMARC = %v, want ErrInvalid", err)
		}
		if got := rows(t, db); len(got) != 0 {
			t.Errorf("a failed report left rows: %v", got)
		}

		// The streaming form: records added, then abandoned.
		ok := synthetic("atomic-2", 100)
		tx, _, err := db.BeginDMARC(ctx, ok.meta, &ok.Feedback)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Add(ok.Records); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		if got := rows(t, db); len(got) != 0 {
			t.Errorf("a rolled back report left rows: %v", got)
		}
		// And the same report stored afterwards is not a duplicate of anything.
		if saved, err := db.SaveDMARC(ctx, ok.meta, ok.Report); err != nil || saved.Duplicate {
			t.Errorf("after rollback: %+v, %v", saved, err)
		}
	})
}

func TestStreamedReportUpdatesWarnings(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		r := synthetic("stream", 70)
		tx, saved, err := db.BeginDMARC(ctx, r.meta, &r.Feedback)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 70; i += 33 {
			if err := tx.Add(r.Records[i:min(i+33, 70)]); err != nil {
				t.Fatal(err)
			}
		}
		fb := r.Feedback
		fb.Warnings = []string{"seen in record 60"}
		if err := tx.Commit(&fb); err != nil {
			t.Fatal(err)
		}
		got, err := db.Report(ctx, saved.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.DMARC.Records) != 70 || got.DMARC.RecordCount != 70 || got.DMARC.Records[69].SourceIP != r.Records[69].SourceIP.String() {
			t.Errorf("stored %d records (count %d)", len(got.DMARC.Records), got.DMARC.RecordCount)
		}
		if diff := cmp.Diff([]string{"seen in record 60"}, got.Warnings); diff != "" {
			t.Errorf("warnings (-want +got):\n%s", diff)
		}
	})
}

func readShared(t *testing.T, set, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Shared(t, set), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTLSFailureBounceRoundTrip(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		meta := func(b []byte) Meta { return Meta{Source: "test", Hash: Hash(b), At: testNow} }

		raw := readShared(t, "smtp-tls-reports", "dmarc-report-viewer/rfc-example.json")
		tr, err := tlsrpt.ParseBytes(raw, tlsrpt.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		saved, err := db.SaveTLS(ctx, meta(raw), tr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Report(ctx, saved.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != KindTLS || got.Reporter != "Company-X" || got.Domain != "company-y.example" || len(got.TLS.Policies) != 1 {
			t.Fatalf("TLS report %+v", got)
		}
		p := got.TLS.Policies[0]
		if p.Type != "sts" || p.Successful != 5326 || p.Failed != 303 || len(p.Failures) != 3 || p.Failures[0].FailedSessions == 0 || p.Failures[0].ResultType == "" {
			t.Errorf("policy %+v", p)
		}

		raw = readShared(t, "dmarc-failure-reports", "sisimai-arf/arf-01.eml")
		fr, err := arf.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		saved, err = db.SaveFailure(ctx, meta(raw), fr)
		if err != nil {
			t.Fatal(err)
		}
		got, err = db.Report(ctx, saved.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.Kind != KindFailure || got.Failure.FeedbackType != string(fr.FeedbackType) || got.Failure.SourceIP != fr.SourceIP.String() ||
			got.ReportID == "" || got.Failure.OriginalHeaderText == "" {
			t.Errorf("failure report %+v %+v", got, got.Failure)
		}

		raw = readShared(t, "dsn-bounces", "sisimai/bsd/rfc3464-03.eml")
		br, err := dsn.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		saved, err = db.SaveBounce(ctx, meta(raw), br)
		if err != nil {
			t.Fatal(err)
		}
		got, err = db.Report(ctx, saved.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := got.Bounce
		if got.Kind != KindBounce || b.Kind != string(br.Kind) || len(b.Recipients) != len(br.Recipients) ||
			b.Recipients[0].FinalRecipient != br.Recipients[0].FinalRecipient || b.Recipients[0].Status != br.Recipients[0].Status {
			t.Errorf("bounce %+v", b)
		}
		// The same bounce again is a duplicate.
		if again, err := db.SaveBounce(ctx, meta(raw), br); err != nil || !again.Duplicate {
			t.Errorf("bounce again: %+v, %v", again, err)
		}
	})
}

func TestQuarantine(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		raw := []byte("<feedback>broken\x00\xff")
		id, already, err := db.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "a.xml", MessageID: "m@x", Kind: "dmarc-aggregate", Reason: "bad", Raw: raw})
		if err != nil || already || id == 0 {
			t.Fatalf("Quarantine: %d %v %v", id, already, err)
		}
		id2, already, err := db.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "copy/a.xml", Reason: "bad", Raw: raw})
		if err != nil || !already || id2 != id {
			t.Errorf("same bytes again: %d %v %v; want already %d", id2, already, err, id)
		}
		// Empty inputs are told apart by where they came from.
		e1, _, _ := db.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "empty1", Reason: "empty"})
		e2, _, _ := db.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "empty2", Reason: "empty"})
		if e1 == e2 {
			t.Errorf("two empty files share item %d", e1)
		}
		list, err := db.QuarantineList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []QuarantineItem{
			{ID: id, At: testNow, Origin: "a.xml", MessageID: "m@x", Kind: "dmarc-aggregate", Reason: "bad", Size: int64(len(raw))},
			{ID: e1, At: testNow, Origin: "empty1", Reason: "empty"},
			{ID: e2, At: testNow, Origin: "empty2", Reason: "empty"},
		}
		if diff := cmp.Diff(want, list); diff != "" {
			t.Errorf("list (-want +got):\n%s", diff)
		}
		q, err := db.QuarantineGet(ctx, id)
		if err != nil || string(q.Raw) != string(raw) {
			t.Errorf("raw bytes %q, %v; want %q", q.Raw, err, raw)
		}
		if err := db.QuarantineReason(ctx, id, "still bad"); err != nil {
			t.Fatal(err)
		}
		if q, _ := db.QuarantineGet(ctx, id); q.Reason != "still bad" {
			t.Errorf("reason %q", q.Reason)
		}
		if err := db.QuarantineRemove(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := db.QuarantineRemove(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("removing twice: %v", err)
		}
		if _, err := db.QuarantineGet(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("get removed: %v", err)
		}
	})
}

func TestSummary(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		a := synthetic("s-1", 9) // records 3, 6, 9 fail DMARC and are quarantined
		b := synthetic("s-2", 3)
		b.Metadata.OrgName = "second.example"
		b.Metadata.DateRange.End = time.Unix(1800000000, 0).UTC()
		c := synthetic("s-3", 2)
		c.Policy.Domain = "Other.Example"
		for _, r := range []*testReport{a, b, c} {
			if _, err := db.SaveDMARC(ctx, r.meta, r.Report); err != nil {
				t.Fatal(err)
			}
		}
		raw := readShared(t, "smtp-tls-reports", "dmarc-report-viewer/rfc-example.json")
		tr, _ := tlsrpt.ParseBytes(raw, tlsrpt.Limits{})
		if _, err := db.SaveTLS(ctx, Meta{Source: "t", Hash: Hash(raw), At: testNow}, tr); err != nil {
			t.Fatal(err)
		}
		db.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "x", Reason: "r", Raw: []byte("x")})

		sum, err := db.Summary(ctx, Filter{Top: 2})
		if err != nil {
			t.Fatal(err)
		}
		// Counts are i%7+1 for record i (0-based).
		msgs := func(r *testReport) (all, pass int64) {
			for i, rec := range r.Records {
				all += int64(rec.Count)
				if i%3 != 2 {
					pass += int64(rec.Count)
				}
			}
			return
		}
		aAll, aPass := msgs(a)
		bAll, bPass := msgs(b)
		if sum.Totals != (Totals{DMARC: 3, TLS: 1, Records: 14, Messages: aAll + bAll + 3, Quarantined: 1}) {
			t.Errorf("totals %+v", sum.Totals)
		}
		if len(sum.Domains) != 2 {
			t.Fatalf("domains %+v", sum.Domains)
		}
		ex := sum.Domains[0]
		if ex.Domain != "example.com" || ex.Reports != 2 || ex.Messages != aAll+bAll || ex.DMARCPass != aPass+bPass ||
			ex.DKIMPass != aPass+bPass || ex.SPFPass != 0 || ex.DMARCPassRate != rate(aPass+bPass, aAll+bAll) {
			t.Errorf("example.com %+v", ex)
		}
		wantDisp := []Disposition{{"none", aPass + bPass}, {"quarantine", aAll + bAll - aPass - bPass}}
		if diff := cmp.Diff(wantDisp, ex.Dispositions); diff != "" {
			t.Errorf("dispositions (-want +got):\n%s", diff)
		}
		// Source 198.51.0.6 (a's record 6, count 7) is the largest and
		// passes; 198.51.0.2 (record 2 of a and of b, 3 each) fails, as does
		// 2001:db8::6 (a's record 5, count 6).
		if len(ex.Sources) != 2 || ex.Sources[0].IP != "198.51.0.6" || ex.Sources[0].Messages != 7 || ex.Sources[0].Failed != 0 ||
			ex.Sources[1].IP != "198.51.0.2" || ex.Sources[1].Failed != 6 {
			t.Errorf("sources %+v", ex.Sources)
		}
		if len(ex.FailingSources) != 2 || ex.FailingSources[0].IP != "198.51.0.2" || ex.FailingSources[1].IP != "2001:db8::6" {
			t.Errorf("failing sources %+v", ex.FailingSources)
		}
		if ex.SourceCount != 9 {
			t.Errorf("source count %d, want 9 (b's 3 sources are among a's)", ex.SourceCount)
		}
		wantRep := []ReporterSummary{
			{Reporter: "bench.example", Reports: 1, Messages: aAll, DMARCPass: aPass, PassRate: rate(aPass, aAll)},
			{Reporter: "second.example", Reports: 1, Messages: bAll, DMARCPass: bPass, PassRate: rate(bPass, bAll)},
		}
		if diff := cmp.Diff(wantRep, ex.Reporters); diff != "" {
			t.Errorf("reporters (-want +got):\n%s", diff)
		}
		if sum.Domains[1].Domain != "other.example" {
			t.Errorf("domain not lower-cased: %q", sum.Domains[1].Domain)
		}
		if len(sum.TLS) != 1 || sum.TLS[0].Domain != "company-y.example" || sum.TLS[0].Successful != 5326 || sum.TLS[0].Failed != 303 ||
			len(sum.TLS[0].Failures) == 0 || sum.TLS[0].PolicyTypes[0] != "sts" {
			t.Errorf("TLS %+v", sum.TLS)
		}

		// Filters: by domain, and by the end of the period.
		sum, _ = db.Summary(ctx, Filter{Domain: "OTHER.example"})
		if len(sum.Domains) != 1 || sum.Domains[0].Domain != "other.example" || sum.Totals.DMARC != 1 || len(sum.TLS) != 0 {
			t.Errorf("domain filter: %+v", sum)
		}
		sum, _ = db.Summary(ctx, Filter{Since: time.Unix(1750000000, 0)})
		if sum.Totals.DMARC != 1 || len(sum.Domains) != 1 || sum.Domains[0].Reporters[0].Reporter != "second.example" {
			t.Errorf("since filter: %+v", sum)
		}
	})
}

func TestCountsBeyondInt64AreRefused(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		r := synthetic("big", 1)
		r.Messages = math.MaxUint64
		if _, err := db.SaveDMARC(ctx, r.meta, r.Report); !errors.Is(err, ErrInvalid) {
			t.Errorf("message total beyond int64: %v", err)
		}
		var n int
		db.db.QueryRow(`SELECT COUNT(*) FROM reports`).Scan(&n)
		if n != 0 {
			t.Errorf("%d reports rows left", n)
		}
		if _, err := db.SaveDMARC(ctx, Meta{}, synthetic("nohash", 1).Report); !errors.Is(err, ErrInvalid) {
			t.Errorf("no hash: %v", err)
		}
	})
}
