package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mxray/mxray/internal/report/dmarcrpt"
	"github.com/mxray/mxray/internal/report/tlsrpt"
	"github.com/mxray/mxray/internal/testutil"
)

// outcome is what a corpus file must turn into, through Decode and the
// parser its payload kind calls for.
type outcome struct {
	notReport bool  // licence, SOURCE.md: must come out as KindUnknown
	decodeErr error // Decode must fail with this sentinel

	kind     Kind   // the single payload's kind
	parseErr error  // the parser must fail with this sentinel...
	errText  string // ...and say this

	org, id string // Reporter() and report id
	n       int    // records (DMARC) or policies (TLS)
	// first summarises the first record ("ip count disposition") or the
	// first policy ("type domain successful/failed failure-details").
	first string
	note  string // a note Decode must attach (tolerated oddity)
	warn  string // a warning the parser must give
}

func dmarcOK(org, id string, n int, first string) outcome {
	return outcome{kind: KindDMARCAggregate, org: org, id: id, n: n, first: first}
}

func tlsOK(org, id string, n int, first string) outcome {
	return outcome{kind: KindTLSReport, org: org, id: id, n: n, first: first}
}

var notReport = outcome{notReport: true}

var dmarcCorpus = map[string]outcome{
	"SOURCE.md":                      notReport,
	"dmarc-report-viewer/LICENSE":    notReport,
	"mox/LICENSE.MIT":                notReport,
	"parsedmarc/LICENSE":             notReport,
	"dmarc-report-viewer/acme.xml":   dmarcOK("acme.com", "9391651994964116463", 1, "72.150.241.94 2 none"),
	"dmarc-report-viewer/aol.xml":    dmarcOK("AOL", "website.com_1504828800", 1, "125.125.125.125 1 none"),
	"dmarc-report-viewer/gmxnet.xml": dmarcOK("GMX", "6d2be94cbabf4e838a3cf58fb4a42ab5", 1, "11.222.33.44 1 none"),
	"dmarc-report-viewer/google.xml": dmarcOK("google.com", "3166094538684628578", 1, "1.2.3.4 1 none"),
	"dmarc-report-viewer/hardfail.xml": func() outcome {
		o := dmarcOK("reporting org", "abcdef", 1, "42.42.42.42 1 quarantine")
		o.warn = `auth_results/spf/result "hardfail" is not a value the RFCs define`
		return o
	}(),
	"dmarc-report-viewer/mailru.xml":   dmarcOK("Mail.Ru", "28327321193681154911721360800", 1, "118.41.204.2 1 reject"),
	"dmarc-report-viewer/outlook.xml":  dmarcOK("Outlook.com", "a4f4ef0654474d3faa5dca167a34a86a", 2, "1.2.3.4 1 none"),
	"dmarc-report-viewer/solamora.xml": dmarcOK("solarmora.com", "9391651994964116463", 1, "203.0.113.209 2 none"),
	"dmarc-report-viewer/webde.xml":    dmarcOK("WEB.DE", "a3345c7cb5fd4f26aa62144bf449a54b", 1, "111.69.13.71 1 none"),
	"dmarc-report-viewer/yahoo.xml":    dmarcOK("Yahoo", "1709600619.487850", 1, "1.2.3.4 1 none"),
	"mox/google.eml":                   dmarcOK("google.com", "13488712042596170873", 2, "2a02:2770:3:0:21a:4aff:fea1:8a7b 2 none"),
	"mox/mailru.eml":                   dmarcOK("Mail.Ru", "82403907998914102491559779200", 1, "176.113.22.155 1 reject"),
	"mox/outlook.eml":                  dmarcOK("Outlook.com", "8be4eb9d89044800947965b8a040291c", 1, "46.19.35.124 2 none"),
	"mox/xs4all.eml":                   dmarcOK("xs4all.nl", "xs4all.nl.1627349682.9725429@dmarc-reports.xs4all.net", 1, "46.19.35.124 1 none"),
	"mox/yahoo.eml":                    dmarcOK("Yahoo! Inc.", "1559613526.307161", 1, "46.19.35.124 1 none"),
	// An empty org_name: the reporter is named by the email's domain.
	"parsedmarc/aggregate/!example.com!1538204542!1538463818.xml": func() outcome {
		o := dmarcOK("accurateplastics.com", "example.com:1538463741", 1, "12.20.127.122 1 none")
		o.warn = "report_metadata/org_name is empty; reporter named by the email domain"
		return o
	}(),
	"parsedmarc/aggregate/!large-example.com!1711897200!1711983600.xml": func() outcome {
		o := dmarcOK("accurateplastics.com", "example.com:1711897200", 2286, "12.20.121.1 1 none")
		o.warn = "report_metadata/org_name is empty; reporter named by the email domain"
		return o
	}(),
	"parsedmarc/aggregate/Report domain- borschow.com Submitter- google.com Report-ID- 949348866075514174.eml": dmarcOK("google.com", "949348866075514174", 1, "92.53.116.102 1 reject"),
	"parsedmarc/aggregate/addisonfoods.com!example.com!1536105600!1536191999.xml":                              dmarcOK("addisonfoods.com", "3ceb5548498640beaeb47327e202b0b9", 1, "109.203.100.17 1 none"),
	// <reason><type></type><comment></comment></reason> is dropped.
	"parsedmarc/aggregate/empty_reason.xml": func() outcome {
		o := dmarcOK("example.org", "20240125141224705995", 1, "198.51.100.123 2 none")
		o.warn = "empty policy_evaluated/reason ignored"
		return o
	}(),
	"parsedmarc/aggregate/estadocuenta1.infonacot.gob.mx!example.com!1536853302!1536939702!2940.xml.zip": dmarcOK("XYZ Corporation", "2940", 1, "148.243.137.254 1 none"),
	"parsedmarc/aggregate/example.net!example.com!1529366400!1529452799.xml":                             dmarcOK("example.net", "b043f0e264cf4ea995e93765242f6dfb", 1, "199.230.200.36 1 none"),
	"parsedmarc/aggregate/fastmail.com!example.com!1516060800!1516147199!102675056.xml.gz":               dmarcOK("FastMail Pty Ltd", "102675056", 1, "104.195.80.20 1 none"),
	// An unclosed <xs:schema> opening tag pasted before the report.
	"parsedmarc/aggregate/ikea.com!example.de!1538690400!1538776800.xml": func() outcome {
		o := dmarcOK("ikea.com", "aggr_report_2018_10_05_5bc7e9b4f3e8a", 1, "234.234.234.234 1 none")
		o.warn = "<feedback> is wrapped in <schema>"
		return o
	}(),
	"parsedmarc/aggregate/invalid_utf_8.xml": {kind: KindDMARCAggregate, parseErr: dmarcrpt.ErrSyntax, errText: "line 31 in feedback/record[1]/identifiers/header_from: invalid UTF-8"},
	"parsedmarc/aggregate/invalid_xml.xml":   {kind: KindDMARCAggregate, parseErr: dmarcrpt.ErrSyntax, errText: "line 5 in feedback/report_metadata/email"},
	// The gzip stream is followed by a CRLF.
	"parsedmarc/aggregate/mimecast-weird-gzip.eml": func() outcome {
		o := dmarcOK("Mimecast", "157a5fe30ec76f4bc0d8bccfc96c118a167a1280fee7c7465af5115e73082e5e", 1, "40.93.199.22 1 none")
		o.note = "2 bytes after the gzip stream ignored"
		return o
	}(),
	"parsedmarc/aggregate/old_draft_from_wiki.xml":                                      dmarcOK("acme.com", "9391651994964116463", 1, "72.150.241.94 2 none"),
	"parsedmarc/aggregate/protection.outlook.com!example.com!1711756800!1711843200.xml": dmarcOK("Outlook.com", "cfeafefe4129445e8c81018bd9177197", 1, "100.24.188.149 1 none"),
	"parsedmarc/aggregate/rfc9990-example.net!example.com!1700000000!1700086399.xml":    dmarcOK("example.net", "dmarcbis-test-report-001", 2, "198.51.100.1 5 none"),
	"parsedmarc/aggregate/rfc9990-sample.xml":                                           dmarcOK("Sample Reporter", "3v98abbp8ya9n3va8yr8oa3ya", 1, "192.0.2.123 123 pass"),
	"parsedmarc/aggregate/twilight.eml":                                                 dmarcOK("google.com", "1627703331531660819", 1, "87.106.127.28 1 none"),
	"parsedmarc/aggregate/usssa.com!example.com!1538784000!1538870399.xml":              dmarcOK("usssa.com", "8953b4d4a4ee4218b6ac0e2cb2667ee1", 2, "12.20.127.40 1 none"),
	"parsedmarc/aggregate/veeam.com!example.com!1530133200!1530219600.xml":              dmarcOK("veeam.com", "sonexushealth.com:1530233361", 1, "199.230.200.36 1 none"),
	// "None" and "Pass" are normalised; the org_name's trailing space trimmed.
	"parsedmarc/aggregate_invalid/report_with_upper_cased_pass.xml": dmarcOK("example.com", "aggr_report_example.com_20191202_1638", 1, "23.104.41.189 1 none"),
	"parsedmarc/empty.xml":                         {decodeErr: ErrEmpty},
	"parsedmarc/extract_report/changed-input.xml":  dmarcOK("fred.com", "11038226378739404135", 20, "209.85.220.69 1 none"),
	"parsedmarc/extract_report/nice-input.xml":     dmarcOK("google.com", "11038226378739404135", 20, "209.85.220.69 1 none"),
	"parsedmarc/extract_report/nice-input.xml.gz":  dmarcOK("google.com", "11038226378739404135", 20, "209.85.220.69 1 none"),
	"parsedmarc/extract_report/nice-input.xml.zip": dmarcOK("google.com", "11038226378739404135", 20, "209.85.220.69 1 none"),
}

