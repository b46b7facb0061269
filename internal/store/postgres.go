package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
)

// ErrURL: --db is not a PostgreSQL URL.
var ErrURL = errors.New("store: not a PostgreSQL URL (postgres://user@host:port/database)")

// OpenPostgres opens the PostgreSQL database at dbURL
// (postgres://user:password@host:port/database?sslmode=…, every
// parameter pgx knows) and brings its schema up to date. The database
// must exist; the store creates its tables in the connection's default
// schema (search_path), so that several stores can share one database in
// separate schemas.
func OpenPostgres(ctx context.Context, dbURL string, opt Options) (*DB, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" && u.Query().Get("host") == "" {
		return nil, fmt.Errorf("%w: %q", ErrURL, redactURL(dbURL))
	}
	where := u.Redacted()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrURL, where, err)
	}
	db := sql.OpenDB(&pgConnector{cfg: cfg})
	// Each importer holds one connection for a report's transaction;
	// summaries and the web admin need a few more.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", where, err)
	}
	return open(ctx, db, where, postgresDialect, opt)
}

// redactURL hides the password of something that may not parse as a URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return "(unparsable URL)"
}

// Engine says which SQL engine holds the store: "sqlite" or "postgres".
func (s *DB) Engine() string { return s.dialect.name }
