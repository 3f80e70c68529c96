// Command zkbench measures a statement circuit: constraints (by category
// with -profile), compile, setup, proving and verifying time, proof size
// and the process's peak memory. It proves a synthetic statement that fills
// the shape: readings a minute apart, glucose-like values.
//
//	go run ./zk/internal/zkbench -shape 24x60 -kinds range
//	go run ./zk/internal/zkbench -shape 720x60 -kinds range -compile-only
//	go run ./zk/internal/zkbench -shape 720x60 -kinds range -cache DIR -prove-runs 3
//
// Run one measurement per process: peak memory is the process's (VmHWM),
// reset after loading (or compiling and setting up) so that the proving
// peak is the peak while proving with the loaded keys resident.
// Setup here is the development setup, UNSAFE FOR PRODUCTION.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	pprofrt "runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/logger"
	"github.com/consensys/gnark/profile"
	pprof "github.com/google/pprof/profile"

	"github.com/vitalproof/vitalproof/zk/circuit"
	"github.com/vitalproof/vitalproof/zk/commitment"
	"github.com/vitalproof/vitalproof/zk/keys"
	"github.com/vitalproof/vitalproof/zk/prove"
	"github.com/vitalproof/vitalproof/zk/statement"
)

func main() {
	shapeFlag := flag.String("shape", "24x60", "circuit shape: <entries>x<readings per entry>")
	kindsFlag := flag.String("kinds", "range", "statement parts joined by +: range, tir, adherence, mean, max")
	compileOnly := flag.Bool("compile-only", false, "compile and count constraints only")
	withProfile := flag.Bool("profile", false, "break constraints down by category (slow)")
	verifyRuns := flag.Int("verify-runs", 50, "verifications to time")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of proving to this file")
	cacheDir := flag.String("cache", "", "key cache directory: compile and set up once, then load (as a prover does)")
	proveRuns := flag.Int("prove-runs", 1, "proofs to time, one after another")
	flag.Parse()
	logger.Disable()

	shape, err := circuit.ParseShape(*shapeFlag)
	if err != nil {
		log.Fatalf("-shape: %v", err)
	}
	kinds, err := statement.ParseKind(*kindsFlag)
	if err != nil {
		log.Fatalf("-kinds: %v", err)
	}
	id := circuit.ID(shape, kinds)
	fmt.Printf("circuit %s (%d readings), GOMAXPROCS %d\n", id, shape.Capacity(), runtime.GOMAXPROCS(0))

	if *withProfile {
		categories(shape, kinds)
	}
	ctx := context.Background()
	cache := &keys.Cache{Dir: *cacheDir}
	start := time.Now()
	var cs constraint.ConstraintSystem
	if *cacheDir != "" && !*compileOnly {
		cs, err = cache.Compiled(ctx, id, func() (constraint.ConstraintSystem, error) { return circuit.Compile(shape, kinds) })
	} else {
		cs, err = circuit.Compile(shape, kinds)
	}
	if err != nil {
		log.Fatal(err)
	}
	n := cs.GetNbConstraints()
	fmt.Printf("constraints %d (%.1f per reading), wires %d, compile or load %v\n", n, float64(n)/float64(shape.Capacity()),
		cs.GetNbInternalVariables()+cs.GetNbSecretVariables()+cs.GetNbPublicVariables(), time.Since(start).Round(time.Millisecond))
	if *compileOnly {
		fmt.Printf("peak memory %s\n", peak())
		return
	}

	start = time.Now()
	var k *keys.Keys
	if *cacheDir != "" {
		k, err = cache.Get(ctx, cs, id, keys.DevSetup)
	} else {
		k, err = keys.DevSetup(ctx, cs, id)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("setup or load %v (development setup, %s)\n", time.Since(start).Round(time.Millisecond), keys.UnsafeWarning)
	pr, err := prove.NewProver(shape, kinds, cs, k)
	if err != nil {
		log.Fatal(err)
	}

	s, ops := synthetic(shape, kinds)
	fmt.Printf("peak memory before proving %s\n", peak())
	runtime.GC()
	resetPeak()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprofrt.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
	}
	var p *prove.Proof
	for i := range *proveRuns {
		start = time.Now()
		cpu0 := cpuTime()
		p, err = pr.Prove(ctx, s, ops)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("prove %d: %v wall, %v CPU (assignment included), peak memory since load %s\n", i+1,
			time.Since(start).Round(time.Millisecond), (cpuTime() - cpu0).Round(time.Millisecond), peak())
	}
	if *cpuProfile != "" {
		pprofrt.StopCPUProfile()
	}
	b, err := p.MarshalBinary()
	if err != nil {
		log.Fatal(err)
	}
	var times []time.Duration
	for range *verifyRuns {
		start = time.Now()
		p2, err := prove.ParseProof(b)
		if err != nil {
			log.Fatal(err)
		}
		if err := prove.Verify(k, s, p2); err != nil {
			log.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	fmt.Printf("proof %d bytes (Groth16 part %d), verify median %v (parse, public inputs, pairing)\n",
		len(b), len(b)-strings.Index(string(b), "\n\n")-2, times[len(times)/2].Round(10*time.Microsecond))
	fmt.Printf("peak memory since load %s\n", peak())
}

// synthetic returns a true statement that fills shape: each entry an hour
// (or PerEntry minutes) of readings a minute apart.
func synthetic(shape circuit.Shape, kinds statement.Kind) (*statement.Statement, []statement.Opening) {
	const start = 1735689600 // 2025-01-01T00:00:00Z
	window := int64(shape.PerEntry) * 60
	rng := rand.New(rand.NewPCG(1, 2))
	s := &statement.Statement{Kinds: kinds, DeviceID: "bench-device", Metric: 6, PeriodStart: start}
	s.PeriodEnd = start + (int64(shape.Entries)*window/statement.DayLength+1)*statement.DayLength
	p := &s.Params
	if kinds&statement.Range != 0 {
		p.RangeLo, p.RangeHi = 40, 400
	}
	if kinds&statement.TimeInRange != 0 {
		p.TIRLo, p.TIRHi, p.TIRPercent = 70, 180, 70
	}
	if kinds&statement.Adherence != 0 {
		p.MinDays = 1
	}
	if kinds&statement.MeanBelow != 0 {
		p.MeanBound = 154 // GMI 7%
	}
	if kinds&statement.MaxBelow != 0 {
		p.MaxBound = 401
	}
	var ops []statement.Opening
	for i := range shape.Entries {
		salt, err := commitment.NewSalt()
		if err != nil {
			log.Fatal(err)
		}
		o := commitment.Opening{Salt: salt, DeviceID: s.DeviceID, Metric: s.Metric,
			WindowStart: start + int64(i)*window, WindowEnd: start + int64(i+1)*window}
		for j := range shape.PerEntry {
			o.Readings = append(o.Readings, commitment.Reading{Offset: uint32(60 * j), Value: 80 + uint32(rng.IntN(90))})
		}
		c, err := commitment.Commit(&o)
		if err != nil {
			log.Fatal(err)
		}
		s.Entries = append(s.Entries, statement.Entry{Commitment: c, WindowStart: o.WindowStart, WindowEnd: o.WindowEnd, Count: len(o.Readings)})
		ops = append(ops, statement.Opening{Salt: salt, Readings: o.Readings})
	}
	return s, ops
}

// categories compiles the circuit under gnark's profiler and prints its
// constraints per reading by category: Poseidon2 hashing, range checks
// (limb decomposition and the log-derivative lookup, which runs in a
// deferred callback), and the rest by function.
func categories(shape circuit.Shape, kinds statement.Kind) {
	dir, err := os.MkdirTemp("", "zkbench")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "gnark.pprof")
	c, err := circuit.New(shape, kinds)
	if err != nil {
		log.Fatal(err)
	}
	p := profile.Start(profile.WithPath(path), profile.WithoutOperations())
	if _, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c); err != nil {
		log.Fatal(err)
	}
	p.Stop()
	f, err := os.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()
	prof, err := pprof.Parse(bufio.NewReader(f))
	if err != nil {
		log.Fatal(err)
	}
	counts := map[string]int64{}
	var total int64
	for _, smp := range prof.Sample {
		cat := ""
		for _, loc := range smp.Location {
			for _, line := range loc.Line {
				name := line.Function.Name
				switch {
				case strings.Contains(name, "poseidon2"):
					cat = "hashing (Poseidon2)"
				case strings.Contains(name, "rangecheck") || strings.Contains(name, "logderivarg") ||
					strings.Contains(name, "multicommit") || strings.Contains(name, "(*ranger)"):
					cat = "range checks"
				case cat == "" && strings.Contains(name, "zk/circuit."):
					cat = "other: " + name[strings.LastIndex(name, ".")+1:]
				}
			}
			if strings.HasPrefix(cat, "hashing") || cat == "range checks" {
				break
			}
		}
		if cat == "" {
			cat = "other"
		}
		counts[cat] += smp.Value[0]
		total += smp.Value[0]
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return counts[names[i]] > counts[names[j]] })
	fmt.Printf("constraints by category (%d profiled):\n", total)
	for _, k := range names {
		fmt.Printf("  %-28s %9d  %5.1f per reading\n", k, counts[k], float64(counts[k])/float64(shape.Capacity()))
	}
}

// cpuTime returns the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeak resets the process's peak resident memory to its current
// resident memory (Linux), so that peak measures what follows.
func resetPeak() {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		log.Printf("couldn't reset peak memory: %v", err)
	}
}

// peak returns the process's peak resident memory.
func peak() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
