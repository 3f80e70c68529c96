package publish

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/checkpoint"
)

// noteFixture is a log-signed checkpoint and cosigners for it.
type noteFixture struct {
	signer  *checkpoint.Signer
	signed  []byte
	text    string
	cosigns []*torchwood.CosignatureSigner
}

func newNoteFixture(t testing.TB, names ...string) *noteFixture {
	t.Helper()
	s := newSigner(t)
	signed, err := s.Sign(log.Root{Size: 10, Hash: log.LeafHash([]byte("root"))})
	if err != nil {
		t.Fatal(err)
	}
	f := &noteFixture{signer: s, signed: signed}
	f.text, _, _ = strings.Cut(string(signed), "\n\n")
	f.text += "\n"
	for _, name := range names {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := torchwood.NewCosignatureSigner(name, k)
		if err != nil {
			t.Fatal(err)
		}
		f.cosigns = append(f.cosigns, cs)
	}
	return f
}

// cosig returns the cosignature line of cosigner i on the checkpoint.
func (f *noteFixture) cosig(t testing.TB, i int) []byte {
	t.Helper()
	b, err := note.Sign(&note.Note{Text: f.text}, f.cosigns[i])
	if err != nil {
		t.Fatal(err)
	}
	_, sig, _ := bytes.Cut(b, []byte("\n\n"))
	return sig
}

