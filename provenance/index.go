package provenance

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The leaf index says, for every leaf of the log, what kind of record it is
// and which device and manufacturer it concerns, so that a device's history
// and a manufacturer's devices are found without reading the whole log. It
// is built from the log itself, in index order, by [Ledger.IndexLog] (run in
// the background by [Ledger.Run]); [Ledger.CheckIndex] rebuilds it from
// leaf 0 and reports any difference from the live table, so the index is
// checked against the log rather than trusted.

// Leaf kinds in the index.
const (
	LeafEntry        = "entry"
	LeafRegistration = "registration"
	LeafEvent        = "event"
	LeafApproval     = "approval"
	LeafUnknown      = "unknown"
)

// IndexedLeaf is one row of the leaf index.
type IndexedLeaf struct {
	Index        uint64
	Kind         string
	Device       string // empty for approvals
	Manufacturer string
}

// leafHeader reads the fields the index needs from a leaf's note text: its
// kind, device and, for registrations and approvals, manufacturer. Leaves
// are the ledger's own (it parsed and verified each before appending it),
// so this reads their fixed header lines without verifying them again.
func leafHeader(leaf []byte) (kind, device, manufacturer string) {
	text, _, ok := strings.Cut(string(leaf), "\n\n")
	if !ok {
		return LeafUnknown, "", ""
	}
	lines := strings.Split(text, "\n")
	field := func(i int, key string) string {
		if i >= len(lines) {
			return ""
		}
		k, v, ok := strings.Cut(lines[i], " ")
		if !ok || k != key {
			return ""
		}
		return v
	}
	switch lines[0] {
	case "vitalproof/entry/v1", "vitalproof/entry/v2":
		return LeafEntry, field(1, "device"), ""
	case "vitalproof/device/v1":
		return LeafRegistration, field(1, "device"), field(2, "manufacturer")
	case "vitalproof/event/v1":
		return LeafEvent, field(1, "device"), ""
	case "vitalproof/approval/v1":
		return LeafApproval, "", field(1, "manufacturer")
	}
	return LeafUnknown, "", ""
}

// indexer computes index rows from leaves in log order; it remembers each
// device's manufacturer from its registration record, which precedes the
// device's other leaves.
type indexer struct {
	makers func(device string) (string, error)
	known  map[string]string
}

func (ix *indexer) row(index uint64, leaf []byte) (IndexedLeaf, error) {
	kind, device, maker := leafHeader(leaf)
	r := IndexedLeaf{Index: index, Kind: kind, Device: device, Manufacturer: maker}
	if kind == LeafRegistration {
		ix.known[device] = maker
	}
	if device != "" && maker == "" {
		m, ok := ix.known[device]
		if !ok && ix.makers != nil {
			var err error
			if m, err = ix.makers(device); err != nil {
				return IndexedLeaf{}, err
			}
			ix.known[device] = m
		}
		r.Manufacturer = m
	}
	return r, nil
}

// indexedSize returns how many leaves the live index covers.
func (l *Ledger) indexedSize(ctx context.Context) (uint64, error) {
	var n uint64
	err := l.cfg.DB.QueryRowContext(ctx, "SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM leaf_index").Scan(&n)
	return n, err
}

