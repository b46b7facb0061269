package lab_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/lab"
)

func newCA(t *testing.T) *lab.CA {
	t.Helper()
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestCertificateVariants(t *testing.T) {
	ca := newCA(t)
	now := time.Now()
	issue := func(names []string, o lab.CertOptions) *x509.Certificate {
		t.Helper()
		o.Now = now
		l, err := ca.Issue(names, o)
		if err != nil {
			t.Fatal(err)
		}
		return l.Cert
	}
	verify := func(c *x509.Certificate, name string) error {
		_, err := c.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: name, CurrentTime: now})
		return err
	}
	if err := verify(issue([]string{"mx1.example.test"}, lab.CertOptions{}), "mx1.example.test"); err != nil {
		t.Errorf("valid certificate does not verify: %v", err)
	}
	var inv x509.CertificateInvalidError
	err := verify(issue([]string{"mx1.example.test"}, lab.CertOptions{NotBefore: now.AddDate(0, 0, -60), NotAfter: now.AddDate(0, 0, -1)}), "mx1.example.test")
	if !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("expired certificate: %v, want x509.Expired", err)
	}
	var hn x509.HostnameError
	if err := verify(issue([]string{"other.example.test"}, lab.CertOptions{}), "mx1.example.test"); !errors.As(err, &hn) {
		t.Errorf("wrong-name certificate: %v, want a HostnameError", err)
	}
	var ua x509.UnknownAuthorityError
	if err := verify(issue([]string{"mx1.example.test"}, lab.CertOptions{SelfSigned: true}), "mx1.example.test"); !errors.As(err, &ua) {
		t.Errorf("self-signed certificate: %v, want UnknownAuthorityError", err)
	}
}

func TestHTTPSVirtualHosts(t *testing.T) {
	ca := newCA(t)
	s, err := lab.StartHTTPS("127.0.0.1:0", ca, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	policy := "version: STSv1\nmode: enforce\nmx: mx1.example.test\nmax_age: 86400\n"
	s.Handle("mta-sts.example.test", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, policy)
	}), nil)
	expired, _ := ca.Issue([]string{"mta-sts.expired.test"}, lab.CertOptions{Now: time.Now(), NotAfter: time.Now().Add(-time.Hour)})
	s.Handle("mta-sts.expired.test", http.NotFoundHandler(), expired)

	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.Addr) // port 443 stand-in
		},
	}}
	resp, err := client.Get("https://mta-sts.example.test/.well-known/mta-sts.txt")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != policy || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("got %q (%s)", body, resp.Header.Get("Content-Type"))
	}
	_, err = client.Get("https://mta-sts.expired.test/")
	var ce *tls.CertificateVerificationError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired host: %v, want a certificate verification error about expiry", err)
	}
}

// readReply reads one (possibly multi-line) SMTP reply.
func readReply(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var all strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading reply: %v (so far %q)", err, all.String())
		}
		all.WriteString(line)
		if len(line) < 4 || line[3] == ' ' {
			return all.String()
		}
	}
}

func TestRealPostfixAndDovecot(t *testing.T) {
	ctx := context.Background()
	ca := newCA(t)
	cert, err := ca.Issue([]string{"mx1.example.test"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	dv, err := lab.StartDovecot(ctx, lab.DovecotConfig{Cert: cert})
	if err != nil {
		t.Fatal(err)
	}
	defer dv.Stop()
	pf, err := lab.StartPostfix(ctx, lab.PostfixConfig{Cert: cert, LMTP: dv.LMTP, SASLAuth: dv.Auth})
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Stop()

	// SMTP: banner, EHLO offers STARTTLS, unknown user refused with 550.
	c, err := net.Dial("tcp", pf.SMTP)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	if got := readReply(t, r); !strings.HasPrefix(got, "220 mx1.example.test ESMTP") {
		t.Errorf("banner %q", got)
	}
	send := func(cmd string) string {
		io.WriteString(c, cmd+"\r\n")
		return readReply(t, r)
	}
	if got := send("EHLO probe.test"); !strings.Contains(got, "250-STARTTLS") {
		t.Errorf("EHLO lacks STARTTLS:\n%s", got)
	}
	send("MAIL FROM:<>")
	if got := send("RCPT TO:<alice@example.test>"); !strings.HasPrefix(got, "250") {
		t.Errorf("known user: %q", got)
	}
	if got := send("RCPT TO:<nobody@example.test>"); !strings.HasPrefix(got, "550 5.1.1") {
		t.Errorf("unknown user: %q, want 550 5.1.1", got)
	}
	send("QUIT")
	c.Close()

	// IMAP: greeting, then a login (STARTTLS first: plaintext is refused
	// before TLS when the server has a certificate). Dovecot counts a
	// client whose address equals its own as secure, so come from another
	// loopback address, as a remote client would.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c, err = d.Dial("tcp", dv.IMAP)
	if err != nil {
		t.Fatal(err)
	}
	r = bufio.NewReader(c)
	greet, _ := r.ReadString('\n')
	if !strings.HasPrefix(greet, "* OK") || !strings.Contains(greet, "STARTTLS") || !strings.Contains(greet, "LOGINDISABLED") {
		t.Errorf("IMAP greeting %q, want * OK with STARTTLS and LOGINDISABLED", greet)
	}
	io.WriteString(c, "a STARTTLS\r\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "a OK") {
		t.Fatalf("STARTTLS: %q", l)
	}
	tc := tls.Client(c, &tls.Config{RootCAs: ca.Pool(), ServerName: "mx1.example.test"})
	r = bufio.NewReader(tc)
	io.WriteString(tc, "b LOGIN alice@example.test alice-password\r\n")
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("IMAP login: %v", err)
		}
		if strings.HasPrefix(l, "b ") {
			if !strings.HasPrefix(l, "b OK") {
				t.Errorf("IMAP login: %q", l)
			}
			break
		}
	}
	tc.Close()

	// Implicit TLS on imaps.
	ic, err := tls.Dial("tcp", dv.IMAPS, &tls.Config{RootCAs: ca.Pool(), ServerName: "mx1.example.test"})
	if err != nil {
		t.Fatalf("imaps: %v", err)
	}
	greet, _ = bufio.NewReader(ic).ReadString('\n')
	ic.Close()
	if !strings.HasPrefix(greet, "* OK") {
		t.Errorf("imaps greeting %q", greet)
	}

	if q, err := pf.Postqueue(ctx, "-j"); err != nil || strings.TrimSpace(q) != "" {
		t.Errorf("postqueue -j = %q, %v; want an empty queue", q, err)
	}
	smtpAddr, imapAddr := pf.SMTP, dv.IMAP
	if err := pf.Stop(); err != nil {
		t.Errorf("postfix stop: %v", err)
	}
	if err := dv.Stop(); err != nil {
		t.Errorf("dovecot stop: %v", err)
	}
	for _, a := range []string{smtpAddr, imapAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Stop", a)
		}
	}
}

