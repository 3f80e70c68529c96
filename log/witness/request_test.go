package witness

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// specExample is the request of c2sp.org/tlog-witness's example.
const specExample = `old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
`

const hash = "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw="

func TestParseRequest(t *testing.T) {
	t.Parallel()
	r, err := parseRequest([]byte(specExample))
	if err != nil {
		t.Fatalf("spec example: %v", err)
	}
	if r.oldSize != 20852014 || len(r.proof) != 4 || !bytes.HasPrefix(r.note, []byte("example.com/behind-the-sofa\n20852163\n")) {
		t.Errorf("spec example parsed as old %d, %d proof hashes, note %q", r.oldSize, len(r.proof), r.note)
	}

	bad := map[string]string{
		"no blank line":          "old 0\nexample.com/log\n1\n" + hash + "\n",
		"nothing after blank":    "old 0\n\n",
		"empty":                  "",
		"no old line":            "\n\nnote\n",
		"Old":                    "Old 0\n\nnote\n",
		"two spaces":             "old  0\n\nnote\n",
		"leading zero":           "old 01\n\nnote\n",
		"plus sign":              "old +1\n\nnote\n",
		"negative":               "old -1\n\nnote\n",
		"above int63":            "old 9223372036854775808\n\nnote\n",
		"trailing space":         "old 1 \n\nnote\n",
		"CRLF":                   "old 1\r\n\r\nnote\n",
		"short hash":             "old 1\n" + hash[:40] + "\n\nnote\n",
		"long hash":              "old 1\n" + hash + "AAAA\n\nnote\n",
		"unpadded hash":          "old 1\n" + strings.TrimSuffix(hash, "=") + "\n\nnote\n",
		"non-canonical hash":     "old 1\n" + hash[:42] + "b=\n\nnote\n",
		"hash with CR":           "old 1\n" + hash + "\r\n\nnote\n",
		"URL encoding":           "old 1\n5-pKlUdi2LeF_BcMHBn-Ku6yhPGNCswZZD1X_6QgPd8=\n\nnote\n",
		"64 proof lines":         "old 1\n" + strings.Repeat(hash+"\n", 64) + "\nnote\n",
		"blank line is no proof": "old 1\n \n\nnote\n",
	}
	for name, body := range bad {
		if _, err := parseRequest([]byte(body)); !errors.Is(err, errMalformed) {
			t.Errorf("%s: got %v, want errMalformed", name, err)
		}
	}

	r, err = parseRequest([]byte("old 9223372036854775807\n" + strings.Repeat(hash+"\n", 63) + "\nnote\n"))
	if err != nil || r.oldSize != 1<<63-1 || len(r.proof) != 63 {
		t.Errorf("largest size and 63 proof lines: %v", err)
	}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	l := newTestLog(t, "vitalproof.example/log", 13)
	at := func(n int) state { return state{size: uint64(n), root: l.root(t, n)} }
	slices := func(p [][32]byte) [][]byte {
		var out [][]byte
		for _, h := range p {
			out = append(out, h[:])
		}
		return out
	}
	p := func(old, n int) [][]byte { return slices(l.proof(t, old, n)) }
	fork := l.fork(t, 3, 10)
	tests := []struct {
		name         string
		known        state
		old, size    int
		root         [32]byte
		proof        [][]byte
		wantErr      error
		wantConflict uint64
		wantEvidence string
	}{
		{"first", state{root: emptyRoot}, 0, 5, l.root(t, 5), nil, nil, 0, ""},
		{"empty tree", state{root: emptyRoot}, 0, 0, emptyRoot, nil, nil, 0, ""},
		{"extends", at(5), 5, 13, l.root(t, 13), p(5, 13), nil, 0, ""},
		{"same", at(5), 5, 5, l.root(t, 5), nil, nil, 0, ""},
		{"old > size", at(5), 8, 5, l.root(t, 5), nil, errOldTooLarge, 0, ""},
		{"old > size beats fork", at(5), 6, 5, fork.root(t, 5), nil, errOldTooLarge, 0, ""},
		{"old differs", at(5), 3, 13, l.root(t, 13), p(3, 13), nil, 5, ""},
		{"fork", at(5), 5, 5, fork.root(t, 5), nil, nil, 5, EvidenceFork},
		{"fork, old 0", at(5), 0, 5, fork.root(t, 5), nil, nil, 5, EvidenceFork},
		{"fork of empty tree", state{root: emptyRoot}, 0, 0, l.root(t, 1), nil, nil, 0, EvidenceFork},
		{"inconsistent", at(5), 5, 13, fork.root(t, 13), slices(fork.proof(t, 5, 13)), errProof, 0, EvidenceInconsistent},
		{"proof for old 0", state{root: emptyRoot}, 0, 13, l.root(t, 13), p(5, 13), errProof, 0, ""},
		{"proof for equal sizes", at(5), 5, 5, l.root(t, 5), p(3, 5), errProof, 0, ""},
		{"missing proof", at(5), 5, 13, l.root(t, 13), nil, errProof, 0, EvidenceInconsistent},
		{"truncated proof", at(5), 5, 13, l.root(t, 13), p(5, 13)[1:], errProof, 0, EvidenceInconsistent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := check(tt.known, uint64(tt.old), uint64(tt.size), tt.root, tt.proof)
			var ce *conflictError
			switch {
			case tt.wantConflict != 0 || tt.wantEvidence == EvidenceFork:
				if !errors.As(err, &ce) || ce.size != tt.wantConflict {
					t.Errorf("got %v, want a conflict at %d", err, tt.wantConflict)
				}
			case err != tt.wantErr:
				t.Errorf("got %v, want %v", err, tt.wantErr)
			}
			if ev != tt.wantEvidence {
				t.Errorf("evidence %q, want %q", ev, tt.wantEvidence)
			}
		})
	}
}

// FuzzParseRequest checks that parseRequest never panics, accepts only what
// the protocol allows, and that what it accepts formats back to the same bytes.
func FuzzParseRequest(f *testing.F) {
	l := newTestLog(f, "vitalproof.example/log", 13)
	for _, s := range [][]byte{
		[]byte(specExample),
		l.body(f, 0, 5),
		l.body(f, 5, 13),
		l.body(f, 13, 13),
		[]byte("old 0\n\nvitalproof.example/log\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n— vitalproof.example/log AAAAAA==\n"),
		[]byte("old 1\n" + strings.Repeat(hash+"\n", 63) + "\nnote\n"),
		[]byte("old 01\n\nx"),
		[]byte("old 18446744073709551615\n\nx"),
		[]byte("old 1\n" + hash + "\r\n\nnote\n"),
		[]byte("\n\n"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := parseRequest(body)
		if err != nil {
			if !errors.Is(err, errMalformed) || r != nil {
				t.Fatalf("got %v, %v", r, err)
			}
			return
		}
		if len(r.proof) > MaxProofLines || len(r.note) == 0 || r.oldSize > 1<<63-1 {
			t.Fatalf("accepted %d proof lines, note of %d bytes, old %d", len(r.proof), len(r.note), r.oldSize)
		}
		proof := make([][32]byte, len(r.proof))
		for i, h := range r.proof {
			if len(h) != 32 {
				t.Fatalf("proof hash of %d bytes", len(h))
			}
			proof[i] = [32]byte(h)
		}
		if got := formatRequest(r.oldSize, proof, r.note); !bytes.Equal(got, body) {
			t.Fatalf("not canonical: %q formats back as %q", body, got)
		}
	})
}
