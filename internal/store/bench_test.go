package store

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkImport measures storing aggregate report records on each
// engine (parsing excluded; see ingest's BenchmarkImport for the whole
// path).
func BenchmarkImport(b *testing.B) {
	for _, c := range []struct {
		name             string
		reports, records int
	}{
		{"1x26000", 1, 26000},
		{"200x50", 200, 50},
	} {
		for _, e := range engines {
			for _, g := range []struct {
				name string
				each bool
			}{{"", true}, {"/grouped", false}} {
				if c.reports == 1 && !g.each {
					continue
				}
				b.Run(e.name+"/"+c.name+g.name, func(b *testing.B) {
					ctx := context.Background()
					reps := make([]*testReport, c.reports)
					for i := range reps {
						reps[i] = synthetic(fmt.Sprintf("bench-%d", i), c.records)
					}
					var total int
					var elapsed time.Duration
					for range b.N {
						b.StopTimer()
						db := e.open(b)
						b.StartTimer()
						start := time.Now()
						if g.each {
							// A transaction per report.
							for _, r := range reps {
								if _, err := db.SaveDMARC(ctx, r.meta, r.Report); err != nil {
									b.Fatal(err)
								}
								total += len(r.Records)
							}
						} else {
							// A group of 100 reports per transaction, a
							// savepoint per report, as ingest stores them.
							grp := db.Group(ctx)
							for i, r := range reps {
								if _, err := grp.SaveDMARC(ctx, r.meta, r.Report); err != nil {
									b.Fatal(err)
								}
								total += len(r.Records)
								if (i+1)%100 == 0 || i == len(reps)-1 {
									if err := grp.Commit(); err != nil {
										b.Fatal(err)
									}
								}
							}
						}
						elapsed += time.Since(start)
					}
					b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
				})
			}
		}
	}
}
