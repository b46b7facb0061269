package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// ListFilter selects the reports ReportList returns.
type ListFilter struct {
	Kind   Kind      // "" for every kind
	Domain string    // "" for every domain
	Since  time.Time // reports whose period ends at or after Since; zero for all
	Before int64     // only ids below Before (paging, newest first); 0 for no bound
	Limit  int       // at most this many; 100 when 0, at most 1000
}

// ReportHead is a report's common fields, as a list shows them.
type ReportHead struct {
	ID         int64     `json:"id"`
	Kind       Kind      `json:"kind"`
	Reporter   string    `json:"reporter"`
	ReportID   string    `json:"report_id,omitempty"`
	Domain     string    `json:"domain"`
	Begin      time.Time `json:"begin"`
	End        time.Time `json:"end"`
	Source     string    `json:"source"`
	ImportedAt time.Time `json:"imported_at"`
}

// ReportList lists the reports f selects, newest (highest id) first.
func (s *DB) ReportList(ctx context.Context, f ListFilter) ([]ReportHead, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	f.Limit = min(f.Limit, 1000)
	before := f.Before
	if before <= 0 {
		before = 1 << 62
	}
	dom := strings.ToLower(f.Domain)
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, reporter, report_id, domain, date_begin, date_end, source, imported_at
		FROM reports WHERE (? = '' OR kind = ?) AND (? = '' OR domain = ?) AND date_end >= ? AND id < ?
		ORDER BY id DESC LIMIT ?`, string(f.Kind), string(f.Kind), dom, dom, unix(f.Since), before, f.Limit)
	if err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	defer rows.Close()
	out := []ReportHead{}
	for rows.Next() {
		var h ReportHead
		var rid sql.NullString
		var b, e, at int64
		if err := rows.Scan(&h.ID, &h.Kind, &h.Reporter, &rid, &h.Domain, &b, &e, &h.Source, &at); err != nil {
			return nil, fmt.Errorf("store: list: %w", err)
		}
		h.ReportID, h.Begin, h.End, h.ImportedAt = rid.String, fromUnix(b), fromUnix(e), fromUnix(at)
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list: %w", err)
	}
	return out, nil
}
