package main

// `vitalproof ceremony` runs the consortium's multi-party Groth16 setup
// (package zk/keys, over gnark's mpcsetup) for one audit circuit:
//
//  1. Phase 1: each participant in turn runs `phase1 contribute`, giving
//     every contribution so far with --in, in order. The command verifies
//     that chain from the domain size's initial state, adds a contribution
//     with fresh randomness it never writes down, and prints the new file's
//     SHA-256 for the participant to publish.
//  2. The coordinator runs `phase1 seal` on all phase 1 contributions with a
//     public random beacon published after the last one, and publishes the
//     commons file and its SHA-256.
//  3. Phase 2: each participant in turn runs `phase2 contribute` with the
//     commons and the phase 2 contributions so far, as in phase 1.
//  4. The coordinator runs `finish` on all phase 2 contributions with a
//     second beacon: it verifies them again, seals, and saves production
//     keys (zk/keys format, labelled "ceremony") and prints the verifying
//     key's fingerprint.
//
// gnark verifies a contribution only against the full state before it, so
// every command verifies whole chains from the start: one --in (or
// argument) per contribution. Anyone can rerun `phase1 seal` and `finish`
// on the published files and beacons and compare the hashes and the
// fingerprint. What every command verified and wrote goes to stdout (the
// transcript); progress goes to stderr.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/logger"

	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/statement"
)

const ceremonyUsage = `usage:
  vitalproof ceremony circuits [--shape ExR] [--kinds PARTS] [--compile none|small|all]
  vitalproof ceremony phase1 contribute --circuit ID [--in CONTRIB]... --out NEXT
  vitalproof ceremony phase1 seal --circuit ID --beacon HEX --out COMMONS CONTRIB...
  vitalproof ceremony phase2 contribute --circuit ID --commons COMMONS [--in CONTRIB]... --out NEXT
  vitalproof ceremony finish --circuit ID --commons COMMONS --beacon HEX --out KEYDIR CONTRIB...
Contributions are given in order, first to last: all of them (--in once per
contribution; none for the first participant). Every command also takes
--cache DIR, a key cache to read the compiled circuit from or save it to.`

// minBeacon is the least beacon length the CLI accepts, in bytes.
const minBeacon = 16

// ceremony runs `vitalproof ceremony` commands.
type ceremony struct {
	stdout, stderr io.Writer
	// compile returns the constraint system of the circuit named id,
	// reading it from, or saving it to, the key cache in cacheDir if set.
	compile func(ctx context.Context, id, cacheDir string) (constraint.ConstraintSystem, error)
	start   time.Time
}

func cmdCeremony(ctx context.Context, args []string) error {
	logger.Disable() // gnark's compiler logs; progress goes to stderr instead
	c := &ceremony{stdout: os.Stdout, stderr: os.Stderr, compile: compileCircuit}
	return c.run(ctx, args)
}

func (c *ceremony) run(ctx context.Context, args []string) error {
	c.start = time.Now()
	if len(args) == 0 {
		return usageError{errors.New(ceremonyUsage)}
	}
	switch sub := strings.Join(args[:min(2, len(args))], " "); {
	case args[0] == "circuits":
		return c.circuits(ctx, args[1:])
	case sub == "phase1 contribute":
		return c.phase1Contribute(ctx, args[2:])
	case sub == "phase1 seal":
		return c.phase1Seal(ctx, args[2:])
	case sub == "phase2 contribute":
		return c.phase2Contribute(ctx, args[2:])
	case args[0] == "finish":
		return c.finish(ctx, args[1:])
	}
	return usageError{errors.New(ceremonyUsage)}
}

// compileCircuit compiles the audit circuit named id (package zk/circuit).
func compileCircuit(ctx context.Context, id, cacheDir string) (constraint.ConstraintSystem, error) {
	shape, kinds, err := circuit.ParseID(id)
	if err != nil {
		return nil, usageError{fmt.Errorf("--circuit %q: %v (`vitalproof ceremony circuits` lists circuit IDs)", id, err)}
	}
	compile := func() (constraint.ConstraintSystem, error) { return circuit.Compile(shape, kinds) }
	if cacheDir == "" {
		return compile()
	}
	return (&keys.Cache{Dir: cacheDir}).Compiled(ctx, id, compile)
}

// progress prints a progress line to stderr.
func (c *ceremony) progress(format string, args ...any) {
	fmt.Fprintf(c.stderr, "ceremony [%6.1fs] %s\n", time.Since(c.start).Seconds(), fmt.Sprintf(format, args...))
}

// chainFlag collects repeated --in flags: a chain of contributions.
type chainFlag []string

func (f *chainFlag) String() string { return strings.Join(*f, " ") }

func (f *chainFlag) Set(s string) error {
	*f = append(*f, s)
	return nil
}

