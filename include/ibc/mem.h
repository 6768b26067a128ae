// mem: the one out-of-memory policy of ibc.
//
// Every allocation of ibc's own code goes through these. They never return NULL: when the
// system refuses, they print one line ("ibc: rank R: out of memory: N bytes at FILE:LINE") and
// end the whole job through the handler dist installs (MPI_Abort with exit status 1), or,
// before MPI is up or in programs without it, exit(1). Library functions therefore have no
// out-of-memory branches; an allocation that a hostile input could make huge is bounded by a
// validation first (a size named in the file is checked against the file's length).
//
// Test hook, compiled in always: IBC_FAIL_ALLOC=N makes the N-th allocation of each process
// fail as if the system had refused it (N >= 1), so a sweep over N drives every path;
// IBC_FAIL_ALLOC=count prints each process's allocation count at exit.
#ifndef IBC_MEM_H
#define IBC_MEM_H

#include <stddef.h>

#define xmalloc(n) mem_malloc((n), __FILE__, __LINE__)
#define xcalloc(k, n) mem_calloc((k), (n), __FILE__, __LINE__)
#define xrealloc(p, n) mem_realloc((p), (n), __FILE__, __LINE__)
#define xstrdup(s) mem_strdup((s), __FILE__, __LINE__)

void *mem_malloc(size_t n, const char *file, int line);
void *mem_calloc(size_t k, size_t n, const char *file, int line);
void *mem_realloc(void *p, size_t n, const char *file, int line);
char *mem_strdup(const char *s, const char *file, int line);

// Grows *p (elements of `size` bytes, capacity *cap) to hold at least `need` elements, doubling;
// the one grow-array idiom. New elements are not initialised.
void mem_grow(void **p, size_t size, size_t *cap, size_t need, const char *file, int line);
#define xgrow(p, cap, need) mem_grow((void **)&(p), sizeof *(p), &(cap), (need), __FILE__, __LINE__)

// Called with the message after printing it; must not return. dist installs MPI_Abort.
typedef void (*mem_fail_fn)(const char *msg);
void mem_set_fail_handler(mem_fail_fn fn);
// This process's rank for the message (dist sets it; 0 before MPI).
void mem_set_rank(int rank);

#endif
