package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/store"
	"github.com/mxray/mxray/internal/testutil"
)

// reportsResult decodes the result line of a --json run.
func reportsResult(t *testing.T, out, command string, v any) {
	t.Helper()
	checkEnvelope(t, out, command)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), v); err != nil {
		t.Fatal(err)
	}
}

type importJSON struct {
	Blobs       int `json:"blobs"`
	Payloads    int `json:"payloads"`
	Imported    int `json:"imported"`
	DMARC       int `json:"dmarc_reports"`
	TLS         int `json:"tls_reports"`
	Failure     int `json:"failure_reports"`
	Bounces     int `json:"bounces"`
	Duplicates  int `json:"duplicates"`
	Quarantined int `json:"quarantined"`
	Records     int `json:"records"`
	Quarantine  []struct {
		Origin  string `json:"origin"`
		Reason  string `json:"reason"`
		Already bool   `json:"already_quarantined"`
	} `json:"quarantine"`
	Unreadable []string `json:"unreadable"`
}

// corpusSets are the report corpora; every file in them must end up
// imported, as a bounce, a duplicate, or quarantined with a reason.
var corpusSets = []string{"dmarc-aggregate", "smtp-tls-reports", "dmarc-failure-reports", "dsn-bounces"}

func TestReportsImportCorpus(t *testing.T) {
	data := t.TempDir()
	var dirs []string
	files := 0
	for _, set := range corpusSets {
		dir := testutil.Shared(t, set)
		dirs = append(dirs, dir)
		filepath.WalkDir(dir, func(_ string, e os.DirEntry, _ error) error {
			if !e.IsDir() {
				files++
			}
			return nil
		})
	}
	shared := filepath.Dir(dirs[0])
	args := append([]string{"reports", "import", "--data", data, "--json"}, dirs...)
	out, errOut, code := cli(t, args...)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (some files are quarantined)\n%s\n%s", code, out, errOut)
	}
	var res importJSON
	reportsResult(t, out, "reports import", &res)
	// Each file is one blob with one payload, but for
	// dsn-bounces/sisimai/bsd/rfc3464-28.eml: an mbox of two messages.
	blobs := files + 1
	want := importJSON{Blobs: blobs, Payloads: blobs, Imported: 61, DMARC: 34, TLS: 11, Failure: 16, Bounces: 139, Duplicates: 10,
		Quarantined: 26, Records: 2361}
	got := res
	got.Quarantine, got.Unreadable = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("import counts (-want +got):\n%s", diff)
	}
	if got.Imported+got.Bounces+got.Duplicates+got.Quarantined != blobs {
		t.Errorf("%d blobs, but %d outcomes", blobs, got.Imported+got.Bounces+got.Duplicates+got.Quarantined)
	}
	reasons := map[string]string{}
	for _, q := range res.Quarantine {
		if q.Reason == "" {
			t.Errorf("%s quarantined without a reason", q.Origin)
		}
		reasons[strings.TrimPrefix(q.Origin, shared+"/")] = q.Reason
	}
	for file, reason := range map[string]string{
		"dmarc-aggregate/parsedmarc/aggregate/invalid_xml.xml":   "dmarcrpt: malformed XML: line 5 in feedback/report_metadata/email",
		"dmarc-aggregate/parsedmarc/aggregate/invalid_utf_8.xml": "invalid UTF-8",
		"dmarc-aggregate/parsedmarc/empty.xml":                   "ingest: empty input",
		"dmarc-failure-reports/sisimai-arf/arf-22.eml":           "e-mail message without a report attachment",
		"dsn-bounces/sisimai/bsd/rfc3834-02.eml":                 "an auto-reply (Subject: Automatic reply), not a report",
		"dsn-bounces/sisimai/LICENSE":                            "not gzip, zip, XML, JSON or an e-mail message",
	} {
		if !strings.Contains(reasons[file], reason) {
			t.Errorf("%s: reason %q, want %q in it", file, reasons[file], reason)
		}
	}
	golden(t, "reports_import_corpus.jsonl", strings.ReplaceAll(out, shared, "SHARED"))

	// Importing twice changes nothing: every report is a duplicate, every
	// quarantined file is already held.
	sum1, _, _ := cli(t, "reports", "summary", "--data", data, "--json", "--top", "100")
	out, _, code = cli(t, args...)
	var again importJSON
	reportsResult(t, out, "reports import", &again)
	if code != 1 || again.Imported != 0 || again.Bounces != 0 || again.Records != 0 ||
		again.Duplicates != res.Imported+res.Bounces+res.Duplicates || again.Quarantined != res.Quarantined {
		t.Errorf("second import: exit %d, %+v", code, again)
	}
	for _, q := range again.Quarantine {
		if !q.Already {
			t.Errorf("%s quarantined anew", q.Origin)
		}
	}
	sum2, _, _ := cli(t, "reports", "summary", "--data", data, "--json", "--top", "100")
	if sum1 != sum2 {
		t.Errorf("the second import changed the summary")
	}

	// Specific reports, as "reports show" prints them.
	db, err := store.Open(context.Background(), data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := func(source string) int64 {
		t.Helper()
		var n int64
		for i := int64(1); i < 400; i++ {
			r, err := db.Report(context.Background(), i, 1)
			if err != nil {
				break
			}
			if strings.HasSuffix(r.Source, source) {
				n = i
			}
		}
		if n == 0 {
			t.Fatalf("no report from %s", source)
		}
		return n
	}
	for _, tc := range []struct {
		source string
		text   []string
	}{
		{"mox/google.eml/google.com!ueber.net!1633996800!1634083199.zip/google.com!ueber.net!1633996800!1634083199.xml",
			[]string{"dmarc from google.com, id 13488712042596170873", "domain:   ueber.net", "2a02:2770:3:0:21a:4aff:fea1:8a7b"}},
		{"dmarc-report-viewer/rfc-example.json", []string{"tls from Company-X", "policy sts for company-y.example: 5326 sessions ok, 303 failed",
			"certificate-expired"}},
		{"sisimai-arf/arf-01.eml", []string{"failure from", "feedback: "}},
		{"bsd/lhost-postfix-01.eml", []string{"bounce from", "r@p351355.pool.example.ne.jp failed 5.1.1"}},
	} {
		out, errOut, code := cli(t, "reports", "show", "--data", data, strconv.FormatInt(id(tc.source), 10))
		if code != 0 {
			t.Errorf("show %s: exit %d: %s", tc.source, code, errOut)
		}
		for _, s := range tc.text {
			if !strings.Contains(out, s) {
				t.Errorf("show %s lacks %q:\n%s", tc.source, s, out)
			}
		}
	}
}

