package tlsrpt

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// rfcExample is shaped like the example of RFC 8460 Appendix B, with a
// DANE policy and the provider variants added.
const rfcExample = `{
  "organization-name": "Company-X",
  "date-range": {"start-datetime": "2016-04-01T00:00:00Z", "end-datetime": "2016-04-01T23:59:59Z"},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3",
  "policies": [{
    "policy": {
      "policy-type": "sts",
      "policy-string": ["version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"],
      "policy-domain": "company-y.example",
      "mx-host": "*.mail.company-y.example"
    },
    "summary": {"total-successful-session-count": 5326, "total-failure-session-count": 303},
    "failure-details": [{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.company-y.example",
      "failed-session-count": 100
    }, {
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.company-y.example",
      "receiving-mx-helo": "mx2",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": "200",
      "additional-information": "https://reports.company-x.example/x"
    }, {
      "result-type": "Validation-Failure",
      "receiving-ip": "203.0.113.58",
      "failed-session-count": 3,
      "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    }]
  }, {
    "policy": {"policy-type": "tlsa", "policy-string": ["3 1 1 AB12"], "policy-domain": "company-y.example", "mx-host": ["mx1.mail.company-y.example"]},
    "summary": {"total-successful-session-count": 2, "total-failure-session-count": 0}
  }]
}`

