package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/wearables"
)

// deviceEvent runs `vitalproof device event`: a manufacturer or hospital
// signs the device's next lifecycle event (its seq and prev taken from the
// device's state at the ledger) and records it.
func deviceEvent(ctx context.Context, args []string) error {
	fs := newFlags("device event")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding the manufacturer's or the hospital's ledger API key")
	keyFile := fs.String("key", "", "the manufacturer's or hospital's private key file, which signs the event (its name is the actor)")
	id := fs.String("id", "", "device ID")
	kind := fs.String("kind", "", "manufactured, shipped, commissioned, firmware, recalled or decommissioned")
	at := fs.String("at", "", "when the event takes effect, RFC 3339 (default now)")
	hospital := fs.String("hospital", "", "shipped: the hospital it is shipped to; commissioned: the commissioning hospital")
	firmware := fs.String("firmware", "", "firmware: the new version")
	image := fs.String("image", "", "firmware: the firmware image file, whose SHA-256 the event records")
	digest := fs.String("digest", "", "firmware: the image's SHA-256 in hex, instead of --image")
	reason := fs.String("reason", "", "recalled: why")
	if err := parse(fs, args, "api-key-file", "key", "id", "kind"); err != nil {
		return err
	}
	signer, err := signerFile(*keyFile, "key")
	if err != nil {
		return err
	}
	when := time.Now()
	if *at != "" {
		if when, err = time.Parse(time.RFC3339, *at); err != nil {
			return usageError{fmt.Errorf("--at: %w", err)}
		}
	}
	d := wearables.EventDetails{Hospital: *hospital, Firmware: *firmware, Reason: *reason}
	switch {
	case *image != "":
		b, err := os.ReadFile(*image)
		if err != nil {
			return err
		}
		d.FirmwareDigest = sha256.Sum256(b)
	case *digest != "":
		b, err := hex.DecodeString(*digest)
		if err != nil || len(b) != sha256.Size {
			return usageError{fmt.Errorf("--digest: want 64 hex digits")}
		}
		d.FirmwareDigest = [32]byte(b)
	}
	c, err := newClient(*ledger, *apiKey)
	if err != nil {
		return err
	}
	var dev v1.Device
	if err := c.call(ctx, http.MethodGet, "/api/v1/log/devices/"+url.PathEscape(*id), nil, &dev); err != nil {
		return err
	}
	l := dev.GetLifecycle()
	if len(l.GetHead()) != 32 {
		return fmt.Errorf("the ledger answered no lifecycle head for device %s", *id)
	}
	ev, err := wearables.NewEvent(*id, wearables.EventKind(*kind), l.GetSeq()+1, [32]byte(l.GetHead()), when, signer.Name(), d)
	if err != nil {
		return usageError{err}
	}
	b, err := ev.Sign(signer)
	if err != nil {
		return err
	}
	var out v1.Lifecycle
	if err := c.call(ctx, http.MethodPost, "/api/v1/log/events", &v1.RecordEventRequest{Event: string(b)}, &out); err != nil {
		return err
	}
	fmt.Printf("device %s: %s (event %d by %s); now %s", *id, *kind, out.Seq, signer.Name(), out.Status)
	if out.Hospital != "" {
		fmt.Printf(", hospital %s", out.Hospital)
	}
	fmt.Printf(", firmware %s\n", out.Firmware)
	return nil
}
