// Package probe checks the mail services of one host from the outside, as
// a mail client and a sending server see them: SMTP on port 25 (RFC 5321),
// submission on 587 (RFC 6409) and 465 (RFC 8314), IMAP on 143 and 993
// (RFC 9051), POP3 on 110 and 995 (RFC 1939) and ManageSieve on 4190
// (RFC 5804). For each service, in parallel, it connects (telling a
// refused port from a filtered one), reads the greeting and the
// capabilities, upgrades to TLS (STARTTLS, RFC 3207 / RFC 2595 /
// RFC 5804 §2.2, or implicit TLS, RFC 8314) and judges the certificate
// (internal/tlsinfo), tries each TLS version from 1.0 to 1.3 on its own
// (RFC 8996 deprecates 1.0 and 1.1), lists the login mechanisms and finds
// plaintext logins offered before TLS (RFC 8314 §3), logs in when given
// credentials (over TLS only) and, on port 25, checks that the server is
// not an open relay (RFC 5321 §3.6.2) without ever sending DATA.
//
// RoundTrip sends one tagged test message through submission and waits
// for it in the IMAP mailbox, then deletes it: the only diagnostic of
// mxray that sends a message (smtpc.SendMessageForRoundTrip).
//
// Not supported: SSLv3 (Go's crypto/tls does not implement it, so it
// cannot be tested), cipher-suite enumeration (only the suite negotiated
// per version is shown), DANE and MTA-STS (see internal/dane and
// internal/mtasts), SASL mechanisms other than PLAIN and LOGIN, and IMAP
// IDLE (the round trip polls).
package probe

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/tlsinfo"
)

// Service is one mail service the probe knows.
type Service string

const (
	SMTP        Service = "smtp"        // port 25, server to server, STARTTLS (RFC 5321, RFC 3207)
	Submission  Service = "submission"  // port 587, STARTTLS then AUTH (RFC 6409)
	Submissions Service = "submissions" // port 465, implicit TLS (RFC 8314 §3.3)
	IMAP        Service = "imap"        // port 143, STARTTLS (RFC 9051)
	IMAPS       Service = "imaps"       // port 993, implicit TLS (RFC 8314)
	POP3        Service = "pop3"        // port 110, STLS (RFC 1939, RFC 2595)
	POP3S       Service = "pop3s"       // port 995, implicit TLS (RFC 8314)
	Sieve       Service = "sieve"       // port 4190, ManageSieve with STARTTLS (RFC 5804)
)

// Services are all services, in the order they are shown.
var Services = []Service{SMTP, Submission, Submissions, IMAP, IMAPS, POP3, POP3S, Sieve}

// Port is the service's well-known port.
func (s Service) Port() int {
	return map[Service]int{SMTP: 25, Submission: 587, Submissions: 465, IMAP: 143, IMAPS: 993,
		POP3: 110, POP3S: 995, Sieve: 4190}[s]
}

// ImplicitTLS reports a service that starts with the TLS handshake.
func (s Service) ImplicitTLS() bool { return s == Submissions || s == IMAPS || s == POP3S }

// Proto is the protocol spoken: smtp, imap, pop3 or sieve.
func (s Service) Proto() string {
	switch s {
	case SMTP, Submission, Submissions:
		return "smtp"
	case IMAP, IMAPS:
		return "imap"
	case POP3, POP3S:
		return "pop3"
	}
	return "sieve"
}

// clientFacing services carry users' passwords: every TLS problem there
// is a failure, while on port 25 senders deliver opportunistically
// whatever the certificate (RFC 7435), so it is a warning.
func (s Service) clientFacing() bool { return s != SMTP }

// ErrUnknownService: a service name that is not one of Services.
var ErrUnknownService = errors.New("probe: unknown service")

