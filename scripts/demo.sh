#!/usr/bin/env bash
# The embedded default (issue 7): train a small model on Debian's fortunes, run the job over
# its checkpoints, correlate with their scores. Not built yet: say so rather than pretend.
echo "make demo: the embedded default pipeline (ibc train, ibc run, ibc correlate) is not implemented yet." >&2
echo "Available now: bin/ibc inspect DIR, bin/ibc hidden DIR --ids ... --out FILE.npy" >&2
exit 1
