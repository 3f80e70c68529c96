package trillianlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/google/trillian"
	"github.com/google/trillian/extension"
	tlog "github.com/google/trillian/log"
	"github.com/google/trillian/quota"
	"github.com/google/trillian/server"
	"github.com/google/trillian/server/admin"
	"github.com/google/trillian/server/interceptor"
	"github.com/google/trillian/storage"
	tmysql "github.com/google/trillian/storage/mysql"
	"github.com/google/trillian/util/clock"
	"github.com/google/trillian/util/election"
	"github.com/google/trillian/util/election2"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"k8s.io/klog/v2"
)

const (
	// DefaultSequencerInterval is the time between two sequencing passes of
	// the embedded sequencer: the upper bound of the integration latency
	// when the queue is short.
	DefaultSequencerInterval = 50 * time.Millisecond
	// DefaultSequencerBatchSize is the most leaves one sequencing pass
	// integrates; at the default interval that is 40,000 leaves/s.
	DefaultSequencerBatchSize = 2000
	// DefaultQueueBatchSize is the most leaves Append queues in one database
	// transaction.
	DefaultQueueBatchSize = 1000
	// DefaultQueueConcurrency is how many of one Append call's transactions
	// run at once.
	DefaultQueueConcurrency = 4
	// DefaultMaxOpenConns bounds the embedded log's database connections.
	DefaultMaxOpenConns = 32

	// queueAttempts is how often a queueing transaction is tried when it
	// deadlocks.
	queueAttempts = 5
)

// EmbeddedOptions configure [NewEmbedded]. The zero value of every field but
// DSN means its documented default.
type EmbeddedOptions struct {
	// DSN is the go-sql-driver/mysql DSN of the database holding the
	// Trillian tables; the database must exist. NewEmbedded turns on
	// interpolateParams (one round trip per statement instead of three).
	DSN string
	// TreeName is the display name of the tree, used to find it again on
	// later starts; at most MaxTreeNameLength bytes. Default DefaultTreeName.
	TreeName string
	// SequencerInterval is the time between sequencing passes. Default
	// DefaultSequencerInterval.
	SequencerInterval time.Duration
	// SequencerBatchSize is the most leaves a pass integrates. Default
	// DefaultSequencerBatchSize.
	SequencerBatchSize int
	// QueueBatchSize is the most leaves Append queues per transaction.
	// Default DefaultQueueBatchSize.
	QueueBatchSize int
	// QueueConcurrency is how many transactions one Append runs at once.
	// Default DefaultQueueConcurrency.
	QueueConcurrency int
	// MaxOpenConns bounds the database connections. Default
	// DefaultMaxOpenConns.
	MaxOpenConns int
	// Logger receives the log's messages and Trillian's (which logs through
	// the process-wide klog, redirected here with its Info level lowered to
	// Debug). Default slog.Default().
	Logger *slog.Logger
}

func (o EmbeddedOptions) withDefaults() EmbeddedOptions {
	if o.TreeName == "" {
		o.TreeName = DefaultTreeName
	}
	if o.SequencerInterval <= 0 {
		o.SequencerInterval = DefaultSequencerInterval
	}
	if o.SequencerBatchSize <= 0 {
		o.SequencerBatchSize = DefaultSequencerBatchSize
	}
	if o.QueueBatchSize <= 0 {
		o.QueueBatchSize = DefaultQueueBatchSize
	}
	if o.QueueConcurrency <= 0 {
		o.QueueConcurrency = DefaultQueueConcurrency
	}
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = DefaultMaxOpenConns
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

func (o EmbeddedOptions) valid() error {
	if o.DSN == "" {
		return errors.New("no DSN given")
	}
	return validTreeName(o.TreeName)
}

// LogValue implements slog.LogValuer, leaving out the DSN's password.
func (o EmbeddedOptions) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("dsn", redactDSN(o.DSN)),
		slog.String("tree_name", o.TreeName),
		slog.Duration("sequencer_interval", o.SequencerInterval),
		slog.Int("sequencer_batch_size", o.SequencerBatchSize),
		slog.Int("queue_batch_size", o.QueueBatchSize),
		slog.Int("queue_concurrency", o.QueueConcurrency),
		slog.Int("max_open_conns", o.MaxOpenConns),
	)
}

