package wearables

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
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
	deviceV2 := testHeader()
	deviceV2.Firmware = "1.4.2"
	gatewayV2 := *gateway
	gatewayV2.Firmware = "2.0.1 build 7 (rc)"
	longest := testHeader()
	longest.Firmware = strings.Repeat("~", MaxFirmwareLen)
	tests := []struct {
		name   string
		h      *EntryHeader
		signer note.Signer
		v      note.Verifier
		magic  string
	}{
		{"device", testHeader(), dev, devV, "vitalproof/entry/v1\n"},
		{"gateway", gateway, hosp, hospV, "vitalproof/entry/v1\n"},
		{"device v2", deviceV2, dev, devV, "vitalproof/entry/v2\n"},
		{"gateway v2, firmware with spaces", &gatewayV2, hosp, hospV, "vitalproof/entry/v2\n"},
		{"longest firmware", longest, dev, devV, "vitalproof/entry/v2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := SignEntry(tt.h, tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(raw, []byte(tt.magic)) {
				t.Errorf("entry starts %q, want %q", raw[:bytes.IndexByte(raw, '\n')+1], tt.magic)
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
	hosp, _ := testKey(t, testHospital, 2)
	gateway := testHeader()
	gateway.Attestation, gateway.Seq, gateway.Prev = AttestGateway, 7, [32]byte{9, 9, 9}
	deviceV2 := testHeader()
	deviceV2.Firmware = "1.4.2"
	gatewayV2 := *gateway
	gatewayV2.Firmware = "2.0.1 build 7"
	// Both formats, pinned byte for byte with their leaf hashes: any change
	// of the encoding breaks this test. The v1 entries are those of the
	// format before v2 existed; logged v1 leaves must keep their hashes.
	const (
		v1Body = "device band-1\n" +
			"metric heart-rate\n" +
			"window 1700000000 1700003600\n" +
			"count 3\n" +
			"commitment AQIDAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
		v1Device  = v1Body + "seq 1\nprev AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhospital general-hospital\nattestation device\n"
		v1Gateway = v1Body + "seq 7\nprev CQkJAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhospital general-hospital\nattestation gateway\n"
	)
	tests := []struct {
		name   string
		h      *EntryHeader
		signer note.Signer
		want   string
		leaf   string
	}{
		{"v1 device", testHeader(), dev,
			"vitalproof/entry/v1\n" + v1Device +
				"\n— band-1 ZMYEkW4of/9jNvC5P1k0J+bvoRzO8UesSiyuh0iP6s60fmVp4c9OsMHTjBhwNVCPBwcjD/ZvdIExU98FhVkFY9+FTwA=\n",
			"6bc7f6eda8ba42810a6d51b7a01a81aaefba824f18b6ca7ad852f925302e80c5"},
		{"v1 gateway", gateway, hosp,
			"vitalproof/entry/v1\n" + v1Gateway +
				"\n— general-hospital hQUkC66zp09UbIDXVnza5ue3gy0RUnjy/30ycQTYONifoCDaGW56mL43SvKDrpgUjoog2GKif5dYFvmeiBF7+U4ihgQ=\n",
			"581b0c913adf09ab247af9696a2c3949304d7cc9823b19128387088a7c4d4c76"},
		{"v2 device", deviceV2, dev,
			"vitalproof/entry/v2\n" + v1Device + "firmware 1.4.2\n" +
				"\n— band-1 ZMYEkcTM/x1cQcyjr9uCQxW+s7XzBkia74AL0QLrj2+cH6qxUQXBH6L0ZvqyWGJ9Jm6jteeIiNg8KNdZcaSdeu1nYwM=\n",
			"45a35e80d90b878e6629ea0369fe8d13a70d1aa5bf787e8325214851db1b7f3f"},
		{"v2 gateway", &gatewayV2, hosp,
			"vitalproof/entry/v2\n" + v1Gateway + "firmware 2.0.1 build 7\n" +
				"\n— general-hospital hQUkC6UTcy6nTqCBD1qaqooD/9YowBleApd2ZABnPzPKA/KK1NGArY0GpV2nQDwN6YlIMozKgqHV37qGs2Idpa+ruwU=\n",
			"5bc09da018b6d147fc9751e2f54377eaf46f239bdca89e799bf8b999dc9a83d2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := SignEntry(tt.h, tt.signer)
			if err != nil {
				t.Fatal(err)
			}
			if string(raw) != tt.want {
				t.Errorf("entry =\n%q\nwant\n%q", raw, tt.want)
			}
			if leaf := LeafHash(raw); hex.EncodeToString(leaf[:]) != tt.leaf {
				t.Errorf("leaf hash = %x, want %s", leaf, tt.leaf)
			}
		})
	}
}

