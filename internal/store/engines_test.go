package store

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mxray/mxray/internal/lab"
)

// The PostgreSQL server of this test binary: started on first use, once,
// and stopped when the tests end. Every test gets a database of its own.
var pg struct {
	once sync.Once
	srv  *lab.Postgres
	err  error
	n    atomic.Int64
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pg.srv != nil {
		pg.srv.Stop()
	}
	os.Exit(code)
}

// postgresURL creates an empty database on the lab server.
func postgresURL(t testing.TB) string {
	t.Helper()
	ctx := context.Background()
	pg.once.Do(func() { pg.srv, pg.err = lab.StartPostgres(ctx) })
	if pg.err != nil {
		t.Fatalf("PostgreSQL (the test command installs Debian's postgresql): %v", pg.err)
	}
	url, err := pg.srv.CreateDatabase(ctx, fmt.Sprintf("t%d", pg.n.Add(1)))
	if err != nil {
		t.Fatal(err)
	}
	return url
}

func openPostgresTest(t testing.TB) *DB {
	t.Helper()
	db, err := OpenPostgres(context.Background(), postgresURL(t), Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// engines open an empty store on each SQL engine.
var engines = []struct {
	name string
	open func(testing.TB) *DB
}{
	{"sqlite", openTest},
	{"postgres", openPostgresTest},
}

// forEachEngine runs fn on an empty store of each engine, as subtests.
func forEachEngine(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Helper()
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) { fn(t, e.open(t)) })
	}
}

// OpenTestStores opens an empty store on each engine, by engine name, for
// the tests of package store_test.
func OpenTestStores(t testing.TB) map[string]*DB {
	out := map[string]*DB{}
	for _, e := range engines {
		out[e.name] = e.open(t)
	}
	return out
}
