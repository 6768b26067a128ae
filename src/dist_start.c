// dist start-up: MPI, the out-of-memory handler, and the cores and threads of each rank
// (dist.h "Start-up"; issue 15 point 1). The error-agreement and merge functions are in dist.c.
#include "ibc/dist.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <mpi.h>
#include <omp.h>

#include "ibc/mem.h"

// One rank's core list as text ("0-3,8"; longer lists end in "..."), and how many ranks the
// layout line lists one by one before it says "...": enough to read a node or two at a glance.
enum { LAYOUT_CPUS = 64, LAYOUT_SHOWN = 8 };

typedef struct { // one rank's layout, gathered on rank 0 (sent as bytes: same binary everywhere)
    int threads, want, cores, capped, widened, local;
    char cpus[LAYOUT_CPUS];
} rank_layout;

static int g_threads = 1;
static char g_line[LAYOUT_SHOWN * (LAYOUT_CPUS + 3) + 256];

static void abort_job(const char *msg) {
    (void)msg; // mem.c printed it
    MPI_Abort(MPI_COMM_WORLD, 1);
}

int dist_threads(void) { return g_threads; }
const char *dist_layout(void) { return g_line; }

int dist_plan_threads(int cores, int sharers, int index, int want, int force, int *capped) {
    *capped = 0;
    if (cores < 1) cores = 1;
    if (want > 0) {
        if (want > cores && !force) {
            *capped = 1;
            return cores;
        }
        return want;
    }
    if (sharers < 1) sharers = 1;
    int t = cores / sharers + (index < cores % sharers); // the remainder to the first sharers
    return t > 0 ? t : 1;
}

void dist_split_block(int n, int parts, int index, int *lo, int *hi) {
    *lo = (int)((long long)n * index / parts);
    *hi = (int)((long long)n * (index + 1) / parts);
}

static long topo(int cpu, const char *what) {
    char p[128];
    snprintf(p, sizeof p, "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, what);
    FILE *f = fopen(p, "r");
    long v = -1;
    if (f && fscanf(f, "%ld", &v) != 1) v = -1;
    if (f) fclose(f);
    return v;
}

// Sorts cpus by (package, physical core, cpu), so that hardware-thread siblings sit together
// and a contiguous block of the list is made of whole cores. Insertion sort: n is a node's cpus.
static void order_by_core(int *cpu, int n) {
    long *key = xmalloc(sizeof(long) * (size_t)n * 2);
    for (int i = 0; i < n; i++) key[2 * i] = topo(cpu[i], "physical_package_id"), key[2 * i + 1] = topo(cpu[i], "core_id");
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0; j--) {
            long *a = key + 2 * (j - 1), *b = key + 2 * j;
            if (a[0] < b[0] || (a[0] == b[0] && (a[1] < b[1] || (a[1] == b[1] && cpu[j - 1] < cpu[j])))) break;
            long t0 = a[0], t1 = a[1];
            a[0] = b[0], a[1] = b[1], b[0] = t0, b[1] = t1;
            int t = cpu[j - 1];
            cpu[j - 1] = cpu[j], cpu[j] = t;
        }
    free(key);
}

// Open MPI bound this rank by its own default (it says it bound the rank; no option chose it).
static int ompi_default_binding(void) {
    static const char *const chosen[] = {"OMPI_MCA_hwloc_base_binding_policy", "OMPI_MCA_rmaps_base_mapping_policy",
                                         "OMPI_MCA_rmaps_base_cpus_per_rank", "OMP_PROC_BIND", "OMP_PLACES"};
    const char *b = getenv("OMPI_MCA_orte_bound_at_launch");
    if (!b || strcmp(b, "1") != 0) return 0;
    for (size_t i = 0; i < sizeof chosen / sizeof *chosen; i++)
        if (getenv(chosen[i])) return 0;
    return 1;
}

// Replaces Open MPI's default binding by this rank's even share of the launcher's cores (the
// parent's mask: mpirun's or orted's, i.e. the allocation). 1 if the mask changed.
static int widen(cpu_set_t *mask, int local, int n_local) {
    cpu_set_t all, mine;
    if (sched_getaffinity(getppid(), sizeof all, &all) != 0) return 0;
    int *cpu = xmalloc(sizeof(int) * CPU_SETSIZE), n = 0, lo, hi, changed = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all)) cpu[n++] = c;
    if (n >= n_local) {
        order_by_core(cpu, n);
        dist_split_block(n, n_local, local, &lo, &hi);
        CPU_ZERO(&mine);
        for (int i = lo; i < hi; i++) CPU_SET(cpu[i], &mine);
        if (!CPU_EQUAL(&mine, mask) && sched_setaffinity(0, sizeof mine, &mine) == 0) *mask = mine, changed = 1;
    }
    free(cpu);
    return changed;
}

// How many ranks of the node have a mask that overlaps ours (us included); *index: our place
// among them. Collective over `node`.
static int sharers_of(const cpu_set_t *mask, MPI_Comm node, int *index) {
    int n, me, s = 0;
    MPI_Comm_size(node, &n);
    MPI_Comm_rank(node, &me);
    cpu_set_t *all = xmalloc(sizeof(cpu_set_t) * (size_t)n), x;
    MPI_Allgather(mask, (int)sizeof *mask, MPI_BYTE, all, (int)sizeof *mask, MPI_BYTE, node);
    *index = 0;
    for (int r = 0; r < n; r++) {
        CPU_AND(&x, &all[r], mask);
        if (CPU_COUNT(&x)) s++, *index += r < me;
    }
    free(all);
    return s;
}

