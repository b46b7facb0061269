package mtasts

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
)

// TLSSummary is what the policy host presented.
type TLSSummary struct {
	Version   string    `json:"version"`
	Cipher    string    `json:"cipher"`
	Subject   string    `json:"subject,omitempty"`
	Issuer    string    `json:"issuer,omitempty"`
	SANs      []string  `json:"sans,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// Verified is true when the chain leads to a trusted root and names
	// the policy host, at the run's clock.
	Verified    bool   `json:"verified"`
	VerifyError string `json:"verify_error,omitempty"`
}

// PolicyResult is the outcome of fetching and parsing a domain's policy.
type PolicyResult struct {
	Status      Status      `json:"status"`
	Domain      string      `json:"domain"`
	URL         string      `json:"url"`
	HTTPStatus  int         `json:"http_status,omitempty"`
	ContentType string      `json:"content_type,omitempty"`
	Location    string      `json:"location,omitempty"` // of a redirect, which is not followed
	Body        string      `json:"body,omitempty"`     // as served, at most MaxPolicySize bytes
	Truncated   bool        `json:"truncated,omitempty"`
	TLS         *TLSSummary `json:"tls,omitempty"`
	// Policy is the parsed body, also when the fetch failed for another
	// reason (a wrong media type) so that every defect shows.
	Policy   *Policy        `json:"policy,omitempty"`
	Errors   []*PolicyError `json:"syntax_errors,omitempty"`
	Findings []Finding      `json:"findings,omitempty"`
	Error    string         `json:"error,omitempty"`
	Err      error          `json:"-"`
	Elapsed  time.Duration  `json:"-"`
}

// PolicyURL returns the well-known URL of a domain's policy (RFC 8461 §3.2).
func PolicyURL(domain string) string {
	return "https://mta-sts." + strings.TrimSuffix(strings.ToLower(domain), ".") + "/.well-known/mta-sts.txt"
}

// FetchPolicy fetches https://mta-sts.<domain>/.well-known/mta-sts.txt
// through env.Dialer (so the connect map applies) and parses it. The
// certificate must be valid for mta-sts.<domain> under env.Roots (nil: the
// system's) at env's clock; redirects are not followed; the body is
// limited to MaxPolicySize; the whole fetch to env.Limits.HTTP, cut to the
// context's deadline.
func FetchPolicy(ctx context.Context, env diag.Env, domain string) PolicyResult {
	start := env.Clock()
	res := fetchPolicy(ctx, env, domain)
	res.Elapsed = env.Clock().Sub(start)
	if res.Err != nil {
		res.Error = res.Err.Error()
	}
	env.Log().Debug("mta-sts policy", "url", res.URL, "status", res.Status, "http", res.HTTPStatus, "elapsed", res.Elapsed, "err", res.Err)
	return res
}

func fetchPolicy(ctx context.Context, env diag.Env, domain string) PolicyResult {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	host := "mta-sts." + d
	res := PolicyResult{Domain: d, URL: PolicyURL(d)}
	limit := env.Limits.HTTP
	if limit <= 0 {
		limit = diag.DefaultLimits.HTTP
	}
	ctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit))
	defer cancel()

	dialer := env.Dialer
	if dialer == nil {
		dialer = &dnsx.Dialer{Resolver: env.Resolver, Timeout: env.Limits.Connect}
	}
	var (
		mu      sync.Mutex
		verr    error
		summary *TLSSummary
	)
	tr := &http.Transport{
		DialContext: dialer.DialContext,
		Proxy:       nil,
		TLSClientConfig: &tls.Config{
			ServerName: host,
			// The chain is verified in VerifyConnection instead, so that
			// the certificate of a failing host is still shown.
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				s, err := verifyPeer(cs, host, env.Roots, env.Clock())
				mu.Lock()
				summary, verr = s, err
				mu.Unlock()
				return err
			},
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport: tr,
		// RFC 8461 §3.3: > HTTP 3xx redirects MUST NOT be followed
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, res.URL, nil)
	if err != nil {
		res.Status, res.Err = Permerror, fmt.Errorf("%w: %v", ErrFetch, err)
		return res
	}
	req.Header.Set("User-Agent", "mxray (MTA-STS check)")
	resp, err := client.Do(req)
	mu.Lock()
	res.TLS = summary
	certErr := verr
	mu.Unlock()
	if err != nil {
		res.Status, res.Err = classifyFetchError(err, certErr, host)
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.3", describeFetchError(res.Err, certErr, host, res.TLS)))
		return res
	}
	defer resp.Body.Close()
	res.HTTPStatus = resp.StatusCode
	res.ContentType = resp.Header.Get("Content-Type")
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxPolicySize+1))
	if len(body) > MaxPolicySize {
		body, res.Truncated = body[:MaxPolicySize], true
	}
	res.Body = string(body)

	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		res.Location = resp.Header.Get("Location")
		res.Status, res.Err = Permerror, fmt.Errorf("%w: %d to %q", ErrRedirect, resp.StatusCode, res.Location)
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.3",
			fmt.Sprintf("%s answered %s redirecting to %q; senders must not follow redirects, so they find no policy", host, resp.Status, res.Location)))
		return res
	case resp.StatusCode != http.StatusOK:
		res.Status = Permerror
		if resp.StatusCode >= 500 {
			res.Status = Temperror
		}
		res.Err = fmt.Errorf("%w: %s", ErrHTTPStatus, resp.Status)
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.3",
			fmt.Sprintf("%s answered %s; a policy is only valid with 200 OK", res.URL, resp.Status)))
		return res
	case rerr != nil:
		res.Status, res.Err = Temperror, fmt.Errorf("%w: reading the body: %v", ErrFetch, rerr)
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.3", res.Err.Error()))
		return res
	case res.Truncated:
		res.Status, res.Err = Permerror, fmt.Errorf("%w (%d bytes)", ErrTooLarge, MaxPolicySize)
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.3",
			fmt.Sprintf("the policy is larger than %d KiB; senders may limit the size to 64 kilobytes (RFC 8461 §3.3) and discard it", MaxPolicySize>>10)))
		return res
	}

	res.Status = Pass
	// RFC 8461 §3.2: > senders SHOULD validate that the media type is
	// "text/plain" to guard against cases where web servers allow untrusted
	// users to host non-text content
	mt, _, perr := mime.ParseMediaType(res.ContentType)
	if perr != nil || mt != "text/plain" {
		res.Status, res.Err = Permerror, fmt.Errorf("%w: %q", ErrContentType, res.ContentType)
		res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.2",
			fmt.Sprintf("the policy is served as %q, not text/plain; senders that check the media type (they SHOULD) ignore it", res.ContentType)))
	}
	p, err := ParsePolicy(res.Body)
	res.Policy = p
	if err != nil {
		var pe PolicyErrors
		errors.As(err, &pe)
		res.Errors = pe
		for _, e := range pe {
			res.Findings = append(res.Findings, finding(diag.Fail, "RFC 8461 §3.2", strings.TrimPrefix(e.Error(), ErrPolicySyntax.Error()+": ")))
		}
		if res.Status == Pass {
			res.Status, res.Err = Permerror, err
		}
	}
	for _, w := range p.Warnings {
		res.Findings = append(res.Findings, finding(diag.Warn, "RFC 8461 §3.2", w))
	}
	return res
}

// verifyPeer checks the presented chain and summarizes the connection.
func verifyPeer(cs tls.ConnectionState, host string, roots *x509.CertPool, now time.Time) (*TLSSummary, error) {
	s := &TLSSummary{Version: tls.VersionName(cs.Version), Cipher: tls.CipherSuiteName(cs.CipherSuite)}
	if len(cs.PeerCertificates) == 0 {
		err := errors.New("the server sent no certificate")
		s.VerifyError = err.Error()
		return s, err
	}
	leaf := cs.PeerCertificates[0]
	s.Subject, s.Issuer = leaf.Subject.String(), leaf.Issuer.String()
	s.SANs = append(s.SANs, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		s.SANs = append(s.SANs, ip.String())
	}
	s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	// RFC 8461 §3.3: the certificate must be valid for the "mta-sts" host
	// (RFC 6125 DNS-ID) and chain to a root the sender trusts.
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host, CurrentTime: now})
	if err != nil {
		s.VerifyError = err.Error()
		return s, err
	}
	s.Verified = true
	return s, nil
}

func classifyFetchError(err, certErr error, host string) (Status, error) {
	switch {
	case certErr != nil:
		return Permerror, fmt.Errorf("%w: %w", ErrCertificate, certErr)
	case errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData) || errors.Is(err, dnsx.ErrNoAddress):
		return Permerror, fmt.Errorf("%w: %s has no address: %w", ErrConnect, host, err)
	case errors.Is(err, dnsx.ErrConnRefused) || errors.Is(err, dnsx.ErrConnTimeout) ||
		errors.Is(err, dnsx.ErrHostUnreachable) || dnsx.Temporary(err):
		return Temperror, fmt.Errorf("%w: %w", ErrConnect, err)
	case errors.Is(err, context.DeadlineExceeded):
		return Temperror, fmt.Errorf("%w: no complete answer before the timeout: %w", ErrFetch, err)
	}
	return Temperror, fmt.Errorf("%w: %w", ErrFetch, err)
}

func describeFetchError(err, certErr error, host string, s *TLSSummary) string {
	if certErr == nil {
		return err.Error()
	}
	var (
		inv x509.CertificateInvalidError
		hn  x509.HostnameError
		ua  x509.UnknownAuthorityError
	)
	switch {
	case errors.As(certErr, &inv) && inv.Reason == x509.Expired && s != nil:
		return fmt.Sprintf("the certificate of %s is outside its validity (%s to %s): senders ignore the policy",
			host, s.NotBefore.UTC().Format(time.RFC3339), s.NotAfter.UTC().Format(time.RFC3339))
	case errors.As(certErr, &hn) && s != nil:
		names := strings.Join(s.SANs, ", ")
		if names == "" {
			names = "no DNS name (subject " + s.Subject + ")"
		}
		return fmt.Sprintf("the certificate of %s is for %s, not %s: senders ignore the policy", host, names, host)
	case errors.As(certErr, &ua) && s != nil:
		return fmt.Sprintf("the certificate of %s is issued by %q, which is not a trusted authority: senders ignore the policy", host, s.Issuer)
	}
	return fmt.Sprintf("the certificate of %s is not valid (%v): senders ignore the policy", host, certErr)
}