func TestReportsSummaryGolden(t *testing.T) {
	data := t.TempDir()
	if _, errOut, code := cli(t, "reports", "import", "--data", data, testutil.Shared(t, "dmarc-aggregate"), testutil.Shared(t, "smtp-tls-reports")); code != 1 {
		t.Fatalf("import: exit %d: %s", code, errOut)
	}
	out, errOut, code := cli(t, "reports", "summary", "--data", data, "--json", "--top", "3")
	if code != 0 {
		t.Fatalf("summary: exit %d: %s", code, errOut)
	}
	golden(t, "reports_summary.jsonl", out)

	out, _, code = cli(t, "reports", "summary", "--data", data, "--domain", "UEBER.net")
	for _, s := range []string{"ueber.net  10 messages in 5 reports: DMARC pass 90.0% (DKIM aligned 90.0%, SPF aligned 90.0%)",
		"dispositions: none 9, reject 1", "176.113.22.155", "1 failing", "Mail.Ru"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary --domain lacks %q:\n%s", s, out)
		}
	}
	if code != 0 || strings.Contains(out, "example.com") {
		t.Errorf("summary --domain: exit %d, other domains shown:\n%s", code, out)
	}
	out, _, _ = cli(t, "reports", "summary", "--data", data, "--json")
	if !strings.Contains(out, `"domain":"test.xmox.nl"`) || !strings.Contains(out, `"result_type":"certificate-expired"`) {
		t.Errorf("TLS part of the summary missing:\n%.2000s", out)
	}
	// The corpus reports are years old: a recent window holds none.
	var res struct {
		Filter struct{ Since string } `json:"filter"`
		Totals store.Totals           `json:"totals"`
	}
	out, _, _ = cli(t, "reports", "summary", "--data", data, "--since", "30d", "--json")
	reportsResult(t, out, "reports summary", &res)
	if res.Totals.DMARC != 0 || res.Totals.TLS != 0 || res.Filter.Since == "" {
		t.Errorf("--since 30d: %+v", res)
	}
	out, _, _ = cli(t, "reports", "summary", "--data", data, "--since", "2019-09-17", "--json")
	reportsResult(t, out, "reports summary", &res)
	if res.Totals.DMARC == 0 || res.Totals.DMARC >= 34 {
		t.Errorf("--since 2019-09-17: %+v", res.Totals)
	}
	if _, errOut, code := cli(t, "reports", "summary", "--data", data, "--since", "soon"); code != 2 || !strings.Contains(errOut, "--since") {
		t.Errorf("bad --since: exit %d %s", code, errOut)
	}
}

