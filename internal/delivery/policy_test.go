package delivery

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// policyZones are the MTA-STS domains of these tests (besides the lab's
// scenarios sts-good.test and sts-badmx.test). Every policy host and mail
// host is 127.0.0.1, except mta-sts.sts-down.test, where nothing listens.
var policyZones = map[string]string{
	"sts-down.test": "@ MX 10 mx1.example.test.\nmta-sts A 127.0.0.2\n_mta-sts TXT \"v=STSv1; id=1\"\n",
	// The policy lists the MX, but Postfix's certificate is for
	// mx1.example.test, not mail.sts-wrongname.test.
	"sts-wrongname.test": "@ MX 10 mail\nmail A 127.0.0.1\nmta-sts A 127.0.0.1\n_mta-sts TXT \"v=STSv1; id=1\"\n",
	// The same, with a second MX whose certificate is right.
	"sts-next.test": "@ MX 10 mail\n@ MX 20 mx1.example.test.\nmail A 127.0.0.1\nmta-sts A 127.0.0.1\n_mta-sts TXT \"v=STSv1; id=1\"\n" +
		"_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tls@sts-next.test\"\n",
	"sts-testing.test": "@ MX 10 mail\nmail A 127.0.0.1\nmta-sts A 127.0.0.1\n_mta-sts TXT \"v=STSv1; id=1\"\n",
}

var policyFiles = map[string]string{
	"sts-wrongname.test": "version: STSv1\nmode: enforce\nmx: *.sts-wrongname.test\nmax_age: 86400\n",
	"sts-next.test":      "version: STSv1\nmode: enforce\nmx: mail.sts-next.test\nmx: mx1.example.test\nmax_age: 86400\n",
	"sts-testing.test":   "version: STSv1\nmode: testing\nmx: mail.sts-testing.test\nmax_age: 86400\n",
}

// policyWorld is Postfix with a lab-CA certificate for mx1.example.test,
// the lab's HTTPS server with the policies, and the lab DNS with the
// delivery test zones, the policy zones and the lab's MTA-STS scenarios.
type policyWorld struct {
	ca      *lab.CA
	pf      *lab.Postfix
	cert    *lab.Leaf
	dns     *lab.DNSServer
	connect dnsx.ConnectMap
}

