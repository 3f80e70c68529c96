package receipt

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
	"github.com/vitalproof/vitalproof/log/quorum"
)

const origin = "vitalproof.example/ledger"

// A fixed key, so that fuzz seeds stay valid.
const testSkey = "PRIVATE+KEY+vitalproof.example/ledger+672515ec+AbBA/D8pz6clHLw6RmIns74YbZlYi6Dyk9DurFmWflVp"

type fixture struct {
	signer  *checkpoint.Signer
	tree    *testonly.Tree
	entries [][]byte
	cp      []byte // signed checkpoint of the whole tree
}

func newFixture(t testing.TB, n int) *fixture {
	t.Helper()
	s, err := checkpoint.NewSigner(testSkey)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{signer: s, tree: testonly.New(rfc6962.DefaultHasher)}
	for i := range n {
		e := fmt.Appendf(nil, "entry %d", i)
		f.entries = append(f.entries, e)
		f.tree.AppendData(e)
	}
	f.cp, err = s.Sign(f.root())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) root() log.Root {
	return log.Root{Size: f.tree.Size(), Hash: log.Hash(f.tree.Hash())}
}

func (f *fixture) proof(t testing.TB, i uint64) []log.Hash {
	p, err := f.tree.InclusionProof(i, f.tree.Size())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]log.Hash, len(p))
	for i := range p {
		out[i] = log.Hash(p[i])
	}
	return out
}

func (f *fixture) receipt(t testing.TB, i uint64) []byte {
	return Format(i, f.entries[i], f.proof(t, i), f.cp)
}

func (f *fixture) policy() []byte { return Policy(f.signer.VerifierKey()) }

func TestVerify(t *testing.T) {
	for n := 1; n <= 9; n++ {
		f := newFixture(t, n)
		for i := range uint64(n) {
			r := f.receipt(t, i)
			v, err := Verify(f.policy(), r)
			if err != nil {
				t.Fatalf("tree %d, index %d: %v", n, i, err)
			}
			if v.Index != i || !bytes.Equal(v.Entry, f.entries[i]) || v.Root() != f.root() ||
				v.Origin != origin || !bytes.Equal(v.Checkpoint, f.cp) {
				t.Fatalf("tree %d, index %d: Verify = %+v", n, i, v)
			}
			if !bytes.Equal(Format(v.Index, v.Entry, v.Proof, v.Checkpoint), r) {
				t.Fatalf("tree %d, index %d: Format(Verify(r)) != r", n, i)
			}
		}
	}
}

