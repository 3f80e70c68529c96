package wearables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestEntryRoundTrip(t *testing.T) {
	dev, devV := testKey(t, testDevice, 1)
	hosp, hospV := testKey(t, testHospital, 2)
	gateway := testHeader()
	gateway.Attestation = AttestGateway
	gateway.Seq, gateway.Prev = 7, [32]byte{9, 9, 9}
	tests := []struct {
		name   string
		h      *EntryHeader
		signer note.Signer
		v      note.Verifier
	}{
		{"device", testHeader(), dev, devV},
		{"gateway", gateway, hosp, hospV},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := SignEntry(tt.h, tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			for name, parse := range map[string]func([]byte) (*Entry, error){
				"ParseEntry":  ParseEntry,
				"VerifyEntry": func(b []byte) (*Entry, error) { return VerifyEntry(b, tt.v) },
			} {
				e, err := parse(raw)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if e.Header != *tt.h {
					t.Errorf("%s header = %+v, want %+v", name, e.Header, *tt.h)
				}
				if !bytes.Equal(e.Bytes, raw) {
					t.Errorf("%s bytes differ from the input", name)
				}
			}
			body, _ := tt.h.Body()
			h, err := ParseEntryBody(string(body))
			if err != nil || *h != *tt.h {
				t.Errorf("ParseEntryBody = %+v, %v", h, err)
			}
			// Signing is deterministic (Ed25519), so the encoding is too.
			again, _ := SignEntry(tt.h, tt.signer)
			if !bytes.Equal(raw, again) {
				t.Error("signing twice gave different bytes")
			}
			leaf := sha256.Sum256(append([]byte{0}, raw...))
			if LeafHash(raw) != leaf {
				t.Error("LeafHash is not SHA-256(0x00 || entry)")
			}
		})
	}
}

func TestEntryGolden(t *testing.T) {
	dev, _ := testKey(t, testDevice, 1)
	raw, err := SignEntry(testHeader(), dev)
	if err != nil {
		t.Fatal(err)
	}
	// The v1 format, pinned: any change of the encoding breaks this test.
	const want = "vitalproof/entry/v1\n" +
		"device band-1\n" +
		"metric heart-rate\n" +
		"window 1700000000 1700003600\n" +
		"count 3\n" +
		"commitment AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"seq 1\n" +
		"prev AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" +
		"hospital general-hospital\n" +
		"attestation device\n" +
		"\n— band-1 "
	if !strings.HasPrefix(string(raw), want) {
		t.Fatalf("entry =\n%s\nwant prefix\n%s", raw, want)
	}
}

