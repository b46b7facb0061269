package iprev

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/dnsx/dnsxtest"
)

const zone = `
1.2.0.192.in-addr.arpa.  PTR mail.example.com.
mail.example.com.        A   192.0.2.1
2.2.0.192.in-addr.arpa.  PTR broken.example.com.
broken.example.com.      A   192.0.2.99
3.2.0.192.in-addr.arpa.  PTR gone.example.com.
4.2.0.192.in-addr.arpa.  PTR a.example.com.
4.2.0.192.in-addr.arpa.  PTR b.example.com.
b.example.com.           A   192.0.2.4
6.2.0.192.in-addr.arpa.  PTR flaky.example.com.
1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR v6.example.com.
v6.example.com.          AAAA 2001:db8::1
`

func TestCheck(t *testing.T) {
	type outcome struct {
		Status        Status
		PTR           []string
		Confirmed     []string
		HeloConfirmed bool
	}
	tests := []struct {
		ip, helo string
		want     outcome
		err      error
		text     string // a phrase of the problem or helo note
	}{
		{"192.0.2.1", "mail.example.com", outcome{Pass, []string{"mail.example.com"}, []string{"mail.example.com"}, true}, nil, "is the forward-confirmed reverse name"},
		{"192.0.2.1", "MAIL.example.com.", outcome{Pass, []string{"mail.example.com"}, []string{"mail.example.com"}, true}, nil, ""},
		{"192.0.2.1", "smtp.example.com", outcome{Pass, []string{"mail.example.com"}, []string{"mail.example.com"}, false}, nil, "a very common cause of rejections"},
		{"192.0.2.2", "", outcome{Fail, []string{"broken.example.com"}, []string{}, false}, ErrNotConfirmed, "broken.example.com resolves to 192.0.2.99, not to 192.0.2.2"},
		{"192.0.2.3", "", outcome{Fail, []string{"gone.example.com"}, []string{}, false}, ErrNotConfirmed, "do not resolve back"},
		{"192.0.2.4", "b.example.com", outcome{Pass, []string{"a.example.com", "b.example.com"}, []string{"b.example.com"}, true}, nil, ""},
		{"192.0.2.5", "x", outcome{Permerror, []string{}, []string{}, false}, ErrNoPTR, "has no PTR record (NXDOMAIN)"},
		{"192.0.2.6", "", outcome{Temperror, []string{"flaky.example.com"}, []string{}, false}, ErrDNS, "DNS error"},
		{"192.0.2.7", "", outcome{Temperror, []string{}, []string{}, false}, ErrDNS, "SERVFAIL"},
		{"::ffff:192.0.2.1", "", outcome{Pass, []string{"mail.example.com"}, []string{"mail.example.com"}, false}, nil, ""},
		{"2001:db8::1", "v6.example.com", outcome{Pass, []string{"v6.example.com"}, []string{"v6.example.com"}, true}, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.ip+" "+tc.helo, func(t *testing.T) {
			f := dnsxtest.New(t, zone, "flaky.example.com", "7.2.0.192.in-addr.arpa")
			res := Check(context.Background(), f.Env(), netip.MustParseAddr(tc.ip), tc.helo)
			got := outcome{res.Status, res.PTR, res.Confirmed, res.HeloConfirmed}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tc.err != nil && !errors.Is(res.Err, tc.err) {
				t.Errorf("Err = %v, want %v", res.Err, tc.err)
			}
			if tc.err == nil && res.Err != nil {
				t.Errorf("Err = %v on %s", res.Err, res.Status)
			}
			if !strings.Contains(res.Problem+" "+res.HeloNote, tc.text) {
				t.Errorf("problem %q / helo note %q lack %q", res.Problem, res.HeloNote, tc.text)
			}
			if len(res.Lookups) != len(f.Asked) {
				t.Errorf("%d lookups in the evidence, %d asked", len(res.Lookups), len(f.Asked))
			}
		})
	}
}

func TestCheckCapsNames(t *testing.T) {
	var b strings.Builder
	for i := range 15 {
		fmt.Fprintf(&b, "9.2.0.192.in-addr.arpa. PTR n%d.example.com.\n", i)
	}
	f := dnsxtest.New(t, b.String())
	res := Check(context.Background(), f.Env(), netip.MustParseAddr("192.0.2.9"), "")
	if len(res.PTR) != 15 || len(res.Names) != MaxNames || len(f.Asked) != 1+MaxNames {
		t.Errorf("PTR %d, checked %d, asked %d; want 15, %d, %d", len(res.PTR), len(res.Names), len(f.Asked), MaxNames, 1+MaxNames)
	}
	if !strings.Contains(res.Problem, "only the first 10 of 15 PTR names were checked") {
		t.Errorf("problem %q", res.Problem)
	}
}

func TestCheckInvalidIP(t *testing.T) {
	res := Check(context.Background(), dnsxtest.New(t, "").Env(), netip.Addr{}, "")
	if res.Status != Permerror || !errors.Is(res.Err, ErrBadIP) {
		t.Errorf("%s %v", res.Status, res.Err)
	}
}
