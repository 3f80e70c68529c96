package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/wearables"
)

// auditRequest runs `vitalproof audit request`: a regulator asks a
// hospital's gateway for an audit, follows the job's progress and writes
// the bundle.
func auditRequest(ctx context.Context, args []string) error {
	fs := newFlags("audit request")
	gateway := fs.String("gateway", "http://127.0.0.1:8090", "the hospital gateway's REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding a gateway API key with role regulator")
	parts := fs.String("statement", "", "the statement's parts joined by +: range, tir, adherence, mean, max")
	device := fs.String("device", "", "the device's registry ID")
	metricCode := fs.String("metric", "", "the metric's code, e.g. glucose")
	from := fs.String("from", "", "start of the period: RFC 3339 time or YYYY-MM-DD (00:00 UTC)")
	to := fs.String("to", "", "end of the period, exclusive: RFC 3339 time or YYYY-MM-DD (00:00 UTC)")
	rangeFlag := fs.String("range", "", "range part: LO:HI, every reading in [LO, HI] (in the metric's unit)")
	tirFlag := fs.String("tir", "", "tir part: LO:HI:PERCENT, at least PERCENT % of readings in [LO, HI]")
	minDays := fs.Uint("min-days", 0, "adherence part: readings on at least this many days")
	meanBelow := fs.String("mean-below", "", "mean part: the mean of the readings is below this bound")
	maxBelow := fs.String("max-below", "", "max part: every reading is below this bound")
	out := fs.String("out", "", "file to write the bundle to (default audit-<job>.vpaudit)")
	wait := fs.Duration("wait", 30*time.Minute, "how long to follow the job before giving up (it goes on at the gateway)")
	detach := fs.Bool("detach", false, "print the job's ID and return at once; follow it later with audit fetch")
	if err := parse(fs, args, "api-key-file", "statement", "device", "metric", "from", "to"); err != nil {
		return err
	}
	m, ok := wearables.MetricByCode(*metricCode)
	if !ok {
		return usageError{fmt.Errorf("--metric: unknown metric %q", *metricCode)}
	}
	req := &v1.CreateAuditRequest{Statement: *parts, DeviceId: *device, Metric: m.Code, MinDays: uint32(*minDays)}
	var err error
	if req.PeriodStart, err = parsePeriodBound(*from); err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	if req.PeriodEnd, err = parsePeriodBound(*to); err != nil {
		return usageError{fmt.Errorf("--to: %w", err)}
	}
	if *rangeFlag != "" {
		v, err := fixedList(m, *rangeFlag, 2)
		if err != nil {
			return usageError{fmt.Errorf("--range: %w", err)}
		}
		req.RangeLo, req.RangeHi = v[0], v[1]
	}
	if *tirFlag != "" {
		lohi, pct, ok := cutLast(*tirFlag)
		if !ok {
			return usageError{errors.New("--tir: want LO:HI:PERCENT")}
		}
		v, err := fixedList(m, lohi, 2)
		if err != nil {
			return usageError{fmt.Errorf("--tir: %w", err)}
		}
		p, err := strconv.ParseUint(pct, 10, 32)
		if err != nil || p > 100 {
			return usageError{errors.New("--tir: PERCENT must be an integer from 0 to 100")}
		}
		req.TirLo, req.TirHi, req.TirPercent = v[0], v[1], uint32(p)
	}
	if *meanBelow != "" {
		if req.MeanBound, err = fixed(m, *meanBelow); err != nil {
			return usageError{fmt.Errorf("--mean-below: %w", err)}
		}
	}
	if *maxBelow != "" {
		if req.MaxBound, err = fixed(m, *maxBelow); err != nil {
			return usageError{fmt.Errorf("--max-below: %w", err)}
		}
	}
	c, err := newClient(*gateway, *apiKey)
	if err != nil {
		return err
	}
	var job v1.AuditJob
	if err := c.call(ctx, http.MethodPost, "/api/v1/gateway/audits", req, &job); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "audit %s: %s over %s %s, %s to %s: %s\n", job.Id, *parts, *device, m.Code,
		time.Unix(req.PeriodStart, 0).UTC().Format(time.RFC3339), time.Unix(req.PeriodEnd, 0).UTC().Format(time.RFC3339), job.State)
	if *detach {
		fmt.Println(job.Id)
		return nil
	}
	return fetchBundle(ctx, c, job.Id, *wait, *out)
}

// auditFetch runs `vitalproof audit fetch`: it follows an audit job and
// writes its bundle.
func auditFetch(ctx context.Context, args []string) error {
	fs := newFlags("audit fetch")
	gateway := fs.String("gateway", "http://127.0.0.1:8090", "the hospital gateway's REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding the regulator's gateway API key")
	id := fs.String("id", "", "the audit job's ID")
	out := fs.String("out", "", "file to write the bundle to (default audit-<job>.vpaudit)")
	wait := fs.Duration("wait", 30*time.Minute, "how long to follow the job before giving up (it goes on at the gateway)")
	if err := parse(fs, args, "api-key-file", "id"); err != nil {
		return err
	}
	c, err := newClient(*gateway, *apiKey)
	if err != nil {
		return err
	}
	return fetchBundle(ctx, c, *id, *wait, *out)
}

