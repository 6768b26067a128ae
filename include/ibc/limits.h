// limits: every fixed size in ibc, in one place, each with the reason for its value.
// CHANGE a value here only; code uses the names. Paths longer than IBC_PATH_MAX are refused
// with an error naming them (io_join, job.c), never cut.
#ifndef IBC_LIMITS_H
#define IBC_LIMITS_H

// Longest path ibc stores: Linux's PATH_MAX, so any path the kernel accepts fits.
#define IBC_PATH_MAX 4096

// A path plus a file name inside it (folder + "/" + name): room for names up to 255 bytes
// (NAME_MAX) and the ".tmp.<pid>" suffix of io_begin.
#define IBC_PATH_NAME_MAX (IBC_PATH_MAX + 320)

// A shell command line built around one or two paths (gnuplot invocations in correlate).
#define IBC_CMD_MAX (2 * IBC_PATH_MAX + 512)

// Largest layer or head count a config.json may declare: far above any released model (64
// layers at 32B), small enough that [L] arrays are never a memory risk.
#define IBC_MAX_LAYERS 4096
#define IBC_MAX_HEADS 4096

// Largest hidden or head width (config.c lets an MLP be 64x wider) and vocabulary a config.json
// may declare, or `ibc random-checkpoint` write: 10x today's largest models, so every per-layer buffer
// stays within a few GB and int products of two sizes cannot overflow int64.
#define IBC_MAX_WIDTH 1000000
#define IBC_MAX_VOCAB (1 << 24)

// Longest line of a corpus file (a JSONL record or a text line), decompressed: far above any
// real document (C4's longest is ~100 KB), small enough that one hostile line cannot take the
// node's memory. Longer lines are an error naming the file and line.
#define IBC_LINE_MAX (64 << 20)

// Most anchor sets of one job (`[estimator] seeds`): each multiplies the estimator's work and
// every count (C, label rows) by one; 64 is far past a useful ensemble (5 to 10 give a spread).
#define IBC_MAX_SEEDS 64

// Most data folds (`[estimator] folds`): each fold is its own label index and rows, so memory
// grows with the count; split halves to 20-fold cover every use.
#define IBC_MAX_FOLDS 64

#endif
