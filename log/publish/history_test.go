package publish

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/log"
)

func TestStorePut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := publisherDB(t)
	if _, err := db.ExecContext(ctx, Schema); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, Schema); err != nil {
		t.Fatalf("Schema is not idempotent: %v", err)
	}
	st := &store{db: db}
	f := newNoteFixture(t, "a.example/w", "b.example/w")
	v := f.signer.Verifier()
	root := log.Root{Size: 10, Hash: log.LeafHash([]byte("root"))}
	witnessed := func(n []byte) bool { return bytes.Count(n, []byte("\n— ")) >= 3 }
	put := func(c Checkpoint) (Checkpoint, error) {
		return st.put(ctx, c, v.Name(), v.KeyHash(), witnessed)
	}

	a, b := f.cosig(t, 0), f.cosig(t, 1)
	first, err := put(Checkpoint{Size: 10, Root: root.Hash, Note: f.merge(t, f.signed, a)})
	if err != nil {
		t.Fatal(err)
	}
	if first.Witnessed || first.PublishedAt.IsZero() {
		t.Errorf("stored %+v", first)
	}
	// The same checkpoint with another cosignature: merged, witnessed now,
	// first publication time kept.
	time.Sleep(2 * time.Millisecond)
	merged, err := put(Checkpoint{Size: 10, Root: root.Hash, Note: f.merge(t, f.signed, b)})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.merge(t, f.signed, a, b); !bytes.Equal(merged.Note, want) || !merged.Witnessed || !merged.PublishedAt.Equal(first.PublishedAt) {
		t.Fatalf("merged row %+v\n%s\nwant\n%s", merged, merged.Note, want)
	}
	got, err := st.at(ctx, 10)
	if err != nil || !bytes.Equal(got.Note, merged.Note) || !got.Witnessed || got.Tree() != root {
		t.Fatalf("at(10) = %+v, %v", got, err)
	}
	// Putting it again changes nothing.
	if again, err := put(Checkpoint{Size: 10, Root: root.Hash, Note: f.signed}); err != nil || !bytes.Equal(again.Note, merged.Note) {
		t.Fatalf("put again = %v", err)
	}
	// Another root for the size is a fork; a smaller new size means another
	// publisher.
	other := root
	other.Hash[0] ^= 1
	if _, err := put(Checkpoint{Size: 10, Root: other.Hash, Note: f.signed}); !errors.Is(err, errStoredFork) {
		t.Errorf("put of another root = %v, want errStoredFork", err)
	}
	if _, err := put(Checkpoint{Size: 9, Root: other.Hash, Note: f.signed}); !errors.Is(err, errNewerStored) {
		t.Errorf("put of a smaller tree = %v, want errNewerStored", err)
	}
	if _, err := st.at(ctx, 9); !errors.Is(err, ErrNotFound) {
		t.Errorf("at(9) = %v, want ErrNotFound", err)
	}
}
