// Package statement defines what a VitalProof compliance proof states about
// the readings of one metric from one device over a period, and the public
// inputs that bind the statement to logged entries.
//
// This package is the native side of the circuits in package zk/circuit: a
// verifier recomputes a proof's public inputs from the entries it was given
// (their headers are public) with [Statement.PublicInputs] and never links
// the prover. It depends on gnark-crypto only.
//
// # Parts
//
// A statement combines one or more parts ([Kind]) over the readings of its
// entries, values being the metric's fixed-point encoding:
//
//   - [Range]: every reading lies in [RangeLo, RangeHi];
//   - [TimeInRange]: 100 × #{readings in [TIRLo, TIRHi]} ≥ TIRPercent ×
//     #readings (the CGM consensus target is ≥ 70% in 70–180 mg/dL);
//   - [Adherence]: readings exist on at least MinDays distinct days of the
//     period, day d being [PeriodStart + 86400·d, PeriodStart + 86400·(d+1))
//     (callers align PeriodStart to the patient's local midnight); the RPM
//     rule is 16 days in 30;
//   - [MeanBelow]: the mean of the readings is strictly below MeanBound, that
//     is Σ values < MeanBound × #readings;
//   - [MaxBelow]: every reading is strictly below MaxBound.
//
// Parameters of parts that a statement does not include are zero.
//
// # Entries and period
//
// The entries are consecutive entries of one device and metric, ordered by
// time inside the period: PeriodStart ≤ WindowStart_0, WindowEnd_i ≤
// WindowStart_{i+1} and WindowEnd_{n-1} ≤ PeriodEnd. Every entry has 1 to
// [MaxCount] readings and a window of at most 2^22 seconds; a period lasts
// at most [MaxPeriod] seconds. That the entries are all the device's
// entries of the period (completeness) is checked outside the proof, on the
// device's hash chain.
//
// # Public inputs
//
// A proof has eleven public inputs, elements of the BN254 scalar field, in
// this order:
//
//	Digest, PeriodStart, PeriodEnd,
//	RangeLo, RangeHi, TIRLo, TIRHi, TIRPercent, MinDays, MeanBound, MaxBound
//
// where Digest hashes the sequence of three-element blocks
//
//	(Device, Metric, n), (C_0, C_1, E_0), (C_2, C_3, E_1), ...
//
// with a Poseidon2 sponge: the BN254 permutation of width 4 with the
// reference (HorizenLabs) parameters that gnark-crypto ships (8 full
// rounds, 56 partial), capacity one element, rate three. The state starts as
// (DigestTag, 0, 0, 0); each block is added to lanes 1 to 3, then the state
// is permuted; Digest is lane 1 of the final state. DigestTag is the element
// whose big-endian encoding is the ASCII string "vitalproof/audit/v1",
// Device and Metric are as in the commitment, n is the number of entries
// (so the number of blocks, 1 + ceil(n/2), is fixed by the first block),
// C_i is the i-th entry's commitment (a canonical element), and
// E_p = e_{2p} + 2^99 · e_{2p+1} holds two entries' windows and counts:
//
//	e_i = WindowStart_i + 2^63 · (WindowEnd_i - WindowStart_i - 1) + 2^85 · Count_i
//
// (63, 22 and 14 bits). When n is odd, the last block is completed with
// C_n = 0 and e_n = 0. So one public input binds the ordered list of entry
// commitments, windows and counts, however many entries there are, for
// half a permutation per entry. [Statement.Digest] computes it.
package statement

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr/poseidon2"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// Kind is a set of statement parts.
type Kind uint8

// The parts a statement can combine.
const (
	Range Kind = 1 << iota
	TimeInRange
	Adherence
	MeanBelow
	MaxBelow

	allKinds = Range | TimeInRange | Adherence | MeanBelow | MaxBelow
)

var kindNames = []struct {
	k    Kind
	name string
}{{Range, "range"}, {TimeInRange, "tir"}, {Adherence, "adherence"}, {MeanBelow, "mean"}, {MaxBelow, "max"}}

// String returns the parts' names joined by "+", e.g. "range+tir".
func (k Kind) String() string {
	s := ""
	for _, n := range kindNames {
		if k&n.k != 0 {
			if s != "" {
				s += "+"
			}
			s += n.name
		}
	}
	if s == "" {
		return "none"
	}
	return s
}

