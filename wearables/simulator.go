package wearables

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

// ErrEmptyBatch is returned by [Simulator.Batch] when every reading of the
// window was skipped: a device has nothing to commit to and sends nothing.
var ErrEmptyBatch = errors.New("every reading of the window was skipped")

// A Simulator is a simulated wearable: it produces physiologically
// plausible readings, commits to them with a fresh salt and signs entries
// with its device key, keeping one hash chain per metric, as a real device
// does. Its entries are format v1 unless [Simulator.SetFirmware] gives it
// a firmware version to report. It is not safe for concurrent use.
//
// All randomness (values and salts) comes from the reader given to
// [NewSimulator]; with a seeded reader such as math/rand/v2's ChaCha8 the
// simulator is deterministic: the same calls return the same bytes.
type Simulator struct {
	// Skip, if not nil, drops the reading of metric due at t, as when the
	// device is off the wrist or out of battery. Readings are drawn before
	// they are skipped, so a skip changes no other reading's value.
	Skip func(metric string, t time.Time) bool

	deviceID   string
	hospitalID string
	firmware   string
	signer     note.Signer
	rand       io.Reader
	chains     map[string]simChain
	walks      map[string]float64
}

type simChain struct {
	seq  uint64
	prev [32]byte
}

// NewSimulator returns a simulator for device deviceID, assigned to
// hospital hospitalID, that signs with signer (whose key name must be
// deviceID) and draws randomness from r (crypto/rand if r is nil).
func NewSimulator(deviceID, hospitalID string, signer note.Signer, r io.Reader) (*Simulator, error) {
	if !ValidID(deviceID) {
		return nil, fmt.Errorf("couldn't create simulator: device: %w", errBadID)
	}
	if !ValidID(hospitalID) {
		return nil, fmt.Errorf("couldn't create simulator: hospital: %w", errBadID)
	}
	if signer == nil || signer.Name() != deviceID {
		return nil, errors.New("couldn't create simulator: signer's key name must be the device ID")
	}
	if r == nil {
		r = rand.Reader
	}
	return &Simulator{
		deviceID:   deviceID,
		hospitalID: hospitalID,
		signer:     signer,
		rand:       r,
		chains:     map[string]simChain{},
		walks:      map[string]float64{},
	}, nil
}

// SetFirmware sets the firmware version that the device reports in the
// entries of its next batches, which makes them format v2 entries; ""
// goes back to format v1 entries, without a version (the default). The
// version must be valid as in a registration: 1 to [MaxFirmwareLen] bytes
// of printable ASCII, without leading or trailing space. Changing it does
// not break the chains.
func (s *Simulator) SetFirmware(version string) error {
	if version != "" && !validText(version, MaxFirmwareLen) {
		return fmt.Errorf("couldn't set firmware: must be 1 to %d bytes of printable ASCII, without leading or trailing space", MaxFirmwareLen)
	}
	s.firmware = version
	return nil
}

// Head returns the chain head of metric: the seq of the last entry signed
// and its leaf hash (0 and zero before the first).
func (s *Simulator) Head(metric string) (seq uint64, prev [32]byte) {
	h := s.chains[metric]
	return h.seq, h.prev
}

// SetHead sets the chain head of metric, so that the next entry has seq+1
// and prev; use it to resume a chain that the ledger already holds.
func (s *Simulator) SetHead(metric string, seq uint64, prev [32]byte) {
	s.chains[metric] = simChain{seq, prev}
}

