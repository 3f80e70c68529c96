package trillianlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vitalproof/vitalproof/internal/testdb"
	"github.com/vitalproof/vitalproof/log/logtest"
)

// trillianBinaries returns the directory holding trillian_log_server and
// trillian_log_signer built from the module's pinned Trillian. They are
// cached across test runs under the user cache directory, keyed by the Go
// version and the module's go.mod and go.sum, because linking them takes a
// while.
func trillianBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() { binDir, buildErr = buildTrillian(t) })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func buildTrillian(t *testing.T) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	h := sha256.New()
	io.WriteString(h, runtime.Version())
	for _, f := range []string{gomod, strings.TrimSuffix(gomod, ".mod") + ".sum"} {
		b, err := os.ReadFile(f)
		if err != nil {
			return "", err
		}
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "vitalproof-test", fmt.Sprintf("trillian-%x", h.Sum(nil)[:8]))
	if _, err := os.Stat(filepath.Join(dir, "trillian_log_signer")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", tmp+string(filepath.Separator),
		"github.com/google/trillian/cmd/trillian_log_server",
		"github.com/google/trillian/cmd/trillian_log_signer")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build of the Trillian binaries: %v\n%s", err, buf.String())
	}
	t.Logf("built trillian_log_server and trillian_log_signer in %v", time.Since(start).Round(time.Millisecond))
	if err := os.Rename(tmp, dir); err != nil && !errors.Is(err, fs.ErrExist) {
		if _, serr := os.Stat(filepath.Join(dir, "trillian_log_signer")); serr != nil {
			return "", err
		}
	}
	return dir, nil
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startProcess starts a Trillian binary and kills it (by its PID) when the
// test ends, showing its output if the test failed.
func startProcess(t *testing.T, bin string, args ...string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(bin)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("couldn't start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("%s output (tail):\n%s", filepath.Base(bin), b)
		}
	})
}

// startTrillian starts trillian_log_server and trillian_log_signer on a new
// database and returns the log server's address.
func startTrillian(t *testing.T) string {
	t.Helper()
	bin := trillianBinaries(t)
	dsn := testdb.New(t, Schema)
	logAddr := freeAddr(t)
	startProcess(t, filepath.Join(bin, "trillian_log_server"),
		"--mysql_uri="+dsn,
		"--storage_system=mysql",
		"--quota_system=noop",
		"--rpc_endpoint="+logAddr,
		"--http_endpoint=",
		"--tree_gc=false")
	startProcess(t, filepath.Join(bin, "trillian_log_signer"),
		"--mysql_uri="+dsn,
		"--storage_system=mysql",
		"--quota_system=noop",
		"--rpc_endpoint="+freeAddr(t),
		"--http_endpoint=",
		"--force_master",
		"--sequencer_interval=50ms",
		"--batch_size=1000",
		"--num_sequencers=1")
	return logAddr
}

// connect retries NewRemote while the server starts.
func connect(t *testing.T, opts RemoteOptions) *Log {
	t.Helper()
	opts.Logger = testLogger(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		l, err := NewRemote(ctx, opts)
		cancel()
		if err == nil {
			t.Cleanup(func() { l.Close() })
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("NewRemote: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestRemote(t *testing.T) {
	addr := startTrillian(t)

	// No tree yet, and not asked to create one.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for {
		_, err := NewRemote(ctx, RemoteOptions{LogAddr: addr, Logger: testLogger(t)})
		if errors.Is(err, errTreeNotFound) {
			break
		}
		if err == nil {
			t.Fatal("NewRemote without CreateTree succeeded on an empty database")
		}
		if ctx.Err() != nil {
			t.Fatalf("NewRemote: %v", err)
		}
		time.Sleep(100 * time.Millisecond) // the server is starting
	}

	l := connect(t, RemoteOptions{LogAddr: addr, CreateTree: true})
	logtest.Run(t, l, logtest.Options{})

	// The same tree again, by name and by ID.
	byName := connect(t, RemoteOptions{LogAddr: addr, AdminAddr: addr})
	byID := connect(t, RemoteOptions{LogAddr: addr, TreeID: l.TreeID(), TreeName: "ignored"})
	want, err := l.Root(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []*Log{byName, byID} {
		if other.TreeID() != l.TreeID() {
			t.Errorf("tree ID = %d, want %d", other.TreeID(), l.TreeID())
		}
		if got, err := other.Root(t.Context()); err != nil || got != want {
			t.Errorf("Root = %v, %v; want %v", got, err, want)
		}
	}
	if _, err := NewRemote(t.Context(), RemoteOptions{LogAddr: addr, TreeID: l.TreeID() + 1, Logger: testLogger(t)}); err == nil {
		t.Error("NewRemote with an unknown tree ID succeeded")
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := l.Append(t.Context(), [][]byte{[]byte("x")}); err == nil {
		t.Error("Append after Close succeeded")
	}
}
