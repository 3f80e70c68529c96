// Package prove proves and verifies VitalProof statements (package
// zk/statement) with the Groth16 circuits of package zk/circuit, and
// serializes proofs.
//
// # Proof encoding
//
// A proof is the text header
//
//	vitalproof/zk-proof/v1
//	circuit <circuit ID>
//	vk <base64 of the verifying key's SHA-256 fingerprint>
//
// followed by a blank line and gnark's compressed encoding of the BN254
// Groth16 proof (with the range checker's Pedersen commitment and its proof
// of knowledge): 196 bytes. [ParseProof] accepts exactly this form: nothing
// before or after, compressed points on the curve and in the right
// subgroup.
package prove

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"

	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/statement"
)

const (
	proofMagic = "vitalproof/zk-proof/v1"
	// MaxProofSize bounds an encoded proof.
	MaxProofSize = 2048
)

// Proof is a Groth16 proof of a statement, with the circuit it is for and
// the fingerprint of the verifying key that checks it.
type Proof struct {
	Circuit      string
	VerifyingKey [32]byte
	Groth16      groth16.Proof
}

var (
	errMalformedProof = errors.New("malformed proof")
	errWrongCircuit   = errors.New("proof is for another circuit or verifying key")
	errInvalidProof   = errors.New("proof does not verify")
)

// MarshalBinary returns the proof's encoding.
func (p *Proof) MarshalBinary() ([]byte, error) {
	if p.Groth16 == nil || strings.ContainsAny(p.Circuit, " \n") || p.Circuit == "" {
		return nil, errMalformedProof
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\ncircuit %s\nvk %s\n\n", proofMagic, p.Circuit, base64.StdEncoding.EncodeToString(p.VerifyingKey[:]))
	if _, err := p.Groth16.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("couldn't encode proof: %w", err)
	}
	return b.Bytes(), nil
}

// ParseProof parses a proof's encoding strictly.
func ParseProof(b []byte) (*Proof, error) {
	if len(b) > MaxProofSize {
		return nil, errMalformedProof
	}
	header, body, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, errMalformedProof
	}
	lines := strings.Split(string(header), "\n")
	if len(lines) != 3 || lines[0] != proofMagic {
		return nil, errMalformedProof
	}
	id, ok := strings.CutPrefix(lines[1], "circuit ")
	if !ok || id == "" || strings.ContainsAny(id, " \r\t") {
		return nil, errMalformedProof
	}
	vk64, ok := strings.CutPrefix(lines[2], "vk ")
	if !ok {
		return nil, errMalformedProof
	}
	fp, err := base64.StdEncoding.Strict().DecodeString(vk64)
	if err != nil || len(fp) != 32 || base64.StdEncoding.EncodeToString(fp) != vk64 {
		return nil, errMalformedProof
	}
	if !compressedProof(body) {
		return nil, errMalformedProof
	}
	p := &Proof{Circuit: id, VerifyingKey: [32]byte(fp), Groth16: groth16.NewProof(ecc.BN254)}
	n, err := p.Groth16.ReadFrom(bytes.NewReader(body))
	if err != nil || n != int64(len(body)) {
		return nil, errMalformedProof
	}
	return p, nil
}

// groth16Size is the length of a compressed BN254 Groth16 proof with one
// commitment: Ar (G1), Bs (G2), Krs (G1), a 4-byte count of commitments, the
// commitment (G1) and its proof of knowledge (G1).
const groth16Size = 32 + 64 + 32 + 4 + 32 + 32

// compressedProof reports whether body has the layout of a compressed proof
// with one commitment. gnark's decoder trusts the count of commitments (a
// hostile count makes it allocate without bound) and accepts uncompressed
// points, so ParseProof checks the layout first: every point's two top bits
// mark a compressed encoding, and the count is 1.
func compressedProof(body []byte) bool {
	if len(body) != groth16Size || binary.BigEndian.Uint32(body[128:132]) != 1 {
		return false
	}
	for _, off := range []int{0, 32, 96, 132, 164} {
		if body[off]>>6 == 0 {
			return false
		}
	}
	return true
}

