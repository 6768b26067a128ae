#!/usr/bin/env bash
# `ibc correlate`: statistics against scipy/numpy (Debian's python3-scipy) to 1e-10, the real
# Open LLM Leaderboard v2 table through aliases, the outputs and plots, and bad tables.
. "$(dirname "$0")/lib.bash"
if [ -z "$FX" ] || [ ! -d "$FX/hf-tiny" ]; then echo "skip correlate tests: fixtures folder absent"; exit 0; fi

# Results for 9 checkpoints: the hf-tiny models on 120 fortunes (ids < 512 for every model).
{ printf '[job]\nname = nine\noutput = %s/res\n[checkpoints]\n' "$tmp"
  for m in gpt2 gpt_neox gpt_neox_bf16 llama llama3 qwen2 mistral_swa gemma olmo2; do echo "$m = $FX/hf-tiny/$m"; done
  printf '[corpus]\nformat = jsonl-ids\npath = %s\ndocuments = 120\n[estimator]\nanchors = %s\n' \
    "$FX/softh/fortunes300_stories260K.jsonl" "$FX/softh/anchors_d64_n100_seed0.npy"; } >"$tmp/nine.ini"
mpirun --oversubscribe -np 2 "$IBC" run "$tmp/nine.ini" --quiet

# A table in the real form: quoted names, a text column, blanks/NaN/-, a duplicate row.
cat >"$tmp/bench.csv" <<'CSV'
rank,model,notes,IFEval,BBH,MATH
1,"gpt2","a, quoted",31.5,22.1,3.2
2,gpt_neox,x,28.0,NaN,2.9
3,gpt_neox_bf16,x,27.5,20.4,-
4,llama,x,40.2,30.3,8.8
5,llama3,x,45.1,35.5,12.0
6,qwen2,x,44.0,,11.1
7,mistral_swa,x,39.9,29.0,7.5
8,gemma,x,38.7,28.8,6.9
9,olmo2,x,42.2,31.9,9.9
10,olmo2,again,99,99,99
11,someone-else,x,50,50,50
CSV
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --covariates log_params --out "$tmp/c" 2>"$tmp/err"; st=$?
check "correlate runs (exit $st)" '[ $st -eq 0 ]'
check "outputs: correlations.csv, regression.csv, partial.csv, correlations.md with the documented headers" \
  '[ "$(head -1 $tmp/c/correlations.csv)" = "metric,benchmark,n,spearman_rho,spearman_p,pearson_r,pearson_p,spearman_ci_lo,spearman_ci_hi,spearman_bca_lo,spearman_bca_hi,spearman_perm_p,pearson_ci_lo,pearson_ci_hi,pearson_bca_lo,pearson_bca_hi,pearson_perm_p" ] && [ "$(head -1 $tmp/c/regression.csv)" = "metric,benchmark,covariates,n,term,coef,se,t,p,r2,adj_r2,loo_r2" ] && [ -s $tmp/c/partial.csv ] && grep -q "^| metric | benchmark | r | p | n |" $tmp/c/correlations.md'
check "duplicates: the first row wins (olmo2 IFEval 42.2)" '[ "$(awk -F, "\$1==\"olmo2\" {print (\$18 == 42.2)}" $tmp/c/matched.csv)" = 1 ]'
check "missing values drop a model from that benchmark only (BBH n = 7, MATH n = 8)" \
  'grep -q "^optimality_1,BBH,7," $tmp/c/correlations.csv && grep -q "^optimality_1,MATH,8," $tmp/c/correlations.csv && grep -q "^optimality_1,IFEval,9," $tmp/c/correlations.csv'
