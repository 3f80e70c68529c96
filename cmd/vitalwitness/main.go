// Command vitalwitness is a hospital's witness for the VitalProof log: a
// c2sp.org/tlog-witness server that cosigns the log's checkpoints only if
// they extend the last one it cosigned, with its state in MariaDB/MySQL.
// Package log/witness documents the protocol, the monitoring endpoint and the
// tables.
//
// Usage:
//
//	vitalwitness keygen --name NAME --out FILE
//	vitalwitness serve --listen ADDR --key FILE --logs FILE --db DSN [--log-level LEVEL]
//
// keygen writes a new private key to FILE (mode 0600, refusing to overwrite)
// and its verifier key to FILE.vkey, and prints the verifier key: a
// cosignature/v1 vkey (type 0x04) to publish in the consortium's tlog-policy
// as "witness <id> <vkey> <url>".
//
// serve answers POST /add-checkpoint and GET /<origin hash>/checkpoint at the
// root of ADDR, and GET /metrics (Prometheus). It stops on SIGINT or SIGTERM.
//
// Exit status: 0 on success, 1 on failure, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"filippo.io/torchwood"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/vitalproof/vitalproof/log/witness"
)

func main() {
	os.Exit(runMain())
}

// runMain runs the command line of the process until done or until SIGINT
// or SIGTERM, and returns the exit status.
func runMain() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

const usage = `usage:
  vitalwitness keygen --name NAME --out FILE
  vitalwitness serve --listen ADDR --key FILE --logs FILE --db DSN [--log-level LEVEL]

Run "vitalwitness <command> --help" for the flags of a command.
`

// usageError is bad usage: exit status 2.
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "keygen":
		err = keygen(args[1:], stdout, stderr)
	case "serve":
		err = serve(ctx, args[1:], stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "vitalwitness: unknown command %q\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "vitalwitness %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "vitalwitness %s: %v\n", args[0], err)
		return 1
	}
}

// newFlags returns a flag set whose --help prints synopsis and the flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vitalwitness %s\n\n%s\n\nFlags:\n", name, synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			fmt.Fprintf(stderr, "  --%s\n    \t%s", f.Name, f.Usage)
			if f.DefValue != "" {
				fmt.Fprintf(stderr, " (default %q)", f.DefValue)
			}
			fmt.Fprintln(stderr)
		})
	}
	return fs
}

// parse parses args and checks that the required flags are set.
func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	for _, name := range required {
		if fs.Lookup(name).Value.String() == "" {
			return usageError{fmt.Errorf("--%s is required (see --help)", name)}
		}
	}
	return nil
}

func keygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen --name NAME --out FILE",
		"Creates the witness's private key and prints its verifier key (vkey).", stderr)
	name := fs.String("name", "", "the witness's name, URL-like (e.g. hospital1.example/witness); it appears in its cosignature lines")
	out := fs.String("out", "", "file to write the private key to, created with mode 0600 (never overwritten); the vkey also goes to FILE.vkey")
	if err := parse(fs, args, "name", "out"); err != nil {
		return err
	}
	skey, vkey, err := witness.GenerateKey(*name)
	if err != nil {
		return usageError{fmt.Errorf("--name: %w", err)}
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("key file %s already exists; remove it first if you mean to replace the witness's key", *out)
	}
	if err != nil {
		return fmt.Errorf("couldn't create key file: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("couldn't write key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("couldn't write key file: %w", err)
	}
	if err := os.WriteFile(*out+".vkey", []byte(vkey+"\n"), 0o644); err != nil {
		return fmt.Errorf("couldn't write verifier key file: %w", err)
	}
	fmt.Fprintln(stdout, vkey)
	return nil
}

// serveConfig is the configuration of vitalwitness serve, one field per flag.
type serveConfig struct {
	// Listen is the address of the witness's HTTP API (--listen), served at
	// its root. Terminate TLS in front of it.
	Listen string
	// KeyFile is the private key file that keygen wrote (--key). It must
	// not be accessible by group or others.
	KeyFile string
	// LogsFile lists the logs to cosign for (--logs): tlog-policy
	// "log <vkey> [url]" lines; a whole policy file is accepted.
	LogsFile string
	// DB is the go-sql-driver DSN of the witness's state (--db), e.g.
	// root@tcp(127.0.0.1:3306)/witness1; the database and its tables are
	// created if missing.
	DB string
	// LogLevel is debug, info, warn or error (--log-level).
	LogLevel string
}

// Server timeouts. A tlog-witness request is small and answered at once;
// clients should keep connections alive.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
)

func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := newFlags("serve --listen ADDR --key FILE --logs FILE --db DSN",
		"Runs the witness: POST /add-checkpoint (c2sp.org/tlog-witness), GET /<origin hash>/checkpoint\n"+
			"(the last cosigned checkpoint of a log, origin hash = hex SHA-256 of its origin) and GET /metrics.", stderr)
	var c serveConfig
	fs.StringVar(&c.Listen, "listen", "localhost:7380", "address to serve the witness API on, at its root (host:port)")
	fs.StringVar(&c.KeyFile, "key", "", "the witness's private key file, written by keygen; must be mode 0600 or stricter")
	fs.StringVar(&c.LogsFile, "logs", "", "file of trusted logs: tlog-policy \"log <vkey> [url]\" lines (the log key's name is its origin)")
	fs.StringVar(&c.DB, "db", "", "go-sql-driver DSN of the witness's state, e.g. root@tcp(127.0.0.1:3306)/witness1; created if missing")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := parse(fs, args, "listen", "key", "logs", "db"); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)}
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	signer, err := readKey(c.KeyFile)
	if err != nil {
		return err
	}
	text, err := os.ReadFile(c.LogsFile)
	if err != nil {
		return fmt.Errorf("couldn't read logs file: %w", err)
	}
	logs, err := witness.ParseLogs(text)
	if err != nil {
		return fmt.Errorf("logs file %s: %w", c.LogsFile, err)
	}
	db, err := witness.Open(ctx, c.DB)
	if err != nil {
		return fmt.Errorf("--db: %w", err)
	}
	defer db.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	w, err := witness.New(ctx, witness.Config{Signer: signer, Logs: logs, DB: db, Logger: logger, Registerer: reg})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/", w.Handler())
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("couldn't listen on --listen %s: %w", c.Listen, err)
	}
	origins := make([]string, len(logs))
	for i, l := range logs {
		origins[i] = l.Origin
	}
	logger.Info("witness serving", "addr", ln.Addr().String(), "name", signer.Name(),
		"vkey", w.VerifierKey(), "logs", strings.Join(origins, ","))

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("couldn't serve: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	return g.Wait()
}

// readKey reads the witness's private key file, refusing one that group or
// others may access.
func readKey(path string) (*torchwood.CosignatureSigner, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read key file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("key file %s is accessible by group or others (mode %04o); run chmod 600 %s", path, perm, path)
	}
	skey, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read key file: %w", err)
	}
	s, err := witness.NewSigner(string(skey))
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return s, nil
}
