#!/usr/bin/env bash
# `ibc train` end to end on Debian's fortunes (installed by make deps), briefly: the outputs
# a job and ibc correlate need, and checkpoints that ibc's HF loader reads.
. "$(dirname "$0")/lib.bash"
if [ ! -d /usr/share/games/fortunes ]; then echo "skip ibc train: Debian's fortunes package is not installed"; exit 0; fi
"$IBC" train --out "$tmp/t" --steps 16 --quiet; st=$?
check "ibc train --steps 16 finishes" '[ $st -eq 0 ]'
check "scores.csv in the form of a benchmark table, one row per checkpoint (steps 0 and 16)" \
  '[ "$(head -1 $tmp/t/scores.csv)" = "model,loss,top1,cloze" ] && [ "$(cut -d, -f1 $tmp/t/scores.csv | tail -n +2 | tr "\n" " ")" = "step-00000 step-00016 " ]'
check "the held-out loss falls from step 0 to step 16" '[ "$(awk -F, "NR==2 {a=\$2} NR==3 {b=\$2} END {print (b < a)}" $tmp/t/scores.csv)" = 1 ]'
check "checkpoints are HF folders with config.json, model.safetensors, tokenizer.json" \
  '"$IBC" inspect $tmp/t/step-00016 | grep -q "architecture llama" && [ -s $tmp/t/step-00016/tokenizer.json ]'
check "checkpoints.txt and heldout.txt for the job" '[ $(wc -l <$tmp/t/checkpoints.txt) -eq 2 ] && grep -qx "%" $tmp/t/heldout.txt'
"$IBC" train --out "$tmp/x" --corpus /nonexistent 2>"$tmp/err"; st=$?
check "a missing fortunes folder: exit 2 naming it" '[ $st -eq 2 ] && grep -q "/nonexistent" $tmp/err'
