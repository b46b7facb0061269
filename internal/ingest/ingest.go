// Package ingest safely decodes incoming blobs into report payloads and
// says what each one is: a DMARC aggregate report (RFC 9990, RFC 7489
// Appendix C), an SMTP TLS report (RFC 8460), a failure report in the Abuse
// Reporting Format (RFC 6591, RFC 9991, RFC 5965), a delivery status
// notification (RFC 3464), or unknown, with the reason.
//
// A blob is plain XML or JSON, a gzip stream (RFC 1952), a zip archive, an
// e-mail message (RFC 5322, MIME per RFC 2045/2046, parsed by mimetree), or
// any nesting of these (a message with a zip holding a gzip). Formats are
// recognised by their content; file names and media types only decide
// which MIME parts are worth opening. Failure reports and DSNs are returned
// as the whole message, for the arf and dsn parsers.
//
// Every step is bounded (see Limits): input size, decompressed size per
// payload and in total, compression ratio, zip entry count, nesting and the
// MIME limits. A decompression bomb is an error (ErrBomb), not an outage.
//
// Not supported: other archive formats (tar, 7z, rar), bzip2/xz/zstd,
// encrypted zip entries, S/MIME or PGP-protected messages, and TNEF
// (winmail.dat). Decode reads one blob; an mbox of several messages is
// split by Walk (source.go) before each message reaches Decode.
package ingest

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/mxray/mxray/internal/report/mimetree"
)

// Sentinel errors; every error returned wraps one of them (or one of
// mimetree's limit errors for a message that breaks the MIME limits).
var (
	ErrEmpty          = errors.New("ingest: empty input")
	ErrTooLarge       = errors.New("ingest: size limit exceeded")
	ErrBomb           = errors.New("ingest: compression ratio too high (decompression bomb)")
	ErrTooManyEntries = errors.New("ingest: too many zip entries")
	ErrTooDeep        = errors.New("ingest: containers nested too deeply")
	ErrCorrupt        = errors.New("ingest: corrupt compressed data")
	ErrMessage        = errors.New("ingest: unreadable e-mail message")
)

// Kind is what a payload is.
type Kind string

const (
	KindDMARCAggregate Kind = "dmarc-aggregate" // XML <feedback>, for dmarcrpt
	KindTLSReport      Kind = "tls-report"      // RFC 8460 JSON, for tlsrpt
	KindFailureReport  Kind = "failure-report"  // ARF message (RFC 5965/6591/9991), for arf
	KindDSN            Kind = "dsn"             // delivery status notification (RFC 3464), for dsn
	KindUnknown        Kind = "unknown"         // none of the above; Reason says why
)

// Payload is one report found in a blob.
type Payload struct {
	Kind Kind
	// Name locates the payload: the blob's name, then each container's
	// member joined with "/" (e-mail parts by file name, else by MIME
	// path: "report.eml/google.zip/google.xml").
	Name string
	// MediaType is the declared type of the MIME part that carried the
	// payload, "" when it did not come from a message.
	MediaType string
	// Data is the payload, transfer-decoded and decompressed; for failure
	// reports and DSNs, the whole message.
	Data []byte
	// Reason says why Kind was chosen, in words for a person.
	Reason string
	// Notes lists what was tolerated on the way: bytes after a gzip
	// stream, MIME defects of the carrying part.
	Notes []string
}

// Limits bounds the work one blob may cause. A zero field takes the default
// from DefaultLimits.
type Limits struct {
	MaxInputBytes   int64 // the blob itself
	MaxPayloadBytes int64 // one decompressed payload or archive member
	MaxTotalBytes   int64 // all decompressed data from one blob together
	// MaxRatio is the largest decompressed:compressed ratio accepted once a
	// stream has produced MinRatioBytes. Real reports compress up to about
	// 100:1; deflate bombs reach 1000:1.
	MaxRatio      int64
	MinRatioBytes int64
	MaxZipEntries int
	MaxNesting    int // containers inside containers, the blob being level 1
	MaxPayloads   int // payloads returned
	MIME          mimetree.Limits
}

