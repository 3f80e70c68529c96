package node

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vitalproof/vitalproof/api"
	vlog "github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/publish"
	"github.com/vitalproof/vitalproof/log/receipt"
	trillianlog "github.com/vitalproof/vitalproof/log/trillian"
	"github.com/vitalproof/vitalproof/provenance"
	"github.com/vitalproof/vitalproof/provenance/audits"
	"github.com/vitalproof/vitalproof/zk/circuit"
)

// Node is a running vitalproofd: its services, listeners and background loops.
type Node struct {
	cfg *Config
	log *slog.Logger

	// Ledger and Gateway are nil when not served.
	Ledger  *provenance.Ledger
	Gateway *provenance.Gateway
	// LogVerifierKey is the log's checkpoint verifier key (vkey), when the ledger runs.
	LogVerifierKey string
	// Policy is the tlog-policy in effect and Publisher publishes the
	// log's checkpoints under it, when the ledger runs.
	Policy    []byte
	Publisher *publish.Publisher
	// Audits runs regulators' audits, when the gateway runs.
	Audits *audits.Service
	// LedgerHTTP, LedgerGRPC, GatewayHTTP and GatewayGRPC are the bound addresses.
	LedgerHTTP, LedgerGRPC, GatewayHTTP, GatewayGRPC string

	closers []func(context.Context) error
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	errs    chan error
}

