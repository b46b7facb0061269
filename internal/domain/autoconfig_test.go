package domain

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/testutil"
)

// TestSharedCorpus accounts for every file of the shared autoconfig
// corpus: each ISPDB and Thunderbird-for-Android document must parse with
// every IMAP, POP3 and SMTP entry usable, each Autodiscover response must
// parse, the Autodiscover request must match the one mxray sends, and
// the remaining files are documentation.
func TestSharedCorpus(t *testing.T) {
	root := testutil.Shared(t, "autoconfig")
	docs := map[string]string{
		"SOURCE.md":                                         "provenance of the corpus",
		"thunderbird-ispdb/README.md":                       "the ISPDB's read-me",
		"thunderbird-ispdb/LICENSE":                         "the ISPDB's licence",
		"outlook-autodiscover/pox-autodiscover-request.xml": "a request, not a response: compared with AutodiscoverRequest",
	}
	var ispdb, servers, responses int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch {
		case rel == "outlook-autodiscover/pox-autodiscover-request.xml":
			checkRequest(t, b)
		case docs[rel] != "":
		case strings.HasPrefix(rel, "thunderbird-ispdb/ispdb/") && strings.HasSuffix(rel, ".xml"),
			strings.HasPrefix(rel, "thunderbird-android/") && strings.HasSuffix(rel, ".xml"):
			c, err := ParseAutoconfig(b)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			ispdb++
			for _, p := range c.Providers {
				if len(p.Domains) == 0 {
					t.Errorf("%s: provider %q lists no domain", rel, p.ID)
				}
				for _, s := range append(append([]ConfigServer{}, p.Incoming...), p.Outgoing...) {
					switch s.Type {
					case "imap", "pop3", "smtp":
						servers++
						if len(s.Problems) > 0 {
							t.Errorf("%s: %s %s: %v", rel, s.Type, s.Hostname, s.Problems)
						}
					}
				}
			}
		case strings.HasPrefix(rel, "outlook-autodiscover/pox-autodiscover-response-"):
			a, err := ParseAutodiscover(b)
			if err != nil {
				t.Errorf("%s: %v", rel, err)
				return nil
			}
			responses++
			if strings.HasSuffix(rel, "-error.xml") != (a.Response.Error != nil) {
				t.Errorf("%s: error element %v", rel, a.Response.Error)
			}
		default:
			t.Errorf("%s: not accounted for: parse it or list it with a reason", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// 163 ISPDB files plus the Android snapshot; 2 responses.
	if ispdb != 164 || responses != 2 {
		t.Errorf("parsed %d autoconfig documents and %d autodiscover responses, want 164 and 2", ispdb, responses)
	}
	t.Logf("%d autoconfig documents, %d IMAP/POP3/SMTP entries, %d Autodiscover responses", ispdb, servers, responses)
}

func checkRequest(t *testing.T, sample []byte) {
	t.Helper()
	type req struct {
		Email  string `xml:"Request>EMailAddress"`
		Schema string `xml:"Request>AcceptableResponseSchema"`
	}
	var want, got req
	if err := decodeXML(sample, &want); err != nil {
		t.Fatal(err)
	}
	if err := decodeXML(AutodiscoverRequest(want.Email), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AutodiscoverRequest differs from Microsoft's sample (-want +got):\n%s", diff)
	}
}

func TestParseAutoconfig(t *testing.T) {
	good := `<clientConfig version="1.1"><emailProvider id="x.test"><domain>x.test</domain>
<incomingServer type="imap"><hostname> imap.x.test </hostname><port>993</port><socketType>SSL</socketType></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.x.test</hostname><port>587</port><socketType>STARTTLS</socketType></outgoingServer>
</emailProvider></clientConfig>`
	deep := "<clientConfig>" + strings.Repeat("<a>", MaxConfigDepth) + strings.Repeat("</a>", MaxConfigDepth) + "</clientConfig>"
	tests := []struct {
		name string
		doc  string
		err  error
		want []ConfigServer // incoming then outgoing of the first provider
	}{
		{name: "good", doc: good, want: []ConfigServer{
			{Type: "imap", Hostname: "imap.x.test", PortText: "993", Port: 993, SocketType: "SSL"},
			{Type: "smtp", Hostname: "smtp.x.test", PortText: "587", Port: 587, SocketType: "STARTTLS"},
		}},
		{name: "bad entries are problems, not errors", doc: `<clientConfig><emailProvider id="x"><incomingServer type="pop3"><port>99999</port><socketType>TLS</socketType></incomingServer></emailProvider></clientConfig>`,
			want: []ConfigServer{{Type: "pop3", PortText: "99999", SocketType: "TLS", Problems: []string{
				"no hostname", `port "99999" is not a port number`, `socketType "TLS" is not SSL, STARTTLS or plain`}}}},
		{name: "latin-1", doc: "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><clientConfig><emailProvider id=\"\xe9\"><incomingServer type=\"imap\"><hostname>h</hostname><port>143</port><socketType>plain</socketType></incomingServer></emailProvider></clientConfig>",
			want: []ConfigServer{{Type: "imap", Hostname: "h", PortText: "143", Port: 143, SocketType: "plain"}}},
		{name: "billion laughs", doc: `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><clientConfig>&lol2;</clientConfig>`, err: ErrXMLUnsafe},
		{name: "external entity", doc: `<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]><clientConfig>&x;</clientConfig>`, err: ErrXMLUnsafe},
		{name: "undeclared entity", doc: `<clientConfig>&x;</clientConfig>`, err: ErrXML},
		{name: "too deep", doc: deep, err: ErrXMLUnsafe},
		{name: "too large", doc: "<clientConfig>" + strings.Repeat(" ", MaxConfigSize) + "</clientConfig>", err: ErrXMLUnsafe},
		{name: "not closed", doc: `<clientConfig><emailProvider>`, err: ErrXML},
		{name: "other root", doc: `<html><body>not found</body></html>`, err: ErrNotAutoconfig},
		{name: "no provider", doc: `<clientConfig version="1.1"/>`, err: ErrNotAutoconfig},
		{name: "unknown encoding", doc: `<?xml version="1.0" encoding="EBCDIC"?><clientConfig/>`, err: ErrXML},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseAutoconfig([]byte(tc.doc))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p := c.Providers[0]
			got := append(append([]ConfigServer{}, p.Incoming...), p.Outgoing...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAutodiscoverTLS(t *testing.T) {
	tests := []struct {
		p    ADProtocol
		want string
	}{
		{ADProtocol{Port: 993}, TLSImplicit},
		{ADProtocol{Port: 143}, TLSStartTLS},
		{ADProtocol{Port: 143, SSL: "off"}, TLSNone},
		{ADProtocol{Port: 587, Encryption: "TLS"}, TLSStartTLS},
		{ADProtocol{Port: 587, Encryption: "SSL", SSL: "off"}, TLSImplicit},
		{ADProtocol{Port: 465, Encryption: "None"}, TLSNone},
	}
	for _, tc := range tests {
		if got := tc.p.TLS(); got != tc.want {
			t.Errorf("%+v: TLS() = %s, want %s", tc.p, got, tc.want)
		}
	}
}

func TestParseAutodiscover(t *testing.T) {
	doc := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a">
<Account><AccountType>email</AccountType><Action>settings</Action>
<Protocol><Type>imap</Type><Server>imap.x.test</Server><Port>993</Port><SSL>on</SSL></Protocol>
<Protocol><Type>SMTP</Type><Server></Server><Port>none</Port></Protocol>
</Account></Response></Autodiscover>`
	a, err := ParseAutodiscover([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	ps := a.Response.Account.Protocols
	if len(ps) != 2 || ps[0].Type != "IMAP" || ps[0].Port != 993 || ps[0].TLS() != TLSImplicit || len(ps[0].Problems) != 0 {
		t.Errorf("IMAP protocol = %+v", ps[0])
	}
	if diff := cmp.Diff([]string{"no Server", `Port "none" is not a port number`}, ps[1].Problems); diff != "" {
		t.Errorf("SMTP problems (-want +got):\n%s", diff)
	}
	for _, bad := range []struct {
		doc string
		err error
	}{
		{`<Autodiscover><Response/></Autodiscover>`, ErrNotAutodiscover},
		{`<clientConfig/>`, ErrNotAutodiscover},
		{`<!DOCTYPE a><Autodiscover/>`, ErrXMLUnsafe},
	} {
		if _, err := ParseAutodiscover([]byte(bad.doc)); !errors.Is(err, bad.err) {
			t.Errorf("%s: err = %v, want %v", bad.doc, err, bad.err)
		}
	}
}