func cacheFlag(fs *flag.FlagSet) *string {
	return fs.String("cache", "", "key cache directory (package zk/keys) to read the compiled circuit from, or save it to")
}

func parseBeacon(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < minBeacon || len(b) > keys.MaxBeaconSize {
		return nil, usageError{fmt.Errorf("--beacon must be %d to %d bytes in hex: a public random value published after the last contribution, such as a drand round's randomness", minBeacon, keys.MaxBeaconSize)}
	}
	return b, nil
}

// checkFiles fails early, before any long computation, if out exists or
// an input does not.
func checkFiles(out string, inputs ...string) error {
	if _, err := os.Lstat(out); err == nil {
		return fmt.Errorf("refusing to overwrite %s", out)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("couldn't check %s: %w", out, err)
	}
	for _, in := range inputs {
		if _, err := os.Stat(in); err != nil {
			return fmt.Errorf("couldn't read input: %w", err)
		}
	}
	return nil
}

// writeNew writes a new file at path with write: to a temporary file
// beside it, then linked into place, so that path never holds a partial
// file and an existing one is never replaced.
func writeNew(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	w := bufio.NewWriterSize(tmp, 1<<20)
	if err := write(w); err != nil {
		tmp.Close()
		return err
	}
	if err := errors.Join(w.Flush(), tmp.Chmod(0o644), tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("refusing to overwrite %s", path)
		}
		return fmt.Errorf("couldn't write %s: %w", path, err)
	}
	return nil
}

// loadCircuit compiles the circuit named id and starts the transcript.
func (c *ceremony) loadCircuit(ctx context.Context, id, cacheDir string) (constraint.ConstraintSystem, error) {
	c.progress("compiling circuit %s", id)
	cs, err := c.compile(ctx, id, cacheDir)
	if err != nil {
		return nil, err
	}
	n := keys.DomainSize(cs)
	c.progress("circuit has %d constraints: phase 1 domain size %d", cs.GetNbConstraints(), n)
	fmt.Fprintf(c.stdout, "circuit %s\nphase 1 domain size %d (%d constraints)\n", id, n, cs.GetNbConstraints())
	return cs, nil
}

// verifyChain verifies the contributions in paths in order, with verify,
// and prints each on the transcript.
func (c *ceremony) verifyChain(ctx context.Context, phase int, paths []string, verify func(context.Context, io.Reader) ([32]byte, error)) error {
	for i, path := range paths {
		c.progress("verifying phase %d contribution %d of %d: %s", phase, i+1, len(paths), path)
		h, err := verifyFile(ctx, path, verify)
		if err != nil {
			return fmt.Errorf("couldn't verify phase %d contribution %d, %s: %w", phase, i+1, path, err)
		}
		fmt.Fprintf(c.stdout, "verified phase %d contribution %d %s sha256 %x\n", phase, i+1, path, h)
	}
	return nil
}

func verifyFile(ctx context.Context, path string, verify func(context.Context, io.Reader) ([32]byte, error)) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	return verify(ctx, bufio.NewReaderSize(f, 1<<20))
}

// readCommons reads the commons file and prints it on the transcript.
func (c *ceremony) readCommons(ctx context.Context, path string) (*keys.Commons, error) {
	c.progress("reading commons %s", path)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read commons: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	commons, err := keys.ReadCommons(ctx, io.TeeReader(bufio.NewReaderSize(f, 1<<20), h))
	if err != nil {
		return nil, fmt.Errorf("couldn't read commons %s: %w", path, err)
	}
	fmt.Fprintf(c.stdout, "commons %s sha256 %x\n", path, h.Sum(nil))
	for i, ch := range commons.Contributions {
		fmt.Fprintf(c.stdout, "  phase 1 contribution %d sha256 %x\n", i+1, ch)
	}
	fmt.Fprintf(c.stdout, "  phase 1 beacon %x\n", commons.Beacon)
	return commons, nil
}

// startPhase2 starts phase 2 of cs from the commons.
func (c *ceremony) startPhase2(ctx context.Context, cs constraint.ConstraintSystem, id, commonsPath string) (*keys.Phase2, error) {
	commons, err := c.readCommons(ctx, commonsPath)
	if err != nil {
		return nil, err
	}
	c.progress("initializing phase 2 from the circuit and the commons (about as long as a contribution)")
	p, err := keys.NewPhase2(ctx, cs, commons)
	if err != nil {
		return nil, fmt.Errorf("commons %s do not fit circuit %s: %w", commonsPath, id, err)
	}
	return p, nil
}

