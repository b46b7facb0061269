package domain

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/tlsinfo"
)

// Fetch states.
const (
	FetchFound   = "found"   // fetched and parsed
	FetchAbsent  = "absent"  // the host has no address, or 404/410
	FetchInvalid = "invalid" // fetched, but the document cannot be used
	FetchError   = "error"   // connection, TLS or HTTP failure
)

// maxRedirects bounds the redirects followed for a GET; a client follows
// a few, mxray reports each.
const maxRedirects = 3

// ConfigFetch is one autoconfig or Autodiscover URL and what came back.
type ConfigFetch struct {
	URL    string `json:"url"`
	Method string `json:"method"`
	// Via says how the URL was found: "well-known", "autoconfig host",
	// "autodiscover host", or "SRV _autodiscover._tcp".
	Via         string   `json:"via"`
	State       string   `json:"state"`
	HTTPStatus  int      `json:"http_status,omitempty"`
	ContentType string   `json:"content_type,omitempty"`
	Redirects   []string `json:"redirects,omitempty"` // URLs followed
	Location    string   `json:"location,omitempty"`  // a redirect not followed
	Bytes       int      `json:"bytes,omitempty"`
	// Certificate is the judgement of the HTTPS server's certificate.
	Certificate  *tlsinfo.Verification `json:"certificate,omitempty"`
	Config       *ClientConfig         `json:"config,omitempty"`
	Autodiscover *AutodiscoverResponse `json:"autodiscover,omitempty"`
	Error        string                `json:"error,omitempty"`

	body []byte
	err  error
}

// fetch makes one HTTPS request through env's dialer, with the size and
// time limits, judging the certificate without failing the handshake so
// that a bad certificate is shown rather than hiding everything else.
func fetch(ctx context.Context, env diag.Env, method, rawURL string, body []byte, follow bool) ConfigFetch {
	f := ConfigFetch{URL: rawURL, Method: method}
	ctx, cancel := context.WithTimeout(ctx, diag.Fit(ctx, limit(env.Limits.HTTP, diag.DefaultLimits.HTTP)))
	defer cancel()
	dialer := env.Dialer
	if dialer == nil {
		dialer = &dnsx.Dialer{Resolver: env.Resolver, Timeout: env.Limits.Connect}
	}
	var mu sync.Mutex
	tr := &http.Transport{
		DialContext: dialer.DialContext,
		Proxy:       nil,
		TLSClientConfig: &tls.Config{
			InsecureSkipVerify: true, // judged in VerifyConnection, below
			VerifyConnection: func(cs tls.ConnectionState) error {
				v := tlsinfo.Verify(cs.PeerCertificates, cs.ServerName, env.Roots, env.Clock())
				mu.Lock()
				f.Certificate = &v
				mu.Unlock()
				return nil
			},
		},
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 64 << 10,
		ResponseHeaderTimeout:  diag.Fit(ctx, limit(env.Limits.Command, diag.DefaultLimits.Command)),
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if !follow || len(via) > maxRedirects || req.URL.Scheme != "https" {
			return http.ErrUseLastResponse
		}
		mu.Lock()
		f.Redirects = append(f.Redirects, req.URL.String())
		mu.Unlock()
		return nil
	}}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		f.State, f.err = FetchError, err
		f.Error = err.Error()
		return f
	}
	req.Header.Set("User-Agent", "mxray (domain audit)")
	if body != nil {
		req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	}
	resp, err := client.Do(req)
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		f.err = err
		f.Error = fetchProblem(err)
		f.State = FetchError
		if errors.Is(err, dnsx.ErrNXDomain) || errors.Is(err, dnsx.ErrNoData) || errors.Is(err, dnsx.ErrNoAddress) {
			f.State = FetchAbsent
		}
		return f
	}
	defer resp.Body.Close()
	f.HTTPStatus, f.ContentType = resp.StatusCode, resp.Header.Get("Content-Type")
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxConfigSize+1))
	f.Bytes = len(b)
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		f.State = FetchAbsent
		f.Error = resp.Status
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		f.State, f.Location = FetchError, resp.Header.Get("Location")
		f.Error = fmt.Sprintf("%s to %q, not followed", resp.Status, f.Location)
	case resp.StatusCode != http.StatusOK:
		f.State, f.Error = FetchError, resp.Status
	case rerr != nil:
		f.State, f.Error = FetchError, "reading the body: "+rerr.Error()
	case len(b) > MaxConfigSize:
		f.State, f.Error = FetchInvalid, fmt.Sprintf("larger than %d KiB", MaxConfigSize>>10)
	default:
		f.State, f.body = FetchFound, b
	}
	return f
}

// fetchProblem says why a request failed, in a person's words.
func fetchProblem(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, dnsx.ErrNXDomain):
		return "the host does not exist (NXDOMAIN)"
	case errors.Is(err, dnsx.ErrNoData) || errors.Is(err, dnsx.ErrNoAddress):
		return "the host has no address"
	case errors.Is(err, dnsx.ErrConnRefused):
		return "connection refused on port 443"
	case errors.Is(err, dnsx.ErrConnTimeout), errors.Is(err, context.DeadlineExceeded):
		return "no answer before the timeout"
	}
	return strings.TrimPrefix(err.Error(), "dnsx: ")
}

// certProblem describes a certificate a client would refuse, or "".
func certProblem(v *tlsinfo.Verification) string {
	if v == nil || v.Status == tlsinfo.OK {
		return ""
	}
	var ps []string
	for _, p := range v.Problems {
		ps = append(ps, string(p))
	}
	s := fmt.Sprintf("the certificate is not valid for %s (%s)", v.Host, strings.Join(ps, ", "))
	if v.Has(tlsinfo.WrongName) && len(v.Names) > 0 {
		s += "; it names " + strings.Join(v.Names, ", ")
	}
	return s
}
