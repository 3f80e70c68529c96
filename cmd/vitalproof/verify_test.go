package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/logtest"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/wearables"
)

// TestVerifyReceipt runs `vitalproof verify receipt` on real receipts of an
// in-memory log and on tampered ones: it must succeed only when every
// receipt verifies, and say why otherwise.
func TestVerifyReceipt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
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
	l := logtest.NewMemLog()
	var leaves [][]byte
	for _, b := range batches {
		leaves = append(leaves, b.Entry.Bytes)
	}
	if err := l.Append(ctx, leaves); err != nil {
		t.Fatal(err)
	}
	l.Integrate()
	skey, vkey, err := checkpoint.GenerateKey("cli.test/log")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := checkpoint.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	cp, root, err := checkpoint.NewPublisher(l, cs).Latest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i, leaf := range leaves {
		p, err := l.InclusionProof(ctx, uint64(i), root.Size)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "receipt-"+string(rune('0'+i))+".tlog-proof")
		if err := os.WriteFile(path, receipt.Format(uint64(i), leaf, p, cp), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	policy := filepath.Join(dir, "policy.txt")
	os.WriteFile(policy, receipt.Policy(vkey), 0o644)
	_, otherVkey, _ := checkpoint.GenerateKey("cli.test/log")
	otherPolicy := filepath.Join(dir, "other-policy.txt")
	os.WriteFile(otherPolicy, receipt.Policy(otherVkey), 0o644)

	if err := cmdVerify(ctx, append([]string{"receipt", "-q", "--policy", policy}, paths...)); err != nil {
		t.Fatalf("valid receipts: %v", err)
	}
	if err := cmdVerify(ctx, []string{"receipt", "-q", "--policy", otherPolicy, paths[0]}); err == nil {
		t.Error("a receipt verified against another log's key")
	}
	// Tamper: another entry's bytes at the same index.
	b, _ := os.ReadFile(paths[0])
	c, _ := os.ReadFile(paths[1])
	swapped := filepath.Join(dir, "swapped.tlog-proof")
	extra0 := strings.SplitN(string(b), "\n", 3)[1]
	extra1 := strings.SplitN(string(c), "\n", 3)[1]
	os.WriteFile(swapped, []byte(strings.Replace(string(b), extra0, extra1, 1)), 0o644)
	if err := cmdVerify(ctx, []string{"receipt", "-q", "--policy", policy, paths[0], swapped}); err == nil {
		t.Error("a receipt with another entry verified")
	}
	var ue usageError
	if err := cmdVerify(ctx, []string{"receipt"}); err == nil || !asUsage(err, &ue) {
		t.Errorf("no --policy: err = %v, want a usage error", err)
	}
}

func asUsage(err error, ue *usageError) bool {
	u, ok := err.(usageError)
	if ok {
		*ue = u
	}
	return ok
}
