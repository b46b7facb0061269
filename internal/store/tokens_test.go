package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTokens(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		id1, err := db.TokenCreate(ctx, "ci", Hash([]byte("secret-1")), testNow)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := db.TokenCreate(ctx, "grafana", Hash([]byte("secret-2")), testNow)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.TokenCreate(ctx, "again", Hash([]byte("secret-1")), testNow); err == nil {
			t.Error("a second token with the same hash was stored")
		}
		later := testNow.Add(time.Hour)
		if err := db.TokenUsed(ctx, id2, later); err != nil {
			t.Fatal(err)
		}
		if err := db.TokenRevoke(ctx, id1, later); err != nil {
			t.Fatal(err)
		}
		if err := db.TokenRevoke(ctx, id1, later.Add(time.Hour)); err != nil {
			t.Errorf("revoking twice: %v", err)
		}
		if err := db.TokenRevoke(ctx, 99, later); !errors.Is(err, ErrNotFound) {
			t.Errorf("revoking an unknown token: %v, want ErrNotFound", err)
		}
		all, err := db.Tokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []Token{
			{ID: id1, Name: "ci", Hash: Hash([]byte("secret-1")), Created: testNow, Revoked: later},
			{ID: id2, Name: "grafana", Hash: Hash([]byte("secret-2")), Created: testNow, LastUsed: later},
		}
		if diff := cmp.Diff(want, all); diff != "" {
			t.Errorf("Tokens (-want +got):\n%s", diff)
		}
		active, err := db.ActiveTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(active) != 1 || active[0].ID != id2 {
			t.Errorf("ActiveTokens = %+v, want only %d", active, id2)
		}
	})
}

func TestReportList(t *testing.T) {
	forEachEngine(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		var ids []int64
		for _, id := range []string{"a", "b", "c"} {
			r := synthetic(id, 3)
			saved, err := db.SaveDMARC(ctx, r.meta, r.Report)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, saved.ID)
		}
		heads := func(f ListFilter) []int64 {
			t.Helper()
			l, err := db.ReportList(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, h := range l {
				out = append(out, h.ID)
			}
			return out
		}
		for _, tc := range []struct {
			name string
			f    ListFilter
			want []int64
		}{
			{"all newest first", ListFilter{}, []int64{ids[2], ids[1], ids[0]}},
			{"limit", ListFilter{Limit: 2}, []int64{ids[2], ids[1]}},
			{"page", ListFilter{Before: ids[1]}, []int64{ids[0]}},
			{"kind", ListFilter{Kind: KindTLS}, nil},
			{"domain", ListFilter{Domain: "EXAMPLE.com", Kind: KindDMARC}, []int64{ids[2], ids[1], ids[0]}},
			{"other domain", ListFilter{Domain: "example.org"}, nil},
			{"since after the period", ListFilter{Since: time.Unix(1700086400, 0)}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.want, heads(tc.f)); diff != "" {
					t.Errorf("(-want +got):\n%s", diff)
				}
			})
		}
		l, _ := db.ReportList(ctx, ListFilter{Limit: 1})
		if h := l[0]; h.Reporter == "" || h.Domain != "example.com" || h.ReportID != "c" || h.End.IsZero() {
			t.Errorf("head %+v lacks fields", h)
		}
	})
}
