#include "ibc/args.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ibc/mem.h"

// Options a command may declare: far more than any has; bounds the "given twice" bookkeeping.
enum { ARGS_MAX_OPTS = 64 };

// An integer at the start of text (no leading space), in [lo, hi]; *end: where it stopped.
static int parse_ll(const char *text, const char **end, long long lo, long long hi, long long *out) {
    char *e;
    *end = text;
    if (isspace((unsigned char)text[0])) return -1;
    errno = 0;
    long long v = strtoll(text, &e, 10);
    *end = e;
    if (e == text || errno == ERANGE || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int args_int(const char *what, const char *text, long long lo, long long hi, long long *out, ibc_err *err) {
    const char *end;
    if (parse_ll(text, &end, lo, hi, out) || *end)
        return ibc_fail(err, IBC_EINPUT, "%s: expected an integer in [%lld, %lld], got '%s'", what, lo, hi, text);
    return 0;
}

int args_int_list(const char *what, const char *text, long long lo, long long hi, int32_t **out, int *n,
                  ibc_err *err) {
    size_t cap = 0, k = 0;
    int32_t *v = NULL;
    const char *s = text, *end;
    long long x;
    do {
        if (parse_ll(s, &end, lo, hi, &x) || (*end && *end != ',')) {
            free(v);
            return ibc_fail(err, IBC_EINPUT, "%s: expected integers in [%lld, %lld] separated by commas, got '%s'",
                            what, lo, hi, text);
        }
        xgrow(v, cap, k + 1);
        v[k++] = (int32_t)x;
        s = *end ? end + 1 : end;
    } while (*end);
    *out = v;
    *n = (int)k;
    return 0;
}

// Index of word in "a|b|c", or -1.
static int choice(const char *choices, const char *word) {
    size_t n = strlen(word);
    int i = 0;
    for (const char *c = choices; *c; i++) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        if (len == n && !strncmp(c, word, n)) return i;
        if (!bar) break;
        c = bar + 1;
    }
    return -1;
}

static int set_value(const arg_spec *s, const arg_opt *o, const char *v, ibc_err *err) {
    char what[128];
    snprintf(what, sizeof what, "%s: %s", s->cmd, o->name);
    long long x;
    int rc = 0;
    switch (o->type) {
    case ARG_STR: *(const char **)o->dst = v; break;
    case ARG_INT:
        if ((rc = args_int(what, v, o->lo, o->hi, &x, err)) == 0) *(int *)o->dst = (int)x;
        break;
    case ARG_I64:
        if ((rc = args_int(what, v, o->lo, o->hi, &x, err)) == 0) *(long long *)o->dst = x;
        break;
    case ARG_CHOICE:
        if ((*(int *)o->dst = choice(o->choices, v)) < 0)
            rc = ibc_fail(err, IBC_EINPUT, "%s: expected one of %s, got '%s'", what, o->choices, v);
        break;
    case ARG_FLAG: break;
    }
    return rc;
}

// One option at argv[*i] (advancing *i past its value).
static int take_option(const arg_spec *s, int argc, char **argv, int *i, char *seen, ibc_err *err) {
    const char *a = argv[*i], *eq = strchr(a, '=');
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    const arg_opt *o = NULL;
    for (int k = 0; k < s->n_opts && !o; k++)
        if (strlen(s->opts[k].name) == len && !strncmp(s->opts[k].name, a, len)) o = &s->opts[k];
    if (!o) return ibc_fail(err, IBC_EINPUT, "%s: unknown option '%.*s' (ibc help %s)", s->cmd, (int)len, a, s->cmd);
    if (seen[o - s->opts]++) return ibc_fail(err, IBC_EINPUT, "%s: %s: given twice", s->cmd, o->name);
    if (o->type == ARG_FLAG) {
        if (eq) return ibc_fail(err, IBC_EINPUT, "%s: %s: takes no value, got '%s'", s->cmd, o->name, eq + 1);
        *(int *)o->dst = 1;
        return 0;
    }
    const char *v = eq ? eq + 1 : *i + 1 < argc ? argv[++*i] : NULL;
    if (!v) return ibc_fail(err, IBC_EINPUT, "%s: %s: expected %s, got nothing", s->cmd, o->name, o->value ? o->value : "a value");
    return set_value(s, o, v, err);
}

int args_parse(const arg_spec *s, int argc, char **argv, int *n_pos, ibc_err *err) {
    char seen[ARGS_MAX_OPTS] = {0};
    int np = 0, rc = 0, opts_done = 0;
    if (s->n_opts > ARGS_MAX_OPTS) return ibc_fail(err, IBC_ESYS, "%s: too many options declared", s->cmd);
    for (int i = 0; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        if (!opts_done && !strcmp(a, "--")) opts_done = 1;
        else if (!opts_done && a[0] == '-' && a[1]) rc = take_option(s, argc, argv, &i, seen, err);
        else if (np < s->max_pos) s->pos[np++] = a;
        else rc = ibc_fail(err, IBC_EINPUT, "%s: unexpected argument '%s' (ibc help %s)", s->cmd, a, s->cmd);
    }
    for (int k = 0; k < s->n_opts && rc == 0; k++)
        if (s->opts[k].required && !seen[k])
            rc = ibc_fail(err, IBC_EINPUT, "%s: %s %s is required", s->cmd, s->opts[k].name,
                          s->opts[k].value ? s->opts[k].value : "VALUE");
    if (rc == 0 && np < s->min_pos)
        rc = ibc_fail(err, IBC_EINPUT, "%s: expected %s (ibc help %s)", s->cmd, s->pos_what, s->cmd);
    *n_pos = np;
    return rc;
}
