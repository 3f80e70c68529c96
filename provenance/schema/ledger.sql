-- VitalProof ledger schema (MariaDB/MySQL). Idempotent: safe to apply on every start.
-- The log itself lives in Trillian's tables; these hold the ledger personality's state.

-- Consortium members allowed to submit entries.
CREATE TABLE IF NOT EXISTS hospitals (
  id          VARCHAR(64)  NOT NULL,
  name        VARCHAR(200) NOT NULL,
  public_key  VARBINARY(32) NOT NULL, -- Ed25519; verifies gateway-attested entries
  created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id)
) ENGINE=InnoDB;

-- API keys, stored as SHA-256 of the key; the key itself is shown once.
CREATE TABLE IF NOT EXISTS api_keys (
  key_hash    BINARY(32)   NOT NULL,
  principal   VARCHAR(64)  NOT NULL,
  role        VARCHAR(16)  NOT NULL,
  created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (key_hash),
  KEY (principal)
) ENGINE=InnoDB;

-- The device registry.
CREATE TABLE IF NOT EXISTS devices (
  id            VARCHAR(64)  NOT NULL,
  manufacturer  VARCHAR(64)  NOT NULL,
  udi           VARCHAR(200) NOT NULL,
  model         VARCHAR(200) NOT NULL,
  firmware      VARCHAR(64)  NOT NULL,
  public_key    VARBINARY(32) NOT NULL,
  hospital      VARCHAR(64)  NOT NULL,
  status        VARCHAR(16)  NOT NULL,
  created_at    TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  KEY (hospital)
) ENGINE=InnoDB;

-- The head of each per-device, per-metric, per-attestation hash chain.
CREATE TABLE IF NOT EXISTS chains (
  chain_key   VARCHAR(200) NOT NULL,
  seq         BIGINT UNSIGNED NOT NULL,
  head_hash   BINARY(32)   NOT NULL,
  PRIMARY KEY (chain_key)
) ENGINE=InnoDB;

-- Every accepted entry. A row is written, with the chain head, in the same
-- transaction that accepts the entry and before the leaf is queued in
-- Trillian; leaf_index is filled in once Trillian integrates it. Rows whose
-- leaf_index stays NULL are queued again by the reconciler, so an accepted
-- entry always reaches the log even if the process dies in between.
CREATE TABLE IF NOT EXISTS entries (
  leaf_hash   BINARY(32)   NOT NULL,
  chain_key   VARCHAR(200) NOT NULL,
  seq         BIGINT UNSIGNED NOT NULL,
  device_id   VARCHAR(64)  NOT NULL,
  hospital    VARCHAR(64)  NOT NULL,
  entry       VARBINARY(2048) NOT NULL,
  leaf_index  BIGINT UNSIGNED NULL,
  accepted_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (leaf_hash),
  UNIQUE KEY (chain_key, seq),
  KEY (leaf_index),
  KEY (device_id)
) ENGINE=InnoDB;

-- Manufacturers: proposed by the operator, admitted (or later suspended)
-- only once a quorum of member hospitals approved; each approval is a
-- hospital-signed note that is also appended to the log.
CREATE TABLE IF NOT EXISTS manufacturers (
  id          VARCHAR(64)  NOT NULL,
  name        VARCHAR(200) NOT NULL,
  public_key  VARBINARY(32) NOT NULL, -- Ed25519; signs the manufacturer's records
  status      VARCHAR(16)  NOT NULL,  -- proposed, admitted, suspended
  created_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id)
) ENGINE=InnoDB;

CREATE TABLE IF NOT EXISTS manufacturer_approvals (
  manufacturer VARCHAR(64)  NOT NULL,
  action       VARCHAR(16)  NOT NULL, -- admit, suspend
  hospital     VARCHAR(64)  NOT NULL,
  approval     VARBINARY(1024) NOT NULL, -- the signed note, as logged
  leaf_hash    BINARY(32)   NOT NULL,
  created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (manufacturer, action, hospital)
) ENGINE=InnoDB;

-- The leaf index: for every leaf of the log, its kind and the device and
-- manufacturer it concerns. Built from the log itself in index order (a
-- missing row at the end is simply indexed next), and checked against the
-- log by rebuilding it from leaf 0 (vitalproof index check).
CREATE TABLE IF NOT EXISTS leaf_index (
  leaf_index    BIGINT UNSIGNED NOT NULL,
  kind          VARCHAR(16)  NOT NULL,
  device_id     VARCHAR(64)  NULL,
  manufacturer  VARCHAR(64)  NULL,
  PRIMARY KEY (leaf_index),
  KEY (device_id, leaf_index),
  KEY (manufacturer, leaf_index)
) ENGINE=InnoDB;

-- A device's lifecycle state (wearables.DeviceState, as JSON): its
-- registration replayed with its lifecycle events, the last of which is
-- head. No row: the device has had no lifecycle event.
CREATE TABLE IF NOT EXISTS device_states (
  device_id   VARCHAR(64)  NOT NULL,
  seq         BIGINT UNSIGNED NOT NULL,
  head        BINARY(32)   NOT NULL,
  state       BLOB         NOT NULL,
  PRIMARY KEY (device_id)
) ENGINE=InnoDB;
