package provenance

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/commitment"
)

const (
	// DefaultFlushEntries is the most entries the gateway forwards to the
	// ledger in one call.
	DefaultFlushEntries = 256
	// DefaultFlushDelay is how long the gateway waits for more batches
	// before it forwards what it has.
	DefaultFlushDelay = 5 * time.Millisecond
	// DefaultFlushers is the number of concurrent forwarders. A device's
	// batches always go through the same one, in the order they arrived.
	DefaultFlushers = 4
	// DefaultLedgerTimeout bounds one call to the ledger.
	DefaultLedgerTimeout = 30 * time.Second
	// DefaultOutboxInterval is how often pending batches are forwarded again.
	DefaultOutboxInterval = 5 * time.Second
)

// GatewayConfig configures a [Gateway]. HospitalID, HospitalSigner, Ledger
// and DB are required.
type GatewayConfig struct {
	// HospitalID is the hospital this gateway submits for.
	HospitalID string
	// HospitalSigner signs gateway-attested entries; its key name must be HospitalID.
	HospitalSigner note.Signer
	// Ledger is the ledger's API.
	Ledger LedgerClient
	// DB is the hospital's private store, with [GatewaySchema] applied.
	DB *sql.DB
	// APIKeys maps client API keys to their principals, in addition to the
	// keys stored in the database.
	APIKeys map[string]Principal
	// Now defaults to time.Now.
	Now            func() time.Time
	FlushEntries   int
	FlushDelay     time.Duration
	Flushers       int
	LedgerTimeout  time.Duration
	OutboxInterval time.Duration
	Logger         *slog.Logger
}

// Gateway is a hospital's ingest service. It validates batches, keeps their
// readings and salts in the hospital's private store, forwards only the
// signed entries to the ledger, and keeps the receipts.
//
// # Consistency between the two stores
//
// A batch's private row is written, in state pending, before its entry is
// forwarded (an outbox). The ledger is idempotent on the entry, so a
// pending row is simply forwarded again after a crash or an outage until
// the ledger answers: with a receipt (the row becomes logged) or with a
// refusal (the row is deleted). So there is never an entry in the log
// without its private row, and a private row without an entry only while
// it is pending.
type Gateway struct {
	cfg      GatewayConfig
	log      *slog.Logger
	apiKeys  map[[32]byte]Principal
	queues   []chan *submission
	attestMu sync.Mutex
	wg       sync.WaitGroup
	stop     chan struct{}
	stopOnce sync.Once
}

type submission struct {
	entry      *wearables.Entry
	salt       [commitment.Size]byte
	readings   []wearables.Reading
	patientRef string
	// stored is true when the private row is already written.
	stored bool
	done   chan submitOutcome
}

type submitOutcome struct {
	res BatchResult
	err error
}

