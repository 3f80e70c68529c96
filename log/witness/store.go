package witness

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/go-sql-driver/mysql"
)

// schema is the witness's state, created by [Open] if missing. Statements are
// idempotent so that every start may apply them.
var schema = []string{
	// One row per trusted log: the last checkpoint the witness cosigned for
	// it. A row is created, at the empty tree, when the log is first
	// configured; add-checkpoint then only ever updates it, by
	// compare-and-swap on (tree_size, root_hash).
	`CREATE TABLE IF NOT EXISTS witness_logs (
		-- SHA-256 of the origin: the key, and the <origin hash> of the monitoring URL.
		origin_hash BINARY(32) NOT NULL PRIMARY KEY,
		origin BLOB NOT NULL,
		tree_size BIGINT UNSIGNED NOT NULL,
		root_hash BINARY(32) NOT NULL,
		-- The cosigned checkpoint as served to monitors; NULL before the first cosignature.
		checkpoint MEDIUMBLOB NULL,
		-- Cosignatures issued for this log; each update increments it, so the
		-- compare-and-swap always changes the row it matches.
		cosignatures BIGINT UNSIGNED NOT NULL DEFAULT 0,
		updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)
	) ENGINE=InnoDB`,
	// Refused requests that show misbehaviour of a log; see EvidenceFork and
	// EvidenceInconsistent. One row per kind and signed checkpoint, so that
	// replaying a checkpoint does not grow the table.
	`CREATE TABLE IF NOT EXISTS witness_evidence (
		id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
		origin_hash BINARY(32) NOT NULL,
		kind VARCHAR(32) NOT NULL,
		-- SHA-256 of the refused checkpoint's text.
		checkpoint_hash BINARY(32) NOT NULL,
		-- The add-checkpoint request body as received.
		request MEDIUMBLOB NOT NULL,
		-- The cosigned checkpoint it contradicts, and its size and root.
		cosigned MEDIUMBLOB NULL,
		cosigned_size BIGINT UNSIGNED NOT NULL,
		cosigned_root BINARY(32) NOT NULL,
		received_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
		UNIQUE KEY witness_evidence_once (origin_hash, kind, checkpoint_hash)
	) ENGINE=InnoDB`,
}

// dbName is what Open accepts as a database name: it is spliced into CREATE
// DATABASE, which takes no placeholder.
var dbName = regexp.MustCompile(`^[A-Za-z0-9_]{1,64}$`)

// Open connects to the witness's database, given as a go-sql-driver DSN such
// as "user:password@tcp(127.0.0.1:3306)/witness1", creating the database if
// it does not exist and the witness's tables if they do not exist. Close the
// returned DB when done.
//
// Open sets the connection options the witness relies on (parseTime); other
// options in the DSN are kept.
func Open(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse database DSN: %w", err)
	}
	if !dbName.MatchString(cfg.DBName) {
		return nil, errors.New("couldn't use database DSN: it must name a database of letters, digits and underscores, as in user@tcp(host:3306)/witness")
	}
	cfg.ParseTime = true
	cfg.MultiStatements = false
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("couldn't configure database connection: %w", err)
	}
	db := sql.OpenDB(connector)
	err = db.PingContext(ctx)
	if me := (*mysql.MySQLError)(nil); errors.As(err, &me) && me.Number == 1049 { // ER_BAD_DB_ERROR
		err = createDatabase(ctx, cfg)
		if err == nil {
			err = db.PingContext(ctx)
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("couldn't connect to database %q: %w", cfg.DBName, err)
	}
	for _, s := range schema {
		if _, err := db.ExecContext(ctx, s); err != nil {
			db.Close()
			return nil, fmt.Errorf("couldn't create witness tables: %w", err)
		}
	}
	return db, nil
}

func createDatabase(ctx context.Context, cfg *mysql.Config) error {
	server := cfg.Clone()
	server.DBName = ""
	connector, err := mysql.NewConnector(server)
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.DBName+"`"); err != nil {
		return fmt.Errorf("couldn't create database: %w", err)
	}
	return nil
}

// store is the witness's state in MariaDB/MySQL. It is safe for concurrent
// use, also by several processes sharing the database: updates are
// compare-and-swap.
type store struct {
	db *sql.DB
}

func originHash(origin string) []byte {
	h := sha256.Sum256([]byte(origin))
	return h[:]
}

