package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/vitalproof/vitalproof/wearables"
	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

const (
	keysDevelopment = "development"
	keysCeremony    = "ceremony"
)

// paramLines lists the parameter line of each statement part, in format
// order, with the parameters it carries.
var paramLines = []struct {
	kind   statement.Kind
	name   string
	values func(p *statement.Params) []*uint32
}{
	{statement.Range, "range", func(p *statement.Params) []*uint32 { return []*uint32{&p.RangeLo, &p.RangeHi} }},
	{statement.TimeInRange, "tir", func(p *statement.Params) []*uint32 { return []*uint32{&p.TIRLo, &p.TIRHi, &p.TIRPercent} }},
	{statement.Adherence, "adherence", func(p *statement.Params) []*uint32 { return []*uint32{&p.MinDays} }},
	{statement.MeanBelow, "mean", func(p *statement.Params) []*uint32 { return []*uint32{&p.MeanBound} }},
	{statement.MaxBelow, "max", func(p *statement.Params) []*uint32 { return []*uint32{&p.MaxBound} }},
}

// Marshal returns the bundle's encoding. It refuses a bundle that [Parse]
// would not return: every part must be present and well formed (leaves
// parse as the records their place names), but nothing is verified.
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.checkSyntax(); err != nil {
		return nil, fmt.Errorf("couldn't encode audit bundle: %w", err)
	}
	proof, err := b.Proof.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("couldn't encode audit bundle: %w", err)
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "%s\nstatement %s\ndevice %s\nmetric %s\nperiod %d %d\n", Magic, b.Kinds, b.DeviceID, b.Metric, b.PeriodStart, b.PeriodEnd)
	p := b.Params
	for _, pl := range paramLines {
		if b.Kinds&pl.kind == 0 {
			continue
		}
		w.WriteString(pl.name)
		for _, v := range pl.values(&p) {
			fmt.Fprintf(&w, " %d", *v)
		}
		w.WriteString("\n")
	}
	keys := keysCeremony
	if b.Development {
		keys = keysDevelopment
	}
	fmt.Fprintf(&w, "circuit %s\nvk %s\nkeys %s\nproof %s\n", b.Proof.Circuit, b64(b.Proof.VerifyingKey[:]), keys, b64(proof))
	writeLeaf(&w, "registration", &b.Registration)
	if b.Before == nil {
		w.WriteString("before none\n")
	} else {
		writeLeaf(&w, "before", b.Before)
	}
	for i := range b.Entries {
		writeLeaf(&w, "entry", &b.Entries[i])
	}
	if b.After == nil {
		w.WriteString("after head\n")
	} else {
		writeLeaf(&w, "after", b.After)
	}
	w.WriteString("\n")
	w.Write(b.Checkpoint)
	if w.Len() > MaxBundleSize {
		return nil, fmt.Errorf("couldn't encode audit bundle: %w: larger than %d bytes", ErrMalformed, MaxBundleSize)
	}
	return w.Bytes(), nil
}

