package circuit

import (
	"os"
	"testing"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/logger"

	"github.com/vitalproof/vitalproof/zk/commitment"
)

func TestMain(m *testing.M) {
	logger.Disable()
	os.Exit(m.Run())
}

// commitCircuit recomputes an opening's commitment in-circuit from its
// prefix state and the readings of up to len(Offset) slots, as the
// statement circuit does, and compares it with the native one (public).
type commitCircuit struct {
	Commitment frontend.Variable `gnark:",public"`
	Prefix     frontend.Variable
	// Active[j] is 1 for real reading slots.
	Active        []frontend.Variable
	Offset, Value []frontend.Variable
}

func (c *commitCircuit) Define(api frontend.API) error {
	words := make([]frontend.Variable, len(c.Offset))
	for j := range words {
		words[j] = api.Mul(c.Active[j], api.Add(api.Mul(c.Offset[j], 1<<wordShift), c.Value[j]))
	}
	var packed, last []frontend.Variable
	for m := 0; m < len(words)/elemSize; m++ {
		packed = append(packed, Pack(api, words[m*elemSize:(m+1)*elemSize]))
		next := frontend.Variable(0)
		if (m+1)*elemSize < len(words) {
			next = c.Active[(m+1)*elemSize]
		}
		last = append(last, api.Sub(c.Active[m*elemSize], next))
	}
	com, err := Commit(api, c.Prefix, packed, last)
	if err != nil {
		return err
	}
	api.AssertIsEqual(com, c.Commitment)
	return nil
}

const twinSlots = 18

func newCommitCircuit() *commitCircuit {
	return &commitCircuit{Active: make([]frontend.Variable, twinSlots), Offset: make([]frontend.Variable, twinSlots), Value: make([]frontend.Variable, twinSlots)}
}

func commitAssignment(t *testing.T, o *commitment.Opening) *commitCircuit {
	t.Helper()
	com, err := commitment.Commit(o)
	if err != nil {
		t.Fatal(err)
	}
	prefix, err := Prefix(o)
	if err != nil {
		t.Fatal(err)
	}
	var c fr.Element
	c.SetBytes(com[:])
	a := newCommitCircuit()
	a.Commitment, a.Prefix = c, prefix
	for j := range twinSlots {
		a.Active[j], a.Offset[j], a.Value[j] = 0, 0, 0
		if j < len(o.Readings) {
			a.Active[j], a.Offset[j], a.Value[j] = 1, o.Readings[j].Offset, o.Readings[j].Value
		}
	}
	return a
}

// TestCommitTwin checks that the in-circuit commitment equals the native
// one (package zk/commitment) on vectors with edge values: widest offset
// and value, zero readings values, a full last element and a partial one,
// the largest salt and window.
func TestCommitTwin(t *testing.T) {
	var maxSalt [commitment.Size]byte
	m := fr.Modulus()
	m.Sub(m, big1).FillBytes(maxSalt[:])
	readings := func(n int, f func(j int) commitment.Reading) []commitment.Reading {
		out := make([]commitment.Reading, n)
		for j := range out {
			out[j] = f(j)
		}
		return out
	}
	vectors := map[string]*commitment.Opening{
		"one reading": {Salt: [32]byte{31: 1}, DeviceID: "a", Metric: 1, WindowStart: 0, WindowEnd: 1,
			Readings: []commitment.Reading{{Offset: 0, Value: 0}}},
		"max offset and value": {Salt: maxSalt, DeviceID: "dev-2", Metric: 65535, WindowStart: 1 << 40, WindowEnd: 1<<40 + commitment.MaxOffset + 1,
			Readings: readings(7, func(j int) commitment.Reading {
				return commitment.Reading{Offset: uint32(commitment.MaxOffset - 6 + j), Value: commitment.MaxValue - uint32(j%2)}
			})},
		"full elements": {Salt: [32]byte{0: 0x12, 31: 0x34}, DeviceID: "dev-3", Metric: 6, WindowStart: 1735689600, WindowEnd: 1735693200,
			Readings: readings(12, func(j int) commitment.Reading {
				return commitment.Reading{Offset: uint32(300 * j), Value: uint32(100 + j)}
			})},
		"all slots": {Salt: [32]byte{31: 9}, DeviceID: "dev-4", Metric: 7, WindowStart: 5, WindowEnd: 5 + twinSlots,
			Readings: readings(twinSlots, func(j int) commitment.Reading { return commitment.Reading{Offset: uint32(j), Value: uint32(j * 1000)} })},
	}
	valid := map[string]frontend.Circuit{}
	invalid := map[string]frontend.Circuit{}
	for name, o := range vectors {
		valid[name] = commitAssignment(t, o)
	}
	a := commitAssignment(t, vectors["full elements"])
	salted := *vectors["full elements"]
	salted.Salt[31]++
	other, err := Prefix(&salted)
	if err != nil {
		t.Fatal(err)
	}
	a.Prefix = other
	invalid["wrong salt"] = a
	a = commitAssignment(t, vectors["full elements"])
	a.Value[11] = 112
	invalid["reading changed"] = a
	a = commitAssignment(t, vectors["one reading"])
	a.Active[1], a.Offset[1], a.Value[1] = 1, 1, 5
	invalid["reading added"] = a
	a = commitAssignment(t, vectors["all slots"])
	a.Active[17] = 0
	invalid["reading dropped"] = a
	checkCircuit(t, newCommitCircuit(), valid, invalid)
}