// ParseServices reads a comma-separated list of service names, or "all".
// explicit is false for "all": a closed port is then a finding only when
// nothing answers at all.
func ParseServices(list string) (svcs []Service, explicit bool, err error) {
	seen := map[Service]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		if name == "" {
			continue
		}
		if name == "all" {
			return append([]Service(nil), Services...), false, nil
		}
		s := Service(name)
		if s.Port() == 0 {
			return nil, false, fmt.Errorf("%w %q (want all or some of smtp, submission, submissions, imap, imaps, pop3, pop3s, sieve)", ErrUnknownService, name)
		}
		if !seen[s] {
			seen[s] = true
			svcs = append(svcs, s)
		}
	}
	if len(svcs) == 0 {
		return nil, false, fmt.Errorf("%w: empty list", ErrUnknownService)
	}
	// Shown in the fixed order, whatever the order asked.
	var ordered []Service
	for _, s := range Services {
		if seen[s] {
			ordered = append(ordered, s)
		}
	}
	return ordered, true, nil
}

// Target is what to probe.
type Target struct {
	Host     string
	Services []Service
	// Explicit: the user named the services, so a port that does not
	// answer is a failure; otherwise it only means "not offered".
	Explicit bool
	// Port overrides the well-known port (one service only).
	Port int
	// User and Password, when set, are used for a real login on every
	// client-facing service, over TLS only. The password never reaches
	// the transcript, the steps or the log.
	User, Password string
	// Helo is the name for EHLO.
	Helo string
}

// Cell is one cell of the matrix: a status and a word or two.
type Cell struct {
	Status diag.Status `json:"status"`
	Text   string      `json:"text"`
}

// Matrix is a service's row: connect, TLS, certificate, auth, login.
type Matrix struct {
	Connect Cell `json:"connect"`
	TLS     Cell `json:"tls"`
	Cert    Cell `json:"cert"`
	Auth    Cell `json:"auth"`
	Login   Cell `json:"login"`
}