const ptrReport = `<?xml version="1.0"?>
<feedback>
  <report_metadata><org_name>lab.example</org_name><email>d@lab.example</email><report_id>ptr-1</report_id>
    <date_range><begin>1700000000</begin><end>1700086399</end></date_range></report_metadata>
  <policy_published><domain>example.test</domain><p>reject</p></policy_published>
  <record><row><source_ip>127.0.0.1</source_ip><count>4</count>
    <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><spf><domain>example.test</domain><result>fail</result></spf></auth_results></record>
  <record><row><source_ip>192.0.2.9</source_ip><count>2</count>
    <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><spf><domain>example.test</domain><result>fail</result></spf></auth_results></record>
</feedback>
`

func TestReportsSummaryPTR(t *testing.T) {
	res := "--resolver=" + startLabDNS(t)
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "r.xml")
	os.WriteFile(file, []byte(ptrReport), 0o644)
	if _, errOut, code := cli(t, "reports", "import", "--data", data, file); code != 0 {
		t.Fatalf("import: exit %d: %s", code, errOut)
	}
	out, errOut, code := cli(t, "reports", "summary", "--data", data, res, "--ptr", "--timeout", "5s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, s := range []string{"127.0.0.1 (mx1.example.test)", "192.0.2.9 ", "DMARC pass 66.7%", "none 4, reject 2"} {
		if !strings.Contains(out, s) {
			t.Errorf("summary --ptr lacks %q:\n%s", s, out)
		}
	}
	// Without --ptr nothing is looked up.
	out, _, _ = cli(t, "reports", "summary", "--data", data, "--resolver=127.0.0.1:1")
	if strings.Contains(out, "mx1.example.test") {
		t.Errorf("PTR looked up without --ptr:\n%s", out)
	}
}

// mboxOf wraps messages in an mbox, escaping From lines (mboxrd).
func mboxOf(msgs ...[]byte) []byte {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString("From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n")
		for _, line := range strings.SplitAfter(strings.ReplaceAll(string(m), "\r\n", "\n"), "\n") {
			if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
				b.WriteString(">")
			}
			b.WriteString(line)
		}
		b.WriteString("\n\n")
	}
	return []byte(b.String())
}

