package domain

import "testing"

// The parsers read documents fetched from any web server: they must never
// panic, and a document they accept must have at least one provider (or a
// Response with an Account or an Error).

func FuzzParseAutoconfig(f *testing.F) {
	f.Add([]byte(`<clientConfig version="1.1"><emailProvider id="x"><domain>x</domain><incomingServer type="imap"><hostname>h</hostname><port>993</port><socketType>SSL</socketType></incomingServer></emailProvider></clientConfig>`))
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY b "c">]><clientConfig>&b;</clientConfig>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseAutoconfig(b)
		if err == nil && len(c.Providers) == 0 {
			t.Fatalf("accepted a document without a provider: %q", b)
		}
	})
}

func FuzzParseAutodiscover(f *testing.F) {
	f.Add([]byte(`<Autodiscover><Response><Account><Protocol><Type>IMAP</Type><Server>h</Server><Port>993</Port></Protocol></Account></Response></Autodiscover>`))
	f.Add([]byte(`<Autodiscover><Response><Error><ErrorCode>600</ErrorCode></Error></Response></Autodiscover>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ParseAutodiscover(b)
		if err == nil && a.Response.Account == nil && a.Response.Error == nil {
			t.Fatalf("accepted a response without Account or Error: %q", b)
		}
	})
}
