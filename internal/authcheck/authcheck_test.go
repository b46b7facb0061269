package authcheck

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/diag"
	"github.com/mxray/mxray/internal/dmarc"
	"github.com/mxray/mxray/internal/dnsx"
	"github.com/mxray/mxray/internal/iprev"
	"github.com/mxray/mxray/internal/lab"
	"github.com/mxray/mxray/internal/spf"
)

func TestFromDomain(t *testing.T) {
	tests := []struct {
		msg, want, err string
	}{
		{"From: Alice <alice@Example.COM>\r\n\r\nbody", "example.com", ""},
		{"Subject: x\nFrom: \"Bob, Jr.\" <bob@example.net>,\n carol@example.net\n\nbody", "example.net", ""},
		{"Subject: x\n\nbody", "", "no From: header field"},
		{"From: a@example.com\nFROM: b@example.com\n\n", "", "2 From: header fields"},
		{"From: a@example.com, b@example.org\n\n", "", "addresses in example.com and example.org"},
		{"From: not an address\n\n", "", "cannot be parsed"},
	}
	for _, tc := range tests {
		got, err := FromDomain([]byte(tc.msg))
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("FromDomain(%q) = %q, %v; want %q", tc.msg, got, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrNoFrom) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("FromDomain(%q) error %v, want ErrNoFrom with %q", tc.msg, err, tc.err)
		}
	}
}

func TestPvalue(t *testing.T) {
	for in, want := range map[string]string{
		"user@example.com": "user@example.com",
		"":                 `""`,
		"a b@example.com":  `"a b@example.com"`,
		"x;y":              `"x;y"`,
	} {
		if got := pvalue(in); got != want {
			t.Errorf("pvalue(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestHeaderField(t *testing.T) {
	got := HeaderField("mxray; spf=pass smtp.mailfrom=a@b.c; dmarc=pass header.from=b.c")
	want := "Authentication-Results: mxray;\n\tspf=pass smtp.mailfrom=a@b.c;\n\tdmarc=pass header.from=b.c"
	if got != want {
		t.Errorf("(-want +got):\n%s", cmp.Diff(want, got))
	}
}

func labEnv(t *testing.T) diag.Env {
	t.Helper()
	s, err := lab.StartDNS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := lab.LoadScenarios(s); err != nil {
		t.Fatal(err)
	}
	c := dnsx.New([]string{s.Addr})
	c.Timeout, c.Tries = 500*time.Millisecond, 1
	return diag.Env{Resolver: c, Limits: diag.Limits{DNS: 500 * time.Millisecond, DNSTry: 1}}
}

func TestRunWithoutMessage(t *testing.T) {
	env := labEnv(t)
	var rec diag.Recorder
	res := Run(context.Background(), env, Target{IP: netip.MustParseAddr("127.0.0.1"), Helo: "mx1.example.test", MailFrom: "<u@example.test>"}, &rec)
	var got []string
	for _, s := range rec.Steps {
		got = append(got, s.ID+" "+string(s.Status))
	}
	want := []string{"spf-mailfrom ok", "spf-helo info", "dkim skip", "arc skip", "dmarc ok", "iprev ok"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	for _, id := range []string{StepDKIM, StepARC} {
		st, _ := rec.Find(id)
		if !strings.Contains(st.Title, "not checked: no message given") {
			t.Errorf("%s title %q", id, st.Title)
		}
	}
	if res.FromDomain != "example.test" || !strings.Contains(res.FromSource, "MAIL FROM") {
		t.Errorf("from %q (%s)", res.FromDomain, res.FromSource)
	}
	if res.SPFMailFrom.Status != spf.Pass || res.DMARC.Status != dmarc.Pass || res.IPRev.Status != iprev.Pass || res.Worst != diag.OK {
		t.Errorf("spf %s dmarc %s iprev %s worst %s", res.SPFMailFrom.Status, res.DMARC.Status, res.IPRev.Status, res.Worst)
	}
}

func TestRunNullSenderUsesHelo(t *testing.T) {
	env := labEnv(t)
	res := Run(context.Background(), env, Target{IP: netip.MustParseAddr("127.0.0.1"), Helo: "example.test", MailFrom: "<>"}, diag.Discard)
	if res.SPFMailFrom.Sender != "postmaster@example.test" || res.FromDomain != "example.test" || !strings.Contains(res.FromSource, "HELO") {
		t.Errorf("sender %q from %q (%s)", res.SPFMailFrom.Sender, res.FromDomain, res.FromSource)
	}
	if res.DMARC.SPF.Domain != "example.test" || res.DMARC.Status != dmarc.Pass {
		t.Errorf("DMARC SPF domain %q result %s", res.DMARC.SPF.Domain, res.DMARC.Status)
	}
}

func TestRunBrokenARC(t *testing.T) {
	env := labEnv(t)
	msg := "ARC-Seal: i=1; a=rsa-sha256; cv=none; d=example.test; s=nokey; b=AAAA\r\n" +
		"From: a@example.test\r\nSubject: x\r\n\r\nbody\r\n"
	var rec diag.Recorder
	res := Run(context.Background(), env, Target{IP: netip.MustParseAddr("127.0.0.1"), Helo: "mx1.example.test", MailFrom: "a@example.test", Message: []byte(msg)}, &rec)
	st, _ := rec.Find(StepARC)
	if res.ARC.Result != "fail" || st.Status != diag.Warn {
		t.Errorf("arc %s, step %s %q", res.ARC.Result, st.Status, st.Title)
	}
	if !strings.Contains(res.AuthenticationResults, "arc=fail") || !strings.Contains(res.AuthenticationResults, "dkim=none (message not signed)") {
		t.Errorf("AR %q", res.AuthenticationResults)
	}
}
