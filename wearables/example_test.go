package wearables_test

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vitalproof/vitalproof/wearables"
)

func ExampleParseUDI() {
	u, err := wearables.ParseUDI("(21)WB0001(01)09506000134352(17)290300(10)LOT42")
	if err != nil {
		panic(err)
	}
	fmt.Println(u.GTIN, u.Lot, u.Serial, u.Expires.Format(time.DateOnly))
	fmt.Println(u)
	// Output:
	// 09506000134352 LOT42 WB0001 2029-03-31
	// (01)09506000134352(17)290300(10)LOT42(21)WB0001
}

// A simulated wearable signs an hour of heart-rate readings, sends them to
// its hospital as FHIR, and the gateway checks that they open the entry's
// commitment.
func ExampleSimulator() {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)) // use GenerateDeviceKey in real life
	signer, err := wearables.Ed25519Signer("band-1", priv)
	if err != nil {
		panic(err)
	}
	sim, err := wearables.NewSimulator("band-1", "general-hospital", signer, rand.NewChaCha8([32]byte{}))
	if err != nil {
		panic(err)
	}
	start := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	batch, err := sim.Batch("heart-rate", start, time.Hour, 5*time.Minute)
	if err != nil {
		panic(err)
	}
	bundle, err := wearables.ExportFHIR(batch, "Patient/example")
	if err != nil {
		panic(err)
	}

	imp, err := wearables.ImportFHIR(bundle)
	if err != nil {
		panic(err)
	}
	got := imp.Attested[0].Batch
	verifier, _ := wearables.DeviceVerifier("band-1", priv.Public().(ed25519.PublicKey))
	if _, err := wearables.VerifyEntry(got.Entry.Bytes, verifier); err != nil {
		panic(err)
	}
	fmt.Println(got.Entry.Header.ChainKey(), got.Entry.Header.Seq, got.Entry.Header.Count)
	fmt.Println(got.Validate(start.Add(time.Hour)))
	// Output:
	// band-1/heart-rate/device 1 12
	// <nil>
}
