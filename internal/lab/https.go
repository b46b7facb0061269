package lab

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// HTTPSServer serves several virtual hosts (mta-sts.example.test,
// autoconfig.example.test, ...) on one loopback port, each with its own
// certificate chosen by SNI, as the real internet would on port 443.
type HTTPSServer struct {
	Addr string

	ca    *CA
	now   func() time.Time
	srv   *http.Server
	mu    sync.RWMutex
	hosts map[string]vhost
}

type vhost struct {
	h    http.Handler
	cert *tls.Certificate
}

// StartHTTPS listens on addr ("127.0.0.1:0" for a free port).
func StartHTTPS(addr string, ca *CA, now func() time.Time) (*HTTPSServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("lab: https listen %s: %w", addr, err)
	}
	s := &HTTPSServer{Addr: ln.Addr().String(), ca: ca, now: now, hosts: map[string]vhost{}}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(s.route),
		ReadHeaderTimeout: 10 * time.Second,
		// Handshake failures are what broken-certificate scenarios are
		// for: not worth a log line.
		ErrorLog: log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{
			MinVersion:     tls.VersionTLS12,
			GetCertificate: s.certFor,
		},
	}
	go s.srv.ServeTLS(ln, "", "")
	return s, nil
}

// Handle serves host with h. cert, when nil, is a valid certificate for
// host from the lab CA; give an expired, self-signed or wrong-name one to
// build a broken scenario.
func (s *HTTPSServer) Handle(host string, h http.Handler, cert *Leaf) error {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if cert == nil {
		var err error
		cert, err = s.ca.Issue([]string{host}, CertOptions{Now: s.now()})
		if err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.hosts[host] = vhost{h: h, cert: &cert.TLS}
	s.mu.Unlock()
	return nil
}

var errNoHost = errors.New("lab: no such virtual host")

func (s *HTTPSServer) certFor(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if v, ok := s.hosts[strings.ToLower(hello.ServerName)]; ok {
		return v.cert, nil
	}
	return nil, fmt.Errorf("%w: %q", errNoHost, hello.ServerName)
}

func (s *HTTPSServer) route(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	s.mu.RLock()
	v, ok := s.hosts[strings.ToLower(host)]
	s.mu.RUnlock()
	if !ok {
		http.Error(w, "lab: unknown host "+host, http.StatusMisdirectedRequest)
		return
	}
	v.h.ServeHTTP(w, r)
}

// Close stops the server.
func (s *HTTPSServer) Close() error { return s.srv.Close() }
