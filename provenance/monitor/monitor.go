// Package monitor follows a VitalProof log as a third party: it checks
// every published checkpoint against the consortium's tlog-policy, checks
// that each extends the last one it kept, downloads the log's leaves,
// recomputes their RFC 6962 hashes and the tree, and reports what it sees
// in plain words.
//
// A [Monitor] reads the log through a [Ledger] (the ledger's REST API,
// [NewHTTPLedger]) and keeps its state in a directory:
//
//	state.json          the last checkpoint kept, the compact range of the
//	                    leaves verified so far, and what the log said about
//	                    each device (registration, manufacturer, recall)
//	checkpoints/<size>  every checkpoint kept, as the ledger served it
//	evidence/<time>-<kind>-<size>/
//	                    what proves a misbehaviour: the signed checkpoints,
//	                    the policy, the proof or leaves served, a README.txt
//
// Files are replaced atomically (a temporary file, synced, renamed), so a
// crash leaves the old state or the new one, and a new Monitor on the same
// directory resumes where the last one stopped without downloading again
// what it verified.
//
// Each [Monitor.Step] fetches the latest checkpoint and:
//
//   - checks it against the policy (package log/quorum); below quorum, it
//     reports "checkpoint below quorum: <reason>" and goes no further;
//   - if it has the tree size of a checkpoint kept but another root, saves
//     both as evidence of a fork and fails with [ErrFork]; if it is smaller
//     than the last one kept, fails with [ErrRollback];
//   - if it is larger, fetches the consistency proof from the last one kept
//     and checks it (failure: evidence and [ErrInconsistent]), then keeps
//     it and reports "new checkpoint";
//   - downloads the leaves it has not verified, in pages fetched in
//     parallel, hashes them into a compact range and checks each page: the
//     root of the leaves so far must be consistent with the checkpoint (a
//     consistency proof from that tree size), and the root of all of them
//     must be the checkpoint's (failure: evidence and [ErrInconsistent]);
//   - classifies each verified leaf (a [Classifier], by default [Classify])
//     and reports registrations, entries and lifecycle events of the
//     watched manufacturers' devices, readings from a device after its
//     recall (or decommissioning), entries and events of devices no
//     registration names, devices registered twice, and leaves of a known
//     format that do not parse.
//
// While it catches up it reports its progress every few seconds ("caught
// up N of M entries (X entries/s)"). Reports are [Report] values, one
// plain-word line each ([Report.String]); [ReportWriter] writes them.
//
// Leaves are reported only once their page is verified. A crash between
// reporting a page and saving the state makes the next run report that
// page's leaves again: reports are delivered at least once.
package monitor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"filippo.io/torchwood"
	"github.com/transparency-dev/merkle/compact"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/quorum"
)

// Errors of [Monitor.Step]. Misbehaviours come as an [*EvidenceError]
// wrapping ErrFork, ErrRollback or ErrInconsistent.
var (
	// ErrFork: the ledger signed two checkpoints of the same tree size with
	// different roots, or went back to a smaller tree (ErrRollback).
	ErrFork = errors.New("fork")
	// ErrRollback: the ledger's latest checkpoint is smaller than one it
	// published before. It wraps ErrFork.
	ErrRollback = fmt.Errorf("%w (rollback)", ErrFork)
	// ErrInconsistent: the ledger's consistency proof does not show that
	// its new checkpoint extends the last one kept, or its leaves do not
	// make its checkpoint's tree.
	ErrInconsistent = errors.New("inconsistency")
	// ErrBelowQuorum: the latest checkpoint does not satisfy the policy;
	// the monitor reported why and did not advance.
	ErrBelowQuorum = errors.New("checkpoint below quorum")
	// ErrWrongLog: the ledger serves checkpoints of another log than the
	// one the state directory follows.
	ErrWrongLog = errors.New("checkpoint of another log")
)

// Kind is the kind of a [Report].
type Kind string

