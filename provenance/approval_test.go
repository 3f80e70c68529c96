package provenance

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func approvalKeys(t testing.TB, name string) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestApproval(t *testing.T) {
	s, v := approvalKeys(t, "hospital-a")
	_, other := approvalKeys(t, "hospital-a")
	pub := ed25519.PublicKey(make([]byte, 32))
	pub[0] = 7
	a := &Approval{Manufacturer: "acme", Action: ActionAdmit, PublicKey: pub, Hospital: "hospital-a", Time: 1764400000}
	b, err := a.Sign(s)
	if err != nil {
		t.Fatal(err)
	}
	want := "vitalproof/approval/v1\nmanufacturer acme\naction admit\nkey BwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nhospital hospital-a\ntime 1764400000\n\n— hospital-a "
	if !strings.HasPrefix(string(b), want) {
		t.Fatalf("approval = %q; want it to start %q", b, want)
	}
	got, err := ParseApproval(b, v)
	if err != nil {
		t.Fatal(err)
	}
	if got.Manufacturer != "acme" || got.Action != ActionAdmit || !got.PublicKey.Equal(pub) || got.Time != 1764400000 {
		t.Errorf("parsed %+v", got)
	}

	resign := func(text string) []byte {
		b, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body, _ := a.Body()
	for name, bad := range map[string][]byte{
		"another key":       nil,
		"extra line":        resign(string(body) + "extra 1\n"),
		"unknown action":    resign(strings.Replace(string(body), "action admit", "action revoke", 1)),
		"short key":         resign(strings.Replace(string(body), "BwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "Bw==", 1)),
		"leading zero time": resign(strings.Replace(string(body), "time 1764400000", "time 01764400000", 1)),
		"another hospital":  resign(strings.Replace(string(body), "hospital hospital-a", "hospital hospital-b", 1)),
		"wrong header":      resign(strings.Replace(string(body), "approval/v1", "approval/v2", 1)),
		"double space":      resign(strings.Replace(string(body), "manufacturer acme", "manufacturer  acme", 1)),
		"too large":         append(append([]byte(nil), b...), make([]byte, MaxApprovalSize)...),
	} {
		verifier := v
		if name == "another key" {
			bad, verifier = b, other
		}
		if _, err := ParseApproval(bad, verifier); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	if _, err := (&Approval{Manufacturer: "acme", Action: ActionAdmit, PublicKey: pub, Hospital: "hospital-b", Time: 1}).Sign(s); err == nil {
		t.Error("signed an approval naming another hospital")
	}
}

func FuzzParseApproval(f *testing.F) {
	s, v := approvalKeys(f, "hospital-a")
	a := &Approval{Manufacturer: "acme", Action: ActionSuspend, PublicKey: make([]byte, 32), Hospital: "hospital-a", Time: 5}
	b, err := a.Sign(s)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("vitalproof/approval/v1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := ParseApproval(b, v)
		if err != nil {
			if !errors.Is(err, errMalformedApproval) && !strings.Contains(err.Error(), "does not verify") {
				t.Fatalf("error %v names no refusal class", err)
			}
			return
		}
		// What parses re-encodes to its own text.
		body, err := got.Body()
		if err != nil || !strings.HasPrefix(string(b), string(body)+"\n— ") {
			t.Fatalf("parsed %q, which does not re-encode", b)
		}
	})
}
