package keys

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/consensys/gnark-crypto/ecc"
	curve "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend/groth16/bn254/mpcsetup"
	"github.com/consensys/gnark/constraint"
	cs_bn254 "github.com/consensys/gnark/constraint/bn254"
)

// The ceremony (gnark's backend/groth16/bn254/mpcsetup) makes production
// keys in two phases. Phase 1 (powers of tau) serves every circuit of a
// domain size ([DomainSize]); phase 2 is specific to one compiled circuit.
// In each phase, participants take turns: each verifies the chain of
// contributions so far, adds its secret randomness ([Phase1.Contribute],
// [Phase2.Contribute]), forgets it, and publishes the new state and its
// SHA-256. A coordinator verifies every contribution against its
// predecessor and seals each phase with a public random beacon chosen after
// the last contribution ([Phase1.Seal], [Phase2.Seal]). The keys are sound
// if at least one participant was honest.
//
// mpcsetup verifies a contribution against the full state before it and
// assumes that state correct, so a contribution is verified only as part of
// its chain, from the deterministic initial state (the empty phase 1 of the
// domain size, or phase 2 initialized from the commons and the circuit).
// Each contribution carries the SHA-256 of the state it builds on (its
// challenge), so a contribution left out, repeated or moved is refused.
//
// Contributions are gnark's encodings (Phase1.WriteTo, Phase2.WriteTo). They
// are read strictly: before gnark parses anything, every length and size
// field is compared with the value the chain's initial state fixes, every
// point must be compressed, and nothing may follow; an encoding must be the
// canonical one, so the SHA-256 of a contribution file is the challenge the
// next contribution carries. gnark checks that points are on the curve and
// in the right subgroup.
//
// # Commons
//
// Sealing phase 1 yields the [Commons], which phase 2 starts from. Its file
// is a text header followed by gnark's encoding of the SrsCommons:
//
//	vitalproof/ceremony-commons/v1
//	domain <domain size, a power of two>
//	contribution <hex SHA-256 of phase 1 contribution 1>
//	...
//	contribution <hex SHA-256 of phase 1 contribution n>
//	beacon <hex beacon>
//	<blank line>
//	<SrsCommons encoding>
//
// Anyone holding the phase 1 contributions can recompute the commons and
// compare.

const (
	// CommonsFormat is the first line of a commons file.
	CommonsFormat = "vitalproof/ceremony-commons/v1"
	// MaxDomainSize bounds a ceremony's domain size, far above what the
	// standard circuits need.
	MaxDomainSize = 1 << 26
	// MaxBeaconSize bounds a beacon, in bytes.
	MaxBeaconSize = 1024

	maxCommonsHeader = 1 << 20
	challengeSize    = sha256.Size
)

// ErrInvalidContribution is wrapped by the errors for a contribution that is
// malformed, made for another domain size or circuit, not built on the
// state before it, or whose proofs of update do not verify.
var ErrInvalidContribution = errors.New("invalid contribution")

var (
	errNotR1CS      = errors.New("constraint system is not a BN254 R1CS")
	errCommons      = errors.New("malformed commons file")
	errSealed       = errors.New("ceremony phase already sealed")
	errNoContrib    = errors.New("no contribution to seal")
	errBeacon       = fmt.Errorf("beacon must be 1 to %d bytes", MaxBeaconSize)
	errDomain       = fmt.Errorf("domain size must be a power of two from 2 to %d", MaxDomainSize)
	errUnlinked     = errors.New("it does not build on the previous state (its challenge is another state's hash): a contribution is missing, repeated or out of order")
	errNotCanonical = errors.New("it is not in gnark's canonical encoding")
)

// DomainSize returns the phase 1 domain size that cs needs.
func DomainSize(cs constraint.ConstraintSystem) uint64 {
	return ecc.NextPowerOfTwo(uint64(cs.GetNbConstraints()))
}

