package trillianlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/trillian"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var errTreeNotFound = errors.New("no Trillian log tree with that name")

func validTreeName(name string) error {
	if name == "" || len(name) > MaxTreeNameLength || strings.TrimSpace(name) != name {
		return fmt.Errorf("invalid tree name %q: want 1 to %d characters without surrounding spaces", name, MaxTreeNameLength)
	}
	return nil
}

// findTree returns the active log tree with display name name, creating and
// initialising it if there is none and create is set, and initialising it if
// an earlier start created it but stopped before initialising it.
//
// Creation is not atomic across processes: two processes that start on an
// empty database at the same moment could create two trees, which the next
// start refuses (naming both). Start one first, or give trees by ID.
func findTree(ctx context.Context, admin trillian.TrillianAdminClient, logc trillian.TrillianLogClient, name string, create bool, logger *slog.Logger) (*trillian.Tree, error) {
	resp, err := admin.ListTrees(ctx, &trillian.ListTreesRequest{})
	if err != nil {
		return nil, fmt.Errorf("couldn't list Trillian trees: %w", err)
	}
	var found []*trillian.Tree
	for _, t := range resp.GetTree() {
		if t.GetDisplayName() == name && !t.GetDeleted() &&
			(t.GetTreeType() == trillian.TreeType_LOG || t.GetTreeType() == trillian.TreeType_PREORDERED_LOG) {
			found = append(found, t)
		}
	}
	var tree *trillian.Tree
	switch len(found) {
	case 0:
		if !create {
			return nil, fmt.Errorf("couldn't find Trillian tree %q: %w (ask for it to be created)", name, errTreeNotFound)
		}
		tree, err = admin.CreateTree(ctx, &trillian.CreateTreeRequest{Tree: &trillian.Tree{
			TreeState:       trillian.TreeState_ACTIVE,
			TreeType:        trillian.TreeType_LOG,
			DisplayName:     name,
			Description:     "VitalProof ledger",
			MaxRootDuration: durationpb.New(0),
		}})
		if err != nil {
			return nil, fmt.Errorf("couldn't create Trillian tree %q: %w", name, err)
		}
		logger.InfoContext(ctx, "created Trillian log tree", "tree_id", tree.GetTreeId(), "name", name)
	case 1:
		tree = found[0]
	default:
		ids := make([]string, len(found))
		for i, t := range found {
			ids[i] = fmt.Sprint(t.GetTreeId())
		}
		return nil, fmt.Errorf("couldn't pick Trillian tree %q: %d trees have that name (IDs %s); delete the extra ones or give a tree ID",
			name, len(found), strings.Join(ids, ", "))
	}
	if err := checkTree(tree); err != nil {
		return nil, err
	}
	if err := initTree(ctx, logc, tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// getTree returns the log tree with the given ID, initialising it if needed.
func getTree(ctx context.Context, admin trillian.TrillianAdminClient, logc trillian.TrillianLogClient, id int64) (*trillian.Tree, error) {
	tree, err := admin.GetTree(ctx, &trillian.GetTreeRequest{TreeId: id})
	if err != nil {
		return nil, fmt.Errorf("couldn't get Trillian tree %d: %w", id, err)
	}
	if tree.GetDeleted() {
		return nil, fmt.Errorf("couldn't use Trillian tree %d: it is deleted", id)
	}
	if err := checkTree(tree); err != nil {
		return nil, err
	}
	if err := initTree(ctx, logc, tree); err != nil {
		return nil, err
	}
	return tree, nil
}

func checkTree(tree *trillian.Tree) error {
	if tree.GetTreeType() != trillian.TreeType_LOG {
		return fmt.Errorf("couldn't use Trillian tree %d: it is a %s tree, not a LOG", tree.GetTreeId(), tree.GetTreeType())
	}
	if tree.GetTreeState() != trillian.TreeState_ACTIVE {
		return fmt.Errorf("couldn't use Trillian tree %d: it is %s, not ACTIVE", tree.GetTreeId(), tree.GetTreeState())
	}
	return nil
}

// initTree initialises tree's log if it is not yet: InitLog is refused with
// AlreadyExists when the log has a root.
func initTree(ctx context.Context, logc trillian.TrillianLogClient, tree *trillian.Tree) error {
	_, err := logc.InitLog(ctx, &trillian.InitLogRequest{LogId: tree.GetTreeId()})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("couldn't initialise Trillian tree %d: %w", tree.GetTreeId(), err)
	}
	return nil
}
