package dmarcrpt

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mxray/mxray/internal/testutil"
)

// sentinels lists the package's sentinel errors.
var sentinels = []error{ErrSyntax, ErrDoctype, ErrCharset, ErrNotFeedback, ErrMissing, ErrInvalid, ErrTooLarge, ErrTooDeep, ErrFieldTooLong, ErrTooManyRecords, ErrRecordsFirst}

func sentinel(err error) error {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return s
		}
	}
	return err
}

// sameAsEncodingXML parses data with the scanner and with the encoding/xml
// implementation it replaced (oldxml_test.go) and reports how they differ:
// a report the reference accepts must be read identically, and an input it
// refuses must be refused for the same reason.
func sameAsEncodingXML(t *testing.T, data []byte, lim Limits) {
	t.Helper()
	want, werr := oldParse(bytes.NewReader(data), lim)
	got, gerr := Parse(bytes.NewReader(data), lim)
	switch {
	case werr == nil && gerr != nil:
		t.Fatalf("encoding/xml accepts, the scanner refuses: %v", gerr)
	case werr != nil && gerr == nil:
		t.Fatalf("encoding/xml refuses (%v), the scanner accepts", werr)
	case werr != nil:
		if sentinel(werr) != sentinel(gerr) {
			t.Fatalf("refused for different reasons:\nencoding/xml: %v\nscanner:      %v", werr, gerr)
		}
		return
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Fatalf("reports differ (-encoding/xml +scanner):\n%s", diff)
	}
}

// differentialLimits are FuzzParse's, but with a field limit that the
// different accounting of whitespace between tags (the old decoder dropped
// it before counting) cannot reach on fuzzer-sized inputs.
var differentialLimits = Limits{MaxBytes: 1 << 20, MaxDepth: 16, MaxFieldLen: 1 << 16, MaxRecords: 100}

// FuzzScannerMatchesEncodingXML is the differential check of the XML
// scanner against encoding/xml.
func FuzzScannerMatchesEncodingXML(f *testing.F) {
	for _, s := range differentialSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsEncodingXML(t, data, differentialLimits)
	})
}

func differentialSeeds() [][]byte {
	m := minimal("", "", "")
	seeds := []string{
		m,
		rfc9990Report,
		string(synthetic(3)),
		"\xef\xbb\xbf" + m,
		`<?xml version="1.0" encoding="ISO-8859-1"?>` + strings.Replace(m, "org</org", "M\xfcller</org", 1),
		`<?xml version="1.1"?>` + m,
		`<!-- a -- b -->` + m,
		`<!DOCTYPE feedback [<!ENTITY a "b">]>` + m,
		`<!ELEMENT x (y)>` + m,
		strings.Replace(m, "org</org", "a &amp; b &lt;&gt;&quot;&apos; &#65;&#x42; <![CDATA[<c&d>]]> <!-- x --> <?pi x?></org", 1),
		strings.Replace(m, "org</org", "a\r\nb\rc</org", 1),
		strings.Replace(m, "<feedback>", `<x:feedback xmlns:x="urn:ietf:params:xml:ns:dmarc-2.0">`, 1),
		`<xs:schema><feedback xmlns="urn:x">` + strings.TrimPrefix(m, "<feedback>") + `</xs:schema>`,
		strings.Replace(m, "org</org", "&#xD800;&#0;</org", 1),
		strings.Replace(m, "org</org", "]]></org", 1),
		strings.Replace(m, "<report_metadata>", `<report_metadata a="1" b='2' >`, 1),
		strings.Replace(m, "<report_metadata>", `<report_metadata a=1>`, 1),
		strings.Replace(m, "<report_metadata>", `<réport_metadata/><report_metadata>`, 1),
	}
	var out [][]byte
	for _, s := range seeds {
		out = append(out, []byte(s))
	}
	return out
}

// TestScannerMatchesEncodingXML runs the differential check over the seeds,
// the committed fuzz corpus and every XML report of the shared corpus.
func TestScannerMatchesEncodingXML(t *testing.T) {
	inputs := map[string][]byte{}
	for i, s := range differentialSeeds() {
		inputs[filepath.Join("seed", string(rune('a'+i)))] = s
	}
	files, _ := filepath.Glob(filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "*", "*", "*.xml"))
	more, _ := filepath.Glob(filepath.Join(testutil.Shared(t, "dmarc-aggregate"), "*", "*.xml"))
	files = append(files, more...)
	if len(files) == 0 {
		t.Fatal("no XML reports in the shared corpus")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inputs[f] = b
	}
	for name, b := range inputs {
		t.Run(name, func(t *testing.T) {
			sameAsEncodingXML(t, b, Limits{})
			sameAsEncodingXML(t, b, differentialLimits)
		})
	}
}
