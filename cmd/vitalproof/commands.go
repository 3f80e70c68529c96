package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/log/receipt"
	"github.com/vitalproof/vitalproof/wearables"
)

func cmdKeygen(ctx context.Context, args []string) error {
	fs := newFlags("keygen")
	name := fs.String("name", "", "key name: the device ID or hospital ID it signs for")
	out := fs.String("out", "", "file to write the private key to (mode 0600); the verifier key goes to FILE.vkey")
	if err := parse(fs, args, "name", "out"); err != nil {
		return err
	}
	if !wearables.ValidID(*name) {
		return usageError{errors.New("--name must match [a-z0-9][a-z0-9._-]{0,63}")}
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, *name)
	if err != nil {
		return fmt.Errorf("couldn't generate key: %w", err)
	}
	f, err := os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("couldn't create key file: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".vkey", []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Println(vkey)
	return nil
}

func readTrimmed(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// signerFile reads a note private key file (what names the key in errors).
func signerFile(path, what string) (note.Signer, error) {
	skey, err := readTrimmed(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read %s: %w", what, err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("%s: not a signing key: %w", path, err)
	}
	return signer, nil
}

// namedPublicKey reads a note verifier key file and checks that the key
// is named id.
func namedPublicKey(path, id string) ([]byte, error) {
	name, pub, err := publicKeyFile(path)
	if err != nil {
		return nil, err
	}
	if name != id {
		return nil, fmt.Errorf("the key in %s is named %q, not %q", path, name, id)
	}
	return pub, nil
}

// printAPIKey writes an API key shown once to path (mode 0600), saying so
// on stderr, or to stdout when path is empty.
func printAPIKey(path, key, saved string) error {
	if path == "" {
		fmt.Println(key)
		return nil
	}
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "%s; its API key is in %s\n", saved, path)
	return nil
}

// publicKeyFile reads a note verifier key file and returns its name and Ed25519 key.
func publicKeyFile(path string) (string, []byte, error) {
	vkey, err := readTrimmed(path)
	if err != nil {
		return "", nil, fmt.Errorf("couldn't read verifier key: %w", err)
	}
	name, pub, err := wearables.ParseVerifierKey(vkey)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", path, err)
	}
	return name, pub, nil
}

func cmdPolicy(ctx context.Context, args []string) error {
	fs := newFlags("policy")
	vkeyFile := fs.String("log-vkey-file", "", "file holding the log's checkpoint verifier key")
	if err := parse(fs, args, "log-vkey-file"); err != nil {
		return err
	}
	vkey, err := readTrimmed(*vkeyFile)
	if err != nil {
		return fmt.Errorf("couldn't read log verifier key: %w", err)
	}
	os.Stdout.Write(receipt.Policy(vkey))
	return nil
}

func cmdHospital(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "register" {
		return usageError{errors.New("usage: vitalproof hospital register --ledger URL --admin-key-file F --id ID --name NAME --vkey-file F [--api-key-out F]")}
	}
	fs := newFlags("hospital register")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	adminKey := fs.String("admin-key-file", "", "file holding the operator's API key")
	id := fs.String("id", "", "hospital ID")
	name := fs.String("name", "", "hospital display name")
	vkeyFile := fs.String("vkey-file", "", "the hospital's verifier key file (its gateway's signing key)")
	keyOut := fs.String("api-key-out", "", "write the hospital's ledger API key to this file (mode 0600) instead of stdout")
	if err := parse(fs, args[1:], "admin-key-file", "id", "name", "vkey-file"); err != nil {
		return err
	}
	pub, err := namedPublicKey(*vkeyFile, *id)
	if err != nil {
		return err
	}
	c, err := newClient(*ledger, *adminKey)
	if err != nil {
		return err
	}
	var resp v1.RegisterHospitalResponse
	if err := c.call(ctx, http.MethodPost, "/api/v1/log/hospitals", &v1.RegisterHospitalRequest{HospitalId: *id, Name: *name, PublicKey: pub}, &resp); err != nil {
		return err
	}
	return printAPIKey(*keyOut, resp.ApiKey, "registered hospital "+*id)
}