func writeLeaf(w *bytes.Buffer, role string, l *Leaf) {
	fmt.Fprintf(w, "%s %d %s", role, l.Index, b64(l.Bytes))
	for _, h := range l.Proof {
		w.WriteString(" ")
		w.WriteString(b64(h[:]))
	}
	w.WriteString("\n")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// checkSyntax checks what Marshal needs to produce a bundle that Parse
// accepts.
func (b *Bundle) checkSyntax() error {
	if _, err := statement.ParseKind(b.Kinds.String()); err != nil || b.Kinds == 0 {
		return fmt.Errorf("%w: unknown statement parts", ErrMalformed)
	}
	p := b.Params
	for _, pl := range paramLines {
		if b.Kinds&pl.kind != 0 {
			continue
		}
		for _, v := range pl.values(&p) {
			if *v != 0 {
				return fmt.Errorf("%w: parameter of a part the statement does not include is not zero", ErrMalformed)
			}
		}
	}
	if !wearables.ValidID(b.DeviceID) {
		return fmt.Errorf("%w: device ID", ErrMalformed)
	}
	if _, ok := wearables.MetricByCode(b.Metric); !ok {
		return fmt.Errorf("%w: unknown metric", ErrMalformed)
	}
	if b.PeriodStart < 0 || b.PeriodEnd < 0 {
		return fmt.Errorf("%w: period before 1970", ErrMalformed)
	}
	if b.Proof == nil {
		return fmt.Errorf("%w: no proof", ErrMalformed)
	}
	raw, err := b.Proof.MarshalBinary()
	if err != nil {
		return fmt.Errorf("%w: proof: %v", ErrMalformed, err)
	}
	if _, err := prove.ParseProof(raw); err != nil {
		return fmt.Errorf("%w: proof: %v", ErrMalformed, err)
	}
	if err := checkLeaf(&b.Registration, parseRegistration); err != nil {
		return fmt.Errorf("%w: registration: %v", ErrMalformed, err)
	}
	if b.Before != nil {
		if err := checkLeaf(b.Before, parseEntry); err != nil {
			return fmt.Errorf("%w: entry before the period: %v", ErrMalformed, err)
		}
	}
	if len(b.Entries) == 0 || len(b.Entries) > MaxEntries {
		return fmt.Errorf("%w: want 1 to %d entries", ErrMalformed, MaxEntries)
	}
	if err := eachEntry(len(b.Entries), func(i int) error {
		if err := checkLeaf(&b.Entries[i], parseEntry); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrMalformed, entryName(i, len(b.Entries)), err)
		}
		return nil
	}); err != nil {
		return err
	}
	if b.After != nil {
		if err := checkLeaf(b.After, parseEntry); err != nil {
			return fmt.Errorf("%w: entry after the period: %v", ErrMalformed, err)
		}
	}
	if len(b.Checkpoint) == 0 || len(b.Checkpoint) > MaxCheckpointSize || b.Checkpoint[len(b.Checkpoint)-1] != '\n' {
		return fmt.Errorf("%w: checkpoint missing, larger than %d bytes or not ending in a newline", ErrMalformed, MaxCheckpointSize)
	}
	return nil
}

func checkLeaf(l *Leaf, parse func([]byte) error) error {
	if l.Index > maxIndex {
		return errors.New("index beyond 2^63-1")
	}
	if len(l.Proof) > MaxProofHashes {
		return fmt.Errorf("more than %d proof hashes", MaxProofHashes)
	}
	return parse(l.Bytes)
}

const maxIndex = 1<<63 - 1

func parseEntry(b []byte) error {
	if _, err := wearables.ParseRegistration(b); err == nil {
		return errors.New("holds a device registration record, not an entry")
	}
	_, err := wearables.ParseEntry(b)
	return err
}

func parseRegistration(b []byte) error {
	_, err := wearables.ParseRegistration(b)
	return err
}

// Parse parses a bundle strictly (see the package documentation): it
// accepts exactly what [Bundle.Marshal] produces and verifies nothing.
// Errors wrap [ErrMalformed] and name the line, never its content.
func Parse(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxBundleSize)
	}
	header, checkpoint, ok := bytes.Cut(data, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no blank line before the checkpoint", ErrMalformed)
	}
	p := &parser{lines: strings.Split(string(header), "\n")}
	b, err := p.bundle()
	if err != nil {
		return nil, err
	}
	b.Checkpoint = bytes.Clone(checkpoint)
	if err := b.checkSyntax(); err != nil {
		return nil, err
	}
	return b, nil
}

// parser reads header lines in order.
type parser struct {
	lines []string
	n     int // lines read
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrMalformed, p.n, fmt.Sprintf(format, args...))
}

// next returns the fields of the next line if its keyword is key.
func (p *parser) next(key string) ([]string, bool) {
	if p.n >= len(p.lines) {
		return nil, false
	}
	f := strings.Split(p.lines[p.n], " ")
	if f[0] != key {
		return nil, false
	}
	p.n++
	return f[1:], true
}

// line returns the n values of the next line, whose keyword must be key.
func (p *parser) line(key string, n int) ([]string, error) {
	f, ok := p.next(key)
	if !ok {
		p.n++
		return nil, p.errorf("want %q", key)
	}
	if len(f) != n {
		return nil, p.errorf("want %q with %d value(s)", key, n)
	}
	return f, nil
}

