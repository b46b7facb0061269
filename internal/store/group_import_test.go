package store_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

// bigReport is an aggregate report large enough to be streamed (records
// stored while later ones are parsed); with broken, a record near the end
// does not parse, after most records were written.
func bigReport(id string, n int, broken bool) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<feedback><report_metadata><org_name>big.example</org_name><email>d@big.example</email><report_id>%s</report_id>
<date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
<policy_published><domain>example.org</domain><p>none</p></policy_published>
`, id)
	for i := range n {
		if broken && i == n-10 {
			b.WriteString("<record><row><source_ip>not an ip</source_ip><count>1</count></row></record>\n")
		}
		fmt.Fprintf(&b, "<record><row><source_ip>192.0.2.%d</source_ip><count>%d</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.org</header_from></identifiers><auth_results><spf><domain>example.org</domain><result>pass</result></spf></auth_results></record>\n", i%256, i%5+1)
	}
	b.WriteString("</feedback>\n")
	return []byte(b.String())
}

// dense numbers the reports and the quarantine items 1, 2, … in the order
// of their ids. PostgreSQL's ids skip the values of inserts that were
// rolled back or met a conflict (a sequence is not transactional), and
// which duplicates meet a conflict depends on timing: whether the
// duplicate's worker asked Seen before or after the original was
// committed.
func dense(outcomes *[]ingest.Outcome, reports []*store.Report, quarantine []store.QuarantineItem) {
	rank := func(ids []int64) map[int64]int64 {
		slices.Sort(ids)
		m := map[int64]int64{}
		for i, id := range ids {
			m[id] = int64(i + 1)
		}
		return m
	}
	var rids, qids []int64
	for _, r := range reports {
		rids = append(rids, r.ID)
	}
	for _, q := range quarantine {
		qids = append(qids, q.ID)
	}
	rr, qr := rank(rids), rank(qids)
	for _, r := range reports {
		r.ID = rr[r.ID]
	}
	for i := range quarantine {
		quarantine[i].ID = qr[quarantine[i].ID]
	}
	for i, o := range *outcomes {
		if o.Result == ingest.Quarantined {
			(*outcomes)[i].ID = qr[o.ID]
		} else {
			(*outcomes)[i].ID = rr[o.ID]
		}
	}
}

// Importing in groups (a transaction for several reports, a savepoint
// each) stores exactly what importing each report in its own transaction
// stores: the same outcomes in the same order, the same counts, the same
// reports under the same ids (on PostgreSQL: in the same order, see
// dense) and the same quarantine, on both engines,
// over the whole shared corpus with, in the middle of it, a streamed
// report whose parse fails after most of its records were written, a
// report whose count the store refuses, and duplicates.
func TestGroupedImportMatchesAlone(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	var paths []string
	for _, set := range []string{"dmarc-aggregate", "smtp-tls-reports", "dmarc-failure-reports", "dsn-bounces"} {
		paths = append(paths, testutil.Shared(t, set))
	}
	gmx, err := os.ReadFile(testutil.Shared(t, "dmarc-aggregate") + "/dmarc-report-viewer/gmxnet.xml")
	if err != nil {
		t.Fatal(err)
	}
	huge := strings.Replace(string(bigReport("huge-count", 3, false)), "<count>2</count>", "<count>18446744073709551615</count>", 1)
	extra := []ingest.Blob{
		{Origin: "good-1.xml", Data: bigReport("good-1", 5000, false)},
		{Origin: "broken.xml", Data: bigReport("broken", 5000, true)},
		{Origin: "good-2.xml", Data: bigReport("good-2", 5000, false)},
		{Origin: "huge-count.xml", Data: []byte(huge)},
		{Origin: "small.xml", Data: bigReport("small", 3, false)},
		{Origin: "gmx-again.xml", Data: gmx},
		{Origin: "small-again.xml", Data: bigReport("small", 3, false)},
	}
	walk := func(ctx context.Context, fn func(ingest.Blob) error) error {
		half := len(paths) / 2
		if err := ingest.Walk(ctx, paths[:half], 64<<20, fn); err != nil {
			return err
		}
		for _, b := range extra {
			if err := fn(b); err != nil {
				return err
			}
		}
		return ingest.Walk(ctx, paths[half:], 64<<20, fn)
	}
	type result struct {
		Stats      ingest.Stats
		Outcomes   []ingest.Outcome
		Reports    []*store.Report
		Quarantine []store.QuarantineItem
	}
	for name := range store.OpenTestStores(t) {
		t.Run(name, func(t *testing.T) {
			run := func(t *testing.T, reports, records int) result {
				db := store.OpenTestStores(t)[name]
				var res result
				im := &ingest.Importer{Store: db, Now: func() time.Time { return now }, Workers: 2,
					GroupReports: reports, GroupRecords: records, Outcome: func(o ingest.Outcome) { res.Outcomes = append(res.Outcomes, o) }}
				if res.Stats, err = im.Import(ctx, walk); err != nil {
					t.Fatal(err)
				}
				for _, o := range res.Outcomes {
					if o.Result == ingest.Imported || o.Result == ingest.Bounced {
						r, err := db.Report(ctx, o.ID, 0)
						if err != nil {
							t.Fatalf("report %d: %v", o.ID, err)
						}
						res.Reports = append(res.Reports, r)
					}
				}
				if res.Quarantine, err = db.QuarantineList(ctx); err != nil {
					t.Fatal(err)
				}
				if name == "postgres" {
					dense(&res.Outcomes, res.Reports, res.Quarantine)
				}
				return res
			}
			alone := run(t, 1, 0)
			st := alone.Stats
			if st.Imported < 30 || st.Bounces < 50 || st.Quarantined < 5 || st.Duplicates < 2 {
				t.Errorf("the corpus did not import as expected: %+v", st)
			}
			byOrigin := map[string]ingest.Outcome{}
			for _, o := range alone.Outcomes {
				byOrigin[o.Origin] = o
			}
			for origin, want := range map[string]ingest.Result{"good-1.xml": ingest.Imported, "broken.xml": ingest.Quarantined,
				"good-2.xml": ingest.Imported, "huge-count.xml": ingest.Quarantined, "small.xml": ingest.Imported,
				"gmx-again.xml": ingest.Duplicate, "small-again.xml": ingest.Duplicate} {
				if got := byOrigin[origin]; got.Result != want {
					t.Errorf("%s: %+v, want %s", origin, got, want)
				}
			}
			for _, g := range []struct {
				name             string
				reports, records int
			}{{"default", 0, 0}, {"3 reports", 3, 0}, {"5000 records", 0, 5000}} {
				t.Run(g.name, func(t *testing.T) {
					if diff := cmp.Diff(alone, run(t, g.reports, g.records)); diff != "" {
						t.Errorf("grouped and alone differ (-alone +grouped):\n%s", diff)
					}
				})
			}
		})
	}
}