func cmdDevice(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "history" {
		return deviceHistory(ctx, args[1:])
	}
	if len(args) > 0 && args[0] == "event" {
		return deviceEvent(ctx, args[1:])
	}
	if len(args) == 0 || args[0] != "register" {
		return usageError{errors.New("usage: vitalproof device register --ledger URL (--admin-key-file F | --api-key-file F --manufacturer-key F) --id ID --manufacturer M --udi UDI --model M --firmware V --vkey-file F --hospital ID")}
	}
	fs := newFlags("device register")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	adminKey := fs.String("admin-key-file", "", "file holding the operator's API key (the registry signs the record)")
	apiKey := fs.String("api-key-file", "", "file holding the manufacturer's API key (with --manufacturer-key)")
	manufacturerKey := fs.String("manufacturer-key", "", "the manufacturer's private key file: sign the registration record as the manufacturer")
	id := fs.String("id", "", "device registry ID")
	manufacturer := fs.String("manufacturer", "", "manufacturer ID")
	udi := fs.String("udi", "", "GS1 UDI element string, e.g. (01)09506000134352(21)SN1")
	model := fs.String("model", "", "model name")
	firmware := fs.String("firmware", "", "firmware version")
	vkeyFile := fs.String("vkey-file", "", "the device's verifier key file")
	hospital := fs.String("hospital", "", "hospital the device is assigned to")
	if err := parse(fs, args[1:], "id", "manufacturer", "udi", "model", "firmware", "vkey-file", "hospital"); err != nil {
		return err
	}
	if (*adminKey == "") == (*manufacturerKey == "" || *apiKey == "") {
		return usageError{errors.New("give --admin-key-file (the operator registers), or --api-key-file and --manufacturer-key (the manufacturer registers)")}
	}
	pub, err := namedPublicKey(*vkeyFile, *id)
	if err != nil {
		return err
	}
	if *manufacturerKey != "" {
		signer, err := signerFile(*manufacturerKey, "manufacturer key")
		if err != nil {
			return err
		}
		reg, err := wearables.NewRegistration(*id, *manufacturer, *udi, *model, *firmware, pub, *hospital, time.Now())
		if err != nil {
			return usageError{err}
		}
		record, err := reg.Sign(signer)
		if err != nil {
			return err
		}
		c, err := newClient(*ledger, *apiKey)
		if err != nil {
			return err
		}
		var d v1.Device
		if err := c.call(ctx, http.MethodPost, "/api/v1/log/registrations", &v1.SubmitRegistrationRequest{Registration: string(record)}, &d); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "manufacturer %s registered device %s (%s) for hospital %s\n", *manufacturer, d.DeviceId, d.Udi, *hospital)
		return nil
	}
	c, err := newClient(*ledger, *adminKey)
	if err != nil {
		return err
	}
	var d v1.Device
	req := &v1.RegisterDeviceRequest{DeviceId: *id, Manufacturer: *manufacturer, Udi: *udi, Model: *model, Firmware: *firmware, PublicKey: pub, HospitalId: *hospital}
	if err := c.call(ctx, http.MethodPost, "/api/v1/log/devices", req, &d); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "registered device %s (%s) for hospital %s\n", d.DeviceId, d.Udi, *hospital)
	return nil
}

