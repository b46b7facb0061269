package delivery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

// testZones is the DNS world of these tests; every mail host is 127.0.0.1,
// and port 25 is mapped to whichever server a test runs.
var testZones = map[string]string{
	"example.test":   "@ MX 10 mx1\nmx1 A 127.0.0.1\n",
	"nullmx.test":    "@ MX 0 .\n@ A 127.0.0.1\n",
	"nomx.test":      "@ A 127.0.0.1\n",
	"noaddr.test":    "@ TXT \"no mail here\"\n",
	"badmx.test":     "@ MX 10 mx.nonexistent.badmx.test.\n",
	"cnamemx.test":   "@ MX 10 mail\nmail CNAME mx1.example.test.\n",
	"ipmx.test":      "@ MX 10 127.0.0.1.\n",
	"twomx.test":     "@ MX 20 mx1.example.test.\n@ MX 10 gone\n",
	"wrongname.test": "@ MX 10 mail\nmail A 127.0.0.1\n",
	"v6only.test":    "@ MX 10 mx\nmx AAAA ::1\n",
	"allmx.test":     "@ MX 10 mx1.example.test.\n@ MX 20 mail.wrongname.test.\n",
	"servfail.test":  "@ MX 10 mx1.example.test.\n",
	"timeout.test":   "@ MX 10 mx1.example.test.\n",
}

var postfixDomains = []string{"example.test", "nomx.test", "cnamemx.test", "twomx.test", "wrongname.test", "allmx.test"}

// newEnv starts the lab DNS with testZones and returns an Env whose port
// 25 goes to smtpAddr.
func newEnv(t *testing.T, smtpAddr string) diag.Env {
	t.Helper()
	srv, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for origin, zone := range testZones {
		var o lab.ZoneOptions
		switch origin {
		case "servfail.test":
			o.ServFail = true
		case "timeout.test":
			o.Drop = true
		}
		if err := srv.AddZone(origin, zone, o); err != nil {
			t.Fatal(err)
		}
	}
	client := dnsx.New([]string{srv.Addr})
	client.Timeout = 300 * time.Millisecond
	client.Tries = 1
	return diag.Env{
		Resolver: client,
		Dialer:   &dnsx.Dialer{Resolver: client, ConnectMap: dnsx.ConnectMap{25: smtpAddr}},
		Limits:   diag.Limits{Connect: 5 * time.Second, Command: 20 * time.Second, DNS: 300 * time.Millisecond, DNSTry: 1},
	}
}

func startPostfix(t *testing.T, cert *lab.Leaf) *lab.Postfix {
	t.Helper()
	pf, err := lab.StartPostfix(context.Background(), lab.PostfixConfig{Domains: postfixDomains, Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pf.Stop() })
	return pf
}

// orderSink checks that every step starts before it finishes and that
// steps never overlap: they print in order even though lookups run in
// parallel.
type orderSink struct {
	mu      sync.Mutex
	open    string
	events  []string
	problem string
}

func (s *orderSink) Start(st diag.Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != "" && s.problem == "" {
		s.problem = fmt.Sprintf("step %s started while %s runs", st.ID, s.open)
	}
	s.open = st.ID
	s.events = append(s.events, "start "+st.ID)
}

func (s *orderSink) Finish(st diag.Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open != st.ID && s.problem == "" {
		s.problem = fmt.Sprintf("step %s finished but %q was started", st.ID, s.open)
	}
	if st.Status == "" && s.problem == "" {
		s.problem = "step " + st.ID + " finished without a status"
	}
	s.open = ""
	s.events = append(s.events, "finish "+st.ID)
}

func ids(steps []diag.Step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.ID+":"+string(s.Status))
	}
	return out
}

func find(t *testing.T, steps []diag.Step, id string) diag.Step {
	t.Helper()
	for _, s := range steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in %v", id, ids(steps))
	return diag.Step{}
}

type want struct {
	verdict   Verdict
	decidedBy string
	host      string // decided_host
	steps     []string
	contains  map[string]string // step id → text its title or detail holds
}

