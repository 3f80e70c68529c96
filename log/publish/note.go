package publish

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"
)

// maxSignatures bounds the signature lines of a note mergeNote builds:
// note.Open reads at most 100.
const maxSignatures = 100

var (
	errMalformedNote = errors.New("malformed signed note")
	errNoCosignature = errors.New("witness answer holds no cosignature by its key")
	errTooManySigs   = errors.New("note would have more than 100 signatures")
)

// sigLine is a parsed signed-note signature line, "— <name> <base64>\n".
type sigLine struct {
	name string
	hash uint32
	line []byte // with the trailing newline
}

// splitNote splits a signed note into its text (ending in a newline) and its
// signature lines. It checks their syntax only, not the signatures.
func splitNote(signed []byte) (text []byte, sigs []sigLine, err error) {
	i := bytes.LastIndex(signed, []byte("\n\n"))
	if i < 0 || len(signed) == 0 || signed[len(signed)-1] != '\n' {
		return nil, nil, errMalformedNote
	}
	text = signed[:i+1]
	sigs, err = parseSigLines(signed[i+2:])
	if err != nil {
		return nil, nil, err
	}
	if len(sigs) == 0 {
		return nil, nil, errMalformedNote
	}
	return text, sigs, nil
}

// parseSigLines parses newline-terminated signature lines.
func parseSigLines(b []byte) ([]sigLine, error) {
	var sigs []sigLine
	for len(b) > 0 {
		l, rest, ok := bytes.Cut(b, []byte("\n"))
		if !ok {
			return nil, errMalformedNote
		}
		b = rest
		body, ok := bytes.CutPrefix(l, []byte("— "))
		if !ok {
			return nil, errMalformedNote
		}
		name, b64, ok := bytes.Cut(body, []byte(" "))
		if !ok || !validLine(l) || !validName(name) {
			return nil, errMalformedNote
		}
		sig, err := base64.StdEncoding.DecodeString(string(b64))
		if err != nil || len(sig) < 5 {
			return nil, errMalformedNote
		}
		sigs = append(sigs, sigLine{
			name: string(name),
			hash: binary.BigEndian.Uint32(sig),
			line: append(l[:len(l):len(l)], '\n'),
		})
	}
	return sigs, nil
}

// validLine reports whether l is valid UTF-8 without control characters,
// as note.Open requires of a note.
func validLine(l []byte) bool {
	return utf8.Valid(l) && !bytes.ContainsFunc(l, func(r rune) bool { return r < 0x20 })
}

// validName reports whether name is a valid key name: non-empty, without
// Unicode spaces or '+' (as note.Open requires).
func validName(name []byte) bool {
	return len(name) > 0 && !bytes.ContainsFunc(name, unicode.IsSpace) && !bytes.ContainsRune(name, '+')
}

// mergeNote adds the signature lines lines (each newline-terminated) to the
// signed note signed and returns the result in canonical order: the
// signature by the key (logName, logHash) first, then the others sorted by
// key name, key hash and line, with one line per key (a key already present
// keeps its line). It does not verify any signature.
func mergeNote(signed []byte, logName string, logHash uint32, lines ...[]byte) ([]byte, error) {
	text, sigs, err := splitNote(signed)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		add, err := parseSigLines(l)
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, add...)
	}
	type key struct {
		name string
		hash uint32
	}
	seen := make(map[key]bool, len(sigs))
	sigs = slices.DeleteFunc(sigs, func(s sigLine) bool {
		k := key{s.name, s.hash}
		if seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
	if len(sigs) > maxSignatures {
		return nil, errTooManySigs
	}
	isLog := func(s sigLine) bool { return s.name == logName && s.hash == logHash }
	slices.SortStableFunc(sigs, func(a, b sigLine) int {
		if la, lb := isLog(a), isLog(b); la != lb {
			if la {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.hash, b.hash), bytes.Compare(a.line, b.line))
	})
	out := make([]byte, 0, len(text)+1+len(sigs)*128)
	out = append(out, text...)
	out = append(out, '\n')
	for _, s := range sigs {
		out = append(out, s.line...)
	}
	return out, nil
}

// cosignature checks a witness's add-checkpoint answer, answer, against the
// checkpoint it was sent, signed (signed by the log's key, logKey), and
// returns the witness's cosignature line: the one line of answer by the
// witness's key wv, which must verify. Lines by other keys are ignored.
func cosignature(signed, answer []byte, logKey note.Verifier, wv note.Verifier) ([]byte, error) {
	sigs, err := parseSigLines(answer)
	if err != nil {
		return nil, err
	}
	var line []byte
	for _, s := range sigs {
		if s.name == wv.Name() && s.hash == wv.KeyHash() {
			line = s.line
			break
		}
	}
	if line == nil {
		return nil, errNoCosignature
	}
	n, err := note.Open(append(bytes.Clone(signed), line...), note.VerifierList(logKey, wv))
	if err != nil {
		return nil, err
	}
	for _, s := range n.Sigs {
		if s.Name == wv.Name() && s.Hash == wv.KeyHash() {
			return line, nil
		}
	}
	return nil, errNoCosignature
}
