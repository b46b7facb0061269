package store

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A group stores several reports in one transaction, a savepoint each: a
// report that fails midway is rolled back alone, a quarantine item joins
// the group, dedup sees the reports stored earlier in the group, and
// nothing is visible until the group commits.
func TestGroupSavepoints(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		g := db.Group(ctx)
		defer g.Rollback()
		first, second, third := synthetic("first", 100), synthetic("second", 100), synthetic("third", 3)

		s1, err := g.SaveDMARC(ctx, first.meta, first.Report)
		if err != nil || s1.Duplicate {
			t.Fatalf("first: %+v, %v", s1, err)
		}
		// The second report fails after some of its records are written:
		// a count the store cannot keep, in its second batch.
		second.Records[80].Count = math.MaxUint64
		if _, err := g.SaveDMARC(ctx, second.meta, second.Report); !errors.Is(err, ErrInvalid) {
			t.Fatalf("second: %v, want ErrInvalid", err)
		}
		qid, already, err := g.Quarantine(ctx, QuarantineItem{At: testNow, Origin: "second.xml", Reason: "count too large", Raw: []byte("second")})
		if err != nil || already {
			t.Fatalf("quarantine: %d %v %v", qid, already, err)
		}
		// The first report again, in the same uncommitted group: a duplicate.
		if dup, err := g.SaveDMARC(ctx, first.meta, first.Report); err != nil || !dup.Duplicate || dup.ID != s1.ID {
			t.Fatalf("first again: %+v, %v; want a duplicate of %d", dup, err, s1.ID)
		}
		// A streamed report, rolled back (its parse failed).
		tx, _, err := g.BeginDMARC(ctx, Meta{Source: "broken.xml", Hash: Hash([]byte("broken")), At: testNow}, &third.Feedback)
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Add(third.Records); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		s3, err := g.SaveDMARC(ctx, third.meta, third.Report)
		if err != nil {
			t.Fatal(err)
		}
		if reports, records := g.Len(); reports != 3 || records != 103 {
			t.Errorf("Len = %d reports, %d records; want 3 (two reports and the quarantine item), 103", reports, records)
		}

		// Nothing is visible to other connections before the commit.
		if id, err := db.Seen(ctx, first.meta.Hash); err != nil || id != 0 {
			t.Errorf("before the commit, Seen(first) = %d, %v; want 0", id, err)
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
		if n, _ := g.Len(); n != 0 {
			t.Errorf("Len after Commit = %d", n)
		}

		sum, err := db.Summary(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Totals{DMARC: 2, Records: 103, Messages: int64(first.Messages + third.Messages), Quarantined: 1}, sum.Totals); diff != "" {
			t.Errorf("totals (-want +got):\n%s", diff)
		}
		for _, c := range []struct {
			id   int64
			want string
			n    int
		}{{s1.ID, "first", 100}, {s3.ID, "third", 3}} {
			r, err := db.Report(ctx, c.id, 0)
			if err != nil || r.ReportID != c.want || len(r.DMARC.Records) != c.n {
				t.Errorf("report %d: %+v, %v; want %s with %d records", c.id, r, err, c.want, c.n)
			}
		}
		if id, _ := db.Seen(ctx, second.meta.Hash); id != 0 {
			t.Errorf("the failed report is held as %d", id)
		}
		if id, _ := db.Seen(ctx, Hash([]byte("broken"))); id != 0 {
			t.Errorf("the rolled back report is held as %d", id)
		}
	})
}

// A group that never commits (a crash, a store failure) leaves nothing;
// storing its reports again then works, and what was committed before is
// a duplicate.
func TestGroupLostThenRedone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		a, b := synthetic("a", 10), synthetic("b", 10)
		g := db.Group(ctx)
		if _, err := g.SaveDMARC(ctx, a.meta, a.Report); err != nil {
			t.Fatal(err)
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
		if _, err := g.SaveDMARC(ctx, b.meta, b.Report); err != nil {
			t.Fatal(err)
		}
		g.Rollback() // lost

		g = db.Group(ctx)
		defer g.Rollback()
		sa, err := g.SaveDMARC(ctx, a.meta, a.Report)
		if err != nil || !sa.Duplicate {
			t.Errorf("a again: %+v, %v; want a duplicate", sa, err)
		}
		sb, err := g.SaveDMARC(ctx, b.meta, b.Report)
		if err != nil || sb.Duplicate {
			t.Errorf("b again: %+v, %v; want it stored", sb, err)
		}
		if err := g.Commit(); err != nil {
			t.Fatal(err)
		}
		sum, err := db.Summary(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Totals.DMARC != 2 || sum.Totals.Records != 20 {
			t.Errorf("totals %+v, want 2 reports of 10 records", sum.Totals)
		}
	})
}

// One report at a time: a second report cannot begin while a DMARCTx is
// open, nor can the group commit.
func TestGroupOneReportAtATime(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	g := db.Group(ctx)
	defer g.Rollback()
	a, b := synthetic("a", 2), synthetic("b", 2)
	tx, _, err := g.BeginDMARC(ctx, a.meta, &a.Feedback)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SaveDMARC(ctx, b.meta, b.Report); !errors.Is(err, ErrGroup) {
		t.Errorf("second report while one is open: %v, want ErrGroup", err)
	}
	if err := g.Commit(); !errors.Is(err, ErrGroup) {
		t.Errorf("commit while a report is open: %v, want ErrGroup", err)
	}
	if err := tx.Add(a.Records); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(&a.Feedback); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(&a.Feedback); !errors.Is(err, ErrGroup) {
		t.Errorf("second Commit: %v, want ErrGroup", err)
	}
	tx.Rollback() // after Commit: nothing
	if err := g.Commit(); err != nil {
		t.Fatal(err)
	}
	if r, err := db.Report(ctx, tx.ID(), 0); err != nil || len(r.DMARC.Records) != 2 {
		t.Errorf("report: %+v, %v", r, err)
	}
}
