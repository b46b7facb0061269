package mtasts_test

import (
	"context"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/mtasts"
)

// labWorld is a lab DNS server and HTTPS server, with an Env that reaches
// "port 443" of any lab name through the connect map.
type labWorld struct {
	env   diag.Env
	dns   *lab.DNSServer
	https *lab.HTTPSServer
	ca    *lab.CA
	now   time.Time
}

func newLabWorld(t *testing.T) *labWorld {
	t.Helper()
	now := time.Now()
	ca, err := lab.NewCA(now)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := lab.StartHTTPS("127.0.0.1:0", ca, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hs.Close() })
	ds, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ds.Close() })
	_, port, _ := net.SplitHostPort(hs.Addr)
	return &labWorld{env: testEnv(ds.Addr, ca, dnsx.ConnectMap{443: ":" + port}), dns: ds, https: hs, ca: ca, now: now}
}

func testEnv(resolver string, ca *lab.CA, cm dnsx.ConnectMap) diag.Env {
	c := dnsx.New([]string{resolver})
	c.Timeout, c.Tries = 2*time.Second, 1
	return diag.Env{
		Resolver: c,
		Dialer:   &dnsx.Dialer{Resolver: c, ConnectMap: cm, Timeout: 5 * time.Second},
		Roots:    ca.Pool(),
		Limits:   diag.Limits{Connect: 5 * time.Second, Command: 5 * time.Second, DNS: 2 * time.Second, DNSTry: 1, HTTP: 10 * time.Second},
	}
}

// domain publishes a zone for d with the given _mta-sts TXT lines (each a
// quoted record), mta-sts.<d> at addr (none if empty) and MX mx1.<d>.
func (w *labWorld) domain(t *testing.T, d, addr string, txt ...string) {
	t.Helper()
	zone := "@ MX 10 mx1\nmx1 A 127.0.0.1\n"
	if addr != "" {
		zone += "mta-sts A " + addr + "\n"
	}
	for _, x := range txt {
		zone += "_mta-sts TXT " + x + "\n"
	}
	if err := w.dns.AddZone(d, zone, lab.ZoneOptions{}); err != nil {
		t.Fatal(err)
	}
}

// serve answers for mta-sts.<d> with the handler and certificate.
func (w *labWorld) serve(t *testing.T, d string, h http.Handler, cert *lab.Leaf) {
	t.Helper()
	if err := w.https.Handle("mta-sts."+d, h, cert); err != nil {
		t.Fatal(err)
	}
}

func policyHandler(ctype, body string) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/mta-sts.txt" {
			http.NotFound(rw, r)
			return
		}
		rw.Header().Set("Content-Type", ctype)
		io.WriteString(rw, body)
	})
}

const goodPolicy = "version: STSv1\r\nmode: enforce\r\nmx: mx1.%s\r\nmax_age: 604800\r\n"

