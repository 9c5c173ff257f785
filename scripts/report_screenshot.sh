#!/usr/bin/env bash
# Renders an experiment's report.html in a real headless browser (Debian's chromium) and saves a
# screenshot: checks that the self-contained page renders, and gives a PNG for docs.
#   scripts/report_screenshot.sh RUN_DIR OUT.png [HEIGHT]
set -euo pipefail
run=${1:?usage: report_screenshot.sh RUN_DIR OUT.png [HEIGHT]}
out=${2:?usage: report_screenshot.sh RUN_DIR OUT.png [HEIGHT]}
height=${3:-2600}
html="$(cd "$run" && pwd)/report.html"
[ -f "$html" ] || { echo "report_screenshot.sh: no $html (run \`mmkd report $run\` first)" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
    echo "installing chromium (Debian) for the headless render" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    browser=$(command -v chromium)
fi
mkdir -p "$(dirname "$out")"
tmp="$out.tmp.png"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1240,"$height" \
    --screenshot="$tmp" "file://$html" 2>/dev/null
[ -s "$tmp" ] || { echo "report_screenshot.sh: chromium wrote no screenshot" >&2; exit 1; }
mv "$tmp" "$out"
echo "screenshot of $html → $out"