func TestParseExample(t *testing.T) {
	got, err := ParseBytes([]byte(rfcExample), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := &Report{
		OrganizationName: "Company-X",
		DateRange: DateRange{
			Start: time.Date(2016, 4, 1, 0, 0, 0, 0, time.UTC),
			End:   time.Date(2016, 4, 1, 23, 59, 59, 0, time.UTC),
		},
		ContactInfo: "sts-reporting@company-x.example",
		ReportID:    "5065427c-23d3",
		Policies: []PolicyResult{
			{
				Policy: Policy{
					Type:   PolicyTypeSTS,
					String: []string{"version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"},
					Domain: "company-y.example",
					MXHost: []string{"*.mail.company-y.example"},
				},
				Summary: Summary{TotalSuccessfulSessionCount: 5326, TotalFailureSessionCount: 303},
				FailureDetails: []FailureDetails{
					{ResultType: ResultCertificateExpired, SendingMTAIP: "2001:db8:abcd:0012::1", ReceivingMXHostname: "mx1.mail.company-y.example", FailedSessionCount: 100},
					{ResultType: ResultStartTLSNotSupported, SendingMTAIP: "2001:db8:abcd:0013::1", ReceivingMXHostname: "mx2.mail.company-y.example", ReceivingMXHelo: "mx2", ReceivingIP: "203.0.113.56", FailedSessionCount: 200, AdditionalInformation: "https://reports.company-x.example/x"},
					{ResultType: ResultValidationFailure, ReceivingIP: "203.0.113.58", FailedSessionCount: 3, FailureReasonCode: "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"},
				},
			},
			{
				Policy:  Policy{Type: PolicyTypeTLSA, String: []string{"3 1 1 AB12"}, Domain: "company-y.example", MXHost: []string{"mx1.mail.company-y.example"}},
				Summary: Summary{TotalSuccessfulSessionCount: 2},
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseBytes (-want +got):\n%s", diff)
	}
}

func report(fields string) string {
	return `{"organization-name":"O","date-range":{"start-datetime":"2024-01-09T00:00:00Z","end-datetime":"2024-01-09T23:59:59Z"},"contact-info":"c@o.example","report-id":"r1"` + fields + `}`
}

const okPolicies = `,"policies":[{"policy":{"policy-type":"sts","policy-domain":"d.example"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]`

func TestTolerated(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		reporter string
		warnings []string
	}{
		{"complete", report(okPolicies), "O", nil},
		{"byte order mark", "\uFEFF" + report(okPolicies), "O", nil},
		{"contact-info null", strings.Replace(report(okPolicies), `"c@o.example"`, "null", 1), "O", []string{"contact-info missing"}},
		{"organization-name missing", strings.Replace(report(okPolicies), `"organization-name":"O",`, "", 1), "c@o.example", []string{"organization-name missing; reporter named by contact-info"}},
		{"policy-domain missing", report(`,"policies":[{"policy":{"policy-type":"no-policy-found"},"summary":{"total-successful-session-count":1,"total-failure-session-count":0}}]`), "O", []string{"policies[0]: policy-domain missing"}},
		{"unknown result type", report(`,"policies":[{"policy":{"policy-type":"STS","policy-domain":"d"},"summary":{"total-successful-session-count":0,"total-failure-session-count":1},"failure-details":[{"result-type":"tls-timeout","failed-session-count":1}]}]`), "O", []string{`result-type "tls-timeout" is not a value RFC 8460 defines`}},
		{"no zone in date", strings.Replace(report(okPolicies), "2024-01-09T00:00:00Z", "2024-01-09T00:00:00", 1), "O", []string{`date-time "2024-01-09T00:00:00" has no time zone; taken as UTC`}},
		{"summary missing", report(`,"policies":[{"policy":{"policy-type":"sts","policy-domain":"d"}}]`), "O", []string{"policies[0]: summary incomplete; missing counts taken as 0"}},
		{"no policies", report(""), "O", []string{"no policies (RFC 8460 §4.4 requires at least one)"}},
		{"unknown fields", report(okPolicies + `,"x-vendor":{"a":[1,2,{"b":null}]}`), "O", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ParseBytes([]byte(tt.in), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Reporter() != tt.reporter || r.ReportID != "r1" {
				t.Errorf("reporter, id = %q, %q", r.Reporter(), r.ReportID)
			}
			if diff := cmp.Diff(tt.warnings, r.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRejected(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		lim     Limits
		want    error
		message string
	}{
		{"empty", "", Limits{}, ErrSyntax, "not a JSON object"},
		{"array", "[]", Limits{}, ErrSyntax, "not a JSON object"},
		{"XML", "<feedback/>", Limits{}, ErrSyntax, ""},
		{"truncated", report(okPolicies)[:60], Limits{}, ErrSyntax, ""},
		{"report-id missing", strings.Replace(report(okPolicies), `"report-id":"r1"`, `"report-id":null`, 1), Limits{}, ErrMissing, "report-id"},
		{"date-range missing", strings.Replace(report(okPolicies), `"date-range"`, `"x"`, 1), Limits{}, ErrMissing, "date-range"},
		{"date unreadable", strings.Replace(report(okPolicies), "2024-01-09T00:00:00Z", "yesterday", 1), Limits{}, ErrInvalid, `"yesterday"`},
		{"no reporter", strings.NewReplacer(`"organization-name":"O",`, "", `"contact-info":"c@o.example",`, "").Replace(report(okPolicies)), Limits{}, ErrMissing, "organization-name"},
		{"negative count", report(`,"policies":[{"policy":{"policy-type":"sts"},"summary":{"total-successful-session-count":-1,"total-failure-session-count":0}}]`), Limits{}, ErrInvalid, "-1"},
		{"count not a number", report(`,"policies":[{"policy":{"policy-type":"sts"},"summary":{"total-successful-session-count":"many","total-failure-session-count":0}}]`), Limits{}, ErrInvalid, "many"},
		{"wrong type", strings.Replace(report(okPolicies), `"r1"`, `42`, 1), Limits{}, ErrInvalid, ""},
		{"failure without result-type", report(`,"policies":[{"policy":{"policy-type":"sts"},"summary":{"total-successful-session-count":0,"total-failure-session-count":1},"failure-details":[{"failed-session-count":1}]}]`), Limits{}, ErrMissing, "result-type"},
		{"failure without count", report(`,"policies":[{"policy":{"policy-type":"sts"},"summary":{"total-successful-session-count":0,"total-failure-session-count":1},"failure-details":[{"result-type":"dane-required"}]}]`), Limits{}, ErrMissing, "failed-session-count"},
		{"too large", report(okPolicies), Limits{MaxBytes: 50}, ErrTooLarge, ""},
		{"too deep", report(`,"x":` + strings.Repeat("[", 20) + strings.Repeat("]", 20)), Limits{}, ErrTooDeep, ""},
		{"too many policies", report(`,"policies":[{},{},{}]`), Limits{MaxPolicies: 2}, ErrTooManyPolicies, ""},
		{"too many failure details", report(`,"policies":[{"failure-details":[{"result-type":"a","failed-session-count":1},{"result-type":"a","failed-session-count":1}]},{"failure-details":[{"result-type":"a","failed-session-count":1}]}]`), Limits{MaxFailureDetails: 2}, ErrTooManyFailureDetails, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(strings.NewReader(tt.in), tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			t.Log(err)
			if r != nil {
				t.Error("report returned with an error")
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %q does not mention %q", err, tt.message)
			}
		})
	}
}

func TestKnown(t *testing.T) {
	if !ResultDANERequired.Known() || ResultType("x").Known() || !PolicyTypeNoPolicyFound.Known() || PolicyType("y").Known() {
		t.Error("Known() disagrees with RFC 8460's vocabulary")
	}
}
