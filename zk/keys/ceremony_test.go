package keys

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark/constraint"
)

// transcript is a ceremony run in memory: the contributions' encodings and
// what sealing each phase gave.
type transcript struct {
	cs      constraint.ConstraintSystem
	phase1  [][]byte
	commons *Commons
	phase2  [][]byte
	keys    *Keys
}

// runCeremony runs a ceremony for cs with n1 and n2 participants, each
// verifying the chain before contributing, as the CLI does.
func runCeremony(t testing.TB, cs constraint.ConstraintSystem, n1, n2 int) *transcript {
	t.Helper()
	ctx := context.Background()
	tr := &transcript{cs: cs}
	for range n1 {
		p, err := NewPhase1(DomainSize(cs))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tr.phase1 {
			if _, err := p.Verify(ctx, bytes.NewReader(c)); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		h, err := p.Contribute(ctx, &b)
		if err != nil {
			t.Fatal(err)
		}
		if h != sha256.Sum256(b.Bytes()) {
			t.Fatal("Contribute returned another hash than the contribution's")
		}
		tr.phase1 = append(tr.phase1, b.Bytes())
	}
	p1, err := NewPhase1(DomainSize(cs))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tr.phase1 {
		if _, err := p1.Verify(ctx, bytes.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	if tr.commons, err = p1.Seal(ctx, []byte("phase 1 beacon")); err != nil {
		t.Fatal(err)
	}
	for range n2 {
		p, err := NewPhase2(ctx, cs, tr.commons)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range tr.phase2 {
			if _, err := p.Verify(ctx, bytes.NewReader(c)); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		if _, err := p.Contribute(ctx, &b); err != nil {
			t.Fatal(err)
		}
		tr.phase2 = append(tr.phase2, b.Bytes())
	}
	p2, err := NewPhase2(ctx, cs, tr.commons)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range tr.phase2 {
		if _, err := p2.Verify(ctx, bytes.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	if tr.keys, err = p2.Seal(ctx, "test/square", []byte("phase 2 beacon")); err != nil {
		t.Fatal(err)
	}
	return tr
}

func hashes(bs [][]byte) [][32]byte {
	var out [][32]byte
	for _, b := range bs {
		out = append(out, sha256.Sum256(b))
	}
	return out
}

func TestCeremony(t *testing.T) {
	ctx := context.Background()
	cs := compileSquare(t, 8)
	tr := runCeremony(t, cs, 3, 2)

	if fmt.Sprint(tr.commons.Contributions) != fmt.Sprint(hashes(tr.phase1)) {
		t.Error("commons do not list the phase 1 contributions' hashes")
	}
	k := tr.keys
	if k.Unsafe() || k.Meta.Setup != SetupCeremony || k.Meta.Phase1Contributions != 3 || k.Meta.Phase2Contributions != 2 ||
		k.Meta.Beacon != hex.EncodeToString([]byte("phase 2 beacon")) {
		t.Fatalf("ceremony keys: %+v", k.Meta)
	}
	proveSquare(t, cs, k.PK, k.VK)
	dir := filepath.Join(t.TempDir(), "keys")
	if err := Save(ctx, dir, k); err != nil {
		t.Fatal(err)
	}
	got, err := Load(ctx, dir, cs)
	if err != nil || got.Unsafe() || got.Meta != k.Meta {
		t.Fatalf("Load: %v, metadata %+v", err, got)
	}
	proveSquare(t, cs, got.PK, got.VK)

	// The commons survive their file, and the keys do not depend on who
	// sealed phase 1: sealing again gives the same commons.
	var b bytes.Buffer
	if _, err := tr.commons.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	c, err := ReadCommons(ctx, bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var b2 bytes.Buffer
	c.WriteTo(&b2)
	if !bytes.Equal(b.Bytes(), b2.Bytes()) {
		t.Error("commons changed through their file")
	}
	p1, _ := NewPhase1(tr.commons.Domain)
	for _, c := range tr.phase1 {
		if _, err := p1.Verify(ctx, bytes.NewReader(c)); err != nil {
			t.Fatal(err)
		}
	}
	again, err := p1.Seal(ctx, tr.commons.Beacon)
	if err != nil {
		t.Fatal(err)
	}
	var b3 bytes.Buffer
	again.WriteTo(&b3)
	if !bytes.Equal(b.Bytes(), b3.Bytes()) {
		t.Error("sealing the same contributions with the same beacon gave other commons")
	}
}

// TestLayouts checks the strict readers' layouts against gnark's encodings.
func TestLayouts(t *testing.T) {
	cs := compileSquare(t, 8)
	tr := runCeremony(t, cs, 1, 1)
	size := func(l []segment) int {
		n := 0
		for _, s := range l {
			n += s.len()
		}
		return n
	}
	var srs bytes.Buffer
	tr.commons.SRS.WriteTo(&srs)
	p2, err := NewPhase2(context.Background(), cs, tr.commons)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		layout []segment
		enc    []byte
	}{
		{"phase 1", phase1Layout(DomainSize(cs)), tr.phase1[0]},
		{"commons", commonsLayout(DomainSize(cs)), srs.Bytes()},
		{"phase 2", p2.layout, tr.phase2[0]},
	} {
		if size(tt.layout) != len(tt.enc) {
			t.Errorf("%s: layout of %d bytes, encoding of %d", tt.name, size(tt.layout), len(tt.enc))
		}
	}
}

// shared is one ceremony's transcript, and an unrelated one's, for the
// refusal tests.
func sharedTranscripts(t *testing.T) (cs constraint.ConstraintSystem, tr, other *transcript) {
	t.Helper()
	cs = compileSquare(t, 8)
	return cs, runCeremony(t, cs, 3, 3), runCeremony(t, cs, 2, 2)
}

func flip(b []byte, i int, mask byte) []byte {
	b = bytes.Clone(b)
	b[i] ^= mask
	return b
}

func withChallenge(b []byte, h [32]byte) []byte {
	b = bytes.Clone(b)
	copy(b[len(b)-32:], h[:])
	return b
}

// refusalCases returns chains whose last contribution must be refused, with
// a fragment of the reason.
// lengthOffset is that of a length field, pointOffset that of a point.
func refusalCases(contribs, other [][]byte, lengthOffset, pointOffset int, lengthName string) []struct {
	name  string
	chain [][]byte
	want  string
} {
	c := contribs
	hostile := bytes.Clone(c[0])
	binary.BigEndian.PutUint32(hostile[lengthOffset:], 0xffffffff)
	if lengthName == "domain size" {
		binary.BigEndian.PutUint64(hostile[lengthOffset:], 1<<40)
	}
	return []struct {
		name  string
		chain [][]byte
		want  string
	}{
		{"skipped", [][]byte{c[0], c[2]}, "does not build on the previous state"},
		{"first skipped", [][]byte{c[1]}, "does not build on the previous state"},
		{"repeated", [][]byte{c[0], c[0]}, "does not build on the previous state"},
		{"from another ceremony", [][]byte{c[0], other[1]}, "does not build on the previous state"},
		{"proofs for another state", [][]byte{c[0], withChallenge(other[1], sha256.Sum256(c[0]))}, "failed to verify"},
		{"challenge tampered", [][]byte{c[0], flip(c[1], len(c[1])-1, 1)}, "does not build on the previous state"},
		{"point tampered", [][]byte{c[0], flip(c[1], len(c[1])/2, 1)}, "invalid contribution"},
		{"uncompressed point", [][]byte{c[0], flip(c[1], pointOffset, c[1][pointOffset]&0xc0)}, "is not compressed"},
		{"hostile length", [][]byte{hostile}, lengthName},
		{"truncated", [][]byte{c[0], c[1][:len(c[1])-1]}, "truncated"},
		{"trailing byte", [][]byte{c[0], append(bytes.Clone(c[1]), 0)}, "more than the expected"},
		{"empty", [][]byte{{}}, "truncated"},
	}
}

func TestPhase1Refusals(t *testing.T) {
	ctx := context.Background()
	cs, tr, other := sharedTranscripts(t)
	n := DomainSize(cs)
	// The domain size follows the three proofs of update (a G1 and a G2
	// point each).
	cases := refusalCases(tr.phase1, other.phase1, 3*(32+64), 0, "domain size")
	wide, err := NewPhase1(2 * n)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if _, err := wide.Contribute(ctx, &b); err != nil {
		t.Fatal(err)
	}
	cases = append(cases, struct {
		name  string
		chain [][]byte
		want  string
	}{"another domain size", [][]byte{b.Bytes()}, fmt.Sprintf("domain size is %d, want %d", 2*n, n)})
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPhase1(n)
			if err != nil {
				t.Fatal(err)
			}
			last := len(tt.chain) - 1
			for _, c := range tt.chain[:last] {
				if _, err := p.Verify(ctx, bytes.NewReader(c)); err != nil {
					t.Fatal(err)
				}
			}
			_, err = p.Verify(ctx, bytes.NewReader(tt.chain[last]))
			if !errors.Is(err, ErrInvalidContribution) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidContribution mentioning %q", err, tt.want)
			}
			// A refused contribution leaves the state as it was.
			if got := len(p.Contributions()); got != last {
				t.Fatalf("%d contributions after a refusal, want %d", got, last)
			}
			if _, err := p.Verify(ctx, bytes.NewReader(tr.phase1[last])); err != nil {
				t.Fatalf("the right contribution after a refusal: %v", err)
			}
		})
	}
}

func TestPhase2Refusals(t *testing.T) {
	ctx := context.Background()
	cs, tr, other := sharedTranscripts(t)
	// [δ]₁ follows the number of commitments (2 bytes), and the number of
	// private wires follows [δ]₁.
	cases := refusalCases(tr.phase2, other.phase2, 2+32, 2, "number of private wires is 4294967295")
	// A contribution of another ceremony's phase 2, on other commons.
	cases = append(cases, struct {
		name  string
		chain [][]byte
		want  string
	}{"on other commons", [][]byte{other.phase2[0]}, "does not build on the previous state"})
	wider := compileSquare(t, 16)
	if DomainSize(wider) == DomainSize(cs) {
		t.Fatal("test circuits share a domain size")
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPhase2(ctx, cs, tr.commons)
			if err != nil {
				t.Fatal(err)
			}
			last := len(tt.chain) - 1
			for _, c := range tt.chain[:last] {
				if _, err := p.Verify(ctx, bytes.NewReader(c)); err != nil {
					t.Fatal(err)
				}
			}
			_, err = p.Verify(ctx, bytes.NewReader(tt.chain[last]))
			if !errors.Is(err, ErrInvalidContribution) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrInvalidContribution mentioning %q", err, tt.want)
			}
			if got := len(p.Contributions()); got != last {
				t.Fatalf("%d contributions after a refusal, want %d", got, last)
			}
			if _, err := p.Verify(ctx, bytes.NewReader(tr.phase2[last])); err != nil {
				t.Fatalf("the right contribution after a refusal: %v", err)
			}
		})
	}
	if _, err := NewPhase2(ctx, wider, tr.commons); err == nil || !strings.Contains(err.Error(), "domain size") {
		t.Errorf("phase 2 started from commons of another domain size: %v", err)
	}
}

