package provenance

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vitalproof/vitalproof/wearables"
)

// queryer is what both *sql.DB and *sql.Tx offer for reads.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// lifecycleState returns a device's lifecycle state: the stored one, or
// the one its registration record starts, read through q (FOR UPDATE when
// lock).
func lifecycleState(ctx context.Context, q queryer, deviceID string, lock bool) (wearables.DeviceState, error) {
	suffix := ""
	if lock {
		suffix = " FOR UPDATE"
	}
	var b []byte
	err := q.QueryRowContext(ctx, "SELECT state FROM device_states WHERE device_id = ?"+suffix, deviceID).Scan(&b)
	if err == nil {
		var s wearables.DeviceState
		if err := json.Unmarshal(b, &s); err != nil {
			return wearables.DeviceState{}, internal("decode device state", err)
		}
		return s, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return wearables.DeviceState{}, internal("read device state", err)
	}
	var rec []byte
	err = q.QueryRowContext(ctx, "SELECT entry FROM entries WHERE chain_key = ? AND seq = 0", registrationChain(deviceID)).Scan(&rec)
	if errors.Is(err, sql.ErrNoRows) {
		return wearables.DeviceState{}, errorf(KindNotFound, "device", "device is not registered")
	}
	if err != nil {
		return wearables.DeviceState{}, internal("read registration record", err)
	}
	rr, err := wearables.ParseRegistration(rec)
	if err != nil {
		return wearables.DeviceState{}, internal("parse registration record", err)
	}
	return wearables.NewDeviceState(rr), nil
}

// Lifecycle returns a device's lifecycle state, for callers entitled to
// see the device.
func (l *Ledger) Lifecycle(ctx context.Context, deviceID string) (wearables.DeviceState, error) {
	return lifecycleState(ctx, l.cfg.DB, deviceID, false)
}

// RecordEvent checks a lifecycle event (wearables.Event) that the caller
// signed, applies it to the device's state, and appends it to the log. The
// event's actor must be the caller (an admitted manufacturer, or a
// hospital) and its signature must verify with the caller's key; the state
// machine decides whether the caller is entitled to the event and whether
// the device's state allows it. Commissioning assigns the device to the
// commissioning hospital; a firmware event changes its current firmware.
func (l *Ledger) RecordEvent(ctx context.Context, p Principal, record []byte) (wearables.DeviceState, error) {
	er, err := wearables.ParseEvent(record)
	if err != nil {
		return wearables.DeviceState{}, invalid("event", "%v", err)
	}
	e := er.Event
	if e.Actor != p.ID {
		return wearables.DeviceState{}, errorf(KindPermission, "event.actor", "names another actor than the caller")
	}
	var key ed25519.PublicKey
	switch p.Role {
	case RoleManufacturer:
		key, err = l.admittedManufacturer(ctx, p.ID)
	case RoleHospital:
		key, err = l.hospitalKey(ctx, p.ID)
	default:
		err = errorf(KindPermission, "", "only manufacturers and hospitals record lifecycle events")
	}
	if err != nil {
		return wearables.DeviceState{}, err
	}
	v, err := wearables.DeviceVerifier(p.ID, key)
	if err != nil {
		return wearables.DeviceState{}, internal("build verifier", err)
	}
	if _, err := wearables.VerifyEvent(record, v); err != nil {
		return wearables.DeviceState{}, invalid("event", "%v", err)
	}
	if time.Unix(e.Time, 0).After(time.Now().Add(5 * time.Minute)) {
		return wearables.DeviceState{}, invalid("event.time", "is in the future")
	}
	var next wearables.DeviceState
	err = inTx(ctx, l.cfg.DB, func(tx *sql.Tx) error {
		var d Device
		if err := tx.QueryRowContext(ctx, "SELECT id, manufacturer, hospital FROM devices WHERE id = ? FOR UPDATE", e.DeviceID).Scan(&d.ID, &d.Manufacturer, &d.Hospital); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return errorf(KindNotFound, "event.device", "device is not registered")
			}
			return internal("look up device", err)
		}
		cur, err := lifecycleState(ctx, tx, e.DeviceID, true)
		if err != nil {
			return err
		}
		// A party with no business with the device learns nothing of it: the
		// answer is the one for an unknown device. The hospital a device was
		// shipped to sees it, to commission it.
		if !CanSee(p, d) && !(p.Role == RoleHospital && cur.Hospital == p.ID) {
			return errorf(KindNotFound, "event.device", "device is not registered")
		}
		next, err = cur.Apply(er)
		switch {
		case errors.Is(err, wearables.ErrNotEntitled):
			return errorf(KindPermission, "event", "%v", err)
		case errors.Is(err, wearables.ErrWrongLink):
			return errorf(KindConflict, "event", "%v (the device's last event is seq %d)", err, cur.Seq)
		case err != nil:
			return errorf(KindConflict, "event", "%v", err)
		}
		b, err := json.Marshal(next)
		if err != nil {
			return internal("encode device state", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO device_states (device_id, seq, head, state) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE seq = VALUES(seq), head = VALUES(head), state = VALUES(state)",
			e.DeviceID, next.Seq, next.Head[:], b); err != nil {
			return internal("store device state", err)
		}
		switch e.Kind {
		case wearables.EventCommissioned:
			_, err = tx.ExecContext(ctx, "UPDATE devices SET hospital = ? WHERE id = ?", e.Hospital, e.DeviceID)
		case wearables.EventFirmware:
			_, err = tx.ExecContext(ctx, "UPDATE devices SET firmware = ? WHERE id = ?", e.Firmware, e.DeviceID)
		}
		if err != nil {
			return internal("update device", err)
		}
		return recordLeaf(ctx, tx, record, fmt.Sprintf("%s/event/%d", e.DeviceID, e.Seq), e.DeviceID, e.Hospital)
	})
	if err != nil {
		return wearables.DeviceState{}, err
	}
	l.appendRecord(ctx, record, fmt.Sprintf("%s event %d of device %s", e.Kind, e.Seq, e.DeviceID))
	l.log.InfoContext(ctx, "device lifecycle event", "device", e.DeviceID, "event", e.Kind, "seq", e.Seq, "actor", e.Actor, "status", next.Status)
	return next, nil
}

// lifecycleStates returns the stored lifecycle states of the devices that
// have one, among ids.
func (l *Ledger) lifecycleStates(ctx context.Context, ids []string) (map[string]wearables.DeviceState, error) {
	out := map[string]wearables.DeviceState{}
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := l.cfg.DB.QueryContext(ctx, "SELECT device_id, state FROM device_states WHERE device_id IN ("+placeholders(len(ids))+")", args...)
	if err != nil {
		return nil, internal("read device states", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var b []byte
		if err := rows.Scan(&id, &b); err != nil {
			return nil, internal("read device state", err)
		}
		var s wearables.DeviceState
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, internal("decode device state", err)
		}
		out[id] = s
	}
	return out, rows.Err()
}
