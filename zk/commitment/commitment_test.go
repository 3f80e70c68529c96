package commitment

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/big"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

// testSalt is a fixed canonical salt: bytes 0x0a, 0x01, 0x02, ..., 0x1f.
func testSalt() [Size]byte {
	var s [Size]byte
	for i := range s {
		s[i] = byte(i)
	}
	s[0] = 0x0a
	return s
}

// testOpening is a valid opening whose readings hit the packing's edges:
// offsets 0 and MaxOffset, values 0 and MaxValue, and a second element.
func testOpening() *Opening {
	return &Opening{
		Salt:        testSalt(),
		DeviceID:    "band-1",
		Metric:      1,
		WindowStart: 1741942800,
		WindowEnd:   1741942800 + MaxOffset + 1,
		Readings: []Reading{
			{0, 62}, {60, 64}, {120, 0}, {180, MaxValue}, {240, 71}, {300, 70},
			{MaxOffset, 1},
		},
	}
}

// packWant packs readings independently of Pack: reading n goes to element
// n/6 at bit 42*(n%6), offset above value.
func packWant(readings []Reading) []*big.Int {
	var out []*big.Int
	for n, r := range readings {
		if n%PerElement == 0 {
			out = append(out, new(big.Int))
		}
		word := new(big.Int).SetUint64(uint64(r.Offset))
		word.Lsh(word, ValueBits).Add(word, new(big.Int).SetUint64(uint64(r.Value)))
		word.Lsh(word, uint(ReadingBits*(n%PerElement)))
		out[len(out)-1].Add(out[len(out)-1], word)
	}
	return out
}

func TestPack(t *testing.T) {
	max := Reading{MaxOffset, MaxValue}
	repeat := func(r Reading, n int) []Reading {
		out := make([]Reading, n)
		for i := range out {
			out[i] = r
		}
		return out
	}
	tests := []struct {
		name     string
		readings []Reading
		elements int
	}{
		{"none", nil, 0},
		{"one zero", []Reading{{0, 0}}, 1},
		{"one max", []Reading{max}, 1},
		{"max offset, zero value", []Reading{{MaxOffset, 0}}, 1},
		{"zero offset, max value", []Reading{{0, MaxValue}}, 1},
		{"six max: a full element", repeat(max, 6), 1},
		{"seven max: a second element", repeat(max, 7), 2},
		{"mixed edges", testOpening().Readings, 2},
		{"twelve", repeat(Reading{7, 9}, 12), 2},
		{"thirteen", repeat(Reading{7, 9}, 13), 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pack(tt.readings)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.elements {
				t.Fatalf("%d elements, want %d", len(got), tt.elements)
			}
			want := packWant(tt.readings)
			for i := range got {
				var g big.Int
				got[i].BigInt(&g)
				if g.Cmp(want[i]) != 0 {
					t.Errorf("element %d = %x, want %x", i, &g, want[i])
				}
				// Six readings use 252 bits, below the modulus: no reduction.
				if want[i].BitLen() > PerElement*ReadingBits || want[i].Cmp(fr.Modulus()) >= 0 {
					t.Errorf("element %d does not fit the field", i)
				}
			}
		})
	}
	// A full element of maximal readings is 2^252 - 1.
	got, _ := Pack(repeat(max, 6))
	var g big.Int
	got[0].BigInt(&g)
	if want := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 252), big.NewInt(1)); g.Cmp(want) != 0 {
		t.Errorf("six maximal readings pack to %x, want 2^252-1", &g)
	}
}

func TestPackRefusals(t *testing.T) {
	for _, tt := range []struct {
		name    string
		r       Reading
		wantErr error
	}{
		{"offset 2^22", Reading{MaxOffset + 1, 0}, errOffset},
		{"offset 2^32-1", Reading{1<<32 - 1, 0}, errOffset},
		{"value 2^20", Reading{0, MaxValue + 1}, errValue},
		{"value 2^32-1", Reading{0, 1<<32 - 1}, errValue},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// In the first and in the last slot of an element.
			for _, readings := range [][]Reading{{tt.r}, {{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}, tt.r}} {
				if _, err := Pack(readings); !errors.Is(err, tt.wantErr) {
					t.Errorf("Pack = %v, want %v", err, tt.wantErr)
				}
				o := testOpening()
				o.Readings = readings
				if _, err := Commit(o); !errors.Is(err, tt.wantErr) {
					t.Errorf("Commit = %v, want %v", err, tt.wantErr)
				}
			}
		})
	}
}