// IndexLog indexes the log's leaves that the index does not cover yet, a
// page at a time, and returns how many it indexed.
func (l *Ledger) IndexLog(ctx context.Context) (int, error) {
	root, err := l.cfg.Log.Root(ctx)
	if err != nil {
		return 0, fmt.Errorf("couldn't read the log's root: %w", err)
	}
	ix := &indexer{known: map[string]string{}, makers: func(device string) (string, error) {
		var m string
		err := l.cfg.DB.QueryRowContext(ctx, "SELECT manufacturer FROM leaf_index WHERE device_id = ? AND kind = ? LIMIT 1", device, LeafRegistration).Scan(&m)
		if errors.Is(err, sql.ErrNoRows) {
			return "", nil
		}
		return m, err
	}}
	total := 0
	for {
		start, err := l.indexedSize(ctx)
		if err != nil {
			return total, fmt.Errorf("couldn't read the index's size: %w", err)
		}
		if start >= root.Size {
			return total, nil
		}
		leaves, err := l.cfg.Log.Leaves(ctx, start, min(root.Size-start, MaxEntriesPerRead))
		if err != nil {
			return total, fmt.Errorf("couldn't read leaves from %d: %w", start, err)
		}
		if len(leaves) == 0 {
			return total, nil
		}
		var args []any
		for i, leaf := range leaves {
			r, err := ix.row(start+uint64(i), leaf)
			if err != nil {
				return total, fmt.Errorf("couldn't index leaf %d: %w", start+uint64(i), err)
			}
			args = append(args, r.Index, r.Kind, nullIfEmpty(r.Device), nullIfEmpty(r.Manufacturer))
		}
		// INSERT IGNORE: a concurrent indexer (another ledger instance)
		// writes the same rows, computed from the same leaves.
		if _, err := l.cfg.DB.ExecContext(ctx, "INSERT IGNORE INTO leaf_index (leaf_index, kind, device_id, manufacturer) VALUES "+rowPlaceholders(len(leaves), 4), args...); err != nil {
			return total, fmt.Errorf("couldn't write index rows: %w", err)
		}
		total += len(leaves)
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// IndexReport is what CheckIndex found.
type IndexReport struct {
	// Leaves is how many leaves of the log were read.
	Leaves uint64
	// Missing are rows the log implies but the live index lacks; Wrong are
	// live rows that differ from what the log implies (the row the log
	// implies); Extra are live rows for leaves beyond the log.
	Missing, Wrong []IndexedLeaf
	Extra          []uint64
	// Repaired is true when the differences were written to the live
	// index.
	Repaired bool
	Took     time.Duration
}

// OK reports whether the live index matched the log.
func (r *IndexReport) OK() bool { return len(r.Missing)+len(r.Wrong)+len(r.Extra) == 0 }

// maxReported bounds the differences an IndexReport lists.
const maxReported = 1000

// CheckIndex rebuilds the leaf index from leaf 0 of the log and compares
// it with the live table, reporting every missing, wrong or extra row (up
// to 1,000 of each). With repair it writes the rebuilt rows in place of the
// differing ones.
func (l *Ledger) CheckIndex(ctx context.Context, repair bool) (*IndexReport, error) {
	start := time.Now()
	root, err := l.cfg.Log.Root(ctx)
	if err != nil {
		return nil, internal("read the log's root", err)
	}
	rep := &IndexReport{Leaves: root.Size}
	ix := &indexer{known: map[string]string{}}
	var fix []IndexedLeaf
	for next := uint64(0); next < root.Size; {
		leaves, err := l.cfg.Log.Leaves(ctx, next, min(root.Size-next, MaxEntriesPerRead))
		if err != nil {
			return nil, internal("read leaves", err)
		}
		if len(leaves) == 0 {
			return nil, internal("read leaves", fmt.Errorf("no leaf at %d of %d", next, root.Size))
		}
		live, err := l.indexRows(ctx, next, next+uint64(len(leaves)))
		if err != nil {
			return nil, err
		}
		for i, leaf := range leaves {
			want, err := ix.row(next+uint64(i), leaf)
			if err != nil {
				return nil, internal("index leaf", err)
			}
			got, ok := live[want.Index]
			switch {
			case !ok:
				if len(rep.Missing) < maxReported {
					rep.Missing = append(rep.Missing, want)
				}
				fix = append(fix, want)
			case got != want:
				if len(rep.Wrong) < maxReported {
					rep.Wrong = append(rep.Wrong, want)
				}
				fix = append(fix, want)
			}
		}
		next += uint64(len(leaves))
	}
	rows, err := l.cfg.DB.QueryContext(ctx, "SELECT leaf_index FROM leaf_index WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?", root.Size, maxReported)
	if err != nil {
		return nil, internal("read index", err)
	}
	for rows.Next() {
		var i uint64
		if err := rows.Scan(&i); err != nil {
			rows.Close()
			return nil, internal("read index", err)
		}
		rep.Extra = append(rep.Extra, i)
	}
	rows.Close()
	if repair && !rep.OK() {
		for _, r := range fix {
			if _, err := l.cfg.DB.ExecContext(ctx, "REPLACE INTO leaf_index (leaf_index, kind, device_id, manufacturer) VALUES (?, ?, ?, ?)",
				r.Index, r.Kind, nullIfEmpty(r.Device), nullIfEmpty(r.Manufacturer)); err != nil {
				return nil, internal("repair index", err)
			}
		}
		if len(rep.Extra) > 0 {
			if _, err := l.cfg.DB.ExecContext(ctx, "DELETE FROM leaf_index WHERE leaf_index >= ?", root.Size); err != nil {
				return nil, internal("repair index", err)
			}
		}
		rep.Repaired = true
	}
	rep.Took = time.Since(start)
	l.log.InfoContext(ctx, "checked the leaf index against the log", "leaves", rep.Leaves, "missing", len(rep.Missing), "wrong", len(rep.Wrong), "extra", len(rep.Extra), "repaired", rep.Repaired, "took", rep.Took)
	return rep, nil
}

// indexRows returns the live index rows of leaves [from, to).
func (l *Ledger) indexRows(ctx context.Context, from, to uint64) (map[uint64]IndexedLeaf, error) {
	rows, err := l.cfg.DB.QueryContext(ctx, "SELECT leaf_index, kind, COALESCE(device_id, ''), COALESCE(manufacturer, '') FROM leaf_index WHERE leaf_index >= ? AND leaf_index < ?", from, to)
	if err != nil {
		return nil, internal("read index", err)
	}
	defer rows.Close()
	out := map[uint64]IndexedLeaf{}
	for rows.Next() {
		var r IndexedLeaf
		if err := rows.Scan(&r.Index, &r.Kind, &r.Device, &r.Manufacturer); err != nil {
			return nil, internal("read index", err)
		}
		out[r.Index] = r
	}
	return out, rows.Err()
}
