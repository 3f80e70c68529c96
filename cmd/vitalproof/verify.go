package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/vitalproof/vitalproof/log/quorum"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/wearables"
)

// maxCheckpointFile bounds the signed checkpoint `verify checkpoint` reads.
const maxCheckpointFile = 64 << 10

const verifyUsage = "usage: vitalproof verify receipt --policy FILE RECEIPT...\n" +
	"       vitalproof verify checkpoint --policy FILE [CHECKPOINT_FILE|-]"

// cmdVerify verifies receipts or a checkpoint offline against a tlog-policy.
func cmdVerify(ctx context.Context, args []string) error {
	return runVerify(args, os.Stdin, os.Stdout)
}

// runVerify is cmdVerify reading a checkpoint from stdin and writing to
// stdout.
func runVerify(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New(verifyUsage)}
	}
	switch args[0] {
	case "receipt":
		return verifyReceipts(args[1:], stdout)
	case "checkpoint":
		return verifyCheckpoint(args[1:], stdin, stdout)
	}
	return usageError{errors.New(verifyUsage)}
}

// verifyReceipts prints one line per receipt (unless -q), each failure
// with its reason, which witnesses cosigned each distinct checkpoint, and a
// summary. It fails if any receipt does.
func verifyReceipts(args []string, stdout io.Writer) error {
	fs := newFlags("verify receipt")
	policyFile := fs.String("policy", "", "tlog-policy file naming the log's key, the witnesses and the quorum")
	quiet := fs.Bool("q", false, "print only failures, one line per set of checkpoints cosigned alike, and the summary")
	if err := parse(fs, args, "policy"); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("no receipt given")}
	}
	policy, pol, err := readPolicy(*policyFile)
	if err != nil {
		return err
	}
	failed := 0
	byAttestation := map[wearables.Attestation]int{}
	reports := map[string]*quorum.Report{} // by signed checkpoint
	var distinct []*quorum.Report
	for _, path := range fs.Args() {
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", path, err)
			failed++
			continue
		}
		v, err := receipt.Verify(policy, b)
		if err != nil {
			fmt.Fprintf(stdout, "FAIL %s: %v\n", path, err)
			failed++
			continue
		}
		e, err := wearables.ParseEntry(v.Entry)
		if err != nil {
			fmt.Fprintf(stdout, "FAIL %s: the receipt's entry: %v\n", path, err)
			failed++
			continue
		}
		if _, ok := reports[string(v.Checkpoint)]; !ok {
			// receipt.Verify has checked the checkpoint with torchwood; the
			// report says who cosigned it.
			r, err := pol.Check(v.Checkpoint)
			if err != nil {
				fmt.Fprintf(stdout, "FAIL %s: %v\n", path, err)
				failed++
				continue
			}
			reports[string(v.Checkpoint)] = r
			distinct = append(distinct, r)
			if !*quiet {
				fmt.Fprintf(stdout, "checkpoint %s, tree size %d: %s\n", r.Origin, r.Size, r.Summary())
			}
		}
		h := e.Header
		byAttestation[h.Attestation]++
		if !*quiet {
			fmt.Fprintf(stdout, "OK   %s: index %d in tree %d; device %s, %s, %s to %s, %d readings; attestation %s (signed by %s)\n",
				path, v.Index, v.TreeSize, h.DeviceID, h.Metric,
				time.Unix(h.WindowStart, 0).UTC().Format(time.RFC3339), time.Unix(h.WindowEnd, 0).UTC().Format(time.RFC3339),
				h.Count, h.Attestation, h.Signer())
		}
	}
	if *quiet {
		printCosigned(stdout, distinct)
	}
	ok := len(fs.Args()) - failed
	fmt.Fprintf(stdout, "%d of %d receipts verify against %s (attestation: %d device, %d gateway)\n",
		ok, len(fs.Args()), *policyFile, byAttestation[wearables.AttestDevice], byAttestation[wearables.AttestGateway])
	if failed > 0 {
		return fmt.Errorf("%d receipts failed", failed)
	}
	return nil
}