func check(t *testing.T, res Result, sink *orderSink, w want) {
	t.Helper()
	if res.Verdict != w.verdict || res.DecidedBy != w.decidedBy || res.DecidedHost != w.host {
		t.Errorf("verdict %s by %s at %q, want %s by %s at %q\nreason: %s\nsteps: %v",
			res.Verdict, res.DecidedBy, res.DecidedHost, w.verdict, w.decidedBy, w.host, res.Reason, ids(res.Steps))
	}
	if res.Reason == "" {
		t.Errorf("no reason given")
	}
	if w.steps != nil {
		if diff := cmp.Diff(w.steps, ids(res.Steps)); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}
	}
	for id, text := range w.contains {
		s := find(t, res.Steps, id)
		if all := s.Title + "\n" + s.Detail + "\n" + s.Hint; !strings.Contains(all, text) {
			t.Errorf("step %s lacks %q:\n%s", id, text, all)
		}
	}
	if sink != nil && sink.problem != "" {
		t.Errorf("step order: %s\n%v", sink.problem, sink.events)
	}
	for _, s := range res.Steps {
		switch s.ID {
		case StepMX, StepAddresses, StepMTASTS, StepTLSRPT, StepDANE:
		default:
			if s.Host == "" || s.IP == "" && s.Status != diag.Skip {
				t.Errorf("per-server step %s lacks host or ip: %+v", s.ID, s)
			}
		}
	}
}

var fullSession = []string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:ok", "ehlo:ok", "starttls:ok",
	"certificate:ok", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"}

