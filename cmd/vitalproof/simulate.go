package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/vitalproof/vitalproof/api/gen/vitalproof/v1"
	"github.com/vitalproof/vitalproof/wearables"
)

// cmdSimulate is a simulated wearable: it produces readings, commits to
// them, signs each batch's entry with the device key and submits the
// batches to a gateway, each metric's batches in chain order. With
// --firmware its entries are format v2, carrying that firmware version.
func cmdSimulate(ctx context.Context, args []string) error {
	fs := newFlags("simulate")
	gateway := fs.String("gateway", "http://127.0.0.1:8090", "gateway REST base URL")
	apiKey := fs.String("api-key-file", "", "file holding a gateway API key (role submitter)")
	deviceKey := fs.String("device-key", "", "the device's private key file (from vitalproof keygen); its name is the device ID")
	hospital := fs.String("hospital", "", "the hospital the device is assigned to")
	firmware := fs.String("firmware", "", "the firmware version the device runs, written in its entries (format vitalproof/entry/v2); empty writes format v1 entries, without a version")
	startFlag := fs.String("start", "yesterday", "start of the first window: yesterday (00:00 UTC) or an RFC 3339 time")
	hours := fs.Int("hours", 24, "hours of readings")
	metrics := fs.String("metrics", "heart-rate,spo2,body-temperature,steps", "comma-separated metric codes")
	every := fs.Duration("reading-every", time.Minute, "time between readings")
	window := fs.Duration("batch-every", time.Hour, "batch window")
	receipts := fs.String("receipts", "", "directory to write receipt-<index>.tlog-proof files to")
	fhirSample := fs.String("fhir-sample", "", "also write, to this file, a FHIR Bundle of the next hour's heart-rate Observations without a device signature")
	skipDays := fs.String("skip-days", "", "comma-separated day numbers (0 = the first day) on which the device records nothing, as when a patient does not wear it; needs --hours a multiple of 24")
	wait := fs.Duration("wait", 2*time.Minute, "when batches are answered pending, submit them again (idempotently) until each has its receipt, for at most this long; 0 does not wait")
	if err := parse(fs, args, "api-key-file", "device-key", "hospital"); err != nil {
		return err
	}
	signer, err := signerFile(*deviceKey, "device key")
	if err != nil {
		return err
	}
	var start time.Time
	if *startFlag == "yesterday" {
		start = time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	} else if start, err = time.Parse(time.RFC3339, *startFlag); err != nil {
		return usageError{fmt.Errorf("--start: %w", err)}
	}
	ms := strings.Split(*metrics, ",")
	for _, m := range ms {
		if _, ok := wearables.MetricByCode(m); !ok {
			return usageError{fmt.Errorf("--metrics: unknown metric %q", m)}
		}
	}
	sim, err := wearables.NewSimulator(signer.Name(), *hospital, signer, nil)
	if err != nil {
		return err
	}
	if err := sim.SetFirmware(*firmware); err != nil {
		return usageError{fmt.Errorf("--firmware: %w", err)}
	}
	skip, err := parseDays(*skipDays, *hours)
	if err != nil {
		return usageError{fmt.Errorf("--skip-days: %w", err)}
	}
	var batches []*wearables.Batch
	if len(skip) == 0 {
		batches, err = sim.Span(start, time.Duration(*hours)*time.Hour, ms, *window, *every)
		if err != nil {
			return err
		}
	} else {
		// Day by day, so that the chain goes on across the days left out.
		for d := 0; d < *hours/24; d++ {
			if skip[d] {
				continue
			}
			day, err := sim.Span(start.Add(time.Duration(d)*24*time.Hour), 24*time.Hour, ms, *window, *every)
			if err != nil {
				return err
			}
			batches = append(batches, day...)
		}
	}
	c, err := newClient(*gateway, *apiKey)
	if err != nil {
		return err
	}
	// One worker per metric keeps each chain in order; metrics go in parallel.
	byMetric := map[string][]*wearables.Batch{}
	readings := 0
	for _, b := range batches {
		byMetric[b.Entry.Header.Metric] = append(byMetric[b.Entry.Header.Metric], b)
		readings += len(b.Readings)
	}
	fw := ""
	if *firmware != "" {
		fw = fmt.Sprintf(", firmware %q", *firmware)
	}
	fmt.Fprintf(os.Stderr, "device %s: %d batches (%d readings) from %s, %d metrics%s\n",
		signer.Name(), len(batches), readings, start.Format(time.RFC3339), len(ms), fw)
	t0 := time.Now()
	var done atomic.Int64
	var mu sync.Mutex
	var pending []*v1.SubmitBatchRequest
	var wg sync.WaitGroup
	errc := make(chan error, len(byMetric))
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		last := int64(-1)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if n := done.Load(); n != last {
					last = n
					fmt.Fprintf(os.Stderr, "  submitted %d/%d batches (%d%%)\n", n, len(batches), 100*n/int64(len(batches)))
				}
			}
		}
	}()
	for _, list := range byMetric {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range list {
				req := &v1.SubmitBatchRequest{Entry: string(b.Entry.Bytes), Salt: b.Salt[:]}
				for _, r := range b.Readings {
					req.Readings = append(req.Readings, &v1.Reading{Offset: r.Offset, Value: r.Value})
				}
				var res v1.BatchResult
				if err := c.call(ctx, http.MethodPost, "/api/v1/gateway/batches", req, &res); err != nil {
					errc <- fmt.Errorf("batch %s seq %d: %w", b.Entry.Header.Metric, b.Entry.Header.Seq, err)
					return
				}
				if res.Pending {
					mu.Lock()
					pending = append(pending, req)
					mu.Unlock()
				} else if *receipts != "" {
					if err := writeReceipt(*receipts, res.Index, res.Receipt); err != nil {
						errc <- err
						return
					}
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	close(errc)
	var errs []error
	for err := range errc {
		errs = append(errs, err)
	}
	took := time.Since(t0)
	fmt.Printf("submitted %d batches, %d readings in %s (%.0f batches/s); %d pending\n",
		done.Load(), readings, took.Round(time.Millisecond), float64(done.Load())/took.Seconds(), len(pending))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(pending) > 0 && *wait > 0 {
		if err := awaitReceipts(ctx, c, pending, *wait, *receipts); err != nil {
			return err
		}
	}
	if *fhirSample != "" {
		next := start.Add(time.Duration(*hours) * time.Hour)
		if next.After(time.Now().Add(-time.Hour)) {
			next = time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
		}
		grp, err := sim.Observations("heart-rate", next, time.Hour, 5*time.Minute)
		if err != nil {
			return err
		}
		grp.PatientRef = "Patient/demo-patient-1"
		b, err := wearables.ExportObservations(grp)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*fhirSample, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// awaitReceipts submits pending batches again, idempotently, until each is
// answered with its receipt (written to dir if set) or wait has passed.
// A batch stays pending while its entry awaits integration or a checkpoint
// cosigned by a quorum of witnesses.
func awaitReceipts(ctx context.Context, c *restClient, pending []*v1.SubmitBatchRequest, wait time.Duration, dir string) error {
	fmt.Fprintf(os.Stderr, "waiting up to %s for the receipts of %d pending batches (integration and a cosigned checkpoint)\n", wait, len(pending))
	deadline := time.Now().Add(wait)
	for {
		var still []*v1.SubmitBatchRequest
		for _, req := range pending {
			var res v1.BatchResult
			if err := c.call(ctx, http.MethodPost, "/api/v1/gateway/batches", req, &res); err != nil {
				return fmt.Errorf("couldn't submit a pending batch again: %w", err)
			}
			if res.Pending {
				still = append(still, req)
				continue
			}
			if dir != "" {
				if err := writeReceipt(dir, res.Index, res.Receipt); err != nil {
					return err
				}
			}
		}
		if len(still) < len(pending) {
			fmt.Fprintf(os.Stderr, "  %d receipts received, %d pending\n", len(pending)-len(still), len(still))
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d batches are still pending after %s: they are stored and accepted, and get their receipts once a checkpoint cosigned by a quorum of the policy's witnesses covers them (are the witnesses up?)", len(pending), wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// parseDays reads a --skip-days list of day numbers below hours/24.
func parseDays(list string, hours int) (map[int]bool, error) {
	if list == "" {
		return nil, nil
	}
	if hours%24 != 0 {
		return nil, errors.New("--hours must be a multiple of 24")
	}
	days := map[int]bool{}
	for _, f := range strings.Split(list, ",") {
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 || d >= hours/24 {
			return nil, fmt.Errorf("%q is not a day number from 0 to %d", f, hours/24-1)
		}
		days[d] = true
	}
	return days, nil
}