check "the mean benchmark needs every column: n = 6" 'grep -q "^optimality_1,mean,6," $tmp/c/correlations.csv'
check "the text column and rank are not benchmarks" '! grep -qE ",(notes|rank)," $tmp/c/correlations.csv'
check "plots: information plane and metric-vs-benchmark, PNG and SVG" \
  '[ -s $tmp/c/plots/information_plane_k1.png ] && [ -s $tmp/c/plots/information_plane_k1.svg ] && [ -s $tmp/c/plots/optimality_1__mean.png ] && [ -s $tmp/c/plots/optimality_1__IFEval.svg ]'
check "unmatched names listed" '[ ! -s $tmp/c/unmatched.txt ]'

check "every statistic equals scipy/numpy to 1e-10 (LOO R^2: times 1 / (1 - its largest leverage))" "$PY - '$tmp/c' <<'PY'
import csv, math, sys
import numpy as np
from scipy import stats
d = sys.argv[1]
m = list(csv.DictReader(open(d + '/matched.csv')))
def col(r, k):
    v = r[k]; return float(v) if v != '' else math.nan
def close(a, b, what, tol=1e-10):
    a, b = float(a), float(b)
    assert abs(a - b) <= tol * max(1, abs(b)), (what, a, b)
checked = 0
for row in csv.DictReader(open(d + '/correlations.csv')):
    pts = [(col(r, row['metric']), col(r, row['benchmark']), int(r['params'])) for r in m]
    pts = [p for p in pts if not math.isnan(p[0]) and not math.isnan(p[1])]
    x = np.array([p[0] for p in pts]); y = np.array([p[1] for p in pts])
    assert len(x) == int(row['n'])
    r, p = stats.pearsonr(x, y); rho, ps = stats.spearmanr(x, y)
    for a, b, w in ((row['pearson_r'], r, 'r'), (row['pearson_p'], p, 'p'), (row['spearman_rho'], rho, 'rho'), (row['spearman_p'], ps, 'ps')):
        close(a, b, (row['metric'], row['benchmark'], w))
    checked += 1
regs = {}
for row in csv.DictReader(open(d + '/regression.csv')):
    regs.setdefault((row['metric'], row['benchmark']), []).append(row)
for (met, ben), rows in regs.items():
    pts = [(col(r, met), col(r, ben), math.log10(int(r['params']))) for r in m]
    pts = [p for p in pts if not math.isnan(p[0]) and not math.isnan(p[1])]
    X = np.column_stack([np.ones(len(pts)), [p[0] for p in pts], [p[2] for p in pts]]); y = np.array([p[1] for p in pts])
    n, k = X.shape
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    res = y - X @ beta; s2 = res @ res / (n - k)
    inv = np.linalg.inv(X.T @ X); se = np.sqrt(s2 * np.diag(inv))
    t = beta / se; p = 2 * stats.t.sf(np.abs(t), n - k)
    sst = ((y - y.mean()) ** 2).sum(); r2 = 1 - (res @ res) / sst
    h = np.einsum('ij,jk,ik->i', X, inv, X); loo = 1 - ((res / (1 - h)) ** 2).sum() / sst
    # LOO divides each residual by 1 - h_i, so the rounding of a leverage near 1 grows by
    # 1 / (1 - h_i): numpy's own two ways to h (inv(X'X), QR) differ by 6.5e-11 relative in
    # LOO R^2 at one of these regressions (h 0.963), so its tolerance scales by that factor.
    loo_tol = 1e-10 * max(1.0, 1 / (1 - h.max()))
    for j, row in enumerate(rows):
        for a, b, tol in ((row['coef'], beta[j], 1e-10), (row['se'], se[j], 1e-10), (row['t'], t[j], 1e-10),
                          (row['p'], p[j], 1e-10), (row['r2'], r2, 1e-10),
                          (row['adj_r2'], 1 - (1 - r2) * (n - 1) / (n - k), 1e-10), (row['loo_r2'], loo, loo_tol)):
            close(a, b, (met, ben, row['term']), tol)
