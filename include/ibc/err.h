// err: the one error type every ibc module returns through.
//
// Library functions return 0 on success or a negative IBC_E* code, and fill an `ibc_err` with
// one line that names the file (or object) and what is wrong. They never print and never exit;
// main.c turns an error into that line on stderr and exit status 2 (bad input) or 1 (system).
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

// Exit status for an error code: 2 for IBC_EINPUT, 75 (EX_TEMPFAIL) for IBC_ESTOP, 1 otherwise.
int ibc_exit_status(int code);

#endif
