package monitor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/logtest"
	"github.com/vitalproof/vitalproof/provenance/monitor"
	"github.com/vitalproof/vitalproof/provenance/monitor/monitortest"
	"github.com/vitalproof/vitalproof/wearables"
)

// grow appends two registrations (acme's band-1, globex's band-2) and n
// entries of each band, and returns the tree.
func grow(t *testing.T, l *monitortest.Ledger, mk *leafMaker, n int) log.Root {
	t.Helper()
	var leaves [][]byte
	if _, ok := mk.devices["band-1"]; !ok {
		leaves = append(leaves, mk.register("band-1", "acme"), mk.register("band-2", "globex"))
	}
	for range n {
		leaves = append(leaves, mk.entries("band-1", 1)[0], mk.entries("band-2", 1)[0])
	}
	return l.Append(t, leaves...)
}

func TestCatchUpFromEmpty(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	root := grow(t, l, mk, 175) // 352 leaves: 4 pages of 100
	signed := l.Publish(t, "H1", "H3")
	dir := t.TempDir()
	m, rec := newMonitor(t, l, l.Policy(), dir, func(c *monitor.Config) { c.ProgressInterval = time.Nanosecond })
	if err := m.Step(ctx); err != nil {
		t.Fatalf("Step: %v\n%s", err, rec)
	}
	st := m.Status()
	if !st.HasCheckpoint || st.Checkpoint != root || st.Leaves != root.Size || st.Origin != origin || st.Devices != 2 {
		t.Errorf("Status = %+v, want checkpoint %+v with all its leaves and 2 devices", st, root)
	}
	if got := l.LeavesServed(); got != root.Size {
		t.Errorf("the ledger served %d leaves, want %d", got, root.Size)
	}
	kept, err := os.ReadFile(filepath.Join(dir, "checkpoints", strconv.FormatUint(root.Size, 10)))
	if err != nil || !bytes.Equal(kept, signed) {
		t.Errorf("checkpoints/%d = %q, %v; want the checkpoint served", root.Size, kept, err)
	}
	cps := rec.of(monitor.KindCheckpoint)
	if len(cps) != 1 || !strings.Contains(cps[0].Message, fmt.Sprintf("new checkpoint: %s, tree size %d, root ", origin, root.Size)) ||
		!strings.Contains(cps[0].Message, "cosigned by H1, H3 (quorum 2 of 3 met)") {
		t.Errorf("checkpoint reports:\n%s", rec)
	}
	if regs := rec.of(monitor.KindRegistration); len(regs) != 1 || regs[0].Device != "band-1" || regs[0].Index != 0 ||
		!strings.Contains(regs[0].Message, "device band-1 of manufacturer acme, assigned to hospital st-mary") {
		t.Errorf("registration reports, want band-1's only:\n%s", rec)
	}
	entries := rec.of(monitor.KindEntry)
	if len(entries) != 175 {
		t.Errorf("%d entry reports, want 175 (band-1's)", len(entries))
	}
	for i, e := range entries {
		if e.Device != "band-1" || !e.HasIndex || e.Index != uint64(2+2*i) {
			t.Errorf("entry report %d: device %s, index %d; want band-1 at %d", i, e.Device, e.Index, 2+2*i)
			break
		}
	}
	if p := rec.of(monitor.KindProgress); len(p) == 0 || !strings.HasPrefix(p[0].Message, "caught up 100 of 352 entries (") {
		t.Errorf("progress reports:\n%s", rec)
	}
	done := rec.of(monitor.KindCaughtUp)
	if len(done) != 1 || !strings.Contains(done[0].Message, "caught up 352 of 352 entries") ||
		!strings.Contains(done[0].Message, "350 entries, 2 registrations, 0 lifecycle events, 0 other") {
		t.Errorf("caught-up reports:\n%s", rec)
	}
	for _, r := range rec.reports {
		if r.Kind.Alert() {
			t.Errorf("alert on an honest log: %s", r.Message)
		}
	}

	// Nothing new: nothing downloaded, nothing reported.
	rec.reset()
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rec.reports) != 0 || l.LeavesServed() != root.Size {
		t.Errorf("a step with nothing new reported\n%sand the ledger served %d leaves", rec, l.LeavesServed())
	}
	assertNoTempFiles(t, dir)
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if strings.Contains(d.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", path)
		}
		return nil
	})
}

