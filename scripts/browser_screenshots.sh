#!/usr/bin/env bash
# Screenshots of one genome's tracks: igv.html in headless Chromium and the IGV session in IGV
# desktop (batch mode under Xvfb), as in docs/. Needs Debian's chromium, igv and xvfb
# (apt-get install chromium igv xvfb xauth) and the venv's python (for Pillow).
#
#   scripts/browser_screenshots.sh RESULTS GENOME MODEL LOCUS OUT_DIR [TAG]
#   scripts/browser_screenshots.sh results arabidopsis_chloroplast demo NC_000932.1:100600-102900 docs rrn16S
#
# Writes OUT_DIR/igv_html_TAG.png and OUT_DIR/igv_desktop_TAG.png (TAG defaults to the locus),
# palette PNGs with the images' 256 most frequent colours kept exact (legend swatches).
set -euo pipefail
[[ $# -eq 5 || $# -eq 6 ]] || { sed -n 2,10p "$0"; exit 2; }
results=$(realpath "$1"); genome=$2; model=$3; locus=$4; out=$(realpath "$5")
tracks="$results/tracks/$genome/$model"
fasta="$results/genomes/$genome/genome.fa.gz"
for f in "$tracks/igv.html" "$tracks/igv_session.xml" "$fasta"; do
    [[ -e $f ]] || { echo "$f: not found (run the tracks stage first)" >&2; exit 1; }
done
tag=${6:-$(echo "$locus" | tr ':-' '__')}
work=$(mktemp -d /tmp/dnafm-screenshots.XXXXXX)
python=${PYTHON:-python3}
port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$python" -m http.server -b 127.0.0.1 -d "$results" "$port" > "$work/http.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 1

# igv.html: the page waits for every track; virtual time lets it finish before the capture.
timeout 180 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/profile" \
    --virtual-time-budget=30000 --window-size=1200,1250 --hide-scrollbars \
    --screenshot="$work/igv_html.png" "http://127.0.0.1:$port/tracks/$genome/$model/igv.html?locus=$locus" \
    > "$work/chromium.log" 2>&1

# IGV desktop: its own preferences directory, the local FASTA as the default genome (no genome server).
mkdir -p "$work/home/igv"
echo "DEFAULT_GENOME_KEY=$fasta" > "$work/home/igv/prefs.properties"
cat > "$work/batch.txt" <<BATCH
genome $fasta
load $tracks/igv_session.xml
goto $locus
snapshotDirectory $work
maxPanelHeight 1200
snapshot igv_desktop.png
exit
BATCH
HOME="$work/home" timeout 300 xvfb-run -a -s "-screen 0 1200x1300x24" \
    java -Xmx2g -Duser.home="$work/home" -cp /usr/share/java/igv.jar org.broad.igv.ui.Main \
    -g "$fasta" -b "$work/batch.txt" > "$work/igv.log" 2>&1

"$python" - "$work" "$out" "$tag" <<'PY'
import sys
from pathlib import Path

import numpy as np
from PIL import Image

work, out, tag = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
for name in ("igv_html", "igv_desktop"):
    image = Image.open(work / f"{name}.png").convert("RGB")
    colours, counts = np.unique(np.asarray(image).reshape(-1, 3), axis=0, return_counts=True)
    palette = Image.new("P", (1, 1))
    palette.putpalette(colours[np.argsort(-counts)[:256]].flatten().tolist())
    target = out / f"{name}_{tag}.png"
    image.quantize(palette=palette, dither=Image.Dither.NONE).save(target, optimize=True)
    print(target)
PY
