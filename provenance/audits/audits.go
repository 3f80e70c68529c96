// Package audits runs regulators' audits at a hospital's gateway: a
// regulator asks for a statement (package zk/statement) about the readings
// of one device and metric over a period; the gateway, once the hospital
// approves (or at once, by configuration), opens its private readings for
// the entries of the period, proves the statement with the Groth16
// circuits of package zk/circuit, gathers inclusion proofs from the ledger
// and returns an offline audit bundle (package zk/audit). Nothing leaves
// the gateway but the bundle, which holds no reading, salt or patient.
//
// # Jobs
//
// Proving takes seconds to minutes, so an audit is a job kept in the
// gateway's database (table audit_jobs, [Schema]) that the caller polls:
//
//	awaiting_approval ──approve──► queued ──► running ──► done (bundle)
//	        │                                    │
//	        └──refuse──► refused                 └──► failed (reason)
//
// A statement that does not hold on the hospital's readings fails with a
// message saying which part is false: the prover never proves a false
// statement. A job that was running when the gateway stopped is queued
// again when it starts. Jobs run one at a time, in the order they were
// queued.
package audits

import (
	"context"
	"crypto/rand"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// Schema is the audit jobs' table, in the gateway's database.
//
//go:embed schema.sql
var Schema string

// State is an audit job's state.
type State string

// States of a job; see the package documentation.
const (
	StateAwaitingApproval State = "awaiting_approval"
	StateQueued           State = "queued"
	StateRunning          State = "running"
	StateDone             State = "done"
	StateFailed           State = "failed"
	StateRefused          State = "refused"
)

// DefaultShapes are the circuit capacities offered when Config.Shapes is
// empty, smallest first: a day of hourly batches of a reading a minute,
// and a month of daily batches of a reading every 30 minutes.
var DefaultShapes = []circuit.Shape{circuit.Day, {Entries: 31, PerEntry: 48}}

// Request is what a regulator asks: a statement's parts and parameters
// over the readings of one device and metric in a period.
type Request struct {
	Kinds  statement.Kind   `json:"-"`
	Parts  string           `json:"parts"`
	Params statement.Params `json:"params"`
	// DeviceID and Metric (a metric code, e.g. "glucose") name the chain.
	DeviceID string `json:"device_id"`
	Metric   string `json:"metric"`
	// PeriodStart and PeriodEnd are Unix seconds, end exclusive.
	PeriodStart int64 `json:"period_start"`
	PeriodEnd   int64 `json:"period_end"`
}

// Job is an audit job.
type Job struct {
	ID string
	// Regulator is the label of the regulator's API key.
	Regulator string
	Request   Request
	State     State
	// Stage says what a running job is doing; Progress is a percentage.
	Stage    string
	Progress int
	// Message is why a job failed or was refused.
	Message string
	// Entries and Readings count what the statement covers; Circuit is the
	// circuit proved with and UnsafeKeys is true when its keys come from a
	// development setup (UNSAFE FOR PRODUCTION). Set once known.
	Entries, Readings int
	Circuit           string
	UnsafeKeys        bool
	// Bundle is the .vpaudit file of a done job.
	Bundle           []byte
	Created, Updated time.Time
}

// Config configures a [Service]. Store, Ledger, DB and KeysDir are
// required.
type Config struct {
	// Store is the gateway's private store (a *provenance.Gateway).
	Store Store
	// Ledger is the ledger's API, for the registration record, a
	// published checkpoint and inclusion proofs.
	Ledger provenance.LedgerClient
	// DB is the gateway's database; New applies Schema to it.
	DB *sql.DB
	// KeysDir is a key cache (package zk/keys) with the audit circuits'
	// compiled constraint systems and keys.
	KeysDir string
	// DevKeys allows a development setup (UNSAFE FOR PRODUCTION: whoever
	// runs it can forge proofs) when KeysDir has no keys for a circuit.
	// Off by default: jobs then fail, naming the circuit whose ceremony
	// keys are missing.
	DevKeys bool
	// ManualApproval makes every job wait for the hospital's decision
	// (Decide) before it runs.
	ManualApproval bool
	// Shapes are the circuit capacities offered; a job uses the smallest
	// that fits. Nil means DefaultShapes.
	Shapes []circuit.Shape
	// Interval is how often Run looks for queued jobs when not woken
	// (default 2s).
	Interval time.Duration
	Logger   *slog.Logger
}

// Store is what an audit needs of the gateway's private store.
type Store interface {
	PeriodBatches(ctx context.Context, deviceID, metric string, start, end int64) (before *provenance.StoredBatch, in []provenance.StoredBatch, after *provenance.StoredBatch, err error)
}

// Service keeps and runs audit jobs.
type Service struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
}