func TestSealRefusals(t *testing.T) {
	ctx := context.Background()
	cs := compileSquare(t, 8)
	p1, err := NewPhase1(DomainSize(cs))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Seal(ctx, []byte("beacon")); err == nil {
		t.Error("sealed phase 1 without contributions")
	}
	var c1 bytes.Buffer
	if _, err := p1.Contribute(ctx, &c1); err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Seal(ctx, nil); err == nil {
		t.Error("sealed phase 1 without a beacon")
	}
	commons, err := p1.Seal(ctx, []byte("beacon"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p1.Seal(ctx, []byte("beacon")); err == nil {
		t.Error("sealed phase 1 twice")
	}
	if _, err := p1.Verify(ctx, bytes.NewReader(c1.Bytes())); err == nil {
		t.Error("verified a contribution after sealing")
	}
	p2, err := NewPhase2(ctx, cs, commons)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Seal(ctx, "test/square", []byte("beacon")); err == nil {
		t.Error("sealed phase 2 without contributions")
	}
	if _, err := p2.Contribute(ctx, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Seal(ctx, "test/square", make([]byte, MaxBeaconSize+1)); err == nil {
		t.Error("sealed phase 2 with an oversized beacon")
	}
	if _, err := p2.Seal(ctx, "test/square", []byte("beacon")); err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Contribute(ctx, &bytes.Buffer{}); err == nil {
		t.Error("contributed after sealing")
	}
	for _, n := range []uint64{0, 1, 3, 6, 2 * MaxDomainSize} {
		if _, err := NewPhase1(n); err == nil {
			t.Errorf("NewPhase1(%d): no error", n)
		}
	}
}

func TestReadCommonsRefusals(t *testing.T) {
	ctx := context.Background()
	cs := compileSquare(t, 8)
	tr := runCeremony(t, cs, 2, 1)
	var b bytes.Buffer
	tr.commons.WriteTo(&b)
	good := b.String()
	header, srs, _ := strings.Cut(good, "\n\n")
	n := tr.commons.Domain
	var wide bytes.Buffer
	c2 := *tr.commons
	c2.Domain = 2 * n
	c2.WriteTo(&wide)
	for name, edit := range map[string]func(string) string{
		"format": func(s string) string { return strings.Replace(s, CommonsFormat, CommonsFormat+"x", 1) },
		"domain with a leading 0": func(s string) string {
			return strings.Replace(s, fmt.Sprintf("domain %d", n), fmt.Sprintf("domain 0%d", n), 1)
		},
		"domain not a power of two": func(s string) string {
			return strings.Replace(s, fmt.Sprintf("domain %d", n), fmt.Sprintf("domain %d", n+1), 1)
		},
		"domain of the header only": func(string) string { return wide.String() },
		"no contribution": func(s string) string {
			lines := strings.Split(header, "\n")
			return strings.Join(append(lines[:2], lines[4:]...), "\n") + "\n\n" + srs
		},
		"uppercase hex": func(s string) string {
			return strings.Replace(s, "contribution "+hex.EncodeToString(tr.commons.Contributions[0][:]), "contribution "+strings.ToUpper(hex.EncodeToString(tr.commons.Contributions[0][:])), 1)
		},
		"short hash":    func(s string) string { return strings.Replace(s, "contribution ", "contribution 00", 1) },
		"empty beacon":  func(s string) string { return header[:strings.LastIndex(header, "beacon ")] + "beacon \n\n" + srs },
		"no blank line": func(s string) string { return header + "\n" + srs },
		"trailing byte": func(s string) string { return s + "\x00" },
		"truncated":     func(s string) string { return s[:len(s)-1] },
		"header only":   func(s string) string { return header + "\n\n" },
		"CRLF":          func(s string) string { return strings.Replace(header, "\n", "\r\n", -1) + "\r\n\r\n" + srs },
		"unknown line":  func(s string) string { return strings.Replace(s, "beacon ", "note hi\nbeacon ", 1) },
		"long header line": func(s string) string {
			return strings.Replace(s, "beacon ", "contribution "+strings.Repeat("0", 5000)+"\nbeacon ", 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ReadCommons(ctx, strings.NewReader(edit(good))); err == nil {
				t.Error("read")
			}
		})
	}
	if _, err := ReadCommons(ctx, strings.NewReader(good)); err != nil {
		t.Fatalf("unedited commons: %v", err)
	}
}

func FuzzReadCommons(f *testing.F) {
	cs := compileSquare(f, 4)
	tr := runCeremony(f, cs, 1, 1)
	var b bytes.Buffer
	tr.commons.WriteTo(&b)
	f.Add(b.Bytes())
	f.Add([]byte(CommonsFormat + "\ndomain 4\ncontribution 00\nbeacon 00\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ReadCommons(context.Background(), bytes.NewReader(in))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := c.WriteTo(&out); err != nil || !bytes.Equal(out.Bytes(), in) {
			t.Fatalf("accepted commons that do not round-trip: %v", err)
		}
	})
}

func FuzzPhase1Verify(f *testing.F) {
	ctx := context.Background()
	const n = 4
	p, err := NewPhase1(n)
	if err != nil {
		f.Fatal(err)
	}
	var c1, c2 bytes.Buffer
	p.Contribute(ctx, &c1)
	p.Contribute(ctx, &c2)
	f.Add(c1.Bytes(), c2.Bytes())
	f.Add(c1.Bytes(), c1.Bytes())
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p, err := NewPhase1(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range [][]byte{a, b} {
			h, err := p.Verify(ctx, bytes.NewReader(c))
			if err != nil {
				return
			}
			if h != sha256.Sum256(c) {
				t.Fatal("accepted a contribution whose hash is not its bytes'")
			}
		}
	})
}

func FuzzPhase2Verify(f *testing.F) {
	ctx := context.Background()
	cs := compileSquare(f, 4)
	tr := runCeremony(f, cs, 1, 2)
	f.Add(tr.phase2[0], tr.phase2[1])
	f.Add(tr.phase2[1], tr.phase2[0])
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		p, err := NewPhase2(ctx, cs, tr.commons)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range [][]byte{a, b} {
			h, err := p.Verify(ctx, bytes.NewReader(c))
			if err != nil {
				return
			}
			if h != sha256.Sum256(c) {
				t.Fatal("accepted a contribution whose hash is not its bytes'")
			}
		}
	})
}