// Start starts the configured services and returns once they listen. cfg
// must have had SetDefaults called. Close stops everything in reverse order.
func Start(ctx context.Context, cfg *Config, logger *slog.Logger) (_ *Node, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n := &Node{cfg: cfg, log: logger, cancel: cancel, errs: make(chan error, 8)}
	defer func() {
		// n, not the named result, which a failing return sets to nil.
		if err != nil {
			n.Close(context.Background())
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create data dir: %w", err)
	}
	if cfg.Serves("ledger") {
		if err := n.startLedger(ctx, runCtx); err != nil {
			return nil, err
		}
	}
	if cfg.Serves("gateway") {
		if err := n.startGateway(ctx, runCtx); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Errors reports fatal errors of the node's servers.
func (n *Node) Errors() <-chan error { return n.errs }

// Close stops the node: HTTP and gRPC servers first, then the gateway's
// forwarders, the ledger's loops, and last the log and databases.
func (n *Node) Close(ctx context.Context) error {
	n.cancel()
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		if err := n.closers[i](ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.closers = nil
	n.wg.Wait()
	return errors.Join(errs...)
}

func (n *Node) onClose(f func(context.Context) error) { n.closers = append(n.closers, f) }

func (n *Node) goLoop(name string, f func() error) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := f(); err != nil {
			n.log.Error("background loop stopped", "loop", name, "err", err)
		}
	}()
}

// OpenDB opens (creating it if missing) the database of dsn and applies schema.
func OpenDB(ctx context.Context, dsn, schema string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("couldn't parse DSN: %w", err)
	}
	if cfg.DBName == "" {
		return nil, errors.New("couldn't open database: the DSN names no database")
	}
	cfg.MultiStatements = true
	cfg.ParseTime = true
	cfg.InterpolateParams = true
	name := cfg.DBName
	server := *cfg
	server.DBName = ""
	root, err := sql.Open("mysql", server.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("couldn't open database server: %w", err)
	}
	defer root.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := root.PingContext(pctx); err != nil {
		return nil, fmt.Errorf("couldn't reach MariaDB/MySQL at %s (deploy/mariadb.sh starts a local one): %w", cfg.Addr, err)
	}
	if _, err := root.ExecContext(ctx, "CREATE DATABASE IF NOT EXISTS `"+strings.ReplaceAll(name, "`", "")+"`"); err != nil {
		return nil, fmt.Errorf("couldn't create database %s: %w", name, err)
	}
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return nil, fmt.Errorf("couldn't open database %s: %w", name, err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if schema != "" {
		if err := provenance.ApplySchema(ctx, db, schema); err != nil {
			db.Close()
			return nil, fmt.Errorf("database %s: %w", name, err)
		}
	}
	return db, nil
}

// trillianDSN returns dsn with the options Trillian's MySQL storage needs.
func trillianDSN(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("couldn't parse ledger.trillian.db: %w", err)
	}
	cfg.InterpolateParams = true
	return cfg.FormatDSN(), nil
}

func (n *Node) startLedger(ctx, runCtx context.Context) error {
	lc := &n.cfg.Ledger
	var lg vlog.Log
	switch lc.Trillian.Mode {
	case "embedded":
		// Make sure the database exists; the embedded log applies Trillian's schema.
		tdb, err := OpenDB(ctx, lc.Trillian.DB, "")
		if err != nil {
			return fmt.Errorf("ledger.trillian.db: %w", err)
		}
		tdb.Close()
		dsn, err := trillianDSN(lc.Trillian.DB)
		if err != nil {
			return err
		}
		opts := trillianlog.EmbeddedOptions{
			DSN:                dsn,
			TreeName:           lc.Trillian.TreeName,
			SequencerInterval:  lc.Trillian.SequencerInterval,
			SequencerBatchSize: lc.Trillian.SequencerBatch,
			Logger:             n.log,
		}
		l, shutdown, err := trillianlog.NewEmbedded(ctx, opts)
		if err != nil {
			return fmt.Errorf("couldn't start embedded Trillian: %w", err)
		}
		n.onClose(shutdown)
		lg = l
	case "remote":
		l, err := trillianlog.NewRemote(ctx, trillianlog.RemoteOptions{
			LogAddr:    lc.Trillian.LogAddr,
			AdminAddr:  lc.Trillian.AdminAddr,
			TreeName:   lc.Trillian.TreeName,
			CreateTree: true,
			Logger:     n.log,
		})
		if err != nil {
			return fmt.Errorf("couldn't connect to Trillian at %s: %w", lc.Trillian.LogAddr, err)
		}
		n.onClose(func(context.Context) error { return l.Close() })
		lg = l
	}

	db, err := OpenDB(ctx, lc.DB, provenance.LedgerSchema)
	if err != nil {
		return fmt.Errorf("ledger.db: %w", err)
	}
	n.onClose(func(context.Context) error { return db.Close() })

	signer, vkey, err := LogKey(n.cfg)
	if err != nil {
		return err
	}
	n.LogVerifierKey = vkey
	pub, err := n.startPublisher(ctx, runCtx, lg, signer, vkey, db)
	if err != nil {
		return err
	}
	awaiter := vlog.NewAwaiter(runCtx, lg, vlog.DefaultAwaitInterval)
	n.onClose(func(context.Context) error { awaiter.Close(); return nil })

	adminKey, err := loadOrCreateAPIKey(lc.AdminKeyFile)
	if err != nil {
		return fmt.Errorf("ledger.admin_key_file: %w", err)
	}
	registrar, err := loadOrCreateSigner(lc.RegistryKeyFile, lc.Origin+"/registry")
	if err != nil {
		return fmt.Errorf("ledger.registry_key_file: %w", err)
	}
	ledger, err := provenance.NewLedger(provenance.LedgerConfig{
		DB:                 db,
		Log:                lg,
		Checkpoints:        pub,
		Awaiter:            awaiter,
		FormatReceipt:      receipt.Format,
		Registrar:          registrar,
		VerifyingKeysDir:   lc.ZKKeysDir,
		ManufacturerQuorum: lc.ManufacturerQuorum,
		AdminKey:           adminKey,
		IntegrationTimeout: lc.IntegrationTimeout,
		Logger:             n.log,
	})
	if err != nil {
		return err
	}
	n.Ledger = ledger
	n.goLoop("ledger reconciler", func() error { return ledger.Run(runCtx) })

	gs := api.NewGRPCServer(api.WithLogger(n.log))
	api.RegisterLedger(gs, ledger)
	grpcAddr, err := n.serveGRPC(gs, lc.GRPC)
	if err != nil {
		return fmt.Errorf("ledger.grpc: %w", err)
	}
	n.LedgerGRPC = grpcAddr
	h, err := n.httpHandler(runCtx, grpcAddr, api.HTTPOptions{Ledger: true, Policy: n.Policy})
	if err != nil {
		return err
	}
	addr, err := n.serveHTTP(h, lc.HTTP)
	if err != nil {
		return fmt.Errorf("ledger.http: %w", err)
	}
	n.LedgerHTTP = addr
	n.log.Info("ledger serving", "grpc", grpcAddr, "http", addr, "origin", lc.Origin, "trillian", lc.Trillian.Mode)
	return nil
}

// LogKey loads the log's checkpoint key from ledger.key_file, creating it
// on first use, and writes its verifier key (vkey) beside it with the
// extension .vkey. It returns the signer and the vkey, which the
// witnesses and the consortium's policy name.
func LogKey(cfg *Config) (*checkpoint.Signer, string, error) {
	lc := &cfg.Ledger
	if err := os.MkdirAll(filepath.Dir(lc.KeyFile), 0o700); err != nil {
		return nil, "", fmt.Errorf("couldn't create the key's directory: %w", err)
	}
	signer, vkey, err := checkpoint.LoadOrCreateKey(lc.KeyFile, lc.Origin)
	if err != nil {
		return nil, "", fmt.Errorf("ledger.key_file: %w", err)
	}
	if err := os.WriteFile(strings.TrimSuffix(lc.KeyFile, filepath.Ext(lc.KeyFile))+".vkey", []byte(vkey+"\n"), 0o644); err != nil {
		return nil, "", fmt.Errorf("couldn't write the log's verifier key: %w", err)
	}
	return signer, vkey, nil
}

// startAudits starts the gateway's audit service.
func (n *Node) startAudits(ctx, runCtx context.Context, gw *provenance.Gateway, lc provenance.LedgerClient, db *sql.DB) (*audits.Service, error) {
	ac := &n.cfg.Gateway.Audit
	var shapes []circuit.Shape
	for _, str := range ac.Shapes {
		sh, err := circuit.ParseShape(str)
		if err != nil {
			return nil, fmt.Errorf("gateway.audit.shapes: %w", err)
		}
		shapes = append(shapes, sh)
	}
	svc, err := audits.New(ctx, audits.Config{
		Store:          gw,
		Ledger:         lc,
		DB:             db,
		KeysDir:        ac.KeysDir,
		DevKeys:        ac.DevKeys,
		ManualApproval: ac.Approval == "manual",
		Shapes:         shapes,
		Logger:         n.log,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway.audit: %w", err)
	}
	n.Audits = svc
	n.goLoop("gateway audits", func() error { return svc.Run(runCtx) })
	return svc, nil
}

// startPublisher starts the checkpoint publisher with the configured
// policy (or "quorum none"), its history in the ledger's database, and
// writes the policy in effect to <data_dir>/policy.txt.
func (n *Node) startPublisher(ctx, runCtx context.Context, lg vlog.Log, signer *checkpoint.Signer, vkey string, db *sql.DB) (*publish.Publisher, error) {
	pc := &n.cfg.Ledger.Publish
	policy := receipt.Policy(vkey)
	if pc.PolicyFile != "" {
		b, err := os.ReadFile(pc.PolicyFile)
		if err != nil {
			return nil, fmt.Errorf("ledger.publish.policy_file: %w", err)
		}
		policy = b
	}
	pub, err := publish.New(ctx, publish.NewConfig(lg, signer, policy, db).
		WithInterval(pc.Interval).
		WithWitnessTimeout(pc.WitnessTimeout).
		WithFailOpen(pc.FailOpen).
		WithLogger(n.log))
	if err != nil {
		return nil, fmt.Errorf("ledger.publish: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.cfg.DataDir, "policy.txt"), policy, 0o644); err != nil {
		return nil, fmt.Errorf("couldn't write the policy in effect: %w", err)
	}
	n.Policy = policy
	n.Publisher = pub
	done := make(chan struct{})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer close(done)
		if err := pub.Run(runCtx); err != nil {
			n.log.Error("checkpoint publisher stopped", "err", err)
			select {
			case n.errs <- fmt.Errorf("checkpoint publisher: %w", err):
			default:
			}
		}
	}()
	// The history's database closes after Run returns (Close cancels
	// runCtx before it calls the closers).
	n.onClose(func(context.Context) error { <-done; return nil })
	return pub, nil
}

func (n *Node) startGateway(ctx, runCtx context.Context) error {
	gc := &n.cfg.Gateway
	db, err := OpenDB(ctx, gc.DB, provenance.GatewaySchema)
	if err != nil {
		return fmt.Errorf("gateway.db: %w", err)
	}
	n.onClose(func(context.Context) error { return db.Close() })
	signer, err := loadOrCreateSigner(gc.HospitalKeyFile, gc.HospitalID)
	if err != nil {
		return fmt.Errorf("gateway.hospital_key_file: %w", err)
	}
	ledgerAddr := gc.LedgerAddr
	if ledgerAddr == "" {
		ledgerAddr = n.LedgerGRPC // this process's ledger
	}
	conn, err := grpc.NewClient(ledgerAddr, append(api.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return fmt.Errorf("gateway.ledger_addr: %w", err)
	}
	n.onClose(func(context.Context) error { return conn.Close() })
	ledgerClient := &lazyLedgerClient{conn: conn, key: fileKey(gc.LedgerAPIKeyFile)}
	adminKey, err := loadOrCreateAPIKey(gc.AdminKeyFile)
	if err != nil {
		return fmt.Errorf("gateway.admin_key_file: %w", err)
	}
	gw, err := provenance.NewGateway(provenance.GatewayConfig{
		HospitalID:     gc.HospitalID,
		HospitalSigner: signer,
		Ledger:         ledgerClient,
		DB:             db,
		APIKeys:        map[string]provenance.Principal{adminKey: {ID: "gateway-admin", Role: provenance.RoleAdmin}},
		FlushEntries:   gc.FlushEntries,
		FlushDelay:     gc.FlushDelay,
		Flushers:       gc.Flushers,
		OutboxInterval: gc.OutboxInterval,
		Logger:         n.log,
	})
	if err != nil {
		return err
	}
	n.onClose(func(context.Context) error { gw.Close(); return nil })
	n.Gateway = gw
	n.goLoop("gateway outbox", func() error { return gw.Run(runCtx) })

	audit, err := n.startAudits(ctx, runCtx, gw, ledgerClient, db)
	if err != nil {
		return err
	}

	gs := api.NewGRPCServer(api.WithLogger(n.log))
	api.RegisterGateway(gs, gw, audit)
	grpcAddr, err := n.serveGRPC(gs, gc.GRPC)
	if err != nil {
		return fmt.Errorf("gateway.grpc: %w", err)
	}
	n.GatewayGRPC = grpcAddr
	h, err := n.httpHandler(runCtx, grpcAddr, api.HTTPOptions{Gateway: true})
	if err != nil {
		return err
	}
	addr, err := n.serveHTTP(h, gc.HTTP)
	if err != nil {
		return fmt.Errorf("gateway.http: %w", err)
	}
	n.GatewayHTTP = addr
	n.log.Info("gateway serving", "grpc", grpcAddr, "http", addr, "hospital", gc.HospitalID, "ledger", ledgerAddr)
	return nil
}

func (n *Node) serveGRPC(gs *grpc.Server, addr string) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("couldn't listen: %w", err)
	}
	n.goLoop("grpc "+addr, func() error {
		if err := gs.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			n.errs <- err
			return err
		}
		return nil
	})
	n.onClose(func(ctx context.Context) error {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			gs.Stop()
		}
		return nil
	})
	return lis.Addr().String(), nil
}