func checkDomain(n uint64) error {
	if n < 2 || n > MaxDomainSize || n&(n-1) != 0 {
		return errDomain
	}
	return nil
}

func checkBeacon(beacon []byte) error {
	if len(beacon) == 0 || len(beacon) > MaxBeaconSize {
		return errBeacon
	}
	return nil
}

// Phase1 is phase 1 of a ceremony for one domain size: the initial state
// followed by the contributions verified or made so far, in order.
type Phase1 struct {
	n      uint64
	state  *mpcsetup.Phase1 // nil once sealed
	hash   [32]byte         // SHA-256 of state's encoding
	hashes [][32]byte
}

// NewPhase1 starts phase 1 for domain size n.
func NewPhase1(n uint64) (*Phase1, error) {
	if err := checkDomain(n); err != nil {
		return nil, fmt.Errorf("couldn't start phase 1: %w", err)
	}
	s := mpcsetup.NewPhase1(n)
	h, err := stateHash(s)
	if err != nil {
		return nil, fmt.Errorf("couldn't start phase 1: %w", err)
	}
	return &Phase1{n: n, state: s, hash: h}, nil
}

// Domain returns the domain size.
func (p *Phase1) Domain() uint64 { return p.n }

// Contributions returns the SHA-256 of each contribution so far, in order.
func (p *Phase1) Contributions() [][32]byte { return slices.Clone(p.hashes) }

// Verify reads the next contribution from r and verifies it against the
// current state, which it then replaces. It returns the contribution's
// SHA-256. An error wraps [ErrInvalidContribution] when the contribution
// is refused; p is then unchanged.
func (p *Phase1) Verify(ctx context.Context, r io.Reader) ([32]byte, error) {
	if p.state == nil {
		return [32]byte{}, errSealed
	}
	next := new(mpcsetup.Phase1)
	h, err := readState(ctx, r, next, phase1Layout(p.n), ErrInvalidContribution)
	if err != nil {
		return [32]byte{}, err
	}
	if !bytes.Equal(next.Challenge, p.hash[:]) {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrInvalidContribution, errUnlinked)
	}
	if err := p.state.Verify(next); err != nil {
		return [32]byte{}, fmt.Errorf("%w: %v", ErrInvalidContribution, err)
	}
	p.state, p.hash = next, h
	p.hashes = append(p.hashes, h)
	return h, nil
}

// Contribute adds a contribution to the current state, with randomness from
// crypto/rand that it forgets, writes it to w and returns its SHA-256. The
// contribution becomes the current state; after an error, p must not be
// used.
func (p *Phase1) Contribute(ctx context.Context, w io.Writer) ([32]byte, error) {
	if p.state == nil {
		return [32]byte{}, errSealed
	}
	if err := ctx.Err(); err != nil {
		return [32]byte{}, fmt.Errorf("couldn't contribute to phase 1: %w", err)
	}
	p.state.Contribute()
	h, err := writeState(w, p.state)
	if err != nil {
		p.state = nil
		return [32]byte{}, fmt.Errorf("couldn't write phase 1 contribution: %w", err)
	}
	p.hash = h
	p.hashes = append(p.hashes, h)
	return h, nil
}

// Seal seals phase 1 with beacon, a public random value chosen after the
// last contribution, and returns the commons for phase 2. p cannot be used
// afterwards.
func (p *Phase1) Seal(ctx context.Context, beacon []byte) (*Commons, error) {
	switch {
	case p.state == nil:
		return nil, errSealed
	case len(p.hashes) == 0:
		return nil, fmt.Errorf("couldn't seal phase 1: %w", errNoContrib)
	}
	if err := checkBeacon(beacon); err != nil {
		return nil, fmt.Errorf("couldn't seal phase 1: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't seal phase 1: %w", err)
	}
	srs := p.state.Seal(beacon)
	p.state = nil
	return &Commons{Domain: p.n, Contributions: slices.Clone(p.hashes), Beacon: slices.Clone(beacon), SRS: &srs}, nil
}