func TestResume(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	first := grow(t, l, mk, 60)
	l.Publish(t, "H1", "H2")
	dir := t.TempDir()
	m, _ := newMonitor(t, l, l.Policy(), dir)
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	second := grow(t, l, mk, 90)
	l.Publish(t, "H2", "H3")

	m, rec := newMonitor(t, l, l.Policy(), dir)
	if st := m.Status(); st.Checkpoint != first || st.Leaves != first.Size || st.Devices != 2 {
		t.Fatalf("resumed at %+v, want %+v", st, first)
	}
	if err := m.Step(ctx); err != nil {
		t.Fatalf("Step: %v\n%s", err, rec)
	}
	if got, want := l.LeavesServed(), second.Size; got != want {
		t.Errorf("the ledger served %d leaves in all, want %d: the restarted monitor downloaded again", got, want)
	}
	if st := m.Status(); st.Checkpoint != second || st.Leaves != second.Size {
		t.Errorf("Status = %+v, want %+v", st, second)
	}
	// band-1's registration came before the restart; its new entries are
	// still attributed to acme.
	if got := len(rec.of(monitor.KindEntry)); got != 90 {
		t.Errorf("%d entry reports after the restart, want 90\n%s", got, rec)
	}
	if cps := rec.of(monitor.KindCheckpoint); len(cps) != 1 || !strings.Contains(cps[0].Message, "(180 new leaves)") {
		t.Errorf("checkpoint reports:\n%s", rec)
	}
}

// failingLedger fails every request for leaves from index failFrom on.
type failingLedger struct {
	*monitortest.Ledger
	failFrom uint64
}

func (f *failingLedger) Leaves(ctx context.Context, start, count uint64) ([][]byte, error) {
	if start >= f.failFrom {
		return nil, errors.New("ledger unreachable")
	}
	return f.Ledger.Leaves(ctx, start, count)
}

func TestResumeAfterInterruptedCatchUp(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	root := grow(t, l, mk, 250) // 502 leaves
	l.Publish(t, "H1", "H2")
	dir := t.TempDir()
	one := func(c *monitor.Config) { c.Parallel = 1 }
	m, _ := newMonitor(t, &failingLedger{l, 300}, l.Policy(), dir, one)
	if err := m.Step(ctx); err == nil || !strings.Contains(err.Error(), "ledger unreachable") {
		t.Fatalf("Step with the ledger failing at leaf 300 = %v", err)
	}
	if st := m.Status(); st.Leaves != 300 || st.Checkpoint != root {
		t.Fatalf("after the failure: %+v, want the checkpoint kept and 300 leaves verified", st)
	}
	m, rec := newMonitor(t, l, l.Policy(), dir, one)
	if st := m.Status(); st.Leaves != 300 {
		t.Fatalf("resumed with %d leaves verified, want 300", st.Leaves)
	}
	if err := m.Step(ctx); err != nil {
		t.Fatalf("Step: %v\n%s", err, rec)
	}
	if got := l.LeavesServed(); got != root.Size {
		t.Errorf("the ledger served %d leaves in all, want %d", got, root.Size)
	}
	if got := len(rec.of(monitor.KindEntry)); got != 101 { // band-1's entries among leaves 300 to 501
		t.Errorf("%d entry reports after resuming, want 101\n%s", got, rec)
	}
	if len(rec.of(monitor.KindCheckpoint)) != 0 || len(rec.of(monitor.KindCaughtUp)) != 1 {
		t.Errorf("reports after resuming:\n%s", rec)
	}
}

// misbehaviour is a way the ledger misbehaves after the monitor kept a
// checkpoint of tree size 40 (20 entries of each band); it returns the
// checkpoint the ledger then serves.
type misbehaviour func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte

