/*
 * wss-touch: a memory workload with a known working set, for domUs.
 *
 * It touches pages of one anonymous region in phases; each phase says how
 * many pages, in what order, whether they are read, written or both, and
 * for how long.  Every written page carries a stamp derived from the seed,
 * the page number and how often the page was written, so the program can
 * prove at any time that its memory holds exactly what it wrote (after a
 * save/restore or a migration, say) and print a digest of it.
 *
 *   wss-touch [--seed N] [--region SIZE] [--loops N] [--verify-every N]
 *             [--quiet] [--gfns N] PHASE...
 *
 *   PHASE   = MODE:SIZE[:PATTERN[:LENGTH]]
 *   MODE    = r | w | rwN   (rwN: every page read, N % of them also written)
 *   SIZE    = pages touched per pass: 4096p, 64k, 16M, 1G
 *   PATTERN = seq | rand | strideN   (default seq)
 *   LENGTH  = Ns (seconds) | Nx (passes)   (default 1x)
 *
 * Each pass prints one line:
 *   wss-touch: loop=L phase=P pass=N mode=w pages=4096 written=4096 ms=12 digest=0x...
 * and, after a verification, "verify=ok" or "verify=BAD pages=<bad>".
 * --loops 0 repeats the phase list forever.  Exit status: 0, 1 if a
 * verification failed, 2 on a usage error.
 *
 * --gfns N: the guest-side ground truth (docs/ground-truth.md).  After the
 * first pass of every phase, and after every Nth pass when it changed, the
 * program prints the guest frame numbers of the region pages that pass
 * touched, read from /proc/self/pagemap (root only; in a PVH or HVM domU a
 * frame number is the guest-physical address >> 12):
 *   wss-touch: gfns phase=P at=PASS cover=every|this part=I/K n=PAGES
 *              absent=A hash=H r=START+LEN,...
 * runs of consecutive frames in hex, at most 120 a line; cover=every when
 * every pass of the phase touches these pages (seq, stride), cover=this
 * when only the pass reported did (rand).  It is the
 * workload's own account of which guest-physical pages it used, made
 * without the emulator, EPT or Xen.  From the second report on, before
 * it, the frames of the region's pages that are present and were not at
 * the report before (swapped in, or populated, in between):
 *   wss-touch: swapin phase=P at=PASS since=PASS0 part=I/K n=PAGES r=...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE_SIZE 4096UL
#define STAMP_WORDS 8 /* words stamped per page, spread over the page */
#define MAX_PHASES 32

enum mode { MODE_READ, MODE_WRITE, MODE_READ_WRITE };
enum pattern { PAT_SEQ, PAT_RAND, PAT_STRIDE };

struct phase {
    enum mode mode;
    unsigned write_pct;   /* MODE_READ_WRITE: share of pages also written */
    uint64_t pages;
    enum pattern pattern;
    uint64_t stride;
    bool timed;
    uint64_t length;      /* seconds if timed, else passes */
    const char *text;
};

static uint8_t *region;
static uint64_t region_pages;
static uint32_t *generation;  /* times each page was written */
static uint64_t seed = 1;
static bool quiet;
static uint64_t gfns_every;   /* --gfns N; 0: off */
static uint8_t *pass_touched; /* --gfns: pages of the current pass */

static void usage(const char *why)
{
    fprintf(stderr, "wss-touch: %s\n"
            "usage: wss-touch [--seed N] [--region SIZE] [--loops N] "
            "[--verify-every N] [--quiet] MODE:SIZE[:PATTERN[:LENGTH]]...\n", why);
    exit(2);
}