// Kinds of reports.
const (
	// KindCheckpoint: a new checkpoint, verified and kept.
	KindCheckpoint Kind = "checkpoint"
	// KindProgress: how far a catch-up is.
	KindProgress Kind = "progress"
	// KindCaughtUp: every leaf of the last checkpoint kept is verified.
	KindCaughtUp Kind = "caught-up"
	// KindBelowQuorum: the latest checkpoint does not satisfy the policy.
	KindBelowQuorum Kind = "below-quorum"
	// KindFork, KindRollback, KindInconsistent: the ledger misbehaved; the
	// report names the evidence directory.
	KindFork         Kind = "fork"
	KindRollback     Kind = "rollback"
	KindInconsistent Kind = "inconsistent"
	// KindRegistration, KindEntry, KindEvent: a leaf about a device of a
	// watched manufacturer.
	KindRegistration Kind = "registration"
	KindEntry        Kind = "entry"
	KindEvent        Kind = "event"
	// KindAfterRecall: an entry with readings after its device's recall
	// (or decommissioning).
	KindAfterRecall Kind = "after-recall"
	// KindUnregistered: an entry or event of a device that no registration
	// named before it (reported once per device).
	KindUnregistered Kind = "unregistered"
	// KindReregistered: a second registration of a device.
	KindReregistered Kind = "reregistered"
	// KindMalformed: a leaf of a known format that does not parse.
	KindMalformed Kind = "malformed"
)

// Alert reports whether reports of kind k call for someone to look: the
// ledger's misbehaviours, a checkpoint below quorum, and suspicious leaves.
func (k Kind) Alert() bool {
	switch k {
	case KindBelowQuorum, KindFork, KindRollback, KindInconsistent,
		KindAfterRecall, KindUnregistered, KindReregistered, KindMalformed:
		return true
	}
	return false
}

// Report is one thing the monitor saw.
type Report struct {
	Time time.Time
	Kind Kind
	// Message says it in plain words, on one line.
	Message string
	// TreeSize is the tree size of the checkpoint concerned, if any.
	TreeSize uint64
	// Index is the leaf's index, for reports about a leaf (HasIndex).
	Index    uint64
	HasIndex bool
	// Device is the device a leaf report is about.
	Device string
	// Evidence is the evidence directory of a misbehaviour.
	Evidence string
}

// String returns the report on one line: its time (RFC 3339, UTC), "ALERT"
// if its kind is an alert, and its message.
func (r Report) String() string {
	alert := ""
	if r.Kind.Alert() {
		alert = "ALERT "
	}
	return r.Time.UTC().Format(time.RFC3339) + " " + alert + r.Message
}

// ReportWriter returns a function for [Config.OnReport] that writes each
// report to w, one line each ([Report.String]). Write errors are dropped.
func ReportWriter(w io.Writer) func(Report) {
	return func(r Report) { io.WriteString(w, r.String()+"\n") }
}

// Defaults of [Config].
const (
	// DefaultPageSize is how many leaves one request asks for: the most
	// the ledger's ListEntries returns.
	DefaultPageSize = 1000
	// DefaultParallel is how many pages are downloaded at once.
	DefaultParallel = 4
	// DefaultProgressInterval is how often a catch-up reports progress.
	DefaultProgressInterval = 5 * time.Second
	// DefaultSaveInterval is how often a catch-up saves its state; it also
	// saves when it ends, however it ends.
	DefaultSaveInterval = 2 * time.Second
)

// Config configures a [Monitor]. Ledger, Policy and StateDir are
// required.
type Config struct {
	// Ledger is where the monitor reads the log.
	Ledger Ledger
	// Policy is the tlog-policy text (c2sp.org/tlog-policy) that names the
	// log's key, the witnesses and the quorum every checkpoint must meet.
	// Take it from the consortium, not from the ledger being monitored.
	Policy []byte
	// StateDir is the directory of the monitor's state, created if
	// missing. One monitor at a time may use it.
	StateDir string
	// Watch lists the manufacturer IDs whose devices' registrations,
	// entries and lifecycle events are reported.
	Watch []string
	// Classify tells what each leaf is; nil means [Classify].
	Classify Classifier
	// OnReport receives every report, in order, on the goroutine that
	// called Step or Run; nil drops them.
	OnReport func(Report)
	// PageSize is how many leaves one request asks for; 0 means
	// DefaultPageSize.
	PageSize uint64
	// Parallel is how many pages are downloaded at once; 0 means
	// DefaultParallel.
	Parallel int
	// ProgressInterval is how often a catch-up reports progress; 0 means
	// DefaultProgressInterval.
	ProgressInterval time.Duration
	// SaveInterval is how often a catch-up saves its state; 0 means
	// DefaultSaveInterval.
	SaveInterval time.Duration
	// Logger logs what goes wrong in Run between steps; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now returns the time for reports and evidence names; nil means
	// time.Now.
	Now func() time.Time
}

