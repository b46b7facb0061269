package store

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNumberPlaceholders(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b = ?`, `a = $1 AND b = $2`},
		{`x = '?' AND y = ? AND "q?" = ?`, `x = '?' AND y = $1 AND "q?" = $2`},
		{"a = ? -- why?\nAND b = ?", "a = $1 -- why?\nAND b = $2"},
		{`s = 'it''s ?' OR t = ?`, `s = 'it''s ?' OR t = $1`},
		{`unterminated '?`, `unterminated '?`},
	} {
		if diff := cmp.Diff(c.want, numberPlaceholders(c.in)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", c.in, diff)
		}
	}
	if got := postgresDialect.bind(`ORDER BY r.domain{{BINARY}} LIMIT ?`); got != `ORDER BY r.domain COLLATE "C" LIMIT $1` {
		t.Errorf("postgres bind: %q", got)
	}
	if got := sqliteDialect.bind(`ORDER BY r.domain{{BINARY}} LIMIT ?`); got != `ORDER BY r.domain LIMIT ?` {
		t.Errorf("sqlite bind: %q", got)
	}
}

func TestCleanArgs(t *testing.T) {
	got := cleanArgs([]any{"ok ü", "nul\x00x", "latin1 \xe9t\xe9", []byte("\x00raw"), int64(7), nil})
	want := []any{"ok ü", "nul\uFFFDx", "latin1 \uFFFDt\uFFFD", []byte("\x00raw"), int64(7), nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Text PostgreSQL refuses (NUL, invalid UTF-8), as mail headers carry it,
// is stored on both engines, the same way.
func TestUnstorableTextIsReplaced(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		r := synthetic("text\x00id", 2)
		r.Metadata.OrgName = "Org \xff\xfe"
		r.Records[0].Identifiers.HeaderFrom = "a\x00b.example"
		saved, err := db.SaveDMARC(ctx, r.meta, r.Report)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.Report(ctx, saved.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.ReportID != "text\uFFFDid" || got.Reporter != "Org \uFFFD" || got.DMARC.Records[0].HeaderFrom != "a\uFFFDb.example" {
			t.Errorf("report id %q, reporter %q, header from %q", got.ReportID, got.Reporter, got.DMARC.Records[0].HeaderFrom)
		}
	})
}

// A report whose transaction dies half way (its context ends between two
// batches of records) leaves nothing, and the same report stores later.
func TestReportInterruptedLeavesNothing(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		r := synthetic("cut", 300)
		ctx, cancel := context.WithCancel(context.Background())
		tx, _, err := db.BeginDMARC(ctx, r.meta, &r.Feedback)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Add(r.Records[:200]); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := tx.Add(r.Records[200:]); err == nil {
			t.Fatal("Add after the context ended succeeded")
		}
		tx.Rollback()
		if got := rows(t, db); len(got) != 0 {
			t.Errorf("an interrupted report left rows: %v", got)
		}
		if saved, err := db.SaveDMARC(context.Background(), r.meta, r.Report); err != nil || saved.Duplicate {
			t.Errorf("after the interruption: %+v, %v", saved, err)
		}
		if got := rows(t, db); got["dmarc_records"] != 300 {
			t.Errorf("rows %v, want 300 records", got)
		}
	})
}

// Ties in the summaries are broken by comparing text byte by byte on
// both engines, whatever the database's collation (the lab cluster's is
// ICU en-US, under which "alpha" would come before "Zeta").
func TestSummaryOrdersTextByteByByte(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		for _, org := range []string{"alpha.example", "Zeta.example", "beta.example"} {
			r := synthetic("o-"+org, 3)
			r.Metadata.OrgName = org
			r.meta.Hash = Hash([]byte(org))
			if _, err := db.SaveDMARC(ctx, r.meta, r.Report); err != nil {
				t.Fatal(err)
			}
		}
		sum, err := db.Summary(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range sum.Domains[0].Reporters {
			got = append(got, r.Reporter)
		}
		if diff := cmp.Diff([]string{"Zeta.example", "alpha.example", "beta.example"}, got); diff != "" {
			t.Errorf("reporters with equal counts (-want +got):\n%s", diff)
		}
	})
}

func TestPostgresOpen(t *testing.T) {
	ctx := context.Background()
	u := postgresURL(t)
	opt := Options{Now: func() time.Time { return testNow }}

	// Several processes starting at once on a new database: the
	// migrations run once.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := OpenPostgres(ctx, u, opt)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	db, err := OpenPostgres(ctx, u, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := db.Migrations()
	var n int
	var at int64
	db.db.QueryRow(`SELECT COUNT(*), MAX(applied_at) FROM schema_migrations`).Scan(&n, &at)
	if n != len(ms) || at != testNow.Unix() {
		t.Errorf("schema_migrations has %d rows applied at %d, want %d at %d", n, at, len(ms), testNow.Unix())
	}
	if v, err := db.Version(ctx); err != nil || v != ms[len(ms)-1].Version {
		t.Errorf("version %d, %v", v, err)
	}
	if db.Engine() != "postgres" || db.Path() != u {
		t.Errorf("engine %q path %q", db.Engine(), db.Path())
	}
	db.db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future.sql', 0)`)
	db.Close()
	if _, err := OpenPostgres(ctx, u, Options{}); !errors.Is(err, ErrSchema) {
		t.Errorf("newer schema: %v, want ErrSchema", err)
	}

	// A migration missing below the highest applied (written in
	// parallel, merged later) is still applied.
	u2 := postgresURL(t)
	db, err = OpenPostgres(ctx, u2, opt)
	if err != nil {
		t.Fatal(err)
	}
	db.db.Exec(`DROP TABLE quarantine`)
	db.db.Exec(`DELETE FROM schema_migrations WHERE version = 1`)
	db.db.Exec(`DROP TABLE dmarc_records`)
	db.Close()
	if _, err := OpenPostgres(ctx, u2, opt); err == nil || !strings.Contains(err.Error(), "0001") {
		t.Errorf("re-applying 0001 over its tables: %v, want it tried (and failing)", err)
	}
}

func TestPostgresOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, bad := range []string{"mysql://x@127.0.0.1/db", "/var/lib/mxray/mxray.db", "postgres://", "host=127.0.0.1 dbname=x"} {
		if _, err := OpenPostgres(ctx, bad, Options{}); !errors.Is(err, ErrURL) {
			t.Errorf("%q: %v, want ErrURL", bad, err)
		}
	}
	// The password never appears in an error.
	u := postgresURL(t)
	pu, _ := url.Parse(u)
	pu.User = url.UserPassword("nobody", "s3cret")
	pu.Path = "/no_such_db"
	_, err := OpenPostgres(ctx, pu.String(), Options{})
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("wrong database: %v", err)
	}
}
