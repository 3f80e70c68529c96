package provenance

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	vlog "github.com/vitalproof/vitalproof/log"
)

// DefaultHistoryPage and MaxHistoryPage bound a device history page.
const (
	DefaultHistoryPage = 50
	MaxHistoryPage     = 500
)

// HistoryItem is one leaf of a device's history with its inclusion proof
// in the tree of the history's checkpoint.
type HistoryItem struct {
	Index uint64
	Kind  string
	Leaf  []byte
	Proof []vlog.Hash
}

// History is a page of a device's history.
type History struct {
	DeviceID string
	// Checkpoint is the published (cosigned) checkpoint every proof is
	// against, and TreeSize its size.
	Checkpoint []byte
	TreeSize   uint64
	Items      []HistoryItem
	// Next is the cursor of the next page; More is false on the last.
	Next uint64
	More bool
}

// CanSee reports whether p may read device d's registry entry, history
// and records: the operator, the manufacturer that made it, and the
// hospital it is assigned to. Everyone else is answered as if the device
// did not exist.
func CanSee(p Principal, d Device) bool {
	switch p.Role {
	case RoleAdmin:
		return true
	case RoleManufacturer:
		return d.Manufacturer == p.ID
	case RoleHospital:
		return d.Hospital == p.ID
	}
	return false
}

// DeviceHistory returns a page of the leaves that concern a device (its
// registration record, lifecycle events and reading entries), newest first
// unless oldestFirst, each with its inclusion proof against the latest
// published checkpoint. after is the cursor of the page before (0 for the
// first page). A caller who may not see the device is told it is not
// registered, as for an unknown one, so that other tenants' devices cannot
// be probed.
func (l *Ledger) DeviceHistory(ctx context.Context, p Principal, deviceID string, oldestFirst bool, pageSize int, after uint64) (*History, error) {
	d, err := l.Device(ctx, deviceID)
	if err != nil {
		return nil, err
	}
	if !CanSee(p, d) {
		return nil, errorf(KindNotFound, "device_id", "device is not registered")
	}
	if pageSize <= 0 {
		pageSize = DefaultHistoryPage
	}
	pageSize = min(pageSize, MaxHistoryPage)
	cp, root, err := l.published(ctx)
	if err != nil {
		return nil, err
	}
	q := "SELECT leaf_index, kind FROM leaf_index WHERE device_id = ? AND leaf_index < ?"
	args := []any{deviceID, root.Size}
	switch {
	case oldestFirst && after > 0:
		q += " AND leaf_index > ?"
		args = append(args, after)
	case !oldestFirst && after > 0:
		q += " AND leaf_index < ?"
		args = append(args, after)
	}
	if oldestFirst {
		q += " ORDER BY leaf_index ASC"
	} else {
		q += " ORDER BY leaf_index DESC"
	}
	q += " LIMIT ?"
	args = append(args, pageSize+1)
	rows, err := l.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, internal("read the device's index", err)
	}
	h := &History{DeviceID: deviceID, Checkpoint: cp, TreeSize: root.Size}
	for rows.Next() {
		var it HistoryItem
		if err := rows.Scan(&it.Index, &it.Kind); err != nil {
			rows.Close()
			return nil, internal("read the device's index", err)
		}
		h.Items = append(h.Items, it)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, internal("read the device's index", err)
	}
	if len(h.Items) > pageSize {
		h.Items, h.More = h.Items[:pageSize], true
		h.Next = h.Items[pageSize-1].Index
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range h.Items {
		it := &h.Items[i]
		g.Go(func() error {
			leaves, err := l.cfg.Log.Leaves(gctx, it.Index, 1)
			if err != nil || len(leaves) != 1 {
				return internal("read leaf", fmt.Errorf("leaf %d: %v", it.Index, err))
			}
			it.Leaf = leaves[0]
			if it.Proof, err = l.cfg.Log.InclusionProof(gctx, it.Index, root.Size); err != nil {
				return internal("prove inclusion", err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return h, nil
}