// VersionResult is the outcome of a handshake limited to one TLS version.
type VersionResult struct {
	Version     string `json:"version"` // "TLS 1.0" …
	Accepted    bool   `json:"accepted"`
	CipherSuite string `json:"cipher_suite,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Login is the outcome of a login attempt.
type Login struct {
	User      string `json:"user"`
	Mechanism string `json:"mechanism,omitempty"`
	OK        bool   `json:"ok"`
	Reply     string `json:"reply,omitempty"` // the server's exact answer
	Error     string `json:"error,omitempty"`
}

// Relay is the outcome of the open-relay check on port 25.
type Relay struct {
	MailFrom  string `json:"mail_from"`
	RcptTo    string `json:"rcpt_to"`
	MailReply string `json:"mail_reply,omitempty"`
	RcptReply string `json:"rcpt_reply,omitempty"`
	Open      bool   `json:"open"`
}

// ServiceResult is everything found about one service.
type ServiceResult struct {
	Service Service     `json:"service"`
	Port    int         `json:"port"`
	Status  diag.Status `json:"status"` // the worst of its steps
	Matrix  Matrix      `json:"matrix"`
	// Address is the address dialled; ConnectedTo where the connection
	// went (they differ under --connect-map).
	Address     string `json:"address,omitempty"`
	ConnectedTo string `json:"connected_to,omitempty"`
	Greeting    string `json:"greeting,omitempty"`
	// Capabilities before TLS (for STARTTLS services) and in TLS.
	Capabilities    []string        `json:"capabilities,omitempty"`
	CapabilitiesTLS []string        `json:"capabilities_tls,omitempty"`
	TLS             *tlsinfo.Info   `json:"tls,omitempty"`
	TLSVersions     []VersionResult `json:"tls_versions,omitempty"`
	// AuthMechanisms are the login mechanisms offered in TLS (or in
	// cleartext when there is no TLS); LOGIN-COMMAND is IMAP's LOGIN and
	// USER POP3's USER/PASS. AuthBeforeTLS are those that send the
	// password itself, offered before STARTTLS.
	AuthMechanisms []string `json:"auth_mechanisms"`
	AuthBeforeTLS  []string `json:"auth_before_tls,omitempty"`
	Login          *Login   `json:"login,omitempty"`
	Relay          *Relay   `json:"relay,omitempty"`
	Error          string   `json:"error,omitempty"`

	Steps []diag.Step `json:"-"`
}

// Result is the outcome of a probe.
type Result struct {
	Host      string          `json:"host"`
	Addresses []string        `json:"addresses,omitempty"`
	Status    diag.Status     `json:"status"` // the worst of all steps
	Services  []ServiceResult `json:"services"`
	// Unchecked is set when nothing could be checked (the name does not
	// resolve, or no service answered): the reason.
	Unchecked string `json:"unchecked,omitempty"`
	// NotFound is set when the host name does not exist (NXDOMAIN) or has
	// no address: a finding, not a failure to check.
	NotFound bool        `json:"not_found,omitempty"`
	Steps    []diag.Step `json:"-"`
}

// Step ids. Per-service steps are prefixed by the service:
// "imap.connect", "smtp.relay".
const (
	StepAddress      = "address"
	StepConnect      = "connect"
	StepGreeting     = "greeting"
	StepCapabilities = "capabilities"
	StepTLS          = "tls"
	StepCertificate  = "certificate"
	StepVersions     = "tls-versions"
	StepAuth         = "auth"
	StepLogin        = "login"
	StepRelay        = "relay"
)

// Run probes the target's services in parallel. Steps go to out in a
// stable order: the address step, then each service's steps, service by
// service in the order of Services, each service as soon as it and the
// ones before it are done.
func Run(ctx context.Context, env diag.Env, t Target, out diag.Sink) Result {
	rec := &diag.Recorder{}
	sink := diag.Tee(out, rec)
	res := Result{Host: strings.TrimSuffix(t.Host, ".")}
	t.Host = res.Host

	addrs, ok := resolve(ctx, env, t.Host, sink, &res)
	if !ok {
		res.Steps = rec.Steps
		res.Status = diag.Worst(res.Steps)
		return res
	}
	results := make([]ServiceResult, len(t.Services))
	done := make([]chan struct{}, len(t.Services))
	for i, svc := range t.Services {
		done[i] = make(chan struct{})
		go func() {
			defer close(done[i])
			results[i] = probeService(ctx, env, t, svc, addrs)
		}()
	}
	for i := range t.Services {
		<-done[i]
		for _, st := range results[i].Steps {
			sink.Start(diag.Step{ID: st.ID, Title: st.Title})
			sink.Finish(st)
		}
	}
	res.Services = results
	res.Steps = rec.Steps
	res.Status = diag.Worst(res.Steps)
	connected := false
	for _, r := range results {
		if r.ConnectedTo != "" {
			connected = true
		}
	}
	if !connected && ctx.Err() != nil {
		res.Unchecked = "the deadline passed before any service answered"
	} else if !connected && !t.Explicit {
		res.Unchecked = fmt.Sprintf("no mail service answered on %s", t.Host)
	}
	return res
}

// resolve finds the host's addresses (none needed for an IP literal).
func resolve(ctx context.Context, env diag.Env, host string, sink diag.Sink, res *Result) ([]netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		res.Addresses = []string{a.String()}
		return []netip.Addr{a}, true
	}
	tr := diag.Begin(env, sink, StepAddress, "addresses of "+host)
	ips, err := dnsx.LookupIP(ctx, env.Resolver, host, dnsx.IPv4|dnsx.IPv6)
	if err != nil {
		st := diag.Step{Status: diag.Fail, Title: "no address for " + host, Detail: err.Error(), Host: host}
		switch {
		case dnsx.Temporary(err):
			res.Unchecked = fmt.Sprintf("looking up %s failed: %v", host, err)
			st.Title = "address lookup failed for " + host
			st.Hint = "Check the resolver (--resolver) and try again."
		default:
			res.NotFound = true
			st.Hint = "Check the name: it needs an A or AAAA record for clients to reach the mail services."
		}
		tr.Done(st)
		return nil, false
	}
	var list []string
	for _, a := range ips.Addrs {
		list = append(list, a.String())
	}
	res.Addresses = list
	tr.Done(diag.Step{Status: diag.OK, Title: fmt.Sprintf("%s has %s", host, strings.Join(list, ", ")), Host: host,
		Data: map[string]any{"addresses": list, "ad": ips.AD}})
	return ips.Addrs, true
}

// collect is a Sink that keeps one service's steps, for Run to emit in
// order.
type collect struct {
	mu    sync.Mutex
	steps []diag.Step
}

func (c *collect) Start(diag.Step) {}
func (c *collect) Finish(s diag.Step) {
	c.mu.Lock()
	c.steps = append(c.steps, s)
	c.mu.Unlock()
}