for row in csv.DictReader(open(d + '/partial.csv')):
    pts = [(col(r, row['metric']), col(r, row['benchmark']), math.log10(int(r['params']))) for r in m]
    pts = [p for p in pts if not math.isnan(p[0]) and not math.isnan(p[1])]
    Z = np.column_stack([np.ones(len(pts)), [p[2] for p in pts]])
    def resid(v): return v - Z @ np.linalg.lstsq(Z, v, rcond=None)[0]
    rx = resid(np.array([p[0] for p in pts])); ry = resid(np.array([p[1] for p in pts]))
    r = np.corrcoef(rx, ry)[0, 1]; df = len(pts) - 3
    close(row['partial_r'], r, 'partial'); close(row['p'], 2 * stats.t.sf(abs(r * math.sqrt(df / (1 - r * r))), df), 'partial p')
assert checked > 50
PY"

# Intervals and permutation p-values against scipy 1.10's bootstrap and permutation_test.
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --out "$tmp/rs" --no-plots --dump-resamples 2>/dev/null
check "resamples: 10,000 bootstrap index sets per n, permutations where n! > 10,000, exact enumeration below" \
  '[ $(grep -c "^boot,9," $tmp/rs/resamples.csv) -eq 10000 ] && [ $(grep -c "^perm,9," $tmp/rs/resamples.csv) -eq 10000 ] && [ $(grep -c "^perm,6," $tmp/rs/resamples.csv) -eq 0 ]'
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --out "$tmp/rs2" --no-plots 2>/dev/null
check "the same seed gives the same intervals" 'cmp -s $tmp/rs/correlations.csv $tmp/rs2/correlations.csv'
# Tolerances: on the same index sets (exported above), the percentile and BCa intervals and the
# sampled permutation p equal scipy's own code to 1e-9 (only summation order differs: ~1e-15 in
# each resampled r, amplified by the BCa level's derivative); scipy's BCa is fed the same
# resampled values with ibc's two documented differences applied (stats.h: the tie snap ST_TIE,
# resamples without variance left out). Where n! <= 10,000
# both enumerate every permutation: permutation_test itself, to 1e-12. Where they sample, each
# with its own generator: scipy's permutation_test to 6 Monte-Carlo standard errors.
check "bootstrap percentile and BCa intervals, permutation p: equal scipy on the same resamples" "$PY - '$tmp/rs' <<'PY'
import csv, math, sys
import numpy as np
from scipy import stats
from scipy.stats._resampling import _bca_interval
d = sys.argv[1]
m = list(csv.DictReader(open(d + '/matched.csv')))
plans = {}
for row in csv.DictReader(open(d + '/resamples.csv')):
    plans.setdefault((row['kind'], int(row['n'])), []).append([int(v) for v in row['indices'].split()])
plans = {k: np.array(v) for k, v in plans.items()}
def pear(a, b, axis=-1):
    a = a - a.mean(axis=axis, keepdims=True); b = b - b.mean(axis=axis, keepdims=True)
    return np.clip((a * b).sum(axis) / np.sqrt((a * a).sum(axis) * (b * b).sum(axis)), -1, 1)
def rank(a):  # average ranks along the last axis, vectorised (rankdata's axis= loops in Python)
    a = np.moveaxis(a, -1, -1)
    lt = (a[..., None, :] < a[..., :, None]).sum(-1); eq = (a[..., None, :] == a[..., :, None]).sum(-1)
    return lt + (eq + 1) / 2
def spear(a, b, axis=-1):
    assert axis == -1
    return pear(rank(a), rank(b), axis)
np.seterr(invalid='ignore')  # a degenerate resample (no variance) gives NaN, as in scipy
def close(a, b, tol, what):
    assert (math.isnan(b) and a == '') or abs(float(a) - b) <= tol, (what, a, b)