static void format_cpus(const cpu_set_t *s, char *buf, size_t cap) {
    size_t o = 0;
    buf[0] = 0;
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (!CPU_ISSET(c, s)) continue;
        int e = c;
        while (e + 1 < CPU_SETSIZE && CPU_ISSET(e + 1, s)) e++;
        int k = e > c ? snprintf(buf + o, cap - o, "%s%d-%d", o ? "," : "", c, e)
                      : snprintf(buf + o, cap - o, "%s%d", o ? "," : "", c);
        if (k < 0 || (size_t)k >= cap - o) {
            strcpy(buf + cap - 4, "...");
            return;
        }
        o += (size_t)k;
        c = e;
    }
}

static int env_int(const char *name) {
    const char *s = getenv(name);
    long v = s ? strtol(s, NULL, 10) : 0; // OMP_NUM_THREADS may be a list "4,2": its first entry
    return v > 0 && v < (1 << 20) ? (int)v : 0;
}

// Rank 0: the layout line and, if any rank's OMP_NUM_THREADS was cut to its cores, one warning.
static void report(const rank_layout *all, int P, int nodes) {
    int tmin = all[0].threads, tmax = all[0].threads, capped = 0, first = -1, widened = 0;
    for (int r = 0; r < P; r++) {
        tmin = all[r].threads < tmin ? all[r].threads : tmin;
        tmax = all[r].threads > tmax ? all[r].threads : tmax;
        capped += all[r].capped;
        widened |= all[r].widened;
        if (all[r].capped && first < 0) first = r;
    }
    size_t o = 0, cap = sizeof g_line;
    char nodes_s[32] = "", thr[32];
    if (nodes > 1) snprintf(nodes_s, sizeof nodes_s, " on %d nodes", nodes);
    if (tmin == tmax) snprintf(thr, sizeof thr, "%d thread%s", tmin, tmin == 1 ? "" : "s");
    else snprintf(thr, sizeof thr, "%d-%d threads", tmin, tmax);
    o += (size_t)snprintf(g_line + o, cap - o, "ibc: %d rank%s%s x %s, cores per rank: ", P, P == 1 ? "" : "s", nodes_s, thr);
    for (int r = 0; r < P && r < LAYOUT_SHOWN; r++) o += (size_t)snprintf(g_line + o, cap - o, "%s%s", r ? " | " : "", all[r].cpus);
    if (P > LAYOUT_SHOWN) o += (size_t)snprintf(g_line + o, cap - o, " | ...");
    if (widened) snprintf(g_line + o, cap - o, " (Open MPI's default binding replaced by an even split)");
    if (capped) {
        const rank_layout *f = &all[first];
        fprintf(stderr, "ibc: warning: OMP_NUM_THREADS=%d exceeds the cores of %d of %d rank%s (rank %d: %d core%s, %s): "
                        "running %d thread%s there; give each rank its cores (mpirun --map-by slot:PE=%d --bind-to core, "
                        "or --bind-to none), or set IBC_FORCE_THREADS=1 to oversubscribe\n",
                f->want, capped, P, P == 1 ? "" : "s", first, f->cores, f->cores == 1 ? "" : "s", f->cpus, f->threads,
                f->threads == 1 ? "" : "s", f->want);
        fflush(stderr);
    }
}

void dist_init(int *argc, char ***argv) {
    int provided; // MPI from the main thread only, while OpenMP threads run (dist.h, handover)
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (provided < MPI_THREAD_FUNNELED) {
        fprintf(stderr, "ibc: this MPI library does not provide MPI_THREAD_FUNNELED\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    int rank = dist_rank(), P = dist_size(), n_local, index;
    mem_set_rank(rank);
    mem_set_fail_handler(abort_job);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    rank_layout me = {0};
    MPI_Comm_rank(node, &me.local);
    MPI_Comm_size(node, &n_local);
    cpu_set_t mask;
    me.want = env_int("OMP_NUM_THREADS");
    if (sched_getaffinity(0, sizeof mask, &mask) != 0) { // no mask: every online cpu
        CPU_ZERO(&mask);
        for (long c = 0, n = sysconf(_SC_NPROCESSORS_ONLN); c < n && c < CPU_SETSIZE; c++) CPU_SET(c, &mask);
    } else if (me.want > CPU_COUNT(&mask) && ompi_default_binding()) {
        me.widened = widen(&mask, me.local, n_local);
    }
    int sharers = sharers_of(&mask, node, &index);
    MPI_Comm_free(&node);
    me.cores = CPU_COUNT(&mask);
    me.threads = dist_plan_threads(me.cores, sharers, index, me.want, env_int("IBC_FORCE_THREADS") == 1, &me.capped);
    format_cpus(&mask, me.cpus, sizeof me.cpus);
    g_threads = me.threads;
    omp_set_num_threads(me.threads);
    openblas_set_num_threads(me.threads);
    int first = me.local == 0, nodes = 0;
    MPI_Allreduce(&first, &nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    rank_layout *all = rank == 0 ? xmalloc(sizeof(rank_layout) * (size_t)P) : NULL;
    MPI_Gather(&me, (int)sizeof me, MPI_BYTE, all, (int)sizeof me, MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rank == 0) report(all, P, nodes);
    free(all);
}

void dist_finalize(void) {
    mem_set_fail_handler(NULL);
    MPI_Finalize();
}
