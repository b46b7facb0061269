package lab

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/mxray/mxray/internal/dnsx"
)

// WorldOptions choose what a World runs.
type WorldOptions struct {
	DNSListen string // default 127.0.0.1:0
	// Servers also starts real Postfix and Dovecot behind the scenario
	// domains (needs root and Debian's packages).
	Servers bool
	Now     func() time.Time
}

// World is the whole lab as `mxray lab` runs it: DNS with the scenario
// domains, the CA and its HTTPS server, and optionally real Postfix and
// Dovecot for mx1.example.test.
type World struct {
	DNS     *DNSServer
	CA      *CA
	CAFile  string // the CA certificate, for --tls-ca
	HTTPS   *HTTPSServer
	Postfix *Postfix
	Dovecot *Dovecot
	// Unbound is a validating resolver for the DANE scenarios (with
	// Servers, when unbound is installed): it serves DANE's signed zones
	// itself and forwards the rest to DNS. Give it as --resolver to see
	// DANE at work; through DNS the same zones answer without the AD bit.
	Unbound *Unbound
	// DANE are the DANE scenario domains, made when the World starts: their
	// TLSA records describe the Postfix certificate issued then.
	DANE []Scenario
	// ConnectMap sends the well-known ports to the lab's servers; give it
	// to mxray as --connect-map.
	ConnectMap dnsx.ConnectMap
	dir        string
}

