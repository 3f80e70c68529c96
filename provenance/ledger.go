package provenance

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"

	vlog "github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/publish"
	"github.com/vitalproof/vitalproof/wearables"
)

// Checkpointer publishes checkpoints of the log: signed by the log and,
// once published, cosigned by a quorum of witnesses. Package log/publish
// implements it.
type Checkpointer interface {
	// Latest returns the newest published checkpoint and the tree it
	// commits to, or an error wrapping publish.ErrNotPublished.
	Latest(ctx context.Context) (signed []byte, root vlog.Root, err error)
	// Await blocks until a published checkpoint covers a tree of at least
	// size leaves and returns it as Latest does, or until ctx is done.
	Await(ctx context.Context, size uint64) (signed []byte, root vlog.Root, err error)
	// History returns up to limit published checkpoints of tree sizes
	// below beforeSize (0: from the newest), newest first.
	History(ctx context.Context, beforeSize uint64, limit int) ([]publish.Checkpoint, error)
	// At returns the published checkpoint of a tree size, or an error
	// wrapping publish.ErrNotFound.
	At(ctx context.Context, size uint64) (publish.Checkpoint, error)
}

// Awaiter waits for queued leaves to be integrated.
type Awaiter interface {
	// Await blocks until the leaf with leafHash is integrated and returns its index.
	Await(ctx context.Context, leafHash vlog.Hash) (uint64, vlog.Root, error)
}

// ReceiptFormatter formats a receipt in C2SP tlog-proof form with the entry
// as its extra data.
type ReceiptFormatter func(index uint64, entry []byte, proof []vlog.Hash, signedCheckpoint []byte) []byte

const (
	// DefaultIntegrationTimeout is how long SubmitEntries waits for its
	// entries to be integrated before it answers that they are pending.
	DefaultIntegrationTimeout = 10 * time.Second
	// DefaultReconcileInterval is how often the reconciler queues again
	// accepted entries that are not yet integrated.
	DefaultReconcileInterval = 5 * time.Second
	// maxRecordAttempts bounds the retries of a transaction that lost a
	// race (deadlock, lock wait timeout, duplicate key).
	maxRecordAttempts = 5
	// MaxEntriesPerSubmit bounds one SubmitEntries call.
	MaxEntriesPerSubmit = 1000
)

// LedgerConfig configures a [Ledger]. DB, Log, Checkpoints, Awaiter,
// FormatReceipt and Registrar are required.
type LedgerConfig struct {
	// DB is the ledger's database, with [LedgerSchema] applied.
	DB *sql.DB
	// Log is the Merkle log entries are appended to.
	Log           vlog.Log
	Checkpoints   Checkpointer
	Awaiter       Awaiter
	FormatReceipt ReceiptFormatter
	// Registrar signs the registration records the ledger appends to the
	// log when it registers a device (wearables.Registration).
	Registrar note.Signer
	// VerifyingKeysDir is a directory of audit-circuit key directories
	// (package zk/keys) whose verifying keys the ledger serves. Empty
	// serves none.
	VerifyingKeysDir string
	// ManufacturerQuorum is how many member hospitals must approve a
	// manufacturer's admission or suspension (default
	// DefaultManufacturerQuorum).
	ManufacturerQuorum int
	// AdminKey is the operator's API key (role admin). Empty disables it.
	AdminKey string
	// IntegrationTimeout defaults to DefaultIntegrationTimeout.
	IntegrationTimeout time.Duration
	// ReconcileInterval defaults to DefaultReconcileInterval.
	ReconcileInterval time.Duration
	Logger            *slog.Logger
}

// Ledger is the consortium's ledger personality. It checks entries (device
// registered, active and assigned to the submitting hospital; signature;
// next link of its chain), records them and appends them to the log, and
// serves receipts and proofs.
type Ledger struct {
	cfg      LedgerConfig
	adminKey [32]byte
	log      *slog.Logger
}

