package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgConnector is a database/sql connector over pgx's own connection, so
// that the same database/sql code serves SQLite and PostgreSQL. It is
// small on purpose: pgx's stdlib adapter would bring its connection pool
// (and the puddle module) along, and database/sql pools already.
//
// Statements are not prepared by database/sql: pgx prepares each query
// text once per connection and caches it (QueryExecModeCacheStatement),
// so a driver statement is only its text.
type pgConnector struct{ cfg *pgx.ConnConfig }

func (c *pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, c.cfg.Copy())
	if err != nil {
		return nil, err
	}
	return &pgDriverConn{conn: conn}, nil
}

func (c *pgConnector) Driver() driver.Driver { return pgDriver{} }

// pgDriver exists because driver.Connector must name one; connections
// come from pgConnector.
type pgDriver struct{}

func (pgDriver) Open(name string) (driver.Conn, error) {
	cfg, err := pgx.ParseConfig(name)
	if err != nil {
		return nil, err
	}
	return (&pgConnector{cfg: cfg}).Connect(context.Background())
}

type pgDriverConn struct {
	conn *pgx.Conn
	tx   pgx.Tx
}

var (
	_ driver.ConnBeginTx        = (*pgDriverConn)(nil)
	_ driver.ConnPrepareContext = (*pgDriverConn)(nil)
	_ driver.ExecerContext      = (*pgDriverConn)(nil)
	_ driver.QueryerContext     = (*pgDriverConn)(nil)
	_ driver.Pinger             = (*pgDriverConn)(nil)
	_ driver.Validator          = (*pgDriverConn)(nil)
	_ driver.SessionResetter    = (*pgDriverConn)(nil)
)

func (c *pgDriverConn) Prepare(q string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), q)
}

func (c *pgDriverConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	return &pgStmt{c: c, q: q}, nil
}

func (c *pgDriverConn) Close() error { return c.conn.Close(context.Background()) }

func (c *pgDriverConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *pgDriverConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if c.conn.IsClosed() {
		return nil, driver.ErrBadConn
	}
	var o pgx.TxOptions
	if opts.ReadOnly {
		o.AccessMode = pgx.ReadOnly
	}
	switch opts.Isolation {
	case driver.IsolationLevel(0):
	case 2: // sql.LevelReadCommitted
		o.IsoLevel = pgx.ReadCommitted
	case 4: // sql.LevelRepeatableRead
		o.IsoLevel = pgx.RepeatableRead
	case 6: // sql.LevelSerializable
		o.IsoLevel = pgx.Serializable
	default:
		return nil, fmt.Errorf("store: isolation level %d is not supported on PostgreSQL", opts.Isolation)
	}
	tx, err := c.conn.BeginTx(ctx, o)
	if err != nil {
		return nil, err
	}
	c.tx = tx
	return pgTx{c}, nil
}

type pgTx struct{ c *pgDriverConn }

func (t pgTx) Commit() error {
	tx := t.c.tx
	t.c.tx = nil
	if tx == nil {
		return errors.New("store: commit without a transaction")
	}
	return tx.Commit(context.Background())
}

func (t pgTx) Rollback() error {
	tx := t.c.tx
	t.c.tx = nil
	if tx == nil {
		return errors.New("store: rollback without a transaction")
	}
	return tx.Rollback(context.Background())
}

func (c *pgDriverConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	tag, err := c.conn.Exec(ctx, q, values(args)...)
	if err != nil {
		return nil, err
	}
	return pgResult(tag), nil
}

func (c *pgDriverConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.conn.Query(ctx, q, values(args)...)
	if err != nil {
		return nil, err
	}
	return &pgRows{rows: rows}, nil
}

func (c *pgDriverConn) Ping(ctx context.Context) error {
	if c.conn.IsClosed() {
		return driver.ErrBadConn
	}
	return c.conn.Ping(ctx)
}

func (c *pgDriverConn) IsValid() bool { return !c.conn.IsClosed() }

func (c *pgDriverConn) ResetSession(ctx context.Context) error {
	if c.conn.IsClosed() {
		return driver.ErrBadConn
	}
	return nil
}

func values(args []driver.NamedValue) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a.Value
	}
	return out
}

type pgResult pgconn.CommandTag

func (r pgResult) LastInsertId() (int64, error) {
	return 0, errors.New("store: no LastInsertId on PostgreSQL; use RETURNING")
}

func (r pgResult) RowsAffected() (int64, error) { return pgconn.CommandTag(r).RowsAffected(), nil }

type pgStmt struct {
	c *pgDriverConn
	q string
}

func (s *pgStmt) Close() error  { return nil }
func (s *pgStmt) NumInput() int { return -1 }

func (s *pgStmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *pgStmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *pgStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	return s.c.ExecContext(ctx, s.q, args)
}

func (s *pgStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	return s.c.QueryContext(ctx, s.q, args)
}

func named(args []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(args))
	for i, a := range args {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	return out
}

type pgRows struct {
	rows pgx.Rows
	cols []string
}

func (r *pgRows) Columns() []string {
	if r.cols == nil {
		fds := r.rows.FieldDescriptions()
		r.cols = make([]string, len(fds))
		for i, fd := range fds {
			r.cols[i] = fd.Name
		}
	}
	return r.cols
}

func (r *pgRows) Close() error {
	r.rows.Close()
	return r.rows.Err()
}

// Next converts pgx's values to the few types database/sql knows:
// integers widen to int64, NUMERIC (what SUM of a BIGINT column gives)
// becomes its decimal text, which database/sql scans into an int64.
func (r *pgRows) Next(dest []driver.Value) error {
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return io.EOF
	}
	vals, err := r.rows.Values()
	if err != nil {
		return err
	}
	for i, v := range vals {
		switch v := v.(type) {
		case nil, int64, float64, bool, string, []byte:
			dest[i] = v
		case int16:
			dest[i] = int64(v)
		case int32:
			dest[i] = int64(v)
		case float32:
			dest[i] = float64(v)
		case driver.Valuer:
			x, err := v.Value()
			if err != nil {
				return err
			}
			dest[i] = x
		default:
			if dv, ok := v.(driver.Value); ok && driver.IsValue(dv) {
				dest[i] = dv
				continue
			}
			dest[i] = fmt.Sprint(v)
		}
	}
	return nil
}
