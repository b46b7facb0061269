package maillog

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/testutil"
)

func TestAuthBruteForceStandsOut(t *testing.T) {
	var b strings.Builder
	// 40 guesses from one address over many users, then a success.
	for i := 0; i < 40; i++ {
		fmt.Fprintf(&b, "Nov  2 10:%02d:00 mx postfix/submission/smtpd[10]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: authentication failure, sasl_username=user%d@example.com\n", i, i%8)
	}
	b.WriteString("Nov  2 10:41:00 mx postfix/submission/smtpd[10]: 4AB12C3D4E: client=unknown[203.0.113.66], sasl_method=LOGIN, sasl_username=user3@example.com\n")
	// A user who mistyped twice, from home, over IMAP.
	b.WriteString("Nov  2 11:00:00 mx dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<Bob@example.com>, method=PLAIN, rip=198.51.100.2, lip=192.0.2.1, TLS\n")
	b.WriteString("Nov  2 11:00:05 mx dovecot: auth: passwd-file(bob@example.com,198.51.100.2): Password mismatch\n")
	b.WriteString("Nov  2 11:00:09 mx dovecot: imap-login: Login: user=<bob@example.com>, method=PLAIN, rip=198.51.100.2, lip=192.0.2.1, mpid=7, TLS\n")
	// Three scanners, one attempt each, no user name.
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "Nov  2 12:00:0%d mx postfix/smtpd[11]: warning: unknown[192.0.2.%d]: SASL PLAIN authentication failed:\n", i, 100+i)
	}
	// The auth server was down: not a client's fault.
	b.WriteString("Nov  2 13:00:00 mx postfix/smtpd[12]: warning: unknown[192.0.2.50]: SASL LOGIN authentication failed: Connection lost to authentication server\n")

	r, err := Auth(context.Background(), Options{Reference: ref}, time.Time{}, 3, strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m, s int) time.Time { return time.Date(2024, 11, 2, h, m, s, 0, time.UTC) }
	if r.Failures != 45 || r.Unavailable != 1 || r.Logins != 2 || r.NoUser != 3 || r.IPs != 5 || r.Users != 9 {
		t.Errorf("totals: failures %d unavailable %d logins %d no-user %d ips %d users %d", r.Failures, r.Unavailable, r.Logins, r.NoUser, r.IPs, r.Users)
	}
	wantIP := []AuthGroup{
		{Key: "203.0.113.66", Failures: 40, Logins: 1, First: at(10, 0, 0), Last: at(10, 39, 0), Distinct: 8,
			Examples: []string{"user0@example.com", "user1@example.com", "user2@example.com", "user3@example.com", "user4@example.com"},
			Services: []string{"postfix/submission/smtpd"}},
		{Key: "198.51.100.2", Failures: 2, Logins: 1, First: at(11, 0, 0), Last: at(11, 0, 5), Distinct: 1,
			Examples: []string{"bob@example.com"}, Services: []string{"dovecot/auth", "dovecot/imap-login"}},
		{Key: "192.0.2.101", Failures: 1, First: at(12, 0, 1), Last: at(12, 0, 1), Services: []string{"postfix/smtpd"}},
	}
	if diff := cmp.Diff(wantIP, r.ByIP); diff != "" {
		t.Errorf("by IP, top 3 (-want +got):\n%s", diff)
	}
	if len(r.ByUser) != 3 || r.ByUser[0].Key != "user0@example.com" || r.ByUser[0].Failures != 5 || r.ByUser[0].Distinct != 1 {
		t.Errorf("by user: %+v", r.ByUser)
	}

	var text bytes.Buffer
	if err := WriteAuth(&text, r); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"Authentication failures: 45 (5 client addresses, 9 user names; 3 without a user name)",
		"Authentication server unreachable: 1", "203.0.113.66", "← has successful logins too", "… (8)"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("text lacks %q:\n%s", s, text.String())
		}
	}

	// --since drops the guesses.
	r, _ = Auth(context.Background(), Options{Reference: ref}, at(10, 50, 0), 0, strings.NewReader(b.String()))
	if r.Failures != 5 || r.ByIP[0].Key != "198.51.100.2" {
		t.Errorf("since 10:50: %d failures, first %+v", r.Failures, r.ByIP[0])
	}
}

// fail2ban's annotated logs: every failure it expects to ban for is
// counted under its address.
func TestAuthFail2ban(t *testing.T) {
	root := testutil.Shared(t, "mail-logs")
	opts := Options{Reference: time.Unix(1124013600, 0)}
	for _, name := range []string{"dovecot.log", "postfix.log"} {
		data, err := os.ReadFile(filepath.Join(root, "fail2ban", name))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]int64{}
		var section, pendingHost string
		pending := false
		for _, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "# filterOptions:") {
				section = line
				continue
			}
			if j := strings.Index(line, "failJSON:"); strings.HasPrefix(line, "#") && j >= 0 {
				var ann struct {
					Match bool   `json:"match"`
					Host  string `json:"host"`
				}
				if err := json.Unmarshal([]byte(line[j+len("failJSON:"):]), &ann); err != nil {
					t.Fatal(err)
				}
				pending, pendingHost = ann.Match, ann.Host
				continue
			}
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			isAuth := strings.Contains(line, "authentication failed") && !strings.Contains(line, "Connection lost to authentication server")
			aggressiveOnly := strings.Contains(section, `"aggressive"`) && !strings.Contains(section, "{}") && !strings.Contains(section, `"auth"`) && !strings.Contains(section, `"normal"`)
			if pending && pendingHost != "" && ((name == "postfix.log" && isAuth) || (name == "dovecot.log" && !aggressiveOnly)) {
				want[pendingHost]++
			}
			pending = false
		}
		lines := int64(0)
		for _, n := range want {
			lines += n
		}
		if len(want) < 8 || lines < 10 {
			t.Fatalf("%s: only %d annotated failures from %d addresses", name, lines, len(want))
		}
		r, err := Auth(context.Background(), opts, time.Time{}, 0, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, g := range r.ByIP {
			got[g.Key] = g.Failures
		}
		for host, n := range want {
			if got[host] < n {
				t.Errorf("%s: %s has %d failures, want at least the %d fail2ban annotates", name, host, got[host], n)
			}
		}
	}
}