func TestReportsImportMboxAndMaildir(t *testing.T) {
	read := func(set, name string) []byte {
		b, err := os.ReadFile(filepath.Join(testutil.Shared(t, set), name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	google := read("dmarc-aggregate", "mox/google.eml")
	yahoo := read("dmarc-aggregate", "mox/yahoo.eml")
	tls := read("smtp-tls-reports", "mox/example.eml")
	bounce := read("dsn-bounces", "sisimai/bsd/lhost-postfix-01.eml")
	auto := read("dsn-bounces", "sisimai/bsd/rfc3834-02.eml")

	dir := t.TempDir()
	box := filepath.Join(dir, "reports.mbox")
	os.WriteFile(box, mboxOf(google, yahoo, bounce, auto), 0o600)
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"cur", "new", "tmp", ".DMARC/cur", ".DMARC/new", ".DMARC/tmp"} {
		os.MkdirAll(filepath.Join(md, sub), 0o700)
	}
	os.WriteFile(filepath.Join(md, "cur", "1700000000.1.host:2,S"), tls, 0o600)
	os.WriteFile(filepath.Join(md, "new", "1700000001.2.host"), google, 0o600) // the same report as in the mbox
	os.WriteFile(filepath.Join(md, "tmp", "1700000002.3.host"), []byte("half written"), 0o600)
	os.WriteFile(filepath.Join(md, ".DMARC", "cur", "1700000003.4.host:2,"), read("dmarc-aggregate", "mox/outlook.eml"), 0o600)

	data := t.TempDir()
	out, errOut, code := cli(t, "reports", "import", "--data", data, "--json", box, md)
	if code != 1 {
		t.Fatalf("exit %d, want 1 for the quarantined auto-reply\n%s\n%s", code, out, errOut)
	}
	var res importJSON
	reportsResult(t, out, "reports import", &res)
	want := importJSON{Blobs: 7, Payloads: 7, Imported: 4, DMARC: 3, TLS: 1, Bounces: 1, Duplicates: 1, Quarantined: 1, Records: 4}
	got := res
	got.Quarantine, got.Unreadable = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if len(res.Quarantine) != 1 || res.Quarantine[0].Origin != box+"#4" {
		t.Errorf("quarantine %+v, want the 4th mbox message", res.Quarantine)
	}
	out, _, _ = cli(t, "reports", "quarantine", "--data", data)
	if !strings.Contains(out, box+"#4") || !strings.Contains(out, "auto-reply") {
		t.Errorf("quarantine list:\n%s", out)
	}
}

func TestReportsImportExitCodes(t *testing.T) {
	data := t.TempDir()
	good := filepath.Join(t.TempDir(), "good.xml")
	os.WriteFile(good, []byte(ptrReport), 0o644)
	out, _, code := cli(t, "reports", "import", "--data", data, good)
	if code != 0 || !strings.Contains(out, "imported 1 reports (1 DMARC with 2 records") {
		t.Errorf("good file: exit %d\n%s", code, out)
	}
	out, _, code = cli(t, "reports", "import", "--data", data, good)
	if code != 0 || !strings.Contains(out, "1 duplicates") {
		t.Errorf("again: exit %d\n%s", code, out)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	out, errOut, code := cli(t, "reports", "import", "--data", data, good, missing)
	if code != 2 || !strings.Contains(out, "not readable") || !strings.Contains(out, "missing: no such file or directory") ||
		!strings.Contains(errOut, "1 path(s) could not be read") {
		t.Errorf("missing path: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, errOut, code := cli(t, "reports", "import", "--data", data); code != 2 || !strings.Contains(errOut, "requires at least 1 arg") {
		t.Errorf("no path: exit %d %s", code, errOut)
	}
	if _, errOut, code := cli(t, "reports", "import", "--data", data, "--db", "mysql://x", good); code != 2 || !strings.Contains(errOut, "--db") {
		t.Errorf("--db: exit %d %s", code, errOut)
	}
	if _, _, code := cli(t, "reports", "show", "--data", data, "99"); code != 2 {
		t.Errorf("show of a missing report: exit %d, want 2", code)
	}
	if _, _, code := cli(t, "reports", "show", "--data", data, "x"); code != 2 {
		t.Errorf("show x: exit %d, want 2", code)
	}
}

func TestReportsShowJSON(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "r.xml")
	os.WriteFile(file, []byte(ptrReport), 0o644)
	cli(t, "reports", "import", "--data", data, file)
	out, errOut, code := cli(t, "reports", "show", "--data", data, "1", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	out = regexp.MustCompile(`"imported_at":"[^"]+"`).ReplaceAllString(out, `"imported_at":"T"`)
	out = regexp.MustCompile(`"source":"[^"]+"`).ReplaceAllString(out, `"source":"r.xml"`)
	golden(t, "reports_show_dmarc.jsonl", out)
	out, _, _ = cli(t, "reports", "show", "--data", data, "1", "--records", "1")
	if !strings.Contains(out, "127.0.0.1") || strings.Contains(out, "192.0.2.9") || !strings.Contains(out, "1 more records") {
		t.Errorf("--records 1:\n%s", out)
	}
}

func TestReportsQuarantineReprocess(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	db, err := store.Open(ctx, data, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// An item an older mxray could not read, and one nobody can.
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	db.Quarantine(ctx, store.QuarantineItem{At: now, Origin: "old/r.xml", Reason: "unsupported then", Raw: []byte(ptrReport)})
	db.Quarantine(ctx, store.QuarantineItem{At: now, Origin: "junk.txt", Reason: "junk", Raw: []byte("just text")})
	db.Close()

	out, _, code := cli(t, "reports", "quarantine", "--data", data, "--json")
	if code != 0 {
		t.Fatalf("list: exit %d", code)
	}
	golden(t, "reports_quarantine.jsonl", out)
	out, _, code = cli(t, "reports", "quarantine", "--data", data, "--dump", "1")
	if code != 0 || out != ptrReport {
		t.Errorf("--dump 1: exit %d, %d bytes", code, len(out))
	}

	out, errOut, code := cli(t, "reports", "quarantine", "--data", data, "--reprocess")
	if code != 1 {
		t.Fatalf("reprocess: exit %d, want 1 (junk stays)\n%s\n%s", code, out, errOut)
	}
	for _, s := range []string{"#1 old/r.xml imported", "re-processed 2 items: 1 imported and removed, 1 still quarantined",
		"1 quarantined:", "#2  2026-01-02 03:04  9 bytes  junk.txt", "not gzip, zip, XML, JSON or an e-mail message"} {
		if !strings.Contains(out, s) {
			t.Errorf("reprocess output lacks %q:\n%s", s, out)
		}
	}
	out, _, _ = cli(t, "reports", "show", "--data", data, "1")
	if !strings.Contains(out, "dmarc from lab.example, id ptr-1") {
		t.Errorf("the re-processed report is not stored:\n%s", out)
	}
	// The remaining item keeps failing; nothing is stored twice.
	out, _, code = cli(t, "reports", "quarantine", "--data", data, "--reprocess", "--json")
	var res struct {
		Items       []store.QuarantineItem `json:"items"`
		Reprocessed []struct {
			ID       int64 `json:"id"`
			Imported bool  `json:"imported"`
		} `json:"reprocessed"`
	}
	reportsResult(t, out, "reports quarantine", &res)
	if code != 1 || len(res.Items) != 1 || len(res.Reprocessed) != 1 || res.Reprocessed[0].Imported {
		t.Errorf("second reprocess: exit %d %+v", code, res)
	}
}

func TestReportsImportTimeoutOnlyWhenGiven(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(t.TempDir(), "r.xml")
	os.WriteFile(file, []byte(ptrReport), 0o644)
	// The default --timeout does not apply; a given one does.
	if _, errOut, code := cli(t, "reports", "import", "--data", data, file); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	_, errOut, code := cli(t, "reports", "import", "--data", data, "--timeout", "1ns", file)
	if code != 3 || !strings.Contains(errOut, "deadline exceeded") {
		t.Errorf("--timeout 1ns: exit %d, %s; want 3", code, errOut)
	}
}

// TestReportsImportStdin is how Postfix's pipe transport hands mail to
// mxray: one message on standard input.
func TestReportsImportStdin(t *testing.T) {
	data := t.TempDir()
	msg, err := os.ReadFile(filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "mox", "google.eml"))
	if err != nil {
		t.Fatal(err)
	}
	importStdin := func() (map[string]any, int) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"reports", "import", "--data", data, "--json", "-"}, bytes.NewReader(msg), &out, &errb)
		if code == 2 || code == 3 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return checkEnvelope(t, out.String(), "reports import"), code
	}
	res, code := importStdin()
	if code != 0 || res["imported"] != float64(1) || res["dmarc_reports"] != float64(1) {
		t.Errorf("first import from stdin: exit %d, %v", code, res)
	}
	res, code = importStdin()
	if code != 0 || res["imported"] != float64(0) || res["duplicates"] != float64(1) {
		t.Errorf("second import from stdin: exit %d, %v; want a duplicate", code, res)
	}
}
