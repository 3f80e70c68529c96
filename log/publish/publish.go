// Package publish publishes the log's checkpoints once a quorum of witnesses
// has cosigned them, and keeps every published checkpoint in a history.
//
// # What is published
//
// A published checkpoint is a C2SP tlog-checkpoint (see package
// log/checkpoint) in a signed note whose signature lines are the log's
// Ed25519 signature first, then witness cosignatures (c2sp.org/tlog-cosignature,
// cosignature/v1), one per witness key, sorted by key name:
//
//	vitalproof.example/log
//	923748
//	nND/nri/U0xuHUrYSy0HtMeal2vzD9V4k/BO79C+QeI=
//
//	— vitalproof.example/log Az3grrlC...
//	— hospital1.example/witness 7Rq0ZQAAAABn...
//	— hospital2.example/witness lWq2jQAAAABn...
//
// Its signatures satisfy the consortium's tlog-policy (c2sp.org/tlog-policy)
// as filippo.io/torchwood evaluates it, so anyone holding the policy checks it
// with torchwood.VerifyCheckpoint, and receipts made with it verify with
// receipt.Verify and that policy.
//
// # The policy
//
// The policy text names the log and the witnesses:
//
//	log <log vkey>
//	witness H1 <witness vkey> https://witness.hospital1.example/
//	witness H2 <witness vkey> https://witness.hospital2.example/
//	witness H3 <witness vkey> https://witness.hospital3.example/
//	group hospitals 2 H1 H2 H3
//	quorum hospitals
//
// Groups nest and take a threshold k, "any" or "all". It must have exactly
// one log line, with the key of [Config.Signer]. Each witness line must carry
// the witness's tlog-witness submission prefix URL: the publisher speaks
// plain c2sp.org/tlog-witness v1.0.0 (POST <url>/add-checkpoint) through
// [witness.Client], so any conforming witness can be a member. Witnesses that
// no quorum path refers to are not contacted. With "quorum none" the log's
// signature alone is enough and checkpoints are published as soon as they
// are signed.
//
// # Rounds
//
// [Publisher.Run] reads the log's root every [Config.Interval] (and at once
// after [Publisher.Wake]). When the tree grew beyond the newest checkpoint it
// signed, it checks that the new tree extends that one, signs one checkpoint
// covering everything integrated so far (checkpoints are batched: never one
// per entry) and sends it, in parallel, to every idle witness, each request
// bounded by [Config.WitnessTimeout]. Each request carries a consistency
// proof from the tree size the publisher believes the witness last cosigned
// (seeded from the history at start); a 409 answer gives the witness's real
// size, and the request is retried once with a proof from it. Each returned
// cosignature is verified with the witness's key from the policy before it is
// accepted. As soon as the accepted cosignatures satisfy the policy
// (torchwood decides), the checkpoint is stored in the history and becomes
// what [Publisher.Latest] returns.
//
// A witness still busy with an older checkpoint gets the newest one when it
// answers, so a slow witness never holds up a quorum of fast ones. A failed
// witness is retried with a backoff of Interval, doubling up to 10 times
// Interval. Cosignatures that arrive after publication (late witnesses, or a
// witness that comes back) are merged into the stored checkpoint, and into
// Latest's answer while it is the newest.
//
// Publication fails closed: while no quorum cosigns, nothing is published,
// Latest keeps returning the last published checkpoint, and the log grows
// on; once enough witnesses answer, the next checkpoint published covers
// every entry integrated meanwhile. [Config.FailOpen], for development only,
// publishes a checkpoint without quorum once every witness answered for it or
// WitnessTimeout after it was signed, and logs each such publication at
// Error.
//
// # History
//
// Every published checkpoint is kept in the table of [Schema], keyed by tree
// size, so that a monitor can fetch any two ([Publisher.At],
// [Publisher.History]) and check that one extends the other. One Publisher
// writes a log's history at a time.
//
// # Metrics
//
// Registered with the default Prometheus registry:
// vitalproof_publish_publications_total{quorum="met|none|fail_open"},
// vitalproof_publish_cosignatures_total{witness},
// vitalproof_publish_witness_errors_total{witness,kind},
// vitalproof_publish_published_size and
// vitalproof_publish_latency_seconds (from the publisher first seeing the
// tree grow to the publication covering it). The witness label is the
// witness's name in the policy.
package publish

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/witness"
)

