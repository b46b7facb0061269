package doctor

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/smtpc"
)

func withReply(code int, enhanced string) map[string]any {
	return map[string]any{"reply": smtpc.Reply{Code: code, Enhanced: enhanced, Lines: []string{"text"}}}
}

// TestClassify maps a representative step of each kind to its matrix row;
// together the cases reach every row (TestEveryRowReachable checks).
var classifyCases = []struct {
	name string
	part Part
	st   diag.Step
	row  Row
	want string // a word the cause must contain
}{
	{"unknown user", PartDelivery, diag.Step{ID: "rcpt", Status: diag.Fail, Title: "recipient <x@example.test> rejected: 550 5.1.1 unknown", Data: withReply(550, "5.1.1")}, RowUnknownUser, "does not exist"},
	{"greylisting", PartDelivery, diag.Step{ID: "rcpt", Status: diag.Warn, Title: "recipient deferred: 450 4.2.0", Data: withReply(450, "4.2.0")}, RowStuck, "greylisting"},
	{"421 greeting", PartDelivery, diag.Step{ID: "banner", Status: diag.Fail, Title: "greeting refuses service for now: 421", Data: withReply(421, "")}, RowStuck, "temporary"},
	{"relay denied", PartDelivery, diag.Step{ID: "rcpt", Status: diag.Fail, Title: "rejected: 554 5.7.1", Data: withReply(554, "5.7.1")}, RowReputation, "policy"},
	{"refused, delivery", PartDelivery, diag.Step{ID: "connect", Status: diag.Fail, Title: "connection refused on port 25", IP: "192.0.2.1"}, RowRefused, "192.0.2.1 answered port 25"},
	{"refused, probe", PartProbe, diag.Step{ID: "imaps.connect", Status: diag.Fail, Title: "imaps: connection refused on port 993", IP: "192.0.2.1"}, RowRefused, "port 993"},
	{"timeout, delivery", PartDelivery, diag.Step{ID: "connect", Status: diag.Fail, Title: "no answer on port 25 (timeout)", IP: "192.0.2.1"}, RowFirewall, "local network"},
	{"timeout, probe", PartProbe, diag.Step{ID: "smtp.connect", Status: diag.Fail, Title: "smtp: no answer on port 25 (timeout)"}, RowFirewall, "outgoing port 25"},
	{"not smtp", PartDelivery, diag.Step{ID: "banner", Status: diag.Fail, Title: "greeting: not an SMTP reply", IP: "192.0.2.1"}, RowWrongIP, "does not speak SMTP"},
	{"no PTR", PartDomain, diag.Step{ID: "mx-host", Status: diag.Warn, Title: "MX mx.example.test 192.0.2.1 has no reverse DNS (PTR)", IP: "192.0.2.1"}, RowWrongIP, "reverse DNS"},
	{"EHLO name", PartDoctor, diag.Step{ID: StepEHLOName, Status: diag.Warn, Title: "introduces itself as other"}, RowWrongIP, "another name"},
	{"NXDOMAIN", PartDelivery, diag.Step{ID: "mx", Status: diag.Fail, Title: "x.test does not exist (NXDOMAIN)"}, RowDNS, "NXDOMAIN"},
	{"SERVFAIL", PartDomain, diag.Step{ID: "mx", Status: diag.Fail, Title: "MX lookup failed: SERVFAIL"}, RowDNS, "SERVFAIL"},
	{"missing MX", PartDomain, diag.Step{ID: "mx", Status: diag.Warn, Title: "no MX records: senders use the domain's own address (implicit MX)"}, RowDNS, "missing"},
	{"MX without address", PartDelivery, diag.Step{ID: "addresses", Status: diag.Fail, Title: "no mail host has a usable address"}, RowDNS, "A/AAAA"},
	{"probe host not found", PartProbe, diag.Step{ID: "address", Status: diag.Fail, Title: "no address for imap.x.test"}, RowDNS, "resolve"},
	{"login failed", PartProbe, diag.Step{ID: "imaps.login", Status: diag.Fail, Title: "imaps: login as alice refused"}, RowAuth, "refused the login"},
	{"SPF lookups", PartDomain, diag.Step{ID: "spf-lookups", Status: diag.Fail, Title: "SPF needs more than 10 DNS lookups"}, RowAuth, "too many"},
	{"DMARC p=none", PartDomain, diag.Step{ID: "dmarc-policy", Status: diag.Warn, Title: "p=none"}, RowAuth, "weak"},
	{"DKIM revoked", PartDomain, diag.Step{ID: "dkim", Status: diag.Fail, Title: "DKIM selector k1 revoked"}, RowAuth, "revoked"},
	{"certificate", PartProbe, diag.Step{ID: "imaps.certificate", Status: diag.Fail, Title: "imaps: certificate not valid", Host: "imap.x.test"}, RowTLS, "imap.x.test"},
	{"no STARTTLS", PartDelivery, diag.Step{ID: "starttls", Status: diag.Warn, Title: "STARTTLS not offered"}, RowTLS, "cleartext"},
	{"blocklisted", PartDomain, diag.Step{ID: "dnsbl", Status: diag.Fail, Title: "listed on bl.test"}, RowReputation, "blocklist"},
	{"open relay", PartProbe, diag.Step{ID: "smtp.relay", Status: diag.Fail, Title: "smtp: OPEN RELAY"}, RowReputation, "open relay"},
	{"SRV", PartDomain, diag.Step{ID: "srv", Status: diag.Warn, Title: "SRV _imaps._tcp disagrees"}, RowConfig, "client settings"},
	{"advertised closed", PartDomain, diag.Step{ID: "client-server", Status: diag.Fail, Title: "submission x:2526 (STARTTLS): connect refused"}, RowRefused, "TCP reset"},
}

