package domain

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// world is the lab (DNS with the scenarios, HTTPS with their files) and an
// Env that reaches its port 443.
type world struct {
	w   *lab.World
	env diag.Env
}

var (
	worldOnce sync.Once
	shared    *world
	worldErr  error
)

// labWorld starts one lab world for all tests of the package.
func labWorld(t *testing.T) *world {
	t.Helper()
	worldOnce.Do(func() {
		w, err := lab.StartWorld(context.Background(), lab.WorldOptions{})
		if err != nil {
			worldErr = err
			return
		}
		// The servers of domain-good.test (993, 587) are stand-ins that
		// accept connections; port 2526 of domain-bad.test is closed.
		cm := dnsx.ConnectMap{}
		for p, a := range w.ConnectMap {
			cm[p] = a
		}
		for _, p := range []int{993, 587} {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				worldErr = err
				return
			}
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			cm[p] = ln.Addr().String()
		}
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		cm[2526] = ln.Addr().String()
		ln.Close()
		c := dnsx.New([]string{w.DNS.Addr})
		c.Timeout, c.Tries = 2*time.Second, 2
		shared = &world{w: w, env: diag.Env{
			Resolver: c,
			Dialer:   &dnsx.Dialer{Resolver: c, ConnectMap: cm, Timeout: 2 * time.Second},
			Roots:    w.CA.Pool(),
			Limits:   diag.Limits{Connect: 5 * time.Second, Command: 10 * time.Second, DNS: 2 * time.Second, DNSTry: 2, HTTP: 10 * time.Second},
		}}
	})
	if worldErr != nil {
		t.Fatal(worldErr)
	}
	return shared
}

// tcpProbe stands in for ServiceProbe in unit tests: it only connects.
func tcpProbe(ctx context.Context, env diag.Env, ep Endpoint) ProbeResult {
	c, err := env.Dialer.DialContext(ctx, "tcp", net.JoinHostPort(ep.Host, fmt.Sprint(ep.Port)))
	if err != nil {
		return ProbeResult{Status: diag.Fail, Summary: "connect failed", Error: err.Error()}
	}
	c.Close()
	return ProbeResult{Status: diag.OK, Summary: "connect ok"}
}

