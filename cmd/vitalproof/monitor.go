package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/vitalproof/vitalproof/provenance/monitor"
	"github.com/vitalproof/vitalproof/wearables"
)

// defaultMonitorInterval is how often `vitalproof monitor` looks for a new
// checkpoint when it follows the log.
const defaultMonitorInterval = 10 * time.Second

// cmdMonitor follows a ledger's log (package provenance/monitor).
func cmdMonitor(ctx context.Context, args []string) error {
	return runMonitor(ctx, args, os.Stdout, os.Stderr)
}

// runMonitor is cmdMonitor writing reports to stdout (and --report), and
// progress and logs to stderr.
func runMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("monitor")
	ledger := fs.String("ledger", "", "ledger REST base URL")
	policyFile := fs.String("policy", "", "tlog-policy file naming the log's key, the witnesses and the quorum each checkpoint must meet (the consortium's, not the ledger's own copy)")
	stateDir := fs.String("state", "", "state directory: the checkpoints kept, the verified tree, what the log said about each device, and evidence of misbehaviour")
	watch := fs.String("watch-manufacturer", "", "comma-separated manufacturer IDs whose devices' registrations, entries and lifecycle events are reported")
	once := fs.Bool("once", false, "catch up on the latest checkpoint and exit: status 0 if all is well, 1 otherwise")
	interval := fs.Duration("interval", defaultMonitorInterval, "how often to look for a new checkpoint when following the log")
	reportFile := fs.String("report", "", "also append the reports to this file")
	if err := parse(fs, args, "ledger", "policy", "state"); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	if *interval <= 0 {
		return usageError{errors.New("--interval must be positive")}
	}
	var makers []string
	for _, id := range strings.Split(*watch, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		if !wearables.ValidID(id) {
			return usageError{fmt.Errorf("--watch-manufacturer: %q is not a manufacturer ID ([a-z0-9][a-z0-9._-]{0,63})", id)}
		}
		makers = append(makers, id)
	}
	l, err := monitor.NewHTTPLedger(*ledger, nil)
	if err != nil {
		return usageError{err}
	}
	policy, _, err := readPolicy(*policyFile)
	if err != nil {
		return err
	}
	out := stdout
	if *reportFile != "" {
		f, err := os.OpenFile(*reportFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("couldn't open report file: %w", err)
		}
		defer f.Close()
		out = io.MultiWriter(stdout, f)
	}
	reports, progress := monitor.ReportWriter(out), monitor.ReportWriter(stderr)
	m, err := monitor.New(monitor.Config{
		Ledger:   l,
		Policy:   policy,
		StateDir: *stateDir,
		Watch:    makers,
		OnReport: func(r monitor.Report) {
			if r.Kind == monitor.KindProgress {
				progress(r)
			} else {
				reports(r)
			}
		},
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return err
	}
	if st := m.Status(); st.HasCheckpoint {
		fmt.Fprintf(stderr, "resuming %s at tree size %d, %d leaves verified\n", st.Origin, st.Checkpoint.Size, st.Leaves)
	}
	if *once {
		return withEvidence(m.Step(ctx))
	}
	return withEvidence(m.Run(ctx, *interval))
}

// withEvidence adds to the error of a misbehaviour the list of its
// evidence files.
func withEvidence(err error) error {
	var ee *monitor.EvidenceError
	if !errors.As(err, &ee) || len(ee.Files) == 0 {
		return err
	}
	return fmt.Errorf("%w\nevidence:\n  %s", err, strings.Join(ee.Files, "\n  "))
}