// Batch returns the signed batch of metric for the window [windowStart,
// windowStart+window), with a reading every interval from windowStart
// (less those that Skip drops), and advances the metric's chain. Times are
// whole Unix seconds. It returns [ErrEmptyBatch], leaving the chain as it
// was, when every reading was skipped.
func (s *Simulator) Batch(metric string, windowStart time.Time, window, interval time.Duration) (*Batch, error) {
	m, start, times, values, err := s.readings(metric, windowStart, window, interval)
	if err != nil {
		return nil, fmt.Errorf("couldn't simulate batch: %w", err)
	}
	readings := make([]Reading, len(times))
	for i := range times {
		readings[i] = Reading{Offset: uint32(times[i].Unix() - start), Value: values[i]}
	}
	salt, err := s.salt()
	if err != nil {
		return nil, fmt.Errorf("couldn't simulate batch: %w", err)
	}
	end := start + int64(window/time.Second)
	c, err := commitment.Commit(&commitment.Opening{
		Salt: salt, DeviceID: s.deviceID, Metric: m.ID, WindowStart: start, WindowEnd: end, Readings: readings,
	})
	if err != nil {
		return nil, fmt.Errorf("couldn't simulate batch: %w", err)
	}
	head := s.chains[metric]
	h := &EntryHeader{
		DeviceID:    s.deviceID,
		Metric:      metric,
		WindowStart: start,
		WindowEnd:   end,
		Count:       len(readings),
		Commitment:  c,
		Seq:         head.seq + 1,
		Prev:        head.prev,
		Hospital:    s.hospitalID,
		Attestation: AttestDevice,
		Firmware:    s.firmware,
	}
	raw, err := SignEntry(h, s.signer)
	if err != nil {
		return nil, fmt.Errorf("couldn't simulate batch: %w", err)
	}
	e, err := ParseEntry(raw)
	if err != nil {
		return nil, fmt.Errorf("couldn't simulate batch: %w", err)
	}
	s.chains[metric] = simChain{h.Seq, e.LeafHash()}
	return &Batch{Entry: e, Salt: salt, Readings: readings}, nil
}

// Observations returns unsigned readings of metric for the window, as an
// integration engine would send them without a device signature: the
// group of [ExportObservations], with an empty PatientRef. It does not
// touch the chains.
func (s *Simulator) Observations(metric string, windowStart time.Time, window, interval time.Duration) (ObservationGroup, error) {
	_, _, times, values, err := s.readings(metric, windowStart, window, interval)
	if err != nil {
		return ObservationGroup{}, fmt.Errorf("couldn't simulate observations: %w", err)
	}
	return ObservationGroup{DeviceID: s.deviceID, Metric: metric, Times: times, Values: values}, nil
}

// Day returns the batches of the 24 hours from start: one batch per metric
// per batchEvery window, with a reading every readingEvery, in submission
// order (by window, then in the order of metrics). Windows whose readings
// were all skipped have no batch.
func (s *Simulator) Day(start time.Time, metrics []string, batchEvery, readingEvery time.Duration) ([]*Batch, error) {
	return s.Span(start, 24*time.Hour, metrics, batchEvery, readingEvery)
}