// contribute writes a contribution made by contribute to out and prints it
// on the transcript.
func (c *ceremony) contribute(ctx context.Context, phase, index int, out string, contribute func(context.Context, io.Writer) ([32]byte, error)) error {
	c.progress("contributing to phase %d", phase)
	var h [32]byte
	if err := writeNew(out, func(w io.Writer) (err error) {
		h, err = contribute(ctx, w)
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote phase %d contribution %d %s sha256 %x\n", phase, index, out, h)
	c.progress("done: publish %s and its SHA-256 %x", out, h)
	return nil
}

func (c *ceremony) phase1Contribute(ctx context.Context, args []string) error {
	fs := newFlags("ceremony phase1 contribute")
	id := fs.String("circuit", "", "circuit ID (phase 1 serves every circuit of the same domain size)")
	var chain chainFlag
	fs.Var(&chain, "in", "a phase 1 contribution so far; once per contribution, first to last (none for the first participant)")
	out := fs.String("out", "", "file to write the new contribution to (must not exist)")
	cache := cacheFlag(fs)
	if err := parse(fs, args, "circuit", "out"); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("unexpected arguments: give the contributions so far with --in")}
	}
	if err := checkFiles(*out, chain...); err != nil {
		return err
	}
	cs, err := c.loadCircuit(ctx, *id, *cache)
	if err != nil {
		return err
	}
	p, err := keys.NewPhase1(keys.DomainSize(cs))
	if err != nil {
		return err
	}
	if err := c.verifyChain(ctx, 1, chain, p.Verify); err != nil {
		return err
	}
	return c.contribute(ctx, 1, len(chain)+1, *out, p.Contribute)
}

func (c *ceremony) phase1Seal(ctx context.Context, args []string) error {
	fs := newFlags("ceremony phase1 seal")
	id := fs.String("circuit", "", "circuit ID")
	beaconHex := fs.String("beacon", "", "public random beacon in hex, published after the last contribution")
	out := fs.String("out", "", "file to write the commons to (must not exist)")
	cache := cacheFlag(fs)
	if err := parse(fs, args, "circuit", "beacon", "out"); err != nil {
		return err
	}
	beacon, err := parseBeacon(*beaconHex)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("give every phase 1 contribution, first to last")}
	}
	if err := checkFiles(*out, fs.Args()...); err != nil {
		return err
	}
	cs, err := c.loadCircuit(ctx, *id, *cache)
	if err != nil {
		return err
	}
	p, err := keys.NewPhase1(keys.DomainSize(cs))
	if err != nil {
		return err
	}
	if err := c.verifyChain(ctx, 1, fs.Args(), p.Verify); err != nil {
		return err
	}
	c.progress("sealing phase 1 with the beacon")
	commons, err := p.Seal(ctx, beacon)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "sealed phase 1 with beacon %x\n", beacon)
	h := sha256.New()
	if err := writeNew(*out, func(w io.Writer) error {
		_, err := commons.WriteTo(io.MultiWriter(w, h))
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote commons %s sha256 %x\n", *out, h.Sum(nil))
	c.progress("done: publish %s and its SHA-256 %x", *out, h.Sum(nil))
	return nil
}

func (c *ceremony) phase2Contribute(ctx context.Context, args []string) error {
	fs := newFlags("ceremony phase2 contribute")
	id := fs.String("circuit", "", "circuit ID")
	commonsPath := fs.String("commons", "", "the commons that sealed phase 1 (`phase1 seal`)")
	var chain chainFlag
	fs.Var(&chain, "in", "a phase 2 contribution so far; once per contribution, first to last (none for the first participant)")
	out := fs.String("out", "", "file to write the new contribution to (must not exist)")
	cache := cacheFlag(fs)
	if err := parse(fs, args, "circuit", "commons", "out"); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("unexpected arguments: give the contributions so far with --in")}
	}
	if err := checkFiles(*out, append([]string{*commonsPath}, chain...)...); err != nil {
		return err
	}
	cs, err := c.loadCircuit(ctx, *id, *cache)
	if err != nil {
		return err
	}
	p, err := c.startPhase2(ctx, cs, *id, *commonsPath)
	if err != nil {
		return err
	}
	if err := c.verifyChain(ctx, 2, chain, p.Verify); err != nil {
		return err
	}
	return c.contribute(ctx, 2, len(chain)+1, *out, p.Contribute)
}

