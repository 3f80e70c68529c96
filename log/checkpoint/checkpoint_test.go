package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	tlogformats "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/log"
	"github.com/vitalproof/vitalproof/log/logtest"
)

const origin = "vitalproof.example/ledger"

func newSigner(t testing.TB, origin string) *Signer {
	t.Helper()
	skey, _, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testRoot(size uint64) log.Root {
	return log.Root{Size: size, Hash: log.LeafHash(fmt.Appendf(nil, "root %d", size))}
}

func TestSignOpen(t *testing.T) {
	skey, vkey, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	if s.Origin() != origin || s.VerifierKey() != vkey {
		t.Fatalf("Signer origin %q, vkey %q; want %q, %q", s.Origin(), s.VerifierKey(), origin, vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, size := range []uint64{0, 1, 923748, 1<<63 - 1} {
		root := testRoot(size)
		signed, err := s.Sign(root)
		if err != nil {
			t.Fatal(err)
		}
		body, sigs, ok := strings.Cut(string(signed), "\n\n")
		if !ok || !strings.HasPrefix(sigs, "— "+origin+" ") || strings.Count(sigs, "\n") != 1 {
			t.Fatalf("signed checkpoint:\n%s", signed)
		}
		// transparency-dev's checkpoint parser reads it too.
		c, _, _, err := tlogformats.ParseCheckpoint(signed, origin, v)
		if err != nil || c.Size != size || !bytes.Equal(c.Hash, root.Hash[:]) || c.Origin != origin {
			t.Fatalf("formats/log.ParseCheckpoint = %+v, %v", c, err)
		}
		if want := fmt.Sprintf("%s\n%d\n", origin, size); !strings.HasPrefix(body, want) {
			t.Fatalf("body %q does not start with %q", body, want)
		}
		got, gotOrigin, err := Open(signed, v)
		if err != nil || got != root || gotOrigin != origin {
			t.Fatalf("Open = %v, %q, %v; want %v", got, gotOrigin, err, root)
		}
	}
	if _, err := s.Sign(log.Root{Size: 1 << 63}); err == nil {
		t.Error("Sign of a tree larger than 2^63-1 succeeded")
	}
}

func TestOpenRefuses(t *testing.T) {
	s := newSigner(t, origin)
	v := s.Verifier()
	good, err := s.Sign(testRoot(42))
	if err != nil {
		t.Fatal(err)
	}
	other := newSigner(t, origin)          // same name, another key
	elsewhere := newSigner(t, "other.log") // another log
	signedBy := func(s *Signer) []byte {
		b, err := s.Sign(testRoot(42))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	signBody := func(body string) []byte {
		b, err := note.Sign(&note.Note{Text: body}, s.signer)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	hash := strings.Split(string(good), "\n")[2]
	for _, tc := range []struct {
		name   string
		signed []byte
		want   error // nil: any error
	}{
		{"other key, same origin", signedBy(other), &note.UnverifiedNoteError{}},
		{"other log", signedBy(elsewhere), &note.UnverifiedNoteError{}},
		{"size changed", bytes.Replace(good, []byte("\n42\n"), []byte("\n43\n"), 1), &note.InvalidSignatureError{}},
		{"signature changed", append(good[:len(good)-3:len(good)-3], 'A', 'A', '\n'), &note.InvalidSignatureError{}},
		{"extension line", signBody(origin + "\n42\n" + hash + "\nextension\n"), errExtension},
		{"origin mismatch", signBody("other.log\n42\n" + hash + "\n"), nil},
		{"leading zero", signBody(origin + "\n042\n" + hash + "\n"), errMalformedCheckpoint},
		{"negative size", signBody(origin + "\n-1\n" + hash + "\n"), errMalformedCheckpoint},
		{"short hash", signBody(origin + "\n42\nAAAA\n"), errMalformedCheckpoint},
		{"two lines", signBody(origin + "\n42\n"), errMalformedCheckpoint},
		{"not a note", []byte("hello"), errMalformedCheckpoint},
		{"empty", nil, errMalformedCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Open(tc.signed, v)
			if err == nil {
				t.Fatal("Open succeeded")
			}
			switch want := tc.want.(type) {
			case nil:
			case *note.UnverifiedNoteError:
				if !errors.As(err, &want) {
					t.Errorf("error = %v, want an UnverifiedNoteError", err)
				}
			case *note.InvalidSignatureError:
				if !errors.As(err, &want) {
					t.Errorf("error = %v, want an InvalidSignatureError", err)
				}
			default:
				if !errors.Is(err, want) {
					t.Errorf("error = %v, want %v", err, want)
				}
			}
		})
	}
}

func TestKeys(t *testing.T) {
	for _, o := range []string{"", "a b", "a+b", "a\nb", "\xff"} {
		if _, _, err := GenerateKey(o); err == nil {
			t.Errorf("GenerateKey(%q) succeeded", o)
		}
	}
	skey, _, err := GenerateKey(origin)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "PRIVATE+KEY+x", skey[:len(skey)-4] + "AAAA", strings.Replace(skey, origin, "other", 1)} {
		if _, err := NewSigner(bad); err == nil {
			t.Errorf("NewSigner(mangled key) succeeded")
		} else if strings.Contains(err.Error(), skey[len(skey)-20:]) {
			t.Errorf("NewSigner error shows the key: %v", err)
		}
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log.key")
	s1, vkey1, err := LoadOrCreateKey(path, origin)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v; want mode 0600", info.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), "PRIVATE+KEY+"+origin+"+") || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("key file does not hold a note private key and a newline")
	}
	s2, vkey2, err := LoadOrCreateKey(path, origin)
	if err != nil || vkey2 != vkey1 || s2.VerifierKey() != s1.VerifierKey() {
		t.Fatalf("second load = %q, %v; want %q", vkey2, err, vkey1)
	}
	if _, _, err := LoadOrCreateKey(path, "other.log"); err == nil || !strings.Contains(err.Error(), "other.log") {
		t.Errorf("load for another origin: %v", err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path, origin); err == nil {
		t.Error("a world-readable key file was accepted")
	}
	garbage := filepath.Join(dir, "garbage.key")
	os.WriteFile(garbage, []byte("not a key\n"), 0o600)
	if _, _, err := LoadOrCreateKey(garbage, origin); err == nil {
		t.Error("a garbage key file was accepted")
	}
	if _, _, err := LoadOrCreateKey(filepath.Join(dir, "missing", "x.key"), origin); err == nil {
		t.Error("a key file in a missing directory was created")
	}

	// Racing creators agree on one key.
	racy := filepath.Join(dir, "racy.key")
	var wg sync.WaitGroup
	vkeys := make([]string, 8)
	for i := range vkeys {
		wg.Go(func() {
			_, vkeys[i], _ = LoadOrCreateKey(racy, origin)
		})
	}
	wg.Wait()
	for _, v := range vkeys {
		if v == "" || v != vkeys[0] {
			t.Fatalf("racing LoadOrCreateKey returned different keys: %q", vkeys)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".checkpoint-key-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// forkingLog returns fake roots, to see what Publisher signs.
type forkingLog struct {
	*logtest.MemLog
	root *log.Root
}

func (f forkingLog) Root(ctx context.Context) (log.Root, error) {
	if f.root != nil {
		return *f.root, nil
	}
	return f.MemLog.Root(ctx)
}

func TestPublisher(t *testing.T) {
	ctx := t.Context()
	m := logtest.NewMemLog()
	s := newSigner(t, origin)
	p := NewPublisher(m, s)

	// The empty tree.
	signed, root, err := p.Latest(ctx)
	if err != nil || root.Size != 0 || root.Hash != log.EmptyRoot {
		t.Fatalf("Latest of the empty log = %v, %v", root, err)
	}
	if got, _, err := Open(signed, s.Verifier()); err != nil || got != root {
		t.Fatalf("Open(Latest) = %v, %v", got, err)
	}

	m.Append(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	want := m.Integrate()
	signed, root, err = p.Latest(ctx)
	if err != nil || root != want {
		t.Fatalf("Latest = %v, %v; want %v", root, err, want)
	}
	if got, _, err := Open(signed, s.Verifier()); err != nil || got != want {
		t.Fatalf("Open(Latest) = %v, %v", got, err)
	}
	again, _, err := p.Latest(ctx)
	if err != nil || !bytes.Equal(again, signed) {
		t.Fatalf("Latest again = %v; want the same checkpoint", err)
	}

	m.Append(ctx, [][]byte{[]byte("d")})
	want = m.Integrate()
	if _, root, err := p.Latest(ctx); err != nil || root != want {
		t.Fatalf("Latest after growth = %v, %v; want %v", root, err, want)
	}

	// A log that forks or rewrites what was signed is refused.
	forked := want
	forked.Hash[0] ^= 1
	pf := NewPublisher(forkingLog{MemLog: m, root: &forked}, s)
	pf.root, pf.signed = want, []byte("signed")
	if _, _, err := pf.Latest(ctx); err == nil {
		t.Error("Latest signed a second root for the same size")
	}
	m.Append(ctx, [][]byte{[]byte("e")})
	grown := m.Integrate()
	grown.Hash[0] ^= 1 // not an extension of what was signed
	pg := NewPublisher(forkingLog{MemLog: m, root: &grown}, s)
	pg.root, pg.signed = want, []byte("signed")
	if _, _, err := pg.Latest(ctx); !errors.Is(err, log.ErrInvalidProof) {
		t.Errorf("Latest of a non-extending tree: error = %v, want ErrInvalidProof", err)
	}
	// A smaller root than the one signed (a lagging read) gets the signed one.
	smaller := log.Root{Size: 1, Hash: want.Hash}
	ps := NewPublisher(forkingLog{MemLog: m, root: &smaller}, s)
	ps.root, ps.signed = want, []byte("signed")
	if got, root, err := ps.Latest(ctx); err != nil || root != want || string(got) != "signed" {
		t.Errorf("Latest with a lagging root = %q, %v, %v", got, root, err)
	}
}

func FuzzOpen(f *testing.F) {
	skey := "PRIVATE+KEY+vitalproof.example/ledger+672515ec+AbBA/D8pz6clHLw6RmIns74YbZlYi6Dyk9DurFmWflVp" // a test key
	s, err := NewSigner(skey)
	if err != nil {
		f.Fatal(err)
	}
	for _, size := range []uint64{0, 1, 5, 1 << 40} {
		signed, err := s.Sign(testRoot(size))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(signed)
		f.Add(signed[:len(signed)-10])
		f.Add(bytes.Replace(signed, []byte("\n\n"), []byte("\next\n\n"), 1))
		f.Add(append(signed, signed...))
	}
	f.Add([]byte("vitalproof.example/ledger\n1\n\n— x y\n"))
	f.Fuzz(func(t *testing.T, signed []byte) {
		root, origin, err := Open(signed, s.Verifier())
		if err != nil {
			return
		}
		body, err := Format(origin, root)
		if err != nil {
			t.Fatalf("Open accepted a checkpoint Format refuses: %v", err)
		}
		if !bytes.HasPrefix(signed, append(body, '\n')) {
			t.Fatalf("Open accepted a checkpoint whose body is not canonical:\n%q", signed)
		}
	})
}
