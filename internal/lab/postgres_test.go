package lab

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestPostgres(t *testing.T) {
	ctx := context.Background()
	p, err := StartPostgres(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	url, err := p.CreateDatabase(ctx, "mxray")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://postgres@" + p.Addr + "/mxray?sslmode=disable"; url != want {
		t.Errorf("URL %q, want %q", url, want)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	var db, user, listen, fsync string
	if err := c.QueryRow(ctx, `SELECT current_database(), current_user, current_setting('listen_addresses'), current_setting('fsync')`).
		Scan(&db, &user, &listen, &fsync); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
	if db != "mxray" || user != "postgres" || listen != "127.0.0.1" || fsync != "off" {
		t.Errorf("session: database %q user %q listen_addresses %q fsync %q", db, user, listen, fsync)
	}
	if _, err := p.CreateDatabase(ctx, "mxray"); err == nil {
		t.Error("creating the database twice succeeded")
	}
	if _, err := p.CreateDatabase(ctx, "x; DROP"); !errors.Is(err, ErrPostgresName) {
		t.Errorf("bad name: %v, want ErrPostgresName", err)
	}

	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p.Dir); !os.IsNotExist(err) {
		t.Errorf("directory %s left behind: %v", p.Dir, err)
	}
	if err := waitClosed(ctx, p.Addr); err != nil {
		t.Error(err)
	}
	if c, err := pgx.Connect(ctx, url); err == nil {
		c.Close(ctx)
		t.Error("server still accepts sessions after Stop")
	}
}