const (
	// DefaultInterval is how often Run reads the log's root when
	// [Config.Interval] is not set: receipts wait up to about this long
	// plus the witnesses' answer time for a cosigned checkpoint.
	DefaultInterval = time.Second
	// DefaultWitnessTimeout bounds one witness exchange (a request and its
	// retry after a 409) when [Config.WitnessTimeout] is not set.
	DefaultWitnessTimeout = 5 * time.Second
	// DefaultUserAgent is the User-Agent of add-checkpoint requests when
	// [Config.Client] is not set.
	DefaultUserAgent = "vitalproof-publisher"

	// maxCandidates bounds the signed, unpublished checkpoints kept
	// waiting for cosignatures; older ones are dropped.
	maxCandidates = 8
	// maxBackoffIntervals bounds a failing witness's retry delay, in
	// intervals.
	maxBackoffIntervals = 10
	// logTimeout bounds the log reads of one round.
	logTimeout = 30 * time.Second
	// seedRows is how many of the newest history rows New reads to learn
	// the tree size each witness last cosigned. A witness absent from them
	// costs one 409 round trip.
	seedRows = 100
)

// ErrNotPublished is returned by [Publisher.Latest] before the first
// checkpoint is published (the log is empty, or no quorum has cosigned
// yet). Callers answer that entries are pending.
var ErrNotPublished = errors.New("no checkpoint is published yet")

// errFatal marks errors after which Run stops: publishing on would sign or
// store something contradicting what was published.
var errFatal = errors.New("fatal")