// Prover proves statements of one circuit.
type Prover struct {
	shape circuit.Shape
	kinds statement.Kind
	id    string
	cs    constraint.ConstraintSystem
	keys  *keys.Keys
	fp    [32]byte
}

// NewProver returns a prover for the circuit of kinds over shape, compiled
// as cs, with k its keys (which must hold the proving key).
func NewProver(shape circuit.Shape, kinds statement.Kind, cs constraint.ConstraintSystem, k *keys.Keys) (*Prover, error) {
	id := circuit.ID(shape, kinds)
	if k.PK == nil || k.VK == nil || k.Meta.Circuit != id {
		return nil, fmt.Errorf("couldn't make prover for %s: keys are for %q or incomplete", id, k.Meta.Circuit)
	}
	fp, err := keys.Fingerprint(k.VK)
	if err != nil {
		return nil, err
	}
	return &Prover{shape: shape, kinds: kinds, id: id, cs: cs, keys: k, fp: fp}, nil
}

// Unsafe reports whether the prover's keys are development keys, UNSAFE FOR
// PRODUCTION.
func (p *Prover) Unsafe() bool { return p.keys.Unsafe() }

// Prove proves s from openings (one per entry, in order). The statement's
// kinds must be the prover's. A false statement yields an error wrapping
// [statement.ErrFalse], before any proving work. ctx is checked before
// proving starts: gnark's prover cannot be interrupted.
func (p *Prover) Prove(ctx context.Context, s *statement.Statement, openings []statement.Opening) (*Proof, error) {
	if s.Kinds != p.kinds {
		return nil, fmt.Errorf("couldn't prove: statement is %s but the circuit proves %s", s.Kinds, p.kinds)
	}
	a, err := circuit.Assign(p.shape, s, openings)
	if err != nil {
		return nil, fmt.Errorf("couldn't prove: %w", err)
	}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		return nil, fmt.Errorf("couldn't prove: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't prove: %w", err)
	}
	start := time.Now()
	proof, err := groth16.Prove(p.cs, p.keys.PK, w)
	if err != nil {
		return nil, fmt.Errorf("couldn't prove: %w", err)
	}
	slog.InfoContext(ctx, "proved statement", "circuit", p.id, "entries", len(s.Entries), "duration", time.Since(start), "unsafe_keys", p.Unsafe())
	return &Proof{Circuit: p.id, VerifyingKey: p.fp, Groth16: proof}, nil
}

// Verify checks proof against s, whose public inputs it recomputes from the
// statement's entries, with k, the verifying key (and its metadata) of the
// circuit the proof claims: keys from [keys.LoadVerifyingKey], whose
// fingerprint the caller has compared with the published one. A verifier
// that prints results should print [keys.UnsafeWarning] when k.Unsafe().
func Verify(k *keys.Keys, s *statement.Statement, proof *Proof) error {
	shape, kinds, err := circuit.ParseID(k.Meta.Circuit)
	if err != nil || proof.Circuit != k.Meta.Circuit || kinds != s.Kinds || len(s.Entries) > shape.Entries {
		return errWrongCircuit
	}
	fp, err := keys.Fingerprint(k.VK)
	if err != nil {
		return err
	}
	if proof.VerifyingKey != fp || hex.EncodeToString(fp[:]) != k.Meta.VerifyingKeySHA256 {
		return errWrongCircuit
	}
	pub, err := PublicWitness(s)
	if err != nil {
		return fmt.Errorf("couldn't verify proof: %w", err)
	}
	if err := groth16.Verify(proof.Groth16, k.VK, pub); err != nil {
		return errInvalidProof
	}
	return nil
}

// PublicWitness returns the public witness of s, as [groth16.Verify] takes
// it.
func PublicWitness(s *statement.Statement) (witness.Witness, error) {
	in, err := s.PublicInputs()
	if err != nil {
		return nil, err
	}
	w, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	ch := make(chan any, len(in))
	for i := range in {
		ch <- fr.Element(in[i])
	}
	close(ch)
	if err := w.Fill(len(in), 0, ch); err != nil {
		return nil, err
	}
	return w, nil
}
