/*
 * qemu-pml: the working-set oracle (docs/wss-oracle.md).
 *
 * A measurement instrument: it implements no architecture and a guest
 * cannot observe it.
 *
 * While it runs, the emulator records, per EPT guest (keyed by the EPT
 * PML4 address of the EPTP), every guest-physical page an instruction of
 * that guest read, wrote or fetched, and every page only its page walk
 * touched.  Windows are cut over QMP; a new window starts with every vCPU
 * stopped and every TLB flushed, so each page touched in the window
 * reaches a TLB fill, which is where it is recorded:
 *
 *  - instruction accesses at the merge of the two stages (patch 0019), for
 *    every linear-address fill whether or not the EPT stage hit its TLB;
 *    a read fill of a page not yet written in the window is made
 *    read-only, so the first write fills again and is seen;
 *  - page-walk accesses in vmx_ept_translate(), for the guest paging
 *    structures.
 *
 * This is ground truth for working-set estimators: it does not depend on
 * EPT A/D flags, PML or anything the guest hypervisor does.
 */
#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/bitops.h"
#include "qemu/host-utils.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "cpu.h"
#include "exec/cputlb.h"
#include "exec/page-protection.h"
#include "hw/core/cpu.h"
#include "monitor/hmp.h"
#include "monitor/hmp-target.h"
#include "monitor/monitor.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-pml-target.h"
#include "qobject/qdict.h"
#include "system/cpus.h"
#include "system/tcg.h"
#include "system/runstate.h"
#include "vmx.h"
#include "vmx-internal.h"

/*
 * Guest-physical page numbers have at most 36 bits (4-level EPT): a
 * 9-bit directory of 9-bit tables of 1 GiB chunks, allocated on first use.
 */
#define CHUNK_BITS      18
#define CHUNK_PAGES     (1u << CHUNK_BITS)
#define TBL_BITS        9
#define GPA_PAGE_BITS   36
#define MAX_GUESTS      16

enum { MAP_READ, MAP_WRITE, MAP_FETCH, MAP_WALK, MAP_KINDS };

typedef struct OracleChunk {
    unsigned long map[MAP_KINDS][BITS_TO_LONGS(CHUNK_PAGES)];
} OracleChunk;

typedef struct OracleGuest {
    uint64_t ep4ta;                     /* 0: slot free */
    OracleChunk **dir[1u << TBL_BITS];
} OracleGuest;

static struct {
    uint64_t window;
    int64_t window_start_ns;
    bool overflow;                      /* more than MAX_GUESTS EPT guests */
    OracleGuest guests[MAX_GUESTS];
} oracle;

bool wss_oracle_active;                 /* read on the TLB-fill path */

static OracleGuest *oracle_guest(uint64_t ep4ta)
{
    int i;

    for (i = 0; i < MAX_GUESTS; i++) {
        OracleGuest *g = &oracle.guests[i];
        uint64_t key = qatomic_read(&g->ep4ta);

        if (key == ep4ta) {
            return g;
        }
        if (!key && qatomic_cmpxchg(&g->ep4ta, 0, ep4ta) == 0) {
            return g;
        }
        if (qatomic_read(&g->ep4ta) == ep4ta) {
            return g;               /* another vCPU claimed it for us */
        }
    }
    qatomic_set(&oracle.overflow, true);
    return NULL;
}

/* *@slot, or a zeroed @size-byte block installed there if it was NULL. */
static void *oracle_slot(void **slot, size_t size)
{
    void *p = qatomic_rcu_read(slot);

    if (!p) {
        void *fresh = g_malloc0(size);

        p = qatomic_cmpxchg(slot, NULL, fresh);
        if (p) {
            g_free(fresh);          /* another vCPU installed one first */
        } else {
            p = fresh;
        }
    }
    return p;
}

