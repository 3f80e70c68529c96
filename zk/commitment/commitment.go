// Package commitment is VitalProof's hiding commitment to a batch of readings.
//
// A wearable (or its hub) computes the commitment at the edge and signs it
// inside the entry header; the hospital gateway checks that the batch it
// receives opens it; the zero-knowledge circuits of package zk recompute it
// in-circuit from private readings. This package is the native twin of that
// circuit code and depends on gnark-crypto only, so that devices and
// gateways do not link the prover.
//
// # Definition
//
// All values are elements of the BN254 scalar field Fr. The commitment is the
// Poseidon2 Merkle–Damgård hash ([poseidon2.NewMerkleDamgardHasher], default
// parameters, zero IV) of the sequence
//
//	Tag, Salt, Device, Metric, WindowStart, WindowEnd, Count, P_0, ..., P_{k-1}
//
// where
//
//   - Tag is the field element whose big-endian encoding is the ASCII string
//     "vitalproof/commit/v1" (right-aligned in 32 bytes);
//   - Salt is a fresh uniformly random field element, never reused;
//   - Device is SHA-256("vitalproof/device\x00" || device ID) reduced mod r;
//   - Metric is the metric's numeric identifier;
//   - WindowStart and WindowEnd are Unix seconds (end exclusive) and
//     Count is the number of readings;
//   - the readings are packed [PerElement] to an element: reading j of element
//     i (reading number 6i+j) contributes (Offset << ValueBits | Value) <<
//     (j*ReadingBits); unused slots of the last element are zero, and k =
//     ceil(Count/PerElement).
//
// Offset is the reading's time in seconds since WindowStart (less than
// 2^[OffsetBits]) and Value its fixed-point value (less than 2^[ValueBits]).
// The commitment is the 32-byte big-endian encoding of the digest.
package commitment

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"
)

const (
	// OffsetBits is the width of a reading's time offset from its window's start.
	OffsetBits = 22
	// ValueBits is the width of a reading's fixed-point value.
	ValueBits = 20
	// ReadingBits is the width of one packed reading.
	ReadingBits = OffsetBits + ValueBits
	// PerElement is the number of readings packed into one field element.
	PerElement = 6

	// MaxOffset is the largest time offset a reading can carry (about 48.5 days).
	MaxOffset = 1<<OffsetBits - 1
	// MaxValue is the largest fixed-point value a reading can carry.
	MaxValue = 1<<ValueBits - 1

	// Size is the length in bytes of a commitment and of a salt.
	Size = fr.Bytes

	tagString = "vitalproof/commit/v1"
)

// Reading is one reading as committed: its offset in seconds from the window's
// start and its fixed-point value.
type Reading struct {
	Offset uint32
	Value  uint32
}

// Opening is everything the commitment binds. A batch opens a commitment when
// [Commit] of its Opening equals it.
type Opening struct {
	Salt        [Size]byte
	DeviceID    string
	Metric      uint16
	WindowStart int64
	WindowEnd   int64
	Readings    []Reading
}

var (
	errSaltNotCanonical = errors.New("salt is not a canonical field element")
	errWindow           = errors.New("window end must be after its start and at most 2^22 seconds later")
	errOffset           = errors.New("reading offset is out of range")
	errValue            = errors.New("reading value is out of range")
)

// Tag is the domain-separation element that starts every commitment.
func Tag() fr.Element {
	var e fr.Element
	e.SetBytes([]byte(tagString))
	return e
}

// DeviceElement maps a device registry ID to the field element that the
// commitment binds.
func DeviceElement(deviceID string) fr.Element {
	h := sha256.Sum256(append([]byte("vitalproof/device\x00"), deviceID...))
	var e fr.Element
	e.SetBytes(h[:])
	return e
}

// NewSalt returns a fresh uniformly random salt.
func NewSalt() ([Size]byte, error) {
	var e fr.Element
	if _, err := e.SetRandom(); err != nil {
		return [Size]byte{}, fmt.Errorf("couldn't draw salt: %w", err)
	}
	return e.Bytes(), nil
}

// ParseSalt checks that b is the canonical encoding of a field element.
func ParseSalt(b []byte) ([Size]byte, error) {
	var s [Size]byte
	if len(b) != Size {
		return s, errSaltNotCanonical
	}
	var e fr.Element
	if err := e.SetBytesCanonical(b); err != nil {
		return s, errSaltNotCanonical
	}
	copy(s[:], b)
	return s, nil
}

// Pack returns the packed field elements of readings, PerElement to an element.
func Pack(readings []Reading) ([]fr.Element, error) {
	out := make([]fr.Element, (len(readings)+PerElement-1)/PerElement)
	acc := new(big.Int)
	word := new(big.Int)
	for i := 0; i < len(out); i++ {
		acc.SetUint64(0)
		for j := PerElement - 1; j >= 0; j-- {
			acc.Lsh(acc, ReadingBits)
			n := i*PerElement + j
			if n >= len(readings) {
				continue
			}
			r := readings[n]
			if r.Offset > MaxOffset {
				return nil, errOffset
			}
			if r.Value > MaxValue {
				return nil, errValue
			}
			word.SetUint64(uint64(r.Offset)<<ValueBits | uint64(r.Value))
			acc.Or(acc, word)
		}
		out[i].SetBigInt(acc)
	}
	return out, nil
}

// Elements returns the field elements that the commitment hashes, in order.
func Elements(o *Opening) ([]fr.Element, error) {
	if o.WindowEnd <= o.WindowStart || o.WindowEnd-o.WindowStart > MaxOffset+1 || o.WindowStart < 0 {
		return nil, errWindow
	}
	var salt fr.Element
	if err := salt.SetBytesCanonical(o.Salt[:]); err != nil {
		return nil, errSaltNotCanonical
	}
	packed, err := Pack(o.Readings)
	if err != nil {
		return nil, err
	}
	els := make([]fr.Element, 0, 7+len(packed))
	var metric, start, end, count fr.Element
	metric.SetUint64(uint64(o.Metric))
	start.SetUint64(uint64(o.WindowStart))
	end.SetUint64(uint64(o.WindowEnd))
	count.SetUint64(uint64(len(o.Readings)))
	els = append(els, Tag(), salt, DeviceElement(o.DeviceID), metric, start, end, count)
	return append(els, packed...), nil
}

// Commit returns the commitment to o.
func Commit(o *Opening) ([Size]byte, error) {
	els, err := Elements(o)
	if err != nil {
		return [Size]byte{}, fmt.Errorf("couldn't commit: %w", err)
	}
	h := poseidon2.NewMerkleDamgardHasher()
	for i := range els {
		b := els[i].Bytes()
		h.Write(b[:])
	}
	var out [Size]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}