// DefaultLimits accept the largest real reports (a few hundred MB of XML)
// and stop bombs early.
func DefaultLimits() Limits {
	return Limits{
		MaxInputBytes:   64 << 20,
		MaxPayloadBytes: 512 << 20,
		MaxTotalBytes:   1 << 30,
		MaxRatio:        400,
		MinRatioBytes:   8 << 20,
		MaxZipEntries:   64,
		MaxNesting:      6,
		MaxPayloads:     256,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	set := func(v *int64, def int64) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&l.MaxInputBytes, d.MaxInputBytes)
	set(&l.MaxPayloadBytes, d.MaxPayloadBytes)
	set(&l.MaxTotalBytes, d.MaxTotalBytes)
	set(&l.MaxRatio, d.MaxRatio)
	set(&l.MinRatioBytes, d.MinRatioBytes)
	if l.MaxZipEntries <= 0 {
		l.MaxZipEntries = d.MaxZipEntries
	}
	if l.MaxNesting <= 0 {
		l.MaxNesting = d.MaxNesting
	}
	if l.MaxPayloads <= 0 {
		l.MaxPayloads = d.MaxPayloads
	}
	return l
}

// Decode turns a blob into its payloads. name is where the blob came from
// (a file name, a message id); it names the payloads and is a hint only.
// A blob that decodes but holds no report yields one KindUnknown payload
// saying why; an error means the blob could not be decoded safely.
func Decode(name string, raw []byte, lim Limits) ([]Payload, error) {
	lim = lim.withDefaults()
	if len(raw) == 0 {
		return nil, ErrEmpty
	}
	if int64(len(raw)) > lim.MaxInputBytes {
		return nil, fmt.Errorf("%w: input of %d bytes, limit %d", ErrTooLarge, len(raw), lim.MaxInputBytes)
	}
	d := &decoder{lim: lim}
	if err := d.blob(name, "", raw, 1, nil); err != nil {
		return nil, err
	}
	return d.out, nil
}

type decoder struct {
	lim   Limits
	total int64 // decompressed bytes produced so far
	out   []Payload
}

func (d *decoder) emit(p Payload) error {
	if len(d.out) >= d.lim.MaxPayloads {
		return fmt.Errorf("%w: more than %d payloads", ErrTooLarge, d.lim.MaxPayloads)
	}
	d.out = append(d.out, p)
	return nil
}

// blob recognises data by its content and unpacks it.
func (d *decoder) blob(name, mediaType string, data []byte, depth int, notes []string) error {
	if depth > d.lim.MaxNesting {
		return fmt.Errorf("%w: %s is nested %d levels deep", ErrTooDeep, name, depth)
	}
	switch {
	case len(data) == 0:
		return d.emit(Payload{Kind: KindUnknown, Name: name, MediaType: mediaType, Reason: "empty attachment or archive member", Notes: notes})
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		out, more, err := d.gunzip(name, data)
		if err != nil {
			return err
		}
		return d.blob(strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".gzip"), mediaType, out, depth+1, slices.Concat(notes, more))
	case bytes.HasPrefix(data, []byte("PK\x03\x04")), bytes.HasPrefix(data, []byte("PK\x05\x06")):
		return d.unzip(name, mediaType, data, depth, notes)
	}
	switch text := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")), " \t\r\n"); {
	case len(text) > 0 && text[0] == '<':
		kind, reason := classifyXML(text)
		return d.emit(Payload{Kind: kind, Name: name, MediaType: mediaType, Data: data, Reason: reason, Notes: notes})
	case len(text) > 0 && (text[0] == '{' || text[0] == '['):
		kind, reason := classifyJSON(text)
		return d.emit(Payload{Kind: kind, Name: name, MediaType: mediaType, Data: data, Reason: reason, Notes: notes})
	case looksLikeMessage(data):
		return d.message(name, data, depth, notes)
	}
	return d.emit(Payload{Kind: KindUnknown, Name: name, MediaType: mediaType, Data: data, Notes: notes,
		Reason: fmt.Sprintf("not gzip, zip, XML, JSON or an e-mail message (starts with %q)", head(data, 16))})
}

// gunzip decompresses every member of a gzip stream within the limits.
// Bytes after the last member that are not another member are ignored
// with a note: Mimecast, for one, appends a line break.
func (d *decoder) gunzip(name string, data []byte) ([]byte, []string, error) {
	br := bytes.NewReader(data) // an io.ByteReader, so gzip reads no further than each member
	zr, err := gzip.NewReader(br)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	var out bytes.Buffer
	var notes []string
	for {
		zr.Multistream(false)
		if err := d.copyBounded(&out, zr, name, func() int64 { return int64(len(data) - br.Len()) }); err != nil {
			return nil, nil, err
		}
		rest := data[len(data)-br.Len():]
		if len(rest) == 0 {
			break
		}
		if !bytes.HasPrefix(rest, []byte{0x1f, 0x8b}) {
			notes = append(notes, fmt.Sprintf("%d bytes after the gzip stream ignored", len(rest)))
			break
		}
		if err := zr.Reset(br); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: member after the first: %v", ErrCorrupt, name, err)
		}
	}
	return out.Bytes(), notes, nil
}