func TestMisbehaviour(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  misbehaviour
		want error
		kind monitor.Kind
		// files the evidence directory must hold besides the policy and
		// README.txt
		files []string
		// keptSize is the tree size of kept.checkpoint, if among files.
		keptSize uint64
		// leaves is how many leaves the monitor verified when it stops.
		leaves uint64
		// honest reports whether the ledger serves the same log again after
		// Restore, and the monitor must then catch up.
		honest bool
	}{
		{"same size, another root", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			l.Fork(t, 30)
			grow(t, l, mk, 6) // back to 42 leaves, the last 12 others
			return l.Publish(t, "H1", "H2", "H3")
		}, monitor.ErrFork, monitor.KindFork, []string{"kept.checkpoint", "served.checkpoint"}, 42, 42, false},
		{"an older tree size with another root", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			l.Fork(t, 20)
			grow(t, l, mk, 1)
			return l.Sign(t, l.Root(), "H1", "H2") // size 22, kept by the monitor with another root
		}, monitor.ErrFork, monitor.KindFork, []string{"kept.checkpoint", "served.checkpoint"}, 22, 42, false},
		{"rollback", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			s := l.Sign(t, log.Root{Size: 22, Hash: treeHash(t, l, 22)}, "H1", "H2")
			return s
		}, monitor.ErrRollback, monitor.KindRollback, []string{"kept.checkpoint", "served.checkpoint"}, 42, 42, true},
		{"a larger fork: the consistency proof fails", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			l.Fork(t, 30)
			grow(t, l, mk, 20)
			return l.Publish(t, "H2", "H3")
		}, monitor.ErrInconsistent, monitor.KindInconsistent, []string{"kept.checkpoint", "served.checkpoint", "consistency.proof"}, 42, 42, false},
		{"a wrong consistency proof", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			grow(t, l, mk, 20)
			l.TamperProofs(func(from, to uint64, p []log.Hash) []log.Hash {
				if len(p) > 0 {
					p[len(p)-1][0] ^= 1
				}
				return p
			})
			return l.Publish(t, "H1", "H3")
		}, monitor.ErrInconsistent, monitor.KindInconsistent, []string{"kept.checkpoint", "served.checkpoint", "consistency.proof"}, 42, 42, true},
		{"a leaf that does not make the root", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			grow(t, l, mk, 100) // 242 leaves: pages 42-141, 142-241
			l.ReplaceLeaf(200, mk.entries("band-1", 1)[0])
			return l.Publish(t, "H1", "H2")
		}, monitor.ErrInconsistent, monitor.KindInconsistent, []string{"served.checkpoint", "leaves.txt", "compact-range.txt"}, 0, 142, true},
		{"a leaf that breaks a page's consistency", func(t *testing.T, l *monitortest.Ledger, mk *leafMaker) []byte {
			grow(t, l, mk, 100)
			l.ReplaceLeaf(50, mk.entries("band-2", 1)[0])
			return l.Publish(t, "H1", "H2")
		}, monitor.ErrInconsistent, monitor.KindInconsistent, []string{"served.checkpoint", "leaves.txt", "compact-range.txt", "consistency.proof"}, 0, 42, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, mk := newLedger(t), newLeafMaker(t)
			dir := t.TempDir()
			m, rec := newMonitor(t, l, l.Policy(), dir)
			grow(t, l, mk, 10)
			first := l.Publish(t, "H1", "H2")
			if err := m.Step(ctx); err != nil {
				t.Fatal(err)
			}
			grow(t, l, mk, 10)
			kept := map[uint64][]byte{22: first, 42: l.Publish(t, "H1", "H2")}
			if err := m.Step(ctx); err != nil {
				t.Fatal(err)
			}
			keptRoot := l.Root()
			served := tc.bad(t, l, mk)
			l.Serve(t, served)
			rec.reset()

			err := m.Step(ctx)
			var ee *monitor.EvidenceError
			if !errors.Is(err, tc.want) || !errors.As(err, &ee) {
				t.Fatalf("Step = %v, want an *EvidenceError wrapping %v\n%s", err, tc.want, rec)
			}
			if tc.want == monitor.ErrFork && errors.Is(err, monitor.ErrRollback) {
				t.Errorf("Step = %v, want a fork, not a rollback", err)
			}
			if ee.Dir == "" || !strings.HasPrefix(ee.Dir, filepath.Join(dir, "evidence")+string(filepath.Separator)) || !strings.Contains(err.Error(), ee.Dir) {
				t.Fatalf("evidence directory %q, error %v", ee.Dir, err)
			}
			want := map[string][]byte{"served.checkpoint": served, "policy.txt": l.Policy()}
			if tc.keptSize != 0 {
				want["kept.checkpoint"] = kept[tc.keptSize]
			}
			for _, name := range append(tc.files, "policy.txt", "README.txt") {
				b, err := os.ReadFile(filepath.Join(ee.Dir, name))
				if err != nil {
					t.Errorf("evidence: %v", err)
					continue
				}
				if w, ok := want[name]; ok && !bytes.Equal(b, w) {
					t.Errorf("evidence %s = %q, want %q", name, b, w)
				}
				if !slicesContain(ee.Files, filepath.Join(ee.Dir, name)) {
					t.Errorf("EvidenceError.Files %q lacks %s", ee.Files, name)
				}
			}
			if r := rec.of(tc.kind); len(r) != 1 || r[0].Evidence != ee.Dir || !r[0].Kind.Alert() {
				t.Errorf("reports:\n%s", rec)
			}
			if st := m.Status(); st.Checkpoint.Size < keptRoot.Size || st.Leaves != tc.leaves {
				t.Errorf("after the misbehaviour: %+v, want %d leaves verified", st, tc.leaves)
			}
			if n := len(rec.of(monitor.KindEntry)); tc.leaves == 42 && n != 0 {
				t.Errorf("%d entries reported from leaves that were not verified", n)
			}

			// A new monitor on the same state sees the same.
			m2, _ := newMonitor(t, l, l.Policy(), dir)
			if err := m2.Step(ctx); !errors.Is(err, tc.want) {
				t.Errorf("after a restart, Step = %v, want %v", err, tc.want)
			}
			if !tc.honest {
				return
			}
			l.Restore()
			l.Publish(t, "H1", "H2")
			if err := m2.Step(ctx); err != nil {
				t.Fatalf("once the ledger is honest again, Step = %v", err)
			}
			if st := m2.Status(); st.Leaves != l.Root().Size || st.Checkpoint != l.Root() {
				t.Errorf("once the ledger is honest again: %+v, want %+v", st, l.Root())
			}
		})
	}
}

