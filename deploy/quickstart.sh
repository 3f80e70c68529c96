#!/usr/bin/env bash
# deploy/quickstart.sh: start the whole of VitalProof on this machine and run
# its main job end to end.
#
# It makes sure MariaDB runs (installing it if missing), builds the binaries,
# creates the log's key, starts three hospital witnesses (vitalwitness, each
# with its own key and database) and writes the consortium's policy (the log
# and the three witnesses, two of which must cosign each checkpoint), starts
# vitalproofd (ledger with embedded Trillian and the checkpoint publisher, and
# a hospital gateway) on fresh quickstart databases, admits a demo hospital,
# registers a demo device, lets a simulated wearable submit a day of
# device-signed batches (one per metric per hour, a reading a minute), stops
# one witness and sends FHIR Observations without a device signature
# (gateway-attested) to show that two of three witnesses still publish. Then
# a continuous glucose monitor submits 31 days (a reading every 30 minutes,
# daily batches, four days not worn), and a regulator asks the gateway for
# audits of the first 30 days (range, time in range, adherence, mean; for
# each one statement that holds and one that does not): the hospital
# approves each, the gateway proves the true ones (development keys, made
# once and cached in $ZK_KEYS, labelled UNSAFE FOR PRODUCTION) and refuses
# the false ones without a proof, and the regulator fetches the verifying
# keys and verifies every bundle offline. Last it verifies every receipt
# offline against the policy, prints a summary and stops what it started.
# It leaves quickstart-out/: policy.txt, receipt-<index>.tlog-proof files,
# audit-*.vpaudit bundles, keys/ (verifying keys), the daemons' logs and keys.
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
WITNESSES=(1 2 3)
# Audit circuits' keys are made once (minutes) and kept here across runs.
ZK_KEYS=${ZK_KEYS:-${XDG_CACHE_HOME:-$HOME/.cache}/vitalproof/zk-keys}
started=$(date +%s)

step() { printf '\n== %s\n' "$*"; }

step "MariaDB"
deploy/mariadb.sh
for db in ledger trillian gateway "${WITNESSES[@]/#/witness}"; do
  mysql --protocol=tcp -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS ${DB_PREFIX}_$db"
done
echo "fresh databases ${DB_PREFIX}_{ledger,trillian,gateway,witness1,witness2,witness3} on 127.0.0.1:3306"

step "build"
mkdir -p bin
go build -o bin/ ./cmd/vitalproofd ./cmd/vitalproof ./cmd/vitalwitness
echo "bin/vitalproofd, bin/vitalproof, bin/vitalwitness"

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
  publish:
    policy_file: policy.txt
    interval: 500ms
    witness_timeout: 2s
  zk_keys_dir: $ZK_KEYS
gateway:
  grpc: $GATEWAY_GRPC
  http: $GATEWAY_HTTP
  db: root@tcp(127.0.0.1:3306)/${DB_PREFIX}_gateway
  hospital_id: demo-hospital
  audit:
    approval: manual
    keys_dir: $ZK_KEYS
    # The quickstart makes development keys: UNSAFE FOR PRODUCTION.
    dev_keys: true
YAML

pids=()
stop_all() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" && wait "$pid" || true
    fi
  done
}
trap stop_all EXIT

step "start three hospital witnesses; the consortium's policy needs two of them"
log_vkey=$(bin/vitalproofd log-key --config "$OUT/vitalproofd.yaml")
W=$OUT/witnesses
mkdir -p "$W"
echo "log $log_vkey" > "$W/trusted-logs.txt"
{
  echo "log $log_vkey"
  for i in "${WITNESSES[@]}"; do
    vkey=$(bin/vitalwitness keygen --name "hospital$i.quickstart.vitalproof.example/witness" --out "$W/witness$i.key")
    addr=127.0.0.1:$((PORT_BASE + 20 + i))
    bin/vitalwitness serve --listen "$addr" --key "$W/witness$i.key" --logs "$W/trusted-logs.txt" \
      --db "root@tcp(127.0.0.1:3306)/${DB_PREFIX}_witness$i" 2> "$W/witness$i.log" &
    pids+=($!)
    eval "witness${i}_pid=$!"
    echo "witness hospital$i $vkey http://$addr/"
  done
  echo "group hospitals 2 ${WITNESSES[*]/#/hospital}"
  echo "quorum hospitals"
} > "$OUT/policy.txt"
cat "$OUT/policy.txt"

