#!/usr/bin/env bash
# A real client reads the results: h5py (Debian's python3-h5py) opens the HDF5 file of a job with
# a complete and a failed checkpoint and checks every group, dataset and attribute docs/results.md
# lists (names, types, shapes), that the file holds nothing else, that its numbers equal
# summary.csv / layers.csv (exactly: both are written from the same doubles, the CSVs with 17
# significant digits, which round-trip), and that /run/manifest equals manifest.json.
. "$(dirname "$0")/lib.bash"
if ! $PY -c "import h5py" 2>/dev/null; then echo "skip h5py: python3-h5py is not installed (scripts/install-deps.sh)"; exit 0; fi

"$IBC" random-checkpoint "$tmp/m" --d 16 --layers 2 --heads 2 --kv-heads 1 --ff 32 --vocab 512
$PY - "$tmp" <<'PY'
import json, random, sys
random.seed(5)
with open(sys.argv[1] + "/ids.jsonl", "w") as f:
    for _ in range(30): f.write(json.dumps({"ids": [random.randrange(512) for _ in range(random.randrange(8, 40))]}) + "\n")
PY
printf '[job]\nname = h\noutput = %s/out\non_error = skip\n[checkpoints]\nm = %s/m\nmissing = %s/nothing-here\n[corpus]\nformat = jsonl-ids\npath = %s/ids.jsonl\ndocuments = 20\nseed = 2\n[estimator]\norders = 1,2,3\n' \
  "$tmp" "$tmp" "$tmp" "$tmp" >"$tmp/h.ini"
"$IBC" run "$tmp/h.ini" --quiet 2>"$tmp/h.err"
check "the job ran (a complete and a failed checkpoint)" '[ -f $tmp/out/h/h.h5 ] && grep -q "failed to load" $tmp/h.err'

$PY - "$tmp/out/h" docs/results.md >"$tmp/py.out" 2>&1 <<'PY'
import csv, json, math, sys
import h5py, numpy as np
d, doc = sys.argv[1], open(sys.argv[2]).read()
f = h5py.File(d + "/h.h5", "r")
seen = set()
def ok(name, cond):
    print(("ok " if cond else "not ok ") + name)
def attr(obj, name, kind, shape=()):
    seen.add(obj.name + "@" + name)
    a = obj.attrs.get(name)
    good = a is not None
    if good and kind == "str": good = isinstance(a, (bytes, str))
    elif good: good = np.asarray(a).dtype.kind == kind and np.asarray(a).shape == shape
    ok("attribute %s/%s (%s%s)" % (obj.name, name, kind, list(shape) if shape else ""), good and ("`" + name + "`" in doc or name in doc))
    return a
def ds(obj, name, dtype, shape, doc_name=None):
    seen.add(obj.name + "/" + name)
    x = obj.get(name)
    good = isinstance(x, h5py.Dataset) and (dtype == "str" or (x.dtype == np.dtype(dtype) and x.shape == shape))
    ok("dataset %s/%s (%s %s)" % (obj.name, name, dtype, list(shape)), good and (doc_name or name) in doc)
    return x[()] if good else None
def s(x): return x.decode() if isinstance(x, bytes) else x

run = f["run"]; seen.add("/run")
attr(run, "version", "str"); attr(run, "git_revision", "str")
job = s(ds(run, "job", "str", ()))
ok("/run/job is the job file's text", job == open(d + "/../../h.ini").read())
man = s(ds(run, "manifest", "str", ()))
mj = json.load(open(d + "/manifest.json"))
ok("/run/manifest equals manifest.json", json.loads(man) == mj)
for key in ["ibc_version", "git_revision", "job_file", "job_text", "inputs", "documents", "checkpoints", "tokenizer", "anchors", "temperature", "special_tokens"]:
    ok("manifest key %s present and documented" % key, key in mj and ("`%s`" % key in doc or "`%s[]`" % key in doc))
ok("manifest: 20 of 30 documents, their numbers", mj["documents"]["kept"] == 20 and mj["documents"]["total"] == 30 and len(mj["documents"]["indices"]) == 20)

