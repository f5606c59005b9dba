/*
 * wss-truth: a TCG plugin that counts every guest memory access per
 * physical page and per window -- the independent ground truth of
 * docs/ground-truth.md.
 *
 * It shares no code path with what it grades.  Extended PML and the
 * emulator's oracle learn of an access when TCG fills a TLB entry (EPT
 * A/D transitions, mmu_translate()); this plugin is called by TCG's
 * generated code for every load and store an instruction makes, TLB hit
 * or miss, through QEMU's public plugin API only, and never looks at EPT
 * flags, PML state, TLB fills or the page-walk marker.
 *
 * What it records, per physical page of the machine (for a domU under Xen:
 * the machine frame; truth/score.py maps it to the domU's guest frame by
 * walking the domU's EPT itself):
 *   - reads and writes: every load and store of an instruction, counted
 *     once per access (an access that straddles two pages counts on the
 *     first);
 *   - fetches: every execution of a translation block, on the page(s) of
 *     its instructions.  The plugin API of QEMU 10.0 gives an instruction's
 *     host address only, so this needs guest RAM in a named memory backend
 *     (ram=memfd below): the plugin finds the backend's mapping in
 *     /proc/self/maps and turns host addresses into physical ones.
 * What it cannot see: the CPU's own page walks (guest page tables, EPT),
 * device DMA, and which privilege level or VMX mode made an access (so Xen
 * and dom0 touching a domU's page count for that page).
 *
 * Windows are cut by a marker, not by stopping anything: an 8-byte store
 * of the value 0x51504d4c4354xxxx ("QPMLCT" and a 16-bit window number)
 * anywhere.  dom0's xen-epml makes that store with the domU paused at each
 * of its window boundaries (wss --truth-marker), so the plugin's windows
 * and extended PML's are the same stretch of the domU's execution.
 *
 * Arming (arm=insn): until then the plugin instruments nothing, so the
 * machine boots at TCG's own speed.  It arms when a vCPU executes the
 * instruction "movabs $0x51504d4c41524d00, %rax" ("QPMLARM" and a zero
 * byte, spotted by its bytes at translation time; xen-epml wss
 * --truth-marker runs it before its first window): the plugin then resets
 * itself (QEMU flushes every translation block) and instruments every block
 * translated from there on.  Everything before the first marker is window
 * "pre" either way, which no score reads; the windows the markers cut are
 * counted in full in both modes.
 *
 * Arguments: out=FILE (required), ram=memfd (guest RAM is a
 *            memory-backend-memfd of ram-mib MiB: fetches are counted),
 *            ram-mib=N (physical pages counted: below N MiB; default 4096),
 *            arm=insn (count nothing until the arming instruction runs).
 * Output: "window N" (N from the marker that closed it), then one line per
 * page with any access: "PFN READS WRITES FETCHES" (hex pfn, decimal
 * counts), then "end N accesses=A io=I beyond=B echoes=E" (E: stores of
 * the window's opening marker value again, which do not cut: a copy of a
 * marker is not a boundary).  Accesses before the first marker form window
 * "pre"; after the last one, window "tail".
 */
#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARKER_MASK  0xffffffffffff0000ULL
#define MARKER_VALUE 0x51504d4c43540000ULL

/* One window's counts; two sets, swapped at each marker. */
struct counts {
    uint32_t *reads, *writes, *fetches;
    uint64_t accesses, io, beyond;
};

static struct counts sets[2];
static struct counts *volatile cur;
static uint64_t npages;
static FILE *out;
static GMutex cut_lock;
static long windows_seen = -1;     /* the last marker's number; -1: none */
static uint64_t last_marker;       /* the last marker's value */
static uint64_t echoes;            /* stores of it again, ignored */
static uintptr_t ram_host;         /* host mapping of guest RAM (fetches) */
static uint64_t ram_size;
static char *ram_id;               /* ram=memfd */
static gsize ram_looked_up;
static qemu_plugin_id_t self;
static bool arm_by_insn;           /* arm=insn */
static int armed;                  /* 0: waiting, 1: reset asked, 2: counting */

/* movabs $0x51504d4c41524d00, %rax: REX.W B8 and the immediate, LSB first. */
static const uint8_t arm_insn[10] = {
    0x48, 0xb8, 0x00, 0x4d, 0x52, 0x41, 0x4c, 0x4d, 0x50, 0x51
};

static void count(uint32_t *a, uint64_t pfn, struct counts *c)
{
    if (pfn >= npages) {
        __atomic_fetch_add(&c->beyond, 1, __ATOMIC_RELAXED);
        return;
    }
    /* Saturating would need a CAS loop; 2^32 accesses to one page in one
     * window do not happen in the experiments' windows of seconds. */
    __atomic_fetch_add(&a[pfn], 1, __ATOMIC_RELAXED);
}

