package ingest

import (
	"bytes"
	"errors"
	"testing"

	"github.com/mxray/mxray/internal/report/mimetree"
)

// FuzzDecode checks that no blob makes Decode panic or break its promises:
// an error and payloads never together, every payload with a kind and a
// reason, and no more data than the limits allow.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(smallXML))
	f.Add([]byte(smallJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxPayloadBytes: 1 << 20, MaxTotalBytes: 2 << 20, MinRatioBytes: 64 << 10, MaxZipEntries: 8, MaxNesting: 4, MaxPayloads: 16,
			MIME: mimetree.Limits{MaxParts: 50, MaxDepth: 5}}
		ps, err := Decode("fuzz", data, lim)
		if err != nil {
			if ps != nil {
				t.Fatal("payloads returned with an error")
			}
			for _, s := range []error{ErrEmpty, ErrTooLarge, ErrBomb, ErrTooManyEntries, ErrTooDeep, ErrCorrupt, ErrMessage} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without a sentinel: %v", err)
		}
		if len(ps) == 0 || len(ps) > lim.MaxPayloads {
			t.Fatalf("%d payloads", len(ps))
		}
		var total int
		for _, p := range ps {
			if p.Kind == "" || p.Reason == "" || p.Name == "" {
				t.Fatalf("payload without kind, reason or name: %+v", p)
			}
			if int64(len(p.Data)) > lim.MaxPayloadBytes && !bytes.Equal(p.Data, data) {
				t.Fatalf("payload of %d bytes", len(p.Data))
			}
			total += len(p.Data)
		}
	})
}
