package dkim_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/dkim"
)

func TestCanonHeader(t *testing.T) {
	tests := []struct {
		c        dkim.Canon
		raw, out string
	}{
		{dkim.Simple, "SubJect : A  b\r\n\tc \r\n", "SubJect : A  b\r\n\tc \r\n"},
		// RFC 6376 §3.4.5's example, header part.
		{dkim.Relaxed, "A: X\r\n", "a:X\r\n"},
		{dkim.Relaxed, "B : Y\t\r\n\tZ  \r\n", "b:Y Z\r\n"},
		{dkim.Relaxed, "SubJect :   \r\n", "subject:\r\n"},
		{dkim.Relaxed, "X:a\t \tb\r\n", "x:a b\r\n"},
	}
	for _, tc := range tests {
		if got := string(dkim.CanonHeader(tc.c, []byte(tc.raw))); got != tc.out {
			t.Errorf("%s %q: got %q, want %q", tc.c, tc.raw, got, tc.out)
		}
	}
}

func TestCanonBody(t *testing.T) {
	tests := []struct {
		c        dkim.Canon
		in, want string
	}{
		// RFC 6376 §3.4.5's example body.
		{dkim.Relaxed, " C \r\nD \t E\r\n\r\n\r\n", " C\r\nD E\r\n"},
		{dkim.Simple, " C \r\nD \t E\r\n\r\n\r\n", " C \r\nD \t E\r\n"},
		// §3.4.3 and §3.4.4: the empty body.
		{dkim.Simple, "", "\r\n"},
		{dkim.Relaxed, "", ""},
		{dkim.Relaxed, "\r\n\r\n", ""},
		// No final CRLF.
		{dkim.Simple, "abc", "abc\r\n"},
		{dkim.Relaxed, "abc  ", "abc\r\n"},
	}
	for _, tc := range tests {
		if got := string(dkim.CanonBody(tc.c, []byte(tc.in))); got != tc.want {
			t.Errorf("%s %q: got %q, want %q", tc.c, tc.in, got, tc.want)
		}
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		in   string
		want dkim.Tags
		err  bool
	}{
		{in: "", want: nil},
		{in: "v=1; a=rsa-sha256;", want: dkim.Tags{{"v", "1"}, {"a", "rsa-sha256"}}},
		{in: " v = 1 ;\r\n\ta=b c ", want: dkim.Tags{{"v", "1"}, {"a", "b c"}}},
		{in: "p=", want: dkim.Tags{{"p", ""}}},
		{in: "h=from\r\n\t:to", want: dkim.Tags{{"h", "from\r\n\t:to"}}},
		{in: "v=1; v=1", err: true},  // duplicate
		{in: "v=1;; a=b", err: true}, // empty tag-spec
		{in: "1v=1", err: true},      // tag name must start with ALPHA
		{in: "v", err: true},         // no "="
		{in: "a=b\r\nc", err: true},  // CRLF not followed by WSP
		{in: "a=b\x00", err: true},   // control character
		{in: "g_x=1", want: dkim.Tags{{"g_x", "1"}}},
	}
	for _, tc := range tests {
		got, err := dkim.ParseTags(tc.in)
		if tc.err {
			if !errors.Is(err, dkim.ErrTagSyntax) {
				t.Errorf("%q: err %v, want ErrTagSyntax", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, d)
		}
	}
}

func TestParseMessage(t *testing.T) {
	m, err := dkim.ParseMessage([]byte("A: 1\n\t2\nB:3\n\nbody\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{string(m.Fields[0].Raw), m.Fields[0].Name, string(m.Fields[1].Raw), string(m.Body)}
	want := []string{"A: 1\r\n\t2\r\n", "A", "B:3\r\n", "body\r\n"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	for _, bad := range []string{" leading continuation\r\n", "no colon here\r\n\r\n", ": empty name\r\n"} {
		if _, err := dkim.ParseMessage([]byte(bad)); !errors.Is(err, dkim.ErrMessage) {
			t.Errorf("%q: err %v, want ErrMessage", bad, err)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, bad := range []string{
		"v=DKIM2; p=AAAA",                // version
		"k=rsa; v=DKIM1; p=",             // v= not first
		"v=DKIM1; k=rsa",                 // no p=
		"v=DKIM1; k=ed25519; p=AAAA",     // 3 bytes
		"v=DKIM1; k=rsa; p=!!!",          // not base64
		"v=DKIM1; k=dsa; p=AAAA",         // key type
		"v=DKIM1; k=rsa; p=AAAA; p=AAAA", // duplicate
	} {
		if _, err := dkim.ParseKey(bad); !errors.Is(err, dkim.ErrKeySyntax) {
			t.Errorf("%q: err %v, want ErrKeySyntax", bad, err)
		}
	}
	k, err := dkim.ParseKey("v=DKIM1; k=ed25519; t=y:s; s=email; h=sha256; n=lab; p=shmDdT+obZhGG1NwpB7KfuYI26aRhwbAL5sgcbHs+Yg=")
	if err != nil {
		t.Fatal(err)
	}
	if !k.Testing() || !k.Strict() || k.Bits != 256 || k.Notes != "lab" || k.Services[0] != "email" {
		t.Errorf("%+v", k)
	}
	if k, err := dkim.ParseKey("v=DKIM1; p="); err != nil || !k.Revoked {
		t.Errorf("revoked key: %+v %v", k, err)
	}
}
