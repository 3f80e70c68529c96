package audit_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/vitalproof/vitalproof/zk/audit"
	"github.com/vitalproof/vitalproof/zk/audit/audittest"
)

func TestParseRoundTrip(t *testing.T) {
	f := audittest.Shared(t)
	for name, p := range map[string]*audit.Parts{
		"bracketed":   f.Parts(t, from, to, audittest.Params, 0),
		"from seq 1":  f.Parts(t, 0, 2, audittest.Params, 0),
		"to the head": f.Parts(t, len(f.Chain)-2, len(f.Chain), audittest.Params, 0),
	} {
		t.Run(name, func(t *testing.T) {
			raw := audittest.Bundle(t, p)
			b, err := audit.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			out, err := b.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, raw) {
				t.Fatalf("Marshal(Parse(b)) differs from b:\n%s\n---\n%s", out, raw)
			}
			if (b.Before == nil) != (p.Before == nil) || (b.After == nil) != (p.After == nil) || len(b.Entries) != len(p.Entries) {
				t.Errorf("parsed brackets or entries differ from the parts")
			}
			if !b.Development || b.DeviceID != audittest.Device || b.Metric != audittest.Metric || b.Params != audittest.Params {
				t.Errorf("parsed header: %+v", b)
			}
			if !bytes.Equal(b.Checkpoint, p.Checkpoint) {
				t.Error("checkpoint differs")
			}
		})
	}
}