func newPolicyWorld(t *testing.T, extraDomains ...string) *policyWorld {
	t.Helper()
	now := time.Now()
	ca, err := lab.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	w := &policyWorld{ca: ca, cert: cert}
	domains := []string{"example.test", "sts-good.test", "sts-badmx.test"}
	for d := range policyZones {
		domains = append(domains, d)
	}
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{Domains: append(domains, extraDomains...), Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	w.pf = pf

	hs, err := lab.StartHTTPS("127.0.0.1:0", ca, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	serve := func(domain, body string) {
		err := hs.Handle("mta-sts."+domain, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/.well-known/mta-sts.txt" {
				http.NotFound(rw, r)
				return
			}
			rw.Header().Set("Content-Type", "text/plain")
			io.WriteString(rw, body)
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	for d, body := range policyFiles {
		serve(d, body)
	}

	w.dns, err = lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.dns.Close() })
	for origin, zone := range testZones {
		if err := w.dns.AddZone(origin, zone, lab.ZoneOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for origin, zone := range policyZones {
		if err := w.dns.AddZone(origin, zone, lab.ZoneOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// The lab's own MTA-STS scenarios, as `mxray lab` serves them.
	for _, sc := range lab.Scenarios() {
		if !strings.HasPrefix(sc.Domain, "sts-") {
			continue
		}
		if err := w.dns.AddZone(sc.Domain, sc.Zone, sc.Opts); err != nil {
			t.Fatal(err)
		}
		for key, body := range sc.Files {
			host, _, _ := strings.Cut(key, "/")
			serve(strings.TrimPrefix(host, "mta-sts."), body)
		}
	}
	_, port, _ := net.SplitHostPort(hs.Addr)
	// ":port" keeps each host's own address, so that 127.0.0.2 is refused.
	w.connect = dnsx.ConnectMap{25: pf.SMTP, 443: ":" + port}
	return w
}

// env returns an Env that resolves through resolver (host:port).
func (w *policyWorld) env(resolver string) diag.Env {
	client := dnsx.New([]string{resolver})
	client.Timeout, client.Tries = 3*time.Second, 1
	return diag.Env{
		Resolver: client,
		Dialer:   &dnsx.Dialer{Resolver: client, ConnectMap: w.connect, Timeout: 5 * time.Second},
		Roots:    w.ca.Pool(),
		Limits:   diag.Limits{Connect: 5 * time.Second, Command: 20 * time.Second, DNS: 3 * time.Second, DNSTry: 1, HTTP: 10 * time.Second},
	}
}

// attempts summarises the attempts as host:outcome:policy:step.
func attempts(res Result) []string {
	var out []string
	for _, a := range res.Attempts {
		out = append(out, strings.Join([]string{a.Host, string(a.Outcome), string(a.Policy), a.Step}, ":"))
	}
	return out
}

var (
	policySteps = []string{"mx:ok", "addresses:ok", "mta-sts:ok", "tls-rpt:info", "dane:info"}
	fullTLS     = []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:ok", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}
	// certFailed is a session that ends at the certificate.
	certFailed = []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:fail", "quit:info"}
)

func seq(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestMTASTS(t *testing.T) {
	w := newPolicyWorld(t)
	env := w.env(w.dns.Addr)
	ctx := context.Background()
	tests := []struct {
		name     string
		domain   string
		want     want
		attempts []string
	}{
		{"enforce, MX in the policy, valid certificate", "sts-good.test",
			want{Deliverable, StepRcpt, "mx1.example.test", seq(policySteps, fullTLS), map[string]string{
				StepMTASTS:      "MTA-STS enforce: mx mx1.example.test",
				StepTLSRPT:      "senders report TLS failures to mailto:tls-reports@sts-good.test",
				StepCertificate: "certificate valid for mx1.example.test, ",
			}},
			[]string{"mx1.example.test:accepted:mta-sts:rcpt"}},
		{"enforce, MX outside the policy: not used", "sts-badmx.test",
			want{Temporary, StepMTASTS, "mx1.example.test",
				[]string{"mx:ok", "addresses:ok", "mta-sts:fail", "tls-rpt:info", "dane:info", "connect:skip"}, map[string]string{
					StepMTASTS:  "MTA-STS enforce: mx1.example.test not in the policy, senders must not deliver to it",
					StepConnect: "mx1.example.test matches no mx of the enforced policy (mail.sts-badmx.test): senders must not deliver to it",
				}},
			[]string{"mx1.example.test:excluded:mta-sts:mta-sts"}},
		{"record, but the policy host is unreachable: no policy, delivered", "sts-down.test",
			want{Deliverable, StepRcpt, "mx1.example.test",
				seq([]string{"mx:ok", "addresses:ok", "mta-sts:warn", "tls-rpt:info", "dane:info"}, fullTLS), map[string]string{
					StepMTASTS: "MTA-STS record found, but no usable policy: senders proceed as if there were none",
				}},
			[]string{"mx1.example.test:accepted:opportunistic:rcpt"}},
		{"enforce, wrong-name certificate on the only MX: temporary", "sts-wrongname.test",
			want{Temporary, StepCertificate, "mail.sts-wrongname.test", seq(policySteps, certFailed), map[string]string{
				StepCertificate: "certificate problem: wrong name; MTA-STS enforce: senders must not deliver to this host",
			}},
			[]string{"mail.sts-wrongname.test:excluded:mta-sts:certificate"}},
		{"enforce, wrong-name certificate on the first MX: the next MX takes it", "sts-next.test",
			want{Deliverable, StepRcpt, "mx1.example.test", seq([]string{"mx:ok", "addresses:ok", "mta-sts:ok", "tls-rpt:info", "dane:info"}, certFailed, fullTLS), map[string]string{
				StepCertificate: "WRONG NAME: the certificate is for mx1.example.test, not mail.sts-next.test.",
			}},
			[]string{"mail.sts-next.test:excluded:mta-sts:certificate", "mx1.example.test:accepted:mta-sts:rcpt"}},
		{"testing, wrong-name certificate: reported, delivered", "sts-testing.test",
			want{Deliverable, StepRcpt, "mail.sts-testing.test",
				seq(policySteps, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}),
				map[string]string{StepCertificate: "(MTA-STS testing: reported, mail still delivered)"}},
			[]string{"mail.sts-testing.test:accepted:mta-sts-testing:rcpt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &orderSink{}
			res := Run(ctx, env, Target{Domain: tc.domain, Helo: "probe.mxray.test"}, sink)
			check(t, res, sink, tc.want)
			if d := cmp.Diff(tc.attempts, attempts(res)); d != "" {
				t.Errorf("attempts (-want +got):\n%s", d)
			}
			if res.MTASTS == nil || res.TLSRPT == nil {
				t.Fatalf("result lacks the MTA-STS or TLS-RPT evidence")
			}
		})
	}

	t.Run("enforce, STARTTLS not offered", func(t *testing.T) {
		env := w.env(w.dns.Addr)
		env.Dialer.ConnectMap = dnsx.ConnectMap{25: fakeMX(t, true, "250 2.1.5 Ok\r\n"), 443: w.connect[443]}
		sink := &orderSink{}
		res := Run(ctx, env, Target{Domain: "sts-good.test", Helo: "probe.mxray.test"}, sink)
		check(t, res, sink, want{Temporary, StepStartTLS, "mx1.example.test",
			seq(policySteps, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:fail", "quit:info"}),
			map[string]string{StepStartTLS: "STARTTLS not offered: MTA-STS enforce requires TLS"}})
		if d := cmp.Diff([]string{"mx1.example.test:excluded:mta-sts:starttls"}, attempts(res)); d != "" {
			t.Errorf("attempts (-want +got):\n%s", d)
		}
	})

	t.Run("the verdict names the excluded MX", func(t *testing.T) {
		res := Run(ctx, env, Target{Domain: "sts-next.test", Helo: "probe.mxray.test"}, nil)
		for _, s := range []string{"mx1.example.test (127.0.0.1) accepted <postmaster@sts-next.test>",
			"not used: mail.sts-next.test (MTA-STS enforce: certificate not valid for mail.sts-next.test (wrong name))"} {
			if !strings.Contains(res.Reason, s) {
				t.Errorf("reason %q lacks %q", res.Reason, s)
			}
		}
		res = Run(ctx, env, Target{Domain: "sts-badmx.test", Helo: "probe.mxray.test"}, nil)
		if !strings.Contains(res.Reason, "no mail host may be used: mx1.example.test (MTA-STS enforce: not in the policy's mx list: mail.sts-badmx.test)") {
			t.Errorf("reason %q", res.Reason)
		}
		if res.MTASTS.Policy == nil || res.MTASTS.Policy.Policy.Mode != "enforce" || res.MTASTS.MX[0].Usable {
			t.Errorf("MTA-STS evidence %+v", res.MTASTS)
		}
	})
}

// daneZones signs the DANE zones: mx.dane.test has a DANE-EE record for
// Postfix's key; mx.danefail.test one for another key; danenext.test's
// first MX mismatches and its second has no TLSA (authenticated denial);
// bogus.test's TLSA record was changed after signing.
func daneZones(t *testing.T, good, other *x509.Certificate) []*lab.SignedZone {
	t.Helper()
	now := time.Now()
	ee := func(c *x509.Certificate) string {
		return dane.NewRecord(dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256, dane.Association(c, dane.SelectorSPKI, dane.MatchSHA256)).Text
	}
	zones := map[string]string{
		"dane.test":     "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee(good) + "\n",
		"danefail.test": "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee(other) + "\n",
		"danenext.test": "@ MX 10 mx\n@ MX 20 mx2\nmx A 127.0.0.1\nmx2 A 127.0.0.1\n_25._tcp.mx TLSA " + ee(other) + "\n",
		"bogus.test":    "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee(good) + "\n",
		// PKIX-EE(1) is not usable for SMTP (RFC 7672 §3.1.3).
		"daneunusable.test": "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA 1" + strings.TrimPrefix(ee(good), "3") + "\n",
	}
	var out []*lab.SignedZone
	for origin, text := range zones {
		z, err := lab.ParseZone(origin, text)
		if err != nil {
			t.Fatal(err)
		}
		s, err := lab.SignZone(z, now)
		if err != nil {
			t.Fatal(err)
		}
		if origin == "bogus.test" {
			for _, rr := range s.Records {
				if r, ok := rr.(*dns.TLSA); ok {
					r.Certificate = strings.Repeat("00", 32)
				}
			}
		}
		out = append(out, s)
	}
	return out
}

func TestDANE(t *testing.T) {
	daneDomains := []string{"dane.test", "danefail.test", "danenext.test", "bogus.test", "plain.test", "daneunusable.test"}
	w := newPolicyWorld(t, daneDomains...)
	other, err := w.ca.Issue([]string{"mx.danefail.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	signed := daneZones(t, w.cert.Cert, other.Cert)
	// plain.test: the same kind of TLSA record in a zone nobody signed.
	if err := w.dns.AddZone("plain.test", "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA 3 1 1 "+strings.Repeat("ab", 32)+"\n", lab.ZoneOptions{}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ub, err := lab.StartUnbound(ctx, lab.UnboundConfig{Forward: w.dns.Addr, ForwardZones: w.dns.Zones(), Signed: signed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ub.Stop() })
	env := w.env(ub.Addr)

	daneOK := []string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:ok"}
	tests := []struct {
		name     string
		domain   string
		want     want
		attempts []string
	}{
		{"DANE-EE matches: authenticated, the certificate's name does not matter", "dane.test",
			want{Deliverable, StepRcpt, "mx.dane.test", seq(daneOK, fullTLS), map[string]string{
				StepDANE:        "DANE: mx.dane.test: 1 usable validated TLSA record(s)",
				StepCertificate: "DANE-EE(3) ignores the names and dates of the certificate",
			}},
			[]string{"mx.dane.test:accepted:dane:rcpt"}},
		{"DANE mismatch on the only MX: not used, temporary", "danefail.test",
			want{Temporary, StepCertificate, "mx.danefail.test", seq(daneOK, certFailed), map[string]string{
				StepCertificate: "certificate does not match the DANE TLSA records: a DANE sender must not deliver to this host",
			}},
			[]string{"mx.danefail.test:excluded:dane:certificate"}},
		{"DANE mismatch on the first MX: the second (no TLSA) takes it", "danenext.test",
			want{Deliverable, StepRcpt, "mx2.danenext.test",
				seq(daneOK, certFailed, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}),
				map[string]string{StepDANE: "mx2.danenext.test: no TLSA records"}},
			[]string{"mx.danenext.test:excluded:dane:certificate", "mx2.danenext.test:accepted:opportunistic:rcpt"}},
		{"bogus TLSA: the host is deferred", "bogus.test",
			want{Temporary, StepDANE, "mx.bogus.test",
				[]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:fail", "connect:skip"}, map[string]string{
					StepDANE:    "mx.bogus.test: TLSA lookup failed, a sender must defer",
					StepConnect: "deferred: TLSA lookup failed: SERVFAIL (DANE)",
				}},
			[]string{"mx.bogus.test:deferred:dane:dane"}},
		{"validated TLSA, none usable: TLS required, not authenticated", "daneunusable.test",
			want{Deliverable, StepRcpt, "mx.daneunusable.test",
				seq([]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:warn"}, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}),
				map[string]string{
					StepDANE:        "mx.daneunusable.test: validated TLSA records, none usable",
					StepCertificate: "DANE senders require TLS but do not authenticate the server",
				}},
			[]string{"mx.daneunusable.test:accepted:dane-unusable:rcpt"}},
		{"TLSA in an unsigned zone: ignored, opportunistic", "plain.test",
			want{Deliverable, StepRcpt, "mx.plain.test",
				seq([]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:warn"}, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}),
				map[string]string{StepDANE: "The zone plain.test is not signed (no DNSKEY)"}},
			[]string{"mx.plain.test:accepted:opportunistic:rcpt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sink := &orderSink{}
			res := Run(ctx, env, Target{Domain: tc.domain, Helo: "probe.mxray.test"}, sink)
			check(t, res, sink, tc.want)
			if d := cmp.Diff(tc.attempts, attempts(res)); d != "" {
				t.Errorf("attempts (-want +got):\n%s", d)
			}
		})
	}

	// A host without STARTTLS: a DANE sender must not deliver to it in
	// cleartext.
	t.Run("DANE, STARTTLS not offered", func(t *testing.T) {
		env := env
		env.Dialer = &dnsx.Dialer{Resolver: env.Resolver, ConnectMap: dnsx.ConnectMap{25: fakeMX(t, true, "250 2.1.5 Ok\r\n")}}
		sink := &orderSink{}
		res := Run(ctx, env, Target{Domain: "dane.test", Helo: "probe.mxray.test"}, sink)
		check(t, res, sink, want{Temporary, StepStartTLS, "mx.dane.test",
			seq(daneOK, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:fail", "quit:info"}),
			map[string]string{StepStartTLS: "STARTTLS not offered: DANE requires TLS, a sender must not deliver to this host"}})
	})

	t.Run("verification evidence", func(t *testing.T) {
		res := Run(ctx, env, Target{Domain: "danenext.test", Helo: "probe.mxray.test"}, nil)
		if !strings.Contains(res.Reason, "not used: mx.danenext.test (DANE: certificate does not match the TLSA records)") {
			t.Errorf("reason %q", res.Reason)
		}
		c := find(t, res.Steps, StepCertificate)
		d, ok := c.Data.(certData)
		if !ok || d.DANE == nil || d.DANE.Result != dane.Fail || d.Policy != DANE || len(d.DANE.Misses) != 1 {
			t.Errorf("certificate data %#v", c.Data)
		}
		if res.MX[0].TLSA == nil || res.MX[0].TLSA.State != dane.StateDANE || res.MX[0].Policy != DANE || res.MX[1].Policy != Opportunistic {
			t.Errorf("MX evidence %+v", res.MX)
		}
	})

	// The same signed zone from a server that does not validate: the
	// records are found but not validated, and the step says why.
	t.Run("TLSA without the AD bit", func(t *testing.T) {
		plain, err := lab.StartDNS("127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { plain.Close() })
		for _, z := range signed {
			if z.Origin == "dane.test." {
				plain.AddZone("dane.test", z.Text(), lab.ZoneOptions{})
			}
		}
		sink := &orderSink{}
		res := Run(ctx, w.env(plain.Addr), Target{Domain: "dane.test", Helo: "probe.mxray.test"}, sink)
		check(t, res, sink, want{Deliverable, StepRcpt, "mx.dane.test",
			seq([]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:warn"}, []string{"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}),
			map[string]string{
				StepDANE:        "not validated (no AD bit): senders ignore them",
				StepCertificate: "opportunistic TLS still encrypts",
			}})
		if !strings.Contains(find(t, res.Steps, StepDANE).Detail, "either your resolver does not validate DNSSEC") {
			t.Errorf("dane detail: %s", find(t, res.Steps, StepDANE).Detail)
		}
		if res.Attempts[0].Policy != Opportunistic {
			t.Errorf("policy %s", res.Attempts[0].Policy)
		}
	})
}
