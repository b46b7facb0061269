// Package store keeps the reports mxray reads — DMARC aggregate reports
// (RFC 9990, RFC 7489 Appendix C), SMTP TLS reports (RFC 8460), failure
// reports (RFC 5965, RFC 6591, RFC 9991) and bounces (RFC 3464) — in an SQL
// database, with a quarantine for what could not be parsed, and answers the
// summaries that `mxray reports` shows.
//
// Two engines run the same code: an embedded SQLite file
// (modernc.org/sqlite, pure Go) in the data directory by default (Open),
// and PostgreSQL (OpenPostgres, `--db postgres://…`) through pgx. The
// schema is created by versioned migrations: the numbered SQL files under
// migrations/ (NNNN_name.sql), embedded in the binary and recorded in
// schema_migrations. Every migration not yet recorded is applied, in
// order, each in its own transaction; on PostgreSQL under an advisory
// lock, so that several mxray processes opening one database apply it
// once. Numbers are allotted in ranges (reports 0001–0009, IMAP fetch
// 0010–0019, server, tokens and alerts 0020–0039) and may arrive out of
// order.
//
// The portable subset, which migrations and queries keep to:
//   - Types: BIGINT and INTEGER, TEXT, and the tokens {{ID}} (a 64-bit
//     key the engine assigns; read it back with RETURNING id, never
//     LastInsertId), {{BLOB}} (bytes), {{REF_PK}} (a BIGINT primary key
//     that references another table) and {{WITHOUT_ROWID}} after a
//     table's closing parenthesis (SQLite's clustered tables). Times are
//     Unix seconds in BIGINT; lists are JSON arrays in TEXT; no booleans
//     (0/1 INTEGER), no dates, no JSON operators.
//   - Statements: CREATE TABLE/INDEX, named CONSTRAINT … UNIQUE, REFERENCES
//     … ON DELETE CASCADE, INSERT … ON CONFLICT DO NOTHING RETURNING,
//     UPDATE, DELETE, standard aggregates, CASE, LIMIT. Not: AUTOINCREMENT,
//     INSERT OR …, REPLACE, PRAGMA, IFNULL, GLOB, SQLite's date functions,
//     ALTER TABLE beyond ADD COLUMN.
//   - Queries write ? placeholders (bound to $1, $2, … on PostgreSQL,
//     outside quotes and -- comments; so no PostgreSQL ? operators and no
//     /* */ comments) and go through the DB's handle, which does that.
//     Text in ORDER BY is followed by {{BINARY}}, so that both engines
//     sort it byte by byte whatever the PostgreSQL database's collation.
//   - Text arguments have NUL and invalid UTF-8 replaced by U+FFFD on
//     both engines (PostgreSQL's TEXT refuses them); bytes go in {{BLOB}}.
//   - SUM of a BIGINT is NUMERIC on PostgreSQL; scan it into an int64.
//
// Every test of the package runs on both engines (forEachEngine), the
// PostgreSQL one on a real server the test starts (internal/lab), so a
// migration that does not run on PostgreSQL fails the tests.
//
// A report is stored whole or not at all. The DB's Save methods use one
// transaction per report. A Group (DB.Group, what `mxray reports import`
// uses) commits several reports in one transaction with a SAVEPOINT per
// report — RELEASE when the report is complete, ROLLBACK TO when it fails
// (a parse error in its middle, a value the store refuses) — so that each
// report is still whole or absent, while the ~150 µs of a transaction's
// begin and commit (and its sync of the write-ahead log) is paid once per
// group instead of once per report: for reports of 50 records that was 3
// µs of 9 per record. SAVEPOINT, RELEASE SAVEPOINT and ROLLBACK TO
// SAVEPOINT are the same on SQLite and PostgreSQL. A crash, or a database
// error, before the group commits loses the group's reports and nothing
// else; importing the same input again stores them, and skips as
// duplicates those that were committed. A report already held — same
// kind, reporter and report id, or the same content, committed or earlier
// in the same group — is a duplicate: nothing is written and
// Saved.Duplicate is set.
//
// Not supported yet: deleting or expiring reports, schema downgrades,
// PostgreSQL's COPY for bulk records (records go 64 to an INSERT on both
// engines), and other engines (MySQL).
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Sentinel errors.
var (
	// ErrInvalid: the report holds a value the store cannot keep (a count
	// beyond 2^63-1, for one). The report is not stored; the caller
	// quarantines it.
	ErrInvalid = errors.New("store: value cannot be stored")
	// ErrNotFound: no report or quarantine item with that id.
	ErrNotFound = errors.New("store: not found")
	// ErrSchema: the database was written by a newer mxray.
	ErrSchema = errors.New("store: database schema is newer than this mxray")
)