// New returns a Service; call Run to run its jobs.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Ledger == nil || cfg.DB == nil || cfg.KeysDir == "" {
		return nil, errors.New("couldn't create audit service: Store, Ledger, DB and KeysDir are required")
	}
	if cfg.Shapes == nil {
		cfg.Shapes = DefaultShapes
	}
	for _, s := range cfg.Shapes {
		if err := s.Check(); err != nil {
			return nil, fmt.Errorf("couldn't create audit service: shape %v: %w", s, err)
		}
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := provenance.ApplySchema(ctx, cfg.DB, Schema); err != nil {
		return nil, fmt.Errorf("couldn't create audit service: %w", err)
	}
	s := &Service{cfg: cfg, log: cfg.Logger.With("service", "audits"), wake: make(chan struct{}, 1)}
	if cfg.DevKeys {
		s.log.Warn("audits may use development keys: UNSAFE FOR PRODUCTION, whoever runs the setup can forge proofs", "keys_dir", cfg.KeysDir)
	}
	return s, nil
}

func invalid(field, format string, args ...any) *provenance.Error {
	return &provenance.Error{Kind: provenance.KindInvalid, Field: field, Reason: fmt.Sprintf(format, args...)}
}

func internal(what string, err error) *provenance.Error {
	return &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't " + what, Err: err}
}

// check validates a request on its own and fills in Kinds.
func (r *Request) check() error {
	k, err := statement.ParseKind(r.Parts)
	if err != nil {
		return invalid("statement", "%v", err)
	}
	r.Kinds = k
	if !wearables.ValidID(r.DeviceID) {
		return invalid("device_id", "must match [a-z0-9][a-z0-9._-]{0,63}")
	}
	if _, ok := wearables.MetricByCode(r.Metric); !ok {
		return invalid("metric", "unknown metric %q", r.Metric)
	}
	if r.PeriodStart < 0 || r.PeriodEnd <= r.PeriodStart {
		return invalid("period_end", "must be after period_start")
	}
	if r.PeriodEnd-r.PeriodStart > statement.MaxPeriodDays*statement.DayLength {
		return invalid("period_end", "the period is longer than %d days", statement.MaxPeriodDays)
	}
	p := r.Params
	for _, c := range []struct {
		kind  statement.Kind
		field string
		set   bool
	}{
		{statement.Range, "range", p.RangeLo != 0 || p.RangeHi != 0},
		{statement.TimeInRange, "tir", p.TIRLo != 0 || p.TIRHi != 0 || p.TIRPercent != 0},
		{statement.Adherence, "min_days", p.MinDays != 0},
		{statement.MeanBelow, "mean_bound", p.MeanBound != 0},
		{statement.MaxBelow, "max_bound", p.MaxBound != 0},
	} {
		if c.set && k&c.kind == 0 {
			return invalid(c.field, "set, but the statement has no %s part", c.field)
		}
	}
	return nil
}

// Create records a regulator's request as a job: queued, or awaiting the
// hospital's approval when the gateway is configured so.
func (s *Service) Create(ctx context.Context, regulator string, r Request) (Job, error) {
	if err := r.check(); err != nil {
		return Job{}, err
	}
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Job{}, internal("create job ID", err)
	}
	id := hex.EncodeToString(b[:])
	state := StateQueued
	if s.cfg.ManualApproval {
		state = StateAwaitingApproval
	}
	req, err := json.Marshal(r)
	if err != nil {
		return Job{}, internal("encode request", err)
	}
	if _, err := s.cfg.DB.ExecContext(ctx, "INSERT INTO audit_jobs (id, regulator, request, state, stage) VALUES (?, ?, ?, ?, ?)",
		id, regulator, req, state, ""); err != nil {
		return Job{}, internal("store audit job", err)
	}
	s.log.InfoContext(ctx, "audit requested", "job", id, "regulator", regulator, "statement", r.Parts, "device", r.DeviceID, "metric", r.Metric, "state", state)
	s.Wake()
	return s.Job(ctx, id, "")
}

// Job returns a job. A regulator (a non-empty regulator label) sees only
// its own jobs: another's is not found, as an unknown one.
func (s *Service) Job(ctx context.Context, id, regulator string) (Job, error) {
	var j Job
	var req []byte
	var bundle []byte
	var circ sql.NullString
	err := s.cfg.DB.QueryRowContext(ctx, "SELECT id, regulator, request, state, stage, progress, message, entries, readings, circuit, unsafe_keys, bundle, created_at, updated_at FROM audit_jobs WHERE id = ?", id).
		Scan(&j.ID, &j.Regulator, &req, &j.State, &j.Stage, &j.Progress, &j.Message, &j.Entries, &j.Readings, &circ, &j.UnsafeKeys, &bundle, &j.Created, &j.Updated)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && regulator != "" && j.Regulator != regulator) {
		return Job{}, &provenance.Error{Kind: provenance.KindNotFound, Field: "id", Reason: "no such audit"}
	}
	if err != nil {
		return Job{}, internal("read audit job", err)
	}
	if err := json.Unmarshal(req, &j.Request); err != nil {
		return Job{}, internal("decode audit request", err)
	}
	j.Request.Kinds, _ = statement.ParseKind(j.Request.Parts)
	j.Circuit = circ.String
	j.Bundle = bundle
	return j, nil
}

