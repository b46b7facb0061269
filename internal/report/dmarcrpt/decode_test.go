package dmarcrpt

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

const rfc9990Report = `<?xml version="1.0" encoding="UTF-8"?>
<feedback xmlns="urn:ietf:params:xml:ns:dmarc-2.0">
  <version>1.0</version>
  <report_metadata>
    <org_name>Reporter Inc.</org_name>
    <email>dmarc@reporter.example</email>
    <extra_contact_info>https://reporter.example/dmarc</extra_contact_info>
    <report_id>r-42</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range>
    <error>one domain skipped</error>
    <generator>Reporter 1.2</generator>
  </report_metadata>
  <policy_published>
    <domain>example.com</domain>
    <adkim>s</adkim><aspf>r</aspf>
    <p>reject</p><sp>quarantine</sp><np>none</np>
    <fo>1</fo>
    <testing>n</testing>
    <discovery_method>treewalk</discovery_method>
    <psd>n</psd>
  </policy_published>
  <extension><x:thing xmlns:x="urn:x">ignored</x:thing></extension>
  <record>
    <row>
      <source_ip>2001:db8::1</source_ip>
      <count>7</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
        <reason><type>local_policy</type><comment>first</comment></reason>
        <reason><type>other</type></reason>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_to>example.net</envelope_to>
      <envelope_from>bounce.example.com</envelope_from>
      <header_from>example.com</header_from>
    </identifiers>
    <auth_results>
      <dkim><domain>example.com</domain><selector>s1</selector><result>fail</result><human_result>bad sig</human_result></dkim>
      <dkim><domain>esp.example</domain><selector>s2</selector><result>pass</result></dkim>
      <spf><domain>bounce.example.com</domain><scope>mfrom</scope><result>softfail</result><human_result>~all</human_result></spf>
      <spf><domain>mx.example.com</domain><scope>helo</scope><result>pass</result></spf>
    </auth_results>
  </record>
  <record>
    <row><source_ip>192.0.2.9</source_ip><count>3</count>
      <policy_evaluated><disposition>pass</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.com</header_from></identifiers>
    <auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results>
  </record>
</feedback>
`

func TestParseRFC9990(t *testing.T) {
	got, err := Parse(strings.NewReader(rfc9990Report), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Report{
		Feedback: Feedback{
			Version:   "1.0",
			Namespace: Namespace,
			Metadata: ReportMetadata{
				OrgName:          "Reporter Inc.",
				Email:            "dmarc@reporter.example",
				ExtraContactInfo: "https://reporter.example/dmarc",
				ReportID:         "r-42",
				DateRange: DateRange{
					Begin: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC),
					End:   time.Date(2023, 11, 15, 22, 13, 19, 0, time.UTC),
				},
				Errors:    []string{"one domain skipped"},
				Generator: "Reporter 1.2",
			},
			Policy: PolicyPublished{
				Domain: "example.com", ADKIM: AlignmentStrict, ASPF: AlignmentRelaxed,
				P: PolicyReject, SP: PolicyQuarantine, NP: PolicyNone, FO: "1",
				Testing: TestingNo, DiscoveryMethod: DiscoveryTreewalk, PSD: PSDNo,
			},
			Records:  2,
			Messages: 10,
		},
		Records: []Record{
			{
				SourceIP: netip.MustParseAddr("2001:db8::1"),
				Count:    7,
				PolicyEvaluated: PolicyEvaluated{
					Disposition: DispositionQuarantine, DKIM: DMARCFail, SPF: DMARCFail,
					Reasons: []Reason{{Type: ReasonLocalPolicy, Comment: "first"}, {Type: ReasonOther}},
				},
				Identifiers: Identifiers{HeaderFrom: "example.com", EnvelopeFrom: "bounce.example.com", EnvelopeTo: "example.net"},
				DKIM: []DKIMAuthResult{
					{Domain: "example.com", Selector: "s1", Result: DKIMFail, HumanResult: "bad sig"},
					{Domain: "esp.example", Selector: "s2", Result: DKIMPass},
				},
				SPF: []SPFAuthResult{
					{Domain: "bounce.example.com", Scope: SPFScopeMFROM, Result: SPFSoftfail, HumanResult: "~all"},
					{Domain: "mx.example.com", Scope: SPFScopeHELO, Result: SPFPass},
				},
			},
			{
				SourceIP:        netip.MustParseAddr("192.0.2.9"),
				Count:           3,
				PolicyEvaluated: PolicyEvaluated{Disposition: DispositionPass, DKIM: DMARCPass, SPF: DMARCPass},
				Identifiers:     Identifiers{HeaderFrom: "example.com"},
				SPF:             []SPFAuthResult{{Domain: "example.com", Result: SPFPass}},
			},
		},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("Parse (-want +got):\n%s", diff)
	}
}

