package dkim_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/dkim"
	"github.com/mxray/mxray/internal/lab"
)

const labMessage = "From: Alice <alice@dkim.test>\r\n" +
	"To: bob@example.test\r\n" +
	"Subject: lab\r\n" +
	"Date: Mon, 01 Jun 2026 11:00:00 +0000\r\n" +
	"Message-ID: <1@dkim.test>\r\n" +
	"\r\n" +
	"Hello.\r\n" +
	"\r\n"

// casesZone holds the keys of the corner cases; its ed25519 keys are the
// lab's.
var casesZone = `
testing._domainkey  TXT "v=DKIM1; k=ed25519; t=y; p=shmDdT+obZhGG1NwpB7KfuYI26aRhwbAL5sgcbHs+Yg="
sha1only._domainkey TXT "v=DKIM1; k=ed25519; h=sha1; p=shmDdT+obZhGG1NwpB7KfuYI26aRhwbAL5sgcbHs+Yg="
strict._domainkey   TXT "v=DKIM1; k=ed25519; t=s; p=shmDdT+obZhGG1NwpB7KfuYI26aRhwbAL5sgcbHs+Yg="
nodata._domainkey   A   127.0.0.1
short._domainkey    TXT "v=DKIM1; k=rsa; p=MFwwDQYJKoZIhvcNAQEBBQADSwAwSAJBAIWmlgix/84GJ+dfgjm7LTc9EPdfkftlgiPpCq4/kbDAZmU0VvYKDljjleJ1dfvS+CGy9U/kk1tG3EeEvb82xAcCAwEAAQ=="
`