// copyBounded decompresses r into w, enforcing the size limits and, once
// MinRatioBytes have come out, the ratio to the compressed bytes consumed.
func (d *decoder) copyBounded(w *bytes.Buffer, r io.Reader, name string, consumed func() int64) error {
	buf := make([]byte, 32<<10)
	start := w.Len()
	for {
		n, err := r.Read(buf)
		w.Write(buf[:n])
		d.total += int64(n)
		produced := int64(w.Len() - start)
		if produced > d.lim.MaxPayloadBytes {
			return fmt.Errorf("%w: %s decompresses to more than %d bytes", ErrTooLarge, name, d.lim.MaxPayloadBytes)
		}
		if d.total > d.lim.MaxTotalBytes {
			return fmt.Errorf("%w: more than %d decompressed bytes in all", ErrTooLarge, d.lim.MaxTotalBytes)
		}
		if produced > d.lim.MinRatioBytes {
			if c := max(consumed(), 1); produced/c > d.lim.MaxRatio {
				return fmt.Errorf("%w: %s: %d bytes from %d compressed, over %d:1", ErrBomb, name, produced, c, d.lim.MaxRatio)
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
		}
	}
}

func (d *decoder) unzip(name, mediaType string, data []byte, depth int, notes []string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	// Entry names are only labels here, nothing is written to disk, so
	// an insecure path is no reason to refuse the archive.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err)
	}
	if len(zr.File) > d.lim.MaxZipEntries {
		return fmt.Errorf("%w: %s has %d entries, limit %d", ErrTooManyEntries, name, len(zr.File), d.lim.MaxZipEntries)
	}
	found := false
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") || strings.HasPrefix(f.Name, "__MACOSX/") {
			continue
		}
		found = true
		member := name + "/" + f.Name
		// The declared sizes are checked first, so that an honest bomb is
		// refused before any work; the actual output is checked as it
		// comes, since the declaration may lie.
		if f.UncompressedSize64 > uint64(d.lim.MaxPayloadBytes) {
			return fmt.Errorf("%w: %s declares %d bytes", ErrTooLarge, member, f.UncompressedSize64)
		}
		comp := max(int64(f.CompressedSize64), 1)
		if int64(f.UncompressedSize64) > d.lim.MinRatioBytes && int64(f.UncompressedSize64)/comp > d.lim.MaxRatio {
			return fmt.Errorf("%w: %s declares %d bytes from %d compressed, over %d:1", ErrBomb, member, f.UncompressedSize64, comp, d.lim.MaxRatio)
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, member, err)
		}
		var out bytes.Buffer
		err = d.copyBounded(&out, rc, member, func() int64 { return comp })
		rc.Close()
		if err != nil {
			return err
		}
		if err := d.blob(member, mediaType, out.Bytes(), depth+1, notes); err != nil {
			return err
		}
	}
	if !found {
		return d.emit(Payload{Kind: KindUnknown, Name: name, MediaType: mediaType, Reason: "zip archive without files", Notes: notes})
	}
	return nil
}

// reportTypes are the media types that carry reports as attachments.
var reportTypes = map[string]bool{
	"application/gzip":             true,
	"application/x-gzip":           true,
	"application/zip":              true,
	"application/x-zip-compressed": true,
	"application/x-zip":            true,
	"text/xml":                     true,
	"application/xml":              true,
	"application/tlsrpt+json":      true, // RFC 8460 §5.3
	"application/tlsrpt+gzip":      true, // RFC 8460 §5.3
	"application/json":             true,
}

// tellingName reports whether a file name says "report", whatever the
// media type: many senders label attachments application/octet-stream.
func tellingName(name string) bool {
	n := strings.ToLower(name)
	for _, ext := range []string{".xml", ".xml.gz", ".gz", ".gzip", ".zip", ".json", ".json.gz"} {
		if strings.HasSuffix(n, ext) {
			return true
		}
	}
	return false
}

