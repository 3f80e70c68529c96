package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/std/rangecheck"

	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/statement"
)

// The smallest audit circuit (one entry of six readings) needs a phase 1
// domain of 4,096: a ceremony on it takes minutes here, most of it in
// gnark's phase 2 initialization (about 18 s, run once per participant and
// by the coordinator). The command tests therefore run ceremonies on tiny
// circuits, "test/square<bits>", that the test's compile function adds to
// the audit circuits; they use the range checker, so their keys carry a
// Pedersen commitment key as the audit circuits' do. An audit circuit is
// still used where no phase 2 is needed.

// square proves knowledge of X < 2^bits with X·X = Y.
type square struct {
	Y    frontend.Variable `gnark:",public"`
	X    frontend.Variable
	bits int
}

func (c *square) Define(api frontend.API) error {
	rangecheck.New(api).Check(c.X, c.bits)
	api.AssertIsEqual(api.Mul(c.X, c.X), c.Y)
	return nil
}

// testCompile compiles "test/square<bits>", or an audit circuit.
func testCompile(ctx context.Context, id, cacheDir string) (constraint.ConstraintSystem, error) {
	if b, ok := strings.CutPrefix(id, "test/square"); ok {
		bits, err := strconv.Atoi(b)
		if err != nil {
			return nil, usageError{err}
		}
		return frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &square{bits: bits})
	}
	return compileCircuit(ctx, id, cacheDir)
}