// FileName is the database file in the data directory.
const FileName = "mxray.db"

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a report store.
type DB struct {
	db      sqlDB
	path    string // the SQLite file, or the PostgreSQL URL without its password
	dialect *dialect
	now     func() time.Time

	insReport, findDup *sqlStmt
	insDMARC           *sqlStmt
	insRecords         []*sqlStmt // one per recordBatches size
	seen               *sqlStmt
}

// recordBatches are the numbers of records written by one INSERT, largest
// first: a statement per row costs more in the driver than SQLite spends
// storing the row, so records go 64 at a time and the rest in the fewest
// statements.
var recordBatches = []int{64, 16, 4, 1}

const recordBatch = 64 // the largest

// Options tune Open. The zero value is fine.
type Options struct {
	// Now stamps the migrations applied (diag.Env.Clock in mxray);
	// time.Now when nil.
	Now func() time.Time
}

// Open opens (creating it if needed) the SQLite database in the data
// directory dir, creating dir with mode 0700 if it is missing, and brings
// its schema up to date.
func Open(ctx context.Context, dir string, opt Options) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: data directory: %w", err)
	}
	return OpenFile(ctx, filepath.Join(dir, FileName), opt)
}

// OpenFile opens the SQLite database file path.
func OpenFile(ctx context.Context, path string, opt Options) (*DB, error) {
	q := url.Values{}
	// WAL lets summaries read while an import writes; synchronous=NORMAL
	// is durable across application crashes and only loses the last
	// transactions on power loss, which a re-import repairs (duplicates
	// are skipped). The page cache is per connection, outside the Go
	// heap: 2 MB each. 16 MB made the peak RSS of an import grow from
	// 54–64 MB to 80 MB once a connection held a transaction of several
	// reports (2 MB: 55 MB, and 4 MB less for one 26,000-record report),
	// for no speed: imports take the same time, and a summary over
	// 492,000 records the same 2.6 s (its scans go through the OS's
	// cache).
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "cache_size(-2000)"} {
		q.Add("_pragma", p)
	}
	// Writers take the lock when they begin, so that two importers wait
	// for each other instead of failing with SQLITE_BUSY mid-transaction.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	return open(ctx, db, path, sqliteDialect, opt)
}