// printCosigned prints one line per distinct summary of the reports (who
// cosigned, how the quorum was met) with the checkpoints' tree sizes.
func printCosigned(w io.Writer, reports []*quorum.Report) {
	type sizes struct {
		n        int
		min, max uint64
	}
	var order []string
	bySummary := map[string]*sizes{}
	for _, r := range reports {
		s := r.Summary()
		g, ok := bySummary[s]
		if !ok {
			g = &sizes{min: r.Size, max: r.Size}
			bySummary[s] = g
			order = append(order, s)
		}
		g.n++
		g.min, g.max = min(g.min, r.Size), max(g.max, r.Size)
	}
	for _, s := range order {
		g := bySummary[s]
		if g.n == 1 {
			fmt.Fprintf(w, "checkpoint of tree size %d: %s\n", g.min, s)
		} else {
			fmt.Fprintf(w, "%d checkpoints of tree sizes %d to %d: %s\n", g.n, g.min, g.max, s)
		}
	}
}

// verifyCheckpoint prints the report of a signed checkpoint read from a
// file or standard input and fails if it does not satisfy the policy.
func verifyCheckpoint(args []string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("verify checkpoint")
	policyFile := fs.String("policy", "", "tlog-policy file naming the log's key, the witnesses and the quorum")
	if err := parse(fs, args, "policy"); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return usageError{errors.New("give one checkpoint file, or - or nothing for standard input")}
	}
	_, pol, err := readPolicy(*policyFile)
	if err != nil {
		return err
	}
	name, in := "standard input", stdin
	if fs.NArg() == 1 && fs.Arg(0) != "-" {
		f, err := os.Open(fs.Arg(0))
		if err != nil {
			return fmt.Errorf("couldn't read checkpoint: %w", err)
		}
		defer f.Close()
		name, in = fs.Arg(0), f
	}
	b, err := io.ReadAll(io.LimitReader(in, maxCheckpointFile+1))
	if err != nil {
		return fmt.Errorf("couldn't read checkpoint from %s: %w", name, err)
	}
	if len(b) > maxCheckpointFile {
		return fmt.Errorf("%s: checkpoint is larger than %d bytes", name, maxCheckpointFile)
	}
	r, err := pol.Check(b)
	if r != nil {
		fmt.Fprint(stdout, r)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// cmdCheckpoint prints the ledger's latest signed checkpoint.
func cmdCheckpoint(ctx context.Context, args []string) error {
	return fetchCheckpoint(ctx, args, os.Stdout, os.Stderr)
}

// fetchCheckpoint prints the ledger's latest signed checkpoint to stdout.
// With --policy it first verifies it, prints the report to stderr, and
// prints the checkpoint only if it satisfies the policy.
func fetchCheckpoint(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("checkpoint")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	policyFile := fs.String("policy", "", "tlog-policy file: verify the checkpoint, print the report to standard error and the checkpoint only if it satisfies the policy")
	if err := parse(fs, args); err != nil {
		return err
	}
	var pol *quorum.Policy
	if *policyFile != "" {
		var err error
		if _, pol, err = readPolicy(*policyFile); err != nil {
			return err
		}
	}
	c, err := newClient(*ledger, "")
	if err != nil {
		return err
	}
	b, err := c.do(ctx, http.MethodGet, "/api/v1/log/checkpoint.txt", "", nil)
	if err != nil {
		return err
	}
	if pol != nil {
		r, err := pol.Check(b)
		if r != nil {
			fmt.Fprint(stderr, r)
		}
		if err != nil {
			return fmt.Errorf("the ledger's checkpoint: %w", err)
		}
	}
	_, err = stdout.Write(b)
	return err
}

// readPolicy reads and parses a tlog-policy file.
func readPolicy(path string) ([]byte, *quorum.Policy, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("couldn't read policy: %w", err)
	}
	p, err := quorum.ParsePolicy(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, p, nil
}
