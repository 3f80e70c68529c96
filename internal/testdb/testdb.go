// Package testdb gives each test a throwaway MariaDB/MySQL database, as
// google/trillian's storage/testdb does.
//
// The server comes from the TEST_MYSQL_URI environment variable, a
// go-sql-driver DSN without a database name (default
// "root@tcp(127.0.0.1:3306)/"). An environment variable rather than a flag
// so that every package's tests see the same setting without each declaring
// it. Unlike Trillian's helper it never skips: a test that needs a database
// fails, saying how to start one, because the project's test command starts
// MariaDB itself.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// DefaultURI is the server used when TEST_MYSQL_URI is unset.
const DefaultURI = "root@tcp(127.0.0.1:3306)/"

// URI returns the server DSN tests use.
func URI() string {
	if u := os.Getenv("TEST_MYSQL_URI"); u != "" {
		return u
	}
	return DefaultURI
}

// DSN returns a DSN for database name on the test server with the options
// VitalProof uses everywhere.
func DSN(name string) (string, error) {
	cfg, err := mysql.ParseDSN(URI())
	if err != nil {
		return "", fmt.Errorf("couldn't parse TEST_MYSQL_URI: %w", err)
	}
	cfg.DBName = name
	cfg.MultiStatements = true
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	return cfg.FormatDSN(), nil
}

// New creates a database with a random name, applies schemas to it in
// order, drops it when the test ends and returns its DSN.
func New(t testing.TB, schemas ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server, err := DSN("")
	if err != nil {
		t.Fatal(err)
	}
	root, err := sql.Open("mysql", server)
	if err != nil {
		t.Fatalf("couldn't open test database server: %v", err)
	}
	defer root.Close()
	if err := root.PingContext(ctx); err != nil {
		t.Fatalf("no MariaDB/MySQL at TEST_MYSQL_URI=%q: %v\n"+
			"Start one (deploy/mariadb.sh does it, or `start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd`) "+
			"or point TEST_MYSQL_URI at a server.", URI(), err)
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	name := "vptest_" + strings.ToLower(hex.EncodeToString(b[:]))
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("couldn't create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db, err := sql.Open("mysql", server)
		if err != nil {
			t.Errorf("couldn't drop test database %s: %v", name, err)
			return
		}
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("couldn't drop test database %s: %v", name, err)
		}
	})
	dsn, err := DSN(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(schemas) > 0 {
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for i, s := range schemas {
			if _, err := db.ExecContext(ctx, s); err != nil {
				t.Fatalf("couldn't apply schema %d to test database: %v", i, err)
			}
		}
	}
	return dsn
}
