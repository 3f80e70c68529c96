-- VitalProof gateway: regulators' audit jobs (package provenance/audits).
-- Idempotent. A job's bundle holds no reading, salt or patient identifier;
-- its request names a device, a metric, a period and a statement.
CREATE TABLE IF NOT EXISTS audit_jobs (
  id           CHAR(24)     NOT NULL,
  regulator    VARCHAR(64)  NOT NULL,
  request      BLOB         NOT NULL,
  state        VARCHAR(24)  NOT NULL,
  stage        VARCHAR(200) NOT NULL DEFAULT '',
  progress     TINYINT UNSIGNED NOT NULL DEFAULT 0,
  message      VARCHAR(1000) NOT NULL DEFAULT '',
  entries      INT          NOT NULL DEFAULT 0,
  readings     INT          NOT NULL DEFAULT 0,
  circuit      VARCHAR(200) NULL,
  unsafe_keys  BOOLEAN      NOT NULL DEFAULT FALSE,
  bundle       MEDIUMBLOB   NULL,
  created_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  updated_at   TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  PRIMARY KEY (id),
  KEY (state, created_at),
  KEY (regulator)
) ENGINE=InnoDB;
