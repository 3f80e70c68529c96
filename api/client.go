package api

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	vitalproofv1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

type ledgerClient struct {
	c      vitalproofv1.LedgerServiceClient
	bearer string
}

// NewLedgerClient returns the ledger as a gateway sees it, over the
// ledger's gRPC API on conn, calling with the hospital's API key.
//
// Errors are *provenance.Error with the kind, field and message the ledger
// answered, so a gateway can pass a refusal on with the same status. When
// the ledger refuses the gateway's own credentials (UNAUTHENTICATED,
// PERMISSION_DENIED for the whole call), the reason says so, since the
// gateway's caller did nothing wrong. Failures that carry no VitalProof
// error detail (the connection, a timeout) are KindUnavailable or
// KindInternal with a generic reason; their text is in Err.
func NewLedgerClient(conn *grpc.ClientConn, apiKey string) provenance.LedgerClient {
	return &ledgerClient{c: vitalproofv1.NewLedgerServiceClient(conn), bearer: "Bearer " + apiKey}
}

// auth sets the hospital's key as the call's only authorization, replacing
// any the caller's context carries.
func (c *ledgerClient) auth(ctx context.Context) context.Context {
	md, _ := metadata.FromOutgoingContext(ctx)
	md = md.Copy()
	md.Set("authorization", c.bearer)
	return metadata.NewOutgoingContext(ctx, md)
}

func (c *ledgerClient) SubmitEntries(ctx context.Context, entries [][]byte) ([]provenance.SubmitResult, error) {
	resp, err := c.c.SubmitEntries(c.auth(ctx), &vitalproofv1.SubmitEntriesRequest{Entries: entries})
	if err != nil {
		return nil, ledgerCallError(err)
	}
	if len(resp.GetResults()) != len(entries) {
		return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't submit entries",
			Err: fmt.Errorf("ledger answered %d results for %d entries", len(resp.GetResults()), len(entries))}
	}
	out := make([]provenance.SubmitResult, len(entries))
	for i, r := range resp.GetResults() {
		if r.GetError() != nil {
			out[i].Err = entryErrorFrom(r.GetError())
			if len(r.GetLeafHash()) == 32 {
				out[i].LeafHash = [32]byte(r.GetLeafHash())
			}
			continue
		}
		if len(r.GetLeafHash()) != 32 {
			return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't submit entries",
				Err: fmt.Errorf("ledger answered a %d-byte leaf hash for entry %d", len(r.GetLeafHash()), i)}
		}
		out[i] = provenance.SubmitResult{
			LeafHash:   [32]byte(r.GetLeafHash()),
			Index:      r.GetIndex(),
			Pending:    r.GetPending(),
			Integrated: r.GetIntegrated(),
			Receipt:    []byte(r.GetReceipt()),
			Duplicate:  r.GetDuplicate(),
		}
	}
	return out, nil
}

func (c *ledgerClient) Receipt(ctx context.Context, index uint64) ([]byte, error) {
	resp, err := c.c.GetReceipt(c.auth(ctx), &vitalproofv1.GetReceiptRequest{Index: index})
	if err != nil {
		return nil, ledgerCallError(err)
	}
	return []byte(resp.GetReceipt()), nil
}

func (c *ledgerClient) Checkpoint(ctx context.Context) ([]byte, error) {
	resp, err := c.c.GetCheckpoint(c.auth(ctx), &vitalproofv1.GetCheckpointRequest{})
	if err != nil {
		return nil, ledgerCallError(err)
	}
	return []byte(resp.GetCheckpoint()), nil
}

func (c *ledgerClient) InclusionProof(ctx context.Context, index, treeSize uint64) ([][32]byte, error) {
	resp, err := c.c.GetInclusionProof(c.auth(ctx), &vitalproofv1.GetInclusionProofRequest{Index: index, TreeSize: treeSize})
	if err != nil {
		return nil, ledgerCallError(err)
	}
	out := make([][32]byte, len(resp.GetHashes()))
	for i, h := range resp.GetHashes() {
		if len(h) != 32 {
			return nil, &provenance.Error{Kind: provenance.KindInternal, Reason: "couldn't read inclusion proof",
				Err: fmt.Errorf("ledger answered a %d-byte hash", len(h))}
		}
		out[i] = [32]byte(h)
	}
	return out, nil
}

func (c *ledgerClient) Device(ctx context.Context, id string) (provenance.Device, error) {
	d, err := c.c.GetDevice(c.auth(ctx), &vitalproofv1.GetDeviceRequest{DeviceId: id})
	if err != nil {
		return provenance.Device{}, ledgerCallError(err)
	}
	return provenance.Device{
		ID:                 d.GetDeviceId(),
		Manufacturer:       d.GetManufacturer(),
		UDI:                d.GetUdi(),
		Model:              d.GetModel(),
		Firmware:           d.GetFirmware(),
		PublicKey:          d.GetPublicKey(),
		Hospital:           d.GetHospitalId(),
		Status:             provenance.DeviceStatus(d.GetStatus()),
		Registration:       d.GetRegistration(),
		RegistrationIndex:  d.GetRegistrationIndex(),
		RegistrationLogged: d.RegistrationIndex != nil,
	}, nil
}

// ledgerCallError maps the error of a whole call to the ledger.
func ledgerCallError(err error) *provenance.Error {
	e := errorFromStatus(err)
	switch e.Kind {
	case provenance.KindUnauthenticated:
		e.Field, e.Reason = "", "the ledger refused this gateway's API key ("+e.ClientMessage()+")"
	case provenance.KindPermission:
		if e.Field == "" {
			e.Reason = "the ledger refused this gateway's API key (" + e.Reason + ")"
		}
	}
	return e
}