func TestClassify(t *testing.T) {
	for _, tc := range classifyCases {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := Classify(tc.part, tc.st)
			if !ok {
				t.Fatal("not classified as a problem")
			}
			if diff := cmp.Diff(tc.row, p.Row); diff != "" {
				t.Errorf("row (-want +got):\n%s", diff)
			}
			if !strings.Contains(p.Cause, tc.want) {
				t.Errorf("cause %q lacks %q", p.Cause, tc.want)
			}
			if p.Fix == "" || p.Part != tc.part || p.Step != string(tc.part)+"."+tc.st.ID || p.Severity != tc.st.Status {
				t.Errorf("problem %+v", p)
			}
			if strings.Contains(p.Cause+p.Fix, "{") {
				t.Errorf("unreplaced placeholder: %q / %q", p.Cause, p.Fix)
			}
		})
	}
}

func TestEveryRowReachable(t *testing.T) {
	seen := map[Row]bool{}
	for _, tc := range classifyCases {
		seen[tc.row] = true
	}
	for _, r := range Rows {
		if !seen[r] {
			t.Errorf("no case reaches row %s", r)
		}
		if r.Title() == "" {
			t.Errorf("row %s has no title", r)
		}
	}
}

func TestOnlyFailAndWarnAreProblems(t *testing.T) {
	for _, s := range []diag.Status{diag.OK, diag.Info, diag.Skip} {
		if p, ok := Classify(PartDelivery, diag.Step{ID: "connect", Status: s, Title: "connection refused on port 25"}); ok {
			t.Errorf("%s step became a problem: %+v", s, p)
		}
	}
}

func TestSortAndMerge(t *testing.T) {
	refusedD, _ := Classify(PartDelivery, diag.Step{ID: "connect", Status: diag.Fail, Title: "connection refused on port 25", IP: "127.0.0.10"})
	refusedP, _ := Classify(PartProbe, diag.Step{ID: "smtp.connect", Status: diag.Fail, Title: "smtp: connection refused on port 25", IP: "127.0.0.10"})
	spf, _ := Classify(PartDomain, diag.Step{ID: "spf-all", Status: diag.Warn, Title: "?all"})
	dns, _ := Classify(PartDomain, diag.Step{ID: "mx", Status: diag.Fail, Title: "MX lookup failed: SERVFAIL"})
	dnsD, _ := Classify(PartDelivery, diag.Step{ID: "mx", Status: diag.Fail, Title: "MX lookup failed: SERVFAIL"})
	got := sortProblems([]Problem{spf, refusedD, dns, refusedP, dnsD})
	var steps []string
	for _, p := range got {
		steps = append(steps, p.Step+" also="+strings.Join(p.Also, ","))
	}
	want := []string{"domain.mx also=delivery.mx", "delivery.connect also=probe.smtp.connect", "domain.spf-all also="}
	if diff := cmp.Diff(want, steps); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