static OracleChunk *oracle_chunk(OracleGuest *g, uint64_t pfn)
{
    unsigned top = (pfn >> (CHUNK_BITS + TBL_BITS)) & ((1u << TBL_BITS) - 1);
    unsigned mid = (pfn >> CHUNK_BITS) & ((1u << TBL_BITS) - 1);
    OracleChunk **tbl = oracle_slot((void **)&g->dir[top],
                                    sizeof(OracleChunk *) << TBL_BITS);

    return oracle_slot((void **)&tbl[mid], sizeof(OracleChunk));
}

/* Set bit @kind of page @pfn in its chunk @c (a read first: the bit is
 * usually set already, and the read keeps the cache line shared). */
static void oracle_mark(OracleChunk *c, uint64_t pfn, int kind)
{
    unsigned long *word = &c->map[kind][BIT_WORD(pfn & (CHUNK_PAGES - 1))];
    unsigned long bit = BIT_MASK(pfn & (CHUNK_PAGES - 1));

    if (!(qatomic_read(word) & bit)) {
        qatomic_or(word, bit);
    }
}

static bool oracle_test(OracleChunk *c, uint64_t pfn, int kind)
{
    return qatomic_read(&c->map[kind][BIT_WORD(pfn & (CHUNK_PAGES - 1))]) &
           BIT_MASK(pfn & (CHUNK_PAGES - 1));
}

static OracleGuest *oracle_current_guest(CPUX86State *env)
{
    return oracle_guest(VMCS(env, EPT_POINTER) & ~0xfffull);
}

static uint64_t gpa_pfn(uint64_t gpa)
{
    return (gpa >> 12) & ((1ull << GPA_PAGE_BITS) - 1);
}

/* An instruction's access to guest-physical @gpa (patch 0019). */
void wss_oracle_access(CPUX86State *env, uint64_t gpa, MMUAccessType access, int *prot)
{
    OracleGuest *g = oracle_current_guest(env);
    uint64_t pfn = gpa_pfn(gpa);
    OracleChunk *c;

    if (!g) {
        return;
    }
    c = oracle_chunk(g, pfn);
    switch (access) {
    case MMU_DATA_STORE:
        oracle_mark(c, pfn, MAP_WRITE);
        return;
    case MMU_INST_FETCH:
        oracle_mark(c, pfn, MAP_FETCH);
        break;
    default:
        oracle_mark(c, pfn, MAP_READ);
        break;
    }
    if (!oracle_test(c, pfn, MAP_WRITE)) {
        *prot &= ~PAGE_WRITE;       /* the first write in the window fills again */
    }
}

/* A guest paging-structure access to @gpa (vmx_ept_translate). */
void wss_oracle_walk(CPUX86State *env, uint64_t gpa)
{
    OracleGuest *g = oracle_current_guest(env);
    uint64_t pfn = gpa_pfn(gpa);

    if (g) {
        oracle_mark(oracle_chunk(g, pfn), pfn, MAP_WALK);
    }
}

/* ---- windows ------------------------------------------------------------- */

static void oracle_count(OracleGuest *g, WssOracleGuest *out)
{
    size_t t, m, w;

    for (t = 0; t < (1u << TBL_BITS); t++) {
        OracleChunk **tbl = g->dir[t];

        if (!tbl) {
            continue;
        }
        for (m = 0; m < (1u << TBL_BITS); m++) {
            OracleChunk *c = tbl[m];

            if (!c) {
                continue;
            }
            for (w = 0; w < BITS_TO_LONGS(CHUNK_PAGES); w++) {
                unsigned long r = c->map[MAP_READ][w], wr = c->map[MAP_WRITE][w];
                unsigned long f = c->map[MAP_FETCH][w], walk = c->map[MAP_WALK][w];
                unsigned long touched = r | wr | f;

                out->touched += ctpopl(touched);
                out->written += ctpopl(wr);
                out->read_only += ctpopl(touched & ~wr);
                out->fetched += ctpopl(f);
                out->walk += ctpopl(walk);
                out->walk_only += ctpopl(walk & ~touched);
            }
        }
    }
}

