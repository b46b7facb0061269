package store

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/report/dmarcrpt"
)

var testNow = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "data"), Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

type testReport struct {
	*dmarcrpt.Report
	meta Meta
}

// synthetic builds an aggregate report for example.com with n records:
// every third fails both DKIM and SPF and is quarantined.
func synthetic(id string, n int) *testReport {
	r := &dmarcrpt.Report{}
	r.Metadata = dmarcrpt.ReportMetadata{OrgName: "bench.example", Email: "dmarc@bench.example", ReportID: id,
		DateRange: dmarcrpt.DateRange{Begin: time.Unix(1700000000, 0).UTC(), End: time.Unix(1700086399, 0).UTC()}}
	pct := 100
	r.Policy = dmarcrpt.PolicyPublished{Domain: "example.com", ADKIM: "r", ASPF: "r", P: "reject", SP: "reject", Pct: &pct}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{198, 51, byte(i / 256), byte(i)})
		if i%5 == 0 {
			ip = netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))
		}
		rec := dmarcrpt.Record{SourceIP: ip, Count: uint64(i%7 + 1),
			PolicyEvaluated: dmarcrpt.PolicyEvaluated{Disposition: "none", DKIM: "pass", SPF: "fail"},
			Identifiers:     dmarcrpt.Identifiers{HeaderFrom: "example.com", EnvelopeFrom: "bounce.example.com"},
			DKIM:            []dmarcrpt.DKIMAuthResult{{Domain: "example.com", Selector: fmt.Sprintf("s%d", i%3), Result: "pass"}},
			SPF:             []dmarcrpt.SPFAuthResult{{Domain: "bounce.example.com", Scope: "mfrom", Result: "softfail"}},
		}
		if i%3 == 2 {
			rec.PolicyEvaluated = dmarcrpt.PolicyEvaluated{Disposition: "quarantine", DKIM: "fail", SPF: "fail",
				Reasons: []dmarcrpt.Reason{{Type: "local_policy", Comment: "seen \"before\""}}}
			rec.DKIM[0].Result = "fail"
		}
		r.Records = append(r.Records, rec)
		r.Messages += rec.Count
	}
	r.Feedback.Records = n
	return &testReport{Report: r, meta: Meta{Source: id + ".xml", Hash: Hash([]byte(id)), At: testNow}}
}