step "start vitalproofd (ledger + embedded Trillian + checkpoint publisher + gateway)"
bin/vitalproofd --config "$OUT/vitalproofd.yaml" 2> "$OUT/vitalproofd.log" &
pids+=($!)
if ! bin/vitalproof wait --url "http://$LEDGER_HTTP/healthz" --timeout 120s ||
   ! bin/vitalproof wait --url "http://$GATEWAY_HTTP/healthz" --timeout 30s; then
  echo "vitalproofd did not come up; its log:" >&2
  tail -n 30 "$OUT/vitalproofd.log" >&2
  exit 1
fi
echo "ledger http://$LEDGER_HTTP, gateway http://$GATEWAY_HTTP (log: $OUT/vitalproofd.log)"

step "admit the demo hospital and a second member hospital"
D=$OUT/data
bin/vitalproof hospital register --ledger "http://$LEDGER_HTTP" --admin-key-file "$D/ledger-admin.apikey" \
  --id demo-hospital --name "Demo General Hospital" --vkey-file "$D/hospital.key.vkey" --api-key-out "$D/hospital-ledger.apikey"
bin/vitalproof keygen --name st-elsewhere --out "$D/st-elsewhere.key" > /dev/null
bin/vitalproof hospital register --ledger "http://$LEDGER_HTTP" --admin-key-file "$D/ledger-admin.apikey" \
  --id st-elsewhere --name "St Elsewhere" --vkey-file "$D/st-elsewhere.key.vkey" --api-key-out "$D/st-elsewhere-ledger.apikey"

step "the operator proposes the demo manufacturer; two member hospitals' signed approvals admit it"
bin/vitalproof keygen --name demo-medtech --out "$D/manufacturer.key" > /dev/null
bin/vitalproof manufacturer propose --ledger "http://$LEDGER_HTTP" --admin-key-file "$D/ledger-admin.apikey" \
  --id demo-medtech --name "Demo Medtech" --vkey-file "$D/manufacturer.key.vkey" --api-key-out "$D/manufacturer.apikey"
bin/vitalproof manufacturer approve --ledger "http://$LEDGER_HTTP" --api-key-file "$D/hospital-ledger.apikey" \
  --hospital-key "$D/hospital.key" --id demo-medtech
bin/vitalproof manufacturer approve --ledger "http://$LEDGER_HTTP" --api-key-file "$D/st-elsewhere-ledger.apikey" \
  --hospital-key "$D/st-elsewhere.key" --id demo-medtech

step "demo-medtech registers the demo wristband, signing its registration record"
bin/vitalproof keygen --name demo-wristband-1 --out "$D/device.key" > /dev/null
bin/vitalproof device register --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --manufacturer-key "$D/manufacturer.key" \
  --id demo-wristband-1 --manufacturer demo-medtech --udi "(01)09506000134352(11)260301(17)290301(10)LOT42(21)WB0001" \
  --model "VitalBand 2" --firmware 1.4.2 --vkey-file "$D/device.key.vkey" --hospital demo-hospital
bin/vitalproofd create-key --config "$OUT/vitalproofd.yaml" --role submitter --label demo-hub > "$D/hub.apikey"
chmod 600 "$D/hub.apikey"

# life DEVICE FIRST_DAY: the manufacturer makes and ships the device, the
# hospital commissions it, all before its first readings (each event signed
# by its party and checked against the device's state at the ledger).
life() {
  local dev=$1 first=$2
  bin/vitalproof device event --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --key "$D/manufacturer.key" \
    --id "$dev" --kind manufactured --at "$(date -u -d "$first - 3 days" +%FT%TZ)"
  bin/vitalproof device event --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --key "$D/manufacturer.key" \
    --id "$dev" --kind shipped --hospital demo-hospital --at "$(date -u -d "$first - 2 days" +%FT%TZ)"
  bin/vitalproof device event --ledger "http://$LEDGER_HTTP" --api-key-file "$D/hospital-ledger.apikey" --key "$D/hospital.key" \
    --id "$dev" --kind commissioned --hospital demo-hospital --at "$(date -u -d "$first - 1 day" +%FT%TZ)"
}
yesterday=$(date -u -d yesterday +%F)

step "demo-medtech makes and ships the wristband; the hospital commissions it"
life demo-wristband-1 "$yesterday"

step "a simulated wearable submits yesterday's readings"
bin/vitalproof simulate --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/hub.apikey" \
  --device-key "$D/device.key" --hospital demo-hospital --start yesterday --hours 24 \
  --metrics heart-rate,spo2,body-temperature,systolic-bp,diastolic-bp,glucose,steps \
  --receipts "$OUT" --fhir-sample "$OUT/observations.fhir.json" | tee "$OUT/simulate.txt"