func redactDSN(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "(unparsable)"
	}
	if cfg.Passwd != "" {
		cfg.Passwd = "REDACTED"
	}
	return cfg.FormatDSN()
}

// NewEmbedded starts Trillian inside the process on the database of
// opts.DSN and returns the log, creating and initialising its tree on the
// first start, and a shutdown function.
//
// It applies Trillian's schema (idempotently), serves Trillian's log and
// admin gRPC servers on an in-process listener, and runs a sequencer that
// acts as the only one (Trillian's no-op election: never run two processes on
// one tree this way). Append queues leaves through Trillian's storage layer
// directly; reads go through the log server.
//
// Shutdown stops, in order: new Appends (and waits for those in flight,
// which are then durably queued), the sequencer (a pass in progress is one
// database transaction: it commits or rolls back whole), the gRPC server
// (gracefully, until ctx is done), and the database connections. Queued
// leaves that were not integrated are integrated after the next start.
// Call it once, with a context that bounds how long it may take. The ctx
// of NewEmbedded bounds the start only; cancelling it later stops nothing.
func NewEmbedded(ctx context.Context, opts EmbeddedOptions) (*Log, func(context.Context) error, error) {
	opts = opts.withDefaults()
	if err := opts.valid(); err != nil {
		return nil, nil, fmt.Errorf("couldn't start embedded Trillian: %w", err)
	}
	cfg, err := mysql.ParseDSN(opts.DSN)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't start embedded Trillian: couldn't parse DSN: %w", err)
	}
	cfg.InterpolateParams = true
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't open Trillian database: %w", err)
	}
	db.SetMaxOpenConns(opts.MaxOpenConns)
	db.SetMaxIdleConns(opts.MaxOpenConns)
	// From here on, undo what was started if anything fails.
	var cleanups []func()
	fail := func(err error) (*Log, func(context.Context) error, error) {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		return nil, nil, err
	}
	cleanups = append(cleanups, func() { db.Close() })
	if err := db.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("couldn't connect to Trillian database %s: %w", redactDSN(opts.DSN), err))
	}
	if err := ApplySchema(ctx, db); err != nil {
		return fail(err)
	}

	stopping := new(atomic.Bool)
	klog.SetSlogLogger(slog.New(demoteInfo{opts.Logger.Handler(), stopping}).With("component", "trillian"))

	logStorage := tmysql.NewLogStorage(db, nil)
	registry := extension.Registry{
		AdminStorage:    tmysql.NewAdminStorage(db),
		LogStorage:      logStorage,
		QuotaManager:    quota.Noop(),
		ElectionFactory: election2.NoopFactory{},
	}
	ti := interceptor.New(registry.AdminStorage, registry.QuotaManager, false, nil)
	gs := grpc.NewServer(grpc.ChainUnaryInterceptor(interceptor.ErrorWrapper, ti.UnaryInterceptor))
	trillian.RegisterTrillianAdminServer(gs, admin.New(registry, nil))
	trillian.RegisterTrillianLogServer(gs, server.NewTrillianLogRPCServer(registry, clock.System))
	lis := bufconn.Listen(1 << 20)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := gs.Serve(lis); err != nil {
			opts.Logger.Error("embedded Trillian gRPC server stopped", "err", err)
		}
	}()
	cleanups = append(cleanups, func() { gs.Stop(); <-served })

	conn, err := grpc.NewClient("passthrough:///trillian.embedded",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpcCallOptions...))
	if err != nil {
		return fail(fmt.Errorf("couldn't connect to embedded Trillian: %w", err))
	}
	cleanups = append(cleanups, func() { conn.Close() })
	logc := trillian.NewTrillianLogClient(conn)
	tree, err := findTree(ctx, trillian.NewTrillianAdminClient(conn), logc, opts.TreeName, true, opts.Logger)
	if err != nil {
		return fail(err)
	}

	seqCtx, stopSequencer := context.WithCancel(context.WithoutCancel(ctx))
	om := tlog.NewOperationManager(tlog.OperationInfo{
		Registry:    registry,
		BatchSize:   opts.SequencerBatchSize,
		NumWorkers:  1,
		RunInterval: opts.SequencerInterval,
		TimeSource:  clock.System,
		ElectionConfig: election.RunnerConfig{
			PreElectionPause:   election.MinPreElectionPause,
			MasterHoldInterval: 24 * time.Hour, // the no-op election never loses
			TimeSource:         clock.System,
		},
	}, tlog.NewSequencerManager(registry, 0))
	sequenced := make(chan struct{})
	go func() {
		defer close(sequenced)
		om.OperationLoop(seqCtx)
	}()

	l := newLog(logc, tree, opts.Logger)
	q := &storageQueue{storage: logStorage, tree: tree, batch: opts.QueueBatchSize, concurrency: opts.QueueConcurrency}
	l.queue = q.queue
	l.closeConns = conn.Close
	if _, err := l.Root(ctx); err != nil {
		stopSequencer()
		<-sequenced
		return fail(err)
	}
	opts.Logger.InfoContext(ctx, "embedded Trillian started", "tree_id", tree.GetTreeId(), "options", opts)

	var once sync.Once
	var shutdownErr error
	shutdown := func(ctx context.Context) error {
		once.Do(func() {
			// 1. No new appends; wait for those in flight.
			l.closeMu.Lock()
			l.closed = true
			l.closeMu.Unlock()
			// 2. The sequencer. Its election runner complains at ERROR
			// level when cancelled: that is expected now.
			stopping.Store(true)
			stopSequencer()
			select {
			case <-sequenced:
			case <-ctx.Done():
				shutdownErr = fmt.Errorf("couldn't stop the Trillian sequencer: %w", ctx.Err())
			}
			// 3. The gRPC client and server.
			cerr := l.Close()
			stopped := make(chan struct{})
			go func() { gs.GracefulStop(); close(stopped) }()
			select {
			case <-stopped:
			case <-ctx.Done():
				gs.Stop()
				<-stopped
			}
			<-served
			// 4. The database.
			derr := db.Close()
			shutdownErr = errors.Join(shutdownErr, cerr, derr)
			opts.Logger.Info("embedded Trillian stopped", "tree_id", tree.GetTreeId())
		})
		return shutdownErr
	}
	return l, shutdown, nil
}

