package audit

import (
	"fmt"
	"sync/atomic"
	"testing"
)

func TestEachEntry(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		fail []int // failing entries
	}{
		{"one", 1, nil},
		{"sequential", parallelMin - 1, nil},
		{"sequential failure", 10, []int{7, 3}},
		{"parallel", 10 * parallelMin, nil},
		{"parallel first", 10 * parallelMin, []int{0}},
		{"parallel last", 10 * parallelMin, []int{10*parallelMin - 1}},
		{"parallel several", 10 * parallelMin, []int{250, 17, 18, 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			failing := map[int]bool{}
			want := -1
			for _, i := range tc.fail {
				failing[i] = true
				if want < 0 || i < want {
					want = i
				}
			}
			seen := make([]atomic.Int32, tc.n)
			err := eachEntry(tc.n, func(i int) error {
				seen[i].Add(1)
				if failing[i] {
					return fmt.Errorf("entry %d", i)
				}
				return nil
			})
			if want < 0 {
				if err != nil {
					t.Fatalf("eachEntry: %v", err)
				}
			} else if err == nil || err.Error() != fmt.Sprintf("entry %d", want) {
				t.Fatalf("eachEntry: %v, want the error of entry %d", err, want)
			}
			for i := range seen {
				if c := seen[i].Load(); c > 1 || (c == 0 && (want < 0 || i <= want)) {
					t.Fatalf("entry %d checked %d times", i, c)
				}
			}
		})
	}
}
