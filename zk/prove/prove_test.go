package prove

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/consensys/gnark/logger"

	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/statement"
)

func TestMain(m *testing.M) {
	logger.Disable()
	os.Exit(m.Run())
}

const day0 = 1735689600 // 2025-01-01T00:00:00Z

var (
	shape = circuit.Shape{Entries: 2, PerEntry: 6}
	kinds = statement.Range | statement.TimeInRange
)

// example returns a true statement of kinds over two hourly entries.
func example(t testing.TB) (*statement.Statement, []statement.Opening) {
	t.Helper()
	s := &statement.Statement{Kinds: kinds, Params: statement.Params{RangeLo: 40, RangeHi: 400, TIRLo: 70, TIRHi: 180, TIRPercent: 70},
		DeviceID: "dev-1", Metric: 6, PeriodStart: day0, PeriodEnd: day0 + statement.DayLength}
	var ops []statement.Opening
	for i, values := range [][]uint32{{100, 120, 190, 110}, {150, 160, 170}} {
		salt, err := commitment.NewSalt()
		if err != nil {
			t.Fatal(err)
		}
		o := &commitment.Opening{Salt: salt, DeviceID: s.DeviceID, Metric: s.Metric, WindowStart: day0 + int64(i)*3600, WindowEnd: day0 + int64(i+1)*3600}
		for k, v := range values {
			o.Readings = append(o.Readings, commitment.Reading{Offset: uint32(60 + 600*k), Value: v})
		}
		c, err := commitment.Commit(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Entries = append(s.Entries, statement.Entry{Commitment: c, WindowStart: o.WindowStart, WindowEnd: o.WindowEnd, Count: len(values)})
		ops = append(ops, statement.Opening{Salt: salt, Readings: o.Readings})
	}
	return s, ops
}

var shared struct {
	sync.Once
	p   *Prover
	k   *keys.Keys
	err error
}

// sharedProver returns one prover (and its development keys) for the
// package's tests: setups dominate their time.
func sharedProver(t testing.TB) (*Prover, *keys.Keys) {
	t.Helper()
	shared.Do(func() {
		shared.p, shared.k, shared.err = makeProver()
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.p, shared.k
}

func makeProver() (*Prover, *keys.Keys, error) {
	cs, err := circuit.Compile(shape, kinds)
	if err != nil {
		return nil, nil, err
	}
	k, err := keys.DevSetup(context.Background(), cs, circuit.ID(shape, kinds))
	if err != nil {
		return nil, nil, err
	}
	p, err := NewProver(shape, kinds, cs, k)
	return p, k, err
}

// newProver makes a prover with fresh keys.
func newProver(t testing.TB) (*Prover, *keys.Keys) {
	t.Helper()
	p, k, err := makeProver()
	if err != nil {
		t.Fatal(err)
	}
	return p, k
}

func TestProveVerify(t *testing.T) {
	ctx := context.Background()
	p, k := sharedProver(t)
	if !p.Unsafe() {
		t.Error("prover with development keys is not unsafe")
	}
	s, ops := example(t)
	proof, err := p.Prove(ctx, s, ops)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proof.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ParseProof(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(k, s, parsed); err != nil {
		t.Fatalf("Verify: %v", err)
	}

	// The proof binds every public input.
	for name, edit := range map[string]func(s *statement.Statement){
		"parameter":  func(s *statement.Statement) { s.Params.TIRPercent = 71 },
		"range":      func(s *statement.Statement) { s.Params.RangeLo = 41 },
		"period":     func(s *statement.Statement) { s.PeriodEnd++ },
		"commitment": func(s *statement.Statement) { s.Entries[1].Commitment[31] ^= 1 },
		"window":     func(s *statement.Statement) { s.Entries[1].WindowEnd++ },
		"count":      func(s *statement.Statement) { s.Entries[1].Count-- },
		"entries":    func(s *statement.Statement) { s.Entries = s.Entries[:1] },
		"device":     func(s *statement.Statement) { s.DeviceID = "dev-2" },
	} {
		c := *s
		c.Entries = append([]statement.Entry(nil), s.Entries...)
		edit(&c)
		if err := Verify(k, &c, parsed); err == nil {
			t.Errorf("%s changed: proof verifies", name)
		}
	}
	// A proof whose point is changed to another valid point does not verify.
	tampered := false
	for i := len(b) - groth16Size + 100; i < len(b)-groth16Size+128 && !tampered; i++ {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		if q, err := ParseProof(c); err == nil {
			tampered = true
			if err := Verify(k, s, q); err == nil {
				t.Error("proof with a changed Krs verifies")
			}
		}
	}
	if !tampered {
		t.Error("found no valid point near Krs")
	}
	_, other := newProver(t)
	if err := Verify(other, s, parsed); !errors.Is(err, errWrongCircuit) {
		t.Errorf("another verifying key: %v", err)
	}
	// A proof relabelled with another key's fingerprint does not verify either.
	fp, _ := keys.Fingerprint(other.VK)
	relabelled := *parsed
	relabelled.VerifyingKey = fp
	if err := Verify(other, s, &relabelled); !errors.Is(err, errInvalidProof) {
		t.Errorf("relabelled proof: %v", err)
	}
	wrongMeta := *k
	wrongMeta.Meta.Circuit = circuit.ID(circuit.Shape{Entries: 3, PerEntry: 6}, kinds)
	if err := Verify(&wrongMeta, s, proof); !errors.Is(err, errWrongCircuit) {
		t.Errorf("keys of another circuit: %v", err)
	}
	s2 := *s
	s2.Entries = append(s.Entries, s.Entries[1])
	if err := Verify(k, &s2, proof); !errors.Is(err, errWrongCircuit) {
		t.Errorf("more entries than the shape: %v", err)
	}
	// Keys loaded from disk, as a verifier does.
	dir := t.TempDir() + "/keys"
	if err := keys.Save(context.Background(), dir, k); err != nil {
		t.Fatal(err)
	}
	loaded, err := keys.LoadVerifyingKey(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(loaded, s, parsed); err != nil {
		t.Errorf("with loaded keys: %v", err)
	}
}

func TestProveRefuses(t *testing.T) {
	ctx := context.Background()
	p, _ := sharedProver(t)
	s, ops := example(t)
	s.Params.TIRPercent = 90
	if _, err := p.Prove(ctx, s, ops); !errors.Is(err, statement.ErrFalse) {
		t.Errorf("false statement: %v", err)
	}
	s, ops = example(t)
	s.Kinds = statement.Range
	s.Params = statement.Params{RangeLo: 40, RangeHi: 400}
	if _, err := p.Prove(ctx, s, ops); err == nil {
		t.Error("statement of another kind proved")
	}
	s, ops = example(t)
	ops[0].Readings[0].Value++
	if _, err := p.Prove(ctx, s, ops); err == nil || errors.Is(err, statement.ErrFalse) {
		t.Errorf("opening that does not open: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s, ops = example(t)
	if _, err := p.Prove(cctx, s, ops); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestParseProof(t *testing.T) {
	p, _ := sharedProver(t)
	s, ops := example(t)
	proof, err := p.Prove(context.Background(), s, ops)
	if err != nil {
		t.Fatal(err)
	}
	b, err := proof.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	header, body := b[:len(b)-len(groth16Bytes(t, proof))], groth16Bytes(t, proof)
	for name, bad := range map[string][]byte{
		"empty":           nil,
		"trailing byte":   append(append([]byte(nil), b...), 0),
		"short body":      b[:len(b)-1],
		"no body":         header,
		"bad magic":       append([]byte("vitalproof/zk-proof/v2"), b[len("vitalproof/zk-proof/v1"):]...),
		"extra line":      append([]byte("x\n"), b...),
		"raw point":       append(append([]byte(nil), header...), clearTop(body, 0)...),
		"two commitments": append(append([]byte(nil), header...), setByte(body, 131, 2)...),
		"too long":        make([]byte, MaxProofSize+1),
		"padded base64":   []byte("vitalproof/zk-proof/v1\ncircuit c\nvk AAAA\n\n"),
		"space in id":     []byte("vitalproof/zk-proof/v1\ncircuit a b\nvk AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"),
		"missing header":  body,
	} {
		if _, err := ParseProof(bad); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func groth16Bytes(t *testing.T, p *Proof) []byte {
	t.Helper()
	b, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for n := 0; n < 4; i++ {
		if b[i] == '\n' {
			n++
		}
	}
	return b[i:]
}

func clearTop(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] &= 0x3f
	return out
}

func setByte(b []byte, i int, v byte) []byte {
	out := append([]byte(nil), b...)
	out[i] = v
	return out
}

func FuzzParseProof(f *testing.F) {
	p, _ := sharedProver(f)
	s, ops := example(f)
	proof, err := p.Prove(context.Background(), s, ops)
	if err != nil {
		f.Fatal(err)
	}
	b, err := proof.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte("vitalproof/zk-proof/v1\ncircuit c\nvk AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseProof(b)
		if err != nil {
			return
		}
		out, err := p.MarshalBinary()
		if err != nil {
			t.Fatalf("parsed proof does not marshal: %v", err)
		}
		if string(out) != string(b) {
			t.Fatal("parse and marshal do not round-trip")
		}
	})
}