// TestRealPostfix runs the delivery test against a real Postfix with a
// certificate from the lab CA.
func TestRealPostfix(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	pf := startPostfix(t, cert)
	env := newEnv(t, pf.SMTP)
	env.Roots = ca.Pool()
	ctx := context.Background()

	unknown := []string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:ok", "ehlo:ok", "starttls:ok",
		"certificate:ok", "ehlo-tls:ok", "mail:ok", "rcpt:fail", "rset:info", "quit:info"}
	tests := []struct {
		name string
		t    Target
		want want
	}{
		{"accepted", Target{Address: "alice@example.test"}, want{Deliverable, StepRcpt, "mx1.example.test", fullSession,
			map[string]string{StepRcpt: "250 2.1.5 Ok", StepCertificate: "certificate valid for mx1.example.test", StepStartTLS: "TLS 1.3"}}},
		{"unknown recipient", Target{Address: "nobody@example.test"}, want{Undeliverable, StepRcpt, "mx1.example.test", unknown,
			map[string]string{StepRcpt: "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table"}}},
		{"bare domain tests postmaster", Target{Domain: "example.test"}, want{Deliverable, StepRcpt, "mx1.example.test", fullSession,
			map[string]string{StepRcpt: "<postmaster@example.test> accepted"}}},
		{"implicit MX", Target{Domain: "nomx.test"}, want{Deliverable, StepRcpt, "nomx.test", nil,
			map[string]string{StepMX: "implicit MX", StepCertificate: "WRONG NAME: the certificate is for mx1.example.test, not nomx.test"}}},
		{"MX names a CNAME", Target{Domain: "cnamemx.test"}, want{Deliverable, StepRcpt, "mail.cnamemx.test", nil,
			map[string]string{StepMX: "an alias (CNAME) for mx1.example.test"}}},
		{"wrong-name certificate", Target{Domain: "wrongname.test"}, want{Deliverable, StepRcpt, "mail.wrongname.test",
			[]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:ok", "ehlo:ok", "starttls:ok",
				"certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"},
			map[string]string{StepCertificate: "the certificate is for mx1.example.test, not mail.wrongname.test"}}},
		{"first MX has no address, second accepts", Target{Domain: "twomx.test"}, want{Deliverable, StepRcpt, "mx1.example.test", nil,
			map[string]string{StepAddresses: "gone.twomx.test: NXDOMAIN", StepMX: "10 gone.twomx.test\n20 mx1.example.test"}}},
		{"null MX", Target{Address: "a@nullmx.test"}, want{Undeliverable, StepMX, "", []string{"mx:fail"},
			map[string]string{StepMX: "this domain accepts no mail"}}},
		{"no such domain", Target{Address: "a@nonexistent.example.test"}, want{Undeliverable, StepMX, "", []string{"mx:fail"},
			map[string]string{StepMX: "NXDOMAIN"}}},
		{"neither MX nor address", Target{Domain: "noaddr.test"}, want{Undeliverable, StepAddresses, "", []string{"mx:warn", "addresses:fail"},
			map[string]string{StepAddresses: "neither MX records nor an address"}}},
		{"MX host does not exist", Target{Domain: "badmx.test"}, want{Undeliverable, StepAddresses, "", []string{"mx:ok", "addresses:fail"},
			map[string]string{StepAddresses: "mx.nonexistent.badmx.test: NXDOMAIN"}}},
		{"MX is an IP literal", Target{Domain: "ipmx.test"}, want{Undeliverable, StepAddresses, "", []string{"mx:warn", "addresses:fail"},
			map[string]string{StepMX: "an IP address, not a host name"}}},
		{"SERVFAIL", Target{Domain: "servfail.test"}, want{Error, StepMX, "", []string{"mx:fail"},
			map[string]string{StepMX: "MX lookup failed: SERVFAIL"}}},
		{"DNS timeout", Target{Domain: "timeout.test"}, want{Error, StepMX, "", []string{"mx:fail"},
			map[string]string{StepMX: "MX lookup failed: timeout"}}},
		{"IPv4 only, host has only IPv6", Target{Domain: "v6only.test", IPv4Only: true}, want{Undeliverable, StepAddresses, "",
			[]string{"mx:ok", "addresses:fail"}, map[string]string{StepAddresses: "(IPv4 only)"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.t.Helo = "probe.mxray.test"
			sink := &orderSink{}
			res := Run(ctx, env, tc.t, sink)
			check(t, res, sink, tc.want)
		})
	}

	t.Run("evidence", func(t *testing.T) {
		res := Run(ctx, env, Target{Address: "alice@example.test", Helo: "probe.mxray.test"}, nil)
		if len(res.MX) != 1 || res.MX[0].Host != "mx1.example.test" || res.MX[0].Addrs[0] != "127.0.0.1" {
			t.Errorf("MX %+v", res.MX)
		}
		if len(res.Attempts) != 1 {
			t.Fatalf("%d attempts", len(res.Attempts))
		}
		a := res.Attempts[0]
		if a.Outcome != Accepted || a.Reply == nil || a.Reply.Code != 250 || a.TLS == nil || a.TLS.Verification.Status != "ok" || len(a.Steps) != 10 {
			t.Errorf("attempt %+v", a)
		}
		ehlo := find(t, res.Steps, StepEHLO)
		if diff := cmp.Diff([]string{"C: EHLO probe.mxray.test"}, ehlo.Transcript[:1]); diff != "" {
			t.Errorf("ehlo transcript (-want +got):\n%s", diff)
		}
		if !strings.Contains(strings.Join(ehlo.Transcript, "\n"), "S: 250-STARTTLS") {
			t.Errorf("ehlo transcript lacks STARTTLS: %v", ehlo.Transcript)
		}
		rcpt := find(t, res.Steps, StepRcpt)
		if diff := cmp.Diff([]string{"C: RCPT TO:<alice@example.test>", "S: 250 2.1.5 Ok"}, rcpt.Transcript); diff != "" {
			t.Errorf("rcpt transcript (-want +got):\n%s", diff)
		}
	})

	t.Run("all MX", func(t *testing.T) {
		for _, all := range []bool{false, true} {
			res := Run(ctx, env, Target{Domain: "allmx.test", Helo: "probe.mxray.test", AllMX: all}, nil)
			var hosts []string
			for _, a := range res.Attempts {
				hosts = append(hosts, a.Host+":"+string(a.Outcome))
			}
			want := []string{"mx1.example.test:accepted"}
			if all {
				want = append(want, "mail.wrongname.test:accepted")
			}
			if diff := cmp.Diff(want, hosts); diff != "" {
				t.Errorf("AllMX %v: attempts (-want +got):\n%s", all, diff)
			}
			if res.Verdict != Deliverable || res.DecidedHost != "mx1.example.test" {
				t.Errorf("AllMX %v: verdict %s at %s", all, res.Verdict, res.DecidedHost)
			}
		}
	})

	t.Run("port closed", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		closed := ln.Addr().String()
		ln.Close()
		env := newEnv(t, closed)
		sink := &orderSink{}
		res := Run(ctx, env, Target{Address: "alice@example.test", Helo: "probe.mxray.test"}, sink)
		check(t, res, sink, want{Error, StepConnect, "mx1.example.test", []string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:fail"},
			map[string]string{StepConnect: "connection refused on port 25"}})
	})

	// TestNothingSent, in effect: every session above reached RCPT at most.
	t.Run("nothing was sent", func(t *testing.T) {
		res := Run(ctx, env, Target{Address: "alice@example.test", Helo: "probe.mxray.test"}, nil)
		if res.Verdict != Deliverable {
			t.Fatalf("verdict %s: %s", res.Verdict, res.Reason)
		}
		for _, l := range res.Attempts[0].Transcript {
			if l.Dir == "C" && (strings.HasPrefix(strings.ToUpper(l.Text), "DATA") || strings.HasPrefix(strings.ToUpper(l.Text), "BDAT")) {
				t.Errorf("the transcript holds %q", l)
			}
		}
		// Wait until Postfix has logged the end of the last session, so
		// that a message, had there been one, would be in the log.
		var log string
		deadline := time.Now().Add(20 * time.Second)
		for {
			log, _ = pf.Log()
			if n := countSessions(log); n > 0 && strings.Count(log, "disconnect from") >= n || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(log, "client=") {
			t.Fatalf("the Postfix log shows no accepted recipient, so it cannot prove anything:\n%s", log)
		}
		for _, line := range strings.Split(log, "\n") {
			if strings.Contains(line, "/cleanup[") && strings.Contains(line, "message-id=") {
				t.Errorf("Postfix cleanup received a message: %s", line)
			}
			if strings.Contains(line, "/qmgr[") && strings.Contains(line, "(queue active)") {
				t.Errorf("Postfix queued a message: %s", line)
			}
		}
		q, err := pf.Postqueue(ctx, "-j")
		if err != nil {
			t.Fatalf("postqueue -j: %v", err)
		}
		if strings.TrimSpace(q) != "" {
			t.Errorf("the queue is not empty:\n%s", q)
		}
	})
}