// TestEntryV2IsV1PlusFirmware checks that the firmware changes nothing but
// the version line and the last header line: not the chain, the signer or
// the commitment.
func TestEntryV2IsV1PlusFirmware(t *testing.T) {
	v1 := testHeader()
	v2 := testHeader()
	v2.Firmware = "3.1.0"
	b1, err := v1.Body()
	if err != nil {
		t.Fatal(err)
	}
	b2, err := v2.Body()
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := bytes.CutPrefix(b1, []byte("vitalproof/entry/v1\n"))
	if !ok {
		t.Fatalf("v1 body %q", b1)
	}
	if want := "vitalproof/entry/v2\n" + string(rest) + "firmware 3.1.0\n"; string(b2) != want {
		t.Errorf("v2 body =\n%s\nwant\n%s", b2, want)
	}
	if v1.ChainKey() != v2.ChainKey() || v1.Signer() != v2.Signer() {
		t.Error("the firmware changed the chain key or the signer")
	}
}

func TestEntryFirmware(t *testing.T) {
	dev, _ := testKey(t, testDevice, 1)
	for fw, ok := range map[string]bool{
		"1":                                   true,
		"1.4.2":                               true,
		"2.0.1 build 7":                       true,
		"v2  (beta)":                          true,
		"!~":                                  true,
		strings.Repeat("9", MaxFirmwareLen):   true,
		strings.Repeat("9", MaxFirmwareLen+1): false,
		" 1.4.2":                              false,
		"1.4.2 ":                              false,
		" ":                                   false,
		"1.4\t2":                              false,
		"1.4\n2":                              false,
		"1.4.2\x7f":                           false,
		"1.4.2\x00":                           false,
		"1.4.2-é":                             false,
		"— 1":                                 false,
	} {
		h := testHeader()
		h.Firmware = fw
		if err := h.Check(); (err == nil) != ok {
			t.Errorf("Check with firmware %q: %v, want ok %v", fw, err, ok)
		}
		raw, err := SignEntry(h, dev)
		if (err == nil) != ok {
			t.Errorf("SignEntry with firmware %q: %v, want ok %v", fw, err, ok)
		}
		if !ok {
			continue
		}
		e, err := ParseEntry(raw)
		if err != nil || e.Header.Firmware != fw {
			t.Errorf("ParseEntry with firmware %q: %+v, %v", fw, e, err)
		}
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
	// The device signs the firmware version: it cannot be changed either.
	h := testHeader()
	h.Firmware = "1.4.2"
	rawV2, err := SignEntry(h, dev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEntry(rawV2, devV); err != nil {
		t.Fatalf("v2 entry refused: %v", err)
	}
	for name, b := range map[string][]byte{
		"another firmware":     bytes.Replace(rawV2, []byte("firmware 1.4.2"), []byte("firmware 1.5.0"), 1),
		"firmware line cut":    bytes.Replace(bytes.Replace(rawV2, []byte("firmware 1.4.2\n"), nil, 1), []byte("entry/v2"), []byte("entry/v1"), 1),
		"signed v1 as v2":      bytes.Replace(raw, []byte("entry/v1\n"), []byte("entry/v2\n"), 1),
		"firmware added to v1": bytes.Replace(bytes.Replace(raw, []byte("attestation device\n"), []byte("attestation device\nfirmware 1.4.2\n"), 1), []byte("entry/v1"), []byte("entry/v2"), 1),
	} {
		if _, err := VerifyEntry(b, devV); err == nil {
			t.Errorf("%s: VerifyEntry accepted it", name)
		}
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
// of a valid entry, of either format version, is refused, even when
// correctly signed.
func TestParseEntryRefusals(t *testing.T) {
	v2 := testHeader()
	v2.Firmware = "1.4.2"
	for _, version := range []struct {
		name string
		h    *EntryHeader
	}{{"v1", testHeader()}, {"v2", v2}} {
		t.Run(version.name, func(t *testing.T) {
			testParseEntryRefusals(t, version.h)
		})
	}
}

func testParseEntryRefusals(t *testing.T, h *EntryHeader) {
	dev, devV := testKey(t, testDevice, 1)
	hosp, _ := testKey(t, testHospital, 2)
	other, _ := testKey(t, "other-band", 4)
	body, err := h.Body()
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
		{"unknown version", withSig(replace("vitalproof/entry/v", "vitalproof/entry/v3"))},
		{"upper-case magic", withSig(replace("vitalproof/", "VitalProof/"))},
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
	if h.Firmware == "" {
		tests = append(tests, []struct {
			name  string
			entry []byte
		}{
			{"v1 with a firmware line", withSig(text + "firmware 1.4.2\n")},
			{"v1 with a firmware line after the device", withSig(replace("device band-1\n", "device band-1\nfirmware 1.4.2\n"))},
			{"v1 with an empty firmware line", withSig(text + "firmware \n")},
		}...)
	} else {
		noFirmware := replace("firmware 1.4.2\n", "")
		tests = append(tests, []struct {
			name  string
			entry []byte
		}{
			{"v2 without a firmware line", withSig(noFirmware)},
			{"v2 with the firmware line after the device", withSig(strings.Replace(noFirmware, "device band-1\n", "device band-1\nfirmware 1.4.2\n", 1))},
			{"v2 with the firmware line first", withSig(strings.Replace(noFirmware, "vitalproof/entry/v2\n", "vitalproof/entry/v2\nfirmware 1.4.2\n", 1))},
			{"two firmware lines", withSig(text + "firmware 1.4.2\n")},
			{"empty firmware", withSig(replace("firmware 1.4.2", "firmware "))},
			{"firmware key word alone", withSig(replace("firmware 1.4.2", "firmware"))},
			{"firmware with a leading space", withSig(replace("firmware 1.4.2", "firmware  1.4.2"))},
			{"firmware with a trailing space", withSig(replace("firmware 1.4.2", "firmware 1.4.2 "))},
			{"firmware with a tab", withSig(replace("firmware 1.4.2", "firmware 1.4\t2"))},
			{"firmware not ASCII", withSig(replace("firmware 1.4.2", "firmware 1.4.2-é"))},
			{"firmware too long", withSig(replace("firmware 1.4.2", "firmware "+strings.Repeat("1", MaxFirmwareLen+1)))},
			{"wrong firmware key word", withSig(replace("firmware 1.4.2", "fw 1.4.2"))},
			{"upper-case firmware key word", withSig(replace("firmware 1.4.2", "Firmware 1.4.2"))},
		}...)
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

// TestParseEntryErrors checks that the refusals that tell a format apart
// say so.
func TestParseEntryErrors(t *testing.T) {
	dev, _ := testKey(t, testDevice, 1)
	mfr, _ := testActor(t, testManufacturer)
	reg, _ := testKey(t, testRegistrar, 7)
	v1, err := testHeader().Body()
	if err != nil {
		t.Fatal(err)
	}
	record, err := testRegistration(t).Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	event, err := testEvent(t, EventRecalled, testManufacturer).Sign(mfr)
	if err != nil {
		t.Fatal(err)
	}
	// Signed by a key named like the device, so that only the content
	// tells it from an entry.
	asDevice := testEvent(t, EventManufactured, testManufacturer)
	asDevice.Actor = testDevice
	eventByDevice, err := asDevice.Sign(dev)
	if err != nil {
		t.Fatal(err)
	}
	rest := strings.TrimPrefix(string(v1), "vitalproof/entry/v1\n")
	for _, tt := range []struct {
		name  string
		entry []byte
		want  string
	}{
		{"registration record", record, "this is a device registration record (vitalproof/device/v1), not an entry"},
		{"lifecycle event", event, "this is a lifecycle event (vitalproof/event/v1), not an entry"},
		{"device-signed lifecycle event", eventByDevice, "this is a lifecycle event (vitalproof/event/v1), not an entry"},
		{"v1 with firmware", signText(t, string(v1)+"firmware 1.4.2\n", dev), "a vitalproof/entry/v1 entry has no firmware line (that is format vitalproof/entry/v2)"},
		{"v2 without firmware", signText(t, "vitalproof/entry/v2\n"+rest, dev), "a vitalproof/entry/v2 entry ends with a firmware line"},
		{"v2 with an empty firmware", signText(t, "vitalproof/entry/v2\n"+rest+"firmware \n", dev), `line 11: want "firmware" with a version`},
		{"v2 with a bad firmware", signText(t, "vitalproof/entry/v2\n"+rest+"firmware 1.4.2 \n", dev), "firmware: must be 1 to 64 bytes of printable ASCII"},
		{"unknown version", signText(t, "vitalproof/entry/v3\n"+rest, dev), "unknown entry format version"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntry(tt.entry)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseEntry: %v, want an error saying %q", err, tt.want)
			}
			body, _, _ := strings.Cut(string(tt.entry), "\n\n")
			_, err = ParseEntryBody(body + "\n")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseEntryBody: %v, want an error saying %q", err, tt.want)
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
	v2 := testHeader()
	v2.Firmware = "1.4.2"
	seedV2, _ := SignEntry(v2, dev)
	f.Add(seedV2)
	g.Firmware = "2.0.1 build 7"
	gwV2, _ := SignEntry(g, hosp)
	f.Add(gwV2)
	f.Add(bytes.Replace(seed, []byte("attestation device\n"), []byte("attestation device\nfirmware 1.4.2\n"), 1))
	f.Add(bytes.Replace(seedV2, []byte("firmware 1.4.2\n"), nil, 1))
	f.Add([]byte("vitalproof/entry/v2\n\n— x AAAA\n"))
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
		// The version follows the firmware: v1 without, v2 with.
		magic := "vitalproof/entry/v1\n"
		if e.Header.Firmware != "" {
			magic = "vitalproof/entry/v2\n"
		}
		if !bytes.HasPrefix(b, []byte(magic)) {
			t.Fatalf("firmware %q in an entry that does not start with %q", e.Header.Firmware, magic)
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
