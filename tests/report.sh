#!/usr/bin/env bash
# `ibc report`: the page validates (xmllint's HTML parser), every figure is well-formed SVG of
# non-empty size, headless Chromium renders it without console errors and with every image
# loaded at its size, its sections say what they should, and the bad inputs (results with other
# anchors, a missing folder) are one line and exit 2.
. "$(dirname "$0")/lib.bash"
if [ -z "$FX" ] || [ ! -d "$FX/hf-tiny" ]; then echo "skip report tests: fixtures folder absent"; exit 0; fi

# A "training run" (step-100 .. step-800: four hf-tiny models in the roles of its checkpoints)
# and one unrelated model, on 40 fortunes, orders 1-3.
job() { # NAME ANCHOR-LINE
  { printf '[job]\nname = %s\noutput = %s/res\n[checkpoints]\n' "$1" "$tmp"
    printf 'step-100 = %s\nstep-200 = %s\nstep-400 = %s\nstep-800 = %s\nother = %s\n' "$FX/hf-tiny/gpt2" \
      "$FX/hf-tiny/llama" "$FX/hf-tiny/qwen2" "$FX/hf-tiny/olmo2" "$FX/hf-tiny/gemma"
    printf '[corpus]\nformat = jsonl-ids\npath = %s\ndocuments = 40\n[estimator]\norders = 1,2,3\n%s\n' \
      "$FX/softh/fortunes300_stories260K.jsonl" "$2"; } >"$tmp/$1.ini"
  mpirun --oversubscribe -np 2 "$IBC" run "$tmp/$1.ini" --quiet
}
job rep "anchors = $FX/softh/anchors_d64_n100_seed0.npy"
printf 'model,loss,top1\nstep-100,4.1,0.20\nstep-200,3.5,0.26\nstep-400,3.2,0.30\nstep-800,3.3,0.29\nother,3.9,0.22\n' >"$tmp/scores.csv"

out=$("$IBC" report "$tmp/res/rep" --benchmarks "$tmp/scores.csv" --out "$tmp/r.html" 2>"$tmp/err"); st=$?
check "report writes the page and prints its path (exit $st)" '[ $st -eq 0 ] && [ "$out" = "$tmp/r.html" ] && [ -s $tmp/r.html ] && [ ! -s $tmp/err ]'
check "no temporary left beside it" '[ -z "$(ls $tmp | grep "r.html.tmp")" ]'
xmllint --html --noout "$tmp/r.html" >"$tmp/xmllint.out" 2>&1; st=$?
check "the HTML validates with xmllint --html (no message)" '[ $st -eq 0 ] && [ ! -s $tmp/xmllint.out ]'
check "self-contained: no script, no external resource" \
  '! grep -qiE "<script|<link |src=\"(http|//|file:)|url\(" $tmp/r.html'

# Every figure: a data: URI holding SVG that xmllint parses as XML, with positive width and height.
check "every figure is well-formed SVG of non-empty size, and they are all there" "$PY - '$tmp/r.html' '$tmp' <<'PY'
import base64, re, subprocess, sys
html = open(sys.argv[1]).read()
imgs = re.findall(r'<img width=\"(\d+)\" height=\"(\d+)\" alt=\"([^\"]*)\" src=\"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\"', html)
assert len(imgs) == html.count('<img'), 'an image not in the expected form'
alts = [a for w, h, a, d in imgs]
for k in (1, 2, 3): assert 'information plane, order %d' % k in alts, alts
for q in ('H', 'I_X1', 'I_Y3'): assert any(a.startswith(q + ' against depth') for a in alts), (q, alts)
assert sum(a.startswith('complexity_1 vs') for a in alts) == 1, alts
for i, (w, h, a, d) in enumerate(imgs):
    svg = base64.b64decode(d)
    assert int(w) > 0 and int(h) > 0
    m = re.search(rb'<svg [^>]*width=\"(\d+)\" height=\"(\d+)\"', svg)
    assert m and (int(m.group(1)), int(m.group(2))) == (int(w), int(h)), a
    p = sys.argv[2] + '/fig%d.svg' % i
    open(p, 'wb').write(svg)
    r = subprocess.run(['xmllint', '--noout', p], capture_output=True)
    assert r.returncode == 0 and not r.stderr, (a, r.stderr[:300])
PY"

check "sections: the manifest (or the job text without one), summary without spread, back-off, the compression phase, correlation intervals" \
  'grep -qE "<p>manifest.json:</p>|job text stored in the HDF5 file" $tmp/r.html && grep -q "No spread measured" $tmp/r.html &&
   grep -q "5. Back-off decomposition" $tmp/r.html && grep -q "run <code>step-</code>, complexity_1 peaks at" $tmp/r.html &&
   grep -q "no spread measured, so whether the fall exceeds" $tmp/r.html && grep -q "95% BCa" $tmp/r.html &&
   grep -q "<td>complexity_1</td><td>loss</td><td>5</td>" $tmp/r.html'

