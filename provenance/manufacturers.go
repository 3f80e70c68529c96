package provenance

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vitalproof/vitalproof/wearables"
)

// ManufacturerStatus is where a manufacturer stands in the consortium.
type ManufacturerStatus string

// Manufacturer statuses: proposed by the operator, admitted by a quorum of
// member hospitals, suspended by a quorum of them.
const (
	ManufacturerProposed  ManufacturerStatus = "proposed"
	ManufacturerAdmitted  ManufacturerStatus = "admitted"
	ManufacturerSuspended ManufacturerStatus = "suspended"
)

// DefaultManufacturerQuorum is how many member hospitals must approve a
// manufacturer's admission or suspension when LedgerConfig does not say.
const DefaultManufacturerQuorum = 2

// Manufacturer is a device maker and the consortium's votes on it.
type Manufacturer struct {
	ID   string
	Name string
	// PublicKey verifies the records the manufacturer signs; its note key
	// name is ID.
	PublicKey ed25519.PublicKey
	Status    ManufacturerStatus
	// Approvals are the hospitals that approved each action, and Quorum
	// how many an action needs.
	Approvals map[ApprovalAction][]string
	Quorum    int
}

// ProposeManufacturer records a manufacturer the operator proposes, and
// returns its API key (shown once). The key works only once a quorum of
// member hospitals has admitted the manufacturer.
func (l *Ledger) ProposeManufacturer(ctx context.Context, m Manufacturer) (string, error) {
	if !wearables.ValidID(m.ID) {
		return "", invalid("manufacturer_id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	if m.Name == "" || len(m.Name) > 200 {
		return "", invalid("name", "must be 1 to 200 characters")
	}
	if len(m.PublicKey) != ed25519.PublicKeySize {
		return "", invalid("public_key", "must be a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	}
	key, hash, err := NewAPIKey()
	if err != nil {
		return "", internal("create API key", err)
	}
	err = inTx(ctx, l.cfg.DB, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO manufacturers (id, name, public_key, status) VALUES (?, ?, ?, ?)",
			m.ID, m.Name, []byte(m.PublicKey), ManufacturerProposed); err != nil {
			if isDuplicate(err) {
				return errorf(KindConflict, "manufacturer_id", "manufacturer is already known")
			}
			return internal("propose manufacturer", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO api_keys (key_hash, principal, role) VALUES (?, ?, ?)", hash[:], m.ID, RoleManufacturer); err != nil {
			return internal("store API key", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	l.log.InfoContext(ctx, "manufacturer proposed", "manufacturer", m.ID, "quorum", l.cfg.ManufacturerQuorum)
	return key, nil
}

// ApproveManufacturer records a member hospital's signed approval (see
// [Approval]) and appends it to the log; once ManufacturerQuorum hospitals
// approved an action, it takes effect: admit makes a proposed manufacturer
// admitted, suspend makes an admitted one suspended.
func (l *Ledger) ApproveManufacturer(ctx context.Context, hospitalID, manufacturerID string, approval []byte) (Manufacturer, error) {
	hk, err := l.hospitalKey(ctx, hospitalID)
	if err != nil {
		return Manufacturer{}, err
	}
	v, err := wearables.DeviceVerifier(hospitalID, hk)
	if err != nil {
		return Manufacturer{}, internal("build verifier", err)
	}
	a, err := ParseApproval(approval, v)
	if err != nil {
		return Manufacturer{}, invalid("approval", "%v", err)
	}
	if a.Manufacturer != manufacturerID {
		return Manufacturer{}, invalid("approval", "approves manufacturer %q, not %q", a.Manufacturer, manufacturerID)
	}
	if d := time.Since(time.Unix(a.Time, 0)); d > 24*time.Hour || d < -5*time.Minute {
		return Manufacturer{}, invalid("approval", "its time is not within the last day")
	}
	var took bool
	err = inTx(ctx, l.cfg.DB, func(tx *sql.Tx) error {
		took = false
		var pub []byte
		var status ManufacturerStatus
		err := tx.QueryRowContext(ctx, "SELECT public_key, status FROM manufacturers WHERE id = ? FOR UPDATE", manufacturerID).Scan(&pub, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return errorf(KindNotFound, "manufacturer_id", "no such manufacturer")
		}
		if err != nil {
			return internal("look up manufacturer", err)
		}
		if !ed25519.PublicKey(pub).Equal(a.PublicKey) {
			return invalid("approval", "approves another key than the manufacturer was proposed with")
		}
		switch {
		case a.Action == ActionAdmit && status != ManufacturerProposed:
			return errorf(KindConflict, "approval", "the manufacturer is %s: only a proposed manufacturer can be admitted", status)
		case a.Action == ActionSuspend && status != ManufacturerAdmitted:
			return errorf(KindConflict, "approval", "the manufacturer is %s: only an admitted manufacturer can be suspended", status)
		}
		h := wearables.LeafHash(approval)
		if _, err := tx.ExecContext(ctx, "INSERT INTO manufacturer_approvals (manufacturer, action, hospital, approval, leaf_hash) VALUES (?, ?, ?, ?, ?)",
			manufacturerID, a.Action, hospitalID, approval, h[:]); err != nil {
			if isDuplicate(err) {
				return errorf(KindConflict, "approval", "this hospital already approved to %s this manufacturer", a.Action)
			}
			return internal("record approval", err)
		}
		if err := recordLeaf(ctx, tx, approval, "approval/"+manufacturerID+"/"+string(a.Action)+"/"+hospitalID, "", hospitalID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM manufacturer_approvals WHERE manufacturer = ? AND action = ?", manufacturerID, a.Action).Scan(&n); err != nil {
			return internal("count approvals", err)
		}
		if n >= l.cfg.ManufacturerQuorum {
			next := ManufacturerAdmitted
			if a.Action == ActionSuspend {
				next = ManufacturerSuspended
			}
			if _, err := tx.ExecContext(ctx, "UPDATE manufacturers SET status = ? WHERE id = ?", next, manufacturerID); err != nil {
				return internal("update manufacturer", err)
			}
			took = true
		}
		return nil
	})
	if err != nil {
		return Manufacturer{}, err
	}
	l.appendRecord(ctx, approval, fmt.Sprintf("approval to %s %s by %s", a.Action, manufacturerID, hospitalID))
	l.log.InfoContext(ctx, "manufacturer approval", "manufacturer", manufacturerID, "action", a.Action, "hospital", hospitalID, "took_effect", took)
	return l.Manufacturer(ctx, manufacturerID)
}

// Manufacturer returns a manufacturer and the approvals recorded for it.
func (l *Ledger) Manufacturer(ctx context.Context, id string) (Manufacturer, error) {
	if !wearables.ValidID(id) {
		return Manufacturer{}, invalid("manufacturer_id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	m := Manufacturer{ID: id, Approvals: map[ApprovalAction][]string{}, Quorum: l.cfg.ManufacturerQuorum}
	var pub []byte
	err := l.cfg.DB.QueryRowContext(ctx, "SELECT name, public_key, status FROM manufacturers WHERE id = ?", id).Scan(&m.Name, &pub, &m.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return Manufacturer{}, errorf(KindNotFound, "manufacturer_id", "no such manufacturer")
	}
	if err != nil {
		return Manufacturer{}, internal("look up manufacturer", err)
	}
	m.PublicKey = pub
	rows, err := l.cfg.DB.QueryContext(ctx, "SELECT action, hospital FROM manufacturer_approvals WHERE manufacturer = ? ORDER BY created_at", id)
	if err != nil {
		return Manufacturer{}, internal("read approvals", err)
	}
	defer rows.Close()
	for rows.Next() {
		var action ApprovalAction
		var h string
		if err := rows.Scan(&action, &h); err != nil {
			return Manufacturer{}, internal("read approval", err)
		}
		m.Approvals[action] = append(m.Approvals[action], h)
	}
	return m, rows.Err()
}

// admittedManufacturer returns the manufacturer's key if it is admitted,
// and an error saying why not otherwise.
func (l *Ledger) admittedManufacturer(ctx context.Context, id string) (ed25519.PublicKey, error) {
	var pub []byte
	var status ManufacturerStatus
	err := l.cfg.DB.QueryRowContext(ctx, "SELECT public_key, status FROM manufacturers WHERE id = ?", id).Scan(&pub, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindNotFound, "manufacturer", "no such manufacturer")
	}
	if err != nil {
		return nil, internal("look up manufacturer", err)
	}
	if status != ManufacturerAdmitted {
		return nil, errorf(KindPermission, "manufacturer", "the manufacturer is %s, not admitted by the consortium", status)
	}
	return pub, nil
}

// RegisterManufactured registers a device from a registration record its
// manufacturer signed (wearables.Registration, signed with the key the
// manufacturer was admitted with) and appends the record to the log. The
// manufacturer must be admitted and be the one the record names; the
// hospital it names must be registered.
func (l *Ledger) RegisterManufactured(ctx context.Context, manufacturerID string, record []byte) (Device, error) {
	pub, err := l.admittedManufacturer(ctx, manufacturerID)
	if err != nil {
		return Device{}, err
	}
	v, err := wearables.DeviceVerifier(manufacturerID, pub)
	if err != nil {
		return Device{}, internal("build verifier", err)
	}
	rr, err := wearables.VerifyRegistration(record, v)
	if err != nil {
		return Device{}, invalid("registration", "%v", err)
	}
	r := rr.Registration
	if r.Manufacturer != manufacturerID {
		return Device{}, errorf(KindPermission, "registration.manufacturer", "names another manufacturer than the caller")
	}
	if d := time.Since(time.Unix(r.Registered, 0)); d > 24*time.Hour || d < -5*time.Minute {
		return Device{}, invalid("registration.registered", "not within the last day")
	}
	if err := l.storeRegistration(ctx, &r, record, "registration.hospital", "registration.device"); err != nil {
		return Device{}, err
	}
	l.log.InfoContext(ctx, "manufacturer registered device", "device", r.DeviceID, "manufacturer", manufacturerID, "hospital", r.Hospital)
	return l.Device(ctx, r.DeviceID)
}