func TestVerifyReasons(t *testing.T) {
	s := startDNS(t)
	if err := lab.LoadScenarios(s); err != nil {
		t.Fatal(err)
	}
	if err := s.AddZone("cases.dkim.test", casesZone, lab.ZoneOptions{}); err != nil {
		t.Fatal(err)
	}
	env := envFor(s)
	rsaKey := parsePEMKey(t, lab.DKIMKeyRSA)
	edKey := parsePEMKey(t, lab.DKIMKeyEd25519)
	now := testNow
	rsaOpts := func() dkim.SignOptions {
		return dkim.SignOptions{Domain: lab.DKIMDomain, Selector: lab.DKIMSelectorRSA, Key: rsaKey, Time: now.Add(-time.Hour)}
	}
	edOpts := func(d, sel string) dkim.SignOptions {
		return dkim.SignOptions{Domain: d, Selector: sel, Key: edKey, Time: now.Add(-time.Hour)}
	}
	with := func(o dkim.SignOptions, f func(*dkim.SignOptions)) dkim.SignOptions { f(&o); return o }
	replace := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return bytes.Replace(b, []byte(old), []byte(new), 1) }
	}
	prepend := func(field string) func([]byte) []byte {
		return func(b []byte) []byte { return append([]byte(field+"\r\n"), b...) }
	}

	type want struct {
		Status   dkim.Status
		Reason   dkim.Reason
		Warnings []dkim.Warning
	}
	tests := []struct {
		name   string
		msg    string
		opts   dkim.SignOptions
		mutate func([]byte) []byte
		want   want
		check  func(t *testing.T, r dkim.Result)
	}{
		{name: "rsa 2048 pass", opts: rsaOpts(), want: want{Status: dkim.Pass},
			check: func(t *testing.T, r dkim.Result) {
				if r.Key.Bits != 2048 || r.Key.Type != "rsa" || r.Query != "rsa2048._domainkey.dkim.test" ||
					r.BodyHashComputed != r.BodyHashGiven || !r.SignatureVerified || !strings.HasPrefix(r.HashedHeaders, "from:Alice <alice@dkim.test>\r\n") {
					t.Errorf("evidence: %+v", r)
				}
			}},
		{name: "ed25519 pass", opts: edOpts(lab.DKIMDomain, lab.DKIMSelectorEd25519), want: want{Status: dkim.Pass},
			check: func(t *testing.T, r dkim.Result) {
				if r.Key.Type != "ed25519" || r.Key.Bits != 256 || r.Algorithm != "ed25519-sha256" {
					t.Errorf("key %+v a=%s", r.Key, r.Algorithm)
				}
			}},
		{name: "LF line endings", opts: rsaOpts(), mutate: func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) },
			want: want{Status: dkim.Pass}},
		{name: "revoked key", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Domain = lab.DKIMRevokedDomain }),
			want: want{Status: dkim.Fail, Reason: dkim.ReasonKeyRevoked}},
		{name: "body changed", opts: rsaOpts(), mutate: replace("Hello.", "Hello!"),
			want: want{Status: dkim.Fail, Reason: dkim.ReasonBodyHash},
			check: func(t *testing.T, r dkim.Result) {
				if !r.SignatureVerified || r.BodyHashComputed == r.BodyHashGiven {
					t.Errorf("headers intact, body changed: verified=%v bh %s vs %s", r.SignatureVerified, r.BodyHashComputed, r.BodyHashGiven)
				}
			}},
		{name: "whitespace change, relaxed body", opts: rsaOpts(), mutate: replace("Hello.\r\n", "Hello.   \r\n\r\n\r\n"), want: want{Status: dkim.Pass}},
		{name: "whitespace change, simple body", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Canon = "simple/simple" }),
			mutate: replace("Hello.\r\n", "Hello. \r\n"), want: want{Status: dkim.Fail, Reason: dkim.ReasonBodyHash}},
		{name: "header changed", opts: rsaOpts(), mutate: replace("Subject: lab", "Subject: bal"),
			want: want{Status: dkim.Fail, Reason: dkim.ReasonSignature}},
		{name: "header case and folding changed, relaxed", opts: rsaOpts(), mutate: replace("Subject: lab", "SUBJECT :\r\n  lab "),
			want: want{Status: dkim.Pass}},
		{name: "expired", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Time = now.Add(-48 * time.Hour); o.Expire = now.Add(-24 * time.Hour) }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonExpired}},
		{name: "from the future", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Time = now.Add(time.Hour) }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonFuture}},
		{name: "within clock skew", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Time = now.Add(2 * time.Minute) }),
			want: want{Status: dkim.Pass}},
		{name: "rsa-sha1", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Algorithm = "rsa-sha1" }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonAlgorithm}},
		{name: "key type mismatch", opts: edOpts(lab.DKIMDomain, lab.DKIMSelectorRSA),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonKeyType}},
		{name: "From not signed", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Headers = []string{"To", "Subject"} }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonFromUnsigned}},
		{name: "i= outside d=", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.AUID = "alice@example.test" }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonIdentity}},
		{name: "i= in a subdomain", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.AUID = "alice@mail.dkim.test" }),
			want: want{Status: dkim.Pass}},
		{name: "i= in a subdomain, key t=s", opts: with(edOpts("cases.dkim.test", "strict"), func(o *dkim.SignOptions) { o.AUID = "a@x.cases.dkim.test" }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonIdentity}},
		{name: "SERVFAIL", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Domain = "servfail.test" }),
			want: want{Status: dkim.Temperror, Reason: dkim.ReasonDNS}},
		{name: "DNS timeout", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Domain = "timeout.test" }),
			want: want{Status: dkim.Temperror, Reason: dkim.ReasonDNS}},
		{name: "NXDOMAIN", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Selector = "nope" }),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonKeyNotFound}},
		{name: "NODATA", opts: edOpts("cases.dkim.test", "nodata"),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonKeyNotFound}},
		{name: "testing mode", opts: edOpts("cases.dkim.test", "testing"),
			want: want{Status: dkim.Pass, Warnings: []dkim.Warning{dkim.WarnTesting}},
			check: func(t *testing.T, r dkim.Result) {
				if !r.Testing {
					t.Error("Testing not set")
				}
			}},
		{name: "key h= excludes sha256", opts: edOpts("cases.dkim.test", "sha1only"),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonKeyHash}},
		{name: "512-bit key", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Domain = "cases.dkim.test"; o.Selector = "short" }),
			want: want{Status: dkim.Policy, Reason: dkim.ReasonKeyTooShort}},
		{name: "l= with text appended", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.BodyLength = 8 }),
			mutate: func(b []byte) []byte { return append(b, "Click here: http://phish.example/\r\n"...) },
			want:   want{Status: dkim.Pass, Warnings: []dkim.Warning{dkim.WarnPartialBody}},
			check: func(t *testing.T, r dkim.Result) {
				// The empty line before the text is unsigned too.
				if r.UnsignedBytes != int64(len("\r\nClick here: http://phish.example/\r\n")) {
					t.Errorf("unsigned %d of %d", r.UnsignedBytes, r.BodyBytes)
				}
			}},
		{name: "l= longer than the body", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.BodyLength = 8 }),
			mutate: replace("Hello.\r\n", "Hi\r\n"), want: want{Status: dkim.Permerror, Reason: dkim.ReasonBodyLength}},
		{name: "Subject added above, not oversigned", opts: rsaOpts(), mutate: prepend("Subject: buy now"),
			want: want{Status: dkim.Pass}},
		{name: "Subject added above, oversigned", opts: with(rsaOpts(), func(o *dkim.SignOptions) {
			o.Headers = []string{"From", "To", "Subject", "Subject", "Date"}
		}), mutate: prepend("Subject: buy now"), want: want{Status: dkim.Fail, Reason: dkim.ReasonSignature}},
		{name: "signed absent header stays absent", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Headers = []string{"From", "Reply-To"} }),
			want: want{Status: dkim.Pass}},
		{name: "signed absent header added", opts: with(rsaOpts(), func(o *dkim.SignOptions) { o.Headers = []string{"From", "Reply-To"} }),
			mutate: prepend("Reply-To: mallory@example.test"), want: want{Status: dkim.Fail, Reason: dkim.ReasonSignature}},
		{name: "v=2", opts: rsaOpts(), mutate: replace("v=1", "v=2"), want: want{Status: dkim.Permerror, Reason: dkim.ReasonSyntax},
			check: detailHas("v=2")},
		{name: "duplicate tag", opts: rsaOpts(), mutate: replace("v=1;", "v=1; d=x.test;"), want: want{Status: dkim.Permerror, Reason: dkim.ReasonSyntax},
			check: detailHas("duplicate tag d=")},
		{name: "bh= missing", opts: rsaOpts(), mutate: replace("bh=", "xh="), want: want{Status: dkim.Permerror, Reason: dkim.ReasonSyntax},
			check: detailHas("bh=")},
		{name: "b= not base64", opts: rsaOpts(), mutate: replace("\tb=", "\tb=*"), want: want{Status: dkim.Permerror, Reason: dkim.ReasonSyntax},
			check: detailHas("b= is not base64")},
		{name: "unknown canonicalization", opts: rsaOpts(), mutate: replace("c=relaxed/relaxed", "c=relaxed/loose"),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonSyntax}, check: detailHas("c=")},
		{name: "unknown algorithm", opts: rsaOpts(), mutate: replace("a=rsa-sha256", "a=rsa-sha512"),
			want: want{Status: dkim.Permerror, Reason: dkim.ReasonAlgorithm}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.msg
			if msg == "" {
				msg = labMessage
			}
			signed, err := dkim.Sign([]byte(msg), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				signed = tc.mutate(signed)
			}
			got := dkim.Verify(context.Background(), env, signed)
			if len(got) != 1 {
				t.Fatalf("%d results", len(got))
			}
			r := got[0]
			if d := cmp.Diff(tc.want, want{r.Status, r.Reason, r.Warnings}); d != "" {
				t.Errorf("(-want +got):\n%s\ndetail: %s", d, r.Detail)
			}
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

func detailHas(s string) func(*testing.T, dkim.Result) {
	return func(t *testing.T, r dkim.Result) {
		t.Helper()
		if !strings.Contains(r.Detail, s) {
			t.Errorf("detail %q does not name %q", r.Detail, s)
		}
	}
}

func TestVerifyCapAndUnsigned(t *testing.T) {
	s := startDNS(t)
	if err := lab.LoadScenarios(s); err != nil {
		t.Fatal(err)
	}
	env := envFor(s)
	if got := dkim.Verify(context.Background(), env, []byte(labMessage)); len(got) != 0 {
		t.Errorf("unsigned message: %+v", got)
	}
	msg := []byte(labMessage)
	var key crypto.Signer = parsePEMKey(t, lab.DKIMKeyEd25519)
	if _, ok := key.(ed25519.PrivateKey); !ok {
		t.Fatalf("lab ed25519 key is %T", key)
	}
	for range dkim.MaxSignatures + 2 {
		var err error
		msg, err = dkim.Sign(msg, dkim.SignOptions{Domain: lab.DKIMDomain, Selector: lab.DKIMSelectorEd25519, Key: key})
		if err != nil {
			t.Fatal(err)
		}
	}
	got := dkim.Verify(context.Background(), env, msg)
	var statuses []dkim.Status
	for _, r := range got {
		statuses = append(statuses, r.Status)
	}
	want := append(slicesRepeat(dkim.Pass, dkim.MaxSignatures), dkim.Neutral, dkim.Neutral)
	if d := cmp.Diff(want, statuses); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if got[len(got)-1].Reason != dkim.ReasonNotChecked {
		t.Errorf("reason %s", got[len(got)-1].Reason)
	}
}

func slicesRepeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}