# The back-off numbers are differences of the summary's columns.
check "back-off: Delta I(X;Z)_2 = complexity_2 - complexity_1 for every checkpoint (to 5e-4: printed with 4 digits)" "$PY - '$tmp' <<'PY'
import csv, re, sys
d = sys.argv[1]
s = {r['checkpoint']: r for r in csv.DictReader(open(d + '/res/rep/summary.csv'))}
html = open(d + '/r.html').read()
sec = html[html.index('5. Back-off'):html.index('Where complexity peaks')]
rows = re.findall(r'<tr><td>([^<]+)</td>((?:<td>[^<]*</td>)+)</tr>', sec)
assert len(rows) == 5
for name, cells in rows:
    v = [float(c) for c in re.findall(r'<td>([^<]*)</td>', cells)]
    r = s[name]
    want = [float(r['complexity_1']), float(r['complexity_2']) - float(r['complexity_1']),
            float(r['complexity_3']) - float(r['complexity_2'])]
    assert all(abs(a - b) <= 5e-4 * max(1, abs(b)) for a, b in zip(v[:3], want)), (name, v, want)
PY"

# A real browser: headless Chromium renders the page; no console message; every image loaded
# at its size (checked by a test-only copy that writes the images' natural sizes into its title);
# the screenshot is not blank.
if ! command -v chromium >/dev/null; then echo "skip browser tests: chromium absent (scripts/install-deps.sh installs it)"; else
  chrome() { timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$(mktemp -d -p "$tmp")" \
    --enable-logging=stderr --v=0 --hide-scrollbars "$@"; }
  chrome --window-size=1200,2400 --screenshot="$tmp/r.png" "file://$tmp/r.html" 2>"$tmp/chrome.err"; st=$?
  check "chromium renders report.html to PNG (exit $st) with no console message" \
    '[ $st -eq 0 ] && [ -s $tmp/r.png ] && ! grep -qiE "CONSOLE|Uncaught|Failed to load resource" $tmp/chrome.err'
  sed 's|</body>|<script>window.onload=function(){var s=[];for(var i of document.images)s.push(i.naturalWidth+"x"+i.naturalHeight+(i.complete?"":"!"));document.title="SIZES "+s.join(" ");}</script></body>|' \
    "$tmp/r.html" >"$tmp/sizes.html"
  chrome --dump-dom "file://$tmp/sizes.html" >"$tmp/dom.html" 2>/dev/null
  check "in the browser every figure loads with non-empty size" "$PY - '$tmp' <<'PY'
import re, sys
d = sys.argv[1]
t = re.search(r'<title>SIZES ([^<]*)</title>', open(d + '/dom.html').read()).group(1).split()
want = re.findall(r'<img width=\"(\d+)\" height=\"(\d+)\"', open(d + '/r.html').read())
assert len(t) == len(want) > 10, (len(t), len(want))
assert t == ['%sx%s' % wh for wh in want], (t[:5], want[:5])
PY"
  check "the screenshot is not blank (decoded PNG rows differ)" "$PY - '$tmp/r.png' <<'PY'
import struct, sys, zlib
b = open(sys.argv[1], 'rb').read(); assert b[:8] == b'\x89PNG\r\n\x1a\n'
i, idat, w = 8, b'', 0
while i < len(b):
    n, t = struct.unpack('>I4s', b[i:i + 8])
    if t == b'IHDR': w = struct.unpack('>I', b[i + 8:i + 12])[0]
    if t == b'IDAT': idat += b[i + 8:i + 8 + n]
    i += 12 + n
raw = zlib.decompress(idat)
assert w >= 1000 and len(set(raw)) > 50, (w, len(set(raw)))
PY"
fi

# Read through summary.csv alone: the page says per-layer profiles need the HDF5 file.
mkdir -p "$tmp/csvonly" && cp "$tmp/res/rep/summary.csv" "$tmp/csvonly/"
"$IBC" report "$tmp/csvonly" --out "$tmp/c.html" >/dev/null 2>"$tmp/c.err"; st=$?
check "a folder with summary.csv only: report made, per-layer section says it needs the HDF5 file" \
  '[ $st -eq 0 ] && grep -q "Per-layer profiles need the HDF5 results file" $tmp/c.html && xmllint --html --noout $tmp/c.html'

# Spreads: a summary.csv with _sd columns (as anchor ensembles write them) is shown as mean +- sd
# and the compression verdict compares the fall with the spread.
awk -F, 'BEGIN{OFS=","} NR==1{print $0",complexity_1_sd"; next} {print $0",0.001"}' "$tmp/res/rep/summary.csv" >"$tmp/csvonly/summary.csv"
"$IBC" report "$tmp/csvonly" --out "$tmp/sd.html" >/dev/null 2>&1
check "_sd columns: shown as spreads, and the fall is judged against them" \
  'grep -q "Mean &plusmn; spread over the anchor sets" $tmp/sd.html && grep -qE "(larger|not larger) than</?[a-z]*> ?the anchor spread|: (larger|not larger) than the anchor spread" $tmp/sd.html'

# Bad input: results measured with other anchors are refused; a missing folder; one line, exit 2.
job other "seed = 7
bins = 100"
"$IBC" report "$tmp/res/rep" "$tmp/res/other" --out "$tmp/bad.html" 2>"$tmp/bad.err"; st=$?
check "results with different anchors: refused, one line naming both, exit 2, no page" \
  '[ $st -eq 2 ] && [ $(wc -l <$tmp/bad.err) -eq 1 ] && grep -q "different anchors" $tmp/bad.err && [ ! -e $tmp/bad.html ]'
"$IBC" report "$tmp/nowhere" --out "$tmp/bad2.html" 2>"$tmp/bad2.err"; st=$?
check "a missing results folder: one line, exit 2" '[ $st -eq 2 ] && [ $(wc -l <$tmp/bad2.err) -eq 1 ] && grep -q "nowhere: no such file" $tmp/bad2.err'
