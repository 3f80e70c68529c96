package publish

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vitalproof/vitalproof/log"
)

// Schema is the MySQL/MariaDB schema of the checkpoint history: one row per
// published checkpoint, keyed by tree size. It is idempotent; [New] applies
// it.
const Schema = `CREATE TABLE IF NOT EXISTS published_checkpoints (
  size          BIGINT UNSIGNED NOT NULL,
  root          BINARY(32)      NOT NULL,
  note          MEDIUMBLOB      NOT NULL,
  witnessed     BOOLEAN         NOT NULL,
  published_at  DATETIME(6)     NOT NULL,
  PRIMARY KEY (size)
) ENGINE=InnoDB`

const (
	// DefaultHistoryLimit is the page size of [Publisher.History] when its
	// limit is not positive.
	DefaultHistoryLimit = 20
	// MaxHistoryLimit bounds the page size of [Publisher.History].
	MaxHistoryLimit = 100
)

// ErrNotFound is returned by [Publisher.At] for a tree size that has no
// published checkpoint.
var ErrNotFound = errors.New("no published checkpoint of this tree size")

// A Checkpoint is a published checkpoint, as kept in the history.
type Checkpoint struct {
	// Size and Root are the tree the checkpoint commits to.
	Size uint64
	Root log.Hash
	// Note is the signed checkpoint: the log's signature line first, then
	// the witnesses' cosignature lines sorted by key name, one per key.
	// Cosignatures that arrive after publication are added to it.
	Note []byte
	// Witnessed reports whether Note's signatures satisfy the policy. It is
	// false only for checkpoints published by the fail-open option without
	// a quorum (until late cosignatures make up the quorum).
	Witnessed bool
	// PublishedAt is when the checkpoint was first published (UTC,
	// microseconds).
	PublishedAt time.Time
}

// Tree returns the tree the checkpoint commits to.
func (c Checkpoint) Tree() log.Root { return log.Root{Size: c.Size, Hash: c.Root} }

// store is the history table. Only the Publisher's Run goroutine writes.
type store struct {
	db *sql.DB
}

const selectColumns = "SELECT size, root, note, witnessed, published_at FROM published_checkpoints "

func scanCheckpoint(s interface{ Scan(...any) error }) (Checkpoint, error) {
	var c Checkpoint
	var root []byte
	if err := s.Scan(&c.Size, &root, &c.Note, &c.Witnessed, &c.PublishedAt); err != nil {
		return Checkpoint{}, err
	}
	if len(root) != len(c.Root) {
		return Checkpoint{}, fmt.Errorf("stored root of tree %d has %d bytes", c.Size, len(root))
	}
	c.Root = log.Hash(root)
	c.PublishedAt = c.PublishedAt.UTC()
	return c, nil
}

// at returns the checkpoint of tree size size, or ErrNotFound.
func (s *store) at(ctx context.Context, size uint64) (Checkpoint, error) {
	c, err := scanCheckpoint(s.db.QueryRowContext(ctx, selectColumns+"WHERE size = ?", size))
	if errors.Is(err, sql.ErrNoRows) {
		return Checkpoint{}, ErrNotFound
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("couldn't read published checkpoint %d: %w", size, err)
	}
	return c, nil
}

// page returns up to limit checkpoints of sizes below before (all if before
// is 0), newest first.
func (s *store) page(ctx context.Context, before uint64, limit int) ([]Checkpoint, error) {
	var rows *sql.Rows
	var err error
	if before == 0 {
		rows, err = s.db.QueryContext(ctx, selectColumns+"ORDER BY size DESC LIMIT ?", limit)
	} else {
		rows, err = s.db.QueryContext(ctx, selectColumns+"WHERE size < ? ORDER BY size DESC LIMIT ?", before, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("couldn't read checkpoint history: %w", err)
	}
	defer rows.Close()
	var out []Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("couldn't read checkpoint history: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("couldn't read checkpoint history: %w", err)
	}
	return out, nil
}

// errStoredFork is wrapped by put when the history holds another root for
// the tree size: the log forked, or two logs share the table.
var errStoredFork = errors.New("history holds another root for this tree size")

// errNewerStored is wrapped by put when the history holds a larger tree than
// the one being published: another publisher writes to the same table.
var errNewerStored = errors.New("history holds a larger tree")

// put stores the checkpoint c, or, if the history has one of its size
// already, merges c's signature lines into the stored note (see mergeNote)
// and ORs its witnessed flag with c's (the caller re-evaluates the merged
// note with witnessed). It returns the row as stored.
func (s *store) put(ctx context.Context, c Checkpoint, logName string, logHash uint32, witnessed func(note []byte) bool) (Checkpoint, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w", c.Size, err)
	}
	defer tx.Rollback()
	stored, err := scanCheckpoint(tx.QueryRowContext(ctx, selectColumns+"WHERE size = ? FOR UPDATE", c.Size))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		var newest sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT MAX(size) FROM published_checkpoints").Scan(&newest); err != nil {
			return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w", c.Size, err)
		}
		if newest.Valid && uint64(newest.Int64) > c.Size {
			return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w (%d)", c.Size, errNewerStored, newest.Int64)
		}
		if c.PublishedAt.IsZero() {
			c.PublishedAt = time.Now().UTC().Truncate(time.Microsecond)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO published_checkpoints (size, root, note, witnessed, published_at) VALUES (?, ?, ?, ?, ?)",
			c.Size, c.Root[:], c.Note, c.Witnessed, c.PublishedAt); err != nil {
			return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w", c.Size, err)
		}
	case err != nil:
		return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w", c.Size, err)
	default:
		if stored.Root != c.Root {
			return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w: stored %x, new %x", c.Size, errStoredFork, stored.Root, c.Root)
		}
		merged, err := mergeNote(stored.Note, logName, logHash, sigLinesOf(c.Note))
		if err != nil {
			return Checkpoint{}, fmt.Errorf("couldn't merge signatures into checkpoint %d: %w", c.Size, err)
		}
		w := stored.Witnessed || c.Witnessed || witnessed(merged)
		if string(merged) == string(stored.Note) && w == stored.Witnessed {
			return stored, tx.Commit()
		}
		if _, err := tx.ExecContext(ctx, "UPDATE published_checkpoints SET note = ?, witnessed = ? WHERE size = ?", merged, w, c.Size); err != nil {
			return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w", c.Size, err)
		}
		stored.Note, stored.Witnessed = merged, w
		c = stored
	}
	if err := tx.Commit(); err != nil {
		return Checkpoint{}, fmt.Errorf("couldn't store checkpoint %d: %w", c.Size, err)
	}
	return c, nil
}

// sigLinesOf returns the signature lines of a signed note, or nil.
func sigLinesOf(signed []byte) []byte {
	_, sigs, err := splitNote(signed)
	if err != nil {
		return nil
	}
	var b []byte
	for _, s := range sigs {
		b = append(b, s.line...)
	}
	return b
}
