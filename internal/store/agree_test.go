package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

// The same corpus imported into SQLite and into PostgreSQL gives the same
// counts, the same summary, the same reports and the same quarantine;
// and a quarantined item that a newer mxray can read is reprocessed on
// both.
func TestEnginesAgree(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	paths := []string{
		filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "parsedmarc", "aggregate"), // includes invalid XML and invalid UTF-8
		filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "dmarc-report-viewer", "hardfail.xml"),
		filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "dmarc-report-viewer", "gmxnet.xml"),
		filepath.Join(testutil.Shared(t, "smtp-tls-reports"), "dmarc-report-viewer", "rfc-example.json"),
		filepath.Join(testutil.Shared(t, "dmarc-failure-reports"), "sisimai-arf", "arf-01.eml"),
		filepath.Join(testutil.Shared(t, "dsn-bounces"), "sisimai", "bsd", "rfc3464-03.eml"),
	}
	valid, err := os.ReadFile(filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "dmarc-report-viewer", "gmxnet.xml"))
	if err != nil {
		t.Fatal(err)
	}
	// The same report under another id: not a duplicate.
	late := bytes.Replace(valid, []byte("6d2be94cbabf4e838a3cf58fb4a42ab5"), []byte("reprocessed-1"), 1)
	type outcome struct {
		Stats      ingest.Stats
		Summary    *store.Summary
		Reports    []*store.Report
		Quarantine []store.QuarantineItem
		Reprocess  []ingest.Outcome
	}
	got := map[string]outcome{}
	for name, db := range store.OpenTestStores(t) {
		im := &ingest.Importer{Store: db, Now: func() time.Time { return now }, Workers: 2}
		st, err := im.Import(ctx, func(ctx context.Context, fn func(ingest.Blob) error) error {
			return ingest.Walk(ctx, paths, 64<<20, fn)
		})
		if err != nil {
			t.Fatalf("%s: import: %v", name, err)
		}
		var o outcome
		o.Stats = st
		if o.Summary, err = db.Summary(ctx, store.Filter{Top: 5}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for id := int64(1); id <= int64(st.Imported+st.Bounces); id++ {
			r, err := db.Report(ctx, id, 0)
			if err != nil {
				t.Fatalf("%s: report %d: %v", name, id, err)
			}
			o.Reports = append(o.Reports, r)
		}
		if o.Quarantine, err = db.QuarantineList(ctx); err != nil {
			t.Fatal(err)
		}

		// Quarantine + reprocess: an item that parses now is stored and
		// leaves the quarantine.
		qid, _, err := db.Quarantine(ctx, store.QuarantineItem{At: now, Origin: "late.xml", Reason: "unknown then", Raw: late})
		if err != nil {
			t.Fatal(err)
		}
		q, err := db.QuarantineGet(ctx, qid)
		if err != nil {
			t.Fatal(err)
		}
		outs, ok, err := im.Reprocess(ctx, q)
		if err != nil || !ok || len(outs) != 1 || outs[0].Result != ingest.Imported {
			t.Fatalf("%s: reprocess: %v %v %+v", name, ok, err, outs)
		}
		if err := db.QuarantineRemove(ctx, qid); err != nil {
			t.Fatal(err)
		}
		o.Reprocess = outs
		got[name] = o
	}
	sq, pg := got["sqlite"], got["postgres"]
	if sq.Stats.DMARC < 10 || sq.Stats.Quarantined < 2 || sq.Stats.TLS != 1 || sq.Stats.Failure != 1 || sq.Stats.Bounces != 1 || len(sq.Summary.Domains) < 5 {
		t.Errorf("the corpus did not import as expected: %+v, %d domains", sq.Stats, len(sq.Summary.Domains))
	}
	if diff := cmp.Diff(sq, pg); diff != "" {
		t.Errorf("SQLite and PostgreSQL differ (-sqlite +postgres):\n%s", diff)
	}
}