func audit(t *testing.T, tg Target) Result {
	t.Helper()
	w := labWorld(t)
	if tg.DNSBL == nil {
		tg.DNSBL = []string{"bl.test"}
	}
	if tg.Probe == nil {
		tg.Probe = tcpProbe
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec := &diag.Recorder{}
	res := Run(ctx, w.env, tg, rec)
	if len(rec.Steps) != len(res.Steps) {
		t.Errorf("sink got %d steps, result holds %d", len(rec.Steps), len(res.Steps))
	}
	return res
}

// finding is a step expected in a result: id, status and a piece of the
// title.
type finding struct {
	id     string
	status diag.Status
	title  string
}

func (f finding) String() string { return fmt.Sprintf("%s [%s] %q", f.id, f.status, f.title) }

func has(res Result, f finding) bool {
	for _, st := range res.Steps {
		if st.ID == f.id && st.Status == f.status && strings.Contains(st.Title, f.title) {
			return true
		}
	}
	return false
}

func dump(res Result) string {
	var b strings.Builder
	for _, st := range res.Steps {
		fmt.Fprintf(&b, "  %s [%s] %s\n", st.ID, st.Status, st.Title)
	}
	return b.String()
}

func TestAudit(t *testing.T) {
	tests := []struct {
		name      string
		target    Target
		want      []finding
		notWorse  diag.Status // no step worse than this (empty: not checked)
		unchecked bool
	}{
		{name: "good domain", target: Target{Domain: "domain-good.test"}, notWorse: diag.Info, want: []finding{
			{StepMX, diag.OK, "MX: mx1.example.test (10)"},
			{StepMXHost, diag.OK, "MX mx1.example.test 127.0.0.1: reverse DNS mx1.example.test, forward-confirmed"},
			{StepSPF, diag.OK, "SPF record: v=spf1 mx ip4:127.0.0.0/8 -all"},
			{StepSPFLookups, diag.OK, "SPF uses 1 of 10 DNS lookups, 0 of 2 void lookups"},
			{StepSPFAll, diag.OK, "-all"},
			{StepDMARCPolicy, diag.OK, "p=reject"},
			{StepDMARCReports, diag.OK, "rua mailto:dmarc@domain-good.test"},
			{StepDKIM, diag.OK, "DKIM selector mail: RSA key of 2048 bits"},
			{StepMTASTS, diag.OK, "MTA-STS enforced"},
			{StepMTASTSMX, diag.OK, "mx1.example.test matches"},
			{StepTLSRPT, diag.OK, "mailto:tls-reports@domain-good.test"},
			{StepBIMI, diag.OK, "v=BIMI1"},
			{StepSRV, diag.OK, "SRV _imaps._tcp: mx1.example.test:993"},
			{StepSRV, diag.Info, "SRV _pop3._tcp: target \".\": the service is not offered"},
			{StepAutoconfig, diag.OK, "imap mx1.example.test:993 (implicit TLS), submission mx1.example.test:587 (STARTTLS)"},
			{StepAutodiscover, diag.OK, "autodiscover.domain-good.test/autodiscover/autodiscover.xml: imap mx1.example.test:993 (implicit TLS)"},
			{StepClientServer, diag.OK, "imap mx1.example.test:993 (implicit TLS): connect ok"},
			{StepDNSBL, diag.OK, "127.0.0.1 (MX mx1.example.test) is not listed on bl.test"},
		}},
		{name: "bad domain", target: Target{Domain: "domain-bad.test", Selectors: []string{"k1", "s1024", "gone"}, OutboundIPs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}}, want: []finding{
			{StepMXHost, diag.Warn, "MX mx.domain-bad.test 127.0.0.10 has no reverse DNS"},
			{StepSPFLookups, diag.Fail, "more than 10 DNS lookups"},
			{StepSPFAll, diag.Warn, "?all"},
			{StepDMARCPolicy, diag.Warn, "p=none: monitoring only"},
			{StepDMARCPolicy, diag.Warn, "pct=50"},
			{StepDMARCReports, diag.Warn, "mailto:dmarc@example.test is not authorized"},
			{StepDKIM, diag.Fail, "DKIM selector k1: the key is revoked"},
			{StepDKIM, diag.Warn, "DKIM selector s1024: RSA key of 1024 bits is weak"},
			{StepDKIM, diag.Fail, "DKIM selector gone: no key"},
			{StepMTASTSMX, diag.Fail, "mx.domain-bad.test matches no mx of the enforced policy"},
			{StepTLSRPT, diag.Warn, "no TLS-RPT record"},
			{StepSRV, diag.Fail, "SRV _submission._tcp: mail.domain-bad.test:587"},
			{StepSRV, diag.Info, "no SRV records for _submissions._tcp, _imap._tcp, _pop3s._tcp, _pop3._tcp, _autodiscover._tcp"},
			{StepAutodiscover, diag.Info, "no Autodiscover published"},
			{StepClientMismatch, diag.Warn, "advertises imap imap.domain-bad.test:993 (implicit TLS), but SRV _imaps._tcp.domain-bad.test says the service is not offered"},
			{StepClientMismatch, diag.Warn, "advertises submission imap.domain-bad.test:2526 (STARTTLS), but SRV _submission._tcp.domain-bad.test names mail.domain-bad.test:587"},
			{StepClientMismatch, diag.Info, "pop3 imap.domain-bad.test:110 (no TLS), a host that is neither an MX host nor an SRV target"},
			{StepClientServer, diag.Fail, "submission imap.domain-bad.test:2526 (STARTTLS): connect failed"},
			{StepClientServer, diag.Warn, "without TLS: passwords cross the network in cleartext"},
			{StepOutbound, diag.Warn, "outbound 127.0.0.2 has no reverse DNS"},
			{StepOutbound, diag.Fail, "SPF of domain-bad.test does not authorize 127.0.0.2: permerror"},
			{StepDNSBL, diag.Fail, "127.0.0.10 (MX mx.domain-bad.test) is listed on bl.test (127.0.0.4)"},
			{StepDNSBL, diag.Fail, "127.0.0.2 (outbound) is listed on bl.test (127.0.0.2)"},
		}},
		{name: "missing DMARC, no SRV, no client config", target: Target{Domain: "sts-good.test"}, want: []finding{
			{StepDMARC, diag.Fail, "sts-good.test has no DMARC record"},
			{StepDKIM, diag.Warn, "no DKIM key found under"},
			{StepSRV, diag.Info, "no SRV records for _submissions._tcp, _submission._tcp, _imaps._tcp, _imap._tcp, _pop3s._tcp, _pop3._tcp, _autodiscover._tcp"},
			{StepAutoconfig, diag.Info, "no autoconfig published"},
			{StepMTASTSMX, diag.OK, "mx1.example.test matches"},
		}},
		{name: "SPF past 10 lookups", target: Target{Domain: "spf-toomany.test"}, want: []finding{
			{StepSPF, diag.OK, "SPF record"},
			{StepSPFLookups, diag.Fail, "more than 10 DNS lookups"},
		}},
		{name: "MTA-STS policy not matching MX", target: Target{Domain: "sts-badmx.test"}, want: []finding{
			{StepMTASTSMX, diag.Fail, "mx1.example.test matches no mx of the enforced policy (mail.sts-badmx.test)"},
		}},
		{name: "DKIM revoked and Ed25519", target: Target{Domain: "dkim.test", Selectors: []string{"ed"}}, want: []finding{
			{StepDKIM, diag.OK, "DKIM selector ed: ED25519 key of 256 bits"},
		}},
		{name: "SERVFAIL cannot be checked", target: Target{Domain: "servfail.test"}, unchecked: true, want: []finding{
			{StepMX, diag.Fail, "MX lookup failed: SERVFAIL"},
		}},
		{name: "null MX", target: Target{Domain: "nullmx.test"}, want: []finding{
			{StepMX, diag.Info, "null MX"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := audit(t, tc.target)
			for _, f := range tc.want {
				if !has(res, f) {
					t.Errorf("missing finding %s; got:\n%s", f, dump(res))
				}
			}
			if tc.notWorse != "" && res.Worst.Worse(tc.notWorse) && res.Worst != diag.OK {
				t.Errorf("worst %s, want nothing worse than %s/ok; got:\n%s", res.Worst, tc.notWorse, dump(res))
			}
			if got := len(res.Unchecked) > 0; got != tc.unchecked {
				t.Errorf("unchecked = %v, want %v", res.Unchecked, tc.unchecked)
			}
		})
	}
}

// TestStableOrder runs the same audit several times: the steps come in
// the same order whatever finishes first.
func TestStableOrder(t *testing.T) {
	var first []string
	for i := range 3 {
		res := audit(t, Target{Domain: "domain-bad.test", Selectors: []string{"k1", "s1024"}})
		var ids []string
		for _, st := range res.Steps {
			ids = append(ids, st.ID+" "+st.Title)
		}
		if i == 0 {
			first = ids
			continue
		}
		if strings.Join(ids, "\n") != strings.Join(first, "\n") {
			t.Fatalf("run %d ordered the steps differently:\n%s\n---\n%s", i, strings.Join(first, "\n"), strings.Join(ids, "\n"))
		}
	}
}

func TestBLName(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.99", "99.2.0.192.bl.test."},
		// RFC 5782 §2.4: IPv6 nibbles, reversed.
		{"2001:db8:1:2:3:4:567:89ab", "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.test."},
	} {
		if got := blName(netip.MustParseAddr(tc.ip), "bl.test."); got != tc.want {
			t.Errorf("blName(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, ok := range []string{"example.com", "Example.COM.", "test"} {
		if _, err := ParseTarget(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "a b.com", "alice@example.com", "bücher.de", "https://example.com", "exa..mple.com"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