seen.add("/anchors")
an = f["anchors"]
ok("/anchors holds one width", list(an.keys()) == ["d16"])
W = ds(an, "d16", "<f4", (100, 16), "/anchors/d<D>")
eps = attr(an["d16"], "eps", "f")
ok("anchors rows have unit norm", W is not None and np.allclose(np.linalg.norm(W, axis=1), 1, atol=1e-5))
ok("anchors eps equals the manifest's temperature", float(eps) == mj["checkpoints"][0]["temperature"])

seen.add("/checkpoints")
cp = f["checkpoints"]
ok("/checkpoints holds both", sorted(cp.keys()) == ["m", "missing"])
bad = cp["missing"]; seen.add(bad.name)
attr(bad, "index", "i"); attr(bad, "status", "str"); err = attr(bad, "error", "str")
ok("failed checkpoint: status failed, error names the folder", s(bad.attrs["status"]) == "failed" and "nothing-here" in s(err) and len(bad.attrs) == 3 and len(bad) == 0)
g = cp["m"]; seen.add(g.name)
ok("complete checkpoint: index 0, status complete", int(g.attrs["index"]) == 0 and s(g.attrs["status"]) == "complete")
attr(g, "index", "i"); attr(g, "status", "str"); attr(g, "arch", "str")
for a in ["params", "n_documents", "n_skipped", "N"]: attr(g, a, "i")
for a in ["d", "L"]: attr(g, a, "i")
for a in ["eps", "H_mean", "pref_info"]: attr(g, a, "f")
for a in ["rows_max", "sent_max"]: attr(g, a, "i") # row balance across ranks (docs/results.md)
for a in ["rows_mean", "sent_mean", "imbalance"]: attr(g, a, "f")
for a in ["complexity", "expressivity", "optimality"]: attr(g, a, "f", (4,))
S = int(g.attrs["L"]) + 1
layers = ds(g, "layers", "<i4", (S,)); H = ds(g, "H", "<f8", (S,))
IX = ds(g, "I_X", "<f8", (4, S)); IY = ds(g, "I_Y", "<f8", (4, S)); IP = ds(g, "I_pref", "<f8", (S,))
ok("layers 0..L, orders 4 NaN, I_pref NaN", list(layers) == list(range(S)) and np.isnan(IX[3]).all() and np.isnan(IP).all() and not np.isnan(IX[:3]).any())

def num(x): return float("nan") if x == "" else float(x)
rows = list(csv.DictReader(open(d + "/layers.csv")))
same = len(rows) == S
for r, l in zip(rows, range(S)):
    same &= num(r["H"]) == H[l] and int(r["n_positions"]) == int(g.attrs["N"])
    for k in range(1, 4): same &= num(r["I_X%d" % k]) == IX[k - 1, l] and num(r["I_Y%d" % k]) == IY[k - 1, l]
ok("layers.csv equals the HDF5 datasets, bit for bit", same)
sm = list(csv.DictReader(open(d + "/summary.csv")))
ok("summary.csv equals the HDF5 attributes, bit for bit", len(sm) == 1 and num(sm[0]["H_mean"]) == g.attrs["H_mean"] and
   all(num(sm[0]["complexity_%d" % k]) == g.attrs["complexity"][k - 1] and num(sm[0]["expressivity_%d" % k]) == g.attrs["expressivity"][k - 1] for k in range(1, 4)) and
   int(sm[0]["n_documents"]) == int(g.attrs["n_documents"]))

found = set()
def walk(name, obj):
    found.add(obj.name)
    for a in obj.attrs: found.add(obj.name + "@" + a)
f.visititems(walk)
for a in f["/"].attrs: found.add("/@" + a)
for a in run.attrs: found.add("/run@" + a)
extra = sorted(found - seen)
ok("the file holds nothing docs/results.md does not list" + (": " + ", ".join(extra) if extra else ""), not extra)
PY
cat "$tmp/py.out"
if grep -q "^Traceback" "$tmp/py.out"; then echo "not ok the h5py check ran to its end"; fi