func (n *Node) httpHandler(ctx context.Context, grpcAddr string, opts api.HTTPOptions) (http.Handler, error) {
	conn, err := grpc.NewClient(grpcAddr, append(api.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return nil, fmt.Errorf("couldn't dial own gRPC server: %w", err)
	}
	n.onClose(func(context.Context) error { return conn.Close() })
	return api.NewHTTPHandler(ctx, conn, opts)
}

func (n *Node) serveHTTP(h http.Handler, addr string) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("couldn't listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	n.goLoop("http "+addr, func() error {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.errs <- err
			return err
		}
		return nil
	})
	n.onClose(func(ctx context.Context) error { return srv.Shutdown(ctx) })
	return lis.Addr().String(), nil
}

// loadOrCreateAPIKey reads an API key from path, or creates one there (mode 0600).
func loadOrCreateAPIKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", fmt.Errorf("%s is empty", path)
		}
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("couldn't read API key: %w", err)
	}
	k, _, err := provenance.NewAPIKey()
	if err != nil {
		return "", err
	}
	if err := writeSecret(path, k+"\n"); err != nil {
		return "", err
	}
	return k, nil
}

// loadOrCreateSigner reads a note signer key from path, or creates one for name.
func loadOrCreateSigner(path, name string) (note.Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, vkey, err := note.GenerateKey(nil, name)
		if err != nil {
			return nil, fmt.Errorf("couldn't generate key: %w", err)
		}
		if err := writeSecret(path, skey+"\n"); err != nil {
			return nil, err
		}
		if err := os.WriteFile(path+".vkey", []byte(vkey+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("couldn't write verifier key: %w", err)
		}
		b = []byte(skey)
	} else if err != nil {
		return nil, fmt.Errorf("couldn't read key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, fmt.Errorf("couldn't parse key %s: %w", path, err)
	}
	if s.Name() != name {
		return nil, fmt.Errorf("key %s is named %q, want %q", path, s.Name(), name)
	}
	return s, nil
}

func writeSecret(path, content string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("couldn't create %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't create %s: %w", path, err)
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	return f.Close()
}

// fileKey returns a function reading an API key from path when first
// needed, and again until it succeeds.
func fileKey(path string) func() (string, error) {
	var mu sync.Mutex
	var key string
	return func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if key != "" {
			return key, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("couldn't read the hospital's ledger API key from %s: %w", path, err)
		}
		key = strings.TrimSpace(string(b))
		return key, nil
	}
}