// Commons is the result of phase 1: the circuit-independent part of the
// keys for a domain size, and the transcript that made it.
type Commons struct {
	Domain uint64
	// Contributions are the SHA-256 of the phase 1 contributions, in order.
	Contributions [][32]byte
	// Beacon sealed phase 1.
	Beacon []byte
	SRS    *mpcsetup.SrsCommons
}

// WriteTo writes the commons file.
func (c *Commons) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\ndomain %d\n", CommonsFormat, c.Domain)
	for _, h := range c.Contributions {
		fmt.Fprintf(&b, "contribution %x\n", h)
	}
	fmt.Fprintf(&b, "beacon %x\n\n", c.Beacon)
	n, err := io.WriteString(w, b.String())
	if err != nil {
		return int64(n), err
	}
	m, err := c.SRS.WriteTo(w)
	return int64(n) + m, err
}

// ReadCommons reads a commons file strictly. The SRS is taken as it is:
// whoever relies on it compares the file's SHA-256 with the one the
// coordinator published, or seals the phase 1 contributions again.
func ReadCommons(ctx context.Context, r io.Reader) (*Commons, error) {
	br := bufio.NewReader(r)
	budget := maxCommonsHeader
	line := func() (string, error) {
		b, err := br.ReadSlice('\n')
		budget -= len(b)
		switch {
		case err == nil && budget >= 0:
			return string(b[:len(b)-1]), nil
		case err == nil, errors.Is(err, io.EOF), errors.Is(err, bufio.ErrBufferFull):
			return "", errCommons
		default:
			return "", fmt.Errorf("couldn't read commons: %w", err)
		}
	}
	c := new(Commons)
	if l, err := line(); err != nil || l != CommonsFormat {
		return nil, firstErr(err, errCommons)
	}
	l, err := line()
	if err != nil {
		return nil, err
	}
	d, ok := strings.CutPrefix(l, "domain ")
	if !ok {
		return nil, errCommons
	}
	if c.Domain, err = strconv.ParseUint(d, 10, 64); err != nil || strconv.FormatUint(c.Domain, 10) != d || checkDomain(c.Domain) != nil {
		return nil, errCommons
	}
	for {
		if l, err = line(); err != nil {
			return nil, err
		}
		h, ok := strings.CutPrefix(l, "contribution ")
		if !ok {
			break
		}
		b, ok := lowerHex(h)
		if !ok || len(b) != sha256.Size {
			return nil, errCommons
		}
		c.Contributions = append(c.Contributions, [32]byte(b))
	}
	beacon, ok := strings.CutPrefix(l, "beacon ")
	if !ok || len(c.Contributions) == 0 {
		return nil, errCommons
	}
	if c.Beacon, ok = lowerHex(beacon); !ok || checkBeacon(c.Beacon) != nil {
		return nil, errCommons
	}
	if l, err = line(); err != nil || l != "" {
		return nil, firstErr(err, errCommons)
	}
	c.SRS = new(mpcsetup.SrsCommons)
	if _, err := readState(ctx, br, c.SRS, commonsLayout(c.Domain), errCommons); err != nil {
		return nil, err
	}
	return c, nil
}

func firstErr(err, otherwise error) error {
	if err != nil {
		return err
	}
	return otherwise
}

// lowerHex decodes s, which must be lowercase hex.
func lowerHex(s string) ([]byte, bool) {
	b, err := hex.DecodeString(s)
	return b, err == nil && hex.EncodeToString(b) == s
}

// Phase2 is phase 2 of a ceremony for one compiled circuit: the initial
// state, computed from the circuit and the commons, followed by the
// contributions verified or made so far, in order.
type Phase2 struct {
	cs      constraint.ConstraintSystem
	commons *Commons
	evals   mpcsetup.Phase2Evaluations
	state   *mpcsetup.Phase2 // nil once sealed
	layout  []segment
	hash    [32]byte
	hashes  [][32]byte
}

