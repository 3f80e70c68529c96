package testdb

import (
	"database/sql"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestNew(t *testing.T) {
	var name string
	t.Run("use", func(t *testing.T) {
		dsn := New(t, "CREATE TABLE a (x INT); CREATE TABLE b (y INT);", "INSERT INTO a VALUES (1), (2);")
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.DBName
		if !strings.HasPrefix(name, "vptest_") || !cfg.MultiStatements || !cfg.ParseTime || !cfg.InterpolateParams {
			t.Errorf("DSN %q lacks the database name or options", dsn)
		}
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow("SELECT COUNT(*) FROM a").Scan(&n); err != nil || n != 2 {
			t.Errorf("schemas not applied: %d rows, %v", n, err)
		}
		if err := db.QueryRow("SELECT COUNT(*) FROM b").Scan(&n); err != nil || n != 0 {
			t.Errorf("schemas not applied: %v", err)
		}
		if other := New(t); other == dsn {
			t.Error("two databases with the same name")
		}
	})
	// The subtest's cleanup dropped the database.
	server, err := DSN("")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", server)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil || n != 0 {
		t.Errorf("database %s still exists after the test (%v)", name, err)
	}
}

// fatalTB records Fatal calls and stops the goroutine as testing.T does.
type fatalTB struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatal(args ...any) {
	f.Fatalf("%s", fmt.Sprint(args...))
}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.msg = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}

func TestNewFailsLoudly(t *testing.T) {
	for _, tc := range []struct {
		name, uri, want string
	}{
		{"no server", "root@tcp(127.0.0.1:1)/", "mariadbd"},
		{"bad URI", "not a dsn", "TEST_MYSQL_URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TEST_MYSQL_URI", tc.uri)
			f := &fatalTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				New(f)
			}()
			<-done
			if !strings.Contains(f.msg, tc.want) {
				t.Errorf("New failed with %q, want a message mentioning %q", f.msg, tc.want)
			}
		})
	}
	t.Run("bad schema", func(t *testing.T) {
		f := &fatalTB{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			New(f, "CREATE TABLE")
		}()
		<-done
		if !strings.Contains(f.msg, "schema 0") {
			t.Errorf("New failed with %q, want a message about schema 0", f.msg)
		}
	})
}