func TestElements(t *testing.T) {
	o := testOpening()
	els, err := Elements(o)
	if err != nil {
		t.Fatal(err)
	}
	if len(els) != 7+2 {
		t.Fatalf("%d elements, want 9", len(els))
	}
	// The tag is the ASCII string, right-aligned.
	tag := els[0].Bytes()
	if want := append(make([]byte, 32-len(tagString)), tagString...); !bytes.Equal(tag[:], want) {
		t.Errorf("tag = %x", tag)
	}
	// The device is SHA-256 of the domain-separated ID, reduced mod r.
	h := sha256.Sum256([]byte("vitalproof/device\x00band-1"))
	dev := new(big.Int).Mod(new(big.Int).SetBytes(h[:]), fr.Modulus())
	want := []*big.Int{
		new(big.Int).SetBytes([]byte(tagString)),
		new(big.Int).SetBytes(o.Salt[:]),
		dev,
		big.NewInt(1),
		big.NewInt(o.WindowStart),
		big.NewInt(o.WindowEnd),
		big.NewInt(7),
	}
	want = append(want, packWant(o.Readings)...)
	for i := range els {
		var g big.Int
		els[i].BigInt(&g)
		if g.Cmp(want[i]) != 0 {
			t.Errorf("element %d = %x, want %x", i, &g, want[i])
		}
	}
	if d := DeviceElement("band-1"); d.BigInt(new(big.Int)).Cmp(dev) != 0 {
		t.Error("DeviceElement differs from the commitment's device element")
	}
}

// TestCommitKnownAnswer pins the commitment: any change of its definition
// (tag, element order, packing, hash) changes these vectors and must come
// with a new tag.
func TestCommitKnownAnswer(t *testing.T) {
	tests := []struct {
		name string
		o    *Opening
		want string
	}{
		{"edges", testOpening(), "2cca227e644703627884f7e87f130d0a138f86b3adc28a606994a902d3ba51bb"},
		{"minimal", &Opening{DeviceID: "d", Metric: 7, WindowStart: 0, WindowEnd: 1, Readings: []Reading{{0, 0}}}, "1e53d23d66151db5f12a14fe47141be80286bcbb520d51897d0a2a71f5596404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Commit(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(c[:]); got != tt.want {
				t.Errorf("Commit = %s, want %s", got, tt.want)
			}
			// The same value from the definition: Merkle–Damgård over the
			// Poseidon2 compression, zero IV, one element per block.
			els, _ := Elements(tt.o)
			perm := poseidon2.NewDefaultPermutation()
			state := make([]byte, fr.Bytes)
			for i := range els {
				b := els[i].Bytes()
				if state, err = perm.Compress(state, b[:]); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(state, c[:]) {
				t.Errorf("Commit = %x, the Merkle–Damgård chain gives %x", c, state)
			}
		})
	}
}

func TestCommitBinds(t *testing.T) {
	base, err := Commit(testOpening())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Commit(testOpening())
	if again != base {
		t.Fatal("Commit is not deterministic")
	}
	edits := map[string]func(o *Opening){
		"salt":         func(o *Opening) { o.Salt[31] ^= 1 },
		"device":       func(o *Opening) { o.DeviceID = "band-2" },
		"metric":       func(o *Opening) { o.Metric = 2 },
		"window start": func(o *Opening) { o.WindowStart++ },
		"window end":   func(o *Opening) { o.WindowEnd-- },
		"a value":      func(o *Opening) { o.Readings[2].Value++ },
		"an offset":    func(o *Opening) { o.Readings[6].Offset-- },
		"order":        func(o *Opening) { o.Readings[0], o.Readings[1] = o.Readings[1], o.Readings[0] },
		"one fewer":    func(o *Opening) { o.Readings = o.Readings[:6] },
	}
	for name, edit := range edits {
		t.Run(name, func(t *testing.T) {
			o := testOpening()
			edit(o)
			c, err := Commit(o)
			if err != nil {
				t.Fatal(err)
			}
			if c == base {
				t.Error("the commitment does not bind it")
			}
		})
	}
	// A trailing zero reading leaves the packed elements as they are; the
	// count still tells the two apart.
	five, six := testOpening(), testOpening()
	five.Readings = five.Readings[:5]
	six.Readings = append(six.Readings[:5:5], Reading{})
	p5, _ := Pack(five.Readings)
	p6, _ := Pack(six.Readings)
	if len(p5) != 1 || len(p6) != 1 || p5[0] != p6[0] {
		t.Fatal("test bug: a trailing zero reading should not change the packing")
	}
	c5, _ := Commit(five)
	c6, _ := Commit(six)
	if c5 == c6 {
		t.Error("five readings and the same five plus a zero reading commit alike")
	}
}

