package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/logtest"
	"github.com/vitalproof/vitalproof/log/quorum"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/log/witness"
	"github.com/vitalproof/vitalproof/wearables"
)

// receiptLog is an in-memory log of a simulated band's entries, its
// checkpoint key and three hospital witnesses, H1 to H3.
type receiptLog struct {
	dir       string
	l         *logtest.MemLog
	entries   [][]byte // the band's entries, appended by grow
	size      int      // entries appended so far
	signer    *checkpoint.Signer
	vkey      string
	witnesses map[string]*torchwood.CosignatureSigner
	// logPolicy is the path of the policy of the log alone, quorumPolicy
	// of the one that wants 2 of the 3 witnesses.
	logPolicy, quorumPolicy string
}

func newReceiptLog(t *testing.T) *receiptLog {
	t.Helper()
	rl := &receiptLog{dir: t.TempDir(), l: logtest.NewMemLog(), witnesses: map[string]*torchwood.CosignatureSigner{}}
	signer, _, _, _, err := wearables.GenerateDeviceKey("cli-band")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := wearables.NewSimulator("cli-band", "cli-hospital", signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := sim.Span(time.Now().UTC().Truncate(time.Hour).Add(-3*time.Hour), 3*time.Hour, []string{"heart-rate"}, time.Hour, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		rl.entries = append(rl.entries, b.Entry.Bytes)
	}
	skey, vkey, err := checkpoint.GenerateKey("cli.test/log")
	if err != nil {
		t.Fatal(err)
	}
	if rl.signer, err = checkpoint.NewSigner(skey); err != nil {
		t.Fatal(err)
	}
	rl.vkey = vkey
	policy := "log " + vkey + "\n"
	for _, name := range []string{"H1", "H2", "H3"} {
		host := strings.ToLower(name) + ".hospital.example"
		wskey, wvkey, err := witness.GenerateKey(host + "/witness")
		if err != nil {
			t.Fatal(err)
		}
		if rl.witnesses[name], err = witness.NewSigner(wskey); err != nil {
			t.Fatal(err)
		}
		policy += fmt.Sprintf("witness %s %s https://%s/witness\n", name, wvkey, host)
	}
	policy += "group hospitals 2 H1 H2 H3\nquorum hospitals\n"
	rl.logPolicy = rl.write(t, "policy.txt", receipt.Policy(vkey))
	rl.quorumPolicy = rl.write(t, "quorum-policy.txt", []byte(policy))
	return rl
}

func (rl *receiptLog) write(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(rl.dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// grow appends the band's entries up to n and returns the log-signed
// checkpoint of the new tree.
func (rl *receiptLog) grow(t *testing.T, n int) ([]byte, log.Root) {
	t.Helper()
	if err := rl.l.Append(context.Background(), rl.entries[rl.size:n]); err != nil {
		t.Fatal(err)
	}
	rl.size = n
	root := rl.l.Integrate()
	cp, err := rl.signer.Sign(root)
	if err != nil {
		t.Fatal(err)
	}
	return cp, root
}

// cosign adds the named witnesses' cosignatures to signed.
func (rl *receiptLog) cosign(t *testing.T, signed []byte, names ...string) []byte {
	t.Helper()
	n, err := note.Open(signed, note.VerifierList(rl.signer.Verifier()))
	if err != nil {
		t.Fatal(err)
	}
	var signers []note.Signer
	for _, name := range names {
		signers = append(signers, rl.witnesses[name])
	}
	out, err := note.Sign(n, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// receipts writes the receipts of every entry of the tree of root, with
// the checkpoint cp, to files named <prefix>-<index>.tlog-proof.
func (rl *receiptLog) receipts(t *testing.T, prefix string, cp []byte, root log.Root) []string {
	t.Helper()
	var paths []string
	for i := range root.Size {
		p, err := rl.l.InclusionProof(context.Background(), i, root.Size)
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, rl.write(t, fmt.Sprintf("%s-%d.tlog-proof", prefix, i), receipt.Format(i, rl.entries[i], p, cp)))
	}
	return paths
}

// TestVerifyReceipt runs `vitalproof verify receipt` on real receipts of an
// in-memory log and on tampered ones: it must succeed only when every
// receipt verifies, and say why otherwise.
func TestVerifyReceipt(t *testing.T) {
	ctx := context.Background()
	rl := newReceiptLog(t)
	cp, root := rl.grow(t, len(rl.entries))
	paths := rl.receipts(t, "receipt", cp, root)
	policy := rl.logPolicy
	_, otherVkey, _ := checkpoint.GenerateKey("cli.test/log")
	otherPolicy := rl.write(t, "other-policy.txt", receipt.Policy(otherVkey))

	if err := cmdVerify(ctx, append([]string{"receipt", "-q", "--policy", policy}, paths...)); err != nil {
		t.Fatalf("valid receipts: %v", err)
	}
	if err := cmdVerify(ctx, []string{"receipt", "-q", "--policy", otherPolicy, paths[0]}); err == nil {
		t.Error("a receipt verified against another log's key")
	}
	// Tamper: another entry's bytes at the same index.
	b, _ := os.ReadFile(paths[0])
	c, _ := os.ReadFile(paths[1])
	extra0 := strings.SplitN(string(b), "\n", 3)[1]
	extra1 := strings.SplitN(string(c), "\n", 3)[1]
	swapped := rl.write(t, "swapped.tlog-proof", []byte(strings.Replace(string(b), extra0, extra1, 1)))
	if err := cmdVerify(ctx, []string{"receipt", "-q", "--policy", policy, paths[0], swapped}); err == nil {
		t.Error("a receipt with another entry verified")
	}
	var ue usageError
	if err := cmdVerify(ctx, []string{"receipt"}); err == nil || !asUsage(err, &ue) {
		t.Errorf("no --policy: err = %v, want a usage error", err)
	}
}

// run runs `vitalproof verify ARGS` with stdin and returns its standard
// output and error.
func run(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runVerify(args, bytes.NewReader(stdin), &out)
	return out.String(), err
}

const twoOfThree = "cosigned by H1, H3 (quorum 2 of 3 met)"

// oneOfThree is the reason a checkpoint cosigned by H1 alone fails the
// quorum policy.
const oneOfThree = `quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H1; missing H2 (no cosignature), H3 (no cosignature)`

// TestVerifyReceiptQuorum runs `vitalproof verify receipt` on receipts whose
// checkpoints are cosigned by 2 and by 1 of the 3 witnesses of a 2-of-3
// policy: it names the cosigners once per checkpoint, and what is missing.
func TestVerifyReceiptQuorum(t *testing.T) {
	rl := newReceiptLog(t)
	cp2, root2 := rl.grow(t, 2)
	cp3, root3 := rl.grow(t, 3)
	good := append(rl.receipts(t, "two", rl.cosign(t, cp2, "H1", "H3"), root2),
		rl.receipts(t, "three", rl.cosign(t, cp3, "H3", "H1"), root3)...)
	weak := rl.receipts(t, "weak", rl.cosign(t, cp3, "H1"), root3)

	out, err := run(t, nil, append([]string{"receipt", "--policy", rl.quorumPolicy}, good...)...)
	if err != nil {
		t.Fatalf("receipts cosigned by 2 of 3: %v\n%s", err, out)
	}
	for _, want := range []string{"checkpoint cli.test/log, tree size 2: " + twoOfThree + "\n", "checkpoint cli.test/log, tree size 3: " + twoOfThree + "\n"} {
		if strings.Count(out, want) != 1 {
			t.Errorf("output does not have %q once:\n%s", want, out)
		}
	}
	if strings.Count(out, "\nOK   ") != 5 || !strings.Contains(out, "5 of 5 receipts verify") {
		t.Errorf("output:\n%s", out)
	}
	// The checkpoint line comes before the first receipt of its checkpoint.
	if i, j := strings.Index(out, "tree size 3: "), strings.Index(out, "OK   "+good[2]); i > j {
		t.Errorf("checkpoint line after its receipt:\n%s", out)
	}

	out, err = run(t, nil, append([]string{"receipt", "-q", "--policy", rl.quorumPolicy}, good...)...)
	want := "2 checkpoints of tree sizes 2 to 3: " + twoOfThree + "\n" +
		"5 of 5 receipts verify against " + rl.quorumPolicy + " (attestation: 5 device, 0 gateway)\n"
	if err != nil || out != want {
		t.Errorf("-q: err = %v, output\n%s\nwant\n%s", err, out, want)
	}

	out, err = run(t, nil, "receipt", "-q", "--policy", rl.quorumPolicy, good[0], weak[1])
	want = "FAIL " + weak[1] + ": couldn't verify receipt: checkpoint does not satisfy the policy: " + oneOfThree + "\n" +
		"checkpoint of tree size 2: " + twoOfThree + "\n" +
		"1 of 2 receipts verify against " + rl.quorumPolicy + " (attestation: 1 device, 0 gateway)\n"
	if err == nil || out != want {
		t.Errorf("1 of 3: err = %v, output\n%s\nwant\n%s", err, out, want)
	}

	out, err = run(t, nil, append([]string{"receipt", "--policy", rl.quorumPolicy}, weak...)...)
	if err == nil || strings.Count(out, oneOfThree) != 3 || strings.Contains(out, "OK ") || strings.Contains(out, "checkpoint cli.test/log") {
		t.Errorf("receipts cosigned by 1 of 3: err = %v, output:\n%s", err, out)
	}

	// The log-only policy accepts both, and names no witness.
	out, err = run(t, nil, "receipt", "-q", "--policy", rl.logPolicy, good[0], weak[0])
	want = "2 checkpoints of tree sizes 2 to 3: signed by the log (quorum none)\n" +
		"2 of 2 receipts verify against " + rl.logPolicy + " (attestation: 2 device, 0 gateway)\n"
	if err != nil || out != want {
		t.Errorf("log-only policy: err = %v, output\n%s\nwant\n%s", err, out, want)
	}

	bad := rl.write(t, "bad-policy.txt", []byte("log "+rl.vkey+"\n\v\nquorum none\n"))
	if out, err := run(t, nil, "receipt", "--policy", bad, good[0]); !errors.Is(err, quorum.ErrMalformedPolicy) || out != "" {
		t.Errorf("malformed policy: err = %v, output %q", err, out)
	}
}

// TestVerifyCheckpoint runs `vitalproof verify checkpoint` on checkpoints
// cosigned by 2 and by 1 of 3 witnesses, from files and standard input.
func TestVerifyCheckpoint(t *testing.T) {
	rl := newReceiptLog(t)
	cp, _ := rl.grow(t, 3)
	two, one := rl.cosign(t, cp, "H1", "H3"), rl.cosign(t, cp, "H1")
	twoFile, oneFile := rl.write(t, "two.txt", two), rl.write(t, "one.txt", one)
	keyOf := func(name string) string {
		return fmt.Sprintf("%q+%08x", rl.witnesses[name].Name(), rl.witnesses[name].KeyHash())
	}

	for _, args := range [][]string{{twoFile}, {"-"}, {}} {
		out, err := run(t, two, append([]string{"checkpoint", "--policy", rl.quorumPolicy}, args...)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{
			"checkpoint \"cli.test/log\", tree size 3, root hash ",
			fmt.Sprintf("log key %q+%08x: signed\n", "cli.test/log", rl.signer.Verifier().KeyHash()),
			"witness H1 (key " + keyOf("H1") + "): cosigned at ",
			"witness H2 (key " + keyOf("H2") + "): no cosignature\n",
			"witness H3 (key " + keyOf("H3") + "): cosigned at ",
			"quorum group \"hospitals\" needs 2 of H1, H2, H3: met by H1, H3\n",
			"policy satisfied: " + twoOfThree + "\n",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
	}

	for _, tc := range []struct {
		args []string
		name string
	}{{[]string{oneFile}, oneFile}, {[]string{"-"}, "standard input"}} {
		out, err := run(t, one, append([]string{"checkpoint", "--policy", rl.quorumPolicy}, tc.args...)...)
		if !errors.Is(err, quorum.ErrNotSatisfied) || err.Error() != tc.name+": checkpoint does not satisfy the policy: "+oneOfThree {
			t.Errorf("1 of 3 from %s: err = %v", tc.name, err)
		}
		if !strings.Contains(out, "quorum group \"hospitals\" needs 2 of H1, H2, H3: not met, 1 more needed (met by H1)\n") ||
			!strings.Contains(out, "policy NOT satisfied:\n  - "+oneOfThree+"\n") {
			t.Errorf("1 of 3 from %s: output:\n%s", tc.name, out)
		}
	}

	if out, err := run(t, []byte("not a checkpoint\n"), "checkpoint", "--policy", rl.quorumPolicy); !errors.Is(err, quorum.ErrMalformedCheckpoint) || out != "" {
		t.Errorf("garbage: err = %v, output %q", err, out)
	}
	if _, err := run(t, bytes.Repeat([]byte("a"), maxCheckpointFile+1), "checkpoint", "--policy", rl.quorumPolicy); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized input: err = %v", err)
	}
	var ue usageError
	for _, args := range [][]string{
		{"checkpoint", twoFile},
		{"checkpoint", "--policy", rl.quorumPolicy, twoFile, oneFile},
		{},
		{"receipts"},
	} {
		if _, err := run(t, nil, args...); !asUsage(err, &ue) {
			t.Errorf("verify %v: err = %v, want a usage error", args, err)
		}
	}
}

// TestCheckpointCommand runs `vitalproof checkpoint` against a ledger that
// serves a checkpoint cosigned by 2, then 1, of the 3 witnesses.
func TestCheckpointCommand(t *testing.T) {
	rl := newReceiptLog(t)
	cp, _ := rl.grow(t, 3)
	var mu sync.Mutex
	var serving []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/log/checkpoint.txt" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		w.Write(serving)
	}))
	defer srv.Close()
	serve := func(b []byte) {
		mu.Lock()
		defer mu.Unlock()
		serving = b
	}
	fetch := func(args ...string) (string, string, error) {
		var stdout, stderr bytes.Buffer
		err := fetchCheckpoint(context.Background(), append([]string{"--ledger", srv.URL}, args...), &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}

	two := rl.cosign(t, cp, "H1", "H3")
	serve(two)
	if out, errOut, err := fetch(); err != nil || out != string(two) || errOut != "" {
		t.Errorf("without a policy: err = %v, stdout %q, stderr %q", err, out, errOut)
	}
	if out, errOut, err := fetch("--policy", rl.quorumPolicy); err != nil || out != string(two) || !strings.Contains(errOut, "policy satisfied: "+twoOfThree+"\n") {
		t.Errorf("2 of 3: err = %v, stdout %q, stderr:\n%s", err, out, errOut)
	}

	serve(rl.cosign(t, cp, "H1"))
	out, errOut, err := fetch("--policy", rl.quorumPolicy)
	if !errors.Is(err, quorum.ErrNotSatisfied) || !strings.HasSuffix(err.Error(), ": "+oneOfThree) || out != "" ||
		!strings.Contains(errOut, "policy NOT satisfied:\n  - "+oneOfThree+"\n") {
		t.Errorf("1 of 3: err = %v, stdout %q, stderr:\n%s", err, out, errOut)
	}
	if _, _, err := fetch("--policy", filepath.Join(rl.dir, "missing.txt")); err == nil {
		t.Error("a missing policy file was accepted")
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}