// treeHash returns the root hash of the first size leaves of l.
func treeHash(t *testing.T, l *monitortest.Ledger, size uint64) log.Hash {
	t.Helper()
	leaves, err := l.Leaves(context.Background(), 0, size)
	if err != nil {
		t.Fatal(err)
	}
	ml := logtest.NewMemLog()
	if err := ml.Append(context.Background(), leaves); err != nil {
		t.Fatal(err)
	}
	return ml.Integrate().Hash
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestBelowQuorum(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	grow(t, l, mk, 10)
	l.Publish(t, "H2")
	dir := t.TempDir()
	m, rec := newMonitor(t, l, l.Policy(), dir)
	for range 2 {
		if err := m.Step(ctx); !errors.Is(err, monitor.ErrBelowQuorum) {
			t.Fatalf("Step = %v, want ErrBelowQuorum", err)
		}
	}
	want := `checkpoint below quorum: tree size 22: quorum not met: group "witnesses" needs 2 of H1, H2, H3; cosigned by H2; missing H1 (no cosignature), H3 (no cosignature)`
	if r := rec.of(monitor.KindBelowQuorum); len(r) != 1 || r[0].Message != want || r[0].TreeSize != 22 {
		t.Errorf("reports (want one below-quorum, once):\n%s", rec)
	}
	if st := m.Status(); st.HasCheckpoint || st.Leaves != 0 || l.LeavesServed() != 0 {
		t.Errorf("the monitor advanced past a checkpoint below quorum: %+v, %d leaves served", st, l.LeavesServed())
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoints", "22")); err == nil {
		t.Error("a checkpoint below quorum was kept")
	}

	// Once cosigned by a quorum, the same tree is kept; then a larger
	// checkpoint below quorum is reported and not kept.
	l.Publish(t, "H2", "H3")
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	grow(t, l, mk, 10)
	l.Publish(t, "H1")
	rec.reset()
	if err := m.Step(ctx); !errors.Is(err, monitor.ErrBelowQuorum) {
		t.Fatalf("Step = %v, want ErrBelowQuorum", err)
	}
	if st := m.Status(); st.Checkpoint.Size != 22 || st.Leaves != 22 || l.LeavesServed() != 22 {
		t.Errorf("the monitor advanced past a checkpoint below quorum: %+v", st)
	}
	if r := rec.of(monitor.KindBelowQuorum); len(r) != 1 || !strings.HasPrefix(r[0].Message, "checkpoint below quorum: tree size 42: ") {
		t.Errorf("reports:\n%s", rec)
	}
}

func TestLeafReports(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	recall := day0.Add(10 * time.Hour)
	at := func(h int) time.Time { return day0.Add(time.Duration(h) * time.Hour) }
	halfHour := func(h int) time.Time { return at(h).Add(-30 * time.Minute) }
	leaves := [][]byte{
		mk.register("band-1", "acme"),   // 0
		mk.register("band-2", "globex"), // 1
		mk.entry("band-1", at(1)),       // 2: acme's, reported
		mk.entry("band-2", at(1)),       // 3: globex's, not reported
		mk.entry("band-9", at(1)),       // 4: unregistered, reported
		mk.entry("band-9", at(2)),       // 5: reported once only
		[]byte("vitalproof/approval/v1\nmanufacturer acme\n\n— x AAAA\n"),                                       // 6: another format
		[]byte("vitalproof/entry/v1\ndevice band-1\n\n— band-1 AAAA\n"),                                         // 7: malformed entry
		mk.event("band-1", wearables.EventRecalled, recall, wearables.EventDetails{Reason: "battery swelling"}), // 8: acme's, reported
		mk.event("band-2", wearables.EventShipped, at(2), wearables.EventDetails{Hospital: "st-mary"}),          // 9: globex's, not reported
		mk.entry("band-1", at(8)),                          // 10: before the recall
		mk.entry("band-1", halfHour(10)),                   // 11: straddles the recall
		mk.entry("band-1", at(11)),                         // 12: after the recall
		mk.entry("band-2", at(11)),                         // 13: band-2 is not recalled
		mk.register("band-1", "globex"),                    // 14: registered again
		testEvent("band-8", monitor.EventRecalled, recall), // 15: unregistered, in the private format
		mk.event("band-1", wearables.EventFirmware, at(9), wearables.EventDetails{Firmware: "1.5.0", FirmwareDigest: [32]byte{1}}), // 16: acme's device, by the actor of the second registration
	}
	root := l.Append(t, leaves...)
	if root.Size != uint64(len(leaves)) {
		t.Fatalf("the log dropped a leaf: %d of %d", root.Size, len(leaves))
	}
	l.Publish(t, "H1", "H2")
	m, rec := newMonitor(t, l, l.Policy(), t.TempDir())
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	type got struct {
		kind  monitor.Kind
		index uint64
	}
	want := []got{
		{monitor.KindRegistration, 0},
		{monitor.KindEntry, 2},
		{monitor.KindUnregistered, 4},
		{monitor.KindMalformed, 7},
		{monitor.KindEvent, 8},
		{monitor.KindEntry, 10},
		{monitor.KindEntry, 11},
		{monitor.KindAfterRecall, 11},
		{monitor.KindEntry, 12},
		{monitor.KindAfterRecall, 12},
		{monitor.KindReregistered, 14},
		{monitor.KindUnregistered, 15},
		{monitor.KindEvent, 16},
	}
	var leafReports []got
	for _, r := range rec.reports {
		if r.HasIndex {
			leafReports = append(leafReports, got{r.Kind, r.Index})
		}
	}
	if fmt.Sprint(leafReports) != fmt.Sprint(want) {
		t.Errorf("leaf reports\n got %v\nwant %v\n%s", leafReports, want, rec)
	}
	messages := map[got]string{
		{monitor.KindAfterRecall, 12}:  "readings from device band-1 after its recall at 2026-03-02T10:00:00Z: entry 12 (2026-03-02T11:00:00Z to 2026-03-02T12:00:00Z)",
		{monitor.KindAfterRecall, 11}:  "readings from device band-1 after its recall at 2026-03-02T10:00:00Z: entry 11's window (2026-03-02T09:30:00Z to 2026-03-02T10:30:00Z) ends after it",
		{monitor.KindUnregistered, 4}:  "entry 4 is from device band-9, which no registration in the log names before it",
		{monitor.KindReregistered, 14}: "leaf 14 registers device band-1 again, for manufacturer globex (first registered at leaf 0, for manufacturer acme)",
		{monitor.KindEntry, 2}:         "entry 2: device band-1 of manufacturer acme, hospital st-mary, 2026-03-02T01:00:00Z to 2026-03-02T02:00:00Z: heart-rate, 60 readings, seq 1, attestation device",
		{monitor.KindEvent, 8}:         "event 8: device band-1 of manufacturer acme recalled, effective 2026-03-02T10:00:00Z (by acme, reason: battery swelling)",
		{monitor.KindEvent, 16}:        "event 16: device band-1 of manufacturer acme had its firmware updated, effective 2026-03-02T09:00:00Z (by globex, firmware 1.5.0, image SHA-256 01" + strings.Repeat("00", 31) + ")",
	}
	for _, r := range rec.reports {
		if w, ok := messages[got{r.Kind, r.Index}]; ok && r.Message != w {
			t.Errorf("%s report of leaf %d:\n got %q\nwant %q", r.Kind, r.Index, r.Message, w)
		}
	}
	if r := rec.of(monitor.KindMalformed); len(r) != 1 || !strings.HasPrefix(r[0].Message, "leaf 7: vitalproof/entry/v1 does not parse: ") {
		t.Errorf("malformed reports:\n%s", rec)
	}
	if r := rec.of(monitor.KindCaughtUp); len(r) != 1 || !strings.Contains(r[0].Message, "8 entries, 3 registrations, 4 lifecycle events, 2 other") {
		t.Errorf("caught-up reports:\n%s", rec)
	}
}

func TestRecallSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	recall := day0.Add(5 * time.Hour)
	l.Append(t, mk.register("band-3", "globex"), testEvent("band-3", monitor.EventDecommissioned, recall))
	l.Publish(t, "H1", "H2")
	dir := t.TempDir()
	m, _ := newMonitor(t, l, l.Policy(), dir)
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	l.Append(t, mk.entry("band-3", day0.Add(6*time.Hour)))
	l.Publish(t, "H1", "H2")
	m, rec := newMonitor(t, l, l.Policy(), dir)
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	want := "readings from device band-3 after its decommissioning at 2026-03-02T05:00:00Z: entry 2 (2026-03-02T06:00:00Z to 2026-03-02T07:00:00Z)"
	if r := rec.of(monitor.KindAfterRecall); len(r) != 1 || r[0].Message != want {
		t.Errorf("reports after a restart:\n%s", rec)
	}
	if r := rec.of(monitor.KindCaughtUp); len(r) != 1 || !strings.HasSuffix(r[0].Message, ": 1 new leaf (1 entry, 0 registrations, 0 lifecycle events, 0 other) verified against the checkpoint's tree") {
		t.Errorf("caught-up reports:\n%s", rec)
	}
}