var tlsCorpus = map[string]outcome{
	"SOURCE.md":                          notReport,
	"dmarc-report-viewer/LICENSE":        notReport,
	"mox/LICENSE.MIT":                    notReport,
	"parsedmarc/LICENSE":                 notReport,
	"dmarc-report-viewer/google.json":    tlsOK("Google Inc.", "2025-05-22T00:00:00Z_foo-bar.io", 1, "sts foo-bar.io 1/0 0"),
	"dmarc-report-viewer/microsoft.json": tlsOK("Microsoft Corporation", "133925885310113267+random.net", 2, "sts random.net 2/0 0"),
	"dmarc-report-viewer/no-contact.json": func() outcome {
		o := tlsOK("server.com", "123_456", 1, "sts server.com 1/0 0")
		o.warn = "contact-info missing"
		return o
	}(),
	"dmarc-report-viewer/no-policy.json":    tlsOK("Google Inc.", "2025-03-27T00:00:00Z_foo-bar.io", 1, "no-policy-found foo-bar.io 1/0 0"),
	"dmarc-report-viewer/no_ip_and_mx.json": tlsOK("Microsoft Corporation", "1234567890+", 1, "sts xxxxxxxx.xx 0/3 1"),
	"dmarc-report-viewer/rfc-example.json":  tlsOK("Company-X", "5065427c-23d3-47ca-b6e0-946ea0e8c4be", 1, "sts company-y.example 5326/303 3"),
	"mox/example.eml":                       tlsOK("Google Inc.", "2022-09-15T00:00:00Z_test.xmox.nl", 1, "sts test.xmox.nl 3/0 0"),
	// Microsoft's date-times lack a zone.
	"mox/microsoft.eml": func() outcome {
		o := tlsOK("Microsoft Corporation", "133198585438131172+test.xmox.nl", 1, "sts test.xmox.nl 2/0 0")
		o.warn = `date-time "2023-01-10T00:00:00" has no time zone; taken as UTC`
		return o
	}(),
	"parsedmarc/google.com_smtp_tls_report.eml": tlsOK("Google Inc.", "2024-09-03T00:00:00Z_cardinalhealth.ca", 1, "no-policy-found cardinalhealth.ca 48/0 0"),
	"parsedmarc/mail.ru.json":                   tlsOK("Mail.ru", "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru", 1, "sts example.com 0/1 2"),
	// mx-host is a string, not an array, as in RFC 8460's own example.
	"parsedmarc/rfc8460.json":  tlsOK("Company-X", "5065427c-23d3-47ca-b6e0-946ea0e8c4be", 1, "sts company-y.example 5326/303 3"),
	"parsedmarc/smtp_tls.json": tlsOK("Example Inc.", "2024-01-09T00:00:00Z_example.com", 1, "sts example.com 0/3 2"),
}