readings=$(sed -n 's/^submitted [0-9]* batches, \([0-9]*\) readings.*/\1/p' "$OUT/simulate.txt")

step "demo-medtech updates the wristband's firmware; a second wristband is recalled at noon yesterday"
echo "VitalBand 2 firmware 1.5.0" > "$OUT/firmware-1.5.0.bin"
bin/vitalproof device event --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --key "$D/manufacturer.key" \
  --id demo-wristband-1 --kind firmware --firmware 1.5.0 --image "$OUT/firmware-1.5.0.bin"
bin/vitalproof keygen --name demo-wristband-2 --out "$D/device2.key" > /dev/null
bin/vitalproof device register --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --manufacturer-key "$D/manufacturer.key" \
  --id demo-wristband-2 --manufacturer demo-medtech --udi "(01)09506000134352(11)260301(17)290301(10)LOT42(21)WB0002" \
  --model "VitalBand 2" --firmware 1.4.2 --vkey-file "$D/device2.key.vkey" --hospital demo-hospital
life demo-wristband-2 "$yesterday"
bin/vitalproof device event --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --key "$D/manufacturer.key" \
  --id demo-wristband-2 --kind recalled --reason "battery may overheat" --at "${yesterday}T12:00:00Z"
if bin/vitalproof simulate --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/hub.apikey" \
    --device-key "$D/device2.key" --hospital demo-hospital --start yesterday --hours 24 --metrics heart-rate \
    --receipts "$OUT" > "$OUT/recalled.txt" 2>&1; then
  echo "the recalled wristband's readings after noon were accepted" >&2
  exit 1
fi
if ! grep -q "recalled" "$OUT/recalled.txt"; then
  cat "$OUT/recalled.txt" >&2
  exit 1
fi
echo "   readings before noon logged; the first batch after the recall refused:"
grep -o "recalled.*" "$OUT/recalled.txt" | head -n 1 | sed 's/^/   /'

step "witness hospital3 goes offline; hospital1 and hospital2 still make the quorum"
kill -TERM "$witness3_pid" && wait "$witness3_pid" || true

step "an integration engine sends FHIR Observations without a device signature"
bin/vitalproof submit --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/hub.apikey" \
  --fhir "$OUT/observations.fhir.json" --receipts "$OUT" | tee "$OUT/fhir.txt"
fhir_readings=$(sed -n 's/.*: \([0-9]*\) readings, attestation.*/\1/p' "$OUT/fhir.txt" | awk '{s+=$1} END {print s+0}')

step "a continuous glucose monitor: 31 days, a reading every 30 minutes, four days not worn"
bin/vitalproof keygen --name demo-cgm-1 --out "$D/cgm.key" > /dev/null
bin/vitalproof device register --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --manufacturer-key "$D/manufacturer.key" \
  --id demo-cgm-1 --manufacturer demo-medtech --udi "(01)09506000134369(21)CGM0001" \
  --model "GlucoWatch 1" --firmware 2.0.1 --vkey-file "$D/cgm.key.vkey" --hospital demo-hospital
cgm_start=$(date -u -d "31 days ago" +%Y-%m-%d)
life demo-cgm-1 "$cgm_start"
bin/vitalproof simulate --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/hub.apikey" \
  --device-key "$D/cgm.key" --hospital demo-hospital --start "${cgm_start}T00:00:00Z" --hours 744 \
  --metrics glucose --batch-every 24h --reading-every 30m --skip-days 4,11,12,23 \
  --receipts "$OUT" | tee "$OUT/cgm.txt"
cgm_readings=$(sed -n 's/^submitted [0-9]* batches, \([0-9]*\) readings.*/\1/p' "$OUT/cgm.txt")

