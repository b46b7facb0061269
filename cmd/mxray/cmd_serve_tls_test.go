package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
)

// TestServeTLS: with --tls-cert/--tls-key the API and web admin speak
// HTTPS only, and the web admin's cookies are Secure with the __Host-
// prefix.
func TestServeTLS(t *testing.T) {
	ca, err := lab.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue([]string{"127.0.0.1"}, lab.CertOptions{Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.WriteFiles(t.TempDir(), "web")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	api := freePort(t)
	// The key comes from the config, the certificate from the flag.
	writeConfig(t, data, fmt.Sprintf("[web]\nlisten = %q\ntls_key = %q\n", api, keyFile))

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan string, 1)
	go func() {
		var o, e bytes.Buffer
		c := run(ctx, []string{"serve", "--data", data, "--tls-cert", certFile, "--resolver", "127.0.0.1:1"}, strings.NewReader(""), &o, &e)
		done <- fmt.Sprintf("exit %d\n%s%s", c, o.String(), e.String())
	}()
	client := &http.Client{
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var health *http.Response
	for range 1200 { // bounded wait (30 s) for the listener
		if health, err = client.Get("https://" + api + "/api/health"); err == nil {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("https health: %v", err)
	}
	body, _ := io.ReadAll(health.Body)
	health.Body.Close()
	if health.StatusCode != 200 || health.TLS == nil {
		t.Errorf("https health: HTTP %d, TLS %v: %s", health.StatusCode, health.TLS != nil, body)
	}
	// Plain HTTP on that port gets no API answer (Go's TLS server
	// answers a plain request with 400).
	if resp, err := http.Get("http://" + api + "/api/health"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), `"status"`) {
			t.Errorf("plain HTTP answered: HTTP %d %s", resp.StatusCode, b)
		}
	}
	login, err := client.Get("https://" + api + "/login")
	if err != nil {
		t.Fatal(err)
	}
	login.Body.Close()
	var found bool
	for _, c := range login.Cookies() {
		if c.Name == "__Host-mxray_login" {
			found = true
			if !c.Secure || c.Path != "/" || c.Domain != "" {
				t.Errorf("login cookie %v: want Secure, Path=/, no Domain", c)
			}
		}
	}
	if !found {
		t.Errorf("no __Host-mxray_login cookie: %v", login.Header["Set-Cookie"])
	}
	stop()
	out := <-done
	if !strings.HasPrefix(out, "exit 0\n") || !strings.Contains(out, "Web admin     https://"+api+"/") {
		t.Errorf("serve:\n%s", out)
	}
}

func TestServeTLSErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--tls-cert", missing}, "--tls-cert and --tls-key"},
		{"key without cert", []string{"--tls-key", missing}, "--tls-cert and --tls-key"},
		{"unreadable cert", []string{"--tls-cert", missing, "--tls-key", missing}, missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := t.TempDir()
			writeConfig(t, data, "[web]\nlisten = \"127.0.0.1:0\"\n")
			args := append([]string{"serve", "--data", data, "--timeout", "5s"}, tc.args...)
			_, errOut, code := cli(t, args...)
			if code != 2 || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, %q; want 2 and %q", code, errOut, tc.want)
			}
		})
	}
}
