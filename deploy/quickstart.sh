#!/usr/bin/env bash
# deploy/quickstart.sh: start the whole of VitalProof on this machine and run
# its main job end to end.
#
# It makes sure MariaDB runs (installing it if missing), builds the binaries,
# starts vitalproofd (ledger with embedded Trillian, and a hospital gateway) on
# fresh quickstart databases, admits a demo hospital, registers a demo device,
# lets a simulated wearable submit a day of device-signed batches (one per
# metric per hour, a reading a minute), also sends FHIR Observations without a
# device signature (gateway-attested), verifies every receipt offline against
# the log's policy, prints a summary and stops what it started. It leaves
# quickstart-out/: policy.txt, receipt-<index>.tlog-proof files, the daemon's
# log and its keys.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local

OUT=${OUT:-quickstart-out}
PORT_BASE=${PORT_BASE:-18080}
LEDGER_HTTP=127.0.0.1:$PORT_BASE
LEDGER_GRPC=127.0.0.1:$((PORT_BASE + 1))
GATEWAY_HTTP=127.0.0.1:$((PORT_BASE + 10))
GATEWAY_GRPC=127.0.0.1:$((PORT_BASE + 11))
DB_PREFIX=${DB_PREFIX:-vitalproof_quickstart}
started=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

step "MariaDB"
deploy/mariadb.sh
mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB_PREFIX}_ledger; DROP DATABASE IF EXISTS ${DB_PREFIX}_trillian; DROP DATABASE IF EXISTS ${DB_PREFIX}_gateway;"
echo "fresh databases ${DB_PREFIX}_{ledger,trillian,gateway} on 127.0.0.1:3306"

step "build"
mkdir -p bin
go build -o bin/ ./cmd/vitalproofd ./cmd/vitalproof
echo "bin/vitalproofd, bin/vitalproof"

rm -rf "$OUT"
mkdir -p "$OUT/data"
cat > "$OUT/vitalproofd.yaml" <<YAML
serve: [gateway, ledger]
data_dir: data
ledger:
  grpc: $LEDGER_GRPC
  http: $LEDGER_HTTP
  db: root@tcp(127.0.0.1:3306)/${DB_PREFIX}_ledger
  origin: quickstart.vitalproof.example/log
  trillian:
    mode: embedded
    db: root@tcp(127.0.0.1:3306)/${DB_PREFIX}_trillian
gateway:
  grpc: $GATEWAY_GRPC
  http: $GATEWAY_HTTP
  db: root@tcp(127.0.0.1:3306)/${DB_PREFIX}_gateway
  hospital_id: demo-hospital
YAML

step "start vitalproofd (ledger + embedded Trillian + gateway)"
bin/vitalproofd --config "$OUT/vitalproofd.yaml" 2> "$OUT/vitalproofd.log" &
daemon=$!
stop_daemon() {
  if kill -0 "$daemon" 2>/dev/null; then
    kill -TERM "$daemon" && wait "$daemon" || true
  fi
}
trap stop_daemon EXIT
if ! bin/vitalproof wait --url "http://$LEDGER_HTTP/healthz" --timeout 120s ||
   ! bin/vitalproof wait --url "http://$GATEWAY_HTTP/healthz" --timeout 30s; then
  echo "vitalproofd did not come up; its log:" >&2
  tail -n 30 "$OUT/vitalproofd.log" >&2
  exit 1
fi
echo "ledger http://$LEDGER_HTTP, gateway http://$GATEWAY_HTTP (log: $OUT/vitalproofd.log)"

step "admit the demo hospital and register the demo device"
D=$OUT/data
bin/vitalproof hospital register --ledger "http://$LEDGER_HTTP" --admin-key-file "$D/ledger-admin.apikey" \
  --id demo-hospital --name "Demo General Hospital" --vkey-file "$D/hospital.key.vkey" --api-key-out "$D/hospital-ledger.apikey"
bin/vitalproof keygen --name demo-wristband-1 --out "$D/device.key" > /dev/null
bin/vitalproof device register --ledger "http://$LEDGER_HTTP" --admin-key-file "$D/ledger-admin.apikey" \
  --id demo-wristband-1 --manufacturer demo-medtech --udi "(01)09506000134352(11)260301(17)290301(10)LOT42(21)WB0001" \
  --model "VitalBand 2" --firmware 1.4.2 --vkey-file "$D/device.key.vkey" --hospital demo-hospital
bin/vitalproofd create-key --config "$OUT/vitalproofd.yaml" --role submitter --label demo-hub > "$D/hub.apikey"
chmod 600 "$D/hub.apikey"

step "a simulated wearable submits yesterday's readings"
bin/vitalproof simulate --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/hub.apikey" \
  --device-key "$D/device.key" --hospital demo-hospital --start yesterday --hours 24 \
  --metrics heart-rate,spo2,body-temperature,systolic-bp,diastolic-bp,glucose,steps \
  --receipts "$OUT" --fhir-sample "$OUT/observations.fhir.json" | tee "$OUT/simulate.txt"
readings=$(sed -n 's/^submitted [0-9]* batches, \([0-9]*\) readings.*/\1/p' "$OUT/simulate.txt")

step "an integration engine sends FHIR Observations without a device signature"
bin/vitalproof submit --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/hub.apikey" \
  --fhir "$OUT/observations.fhir.json" --receipts "$OUT" | tee "$OUT/fhir.txt"
fhir_readings=$(sed -n 's/.*: \([0-9]*\) readings, attestation.*/\1/p' "$OUT/fhir.txt" | awk '{s+=$1} END {print s+0}')

step "verify every receipt offline"
bin/vitalproof policy --log-vkey-file "$D/log.vkey" > "$OUT/policy.txt"
cat "$OUT/policy.txt"
bin/vitalproof verify receipt -q --policy "$OUT/policy.txt" "$OUT"/receipt-*.tlog-proof

step "summary"
receipts=$(ls "$OUT"/receipt-*.tlog-proof | wc -l)
checkpoint=$(bin/vitalproof checkpoint --ledger "http://$LEDGER_HTTP")
size=$(echo "$checkpoint" | sed -n 2p)
stop_daemon
trap - EXIT
echo "entries logged:      $receipts (all receipts verified offline)"
echo "readings committed:  $((readings + fhir_readings)) (kept only in the gateway's private store)"
echo "tree size:           $size"
echo "time taken:          $(( $(date +%s) - started ))s"
echo "left in $OUT/: policy.txt, receipt-<index>.tlog-proof, vitalproofd.log, vitalproofd.yaml, data/"