// StartWorld starts the lab. Close it when done.
func StartWorld(ctx context.Context, o WorldOptions) (w *World, err error) {
	if o.DNSListen == "" {
		o.DNSListen = "127.0.0.1:0"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w = &World{ConnectMap: dnsx.ConnectMap{}}
	defer func() {
		if err != nil {
			w.Close()
			w = nil
		}
	}()
	if w.DNS, err = StartDNS(o.DNSListen); err != nil {
		return nil, err
	}
	if err = LoadScenarios(w.DNS); err != nil {
		return nil, err
	}
	if w.CA, err = NewCA(o.Now()); err != nil {
		return nil, err
	}
	if w.dir, err = os.MkdirTemp("", "mxray-lab-"); err != nil {
		return nil, err
	}
	w.CAFile = filepath.Join(w.dir, "lab-ca.pem")
	if err = os.WriteFile(w.CAFile, w.CA.PEM, 0o644); err != nil {
		return nil, err
	}
	if w.HTTPS, err = StartHTTPS("127.0.0.1:0", w.CA, o.Now); err != nil {
		return nil, err
	}
	w.mapPort(443, w.HTTPS.Addr)
	if err = serveFiles(w.HTTPS, Scenarios()); err != nil {
		return nil, err
	}
	if !o.Servers {
		return w, nil
	}
	cert, err := w.CA.Issue([]string{"mx1.example.test"}, CertOptions{Now: o.Now()})
	if err != nil {
		return nil, err
	}
	if w.Dovecot, err = StartDovecot(ctx, DovecotConfig{Cert: cert}); err != nil {
		return nil, err
	}
	other, err := w.CA.Issue([]string{"other.dane-bad.test"}, CertOptions{Now: o.Now()})
	if err != nil {
		return nil, err
	}
	w.DANE = daneScenarios(cert.Cert, other.Cert)
	// The delivery test's scenario domains whose MX is mx1.example.test or
	// a DANE host on 127.0.0.1: Postfix accepts their postmaster and alice.
	domains := []string{"example.test", "sts-good.test"}
	for _, sc := range w.DANE {
		domains = append(domains, sc.Domain)
	}
	if w.Postfix, err = StartPostfix(ctx, PostfixConfig{Cert: cert, Domains: domains, LMTP: w.Dovecot.LMTP, SASLAuth: w.Dovecot.Auth}); err != nil {
		return nil, err
	}
	if w.Unbound, err = w.startDANE(ctx, o.Now()); err != nil {
		return nil, err
	}
	for port, addr := range map[int]string{
		25: w.Postfix.SMTP, 587: w.Postfix.Submission,
		143: w.Dovecot.IMAP, 993: w.Dovecot.IMAPS, 110: w.Dovecot.POP3, 995: w.Dovecot.POP3S, 4190: w.Dovecot.Sieve,
	} {
		w.mapPort(port, addr)
	}
	return w, nil
}

// daneScenarios are the DANE domains for a Postfix whose certificate is
// leaf; other is a certificate Postfix does not have.
func daneScenarios(leaf, other *x509.Certificate) []Scenario {
	ee := func(c *x509.Certificate) string {
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		return "3 1 1 " + hex.EncodeToString(sum[:])
	}
	return []Scenario{
		{
			Domain:      "dane.test",
			Description: "DANE: mx.dane.test has a DANE-EE(3) TLSA record for Postfix's key, signed and validated (RFC 7672); the certificate's name does not matter",
			Zone:        "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee(leaf) + "\n",
		},
		{
			Domain:      "dane-bad.test",
			Description: "DANE: the TLSA record describes another key: DANE senders must not deliver to mx.dane-bad.test (RFC 7672 §2.2)",
			Zone:        "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee(other) + "\n",
		},
		{
			Domain:      "dane-bogus.test",
			Description: "DANE: the TLSA record was changed after signing: the validating resolver answers SERVFAIL and senders defer (RFC 7672 §2.1.1)",
			Zone:        "@ MX 10 mx\nmx A 127.0.0.1\n_25._tcp.mx TLSA " + ee(leaf) + "\n",
		},
	}
}

// startDANE signs the DANE scenarios, serves them unvalidated from DNS
// and starts unbound to validate them. Without unbound installed there is
// no DANE in the World (nil, nil).
func (w *World) startDANE(ctx context.Context, now time.Time) (*Unbound, error) {
	if err := need("unbound", "unbound"); err != nil {
		w.DANE = nil
		return nil, nil
	}
	var signed []*SignedZone
	for _, sc := range w.DANE {
		z, err := ParseZone(sc.Domain, sc.Zone)
		if err != nil {
			return nil, err
		}
		sz, err := SignZone(z, now)
		if err != nil {
			return nil, err
		}
		if sc.Domain == "dane-bogus.test" {
			// A change after signing: the RRSIG no longer matches.
			for _, rr := range sz.Records {
				if t, ok := rr.(*dns.TLSA); ok {
					t.Certificate = strings.Repeat("00", 32)
				}
			}
		}
		if err := w.DNS.AddZone(sc.Domain, sz.Text(), ZoneOptions{}); err != nil {
			return nil, err
		}
		signed = append(signed, sz)
	}
	return StartUnbound(ctx, UnboundConfig{Forward: w.DNS.Addr, ForwardZones: w.DNS.Zones(), Signed: signed})
}

// mapPort maps a well-known port to a lab listener on the same loopback
// address as the scenario hosts, keeping only the port ("PORT=:NNNN") so
// that each scenario host keeps its own address.
func (w *World) mapPort(port int, addr string) {
	if addr == "" {
		return
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return
	}
	n, _ := strconv.Atoi(p)
	if n > 0 {
		w.ConnectMap[port] = ":" + p
	}
}

// Close stops everything the World started.
func (w *World) Close() error {
	if w == nil {
		return nil
	}
	var errs []error
	if w.Unbound != nil {
		errs = append(errs, w.Unbound.Stop())
	}
	if w.Postfix != nil {
		errs = append(errs, w.Postfix.Stop())
	}
	if w.Dovecot != nil {
		errs = append(errs, w.Dovecot.Stop())
	}
	if w.HTTPS != nil {
		errs = append(errs, w.HTTPS.Close())
	}
	if w.DNS != nil {
		errs = append(errs, w.DNS.Close())
	}
	if w.dir != "" {
		os.RemoveAll(w.dir)
	}
	return errors.Join(errs...)
}

// serveFiles registers the scenarios' Files on s: one virtual host per
// host name, each path served as text/plain, anything else 404.
func serveFiles(s *HTTPSServer, scs []Scenario) error {
	hosts := map[string]map[string]string{}
	for _, sc := range scs {
		for key, body := range sc.Files {
			host, path, ok := strings.Cut(key, "/")
			if !ok || host == "" {
				return fmt.Errorf("lab: scenario %s: file %q is not host/path", sc.Domain, key)
			}
			if hosts[host] == nil {
				hosts[host] = map[string]string{}
			}
			hosts[host]["/"+path] = body
		}
	}
	for host, files := range hosts {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, ok := files[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, body)
		})
		if err := s.Handle(host, h, nil); err != nil {
			return err
		}
	}
	return nil
}
