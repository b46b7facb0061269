package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/store"
)

// benchReport builds an aggregate report of n records shaped like a large
// reporter's (one DKIM and one SPF result per record, IPv4 and IPv6
// sources), gzip-compressed as reporters send it.
func benchReport(id, n int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>bench.example</org_name>
    <email>dmarc@bench.example</email>
    <report_id>bench-%d</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
`, id)
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("198.51.%d.%d", i/256%256, i%256)
		if i%5 == 0 {
			ip = fmt.Sprintf("2001:db8::%x", i)
		}
		fmt.Fprintf(&b, `  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>
    </row>
    <identifiers><envelope_from>bounce.example.com</envelope_from><header_from>example.com</header_from></identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><selector>s%d</selector><result>pass</result></dkim>
      <spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>softfail</result></spf>
    </auth_results>
  </record>
`, ip, i%7+1, i%3)
	}
	b.WriteString("</feedback>\n")
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(b.Bytes())
	zw.Close()
	return z.Bytes()
}

// BenchmarkImport measures the whole path from bytes to committed rows:
// decode (gzip), parse, store. records/s is the figure to compare with
// bench/reports/import.sh.
func BenchmarkImport(b *testing.B) {
	for _, c := range []struct {
		name             string
		reports, records int
	}{
		{"1x26000", 1, 26000},
		{"200x50", 200, 50},
	} {
		b.Run(c.name, func(b *testing.B) {
			blobs := make([][]byte, c.reports)
			for i := range blobs {
				blobs[i] = benchReport(i, c.records)
			}
			ctx := context.Background()
			b.ResetTimer()
			var total int
			var elapsed time.Duration
			for range b.N {
				b.StopTimer()
				db, err := store.Open(ctx, filepath.Join(b.TempDir(), "data"), store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				im := &Importer{Store: db}
				b.StartTimer()
				start := time.Now()
				st, err := im.Import(ctx, func(_ context.Context, fn func(Blob) error) error {
					for i, data := range blobs {
						if err := fn(Blob{Origin: fmt.Sprintf("r%d.xml.gz", i), Data: data}); err != nil {
							return err
						}
					}
					return nil
				})
				elapsed += time.Since(start)
				if err != nil || st.Records != c.reports*c.records {
					b.Fatalf("imported %+v, %v", st, err)
				}
				total += st.Records
				b.StopTimer()
				db.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
		})
	}
}
