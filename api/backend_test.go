package api

import "github.com/vitalproof/vitalproof/provenance"

// The provenance types are the backends this package is written for.
var (
	_ LedgerBackend           = (*provenance.Ledger)(nil)
	_ GatewayBackend          = (*provenance.Gateway)(nil)
	_ provenance.LedgerClient = (*ledgerClient)(nil)
)