func (f *noteFixture) merge(t testing.TB, signed []byte, lines ...[]byte) []byte {
	t.Helper()
	v := f.signer.Verifier()
	out, err := mergeNote(signed, v.Name(), v.KeyHash(), lines...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMergeNote(t *testing.T) {
	f := newNoteFixture(t, "c.example/w", "a.example/w", "b.example/w")
	c, a, b := f.cosig(t, 0), f.cosig(t, 1), f.cosig(t, 2)
	logLine := f.signed[len(f.text)+1:]
	want := f.text + "\n" + string(logLine) + string(a) + string(b) + string(c)

	for _, tc := range []struct {
		name   string
		signed []byte
		lines  [][]byte
	}{
		{"added in any order", f.signed, [][]byte{c, a, b}},
		{"added together", f.signed, [][]byte{append(append(bytes.Clone(b), c...), a...)}},
		{"duplicates dropped", f.signed, [][]byte{a, b, c, a, c}},
		{"log line moved first", []byte(f.text + "\n" + string(b) + string(logLine)), [][]byte{c, a}},
		{"merge into merged", f.merge(t, f.signed, b, a), [][]byte{c, b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := f.merge(t, tc.signed, tc.lines...)
			if string(got) != want {
				t.Fatalf("mergeNote =\n%s\nwant\n%s", got, want)
			}
			// The result opens with x/mod's note and torchwood verifiers.
			vs := []note.Verifier{f.signer.Verifier()}
			for _, cs := range f.cosigns {
				vs = append(vs, cs.Verifier())
			}
			n, err := note.Open(got, note.VerifierList(vs...))
			if err != nil || len(n.Sigs) != 4 {
				t.Fatalf("merged note: %v, %d signatures", err, len(n.Sigs))
			}
		})
	}
	// A second line by a key already present is dropped: the first stays.
	again := f.cosig(t, 1) // a new timestamp, or at least a new signature
	if got := f.merge(t, f.merge(t, f.signed, a), again); !bytes.Contains(got, a) || (!bytes.Equal(a, again) && bytes.Contains(got, again)) {
		t.Errorf("second cosignature by the same key was not dropped:\n%s", got)
	}

	v := f.signer.Verifier()
	for _, tc := range []struct {
		name   string
		signed string
		line   string
	}{
		{"no blank line", strings.Replace(string(f.signed), "\n\n", "\n", 1), ""},
		{"no signature", f.text + "\n", ""},
		{"no final newline", strings.TrimSuffix(string(f.signed), "\n"), ""},
		{"line without dash", string(f.signed), "a.example/w AAAAAAAA\n"},
		{"line without newline", string(f.signed), string(bytes.TrimSuffix(a, []byte("\n")))},
		{"bad base64", string(f.signed), "— a.example/w !!!!\n"},
		{"short signature", string(f.signed), "— a.example/w AAAA\n"},
		{"empty name", string(f.signed), "—  AAAAAAAA\n"},
		{"name with plus", string(f.signed), "— a+b AAAAAAAA\n"},
		{"too many", string(f.signed), manyLines(100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mergeNote([]byte(tc.signed), v.Name(), v.KeyHash(), []byte(tc.line)); err == nil {
				t.Error("mergeNote succeeded")
			}
		})
	}
}

// manyLines returns n signature lines by distinct unknown keys.
func manyLines(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString("— k" + strings.Repeat("x", i) + " AAAAAAAA\n")
	}
	return b.String()
}

func TestCosignature(t *testing.T) {
	f := newNoteFixture(t, "a.example/w", "b.example/w")
	a, b := f.cosig(t, 0), f.cosig(t, 1)
	wa := f.cosigns[0].Verifier()
	lv := f.signer.Verifier()

	got, err := cosignature(f.signed, append(bytes.Clone(b), a...), lv, wa)
	if err != nil || !bytes.Equal(got, a) {
		t.Fatalf("cosignature = %q, %v; want %q", got, err, a)
	}
	// A cosignature of another checkpoint.
	other := newNoteFixture(t)
	other.cosigns = f.cosigns
	otherSigned, err := f.signer.Sign(log.Root{Size: 11, Hash: log.LeafHash([]byte("other"))})
	if err != nil {
		t.Fatal(err)
	}
	other.text, _, _ = strings.Cut(string(otherSigned), "\n\n")
	other.text += "\n"
	foreign := other.cosig(t, 0)
	// A note signature (not a cosignature) by a key of the witness's name.
	_, ns := keyPair(t, wa.Name())
	plain, err := note.Sign(&note.Note{Text: f.text}, ns)
	if err != nil {
		t.Fatal(err)
	}
	_, plainLine, _ := bytes.Cut(plain, []byte("\n\n"))
	flipped := bytes.Clone(a)
	flipped[len(flipped)-3] ^= 1
	for _, tc := range []struct {
		name   string
		answer []byte
		want   error // nil: any error
	}{
		{"other witness only", b, errNoCosignature},
		{"empty", nil, errNoCosignature},
		{"cosignature of another checkpoint", foreign, nil},
		{"plain note signature", plainLine, errNoCosignature},
		{"corrupted", flipped, nil},
		{"not signature lines", []byte("hello\n"), errMalformedNote},
		{"no newline", bytes.TrimSuffix(a, []byte("\n")), errMalformedNote},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cosignature(f.signed, tc.answer, lv, wa)
			if err == nil {
				t.Fatal("cosignature accepted")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func keyPair(t testing.TB, name string) (note.Verifier, note.Signer) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v, s
}

// FuzzCosignature feeds arbitrary witness answers to cosignature: what it
// accepts must be one line that verifies as the witness's cosignature of the
// checkpoint with x/mod's note and torchwood's verifier.
func FuzzCosignature(f *testing.F) {
	fx := newNoteFixture(f, "a.example/w", "b.example/w")
	a, b := fx.cosig(f, 0), fx.cosig(f, 1)
	f.Add(a)
	f.Add(append(bytes.Clone(b), a...))
	f.Add(b)
	f.Add([]byte("— a.example/w AAAAAAAA\n"))
	f.Add([]byte(""))
	f.Add([]byte("\n\n"))
	wa := fx.cosigns[0].Verifier()
	lv := fx.signer.Verifier()
	f.Fuzz(func(t *testing.T, answer []byte) {
		line, err := cosignature(fx.signed, answer, lv, wa)
		if err != nil {
			return
		}
		if bytes.Count(line, []byte("\n")) != 1 || !bytes.HasSuffix(line, []byte("\n")) {
			t.Fatalf("accepted %q, not one line", line)
		}
		n, err := note.Open(append(bytes.Clone(fx.signed), line...), note.VerifierList(lv, wa))
		if err != nil || len(n.Sigs) != 2 || n.Sigs[1].Name != wa.Name() {
			t.Fatalf("accepted %q, which does not verify: %v", line, err)
		}
	})
}

// FuzzMergeNote merges arbitrary signature lines: the result, when there is
// one, is canonical (merging nothing into it changes nothing), keeps the
// log's signature first and loses no key.
func FuzzMergeNote(f *testing.F) {
	fx := newNoteFixture(f, "a.example/w", "b.example/w")
	f.Add(fx.cosig(f, 0))
	f.Add(append(fx.cosig(f, 1), fx.cosig(f, 0)...))
	f.Add([]byte("— z AAAAAAAA\n— a AAAAAAAA\n— z AAAAAAAB\n"))
	f.Add([]byte("— vitalproof.example/ledger AAAAAAAA\n"))
	f.Add([]byte("garbage"))
	v := fx.signer.Verifier()
	f.Fuzz(func(t *testing.T, lines []byte) {
		got, err := mergeNote(fx.signed, v.Name(), v.KeyHash(), lines)
		if err != nil {
			return
		}
		again, err := mergeNote(got, v.Name(), v.KeyHash())
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("merge is not canonical: %v\n%s\n%s", err, got, again)
		}
		if !bytes.HasPrefix(got, fx.signed) {
			t.Fatalf("log signature is not first:\n%s", got)
		}
		if _, err := note.Open(got, note.VerifierList(v)); err != nil {
			t.Fatalf("merged note does not open: %v", err)
		}
	})
}