func TestCorpusDMARC(t *testing.T) { runCorpus(t, "dmarc-aggregate", dmarcCorpus) }
func TestCorpusTLS(t *testing.T)   { runCorpus(t, "smtp-tls-reports", tlsCorpus) }

func runCorpus(t *testing.T, set string, table map[string]outcome) {
	dir := testutil.Shared(t, set)
	var files []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for name := range table {
		listed = append(listed, name)
	}
	sort.Strings(files)
	sort.Strings(listed)
	if diff := cmp.Diff(listed, files); diff != "" {
		t.Fatalf("files in %s and the table differ (-table +directory):\n%s", dir, diff)
	}
	var parsed, rejected, other int
	for _, name := range files {
		want := table[name]
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			if err != nil {
				t.Fatal(err)
			}
			payloads, err := Decode(name, raw, Limits{})
			if want.decodeErr != nil {
				if !errors.Is(err, want.decodeErr) {
					t.Fatalf("Decode error = %v, want %v", err, want.decodeErr)
				}
				rejected++
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(payloads) != 1 {
				t.Fatalf("Decode gave %d payloads, want 1: %+v", len(payloads), payloads)
			}
			p := payloads[0]
			if want.notReport {
				if p.Kind != KindUnknown || p.Reason == "" {
					t.Errorf("kind = %s (%s), want unknown with a reason", p.Kind, p.Reason)
				}
				other++
				return
			}
			if p.Kind != want.kind {
				t.Fatalf("kind = %s (%s), want %s", p.Kind, p.Reason, want.kind)
			}
			if want.note != "" && !contains(p.Notes, want.note) {
				t.Errorf("notes = %q, want %q among them", p.Notes, want.note)
			}
			got, warnings, err := parse(p)
			if want.parseErr != nil {
				if !errors.Is(err, want.parseErr) || !strings.Contains(err.Error(), want.errText) {
					t.Fatalf("parse error = %v, want %v saying %q", err, want.parseErr, want.errText)
				}
				rejected++
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			wantSum := outcome{org: want.org, id: want.id, n: want.n, first: want.first}
			if diff := cmp.Diff(wantSum, got, cmp.AllowUnexported(outcome{})); diff != "" {
				t.Errorf("parsed (-want +got):\n%s", diff)
			}
			if want.warn != "" && !contains(warnings, want.warn) {
				t.Errorf("warnings = %q, want %q among them", warnings, want.warn)
			}
			if want.warn == "" && len(warnings) > 0 {
				t.Errorf("unexpected warnings %q", warnings)
			}
			parsed++
		})
	}
	t.Logf("%s: %d files: %d parsed, %d rejected, %d not reports", set, len(files), parsed, rejected, other)
}

