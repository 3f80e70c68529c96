// Package node wires VitalProof's services into one process: the ledger
// (with its log, embedded Trillian or a remote one) and the hospital
// gateway, each behind its gRPC API and REST gateway. cmd/vitalproofd is a
// thin main around it; integration tests and the benchmark start the same
// node in-process.
package node

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is vitalproofd's configuration file (YAML). deploy/vitalproofd.example.yaml
// documents every setting; paths are relative to the file's directory.
type Config struct {
	// Serve lists the services to run: "ledger", "gateway" or both (default).
	Serve []string `yaml:"serve"`
	// DataDir holds keys the daemon creates on first start (default "data").
	DataDir string       `yaml:"data_dir"`
	Ledger  LedgerConfig `yaml:"ledger"`
	Gateway GatewayConf  `yaml:"gateway"`
	// LogLevel is debug, info, warn or error (default info).
	LogLevel string `yaml:"log_level"`
}

// LedgerConfig configures the ledger service.
type LedgerConfig struct {
	// GRPC is the gRPC listen address (default 127.0.0.1:8081).
	GRPC string `yaml:"grpc"`
	// HTTP is the REST listen address (default 127.0.0.1:8080).
	HTTP string `yaml:"http"`
	// DB is the go-sql-driver DSN of the ledger's database; it is created if missing.
	DB string `yaml:"db"`
	// Origin is the log's name: the checkpoint origin and its key's name
	// (default "vitalproof.example/log").
	Origin string `yaml:"origin"`
	// KeyFile holds the log's checkpoint signing key, created if missing
	// (default <data_dir>/log.key); the verifier key goes next to it as .vkey.
	KeyFile string `yaml:"key_file"`
	// AdminKeyFile holds the operator's API key, created if missing
	// (default <data_dir>/ledger-admin.apikey).
	AdminKeyFile string `yaml:"admin_key_file"`
	// RegistryKeyFile holds the registry's note key, which signs the
	// device registration records the ledger appends to the log; created
	// if missing (default <data_dir>/registry.key), its verifier key beside
	// it as .vkey. Its name is <origin>/registry.
	RegistryKeyFile string `yaml:"registry_key_file"`
	// ManufacturerQuorum is how many member hospitals must approve a
	// manufacturer's admission or suspension (default 2).
	ManufacturerQuorum int `yaml:"manufacturer_quorum"`
	// ZKKeysDir is a directory of audit-circuit key directories (package
	// zk/keys, e.g. its key cache) whose verifying keys the ledger serves at
	// /api/v1/log/zk/keys (default <data_dir>/zk-keys; missing serves none).
	ZKKeysDir string `yaml:"zk_keys_dir"`
	// IntegrationTimeout is how long a submission waits for its receipt
	// (integration, then a published checkpoint covering it) before it is
	// answered as pending (default 10s).
	IntegrationTimeout time.Duration `yaml:"integration_timeout"`
	Trillian           TrillianConf  `yaml:"trillian"`
	Publish            PublishConf   `yaml:"publish"`
}

// PublishConf configures checkpoint publication: which witnesses must
// cosign a checkpoint before it is published (see package log/publish).
type PublishConf struct {
	// PolicyFile is the consortium's tlog-policy (c2sp.org/tlog-policy):
	// the log's key, the witnesses with their URLs, and the quorum. Empty
	// means a log without witnesses ("quorum none"). The policy in effect
	// is written to <data_dir>/policy.txt and served at
	// /api/v1/log/policy.txt.
	PolicyFile string `yaml:"policy_file"`
	// Interval is how often the publisher reads the log's root when no
	// submission wakes it (default 1s).
	Interval time.Duration `yaml:"interval"`
	// WitnessTimeout bounds one exchange with a witness (default 5s).
	WitnessTimeout time.Duration `yaml:"witness_timeout"`
	// FailOpen publishes checkpoints without a quorum when witnesses do
	// not answer, logging each at error level. Development only: it
	// defeats the witnesses. Default false (fail closed).
	FailOpen bool `yaml:"fail_open"`
}