func open(ctx context.Context, db *sql.DB, where string, d *dialect, opt Options) (*DB, error) {
	s := &DB{db: sqlDB{DB: db, d: d}, path: where, dialect: d, now: opt.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Path returns the database file's path, or the PostgreSQL URL without
// its password.
func (s *DB) Path() string { return s.path }

// Close closes the database.
func (s *DB) Close() error { return s.db.Close() }

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations returns the embedded migrations in order, with the dialect's
// tokens replaced.
func (s *DB) Migrations() ([]Migration, error) { return loadMigrations(s.dialect) }

func loadMigrations(d *dialect) ([]Migration, error) {
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, f := range files {
		base := filepath.Base(f)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %s is not named NNNN_name.sql", base)
		}
		b, err := migrations.ReadFile(f)
		if err != nil {
			return nil, err
		}
		text := string(b)
		for k, v := range d.tokens {
			text = strings.ReplaceAll(text, k, v)
		}
		out = append(out, Migration{Version: v, Name: base, SQL: text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i := 1; i < len(out); i++ {
		if out[i].Version == out[i-1].Version {
			return nil, fmt.Errorf("store: two migrations numbered %d", out[i].Version)
		}
	}
	return out, nil
}

// migrateLock is the PostgreSQL advisory lock key held while migrating,
// so that several mxray processes opening one database apply each
// migration once.
const migrateLock = 0x6d78726179 // "mxray"

// migrate applies the migrations not yet recorded in schema_migrations,
// in order, each in its own transaction. It goes by the set of versions
// recorded rather than the highest one: migrations written in parallel
// (numbered in separate ranges) may arrive out of order.
func (s *DB) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: %s: %w", s.path, err)
	}
	defer conn.Close()
	if s.dialect == postgresDialect {
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
			return fmt.Errorf("store: %s: %w", s.path, err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at BIGINT  NOT NULL)`); err != nil {
		return fmt.Errorf("store: %s: %w", s.path, err)
	}
	have := map[int]bool{}
	rows, err := conn.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	maxHave := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("store: %w", err)
		}
		have[v] = true
		maxHave = max(maxHave, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	all, err := s.Migrations()
	if err != nil {
		return err
	}
	if n := len(all); n > 0 && maxHave > all[n-1].Version {
		return fmt.Errorf("%w: %s is at version %d, this mxray knows up to %d", ErrSchema, s.path, maxHave, all[n-1].Version)
	}
	record := s.dialect.bind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
	for _, m := range all {
		if have[m.Version] {
			continue
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		// The migration's text goes to the engine as it is: several
		// statements, no placeholders.
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, record, m.Version, m.Name, s.now().Unix()); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %s: %w", m.Name, err)
		}
	}
	return nil
}

// Version returns the schema version of the database.
func (s *DB) Version(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

func (s *DB) prepare(ctx context.Context) error {
	prep := func(dst **sqlStmt, q string) error {
		st, err := s.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("store: preparing %q: %w", strings.Fields(q)[0:3], err)
		}
		*dst = st
		return nil
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?,", recordCols), ",") + ")"
	s.insRecords = make([]*sqlStmt, len(recordBatches))
	for i, n := range recordBatches {
		rows := strings.TrimSuffix(strings.Repeat(row+",", n), ",")
		if err := prep(&s.insRecords[i], `INSERT INTO dmarc_records (`+recordColumns+`) VALUES `+rows); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		dst **sqlStmt
		q   string
	}{
		{&s.insReport, `INSERT INTO reports (kind, reporter, report_id, domain, date_begin, date_end, source, message_id, content_hash, imported_at, warnings)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id`},
		{&s.findDup, `SELECT id FROM reports WHERE content_hash = ? OR (kind = ? AND reporter = ? AND report_id = ?) ORDER BY id LIMIT 1`},
		{&s.insDMARC, `INSERT INTO dmarc_reports (report, version, org_name, email, extra_contact, generator, errors,
			adkim, aspf, p, sp, np, pct, fo, testing, discovery, psd, records, messages)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&s.seen, `SELECT id FROM reports WHERE content_hash = ?`},
	} {
		if err := prep(p.dst, p.q); err != nil {
			return err
		}
	}
	return nil
}

const (
	recordColumns = `report, seq, source_ip, msg_count, disposition, dkim, spf, reasons, header_from, envelope_from, envelope_to, dkim_auth, spf_auth`
	recordCols    = 13
)

// Hash returns the content hash the store uses for a payload: SHA-256,
// lower-case hex.
func Hash(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Seen returns the id of the report stored with this content hash, or 0,
// so that an importer can skip parsing what it already holds.
func (s *DB) Seen(ctx context.Context, hash string) (int64, error) {
	var id int64
	err := s.seen.QueryRowContext(ctx, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return id, nil
}