// parse runs the parser a payload's kind calls for and summarises the
// result in an outcome's terms.
func parse(p Payload) (outcome, []string, error) {
	switch p.Kind {
	case KindDMARCAggregate:
		r, err := dmarcrpt.Parse(bytes.NewReader(p.Data), dmarcrpt.Limits{})
		if err != nil {
			return outcome{}, nil, err
		}
		o := outcome{org: r.Metadata.Reporter(), id: r.Metadata.ReportID, n: len(r.Records)}
		if len(r.Records) > 0 {
			r0 := r.Records[0]
			o.first = fmt.Sprintf("%s %d %s", r0.SourceIP, r0.Count, r0.PolicyEvaluated.Disposition)
		}
		return o, r.Warnings, nil
	case KindTLSReport:
		r, err := tlsrpt.ParseBytes(p.Data, tlsrpt.Limits{})
		if err != nil {
			return outcome{}, nil, err
		}
		o := outcome{org: r.Reporter(), id: r.ReportID, n: len(r.Policies)}
		if len(r.Policies) > 0 {
			p0 := r.Policies[0]
			o.first = fmt.Sprintf("%s %s %d/%d %d", p0.Policy.Type, p0.Policy.Domain,
				p0.Summary.TotalSuccessfulSessionCount, p0.Summary.TotalFailureSessionCount, len(p0.FailureDetails))
		}
		return o, r.Warnings, nil
	}
	return outcome{}, nil, fmt.Errorf("no parser for %s", p.Kind)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
