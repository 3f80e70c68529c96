package monitor_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/vitalproof/vitalproof/provenance/monitor"
	"github.com/vitalproof/vitalproof/provenance/monitor/monitortest"
	"github.com/vitalproof/vitalproof/wearables"
)

const origin = "monitor.test/ledger"

// day0 is when the test devices are registered; their entries cover the
// hours after it.
var day0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// leafMaker makes the leaves a ledger appends: registration records signed
// by the registrar, and entries signed by their devices.
type leafMaker struct {
	t         testing.TB
	registrar note.Signer
	devices   map[string]deviceKey
	seq       map[string]uint64
	prev      map[string][32]byte
	// maker, evSeq and evPrev are each device's manufacturer and the head
	// of its lifecycle events' chain.
	maker  map[string]string
	evSeq  map[string]uint64
	evPrev map[string][32]byte
}

func newLeafMaker(t testing.TB) *leafMaker {
	t.Helper()
	skey, _, err := note.GenerateKey(rand.Reader, "registrar.monitor.test")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return &leafMaker{t: t, registrar: reg, devices: map[string]deviceKey{}, seq: map[string]uint64{}, prev: map[string][32]byte{},
		maker: map[string]string{}, evSeq: map[string]uint64{}, evPrev: map[string][32]byte{}}
}

type deviceKey struct {
	signer note.Signer
	pub    ed25519.PublicKey
}

func (mk *leafMaker) key(device string) deviceKey {
	if k, ok := mk.devices[device]; ok {
		return k
	}
	s, _, _, pub, err := wearables.GenerateDeviceKey(device)
	if err != nil {
		mk.t.Fatal(err)
	}
	mk.devices[device] = deviceKey{s, pub}
	return mk.devices[device]
}

// register returns the registration record of device for manufacturer.
func (mk *leafMaker) register(device, manufacturer string) []byte {
	mk.t.Helper()
	r, err := wearables.NewRegistration(device, manufacturer, "(01)09506000134352(21)"+strings.ToUpper(device), "Band 2", "1.4.2", mk.key(device).pub, "st-mary", day0)
	if err != nil {
		mk.t.Fatal(err)
	}
	b, err := r.Sign(mk.registrar)
	if err != nil {
		mk.t.Fatal(err)
	}
	mk.maker[device], mk.evSeq[device], mk.evPrev[device] = manufacturer, 0, wearables.LeafHash(b)
	return b
}

// event returns the next lifecycle event of device, signed by its
// manufacturer, or by its hospital for commissioned and decommissioned.
func (mk *leafMaker) event(device string, kind wearables.EventKind, at time.Time, d wearables.EventDetails) []byte {
	mk.t.Helper()
	actor := mk.maker[device]
	if kind == wearables.EventCommissioned || kind == wearables.EventDecommissioned {
		actor = "st-mary"
	}
	mk.evSeq[device]++
	e, err := wearables.NewEvent(device, kind, mk.evSeq[device], mk.evPrev[device], at, actor, d)
	if err != nil {
		mk.t.Fatal(err)
	}
	b, err := e.Sign(mk.key(actor).signer)
	if err != nil {
		mk.t.Fatal(err)
	}
	mk.evPrev[device] = wearables.LeafHash(b)
	return b
}

// entry returns the next entry of device's heart-rate chain, a window of
// one hour from start.
func (mk *leafMaker) entry(device string, start time.Time) []byte {
	mk.t.Helper()
	mk.seq[device]++
	h := &wearables.EntryHeader{
		DeviceID: device, Metric: "heart-rate",
		WindowStart: start.Unix(), WindowEnd: start.Add(time.Hour).Unix(), Count: 60,
		Seq: mk.seq[device], Prev: mk.prev[device], Hospital: "st-mary", Attestation: wearables.AttestDevice,
	}
	if _, err := rand.Read(h.Commitment[:]); err != nil {
		mk.t.Fatal(err)
	}
	b, err := wearables.SignEntry(h, mk.key(device).signer)
	if err != nil {
		mk.t.Fatal(err)
	}
	mk.prev[device] = wearables.LeafHash(b)
	return b
}

// entries returns n consecutive hourly entries of device from day0.
func (mk *leafMaker) entries(device string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = mk.entry(device, day0.Add(time.Duration(mk.seq[device])*time.Hour))
	}
	return out
}

// testEvent returns a leaf of a private lifecycle format that
// testClassify reads: device, event kind and effective time.
func testEvent(device, kind string, at time.Time) []byte {
	return fmt.Appendf(nil, "test/event\ndevice %s\nevent %s\ntime %d\n", device, kind, at.Unix())
}

// testClassify is monitor.Classify plus a private lifecycle format.
func testClassify(leaf []byte) monitor.Leaf {
	var device, kind string
	var at int64
	if _, err := fmt.Sscanf(string(leaf), "test/event\ndevice %s\nevent %s\ntime %d\n", &device, &kind, &at); err == nil {
		return monitor.Leaf{Kind: monitor.LeafEvent, Format: "test/event", Device: device, Event: kind, Start: time.Unix(at, 0).UTC(), Summary: "test event"}
	}
	return monitor.Classify(leaf)
}

// recorder keeps the reports of a monitor.
type recorder struct {
	mu      sync.Mutex
	reports []monitor.Report
}

func (r *recorder) add(rep monitor.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, rep)
}

// of returns the reports of kind k.
func (r *recorder) of(k monitor.Kind) []monitor.Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []monitor.Report
	for _, rep := range r.reports {
		if rep.Kind == k {
			out = append(out, rep)
		}
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = nil
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, rep := range r.reports {
		fmt.Fprintf(&b, "%s: %s\n", rep.Kind, rep.Message)
	}
	return b.String()
}

// newLedger returns a ledger whose policy wants 2 of the witnesses H1, H2
// and H3.
func newLedger(t testing.TB) *monitortest.Ledger {
	return monitortest.New(t, origin, 2, "H1", "H2", "H3")
}

// newMonitor returns a monitor of l with its state in dir, watching
// acme's devices, and the recorder of its reports.
func newMonitor(t testing.TB, l monitor.Ledger, policy []byte, dir string, opts ...func(*monitor.Config)) (*monitor.Monitor, *recorder) {
	t.Helper()
	rec := &recorder{}
	cfg := monitor.Config{
		Ledger: l, Policy: policy, StateDir: dir, Watch: []string{"acme"},
		Classify: testClassify, OnReport: rec.add, PageSize: 100,
	}
	for _, o := range opts {
		o(&cfg)
	}
	m, err := monitor.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m, rec
}
