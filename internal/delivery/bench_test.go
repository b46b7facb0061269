package delivery

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dane"
	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// tlsMX is an in-process SMTP server with STARTTLS that accepts every
// recipient: the benchmark's mail hosts, cheap enough to run b.N times.
func tlsMX(tb testing.TB, cert tls.Certificate) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var conn net.Conn = c
				r := bufio.NewReader(conn)
				secure := false
				io.WriteString(conn, "220 mx.bench.test ESMTP\r\n")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO") && secure:
						io.WriteString(conn, "250-mx.bench.test\r\n250 ENHANCEDSTATUSCODES\r\n")
					case strings.HasPrefix(cmd, "EHLO"):
						io.WriteString(conn, "250-mx.bench.test\r\n250-ENHANCEDSTATUSCODES\r\n250 STARTTLS\r\n")
					case cmd == "STARTTLS":
						io.WriteString(conn, "220 2.0.0 Ready to start TLS\r\n")
						tc := tls.Server(c, cfg)
						if tc.Handshake() != nil {
							return
						}
						conn, r, secure = tc, bufio.NewReader(tc), true
					case cmd == "QUIT":
						io.WriteString(conn, "221 2.0.0 Bye\r\n")
						return
					default:
						io.WriteString(conn, "250 2.0.0 Ok\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// benchWorld is a domain with two MX hosts, a DANE-EE record for the
// first, an MTA-STS policy in mode enforce and a TLS-RPT record, served
// by the lab DNS with latency on every answer.
type benchWorld struct {
	dns     *lab.DNSServer
	ca      *lab.CA
	connect dnsx.ConnectMap
}

func newBenchWorld(tb testing.TB, latency time.Duration) *benchWorld {
	tb.Helper()
	now := time.Now()
	ca, err := lab.NewCA(now)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mx1.bench.test", "mx2.bench.test"}, lab.CertOptions{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	smtp := tlsMX(tb, cert.TLS)
	hs, err := lab.StartHTTPS("127.0.0.1:0", ca, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { hs.Close() })
	err = hs.Handle("mta-sts.bench.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "version: STSv1\nmode: enforce\nmx: *.bench.test\nmax_age: 86400\n")
	}), nil)
	if err != nil {
		tb.Fatal(err)
	}
	ds, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ds.Close() })
	ee := dane.NewRecord(dane.DANEEE, dane.SelectorSPKI, dane.MatchSHA256, dane.Association(cert.Cert, dane.SelectorSPKI, dane.MatchSHA256))
	zone := "@ MX 10 mx1\n@ MX 20 mx2\nmx1 A 127.0.0.1\nmx2 A 127.0.0.1\n" +
		"_25._tcp.mx1 TLSA " + ee.Text + "\n" +
		"mta-sts A 127.0.0.1\n_mta-sts TXT \"v=STSv1; id=1\"\n_smtp._tls TXT \"v=TLSRPTv1; rua=mailto:tls@bench.test\"\n"
	// AD: the answers count as validated, as from a validating resolver,
	// so the DANE record applies and no "why no AD?" lookups follow.
	if err := ds.AddZone("bench.test", zone, lab.ZoneOptions{AD: true, Latency: latency}); err != nil {
		tb.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(hs.Addr)
	return &benchWorld{dns: ds, ca: ca, connect: dnsx.ConnectMap{25: smtp, 443: "127.0.0.1:" + port}}
}

// countingResolver counts the questions asked.
type countingResolver struct {
	r dnsx.Resolver
	n atomic.Int64
}

func (c *countingResolver) Query(ctx context.Context, name string, qtype uint16) (*dnsx.Response, error) {
	c.n.Add(1)
	return c.r.Query(ctx, name, qtype)
}

// env returns a fresh Env: a new dnsx client, so that no answer comes
// from the cache of an earlier run.
func (w *benchWorld) env(wrap func(dnsx.Resolver) dnsx.Resolver) diag.Env {
	client := dnsx.New([]string{w.dns.Addr})
	client.Timeout, client.Tries = 5*time.Second, 1
	var r dnsx.Resolver = client
	if wrap != nil {
		r = wrap(client)
	}
	return diag.Env{
		Resolver: r,
		Dialer:   &dnsx.Dialer{Resolver: r, ConnectMap: w.connect, Timeout: 5 * time.Second},
		Roots:    w.ca.Pool(),
		Limits:   diag.Limits{Connect: 5 * time.Second, Command: 5 * time.Second, DNS: 5 * time.Second, DNSTry: 1, HTTP: 10 * time.Second},
	}
}

// dialogue is the time spent talking SMTP: the per-server steps.
func dialogue(res Result) time.Duration {
	var d time.Duration
	for _, s := range res.Steps {
		switch s.ID {
		case StepMX, StepAddresses, StepMTASTS, StepTLSRPT, StepDANE:
		default:
			d += s.Elapsed
		}
	}
	return d
}

