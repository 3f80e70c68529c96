package provenance

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/vitalproof/vitalproof/wearables"
)

// StoredBatch is a batch as the gateway's private store keeps it: the
// signed entry, the opening of its commitment, and where it is logged.
type StoredBatch struct {
	Entry    *wearables.Entry
	Salt     [32]byte
	Readings []wearables.Reading
	// Logged is true once the gateway holds the entry's receipt; Index is
	// then its index in the log.
	Logged bool
	Index  uint64
}

// PeriodBatches returns the device-attested batches of a device and metric
// whose windows lie within [start, end), in time order, with the batch just
// before the period (nil if none) and the one just after it (nil if none
// yet), which bracket them in the device's chain. Time order is chain
// order: a device's windows never overlap.
func (g *Gateway) PeriodBatches(ctx context.Context, deviceID, metric string, start, end int64) (before *StoredBatch, in []StoredBatch, after *StoredBatch, err error) {
	const cols = "SELECT entry, salt, readings, state, leaf_index FROM batches WHERE device_id = ? AND metric = ? AND attestation = ? AND "
	att := string(wearables.AttestDevice)
	in, err = g.storedBatches(ctx, cols+"window_start >= ? AND window_end <= ? ORDER BY window_start", deviceID, metric, att, start, end)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := g.storedBatches(ctx, cols+"window_end <= ? ORDER BY window_start DESC LIMIT 1", deviceID, metric, att, start)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(b) == 1 {
		before = &b[0]
	}
	a, err := g.storedBatches(ctx, cols+"window_start >= ? ORDER BY window_start LIMIT 1", deviceID, metric, att, end)
	if err != nil {
		return nil, nil, nil, err
	}
	if len(a) == 1 {
		after = &a[0]
	}
	return before, in, after, nil
}

// storedBatches runs query, which selects entry, salt, readings, state and
// leaf_index from batches, and returns its rows as StoredBatches.
func (g *Gateway) storedBatches(ctx context.Context, query string, args ...any) ([]StoredBatch, error) {
	rows, err := g.cfg.DB.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, internal("read stored batches", err)
	}
	defer rows.Close()
	var out []StoredBatch
	for rows.Next() {
		var entry, salt, readings []byte
		var state string
		var idx sql.NullInt64
		if err := rows.Scan(&entry, &salt, &readings, &state, &idx); err != nil {
			return nil, internal("read stored batch", err)
		}
		e, err := wearables.ParseEntry(entry)
		if err != nil {
			return nil, internal("parse stored entry", err)
		}
		rs, err := unpackReadings(readings)
		if err != nil {
			return nil, internal("read stored readings", err)
		}
		if len(salt) != 32 {
			return nil, internal("read stored salt", fmt.Errorf("salt of %d bytes", len(salt)))
		}
		out = append(out, StoredBatch{Entry: e, Salt: [32]byte(salt), Readings: rs, Logged: state == stateLogged, Index: uint64(idx.Int64)})
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read stored batches", err)
	}
	return out, nil
}
