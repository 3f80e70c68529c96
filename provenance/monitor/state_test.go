package monitor

import (
	"encoding/json"
	"testing"

	"github.com/vitalproof/vitalproof/log"
)

// FuzzParseState checks that a state file never crashes the monitor and
// that what parseState accepts is coherent.
func FuzzParseState(f *testing.F) {
	rng := rangeFactory.NewEmptyRange(0)
	for i := range 5 {
		h := log.LeafHash([]byte{byte(i)})
		rng.Append(h[:], nil)
	}
	root := rootOf(rng)
	good, err := json.Marshal(&state{
		Version: stateVersion, Origin: "o", Checkpoint: &treeRef{Size: 5, Root: root.Hash[:]}, Leaves: 5, Range: rng.Hashes(),
		Devices: map[string]*device{"d": {Registered: true, Manufacturer: "m"}},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"origin":"o","checkpoint":{"size":9,"root":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="},"leaves":3,"range":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseState(b)
		if err != nil {
			return
		}
		if st.Devices == nil {
			t.Fatal("nil devices")
		}
		if st.Checkpoint == nil {
			if st.Leaves != 0 {
				t.Fatalf("%d leaves without a checkpoint", st.Leaves)
			}
			return
		}
		if st.Leaves > st.Checkpoint.Size {
			t.Fatalf("%d leaves of a tree of %d", st.Leaves, st.Checkpoint.Size)
		}
		rng, err := st.compactRange()
		if err != nil {
			t.Fatalf("accepted a state whose range does not load: %v", err)
		}
		if st.Leaves == st.Checkpoint.Size && rootOf(rng) != st.Checkpoint.root() {
			t.Fatal("accepted a root that is not the leaves'")
		}
	})
}
