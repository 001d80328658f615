#!/usr/bin/env bash
# Fieldbook demo: a rep's offline edits on two devices meet a manager's view through a real
# relay on 127.0.0.1. The relay runs on SQLite next to the devices' own SQLite stores; it is
# stopped while the rep works "without signal", and every device syncs when it comes back.
set -euo pipefail
cd "$(dirname "$0")/.."

# The device store is encrypted with SQLCipher, which uses the system's libcrypto (OpenSSL).
if [ ! -e /usr/include/openssl/crypto.h ]; then
  echo "installing libssl-dev (OpenSSL's libcrypto, for the encrypted device store)"
  if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
  $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libssl-dev pkg-config >/dev/null
fi
# FIELDBOOK_DEMO_BIN: a folder holding both binaries already built (CI passes the ones its
# tests built); otherwise they are built here.
bin=${FIELDBOOK_DEMO_BIN:-}
if [ -z "$bin" ]; then
  cargo build --quiet --locked -p fieldbook-app --bin fieldbook -p fieldbook-relay --bin fieldbook-relay
  bin=target/debug
fi
fb=$bin/fieldbook
relay=$bin/fieldbook-relay
work=$(mktemp -d)
relay_pid=
cleanup() { [ -n "$relay_pid" ] && kill "$relay_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export FIELDBOOK_RELAY_DB="sqlite://$work/relay.sqlite" FIELDBOOK_RELAY_LOG=warn
# Each device's store is encrypted; its key (and device token) would live in the OS keystore.
# A demo box has none, so each device keeps them in a key file outside its data folder.
laptop=(--data-dir "$work/laptop" --key-file "$work/keys/laptop.key")
phone=(--data-dir "$work/phone" --key-file "$work/keys/phone.key")
manager=(--data-dir "$work/manager" --key-file "$work/keys/manager.key")
export FIELDBOOK_TODAY=2026-11-23
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Everything crosses the network in TLS: the relay serves HTTPS/WSS with a certificate from the
# team's own CA, which the devices are told to trust when they enrol.
tls=(--tls-cert "$work/tls/relay.pem" --tls-key "$work/tls/relay-key.pem")
ca=(--ca-file "$work/tls/ca.pem")
relay_up() {
  "$relay" serve --listen "${addr:-127.0.0.1:0}" "${tls[@]}" >"$work/relay.out" &
  relay_pid=$!
  for _ in $(seq 50); do grep -q listening "$work/relay.out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^listening on //p' "$work/relay.out"); addr=${url#https://}
}
relay_down() { kill "$relay_pid"; wait "$relay_pid" 2>/dev/null || true; relay_pid=; }
sync() { "$fb" "$@" sync | sed -n 1p; }

say "The team's admin sets up the relay: its TLS certificate, a team, two people, invite codes"
"$relay" tls-ca --out "$work/tls" --host 127.0.0.1 --host localhost | sed -n 1p
"$relay" team create east
li_laptop=$("$relay" invite --team east --user li --role rep 2>/dev/null)
li_phone=$("$relay" invite --team east --user li --role rep 2>/dev/null)
zhou=$("$relay" invite --team east --user zhou --role manager 2>/dev/null)
relay_up
echo "relay listening on $url"

say "Each device enrols with its invite code"
"$fb" "${laptop[@]}" whoami --device laptop >/dev/null
"$fb" "${phone[@]}" whoami --device phone >/dev/null
"$fb" "${manager[@]}" whoami --device manager-pc >/dev/null
"$fb" "${laptop[@]}" enroll "$url" "$li_laptop" "${ca[@]}"
"$fb" "${phone[@]}" enroll "$url" "$li_phone" "${ca[@]}"
"$fb" "${manager[@]}" enroll "$url" "$zhou" "${ca[@]}"

say "Laptop: a new client, its HR director (coach, two roles), a deal — synced to the phone"
id=$("$fb" "${laptop[@]}" new --name 华东机械有限公司 --set profile.industry=制造业 \
      --set profile.target_type=competitors_client --set profile.region=上海)
coach=$("$fb" "${laptop[@]}" add "$id" people name=张伟 title=HR总监 roles=initiator,influencer \
      coach=true personality=analytical)
deal=$("$fb" "${laptop[@]}" add "$id" deals title=中层领导力培训 value=180000 currency=CNY stage=interest)
sync "${laptop[@]}"
sync "${phone[@]}"

say "No signal (the relay is unreachable): a meeting on each device, two different stage moves"
relay_down
"$fb" "${laptop[@]}" meeting "$id" --with "$coach" --notes "谈了明年的培训计划，预算待定" \
  --demand "40名中层的领导力课程" --next-step "提交方案" --due 2026-11-27 --next-kind submit_proposal
"$fb" "${laptop[@]}" set "$id" "deals.$deal.stage=evaluation" >/dev/null
"$fb" "${phone[@]}" meeting "$id" --kind phone --notes "Coach says the competitor cut its price" \
  --benefit "quality first, then price" --next-step "call the coach" --due 2026-11-25
"$fb" "${phone[@]}" set "$id" "deals.$deal.stage=lost" "deals.$deal.lost_reason=price" >/dev/null
"$fb" "${phone[@]}" sync 2>&1 | sed -n 1p || true
"$fb" "${phone[@]}" status

say "Back online: each device syncs through the relay"
relay_up
sync "${phone[@]}"
sync "${laptop[@]}"
sync "${phone[@]}"

say "Laptop: both meetings are there; the stage clash is shown, not dropped"
"$fb" "${laptop[@]}" show "$id"
"$fb" "${laptop[@]}" conflicts "$id"
"$fb" "${laptop[@]}" resolve "$id" "deals.$deal.stage" --pick 1 >/dev/null
sync "${laptop[@]}"
"$fb" "${laptop[@]}" history "$id" "deals.$deal.stage"

say "Manager's device, a week later: the merged dossier, overdue follow-ups, search in Chinese"
sync "${manager[@]}"
"$fb" "${manager[@]}" --today 2026-11-30 list --overdue
"$fb" "${manager[@]}" --today 2026-11-30 todo --overdue
"$fb" "${manager[@]}" search 培训

say "Manager's device: the team board, from its own replica (works offline too)"
"$fb" "${manager[@]}" --today 2026-11-30 board

say "The manager assigns a follow-up to li; it reaches li's laptop on the next sync"
"$fb" "${manager[@]}" --today 2026-11-30 note "$id" --text "先把方案交了，下周我陪你去" \
  --rep li --action "提交修改后的方案" --due 2026-12-02
sync "${manager[@]}"
sync "${laptop[@]}"
"$fb" "${laptop[@]}" --today 2026-11-30 todo --assignee li

say "The same board in a browser: the relay serves the web view and its API to the manager"
printf '%s\n' 'east-manager-demo' | "$relay" password --team east --user zhou
if command -v curl >/dev/null; then
  cookies="$work/cookies"
  curl -fsS --cacert "$work/tls/ca.pem" -c "$cookies" -H 'content-type: application/json' \
    -d '{"team":"east","user":"zhou","password":"east-manager-demo"}' "$url/api/login" >/dev/null
  board=$(curl -fsS --cacert "$work/tls/ca.pem" -b "$cookies" -H 'content-type: application/json' -d '{}' "$url/api/dashboard")
  echo "logged in as zhou: $(printf '%s' "$board" | grep -o '"dossiers":[0-9]*') on the relay's board"
else
  echo "(curl is not installed: skipping the web API call)"
fi
echo "(with the UI built, \`fieldbook-relay serve --ui ui/dist …\` serves the board at $url)"

say "A lost laptop gives nothing away: its store is encrypted, its key kept elsewhere"
if grep -rqs '华东机械' "$work/laptop"; then
  echo "the client's name is readable in the laptop's files!" >&2; exit 1
fi
echo "no file in the laptop's data folder contains '华东机械' (SQLCipher, key in $work/keys/laptop.key)"

say "The relay's view of the team's devices: last sync and changes still waiting on each"
"$relay" devices --team east

say "The phone is lost: the admin revokes it; on its next contact it says so and wipes itself"
phone_id=$("$relay" devices --team east | awk '$NF == "phone" || / phone / { print $1; exit }')
"$relay" revoke "$phone_id"
if "$fb" "${phone[@]}" sync 2>"$work/phone.err"; then
  echo "the revoked phone still synced!" >&2; exit 1
fi
cat "$work/phone.err"
[ ! -e "$work/phone/fieldbook.sqlite" ] || { echo "the phone's replica is still there" >&2; exit 1; }