// NewGateway returns a gateway and starts its forwarders; Close stops them.
func NewGateway(cfg GatewayConfig) (*Gateway, error) {
	if cfg.DB == nil || cfg.Ledger == nil || cfg.HospitalSigner == nil || !wearables.ValidID(cfg.HospitalID) {
		return nil, errors.New("couldn't create gateway: HospitalID, HospitalSigner, Ledger and DB are required")
	}
	if cfg.HospitalSigner.Name() != cfg.HospitalID {
		return nil, fmt.Errorf("couldn't create gateway: hospital key is named %q, want %q", cfg.HospitalSigner.Name(), cfg.HospitalID)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.FlushEntries <= 0 {
		cfg.FlushEntries = DefaultFlushEntries
	}
	if cfg.FlushEntries > MaxEntriesPerSubmit {
		cfg.FlushEntries = MaxEntriesPerSubmit
	}
	if cfg.FlushDelay <= 0 {
		cfg.FlushDelay = DefaultFlushDelay
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = DefaultFlushers
	}
	if cfg.LedgerTimeout <= 0 {
		cfg.LedgerTimeout = DefaultLedgerTimeout
	}
	if cfg.OutboxInterval <= 0 {
		cfg.OutboxInterval = DefaultOutboxInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	g := &Gateway{
		cfg:     cfg,
		log:     cfg.Logger.With("service", "gateway", "hospital", cfg.HospitalID),
		apiKeys: map[[32]byte]Principal{},
		stop:    make(chan struct{}),
	}
	for k, p := range cfg.APIKeys {
		g.apiKeys[HashAPIKey(k)] = p
	}
	for i := 0; i < cfg.Flushers; i++ {
		q := make(chan *submission, cfg.FlushEntries*4)
		g.queues = append(g.queues, q)
		g.wg.Add(1)
		go g.flusher(q)
	}
	return g, nil
}

// Close stops the forwarders after they have answered what they hold.
func (g *Gateway) Close() {
	g.stopOnce.Do(func() { close(g.stop) })
	g.wg.Wait()
}

// Authenticate returns the principal an API key belongs to.
func (g *Gateway) Authenticate(ctx context.Context, apiKey string) (Principal, error) {
	if apiKey == "" {
		return Principal{}, errorf(KindUnauthenticated, "", "missing API key")
	}
	h := HashAPIKey(apiKey)
	if p, ok := g.apiKeys[h]; ok {
		return p, nil
	}
	var p Principal
	err := g.cfg.DB.QueryRowContext(ctx, "SELECT label, role FROM gateway_api_keys WHERE key_hash = ?", h[:]).Scan(&p.ID, &p.Role)
	if errors.Is(err, sql.ErrNoRows) {
		return Principal{}, errorf(KindUnauthenticated, "", "unknown API key")
	}
	if err != nil {
		return Principal{}, internal("look up API key", err)
	}
	return p, nil
}

// CreateGatewayAPIKey stores a new API key for a gateway client, with a
// label and role, in the gateway's database db and returns it; it is shown
// only once.
func CreateGatewayAPIKey(ctx context.Context, db *sql.DB, label string, role Role) (string, error) {
	if !wearables.ValidID(label) {
		return "", invalid("label", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	switch role {
	case RoleSubmitter, RoleReader, RoleRegulator, RoleAdmin:
	default:
		return "", invalid("role", "must be submitter, reader, regulator or admin")
	}
	key, hash, err := NewAPIKey()
	if err != nil {
		return "", internal("create API key", err)
	}
	if _, err := db.ExecContext(ctx, "INSERT INTO gateway_api_keys (key_hash, label, role) VALUES (?, ?, ?)", hash[:], label, role); err != nil {
		return "", internal("store API key", err)
	}
	return key, nil
}

// SubmitBatch validates a device-attested batch, stores it privately and
// forwards its entry to the ledger.
func (g *Gateway) SubmitBatch(ctx context.Context, b BatchSubmission) (BatchResult, error) {
	s, err := g.prepare(b)
	if err != nil {
		g.refused(err)
		return BatchResult{}, err
	}
	return g.submit(ctx, s)
}

func (g *Gateway) prepare(b BatchSubmission) (*submission, error) {
	e, err := wearables.ParseEntry(b.Entry)
	if err != nil {
		return nil, invalid("entry", "%v", err)
	}
	if e.Header.Attestation != wearables.AttestDevice {
		return nil, invalid("entry.attestation", "batches must be device-attested; send readings without a device signature as FHIR Observations")
	}
	if e.Header.Hospital != g.cfg.HospitalID {
		return nil, errorf(KindPermission, "entry.hospital", "entry is for another hospital than this gateway's")
	}
	salt, err := commitment.ParseSalt(b.Salt)
	if err != nil {
		return nil, invalid("salt", "must be the 32-byte canonical encoding of a BN254 field element")
	}
	if len(b.PatientRef) > 200 {
		return nil, invalid("patient_ref", "longer than 200 characters")
	}
	batch := &wearables.Batch{Entry: e, Salt: salt, Readings: b.Readings}
	if err := batch.Validate(g.cfg.Now()); err != nil {
		return nil, invalidErr(err)
	}
	return &submission{entry: e, salt: salt, readings: b.Readings, patientRef: b.PatientRef}, nil
}

// invalidErr turns a validation error of the form "field: reason" into an *Error.
func invalidErr(err error) *Error {
	msg := err.Error()
	if i := strings.Index(msg, ": "); i > 0 && !strings.Contains(msg[:i], " ") {
		return &Error{Kind: KindInvalid, Field: msg[:i], Reason: msg[i+2:]}
	}
	return &Error{Kind: KindInvalid, Reason: msg}
}

func (g *Gateway) refused(err error) {
	var e *Error
	if errors.As(err, &e) && e.Kind != KindInternal {
		metricBatches.WithLabelValues("refused").Inc()
		metricGatewayRefusals.WithLabelValues(refusalReason(e)).Inc()
	}
}

func (g *Gateway) submit(ctx context.Context, s *submission) (BatchResult, error) {
	if err := g.enqueue(ctx, s); err != nil {
		return BatchResult{}, err
	}
	return g.wait(ctx, s)
}

// enqueue hands s to the forwarder of its device: a device's submissions
// are forwarded in the order they were enqueued.
func (g *Gateway) enqueue(ctx context.Context, s *submission) error {
	s.done = make(chan submitOutcome, 1)
	h := fnv.New32a()
	h.Write([]byte(s.entry.Header.DeviceID))
	q := g.queues[int(h.Sum32()%uint32(len(g.queues)))]
	select {
	case q <- s:
		return nil
	case <-ctx.Done():
		return errorf(KindUnavailable, "", "request cancelled")
	case <-g.stop:
		return errorf(KindUnavailable, "", "gateway is shutting down")
	}
}

func (g *Gateway) wait(ctx context.Context, s *submission) (BatchResult, error) {
	select {
	case out := <-s.done:
		if out.err != nil {
			g.refused(out.err)
		}
		return out.res, out.err
	case <-ctx.Done():
		return BatchResult{}, errorf(KindUnavailable, "", "request cancelled; the batch may still be logged: submit it again to learn its receipt")
	}
}

// flusher forwards the submissions of its queue in batches.
func (g *Gateway) flusher(q chan *submission) {
	defer g.wg.Done()
	for {
		var batch []*submission
		select {
		case s := <-q:
			batch = append(batch, s)
		case <-g.stop:
			return
		}
		timer := time.NewTimer(g.cfg.FlushDelay)
	fill:
		for len(batch) < g.cfg.FlushEntries {
			select {
			case s := <-q:
				batch = append(batch, s)
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.LedgerTimeout)
		g.flush(ctx, batch)
		cancel()
	}
}

// flush stores, forwards and answers one batch of submissions.
func (g *Gateway) flush(ctx context.Context, subs []*submission) {
	answer := func(s *submission, res BatchResult, err error) {
		if s.done != nil {
			s.done <- submitOutcome{res, err}
		}
	}
	result := func(s *submission) BatchResult {
		return BatchResult{
			SubmitResult: SubmitResult{LeafHash: s.entry.LeafHash()},
			DeviceID:     s.entry.Header.DeviceID,
			Metric:       s.entry.Header.Metric,
			Attestation:  s.entry.Header.Attestation,
			Readings:     len(s.readings),
		}
	}
	// Batches already logged are answered from the private store.
	known, err := g.lookup(ctx, subs)
	if err != nil {
		for _, s := range subs {
			answer(s, BatchResult{}, err)
		}
		return
	}
	var forward []*submission
	var toStore []*submission
	for _, s := range subs {
		if r, ok := known[s.entry.LeafHash()]; ok && r.state == stateLogged {
			res := result(s)
			res.Index, res.Receipt, res.Duplicate = r.index, r.receipt, true
			metricBatches.WithLabelValues("duplicate").Inc()
			answer(s, res, nil)
			continue
		}
		if _, ok := known[s.entry.LeafHash()]; !ok && !s.stored {
			toStore = append(toStore, s)
		}
		forward = append(forward, s)
	}
	if len(forward) == 0 {
		return
	}
	blocked, err := g.pendingChains(ctx, toStore)
	if err == nil {
		err = g.store(ctx, toStore)
	}
	if err != nil {
		for _, s := range forward {
			answer(s, BatchResult{}, err)
		}
		return
	}
	// A new batch whose chain still has an earlier batch pending waits
	// behind it: the outbox forwards both, in order.
	if len(blocked) > 0 {
		kept := forward[:0]
		for _, s := range forward {
			if !s.stored && blocked[s.entry.Header.ChainKey()] {
				res := result(s)
				res.Pending = true
				metricBatches.WithLabelValues("pending").Inc()
				answer(s, res, nil)
				continue
			}
			kept = append(kept, s)
		}
		forward = kept
		if len(forward) == 0 {
			return
		}
	}
	raw := make([][]byte, len(forward))
	for i, s := range forward {
		raw[i] = s.entry.Bytes
	}
	var results []SubmitResult
	for attempt := 0; ; attempt++ {
		results, err = g.cfg.Ledger.SubmitEntries(ctx, raw)
		if k := KindOf(err); err == nil || attempt == 2 || (k != KindUnavailable && k != KindInternal) || ctx.Err() != nil {
			break
		}
		g.log.DebugContext(ctx, "retrying forward to the ledger", "attempt", attempt+1, "err", err)
		time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
	}
	if err == nil && len(results) != len(forward) {
		err = internal("forward entries", fmt.Errorf("ledger answered %d results for %d entries", len(results), len(forward)))
	}
	if err != nil {
		// Nothing is known of any entry: keep the rows pending for the outbox.
		g.log.WarnContext(ctx, "couldn't forward entries to the ledger; kept pending", "entries", len(forward), "err", err)
		for _, s := range forward {
			res := result(s)
			res.Pending = true
			metricBatches.WithLabelValues("pending").Inc()
			if k := KindOf(err); k != KindUnavailable && k != KindInternal {
				answer(s, BatchResult{}, err)
				continue
			}
			answer(s, res, nil)
		}
		return
	}
	var logged, accepted []*submission
	var loggedRes, acceptedRes []SubmitResult
	var refusedSubs []*submission
	for i, s := range forward {
		r := results[i]
		switch {
		case r.Err != nil:
			refusedSubs = append(refusedSubs, s)
		case r.Pending:
			accepted = append(accepted, s)
			acceptedRes = append(acceptedRes, r)
		default:
			logged = append(logged, s)
			loggedRes = append(loggedRes, r)
		}
	}
	if err := retryOnConflict(ctx, func() error { return g.markLogged(ctx, logged, loggedRes) }); err != nil {
		g.log.WarnContext(ctx, "couldn't record receipts; the outbox will fetch them again", "err", err)
	}
	if err := retryOnConflict(ctx, func() error { return g.markAccepted(ctx, accepted, acceptedRes) }); err != nil {
		g.log.WarnContext(ctx, "couldn't record accepted entries; the outbox will forward them again", "err", err)
	}
	if err := g.remove(ctx, refusedSubs); err != nil {
		g.log.ErrorContext(ctx, "couldn't remove refused batches; the outbox will retry", "err", err)
	}
	for i, s := range forward {
		r := results[i]
		if r.Err != nil {
			answer(s, BatchResult{}, r.Err)
			continue
		}
		res := result(s)
		res.SubmitResult = r
		switch {
		case r.Pending:
			metricBatches.WithLabelValues("pending").Inc()
		case r.Duplicate:
			metricBatches.WithLabelValues("duplicate").Inc()
		default:
			metricBatches.WithLabelValues("logged").Inc()
			metricReadings.Add(float64(len(s.readings)))
		}
		answer(s, res, nil)
	}
}

// pendingChains returns the chains of subs that already have a pending
// batch in the private store.
func (g *Gateway) pendingChains(ctx context.Context, subs []*submission) (map[string]bool, error) {
	if len(subs) == 0 {
		return nil, nil
	}
	var args []any
	for _, s := range subs {
		args = append(args, s.entry.Header.DeviceID)
	}
	rows, err := g.cfg.DB.QueryContext(ctx, "SELECT DISTINCT device_id, metric, attestation FROM batches WHERE state = ? AND device_id IN ("+placeholders(len(args))+")",
		append([]any{statePending}, args...)...)
	if err != nil {
		return nil, internal("look up pending batches", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var d, m, a string
		if err := rows.Scan(&d, &m, &a); err != nil {
			return nil, internal("read pending batches", err)
		}
		out[d+"/"+m+"/"+a] = true
	}
	return out, rows.Err()
}

// States of a batch in the private store.
const (
	// statePending: stored, its entry not yet accepted by the ledger.
	statePending = "pending"
	// stateAccepted: the ledger accepted the entry (so the device's chain
	// moved on there) but no receipt came yet: the entry awaits
	// integration (leaf_index NULL) or a published checkpoint.
	stateAccepted = "accepted"
	// stateLogged: the receipt is stored.
	stateLogged = "logged"
)

type storedBatch struct {
	state   string
	index   uint64
	receipt []byte
}

func (g *Gateway) lookup(ctx context.Context, subs []*submission) (map[[32]byte]storedBatch, error) {
	args := make([]any, len(subs))
	for i, s := range subs {
		h := s.entry.LeafHash()
		args[i] = h[:]
	}
	rows, err := g.cfg.DB.QueryContext(ctx, "SELECT leaf_hash, state, leaf_index, receipt FROM batches WHERE leaf_hash IN ("+placeholders(len(args))+")", args...)
	if err != nil {
		return nil, internal("look up batches", err)
	}
	defer rows.Close()
	out := map[[32]byte]storedBatch{}
	for rows.Next() {
		var h []byte
		var b storedBatch
		var idx sql.NullInt64
		if err := rows.Scan(&h, &b.state, &idx, &b.receipt); err != nil {
			return nil, internal("read batch", err)
		}
		b.index = uint64(idx.Int64)
		out[[32]byte(h)] = b
	}
	if err := rows.Err(); err != nil {
		return nil, internal("read batches", err)
	}
	return out, nil
}

// packReadings encodes readings 8 bytes each: big-endian offset, value.
func packReadings(rs []wearables.Reading) []byte {
	b := make([]byte, 8*len(rs))
	for i, r := range rs {
		binary.BigEndian.PutUint32(b[8*i:], r.Offset)
		binary.BigEndian.PutUint32(b[8*i+4:], r.Value)
	}
	return b
}

// unpackReadings decodes what packReadings encoded.
func unpackReadings(b []byte) ([]wearables.Reading, error) {
	if len(b)%8 != 0 {
		return nil, errors.New("stored readings are corrupt")
	}
	rs := make([]wearables.Reading, len(b)/8)
	for i := range rs {
		rs[i].Offset = binary.BigEndian.Uint32(b[8*i:])
		rs[i].Value = binary.BigEndian.Uint32(b[8*i+4:])
	}
	return rs, nil
}

func storeArgs(s *submission) []any {
	h := s.entry.LeafHash()
	hd := &s.entry.Header
	var patient any
	if s.patientRef != "" {
		patient = s.patientRef
	}
	return []any{h[:], s.entry.Bytes, hd.DeviceID, hd.Metric, hd.WindowStart, hd.WindowEnd, string(hd.Attestation), s.salt[:], packReadings(s.readings), patient, statePending}
}

const insertBatchSQL = "INSERT IGNORE INTO batches (leaf_hash, entry, device_id, metric, window_start, window_end, attestation, salt, readings, patient_ref, state) VALUES "

func (g *Gateway) store(ctx context.Context, subs []*submission) error {
	if len(subs) == 0 {
		return nil
	}
	var args []any
	for _, s := range subs {
		args = append(args, storeArgs(s)...)
	}
	if _, err := g.cfg.DB.ExecContext(ctx, insertBatchSQL+rowPlaceholders(len(subs), 11), args...); err != nil {
		return internal("store batches", err)
	}
	return nil
}

func (g *Gateway) markLogged(ctx context.Context, subs []*submission, res []SubmitResult) error {
	if len(subs) == 0 {
		return nil
	}
	// One statement for the whole batch.
	var idxArgs, rcptArgs, hashes []any
	for i, s := range subs {
		h := s.entry.LeafHash()
		idxArgs = append(idxArgs, h[:], res[i].Index)
		rcptArgs = append(rcptArgs, h[:], res[i].Receipt)
		hashes = append(hashes, h[:])
	}
	when := strings.Repeat(" WHEN ? THEN ?", len(subs))
	q := "UPDATE batches SET state = ?, leaf_index = CASE leaf_hash" + when + " END, receipt = CASE leaf_hash" + when +
		" END WHERE leaf_hash IN (" + placeholders(len(subs)) + ")"
	args := append([]any{stateLogged}, idxArgs...)
	args = append(args, rcptArgs...)
	args = append(args, hashes...)
	if _, err := g.cfg.DB.ExecContext(ctx, q, args...); err != nil {
		return internal("record receipts", err)
	}
	return nil
}

// markAccepted records that the ledger accepted the entries of subs
// without a receipt yet, with their indices where they are integrated.
func (g *Gateway) markAccepted(ctx context.Context, subs []*submission, res []SubmitResult) error {
	if len(subs) == 0 {
		return nil
	}
	var idxArgs, hashes []any
	for i, s := range subs {
		h := s.entry.LeafHash()
		var idx any // NULL until integrated
		if res[i].Integrated {
			idx = res[i].Index
		}
		idxArgs = append(idxArgs, h[:], idx)
		hashes = append(hashes, h[:])
	}
	q := "UPDATE batches SET state = ?, leaf_index = CASE leaf_hash" + strings.Repeat(" WHEN ? THEN ?", len(subs)) +
		" END WHERE state <> ? AND leaf_hash IN (" + placeholders(len(subs)) + ")"
	args := append([]any{stateAccepted}, idxArgs...)
	args = append(args, stateLogged)
	args = append(args, hashes...)
	if _, err := g.cfg.DB.ExecContext(ctx, q, args...); err != nil {
		return internal("record accepted entries", err)
	}
	return nil
}

// remove deletes the private rows of refused entries, and steps back the
// gateway chain of a refused gateway-attested entry.
func (g *Gateway) remove(ctx context.Context, subs []*submission) error {
	if len(subs) == 0 {
		return nil
	}
	return inTx(ctx, g.cfg.DB, func(tx *sql.Tx) error {
		for _, s := range subs {
			h := s.entry.LeafHash()
			if _, err := tx.ExecContext(ctx, "DELETE FROM batches WHERE leaf_hash = ? AND state = ?", h[:], statePending); err != nil {
				return internal("remove refused batch", err)
			}
			hd := &s.entry.Header
			if hd.Attestation == wearables.AttestGateway {
				if _, err := tx.ExecContext(ctx, "UPDATE gateway_chains SET seq = ?, head_hash = ? WHERE chain_key = ? AND head_hash = ?",
					hd.Seq-1, hd.Prev[:], hd.ChainKey(), h[:]); err != nil {
					return internal("step back gateway chain", err)
				}
			}
		}
		return nil
	})
}

// Receipt returns what the gateway knows of the batch whose entry is at index.
func (g *Gateway) Receipt(ctx context.Context, index uint64) (BatchResult, error) {
	var res BatchResult
	var h []byte
	var attestation string
	var readings []byte
	var state string
	err := g.cfg.DB.QueryRowContext(ctx, "SELECT leaf_hash, device_id, metric, attestation, readings, state, receipt FROM batches WHERE leaf_index = ?", index).
		Scan(&h, &res.DeviceID, &res.Metric, &attestation, &readings, &state, &res.Receipt)
	if errors.Is(err, sql.ErrNoRows) {
		return BatchResult{}, errorf(KindNotFound, "index", "no batch of this gateway's has a logged entry at this index")
	}
	if err != nil {
		return BatchResult{}, internal("look up receipt", err)
	}
	if state != stateLogged {
		return BatchResult{}, errorf(KindPending, "index", "the batch's entry is in the log at this index but no published checkpoint covers it yet; ask again later")
	}
	res.LeafHash = [32]byte(h)
	res.Index = index
	res.Attestation = wearables.Attestation(attestation)
	res.Readings = len(readings) / 8
	return res, nil
}

// Run forwards pending batches again every OutboxInterval until ctx is done.
func (g *Gateway) Run(ctx context.Context) error {
	t := time.NewTicker(g.cfg.OutboxInterval)
	defer t.Stop()
	for {
		if err := g.FlushOutbox(ctx); err != nil && ctx.Err() == nil {
			g.log.WarnContext(ctx, "couldn't forward pending batches", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// FlushOutbox does one round of the outbox: it fetches the receipts of
// integrated entries that awaited a published checkpoint, and forwards
// again every batch older than the outbox interval that the ledger has not
// accepted, or accepted without integrating it yet.
func (g *Gateway) FlushOutbox(ctx context.Context) error {
	if err := g.fetchReceipts(ctx); err != nil {
		return err
	}
	stored, err := g.storedBatches(ctx, "SELECT entry, salt, readings, state, leaf_index FROM batches WHERE (state = ? OR (state = ? AND leaf_index IS NULL)) AND created_at < NOW(6) - INTERVAL ? MICROSECOND ORDER BY created_at LIMIT ?",
		statePending, stateAccepted, g.cfg.OutboxInterval.Microseconds(), g.cfg.FlushEntries)
	if err != nil {
		return fmt.Errorf("couldn't list pending batches: %w", err)
	}
	subs := make([]*submission, len(stored))
	for i, b := range stored {
		subs[i] = &submission{entry: b.Entry, salt: b.Salt, readings: b.Readings, stored: true}
	}
	metricOutbox.Set(float64(len(subs)))
	if len(subs) == 0 {
		return nil
	}
	g.log.InfoContext(ctx, "forwarding pending batches", "batches", len(subs))
	g.flush(ctx, subs)
	return nil
}

// fetchReceipts asks the ledger for the receipts of accepted, integrated
// entries, in index order, until one is still pending (no published
// checkpoint covers it, so none covers the later ones either).
func (g *Gateway) fetchReceipts(ctx context.Context) error {
	rows, err := g.cfg.DB.QueryContext(ctx, "SELECT leaf_hash, leaf_index FROM batches WHERE state = ? AND leaf_index IS NOT NULL ORDER BY leaf_index LIMIT ?",
		stateAccepted, g.cfg.FlushEntries)
	if err != nil {
		return fmt.Errorf("couldn't list accepted batches: %w", err)
	}
	type waiting struct {
		hash  []byte
		index uint64
	}
	var ws []waiting
	for rows.Next() {
		var w waiting
		if err := rows.Scan(&w.hash, &w.index); err != nil {
			rows.Close()
			return fmt.Errorf("couldn't read accepted batch: %w", err)
		}
		ws = append(ws, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("couldn't list accepted batches: %w", err)
	}
	fetched := 0
	for _, w := range ws {
		lctx, cancel := context.WithTimeout(ctx, g.cfg.LedgerTimeout)
		rcpt, err := g.cfg.Ledger.Receipt(lctx, w.index)
		cancel()
		if KindOf(err) == KindPending {
			break
		}
		if err != nil {
			return fmt.Errorf("couldn't fetch the receipt of entry %d: %w", w.index, err)
		}
		if _, err := g.cfg.DB.ExecContext(ctx, "UPDATE batches SET state = ?, receipt = ? WHERE leaf_hash = ? AND state = ?",
			stateLogged, rcpt, w.hash, stateAccepted); err != nil {
			return fmt.Errorf("couldn't record the receipt of entry %d: %w", w.index, err)
		}
		fetched++
	}
	if fetched > 0 {
		g.log.InfoContext(ctx, "fetched receipts of entries that awaited a published checkpoint", "receipts", fetched)
	}
	return nil
}

// retryOnConflict runs f again, a few times with a short pause, while it
// fails on a lock conflict (deadlock or lock wait timeout), which
// concurrent flushers updating the same index pages can cause.
func retryOnConflict(ctx context.Context, f func() error) error {
	var err error
	for attempt := 0; attempt < maxRecordAttempts; attempt++ {
		if err = f(); err == nil || !isRetryable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt+1) * 10 * time.Millisecond):
		}
	}
	return err
}