func TestHTTPLedger(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	hl, err := monitor.NewHTTPLedger(srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Pages larger than the ledger serves in one call.
	m, rec := newMonitor(t, hl, l.Policy(), t.TempDir(), func(c *monitor.Config) { c.PageSize = 1500 })

	err = m.Step(ctx)
	var se *monitor.StatusError
	if !errors.As(err, &se) || se.Status != 503 || se.Message != "no checkpoint is published yet" {
		t.Fatalf("Step before a checkpoint = %v, want the ledger's 503", err)
	}
	root := grow(t, l, mk, 600) // 1202 leaves: the ledger serves at most 1000 a call
	l.Publish(t, "H1", "H2")
	if err := m.Step(ctx); err != nil {
		t.Fatalf("Step: %v\n%s", err, rec)
	}
	if st := m.Status(); st.Leaves != root.Size || st.Checkpoint != root {
		t.Errorf("Status = %+v, want %+v", st, root)
	}
	if got := len(rec.of(monitor.KindEntry)); got != 600 {
		t.Errorf("%d entry reports, want 600", got)
	}

	grow(t, l, mk, 10)
	l.Publish(t, "H1", "H3")
	l.TamperProofs(func(from, to uint64, p []log.Hash) []log.Hash { return p[1:] })
	if err := m.Step(ctx); !errors.Is(err, monitor.ErrInconsistent) {
		t.Errorf("Step with a short proof over HTTP = %v, want ErrInconsistent", err)
	}

	if _, err := monitor.NewHTTPLedger("ftp://ledger.example", nil); err == nil {
		t.Error("NewHTTPLedger accepted an ftp URL")
	}
}

func TestNewRefusesCorruptState(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	grow(t, l, mk, 10)
	l.Publish(t, "H1", "H2")
	good := t.TempDir()
	m, _ := newMonitor(t, l, l.Policy(), good)
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(good, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		state []byte
		// drop removes the kept checkpoint.
		drop bool
	}{
		{"not JSON", []byte("{"), false},
		{"another version", bytes.Replace(state, []byte(`"version":1`), []byte(`"version":2`), 1), false},
		{"more leaves than the checkpoint", bytes.Replace(state, []byte(`"leaves":22`), []byte(`"leaves":23`), 1), false},
		{"fewer leaves than the range", bytes.Replace(state, []byte(`"leaves":22`), []byte(`"leaves":20`), 1), false},
		{"an unknown field", bytes.Replace(state, []byte(`"version":1`), []byte(`"version":1,"x":1`), 1), false},
		{"the kept checkpoint missing", state, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "checkpoints"), 0o700); err != nil {
				t.Fatal(err)
			}
			if !tc.drop {
				cp, err := os.ReadFile(filepath.Join(good, "checkpoints", "22"))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, "checkpoints", "22"), cp, 0o600)
			}
			if err := os.WriteFile(filepath.Join(dir, "state.json"), tc.state, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := monitor.New(monitor.Config{Ledger: l, Policy: l.Policy(), StateDir: dir})
			if err == nil || !strings.Contains(err.Error(), "couldn't resume monitor") {
				t.Errorf("New = %v, want it to refuse the state", err)
			}
		})
	}
}