/* splitmix64: the stamp of a page and the random page order. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t page_stamp(uint64_t page, uint32_t gen, unsigned word)
{
    return mix64(seed ^ mix64(page * STAMP_WORDS + word) ^ ((uint64_t)gen << 40));
}

static uint64_t *page_word(uint64_t page, unsigned word)
{
    return (uint64_t *)(region + page * PAGE_SIZE +
                        word * (PAGE_SIZE / STAMP_WORDS));
}

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool parse_size(const char *s, uint64_t *pages)
{
    char *end;
    uint64_t v = strtoull(s, &end, 0);

    if (end == s) {
        return false;
    }
    switch (*end) {
    case 'p': break;
    case 'k': case 'K': v = v * 1024 / PAGE_SIZE; break;
    case 'm': case 'M': v = v * 1024 * 1024 / PAGE_SIZE; break;
    case 'g': case 'G': v = v * 1024 * 1024 * 1024 / PAGE_SIZE; break;
    default: return false;
    }
    *pages = v;
    return end[1] == '\0' && v > 0;
}

static bool parse_phase(char *text, struct phase *ph)
{
    char *save = NULL;
    char *mode = strtok_r(text, ":", &save);
    char *size = strtok_r(NULL, ":", &save);
    char *pat = strtok_r(NULL, ":", &save);
    char *len = strtok_r(NULL, ":", &save);
    char *end;

    if (!mode || !size || strtok_r(NULL, ":", &save)) {
        return false;
    }
    if (!strcmp(mode, "r")) {
        ph->mode = MODE_READ;
    } else if (!strcmp(mode, "w")) {
        ph->mode = MODE_WRITE;
    } else if (!strncmp(mode, "rw", 2)) {
        ph->mode = MODE_READ_WRITE;
        ph->write_pct = mode[2] ? strtoul(mode + 2, &end, 10) : 100;
        if ((mode[2] && *end) || ph->write_pct > 100) {
            return false;
        }
    } else {
        return false;
    }
    if (!parse_size(size, &ph->pages)) {
        return false;
    }
    ph->pattern = PAT_SEQ;
    if (pat && !strcmp(pat, "rand")) {
        ph->pattern = PAT_RAND;
    } else if (pat && !strncmp(pat, "stride", 6)) {
        ph->pattern = PAT_STRIDE;
        ph->stride = strtoull(pat + 6, &end, 10);
        if (*end || ph->stride == 0) {
            return false;
        }
    } else if (pat && strcmp(pat, "seq")) {
        return false;
    }
    ph->timed = false;
    ph->length = 1;
    if (len) {
        ph->length = strtoull(len, &end, 10);
        if (end == len || (*end != 's' && *end != 'x') || end[1] || !ph->length) {
            return false;
        }
        ph->timed = *end == 's';
    }
    return true;
}

/* The page a phase touches at step i of pass n. */
static uint64_t phase_page(const struct phase *ph, uint64_t i, uint64_t n)
{
    switch (ph->pattern) {
    case PAT_RAND:
        return mix64(seed + n * 0x10001 + i) % ph->pages;
    case PAT_STRIDE: {
        /* Every stride-th page first, then the next residue, ... */
        uint64_t per = (ph->pages + ph->stride - 1) / ph->stride;
        return ((i % per) * ph->stride + i / per) % ph->pages;
    }
    default:
        return i;
    }
}

static void write_page(uint64_t page)
{
    uint32_t gen = ++generation[page];

    for (unsigned w = 0; w < STAMP_WORDS; w++) {
        *(volatile uint64_t *)page_word(page, w) = page_stamp(page, gen, w);
    }
}

static uint64_t read_page(uint64_t page)
{
    return *(volatile uint64_t *)page_word(page, 0);
}

/* Compare every page with what was written to it; digest of the region. */
static uint64_t verify_region(uint64_t *bad)
{
    uint64_t digest = 0;

    *bad = 0;
    for (uint64_t p = 0; p < region_pages; p++) {
        bool ok = true;

        for (unsigned w = 0; w < STAMP_WORDS; w++) {
            uint64_t v = *(volatile uint64_t *)page_word(p, w);
            uint64_t want = generation[p] ? page_stamp(p, generation[p], w) : 0;

            ok &= v == want;
            digest = mix64(digest ^ v);
        }
        *bad += !ok;
    }
    return digest;
}

static uint64_t run_pass(const struct phase *ph, uint64_t n, uint64_t *written)
{
    uint64_t sum = 0;

    *written = 0;
    for (uint64_t i = 0; i < ph->pages; i++) {
        uint64_t page = phase_page(ph, i, n);

        if (pass_touched) {
            pass_touched[page] = 1;
        }

        switch (ph->mode) {
        case MODE_READ:
            sum += read_page(page);
            break;
        case MODE_WRITE:
            write_page(page);
            (*written)++;
            break;
        case MODE_READ_WRITE:
            sum += read_page(page);
            if (mix64(seed ^ (n << 32) ^ page) % 100 < ph->write_pct) {
                write_page(page);
                (*written)++;
            }
            break;
        }
    }
    return sum;
}

/* --gfns: frame numbers of the pages the last pass touched, sorted. */
static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