static void dump(struct counts *c, const char *name)
{
    uint64_t n = 0;

    fprintf(out, "window %s\n", name);
    for (uint64_t p = 0; p < npages; p++) {
        uint32_t r = c->reads[p], w = c->writes[p], f = c->fetches[p];

        if (r | w | f) {
            fprintf(out, "%" PRIx64 " %u %u %u\n", p, r, w, f);
            n++;
        }
    }
    fprintf(out, "end %s pages=%" PRIu64 " accesses=%" PRIu64 " io=%" PRIu64
            " beyond=%" PRIu64 " echoes=%" PRIu64 "\n", name, n, c->accesses, c->io,
            c->beyond, echoes);
    echoes = 0;
    fflush(out);
    memset(c->reads, 0, npages * sizeof(uint32_t));
    memset(c->writes, 0, npages * sizeof(uint32_t));
    memset(c->fetches, 0, npages * sizeof(uint32_t));
    c->accesses = c->io = c->beyond = 0;
}

/*
 * A marker: close the current window.  The domU is paused meanwhile; other
 * vCPUs (Xen, dom0) may still add to the old set while it is written out,
 * which only blurs counts of pages that are not the domU's.
 */
static void cut(uint64_t value)
{
    struct counts *old;
    char name[32];

    g_mutex_lock(&cut_lock);
    if (windows_seen >= 0 && value == last_marker) {
        /*
         * The same marker again: a copy of the last one (a kernel saving
         * the register that held it, say), not a new boundary; xen-epml
         * never repeats one.
         */
        echoes++;
        g_mutex_unlock(&cut_lock);
        return;
    }
    last_marker = value;
    old = cur;
    cur = old == &sets[0] ? &sets[1] : &sets[0];
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (windows_seen < 0) {
        snprintf(name, sizeof(name), "pre");
    } else {
        snprintf(name, sizeof(name), "%u", (unsigned)(value & 0xffff));
    }
    windows_seen = value & 0xffff;
    dump(old, name);
    g_mutex_unlock(&cut_lock);
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info, uint64_t vaddr,
                   void *udata)
{
    struct qemu_plugin_hwaddr *hw = qemu_plugin_get_hwaddr(info, vaddr);
    struct counts *c = cur;
    bool store = qemu_plugin_mem_is_store(info);

    __atomic_fetch_add(&c->accesses, 1, __ATOMIC_RELAXED);
    if (!hw || qemu_plugin_hwaddr_is_io(hw)) {
        __atomic_fetch_add(&c->io, 1, __ATOMIC_RELAXED);
        return;
    }
    count(store ? c->writes : c->reads, qemu_plugin_hwaddr_phys_addr(hw) >> 12, c);
    if (store && qemu_plugin_mem_size_shift(info) == 3) {
        qemu_plugin_mem_value v = qemu_plugin_mem_get_value(info);

        if (v.type == QEMU_PLUGIN_MEM_VALUE_U64 &&
            (v.data.u64 & MARKER_MASK) == MARKER_VALUE) {
            cut(v.data.u64);
        }
    }
}

static void on_tb_exec(unsigned int vcpu, void *udata)
{
    uint64_t pages = (uintptr_t)udata;   /* first page + 1, second page + 1 */
    struct counts *c = cur;

    count(c->fetches, (pages & 0xffffffff) - 1, c);
    if (pages >> 32) {
        count(c->fetches, (pages >> 32) - 1, c);
    }
}

static bool find_ram(const char *id);
static void on_plugin_exit(qemu_plugin_id_t id, void *p);

/* Physical page of a host address inside guest RAM, or -1. */
static int64_t host_to_pfn(void *host)
{
    uintptr_t h = (uintptr_t)host;

    if (!ram_host || h < ram_host || h - ram_host >= ram_size) {
        return -1;
    }
    /* q35/pc: RAM below 4 GiB is mapped from physical address 0. */
    return (h - ram_host) >> 12;
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);

static void on_armed(qemu_plugin_id_t id)
{
    /* Every block is gone; from here on each new one is instrumented. */
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    g_mutex_lock(&cut_lock);
    fprintf(out, "armed\n");
    g_mutex_unlock(&cut_lock);
    __atomic_store_n(&armed, 2, __ATOMIC_SEQ_CST);
}

static void on_arm_insn(unsigned int vcpu, void *udata)
{
    int waiting = 0;

    /* One reset, whichever vCPU runs the instruction first. */
    if (__atomic_compare_exchange_n(&armed, &waiting, 1, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST)) {
        qemu_plugin_reset(self, on_armed);
    }
}