# An anchor ensemble with data folds: the per-set datasets, their spreads, the folds' summaries
# and standard errors, each documented, equal to the CSVs' `_sd` / `_se` columns bit for bit.
sed -e 's/^orders = 1,2,3$/orders = 1,2,3\nseeds = 0,1,2\nfolds = 2/' -e 's/^name = h$/name = e/' -e '/^missing = /d' "$tmp/h.ini" >"$tmp/e.ini"
"$IBC" run "$tmp/e.ini" --quiet 2>"$tmp/e.err"
check "the ensemble job ran" '[ -f $tmp/out/e/e.h5 ]'
$PY - "$tmp/out/e" docs/results.md >"$tmp/pye.out" 2>&1 <<'PY'
import csv, sys
import h5py, numpy as np
d, doc = sys.argv[1], open(sys.argv[2]).read()
f = h5py.File(d + "/e.h5", "r")
def ok(name, cond): print(("ok " if cond else "not ok ") + name)
an = f["anchors"]
ok("ensemble: /anchors d16, d16_seed1, d16_seed2 (each [100, 16], eps) and attribute seeds, documented",
   sorted(an.keys()) == ["d16", "d16_seed1", "d16_seed2"] and all(an[k].shape == (100, 16) and "eps" in an[k].attrs for k in an) and
   list(an.attrs["seeds"]) == [0, 1, 2] and "/anchors/d<D>_seed<S>" in doc and "`seeds`" in doc)
g = f["checkpoints/m"]; S = int(g.attrs["L"]) + 1
shapes = {"H_seeds": (3, S), "I_X_seeds": (3, 4, S), "I_Y_seeds": (3, 4, S), "I_pref_seeds": (3, S), "summary_seeds": (3, 14),
          "H_sd": (S,), "I_X_sd": (4, S), "I_Y_sd": (4, S), "I_pref_sd": (S,), "summary_sd": (14,), "summary_folds": (2, 14), "summary_se": (14,)}
for name, shape in shapes.items():
    ok("ensemble dataset %s f64 %s, documented" % (name, list(shape)), g[name].dtype == np.float64 and g[name].shape == shape and name in doc)
extra = sorted(set(g.keys()) - set(shapes) - {"layers", "H", "I_X", "I_Y", "I_pref"})
ok("ensemble: nothing else in the checkpoint group" + (": " + ", ".join(extra) if extra else ""), not extra)
close = lambda a, b: np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)
Hs, IXs = g["H_seeds"][()], g["I_X_seeds"][()]
ok("ensemble: H and I_X are the means over the sets, H_sd and I_X_sd their sample sd",
   close(g["H"][()], Hs.mean(0)) and close(g["I_X"][()], IXs.mean(0)) and close(g["H_sd"][()], Hs.std(0, ddof=1)) and close(g["I_X_sd"][()], IXs.std(0, ddof=1)))
ok("ensemble: complexity is the mean of the sets' summaries; summary_sd their sd",
   close(g.attrs["complexity"], g["summary_seeds"][:, 1:5].mean(0)) and close(g["summary_sd"][()], g["summary_seeds"][()].std(0, ddof=1)))
ok("folds: summary_se = sd(summary_folds) / sqrt(2)", close(g["summary_se"][()], g["summary_folds"][()].std(0, ddof=1) / np.sqrt(2)))
num = lambda x: float("nan") if x == "" else float(x)
same = lambda a, b: (np.isnan(a) and np.isnan(b)) or a == b
rows = list(csv.DictReader(open(d + "/layers.csv")))
ok("layers.csv's _sd columns equal H_sd, I_X_sd bit for bit", len(rows) == S and all(
    same(num(r["H_sd"]), g["H_sd"][l]) and all(same(num(r["I_X%d_sd" % k]), g["I_X_sd"][k - 1, l]) for k in range(1, 5)) for l, r in enumerate(rows)))
names = ["H_mean"] + ["%s_%d" % (m, k) for m in ("complexity", "expressivity", "optimality") for k in range(1, 5)] + ["pref_info"]
sm = list(csv.DictReader(open(d + "/summary.csv")))[0]
ok("summary.csv's _sd and _se columns equal summary_sd and summary_se bit for bit, imbalance last",
   all(same(num(sm[n + "_sd"]), g["summary_sd"][i]) and same(num(sm[n + "_se"]), g["summary_se"][i]) for i, n in enumerate(names)) and
   list(sm.keys())[-1] == "imbalance")
PY
cat "$tmp/pye.out"
if grep -q "^Traceback" "$tmp/pye.out"; then echo "not ok the ensemble h5py check ran to its end"; fi