// NewPhase2 starts phase 2 for cs from commons, whose domain size must be
// cs's. It takes about as long as a contribution and cannot be interrupted.
func NewPhase2(ctx context.Context, cs constraint.ConstraintSystem, commons *Commons) (*Phase2, error) {
	r1cs, ok := cs.(*cs_bn254.R1CS)
	if !ok {
		return nil, fmt.Errorf("couldn't start phase 2: %w", errNotR1CS)
	}
	if n := DomainSize(cs); commons.Domain != n || len(commons.SRS.G1.AlphaTau) != int(n) {
		return nil, fmt.Errorf("couldn't start phase 2: the commons are for domain size %d, the circuit needs %d", commons.Domain, n)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't start phase 2: %w", err)
	}
	p := &Phase2{cs: cs, commons: commons, state: new(mpcsetup.Phase2)}
	p.evals = p.state.Initialize(r1cs, commons.SRS)
	p.layout = phase2Layout(p.state)
	h, err := stateHash(p.state)
	if err != nil {
		return nil, fmt.Errorf("couldn't start phase 2: %w", err)
	}
	p.hash = h
	return p, nil
}

// Contributions returns the SHA-256 of each contribution so far, in order.
func (p *Phase2) Contributions() [][32]byte { return slices.Clone(p.hashes) }

// Verify reads the next contribution from r and verifies it against the
// current state, which it then replaces. It returns the contribution's
// SHA-256. An error wraps [ErrInvalidContribution] when the contribution
// is refused; p is then unchanged.
func (p *Phase2) Verify(ctx context.Context, r io.Reader) ([32]byte, error) {
	if p.state == nil {
		return [32]byte{}, errSealed
	}
	next := new(mpcsetup.Phase2)
	h, err := readState(ctx, r, next, p.layout, ErrInvalidContribution)
	if err != nil {
		return [32]byte{}, err
	}
	if !bytes.Equal(next.Challenge, p.hash[:]) {
		return [32]byte{}, fmt.Errorf("%w: %w", ErrInvalidContribution, errUnlinked)
	}
	if err := p.state.Verify(next); err != nil {
		return [32]byte{}, fmt.Errorf("%w: %v", ErrInvalidContribution, err)
	}
	p.state, p.hash = next, h
	p.hashes = append(p.hashes, h)
	return h, nil
}

// Contribute adds a contribution to the current state, with randomness from
// crypto/rand that it forgets, writes it to w and returns its SHA-256. The
// contribution becomes the current state; after an error, p must not be
// used.
func (p *Phase2) Contribute(ctx context.Context, w io.Writer) ([32]byte, error) {
	if p.state == nil {
		return [32]byte{}, errSealed
	}
	if err := ctx.Err(); err != nil {
		return [32]byte{}, fmt.Errorf("couldn't contribute to phase 2: %w", err)
	}
	p.state.Contribute()
	h, err := writeState(w, p.state)
	if err != nil {
		p.state = nil
		return [32]byte{}, fmt.Errorf("couldn't write phase 2 contribution: %w", err)
	}
	p.hash = h
	p.hashes = append(p.hashes, h)
	return h, nil
}

