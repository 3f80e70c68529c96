// Command vitalproof is VitalProof's command-line client: keys, hospital and
// device registration, a simulated wearable, submissions, receipts and
// their offline verification, audits (asked, decided, verified offline) and
// the keys' ceremony.
//
// Usage:
//
//	vitalproof keygen --name NAME --out FILE
//	vitalproof policy --log-vkey-file FILE
//	vitalproof hospital register --ledger URL --admin-key-file F --id ID --name NAME --vkey-file F [--api-key-out F]
//	vitalproof device register --ledger URL --admin-key-file F --id ID --manufacturer M --udi UDI --model M --firmware V --vkey-file F --hospital ID
//	vitalproof simulate --gateway URL --api-key-file F --device-key F --hospital ID [--start T] [--hours N] [--metrics LIST] [--receipts DIR] [--wait D] [--firmware VERSION] [--skip-days LIST]
//	vitalproof submit --gateway URL --api-key-file F (--batch FILE | --fhir FILE)
//	vitalproof receipt --ledger URL --index N [--out FILE] [--wait D]
//	vitalproof checkpoint --ledger URL [--policy FILE]
//	vitalproof verify receipt --policy FILE RECEIPT...
//	vitalproof verify checkpoint --policy FILE [CHECKPOINT_FILE|-]
//	vitalproof monitor --ledger URL --policy FILE --state DIR [--watch-manufacturer ID,...] [--once] [--interval 10s] [--report FILE]
//	vitalproof device event --ledger URL --api-key-file F --key F --id ID --kind KIND [--at T] [--hospital H] [--firmware V (--image F | --digest HEX)] [--reason R]
//	vitalproof device history --ledger URL --api-key-file F --id ID --policy FILE [--order oldest|newest] [--out FILE]
//	vitalproof index check --ledger URL --admin-key-file F [--repair]
//	vitalproof manufacturer propose --ledger URL --admin-key-file F --id ID --name NAME --vkey-file F [--api-key-out F]
//	vitalproof manufacturer approve --ledger URL --api-key-file F --hospital-key F --id ID [--suspend]
//	vitalproof manufacturer show --ledger URL --api-key-file F --id ID
//	vitalproof audit request --gateway URL --api-key-file F --statement PARTS --device ID --metric CODE --from T --to T [--range LO:HI] [--tir LO:HI:PCT] [--min-days N] [--mean-below B] [--max-below B] [--out FILE | --detach]
//	vitalproof audit fetch --gateway URL --api-key-file F --id JOB [--out FILE]
//	vitalproof audit decide --gateway URL --api-key-file F --id JOB (--approve | --refuse REASON)
//	vitalproof audit keys --ledger URL --out DIR
//	vitalproof audit verify --policy FILE --keys DIR [--registrar-vkey FILE] [-q] BUNDLE...
//	vitalproof wait --url URL [--timeout D]
//	vitalproof ceremony (circuits | phase1 contribute | phase1 seal | phase2 contribute | finish) ...
//
// Exit status: 0 on success, 1 when a check or request fails, 2 on bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	gnarklogger "github.com/consensys/gnark/logger"
)

type command struct {
	name, usage string
	run         func(ctx context.Context, args []string) error
}

var commands = []command{
	{"keygen", "keygen --name NAME --out FILE: create an Ed25519 signing key (device or hospital)", cmdKeygen},
	{"policy", "policy --log-vkey-file FILE: print a tlog-policy for the log", cmdPolicy},
	{"hospital", "hospital register ...: admit a hospital (operator)", cmdHospital},
	{"device", "device (register|event|history) ...: register a device; record a lifecycle event; page through its history, each leaf verified against a cosigned checkpoint", cmdDevice},
	{"simulate", "simulate ...: a simulated wearable submits a day of signed batches", cmdSimulate},
	{"submit", "submit (--batch FILE | --fhir FILE): submit a native JSON batch or FHIR R4 resource", cmdSubmit},
	{"receipt", "receipt --ledger URL --index N: fetch an entry's receipt", cmdReceipt},
	{"checkpoint", "checkpoint --ledger URL [--policy FILE]: print the log's latest signed checkpoint, verified against the policy if given", cmdCheckpoint},
	{"verify", "verify (receipt --policy FILE RECEIPT... | checkpoint --policy FILE [CHECKPOINT_FILE|-]): verify receipts or a checkpoint offline", cmdVerify},
	{"monitor", "monitor --ledger URL --policy FILE --state DIR [--watch-manufacturer ID,...] [--once]: follow the log, verify it and report in plain words", cmdMonitor},
	{"index", "index check --ledger URL --admin-key-file F [--repair]: rebuild the ledger's leaf index from the log and report differences", cmdIndex},
	{"manufacturer", "manufacturer (propose|approve|show) ...: propose a manufacturer to the consortium; a hospital's signed vote to admit or suspend it; its status", cmdManufacturer},
	{"audit", "audit (verify|request|fetch|decide|keys) ...: verify audit bundles (.vpaudit) offline; ask a gateway for an audit and fetch its bundle; approve or refuse one; fetch verifying keys", cmdAudit},
	{"wait", "wait --url URL: wait until a server answers its health check", cmdWait},
	{"ceremony", "ceremony (circuits | phase1 contribute | phase1 seal | phase2 contribute | finish) ...: the multi-party setup of production audit keys", cmdCeremony},
}

// usageError marks bad usage (exit status 2).
type usageError struct{ error }

func main() {
	// gnark logs its verifier's and prover's chatter to stdout; the
	// commands print what matters themselves.
	gnarklogger.Disable()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			err := c.run(ctx, os.Args[2:])
			var ue usageError
			switch {
			case err == nil:
				return
			case errors.Is(err, flag.ErrHelp):
				os.Exit(0)
			case errors.As(err, &ue):
				fmt.Fprintf(os.Stderr, "vitalproof %s: %v\n", c.name, err)
				os.Exit(2)
			default:
				fmt.Fprintf(os.Stderr, "vitalproof %s: %v\n", c.name, err)
				os.Exit(1)
			}
		}
	}
	usage()
	os.Exit(2)
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: vitalproof COMMAND [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %s\n", c.usage)
	}
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("vitalproof "+name, flag.ContinueOnError)
	return fs
}

func parse(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	for _, r := range required {
		if f := fs.Lookup(r); f == nil || f.Value.String() == "" {
			return usageError{fmt.Errorf("--%s is required", r)}
		}
	}
	return nil
}
