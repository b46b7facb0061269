package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Admin is an account of the web admin. The store keeps the password's
// hash only, in whatever self-describing form the caller gives
// (internal/web writes pbkdf2-sha256$…).
type Admin struct {
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	Created      time.Time `json:"created"`
	LastLogin    time.Time `json:"last_login,omitzero"` // zero when never logged in
}

// AdminSession is a logged-in browser session, known by the SHA-256 of
// its id: the id itself lives only in the browser's cookie.
type AdminSession struct {
	Hash    string // SHA-256 of the session id, hex
	AdminID int64
	Admin   string // the account's name (read only)
	CSRF    string // the token every form of the session must carry
	Created time.Time
	Expires time.Time
}

// AdminCount returns the number of admin accounts.
func (s *DB) AdminCount(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM admins`).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: admins: %w", err)
	}
	return n, nil
}

// AdminCreate creates the account name with a password hash. When an
// account of that name exists already, nothing changes and created is
// false: two processes creating the first admin at once make one.
func (s *DB) AdminCreate(ctx context.Context, name, passwordHash string, at time.Time) (id int64, created bool, err error) {
	err = s.db.QueryRowContext(ctx, `INSERT INTO admins (name, password_hash, created_at, last_login)
		VALUES (?, ?, ?, 0) ON CONFLICT DO NOTHING RETURNING id`, name, passwordHash, unix(at)).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("store: admin: %w", err)
	}
	return id, true, nil
}

// AdminByName returns the account name, or ErrNotFound.
func (s *DB) AdminByName(ctx context.Context, name string) (Admin, error) {
	var a Admin
	var c, l int64
	err := s.db.QueryRowContext(ctx, `SELECT id, name, password_hash, created_at, last_login FROM admins WHERE name = ?`, name).
		Scan(&a.ID, &a.Name, &a.PasswordHash, &c, &l)
	if errors.Is(err, sql.ErrNoRows) {
		return Admin{}, fmt.Errorf("%w: admin %q", ErrNotFound, name)
	}
	if err != nil {
		return Admin{}, fmt.Errorf("store: admin: %w", err)
	}
	a.Created, a.LastLogin = fromUnix(c), fromUnix(l)
	return a, nil
}

// AdminSetPassword replaces the password hash of account name and ends
// all its sessions, in one transaction. An unknown name is ErrNotFound.
func (s *DB) AdminSetPassword(ctx context.Context, name, passwordHash string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	defer tx.Rollback()
	var id int64
	err = tx.QueryRowContext(ctx, `UPDATE admins SET password_hash = ? WHERE name = ? RETURNING id`, passwordHash, name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%w: admin %q", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM admin_sessions WHERE admin_id = ?`, id); err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	return nil
}

// AdminLoggedIn records a successful login of account id.
func (s *DB) AdminLoggedIn(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE admins SET last_login = ? WHERE id = ?`, unix(at), id); err != nil {
		return fmt.Errorf("store: admin: %w", err)
	}
	return nil
}

// AdminSessionCreate stores a new session.
func (s *DB) AdminSessionCreate(ctx context.Context, ss AdminSession) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO admin_sessions (hash, admin_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		ss.Hash, ss.AdminID, ss.CSRF, unix(ss.Created), unix(ss.Expires))
	if err != nil {
		return fmt.Errorf("store: session: %w", err)
	}
	return nil
}

// AdminSession returns the session with this hash if it has not expired
// at now; otherwise ErrNotFound.
func (s *DB) AdminSession(ctx context.Context, hash string, now time.Time) (AdminSession, error) {
	var ss AdminSession
	var c, e int64
	err := s.db.QueryRowContext(ctx, `SELECT s.hash, s.admin_id, a.name, s.csrf, s.created_at, s.expires_at
		FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.hash = ? AND s.expires_at > ?`, hash, now.Unix()).
		Scan(&ss.Hash, &ss.AdminID, &ss.Admin, &ss.CSRF, &c, &e)
	if errors.Is(err, sql.ErrNoRows) {
		return AdminSession{}, fmt.Errorf("%w: session", ErrNotFound)
	}
	if err != nil {
		return AdminSession{}, fmt.Errorf("store: session: %w", err)
	}
	ss.Created, ss.Expires = fromUnix(c), fromUnix(e)
	return ss, nil
}

// AdminSessionDelete ends the session with this hash; an unknown hash is
// not an error (logging out twice is fine).
func (s *DB) AdminSessionDelete(ctx context.Context, hash string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE hash = ?`, hash); err != nil {
		return fmt.Errorf("store: session: %w", err)
	}
	return nil
}

// AdminSessionsExpire deletes the sessions expired at now and returns how
// many.
func (s *DB) AdminSessionsExpire(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM admin_sessions WHERE expires_at <= ?`, now.Unix())
	if err != nil {
		return 0, fmt.Errorf("store: session: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