/*
 * Print sorted frames @v[0..n) as "wss-touch: HEAD part=I/K n=N TAIL r=..."
 * lines of at most 120 runs of consecutive frames in hex.
 */
static void print_frames(const char *head, const char *tail, const uint64_t *v, uint64_t n)
{
    uint64_t runs = 0, parts, part = 0;

    for (uint64_t i = 0; i < n; i++) {
        runs += !i || v[i] != v[i - 1] + 1;
    }
    parts = runs ? (runs + 119) / 120 : 1;
    for (uint64_t i = 0; i < n || !part; ) {
        printf("wss-touch: %s part=%" PRIu64 "/%" PRIu64 " n=%" PRIu64 "%s r=",
               head, ++part, parts, n, tail);
        for (unsigned k = 0; k < 120 && i < n; k++) {
            uint64_t j = i + 1;

            while (j < n && v[j] == v[j - 1] + 1) {
                j++;
            }
            printf("%s%" PRIx64 "+%" PRIx64, k ? "," : "", v[i], j - i);
            i = j;
        }
        printf("\n");
    }
}

/*
 * Print the frames of the pages the pass touched, unless they are those
 * printed last time for this phase.  A page pagemap reports absent (never
 * the case for a touched, populated, unswapped page) is counted apart.
 * Then, from the second report on, the frames of the region's pages that
 * are present now and were not at the last report: the pages swapped in
 * (or first populated) since, each into the frame given:
 *   wss-touch: swapin phase=P at=PASS since=PASS0 part=I/K n=PAGES r=...
 */
static void report_gfns(unsigned phase, uint64_t pass, bool every_pass)
{
    static uint64_t *pm, *gfn, last_hash, last_pass;
    static uint8_t *was_present;
    static unsigned last_phase = ~0u;
    static int fd = -1;
    uint64_t n = 0, nin = 0, absent = 0, hash = 0;
    size_t len = region_pages * sizeof(uint64_t);
    ssize_t got = 0;
    char head[96], tail[64];

    if (fd < 0) {
        fd = open("/proc/self/pagemap", O_RDONLY);
        pm = malloc(len);
        gfn = malloc(len);
        was_present = calloc(region_pages, 1);
        if (fd < 0 || !pm || !gfn || !was_present) {
            fprintf(stderr, "wss-touch: --gfns: /proc/self/pagemap: %s\n", strerror(errno));
            exit(2);
        }
    }
    while ((size_t)got < len) {
        ssize_t r = pread(fd, (char *)pm + got, len - got,
                          (off_t)((uintptr_t)region / PAGE_SIZE * 8 + got));

        if (r <= 0) {
            fprintf(stderr, "wss-touch: --gfns: reading pagemap: %s\n",
                    r ? strerror(errno) : "short read");
            exit(2);
        }
        got += r;
    }
    /* bit 63 present, 62 swapped, 54:0 frame (0 without CAP_SYS_ADMIN) */
    for (uint64_t p = 0; p < region_pages; p++) {
        uint64_t frame = pm[p] & ((1ULL << 55) - 1);
        bool present = (pm[p] >> 63) && frame;

        if (present && !was_present[p] && last_pass) {
            gfn[nin++] = frame;
        }
        was_present[p] = present;
    }
    if (last_pass) {
        qsort(gfn, nin, sizeof(*gfn), cmp_u64);
        snprintf(head, sizeof(head), "swapin phase=%u at=%" PRIu64 " since=%" PRIu64,
                 phase, pass, last_pass);
        print_frames(head, "", gfn, nin);
    }
    last_pass = pass;
    for (uint64_t p = 0; p < region_pages; p++) {
        if (!pass_touched[p]) {
            continue;
        }
        pass_touched[p] = 0;
        if (!(pm[p] >> 63) || !(pm[p] & ((1ULL << 55) - 1))) {
            absent++;
            continue;
        }
        gfn[n++] = pm[p] & ((1ULL << 55) - 1);
    }
    qsort(gfn, n, sizeof(*gfn), cmp_u64);
    for (uint64_t i = 0; i < n; i++) {
        hash = mix64(hash ^ gfn[i]);
    }
    if (phase == last_phase && hash == last_hash) {
        fflush(stdout);
        return;
    }
    last_phase = phase;
    last_hash = hash;
    snprintf(head, sizeof(head), "gfns phase=%u at=%" PRIu64 " cover=%s",
             phase, pass, every_pass ? "every" : "this");
    snprintf(tail, sizeof(tail), " absent=%" PRIu64 " hash=0x%016" PRIx64, absent, hash);
    print_frames(head, tail, gfn, n);
    fflush(stdout);
}

