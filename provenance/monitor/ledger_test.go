package monitor

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vitalproof/vitalproof/log"
)

func TestDecodeConsistency(t *testing.T) {
	h1, h2 := log.Hash{1}, log.Hash{2}
	e1, e2 := base64.StdEncoding.EncodeToString(h1[:]), base64.StdEncoding.EncodeToString(h2[:])
	for _, tc := range []struct {
		name string
		json string
		want []log.Hash // nil: an error
	}{
		{"protojson", fmt.Sprintf(`{"from":"3","to":"9","hashes":["%s","%s"]}`, e1, e2), []log.Hash{h1, h2}},
		{"numbers unquoted", fmt.Sprintf(`{"from":3,"to":9,"hashes":["%s"]}`, e1), []log.Hash{h1}},
		{"sizes omitted", fmt.Sprintf(`{"hashes":["%s"]}`, e1), []log.Hash{h1}},
		{"empty proof", `{"from":"3","to":"9","hashes":[]}`, []log.Hash{}},
		{"another from", fmt.Sprintf(`{"from":"4","to":"9","hashes":["%s"]}`, e1), nil},
		{"another to", fmt.Sprintf(`{"from":"3","to":"10","hashes":["%s"]}`, e1), nil},
		{"short hash", `{"hashes":["AAAA"]}`, nil},
		{"not base64", `{"hashes":["!!"]}`, nil},
		{"negative size", `{"from":"-3","to":"9","hashes":[]}`, nil},
		{"size with a quote inside", `{"from":"3\"","to":"9","hashes":[]}`, nil},
		{"too many hashes", `{"hashes":[` + strings.TrimSuffix(strings.Repeat(`"`+e1+`",`, maxProofHashes+1), ",") + `]}`, nil},
		{"not JSON", `from 3`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeConsistency([]byte(tc.json), 3, 9)
			if tc.want == nil {
				if err == nil || !errors.Is(err, errMalformedAnswer) {
					t.Errorf("decodeConsistency = %v, %v; want an error wrapping errMalformedAnswer", got, err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("decodeConsistency = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestDecodeLeaves(t *testing.T) {
	for _, tc := range []struct {
		name string
		json string
		want [][]byte // nil: an error
	}{
		{"protojson", `{"start":"7","entries":["YQ==","YmM="]}`, [][]byte{[]byte("a"), []byte("bc")}},
		{"start unquoted", `{"start":7,"entries":["YQ=="]}`, [][]byte{[]byte("a")}},
		{"no leaves", `{"start":"7","entries":[]}`, [][]byte{}},
		{"another start", `{"start":"8","entries":["YQ=="]}`, nil},
		{"not base64", `{"start":"7","entries":["%%%"]}`, nil},
		{"entries not a list", `{"start":"7","entries":"YQ=="}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeLeaves([]byte(tc.json), 7)
			if tc.want == nil {
				if !errors.Is(err, errMalformedAnswer) {
					t.Errorf("decodeLeaves = %q, %v; want an error wrapping errMalformedAnswer", got, err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("decodeLeaves = %q, %v; want %q", got, err, tc.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tc.want[i]) {
					t.Errorf("leaf %d = %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"code":5,"message":"start: no entry at this index","details":[]}`, "start: no entry at this index"},
		{"upstream down\nmore", "upstream down"},
		{"bell\a here", "bell here"},
		{strings.Repeat("x", 300), strings.Repeat("x", maxErrorMessage) + "..."},
	} {
		if got := errorMessage([]byte(tc.body)); got != tc.want {
			t.Errorf("errorMessage(%q) = %q, want %q", tc.body, got, tc.want)
		}
	}
}

// FuzzDecodeAnswers checks that the ledger's answers never crash the
// decoders and that what they accept is well-formed.
func FuzzDecodeAnswers(f *testing.F) {
	f.Add([]byte(`{"from":"3","to":"9","hashes":["AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]}`))
	f.Add([]byte(`{"start":"3","entries":["YQ=="]}`))
	f.Add([]byte(`{"from":3}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := decodeConsistency(b, 3, 9); err == nil && len(p) > maxProofHashes {
			t.Errorf("accepted a proof of %d hashes", len(p))
		}
		if leaves, err := decodeLeaves(b, 3); err != nil && leaves != nil {
			t.Errorf("returned leaves with an error")
		}
		if msg := errorMessage(b); len(msg) > maxErrorMessage+3 || strings.ContainsAny(msg, "\n\r") {
			t.Errorf("errorMessage = %q", msg)
		}
	})
}
