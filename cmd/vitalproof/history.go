package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/log/quorum"
)

// deviceHistory runs `vitalproof device history`: it pages through a
// device's history at the ledger, checks the checkpoint against the
// policy and every leaf's inclusion proof, prints one line per leaf and
// can write the verified history as JSON.
func deviceHistory(ctx context.Context, args []string) error {
	fs := newFlags("device history")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding the operator's, the manufacturer's or the device's hospital's ledger API key")
	id := fs.String("id", "", "device ID")
	order := fs.String("order", "oldest", "oldest or newest first")
	policyFile := fs.String("policy", "", "tlog-policy file: check each page's checkpoint against it (log key and witness quorum)")
	out := fs.String("out", "", "also write the verified history, with its checkpoints and proofs, to this JSON file")
	if err := parse(fs, args, "api-key-file", "id", "policy"); err != nil {
		return err
	}
	policy, err := os.ReadFile(*policyFile)
	if err != nil {
		return fmt.Errorf("couldn't read policy: %w", err)
	}
	pol, err := quorum.ParsePolicy(policy)
	if err != nil {
		return err
	}
	c, err := newClient(*ledger, *apiKey)
	if err != nil {
		return err
	}
	var pages []*v1.DeviceHistory
	counts := map[string]int{}
	token := ""
	for {
		q := url.Values{"order": {*order}, "page_size": {"500"}}
		if token != "" {
			q.Set("page_token", token)
		}
		var h v1.DeviceHistory
		if err := c.call(ctx, http.MethodGet, "/api/v1/log/devices/"+url.PathEscape(*id)+"/history?"+q.Encode(), nil, &h); err != nil {
			return err
		}
		rep, err := pol.Check([]byte(h.Checkpoint))
		if err != nil {
			return fmt.Errorf("the history's checkpoint: %w", err)
		}
		if rep.Size != h.TreeSize {
			return fmt.Errorf("the history says tree size %d, its checkpoint %d", h.TreeSize, rep.Size)
		}
		for _, it := range h.Items {
			lh := tlog.RecordHash(it.Leaf)
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, it.Index, h.TreeSize, lh[:], it.Inclusion, rep.RootHash[:]); err != nil {
				return fmt.Errorf("leaf %d of the history does not verify against the checkpoint of tree size %d: %w", it.Index, h.TreeSize, err)
			}
			counts[it.Kind]++
			fmt.Printf("%8d  %-12s  %s\n", it.Index, it.Kind, leafSummary(it.Leaf))
		}
		pages = append(pages, &h)
		if token = h.NextPageToken; token == "" {
			break
		}
	}
	total := counts["registration"] + counts["event"] + counts["entry"]
	fmt.Printf("%d leaves of device %s verified against cosigned checkpoints (%d registration, %d lifecycle events, %d reading entries)\n",
		total, *id, counts["registration"], counts["event"], counts["entry"])
	if *out != "" {
		b, err := json.MarshalIndent(pages, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// leafSummary is a leaf's note text on one line, without its key and
// commitment values.
func leafSummary(leaf []byte) string {
	text, _, _ := strings.Cut(string(leaf), "\n\n")
	var parts []string
	for i, l := range strings.Split(text, "\n") {
		k, _, _ := strings.Cut(l, " ")
		switch {
		case i == 0:
			continue
		case k == "key" || k == "commitment" || k == "prev":
			continue
		}
		parts = append(parts, l)
	}
	return strings.Join(parts, ", ")
}

// cmdIndex runs `vitalproof index check`: the operator asks the ledger to
// rebuild its leaf index from the log and report differences.
func cmdIndex(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		return usageError{errors.New("usage: vitalproof index check --ledger URL --admin-key-file F [--repair]")}
	}
	fs := newFlags("index check")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "ledger REST base URL")
	adminKey := fs.String("admin-key-file", "", "file holding the operator's API key")
	repair := fs.Bool("repair", false, "write the rows rebuilt from the log in place of the differing ones")
	if err := parse(fs, args[1:], "admin-key-file"); err != nil {
		return err
	}
	c, err := newClient(*ledger, *adminKey)
	if err != nil {
		return err
	}
	var r v1.IndexReport
	if err := c.call(ctx, http.MethodPost, "/api/v1/log/index/check", &v1.CheckIndexRequest{Repair: *repair}, &r); err != nil {
		return err
	}
	for _, l := range r.Missing {
		fmt.Printf("missing: leaf %d (%s, device %q, manufacturer %q)\n", l.Index, l.Kind, l.DeviceId, l.Manufacturer)
	}
	for _, l := range r.Wrong {
		fmt.Printf("wrong:   leaf %d should be (%s, device %q, manufacturer %q)\n", l.Index, l.Kind, l.DeviceId, l.Manufacturer)
	}
	for _, i := range r.Extra {
		fmt.Printf("extra:   leaf %d is beyond the log\n", i)
	}
	n := len(r.Missing) + len(r.Wrong) + len(r.Extra)
	switch {
	case n == 0:
		fmt.Printf("the index matches the log's %d leaves\n", r.Leaves)
		return nil
	case r.Repaired:
		fmt.Printf("%d differences from the log's %d leaves, repaired\n", n, r.Leaves)
		return nil
	}
	return fmt.Errorf("%d differences from the log's %d leaves (run again with --repair)", n, r.Leaves)
}