func (d *decoder) message(name string, raw []byte, depth int, notes []string) error {
	root, err := mimetree.ParseLimits(raw, d.lim.MIME)
	if err != nil {
		// mimetree's limit errors are kept so that callers can tell
		// them apart; anything else is an unreadable message.
		return fmt.Errorf("%w: %s: %w", ErrMessage, name, err)
	}
	// A failure report or a DSN is the message itself; it may quote the
	// original message with its attachments, which are not reports.
	// RFC 6522 §3: the report-type parameter names the kind of report.
	if rep := root.Find("multipart/report"); rep != nil || root.Find("message/feedback-report") != nil ||
		root.Find("message/delivery-status") != nil || root.Find("message/global-delivery-status") != nil {
		rt := ""
		if rep != nil {
			rt = strings.ToLower(rep.Params["report-type"])
		}
		switch {
		case rt == "feedback-report" || rt == "" && root.Find("message/feedback-report") != nil:
			return d.emit(Payload{Kind: KindFailureReport, Name: name, MediaType: root.MediaType, Data: raw, Notes: notes,
				Reason: "message with a message/feedback-report part (RFC 5965 §2)"})
		case rt == "delivery-status" || rt == "global-delivery-status" ||
			rt == "" && (root.Find("message/delivery-status") != nil || root.Find("message/global-delivery-status") != nil):
			return d.emit(Payload{Kind: KindDSN, Name: name, MediaType: root.MediaType, Data: raw, Notes: notes,
				Reason: "message with a delivery-status report (RFC 3464 §2)"})
		}
		// report-type=tlsrpt (RFC 8460 §5.3) and others: look at the
		// attachments.
	}
	var seen []string
	candidates := 0
	var walkErr error
	root.Walk(func(p *mimetree.Part) bool {
		if p.IsMultipart() || len(p.Children) > 0 {
			return true
		}
		if !reportTypes[p.MediaType] && !tellingName(p.Filename) {
			label := p.MediaType
			if p.Filename != "" {
				label += " " + p.Filename
			}
			seen = append(seen, label)
			return true
		}
		candidates++
		member := p.Filename
		if member == "" {
			member = "part " + p.Path
		}
		pn := slices.Clip(notes) // siblings must not share appends
		for _, def := range p.Defects {
			pn = append(pn, "MIME part "+p.Path+": "+def)
		}
		if err := d.blob(name+"/"+member, p.MediaType, p.Body, depth+1, pn); err != nil {
			walkErr = err
			return false
		}
		return true
	})
	if walkErr != nil {
		return walkErr
	}
	if candidates == 0 {
		return d.emit(Payload{Kind: KindUnknown, Name: name, MediaType: root.MediaType, Data: raw, Notes: notes,
			Reason: "e-mail message without a report attachment (parts: " + strings.Join(seen, ", ") + ")"})
	}
	return nil
}

// looksLikeMessage reports whether data starts with a header field (or an
// mbox "From " line).
func looksLikeMessage(data []byte) bool {
	if bytes.HasPrefix(data, []byte("From ")) {
		return true
	}
	for i, c := range data {
		switch {
		case c == ':':
			return i > 0
		case c < 33 || c > 126 || i > 76:
			return false
		}
	}
	return false
}

// classifyXML reads up to the root element (and its first child, for
// reports wrapped in a stray element) without parsing the rest.
func classifyXML(data []byte) (Kind, string) {
	x := xml.NewDecoder(bytes.NewReader(data[:min(len(data), 64<<10)]))
	x.Strict = true
	x.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	var root string
	for {
		tok, err := x.RawToken()
		if err != nil {
			if root != "" {
				return KindUnknown, fmt.Sprintf("XML with root element <%s>, not a DMARC <feedback>", root)
			}
			return KindUnknown, fmt.Sprintf("starts like XML but is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "feedback" {
				if root != "" {
					return KindDMARCAggregate, fmt.Sprintf("XML <feedback> inside <%s> (DMARC aggregate report, RFC 9990)", root)
				}
				return KindDMARCAggregate, "XML root element <feedback> (DMARC aggregate report, RFC 9990)"
			}
			if root != "" {
				return KindUnknown, fmt.Sprintf("XML with root element <%s>, not a DMARC <feedback>", root)
			}
			root = se.Name.Local
		}
	}
}

// classifyJSON looks at the top-level member names.
func classifyJSON(data []byte) (Kind, string) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return KindUnknown, "JSON, but not an object"
	}
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		k, _ := tok.(string)
		keys[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			break
		}
	}
	// RFC 8460 §4.4: organization-name, date-range, contact-info,
	// report-id and policies are the report's members.
	score := 0
	for _, k := range []string{"organization-name", "date-range", "contact-info", "report-id", "policies"} {
		if keys[k] {
			score++
		}
	}
	if score >= 2 {
		return KindTLSReport, fmt.Sprintf("JSON with %d of the 5 RFC 8460 §4.4 members (SMTP TLS report)", score)
	}
	return KindUnknown, "JSON object without the members of an RFC 8460 TLS report"
}

func head(b []byte, n int) []byte { return b[:min(len(b), n)] }