// storageQueue queues leaves through Trillian's storage layer.
type storageQueue struct {
	storage     storage.LogStorage
	tree        *trillian.Tree
	batch       int
	concurrency int
}

func (q *storageQueue) queue(ctx context.Context, leaves []*trillian.LogLeaf) error {
	if len(leaves) <= q.batch {
		return q.queueBatch(ctx, leaves)
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(q.concurrency)
	for start := 0; start < len(leaves); start += q.batch {
		batch := leaves[start:min(start+q.batch, len(leaves))]
		g.Go(func() error { return q.queueBatch(ctx, batch) })
	}
	return g.Wait()
}

func (q *storageQueue) queueBatch(ctx context.Context, leaves []*trillian.LogLeaf) error {
	return withRetries(ctx, queueAttempts, func() error {
		queued, err := q.storage.QueueLeaves(ctx, q.tree, leaves, time.Now())
		if err != nil {
			return err
		}
		return checkQueued(queued, len(leaves))
	})
}

// demoteInfo lowers Trillian's Info messages (one per sequencing pass) to
// Debug, leaving warnings and errors as they are, except once stopping is
// set, when everything goes to Debug.
type demoteInfo struct {
	slog.Handler
	stopping *atomic.Bool
}

func (h demoteInfo) level(l slog.Level) slog.Level {
	if l == slog.LevelInfo || h.stopping.Load() {
		return slog.LevelDebug
	}
	return l
}

func (h demoteInfo) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, h.level(l))
}

func (h demoteInfo) Handle(ctx context.Context, r slog.Record) error {
	r.Level = h.level(r.Level)
	if !h.Handler.Enabled(ctx, r.Level) { // klog's bridge does not ask first
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h demoteInfo) WithAttrs(attrs []slog.Attr) slog.Handler {
	return demoteInfo{h.Handler.WithAttrs(attrs), h.stopping}
}

func (h demoteInfo) WithGroup(name string) slog.Handler {
	return demoteInfo{h.Handler.WithGroup(name), h.stopping}
}
