// err: the one error type every ibc module returns through.
//
// Library functions return 0 on success or a negative IBC_E* code, and fill an `ibc_err` with
// one line that names the file (or object) and what is wrong. They never print and never exit;
// main.c turns an error into that line on stderr (once, from rank 0) and exit status 2.
// Errors travel between ranks through dist_agree (dist.h): every rank ends with the code and
// message of the lowest failing rank. Exit status 1 is left to the out-of-memory abort (mem.h).
#ifndef IBC_ERR_H
#define IBC_ERR_H

#include <stddef.h>

enum {
    IBC_OK = 0,
    IBC_EINPUT = -2, // the input is wrong: bad file, bad value, unsupported feature
    IBC_ESYS = -3,   // the system failed: I/O, out of memory, MPI
    IBC_ESTOP = -4,  // stopped by a signal after saving; running again resumes
};

typedef struct {
    int code;       // last IBC_E* set, 0 when none
    char msg[1024]; // one line, no trailing newline
} ibc_err;

// Sets err (if not NULL) to code and a printf-formatted message; returns code, so that
// `return ibc_fail(err, IBC_EINPUT, "%s: ...", path)` reads as one statement.
int ibc_fail(ibc_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Exit status for an error code: 75 (EX_TEMPFAIL) for IBC_ESTOP, 2 for every other error
// (bad input and system failures alike: either way the job stopped with one line saying why).
int ibc_exit_status(int code);

// Test hook, compiled in always: IBC_FAULT=PHASE:RANK makes ibc_fault(PHASE, RANK, err) fail
// with IBC_EINPUT and "injected fault: PHASE on rank RANK (IBC_FAULT)"; otherwise it returns 0.
// The phases and where they fire (all in run.c / results.c, each followed by dist_agree):
//   corpus   after rank 0 read the corpus, before it is broadcast
//   tokenize after the tokenizer is loaded, before the documents are encoded
//   precount after the label precount of a checkpoint
//   load     after a checkpoint's weights are mapped (fails the job under on_error = stop)
//   forward  at the first round boundary of a checkpoint's document loop
//   merge    before the ranks' counts are merged
//   write    after the HDF5 results are written under their temporary name, before renaming
// RANK may be `*` (every rank). docs/reliability.md has the matrix tests/failure.sh runs.
int ibc_fault(const char *phase, int rank, ibc_err *err);

// Test hook, compiled in always: IBC_SLOW=RANK:F returns F (> 1) on rank RANK, 1 elsewhere
// or when unset; run.c then stretches each of that rank's unit steps (a unit through a layer;
// all but a unit's last) to F times its length, a rank on a slower core for tests/layout.sh (the deal must move
// documents away from it, and the other ranks take units over from it).
double ibc_slow(int rank);

#endif