func TestCommitRefusals(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(o *Opening)
		wantErr error
	}{
		{"empty window", func(o *Opening) { o.WindowEnd = o.WindowStart }, errWindow},
		{"reversed window", func(o *Opening) { o.WindowEnd = o.WindowStart - 1 }, errWindow},
		{"window of 2^22+1 seconds", func(o *Opening) { o.WindowEnd++ }, errWindow},
		{"negative start", func(o *Opening) { o.WindowStart, o.WindowEnd = -1, 10 }, errWindow},
		{"salt is the modulus", func(o *Opening) { fr.Modulus().FillBytes(o.Salt[:]) }, errSaltNotCanonical},
		{"salt all ones", func(o *Opening) {
			for i := range o.Salt {
				o.Salt[i] = 0xff
			}
		}, errSaltNotCanonical},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testOpening()
			tt.edit(o)
			if _, err := Commit(o); !errors.Is(err, tt.wantErr) {
				t.Errorf("Commit = %v, want %v", err, tt.wantErr)
			}
		})
	}
	// The longest window is accepted.
	o := testOpening()
	if o.WindowEnd-o.WindowStart != MaxOffset+1 {
		t.Fatal("test bug: testOpening should have the longest window")
	}
	if _, err := Commit(o); err != nil {
		t.Errorf("longest window refused: %v", err)
	}
}

func TestSalt(t *testing.T) {
	r := fr.Modulus()
	rMinus1 := new(big.Int).Sub(r, big.NewInt(1))
	canonical := func(x *big.Int) []byte { return x.FillBytes(make([]byte, Size)) }
	for _, tt := range []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"zero", make([]byte, Size), true},
		{"one", canonical(big.NewInt(1)), true},
		{"r-1", canonical(rMinus1), true},
		{"r", canonical(r), false},
		{"r+1", canonical(new(big.Int).Add(r, big.NewInt(1))), false},
		{"all ones", bytes.Repeat([]byte{0xff}, Size), false},
		{"31 bytes", make([]byte, Size-1), false},
		{"33 bytes", make([]byte, Size+1), false},
		{"nil", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSalt(tt.b)
			if tt.ok != (err == nil) {
				t.Fatalf("ParseSalt = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && !bytes.Equal(s[:], tt.b) {
				t.Error("ParseSalt changed the salt")
			}
			if !tt.ok && (s != [Size]byte{} || !errors.Is(err, errSaltNotCanonical)) {
				t.Errorf("ParseSalt = %x, %v", s, err)
			}
		})
	}
	seen := map[[Size]byte]bool{}
	for range 16 {
		s, err := NewSalt()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSalt(s[:]); err != nil {
			t.Fatalf("NewSalt gave a non-canonical salt: %v", err)
		}
		if seen[s] {
			t.Fatal("NewSalt repeated a salt")
		}
		seen[s] = true
	}
}

func FuzzParseSalt(f *testing.F) {
	f.Add(make([]byte, Size))
	f.Add(fr.Modulus().FillBytes(make([]byte, Size)))
	f.Add(bytes.Repeat([]byte{0x30}, Size))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSalt(b)
		canonical := len(b) == Size && new(big.Int).SetBytes(b).Cmp(fr.Modulus()) < 0
		if canonical != (err == nil) {
			t.Fatalf("ParseSalt(%x) = %v, canonical = %v", b, err, canonical)
		}
		if err == nil && !bytes.Equal(s[:], b) {
			t.Fatal("ParseSalt changed the salt")
		}
	})
}

func BenchmarkCommit4096(b *testing.B) {
	o := testOpening()
	o.Readings = make([]Reading, 4096)
	for i := range o.Readings {
		o.Readings[i] = Reading{Offset: uint32(i * 60), Value: 70}
	}
	for b.Loop() {
		if _, err := Commit(o); err != nil {
			b.Fatal(err)
		}
	}
}
