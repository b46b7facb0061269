package store

import (
	"context"
	"fmt"
	"time"
)

// Token is an API token of `mxray serve`, without its secret: the store
// keeps only the token's SHA-256.
type Token struct {
	ID       int64     `json:"id"`
	Name     string    `json:"name"`
	Hash     string    `json:"-"` // SHA-256 of the token, hex
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used,omitzero"` // zero when never used
	Revoked  time.Time `json:"revoked,omitzero"`   // zero while valid
}

// Active says whether the token may still be used.
func (t Token) Active() bool { return t.Revoked.IsZero() }

// TokenCreate stores a new token by its hash and returns its id.
func (s *DB) TokenCreate(ctx context.Context, name, hash string, at time.Time) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO api_tokens (name, hash, created_at, last_used, revoked_at)
		VALUES (?, ?, ?, 0, 0) RETURNING id`, name, hash, unix(at)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("store: token: %w", err)
	}
	return id, nil
}

// Tokens lists every token, revoked ones included, oldest first.
func (s *DB) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, hash, created_at, last_used, revoked_at FROM api_tokens ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var c, u, r int64
		if err := rows.Scan(&t.ID, &t.Name, &t.Hash, &c, &u, &r); err != nil {
			return nil, fmt.Errorf("store: tokens: %w", err)
		}
		t.Created, t.LastUsed, t.Revoked = fromUnix(c), fromUnix(u), fromUnix(r)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	return out, nil
}

// ActiveTokens lists the tokens that are not revoked.
func (s *DB) ActiveTokens(ctx context.Context) ([]Token, error) {
	all, err := s.Tokens(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, t := range all {
		if t.Active() {
			out = append(out, t)
		}
	}
	return out, nil
}

// TokenUsed records that token id was used at at.
func (s *DB) TokenUsed(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ?`, unix(at), id); err != nil {
		return fmt.Errorf("store: token: %w", err)
	}
	return nil
}

// TokenRevoke revokes token id; revoking it again changes nothing. An
// unknown id is ErrNotFound.
func (s *DB) TokenRevoke(ctx context.Context, id int64, at time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, unix(at), id)
	if err != nil {
		return fmt.Errorf("store: token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var one int
		if err := s.db.QueryRowContext(ctx, `SELECT 1 FROM api_tokens WHERE id = ?`, id).Scan(&one); err != nil {
			return fmt.Errorf("%w: token %d", ErrNotFound, id)
		}
	}
	return nil
}