func TestUnboundEarnsTheADBit(t *testing.T) {
	ctx := context.Background()
	labDNS, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer labDNS.Close()
	if err := lab.LoadScenarios(labDNS); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sign := func(origin, text string) *lab.SignedZone {
		t.Helper()
		z, err := lab.ParseZone(origin, text)
		if err != nil {
			t.Fatal(err)
		}
		s, err := lab.SignZone(z, now)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign("dane.test", `
@ MX 10 mx
mx A 127.0.0.1
_25._tcp.mx TLSA 3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
`)
	bogus := sign("bogus.test", "@ MX 10 mx\nmx A 127.0.0.1\n")
	// Change a signed record after signing: its RRSIG no longer matches.
	for _, rr := range bogus.Records {
		if a, ok := rr.(*dns.A); ok {
			a.A = net.ParseIP("127.0.0.66")
		}
	}
	ub, err := lab.StartUnbound(ctx, lab.UnboundConfig{Forward: labDNS.Addr, ForwardZones: labDNS.Zones(), Signed: []*lab.SignedZone{good, bogus}})
	if err != nil {
		t.Fatal(err)
	}
	defer ub.Stop()

	c := dnsx.New([]string{ub.Addr})
	r, err := c.Query(ctx, "_25._tcp.mx.dane.test", dns.TypeTLSA)
	if err != nil {
		t.Fatal(err)
	}
	if !r.AD || len(r.Records) != 1 {
		t.Errorf("signed TLSA: AD=%v records=%d, want AD and one record", r.AD, len(r.Records))
	}
	// Authenticated denial: NXDOMAIN below the signed zone is validated too.
	_, err = c.Query(ctx, "nope.dane.test", dns.TypeA)
	var de *dnsx.Error
	if !errors.As(err, &de) || !errors.Is(err, dnsx.ErrNXDomain) || de.Response == nil || !de.Response.AD {
		t.Errorf("signed NXDOMAIN: %v, want a validated NXDOMAIN", err)
	}
	// The lab server marks example.test as validated, but unbound has no
	// trust anchor for it: insecure, no AD.
	r, err = c.Query(ctx, "example.test", dns.TypeMX)
	if err != nil {
		t.Fatal(err)
	}
	if r.AD {
		t.Error("unsigned example.test came back with AD through unbound")
	}
	if _, err := c.Query(ctx, "mx.bogus.test", dns.TypeA); !errors.Is(err, dnsx.ErrServFail) {
		t.Errorf("tampered zone: %v, want SERVFAIL (bogus)", err)
	}
}

func TestZoneParsing(t *testing.T) {
	// A catch-all root zone answers NXDOMAIN with a usable SOA.
	root, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := root.AddZone(".", "known.example. A 127.0.0.1\n", lab.ZoneOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := dnsx.New([]string{root.Addr}).Query(context.Background(), "unknown.example", dns.TypeA); !errors.Is(err, dnsx.ErrNXDomain) {
		t.Errorf("root zone NXDOMAIN: %v", err)
	}

	if _, err := lab.ParseZone("example.test", "www A 300.1.1.1\n"); err == nil {
		t.Error("a bad address was accepted")
	}
	if _, err := lab.ParseZone("example.test", "other.test. A 127.0.0.1\n"); err == nil || !strings.Contains(err.Error(), "outside the zone") {
		t.Errorf("record outside the zone: %v", err)
	}
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.AddZone("wild.test", "*.w A 127.0.0.4\n", lab.ZoneOptions{})
	r, err := dnsx.New([]string{s.Addr}).Query(context.Background(), "anything.w.wild.test", dns.TypeA)
	if err != nil || len(r.Addrs()) != 1 || r.Addrs()[0].String() != "127.0.0.4" || r.Records[0].Header().Name != "anything.w.wild.test." {
		t.Errorf("wildcard: %v, %v", r, err)
	}
}