func cmdSubmit(ctx context.Context, args []string) error {
	fs := newFlags("submit")
	gateway := fs.String("gateway", "http://127.0.0.1:8090", "gateway REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding a gateway API key (role submitter)")
	batch := fs.String("batch", "", "native JSON batch: {\"entry\": ..., \"salt\": base64, \"readings\": [{\"offset\": s, \"value\": n}]}")
	fhir := fs.String("fhir", "", "FHIR R4 Observation or Bundle (JSON)")
	receipts := fs.String("receipts", "", "directory to write receipt-<index>.tlog-proof files to")
	if err := parse(fs, args, "api-key-file"); err != nil {
		return err
	}
	if (*batch == "") == (*fhir == "") {
		return usageError{errors.New("give exactly one of --batch and --fhir")}
	}
	c, err := newClient(*gateway, *apiKey)
	if err != nil {
		return err
	}
	var results []*v1.BatchResult
	if *batch != "" {
		b, err := os.ReadFile(*batch)
		if err != nil {
			return err
		}
		var req v1.SubmitBatchRequest
		if err := unmarshalJSON(b, &req); err != nil {
			return fmt.Errorf("%s: %w", *batch, err)
		}
		var res v1.BatchResult
		if err := c.call(ctx, http.MethodPost, "/api/v1/gateway/batches", &req, &res); err != nil {
			return err
		}
		results = append(results, &res)
	} else {
		b, err := os.ReadFile(*fhir)
		if err != nil {
			return err
		}
		out, err := c.do(ctx, http.MethodPost, "/api/v1/gateway/fhir", "application/fhir+json", b)
		if err != nil {
			return err
		}
		var resp v1.SubmitFHIRResponse
		if err := unmarshalJSON(out, &resp); err != nil {
			return fmt.Errorf("couldn't decode answer: %w", err)
		}
		results = resp.Results
	}
	for _, r := range results {
		printResult(r)
		if *receipts != "" && !r.Pending {
			if err := writeReceipt(*receipts, r.Index, r.Receipt); err != nil {
				return err
			}
		}
	}
	return nil
}

func printResult(r *v1.BatchResult) {
	state := fmt.Sprintf("logged at index %d", r.Index)
	switch {
	case r.Pending && r.Integrated:
		state = fmt.Sprintf("pending at index %d (logged; its receipt awaits a checkpoint cosigned by a quorum of witnesses: vitalproof receipt --index %d --wait 1m)", r.Index, r.Index)
	case r.Pending:
		state = "pending (stored; the gateway forwards it until the ledger logs it)"
	case r.Duplicate:
		state += " (submitted before)"
	}
	fmt.Printf("%s %s: %d readings, attestation %s, %s\n", r.DeviceId, r.Metric, r.Readings, r.Attestation, state)
}

func writeReceipt(dir string, index uint64, rcpt string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, fmt.Sprintf("receipt-%d.tlog-proof", index)), []byte(rcpt), 0o644)
}

func cmdReceipt(ctx context.Context, args []string) error {
	fs := newFlags("receipt")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	index := fs.String("index", "", "the entry's index")
	out := fs.String("out", "", "write the receipt to this file instead of stdout")
	wait := fs.Duration("wait", 0, "while the entry is pending (not yet covered by a cosigned checkpoint), ask again every second for at most this long")
	if err := parse(fs, args, "index"); err != nil {
		return err
	}
	n, err := strconv.ParseUint(*index, 10, 64)
	if err != nil {
		return usageError{fmt.Errorf("--index: %w", err)}
	}
	c, err := newClient(*ledger, "")
	if err != nil {
		return err
	}
	var resp v1.GetReceiptResponse
	deadline := time.Now().Add(*wait)
	for {
		err := c.call(ctx, http.MethodGet, fmt.Sprintf("/api/v1/log/entries/%d/receipt", n), nil, &resp)
		var ae *apiError
		if err == nil || !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			if err != nil {
				return err
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if *out != "" {
		return os.WriteFile(*out, []byte(resp.Receipt), 0o644)
	}
	fmt.Print(resp.Receipt)
	return nil
}

func cmdWait(ctx context.Context, args []string) error {
	fs := newFlags("wait")
	url := fs.String("url", "", "health URL, e.g. http://127.0.0.1:8080/healthz")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	if err := parse(fs, args, "url"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %s", *url, *timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func unmarshalJSON(b []byte, m proto.Message) error {
	return protojson.Unmarshal(b, m)
}