// addLog records a trusted log at the empty tree unless it is known already.
func (s *store) addLog(ctx context.Context, origin string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO witness_logs (origin_hash, origin, tree_size, root_hash)
		VALUES (?, ?, 0, ?) ON DUPLICATE KEY UPDATE origin_hash = origin_hash`,
		originHash(origin), []byte(origin), emptyRoot[:])
	if err != nil {
		return fmt.Errorf("couldn't record log: %w", err)
	}
	return nil
}

// load returns the state of a log added with addLog.
func (s *store) load(ctx context.Context, origin string) (state, error) {
	var st state
	var size uint64
	var root []byte
	err := s.db.QueryRowContext(ctx,
		`SELECT tree_size, root_hash, checkpoint FROM witness_logs WHERE origin_hash = ?`,
		originHash(origin)).Scan(&size, &root, &st.note)
	if err != nil {
		return state{}, fmt.Errorf("couldn't load log state: %w", err)
	}
	if len(root) != 32 {
		return state{}, errors.New("couldn't load log state: stored root hash is not 32 bytes")
	}
	st.size, st.root = size, [32]byte(root)
	return st, nil
}

// swap replaces old with next if the stored state still has old's size and
// root, and reports whether it did. Once it returns true, next is durable.
func (s *store) swap(ctx context.Context, origin string, old, next state) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE witness_logs
		SET tree_size = ?, root_hash = ?, checkpoint = ?, cosignatures = cosignatures + 1
		WHERE origin_hash = ? AND tree_size = ? AND root_hash = ?`,
		next.size, next.root[:], next.note, originHash(origin), old.size, old.root[:])
	if err != nil {
		return false, fmt.Errorf("couldn't store log state: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("couldn't store log state: %w", err)
	}
	return n == 1, nil
}

// checkpoint returns the last cosigned checkpoint of the log whose origin
// hashes to hash, or nil if there is none.
func (s *store) checkpoint(ctx context.Context, hash [32]byte) ([]byte, error) {
	var note []byte
	err := s.db.QueryRowContext(ctx,
		`SELECT checkpoint FROM witness_logs WHERE origin_hash = ?`, hash[:]).Scan(&note)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't load checkpoint: %w", err)
	}
	return note, nil
}

// Evidence is a refused add-checkpoint request that shows misbehaviour of a
// log, kept by the witness.
type Evidence struct {
	// Kind is EvidenceFork or EvidenceInconsistent.
	Kind string
	// Request is the add-checkpoint body as received: the old size, the
	// proof and the checkpoint with the log's signature.
	Request []byte
	// Cosigned is the checkpoint the witness had cosigned when it refused
	// the request (log signatures and cosignature), and CosignedSize and
	// CosignedRoot its tree. Cosigned is nil if there was none.
	Cosigned     []byte
	CosignedSize uint64
	CosignedRoot [32]byte
	// Received is when the witness refused the request.
	Received time.Time
}

// addEvidence keeps e, unless the same kind of evidence for the same
// checkpoint text is kept already.
func (s *store) addEvidence(ctx context.Context, origin string, checkpointText string, e Evidence) error {
	ch := sha256.Sum256([]byte(checkpointText))
	_, err := s.db.ExecContext(ctx, `INSERT INTO witness_evidence
		(origin_hash, kind, checkpoint_hash, request, cosigned, cosigned_size, cosigned_root)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE id = id`,
		originHash(origin), e.Kind, ch[:], e.Request, e.Cosigned, e.CosignedSize, e.CosignedRoot[:])
	if err != nil {
		return fmt.Errorf("couldn't store evidence: %w", err)
	}
	return nil
}

// evidence returns the evidence kept for a log, oldest first.
func (s *store) evidence(ctx context.Context, origin string) ([]Evidence, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, request, cosigned, cosigned_size, cosigned_root, received_at
		FROM witness_evidence WHERE origin_hash = ? ORDER BY id`, originHash(origin))
	if err != nil {
		return nil, fmt.Errorf("couldn't load evidence: %w", err)
	}
	defer rows.Close()
	var out []Evidence
	for rows.Next() {
		var e Evidence
		var root []byte
		if err := rows.Scan(&e.Kind, &e.Request, &e.Cosigned, &e.CosignedSize, &root, &e.Received); err != nil {
			return nil, fmt.Errorf("couldn't load evidence: %w", err)
		}
		if len(root) != 32 {
			return nil, errors.New("couldn't load evidence: stored root hash is not 32 bytes")
		}
		e.CosignedRoot = [32]byte(root)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't load evidence: %w", err)
	}
	return out, nil
}