// ParseKind parses the form [Kind.String] returns, and only that form:
// parts in the order of the Kind constants, each once.
func ParseKind(s string) (Kind, error) {
	var k Kind
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '+' {
			continue
		}
		part, found := s[start:i], false
		for _, n := range kindNames {
			if part == n.name && k&n.k == 0 {
				k |= n.k
				found = true
			}
		}
		if !found {
			return 0, errors.New("malformed statement kind")
		}
		start = i + 1
	}
	if k.String() != s {
		return 0, errors.New("malformed statement kind")
	}
	return k, nil
}

const (
	// NumPublic is the number of public inputs of every statement circuit.
	NumPublic = 11
	// DayLength is the length of a day in seconds.
	DayLength = 86400
	// MaxPeriodDays bounds an adherence statement's period: day boundaries
	// are proved as 11-bit day numbers.
	MaxPeriodDays = 1<<11 - 1
	// MaxCount bounds an entry's readings: counts are 14-bit in the digest.
	MaxCount = 1<<14 - 1
	// MaxPeriod bounds a period's length in seconds (about 272 years):
	// the circuit orders times within a period with 33-bit bounds.
	MaxPeriod = 1 << 33

	digestTag = "vitalproof/audit/v1"
)

// Params are a statement's parameters, in the metric's fixed-point encoding.
// Parameters of parts the statement does not include must be zero.
type Params struct {
	// RangeLo and RangeHi bound every reading ([Range]).
	RangeLo, RangeHi uint32
	// TIRLo, TIRHi and TIRPercent: at least TIRPercent percent of the readings
	// lie in [TIRLo, TIRHi] ([TimeInRange]).
	TIRLo, TIRHi, TIRPercent uint32
	// MinDays is the least number of days with a reading ([Adherence]).
	MinDays uint32
	// MeanBound is a strict upper bound on the mean ([MeanBelow]).
	MeanBound uint32
	// MaxBound is a strict upper bound on every reading ([MaxBelow]).
	MaxBound uint32
}

// Entry is the public part of a logged entry that a statement covers.
type Entry struct {
	Commitment  [commitment.Size]byte
	WindowStart int64
	WindowEnd   int64
	Count       int
}

// Statement is a claim about the readings of the entries of one device and
// metric over a period.
type Statement struct {
	Kinds  Kind
	Params Params
	// DeviceID and Metric identify the device and the metric, as in the
	// commitment.
	DeviceID string
	Metric   uint16
	// PeriodStart and PeriodEnd are Unix seconds, end exclusive.
	PeriodStart, PeriodEnd int64
	Entries                []Entry
}

var (
	errKinds     = errors.New("statement includes no part or an unknown one")
	errParams    = errors.New("statement parameters are out of range")
	errUnused    = errors.New("parameter of a part the statement does not include is not zero")
	errPeriod    = errors.New("period is empty or out of range")
	errNoEntries = errors.New("statement covers no entry")
	errEntry     = errors.New("entry window or count is out of range")
	errOrder     = errors.New("entries are not in time order inside the period")
	errLong      = errors.New("adherence period is longer than 2047 days")
	errNotCanon  = errors.New("entry commitment is not a canonical field element")
)

// Check reports whether the statement is well formed: parts and parameters
// in range, and entries in time order inside the period.
func (s *Statement) Check() error {
	if s.Kinds == 0 || s.Kinds&^allKinds != 0 {
		return errKinds
	}
	p := &s.Params
	on := func(k Kind) bool { return s.Kinds&k != 0 }
	if on(Range) {
		if p.RangeLo > p.RangeHi || p.RangeHi > commitment.MaxValue {
			return errParams
		}
	} else if p.RangeLo != 0 || p.RangeHi != 0 {
		return errUnused
	}
	if on(TimeInRange) {
		if p.TIRLo > p.TIRHi || p.TIRHi > commitment.MaxValue || p.TIRPercent > 100 {
			return errParams
		}
	} else if p.TIRLo != 0 || p.TIRHi != 0 || p.TIRPercent != 0 {
		return errUnused
	}
	if on(Adherence) {
		if p.MinDays > MaxPeriodDays {
			return errParams
		}
		if s.PeriodEnd-s.PeriodStart > MaxPeriodDays*DayLength {
			return errLong
		}
	} else if p.MinDays != 0 {
		return errUnused
	}
	if on(MeanBelow) {
		if p.MeanBound < 1 || p.MeanBound > commitment.MaxValue+1 {
			return errParams
		}
	} else if p.MeanBound != 0 {
		return errUnused
	}
	if on(MaxBelow) {
		if p.MaxBound < 1 || p.MaxBound > commitment.MaxValue+1 {
			return errParams
		}
	} else if p.MaxBound != 0 {
		return errUnused
	}
	if s.PeriodStart < 0 || s.PeriodEnd <= s.PeriodStart || s.PeriodEnd-s.PeriodStart > MaxPeriod {
		return errPeriod
	}
	if len(s.Entries) == 0 {
		return errNoEntries
	}
	prev := s.PeriodStart
	for _, e := range s.Entries {
		if e.Count < 1 || e.Count > MaxCount || e.WindowEnd <= e.WindowStart || e.WindowEnd-e.WindowStart > commitment.MaxOffset+1 {
			return errEntry
		}
		if e.WindowStart < prev {
			return errOrder
		}
		prev = e.WindowEnd
	}
	if prev > s.PeriodEnd {
		return errOrder
	}
	return nil
}

