package trillianlog

import (
	"context"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"

	"github.com/vitalproof/vitalproof/log/logtest"
)

// TestProofLen checks the length a proof must have when the log cannot
// check it against a root it knows: that of a real proof, also where the
// proof combines nodes into an ephemeral one (which a count of node IDs
// gets wrong: from 1 to 5,000 a consistency proof has 13 hashes, not 16).
func TestProofLen(t *testing.T) {
	ctx := context.Background()
	m := logtest.NewMemLog()
	const n = 300
	for i := 0; i < n; i++ {
		if err := m.Append(ctx, [][]byte{[]byte(fmt.Sprintf("leaf %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	m.Integrate()
	for to := uint64(1); to <= n; to++ {
		for from := uint64(1); from < to; from++ {
			p, err := m.ConsistencyProof(ctx, from, to)
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := proof.Consistency(from, to)
			if err != nil {
				t.Fatal(err)
			}
			if got := proofLen(nodes); got != len(p) {
				t.Fatalf("consistency %d→%d: proofLen %d, real proof %d hashes", from, to, got, len(p))
			}
		}
		for i := uint64(0); i < to; i += 7 {
			p, err := m.InclusionProof(ctx, i, to)
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := proof.Inclusion(i, to)
			if err != nil {
				t.Fatal(err)
			}
			if got := proofLen(nodes); got != len(p) {
				t.Fatalf("inclusion of %d in %d: proofLen %d, real proof %d hashes", i, to, got, len(p))
			}
		}
	}
	nodes, err := proof.Consistency(1, 5000)
	if err != nil {
		t.Fatal(err)
	}
	if got := proofLen(nodes); got != 13 {
		t.Errorf("consistency 1→5000: proofLen %d, want 13", got)
	}
}