// fetchBundle follows a job to its end and writes its bundle to out.
func fetchBundle(ctx context.Context, c *restClient, id string, wait time.Duration, out string) error {
	j, err := followAudit(ctx, c, id, wait)
	if err != nil {
		return err
	}
	switch j.State {
	case "done":
	case "refused":
		return fmt.Errorf("audit %s refused: %s", j.Id, j.Message)
	default:
		return fmt.Errorf("audit %s failed: %s", j.Id, j.Message)
	}
	path := out
	if path == "" {
		path = "audit-" + j.Id + ".vpaudit"
	}
	if err := os.WriteFile(path, j.Bundle, 0o644); err != nil {
		return err
	}
	fmt.Printf("audit %s done: %d entries, %d readings, circuit %s; bundle %s (%d bytes)\n", j.Id, j.Entries, j.Readings, j.Circuit, path, len(j.Bundle))
	if j.UnsafeKeys {
		fmt.Println("WARNING: proved with development keys: UNSAFE FOR PRODUCTION, whoever ran their setup can forge proofs")
	}
	return nil
}

// followAudit polls a job, printing its stage when it changes, until it
// is done, failed or refused, or wait has passed.
func followAudit(ctx context.Context, c *restClient, id string, wait time.Duration) (*v1.AuditJob, error) {
	deadline := time.Now().Add(wait)
	last := ""
	for {
		var j v1.AuditJob
		if err := c.call(ctx, http.MethodGet, "/api/v1/gateway/audits/"+url.PathEscape(id), nil, &j); err != nil {
			return nil, err
		}
		if line := fmt.Sprintf("%s %d%% %s", j.State, j.Progress, j.Stage); line != last {
			fmt.Fprintf(os.Stderr, "  %s\n", line)
			last = line
		}
		switch j.State {
		case "done", "failed", "refused":
			return &j, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("audit %s is still %s after %s; ask again later with the same job (GET /api/v1/gateway/audits/%s)", id, j.State, wait, id)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// auditDecide runs `vitalproof audit decide`: the hospital approves or
// refuses a regulator's audit.
func auditDecide(ctx context.Context, args []string) error {
	fs := newFlags("audit decide")
	gateway := fs.String("gateway", "http://127.0.0.1:8090", "the hospital gateway's REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding the gateway's admin API key")
	id := fs.String("id", "", "the audit job's ID")
	approve := fs.Bool("approve", false, "approve the audit")
	refuse := fs.String("refuse", "", "refuse the audit, with this reason for the regulator")
	if err := parse(fs, args, "api-key-file", "id"); err != nil {
		return err
	}
	if *approve == (*refuse != "") {
		return usageError{errors.New("give exactly one of --approve and --refuse REASON")}
	}
	c, err := newClient(*gateway, *apiKey)
	if err != nil {
		return err
	}
	var j v1.AuditJob
	if err := c.call(ctx, http.MethodPost, "/api/v1/gateway/audits/"+url.PathEscape(*id)+"/decision",
		&v1.DecideAuditRequest{Id: *id, Approve: *approve, Reason: *refuse}, &j); err != nil {
		return err
	}
	fmt.Printf("audit %s: %s\n", j.Id, j.State)
	return nil
}

// auditKeys runs `vitalproof audit keys`: it downloads the verifying keys
// the ledger serves into a directory that `audit verify --keys` reads,
// checking each key's fingerprint.
func auditKeys(ctx context.Context, args []string) error {
	fs := newFlags("audit keys")
	ledger := fs.String("ledger", "http://127.0.0.1:8080", "the ledger's REST base URL")
	out := fs.String("out", "", "directory to write <fingerprint>/metadata.json and verifying.key to")
	if err := parse(fs, args, "out"); err != nil {
		return err
	}
	c, err := newClient(*ledger, "")
	if err != nil {
		return err
	}
	var list v1.ListVerifyingKeysResponse
	if err := c.call(ctx, http.MethodGet, "/api/v1/log/zk/keys", nil, &list); err != nil {
		return err
	}
	for _, k := range list.Keys {
		var vk v1.VerifyingKey
		if err := c.call(ctx, http.MethodGet, "/api/v1/log/zk/keys/"+url.PathEscape(k.Fingerprint), nil, &vk); err != nil {
			return err
		}
		sum := sha256.Sum256(vk.VerifyingKey)
		if hex.EncodeToString(sum[:]) != k.Fingerprint || vk.Fingerprint != k.Fingerprint {
			return fmt.Errorf("the ledger served a verifying key that does not match its fingerprint %s", k.Fingerprint)
		}
		dir := filepath.Join(*out, k.Fingerprint)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "metadata.json"), vk.Metadata, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "verifying.key"), vk.VerifyingKey, 0o644); err != nil {
			return err
		}
		label := "ceremony"
		if vk.UnsafeForProduction {
			label = "development keys, UNSAFE FOR PRODUCTION"
		}
		fmt.Printf("%s  %s (%s)\n", k.Fingerprint, vk.Circuit, label)
	}
	fmt.Printf("%d verifying keys in %s\n", len(list.Keys), *out)
	return nil
}

// parsePeriodBound reads an RFC 3339 time or a date (00:00 UTC).
func parsePeriodBound(s string) (int64, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Unix(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, errors.New("want an RFC 3339 time or YYYY-MM-DD")
	}
	return t.Unix(), nil
}

// fixed encodes a value in the metric's unit in its fixed-point encoding.
func fixed(m wearables.Metric, s string) (uint32, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%q is not a non-negative number", s)
	}
	x := math.Round(v * math.Pow10(m.Scale))
	if x > math.MaxUint32 || math.Abs(x-v*math.Pow10(m.Scale)) > 1e-6 {
		return 0, fmt.Errorf("%q does not fit the %s encoding (%d decimals)", s, m.Code, m.Scale)
	}
	return uint32(x), nil
}

func fixedList(m wearables.Metric, s string, n int) ([]uint32, error) {
	f := strings.Split(s, ":")
	if len(f) != n {
		return nil, fmt.Errorf("want %d values separated by colons", n)
	}
	out := make([]uint32, n)
	for i, v := range f {
		x, err := fixed(m, v)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}

// cutLast splits s at its last colon.
func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}
