package receipt_test

import (
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/receipt"
)

// A ledger issues a receipt for an entry; anyone holding the ledger's policy
// verifies it offline.
func ExampleVerify() {
	// The ledger's checkpoint key. The verifier key goes into the policy
	// that users of the ledger trust (policy.txt).
	skey, vkey, err := checkpoint.GenerateKey("vitalproof.example/ledger")
	if err != nil {
		panic(err)
	}
	signer, err := checkpoint.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	policy := receipt.Policy(vkey)

	// A log of two entries; its root and the inclusion proof of entry 1
	// (normally from log.Log and a checkpoint.Publisher).
	entries := [][]byte{[]byte("entry 0"), []byte("entry 1")}
	h0, h1 := log.LeafHash(entries[0]), log.LeafHash(entries[1])
	root := log.Root{Size: 2, Hash: log.Hash(rfc6962.DefaultHasher.HashChildren(h0[:], h1[:]))}
	signedCheckpoint, err := signer.Sign(root)
	if err != nil {
		panic(err)
	}
	r := receipt.Format(1, entries[1], []log.Hash{h0}, signedCheckpoint)

	// The verifier needs nothing but the receipt and the policy.
	v, err := receipt.Verify(policy, r)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%q is entry %d of the tree of size %d of %s\n", v.Entry, v.Index, v.TreeSize, v.Origin)

	// A receipt that claims another index fails, saying which check failed.
	_, err = receipt.Verify(policy, receipt.Format(0, entries[1], []log.Hash{h0}, signedCheckpoint))
	fmt.Println(errors.Is(err, receipt.ErrInclusion))
	// Output:
	// "entry 1" is entry 1 of the tree of size 2 of vitalproof.example/ledger
	// true
}