// runCeremony runs `vitalproof ceremony args...` and returns its stdout.
func runCeremony(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	c := &ceremony{stdout: &out, stderr: io.Discard, compile: testCompile}
	err := c.run(context.Background(), args)
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCeremony(t, args...)
	if err != nil {
		t.Fatalf("ceremony %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func fileHash(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

func randomBeacon(t *testing.T) string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ceremonyFiles are the files of a ceremony run through the commands.
type ceremonyFiles struct {
	phase1  []string
	commons string
	phase2  []string
	keys    string
	beacon  string
}

// runAll runs a ceremony for id with n participants in each phase, each
// giving the chain so far, and checks each command's transcript.
func runAll(t *testing.T, dir, id string, n int) *ceremonyFiles {
	t.Helper()
	f := &ceremonyFiles{commons: filepath.Join(dir, "commons"), keys: filepath.Join(dir, "keys"), beacon: randomBeacon(t)}
	contribute := func(phase int, chain []string, extra ...string) []string {
		out := filepath.Join(dir, fmt.Sprintf("phase%d-%d", phase, len(chain)+1))
		args := append([]string{fmt.Sprintf("phase%d", phase), "contribute", "--circuit", id}, extra...)
		for _, in := range chain {
			args = append(args, "--in", in)
		}
		stdout := mustRun(t, append(args, "--out", out)...)
		for i, in := range chain {
			if want := fmt.Sprintf("verified phase %d contribution %d %s sha256 %s\n", phase, i+1, in, fileHash(t, in)); !strings.Contains(stdout, want) {
				t.Errorf("transcript lacks %q:\n%s", want, stdout)
			}
		}
		if want := fmt.Sprintf("wrote phase %d contribution %d %s sha256 %s\n", phase, len(chain)+1, out, fileHash(t, out)); !strings.Contains(stdout, want) {
			t.Errorf("transcript lacks %q:\n%s", want, stdout)
		}
		return append(chain, out)
	}
	for range n {
		f.phase1 = contribute(1, f.phase1)
	}
	stdout := mustRun(t, append([]string{"phase1", "seal", "--circuit", id, "--beacon", randomBeacon(t), "--out", f.commons}, f.phase1...)...)
	if want := fmt.Sprintf("wrote commons %s sha256 %s\n", f.commons, fileHash(t, f.commons)); !strings.Contains(stdout, want) {
		t.Errorf("transcript lacks %q:\n%s", want, stdout)
	}
	for range n {
		f.phase2 = contribute(2, f.phase2, "--commons", f.commons)
	}
	stdout = mustRun(t, append([]string{"finish", "--circuit", id, "--commons", f.commons, "--beacon", f.beacon, "--out", f.keys}, f.phase2...)...)
	for i, p := range f.phase1 {
		if want := fmt.Sprintf("phase 1 contribution %d sha256 %s\n", i+1, fileHash(t, p)); !strings.Contains(stdout, want) {
			t.Errorf("finish transcript lacks %q:\n%s", want, stdout)
		}
	}
	for i, p := range f.phase2 {
		if want := fmt.Sprintf("verified phase 2 contribution %d %s sha256 %s\n", i+1, p, fileHash(t, p)); !strings.Contains(stdout, want) {
			t.Errorf("finish transcript lacks %q:\n%s", want, stdout)
		}
	}
	m, err := keys.ReadMetadata(f.keys)
	if err != nil {
		t.Fatal(err)
	}
	if want := "verifying key fingerprint " + m.VerifyingKeySHA256 + "\n"; !strings.Contains(stdout, want) {
		t.Errorf("finish transcript lacks %q:\n%s", want, stdout)
	}
	return f
}

// TestCeremonyEndToEnd runs a three-participant ceremony through the
// commands and proves with the keys.
func TestCeremonyEndToEnd(t *testing.T) {
	ctx := context.Background()
	const id = "test/square16"
	f := runAll(t, t.TempDir(), id, 3)
	cs, err := testCompile(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.Load(ctx, f.keys, cs)
	if err != nil {
		t.Fatal(err)
	}
	if k.Unsafe() || k.Meta.Setup != keys.SetupCeremony || k.Meta.Warning != "" ||
		k.Meta.Phase1Contributions != 3 || k.Meta.Phase2Contributions != 3 || k.Meta.Beacon != f.beacon || k.Meta.Circuit != id {
		t.Fatalf("metadata: %+v", k.Meta)
	}
	for _, tt := range []struct {
		x, y  int
		valid bool
	}{{11, 121, true}, {11, 122, false}} {
		w, err := frontend.NewWitness(&square{X: tt.x, Y: tt.y}, ecc.BN254.ScalarField())
		if err != nil {
			t.Fatal(err)
		}
		pub, err := w.Public()
		if err != nil {
			t.Fatal(err)
		}
		proof, err := groth16.Prove(cs, k.PK, w)
		if !tt.valid {
			if err == nil {
				t.Error("proved a false statement")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := groth16.Verify(proof, k.VK, pub); err != nil {
			t.Fatalf("proof made with the ceremony's keys: %v", err)
		}
		// Another statement's public input does not verify.
		wrong, _ := frontend.NewWitness(&square{X: 0, Y: 144}, ecc.BN254.ScalarField(), frontend.PublicOnly())
		if err := groth16.Verify(proof, k.VK, wrong); err == nil {
			t.Error("proof verified for another public input")
		}
	}
}

func flipByte(t *testing.T, src, dst string, at func(n int) int) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	b[at(len(b))] ^= 1
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCeremonyRefusals(t *testing.T) {
	dir := t.TempDir()
	const id = "test/square16"
	f := runAll(t, dir, id, 3)
	if err := os.Mkdir(filepath.Join(dir, "other"), 0o755); err != nil {
		t.Fatal(err)
	}
	other := runAll(t, filepath.Join(dir, "other"), "test/square8", 1)
	tampered1 := filepath.Join(dir, "tampered1")
	flipByte(t, f.phase1[1], tampered1, func(n int) int { return n / 2 })
	tampered2 := filepath.Join(dir, "tampered2")
	flipByte(t, f.phase2[1], tampered2, func(n int) int { return n / 2 })
	relinked := filepath.Join(dir, "relinked") // the challenge of another state
	flipByte(t, f.phase2[1], relinked, func(n int) int { return n - 1 })
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o755)
	beacon := randomBeacon(t)
	out := filepath.Join(dir, "out")
	seal := func(files ...string) []string {
		return append([]string{"phase1", "seal", "--circuit", id, "--beacon", beacon, "--out", out}, files...)
	}
	finish := func(files ...string) []string {
		return append([]string{"finish", "--circuit", id, "--commons", f.commons, "--beacon", beacon, "--out", out}, files...)
	}
	audit := circuit.ID(circuit.Shape{Entries: 1, PerEntry: 6}, statement.Range)
	for _, tt := range []struct {
		name    string
		args    []string
		want    []string // fragments of the error
		invalid bool     // the error wraps keys.ErrInvalidContribution
		usage   bool
	}{
		{"tampered phase 1 contribution", seal(f.phase1[0], tampered1, f.phase1[2]), []string{"contribution 2, " + tampered1}, true, false},
		{"phase 1 contribution skipped", seal(f.phase1[0], f.phase1[2]), []string{"contribution 2, " + f.phase1[2], "does not build on the previous state"}, true, false},
		{"phase 1 chain without its start", []string{"phase1", "contribute", "--circuit", id, "--in", f.phase1[1], "--out", out}, []string{"contribution 1, " + f.phase1[1], "does not build on the previous state"}, true, false},
		{"phase 1 contribution repeated", seal(f.phase1[0], f.phase1[0]), []string{"contribution 2, " + f.phase1[0]}, true, false},
		{"tampered phase 2 contribution", finish(f.phase2[0], tampered2, f.phase2[2]), []string{"contribution 2, " + tampered2}, true, false},
		{"phase 2 challenge of another state", finish(f.phase2[0], relinked, f.phase2[2]), []string{"contribution 2, " + relinked, "does not build on the previous state"}, true, false},
		{"phase 2 contribution skipped", finish(f.phase2[0], f.phase2[2]), []string{"contribution 2, " + f.phase2[2], "does not build on the previous state"}, true, false},
		{"phase 2 chain without its start", []string{"phase2", "contribute", "--circuit", id, "--commons", f.commons, "--in", f.phase2[1], "--out", out}, []string{"contribution 1, " + f.phase2[1]}, true, false},
		{"phase 2 contribution of another circuit", finish(other.phase2[0]), []string{"contribution 1, " + other.phase2[0]}, true, false},
		{"phase 1 contributions of another domain size", []string{"phase1", "seal", "--circuit", "test/square8", "--beacon", beacon, "--out", out, f.phase1[0]}, []string{f.phase1[0], "domain size is 32, want 16"}, true, false},
		{"commons of another domain size", []string{"finish", "--circuit", "test/square8", "--commons", f.commons, "--beacon", beacon, "--out", out, other.phase2[0]}, []string{"commons " + f.commons + " do not fit circuit test/square8"}, false, false},
		{"commons not a commons file", []string{"finish", "--circuit", id, "--commons", f.phase1[0], "--beacon", beacon, "--out", out, f.phase2[0]}, []string{"commons " + f.phase1[0], "malformed commons"}, false, false},
		{"audit circuit, contributions of another domain size", []string{"phase1", "contribute", "--circuit", audit, "--in", f.phase1[0], "--out", out}, []string{f.phase1[0], "domain size is 32, want 4096"}, true, false},
		{"out exists", []string{"phase1", "contribute", "--circuit", id, "--out", f.phase1[0]}, []string{"refusing to overwrite " + f.phase1[0]}, false, false},
		{"commons out exists", []string{"phase1", "seal", "--circuit", id, "--beacon", beacon, "--out", f.commons, f.phase1[0]}, []string{"refusing to overwrite " + f.commons}, false, false},
		{"key directory exists", []string{"finish", "--circuit", id, "--commons", f.commons, "--beacon", beacon, "--out", emptyDir, f.phase2[0]}, []string{"refusing to overwrite " + emptyDir}, false, false},
		{"missing contribution", seal(f.phase1[0], filepath.Join(dir, "missing")), []string{filepath.Join(dir, "missing")}, false, false},
		{"missing commons", []string{"phase2", "contribute", "--circuit", id, "--commons", filepath.Join(dir, "nocommons"), "--out", out}, []string{filepath.Join(dir, "nocommons")}, false, false},
		{"unknown circuit", []string{"phase1", "contribute", "--circuit", "vitalproof/audit/v1/sum/1x6", "--out", out}, []string{"vitalproof/audit/v1/sum/1x6"}, false, true},
		{"short beacon", []string{"phase1", "seal", "--circuit", id, "--beacon", "00ff", "--out", out, f.phase1[0]}, []string{"--beacon"}, false, true},
		{"beacon not hex", []string{"finish", "--circuit", id, "--commons", f.commons, "--beacon", "zz" + beacon[2:], "--out", out, f.phase2[0]}, []string{"--beacon"}, false, true},
		{"seal without contributions", seal(), []string{"contribution"}, false, true},
		{"finish without contributions", finish(), []string{"contribution"}, false, true},
		{"contributions as arguments", []string{"phase1", "contribute", "--circuit", id, "--out", out, f.phase1[0]}, []string{"--in"}, false, true},
		{"no --out", []string{"phase1", "contribute", "--circuit", id}, []string{"--out"}, false, true},
		{"unknown command", []string{"phase3", "contribute"}, []string{"usage"}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCeremony(t, tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if errors.Is(err, keys.ErrInvalidContribution) != tt.invalid {
				t.Errorf("error %q: wraps ErrInvalidContribution = %v, want %v", err, !tt.invalid, tt.invalid)
			}
			var ue usageError
			if errors.As(err, &ue) != tt.usage {
				t.Errorf("error %q: usage error = %v, want %v", err, !tt.usage, tt.usage)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written", out)
			}
		})
	}
	// Refusing to overwrite left the files as they were.
	for _, p := range []string{f.phase1[0], f.commons} {
		if _, err := runCeremony(t, "phase1", "contribute", "--circuit", id, "--out", p); err == nil {
			t.Errorf("%s overwritten", p)
		}
	}
	if _, err := runCeremony(t, seal(f.phase1...)...); err != nil {
		t.Errorf("the contributions after the refusals: %v", err)
	}
}

func TestCeremonyCircuits(t *testing.T) {
	shape, kinds := circuit.Shape{Entries: 1, PerEntry: 6}, statement.Range|statement.MeanBelow
	cs, err := circuit.Compile(shape, kinds)
	if err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "circuits", "--shape", shape.String(), "--kinds", kinds.String())
	want := fmt.Sprintf("%s  %d  %d  %d", circuit.ID(shape, kinds), shape.Capacity(), cs.GetNbConstraints(), keys.DomainSize(cs))
	if !strings.Contains(strings.Join(strings.Fields(out), "  "), want) {
		t.Errorf("listing lacks %q:\n%s", want, out)
	}

	out = mustRun(t, "circuits", "--compile", "none")
	lines := 0
	for _, s := range []circuit.Shape{circuit.Day, circuit.Month} {
		for k := statement.Kind(1); k <= statement.MaxBelow<<1-1; k++ {
			if !strings.Contains(out, circuit.ID(s, k)+" ") {
				t.Errorf("listing lacks %s", circuit.ID(s, k))
			}
			lines++
		}
	}
	if got := strings.Count(out, circuit.Version+"/"); got != lines+1 { // +1: the footer
		t.Errorf("%d circuits listed, want %d:\n%s", got-1, lines, out)
	}
	for _, args := range [][]string{
		{"circuits", "--compile", "some"},
		{"circuits", "--shape", "5x5"},
		{"circuits", "--kinds", "tir+range"},
		{"circuits", "extra"},
	} {
		var ue usageError
		if _, err := runCeremony(t, args...); !errors.As(err, &ue) {
			t.Errorf("%v: err = %v, want a usage error", args, err)
		}
	}
}