rows = exact = sampled = 0
for row in csv.DictReader(open(d + '/correlations.csv')):
    pts = [(r[row['metric']], r[row['benchmark']]) for r in m if r[row['metric']] != '' and r[row['benchmark']] != '']
    x = np.array([float(a) for a, b in pts]); y = np.array([float(b) for a, b in pts]); n = len(x)
    boot = plans[('boot', n)]; assert boot.shape == (10000, n)
    for name, f in (('spearman', spear), ('pearson', pear)):
        th = f(x, y)
        tb = f(x[boot], y[boot])
        tb[np.abs(tb - th) <= 1e-12] = th
        tb = tb[~np.isnan(tb)]  # stats.h: over the resamples where r is defined
        lo, hi = np.percentile(tb, [2.5, 97.5])
        close(row[name + '_ci_lo'], lo, 1e-9, (row['metric'], name)); close(row[name + '_ci_hi'], hi, 1e-9, name)
        stat_idx = lambda i, axis=-1: f(x[i], y[i], axis)
        a1, a2, _ = _bca_interval((np.arange(n),), stat_idx, axis=-1, alpha=0.025, theta_hat_b=tb, batch=None)
        close(row[name + '_bca_lo'], np.percentile(tb, a1 * 100), 1e-9, (row['metric'], row['benchmark'], name, 'bca'))
        close(row[name + '_bca_hi'], np.percentile(tb, a2 * 100), 1e-9, (row['metric'], row['benchmark'], name, 'bca'))
        got = float(row[name + '_perm_p'])
        if math.factorial(n) <= 10000:
            res = stats.permutation_test((x,), lambda u, axis=-1: f(u, y, axis), permutation_type='pairings', n_resamples=10000)
            close(row[name + '_perm_p'], res.pvalue, 1e-12, (row['metric'], row['benchmark'], name, 'exact')); exact += 1
        else:
            perm = plans[('perm', n)]; null = f(x[perm], y[None, :].repeat(len(perm), 0)); g = max(1e-14, abs(1e-14 * th))
            p = min(1, 2 * min(((null <= th + g).sum() + 1) / 10001, ((null >= th - g).sum() + 1) / 10001))
            close(row[name + '_perm_p'], p, 1e-12, (row['metric'], name, 'replay'))
            if rows < 12:
                res = stats.permutation_test((x,), lambda u, axis=-1: f(u, y, axis), permutation_type='pairings', n_resamples=10000,
                                             vectorized=True, random_state=1)
                q = (got + res.pvalue) / 2
                assert abs(got - res.pvalue) <= 6 * 2 * math.sqrt(max(q * (1 - q), 1e-4) / 10000) + 4e-4, (row['metric'], name, got, res.pvalue)
            sampled += 1
    rows += 1
assert rows > 30 and exact > 0 and sampled > 0, (rows, exact, sampled)
PY"

"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --per-layer --out "$tmp/pl" --no-plots 2>/dev/null
check "--per-layer: per-layer metrics (I_X1@2 ...) next to the summary ones" \
  'grep -q "^I_X1@2,IFEval,9," $tmp/pl/correlations.csv && grep -q "^H@0,mean,6," $tmp/pl/correlations.csv && grep -q "^optimality_1,IFEval,9," $tmp/pl/correlations.csv'

# Spearman ties by average rank: a table where every score repeats.
sed 's/,\(3[0-9]\|4[0-9]\)\.[0-9],/,40.0,/' "$tmp/bench.csv" >"$tmp/ties.csv"
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/ties.csv" --out "$tmp/t" --no-plots 2>/dev/null
check "ties: spearman by average ranks equals scipy" "$PY - '$tmp/t' <<'PY'
import csv, sys, math
from scipy import stats
d = sys.argv[1]; m = list(csv.DictReader(open(d + '/matched.csv')))
for row in csv.DictReader(open(d + '/correlations.csv')):
    pts = [(r[row['metric']], r[row['benchmark']]) for r in m if r[row['metric']] != '' and r[row['benchmark']] != '']
    rho, p = stats.spearmanr([float(a) for a, b in pts], [float(b) for a, b in pts])
    if math.isnan(rho): continue
    assert abs(float(row['spearman_rho']) - rho) <= 1e-10 and abs(float(row['spearman_p']) - p) <= 1e-10