// TrillianConf says which Trillian the ledger uses.
type TrillianConf struct {
	// Mode is "embedded" (default: log server and sequencer in-process) or
	// "remote" (trillian_log_server and trillian_log_signer elsewhere).
	Mode string `yaml:"mode"`
	// DB is the DSN of Trillian's database in embedded mode; created if missing.
	DB string `yaml:"db"`
	// LogAddr and AdminAddr are trillian_log_server's gRPC address in remote
	// mode (AdminAddr defaults to LogAddr).
	LogAddr   string `yaml:"log_addr"`
	AdminAddr string `yaml:"admin_addr"`
	// TreeName finds the tree again on restart; it is created on first start
	// (default "vitalproof").
	TreeName string `yaml:"tree_name"`
	// SequencerInterval and SequencerBatch tune the embedded sequencer
	// (defaults 50ms and 2000).
	SequencerInterval time.Duration `yaml:"sequencer_interval"`
	SequencerBatch    int           `yaml:"sequencer_batch"`
}

// GatewayConf configures a hospital's gateway.
type GatewayConf struct {
	// GRPC and HTTP are the listen addresses (defaults 127.0.0.1:8091, 127.0.0.1:8090).
	GRPC string `yaml:"grpc"`
	HTTP string `yaml:"http"`
	// DB is the DSN of the hospital's private store; created if missing.
	DB string `yaml:"db"`
	// HospitalID is the hospital this gateway submits for.
	HospitalID string `yaml:"hospital_id"`
	// HospitalKeyFile holds the hospital's Ed25519 key that signs
	// gateway-attested entries (a note signer key), created if missing
	// (default <data_dir>/hospital.key).
	HospitalKeyFile string `yaml:"hospital_key_file"`
	// LedgerAddr is the ledger's gRPC address (default: this process's ledger).
	LedgerAddr string `yaml:"ledger_addr"`
	// LedgerAPIKeyFile holds the hospital's API key at the ledger; it is read
	// when first needed, so it may be written after the gateway starts
	// (default <data_dir>/hospital-ledger.apikey).
	LedgerAPIKeyFile string `yaml:"ledger_api_key_file"`
	// AdminKeyFile holds the gateway administrator's API key, created if
	// missing (default <data_dir>/gateway-admin.apikey).
	AdminKeyFile string `yaml:"admin_key_file"`
	// FlushEntries, FlushDelay and Flushers tune how the gateway batches
	// entries on their way to the ledger (defaults 256, 5ms, 4).
	FlushEntries int           `yaml:"flush_entries"`
	FlushDelay   time.Duration `yaml:"flush_delay"`
	Flushers     int           `yaml:"flushers"`
	// OutboxInterval is how often the gateway forwards again the batches
	// the ledger has not accepted and fetches the receipts of entries that
	// awaited a published checkpoint (default 5s).
	OutboxInterval time.Duration `yaml:"outbox_interval"`
	Audit          AuditConf     `yaml:"audit"`
}

// AuditConf configures the regulators' audits a gateway runs (package
// provenance/audits).
type AuditConf struct {
	// Approval is "manual" (default: every audit waits for the hospital's
	// decision) or "auto" (audits run when asked).
	Approval string `yaml:"approval"`
	// KeysDir is the key cache of the audit circuits: compiled circuits and
	// their keys (default <data_dir>/zk-keys).
	KeysDir string `yaml:"keys_dir"`
	// DevKeys lets the gateway make development keys for a circuit that
	// has none: UNSAFE FOR PRODUCTION, whoever runs the setup can forge
	// proofs; for development and the quickstart only (default false).
	DevKeys bool `yaml:"dev_keys"`
	// Shapes are the circuit capacities offered, as ENTRIESxREADINGS
	// (default 24x60 and 31x48).
	Shapes []string `yaml:"shapes"`
}