/* Before arming: look for the arming instruction only. */
static void on_tb_trans_waiting(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint8_t bytes[sizeof(arm_insn)];

    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);

        if (qemu_plugin_insn_size(insn) == sizeof(arm_insn) &&
            qemu_plugin_insn_data(insn, bytes, sizeof(bytes)) == sizeof(bytes) &&
            !memcmp(bytes, arm_insn, sizeof(bytes))) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_arm_insn,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void on_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    int64_t first = -1, second = -1;

    if (g_once_init_enter(&ram_looked_up)) {
        /* At the first translation the machine's RAM is mapped. */
        if (ram_id && !find_ram(ram_id)) {
            fprintf(stderr, "wss-truth: ram=%s: no memory-backend-memfd of %" PRIu64
                    " MiB in /proc/self/maps: fetches are not counted\n", ram_id, npages >> 8);
        }
        fprintf(out, "wss-truth pages=%" PRIu64 " fetches=%s\n", npages,
                ram_host ? "yes" : "no");
        g_once_init_leave(&ram_looked_up, 1);
    }
    if (!ram_host) {
        goto mem;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t p = host_to_pfn(qemu_plugin_insn_haddr(qemu_plugin_tb_get_insn(tb, i)));

        if (p < 0) {
            continue;
        }
        if (first < 0) {
            first = p;
        } else if (p != first && second < 0) {
            second = p;
        }
    }
    if (first >= 0) {
        uint64_t u = (uint64_t)(first + 1) | ((uint64_t)(second + 1) << 32);

        qemu_plugin_register_vcpu_tb_exec_cb(tb, on_tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                             (void *)(uintptr_t)u);
    }
mem:
    for (size_t i = 0; i < n; i++) {
        qemu_plugin_register_vcpu_mem_cb(qemu_plugin_tb_get_insn(tb, i), on_mem,
                                         QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_MEM_RW, NULL);
    }
}

static void on_plugin_exit(qemu_plugin_id_t id, void *p)
{
    g_mutex_lock(&cut_lock);
    dump(cur, windows_seen < 0 ? "pre" : "tail");
    fclose(out);
    out = NULL;
    g_mutex_unlock(&cut_lock);
}

/*
 * The host mapping of guest RAM: a memory-backend-memfd (QEMU names every
 * such memfd after its type, not its id) of exactly ram-mib MiB, mapped
 * whole in /proc/self/maps.
 */
static bool find_ram(const char *kind)
{
    char line[512];
    FILE *f = fopen("/proc/self/maps", "r");
    bool found = false;

    if (!f || strcmp(kind, "memfd")) {
        if (f) {
            fclose(f);
        }
        return false;
    }
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi, off;

        if (!strstr(line, "/memfd:memory-backend-memfd") ||
            sscanf(line, "%lx-%lx %*s %lx", &lo, &hi, &off) != 3 || off != 0 ||
            hi - lo != npages << 12) {
            continue;
        }
        ram_host = lo;
        ram_size = hi - lo;
        found = true;
        break;
    }
    fclose(f);
    return found;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = NULL, *ram = NULL;
    uint64_t mib = 4096;

    for (int i = 0; i < argc; i++) {
        char *v = strchr(argv[i], '=');

        if (!v) {
            goto bad;
        }
        v++;
        if (g_str_has_prefix(argv[i], "out=")) {
            path = v;
        } else if (g_str_has_prefix(argv[i], "ram=")) {
            ram = v;
        } else if (g_str_has_prefix(argv[i], "arm=")) {
            if (strcmp(v, "insn")) {
                goto bad;
            }
            arm_by_insn = true;
        } else if (g_str_has_prefix(argv[i], "ram-mib=")) {
            char *end;

            mib = strtoull(v, &end, 0);
            if (*end || !mib || mib > (1 << 20)) {
                goto bad;
            }
        } else {
            goto bad;
        }
    }
    if (!path || info->system_emulation == false) {
        goto bad;
    }
    out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "wss-truth: cannot write %s\n", path);
        return -1;
    }
    setvbuf(out, NULL, _IOFBF, 1 << 20);
    npages = mib << 8;
    for (int s = 0; s < 2; s++) {
        sets[s].reads = g_new0(uint32_t, npages);
        sets[s].writes = g_new0(uint32_t, npages);
        sets[s].fetches = g_new0(uint32_t, npages);
    }
    cur = &sets[0];
    ram_id = ram ? g_strdup(ram) : NULL;
    self = id;
    if (arm_by_insn) {
        fprintf(out, "wss-truth waiting for the arming instruction\n");
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans_waiting);
    } else {
        armed = 2;
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_trans);
    }
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;

bad:
    fprintf(stderr, "wss-truth: usage: -plugin wss-truth.so,out=FILE[,ram=memfd]"
            "[,ram-mib=N][,arm=insn] (system emulation only)\n");
    return -1;
}