// TestParseRefusals checks that every variant of a valid bundle that
// Marshal would not produce is refused.
func TestParseRefusals(t *testing.T) {
	f := audittest.Shared(t)
	valid := audittest.Bundle(t, f.Parts(t, from, to, audittest.Params, 0))
	header, checkpoint, _ := strings.Cut(string(valid), "\n\n")
	lines := strings.Split(header, "\n")
	find := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("test bug: no line %q", prefix)
		return 0
	}
	with := func(edit func(l []string) []string) []byte {
		l := edit(append([]string(nil), lines...))
		return []byte(strings.Join(l, "\n") + "\n\n" + checkpoint)
	}
	set := func(prefix, line string) []byte {
		return with(func(l []string) []string { l[find(prefix)] = line; return l })
	}
	replace := func(prefix, old, new string) []byte {
		i := find(prefix)
		if !strings.Contains(lines[i], old) {
			t.Fatalf("test bug: %q not in line %q", old, prefix)
		}
		return set(prefix, strings.Replace(lines[i], old, new, 1))
	}
	insert := func(before, line string) []byte {
		return with(func(l []string) []string {
			i := find(before)
			return append(l[:i], append([]string{line}, l[i:]...)...)
		})
	}
	remove := func(prefix string) []byte {
		return with(func(l []string) []string { i := find(prefix); return append(l[:i], l[i+1:]...) })
	}
	entry := lines[find("entry ")]
	entryFields := strings.Split(entry, " ")
	regFields := strings.Split(lines[find("registration ")], " ")
	hash := entryFields[3]
	tests := []struct {
		name   string
		bundle []byte
	}{
		{"empty", nil},
		{"header only", []byte(header)},
		{"oversize", append(bytes.Clone(valid), make([]byte, audit.MaxBundleSize)...)},
		{"unknown version", replace("vitalproof/audit-bundle/v1", "v1", "v2")},
		{"CRLF", []byte(strings.ReplaceAll(header, "\n", "\r\n") + "\r\n\r\n" + checkpoint)},
		{"extra header line", insert("circuit ", "comment hello")},
		{"line after the after line", with(func(l []string) []string { return append(l, "entry "+strings.Join(entryFields[1:], " ")) })},
		{"missing parameter line", remove("tir ")},
		{"parameter line of an absent part", insert("circuit ", "mean 150")},
		{"parameter lines out of order", with(func(l []string) []string {
			i, j := find("range "), find("tir ")
			l[i], l[j] = l[j], l[i]
			return l
		})},
		{"too few parameters", replace("tir ", " 70", "")},
		{"parameter beyond 32 bits", replace("range ", " 40 ", " 4294967296 ")},
		{"statement parts not canonical", set("statement ", "statement tir+range")},
		{"unknown statement part", set("statement ", "statement range+median")},
		{"leading zero in the period", replace("period ", "period ", "period 0")},
		{"negative period", replace("period ", "period ", "period -")},
		{"double space", replace("period ", " ", "  ")},
		{"trailing space", set("device ", lines[find("device ")]+" ")},
		{"bad device ID", set("device ", "device Audit-Band")},
		{"unknown metric", set("metric ", "metric glucose-ish")},
		{"circuit unlike the proof's", replace("circuit ", "/4x6", "/5x6")},
		{"fingerprint unlike the proof's", set("vk ", "vk AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")},
		{"unknown keys label", set("keys ", "keys trusted")},
		{"proof not base64", set("proof ", "proof !!!!")},
		{"proof unpadded", set("proof ", strings.TrimRight(lines[find("proof ")], "="))},
		{"proof truncated", set("proof ", lines[find("proof ")][:len(lines[find("proof ")])-8])},
		{"no proof", remove("proof ")},
		{"index with a leading zero", replace("entry ", "entry ", "entry 0")},
		{"index beyond 2^63-1", set("entry ", "entry 9223372036854775808 "+strings.Join(entryFields[2:], " "))},
		{"leaf with stray padding", set("entry ", strings.Join(append([]string{"entry", entryFields[1], entryFields[2] + "="}, entryFields[3:]...), " "))},
		{"leaf truncated", set("entry ", strings.Join(append([]string{"entry", entryFields[1], entryFields[2][:len(entryFields[2])-8]}, entryFields[3:]...), " "))},
		{"short proof hash", replace("entry ", hash, hash[:40]+"==")},
		{"64 proof hashes", set("entry ", entry+strings.Repeat(" "+hash, 64-len(entryFields)+3))},
		{"registration in an entry line", set("entry ", "entry "+strings.Join(regFields[1:], " "))},
		{"entry in the registration line", set("registration ", "registration "+strings.Join(entryFields[1:], " "))},
		{"entry in the before line", set("before ", "before nothing")},
		{"after line not head", set("after ", "after tail")},
		{"before none with more", set("before ", "before none x")},
		{"no entries", with(func(l []string) []string {
			var out []string
			for _, x := range l {
				if !strings.HasPrefix(x, "entry ") {
					out = append(out, x)
				}
			}
			return out
		})},
		{"no after line", remove("after ")},
		{"no checkpoint", []byte(header + "\n\n")},
		{"checkpoint without final newline", valid[:len(valid)-1]},
		{"oversize checkpoint", append(bytes.Clone(valid), bytes.Repeat([]byte("x\n"), audit.MaxCheckpointSize/2)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.Parse(tt.bundle)
			t.Log(err)
			if !errors.Is(err, audit.ErrMalformed) {
				t.Errorf("Parse: %v; want ErrMalformed", err)
			}
		})
	}
	if _, err := audit.Parse(valid); err != nil {
		t.Fatalf("the valid bundle no longer parses: %v", err)
	}
	// A parameter of a part the statement does not include cannot be
	// encoded.
	b, _ := audit.Parse(valid)
	b.Params.MeanBound = 100
	if _, err := b.Marshal(); !errors.Is(err, audit.ErrMalformed) {
		t.Errorf("Marshal of a parameter of an absent part: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	fx := audittest.Shared(f)
	valid := audittest.Bundle(f, fx.Parts(f, from, to, audittest.Params, 0))
	f.Add(valid)
	f.Add(audittest.Bundle(f, fx.Parts(f, 0, 1, audittest.Params, 0)))
	f.Add(valid[:len(valid)/2])
	f.Add(bytes.Replace(valid, []byte("after "), []byte("after head\nafter "), 1))
	f.Add([]byte(audit.Magic + "\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := audit.Parse(data)
		if err != nil {
			if !errors.Is(err, audit.ErrMalformed) {
				t.Fatalf("Parse error %v does not wrap ErrMalformed", err)
			}
			return
		}
		out, err := b.Marshal()
		if err != nil {
			t.Fatalf("a parsed bundle does not marshal: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatal("Marshal(Parse(b)) differs from b")
		}
	})
}