// Monitor follows one log. It is not safe for concurrent use: call Step
// or Run from one goroutine.
type Monitor struct {
	cfg     Config
	policy  *quorum.Policy
	watch   map[string]bool
	st      *state
	rng     *compact.Range
	savedAt uint64 // st.Leaves when the state was last saved
	belowQ  string // the below-quorum checkpoint last reported
}

// New returns a monitor of the log that cfg.Policy names, resuming from
// the state in cfg.StateDir if there is one. It refuses a state directory
// whose state is not coherent rather than start again from the first
// leaf.
func New(cfg Config) (*Monitor, error) {
	if cfg.Ledger == nil || len(cfg.Policy) == 0 || cfg.StateDir == "" {
		return nil, errors.New("couldn't create monitor: Ledger, Policy and StateDir are required")
	}
	pol, err := quorum.ParsePolicy(cfg.Policy)
	if err != nil {
		return nil, fmt.Errorf("couldn't create monitor: %w", err)
	}
	if cfg.Classify == nil {
		cfg.Classify = Classify
	}
	if cfg.OnReport == nil {
		cfg.OnReport = func(Report) {}
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = DefaultProgressInterval
	}
	if cfg.SaveInterval <= 0 {
		cfg.SaveInterval = DefaultSaveInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(filepath.Join(cfg.StateDir, historyDir), 0o700); err != nil {
		return nil, fmt.Errorf("couldn't create monitor state directory: %w", err)
	}
	st, err := loadState(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("couldn't resume monitor: %w", err)
	}
	rng, err := st.compactRange()
	if err != nil {
		return nil, fmt.Errorf("couldn't resume monitor: %w", err)
	}
	watch := make(map[string]bool, len(cfg.Watch))
	for _, m := range cfg.Watch {
		watch[m] = true
	}
	return &Monitor{cfg: cfg, policy: pol, watch: watch, st: st, rng: rng, savedAt: st.Leaves}, nil
}

// Status is where a monitor stands.
type Status struct {
	// Origin is the log's name, "" before the first checkpoint.
	Origin string
	// Checkpoint is the last checkpoint kept; HasCheckpoint is false
	// before the first.
	Checkpoint    log.Root
	HasCheckpoint bool
	// Leaves is how many leaves are downloaded and verified.
	Leaves uint64
	// Devices is how many devices the log named.
	Devices int
}

// Status returns where m stands.
func (m *Monitor) Status() Status {
	s := Status{Origin: m.st.Origin, Leaves: m.st.Leaves, Devices: len(m.st.Devices)}
	if m.st.Checkpoint != nil {
		s.Checkpoint, s.HasCheckpoint = m.st.Checkpoint.root(), true
	}
	return s
}

// Run calls Step every interval until ctx is done (then it returns nil) or
// the ledger misbehaves (it returns the [*EvidenceError]) or serves
// another log ([ErrWrongLog]). Other errors, such as an unreachable
// ledger or a checkpoint below quorum, are logged (below quorum, also
// reported) and the next step tries again.
func (m *Monitor) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := m.Step(ctx)
		var ee *EvidenceError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ee), errors.Is(err, ErrWrongLog):
			return err
		case errors.Is(err, ErrBelowQuorum):
		case err != nil:
			m.cfg.Logger.WarnContext(ctx, "couldn't follow the log; trying again", "err", err, "in", interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step fetches the latest checkpoint, verifies it and catches up on its
// leaves; see the package documentation. It returns nil when every leaf of
// the latest checkpoint is verified (or the checkpoint is the last one
// kept); an [*EvidenceError] when the ledger misbehaved; an error wrapping
// [ErrBelowQuorum] when the checkpoint fails the policy; and other errors
// (the ledger unreachable, a failed write) after saving the progress made,
// for the next Step to go on from.
func (m *Monitor) Step(ctx context.Context) error {
	signed, err := m.cfg.Ledger.Checkpoint(ctx)
	if err != nil {
		return fmt.Errorf("couldn't fetch the latest checkpoint: %w", err)
	}
	rep, err := m.policy.Check(signed)
	if errors.Is(err, quorum.ErrNotSatisfied) {
		if m.belowQ != string(signed) {
			m.belowQ = string(signed)
			m.report(Report{Kind: KindBelowQuorum, TreeSize: rep.Size,
				Message: fmt.Sprintf("checkpoint below quorum: tree size %d: %s", rep.Size, rep.Reason())})
		}
		return fmt.Errorf("%w: tree size %d: %s", ErrBelowQuorum, rep.Size, rep.Reason())
	}
	if err != nil {
		return fmt.Errorf("couldn't verify the latest checkpoint: %w", err)
	}
	m.belowQ = ""
	if m.st.Origin != "" && rep.Origin != m.st.Origin {
		return fmt.Errorf("%w: the ledger's checkpoint is of %q, the state directory follows %q", ErrWrongLog, rep.Origin, m.st.Origin)
	}
	if err := m.advance(ctx, signed, rep); err != nil {
		return err
	}
	return m.catchUp(ctx)
}

// advance keeps the checkpoint signed, which satisfies the policy, if it
// extends the last one kept; it does nothing if it is the last one kept.
func (m *Monitor) advance(ctx context.Context, signed []byte, rep *quorum.Report) error {
	served := log.Root{Size: rep.Size, Hash: rep.RootHash}
	kept := m.st.Checkpoint
	if kept != nil && served.Size <= kept.Size {
		if served == kept.root() {
			return nil
		}
		old, err := readHistory(m.cfg.StateDir, served.Size)
		if err != nil {
			return err
		}
		if old != nil {
			if oldRoot, _, err := noteRoot(old); err == nil && oldRoot.Hash != served.Hash {
				return m.fork(old, signed, oldRoot, served)
			}
		}
		if served.Size < kept.Size {
			return m.rollback(signed, served, kept.root())
		}
	}
	if served.Size == 0 && served.Hash != log.EmptyRoot {
		return m.evidence(KindInconsistent, ErrInconsistent, 0,
			"the ledger's checkpoint of the empty tree has another root than the empty tree's",
			"served.checkpoint commits to a tree of no leaves with a root hash other than\nSHA-256 of the empty string (RFC 6962).\n",
			evidenceFile{servedFile, signed})
	}
	if kept != nil && kept.Size > 0 {
		p, err := m.cfg.Ledger.ConsistencyProof(ctx, kept.Size, served.Size)
		if err != nil {
			return fmt.Errorf("couldn't fetch the consistency proof from tree size %d to %d: %w", kept.Size, served.Size, err)
		}
		if err := log.VerifyConsistency(kept.root(), served, p); err != nil {
			return m.inconsistentProof(signed, kept.root(), served, p)
		}
	}
	if err := writeFileAtomic(historyPath(m.cfg.StateDir, served.Size), signed); err != nil {
		return fmt.Errorf("couldn't keep checkpoint of tree size %d: %w", served.Size, err)
	}
	m.st.Origin = rep.Origin
	m.st.Checkpoint = &treeRef{Size: served.Size, Root: served.Hash[:]}
	if err := m.save(); err != nil {
		return err
	}
	growth := ""
	if kept != nil {
		growth = " (" + plural(int(served.Size-kept.Size), "new leaf", "new leaves") + ")"
	}
	m.report(Report{Kind: KindCheckpoint, TreeSize: served.Size,
		Message: fmt.Sprintf("new checkpoint: %s, tree size %d%s, root %s, %s",
			rep.Origin, served.Size, growth, b64(served.Hash[:]), rep.Summary())})
	return nil
}

// fork reports and proves two checkpoints of one tree size with different
// roots.
func (m *Monitor) fork(kept, served []byte, keptRoot, servedRoot log.Root) error {
	return m.evidence(KindFork, ErrFork, servedRoot.Size,
		fmt.Sprintf("the ledger signed two checkpoints of tree size %d with different roots: %s, kept before, and %s, served now",
			servedRoot.Size, b64(keptRoot.Hash[:]), b64(servedRoot.Hash[:])),
		fmt.Sprintf("kept.checkpoint and served.checkpoint both commit to a tree of %d leaves,\n"+
			"with different root hashes. A log has one tree of each size: the log signed\n"+
			"two different histories (a fork, or split view), and the witnesses that\n"+
			"cosigned both let it.\n", servedRoot.Size),
		evidenceFile{keptFile, kept}, evidenceFile{servedFile, served})
}

// rollback reports a checkpoint smaller than the last one kept.
func (m *Monitor) rollback(served []byte, servedRoot, kept log.Root) error {
	keptNote, err := readHistory(m.cfg.StateDir, kept.Size)
	if err != nil {
		return err
	}
	return m.evidence(KindRollback, ErrRollback, servedRoot.Size,
		fmt.Sprintf("the ledger's latest checkpoint has tree size %d, below tree size %d it published before", servedRoot.Size, kept.Size),
		fmt.Sprintf("The ledger served served.checkpoint (tree size %d) as its latest checkpoint\n"+
			"after publishing kept.checkpoint (tree size %d). A log only grows: the ledger\n"+
			"is showing an old view of the log, or another one.\n", servedRoot.Size, kept.Size),
		evidenceFile{keptFile, keptNote}, evidenceFile{servedFile, served})
}

// inconsistentProof reports a consistency proof that fails.
func (m *Monitor) inconsistentProof(served []byte, kept, root log.Root, p []log.Hash) error {
	keptNote, err := readHistory(m.cfg.StateDir, kept.Size)
	if err != nil {
		return err
	}
	return m.evidence(KindInconsistent, ErrInconsistent, root.Size,
		fmt.Sprintf("the ledger's consistency proof does not show that its checkpoint of tree size %d extends tree size %d", root.Size, kept.Size),
		fmt.Sprintf("consistency.proof, which the ledger served, does not prove that the tree of\n"+
			"served.checkpoint (size %d) extends the tree of kept.checkpoint (size %d).\n"+
			"Either the log forked, or the ledger serves a wrong proof: ask it, or the\n"+
			"log's operator, for a proof between these two signed checkpoints; an honest\n"+
			"log can always give one.\n", root.Size, kept.Size),
		evidenceFile{keptFile, keptNote}, evidenceFile{servedFile, served},
		evidenceFile{proofFile, formatProof(kept.Size, root.Size, p)})
}

// label names each kind of misbehaviour in reports.
var label = map[Kind]string{KindFork: "fork", KindRollback: "rollback", KindInconsistent: "inconsistency"}

// evidence saves files, the policy and a README in a new evidence
// directory, reports the misbehaviour and returns its error.
func (m *Monitor) evidence(kind Kind, sentinel error, size uint64, reason, explanation string, files ...evidenceFile) error {
	readme := "VitalProof monitor: " + reason + ".\n\n" + explanation + "\n" + verifyHint(files)
	files = append(files, evidenceFile{policyFile, m.cfg.Policy}, evidenceFile{readmeFile, []byte(readme)})
	now := m.cfg.Now()
	e := &EvidenceError{Err: sentinel, Reason: reason}
	e.Dir, e.Files, e.SaveErr = writeEvidence(m.cfg.StateDir, now, kind, size, files)
	msg := fmt.Sprintf("%s: %s", label[kind], reason)
	if e.Dir != "" {
		msg += "; evidence in " + e.Dir
	}
	m.report(Report{Kind: kind, TreeSize: size, Message: msg, Evidence: e.Dir})
	return e
}

func (m *Monitor) save() error {
	m.st.Range = m.rng.Hashes()
	if err := m.st.save(m.cfg.StateDir); err != nil {
		return err
	}
	m.savedAt = m.st.Leaves
	return nil
}

func (m *Monitor) report(r Report) {
	r.Time = m.cfg.Now()
	m.cfg.OnReport(r)
}

// noteRoot returns the tree and origin of a signed checkpoint without
// checking its signatures.
func noteRoot(signed []byte) (log.Root, string, error) {
	_, err := note.Open(signed, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		return log.Root{}, "", errors.New("not a signed note")
	}
	c, err := torchwood.ParseCheckpoint(unverified.Note.Text)
	if err != nil {
		return log.Root{}, "", errors.New("not a checkpoint")
	}
	return log.Root{Size: uint64(c.N), Hash: log.Hash(c.Hash)}, c.Origin, nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// day formats t for reports.
func day(t time.Time) string { return t.UTC().Format(time.RFC3339) }
