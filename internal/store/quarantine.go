package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// QuarantineItem is input that could not be parsed, kept whole with the
// reason, so that it can be looked at and re-processed by a newer mxray.
type QuarantineItem struct {
	ID        int64     `json:"id"`
	At        time.Time `json:"at"`
	Origin    string    `json:"origin"`               // path, mbox message, archive member
	MessageID string    `json:"message_id,omitempty"` // of the carrying message
	Kind      string    `json:"kind,omitempty"`       // what ingest took it for
	Reason    string    `json:"reason"`
	Size      int64     `json:"size"`
	Raw       []byte    `json:"-"`
}

// quarantineHash identifies a quarantined blob by its content; empty blobs
// (an empty file) by where they came from, so that each is listed.
func quarantineHash(q QuarantineItem) string {
	if len(q.Raw) == 0 {
		return Hash([]byte("empty:" + q.Origin))
	}
	return Hash(q.Raw)
}

// Quarantine keeps q (its ID and Size are set by the store). The same
// content quarantined before is not kept twice: already is true and id is
// the item held.
func (s *DB) Quarantine(ctx context.Context, q QuarantineItem) (id int64, already bool, err error) {
	return quarantine(ctx, s.db, q)
}

// Quarantine keeps q in the group's transaction, committed with the
// group: on SQLite another connection could not write while the group
// holds the write lock.
func (g *Group) Quarantine(ctx context.Context, q QuarantineItem) (id int64, already bool, err error) {
	if err := g.start(ctx); err != nil {
		return 0, false, err
	}
	id, already, err = quarantine(ctx, g.tx, q)
	if eerr := g.end(ctx, err == nil); eerr != nil {
		return 0, false, eerr
	}
	return id, already, err
}

// rowQuerier is sqlDB or *sqlTx.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

func quarantine(ctx context.Context, db rowQuerier, q QuarantineItem) (id int64, already bool, err error) {
	h := quarantineHash(q)
	raw := q.Raw
	if raw == nil {
		raw = []byte{}
	}
	err = db.QueryRowContext(ctx, `INSERT INTO quarantine (received_at, origin, message_id, kind, reason, size, content_hash, raw)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
		unix(q.At), q.Origin, q.MessageID, q.Kind, q.Reason, int64(len(q.Raw)), h, raw).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		if err := db.QueryRowContext(ctx, `SELECT id FROM quarantine WHERE content_hash = ?`, h).Scan(&id); err != nil {
			return 0, false, fmt.Errorf("store: %w", err)
		}
		return id, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: quarantine: %w", err)
	}
	return id, false, nil
}

// QuarantineList lists the quarantined items, oldest first, without their
// bytes.
func (s *DB) QuarantineList(ctx context.Context) ([]QuarantineItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, received_at, origin, message_id, kind, reason, size FROM quarantine ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	defer rows.Close()
	out := []QuarantineItem{}
	for rows.Next() {
		var q QuarantineItem
		var at int64
		if err := rows.Scan(&q.ID, &at, &q.Origin, &q.MessageID, &q.Kind, &q.Reason, &q.Size); err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		q.At = time.Unix(at, 0).UTC()
		out = append(out, q)
	}
	return out, rows.Err()
}

// QuarantineGet returns one quarantined item with its bytes.
func (s *DB) QuarantineGet(ctx context.Context, id int64) (QuarantineItem, error) {
	q := QuarantineItem{ID: id}
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT received_at, origin, message_id, kind, reason, size, raw FROM quarantine WHERE id = ?`, id).
		Scan(&at, &q.Origin, &q.MessageID, &q.Kind, &q.Reason, &q.Size, &q.Raw)
	if errors.Is(err, sql.ErrNoRows) {
		return q, fmt.Errorf("%w: quarantine item %d", ErrNotFound, id)
	}
	if err != nil {
		return q, fmt.Errorf("store: %w", err)
	}
	q.At = time.Unix(at, 0).UTC()
	return q, nil
}

// QuarantineRemove deletes a quarantined item, once it has been imported.
func (s *DB) QuarantineRemove(ctx context.Context, id int64) error {
	res, err := s.db.ExecContext(ctx, `DELETE FROM quarantine WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: quarantine item %d", ErrNotFound, id)
	}
	return nil
}

// QuarantineReason records a new reason for an item that still fails.
func (s *DB) QuarantineReason(ctx context.Context, id int64, reason string) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE quarantine SET reason = ? WHERE id = ?`, reason, id); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