// Seal seals phase 2 with beacon, a public random value chosen after the
// last contribution, and returns the production keys of the circuit, named
// id, labelled as ceremony keys. p cannot be used afterwards.
func (p *Phase2) Seal(ctx context.Context, id string, beacon []byte) (*Keys, error) {
	switch {
	case p.state == nil:
		return nil, errSealed
	case len(p.hashes) == 0:
		return nil, fmt.Errorf("couldn't seal phase 2: %w", errNoContrib)
	}
	if err := checkBeacon(beacon); err != nil {
		return nil, fmt.Errorf("couldn't seal phase 2: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("couldn't seal phase 2: %w", err)
	}
	pk, vk := p.state.Seal(p.commons.SRS, &p.evals, beacon)
	p.state = nil
	return newKeys(p.cs, id, pk, vk, Metadata{
		Setup:               SetupCeremony,
		Phase1Contributions: len(p.commons.Contributions),
		Phase2Contributions: len(p.hashes),
		Beacon:              hex.EncodeToString(beacon),
	})
}

// encoded is a ceremony state with gnark's encoding.
type encoded interface {
	io.ReaderFrom
	io.WriterTo
}

// stateHash returns the SHA-256 of s's encoding: the challenge of a
// contribution built on s.
func stateHash(s io.WriterTo) ([32]byte, error) {
	return writeState(io.Discard, s)
}

// writeState writes s to w and returns the SHA-256 of what it wrote.
func writeState(w io.Writer, s io.WriterTo) ([32]byte, error) {
	h := sha256.New()
	if _, err := s.WriteTo(io.MultiWriter(w, h)); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// readState reads s from r, checking the bytes against layout before gnark
// parses them, and returns their SHA-256. Malformed input yields an error
// wrapping bad.
func readState(ctx context.Context, r io.Reader, s encoded, layout []segment, bad error) ([32]byte, error) {
	cr := &checkedReader{ctx: ctx, r: r, segs: layout, h: sha256.New(), bad: bad}
	for _, seg := range layout {
		cr.total += int64(seg.len())
	}
	_, err := s.ReadFrom(cr)
	switch {
	case cr.err != nil:
		return [32]byte{}, cr.err
	case err != nil:
		return [32]byte{}, fmt.Errorf("%w: %v", bad, err)
	case cr.read != cr.total || len(cr.pending) != 0:
		return [32]byte{}, errors.New("keys: gnark's decoder stopped before the end of the layout")
	}
	var one [1]byte
	if n, err := io.ReadFull(r, one[:]); n != 0 {
		return [32]byte{}, fmt.Errorf("%w: more than the expected %d bytes", bad, cr.total)
	} else if !errors.Is(err, io.EOF) {
		return [32]byte{}, fmt.Errorf("couldn't read: %w", err)
	}
	h := [32]byte(cr.h.Sum(nil))
	if canonical, err := stateHash(s); err != nil || canonical != h {
		return [32]byte{}, fmt.Errorf("%w: %w", bad, errNotCanonical)
	}
	return h, nil
}

// A segment is a part of a state's encoding: a length or size field that
// must hold one value, or a run of fixed-size items.
type segment struct {
	name  string
	want  []byte // the field's only acceptable bytes, or nil for items
	size  int    // items: size of each,
	count int    // how many,
	point bool   // and whether each is a point, which must be compressed
}

func (s *segment) len() int {
	if s.want != nil {
		return len(s.want)
	}
	return s.size * s.count
}

func field(name string, size int, v uint64) segment {
	b := binary.BigEndian.AppendUint64(nil, v)
	return segment{name: name, want: b[8-size:]}
}

func g1(name string, count int) segment {
	return segment{name: name, size: curve.SizeOfG1AffineCompressed, count: count, point: true}
}

func g2(name string, count int) segment {
	return segment{name: name, size: curve.SizeOfG2AffineCompressed, count: count, point: true}
}

func challenge() []segment {
	return []segment{field("challenge length", 1, challengeSize), {name: "challenge", size: 1, count: challengeSize}}
}

func proof(name string) []segment {
	return []segment{g1(name+" update commitment", 1), g2(name+" update proof", 1)}
}

// commonsLayout is the layout of an SrsCommons of domain size n
// (SrsCommons.WriteTo).
func commonsLayout(n uint64) []segment {
	m := int(n)
	return []segment{
		field("domain size", 8, n), g2("[β]₂", 1),
		g1("[τⁱ]₁", 2*m-2), g2("[τⁱ]₂", m-1), g1("[βτⁱ]₁", m), g1("[ατⁱ]₁", m),
	}
}

// phase1Layout is the layout of a phase 1 contribution of domain size n
// (Phase1.WriteTo).
func phase1Layout(n uint64) []segment {
	return slices.Concat(proof("τ"), proof("α"), proof("β"), commonsLayout(n), challenge())
}

// phase2Layout is the layout of a contribution built on s, a phase 2 state
// of the same circuit (Phase2.WriteTo).
func phase2Layout(s *mpcsetup.Phase2) []segment {
	p := &s.Parameters
	nc := len(p.G2.Sigma)
	l := []segment{
		field("number of commitments", 2, uint64(nc)),
		g1("[δ]₁", 1),
		field("number of private wires", 4, uint64(len(p.G1.PKK))), g1("private wire keys", len(p.G1.PKK)),
		field("number of Z points", 4, uint64(len(p.G1.Z))), g1("Z", len(p.G1.Z)),
		g2("[δ]₂", 1),
	}
	for i, ckk := range p.G1.SigmaCKK {
		l = append(l, field(fmt.Sprintf("number of committed wires of commitment %d", i), 4, uint64(len(ckk))), g1(fmt.Sprintf("commitment %d keys", i), len(ckk)))
	}
	l = append(l, g2("[σ]₂", nc))
	l = append(l, proof("δ")...)
	for i := range nc {
		l = append(l, proof(fmt.Sprintf("σ[%d]", i))...)
	}
	return append(l, challenge()...)
}

// checkedReader hands gnark's decoder the bytes of r after checking them
// against a layout: a field is read whole and compared before any byte of
// it is handed out, so a hostile length never reaches the decoder. It
// hashes what it reads, and gives every read io.ReadFull's semantics (gnark
// reads a challenge with a single Read).
type checkedReader struct {
	ctx     context.Context
	r       io.Reader
	segs    []segment
	seg     int // current segment
	off     int // bytes of it read
	pending []byte
	read    int64
	total   int64
	h       hash.Hash
	bad     error
	err     error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := c.ctx.Err(); err != nil {
		c.err = fmt.Errorf("couldn't read: %w", err)
		return 0, c.err
	}
	if len(c.pending) == 0 {
		for c.seg < len(c.segs) && c.off == c.segs[c.seg].len() {
			c.seg, c.off = c.seg+1, 0
		}
		if c.seg == len(c.segs) {
			return 0, io.EOF
		}
		s := &c.segs[c.seg]
		if s.want == nil {
			n := min(len(p), s.len()-c.off)
			if err := c.fill(p[:n]); err != nil {
				return 0, err
			}
			if s.point {
				for i := (s.size - c.off%s.size) % s.size; i < n; i += s.size {
					if p[i]>>6 == 0 {
						c.err = fmt.Errorf("%w: %s: point %d is not compressed", c.bad, s.name, (c.off+i)/s.size)
						return 0, c.err
					}
				}
			}
			c.off += n
			return n, nil
		}
		b := make([]byte, len(s.want))
		if err := c.fill(b); err != nil {
			return 0, err
		}
		if !bytes.Equal(b, s.want) {
			var got, want [8]byte
			copy(got[8-len(b):], b)
			copy(want[8-len(b):], s.want)
			c.err = fmt.Errorf("%w: %s is %d, want %d", c.bad, s.name, binary.BigEndian.Uint64(got[:]), binary.BigEndian.Uint64(want[:]))
			return 0, c.err
		}
		c.pending, c.off = b, len(b)
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

func (c *checkedReader) fill(b []byte) error {
	n, err := io.ReadFull(c.r, b)
	c.h.Write(b[:n])
	c.read += int64(n)
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		c.err = fmt.Errorf("%w: truncated after %d of %d bytes", c.bad, c.read, c.total)
	case err != nil:
		c.err = fmt.Errorf("couldn't read: %w", err)
	}
	return c.err
}