func TestFormat(t *testing.T) {
	f := newFixture(t, 3)
	r := string(f.receipt(t, 2))
	p := f.proof(t, 2)
	want := "c2sp.org/tlog-proof@v1\n" +
		"extra ZW50cnkgMg==\n" +
		"index 2\n" +
		base64.StdEncoding.EncodeToString(p[0][:]) + "\n" +
		"\n" + string(f.cp)
	if r != want {
		t.Errorf("Format =\n%s\nwant\n%s", r, want)
	}
	if got := string(Policy("vkey")); got != "log vkey\nquorum none\n" {
		t.Errorf("Policy = %q", got)
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t, 7)
	good := f.receipt(t, 3)
	proof := f.proof(t, 3)
	flipped := append([]log.Hash(nil), proof...)
	flipped[1][7] ^= 1

	other, err := checkpoint.NewSigner(mustKey(t, origin))
	if err != nil {
		t.Fatal(err)
	}
	otherCP, err := other.Sign(f.root())
	if err != nil {
		t.Fatal(err)
	}
	smaller := f.root()
	smaller.Size = 4 // the right key and root hash, but a size the proof is not for
	lyingCP, err := f.signer.Sign(smaller)
	if err != nil {
		t.Fatal(err)
	}
	replace := func(old, new string) []byte {
		return bytes.Replace(good, []byte(old), []byte(new), 1)
	}
	for _, tc := range []struct {
		name    string
		policy  []byte
		receipt []byte
		want    error
	}{
		{"flipped proof hash", nil, Format(3, f.entries[3], flipped, f.cp), ErrInclusion},
		{"wrong index", nil, Format(4, f.entries[3], proof, f.cp), ErrInclusion},
		{"index beyond tree", nil, Format(7, f.entries[3], proof, f.cp), ErrInclusion},
		{"other entry", nil, Format(3, f.entries[4], proof, f.cp), ErrInclusion},
		{"short proof", nil, Format(3, f.entries[3], proof[:len(proof)-1], f.cp), ErrInclusion},
		{"long proof", nil, Format(3, f.entries[3], append(proof, proof[0]), f.cp), ErrInclusion},
		{"checkpoint of another tree", nil, Format(3, f.entries[3], proof, lyingCP), ErrInclusion},
		{"other key", nil, Format(3, f.entries[3], proof, otherCP), ErrCheckpoint},
		{"policy of another key", Policy(other.VerifierKey()), good, ErrCheckpoint},
		{"tampered checkpoint", nil, replace("\n7\n", "\n8\n"), ErrCheckpoint},
		{"no checkpoint", nil, good[:bytes.Index(good, []byte("\n\n"))+2], ErrMalformedReceipt},
		{"no header", nil, good[len("c2sp.org/tlog-proof@v1\n"):], ErrMalformedReceipt},
		{"other version", nil, replace("@v1", "@v2"), ErrMalformedReceipt},
		{"no extra", nil, FormatWithoutExtra(3, proof, f.cp), ErrMalformedReceipt},
		{"extra not base64", nil, replace("extra ", "extra !"), ErrMalformedReceipt},
		{"extra with CR", nil, replace("\nindex", "\r\nindex"), ErrMalformedReceipt},
		{"index with leading zero", nil, replace("index 3", "index 03"), ErrMalformedReceipt},
		{"negative index", nil, replace("index 3", "index -3"), ErrMalformedReceipt},
		{"index too large", nil, replace("index 3", "index 9223372036854775808"), ErrMalformedReceipt},
		{"hash not base64", nil, replace("index 3\n", "index 3\n!!!!\n"), ErrMalformedReceipt},
		{"short hash", nil, replace("index 3\n", "index 3\nAAAA\n"), ErrMalformedReceipt},
		{"64 hashes", nil, Format(3, f.entries[3], make([]log.Hash, 64), f.cp), ErrMalformedReceipt},
		{"too large", nil, append(bytes.Clone(good), make([]byte, MaxSize)...), ErrMalformedReceipt},
		{"empty", nil, nil, ErrMalformedReceipt},
		{"policy without quorum", []byte("log " + f.signer.VerifierKey() + "\n"), good, ErrMalformedPolicy},
		{"policy with a bad key", []byte("log nonsense\nquorum none\n"), good, ErrMalformedPolicy},
		// torchwood v0.9.0's ParsePolicy panics on these lines.
		{"policy with a vertical tab line", []byte("log " + f.signer.VerifierKey() + "\n\v\nquorum none\n"), good, ErrMalformedPolicy},
		{"policy with CRLF and a blank line", []byte("log " + f.signer.VerifierKey() + "\r\n\r\nquorum none\r\n"), good, ErrMalformedPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			policy := tc.policy
			if policy == nil {
				policy = f.policy()
			}
			v, err := Verify(policy, tc.receipt)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %+v, %v; want %v", v, err, tc.want)
			}
			checkOneSentinel(t, err)
			if strings.Contains(err.Error(), "entry 3") {
				t.Errorf("error shows the entry: %v", err)
			}
		})
	}
}

// checkOneSentinel checks that err wraps exactly one of Verify's errors and
// none of package quorum's but ErrMalformedPolicy, which is the same.
func checkOneSentinel(t *testing.T, err error) {
	t.Helper()
	n := 0
	for _, e := range []error{ErrMalformedPolicy, ErrMalformedReceipt, ErrCheckpoint, ErrInclusion} {
		if errors.Is(err, e) {
			n++
		}
	}
	if n != 1 || errors.Is(err, quorum.ErrNotSatisfied) || errors.Is(err, quorum.ErrMalformedCheckpoint) {
		t.Errorf("error wraps %d of Verify's errors, or one of package quorum's: %v", n, err)
	}
}

