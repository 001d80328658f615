#!/usr/bin/env bash
# Fieldbook demo: a rep's offline edits on two devices merge, nothing lost, and a manager's
# device sees the merged dossier. Until the relay lands, devices exchange dossier documents as
# Automerge files (what a sync would carry), so every step below runs with no network.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --locked -p fieldbook-app --bin fieldbook
fb=target/debug/fieldbook
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
laptop=(--data-dir "$work/laptop") phone=(--data-dir "$work/phone") manager=(--data-dir "$work/manager")
export FIELDBOOK_TODAY=2026-11-23
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
carry() { # carry every dossier from one device to another, as a sync would
  rm -rf "$work/stick"; "$fb" "${@:1:2}" export --all --format automerge --out "$work/stick" >/dev/null
  "$fb" "${@:3:2}" import "$work/stick" >/dev/null
}

"$fb" "${laptop[@]}" whoami --user li --device laptop >/dev/null
"$fb" "${phone[@]}" whoami --user li --device phone >/dev/null
"$fb" "${manager[@]}" whoami --user zhou --device manager-pc >/dev/null

say "Laptop: a new client, its HR director (coach, two roles), a deal"
id=$("$fb" "${laptop[@]}" new --name 华东机械有限公司 --set profile.industry=制造业 \
      --set profile.target_type=competitors_client --set profile.region=上海)
coach=$("$fb" "${laptop[@]}" add "$id" people name=张伟 title=HR总监 roles=initiator,influencer \
      coach=true personality=analytical)
deal=$("$fb" "${laptop[@]}" add "$id" deals title=中层领导力培训 value=180000 currency=CNY stage=interest)
"$fb" "${laptop[@]}" show "$id"

say "The phone gets the dossier (a sync while online)"
carry "${laptop[@]}" "${phone[@]}"

say "Offline on both devices: a meeting on each, and two different stage moves"
"$fb" "${laptop[@]}" meeting "$id" --with "$coach" --notes "谈了明年的培训计划，预算待定" \
  --demand "40名中层的领导力课程" --next-step "提交方案" --due 2026-11-27 --next-kind submit_proposal
"$fb" "${laptop[@]}" set "$id" "deals.$deal.stage=evaluation" >/dev/null
"$fb" "${phone[@]}" meeting "$id" --kind phone --notes "Coach says the competitor cut its price" \
  --benefit "quality first, then price" --next-step "call the coach" --due 2026-11-25
"$fb" "${phone[@]}" set "$id" "deals.$deal.stage=lost" "deals.$deal.lost_reason=price" >/dev/null

say "Back online: the two devices exchange their changes"
carry "${laptop[@]}" "${phone[@]}"
carry "${phone[@]}" "${laptop[@]}"

say "Laptop: both meetings are there; the stage clash is shown, not dropped"
"$fb" "${laptop[@]}" show "$id"
"$fb" "${laptop[@]}" conflicts "$id"
"$fb" "${laptop[@]}" resolve "$id" "deals.$deal.stage" --pick 1 >/dev/null
"$fb" "${laptop[@]}" history "$id" "deals.$deal.stage"

say "Manager's device, a week later: the merged dossier, follow-ups overdue, search in Chinese"
carry "${laptop[@]}" "${manager[@]}"
"$fb" "${manager[@]}" --today 2026-11-30 list --overdue
"$fb" "${manager[@]}" --today 2026-11-30 todo --overdue
"$fb" "${manager[@]}" search 培训