// Config configures a [Publisher]. Log, Signer, Policy and DB are required;
// the zero value of every other field means its default. [NewConfig] and the
// With methods build one too.
type Config struct {
	// Log is the log whose checkpoints are published.
	Log log.Log
	// Signer signs the checkpoints; its verifier key must be the policy's
	// log key.
	Signer *checkpoint.Signer
	// Policy is the tlog-policy text: the log key, the witnesses with
	// their URLs, groups and the quorum (see the package documentation).
	Policy []byte
	// DB holds the history. New applies [Schema] to it. Its DSN must set
	// parseTime=true.
	DB *sql.DB
	// Interval is how often Run reads the log's root. Zero means
	// DefaultInterval.
	Interval time.Duration
	// WitnessTimeout bounds each witness exchange. Zero means
	// DefaultWitnessTimeout.
	WitnessTimeout time.Duration
	// FailOpen publishes checkpoints without a quorum when the witnesses
	// do not provide one (see the package documentation). For development
	// only: it defeats the purpose of witnesses. Off by default.
	FailOpen bool
	// Client sends add-checkpoint requests. Nil means a witness.Client with
	// the default HTTP client and DefaultUserAgent.
	Client *witness.Client
	// Logger gets the publisher's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// NewConfig returns a Config with the required fields set and every other
// field at its default.
func NewConfig(l log.Log, s *checkpoint.Signer, policy []byte, db *sql.DB) Config {
	return Config{Log: l, Signer: s, Policy: policy, DB: db}.withDefaults()
}

// WithInterval sets how often Run reads the log's root. If never called,
// DefaultInterval.
func (c Config) WithInterval(d time.Duration) Config { c.Interval = d; return c }

// WithWitnessTimeout sets the bound of each witness exchange. If never
// called, DefaultWitnessTimeout.
func (c Config) WithWitnessTimeout(d time.Duration) Config { c.WitnessTimeout = d; return c }

// WithFailOpen makes the publisher publish without quorum when the
// witnesses do not provide one; for development only. If never called, the
// publisher fails closed.
func (c Config) WithFailOpen(failOpen bool) Config { c.FailOpen = failOpen; return c }

// WithClient sets the client of the witnesses. If never called, a
// witness.Client with the default HTTP client and DefaultUserAgent.
func (c Config) WithClient(wc *witness.Client) Config { c.Client = wc; return c }

// WithLogger sets the logger. If never called, slog.Default().
func (c Config) WithLogger(l *slog.Logger) Config { c.Logger = l; return c }

func (c Config) withDefaults() Config {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.WitnessTimeout == 0 {
		c.WitnessTimeout = DefaultWitnessTimeout
	}
	if c.Client == nil {
		c.Client = &witness.Client{UserAgent: DefaultUserAgent}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// valid reports what is missing or incoherent in c, after withDefaults.
func (c Config) valid() error {
	switch {
	case c.Log == nil:
		return errors.New("Config.Log is required")
	case c.Signer == nil:
		return errors.New("Config.Signer is required")
	case len(c.Policy) == 0:
		return errors.New("Config.Policy is required (use \"quorum none\" for a log without witnesses)")
	case c.DB == nil:
		return errors.New("Config.DB is required")
	case c.Interval < 0:
		return errors.New("Config.Interval must not be negative")
	case c.WitnessTimeout < 0:
		return errors.New("Config.WitnessTimeout must not be negative")
	}
	return nil
}

// LogValue implements slog.LogValuer.
func (c Config) LogValue() slog.Value {
	origin := ""
	if c.Signer != nil {
		origin = c.Signer.Origin()
	}
	return slog.GroupValue(
		slog.String("origin", origin),
		slog.Duration("interval", c.Interval),
		slog.Duration("witness_timeout", c.WitnessTimeout),
		slog.Bool("fail_open", c.FailOpen),
	)
}

// A Publisher publishes witnessed checkpoints of a log; see the package
// documentation. Its methods are safe for concurrent use; Run must be called
// once.
type Publisher struct {
	cfg     Config
	log     *slog.Logger
	policy  *policy
	logKey  note.Verifier
	store   *store
	wake    chan struct{}
	results chan result
	running atomic.Bool
	wg      sync.WaitGroup

	// State of the Run goroutine (and of New, before Run).
	witnesses []*witnessState
	// pub is the newest published checkpoint, nil before the first.
	pub *candidate
	// cands are the signed checkpoints awaiting cosignatures, by
	// increasing size, all larger than pub.
	cands []*candidate
	// unpublishedSince is when the first of the checkpoints signed since
	// the last publication was signed; zero if none.
	unpublishedSince time.Time

	mu        sync.Mutex
	latest    Checkpoint    // Note is nil before the first publication
	published chan struct{} // closed and replaced at each publication
}

type witnessState struct {
	spec witnessSpec
	// size is the largest tree size the witness is known to have cosigned.
	size     uint64
	busy     bool
	failures int
	retryAt  time.Time
}

// candidate is a signed checkpoint and the cosignatures collected for it.
type candidate struct {
	root     log.Root
	signed   []byte // signed by the log alone: what witnesses are sent
	signedAt time.Time
	cosigs   map[*witnessState][]byte
	answered map[*witnessState]bool
	// published is set once it is in the history; cosignatures that
	// arrive later are merged into its row.
	published bool
}

// result is the outcome of one witness exchange.
type result struct {
	w       *witnessState
	c       *candidate
	line    []byte // the verified cosignature line, if err is nil
	learned bool   // the witness told its size in a 409
	size    uint64 // that size
	kind    string // metric kind of err
	err     error
}

// New returns a Publisher for c. It checks the policy against the signer,
// applies [Schema] and loads the newest published checkpoint, which Latest
// returns until Run publishes a newer one. Call Run to publish.
func New(ctx context.Context, c Config) (*Publisher, error) {
	c = c.withDefaults()
	if err := c.valid(); err != nil {
		return nil, fmt.Errorf("couldn't create publisher: %w", err)
	}
	pol, err := parsePolicy(c.Policy)
	if err != nil {
		return nil, fmt.Errorf("couldn't create publisher: %w", err)
	}
	logKey := c.Signer.Verifier()
	if len(pol.logs) != 1 {
		return nil, fmt.Errorf("couldn't create publisher: the policy must have exactly one log line, it has %d", len(pol.logs))
	}
	if pol.logs[0].Name() != logKey.Name() || pol.logs[0].KeyHash() != logKey.KeyHash() {
		return nil, fmt.Errorf("couldn't create publisher: the policy's log key is %s+%08x, the signer's is %s", pol.logs[0].Name(), pol.logs[0].KeyHash(), c.Signer.VerifierKey())
	}
	// The policy must find the log's key and accept its signature.
	probe, err := c.Signer.Sign(log.Root{Hash: log.EmptyRoot})
	if err != nil {
		return nil, fmt.Errorf("couldn't create publisher: %w", err)
	}
	if _, err := note.Open(probe, pol.Policy); err != nil {
		return nil, fmt.Errorf("couldn't create publisher: the policy does not accept the log's signature: %w", err)
	}
	p := &Publisher{
		cfg:       c,
		log:       c.Logger.With("origin", c.Signer.Origin()),
		policy:    pol,
		logKey:    logKey,
		store:     &store{db: c.DB},
		wake:      make(chan struct{}, 1),
		published: make(chan struct{}),
	}
	for _, spec := range pol.witnesses {
		_, err := pol.Verifier(spec.verifier.Name(), spec.verifier.KeyHash())
		if _, unknown := err.(*note.UnknownVerifierError); unknown {
			p.log.WarnContext(ctx, "witness is in no quorum path of the policy; not contacting it", "witness", spec.name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("couldn't create publisher: witness %q: %w", spec.name, err)
		}
		p.witnesses = append(p.witnesses, &witnessState{spec: spec})
	}
	p.results = make(chan result, len(p.witnesses))
	if _, err := c.DB.ExecContext(ctx, Schema); err != nil {
		return nil, fmt.Errorf("couldn't create checkpoint history table: %w", err)
	}
	if err := p.load(ctx); err != nil {
		return nil, fmt.Errorf("couldn't create publisher: %w", err)
	}
	if c.FailOpen {
		p.log.ErrorContext(ctx, "FAIL-OPEN: checkpoints will be published without a witness quorum when witnesses do not provide one; never use this in production")
	}
	p.log.InfoContext(ctx, "publisher ready", "config", c, "witnesses", len(p.witnesses), "published_size", p.latest.Size)
	return p, nil
}

// load reads the newest history rows: the newest becomes the published
// checkpoint, and each witness's size is the newest it cosigned among them.
func (p *Publisher) load(ctx context.Context) error {
	rows, err := p.store.page(ctx, 0, seedRows)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	verifiers := []note.Verifier{p.logKey}
	byKey := make(map[[2]any]*witnessState)
	for _, w := range p.witnesses {
		verifiers = append(verifiers, w.spec.verifier)
		byKey[[2]any{w.spec.verifier.Name(), w.spec.verifier.KeyHash()}] = w
	}
	for i, row := range rows {
		root, _, err := checkpoint.Open(row.Note, p.logKey)
		if err != nil {
			return fmt.Errorf("couldn't open published checkpoint %d: %w", row.Size, err)
		}
		if root != row.Tree() {
			return fmt.Errorf("published checkpoint %d does not match its row", row.Size)
		}
		n, err := note.Open(row.Note, note.VerifierList(verifiers...))
		if err != nil {
			return fmt.Errorf("couldn't open published checkpoint %d: %w", row.Size, err)
		}
		var c *candidate
		if i == 0 {
			signed, err := p.cfg.Signer.Sign(root)
			if err != nil {
				return err
			}
			c = &candidate{root: root, signed: signed, published: true,
				cosigs: make(map[*witnessState][]byte), answered: make(map[*witnessState]bool)}
			p.pub = c
			p.latest = row
			publishedSize.Set(float64(row.Size))
		}
		for _, s := range n.Sigs {
			w := byKey[[2]any{s.Name, s.Hash}]
			if w == nil {
				continue
			}
			if c != nil {
				c.cosigs[w] = []byte("— " + s.Name + " " + s.Base64 + "\n")
			}
			if w.size == 0 {
				w.size = row.Size
			}
		}
	}
	return nil
}

// Latest returns the newest published checkpoint, the signed note, and the
// tree it commits to, or [ErrNotPublished]. It has the shape of
// checkpoint.Publisher.Latest, so that the ledger can use it as its
// checkpointer: receipts made with it verify against the policy.
func (p *Publisher) Latest(ctx context.Context) (signed []byte, root log.Root, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latest.Note == nil {
		return nil, log.Root{}, ErrNotPublished
	}
	return bytes.Clone(p.latest.Note), p.latest.Tree(), nil
}

// Await blocks until a published checkpoint covers the tree size size
// (commits to a tree of at least size leaves) and returns it as Latest
// does, or until ctx is done. A caller awaits a size because the log grew
// to it, so Await wakes Run (see Wake) rather than let it wait for its
// next interval.
func (p *Publisher) Await(ctx context.Context, size uint64) ([]byte, log.Root, error) {
	for woken := false; ; woken = true {
		p.mu.Lock()
		if p.latest.Note != nil && p.latest.Size >= size {
			defer p.mu.Unlock()
			return bytes.Clone(p.latest.Note), p.latest.Tree(), nil
		}
		ch := p.published
		p.mu.Unlock()
		if !woken {
			p.Wake()
		}
		select {
		case <-ctx.Done():
			return nil, log.Root{}, fmt.Errorf("couldn't await a checkpoint of tree size %d: %w", size, ctx.Err())
		case <-ch:
		}
	}
}

// Wake makes Run read the log's root now rather than at its next interval,
// for a caller that knows the tree grew. It never blocks; wakes while a
// round is pending coalesce.
func (p *Publisher) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// History returns up to limit published checkpoints of tree sizes below
// beforeSize (0: from the newest), newest first. A limit that is not
// positive means DefaultHistoryLimit; it is capped at MaxHistoryLimit. To
// page, pass the last Size returned as the next beforeSize.
func (p *Publisher) History(ctx context.Context, beforeSize uint64, limit int) ([]Checkpoint, error) {
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	limit = min(limit, MaxHistoryLimit)
	return p.store.page(ctx, beforeSize, limit)
}

// At returns the published checkpoint of tree size size, or an error
// wrapping [ErrNotFound].
func (p *Publisher) At(ctx context.Context, size uint64) (Checkpoint, error) {
	return p.store.at(ctx, size)
}

// Run publishes checkpoints until ctx is done, then waits for its witness
// requests to end and returns nil. It returns early with an error only if
// publishing on would contradict what it published: the log shrank below a
// signed checkpoint, forked (another root for a signed size, or a tree that
// does not extend the last signed one), or the history holds a conflicting
// checkpoint (another publisher on the same table). Other errors (log,
// database or witness failures) are logged and retried. Cancel ctx and wait
// for Run to return before closing the DB.
func (p *Publisher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("publisher is already running")
	}
	defer p.wg.Wait()
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	err := p.tick(ctx)
	for {
		if err != nil {
			if errors.Is(err, errFatal) {
				p.log.ErrorContext(ctx, "publisher stopped", "err", err)
				return err
			}
			if ctx.Err() == nil {
				p.log.WarnContext(ctx, "publication round failed; retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			err = p.tick(ctx)
		case <-p.wake:
			err = p.tick(ctx)
		case r := <-p.results:
			err = p.handle(ctx, r)
		}
	}
}

// newest returns the newest signed checkpoint, published or not, or nil.
func (p *Publisher) newest() *candidate {
	if len(p.cands) > 0 {
		return p.cands[len(p.cands)-1]
	}
	return p.pub
}

// tick reads the log's root, signs a checkpoint if the tree grew, publishes
// what has a quorum and sends the newest checkpoint to idle witnesses.
func (p *Publisher) tick(ctx context.Context) error {
	now := time.Now()
	err := p.observe(ctx, now)
	if err != nil && errors.Is(err, errFatal) {
		return err
	}
	// Retry publications that failed to be stored.
	for i := len(p.cands) - 1; i >= 0; i-- {
		if c := p.cands[i]; p.satisfied(c) {
			if perr := p.publish(ctx, c, p.quorumLabel()); perr != nil {
				return errors.Join(err, perr)
			}
			break
		}
	}
	if ferr := p.maybeFailOpen(ctx, now); ferr != nil {
		err = errors.Join(err, ferr)
	}
	p.dispatch(ctx, now)
	return err
}

// observe reads the log's root and signs a new checkpoint if it grew.
func (p *Publisher) observe(ctx context.Context, now time.Time) error {
	lctx, cancel := context.WithTimeout(ctx, logTimeout)
	defer cancel()
	root, err := p.cfg.Log.Root(lctx)
	if err != nil {
		return fmt.Errorf("couldn't read the log's root: %w", err)
	}
	newest := p.newest()
	switch {
	case newest == nil && root.Size == 0:
		// The empty tree needs no checkpoint: nothing can be proved in it.
		return nil
	case newest == nil:
	case root.Size < newest.root.Size:
		return fmt.Errorf("%w: the log's tree has %d leaves, fewer than the signed checkpoint of size %d", errFatal, root.Size, newest.root.Size)
	case root.Size == newest.root.Size:
		if root.Hash != newest.root.Hash {
			return fmt.Errorf("%w: the log returned root %x for tree size %d, signed with root %x", errFatal, root.Hash, root.Size, newest.root.Hash)
		}
		return nil
	default:
		proof, err := p.cfg.Log.ConsistencyProof(lctx, newest.root.Size, root.Size)
		if err != nil {
			return fmt.Errorf("couldn't prove tree %d extends signed tree %d: %w", root.Size, newest.root.Size, err)
		}
		if err := log.VerifyConsistency(newest.root, root, proof); err != nil {
			return fmt.Errorf("%w: refusing to sign tree %d: %w", errFatal, root.Size, err)
		}
	}
	signed, err := p.cfg.Signer.Sign(root)
	if err != nil {
		return err
	}
	c := &candidate{root: root, signed: signed, signedAt: now,
		cosigs: make(map[*witnessState][]byte), answered: make(map[*witnessState]bool)}
	p.cands = append(p.cands, c)
	if len(p.cands) > maxCandidates {
		p.cands = p.cands[len(p.cands)-maxCandidates:]
	}
	if p.unpublishedSince.IsZero() {
		p.unpublishedSince = now
	}
	p.log.DebugContext(ctx, "signed checkpoint", "size", root.Size)
	if p.satisfied(c) {
		return p.publish(ctx, c, p.quorumLabel())
	}
	return nil
}

// quorumLabel is the metric label of a publication with quorum.
func (p *Publisher) quorumLabel() string {
	if len(p.witnesses) == 0 {
		return "none"
	}
	return "met"
}

// note returns c's signed note with every cosignature collected.
func (p *Publisher) note(c *candidate) ([]byte, error) {
	var lines []byte
	for _, l := range c.cosigs {
		lines = append(lines, l...)
	}
	return mergeNote(c.signed, p.logKey.Name(), p.logKey.KeyHash(), lines)
}

// satisfied reports whether c's signatures satisfy the policy, as torchwood
// evaluates it.
func (p *Publisher) satisfied(c *candidate) bool {
	n, err := p.note(c)
	return err == nil && p.satisfiedNote(n)
}

func (p *Publisher) satisfiedNote(n []byte) bool {
	_, _, err := torchwood.VerifyCheckpoint(n, p.policy.Policy)
	return err == nil
}

// publish stores c in the history and makes it the latest checkpoint.
func (p *Publisher) publish(ctx context.Context, c *candidate, quorum string) error {
	if p.pub != nil && c.root.Size <= p.pub.root.Size {
		return nil
	}
	n, err := p.note(c)
	if err != nil {
		return fmt.Errorf("couldn't assemble checkpoint %d: %w", c.root.Size, err)
	}
	stored, err := p.store.put(ctx, Checkpoint{Size: c.root.Size, Root: c.root.Hash, Note: n, Witnessed: quorum != "fail_open"},
		p.logKey.Name(), p.logKey.KeyHash(), p.satisfiedNote)
	if err != nil {
		if errors.Is(err, errStoredFork) || errors.Is(err, errNewerStored) {
			return fmt.Errorf("%w: %w", errFatal, err)
		}
		return err
	}
	c.published = true
	p.pub = c
	i := 0
	for i < len(p.cands) && p.cands[i].root.Size <= c.root.Size {
		i++
	}
	p.cands = p.cands[i:]
	now := time.Now()
	if !p.unpublishedSince.IsZero() {
		publishLatency.Observe(now.Sub(p.unpublishedSince).Seconds())
	}
	p.unpublishedSince = time.Time{}
	if len(p.cands) > 0 {
		p.unpublishedSince = p.cands[0].signedAt
	}
	publicationsTotal.WithLabelValues(quorum).Inc()
	publishedSize.Set(float64(c.root.Size))
	p.setLatest(stored)
	p.log.InfoContext(ctx, "published checkpoint", "size", c.root.Size, "cosignatures", len(c.cosigs), "quorum", quorum)
	return nil
}

func (p *Publisher) setLatest(c Checkpoint) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.latest.Note != nil && c.Size < p.latest.Size {
		return
	}
	p.latest = c
	close(p.published)
	p.published = make(chan struct{})
}

// maybeFailOpen publishes the newest candidate without quorum if FailOpen
// is set and every witness answered for it or WitnessTimeout passed since it
// was signed.
func (p *Publisher) maybeFailOpen(ctx context.Context, now time.Time) error {
	if !p.cfg.FailOpen || len(p.cands) == 0 {
		return nil
	}
	c := p.cands[len(p.cands)-1]
	if len(c.answered) < len(p.witnesses) && now.Sub(c.signedAt) < p.cfg.WitnessTimeout {
		return nil
	}
	p.log.ErrorContext(ctx, "FAIL-OPEN: publishing a checkpoint WITHOUT a witness quorum", "size", c.root.Size, "cosignatures", len(c.cosigs))
	return p.publish(ctx, c, "fail_open")
}

// dispatch sends the newest checkpoint to each idle witness that has not
// cosigned it and is not backing off.
func (p *Publisher) dispatch(ctx context.Context, now time.Time) {
	c := p.newest()
	if c == nil || ctx.Err() != nil {
		return
	}
	for _, w := range p.witnesses {
		if w.busy || now.Before(w.retryAt) || c.cosigs[w] != nil || c.root.Size < w.size {
			continue
		}
		w.busy = true
		p.wg.Add(1)
		go p.send(ctx, w, c, w.size)
	}
}

// send runs one witness exchange and reports it to Run. results has room
// for one result per witness and a witness has one exchange at a time, so
// it never blocks.
func (p *Publisher) send(ctx context.Context, w *witnessState, c *candidate, old uint64) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, p.cfg.WitnessTimeout)
	defer cancel()
	r := result{w: w, c: c}
	r.line, r.err = p.exchange(ctx, w, c, old, &r)
	p.results <- r
}

// exchange sends c to w with a consistency proof from old and returns the
// verified cosignature line. After a 409 it retries once from the size the
// witness gave, which it records in r.
func (p *Publisher) exchange(ctx context.Context, w *witnessState, c *candidate, old uint64, r *result) ([]byte, error) {
	size := c.root.Size
	for attempt := 0; ; attempt++ {
		if old > size {
			r.kind = "ahead"
			return nil, fmt.Errorf("witness has cosigned tree size %d, larger than checkpoint %d", old, size)
		}
		var proof []log.Hash
		if old > 0 && old < size {
			var err error
			if proof, err = p.cfg.Log.ConsistencyProof(ctx, old, size); err != nil {
				r.kind = "proof"
				return nil, fmt.Errorf("couldn't prove tree %d extends tree %d: %w", size, old, err)
			}
		}
		answer, err := p.cfg.Client.AddCheckpoint(ctx, w.spec.url, old, proof, c.signed)
		var conflict *witness.ConflictError
		if errors.As(err, &conflict) {
			r.learned, r.size = true, conflict.Size
			witnessErrorsTotal.WithLabelValues(w.spec.name, "conflict").Inc()
			switch {
			case conflict.Size > size:
				r.kind = "ahead"
				return nil, fmt.Errorf("witness has cosigned tree size %d, larger than checkpoint %d", conflict.Size, size)
			case attempt == 0:
				old = conflict.Size
				continue
			case conflict.Size == size:
				r.kind = "fork"
				return nil, fmt.Errorf("witness reports another root for tree size %d: %w", size, err)
			default:
				r.kind = "conflict"
				return nil, err
			}
		}
		if err != nil {
			r.kind = errorKind(err)
			return nil, err
		}
		line, err := cosignature(c.signed, answer, p.logKey, w.spec.verifier)
		if err != nil {
			r.kind = "bad_cosignature"
			return nil, fmt.Errorf("couldn't verify the witness's cosignature: %w", err)
		}
		return line, nil
	}
}

func errorKind(err error) string {
	switch {
	case errors.Is(err, witness.ErrUnknownLog):
		return "unknown_log"
	case errors.Is(err, witness.ErrForbidden):
		return "forbidden"
	case errors.Is(err, witness.ErrBadRequest):
		return "bad_request"
	case errors.Is(err, witness.ErrInconsistent):
		return "inconsistent"
	}
	return "unavailable"
}

// handle records the outcome of a witness exchange: the cosignature goes to
// its checkpoint, which is published if that makes the quorum or updated in
// the history if it was published already.
func (p *Publisher) handle(ctx context.Context, r result) error {
	now := time.Now()
	w, c := r.w, r.c
	w.busy = false
	c.answered[w] = true
	if r.learned {
		w.size = r.size
	}
	var err error
	if r.err != nil {
		witnessErrorsTotal.WithLabelValues(w.spec.name, r.kind).Inc()
		w.failures++
		backoff := p.cfg.Interval << min(w.failures-1, 10)
		w.retryAt = now.Add(min(backoff, maxBackoffIntervals*p.cfg.Interval))
		level := slog.LevelWarn
		if r.kind == "fork" || r.kind == "ahead" || r.kind == "inconsistent" || r.kind == "bad_cosignature" {
			level = slog.LevelError
		}
		if ctx.Err() == nil {
			p.log.Log(ctx, level, "witness did not cosign", "witness", w.spec.name, "size", c.root.Size, "kind", r.kind, "failures", w.failures, "err", r.err)
		}
	} else {
		w.failures, w.retryAt = 0, time.Time{}
		w.size = c.root.Size
		c.cosigs[w] = r.line
		cosignaturesTotal.WithLabelValues(w.spec.name).Inc()
		switch {
		case c.published:
			err = p.addLate(ctx, c)
		case p.pub == nil || c.root.Size > p.pub.root.Size:
			if p.satisfied(c) {
				err = p.publish(ctx, c, p.quorumLabel())
			}
		}
	}
	if ferr := p.maybeFailOpen(ctx, now); ferr != nil {
		err = errors.Join(err, ferr)
	}
	p.dispatch(ctx, now)
	return err
}

// addLate merges the cosignatures of the published checkpoint c into its
// history row, and into Latest's answer if c is the newest.
func (p *Publisher) addLate(ctx context.Context, c *candidate) error {
	n, err := p.note(c)
	if err != nil {
		return fmt.Errorf("couldn't assemble checkpoint %d: %w", c.root.Size, err)
	}
	stored, err := p.store.put(ctx, Checkpoint{Size: c.root.Size, Root: c.root.Hash, Note: n, Witnessed: p.satisfiedNote(n)},
		p.logKey.Name(), p.logKey.KeyHash(), p.satisfiedNote)
	if err != nil {
		if errors.Is(err, errStoredFork) {
			return fmt.Errorf("%w: %w", errFatal, err)
		}
		return err
	}
	if c == p.pub {
		p.setLatest(stored)
	}
	p.log.DebugContext(ctx, "added late cosignatures", "size", c.root.Size, "cosignatures", len(c.cosigs))
	return nil
}
