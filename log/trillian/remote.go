package trillianlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/trillian"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	// DefaultAppendConcurrency is how many QueueLeaf calls a remote log's
	// Append has in flight at once.
	DefaultAppendConcurrency = 16

	// remoteQueueAttempts is how often one QueueLeaf is tried when the
	// server is unavailable or the database deadlocks.
	remoteQueueAttempts = 3
)

// RemoteOptions configure [NewRemote].
type RemoteOptions struct {
	// LogAddr is the gRPC address (host:port) of trillian_log_server.
	// Required.
	LogAddr string
	// AdminAddr is the gRPC address of Trillian's admin API. Default
	// LogAddr (trillian_log_server serves both).
	AdminAddr string
	// TreeID selects the tree by ID. If zero, the tree is found by TreeName.
	TreeID int64
	// TreeName is the display name of the tree to use when TreeID is zero.
	// Default DefaultTreeName.
	TreeName string
	// CreateTree creates and initialises the tree named TreeName if there is
	// none. Without it a missing tree is an error.
	CreateTree bool
	// AppendConcurrency bounds the QueueLeaf calls in flight per Append.
	// Default DefaultAppendConcurrency.
	AppendConcurrency int
	// DialOptions are used to connect; default: no transport security
	// (Trillian on a private network or localhost).
	DialOptions []grpc.DialOption
	// Logger receives the log's messages. Default slog.Default().
	Logger *slog.Logger
}

// NewRemote connects to a Trillian log server and returns the log of the
// tree RemoteOptions selects, creating it if asked to. Sequencing is the job
// of a separately running trillian_log_signer. Call Close when done.
func NewRemote(ctx context.Context, opts RemoteOptions) (*Log, error) {
	if opts.LogAddr == "" {
		return nil, errors.New("couldn't connect to Trillian: no log server address given")
	}
	if opts.AdminAddr == "" {
		opts.AdminAddr = opts.LogAddr
	}
	if opts.TreeName == "" {
		opts.TreeName = DefaultTreeName
	}
	if opts.TreeID == 0 {
		if err := validTreeName(opts.TreeName); err != nil {
			return nil, fmt.Errorf("couldn't connect to Trillian: %w", err)
		}
	}
	if opts.AppendConcurrency <= 0 {
		opts.AppendConcurrency = DefaultAppendConcurrency
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	dial := opts.DialOptions
	if dial == nil {
		dial = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	dial = append(dial, grpc.WithDefaultCallOptions(grpcCallOptions...))
	conn, err := grpc.NewClient(opts.LogAddr, dial...)
	if err != nil {
		return nil, fmt.Errorf("couldn't connect to Trillian log server %s: %w", opts.LogAddr, err)
	}
	adminConn := conn
	if opts.AdminAddr != opts.LogAddr {
		adminConn, err = grpc.NewClient(opts.AdminAddr, dial...)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("couldn't connect to Trillian admin server %s: %w", opts.AdminAddr, err)
		}
	}
	closeConns := func() error {
		err := conn.Close()
		if adminConn != conn {
			err = errors.Join(err, adminConn.Close())
		}
		return err
	}
	logc := trillian.NewTrillianLogClient(conn)
	admin := trillian.NewTrillianAdminClient(adminConn)
	var tree *trillian.Tree
	if opts.TreeID != 0 {
		tree, err = getTree(ctx, admin, logc, opts.TreeID)
	} else {
		tree, err = findTree(ctx, admin, logc, opts.TreeName, opts.CreateTree, opts.Logger)
	}
	if err != nil {
		closeConns()
		return nil, err
	}
	l := newLog(logc, tree, opts.Logger)
	l.closeConns = closeConns
	q := &rpcQueue{client: logc, treeID: tree.GetTreeId(), concurrency: opts.AppendConcurrency}
	l.queue = q.queue
	if _, err := l.Root(ctx); err != nil {
		closeConns()
		return nil, err
	}
	opts.Logger.InfoContext(ctx, "connected to Trillian", "log_addr", opts.LogAddr, "tree_id", tree.GetTreeId())
	return l, nil
}

// rpcQueue queues leaves with one QueueLeaf call each, concurrently.
type rpcQueue struct {
	client      trillian.TrillianLogClient
	treeID      int64
	concurrency int
}

func (q *rpcQueue) queue(ctx context.Context, leaves []*trillian.LogLeaf) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(q.concurrency)
	for i, leaf := range leaves {
		g.Go(func() error {
			return withRetries(ctx, remoteQueueAttempts, func() error {
				resp, err := q.client.QueueLeaf(ctx, &trillian.QueueLeafRequest{LogId: q.treeID, Leaf: leaf})
				if err != nil {
					return fmt.Errorf("leaf %d: %w", i, err)
				}
				if err := checkStatus(resp.GetQueuedLeaf()); err != nil {
					return fmt.Errorf("leaf %d: %w", i, err)
				}
				return nil
			})
		})
	}
	return g.Wait()
}
