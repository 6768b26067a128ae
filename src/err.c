#include "ibc/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ibc_fail(ibc_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int ibc_exit_status(int code) { return code == IBC_ESTOP ? 75 : code ? 2 : 0; }

int ibc_fault(const char *phase, int rank, ibc_err *err) {
    const char *f = getenv("IBC_FAULT");
    size_t n = strlen(phase);
    if (!f || strncmp(f, phase, n) != 0 || f[n] != ':') return 0;
    const char *who = f + n + 1;
    char *end;
    long r = strtol(who, &end, 10);
    if (strcmp(who, "*") != 0 && (end == who || *end || r != rank)) return 0;
    return ibc_fail(err, IBC_EINPUT, "injected fault: %s on rank %d (IBC_FAULT)", phase, rank);
}

double ibc_slow(int rank) {
    const char *f = getenv("IBC_SLOW");
    char *end;
    long r = f ? strtol(f, &end, 10) : -1;
    if (!f || end == f || *end != ':' || r != rank) return 1.0;
    double x = strtod(end + 1, NULL);
    return x > 1.0 && x < 1000.0 ? x : 1.0;
}