static void oracle_clear(void)
{
    int i;
    size_t t, m;

    for (i = 0; i < MAX_GUESTS; i++) {
        OracleGuest *g = &oracle.guests[i];

        for (t = 0; t < (1u << TBL_BITS); t++) {
            if (!g->dir[t]) {
                continue;
            }
            for (m = 0; m < (1u << TBL_BITS); m++) {
                g_free(g->dir[t][m]);
            }
            g_free(g->dir[t]);
            g->dir[t] = NULL;
        }
        g->ep4ta = 0;
    }
    oracle.overflow = false;
}

/*
 * Run @fn with every vCPU stopped, then flush every TLB before any vCPU
 * runs guest code again: the window boundary is exact.
 */
static void oracle_with_vcpus_stopped(void (*fn)(void *), void *opaque)
{
    bool running = runstate_is_running();
    CPUState *cs;

    if (running) {
        pause_all_vcpus();
    }
    fn(opaque);
    if (tcg_enabled()) {
        CPU_FOREACH(cs) {
            tlb_flush(cs);      /* queued: runs before the vCPU resumes */
        }
    }
    if (running) {
        resume_all_vcpus();
    }
}

static WssOracleWindow *oracle_report(void)
{
    WssOracleWindow *win = g_new0(WssOracleWindow, 1);
    WssOracleGuestList **tail = &win->guests;
    int i;

    win->active = qatomic_read(&wss_oracle_active);
    win->window = oracle.window;
    win->start_ns = oracle.window_start_ns;
    win->end_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    win->overflow = oracle.overflow;
    for (i = 0; i < MAX_GUESTS; i++) {
        OracleGuest *g = &oracle.guests[i];
        WssOracleGuest *out;

        if (!g->ep4ta) {
            continue;
        }
        out = g_new0(WssOracleGuest, 1);
        out->ept_pml4 = g->ep4ta;
        oracle_count(g, out);
        QAPI_LIST_APPEND(tail, out);
    }
    return win;
}

/*
 * One line of @f per EPT guest: its touched pages as runs of consecutive
 * page numbers, "START+LEN" in hex, in the format of wss-touch --gfns.
 */
static void oracle_write_pages(FILE *f)
{
    int i;

    for (i = 0; i < MAX_GUESTS; i++) {
        OracleGuest *g = &oracle.guests[i];
        WssOracleGuest count = { 0 };
        uint64_t run_start = 0, run_len = 0;
        const char *sep = "";
        size_t t, m, w;

        if (!g->ep4ta) {
            continue;
        }
        oracle_count(g, &count);
        fprintf(f, "ept-pml4=0x%" PRIx64 " touched=%" PRIu64 " r=", g->ep4ta, count.touched);
        for (t = 0; t < (1u << TBL_BITS); t++) {
            OracleChunk **tbl = g->dir[t];

            for (m = 0; tbl && m < (1u << TBL_BITS); m++) {
                OracleChunk *c = tbl[m];
                uint64_t base = ((uint64_t)t << (CHUNK_BITS + TBL_BITS)) |
                                ((uint64_t)m << CHUNK_BITS);

                for (w = 0; c && w < BITS_TO_LONGS(CHUNK_PAGES); w++) {
                    unsigned long touched = c->map[MAP_READ][w] | c->map[MAP_WRITE][w] |
                                            c->map[MAP_FETCH][w];

                    while (touched) {
                        uint64_t pfn = base + w * BITS_PER_LONG + ctzl(touched);

                        touched &= touched - 1;
                        if (run_len && pfn == run_start + run_len) {
                            run_len++;
                            continue;
                        }
                        if (run_len) {
                            fprintf(f, "%s%" PRIx64 "+%" PRIx64, sep, run_start, run_len);
                            sep = ",";
                        }
                        run_start = pfn;
                        run_len = 1;
                    }
                }
            }
        }
        if (run_len) {
            fprintf(f, "%s%" PRIx64 "+%" PRIx64, sep, run_start, run_len);
        }
        fputc('\n', f);
    }
}