step "a regulator asks the gateway for audits of the first 30 days; the hospital approves each"
bin/vitalproofd create-key --config "$OUT/vitalproofd.yaml" --role regulator --label demo-regulator > "$D/regulator.apikey"
chmod 600 "$D/regulator.apikey"
from=$cgm_start
to=$(date -u -d "$cgm_start + 30 days" +%Y-%m-%d)
echo "period $from to $to (exclusive); the first proof of each circuit makes its development keys (minutes, once: cached in $ZK_KEYS)"
proved=0
refused=0
# audit NAME EXPECT ARGS...: request, approve, fetch; EXPECT is proved or false.
audit() {
  local name=$1 expect=$2
  shift 2
  local id
  id=$(bin/vitalproof audit request --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/regulator.apikey" \
    --device demo-cgm-1 --metric glucose --from "$from" --to "$to" --detach "$@")
  bin/vitalproof audit decide --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/gateway-admin.apikey" --id "$id" --approve > /dev/null
  if bin/vitalproof audit fetch --gateway "http://$GATEWAY_HTTP" --api-key-file "$D/regulator.apikey" \
      --id "$id" --out "$OUT/audit-$name.vpaudit" 2> "$OUT/audit-$name.log"; then
    if [ "$expect" != proved ]; then
      echo "a false statement was proved: $name" >&2
      exit 1
    fi
    proved=$((proved + 1))
  else
    if [ "$expect" != false ] || ! grep -q "statement is false" "$OUT/audit-$name.log"; then
      cat "$OUT/audit-$name.log" >&2
      exit 1
    fi
    echo "   $name: no proof, as expected: $(tail -n 1 "$OUT/audit-$name.log" | sed 's/^vitalproof: //')"
    refused=$((refused + 1))
  fi
}
audit range proved --statement range --range 40:400
audit range-false false --statement range --range 70:140
audit tir proved --statement tir --tir 70:180:70
audit tir-false false --statement tir --tir 80:120:95
audit adherence proved --statement adherence --min-days 16
audit adherence-false false --statement adherence --min-days 30
audit mean proved --statement mean --mean-below 140
audit mean-false false --statement mean --mean-below 90

step "the regulator fetches the verifying keys and verifies every bundle offline"
bin/vitalproof audit keys --ledger "http://$LEDGER_HTTP" --out "$OUT/keys"
bin/vitalproof audit verify --policy "$OUT/policy.txt" --keys "$OUT/keys" --registrar-vkey "$D/manufacturer.key.vkey" "$OUT"/audit-*.vpaudit

step "the manufacturer fetches each device's history, every leaf verified against a cosigned checkpoint"
for dev in demo-wristband-1 demo-wristband-2 demo-cgm-1; do
  bin/vitalproof device history --ledger "http://$LEDGER_HTTP" --api-key-file "$D/manufacturer.apikey" --id "$dev" \
    --policy "$OUT/policy.txt" --out "$OUT/history-$dev.json" > "$OUT/history-$dev.txt"
  tail -n 1 "$OUT/history-$dev.txt"
done
bin/vitalproof index check --ledger "http://$LEDGER_HTTP" --admin-key-file "$D/ledger-admin.apikey"

step "a monitor catches up on the whole log from the policy and reports in plain words"
bin/vitalproof monitor --ledger "http://$LEDGER_HTTP" --policy "$OUT/policy.txt" --state "$OUT/monitor" \
  --watch-manufacturer demo-medtech --once --report "$OUT/monitor-report.txt" > /dev/null
grep "recalled, effective" "$OUT/monitor-report.txt" | sed 's/^[^ ]* /   /'
tail -n 1 "$OUT/monitor-report.txt" | sed 's/^[^ ]* /   /'
echo "   $(grep -c ALERT "$OUT/monitor-report.txt" || true) alerts; the whole report: $OUT/monitor-report.txt"

step "verify every receipt offline against the policy (log signature, cosignatures, quorum)"
bin/vitalproof verify receipt -q --policy "$OUT/policy.txt" "$OUT"/receipt-*.tlog-proof

step "summary"
receipts=$(ls "$OUT"/receipt-*.tlog-proof | wc -l)
checkpoint=$(bin/vitalproof checkpoint --ledger "http://$LEDGER_HTTP")
size=$(echo "$checkpoint" | sed -n 2p)
cosigned=$(echo "$checkpoint" | grep -c '^— hospital' || true)
stop_all
trap - EXIT
echo "entries logged:      $receipts (all receipts verified offline)"
echo "latest checkpoint:   tree size $size, cosigned by $cosigned of ${#WITNESSES[@]} witnesses (2 needed)"
echo "readings committed:  $((readings + fhir_readings + cgm_readings)) (kept only in the gateway's private store)"
echo "audits:              $proved proved and verified offline, $refused false statements refused without a proof"
echo "tree size:           $size"
echo "time taken:          $(( $(date +%s) - started ))s"
echo "left in $OUT/: policy.txt, receipt-<index>.tlog-proof, audit-*.vpaudit, keys/, history-<device>.{txt,json}, monitor-report.txt, monitor/, vitalproofd.log, vitalproofd.yaml, data/, witnesses/"