// NewLedger returns a ledger. Call [Ledger.Run] to keep the log in step with
// accepted entries.
func NewLedger(cfg LedgerConfig) (*Ledger, error) {
	if cfg.DB == nil || cfg.Log == nil || cfg.Checkpoints == nil || cfg.Awaiter == nil || cfg.FormatReceipt == nil || cfg.Registrar == nil {
		return nil, errors.New("couldn't create ledger: DB, Log, Checkpoints, Awaiter, FormatReceipt and Registrar are required")
	}
	if cfg.IntegrationTimeout <= 0 {
		cfg.IntegrationTimeout = DefaultIntegrationTimeout
	}
	if cfg.ReconcileInterval <= 0 {
		cfg.ReconcileInterval = DefaultReconcileInterval
	}
	if cfg.ManufacturerQuorum <= 0 {
		cfg.ManufacturerQuorum = DefaultManufacturerQuorum
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	l := &Ledger{cfg: cfg, log: cfg.Logger.With("service", "ledger")}
	if cfg.AdminKey != "" {
		l.adminKey = HashAPIKey(cfg.AdminKey)
	}
	return l, nil
}

// Authenticate returns the principal an API key belongs to.
func (l *Ledger) Authenticate(ctx context.Context, apiKey string) (Principal, error) {
	if apiKey == "" {
		return Principal{}, errorf(KindUnauthenticated, "", "missing API key")
	}
	h := HashAPIKey(apiKey)
	if l.cfg.AdminKey != "" && h == l.adminKey {
		return Principal{ID: "operator", Role: RoleAdmin}, nil
	}
	var p Principal
	err := l.cfg.DB.QueryRowContext(ctx, "SELECT principal, role FROM api_keys WHERE key_hash = ?", h[:]).Scan(&p.ID, &p.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errorf(KindUnauthenticated, "", "unknown API key")
	}
	if err != nil {
		return Principal{}, internal("look up API key", err)
	}
	return p, nil
}

// RegisterHospital admits a hospital and returns its API key, shown only once.
func (l *Ledger) RegisterHospital(ctx context.Context, h Hospital) (string, error) {
	if !wearables.ValidID(h.ID) {
		return "", invalid("hospital_id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	if h.Name == "" || len(h.Name) > 200 {
		return "", invalid("name", "must be 1 to 200 characters")
	}
	if len(h.PublicKey) != ed25519.PublicKeySize {
		return "", invalid("public_key", "must be a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	}
	key, hash, err := NewAPIKey()
	if err != nil {
		return "", internal("create API key", err)
	}
	err = inTx(ctx, l.cfg.DB, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "INSERT INTO hospitals (id, name, public_key) VALUES (?, ?, ?)", h.ID, h.Name, []byte(h.PublicKey)); err != nil {
			if isDuplicate(err) {
				return errorf(KindConflict, "hospital_id", "hospital is already registered")
			}
			return internal("register hospital", err)
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO api_keys (key_hash, principal, role) VALUES (?, ?, ?)", hash[:], h.ID, RoleHospital); err != nil {
			return internal("store API key", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	l.log.InfoContext(ctx, "registered hospital", "hospital", h.ID)
	return key, nil
}

// RegisterDevice adds a device to the registry, assigned to a hospital and active.
func (l *Ledger) RegisterDevice(ctx context.Context, d Device) error {
	if !wearables.ValidID(d.ID) {
		return invalid("device_id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	if !wearables.ValidID(d.Manufacturer) {
		return invalid("manufacturer", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	udi, err := wearables.ParseUDI(d.UDI)
	if err != nil {
		return invalid("udi", "%v", err)
	}
	if d.Model == "" || len(d.Model) > 200 {
		return invalid("model", "must be 1 to 200 characters")
	}
	if d.Firmware == "" || len(d.Firmware) > 64 {
		return invalid("firmware", "must be 1 to 64 characters")
	}
	if len(d.PublicKey) != ed25519.PublicKeySize {
		return invalid("public_key", "must be a %d-byte Ed25519 public key", ed25519.PublicKeySize)
	}
	reg, err := wearables.NewRegistration(d.ID, d.Manufacturer, udi.String(), d.Model, d.Firmware, d.PublicKey, d.Hospital, time.Now())
	if err != nil {
		return invalid("device", "%v", err)
	}
	record, err := reg.Sign(l.cfg.Registrar)
	if err != nil {
		return internal("sign registration record", err)
	}
	if err := l.storeRegistration(ctx, reg, record, "hospital_id", "device_id"); err != nil {
		return err
	}
	l.log.InfoContext(ctx, "registered device", "device", d.ID, "hospital", d.Hospital)
	return nil
}

// storeRegistration records a device and its signed registration record
// r in one transaction, then appends the record to the log. hospitalField
// and deviceField name the request's fields in errors.
func (l *Ledger) storeRegistration(ctx context.Context, r *wearables.Registration, record []byte, hospitalField, deviceField string) error {
	err := inTx(ctx, l.cfg.DB, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM hospitals WHERE id = ?", r.Hospital).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return errorf(KindNotFound, hospitalField, "hospital is not registered")
		}
		if err != nil {
			return internal("look up hospital", err)
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO devices (id, manufacturer, udi, model, firmware, public_key, hospital, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
			r.DeviceID, r.Manufacturer, r.UDI, r.Model, r.Firmware, []byte(r.PublicKey), r.Hospital, DeviceActive)
		if isDuplicate(err) {
			return errorf(KindConflict, deviceField, "device is already registered")
		}
		if err != nil {
			return internal("register device", err)
		}
		return recordLeaf(ctx, tx, record, registrationChain(r.DeviceID), r.DeviceID, r.Hospital)
	})
	if err != nil {
		return err
	}
	l.appendRecord(ctx, record, "registration record of device "+r.DeviceID)
	return nil
}

// recordLeaf records, in tx, a leaf the ledger itself appends to the log
// (a registration record, an approval, a lifecycle event) in the entries
// table under chainKey, so that the reconciler queues it again if the
// append after the transaction fails.
func recordLeaf(ctx context.Context, tx *sql.Tx, leaf []byte, chainKey, device, hospital string) error {
	h := wearables.LeafHash(leaf)
	if _, err := tx.ExecContext(ctx, "INSERT INTO entries (leaf_hash, chain_key, seq, device_id, hospital, entry) VALUES (?, ?, 0, ?, ?, ?)",
		h[:], chainKey, device, hospital, leaf); err != nil {
		if isDuplicate(err) {
			return errorf(KindConflict, "", "this record is already in the log")
		}
		return internal("record leaf", err)
	}
	return nil
}

// appendRecord appends a leaf recorded with recordLeaf to the log, records
// its index once integrated and waits, within the integration timeout, for
// a published checkpoint to cover it, so that the record is provable when
// the call that made it returns. Failures are logged: the reconciler
// queues the leaf again and records its index.
func (l *Ledger) appendRecord(ctx context.Context, leaf []byte, what string) {
	h := wearables.LeafHash(leaf)
	if err := l.cfg.Log.Append(ctx, [][]byte{leaf}); err != nil {
		l.log.WarnContext(ctx, "couldn't queue a record; the reconciler will retry", "record", what, "err", err)
		return
	}
	actx, cancel := context.WithTimeout(ctx, l.cfg.IntegrationTimeout)
	defer cancel()
	idx, _, err := l.cfg.Awaiter.Await(actx, h)
	if err != nil {
		return
	}
	if _, err := l.cfg.DB.ExecContext(ctx, "UPDATE entries SET leaf_index = ? WHERE leaf_hash = ? AND leaf_index IS NULL", idx, h[:]); err != nil {
		l.log.WarnContext(ctx, "couldn't record a record's index", "record", what, "err", err)
	}
	if _, _, err := l.cfg.Checkpoints.Await(actx, idx+1); err != nil {
		l.log.WarnContext(ctx, "record not yet covered by a published checkpoint", "record", what, "index", idx)
	}
}

// registrationChain is the chain key under which a device's registration
// record is kept in the entries table; entry chains are device/metric/attestation.
func registrationChain(deviceID string) string { return deviceID + "/registration" }

// Device returns a registered device.
func (l *Ledger) Device(ctx context.Context, id string) (Device, error) {
	if !wearables.ValidID(id) {
		return Device{}, invalid("device_id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	devs, err := l.devices(ctx, []string{id})
	if err != nil {
		return Device{}, err
	}
	d, ok := devs[id]
	if !ok {
		return Device{}, errorf(KindNotFound, "device_id", "device is not registered")
	}
	var idx sql.NullInt64
	err = l.cfg.DB.QueryRowContext(ctx, "SELECT entry, leaf_index FROM entries WHERE chain_key = ? AND seq = 0", registrationChain(id)).Scan(&d.Registration, &idx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Device{}, internal("look up registration record", err)
	}
	d.RegistrationIndex, d.RegistrationLogged = uint64(idx.Int64), idx.Valid
	return d, nil
}

func (l *Ledger) devices(ctx context.Context, ids []string) (map[string]Device, error) {
	out := make(map[string]Device, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := l.cfg.DB.QueryContext(ctx, "SELECT id, manufacturer, udi, model, firmware, public_key, hospital, status FROM devices WHERE id IN ("+placeholders(len(ids))+")", args...)
	if err != nil {
		return nil, internal("look up devices", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d Device
		var pub []byte
		if err := rows.Scan(&d.ID, &d.Manufacturer, &d.UDI, &d.Model, &d.Firmware, &pub, &d.Hospital, &d.Status); err != nil {
			return nil, internal("read device", err)
		}
		d.PublicKey = ed25519.PublicKey(pub)
		out[d.ID] = d
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read devices", err)
	}
	return out, nil
}

func (l *Ledger) hospitalKey(ctx context.Context, id string) (ed25519.PublicKey, error) {
	var pub []byte
	err := l.cfg.DB.QueryRowContext(ctx, "SELECT public_key FROM hospitals WHERE id = ?", id).Scan(&pub)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errorf(KindNotFound, "hospital", "hospital is not registered")
	}
	if err != nil {
		return nil, internal("look up hospital", err)
	}
	return ed25519.PublicKey(pub), nil
}

// checkEntries parses and checks entries on their own: canonical encoding,
// submitting hospital, device registered, active and assigned to it, and
// signature. It returns the parsed entries; refused ones are nil with
// their result's Err set.
func (l *Ledger) checkEntries(ctx context.Context, hospitalID string, raw [][]byte, results []SubmitResult) ([]*wearables.Entry, error) {
	entries := make([]*wearables.Entry, len(raw))
	var ids []string
	seen := map[string]bool{}
	for i, b := range raw {
		e, err := wearables.ParseEntry(b)
		if err != nil {
			results[i].Err = invalid(fmt.Sprintf("entries[%d]", i), "%v", err)
			continue
		}
		if e.Header.Hospital != hospitalID {
			results[i].Err = errorf(KindPermission, fmt.Sprintf("entries[%d].hospital", i), "entry names another hospital than the submitter")
			continue
		}
		entries[i] = e
		results[i].LeafHash = e.LeafHash()
		if !seen[e.Header.DeviceID] {
			seen[e.Header.DeviceID] = true
			ids = append(ids, e.Header.DeviceID)
		}
	}
	devs, err := l.devices(ctx, ids)
	if err != nil {
		return nil, err
	}
	states, err := l.lifecycleStates(ctx, ids)
	if err != nil {
		return nil, err
	}
	var hospitalKey ed25519.PublicKey
	for i, e := range entries {
		if e == nil {
			continue
		}
		field := fmt.Sprintf("entries[%d]", i)
		d, ok := devs[e.Header.DeviceID]
		switch {
		case !ok:
			results[i].Err = errorf(KindNotFound, field+".device", "device is not registered")
		case d.Hospital != hospitalID:
			results[i].Err = errorf(KindPermission, field+".device", "device is not assigned to this hospital")
		case d.Status != DeviceActive:
			results[i].Err = errorf(KindPermission, field+".device", "device is not active")
		}
		if st, ok := states[d.ID]; ok && results[i].Err == nil {
			if err := st.AcceptsReadings(e.Header.WindowStart, e.Header.WindowEnd, e.Header.Firmware); err != nil {
				results[i].Err = errorf(KindPermission, field+".device", "%v", err)
			}
		}
		if results[i].Err != nil {
			entries[i] = nil
			continue
		}
		var name string
		var pub ed25519.PublicKey
		if e.Header.Attestation == wearables.AttestGateway {
			if hospitalKey == nil {
				if hospitalKey, err = l.hospitalKey(ctx, hospitalID); err != nil {
					return nil, err
				}
			}
			name, pub = hospitalID, hospitalKey
		} else {
			name, pub = d.ID, d.PublicKey
		}
		v, err := wearables.DeviceVerifier(name, pub)
		if err != nil {
			results[i].Err = internal("build verifier", err)
			entries[i] = nil
			continue
		}
		if _, err := wearables.VerifyEntry(e.Bytes, v); err != nil {
			results[i].Err = invalid(field+".signature", "signature does not verify with the %s key", e.Header.Attestation)
			entries[i] = nil
		}
	}
	return entries, nil
}

type chainHead struct {
	seq  uint64
	hash [32]byte
	// windowEnd is the end of the head entry's window: the next link's
	// window may not start before it, so that a chain is in time order
	// and an audit's brackets show that no batch of a period is missing.
	windowEnd int64
}

// SubmitEntries checks and records entries, appends them to the log and
// waits (up to the integration timeout) for their receipts. Entries are
// taken in order; each gets its own result, and a refused one writes
// nothing.
func (l *Ledger) SubmitEntries(ctx context.Context, hospitalID string, raw [][]byte) ([]SubmitResult, error) {
	if len(raw) == 0 {
		return nil, invalid("entries", "no entries")
	}
	if len(raw) > MaxEntriesPerSubmit {
		return nil, invalid("entries", "more than %d entries in one call", MaxEntriesPerSubmit)
	}
	start := time.Now()
	results := make([]SubmitResult, len(raw))
	entries, err := l.checkEntries(ctx, hospitalID, raw, results)
	if err != nil {
		return nil, err
	}
	var fresh [][]byte
	for attempt := 0; ; attempt++ {
		fresh, err = l.record(ctx, entries, results)
		if err == nil || attempt == maxRecordAttempts-1 || !isRetryable(err) {
			break
		}
		l.log.DebugContext(ctx, "retrying entry transaction", "attempt", attempt+1, "err", err)
		time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	recorded := time.Now()
	if len(fresh) > 0 {
		if err := l.cfg.Log.Append(ctx, fresh); err != nil {
			l.log.WarnContext(ctx, "couldn't queue entries; the reconciler will retry", "err", err)
			metricAppendErrors.Inc()
		}
	}
	queued := time.Now()
	if err := l.awaitReceipts(ctx, entries, results); err != nil {
		return nil, err
	}
	l.log.DebugContext(ctx, "submitted entries", "entries", len(raw), "new", len(fresh),
		"check_record", recorded.Sub(start), "queue", queued.Sub(recorded), "integrate_and_prove", time.Since(queued))
	for i := range results {
		switch {
		case results[i].Err != nil:
			metricEntries.WithLabelValues("refused").Inc()
			metricRefusals.WithLabelValues(refusalReason(results[i].Err)).Inc()
		case results[i].Duplicate:
			metricEntries.WithLabelValues("duplicate").Inc()
		default:
			metricEntries.WithLabelValues("accepted").Inc()
		}
		if results[i].Err == nil && !results[i].Pending {
			metricIntegration.Observe(time.Since(start).Seconds())
		}
	}
	return results, nil
}

// headWindows fills in the window end of each chain head, from the head
// entry recorded in tx.
func headWindows(ctx context.Context, tx *sql.Tx, heads map[string]chainHead) error {
	var conds []string
	var args []any
	for k, h := range heads {
		conds = append(conds, "(chain_key = ? AND seq = ?)")
		args = append(args, k, h.seq)
	}
	if len(conds) == 0 {
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT chain_key, entry FROM entries WHERE "+strings.Join(conds, " OR "), args...)
	if err != nil {
		return internal("read chain heads", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k string
		var b []byte
		if err := rows.Scan(&k, &b); err != nil {
			return internal("read chain head", err)
		}
		e, err := wearables.ParseEntry(b)
		if err != nil {
			return internal("parse chain head", err)
		}
		h := heads[k]
		h.windowEnd = e.Header.WindowEnd
		heads[k] = h
	}
	return rows.Err()
}

// record checks the chain links of entries and records the new ones, with
// their chains' new heads, in one transaction. It returns the new leaves.
func (l *Ledger) record(ctx context.Context, entries []*wearables.Entry, results []SubmitResult) ([][]byte, error) {
	var fresh [][]byte
	err := inTxOpts(ctx, l.cfg.DB, readCommitted, func(tx *sql.Tx) error {
		fresh = fresh[:0]
		var hashes []any
		var chainKeys []any
		seenChain := map[string]bool{}
		for _, e := range entries {
			if e == nil {
				continue
			}
			h := e.LeafHash()
			hashes = append(hashes, h[:])
			if k := e.Header.ChainKey(); !seenChain[k] {
				seenChain[k] = true
				chainKeys = append(chainKeys, k)
			}
		}
		if len(hashes) == 0 {
			return nil
		}
		// Entries already recorded: duplicates.
		known := map[[32]byte]sql.NullInt64{}
		rows, err := tx.QueryContext(ctx, "SELECT leaf_hash, leaf_index FROM entries WHERE leaf_hash IN ("+placeholders(len(hashes))+")", hashes...)
		if err != nil {
			return internal("look up entries", err)
		}
		for rows.Next() {
			var h []byte
			var idx sql.NullInt64
			if err := rows.Scan(&h, &idx); err != nil {
				rows.Close()
				return internal("read entries", err)
			}
			known[[32]byte(h)] = idx
		}
		rows.Close()
		// Chain heads, locked until commit.
		heads := map[string]chainHead{}
		rows, err = tx.QueryContext(ctx, "SELECT chain_key, seq, head_hash FROM chains WHERE chain_key IN ("+placeholders(len(chainKeys))+") FOR UPDATE", chainKeys...)
		if err != nil {
			return internal("lock chains", err)
		}
		for rows.Next() {
			var k string
			var ch chainHead
			var h []byte
			if err := rows.Scan(&k, &ch.seq, &h); err != nil {
				rows.Close()
				return internal("read chains", err)
			}
			ch.hash = [32]byte(h)
			heads[k] = ch
		}
		rows.Close()
		if err := headWindows(ctx, tx, heads); err != nil {
			return err
		}
		changed := map[string]bool{}
		var insertArgs []any
		for i, e := range entries {
			if e == nil {
				continue
			}
			results[i].Err = nil
			results[i].Duplicate = false
			h := e.LeafHash()
			if idx, ok := known[h]; ok {
				results[i].Duplicate = true
				if idx.Valid {
					results[i].Index = uint64(idx.Int64)
				}
				continue
			}
			k := e.Header.ChainKey()
			head := heads[k]
			field := fmt.Sprintf("entries[%d]", i)
			if e.Header.Seq != head.seq+1 {
				if e.Header.Seq <= head.seq {
					results[i].Err = errorf(KindConflict, field+".seq", "the device's chain already has another entry with this sequence number (head is %d)", head.seq)
				} else {
					results[i].Err = errorf(KindConflict, field+".seq", "not the next link of the device's chain: expected sequence number %d", head.seq+1)
				}
				continue
			}
			if e.Header.Prev != head.hash {
				results[i].Err = errorf(KindConflict, field+".prev", "does not match the leaf hash of the chain's previous entry")
				continue
			}
			if e.Header.WindowStart < head.windowEnd {
				results[i].Err = errorf(KindConflict, field+".window", "starts before the window of the chain's previous entry ends (%d): a device's batches must be in time order", head.windowEnd)
				continue
			}
			heads[k] = chainHead{seq: e.Header.Seq, hash: h, windowEnd: e.Header.WindowEnd}
			changed[k] = true
			insertArgs = append(insertArgs, h[:], k, e.Header.Seq, e.Header.DeviceID, e.Header.Hospital, e.Bytes)
			fresh = append(fresh, e.Bytes)
		}
		if len(fresh) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO entries (leaf_hash, chain_key, seq, device_id, hospital, entry) VALUES "+rowPlaceholders(len(fresh), 6), insertArgs...); err != nil {
			return internal("record entries", err)
		}
		var chainArgs []any
		for k := range changed {
			h := heads[k]
			chainArgs = append(chainArgs, k, h.seq, h.hash[:])
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO chains (chain_key, seq, head_hash) VALUES "+rowPlaceholders(len(changed), 3)+
			" ON DUPLICATE KEY UPDATE seq = VALUES(seq), head_hash = VALUES(head_hash)", chainArgs...); err != nil {
			return internal("advance chains", err)
		}
		return nil
	})
	return fresh, err
}

// awaitReceipts waits for accepted entries to be integrated and fills in
// their indices and receipts; those not integrated in time are Pending.
func (l *Ledger) awaitReceipts(ctx context.Context, entries []*wearables.Entry, results []SubmitResult) error {
	wctx, cancel := context.WithTimeout(ctx, l.cfg.IntegrationTimeout)
	defer cancel()
	g, gctx := errgroup.WithContext(wctx)
	g.SetLimit(64)
	for i, e := range entries {
		if e == nil || results[i].Err != nil {
			continue
		}
		results[i].Pending = true
		g.Go(func() error {
			idx, _, err := l.cfg.Awaiter.Await(gctx, e.LeafHash())
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return nil // still pending
			}
			results[i].Index = idx
			results[i].Pending = false
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return errorf(KindUnavailable, "", "request cancelled while waiting for integration")
	}
	// Record the indices learnt.
	var idxArgs []any
	var hashes []any
	for i, e := range entries {
		if e == nil || results[i].Err != nil || results[i].Pending {
			continue
		}
		h := e.LeafHash()
		idxArgs = append(idxArgs, h[:], results[i].Index)
		hashes = append(hashes, h[:])
	}
	if len(hashes) > 0 {
		q := "UPDATE entries SET leaf_index = CASE leaf_hash" + strings.Repeat(" WHEN ? THEN ?", len(hashes)) + " END WHERE leaf_index IS NULL AND leaf_hash IN (" + placeholders(len(hashes)) + ")"
		if _, err := l.cfg.DB.ExecContext(ctx, q, append(idxArgs, hashes...)...); err != nil {
			return internal("record entry indices", err)
		}
	}
	// Wait, within what is left of the timeout, for a published checkpoint
	// that covers them all; witnesses cosign it in that time.
	var need uint64
	for i, e := range entries {
		if e == nil || results[i].Err != nil || results[i].Pending {
			continue
		}
		results[i].Integrated = true
		need = max(need, results[i].Index+1)
	}
	if need == 0 {
		return nil
	}
	awaited := time.Now()
	cp, root, err := l.cfg.Checkpoints.Await(wctx, need)
	if err != nil {
		if ctx.Err() != nil {
			return errorf(KindUnavailable, "", "request cancelled while waiting for a published checkpoint")
		}
		// Not all covered in time: receipts for the entries the latest
		// published checkpoint covers, pending with their index for the rest.
		cp, root, err = l.cfg.Checkpoints.Latest(ctx)
		if errors.Is(err, publish.ErrNotPublished) {
			for i, e := range entries {
				if e != nil && results[i].Err == nil {
					results[i].Pending = true
				}
			}
			return nil
		}
		if err != nil {
			return internal("read the published checkpoint", err)
		}
	}
	defer func() { l.log.DebugContext(ctx, "proved receipts", "since_integrated", time.Since(awaited)) }()
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, e := range entries {
		if e == nil || results[i].Err != nil || results[i].Pending {
			continue
		}
		if results[i].Index >= root.Size {
			results[i].Pending = true
			continue
		}
		g.Go(func() error {
			// By hash: one lookup that needs no read of the entry, which we hold.
			idx, proof, err := l.cfg.Log.InclusionByHash(gctx, e.LeafHash(), root.Size)
			if err != nil {
				return internal("prove inclusion", err)
			}
			if idx != results[i].Index {
				return internal("prove inclusion", fmt.Errorf("log placed the entry at %d, then %d", results[i].Index, idx))
			}
			results[i].Receipt = l.cfg.FormatReceipt(results[i].Index, e.Bytes, proof, cp)
			return nil
		})
	}
	return g.Wait()
}

// published returns the newest published checkpoint, or a KindPending
// error before the first is published.
func (l *Ledger) published(ctx context.Context) ([]byte, vlog.Root, error) {
	cp, root, err := l.cfg.Checkpoints.Latest(ctx)
	if errors.Is(err, publish.ErrNotPublished) {
		return nil, vlog.Root{}, errorf(KindPending, "", "no checkpoint is published yet: the log is empty or awaits a quorum of witness cosignatures")
	}
	if err != nil {
		return nil, vlog.Root{}, internal("read the published checkpoint", err)
	}
	return cp, root, nil
}

// uncovered returns the error for an index that the published checkpoint
// of size published does not cover: pending if the log holds the entry
// already, not found otherwise.
func (l *Ledger) uncovered(ctx context.Context, index, published uint64) error {
	root, err := l.cfg.Log.Root(ctx)
	if err != nil {
		return internal("read the log's root", err)
	}
	switch {
	case index < root.Size && published == 0:
		return errorf(KindPending, "index", "entry %d is in the log, but no checkpoint is published yet: it awaits witness cosignatures", index)
	case index < root.Size:
		return errorf(KindPending, "index", "entry %d is in the log, but the latest published checkpoint (tree size %d) does not cover it yet: it awaits witness cosignatures", index, published)
	}
	return errorf(KindNotFound, "index", "no entry at this index (the log holds %d entries)", root.Size)
}

// Entry returns the entry at index.
func (l *Ledger) Entry(ctx context.Context, index uint64) ([]byte, error) {
	leaves, err := l.leaves(ctx, index, 1, "index")
	if err != nil {
		return nil, err
	}
	return leaves[0], nil
}

// leaves reads up to count leaves from start; field names start in the
// not-found error.
func (l *Ledger) leaves(ctx context.Context, start, count uint64, field string) ([][]byte, error) {
	leaves, err := l.cfg.Log.Leaves(ctx, start, count)
	if errors.Is(err, vlog.ErrOutOfRange) || (err == nil && len(leaves) == 0) {
		return nil, errorf(KindNotFound, field, "no entry at this index")
	}
	if err != nil {
		return nil, internal("read entries", err)
	}
	return leaves, nil
}

// MaxEntriesPerRead bounds one Entries call.
const MaxEntriesPerRead = 1000

// Entries returns up to count consecutive leaves (entries and registration
// records) from index start, fewer at the end of the log. A count that is
// not positive means MaxEntriesPerRead; it is capped at MaxEntriesPerRead.
func (l *Ledger) Entries(ctx context.Context, start uint64, count int) ([][]byte, error) {
	if count <= 0 || count > MaxEntriesPerRead {
		count = MaxEntriesPerRead
	}
	return l.leaves(ctx, start, uint64(count), "start")
}

// InclusionProof returns the inclusion proof of the entry at index in the
// tree of size treeSize (0: the latest checkpoint's), with that checkpoint
// when treeSize is its size.
func (l *Ledger) InclusionProof(ctx context.Context, index, treeSize uint64) (InclusionProof, error) {
	cp, root, err := l.published(ctx)
	if err != nil {
		return InclusionProof{}, err
	}
	if treeSize == 0 {
		if index >= root.Size {
			return InclusionProof{}, l.uncovered(ctx, index, root.Size)
		}
		treeSize = root.Size
	}
	if treeSize > root.Size {
		return InclusionProof{}, invalid("tree_size", "larger than the latest published checkpoint's (%d)", root.Size)
	}
	if index >= treeSize {
		return InclusionProof{}, errorf(KindNotFound, "index", "no entry at this index in a tree of size %d", treeSize)
	}
	proof, err := l.cfg.Log.InclusionProof(ctx, index, treeSize)
	if err != nil {
		return InclusionProof{}, internal("prove inclusion", err)
	}
	p := InclusionProof{Index: index, TreeSize: treeSize, Hashes: proof}
	if treeSize == root.Size {
		p.Checkpoint = cp
	}
	return p, nil
}

// Receipt returns the receipt of the entry at index against the latest
// published checkpoint, or a KindPending error while no published
// checkpoint covers it.
func (l *Ledger) Receipt(ctx context.Context, index uint64) ([]byte, error) {
	cp, root, err := l.cfg.Checkpoints.Latest(ctx)
	if errors.Is(err, publish.ErrNotPublished) {
		return nil, l.uncovered(ctx, index, 0)
	}
	if err != nil {
		return nil, internal("read the published checkpoint", err)
	}
	if index >= root.Size {
		return nil, l.uncovered(ctx, index, root.Size)
	}
	entry, err := l.Entry(ctx, index)
	if err != nil {
		return nil, err
	}
	proof, err := l.cfg.Log.InclusionProof(ctx, index, root.Size)
	if err != nil {
		return nil, internal("prove inclusion", err)
	}
	return l.cfg.FormatReceipt(index, entry, proof, cp), nil
}

// Checkpoint returns the latest published checkpoint.
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, error) {
	cp, _, err := l.published(ctx)
	return cp, err
}

// CheckpointHistory returns up to limit published checkpoints of tree
// sizes below beforeSize (0: from the newest), newest first; to page on,
// pass the last size returned. A limit that is not positive means
// publish.DefaultHistoryLimit; it is capped at publish.MaxHistoryLimit.
func (l *Ledger) CheckpointHistory(ctx context.Context, beforeSize uint64, limit int) ([]publish.Checkpoint, error) {
	if limit < 0 {
		return nil, invalid("page_size", "must not be negative")
	}
	cs, err := l.cfg.Checkpoints.History(ctx, beforeSize, limit)
	if err != nil {
		return nil, internal("read the checkpoint history", err)
	}
	return cs, nil
}

// CheckpointAt returns the published checkpoint of tree size size.
func (l *Ledger) CheckpointAt(ctx context.Context, size uint64) (publish.Checkpoint, error) {
	c, err := l.cfg.Checkpoints.At(ctx, size)
	if errors.Is(err, publish.ErrNotFound) {
		return publish.Checkpoint{}, errorf(KindNotFound, "size", "no checkpoint of this tree size was published")
	}
	if err != nil {
		return publish.Checkpoint{}, internal("read the checkpoint history", err)
	}
	return c, nil
}

// ConsistencyProof returns the proof that the tree of size from is a prefix
// of the tree of size to; both at most the latest checkpoint's size.
func (l *Ledger) ConsistencyProof(ctx context.Context, from, to uint64) ([][32]byte, error) {
	_, root, err := l.published(ctx)
	if err != nil {
		return nil, err
	}
	if from == 0 || from > to {
		return nil, invalid("from", "must be between 1 and to")
	}
	if to > root.Size {
		return nil, invalid("to", "larger than the latest published checkpoint's size (%d)", root.Size)
	}
	p, err := l.cfg.Log.ConsistencyProof(ctx, from, to)
	if err != nil {
		return nil, internal("prove consistency", err)
	}
	return p, nil
}

// Run queues again, every ReconcileInterval, accepted entries that are not
// yet integrated (after a crash between recording and queueing, or a
// failed queue), records the indices of those that are, and indexes the
// leaves integrated since (see IndexLog). It returns when ctx is done.
func (l *Ledger) Run(ctx context.Context) error {
	t := time.NewTicker(l.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		if err := l.Reconcile(ctx); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "couldn't reconcile entries with the log", "err", err)
		}
		if _, err := l.IndexLog(ctx); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "couldn't index the log", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Reconcile does one pass of [Ledger.Run].
func (l *Ledger) Reconcile(ctx context.Context) error {
	rows, err := l.cfg.DB.QueryContext(ctx, "SELECT leaf_hash, entry FROM entries WHERE leaf_index IS NULL AND accepted_at < NOW(6) - INTERVAL ? MICROSECOND ORDER BY accepted_at LIMIT 1000",
		l.cfg.ReconcileInterval.Microseconds())
	if err != nil {
		return fmt.Errorf("couldn't list unintegrated entries: %w", err)
	}
	var hashes [][32]byte
	var leaves [][]byte
	for rows.Next() {
		var h, e []byte
		if err := rows.Scan(&h, &e); err != nil {
			rows.Close()
			return fmt.Errorf("couldn't read unintegrated entry: %w", err)
		}
		hashes = append(hashes, [32]byte(h))
		leaves = append(leaves, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't list unintegrated entries: %w", err)
	}
	metricQueueDepth.Set(float64(len(leaves)))
	if len(leaves) == 0 {
		return nil
	}
	if err := l.cfg.Log.Append(ctx, leaves); err != nil {
		return fmt.Errorf("couldn't queue entries again: %w", err)
	}
	root, err := l.cfg.Log.Root(ctx)
	if err != nil {
		return fmt.Errorf("couldn't read log root: %w", err)
	}
	found := 0
	for _, h := range hashes {
		idx, _, err := l.cfg.Log.InclusionByHash(ctx, h, root.Size)
		if errors.Is(err, vlog.ErrNotIntegrated) {
			continue
		}
		if err != nil {
			return fmt.Errorf("couldn't look up entry: %w", err)
		}
		if _, err := l.cfg.DB.ExecContext(ctx, "UPDATE entries SET leaf_index = ? WHERE leaf_hash = ?", idx, h[:]); err != nil {
			return fmt.Errorf("couldn't record entry index: %w", err)
		}
		found++
	}
	l.log.InfoContext(ctx, "reconciled entries with the log", "requeued", len(leaves), "integrated", found)
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func rowPlaceholders(rows, cols int) string {
	row := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(row+",", rows), ",")
}

func inTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	return inTxOpts(ctx, db, nil, f)
}

// readCommitted is the isolation of the entry-recording transaction: it
// locks only the chain rows that exist (no gap locks), so transactions on
// different chains never wait for each other; a race on a new chain ends
// in a duplicate key, and the transaction is retried.
var readCommitted = &sql.TxOptions{Isolation: sql.LevelReadCommitted}

func inTxOpts(ctx context.Context, db *sql.DB, opts *sql.TxOptions, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, opts)
	if err != nil {
		return internal("begin transaction", err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return internal("commit transaction", err)
	}
	return nil
}

func isDuplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// isRetryable reports a deadlock, lock wait timeout or duplicate key from a
// concurrent transaction: the whole transaction can be retried.
func isRetryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205 || me.Number == 1062)
}

func refusalReason(e *Error) string {
	f := e.Field
	if i := strings.LastIndex(f, "."); i >= 0 {
		f = f[i+1:]
	} else if strings.HasPrefix(f, "entries[") {
		f = "entry"
	}
	return f
}