// minimal builds an RFC 7489 report around one record body, with header
// and policy replaceable for the error cases.
func minimal(meta, policy, records string) string {
	if meta == "" {
		meta = `<report_metadata><org_name>org</org_name><email>a@org.example</email><report_id>id1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata>`
	}
	if policy == "" {
		policy = `<policy_published><domain>example.com</domain><p>none</p></policy_published>`
	}
	if records == "" {
		records = `<record><row><source_ip>192.0.2.1</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers><auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>`
	}
	return "<feedback>" + meta + policy + records + "</feedback>"
}

// TestTolerated checks inputs that real reporters send and that must parse,
// and what the parser makes of them.
func TestTolerated(t *testing.T) {
	type check struct {
		reporter    string
		disposition Disposition
		dkim        DMARCResult
		spfResult   SPFResult
		warnings    []string
	}
	okRecord := check{reporter: "org", disposition: DispositionNone, dkim: DMARCPass, spfResult: SPFPass}
	tests := []struct {
		name string
		in   string
		want check
	}{
		{"RFC 7489 no namespace", minimal("", "", ""), okRecord},
		{"byte order mark", "\uFEFF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + minimal("", "", ""), okRecord},
		{"surrounding whitespace and comments", "\n\n  <!-- hi -->\n" + minimal("", "", "") + "\n\n", okRecord},
		{"prefixed namespace", strings.ReplaceAll(strings.ReplaceAll(minimal("", "", ""), "<", "<d:"), "<d:/", "</d:"), okRecord},
		{"upper-case values normalised", strings.NewReplacer("<disposition>none", "<disposition>None", "<dkim>pass", "<dkim>PASS", "<result>pass", "<result>Pass").Replace(minimal("", "", "")), okRecord},
		{
			"unknown values kept and flagged",
			strings.NewReplacer("<disposition>none", "<disposition>delivered", "<result>pass", "<result>unknown").Replace(minimal("", "", "")),
			check{reporter: "org", disposition: "delivered", dkim: DMARCPass, spfResult: "unknown", warnings: []string{
				`policy_evaluated/disposition "delivered" is not a value the RFCs define`,
				`auth_results/spf/result "unknown" is not a value the RFCs define`,
			}},
		},
		{
			"empty org_name named by email",
			minimal(`<report_metadata><org_name> </org_name><email>noreply@Mail.example</email><report_id>x</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata>`, "", ""),
			check{reporter: "Mail.example", disposition: DispositionNone, dkim: DMARCPass, spfResult: SPFPass, warnings: []string{"report_metadata/org_name is empty; reporter named by the email domain"}},
		},
		{
			"wrapped in xs:schema and never closed",
			`<?xml version="1.0"?> <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">` + minimal("", "", "") + "\n",
			check{reporter: "org", disposition: DispositionNone, dkim: DMARCPass, spfResult: SPFPass, warnings: []string{"<feedback> is wrapped in <schema>"}},
		},
		{"latin-1 declared", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" + strings.Replace(minimal("", "", ""), "<org_name>org", "<org_name>org", 1), okRecord},
		{"extra elements ignored", strings.Replace(minimal("", "", ""), "<row>", "<row><vendor><deep><deeper>x</deeper></deep></vendor>", 1), okRecord},
		{"CDATA value", strings.Replace(minimal("", "", ""), "<header_from>example.com", "<header_from><![CDATA[example.com]]>", 1), okRecord},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Parse(strings.NewReader(tt.in), Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if len(rep.Records) != 1 {
				t.Fatalf("records = %d, want 1", len(rep.Records))
			}
			r := rep.Records[0]
			got := check{
				reporter:    rep.Metadata.Reporter(),
				disposition: r.PolicyEvaluated.Disposition,
				dkim:        r.PolicyEvaluated.DKIM,
				spfResult:   r.SPF[0].Result,
				warnings:    rep.Warnings,
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(check{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if r.Identifiers.HeaderFrom != "example.com" {
				t.Errorf("header_from = %q", r.Identifiers.HeaderFrom)
			}
			if got, want := r.PolicyEvaluated.Disposition.Known(), tt.want.disposition == DispositionNone; got != want {
				t.Errorf("Known() = %v, want %v", got, want)
			}
		})
	}
}

func TestLatin1(t *testing.T) {
	in := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" + minimal("", "", ""))
	in = bytes.Replace(in, []byte("<org_name>org"), []byte("<org_name>M\xfcller"), 1)
	rep, err := Parse(bytes.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Metadata.OrgName != "Müller" {
		t.Errorf("org_name = %q, want Müller", rep.Metadata.OrgName)
	}
}

func TestRejected(t *testing.T) {
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	tests := []struct {
		name    string
		in      string
		lim     Limits
		want    error
		message string // part of the error text a user will read
	}{
		{"empty", "", Limits{}, ErrNotFeedback, "no <feedback>"},
		{"not XML", "hello", Limits{}, ErrNotFeedback, ""},
		{"other root", "<tlsrpt><a/></tlsrpt>", Limits{}, ErrNotFeedback, "root element is <tlsrpt>"},
		{"doctype", `<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY a "b">]>` + minimal("", "", ""), Limits{}, ErrDoctype, "DOCTYPE"},
		{"lone entity declaration", `<!ENTITY a "b">` + minimal("", "", ""), Limits{}, ErrDoctype, "ENTITY"},
		{"undefined entity", strings.Replace(minimal("", "", ""), "org</org", "&lol;</org", 1), Limits{}, ErrSyntax, "entity"},
		{"missing report_id", minimal(`<report_metadata><org_name>o</org_name><date_range><begin>1</begin><end>2</end></date_range></report_metadata>`, "", ""), Limits{}, ErrMissing, "report_id"},
		{"missing org_name and email", minimal(`<report_metadata><report_id>x</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata>`, "", ""), Limits{}, ErrMissing, "org_name"},
		{"missing date_range", minimal(`<report_metadata><org_name>o</org_name><report_id>x</report_id></report_metadata>`, "", ""), Limits{}, ErrMissing, "date_range"},
		{"missing end", minimal(`<report_metadata><org_name>o</org_name><report_id>x</report_id><date_range><begin>1</begin></date_range></report_metadata>`, "", ""), Limits{}, ErrMissing, "date_range"},
		{"bad begin", minimal(`<report_metadata><org_name>o</org_name><report_id>x</report_id><date_range><begin>yesterday</begin><end>2</end></date_range></report_metadata>`, "", ""), Limits{}, ErrInvalid, `"yesterday"`},
		{"missing metadata", "<feedback>" + `<policy_published><domain>d</domain></policy_published>` + "</feedback>", Limits{}, ErrMissing, "report_metadata"},
		{"missing policy domain", minimal("", "<policy_published><p>none</p></policy_published>", ""), Limits{}, ErrMissing, "policy_published/domain"},
		{"record before metadata", "<feedback><record/>" + "</feedback>", Limits{}, ErrRecordsFirst, ""},
		{"record without source_ip", minimal("", "", "<record><row><count>1</count></row></record>"), Limits{}, ErrMissing, "record 1: row/source_ip"},
		{"record without count", minimal("", "", "<record><row><source_ip>192.0.2.1</source_ip></row></record>"), Limits{}, ErrMissing, "record 1: row/count"},
		{"bad source_ip", minimal("", "", "<record><row><source_ip>mail.example</source_ip><count>1</count></row></record>"), Limits{}, ErrInvalid, `"mail.example"`},
		{"negative count", minimal("", "", "<record><row><source_ip>192.0.2.1</source_ip><count>-1</count></row></record>"), Limits{}, ErrInvalid, "count"},
		{"truncated", minimal("", "", "")[:200], Limits{}, ErrSyntax, "unexpected end"},
		{"mismatched tags", strings.Replace(minimal("", "", ""), "</email>", "</emial>", 1), Limits{}, ErrSyntax, "closed by"},
		{"unescaped angle bracket", strings.Replace(minimal("", "", ""), "example.com</header_from>", "bad<xml.net</header_from>", 1), Limits{}, ErrSyntax, "line 1"},
		{"invalid UTF-8", strings.Replace(minimal("", "", ""), "example.com</header_from>", "bad\xff</header_from>", 1), Limits{}, ErrSyntax, "UTF-8"},
		{"UTF-16", "\xff\xfe<\x00f\x00", Limits{}, ErrCharset, "UTF-16"},
		{"unknown charset", `<?xml version="1.0" encoding="KOI8-R"?>` + minimal("", "", ""), Limits{}, ErrCharset, "KOI8-R"},
		{"too deep", minimal("", "", "<record>"+deep+"</record>"), Limits{MaxDepth: 20}, ErrTooDeep, ""},
		{"field too long", minimal("", "", "<record><row><source_ip>"+strings.Repeat("1", 100)+"</source_ip></row></record>"), Limits{MaxFieldLen: 50}, ErrFieldTooLong, "<source_ip>"},
		{"too many records", minimal("", "", strings.Repeat(`<record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record>`, 3)), Limits{MaxRecords: 2}, ErrTooManyRecords, ""},
		{"too large", minimal("", "", ""), Limits{MaxBytes: 100}, ErrTooLarge, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := Parse(strings.NewReader(tt.in), tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			t.Log(err)
			if rep != nil {
				t.Errorf("Parse returned a report with an error")
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

// TestSyntaxErrorLine checks that the line named in a syntax error is the
// input's, although the decoder drops indentation before encoding/xml sees it.
func TestSyntaxErrorLine(t *testing.T) {
	in := "<feedback>\n  <report_metadata>\n    <org_name>o</org_name>\n    <email><bad@x></email>\n"
	_, err := Parse(strings.NewReader(in), Limits{})
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "line 4") {
		t.Errorf("error = %v, want ErrSyntax on line 4", err)
	}
}

func TestDecoderStreaming(t *testing.T) {
	d := NewDecoder(strings.NewReader(rfc9990Report), Limits{})
	fb, err := d.Feedback()
	if err != nil {
		t.Fatal(err)
	}
	if fb.Metadata.ReportID != "r-42" || fb.Policy.Domain != "example.com" || fb.Records != 0 {
		t.Fatalf("header before records = %+v", fb)
	}
	var ips []string
	for {
		rec, err := d.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ips = append(ips, rec.SourceIP.String())
	}
	if diff := cmp.Diff([]string{"2001:db8::1", "192.0.2.9"}, ips); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	if fb.Records != 2 || fb.Messages != 10 {
		t.Errorf("records, messages = %d, %d; want 2, 10", fb.Records, fb.Messages)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Errorf("Next after end = %v, want io.EOF", err)
	}
}

func TestNamespacePrefix(t *testing.T) {
	in := `<d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">` + strings.TrimSuffix(strings.TrimPrefix(minimal("", "", ""), "<feedback>"), "</feedback>") + `</d:feedback>`
	rep, err := Parse(strings.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Namespace != Namespace || len(rep.Records) != 1 {
		t.Errorf("namespace %q, %d records", rep.Namespace, len(rep.Records))
	}
}

// TestReadError checks that a failing input is reported as such, not as
// malformed XML: the caller may retry a read, not a bad report.
func TestReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := io.MultiReader(strings.NewReader(minimal("", "", "")[:100]), iotest.ErrReader(boom))
	_, err := Parse(r, Limits{})
	if !errors.Is(err, boom) || errors.Is(err, ErrSyntax) {
		t.Errorf("Parse = %v, want the reader's error", err)
	}
}

func TestDecodeCallbackError(t *testing.T) {
	stop := errors.New("stop")
	n := 0
	_, err := Decode(strings.NewReader(rfc9990Report), Limits{}, func(*Record) error {
		n++
		return stop
	})
	if err != stop || n != 1 {
		t.Errorf("Decode = %v after %d calls, want the callback's error after 1", err, n)
	}
}

// recordStream produces a report of n records without ever holding it.
type recordStream struct {
	n, i int
	buf  bytes.Buffer
}

func (s *recordStream) Read(p []byte) (int, error) {
	for s.buf.Len() < len(p) && s.i <= s.n {
		switch {
		case s.i == 0:
			s.buf.WriteString(strings.TrimSuffix(minimal("", "", " "), " </feedback>"))
		case s.i == s.n:
			s.buf.WriteString("</feedback>")
		}
		if s.i < s.n {
			fmt.Fprintf(&s.buf, "<record><row><source_ip>10.%d.%d.%d</source_ip><count>1</count><policy_evaluated><disposition>none</disposition></policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers><auth_results><spf><domain>example.com</domain><result>pass</result></spf></auth_results></record>\n", s.i>>16&255, s.i>>8&255, s.i&255)
		}
		s.i++
	}
	return s.buf.Read(p)
}

// TestFlatMemory decodes 200,000 records and checks that the heap does not
// grow with them: a large reporter's daily report must not need memory in
// proportion to its size.
func TestFlatMemory(t *testing.T) {
	const n = 200_000
	const budget = 24 << 20
	// Keeping every record would take more than the budget, so the check
	// below can fail.
	if kept := uintptr(n) * (unsafe.Sizeof(Record{}) + unsafe.Sizeof(SPFAuthResult{})); kept < budget {
		t.Fatalf("keeping %d records takes only %d bytes; the budget proves nothing", n, kept)
	}
	var peak uint64
	var ms runtime.MemStats
	fb, err := Decode(&recordStream{n: n}, Limits{}, func(r *Record) error {
		if r.Count != 1 {
			return fmt.Errorf("count %d", r.Count)
		}
		if r.SourceIP.As4()[3] == 0 && r.SourceIP.As4()[2]%16 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fb.Records != n || fb.Messages != n {
		t.Fatalf("records = %d, messages = %d; want %d", fb.Records, fb.Messages, n)
	}
	if peak == 0 || peak > budget {
		t.Errorf("heap while streaming %d records peaked at %d bytes, want under %d", n, peak, budget)
	}
	t.Logf("heap peak %d bytes", peak)
}

func TestReporter(t *testing.T) {
	tests := []struct {
		m    ReportMetadata
		want string
	}{
		{ReportMetadata{OrgName: "google.com", Email: "x@y"}, "google.com"},
		{ReportMetadata{Email: "noreply@dmarc.example"}, "dmarc.example"},
		{ReportMetadata{Email: "bare"}, "bare"},
	}
	for _, tt := range tests {
		if got := tt.m.Reporter(); got != tt.want {
			t.Errorf("Reporter(%+v) = %q, want %q", tt.m, got, tt.want)
		}
	}
}

func TestSyntheticParses(t *testing.T) {
	rep, err := Parse(bytes.NewReader(synthetic(1000)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Records) != 1000 || len(rep.Warnings) != 0 {
		t.Fatalf("records = %d, warnings = %v", len(rep.Records), rep.Warnings)
	}
	if got := rep.Records[5].SourceIP.String(); got != "2001:db8::5" {
		t.Errorf("record 5 source = %s", got)
	}
}

// TestChunking checks that how the input arrives does not change the
// result: with one byte per read no indentation is squeezed out, with the
// whole input at once all of it is.
func TestChunking(t *testing.T) {
	in := string(synthetic(50))
	want, err := Parse(strings.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]io.Reader{
		"one byte": iotest.OneByteReader(strings.NewReader(in)),
		"half":     iotest.HalfReader(strings.NewReader(in)),
	} {
		got, err := Parse(r, Limits{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("%s (-whole +chunked):\n%s", name, diff)
		}
	}
	bad := strings.Replace(in, "<count>3</count>", "<count>3</cuont>", 1)
	_, errWhole := Parse(strings.NewReader(bad), Limits{})
	_, errBytes := Parse(iotest.OneByteReader(strings.NewReader(bad)), Limits{})
	if errWhole == nil || errBytes == nil || errWhole.Error() != errBytes.Error() {
		t.Errorf("errors differ by chunking:\n%v\n%v", errWhole, errBytes)
	}
}
