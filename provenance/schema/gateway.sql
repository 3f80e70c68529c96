-- VitalProof gateway schema (MariaDB/MySQL): the hospital's private store.
-- Idempotent: safe to apply on every start. Nothing here is ever sent to the ledger
-- but the signed entry.

-- API keys of the gateway's clients (devices, hubs, integration engines, staff),
-- stored as SHA-256 of the key.
CREATE TABLE IF NOT EXISTS gateway_api_keys (
  key_hash    BINARY(32)   NOT NULL,
  label       VARCHAR(64)  NOT NULL,
  role        VARCHAR(16)  NOT NULL,
  created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (key_hash)
) ENGINE=InnoDB;

-- One row per batch: the opening of its commitment (salt and readings) and
-- its receipt. readings is the batch's readings packed 8 bytes each
-- (big-endian uint32 offset, uint32 fixed-point value): a row per batch, not
-- per reading. state is 'pending' from before the entry is forwarded to the
-- ledger until the ledger accepts it ('accepted', leaf_index set once it is
-- integrated) and then its receipt arrives ('logged'); a pending row is
-- forwarded again after a crash, and removed if the ledger refuses the
-- entry; an accepted row's receipt is fetched once a published (cosigned)
-- checkpoint covers it.
CREATE TABLE IF NOT EXISTS batches (
  leaf_hash    BINARY(32)   NOT NULL,
  entry        VARBINARY(2048) NOT NULL,
  device_id    VARCHAR(64)  NOT NULL,
  metric       VARCHAR(32)  NOT NULL,
  window_start BIGINT       NOT NULL,
  window_end   BIGINT       NOT NULL,
  attestation  VARCHAR(16)  NOT NULL,
  salt         BINARY(32)   NOT NULL,
  readings     MEDIUMBLOB   NOT NULL,
  patient_ref  VARCHAR(200) NULL,
  state        VARCHAR(16)  NOT NULL,
  leaf_index   BIGINT UNSIGNED NULL,
  receipt      BLOB         NULL,
  created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (leaf_hash),
  KEY (state),
  KEY (leaf_index),
  KEY (device_id, metric, window_start)
) ENGINE=InnoDB;

-- Heads of the chains of gateway-attested entries, which this gateway signs.
CREATE TABLE IF NOT EXISTS gateway_chains (
  chain_key   VARCHAR(200) NOT NULL,
  seq         BIGINT UNSIGNED NOT NULL,
  head_hash   BINARY(32)   NOT NULL,
  PRIMARY KEY (chain_key)
) ENGINE=InnoDB;
