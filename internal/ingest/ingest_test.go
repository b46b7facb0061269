package ingest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/mxray/mxray/internal/report/mimetree"
)

const smallXML = `<?xml version="1.0"?><feedback><report_metadata><org_name>o</org_name><report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>d.example</domain></policy_published><record><row><source_ip>192.0.2.1</source_ip><count>1</count></row></record></feedback>`

const smallJSON = `{"organization-name":"O","date-range":{"start-datetime":"2024-01-09T00:00:00Z","end-datetime":"2024-01-09T23:59:59Z"},"contact-info":"c@o.example","report-id":"r1","policies":[]}`

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type entry struct {
	name string
	data []byte
}

func zipOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.Create(e.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// message builds a MIME message with one attachment per part, base64
// encoded, under the given top-level content type.
func message(contentType string, parts ...string) []byte {
	return messageB("BB", contentType, parts...)
}

// messageB is message with another boundary, for a message inside one.
func messageB(boundary, contentType string, parts ...string) []byte {
	var b strings.Builder
	b.WriteString("From: reporter@example.net\r\nTo: rua@example.com\r\nSubject: Report\r\nMIME-Version: 1.0\r\n")
	b.WriteString("Content-Type: " + contentType + "; boundary=\"" + boundary + "\"\r\n\r\n")
	for _, p := range parts {
		b.WriteString("--" + boundary + "\r\n" + p + "\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return []byte(b.String())
}

func attachment(mediaType, filename string, data []byte) string {
	h := "Content-Type: " + mediaType + "\r\nContent-Transfer-Encoding: base64\r\n"
	if filename != "" {
		h += "Content-Disposition: attachment; filename=\"" + filename + "\"\r\n"
	}
	return h + "\r\n" + base64.StdEncoding.EncodeToString(data) + "\r\n"
}

const textPart = "Content-Type: text/plain\r\n\r\nThis is a report.\r\n"

// summary is what a user sees of a payload in a listing.
type summary struct {
	Kind Kind
	Name string
	Data string
}

func summarise(ps []Payload) []summary {
	var out []summary
	for _, p := range ps {
		d := string(p.Data)
		if p.Kind == KindFailureReport || p.Kind == KindDSN || len(d) > 40 {
			d = d[:min(len(d), 20)]
		}
		out = append(out, summary{p.Kind, p.Name, d})
	}
	return out
}

func TestDecode(t *testing.T) {
	arf := message(`multipart/report; report-type=feedback-report`, textPart,
		"Content-Type: message/feedback-report\r\n\r\nFeedback-Type: auth-failure\r\nVersion: 1\r\n",
		"Content-Type: message/rfc822\r\n\r\nFrom: a@b\r\nSubject: x\r\n\r\nbody\r\n")
	dsn := message(`multipart/report; report-type=delivery-status`, textPart,
		"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; a@b\r\nAction: failed\r\nStatus: 5.1.1\r\n",
		// The returned message carries a report attachment, which must
		// not be mistaken for a report.
		"Content-Type: message/rfc822\r\n\r\n"+string(messageB("CC", "multipart/mixed", attachment("application/gzip", "r.xml.gz", gz(t, []byte(smallXML))))))
	tests := []struct {
		name string
		in   []byte
		want []summary
	}{
		{"plain XML", []byte(smallXML), []summary{{KindDMARCAggregate, "r.xml", smallXML[:20]}}},
		{"XML with BOM and blank lines", []byte("\uFEFF\n\n" + smallXML), []summary{{KindDMARCAggregate, "r.xml", ("\uFEFF\n\n" + smallXML)[:20]}}},
		{"plain JSON", []byte(smallJSON), []summary{{KindTLSReport, "r.xml", smallJSON[:20]}}},
		{"gzip", gz(t, []byte(smallXML)), []summary{{KindDMARCAggregate, "r.xml", smallXML[:20]}}},
		{"gzip with two members", append(gz(t, []byte(smallXML[:100])), gz(t, []byte(smallXML[100:]))...), []summary{{KindDMARCAggregate, "r.xml", smallXML[:20]}}},
		{"zip with two entries", zipOf(t, entry{"a.xml", []byte(smallXML)}, entry{"dir/", nil}, entry{"b.json", []byte(smallJSON)}),
			[]summary{{KindDMARCAggregate, "r.xml/a.xml", smallXML[:20]}, {KindTLSReport, "r.xml/b.json", smallJSON[:20]}}},
		{"zip in gzip", gz(t, zipOf(t, entry{"a.xml", []byte(smallXML)})), []summary{{KindDMARCAggregate, "r.xml/a.xml", smallXML[:20]}}},
		{"other XML", []byte(`<html><body/></html>`), []summary{{KindUnknown, "r.xml", `<html><body/></html>`}}},
		{"other JSON", []byte(`{"a":1}`), []summary{{KindUnknown, "r.xml", `{"a":1}`}}},
		{"text", []byte("hello"), []summary{{KindUnknown, "r.xml", "hello"}}},
		{"e-mail with zip and gzip", message("multipart/mixed", textPart,
			attachment("application/zip", "google.com!example.com!1!2.zip", zipOf(t, entry{"google.com!example.com!1!2.xml", []byte(smallXML)})),
			attachment("application/tlsrpt+gzip", "t.json.gz", gz(t, []byte(smallJSON)))),
			[]summary{
				{KindDMARCAggregate, "r.xml/google.com!example.com!1!2.zip/google.com!example.com!1!2.xml", smallXML[:20]},
				{KindTLSReport, "r.xml/t.json", smallJSON[:20]},
			}},
		{"octet-stream with a telling name", message("multipart/mixed", attachment("application/octet-stream", "report.xml.gz", gz(t, []byte(smallXML)))),
			[]summary{{KindDMARCAggregate, "r.xml/report.xml", smallXML[:20]}}},
		{"single-part message, no file name", []byte("From: a@b\r\nContent-Type: text/xml\r\n\r\n" + smallXML),
			[]summary{{KindDMARCAggregate, "r.xml/part ", smallXML[:20]}}},
		{"forwarded report", message("multipart/mixed", textPart,
			"Content-Type: message/rfc822\r\n\r\n"+string(messageB("CC", "multipart/mixed", attachment("application/gzip", "fwd.xml.gz", gz(t, []byte(smallXML)))))),
			[]summary{{KindDMARCAggregate, "r.xml/fwd.xml", smallXML[:20]}}},
		{"failure report", arf, []summary{{KindFailureReport, "r.xml", string(arf[:20])}}},
		{"bounce quoting a report", dsn, []summary{{KindDSN, "r.xml", string(dsn[:20])}}},
		{"message without attachment", message("multipart/mixed", textPart, attachment("application/octet-stream", "x.bin", []byte{1, 2})),
			[]summary{{KindUnknown, "r.xml", "From: reporter@examp"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Decode("r.xml", tt.in, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarise(ps)); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
			for _, p := range ps {
				if p.Reason == "" {
					t.Errorf("%s: no reason given for %s", p.Name, p.Kind)
				}
			}
		})
	}
}

func TestReasons(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte(`<html/>`), "XML with root element <html>, not a DMARC <feedback>"},
		{[]byte(`<a><b/></a>`), "XML with root element <a>, not a DMARC <feedback>"},
		{[]byte(`<<<`), "starts like XML but is not well-formed"},
		{[]byte(`[1]`), "JSON, but not an object"},
		{message("multipart/mixed", textPart), "e-mail message without a report attachment (parts: text/plain)"},
		{[]byte("\x00\x01"), `not gzip, zip, XML, JSON or an e-mail message (starts with "\x00\x01")`},
	}
	for _, tt := range tests {
		ps, err := Decode("x", tt.in, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) != 1 || ps[0].Kind != KindUnknown || !strings.HasPrefix(ps[0].Reason, tt.want) {
			t.Errorf("Decode(%.20q) = %+v, want unknown because %q", tt.in, ps, tt.want)
		}
	}
}

// TestBombs builds decompression bombs in memory and checks that each is
// refused with the right error, quickly and without the memory it asks for.
func TestBombs(t *testing.T) {
	zeros := make([]byte, 64<<20) // deflates about 1000:1
	gzBomb := gz(t, zeros)
	zipBomb := zipOf(t, entry{"bomb.xml", zeros})
	var many []entry
	for i := 0; i < 100; i++ {
		many = append(many, entry{name: strings.Repeat("x", i+1) + ".xml", data: []byte(smallXML)})
	}
	nested := []byte(smallXML)
	for i := 0; i < 8; i++ {
		nested = zipOf(t, entry{"n.zip", nested})
	}
	tests := []struct {
		name string
		in   []byte
		lim  Limits
		want error
	}{
		{"gzip bomb", gzBomb, Limits{}, ErrBomb},
		{"zip bomb", zipBomb, Limits{}, ErrBomb},
		{"gzip bomb in a zip", zipOf(t, entry{"r.xml.gz", gzBomb}), Limits{}, ErrBomb},
		{"gzip bomb in an e-mail", message("multipart/mixed", attachment("application/gzip", "r.xml.gz", gzBomb)), Limits{}, ErrBomb},
		{"zip entry lying about its size", lyingZip(t, zeros[:1<<20]), Limits{}, ErrCorrupt},
		{"payload over the size limit", gz(t, zeros[:2<<20]), Limits{MaxPayloadBytes: 1 << 20}, ErrTooLarge},
		{"all payloads over the total limit", zipOf(t, entry{"a", zeros[:600<<10]}, entry{"b", zeros[:600<<10]}), Limits{MaxTotalBytes: 1 << 20}, ErrTooLarge},
		{"too many entries", zipOf(t, many...), Limits{}, ErrTooManyEntries},
		{"nested too deeply", nested, Limits{}, ErrTooDeep},
		{"input over the limit", []byte(smallXML), Limits{MaxInputBytes: 10}, ErrTooLarge},
		{"too many MIME parts", message("multipart/mixed", textPart, textPart, textPart), Limits{MIME: mimetree.Limits{MaxParts: 2}}, mimetree.ErrTooManyParts},
		{"corrupt gzip", gzBomb[:1000], Limits{}, ErrCorrupt},
		{"bad gzip header", []byte("\x1f\x8bxx"), Limits{}, ErrCorrupt},
		{"corrupt zip", zipBomb[:len(zipBomb)-30], Limits{}, ErrCorrupt},
		{"empty", nil, Limits{}, ErrEmpty},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Decode("r", tt.in, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want error %v", summarise(ps), err, tt.want)
			}
			if ps != nil {
				t.Error("payloads returned with an error")
			}
			t.Log(err)
		})
	}
}