// TestCheckpointReason checks that a checkpoint failing a witness quorum
// fails with ErrCheckpoint and says which signatures are missing or bad.
func TestCheckpointReason(t *testing.T) {
	f := newFixture(t, 5)
	policy := "log " + f.signer.VerifierKey() + "\n"
	ws := map[string]*torchwood.CosignatureSigner{}
	for _, name := range []string{"H1", "H2", "H3"} {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		w, err := torchwood.NewCosignatureSigner(strings.ToLower(name)+".example/witness", key)
		if err != nil {
			t.Fatal(err)
		}
		ws[name] = w
		policy += "witness " + name + " " + w.Verifier().String() + " https://" + strings.ToLower(name) + ".example\n"
	}
	policy += "group hospitals 2 H1 H2 H3\nquorum hospitals\n"
	otherLog, err := checkpoint.NewSigner(mustKey(t, origin))
	if err != nil {
		t.Fatal(err)
	}
	cosign := func(signed []byte, signers ...note.Signer) []byte {
		n, err := note.Open(signed, note.VerifierList(f.signer.Verifier(), otherLog.Verifier()))
		if err != nil {
			t.Fatal(err)
		}
		out, err := note.Sign(n, signers...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// H3's cosignature of another tree, moved onto this checkpoint.
	other := newFixture(t, 2)
	h3Other := cosign(other.cp, ws["H3"])
	badH3 := string(h3Other[bytes.LastIndex(h3Other, []byte("\n— ")):])[1:]
	otherLogCP, err := otherLog.Sign(f.root())
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "couldn't verify receipt: checkpoint does not satisfy the policy: "
	for _, tc := range []struct {
		name string
		cp   []byte
		want string // "" if the receipt verifies
	}{
		{"2 of 3", cosign(f.cp, ws["H1"], ws["H3"]), ""},
		{"1 of 3", cosign(f.cp, ws["H2"]),
			`quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by H2; missing H1 (no cosignature), H3 (no cosignature)`},
		{"no cosignature", f.cp,
			`quorum not met: group "hospitals" needs 2 of H1, H2, H3; cosigned by none; missing H1 (no cosignature), H2 (no cosignature), H3 (no cosignature)`},
		{"a bad cosignature", append(cosign(f.cp, ws["H1"], ws["H2"]), badH3...),
			`the cosignature of witness H3 does not verify, and a bad signature by a key of the policy invalidates the checkpoint`},
		{"another log key", cosign(otherLogCP, ws["H1"], ws["H2"]),
			fmt.Sprintf(`the log's signature is by key %q+%08x, not the policy's %q+%08x`, origin, otherLog.Verifier().KeyHash(), origin, f.signer.Verifier().KeyHash())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify([]byte(policy), Format(2, f.entries[2], f.proof(t, 2), tc.cp))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCheckpoint) || err.Error() != prefix+tc.want {
				t.Errorf("Verify error =\n%v\nwant\n%s", err, prefix+tc.want)
			}
			checkOneSentinel(t, err)
		})
	}
}

// FormatWithoutExtra is a tlog-proof without extra data, which receipts
// must have.
func FormatWithoutExtra(index uint64, proof []log.Hash, cp []byte) []byte {
	r := Format(index, nil, proof, cp)
	return bytes.Replace(r, []byte("extra \n"), nil, 1)
}

// TestWitnessPolicy shows receipts carrying cosigned checkpoints verify
// against a policy with a witness quorum, and fail without the cosignature.
func TestWitnessPolicy(t *testing.T) {
	f := newFixture(t, 5)
	_, wkey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	w, err := torchwood.NewCosignatureSigner("hospital-1.example/witness", wkey)
	if err != nil {
		t.Fatal(err)
	}
	policy := []byte("log " + f.signer.VerifierKey() + "\n" +
		"witness h1 " + w.Verifier().String() + "\n" +
		"group hospitals 1 h1\n" +
		"quorum hospitals\n")
	n, err := note.Open(f.cp, note.VerifierList(f.signer.Verifier()))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := note.Sign(n, w)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(policy, Format(2, f.entries[2], f.proof(t, 2), cosigned)); err != nil {
		t.Errorf("cosigned receipt: %v", err)
	}
	if _, err := Verify(policy, f.receipt(t, 2)); !errors.Is(err, ErrCheckpoint) {
		t.Errorf("receipt without the witness's cosignature: error = %v, want ErrCheckpoint", err)
	}
	// The log-only policy ignores the cosignature.
	if _, err := Verify(f.policy(), Format(2, f.entries[2], f.proof(t, 2), cosigned)); err != nil {
		t.Errorf("cosigned receipt against the log-only policy: %v", err)
	}
}

func mustKey(t testing.TB, origin string) string {
	skey, _, err := checkpoint.GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	return skey
}

func FuzzVerify(fz *testing.F) {
	f := newFixture(fz, 6)
	for i := range uint64(6) {
		r := f.receipt(fz, i)
		fz.Add(r)
		fz.Add(r[:len(r)/2])
		fz.Add(bytes.Replace(r, []byte("index "), []byte("index 1"), 1))
		fz.Add(bytes.Replace(r, []byte("\n\n"), []byte("\n"), 1))
	}
	fz.Add(Format(1, []byte{}, nil, f.cp))
	fz.Add([]byte("c2sp.org/tlog-proof@v1\nextra \nindex 0\n\n"))
	policy := f.policy()
	fz.Fuzz(func(t *testing.T, r []byte) {
		v, err := Verify(policy, r)
		if err != nil {
			for _, e := range []error{ErrMalformedReceipt, ErrCheckpoint, ErrInclusion} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("Verify error wraps no step error: %v", err)
		}
		// Only canonical receipts verify.
		if !bytes.Equal(Format(v.Index, v.Entry, v.Proof, v.Checkpoint), r) {
			t.Fatalf("Verify accepted a non-canonical receipt:\n%q", r)
		}
		if err := log.VerifyInclusion(log.LeafHash(v.Entry), v.Index, v.Proof, v.Root()); err != nil {
			t.Fatalf("Verify accepted a receipt whose proof does not verify: %v", err)
		}
	})
}
