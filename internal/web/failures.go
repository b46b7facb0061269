package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/mxray/mxray/internal/ingest"
	"github.com/mxray/mxray/internal/store"
)

// Failure reports (ARF, RFC 5965; DMARC failure reports, RFC 6591 and
// RFC 9991) and the quarantine's re-process button.

// failuresShown bounds one page of the failure report list.
const failuresShown = 100

// failureRow is one failure report of the list.
type failureRow struct {
	store.ReportHead
	*store.FailureReport
}

func (r failureRow) Domains() string { return strings.Join(r.ReportedDomain, ", ") }

func (s *server) failureReportsPage(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	p, rp := s.reportsBase(w, sess, "Reports: failure reports", "/reports/failure")
	if rp.NoStore {
		s.render(w, http.StatusOK, "reports_failure", p)
		return
	}
	ctx := r.Context()
	rp.Domain = domainParam(r)
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	heads, err := s.cfg.Reports.ReportList(ctx, store.ListFilter{Kind: store.KindFailure, Domain: rp.Domain, Before: before, Limit: failuresShown + 1})
	if err != nil {
		s.storeError(w, err)
		return
	}
	if len(heads) > failuresShown {
		heads = heads[:failuresShown]
		rp.Next = heads[len(heads)-1].ID
	}
	for _, h := range heads {
		rep, err := s.cfg.Reports.Report(ctx, h.ID, 0)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			s.storeError(w, err)
			return
		}
		f := rep.Failure
		if f == nil {
			f = &store.FailureReport{}
		}
		rp.Failures = append(rp.Failures, failureRow{ReportHead: h, FailureReport: f})
	}
	s.render(w, http.StatusOK, "reports_failure", p)
}

// Reprocessor returns the Config.Reprocess of `mxray serve`: it runs one
// quarantined item through im again, as `mxray reports quarantine
// --reprocess` does for each: imported, the item leaves the quarantine;
// still failing, it keeps its place with the new reason.
func Reprocessor(db QuarantineStore, im *ingest.Importer) func(ctx context.Context, id int64) (bool, string, error) {
	return func(ctx context.Context, id int64) (bool, string, error) {
		q, err := db.QuarantineGet(ctx, id)
		if err != nil {
			return false, "", err
		}
		outs, ok, err := im.Reprocess(ctx, q)
		if err != nil {
			return false, "", err
		}
		if ok {
			return true, "", db.QuarantineRemove(ctx, id)
		}
		var why []string
		for _, o := range outs {
			if o.Result == ingest.Quarantined {
				why = append(why, o.Reason)
			}
		}
		reason := strings.Join(why, "; ")
		if reason == "" {
			reason = "nothing in it could be read as a report"
		}
		if reason != q.Reason {
			if err := db.QuarantineReason(ctx, id, reason); err != nil {
				return false, reason, err
			}
		}
		return false, reason, nil
	}
}

// QuarantineStore is what Reprocessor needs of the store: *store.DB.
type QuarantineStore interface {
	QuarantineGet(ctx context.Context, id int64) (store.QuarantineItem, error)
	QuarantineRemove(ctx context.Context, id int64) error
	QuarantineReason(ctx context.Context, id int64, reason string) error
}

// reprocess runs Config.Reprocess on one item and shows the quarantine
// with the outcome.
func (s *server) reprocess(w http.ResponseWriter, r *http.Request, sess *store.AdminSession) {
	if s.cfg.Reprocess == nil || s.cfg.Reports == nil {
		http.Error(w, "re-processing is not available in this server", http.StatusNotFound)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		http.NotFound(w, r)
		return
	}
	ok, reason, err := s.cfg.Reprocess(r.Context(), id)
	var notice, fail string
	code := http.StatusOK
	switch {
	case errors.Is(err, store.ErrNotFound):
		fail, code = fmt.Sprintf("There is no quarantine item %d (re-processed or removed meanwhile?).", id), http.StatusNotFound
	case err != nil:
		s.log.Error("web: reprocess", "id", id, "err", err)
		fail, code = fmt.Sprintf("Item %d could not be re-processed: %v", id, err), http.StatusInternalServerError
	case ok:
		notice = fmt.Sprintf("Item %d was imported and removed from the quarantine.", id)
	default:
		fail = fmt.Sprintf("Item %d still fails: %s", id, reason)
	}
	s.renderQuarantine(w, r, sess, code, notice, fail)
}