// Span is [Simulator.Day] over any duration, a whole number of batchEvery.
func (s *Simulator) Span(start time.Time, d time.Duration, metrics []string, batchEvery, readingEvery time.Duration) ([]*Batch, error) {
	if batchEvery <= 0 || d <= 0 || d%batchEvery != 0 {
		return nil, errors.New("couldn't simulate: the span must be a positive multiple of the batch window")
	}
	var out []*Batch
	for w := time.Duration(0); w < d; w += batchEvery {
		for _, metric := range metrics {
			b, err := s.Batch(metric, start.Add(w), batchEvery, readingEvery)
			if errors.Is(err, ErrEmptyBatch) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
	}
	return out, nil
}

// readings draws the readings of a window and drops the skipped ones.
func (s *Simulator) readings(metric string, windowStart time.Time, window, interval time.Duration) (Metric, int64, []time.Time, []uint32, error) {
	m, ok := MetricByCode(metric)
	if !ok {
		return m, 0, nil, nil, errors.New("unknown metric code")
	}
	if window < time.Second || window%time.Second != 0 || window/time.Second > commitment.MaxOffset+1 {
		return m, 0, nil, nil, errors.New("window must be a whole number of seconds, at most 2^22")
	}
	if interval < time.Second || interval%time.Second != 0 {
		return m, 0, nil, nil, errors.New("interval must be a whole number of seconds")
	}
	if int64(window/interval) > MaxBatchReadings {
		return m, 0, nil, nil, fmt.Errorf("more than %d readings in one window", MaxBatchReadings)
	}
	start := windowStart.Unix()
	if start < 0 {
		return m, 0, nil, nil, errors.New("window starts before 1970")
	}
	var times []time.Time
	var values []uint32
	for off := time.Duration(0); off < window; off += interval {
		t := time.Unix(start, 0).Add(off).UTC()
		v, err := s.value(m, t, interval)
		if err != nil {
			return m, 0, nil, nil, err
		}
		if s.Skip != nil && s.Skip(metric, t) {
			continue
		}
		times = append(times, t)
		values = append(values, v)
	}
	if len(times) == 0 {
		return m, 0, nil, nil, ErrEmptyBatch
	}
	return m, start, times, values, nil
}

// physiology gives a metric's simulated range, its daily curve and the
// size of its random walk.
var physiology = map[string]struct {
	lo, hi float64
	curve  func(hour float64) float64
	noise  float64
}{
	"heart-rate": {55, 110, func(h float64) float64 { return 70 + 9*daily(h, 15) }, 3},
	"spo2":       {94, 99.9, func(h float64) float64 { return 97.4 + 0.4*daily(h, 14) }, 0.3},
	"body-temperature": {36.1, 37.8, func(h float64) float64 {
		return 36.85 + 0.35*daily(h, 17)
	}, 0.05},
	"systolic-bp":  {105, 140, func(h float64) float64 { return 121 + 8*daily(h, 10) }, 3},
	"diastolic-bp": {65, 90, func(h float64) float64 { return 77 + 5*daily(h, 10) }, 2},
	"glucose": {70, 200, func(h float64) float64 {
		// fasting level plus a rise after breakfast, lunch and dinner
		return 92 + 55*bump(h, 8) + 65*bump(h, 13) + 70*bump(h, 19.5)
	}, 3},
}

// daily is a 24-hour cosine peaking at hour peak, in [-1, 1].
func daily(hour, peak float64) float64 { return math.Cos(2 * math.Pi * (hour - peak) / 24) }

// bump is a post-meal glucose excursion peaking an hour after meal.
func bump(hour, meal float64) float64 {
	d := hour - meal - 1
	return math.Exp(-d * d / 0.8)
}

// value draws the reading of m due at t. Vital signs follow their daily
// curve plus a random walk; steps follow the hour's activity level.
func (s *Simulator) value(m Metric, t time.Time, interval time.Duration) (uint32, error) {
	hour := float64(t.Hour()) + float64(t.Minute())/60 + float64(t.Second())/3600
	u, err := s.uniform()
	if err != nil {
		return 0, err
	}
	if m.Code == "steps" {
		// Asleep from 23:00 to 06:30; awake, active a third of the time.
		rate := 0.0
		if hour >= 6.5 && hour < 23 {
			if a, err := s.uniform(); err != nil {
				return 0, err
			} else if a < 0.35 {
				rate = 150 * u
			} else {
				rate = 8 * u
			}
		}
		return m.Encode(math.Min(math.Round(rate*interval.Minutes()), m.Max))
	}
	p, ok := physiology[m.Code]
	if !ok {
		return 0, errors.New("no simulated physiology for metric")
	}
	walk := 0.85*s.walks[m.Code] + (2*u-1)*p.noise
	s.walks[m.Code] = walk
	v := math.Max(p.lo, math.Min(p.hi, p.curve(hour)+walk))
	scale := math.Pow10(m.Scale)
	return m.Encode(math.Round(v*scale) / scale)
}

// uniform draws a float64 in [0, 1) from the simulator's reader.
func (s *Simulator) uniform() (float64, error) {
	var b [8]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return 0, fmt.Errorf("couldn't draw randomness: %w", err)
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53), nil
}

// salt draws a uniformly random canonical field element by rejection.
func (s *Simulator) salt() ([commitment.Size]byte, error) {
	var b [commitment.Size]byte
	for {
		if _, err := io.ReadFull(s.rand, b[:]); err != nil {
			return b, fmt.Errorf("couldn't draw salt: %w", err)
		}
		b[0] &= 0x3f // r < 2^254
		var e fr.Element
		if e.SetBytesCanonical(b[:]) == nil {
			return b, nil
		}
	}
}
