package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vitalproof/vitalproof/log"
)

// catchUp downloads and verifies the leaves of the last checkpoint kept
// that are not verified yet.
func (m *Monitor) catchUp(ctx context.Context) (err error) {
	target := m.st.Checkpoint.root()
	begin := m.st.Leaves
	if begin >= target.Size {
		return nil
	}
	defer func() {
		if m.st.Leaves == m.savedAt {
			return
		}
		if serr := m.save(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := m.cfg.Now()
	lastSave, lastProgress := start, start
	var c counts
	futures, done := m.fetch(ctx, begin, target.Size)
	for fut := range futures {
		var p *page
		select {
		case p = <-fut:
		case <-ctx.Done():
			return fmt.Errorf("couldn't catch up: %w", ctx.Err())
		}
		done()
		if p.err != nil {
			return fmt.Errorf("couldn't catch up: %w", p.err)
		}
		if err := m.verifyPage(p, target); err != nil {
			return err
		}
		for i, l := range p.kinds {
			m.apply(p.start+uint64(i), l, &c)
		}
		m.st.Leaves = p.end
		now := m.cfg.Now()
		if now.Sub(lastSave) >= m.cfg.SaveInterval {
			if err := m.save(); err != nil {
				return err
			}
			lastSave = now
		}
		if now.Sub(lastProgress) >= m.cfg.ProgressInterval && p.end < target.Size {
			lastProgress = now
			m.report(Report{Kind: KindProgress, TreeSize: target.Size,
				Message: fmt.Sprintf("caught up %d of %d entries (%.0f entries/s)", p.end, target.Size, rate(p.end-begin, now.Sub(start)))})
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("couldn't catch up: %w", err)
	}
	if err := m.save(); err != nil {
		return err
	}
	n := target.Size - begin
	m.report(Report{Kind: KindCaughtUp, TreeSize: target.Size,
		Message: fmt.Sprintf("caught up %d of %d entries (%.0f entries/s): %s (%s) verified against the checkpoint's tree",
			target.Size, target.Size, rate(n, m.cfg.Now().Sub(start)), plural(int(n), "new leaf", "new leaves"), c)})
	return nil
}

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// verifyPage extends the compact range with the page's leaves and checks
// the tree they make against target: its root, when the page ends the
// tree, or the page's consistency proof. If they do not, it restores the
// range and returns the evidence.
func (m *Monitor) verifyPage(p *page, target log.Root) error {
	saved := append([][]byte(nil), m.rng.Hashes()...)
	for i := range p.hashes {
		if err := m.rng.Append(p.hashes[i][:], nil); err != nil {
			return fmt.Errorf("couldn't hash leaves: %w", err)
		}
	}
	root := rootOf(m.rng)
	var bad bool
	if p.end == target.Size {
		bad = root != target
	} else {
		bad = log.VerifyConsistency(root, target, p.proof) != nil
	}
	if !bad {
		return nil
	}
	rng, err := rangeFactory.NewRange(0, p.start, saved)
	if err != nil {
		return fmt.Errorf("couldn't restore the compact range: %w", err)
	}
	m.rng = rng
	served, err := readHistory(m.cfg.StateDir, target.Size)
	if err != nil {
		return err
	}
	files := []evidenceFile{
		{servedFile, served},
		{leavesFile, formatLeaves(p.start, p.leaves)},
		{rangeFile, formatRange(p.start, saved)},
	}
	how := "which is not the root of served.checkpoint."
	if p.end < target.Size {
		files = append(files, evidenceFile{proofFile, formatProof(p.end, target.Size, p.proof)})
		how = fmt.Sprintf("and consistency.proof, which the ledger served, does not prove that this\ntree is a prefix of the tree of served.checkpoint (size %d).", target.Size)
	}
	return m.evidence(KindInconsistent, ErrInconsistent, target.Size,
		fmt.Sprintf("the ledger's leaves %d to %d do not make its checkpoint of tree size %d", p.start, p.end-1, target.Size),
		fmt.Sprintf("leaves.txt holds leaves %d to %d as the ledger served them (base64, one per\n"+
			"line), and compact-range.txt the compact range of the leaves before them,\n"+
			"which the monitor verified against earlier checkpoints. Hashed per RFC 6962,\n"+
			"they make a tree of size %d with root %s,\n%s\n"+
			"The ledger serves other leaves than those its signed checkpoint commits to.\n",
			p.start, p.end-1, p.end, b64(root.Hash[:]), how),
		files...)
}

// page is a page of leaves [start, end), downloaded, hashed and
// classified, with the consistency proof from tree size end to the
// checkpoint's (nil when end is its size).
type page struct {
	start, end uint64
	leaves     [][]byte
	hashes     []log.Hash
	kinds      []Leaf
	proof      []log.Hash
	err        error
}

// fetch downloads the pages of leaves [begin, size), and sends their
// futures in order. At most cfg.Parallel pages are downloading or waiting
// for the caller, who calls done when it has received one. It stops when
// ctx is done.
func (m *Monitor) fetch(ctx context.Context, begin, size uint64) (futures <-chan chan *page, done func()) {
	out := make(chan chan *page, m.cfg.Parallel)
	slots := make(chan struct{}, m.cfg.Parallel)
	go func() {
		defer close(out)
		for a := begin; a < size; a += m.cfg.PageSize {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			b := min(a+m.cfg.PageSize, size)
			fut := make(chan *page, 1)
			go func() { fut <- m.fetchPage(ctx, a, b, size) }()
			out <- fut // never blocks: out has room for every slot
		}
	}()
	return out, func() { <-slots }
}

// fetchPage downloads, hashes and classifies leaves [a, b) and fetches
// the consistency proof from tree size b to size.
func (m *Monitor) fetchPage(ctx context.Context, a, b, size uint64) *page {
	p := &page{start: a, end: b, leaves: make([][]byte, 0, b-a)}
	for n := a; n < b; {
		got, err := m.cfg.Ledger.Leaves(ctx, n, b-n)
		if err != nil {
			p.err = fmt.Errorf("couldn't fetch leaves from index %d: %w", n, err)
			return p
		}
		if len(got) == 0 {
			p.err = fmt.Errorf("the ledger served no leaf at index %d, below its checkpoint's tree size %d", n, size)
			return p
		}
		got = got[:min(uint64(len(got)), b-n)]
		p.leaves = append(p.leaves, got...)
		n += uint64(len(got))
	}
	if b < size {
		var err error
		if p.proof, err = m.cfg.Ledger.ConsistencyProof(ctx, b, size); err != nil {
			p.err = fmt.Errorf("couldn't fetch the consistency proof from tree size %d to %d: %w", b, size, err)
			return p
		}
	}
	p.hashes = make([]log.Hash, len(p.leaves))
	p.kinds = make([]Leaf, len(p.leaves))
	for i, v := range p.leaves {
		p.hashes[i] = log.LeafHash(v)
		p.kinds[i] = m.cfg.Classify(v)
	}
	return p
}