func TestVerifyEntryRefusals(t *testing.T) {
	dev, devV := testKey(t, testDevice, 1)
	_, otherV := testKey(t, testDevice, 3) // same name, another key
	_, hospV := testKey(t, testHospital, 2)
	raw, err := SignEntry(testHeader(), dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEntry(raw, otherV); err == nil {
		t.Error("VerifyEntry accepted another key of the same name")
	}
	if _, err := VerifyEntry(raw, hospV); err == nil {
		t.Error("VerifyEntry accepted the hospital's key for a device entry")
	}
	// A canonical entry whose body was changed after signing.
	tampered := bytes.Replace(raw, []byte("count 3"), []byte("count 4"), 1)
	if _, err := ParseEntry(tampered); err != nil {
		t.Fatalf("ParseEntry does not verify signatures, yet refused: %v", err)
	}
	if _, err := VerifyEntry(tampered, devV); err == nil {
		t.Error("VerifyEntry accepted a tampered entry")
	}
	if _, err := VerifyEntry(append(raw, '\n'), devV); err == nil {
		t.Error("VerifyEntry accepted trailing bytes")
	}
}

func TestSignEntryRefusals(t *testing.T) {
	dev, _ := testKey(t, testDevice, 1)
	hosp, _ := testKey(t, testHospital, 2)
	gateway := testHeader()
	gateway.Attestation = AttestGateway
	if _, err := SignEntry(gateway, dev); err == nil {
		t.Error("the device signed a gateway entry")
	}
	if _, err := SignEntry(testHeader(), hosp); err == nil {
		t.Error("the hospital signed a device entry")
	}
	bad := testHeader()
	bad.Count = 0
	if _, err := SignEntry(bad, dev); err == nil {
		t.Error("SignEntry signed an invalid header")
	}
}

// TestParseEntryRefusals checks that every non-canonical or invalid variant
// of a valid entry is refused, even when correctly signed.
func TestParseEntryRefusals(t *testing.T) {
	dev, devV := testKey(t, testDevice, 1)
	hosp, _ := testKey(t, testHospital, 2)
	other, _ := testKey(t, "other-band", 4)
	body, err := testHeader().Body()
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	valid := signText(t, text, dev)
	if _, err := ParseEntry(valid); err != nil {
		t.Fatalf("valid entry refused: %v", err)
	}
	lines := strings.SplitAfter(text, "\n")
	swap := func(i, j int) string {
		l := append([]string(nil), lines...)
		l[i], l[j] = l[j], l[i]
		return strings.Join(l, "")
	}
	replace := func(old, new string) string {
		if !strings.Contains(text, old) {
			t.Fatalf("test bug: %q not in entry", old)
		}
		return strings.Replace(text, old, new, 1)
	}
	commit := "AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	withSig := func(s string) []byte { return signText(t, s, dev) }
	tests := []struct {
		name  string
		entry []byte
	}{
		{"reordered lines", withSig(swap(1, 2))},
		{"reordered hospital and attestation", withSig(swap(8, 9))},
		{"leading zero count", withSig(replace("count 3", "count 03"))},
		{"leading zero seq", withSig(replace("seq 1", "seq 01"))},
		{"leading zero window", withSig(replace("window 1700000000", "window 01700000000"))},
		{"plus sign", withSig(replace("count 3", "count +3"))},
		{"negative window", withSig(replace("window 1700000000", "window -1700000000"))},
		{"unpadded base64", withSig(replace(commit, strings.TrimRight(commit, "=")))},
		{"extra padding", withSig(replace(commit, commit+"="))},
		{"non-zero padding bits", withSig(replace(commit, commit[:42]+"B="))},
		{"url-safe base64", withSig(replace("prev AAAA", "prev -AAA"))},
		{"short hash", withSig(replace(commit, "AQID"))},
		{"two signatures", signText(t, text, dev, other)},
		{"signed by another key name", signText(t, text, other)},
		{"device entry signed by the hospital", signText(t, text, hosp)},
		{"gateway entry signed by the device", withSig(replace("attestation device", "attestation gateway"))},
		{"trailing bytes", append(append([]byte(nil), valid...), "x"...)},
		{"trailing newline", append(append([]byte(nil), valid...), '\n')},
		{"oversize", append(append([]byte(nil), valid...), bytes.Repeat([]byte{'x'}, MaxEntrySize)...)},
		{"unknown version", withSig(replace("entry/v1", "entry/v2"))},
		{"missing line", withSig(strings.Join(append(append([]string(nil), lines[:4]...), lines[5:]...), ""))},
		{"extra line", withSig(text + "extra 1\n")},
		{"double space", withSig(replace("count 3", "count  3"))},
		{"trailing space", withSig(replace("count 3\n", "count 3 \n"))},
		{"CRLF", withSig(strings.ReplaceAll(text, "\n", "\r\n"))},
		{"wrong key word", withSig(replace("count 3", "cnt 3"))},
		{"bad device ID", withSig(replace("device band-1", "device Band-1"))},
		{"unknown metric", withSig(replace("metric heart-rate", "metric pulse"))},
		{"empty window", withSig(replace("window 1700000000 1700003600", "window 1700000000 1700000000"))},
		{"window too long", withSig(replace("window 1700000000 1700003600", "window 1700000000 1704194305"))},
		{"count zero", withSig(replace("count 3", "count 0"))},
		{"count too large", withSig(replace("count 3", "count 4097"))},
		{"seq zero", withSig(replace("seq 1", "seq 0"))},
		{"seq overflow", withSig(replace("seq 1", "seq 18446744073709551616"))},
		{"first entry with prev", withSig(replace("prev AAAA", "prev AQAA"))},
		{"unknown attestation", withSig(replace("attestation device", "attestation manual"))},
		{"not a note", []byte(text)},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := ParseEntry(tt.entry); err == nil {
				t.Errorf("ParseEntry accepted it: %+v", e.Header)
			}
			if e, err := VerifyEntry(tt.entry, devV); err == nil {
				t.Errorf("VerifyEntry accepted it: %+v", e.Header)
			}
		})
	}
}

