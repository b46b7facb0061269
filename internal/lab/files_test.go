package lab

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Scenario files are served as text/plain on their host, 404 elsewhere;
// a malformed key is refused.
func TestServeFiles(t *testing.T) {
	ca, err := NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartHTTPS("127.0.0.1:0", ca, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = serveFiles(s, []Scenario{
		{Domain: "a.test", Files: map[string]string{"www.a.test/x.txt": "ex", "www.a.test/.well-known/y": "why"}},
		{Domain: "b.test", Files: map[string]string{"mta-sts.b.test/p": "bee"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, s.Addr)
		},
	}}
	for url, want := range map[string]string{
		"https://www.a.test/x.txt":         "200 text/plain ex",
		"https://www.a.test/.well-known/y": "200 text/plain why",
		"https://mta-sts.b.test/p":         "200 text/plain bee",
		"https://www.a.test/p":             "404 text/plain; charset=utf-8 404 page not found\n",
	} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := strings.Join([]string{resp.Status[:3], resp.Header.Get("Content-Type"), string(body)}, " "); got != want {
			t.Errorf("%s: %q, want %q", url, got, want)
		}
	}
	if err := serveFiles(s, []Scenario{{Domain: "c.test", Files: map[string]string{"no-path": "x"}}}); err == nil {
		t.Error("a key without a path was accepted")
	}
	// Every scenario's files are well-formed.
	if err := serveFiles(s, Scenarios()); err != nil {
		t.Error(err)
	}
}