// Decide approves or refuses a job awaiting the hospital's approval.
func (s *Service) Decide(ctx context.Context, id string, approve bool, reason string) (Job, error) {
	state, msg := StateQueued, ""
	if !approve {
		state, msg = StateRefused, "refused by the hospital"
		if reason = strings.TrimSpace(reason); reason != "" {
			if len(reason) > 500 {
				return Job{}, invalid("reason", "longer than 500 bytes")
			}
			msg += ": " + reason
		}
	}
	res, err := s.cfg.DB.ExecContext(ctx, "UPDATE audit_jobs SET state = ?, message = ? WHERE id = ? AND state = ?", state, msg, id, StateAwaitingApproval)
	if err != nil {
		return Job{}, internal("decide audit job", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		j, err := s.Job(ctx, id, "")
		if err != nil {
			return Job{}, err
		}
		return Job{}, &provenance.Error{Kind: provenance.KindConflict, Field: "id", Reason: fmt.Sprintf("the audit is %s, not awaiting approval", j.State)}
	}
	s.log.InfoContext(ctx, "audit decided", "job", id, "approved", approve)
	s.Wake()
	return s.Job(ctx, id, "")
}

// Wake makes Run look for queued jobs now.
func (s *Service) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run runs queued jobs, one at a time, until ctx is done. Jobs left running
// by a previous process are queued again first.
func (s *Service) Run(ctx context.Context) error {
	if _, err := s.cfg.DB.ExecContext(ctx, "UPDATE audit_jobs SET state = ?, stage = ?, progress = 0 WHERE state = ?", StateQueued, "queued again after a restart", StateRunning); err != nil {
		return fmt.Errorf("couldn't requeue interrupted audits: %w", err)
	}
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		for {
			ran, err := s.runNext(ctx)
			if err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "couldn't run audit", "err", err)
			}
			if !ran || ctx.Err() != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// runNext claims the oldest queued job and runs it.
func (s *Service) runNext(ctx context.Context) (bool, error) {
	var id string
	err := s.cfg.DB.QueryRowContext(ctx, "SELECT id FROM audit_jobs WHERE state = ? ORDER BY created_at LIMIT 1", StateQueued).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("couldn't look for queued audits: %w", err)
	}
	res, err := s.cfg.DB.ExecContext(ctx, "UPDATE audit_jobs SET state = ?, stage = ?, progress = 0 WHERE id = ? AND state = ?", StateRunning, "starting", id, StateQueued)
	if err != nil {
		return false, fmt.Errorf("couldn't claim audit: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return true, nil // another runner took it
	}
	j, err := s.Job(ctx, id, "")
	if err != nil {
		return true, err
	}
	start := time.Now()
	s.log.InfoContext(ctx, "audit started", "job", id)
	bundle, err := s.run(ctx, &j)
	if ctx.Err() != nil {
		return true, nil // queued again on the next start
	}
	if err != nil {
		s.log.InfoContext(ctx, "audit failed", "job", id, "reason", failureMessage(err), "took", time.Since(start))
		return true, s.finish(context.WithoutCancel(ctx), id, StateFailed, failureMessage(err), nil)
	}
	s.log.InfoContext(ctx, "audit done", "job", id, "entries", j.Entries, "circuit", j.Circuit, "unsafe_keys", j.UnsafeKeys, "took", time.Since(start))
	return true, s.finish(context.WithoutCancel(ctx), id, StateDone, "", bundle)
}

// failureMessage is what the regulator reads of a failure: the reason of a
// provenance.Error, never an internal error's detail.
func failureMessage(err error) string {
	var e *provenance.Error
	if errors.As(err, &e) {
		return e.ClientMessage()
	}
	return "internal error"
}

func (s *Service) finish(ctx context.Context, id string, state State, msg string, bundle []byte) error {
	stage, progress := "", 0
	if state == StateDone {
		stage, progress = "done", 100
	}
	if _, err := s.cfg.DB.ExecContext(ctx, "UPDATE audit_jobs SET state = ?, stage = ?, progress = ?, message = ?, bundle = ? WHERE id = ?",
		state, stage, progress, msg, bundle, id); err != nil {
		return fmt.Errorf("couldn't record the audit's outcome: %w", err)
	}
	return nil
}

// progress records a running job's stage.
func (s *Service) progress(ctx context.Context, j *Job, percent int, stage string) {
	j.Stage, j.Progress = stage, percent
	if _, err := s.cfg.DB.ExecContext(ctx, "UPDATE audit_jobs SET stage = ?, progress = ?, entries = ?, readings = ?, circuit = ?, unsafe_keys = ? WHERE id = ?",
		stage, percent, j.Entries, j.Readings, nullString(j.Circuit), j.UnsafeKeys, j.ID); err != nil {
		s.log.WarnContext(ctx, "couldn't record audit progress", "job", j.ID, "err", err)
	}
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