func TestWindowBounds(t *testing.T) {
	dev, _ := testKey(t, testDevice, 1)
	h := testHeader()
	h.WindowEnd = h.WindowStart + 1<<22 // the longest window
	raw, err := SignEntry(h, dev)
	if err != nil {
		t.Fatalf("longest window refused: %v", err)
	}
	if _, err := ParseEntry(raw); err != nil {
		t.Fatalf("longest window refused: %v", err)
	}
	h.WindowEnd++
	if _, err := SignEntry(h, dev); err == nil {
		t.Error("window of 2^22+1 seconds accepted")
	}
	h = testHeader()
	h.Count = MaxBatchReadings
	if _, err := SignEntry(h, dev); err != nil {
		t.Errorf("count %d refused: %v", MaxBatchReadings, err)
	}
}

func TestChainKey(t *testing.T) {
	h := testHeader()
	if got := h.ChainKey(); got != "band-1/heart-rate/device" {
		t.Errorf("ChainKey = %q", got)
	}
	if h.Signer() != testDevice {
		t.Errorf("Signer = %q", h.Signer())
	}
	h.Attestation = AttestGateway
	if h.Signer() != testHospital {
		t.Errorf("gateway Signer = %q", h.Signer())
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "0": true, "band-1": true, "a.b_c-d": true, strings.Repeat("a", 64): true,
		"": false, "-a": false, ".a": false, "A": false, "a b": false, "a+b": false,
		strings.Repeat("a", 65): false, "bänd": false, "a/b": false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v, want %v", id, !want, want)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	dev, _ := testKey(f, testDevice, 1)
	hosp, _ := testKey(f, testHospital, 2)
	seed, _ := SignEntry(testHeader(), dev)
	f.Add(seed)
	g := testHeader()
	g.Attestation, g.Seq, g.Prev = AttestGateway, 42, [32]byte{0xff}
	gw, _ := SignEntry(g, hosp)
	f.Add(gw)
	f.Add(bytes.Replace(seed, []byte("count 3"), []byte("count 03"), 1))
	f.Add(append(append([]byte(nil), seed...), seed...))
	f.Add([]byte("vitalproof/entry/v1\n\n— x AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			return
		}
		if !bytes.Equal(e.Bytes, b) {
			t.Fatal("Bytes differ from the input")
		}
		if err := e.Header.Check(); err != nil {
			t.Fatalf("parsed header fails Check: %v", err)
		}
		// The encoding is canonical: the header re-encodes to the same body,
		// and the signature line is the only other content.
		body, err := e.Header.Body()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, append(body, '\n')) {
			t.Fatal("input does not start with the header's canonical body")
		}
		sig := string(b[len(body)+1:])
		if !strings.HasPrefix(sig, "— "+e.Header.Signer()+" ") || strings.Count(sig, "\n") != 1 {
			t.Fatalf("signature line %q", sig)
		}
		sigB64 := strings.TrimSuffix(strings.TrimPrefix(sig, "— "+e.Header.Signer()+" "), "\n")
		if raw, err := base64.StdEncoding.DecodeString(sigB64); err != nil || base64.StdEncoding.EncodeToString(raw) != sigB64 {
			t.Fatal("signature is not canonical base64")
		}
		e2, err := ParseEntry(e.Bytes)
		if err != nil || e2.Header != e.Header {
			t.Fatalf("reparse: %+v, %v", e2, err)
		}
	})
}