PY"

# The real Open LLM Leaderboard v2 (4,576 models) through an alias file.
printf 'gpt2,openai-community/gpt2\ngpt_neox,EleutherAI/pythia-160m\nllama,meta-llama/Meta-Llama-3-8B\nllama3,meta-llama/Meta-Llama-3-8B-Instruct\nqwen2,Qwen/Qwen2-7B\ngemma,google/gemma-7b\nolmo2,allenai/OLMo-2-1124-7B\n' >"$tmp/aliases.csv"
"$IBC" correlate "$tmp/res/nine" --benchmarks "$FX/benchmarks/open_llm_leaderboard_v2.csv" --aliases "$tmp/aliases.csv" --out "$tmp/v2" --no-plots 2>"$tmp/v2.err"; st=$?
n=$(($(wc -l <"$tmp/v2/matched.csv") - 1))
check "real leaderboard v2 through aliases: $n matched, six benchmarks and mean, unmatched listed" \
  '[ $st -eq 0 ] && [ $n -ge 5 ] && [ $(cut -d, -f2 $tmp/v2/correlations.csv | sort -u | grep -cE "^(IFEval|BBH|MATH_Lvl5|GPQA|MUSR|MMLU_PRO|mean)$") -eq 7 ] && grep -q "unmatched: mistral_swa" $tmp/v2.err'
"$IBC" correlate "$tmp/res/nine" --benchmarks "$FX/benchmarks/open_llm_leaderboard_v1_20230904.csv" --name-column Model --out "$tmp/v1" --no-plots 2>"$tmp/v1.err"; st=$?
check "leaderboard v1 (BOM, URL column): parsed, and too few matches is exit 2 naming the file" '[ $st -eq 2 ] && grep -q "v1_20230904.csv: only 1 of 9 checkpoints matched" $tmp/v1.err'
"$IBC" correlate "$tmp/res/nine" --benchmarks "$FX/benchmarks/pythia_evals.csv" --name-column model,step --duplicates mean --out "$tmp/py" --no-plots 2>"$tmp/py.err"; st=$?
check "pythia evals: name columns model,step read (no match here: exit 2)" '[ $st -eq 2 ] && grep -q "only 0 of 9" $tmp/py.err'

# Bad tables: file, line and column; exit 2.
bad() { # NAME CSV-TEXT EXPECTED-MESSAGE [ARGS]
  printf "$2" >"$tmp/$1.csv"
  want=$3 errf=$tmp/$1.err
  "$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/$1.csv" --out "$tmp/b" --no-plots "${@:4}" 2>"$errf"; st=$?
  check "bad table $1: exit 2, '$3'" '[ $st -eq 2 ] && grep -qF "$want" $errf && [ $(grep -vc "^ibc: unmatched:" $errf) -eq 1 ]'
}
bad ragged 'model,a\ngpt2,1\nllama,2,3\n' "ragged.csv:3: 3 fields, the header has 2"
bad text 'model,a\ngpt2,1\nllama,oops\n' "text.csv:3: column a: oops is not a number"
bad noname 'name,a\ngpt2,1\n' "noname.csv:1: no name column model in the header"
bad empty '' "empty.csv: empty file"
bad dup 'model,a\ngpt2,1\ngpt2,2\n' "dup.csv:3: model gpt2 appears again" --duplicates error
bad few 'model,a\ngpt2,1\nllama,2\n' "few.csv: only 2 of 9 checkpoints matched a row (need 3)"

