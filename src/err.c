#include "ibc/err.h"

#include <stdarg.h>
#include <stdio.h>

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

int ibc_exit_status(int code) { return code == IBC_EINPUT ? 2 : code == IBC_ESTOP ? 75 : 1; }