// lyingZip stores data deflated under a header that declares it 10 bytes.
func lyingZip(t *testing.T, data []byte) []byte {
	var comp bytes.Buffer
	fw, _ := flate.NewWriter(&comp, flate.BestCompression)
	fw.Write(data)
	fw.Close()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, err := w.CreateRaw(&zip.FileHeader{
		Name: "small.xml", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(data),
		CompressedSize64: uint64(comp.Len()), UncompressedSize64: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(comp.Bytes())
	w.Close()
	return b.Bytes()
}

// TestCompressibleReportPasses guards the ratio limit against real data:
// a large report compresses about 100:1 and must not be taken for a bomb.
func TestCompressibleReportPasses(t *testing.T) {
	var b bytes.Buffer
	b.WriteString(`<feedback><report_metadata><org_name>o</org_name><report_id>1</report_id><date_range><begin>1</begin><end>2</end></date_range></report_metadata><policy_published><domain>d</domain></policy_published>`)
	for i := 0; b.Len() < 24<<20; i++ {
		b.WriteString("<record><row><source_ip>10.0.")
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString(".1</source_ip><count>1</count><policy_evaluated><disposition>none</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row><identifiers><header_from>example.com</header_from></identifiers><auth_results><spf><domain></domain><result>none</result></spf></auth_results></record>\n")
	}
	b.WriteString("</feedback>")
	c := gz(t, b.Bytes())
	t.Logf("ratio %d:1", b.Len()/len(c))
	ps, err := Decode("big.xml.gz", c, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 1 || ps[0].Kind != KindDMARCAggregate || len(ps[0].Data) != b.Len() {
		t.Errorf("got %v", summarise(ps))
	}
}

func TestNotes(t *testing.T) {
	in := append(gz(t, []byte(smallXML)), "\r\n"...)
	ps, err := Decode("m.xml.gz", in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := []Payload{{Kind: KindDMARCAggregate, Name: "m.xml", Data: []byte(smallXML), Notes: []string{"2 bytes after the gzip stream ignored"}}}
	if diff := cmp.Diff(want, ps, cmpopts.IgnoreFields(Payload{}, "Reason")); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestNotesPerPayload checks that each payload carries its own notes, not
// a sibling's.
func TestNotesPerPayload(t *testing.T) {
	in := zipOf(t,
		entry{"a.xml.gz", append(gz(t, []byte(smallXML)), "\r\n"...)},
		entry{"b.xml.gz", append(gz(t, []byte(smallXML)), "xyz"...)},
		entry{"c.xml", []byte(smallXML)},
	)
	ps, err := Decode("r.zip", in, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	var got [][]string
	for _, p := range ps {
		got = append(got, p.Notes)
	}
	want := [][]string{{"2 bytes after the gzip stream ignored"}, {"3 bytes after the gzip stream ignored"}, nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notes (-want +got):\n%s", diff)
	}
}
