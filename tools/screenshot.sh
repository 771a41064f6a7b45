#!/usr/bin/env bash
# Seeds a demo store (three people, a 1:1 chat, a group, delivery states) through the real
# `libra` CLI and sync over loopback, then runs the desktop app under Xvfb and saves a PNG of
# each view into docs/screenshots/.
#
#   bash tools/screenshot.sh            # needs: xvfb-run, imagemagick (import, convert)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p libra-tools -p libra-app
L=target/debug/libra
APP=target/debug/libra-app
out=docs/screenshots
mkdir -p "$out"
demo=$(mktemp -d)
# Servers start inside $(…) subshells, out of this shell's job table: their pids go to files.
trap 'kill $(jobs -p) $(cat "$demo"/*.pid 2>/dev/null) 2>/dev/null || true; rm -rf "$demo"' EXIT
me=$demo/alice ben=$demo/ben cat=$demo/cat

j() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
$L --data "$me" init --name Alice >/dev/null
$L --data "$ben" init --name Ben >/dev/null
$L --data "$cat" init --name Cat >/dev/null
inv() { $L --data "$1" --json invite | j "['invite']"; }
dev() { $L --data "$1" --json id | j "['device_id']"; }
IA=$(inv "$me"); IB=$(inv "$ben"); IC=$(inv "$cat")
for pair in "$me $IB" "$me $IC" "$ben $IA" "$ben $IC" "$cat $IA" "$cat $IB"; do
  set -- $pair; $L --data "$1" contact add "$2" >/dev/null
done

serve() { # data dir -> prints address
  $L --data "$1" serve --listen 127.0.0.1:0 > "$1.out" 2>/dev/null &
  echo $! > "$1.pid"
  for _ in $(seq 50); do grep -q listening "$1.out" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/^listening on //p' "$1.out"
}
BEN=$(serve "$ben"); CAT=$(serve "$cat")
# Alice links her phone (a second device of hers), then stops serving.
ME=$(serve "$me")
CODE=$($L --data "$me" --json device link --address "$ME" | j "['code']")
$L --data "$demo/phone" init --link "$CODE" --device-name "Alice's phone" >/dev/null
kill "$(cat "$me.pid")"; rm -f "$me.pid"; sleep 0.5
DB=$(dev "$ben"); DC=$(dev "$cat")
sync_all() { $L --data "$me" sync "$BEN" --peer "$DB" >/dev/null; $L --data "$me" sync "$CAT" --peer "$DC" >/dev/null; }

$L --data "$me" send Ben "Hi Ben! Are we still on for Saturday?" >/dev/null
sync_all
$L --data "$ben" send Alice "Yes! I'll bring the map and the good coffee ☕" >/dev/null
$L --data "$ben" send Alice "Leaving at 8, if that works for you" >/dev/null
sync_all
$L --data "$me" send Ben "8 is perfect. See you then" >/dev/null
$L --data "$me" group create "Weekend trip" Ben Cat >/dev/null
$L --data "$me" send "Weekend trip" "Who has a tent for three?" >/dev/null
sync_all
$L --data "$cat" send "Weekend trip" "Mine fits three, barely 😄" >/dev/null
$L --data "$ben" send "Weekend trip" "I'll bring sleeping mats" >/dev/null
sync_all
$L --data "$me" send Cat "Thanks for the photos!" >/dev/null
sync_all
$L --data "$cat" send Alice "Anytime. The lake one is my favourite 👍 🎉 (湖 / 湖 / 호수) https://example.org/lake" >/dev/null
# Files: a photo Alice downloaded, and a video too large to download by itself.
convert -size 1200x800 gradient:'#9fd3f5-#2f6f9f' \( -size 1200x300 gradient:'#3c7a3c-#1e3d1e' \) -gravity south -composite "$demo/lake.jpg"
head -c 48000000 /dev/urandom > "$demo/trip-video.mp4"
$L --data "$cat" send Alice --file "$demo/lake.jpg" "The lake, as promised" >/dev/null
$L --data "$cat" send "Weekend trip" --file "$demo/trip-video.mp4" >/dev/null
sync_all
PHOTO=$($L --data "$me" --json file list | python3 -c "import json,sys; print([f['id'] for f in json.load(sys.stdin) if f['name']=='lake.jpg'][0])")
$L --data "$me" peer allow "$DC" --address "$CAT" >/dev/null
$L --data "$me" file get "$PHOTO" "$demo/saved-lake.jpg" --wait 30 >/dev/null
kill $(jobs -p) $(cat "$demo"/*.pid) 2>/dev/null || true; wait 2>/dev/null || true
# Someone else calling themselves Ben: Alice verifies the real one by safety number.
mal=$demo/mal
$L --data "$mal" init --name Ben >/dev/null
BS=$($L --data "$me" --json contact list | python3 -c "import json,sys; print([c['short'] for c in json.load(sys.stdin) if c['name']=='Ben'][0])")
$L --data "$me" contact add "$(inv "$mal")" >/dev/null
MS=$($L --data "$me" --json contact list | python3 -c "import json,sys; print([c['short'] for c in json.load(sys.stdin) if c['name']=='Ben' and c['short']!='$BS'][0])")
$L --data "$me" contact verify "$BS" --confirm >/dev/null

shot() { # name, app args...
  local name=$1; shift
  xvfb-run -a -s "-screen 0 1000x680x24" bash -c "$APP --data '$me' --listen 127.0.0.1:0 $* & p=\$!; sleep 4; import -window root '$out/$name.png'; kill \$p"
  echo "wrote $out/$name.png"
}
shot chat "--open $BS"
shot impostor "--open $MS"
shot group "--open 'Weekend trip'"
shot cat "--open Cat"
shot identity "--tab identity"
shot connect "--tab connect"
onboard=$(mktemp -d)
xvfb-run -a -s "-screen 0 1000x680x24" bash -c "$APP --data '$onboard' --listen 127.0.0.1:0 & p=\$!; sleep 3; import -window root '$out/onboarding.png'; kill \$p"
echo "wrote $out/onboarding.png"
rm -rf "$onboard"