static const char *mode_name(const struct phase *ph)
{
    static const char *names[] = { "r", "w", "rw" };

    return names[ph->mode];
}

int main(int argc, char **argv)
{
    struct phase phases[MAX_PHASES];
    unsigned nphases = 0;
    uint64_t loops = 1, verify_every = 1, want_region = 0;
    uint64_t pass_no = 0;
    bool failed = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (!strcmp(a, "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(a, "--loops") && i + 1 < argc) {
            loops = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(a, "--verify-every") && i + 1 < argc) {
            verify_every = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(a, "--region") && i + 1 < argc) {
            if (!parse_size(argv[++i], &want_region)) {
                usage("bad --region size");
            }
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--gfns") && i + 1 < argc) {
            char *end;

            gfns_every = strtoull(argv[++i], &end, 0);
            if (*end || !gfns_every) {
                usage("--gfns wants a pass count >= 1");
            }
        } else if (a[0] == '-') {
            usage("unknown option");
        } else {
            char *copy = strdup(a);

            if (nphases == MAX_PHASES) {
                usage("too many phases");
            }
            if (!copy || !parse_phase(copy, &phases[nphases])) {
                fprintf(stderr, "wss-touch: bad phase '%s'\n", a);
                usage("bad phase");
            }
            phases[nphases].text = a;
            nphases++;
        }
    }
    if (!nphases) {
        usage("no phase given");
    }

    region_pages = want_region;
    for (unsigned i = 0; i < nphases; i++) {
        if (phases[i].pages > region_pages) {
            region_pages = phases[i].pages;
        }
    }
    region = mmap(NULL, region_pages * PAGE_SIZE, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    generation = calloc(region_pages, sizeof(*generation));
    if (gfns_every) {
        pass_touched = calloc(region_pages, 1);
    }
    if (region == MAP_FAILED || !generation || (gfns_every && !pass_touched)) {
        fprintf(stderr, "wss-touch: cannot map %" PRIu64 " pages: %s\n",
                region_pages, strerror(errno));
        return 2;
    }
    printf("wss-touch: start seed=%" PRIu64 " region=%" PRIu64 " pages phases=%u loops=%" PRIu64 "\n",
           seed, region_pages, nphases, loops);
    fflush(stdout);

    for (uint64_t loop = 0; loops == 0 || loop < loops; loop++) {
        for (unsigned p = 0; p < nphases; p++) {
            const struct phase *ph = &phases[p];
            uint64_t start = now_ms();

            for (uint64_t n = 0;; n++) {
                uint64_t t0 = now_ms(), written, bad = 0, digest = 0;
                uint64_t sum = run_pass(ph, pass_no, &written);
                bool verify = verify_every && (pass_no + 1) % verify_every == 0;

                if (verify) {
                    digest = verify_region(&bad);
                    failed |= bad != 0;
                }
                pass_no++;
                if (!quiet || bad) {
                    printf("wss-touch: loop=%" PRIu64 " phase=%u pass=%" PRIu64
                           " mode=%s pages=%" PRIu64 " written=%" PRIu64
                           " ms=%" PRIu64 " sum=0x%" PRIx64,
                           loop, p, pass_no, mode_name(ph), ph->pages, written,
                           now_ms() - t0, sum & 0xffff);
                    if (verify) {
                        printf(" digest=0x%016" PRIx64 " verify=%s", digest, bad ? "BAD" : "ok");
                        if (bad) {
                            printf(" bad=%" PRIu64, bad);
                        }
                    }
                    printf("\n");
                    fflush(stdout);
                }
                if (gfns_every && (n == 0 || pass_no % gfns_every == 0)) {
                    /* seq and stride touch the same pages every pass */
                    report_gfns(p, pass_no, ph->pattern != PAT_RAND);
                } else if (pass_touched) {
                    memset(pass_touched, 0, region_pages);
                }
                if (ph->timed ? now_ms() - start >= ph->length * 1000 : n + 1 >= ph->length) {
                    break;
                }
            }
        }
    }
    printf("wss-touch: done passes=%" PRIu64 " %s\n", pass_no, failed ? "FAILED" : "ok");
    return failed;
}