// countSessions counts the "connect from" lines of smtpd.
func countSessions(log string) int {
	n := 0
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "/smtpd[") && strings.Contains(l, ": connect from ") {
			n++
		}
	}
	return n
}

// TestCertificateAndTLSProblems uses Postfix with an expired certificate
// and Postfix without one.
func TestCertificateAndTLSProblems(t *testing.T) {
	now := time.Now()
	ca, err := lab.NewCA(now.AddDate(0, -3, 0))
	if err != nil {
		t.Fatal(err)
	}
	expired, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: now, NotBefore: now.AddDate(0, -2, 0), NotAfter: now.AddDate(0, 0, -3)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	target := Target{Address: "alice@example.test", Helo: "probe.mxray.test"}

	t.Run("expired certificate", func(t *testing.T) {
		pf := startPostfix(t, expired)
		env := newEnv(t, pf.SMTP)
		env.Roots = ca.Pool()
		sink := &orderSink{}
		res := Run(ctx, env, target, sink)
		check(t, res, sink, want{Deliverable, StepRcpt, "mx1.example.test",
			[]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:ok", "ehlo:ok", "starttls:ok",
				"certificate:warn", "ehlo-tls:ok", "mail:ok", "rcpt:ok", "rset:info", "quit:info"},
			map[string]string{StepCertificate: "certificate problem: expired (opportunistic TLS still encrypts)"}})
		c := find(t, res.Steps, StepCertificate)
		if !strings.Contains(c.Detail, "(-3 days left)") || !strings.Contains(c.Hint, "Renew") {
			t.Errorf("certificate step:\n%s\n%s", c.Detail, c.Hint)
		}
	})

	t.Run("STARTTLS not offered", func(t *testing.T) {
		pf := startPostfix(t, nil)
		env := newEnv(t, pf.SMTP)
		sink := &orderSink{}
		res := Run(ctx, env, target, sink)
		check(t, res, sink, want{Deliverable, StepRcpt, "mx1.example.test",
			[]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:ok", "ehlo:ok", "starttls:warn",
				"certificate:skip", "ehlo-tls:skip", "mail:ok", "rcpt:ok", "rset:info", "quit:info"},
			map[string]string{StepStartTLS: "mail would travel in cleartext"}})
	})
}

