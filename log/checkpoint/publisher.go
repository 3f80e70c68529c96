package checkpoint

import (
	"context"
	"fmt"
	"sync"

	"github.com/vitalproof/vitalproof/log"
)

// A Publisher signs checkpoints of a log's latest tree on demand.
//
// It keeps the last checkpoint it signed and re-signs only when the tree
// grew, after checking a consistency proof from the last signed tree to the
// new one: it never signs two trees of which one does not extend the other
// (within the life of the Publisher; across restarts that is what witnesses
// are for). It is safe for concurrent use.
type Publisher struct {
	log    log.Log
	signer *Signer

	mu     sync.Mutex // held while checking and signing a new tree
	root   log.Root
	signed []byte
}

// NewPublisher returns a Publisher of l's checkpoints signed by s.
func NewPublisher(l log.Log, s *Signer) *Publisher {
	return &Publisher{log: l, signer: s}
}

// Signer returns the Publisher's signer.
func (p *Publisher) Signer() *Signer { return p.signer }

// Latest returns a signed checkpoint of the log's latest tree and that tree.
// The checkpoint is cached: it is re-signed only when the tree grew.
func (p *Publisher) Latest(ctx context.Context) ([]byte, log.Root, error) {
	root, err := p.log.Root(ctx)
	if err != nil {
		return nil, log.Root{}, fmt.Errorf("couldn't read the log's root: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.signed != nil {
		switch {
		case root.Size < p.root.Size:
			// A concurrent call already signed a larger tree.
			return p.signed, p.root, nil
		case root.Size == p.root.Size:
			if root.Hash != p.root.Hash {
				return nil, log.Root{}, fmt.Errorf("log returned two roots for tree size %d: %x and %x", root.Size, p.root.Hash, root.Hash)
			}
			return p.signed, p.root, nil
		case p.root.Size > 0:
			proof, err := p.log.ConsistencyProof(ctx, p.root.Size, root.Size)
			if err != nil {
				return nil, log.Root{}, fmt.Errorf("couldn't prove tree %d extends signed tree %d: %w", root.Size, p.root.Size, err)
			}
			if err := log.VerifyConsistency(p.root, root, proof); err != nil {
				return nil, log.Root{}, fmt.Errorf("refusing to sign tree %d: %w", root.Size, err)
			}
		}
	}
	signed, err := p.signer.Sign(root)
	if err != nil {
		return nil, log.Root{}, err
	}
	p.root, p.signed = root, signed
	return signed, root, nil
}
