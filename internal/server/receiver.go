package server

import (
	"errors"
	"io"
	"mime"
	"net"
	"net/http"

	"github.com/mxray/mxray/internal/ingest"
)

// Receipt is the answer of the HTTPS receiver.
type Receipt struct {
	Result string           `json:"result"` // imported, duplicate or quarantined
	Items  []ingest.Outcome `json:"items"`
}

// ReceiverHandler serves the HTTPS endpoint for TLS reports (RFC 8460 §3
// rua=https:, §5.4) at the configured path.
func (s *Server) ReceiverHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(s.cfg.HTTPS.Path, s.receiveTLSRPT)
	return mux
}

func (s *Server) receiveTLSRPT(w http.ResponseWriter, r *http.Request) {
	// RFC 8460 §5.4: the report is the body of a POST to the rua
	// https: URI (§3).
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "POST a report")
		return
	}
	// RFC 8460 §5.4: the media type is application/tlsrpt+json, or
	// application/tlsrpt+gzip when compressed (§5.2, §6.4, §6.5).
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/tlsrpt+json" && mt != "application/tlsrpt+gzip" {
		writeError(w, http.StatusUnsupportedMediaType, "want Content-Type application/tlsrpt+json or application/tlsrpt+gzip")
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.HTTPS.MaxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "the report is larger than the receiver accepts")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the report: "+err.Error())
		return
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	outs, err := s.importBlob(r.Context(), "https:"+host, data)
	if err != nil {
		// RFC 8460 §5.4: a code other than 2xx is a delivery failure,
		// which the sender may retry (§5.5).
		w.Header().Set("Retry-After", "300")
		writeError(w, http.StatusServiceUnavailable, "the report store is unavailable; try again later")
		return
	}
	// RFC 8460 §5.4: success is "typically a 200 or 201": 201 when the
	// report was stored, 200 when it was held already.
	res := Receipt{Result: "duplicate", Items: outs}
	code := http.StatusOK
	for _, o := range outs {
		switch o.Result {
		case ingest.Quarantined:
			res.Result, code = "quarantined", http.StatusBadRequest
		case ingest.Imported, ingest.Bounced:
			if code != http.StatusBadRequest {
				res.Result, code = "imported", http.StatusCreated
			}
		}
	}
	if len(outs) == 0 {
		res.Result, code = "quarantined", http.StatusBadRequest
	}
	writeJSON(w, code, res)
}