typedef struct OracleCut {
    bool report;
    bool next;
    bool stop;
    FILE *pages;                /* write the window's pages here first */
    int pages_err;              /* ... and if that failed (errno), cut nothing */
    WssOracleWindow *win;
} OracleCut;

static void oracle_cut(void *opaque)
{
    OracleCut *cut = opaque;

    if (cut->pages) {
        oracle_write_pages(cut->pages);
        if (fflush(cut->pages) || ferror(cut->pages)) {
            cut->pages_err = errno ? errno : EIO;
            return;
        }
    }
    if (cut->report) {
        cut->win = oracle_report();
    }
    if (cut->stop) {
        qatomic_set(&wss_oracle_active, false);
    }
    if (cut->next) {
        oracle_clear();
        oracle.window = cut->report ? oracle.window + 1 : 0;
        oracle.window_start_ns = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
        qatomic_set(&wss_oracle_active, true);
    }
}

void qmp_wss_oracle_start(Error **errp)
{
    OracleCut cut = { .next = true };

    oracle_with_vcpus_stopped(oracle_cut, &cut);
}

void qmp_wss_oracle_stop(Error **errp)
{
    OracleCut cut = { .stop = true };

    if (!qatomic_read(&wss_oracle_active)) {
        error_setg(errp, "the working-set oracle is not running");
        return;
    }
    oracle_with_vcpus_stopped(oracle_cut, &cut);
}

WssOracleWindow *qmp_query_wss_oracle(bool has_next, bool next,
                                      const char *pages_file, Error **errp)
{
    OracleCut cut = { .report = true, .next = has_next && next };

    if (cut.next && !qatomic_read(&wss_oracle_active)) {
        error_setg(errp, "the working-set oracle is not running; "
                   "start it with wss-oracle-start");
        return NULL;
    }
    if (pages_file) {
        cut.pages = fopen(pages_file, "w");
        if (!cut.pages) {
            error_setg_errno(errp, errno, "pages-file '%s'", pages_file);
            return NULL;
        }
    }
    if (cut.next) {
        oracle_with_vcpus_stopped(oracle_cut, &cut);
    } else {
        /* A snapshot: counting while vCPUs run may miss in-flight bits. */
        oracle_cut(&cut);
    }
    if (cut.pages) {
        int close_err = fclose(cut.pages) ? errno : 0;

        if (cut.pages_err || close_err) {
            error_setg_errno(errp, cut.pages_err ? cut.pages_err : close_err,
                             "pages-file '%s': the window was %s", pages_file,
                             cut.pages_err ? "not closed" : "closed, its pages not saved");
            qapi_free_WssOracleWindow(cut.win);
            return NULL;
        }
    }
    return cut.win;
}

void hmp_info_wss_oracle(Monitor *mon, const QDict *qdict)
{
    g_autoptr(WssOracleWindow) win = qmp_query_wss_oracle(false, false, NULL, NULL);
    WssOracleGuestList *l;

    monitor_printf(mon, "working-set oracle: %s, window %" PRIu64 ", %.3f s%s\n",
                   win->active ? "running" : "stopped", win->window,
                   (win->end_ns - win->start_ns) / 1e9,
                   win->overflow ? " (more EPT guests than slots: some not recorded)" : "");
    monitor_printf(mon, "EPT PML4           touched     written     read-only   "
                   "fetched     walk        walk-only\n");
    for (l = win->guests; l; l = l->next) {
        WssOracleGuest *g = l->value;

        monitor_printf(mon, "0x%-16" PRIx64 " %-10" PRIu64 "  %-10" PRIu64 "  %-10" PRIu64
                       "  %-10" PRIu64 "  %-10" PRIu64 "  %" PRIu64 "\n",
                       g->ept_pml4, g->touched, g->written, g->read_only, g->fetched,
                       g->walk, g->walk_only);
    }
}
