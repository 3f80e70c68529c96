package witness

import (
	"context"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/internal/testdb"
)

// testDSN returns the DSN of a database that does not exist yet, dropped
// when the test ends.
func testDSN(t testing.TB) string {
	t.Helper()
	name := "vptest_witness_" + hex.EncodeToString(randomBytes(t, 6))
	dsn, err := testdb.DSN(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server, err := testdb.DSN("")
		if err != nil {
			t.Error(err)
			return
		}
		db, err := sql.Open("mysql", server)
		if err != nil {
			t.Error(err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("couldn't drop %s: %v", name, err)
		}
	})
	return dsn
}

// TestOpen checks that Open creates the database and its tables, and that
// opening again keeps them.
func TestOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testDSN(t)
	l := newTestLog(t, "vitalproof.example/log", 5)
	w := newTestWitness(t, dsn, "", l)
	w.mustCosign(t, l, 0, 5)
	if n := rows(t, dsn, "witness_logs"); n != 1 {
		t.Errorf("witness_logs has %d rows, want 1", n)
	}
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("opening an existing witness database: %v", err)
	}
	db.Close()
	if c := verifyCosigned(t, w.latest(t, l.origin), l.vkey, w.vkey); c.N != 5 {
		t.Errorf("state lost after reopening: size %d", c.N)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, dsn := range map[string]string{
		"no database":      "root@tcp(127.0.0.1:3306)/",
		"quote in name":    "root@tcp(127.0.0.1:3306)/a`b",
		"not a DSN":        "mysql://root@localhost/witness",
		"unreachable host": "root:secretpw@tcp(127.0.0.1:1)/witness?timeout=1s",
	} {
		_, err := Open(ctx, dsn)
		if err == nil {
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: error reveals the password: %v", name, err)
		}
	}
}
