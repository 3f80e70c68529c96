package trillianlog

import (
	"context"
	"database/sql"
	_ "embed"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// Schema is Trillian v1.8.0's MySQL/MariaDB schema, copied unchanged from
// github.com/google/trillian/storage/mysql/schema/storage.sql.
//
//go:embed schema/storage.sql
var Schema string

// errDupKeyName is MySQL's ER_DUP_KEYNAME: the index already exists.
const errDupKeyName = 1061

// ApplySchema applies [Schema] to db, statement by statement, so that it is
// idempotent: tables are created IF NOT EXISTS and an index that already
// exists is left alone (CREATE INDEX IF NOT EXISTS is MariaDB-only).
func ApplySchema(ctx context.Context, db *sql.DB) error {
	for _, stmt := range statements(Schema) {
		_, err := db.ExecContext(ctx, stmt)
		var me *mysql.MySQLError
		if errors.As(err, &me) && me.Number == errDupKeyName {
			continue
		}
		if err != nil {
			return fmt.Errorf("couldn't apply Trillian schema: %w", err)
		}
	}
	return nil
}

// statements splits an SQL script into statements, dropping "--" comment
// lines. It assumes, as holds for Schema, that no string literal contains a
// semicolon.
func statements(script string) []string {
	var b strings.Builder
	for line := range strings.Lines(script) {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		b.WriteString(line)
	}
	var out []string
	for s := range strings.SplitSeq(b.String(), ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