func TestLookupRecord(t *testing.T) {
	w := newLabWorld(t)
	ctx := context.Background()
	w.domain(t, "one.test", "127.0.0.1", `"v=STSv1; id=20250101T000000"`, `"v=spf1 -all"`)
	w.domain(t, "none.test", "127.0.0.1")
	w.domain(t, "two.test", "127.0.0.1", `"v=STSv1; id=1"`, `"v=STSv1; id=2"`)
	w.domain(t, "invalid.test", "127.0.0.1", `"v=STSv1; id=not-alnum"`)
	w.domain(t, "other.test", "127.0.0.1", `"v=STSv2; id=1"`)
	w.domain(t, "split.test", "127.0.0.1", `"v=STSv1; " "id=abc"`)
	w.dns.AddZone("nodata.test", "_mta-sts A 127.0.0.1\n", lab.ZoneOptions{})
	w.dns.AddZone("broken.test", "@ A 127.0.0.1\n", lab.ZoneOptions{ServFail: true})

	type got struct {
		Status mtasts.Status
		Rcode  string
		ID     string
		Find   []string
	}
	cases := []struct {
		domain  string
		want    got
		wantErr error
	}{
		{"one.test", got{mtasts.Pass, "NOERROR", "20250101T000000", []string{`info: ignored a TXT record that does not begin with v=STSv1: "v=spf1 -all"`}}, nil},
		{"split.test", got{mtasts.Pass, "NOERROR", "abc", nil}, nil},
		{"none.test", got{mtasts.None, "NXDOMAIN", "", []string{"info: no TXT record at _mta-sts.none.test (NXDOMAIN): the domain publishes no MTA-STS policy"}}, dnsx.ErrNXDomain},
		{"nodata.test", got{mtasts.None, "NOERROR", "", []string{"info: no TXT record at _mta-sts.nodata.test (NOERROR): the domain publishes no MTA-STS policy"}}, dnsx.ErrNoData},
		{"nxdomain.one.test", got{mtasts.None, "NXDOMAIN", "", []string{"info: no TXT record at _mta-sts.nxdomain.one.test (NXDOMAIN): the domain publishes no MTA-STS policy"}}, dnsx.ErrNXDomain},
		{"two.test", got{mtasts.Permerror, "NOERROR", "", []string{`fail: 2 TXT records begin with v=STSv1 ("v=STSv1; id=1", "v=STSv1; id=2"); with more than one, senders assume there is no policy`}}, mtasts.ErrRecordSyntax},
		{"invalid.test", got{mtasts.Permerror, "NOERROR", "", []string{`fail: mtasts: invalid _mta-sts record "v=STSv1; id=not-alnum": id "not-alnum" must be 1 to 32 letters and digits; senders treat an invalid record as no policy`}}, mtasts.ErrRecordSyntax},
		{"other.test", got{mtasts.None, "NOERROR", "", []string{`info: ignored a TXT record that does not begin with v=STSv1: "v=STSv2; id=1"`, "warn: _mta-sts.other.test has TXT records but none begins with v=STSv1: senders find no policy"}}, nil},
		{"broken.test", got{mtasts.Temperror, "SERVFAIL", "", nil}, dnsx.ErrServFail},
	}
	for _, c := range cases {
		t.Run(c.domain, func(t *testing.T) {
			r := mtasts.LookupRecord(ctx, w.env, c.domain)
			g := got{Status: r.Status, Rcode: r.Rcode}
			if r.Record != nil {
				g.ID = r.Record.ID
			}
			for _, f := range r.Findings {
				g.Find = append(g.Find, string(f.Status)+": "+f.Text)
			}
			if c.domain == "broken.test" {
				g.Find = nil // the text carries the server's address
				if len(r.Findings) != 1 || r.Findings[0].Status != diag.Warn {
					t.Errorf("findings %v, want one warning", r.Findings)
				}
			}
			if d := cmp.Diff(c.want, g); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
			if c.wantErr != nil && !errors.Is(r.Err, c.wantErr) {
				t.Errorf("err = %v, want %v", r.Err, c.wantErr)
			}
			if r.Name != "_mta-sts."+c.domain+"." {
				t.Errorf("name = %q", r.Name)
			}
		})
	}
}