func TestWrongLog(t *testing.T) {
	ctx := context.Background()
	l, mk := newLedger(t), newLeafMaker(t)
	grow(t, l, mk, 1)
	l.Publish(t, "H1", "H2")
	dir := t.TempDir()
	m, _ := newMonitor(t, l, l.Policy(), dir)
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	other := monitortest.New(t, "other.test/ledger", 0)
	other.Append(t, []byte("a leaf"))
	other.Publish(t)
	m, _ = newMonitor(t, other, other.Policy(), dir)
	if err := m.Step(ctx); !errors.Is(err, monitor.ErrWrongLog) {
		t.Errorf("Step on another log = %v, want ErrWrongLog", err)
	}
}

func TestRunStopsOnEvidence(t *testing.T) {
	l, mk := newLedger(t), newLeafMaker(t)
	grow(t, l, mk, 5)
	l.Publish(t, "H1", "H2")
	m, _ := newMonitor(t, l, l.Policy(), t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Step(ctx); err != nil {
		t.Fatal(err)
	}
	l.Fork(t, 4)
	grow(t, l, mk, 3)
	l.Publish(t, "H1", "H2")
	err := m.Run(ctx, 10*time.Millisecond)
	var ee *monitor.EvidenceError
	if !errors.As(err, &ee) || ctx.Err() != nil {
		t.Errorf("Run = %v, want the evidence of the fork before the deadline", err)
	}
}

func TestReportString(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		r    monitor.Report
		want string
	}{
		{monitor.Report{Time: at, Kind: monitor.KindCheckpoint, Message: "new checkpoint"}, "2026-03-02T10:00:00Z new checkpoint"},
		{monitor.Report{Time: at, Kind: monitor.KindFork, Message: "fork: x"}, "2026-03-02T10:00:00Z ALERT fork: x"},
	} {
		var b strings.Builder
		monitor.ReportWriter(&b)(tc.r)
		if b.String() != tc.want+"\n" {
			t.Errorf("ReportWriter wrote %q, want %q", b.String(), tc.want+"\n")
		}
	}
}
