package dmarcrpt

import (
	"bytes"
	"fmt"
	"testing"
)

// synthetic builds a report with n records shaped like those large
// reporters send: one DKIM and one SPF result per record, IPv4 and IPv6
// sources.
func synthetic(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata>
    <org_name>bench.example</org_name>
    <email>dmarc@bench.example</email>
    <report_id>bench-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct>
  </policy_published>
`)
	for i := 0; i < n; i++ {
		ip := fmt.Sprintf("198.51.%d.%d", i/256%256, i%256)
		if i%5 == 0 {
			ip = fmt.Sprintf("2001:db8::%x", i)
		}
		fmt.Fprintf(&b, `  <record>
    <row>
      <source_ip>%s</source_ip>
      <count>%d</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_from>bounce.example.com</envelope_from>
      <header_from>example.com</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>example.com</domain>
        <selector>s%d</selector>
        <result>pass</result>
      </dkim>
      <spf>
        <domain>bounce.example.com</domain>
        <scope>mfrom</scope>
        <result>softfail</result>
      </spf>
    </auth_results>
  </record>
`, ip, i%7+1, i%3)
	}
	b.WriteString("</feedback>\n")
	return b.Bytes()
}

// BenchmarkParse keeps every record in memory, as Parse does.
func BenchmarkParse(b *testing.B) {
	const n = 26000
	data := synthetic(n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Parse(bytes.NewReader(data), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if len(rep.Records) != n {
			b.Fatalf("records = %d, want %d", len(rep.Records), n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecode streams the records to a callback that drops them.
func BenchmarkDecode(b *testing.B) {
	const n = 26000
	data := synthetic(n)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		fb, err := Decode(bytes.NewReader(data), Limits{}, func(*Record) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		if fb.Records != n {
			b.Fatalf("records = %d, want %d", fb.Records, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}