func TestFetchPolicy(t *testing.T) {
	w := newLabWorld(t)
	ctx := context.Background()
	var goodHits atomic.Int64
	for _, d := range []string{"good.test", "expired.test", "wrongname.test", "selfsigned.test", "redirect.test", "html.test",
		"big.test", "syntax.test", "missing.test", "status500.test", "nohost.test"} {
		w.domain(t, d, "127.0.0.1", `"v=STSv1; id=1"`)
	}
	w.domain(t, "unreachable.test", "127.0.0.2", `"v=STSv1; id=1"`) // nothing listens on 127.0.0.2
	w.domain(t, "noaddr.test", "", `"v=STSv1; id=1"`)

	good := policyHandler("text/plain; charset=utf-8", strings.ReplaceAll(goodPolicy, "%s", "good.test"))
	w.serve(t, "good.test", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		goodHits.Add(1)
		good.ServeHTTP(rw, r)
	}), nil)
	issue := func(names []string, o lab.CertOptions) *lab.Leaf {
		o.Now = w.now
		l, err := w.ca.Issue(names, o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	body := func(d string) http.Handler {
		return policyHandler("text/plain", strings.ReplaceAll(goodPolicy, "%s", d))
	}
	w.serve(t, "expired.test", body("expired.test"), issue([]string{"mta-sts.expired.test"},
		lab.CertOptions{NotBefore: w.now.AddDate(0, -3, 0), NotAfter: w.now.AddDate(0, 0, -1)}))
	w.serve(t, "wrongname.test", body("wrongname.test"), issue([]string{"www.wrongname.test"}, lab.CertOptions{}))
	w.serve(t, "selfsigned.test", body("selfsigned.test"), issue([]string{"mta-sts.selfsigned.test"}, lab.CertOptions{SelfSigned: true}))
	w.serve(t, "redirect.test", http.RedirectHandler("https://mta-sts.good.test/.well-known/mta-sts.txt", http.StatusMovedPermanently), nil)
	w.serve(t, "html.test", policyHandler("text/html", strings.ReplaceAll(goodPolicy, "%s", "html.test")), nil)
	w.serve(t, "big.test", policyHandler("text/plain", strings.ReplaceAll(goodPolicy, "%s", "big.test")+strings.Repeat("x-pad: 0123456789abcdef\n", 4000)), nil)
	w.serve(t, "syntax.test", policyHandler("text/plain", "version: STSv1\nmode: strict\nmx: *.*.syntax.test\nmax_age: 99999999999\n"), nil)
	w.serve(t, "missing.test", http.NotFoundHandler(), nil)
	w.serve(t, "status500.test", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "backend down", http.StatusInternalServerError)
	}), nil)
	// nohost.test: the lab HTTPS server has no certificate for the name.

	type got struct {
		Status   mtasts.Status
		HTTP     int
		Mode     mtasts.Mode
		Verified bool
		Fails    []string
	}
	cases := []struct {
		domain  string
		want    got
		wantErr error
	}{
		{"good.test", got{Status: mtasts.Pass, HTTP: 200, Mode: mtasts.ModeEnforce, Verified: true}, nil},
		{"expired.test", got{Status: mtasts.Permerror, Fails: []string{"the certificate of mta-sts.expired.test is outside its validity"}}, mtasts.ErrCertificate},
		{"wrongname.test", got{Status: mtasts.Permerror, Fails: []string{"the certificate of mta-sts.wrongname.test is for www.wrongname.test, not mta-sts.wrongname.test"}}, mtasts.ErrCertificate},
		{"selfsigned.test", got{Status: mtasts.Permerror, Fails: []string{`is issued by "CN=mta-sts.selfsigned.test,O=mxray lab", which is not a trusted authority`}}, mtasts.ErrCertificate},
		{"redirect.test", got{Status: mtasts.Permerror, HTTP: 301, Verified: true, Fails: []string{`redirecting to "https://mta-sts.good.test/.well-known/mta-sts.txt"; senders must not follow redirects`}}, mtasts.ErrRedirect},
		{"html.test", got{Status: mtasts.Permerror, HTTP: 200, Mode: mtasts.ModeEnforce, Verified: true, Fails: []string{`the policy is served as "text/html", not text/plain`}}, mtasts.ErrContentType},
		{"big.test", got{Status: mtasts.Permerror, HTTP: 200, Verified: true, Fails: []string{"the policy is larger than 64 KiB"}}, mtasts.ErrTooLarge},
		{"syntax.test", got{Status: mtasts.Permerror, HTTP: 200, Verified: true, Fails: []string{
			`line 2 "mode: strict": mode must be "enforce", "testing" or "none" (lower case)`,
			`line 3 "mx: *.*.syntax.test": mx "*.*.syntax.test": a wildcard may only be the whole left-most label`,
			`line 4 "max_age: 99999999999": max_age must be 1 to 10 digits`,
		}}, mtasts.ErrPolicySyntax},
		{"missing.test", got{Status: mtasts.Permerror, HTTP: 404, Verified: true, Fails: []string{"answered 404 Not Found; a policy is only valid with 200 OK"}}, mtasts.ErrHTTPStatus},
		{"status500.test", got{Status: mtasts.Temperror, HTTP: 500, Verified: true, Fails: []string{"answered 500 Internal Server Error"}}, mtasts.ErrHTTPStatus},
		{"unreachable.test", got{Status: mtasts.Temperror, Fails: []string{"connection refused"}}, dnsx.ErrConnRefused},
		{"noaddr.test", got{Status: mtasts.Permerror, Fails: []string{"mta-sts.noaddr.test has no address"}}, mtasts.ErrConnect},
		{"nohost.test", got{Status: mtasts.Temperror, Fails: []string{"policy fetch failed"}}, mtasts.ErrFetch},
	}
	for _, c := range cases {
		t.Run(c.domain, func(t *testing.T) {
			r := mtasts.FetchPolicy(ctx, w.env, c.domain)
			g := got{Status: r.Status, HTTP: r.HTTPStatus}
			if r.Policy != nil {
				g.Mode = r.Policy.Mode
			}
			if r.TLS != nil {
				g.Verified = r.TLS.Verified
			}
			// Keep each expected fragment found in a failing finding, so
			// that the diff shows which are missing.
			for _, want := range c.want.Fails {
				for _, f := range r.Findings {
					if f.Status == diag.Fail && strings.Contains(f.Text, want) {
						g.Fails = append(g.Fails, want)
						break
					}
				}
			}
			if d := cmp.Diff(c.want, g); d != "" {
				t.Errorf("(-want +got)\n%s\nfindings: %+v\nerr: %v", d, r.Findings, r.Err)
			}
			if c.wantErr != nil && !errors.Is(r.Err, c.wantErr) {
				t.Errorf("err = %v, want %v", r.Err, c.wantErr)
			}
			if r.URL != "https://mta-sts."+c.domain+"/.well-known/mta-sts.txt" {
				t.Errorf("url %q", r.URL)
			}
		})
	}
	if n := goodHits.Load(); n != 1 {
		t.Errorf("the good host served %d requests, want 1 (the redirect to it must not be followed)", n)
	}

	// The certificate evidence of a failing host is kept.
	r := mtasts.FetchPolicy(ctx, w.env, "expired.test")
	if r.TLS == nil || r.TLS.Verified || !r.TLS.NotAfter.Before(w.now) || len(r.TLS.SANs) != 1 || r.TLS.SANs[0] != "mta-sts.expired.test" || r.TLS.Version == "" {
		t.Errorf("TLS evidence %+v", r.TLS)
	}
	var inv x509.CertificateInvalidError
	if !errors.As(r.Err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("err %v, want x509.Expired", r.Err)
	}
}