// BenchmarkDeliveryCriticalPath measures a whole delivery test with 50 ms
// on every DNS answer and two MX hosts, against its critical path: the
// longest chain of dependent lookups (MX, then A/AAAA/TLSA of the hosts;
// in parallel _mta-sts TXT, then the policy host's A/AAAA and the HTTPS
// fetch) plus the SMTP dialogue, measured in the same run. A sequential
// run would pay for every question in turn (reported as seq-x).
//
//	go test -run '^$' -bench DeliveryCriticalPath -benchtime 20x ./internal/delivery
func BenchmarkDeliveryCriticalPath(b *testing.B) {
	const latency = 50 * time.Millisecond
	const chain = 2 // MX → A/AAAA/TLSA; _mta-sts TXT → A/AAAA of mta-sts.<domain>
	w := newBenchWorld(b, latency)
	ctx := context.Background()
	var wall, talk, fetch time.Duration
	var queries int64
	for b.Loop() {
		cr := &countingResolver{}
		env := w.env(func(r dnsx.Resolver) dnsx.Resolver { cr.r = r; return cr })
		start := time.Now()
		res := Run(ctx, env, Target{Domain: "bench.test", Helo: "probe.mxray.test"}, nil)
		wall += time.Since(start)
		if res.Verdict != Deliverable || res.Attempts[0].Policy != DANE || res.MTASTS == nil || res.MTASTS.Policy == nil {
			b.Fatalf("verdict %s (%s), attempts %v", res.Verdict, res.Reason, attempts(res))
		}
		talk += dialogue(res)
		// The HTTPS exchange after the policy host's address lookup.
		fetch += max(res.MTASTS.Policy.Elapsed-latency, 0)
		queries += cr.n.Load()
	}
	n := time.Duration(b.N)
	dnsPath := chain * latency
	critical := dnsPath + max(fetch/n, 0) + talk/n
	b.ReportMetric(float64((wall/n).Microseconds())/1000, "wall-ms")
	b.ReportMetric(float64(critical.Microseconds())/1000, "critical-ms")
	b.ReportMetric(float64((talk/n).Microseconds())/1000, "smtp-ms")
	b.ReportMetric(float64(wall/n)/float64(critical), "x-critical")
	b.ReportMetric(float64(queries)/float64(b.N), "queries")
	seq := time.Duration(queries/int64(b.N))*latency + fetch/n + talk/n
	b.ReportMetric(float64(seq)/float64(critical), "seq-x")
}

// rendezvous holds back the questions of each group until every question
// of the group has been asked: it proves, without timing anything, that
// they are in flight at once. A group that never completes fails the
// test after a generous wait instead of hanging.
type rendezvous struct {
	r      dnsx.Resolver
	mu     sync.Mutex
	groups []*group
	failed []string
}

type group struct {
	want map[string]bool // "name TYPE" → arrived
	all  chan struct{}
}

func newRendezvous(r dnsx.Resolver, groups ...[]string) *rendezvous {
	z := &rendezvous{r: r}
	for _, g := range groups {
		gr := &group{want: map[string]bool{}, all: make(chan struct{})}
		for _, q := range g {
			gr.want[q] = false
		}
		z.groups = append(z.groups, gr)
	}
	return z
}

func (z *rendezvous) Query(ctx context.Context, name string, qtype uint16) (*dnsx.Response, error) {
	key := strings.TrimSuffix(strings.ToLower(name), ".") + " " + dns.TypeToString[qtype]
	z.mu.Lock()
	var g *group
	for _, gr := range z.groups {
		if arrived, ok := gr.want[key]; ok && !arrived {
			g = gr
			gr.want[key] = true
			complete := true
			for _, a := range gr.want {
				complete = complete && a
			}
			if complete {
				close(gr.all)
			}
			break
		}
	}
	z.mu.Unlock()
	if g != nil {
		select {
		case <-g.all:
		case <-time.After(5 * time.Second):
			z.mu.Lock()
			var missing []string
			for q, a := range g.want {
				if !a {
					missing = append(missing, q)
				}
			}
			z.failed = append(z.failed, fmt.Sprintf("%s waited in vain for %v", key, missing))
			z.mu.Unlock()
		}
	}
	return z.r.Query(ctx, name, qtype)
}

// TestLookupsRunConcurrently: the MTA-STS and TLS-RPT lookups start with
// the MX lookup, and the A, AAAA and TLSA lookups of both MX hosts run at
// once — while the steps still come out one at a time, in order.
func TestLookupsRunConcurrently(t *testing.T) {
	w := newBenchWorld(t, 0)
	var z *rendezvous
	env := w.env(func(r dnsx.Resolver) dnsx.Resolver {
		z = newRendezvous(r,
			[]string{"bench.test MX", "_mta-sts.bench.test TXT", "_smtp._tls.bench.test TXT"},
			[]string{"mx1.bench.test A", "mx1.bench.test AAAA", "mx2.bench.test A", "mx2.bench.test AAAA",
				"_25._tcp.mx1.bench.test TLSA", "_25._tcp.mx2.bench.test TLSA"})
		return z
	})
	sink := &orderSink{}
	res := Run(context.Background(), env, Target{Domain: "bench.test", Helo: "probe.mxray.test"}, sink)
	for _, f := range z.failed {
		t.Errorf("not concurrent: %s", f)
	}
	check(t, res, sink, want{Deliverable, StepRcpt, "mx1.bench.test",
		[]string{"mx:ok", "addresses:ok", "mta-sts:ok", "tls-rpt:info", "dane:ok",
			"connect:ok", "banner:ok", "ehlo:ok", "starttls:ok", "certificate:ok", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"},
		map[string]string{StepCertificate: "certificate authenticated by DANE", StepDANE: "mx2.bench.test: no TLSA records"}})
}