func (c *ceremony) finish(ctx context.Context, args []string) error {
	fs := newFlags("ceremony finish")
	id := fs.String("circuit", "", "circuit ID")
	commonsPath := fs.String("commons", "", "the commons that sealed phase 1 (`phase1 seal`)")
	beaconHex := fs.String("beacon", "", "public random beacon in hex, published after the last phase 2 contribution")
	out := fs.String("out", "", "key directory to create (must not exist)")
	cache := cacheFlag(fs)
	if err := parse(fs, args, "circuit", "commons", "beacon", "out"); err != nil {
		return err
	}
	beacon, err := parseBeacon(*beaconHex)
	if err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usageError{errors.New("give every phase 2 contribution, first to last")}
	}
	if err := checkFiles(*out, append([]string{*commonsPath}, fs.Args()...)...); err != nil {
		return err
	}
	cs, err := c.loadCircuit(ctx, *id, *cache)
	if err != nil {
		return err
	}
	p, err := c.startPhase2(ctx, cs, *id, *commonsPath)
	if err != nil {
		return err
	}
	if err := c.verifyChain(ctx, 2, fs.Args(), p.Verify); err != nil {
		return err
	}
	c.progress("sealing phase 2 with the beacon")
	k, err := p.Seal(ctx, *id, beacon)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "sealed phase 2 with beacon %x\n", beacon)
	c.progress("saving keys to %s", *out)
	if err := keys.Save(ctx, *out, k); err != nil {
		return err
	}
	saved, err := keys.LoadVerifyingKey(ctx, *out)
	if err != nil {
		return fmt.Errorf("couldn't read back the saved keys: %w", err)
	}
	m := saved.Meta
	fmt.Fprintf(c.stdout, "wrote keys %s: setup %s, %d phase 1 and %d phase 2 contributions\n", *out, m.Setup, m.Phase1Contributions, m.Phase2Contributions)
	fmt.Fprintf(c.stdout, "circuit sha256 %s\n", m.CircuitSHA256)
	fmt.Fprintf(c.stdout, "verifying key fingerprint %s\n", m.VerifyingKeySHA256)
	c.progress("done: publish the transcript and the verifying key fingerprint; a gateway loads the keys from <gateway.audit.keys_dir>/%s", m.CircuitSHA256)
	return nil
}

// circuits lists the audit circuits one can run a ceremony for.
func (c *ceremony) circuits(ctx context.Context, args []string) error {
	fs := newFlags("ceremony circuits")
	shapeFlag := fs.String("shape", "", "list only this shape, <entries>x<readings per entry> (default: the standard shapes "+circuit.Day.String()+" and "+circuit.Month.String()+")")
	kindsFlag := fs.String("kinds", "", "list only this combination of parts joined by + (range, tir, adherence, mean, max; default: every combination)")
	compileFlag := fs.String("compile", "small", fmt.Sprintf("compile to count constraints: none, small (circuits of up to %d readings, about a second each) or all (%d readings take minutes and GiBs each)", circuit.Day.Capacity(), circuit.Month.Capacity()))
	cache := cacheFlag(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{errors.New("unexpected arguments")}
	}
	shapes := []circuit.Shape{circuit.Day, circuit.Month}
	if *shapeFlag != "" {
		s, err := circuit.ParseShape(*shapeFlag)
		if err != nil {
			return usageError{fmt.Errorf("--shape: %w", err)}
		}
		shapes = []circuit.Shape{s}
	}
	var kinds []statement.Kind
	if *kindsFlag != "" {
		k, err := statement.ParseKind(*kindsFlag)
		if err != nil {
			return usageError{fmt.Errorf("--kinds: %w", err)}
		}
		kinds = []statement.Kind{k}
	} else {
		for k := statement.Kind(1); k != 0; k++ {
			if parsed, err := statement.ParseKind(k.String()); err == nil && parsed == k {
				kinds = append(kinds, k)
			}
		}
	}
	var limit int
	switch *compileFlag {
	case "none":
	case "small":
		limit = circuit.Day.Capacity()
	case "all":
		limit = circuit.Month.Capacity()
		for _, s := range shapes {
			limit = max(limit, s.Capacity())
		}
	default:
		return usageError{errors.New("--compile must be none, small or all")}
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CIRCUIT\tREADINGS\tCONSTRAINTS\tPHASE 1 DOMAIN")
	total := len(shapes) * len(kinds)
	i, skipped := 0, false
	for _, s := range shapes {
		for _, k := range kinds {
			i++
			id := circuit.ID(s, k)
			constraints, domain := "-", "-"
			skipped = skipped || s.Capacity() > limit
			if s.Capacity() <= limit {
				c.progress("compiling %d of %d: %s", i, total, id)
				cs, err := c.compile(ctx, id, *cache)
				if err != nil {
					return err
				}
				constraints, domain = fmt.Sprint(cs.GetNbConstraints()), fmt.Sprint(keys.DomainSize(cs))
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", id, s.Capacity(), constraints, domain)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "\nIDs are %s/<parts>/<entries>x<readings per entry>; --shape lists other shapes.\n"+
		"Circuits of the same phase 1 domain size can share phase 1; phase 2 is per circuit.\n", circuit.Version)
	if skipped {
		fmt.Fprintln(c.stdout, "\"-\": not compiled; --compile all counts them.")
	}
	return nil
}
