package quorum_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/quorum"
)

// A checkpoint cosigned by one hospital witness of the three, under a policy
// that wants two, and then by a second.
func ExampleCheck() {
	skey, vkey, err := checkpoint.GenerateKey("vitalproof.example/ledger")
	if err != nil {
		panic(err)
	}
	logSigner, err := checkpoint.NewSigner(skey)
	if err != nil {
		panic(err)
	}
	policy := "log " + vkey + "\n"
	witnesses := map[string]*torchwood.CosignatureSigner{}
	for _, name := range []string{"H1", "H2", "H3"} {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		w, err := torchwood.NewCosignatureSigner(name+".hospital.example/witness", key)
		if err != nil {
			panic(err)
		}
		witnesses[name] = w
		policy += "witness " + name + " " + w.Verifier().String() + "\n"
	}
	policy += "group hospitals 2 H1 H2 H3\nquorum hospitals\n"

	signed, err := logSigner.Sign(log.Root{Size: 1, Hash: log.LeafHash([]byte("entry 0"))})
	if err != nil {
		panic(err)
	}
	cosign := func(signed []byte, w *torchwood.CosignatureSigner) []byte {
		n, err := note.Open(signed, note.VerifierList(logSigner.Verifier()))
		if err != nil {
			panic(err)
		}
		out, err := note.Sign(n, w)
		if err != nil {
			panic(err)
		}
		return out
	}

	signed = cosign(signed, witnesses["H1"])
	r, err := quorum.Check([]byte(policy), signed)
	fmt.Println(errors.Is(err, quorum.ErrNotSatisfied))
	fmt.Println(r.Reason())

	signed = cosign(signed, witnesses["H3"])
	r, err = quorum.Check([]byte(policy), signed)
	fmt.Println(err == nil, r.Summary())
	// Output:
	// true
	// quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H1; missing H2 (no cosignature), H3 (no cosignature)
	// true cosigned by H1, H3 (quorum 2 of 3 met)
}
