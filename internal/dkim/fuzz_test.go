package dkim

import (
	"bytes"
	"testing"
)

// FuzzParseTags: the tag-list parser must never panic, and what it accepts
// must survive being written out and read again.
func FuzzParseTags(f *testing.F) {
	for _, s := range []string{"v=1; a=rsa-sha256; d=example.com; s=sel;\r\n\th=from:to; bh=AAAA; b=BBBB",
		"v=DKIM1; k=ed25519; p=", "", ";", "a=b;;", " x = y z ;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tags, err := ParseTags(s)
		if err != nil {
			return
		}
		var b bytes.Buffer
		for _, tg := range tags {
			b.WriteString(tg.Name + "=" + tg.Value + ";")
		}
		again, err := ParseTags(b.String())
		if err != nil || len(again) != len(tags) {
			t.Fatalf("%q re-parsed as %q: %v", b.String(), again, err)
		}
	})
}

// FuzzParseMessage: splitting, canonicalizing and stripping b= must never
// panic, and relaxed canonicalization is idempotent.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte("DKIM-Signature: v=1; b=abc;\r\n d=x\r\nFrom: a\r\n\r\nbody \r\n\r\n"))
	f.Add([]byte("A:\n\t\n\nB"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		m, err := ParseMessage(msg)
		if err != nil {
			return
		}
		for _, fl := range m.Fields {
			c := CanonHeader(Relaxed, fl.Raw)
			if !bytes.Equal(CanonHeader(Relaxed, c), c) {
				t.Fatalf("relaxed header not idempotent: %q", fl.Raw)
			}
			withoutB(fl.Raw)
		}
		b := CanonBody(Relaxed, m.Body)
		if !bytes.Equal(CanonBody(Relaxed, b), b) {
			t.Fatalf("relaxed body not idempotent: %q", m.Body)
		}
		CanonBody(Simple, m.Body)
	})
}