// fakeMX is an in-process SMTP server for behaviours Postfix does not
// show on demand.
func fakeMX(t *testing.T, greet bool, rcptReply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if !greet {
					io.Copy(io.Discard, c) // accept, never speak
					return
				}
				io.WriteString(c, "220 grey.test ESMTP\r\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"):
						io.WriteString(c, "250-grey.test\r\n250 ENHANCEDSTATUSCODES\r\n")
					case strings.HasPrefix(cmd, "RCPT"):
						io.WriteString(c, rcptReply)
					case cmd == "QUIT":
						io.WriteString(c, "221 2.0.0 Bye\r\n")
						return
					default:
						io.WriteString(c, "250 2.0.0 Ok\r\n")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestFakeServers(t *testing.T) {
	ctx := context.Background()
	target := Target{Address: "alice@example.test", Helo: "probe.mxray.test"}

	t.Run("greylisting", func(t *testing.T) {
		env := newEnv(t, fakeMX(t, true, "450 4.2.0 <alice@example.test>: Recipient address rejected: Greylisted, see https://grey.test\r\n"))
		sink := &orderSink{}
		res := Run(ctx, env, target, sink)
		check(t, res, sink, want{Temporary, StepRcpt, "mx1.example.test",
			[]string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:ok", "ehlo:ok", "starttls:warn",
				"certificate:skip", "ehlo-tls:skip", "mail:ok", "rcpt:warn", "rset:info", "quit:info"},
			map[string]string{StepRcpt: "Greylisting (RFC 6647)"}})
		if res.Attempts[0].Reply.Enhanced != "4.2.0" {
			t.Errorf("reply %+v", res.Attempts[0].Reply)
		}
	})

	t.Run("silent host", func(t *testing.T) {
		env := newEnv(t, fakeMX(t, false, ""))
		env.Limits.Command = 200 * time.Millisecond
		sink := &orderSink{}
		res := Run(ctx, env, target, sink)
		check(t, res, sink, want{Error, StepBanner, "mx1.example.test", []string{"mx:ok", "addresses:ok", "mta-sts:info", "tls-rpt:info", "dane:info", "connect:ok", "banner:fail"},
			map[string]string{StepBanner: "greeting: no answer within 200ms"}})
	})

	t.Run("SMTPUTF8 needed but not offered", func(t *testing.T) {
		env := newEnv(t, fakeMX(t, true, "250 2.1.5 Ok\r\n"))
		res := Run(ctx, env, Target{Address: "jörg@example.test", Helo: "probe.mxray.test"}, nil)
		check(t, res, nil, want{Undeliverable, StepMail, "mx1.example.test", nil, map[string]string{StepMail: "does not support SMTPUTF8"}})
	})

	t.Run("deadline", func(t *testing.T) {
		env := newEnv(t, fakeMX(t, false, ""))
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		res := Run(cctx, env, target, nil)
		if res.Verdict != Error {
			t.Errorf("verdict %s, want error: %s", res.Verdict, res.Reason)
		}
	})
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in              string
		address, domain string
		rcpt            string
		utf8            bool
		err             bool
	}{
		{in: "alice@Example.TEST", address: "alice@Example.TEST", domain: "Example.TEST", rcpt: "alice@example.test"},
		{in: "example.test.", domain: "example.test.", rcpt: "postmaster@example.test"},
		{in: "a@b@example.test", address: "a@b@example.test", domain: "example.test", rcpt: "a@b@example.test"},
		{in: "jörg@example.test", address: "jörg@example.test", domain: "example.test", rcpt: "jörg@example.test", utf8: true},
		{in: "xn--bcher-kva.test", domain: "xn--bcher-kva.test", rcpt: "postmaster@xn--bcher-kva.test"},
		// The domain as given; the test uses its A-label (RFC 5891).
		{in: "bücher.test", domain: "bücher.test", rcpt: "postmaster@xn--bcher-kva.test"},
		{in: "Jörg@Bücher.test", address: "Jörg@Bücher.test", domain: "Bücher.test", rcpt: "Jörg@xn--bcher-kva.test", utf8: true},
		{in: "ü..test", err: true},
		{in: "@example.test", err: true},
		{in: "alice@", err: true},
		{in: "", err: true},
		{in: "alice@exa mple.test", err: true},
		{in: "al ice@example.test", err: true},
		{in: "alice>\r\nDATA@example.test", err: true},
	}
	for _, tc := range tests {
		got, err := ParseTarget(tc.in)
		if tc.err {
			if !errors.Is(err, ErrBadTarget) {
				t.Errorf("%q: error %v, want ErrBadTarget", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		_, rcpt, utf8, _ := got.normal()
		if got.Address != tc.address || got.Domain != tc.domain || rcpt != tc.rcpt || utf8 != tc.utf8 {
			t.Errorf("%q: %+v rcpt %q utf8 %v", tc.in, got, rcpt, utf8)
		}
	}
	res := Run(context.Background(), diag.Env{}, Target{Address: "alice@example.test", MailFrom: "x\r\nDATA"}, nil)
	if res.Verdict != Error || !strings.Contains(res.Reason, "mail from") {
		t.Errorf("bad --mail-from: %s %s", res.Verdict, res.Reason)
	}
}