// lazyLedgerClient builds the gateway's ledger client once the hospital's
// ledger API key can be read, so that a gateway may start before its
// hospital is admitted.
type lazyLedgerClient struct {
	conn *grpc.ClientConn
	key  func() (string, error)
	mu   sync.Mutex
	c    provenance.LedgerClient
}

func (l *lazyLedgerClient) client() (provenance.LedgerClient, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c != nil {
		return l.c, nil
	}
	k, err := l.key()
	if err != nil {
		return nil, &provenance.Error{Kind: provenance.KindUnavailable, Reason: "the gateway has no API key for the ledger yet", Err: err}
	}
	l.c = api.NewLedgerClient(l.conn, k)
	return l.c, nil
}

func (l *lazyLedgerClient) SubmitEntries(ctx context.Context, entries [][]byte) ([]provenance.SubmitResult, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.SubmitEntries(ctx, entries)
}

func (l *lazyLedgerClient) Receipt(ctx context.Context, index uint64) ([]byte, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.Receipt(ctx, index)
}

func (l *lazyLedgerClient) Checkpoint(ctx context.Context) ([]byte, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.Checkpoint(ctx)
}

func (l *lazyLedgerClient) InclusionProof(ctx context.Context, index, treeSize uint64) ([][32]byte, error) {
	c, err := l.client()
	if err != nil {
		return nil, err
	}
	return c.InclusionProof(ctx, index, treeSize)
}

func (l *lazyLedgerClient) Device(ctx context.Context, id string) (provenance.Device, error) {
	c, err := l.client()
	if err != nil {
		return provenance.Device{}, err
	}
	return c.Device(ctx, id)
}
