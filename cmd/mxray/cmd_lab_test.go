package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/dnsx"
)

// TestLabServers runs `mxray lab --servers` as a user would: it reads the
// printed resolver and connect map, reaches the real Postfix through the
// map as "port 25 of mx1.example.test", asks the lab's DNS, then stops the
// lab with the interrupt and checks that the servers are gone.
func TestLabServers(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errb strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"lab", "--servers", "--dns-listen", "127.0.0.1:0", "--json"}, strings.NewReader(""), pw, &errb)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("no result line: %v (stderr %s)", err, errb.String())
	}
	go io.Copy(io.Discard, pr)
	var res labResult
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatal(err)
	}
	cm, err := dnsx.ParseConnectMap(res.ConnectMap)
	if err != nil {
		t.Fatal(err)
	}
	for _, port := range []int{25, 587, 143, 993, 110, 995, 443} {
		if _, ok := cm[port]; !ok {
			t.Errorf("connect map %q lacks port %d", res.ConnectMap, port)
		}
	}

	out, errOut, code := cli(t, "dns", "--resolver", res.Resolver, "mx1.example.test", "A")
	if code != 0 || !strings.Contains(out, "127.0.0.1") {
		t.Fatalf("dns against the lab: exit %d\n%s%s", code, out, errOut)
	}
	// The DANE scenarios: the printed validating resolver, the connect map
	// and the CA are all a delivery test needs.
	if res.DANEResolver == "" || len(res.DANEDomains) != 3 {
		t.Errorf("no DANE resolver or scenarios: %q %v", res.DANEResolver, res.DANEDomains)
	} else {
		out, errOut, code := cli(t, "delivery", "--resolver", res.DANEResolver, "--connect-map", res.ConnectMap, "--tls-ca", res.TLSCA,
			"--helo", "probe.mxray.test", "alice@dane.test")
		if code != 0 || !strings.Contains(out, "[ ok ] certificate authenticated by DANE") {
			t.Errorf("delivery to the DANE scenario: exit %d\n%s%s", code, out, errOut)
		}
	}

	smtp := cm.Apply("127.0.0.1:25")
	c, err := net.DialTimeout("tcp", smtp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	banner, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(banner, "220 mx1.example.test ESMTP") {
		t.Errorf("banner through the connect map: %q", banner)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("lab exited %d after the interrupt: %s", code, errb.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("lab did not stop after the interrupt")
	}
	if c, err := net.DialTimeout("tcp", smtp, time.Second); err == nil {
		c.Close()
		t.Errorf("Postfix still listens on %s after the lab stopped", smtp)
	}
}
