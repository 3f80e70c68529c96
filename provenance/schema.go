package provenance

import (
	"context"
	"database/sql"
	_ "embed"
	"fmt"
)

// LedgerSchema is the ledger's MySQL schema; [OpenDB] applies it idempotently.
//
//go:embed schema/ledger.sql
var LedgerSchema string

// GatewaySchema is the gateway's private-store schema.
//
//go:embed schema/gateway.sql
var GatewaySchema string

// ApplySchema applies an idempotent schema to db, which must have been
// opened with multiStatements=true.
func ApplySchema(ctx context.Context, db *sql.DB, schema string) error {
	if _, err := db.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("couldn't apply schema: %w", err)
	}
	return nil
}
