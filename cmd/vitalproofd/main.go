// Command vitalproofd runs VitalProof's services: the consortium's ledger
// (with an embedded or remote Trillian log) and a hospital's gateway, both
// by default, or one of them with --serve.
//
// Usage:
//
//	vitalproofd [--config FILE] [--serve gateway,ledger]
//	vitalproofd create-key --config FILE --role submitter|reader|admin --label LABEL
//	vitalproofd log-key [--config FILE]
//
// The configuration file is YAML; deploy/vitalproofd.example.yaml documents
// every setting. create-key adds an API key for the gateway's clients to the
// gateway's database and prints it (it is shown only once). log-key creates
// the log's checkpoint key if it is missing (as the daemon would on first
// start) and prints its verifier key, which the witnesses' trusted-logs
// files and the consortium's policy name: run it before writing the policy.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	gnarklogger "github.com/consensys/gnark/logger"

	"github.com/vitalproof/vitalproof/internal/node"
	"github.com/vitalproof/vitalproof/provenance"
)

func main() {
	// gnark logs its compiler's and prover's chatter to stdout; the audit
	// service reports its own progress through slog and the job's stage.
	gnarklogger.Disable()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case len(os.Args) > 1 && os.Args[1] == "create-key":
		err = createKey(ctx, os.Args[2:])
	case len(os.Args) > 1 && os.Args[1] == "log-key":
		err = logKey(os.Args[2:])
	default:
		err = serve(ctx, os.Args[1:])
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "vitalproofd: %v\n", err)
		os.Exit(1)
	}
}

func loadConfig(path, serve string) (*node.Config, error) {
	cfg := &node.Config{}
	if path != "" {
		c, err := node.LoadConfig(path)
		if err != nil {
			return nil, err
		}
		cfg = c
		// Relative paths in the file are relative to the file.
		dir := filepath.Dir(path)
		rel := func(p *string) {
			if *p != "" && !filepath.IsAbs(*p) {
				*p = filepath.Join(dir, *p)
			}
		}
		if cfg.DataDir == "" {
			cfg.DataDir = "data"
		}
		rel(&cfg.DataDir)
		rel(&cfg.Ledger.KeyFile)
		rel(&cfg.Ledger.AdminKeyFile)
		rel(&cfg.Ledger.RegistryKeyFile)
		rel(&cfg.Ledger.ZKKeysDir)
		rel(&cfg.Ledger.Publish.PolicyFile)
		rel(&cfg.Gateway.HospitalKeyFile)
		rel(&cfg.Gateway.LedgerAPIKeyFile)
		rel(&cfg.Gateway.AdminKeyFile)
		rel(&cfg.Gateway.Audit.KeysDir)
	}
	if serve != "" {
		cfg.Serve = strings.Split(serve, ",")
	}
	if err := cfg.SetDefaults(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("config: log_level: %w", err)
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vitalproofd", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML configuration file (see deploy/vitalproofd.example.yaml); without it, every default applies")
	serveFlag := fs.String("serve", "", "services to run, overriding the file: gateway, ledger or gateway,ledger")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, *serveFlag)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.LogLevel)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	n, err := node.Start(ctx, cfg, logger)
	if err != nil {
		return err
	}
	logger.Info("vitalproofd started", "serve", strings.Join(cfg.Serve, ","))
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
	case err = <-n.Errors():
		logger.Error("server failed; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if cerr := n.Close(sctx); cerr != nil {
		logger.Error("unclean shutdown", "err", cerr)
		if err == nil {
			err = cerr
		}
	}
	return err
}

func createKey(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("vitalproofd create-key", flag.ContinueOnError)
	configPath := fs.String("config", "", "the gateway's YAML configuration file")
	role := fs.String("role", "submitter", "the key's role: submitter (devices, hubs, integration engines), reader, regulator (asks for audits) or admin")
	label := fs.String("label", "", "a label naming the key's holder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *label == "" {
		return errors.New("create-key: --label is required")
	}
	cfg, err := loadConfig(*configPath, "gateway,ledger")
	if err != nil {
		return err
	}
	db, err := node.OpenDB(ctx, cfg.Gateway.DB, provenance.GatewaySchema)
	if err != nil {
		return fmt.Errorf("gateway.db: %w", err)
	}
	defer db.Close()
	key, err := provenance.CreateGatewayAPIKey(ctx, db, *label, provenance.Role(*role))
	if err != nil {
		return err
	}
	fmt.Println(key)
	return nil
}

func logKey(args []string) error {
	fs := flag.NewFlagSet("vitalproofd log-key", flag.ContinueOnError)
	configPath := fs.String("config", "", "the ledger's YAML configuration file (ledger.key_file, ledger.origin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath, "ledger")
	if err != nil {
		return err
	}
	_, vkey, err := node.LogKey(cfg)
	if err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}