func (p *parser) bundle() (*Bundle, error) {
	b := &Bundle{}
	if p.lines[0] != Magic {
		p.n = 1
		return nil, p.errorf("unknown bundle format version")
	}
	p.n = 1
	f, err := p.line("statement", 1)
	if err != nil {
		return nil, err
	}
	if b.Kinds, err = statement.ParseKind(f[0]); err != nil {
		return nil, p.errorf("unknown statement parts")
	}
	if f, err = p.line("device", 1); err != nil {
		return nil, err
	}
	b.DeviceID = f[0]
	if f, err = p.line("metric", 1); err != nil {
		return nil, err
	}
	b.Metric = f[0]
	if f, err = p.line("period", 2); err != nil {
		return nil, err
	}
	if b.PeriodStart, err = parseInt(f[0]); err != nil {
		return nil, p.errorf("period start")
	}
	if b.PeriodEnd, err = parseInt(f[1]); err != nil {
		return nil, p.errorf("period end")
	}
	for _, pl := range paramLines {
		if b.Kinds&pl.kind == 0 {
			continue
		}
		dst := pl.values(&b.Params)
		if f, err = p.line(pl.name, len(dst)); err != nil {
			return nil, err
		}
		for i := range dst {
			v, err := parseInt(f[i])
			if err != nil || v > 1<<32-1 {
				return nil, p.errorf("%s parameter %d", pl.name, i+1)
			}
			*dst[i] = uint32(v)
		}
	}
	if f, err = p.line("circuit", 1); err != nil {
		return nil, err
	}
	circuitID := f[0]
	if f, err = p.line("vk", 1); err != nil {
		return nil, err
	}
	vk, err := decode(f[0])
	if err != nil || len(vk) != 32 {
		return nil, p.errorf("vk is not canonical base64 of 32 bytes")
	}
	if f, err = p.line("keys", 1); err != nil {
		return nil, err
	}
	switch f[0] {
	case keysDevelopment:
		b.Development = true
	case keysCeremony:
	default:
		return nil, p.errorf("keys must be %q or %q", keysDevelopment, keysCeremony)
	}
	if f, err = p.line("proof", 1); err != nil {
		return nil, err
	}
	raw, err := decode(f[0])
	if err != nil {
		return nil, p.errorf("proof is not canonical base64")
	}
	if b.Proof, err = prove.ParseProof(raw); err != nil {
		return nil, p.errorf("proof: %v", err)
	}
	if b.Proof.Circuit != circuitID || !bytes.Equal(b.Proof.VerifyingKey[:], vk) {
		return nil, p.errorf("proof is for another circuit or verifying key than the header names")
	}
	reg, err := p.leaf("registration", false)
	if err != nil {
		return nil, err
	}
	b.Registration = *reg
	if b.Before, err = p.leaf("before", true); err != nil {
		return nil, err
	}
	for {
		if p.n >= len(p.lines) || !strings.HasPrefix(p.lines[p.n], "entry ") {
			break
		}
		e, err := p.leaf("entry", false)
		if err != nil {
			return nil, err
		}
		if len(b.Entries) == MaxEntries {
			return nil, p.errorf("more than %d entries", MaxEntries)
		}
		b.Entries = append(b.Entries, *e)
	}
	if b.After, err = p.leaf("after", true); err != nil {
		return nil, err
	}
	if p.n != len(p.lines) {
		p.n++
		return nil, p.errorf("unexpected line")
	}
	return b, nil
}

// leaf reads a leaf line; with optional, the line may instead say "none"
// (before) or "head" (after), and leaf returns nil.
func (p *parser) leaf(role string, optional bool) (*Leaf, error) {
	f, ok := p.next(role)
	if !ok {
		p.n++
		return nil, p.errorf("want %q", role)
	}
	if optional && len(f) == 1 && (role == "before" && f[0] == "none" || role == "after" && f[0] == "head") {
		return nil, nil
	}
	if len(f) < 2 {
		return nil, p.errorf("want %q with an index and a leaf", role)
	}
	if len(f)-2 > MaxProofHashes {
		return nil, p.errorf("more than %d proof hashes", MaxProofHashes)
	}
	var l Leaf
	index, err := parseInt(f[0])
	if err != nil {
		return nil, p.errorf("index is not a canonical decimal number")
	}
	l.Index = uint64(index)
	if l.Bytes, err = decode(f[1]); err != nil || len(l.Bytes) == 0 {
		return nil, p.errorf("leaf is not canonical base64")
	}
	for i, h := range f[2:] {
		d, err := decode(h)
		if err != nil || len(d) != 32 {
			return nil, p.errorf("proof hash %d is not canonical base64 of 32 bytes", i)
		}
		l.Proof = append(l.Proof, [32]byte(d))
	}
	return &l, nil
}

// parseInt parses a non-negative decimal int64 without sign or leading
// zeros.
func parseInt(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != s {
		return 0, errors.New("not a canonical decimal number")
	}
	return n, nil
}

// decode decodes standard padded base64 and refuses any other encoding of
// the same bytes.
func decode(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, errors.New("not canonical base64")
	}
	return b, nil
}