// DigestTag is the domain-separation element that starts the digest.
func DigestTag() fr.Element {
	var e fr.Element
	e.SetBytes([]byte(digestTag))
	return e
}

// EntryElement returns e_i, the element that binds an entry's window and
// count in the digest. The entry must be well formed ([Statement.Check]).
func EntryElement(e *Entry) fr.Element {
	d := new(big.Int).SetUint64(uint64(e.Count))
	d.Lsh(d, 22).Or(d, new(big.Int).SetUint64(uint64(e.WindowEnd-e.WindowStart-1)))
	d.Lsh(d, 63).Or(d, new(big.Int).SetUint64(uint64(e.WindowStart)))
	var out fr.Element
	out.SetBigInt(d)
	return out
}

// Digest returns the digest that binds the statement's device, metric and
// ordered entries. It checks the statement first.
func (s *Statement) Digest() (fr.Element, error) {
	if err := s.Check(); err != nil {
		return fr.Element{}, fmt.Errorf("couldn't compute digest: %w", err)
	}
	var n, metric fr.Element
	n.SetUint64(uint64(len(s.Entries)))
	metric.SetUint64(uint64(s.Metric))
	blocks := [][3]fr.Element{{commitment.DeviceElement(s.DeviceID), metric, n}}
	var shift fr.Element
	shift.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 99))
	for i := 0; i < len(s.Entries); i += 2 {
		var c0, c1, e fr.Element
		if err := c0.SetBytesCanonical(s.Entries[i].Commitment[:]); err != nil {
			return fr.Element{}, fmt.Errorf("couldn't compute digest: %w", errNotCanon)
		}
		e = EntryElement(&s.Entries[i])
		if i+1 < len(s.Entries) {
			if err := c1.SetBytesCanonical(s.Entries[i+1].Commitment[:]); err != nil {
				return fr.Element{}, fmt.Errorf("couldn't compute digest: %w", errNotCanon)
			}
			e1 := EntryElement(&s.Entries[i+1])
			e1.Mul(&e1, &shift)
			e.Add(&e, &e1)
		}
		blocks = append(blocks, [3]fr.Element{c0, c1, e})
	}
	return Sponge(blocks), nil
}

// Sponge parameters: the width-4 Poseidon2 permutation of the digest.
const (
	SpongeWidth         = 4
	SpongeFullRounds    = 8
	SpongePartialRounds = 56
)

var spongePermutation = poseidon2.NewPermutation(SpongeWidth, SpongeFullRounds, SpongePartialRounds)

// Sponge hashes blocks as the digest does (see the package documentation):
// the native twin of the circuit's sponge.
func Sponge(blocks [][3]fr.Element) fr.Element {
	state := [SpongeWidth]fr.Element{DigestTag()}
	for _, b := range blocks {
		for j := range b {
			state[1+j].Add(&state[1+j], &b[j])
		}
		if err := spongePermutation.Permutation(state[:]); err != nil {
			panic(err) // the state has the permutation's width
		}
	}
	return state[1]
}

// PublicInputs returns the proof's public inputs in circuit order (see the
// package documentation).
func (s *Statement) PublicInputs() ([NumPublic]fr.Element, error) {
	var out [NumPublic]fr.Element
	d, err := s.Digest()
	if err != nil {
		return out, err
	}
	out[0] = d
	out[1].SetUint64(uint64(s.PeriodStart))
	out[2].SetUint64(uint64(s.PeriodEnd))
	p := &s.Params
	for i, v := range []uint32{p.RangeLo, p.RangeHi, p.TIRLo, p.TIRHi, p.TIRPercent, p.MinDays, p.MeanBound, p.MaxBound} {
		out[3+i].SetUint64(uint64(v))
	}
	return out, nil
}