# All or nothing (issue 11): a target in the way stops the whole set before anything is renamed;
# no .tmp is left and the previous set is unchanged. (Tests run as root, so the obstacles are
# a regular FILE where the plots folder goes, and a folder where matched.csv goes, not modes.)
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --out "$tmp/aon" --no-plots 2>/dev/null
(cd "$tmp/aon" && md5sum * >"$tmp/aon.md5")
: >"$tmp/aon/plots"
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --covariates log_params --out "$tmp/aon" 2>"$tmp/aon.err"; st=$?
check "a file where plots/ goes: exit 2, one line, no .tmp, no partial.csv, the previous set unchanged" \
  '[ $st -eq 2 ] && [ $(wc -l <$tmp/aon.err) -eq 1 ] && grep -q "aon/plots: cannot create the plots folder" $tmp/aon.err &&
   [ -z "$(ls -A $tmp/aon | grep -E "tmp")" ] && [ ! -e $tmp/aon/partial.csv ] && (cd $tmp/aon && md5sum -c --quiet $tmp/aon.md5)'
rm "$tmp/aon/plots" "$tmp/aon/matched.csv" && mkdir -p "$tmp/aon/matched.csv/x"
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --out "$tmp/aon" --no-plots --seed 5 2>"$tmp/aon.err"; st=$?
check "a folder where matched.csv goes: exit 2, no .tmp, correlations.csv not replaced" \
  '[ $st -eq 2 ] && grep -q "matched.csv: in the way" $tmp/aon.err && [ -z "$(ls -A $tmp/aon | grep -E "tmp")" ] &&
   [ "$(md5sum <$tmp/aon/correlations.csv | cut -c1-32)" = "$(grep " correlations.csv$" $tmp/aon.md5 | cut -c1-32)" ]'
: >"$tmp/notdir"
"$IBC" correlate "$tmp/res/nine" --benchmarks "$tmp/bench.csv" --out "$tmp/notdir/x" --no-plots 2>"$tmp/nd.err"; st=$?
check "an output folder whose parent is a regular file: exit 2 (1 where io_mkdirs calls it a system error), one line naming it" \
  '[ $st -eq 2 -o $st -eq 1 ] && [ $(wc -l <$tmp/nd.err) -eq 1 ] && grep -q "notdir/x: cannot create folder" $tmp/nd.err'

# A results folder with summary.csv and no HDF5 file is read through summary.csv (issue 11);
# what needs per-layer values or parameter counts says it needs the HDF5 file, in one line.
mkdir -p "$tmp/csvonly" && cp "$tmp/res/nine/summary.csv" "$tmp/csvonly/"
"$IBC" correlate "$tmp/csvonly" --benchmarks "$tmp/bench.csv" --out "$tmp/co" --no-plots 2>/dev/null; st=$?
check "summary.csv only: the same correlations as from the HDF5 file (to 1e-12: both %.17g)" \
  "[ $st -eq 0 ] && $PY - '$tmp/co/correlations.csv' '$tmp/c/correlations.csv' <<'PY'
import csv, sys
a = list(csv.DictReader(open(sys.argv[1]))); b = {(r['metric'], r['benchmark']): r for r in csv.DictReader(open(sys.argv[2]))}
assert len(a) == len(b)
for r in a:
    for k, v in r.items():
        w = b[(r['metric'], r['benchmark'])][k]
        assert v == w or abs(float(v) - float(w)) <= 1e-12, (r['metric'], k, v, w)
PY"
for a in --per-layer "--covariates log_params"; do
  "$IBC" correlate "$tmp/csvonly" --benchmarks "$tmp/bench.csv" --out "$tmp/co2" --no-plots $a 2>"$tmp/co2.err"; st=$?
  check "summary.csv only with $a: one line saying it needs the HDF5 file, exit 2, nothing written" \
    '[ $st -eq 2 ] && [ $(wc -l <$tmp/co2.err) -eq 1 ] && grep -q "needs the HDF5 results file" $tmp/co2.err && [ ! -e $tmp/co2 ]'
done
