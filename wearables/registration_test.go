package wearables

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"
)

const testRegistrar = "registry.vitalproof.test"

// testRegistration returns a valid registration of testDevice, whose key is
// testKey(testDevice, 1).
func testRegistration(t testing.TB) *Registration {
	t.Helper()
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	r, err := NewRegistration(testDevice, "acme-medical", "(21)SN0001(01)09506000134352", "Acme Band 2", "1.4.2",
		pub, testHospital, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegistrationRoundTrip(t *testing.T) {
	reg, regV := testKey(t, testRegistrar, 7)
	r := testRegistration(t)
	raw, err := r.Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	for name, parse := range map[string]func([]byte) (*RegistrationRecord, error){
		"ParseRegistration":  ParseRegistration,
		"VerifyRegistration": func(b []byte) (*RegistrationRecord, error) { return VerifyRegistration(b, regV) },
	} {
		rr, err := parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if rr.Registrar != testRegistrar {
			t.Errorf("%s: registrar %q", name, rr.Registrar)
		}
		got := rr.Registration
		if got.DeviceID != r.DeviceID || got.Manufacturer != r.Manufacturer || got.UDI != r.UDI ||
			got.Model != r.Model || got.Firmware != r.Firmware || !got.PublicKey.Equal(r.PublicKey) ||
			got.Hospital != r.Hospital || got.Registered != r.Registered {
			t.Errorf("%s: registration = %+v, want %+v", name, got, *r)
		}
		if !bytes.Equal(rr.Bytes, raw) {
			t.Errorf("%s: bytes differ from the input", name)
		}
		if rr.LeafHash() != sha256.Sum256(append([]byte{0}, raw...)) || rr.LeafHash() != LeafHash(raw) {
			t.Errorf("%s: LeafHash is not SHA-256(0x00 || record)", name)
		}
	}
	// The UDI is kept in canonical form whatever form it was given in.
	if r.UDI != "(01)09506000134352(21)SN0001" {
		t.Errorf("UDI = %q, want the canonical form", r.UDI)
	}
	// The registered key verifies the device's entries.
	dev, _ := testKey(t, testDevice, 1)
	entry, err := SignEntry(testHeader(), dev)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.Verifier()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyEntry(entry, v); err != nil {
		t.Errorf("registered key does not verify the device's entry: %v", err)
	}
}

func TestRegistrationGolden(t *testing.T) {
	reg, _ := testKey(t, testRegistrar, 7)
	raw, err := testRegistration(t).Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	// The v1 format, pinned: any change of the encoding breaks this test.
	const want = "vitalproof/device/v1\n" +
		"device band-1\n" +
		"manufacturer acme-medical\n" +
		"udi (01)09506000134352(21)SN0001\n" +
		"model Acme Band 2\n" +
		"firmware 1.4.2\n" +
		"key iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=\n" +
		"hospital general-hospital\n" +
		"registered 1700000000\n" +
		"\n— registry.vitalproof.test "
	if !strings.HasPrefix(string(raw), want) {
		t.Fatalf("record =\n%s\nwant prefix\n%s", raw, want)
	}
}

func TestNewRegistrationRefusals(t *testing.T) {
	pub := make(ed25519.PublicKey, ed25519.PublicKeySize)
	at := time.Unix(1700000000, 0)
	type args struct {
		device, manufacturer, udi, model, firmware, hospital string
		pub                                                  ed25519.PublicKey
		at                                                   time.Time
	}
	ok := args{"band-1", "acme", "(01)09506000134352", "Band", "1.0", "hosp", pub, at}
	if _, err := NewRegistration(ok.device, ok.manufacturer, ok.udi, ok.model, ok.firmware, ok.pub, ok.hospital, ok.at); err != nil {
		t.Fatalf("valid registration refused: %v", err)
	}
	tests := []struct {
		name string
		edit func(a *args)
	}{
		{"bad device ID", func(a *args) { a.device = "Band 1" }},
		{"bad manufacturer ID", func(a *args) { a.manufacturer = "" }},
		{"bad hospital ID", func(a *args) { a.hospital = "-h" }},
		{"bad UDI check digit", func(a *args) { a.udi = "(01)09506000134353" }},
		{"empty model", func(a *args) { a.model = "" }},
		{"model too long", func(a *args) { a.model = strings.Repeat("m", MaxModelLen+1) }},
		{"model with newline", func(a *args) { a.model = "Band\nkey x" }},
		{"model with leading space", func(a *args) { a.model = " Band" }},
		{"model with trailing space", func(a *args) { a.model = "Band " }},
		{"model not ASCII", func(a *args) { a.model = "Bänd" }},
		{"firmware too long", func(a *args) { a.firmware = strings.Repeat("1", MaxFirmwareLen+1) }},
		{"firmware with tab", func(a *args) { a.firmware = "1.0\t" }},
		{"short key", func(a *args) { a.pub = pub[:31] }},
		{"before 1970", func(a *args) { a.at = time.Unix(-1, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ok
			tt.edit(&a)
			if _, err := NewRegistration(a.device, a.manufacturer, a.udi, a.model, a.firmware, a.pub, a.hospital, a.at); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestParseRegistrationRefusals checks that every non-canonical or invalid
// variant of a valid record is refused, even when correctly signed.
func TestParseRegistrationRefusals(t *testing.T) {
	reg, regV := testKey(t, testRegistrar, 7)
	other, _ := testKey(t, "other-registrar", 8)
	body, err := testRegistration(t).Body()
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	valid := signText(t, text, reg)
	if _, err := VerifyRegistration(valid, regV); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	lines := strings.SplitAfter(text, "\n")
	replace := func(old, new string) string {
		if !strings.Contains(text, old) {
			t.Fatalf("test bug: %q not in record", old)
		}
		return strings.Replace(text, old, new, 1)
	}
	key := "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w="
	withSig := func(s string) []byte { return signText(t, s, reg) }
	tests := []struct {
		name   string
		record []byte
	}{
		{"reordered lines", withSig(strings.Join([]string{lines[0], lines[2], lines[1], strings.Join(lines[3:], "")}, ""))},
		{"leading zero time", withSig(replace("registered 1700000000", "registered 01700000000"))},
		{"negative time", withSig(replace("registered 1700000000", "registered -1700000000"))},
		{"plus sign", withSig(replace("registered 1700000000", "registered +1700000000"))},
		{"unpadded key", withSig(replace(key, strings.TrimRight(key, "=")))},
		{"non-zero padding bits", withSig(replace(key, key[:42]+"x="))},
		{"short key", withSig(replace(key, "AQID"))},
		{"UDI not canonical", withSig(replace("udi (01)09506000134352(21)SN0001", "udi (21)SN0001(01)09506000134352"))},
		{"UDI raw form", withSig(replace("udi (01)09506000134352(21)SN0001", "udi 010950600013435221SN0001"))},
		{"UDI bad check digit", withSig(replace("(01)09506000134352", "(01)09506000134353"))},
		{"double space", withSig(replace("model Acme", "model  Acme"))},
		{"trailing space", withSig(replace("firmware 1.4.2", "firmware 1.4.2 "))},
		{"empty firmware", withSig(replace("firmware 1.4.2", "firmware "))},
		{"missing value", withSig(replace("firmware 1.4.2", "firmware"))},
		{"bad device ID", withSig(replace("device band-1", "device Band-1"))},
		{"wrong key word", withSig(replace("manufacturer acme", "maker acme"))},
		{"two signatures", signText(t, text, reg, other)},
		{"trailing bytes", append(bytes.Clone(valid), 'x')},
		{"trailing newline", append(bytes.Clone(valid), '\n')},
		{"oversize", append(bytes.Clone(valid), bytes.Repeat([]byte{'x'}, MaxRegistrationSize)...)},
		{"unknown version", withSig(replace("device/v1", "device/v2"))},
		{"missing line", withSig(strings.Join(append(append([]string(nil), lines[:4]...), lines[5:]...), ""))},
		{"extra line", withSig(text + "extra 1\n")},
		{"CRLF", withSig(strings.ReplaceAll(text, "\n", "\r\n"))},
		{"not a note", []byte(text)},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rr, err := ParseRegistration(tt.record); err == nil {
				t.Errorf("ParseRegistration accepted it: %+v", rr.Registration)
			}
			if rr, err := VerifyRegistration(tt.record, regV); err == nil {
				t.Errorf("VerifyRegistration accepted it: %+v", rr.Registration)
			}
		})
	}
}

func TestVerifyRegistrationRefusals(t *testing.T) {
	reg, regV := testKey(t, testRegistrar, 7)
	_, sameName := testKey(t, testRegistrar, 9) // same name, another key
	_, devV := testKey(t, testDevice, 1)
	raw, err := testRegistration(t).Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyRegistration(raw, sameName); err == nil {
		t.Error("VerifyRegistration accepted another key of the same name")
	}
	if _, err := VerifyRegistration(raw, devV); err == nil {
		t.Error("VerifyRegistration accepted the device's own key")
	}
	tampered := bytes.Replace(raw, []byte("hospital general-hospital"), []byte("hospital other-hospital"), 1)
	if _, err := ParseRegistration(tampered); err != nil {
		t.Fatalf("ParseRegistration does not verify signatures, yet refused: %v", err)
	}
	if _, err := VerifyRegistration(tampered, regV); err == nil {
		t.Error("VerifyRegistration accepted a tampered record")
	}
}

// TestEntryRegistrationDisjoint checks that neither parser accepts the
// other kind of leaf, so one can never be taken for the other in the log.
func TestEntryRegistrationDisjoint(t *testing.T) {
	dev, devV := testKey(t, testDevice, 1)
	reg, regV := testKey(t, testRegistrar, 7)
	entry, err := SignEntry(testHeader(), dev)
	if err != nil {
		t.Fatal(err)
	}
	record, err := testRegistration(t).Sign(reg)
	if err != nil {
		t.Fatal(err)
	}
	// A registration record signed by a key named like the device, so that
	// only the content tells it apart.
	asDevice, err := testRegistration(t).Sign(dev)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"registrar-signed": record, "device-signed": asDevice} {
		if _, err := ParseEntry(b); err == nil {
			t.Errorf("ParseEntry accepted a %s registration record", name)
		}
		if _, err := VerifyEntry(b, devV); err == nil {
			t.Errorf("VerifyEntry accepted a %s registration record", name)
		}
	}
	_, err = ParseRegistration(entry)
	if err == nil || !strings.Contains(err.Error(), "is an entry") {
		t.Errorf("ParseRegistration of an entry: %v, want an error saying it is an entry", err)
	}
	if _, err := VerifyRegistration(entry, devV); err == nil || !strings.Contains(err.Error(), "is an entry") {
		t.Errorf("VerifyRegistration of an entry: %v, want an error saying it is an entry", err)
	}
	if _, err := VerifyRegistration(entry, regV); err == nil {
		t.Error("VerifyRegistration accepted an entry")
	}
}

func FuzzParseRegistration(f *testing.F) {
	reg, _ := testKey(f, testRegistrar, 7)
	dev, _ := testKey(f, testDevice, 1)
	seed, err := testRegistration(f).Sign(reg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add(bytes.Replace(seed, []byte("registered 1700000000"), []byte("registered 01700000000"), 1))
	f.Add(append(bytes.Clone(seed), seed...))
	entry, _ := SignEntry(testHeader(), dev)
	f.Add(entry)
	f.Add([]byte("vitalproof/device/v1\n\n— x AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rr, err := ParseRegistration(b)
		if err != nil {
			return
		}
		if !bytes.Equal(rr.Bytes, b) {
			t.Fatal("Bytes differ from the input")
		}
		if err := rr.Registration.Check(); err != nil {
			t.Fatalf("parsed registration fails Check: %v", err)
		}
		// The encoding is canonical: the registration re-encodes to the same
		// body, followed by the one signature line.
		body, err := rr.Registration.Body()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, append(body, '\n')) {
			t.Fatal("input does not start with the registration's canonical body")
		}
		sig := string(b[len(body)+1:])
		if !strings.HasPrefix(sig, "— "+rr.Registrar+" ") || strings.Count(sig, "\n") != 1 {
			t.Fatalf("signature line %q", sig)
		}
		if _, err := ParseEntry(b); err == nil {
			t.Fatal("a registration record parses as an entry too")
		}
		again, err := ParseRegistration(rr.Bytes)
		if err != nil || again.Registrar != rr.Registrar {
			t.Fatalf("reparse: %v", err)
		}
	})
}
