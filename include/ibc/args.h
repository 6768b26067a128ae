// args: the one command-line option parser. Every command of main.c declares its options in a
// table and its positional arguments by count; args_parse checks them all the same way.
//
// Accepted forms: `--name VALUE`, `--name=VALUE`, `--flag`; `--` ends the options. A value is
// checked whole: an integer has no trailing junk and lies in its [lo, hi]; a choice is one of
// its words. Errors are IBC_EINPUT with one line in one style, "CMD: OPTION: what was expected,
// got 'TEXT'" (e.g. "train: --steps: expected an integer in [1, 1000000000], got '12x'"):
// unknown option, missing value, value given to a flag, option given twice, bad integer or
// choice, missing required option, too few or too many positional arguments.
// The parser never prints, never exits and allocates nothing; values point into argv.
#ifndef IBC_ARGS_H
#define IBC_ARGS_H

#include <stdint.h>

#include "ibc/err.h"

typedef enum {
    ARG_FLAG,   // no value; *(int *)dst = 1
    ARG_STR,    // *(const char **)dst = the value
    ARG_INT,    // *(int *)dst, in [lo, hi] (which must fit an int)
    ARG_I64,    // *(long long *)dst, in [lo, hi]
    ARG_CHOICE, // *(int *)dst = index of the value in `choices` ("first|mean|error")
} arg_type;

typedef struct {
    const char *name;    // "--steps"
    arg_type type;
    void *dst;
    long long lo, hi;    // ARG_INT, ARG_I64
    const char *choices; // ARG_CHOICE: words separated by '|'
    int required;        // 1: the option must be given
    const char *value;   // the value's name in messages ("N", "FILE"); NULL: "a value"
} arg_opt;

typedef struct {
    const char *cmd;     // the command, for messages
    const arg_opt *opts;
    int n_opts;
    const char **pos;    // positional arguments in order (room for max_pos)
    int min_pos, max_pos;
    const char *pos_what; // what the positionals are, for messages ("a job file")
} arg_spec;

// Parses argv[0..argc) against s; *n_pos = the positional count. Options not given keep
// their values (the caller's defaults).
int args_parse(const arg_spec *s, int argc, char **argv, int *n_pos, ibc_err *err);

// One integer in [lo, hi], the whole of text; `what` names it in the message ("CMD: --x").
int args_int(const char *what, const char *text, long long lo, long long hi, long long *out, ibc_err *err);

// "1,2,3": integers in [lo, hi] separated by commas (at least one), into *out (malloc'd, *n).
int args_int_list(const char *what, const char *text, long long lo, long long hi, int32_t **out, int *n,
                  ibc_err *err);

#endif