func TestEvaluate(t *testing.T) {
	w := newLabWorld(t)
	ctx := context.Background()
	w.domain(t, "enforce.test", "127.0.0.1", `"v=STSv1; id=1"`)
	w.domain(t, "testing.test", "127.0.0.1", `"v=STSv1; id=1"`)
	w.domain(t, "off.test", "127.0.0.1", `"v=STSv1; id=1"`)
	w.domain(t, "down.test", "127.0.0.2", `"v=STSv1; id=1"`)
	w.domain(t, "plain.test", "127.0.0.1")
	w.domain(t, "double.test", "127.0.0.1", `"v=STSv1; id=1"`, `"v=STSv1; id=2"`)
	w.serve(t, "enforce.test", policyHandler("text/plain", "version: STSv1\nmode: enforce\nmx: *.enforce.test\nmax_age: 86400\n"), nil)
	w.serve(t, "testing.test", policyHandler("text/plain", "version: STSv1\nmode: testing\nmx: other.example\nmax_age: 86400\n"), nil)
	w.serve(t, "off.test", policyHandler("text/plain", "version: STSv1\nmode: none\nmax_age: 86400\n"), nil)

	type got struct {
		Applies bool
		Status  diag.Status
		Mode    mtasts.Mode
		MX      []mtasts.MXVerdict
	}
	strip := func(vs []mtasts.MXVerdict) []mtasts.MXVerdict {
		for i := range vs {
			vs[i].Text = ""
		}
		return vs
	}
	cases := []struct {
		domain  string
		mx      []string
		want    got
		summary string
	}{
		{"enforce.test", []string{"mx1.enforce.test", "mx.elsewhere.example"}, got{true, diag.OK, mtasts.ModeEnforce, []mtasts.MXVerdict{
			{Host: "mx1.enforce.test", Pattern: "*.enforce.test", Match: true, Usable: true, Status: diag.OK, RFC: "RFC 8461 §4.1"},
			{Host: "mx.elsewhere.example", Usable: false, Status: diag.Fail, RFC: "RFC 8461 §4.1, §5"},
		}}, "MTA-STS enforced"},
		{"testing.test", []string{"mx1.testing.test"}, got{true, diag.OK, mtasts.ModeTesting, []mtasts.MXVerdict{
			{Host: "mx1.testing.test", Usable: true, Status: diag.Warn, RFC: "RFC 8461 §4.1, §5"},
		}}, "mode testing"},
		{"off.test", []string{"mx1.off.test"}, got{false, diag.Info, mtasts.ModeNone, []mtasts.MXVerdict{
			{Host: "mx1.off.test", Usable: true, Status: diag.Skip, RFC: "RFC 8461 §4.1"},
		}}, "mode none"},
		{"down.test", []string{"mx1.down.test"}, got{false, diag.Warn, "", []mtasts.MXVerdict{
			{Host: "mx1.down.test", Usable: true, Status: diag.Skip, RFC: "RFC 8461 §4.1"},
		}}, "senders without a cached policy deliver as if there were no MTA-STS"},
		{"plain.test", nil, got{false, diag.Info, "", nil}, "no MTA-STS"},
		{"double.test", nil, got{false, diag.Warn, "", nil}, "senders assume the domain has no policy"},
	}
	for _, c := range cases {
		t.Run(c.domain, func(t *testing.T) {
			o := mtasts.Evaluate(mtasts.LookupRecord(ctx, w.env, c.domain), mtasts.FetchPolicy(ctx, w.env, c.domain))
			g := got{Applies: o.Applies, Status: o.Status, Mode: o.Mode}
			for _, h := range c.mx {
				g.MX = append(g.MX, o.MX(h))
			}
			g.MX = strip(g.MX)
			if d := cmp.Diff(c.want, g); d != "" {
				t.Errorf("(-want +got)\n%s", d)
			}
			if !strings.Contains(o.Summary, c.summary) {
				t.Errorf("summary %q lacks %q", o.Summary, c.summary)
			}
		})
	}
}

// The scenarios of `mxray lab` serve their policies through lab.World.
func TestLabScenarios(t *testing.T) {
	ctx := context.Background()
	world, err := lab.StartWorld(ctx, lab.WorldOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	env := testEnv(world.DNS.Addr, world.CA, world.ConnectMap)
	for _, c := range []struct {
		domain string
		usable bool
	}{{"sts-good.test", true}, {"sts-badmx.test", false}} {
		rec := mtasts.LookupRecord(ctx, env, c.domain)
		pol := mtasts.FetchPolicy(ctx, env, c.domain)
		o := mtasts.Evaluate(rec, pol)
		if !o.Applies || o.Mode != mtasts.ModeEnforce {
			t.Fatalf("%s: %+v (record %v, policy %v)", c.domain, o, rec.Err, pol.Err)
		}
		if v := o.MX("mx1.example.test"); v.Usable != c.usable {
			t.Errorf("%s: MX verdict %+v, want usable=%v", c.domain, v, c.usable)
		}
	}
}
