package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/provenance"
)

const manufacturerUsage = `usage: vitalproof manufacturer propose --ledger URL --admin-key-file F --id ID --name NAME --vkey-file F [--api-key-out F]
       vitalproof manufacturer approve --ledger URL --api-key-file F --hospital-key F --id ID [--suspend]
       vitalproof manufacturer show --ledger URL --api-key-file F --id ID`

// cmdManufacturer runs the consortium's side of manufacturers: the
// operator proposes one, member hospitals approve (sign and submit a vote
// to admit or suspend it), anyone entitled reads its status.
func cmdManufacturer(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usageError{errors.New(manufacturerUsage)}
	}
	switch args[0] {
	case "propose":
		return manufacturerPropose(ctx, args[1:])
	case "approve":
		return manufacturerApprove(ctx, args[1:])
	case "show":
		return manufacturerShow(ctx, args[1:])
	}
	return usageError{errors.New(manufacturerUsage)}
}

func manufacturerPropose(ctx context.Context, args []string) error {
	fs := newFlags("manufacturer propose")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	adminKey := fs.String("admin-key-file", "", "file holding the operator's API key")
	id := fs.String("id", "", "manufacturer ID")
	name := fs.String("name", "", "manufacturer display name")
	vkeyFile := fs.String("vkey-file", "", "the manufacturer's verifier key file (vitalproof keygen --name ID)")
	keyOut := fs.String("api-key-out", "", "write the manufacturer's API key to this file (mode 0600) instead of stdout")
	if err := parse(fs, args, "admin-key-file", "id", "name", "vkey-file"); err != nil {
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
	var resp v1.ProposeManufacturerResponse
	if err := c.call(ctx, http.MethodPost, "/api/v1/log/manufacturers", &v1.ProposeManufacturerRequest{ManufacturerId: *id, Name: *name, PublicKey: pub}, &resp); err != nil {
		return err
	}
	return printAPIKey(*keyOut, resp.ApiKey, "proposed manufacturer "+*id+" (its API key works once it is admitted)")
}

func manufacturerApprove(ctx context.Context, args []string) error {
	fs := newFlags("manufacturer approve")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding the hospital's ledger API key")
	hospitalKey := fs.String("hospital-key", "", "the hospital's private key file (the key it was admitted with), which signs the approval")
	id := fs.String("id", "", "manufacturer ID")
	suspend := fs.Bool("suspend", false, "vote to suspend the manufacturer rather than to admit it")
	if err := parse(fs, args, "api-key-file", "hospital-key", "id"); err != nil {
		return err
	}
	signer, err := signerFile(*hospitalKey, "hospital key")
	if err != nil {
		return err
	}
	c, err := newClient(*ledger, *apiKey)
	if err != nil {
		return err
	}
	// The vote binds the key the manufacturer was proposed with: read it
	// from the ledger and show it, so the hospital approves what it saw.
	var m v1.Manufacturer
	if err := c.call(ctx, http.MethodGet, "/api/v1/log/manufacturers/"+url.PathEscape(*id), nil, &m); err != nil {
		return err
	}
	action := provenance.ActionAdmit
	if *suspend {
		action = provenance.ActionSuspend
	}
	a := &provenance.Approval{Manufacturer: *id, Action: action, PublicKey: m.PublicKey, Hospital: signer.Name(), Time: time.Now().Unix()}
	signed, err := a.Sign(signer)
	if err != nil {
		return err
	}
	var out v1.Manufacturer
	if err := c.call(ctx, http.MethodPost, "/api/v1/log/manufacturers/"+url.PathEscape(*id)+"/approvals",
		&v1.ApproveManufacturerRequest{ManufacturerId: *id, Approval: string(signed)}, &out); err != nil {
		return err
	}
	printManufacturer(&out)
	return nil
}

func manufacturerShow(ctx context.Context, args []string) error {
	fs := newFlags("manufacturer show")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding an admin, hospital or the manufacturer's API key")
	id := fs.String("id", "", "manufacturer ID")
	if err := parse(fs, args, "api-key-file", "id"); err != nil {
		return err
	}
	c, err := newClient(*ledger, *apiKey)
	if err != nil {
		return err
	}
	var m v1.Manufacturer
	if err := c.call(ctx, http.MethodGet, "/api/v1/log/manufacturers/"+url.PathEscape(*id), nil, &m); err != nil {
		return err
	}
	printManufacturer(&m)
	return nil
}

func printManufacturer(m *v1.Manufacturer) {
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	fmt.Printf("manufacturer %s (%s): %s; admission approved by %s; suspension approved by %s; %d approvals needed\n",
		m.ManufacturerId, m.Name, m.Status, none(m.AdmittedBy), none(m.SuspendedBy), m.Quorum)
}