// Defaults for the settings above.
const (
	DefaultLedgerGRPC  = "127.0.0.1:8081"
	DefaultLedgerHTTP  = "127.0.0.1:8080"
	DefaultGatewayGRPC = "127.0.0.1:8091"
	DefaultGatewayHTTP = "127.0.0.1:8090"
	DefaultOrigin      = "vitalproof.example/log"
	DefaultTreeName    = "vitalproof"
	DefaultLedgerDB    = "root@tcp(127.0.0.1:3306)/vitalproof_ledger"
	DefaultTrillianDB  = "root@tcp(127.0.0.1:3306)/vitalproof_trillian"
	DefaultGatewayDB   = "root@tcp(127.0.0.1:3306)/vitalproof_gateway"
)

// LoadConfig reads a YAML configuration file; unknown settings are errors.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("couldn't read config: %w", err)
	}
	defer f.Close()
	var c Config
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("couldn't parse config %s: %w", path, err)
	}
	return &c, nil
}

// Serves reports whether the configuration runs service s.
func (c *Config) Serves(s string) bool { return slices.Contains(c.Serve, s) }

// SetDefaults fills in every unset setting and checks the result.
func (c *Config) SetDefaults() error {
	if len(c.Serve) == 0 {
		c.Serve = []string{"gateway", "ledger"}
	}
	for _, s := range c.Serve {
		if s != "gateway" && s != "ledger" {
			return fmt.Errorf("serve: unknown service %q (want gateway, ledger or both)", s)
		}
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.DataDir, "data")
	def(&c.LogLevel, "info")
	l := &c.Ledger
	def(&l.GRPC, DefaultLedgerGRPC)
	def(&l.HTTP, DefaultLedgerHTTP)
	def(&l.DB, DefaultLedgerDB)
	def(&l.Origin, DefaultOrigin)
	def(&l.KeyFile, c.DataDir+"/log.key")
	def(&l.AdminKeyFile, c.DataDir+"/ledger-admin.apikey")
	def(&l.RegistryKeyFile, c.DataDir+"/registry.key")
	def(&l.ZKKeysDir, c.DataDir+"/zk-keys")
	def(&l.Trillian.Mode, "embedded")
	def(&l.Trillian.DB, DefaultTrillianDB)
	def(&l.Trillian.TreeName, DefaultTreeName)
	def(&l.Trillian.AdminAddr, l.Trillian.LogAddr)
	if l.Trillian.Mode != "embedded" && l.Trillian.Mode != "remote" {
		return fmt.Errorf("ledger.trillian.mode: %q is neither embedded nor remote", l.Trillian.Mode)
	}
	if l.Trillian.Mode == "remote" && l.Trillian.LogAddr == "" {
		return errors.New("ledger.trillian.log_addr: required in remote mode (trillian_log_server's gRPC address)")
	}
	g := &c.Gateway
	def(&g.GRPC, DefaultGatewayGRPC)
	def(&g.HTTP, DefaultGatewayHTTP)
	def(&g.DB, DefaultGatewayDB)
	def(&g.HospitalKeyFile, c.DataDir+"/hospital.key")
	def(&g.LedgerAPIKeyFile, c.DataDir+"/hospital-ledger.apikey")
	def(&g.AdminKeyFile, c.DataDir+"/gateway-admin.apikey")
	def(&g.Audit.Approval, "manual")
	def(&g.Audit.KeysDir, c.DataDir+"/zk-keys")
	if g.Audit.Approval != "manual" && g.Audit.Approval != "auto" {
		return fmt.Errorf("gateway.audit.approval: %q is neither manual nor auto", g.Audit.Approval)
	}
	if c.Serves("gateway") {
		if g.HospitalID == "" {
			return errors.New("gateway.hospital_id: required when serving the gateway")
		}
		if g.LedgerAddr == "" && !c.Serves("ledger") {
			return errors.New("gateway.ledger_addr: required when the ledger runs elsewhere")
		}
	}
	if strings.ContainsAny(l.Origin, " \n") || l.Origin == "" {
		return errors.New("ledger.origin: must be a non-empty name without spaces")
	}
	return nil
}
