/*
 * xen-epml: dom0's side of extended PML (docs/xen-pml.md).
 *
 *   xen-epml enable DOMID [--no-reads] [--no-writes] [--no-filter]
 *                         [--buf-kib N] [--notify-cpu C]
 *                         [--posted VCPU [--post-vector V]] [--dom0-drain]
 *   xen-epml disable DOMID
 *   xen-epml info DOMID
 *   xen-epml collect DOMID [--csv]
 *   xen-epml wss DOMID --interval S --windows N [--csv] [--sync] [--pages]
 *                         [--truth-marker] [--io-marker FILE] [--console-log FILE]
 *   xen-epml pml-wss DOMID --interval S --windows N [--csv] [--sync] [--pages]
 *                         [--truth-marker] [--io-marker FILE] [--console-log FILE]
 *   xen-epml sample-wss DOMID --interval S --windows N [--samples K]
 *                         [--seed X] [--csv] [--sync] [--io-marker FILE]
 *                         [--console-log FILE]
 *
 * enable/disable/collect are the research's enable_log_dirty,
 * disable_log_dirty and collect-logs operations, on the extended PML Xen
 * patch series (xen-pml/patches): XEN_DOMCTL_epml_op through
 * /dev/xen/privcmd, with its buffer in /dev/xen/hypercall memory.  "wss"
 * opens a window, waits S seconds (draining on VIRQ_EPML is Xen's job;
 * the tool counts the notifications it gets), reads the window's pages
 * and prints the working set: pages, MiB, written pages, and the hot/cold
 * split by the longmap (hot: touched in at least half of the windows so
 * far).  "pml-wss" is the stock-PML baseline: Xen's log-dirty mode (PML
 * on the CPU, writes only), one CLEAN per window, the dirty pages counted.
 * "sample-wss" is VMware ESX's statistical sampling: K random RAM pages
 * lose all access each window (XEN_DOMCTL_wss_sample, patch 0003), the
 * f of them the guest faults on give f/K times its memory.
 * Every window also ends with a machine-readable line,
 * "@@QPML est name=epml|pml|sample w=N pages=P written=W t=T".
 * wss --pages also prints the window's pages, as ranges of gfns, so the
 * host can score the estimate page by page against a ground truth:
 * "@@QPML pages est=epml kind=all w=N part=I/K n=P r=START+LEN,..." (hex,
 * K lines), which of them were written (kind=written-bits, a bit per page:
 * print_written_bits), and after the last window each page's heat:
 * the longmap's windows accessed and written (see print_heat).
 * wss --truth-marker: at each boundary, with the domU paused, store the
 * value 0x51504d4c4354NNNN (N: the window that ends) to memory: the TCG
 * plugin truth/wss-truth.c cuts its own window there (docs/ground-truth.md).
 * --io-marker FILE: at each boundary, also write "qpml-cut est=E w=N" to
 * FILE (dom0's tracefs trace_marker), so that a trace recorded in dom0
 * (the domU's swap traffic, docs/estimators.md) is cut at the same points.
 * --console-log FILE: at each boundary, also print "@@QPML epml-lines est=E
 * w=N lines=L t=T": L is how many whole lines the domU's console log in dom0
 * (xenconsoled's FILE) held at the boundary, so that the host can tell which
 * of the domU's lines were printed before it, however late dom0 relays them.
 * With the domU paused there (--sync, --truth-marker), L is counted once
 * xenconsoled has drained its ring: every line the domU had handed to its
 * console driver is in, but for the driver's own small buffer.
 * Without --sync, each boundary is one XEN_DOMCTL_EPML_COLLECT_NEXT: the
 * window is read and the next one opened with the domain paused once, in
 * Xen, so no access falls between two windows.
 * enable --dom0-drain (posted mode, PVH dom0 with the module epml_dom0):
 * the buffers are dom0's, the notification is the module's vector on its
 * CPU, and "wss" drains the buffers itself on each notification, keeps
 * the window and the longmap, and enters Xen once per window
 * (XEN_DOMCTL_EPML_CUT: where each vCPU's log stands, A/D reset);
 * epml-drain.c.  It prints, per window, "@@QPML drain w=N buffers=B
 * notifications=K xen-calls=C full-exits=F dropped=D latency-us-mean=M
 * latency-us-max=X cpu-us=U" (U: this tool's CPU time in the window).
 * Static, no Xen libraries: the ABI below is the patch series'; its
 * XEN_DOMCTL_epml_op part is include/epml-domctl.h, which Xen uses too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "epml-domctl.h"
#include "epml-dom0.h"
#include "epml-drain.h"

/* ---- Xen ABI (xen/include/public, 4.17 + xen-pml series) ---------------- */

#define HYPERVISOR_domctl               36
#define XEN_DOMCTL_INTERFACE_VERSION    0x00000015
#define XEN_DOMCTL_pausedomain          3
#define XEN_DOMCTL_getdomaininfo        5
#define XEN_DOMCTL_wss_sample           88
#define HYPERVISOR_memory_op            12
#define XENMEM_maximum_gpfn             14
#define XEN_DOMCTL_unpausedomain        4

/* XEN_DOMCTL_shadow_op (10): log-dirty, the stock-PML baseline. */
#define XEN_DOMCTL_shadow_op            10
#define SHADOW_OP_OFF                   0
#define SHADOW_OP_ENABLE_LOGDIRTY       2
#define SHADOW_OP_CLEAN                 11
#define PML_BITMAP_PAGES                (1ul << 21)     /* gfns: 8 GiB */

struct shadow_op {
	uint32_t op, mode, mb, pad;
	uint64_t dirty_bitmap;          /* XEN_GUEST_HANDLE_64(uint8) */
	uint64_t pages;
	uint32_t fault_count, dirty_count;
};

/* XEN_DOMCTL_wss_sample (patch 0003). */
#define WSS_SAMPLE_ARM                  0
#define WSS_SAMPLE_HARVEST              1
#define WSS_SAMPLE_SKIP                 (~(uint64_t)0)
#define WSS_SAMPLE_MAX                  4096    /* gfns per call */

struct wss_sample_op {
	uint32_t op, nr;
	uint64_t gfns;                  /* XEN_GUEST_HANDLE_64(uint64) */
	uint64_t count;
};

/* The head of xen_domctl_getdomaininfo. */
struct domaininfo {
	uint16_t domain, pad1;
	uint32_t flags;
	uint64_t tot_pages, max_pages;
};

struct xen_domctl {
	uint32_t cmd;
	uint32_t interface_version;
	uint16_t domain;
	uint16_t pad[3];
	union {
		struct xen_domctl_epml_op epml;
		struct shadow_op shadow;
		struct wss_sample_op sample;
		struct domaininfo info;
		uint8_t pad[128];
	} u;
};

_Static_assert(sizeof(struct xen_domctl_epml_op) == 128, "epml_op fills the domctl union exactly");
_Static_assert(sizeof(struct shadow_op) == 40, "xen_domctl_shadow_op is 40 bytes");
_Static_assert(sizeof(struct wss_sample_op) == 24, "xen_domctl_wss_sample is 24 bytes");

/* ---- Linux's privcmd and evtchn devices (include/uapi/xen) -------------- */

struct privcmd_hypercall {
	uint64_t op;
	uint64_t arg[5];
};
#define IOCTL_PRIVCMD_HYPERCALL _IOC(_IOC_NONE, 'P', 0, sizeof(struct privcmd_hypercall))

struct ioctl_evtchn_bind_virq {
	unsigned int virq;
};
#define IOCTL_EVTCHN_BIND_VIRQ _IOC(_IOC_NONE, 'E', 0, sizeof(struct ioctl_evtchn_bind_virq))

/* ---- hypercalls ----------------------------------------------------------- */

static int privcmd = -1;
static void *hbuf;                      /* hypercall-safe memory */
static size_t hbuf_size;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs("xen-epml: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void xen_open(size_t want)
{
	int fd;

	privcmd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
	if (privcmd < 0)
		die("/dev/xen/privcmd: %s (is this dom0, with xenfs/privcmd?)", strerror(errno));
	fd = open("/dev/xen/hypercall", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("/dev/xen/hypercall: %s", strerror(errno));
	hbuf_size = (want + 4095) & ~(size_t)4095;
	hbuf = mmap(NULL, hbuf_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (hbuf == MAP_FAILED)
		die("mapping %zu bytes of hypercall buffer: %s", hbuf_size, strerror(errno));
	close(fd);
}

/*
 * The hypercall buffer holds the domctl in its first page and the domctl's
 * payload (extended-PML pages, the log-dirty bitmap) after it.
 */
static void *payload(void)
{
	return (char *)hbuf + 4096;
}

/* A zeroed domctl @cmd for @domid, in the hypercall buffer. */
static struct xen_domctl *domctl_prepare(uint32_t cmd, uint16_t domid)
{
	struct xen_domctl *dc = hbuf;

	memset(dc, 0, sizeof(*dc));
	dc->cmd = cmd;
	dc->interface_version = XEN_DOMCTL_INTERFACE_VERSION;
	dc->domain = domid;
	return dc;
}

/* Hypercalls issued, and as many at the last estimator line. */
static unsigned long xen_calls, xen_calls_seen;

/* Issue the prepared domctl: 0 or -errno. */
static int domctl_issue(void)
{
	struct privcmd_hypercall hc = { .op = HYPERVISOR_domctl, .arg = { (uintptr_t)hbuf } };

	xen_calls++;

	return ioctl(privcmd, IOCTL_PRIVCMD_HYPERCALL, &hc) < 0 ? -errno : 0;
}

/* One XEN_DOMCTL_epml_op; @pages_room entries of room after the domctl. */
static int epml_call(uint16_t domid, struct xen_domctl_epml_op *op, uint64_t pages_room)
{
	struct xen_domctl *dc = domctl_prepare(XEN_DOMCTL_epml_op, domid);
	int rc;

	dc->u.epml = *op;
	if (pages_room) {
		dc->u.epml.nr = pages_room;
		dc->u.epml.pages = (uintptr_t)payload();
	}
	rc = domctl_issue();
	if (!rc)
		*op = dc->u.epml;
	return rc;
}

static void epml_or_die(uint16_t domid, struct xen_domctl_epml_op *op, uint64_t room, const char *what)
{
	int rc = epml_call(domid, op, room);

	switch (rc) {
	case 0:
		return;
	case -ENOSYS:
		die("%s: this hypervisor has no XEN_DOMCTL_epml_op (not built from xen-pml/)", what);
	case -EOPNOTSUPP:
		die("%s: the CPU has no extended PML (QEMU: -cpu ...,+vmx,epml=on)", what);
	case -ENODATA:
		die("%s: extended PML is not enabled for domain %u (xen-epml enable %u)",
		    what, domid, domid);
	case -EBUSY:
		die("%s: domain %u is in log-dirty mode (save/migration): stock PML is in use",
		    what, domid);
	case -EEXIST:
		die("%s: extended PML is already enabled for domain %u", what, domid);
	case -EINVAL:
		die("%s: refused (domain %u is not an HVM/PVH domain with HAP, or bad argument)",
		    what, domid);
	case -ESRCH:
		die("%s: no domain %u", what, domid);
	default:
		die("%s: %s", what, strerror(-rc));
	}
}

/* Pause or unpause @domid (a plain domctl with no payload). */
static void domain_pause_ctl(uint16_t domid, bool pause)
{
	int rc;

	domctl_prepare(pause ? XEN_DOMCTL_pausedomain : XEN_DOMCTL_unpausedomain, domid);
	rc = domctl_issue();
	if (rc)
		die("%s domain %u: %s", pause ? "pausing" : "unpausing", domid, strerror(-rc));
}

/*
 * --sync: a window boundary the host can match exactly.  The domain is
 * paused, "@@QPML epml-cut w=N" is printed, and the boundary waits for a
 * line on stdin (the host cuts its own record meanwhile, e.g. the
 * emulator's working-set oracle); then @cut runs and the domain resumes.
 */
static const char *cut_est = "epml";     /* which estimator's windows */

/* --truth-marker: the store wss-truth.c watches for (a window boundary). */
static bool truth_marker;
static volatile uint64_t truth_marker_word;

/*
 * The marker's 16 bits name the window that ends: extended PML's windows
 * are 0..N, stock PML's 0x1000 + w, sampling's 0x2000 + w, so that the
 * truth's windows of two estimators run one after the other keep
 * distinct names.
 */
/* --io-marker: the file each boundary is named in (-1: none). */
static int io_marker_fd = -1;

static void io_mark(unsigned long w)
{
	char line[64];
	int n;

	if (io_marker_fd < 0)
		return;
	n = snprintf(line, sizeof(line), "qpml-cut est=%s w=%lu\n", cut_est, w);
	/* A boundary the trace lacks would merge two windows: not silently. */
	if (write(io_marker_fd, line, n) != n)
		fprintf(stderr, "xen-epml: --io-marker: writing window %lu's boundary failed: %s\n",
			w, strerror(errno));
}

static void truth_mark(unsigned long w)
{
	uint64_t n = ((!strcmp(cut_est, "pml") ? 0x1000 : !strcmp(cut_est, "sample") ? 0x2000 : 0)
		      + w) & 0xffff;

	io_mark(w);
	if (!truth_marker)
		return;
	/*
	 * Built, stored and forgotten in one register: a marker value left in
	 * a register is stored again wherever the kernel saves registers (at
	 * the next system call), and the plugin would see a marker there.
	 */
	__asm__ volatile("movabsq $0x51504d4c43540000, %%rax\n\t"
			 "orq %1, %%rax\n\t"
			 "movq %%rax, %0\n\t"
			 "xorl %%eax, %%eax"
			 : "=m"(truth_marker_word) : "r"(n) : "rax", "memory");
}

/*
 * --truth-marker also arms the plugin when it runs with arm=insn: it
 * counts nothing until a vCPU executes exactly this instruction (its
 * bytes, "QPMLARM\0" as the immediate), so the machine boots at full
 * speed.  Run once, at option parsing: long before the first marker.
 */
static void truth_arm(void)
{
	__asm__ volatile("movabsq $0x51504d4c41524d00, %%rax\n\t"
			 "xorl %%eax, %%eax" : : : "rax", "memory");
}

/* --console-log: the domU's console log in dom0 (xenconsoled's), or NULL. */
static const char *console_log;

/*
 * "@@QPML epml-lines ..." for boundary @w: the whole lines in the console
 * log now.  @paused: the domU prints nothing more until it resumes, so
 * wait (at most 2 s) for xenconsoled to drain its ring first: the file's
 * size the same at three looks 20 ms apart.  The log only grows, so each
 * boundary reads on from where the last one stopped (a log that shrank is
 * read again from its start).  A log that cannot be read gives lines=-1,
 * which the host takes as no count.
 */
static void mark_lines(unsigned long w, double t, bool paused)
{
	static long long read_to, lines_to;	/* bytes read so far, their lines */
	struct stat st;
	long long last = -1, lines;
	char buf[65536];
	size_t n;
	FILE *f;

	if (!console_log)
		return;
	for (int i = 0, same = 0; paused && i < 100 && same < 3; i++) {
		long long size = stat(console_log, &st) == 0 ? (long long)st.st_size : -1;

		same = size == last ? same + 1 : 0;
		last = size;
		usleep(20000);
	}
	f = fopen(console_log, "r");
	if (f && fstat(fileno(f), &st) == 0 && st.st_size < read_to)
		read_to = lines_to = 0;
	if (!f || fseeko(f, read_to, SEEK_SET) != 0) {
		lines = -1;
	} else {
		while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
			read_to += n;
			for (size_t i = 0; i < n; i++)
				lines_to += buf[i] == '\n';
		}
		lines = ferror(f) ? -1 : lines_to;
	}
	if (f)
		fclose(f);
	printf("@@QPML epml-lines est=%s w=%lu lines=%lld t=%.2f\n", cut_est, w, lines, t);
	fflush(stdout);
}

static void sync_cut(uint16_t domid, unsigned long w, double t, void (*cut)(uint16_t))
{
	char line[64];

	domain_pause_ctl(domid, true);
	mark_lines(w, t, true);
	printf("@@QPML epml-cut est=%s w=%lu t=%.2f\n", cut_est, w, t);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		die("wss --sync: stdin closed while waiting for the host");
	truth_mark(w);
	cut(domid);
	domain_pause_ctl(domid, false);
}

/*
 * A window boundary: through the host (--sync) or straight away; with
 * the truth's marker, the domU is paused around the marker and the cut.
 */
static void window_cut(uint16_t domid, bool sync, unsigned long w, double t,
		       void (*cut)(uint16_t))
{
	if (sync) {
		sync_cut(domid, w, t, cut);
		return;
	}
	if (truth_marker)
		domain_pause_ctl(domid, true);
	truth_mark(w);
	cut(domid);
	mark_lines(w, t, truth_marker);
	if (truth_marker)
		domain_pause_ctl(domid, false);
}

static void cut_new_window(uint16_t domid)
{
	struct xen_domctl_epml_op op = { .op = XEN_DOMCTL_EPML_NEW_WINDOW };

	epml_or_die(domid, &op, 0, "wss");
}

static uint64_t cut_room;
static struct xen_domctl_epml_op cut_result;

static void cut_collect_and_open(uint16_t domid)
{
	memset(&cut_result, 0, sizeof(cut_result));
	cut_result.op = XEN_DOMCTL_EPML_COLLECT_NEXT;
	epml_or_die(domid, &cut_result, cut_room, "wss");
}

/*
 * --dom0-drain (epml-drain.c): dom0 holds the window.  A cut drains what
 * is handed over, asks Xen where each vCPU's log stands (CUT: the domain
 * paused inside the call, A/D flags reset, next window open), takes the
 * entries before that point, and fills cut_result as COLLECT_NEXT would.
 */
static double now_s(void);
static struct epml_drain drain;
static bool dom0_drain;

static void cut_dom0(uint16_t domid)
{
	uint64_t where[EPML_DOM0_MAX_VCPUS];

	epml_drain_full(&drain);
	memset(&cut_result, 0, sizeof(cut_result));
	cut_result.op = XEN_DOMCTL_EPML_CUT;
	epml_or_die(domid, &cut_result, EPML_DOM0_MAX_VCPUS, "wss (cut)");
	if (cut_result.nr != drain.nr_vcpus)
		die("wss: domain %u has %llu vCPUs, dom0's buffers are for %u", domid,
		    (unsigned long long)cut_result.nr, drain.nr_vcpus);
	memcpy(where, payload(), drain.nr_vcpus * sizeof(uint64_t));
	epml_drain_cut(&drain, where);
	cut_result.touched = drain.touched;
	cut_result.written = drain.written;
	cut_result.entries = drain.entries;
	cut_result.walk = drain.walk;
	cut_result.large = drain.large;
	cut_result.out_of_range = drain.out_of_range;
	cut_result.notifications = (uint32_t)drain.notifications;
	cut_result.nr = epml_drain_pages(&drain, payload(), cut_room);
	epml_drain_next(&drain);
}

/* XEN_DOMCTL_EPML_RESUME for @vcpu of the domain being drained. */
static uint16_t drain_domid;

static void resume_vcpu(unsigned vcpu)
{
	struct xen_domctl_epml_op op = { .op = XEN_DOMCTL_EPML_RESUME, .nr = vcpu };

	epml_or_die(drain_domid, &op, 0, "wss (resume)");
}

/* This process's CPU time, in microseconds. */
static uint64_t cpu_time_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (uint64_t)t.tv_sec * 1000000 + (uint64_t)t.tv_nsec / 1000;
}

/* Sleep @secs, draining on every notification; returns how many came. */
static unsigned wait_window_dom0(double secs)
{
	double end = now_s() + secs;
	unsigned n = 0;

	for (;;) {
		double left = end - now_s();

		if (left <= 0)
			return n;
		if (epml_drain_wait(&drain, (int)(left * 1000) + 1))
			n++;
	}
}

/* One XEN_DOMCTL_shadow_op; CLEAN gets the bitmap after the domctl. */
static int shadow_call(uint16_t domid, uint32_t op, struct shadow_op *out)
{
	struct xen_domctl *dc = domctl_prepare(XEN_DOMCTL_shadow_op, domid);
	int rc;

	dc->u.shadow.op = op;
	if (op == SHADOW_OP_CLEAN) {
		dc->u.shadow.dirty_bitmap = (uintptr_t)payload();
		dc->u.shadow.pages = PML_BITMAP_PAGES;
	}
	rc = domctl_issue();
	if (!rc && out)
		*out = dc->u.shadow;
	return rc;
}

static uint64_t pml_last_dirty;
static bool pml_pages;                  /* pml-wss --pages */
static struct xen_epml_page *pml_list;      /* the last CLEAN's pages */

/* CLEAN: the pages written since the last one. */
static void cut_pml_clean(uint16_t domid)
{
	struct shadow_op so;
	const uint64_t *bm = payload();
	uint64_t n = 0;
	int rc = shadow_call(domid, SHADOW_OP_CLEAN, &so);

	if (rc)
		die("pml-wss: log-dirty CLEAN of domain %u: %s", domid, strerror(-rc));
	for (uint64_t i = 0; i < (so.pages + 63) / 64; i++) {
		for (uint64_t b = bm[i]; b; b &= b - 1) {
			if (pml_pages) {
				pml_list[n].gfn = i * 64 + (uint64_t)__builtin_ctzll(b);
				pml_list[n].flags = XEN_EPML_PAGE_WRITTEN;
			}
			n++;
		}
	}
	pml_last_dirty = n;
}

/*
 * The window's estimator line; xen-calls: the hypercalls this tool made
 * since the last one (the estimator's own entries into Xen).  Returns them.
 */
static unsigned long print_est(const char *name, unsigned long w, uint64_t pages,
			       uint64_t written, double t)
{
	unsigned long calls = xen_calls - xen_calls_seen;

	xen_calls_seen = xen_calls;
	printf("@@QPML est name=%s w=%lu pages=%llu written=%llu xen-calls=%lu t=%.2f\n", name, w,
	       (unsigned long long)pages, (unsigned long long)written, calls, t);
	return calls;
}

/* ---- VMware-style sampling (XEN_DOMCTL_wss_sample) ------------------------------ */

static uint64_t sample_max_gpfn, sample_tot_pages, sample_rng;
static uint64_t *sample_drawn;          /* bitmap over 0..max_gpfn */
static uint32_t sample_want, sample_armed, sample_last_hits;

/* xorshift64*: a fixed --seed gives the same draws. */
static uint64_t sample_rand(void)
{
	sample_rng ^= sample_rng >> 12;
	sample_rng ^= sample_rng << 25;
	sample_rng ^= sample_rng >> 27;
	return sample_rng * 0x2545F4914F6CDD1Dull;
}

/* ARM or HARVEST @nr gfns at @gfns (in the hypercall buffer): the count. */
static uint64_t wss_sample_call(uint16_t domid, uint32_t op, uint64_t *gfns, uint32_t nr)
{
	struct xen_domctl *dc = domctl_prepare(XEN_DOMCTL_wss_sample, domid);
	int rc;

	dc->u.sample.op = op;
	dc->u.sample.nr = nr;
	dc->u.sample.gfns = (uintptr_t)gfns;
	rc = domctl_issue();
	switch (rc) {
	case 0:
		return dc->u.sample.count;
	case -ENOSYS:
		die("sample-wss: this hypervisor has no XEN_DOMCTL_wss_sample (not built from xen-pml/)");
	case -EINVAL:
		die("sample-wss: refused (domain %u is not an HVM/PVH domain with HAP)", domid);
	case -EBUSY:
		die("sample-wss: domain %u uses altp2m", domid);
	case -ESRCH:
		die("sample-wss: no domain %u", domid);
	default:
		die("sample-wss: %s", strerror(-rc));
	}
}

/* The domain's size: its highest gfn and the pages it owns. */
static void sample_probe(uint16_t domid)
{
	struct privcmd_hypercall hc = { .op = HYPERVISOR_memory_op, .arg = { XENMEM_maximum_gpfn } };
	uint16_t *arg = hbuf;
	struct xen_domctl *dc;
	long gpfn;
	int rc;

	*arg = domid;
	hc.arg[1] = (uintptr_t)arg;
	gpfn = ioctl(privcmd, IOCTL_PRIVCMD_HYPERCALL, &hc);
	if (gpfn < 0)
		die("sample-wss: highest gfn of domain %u: %s", domid, strerror(errno));
	dc = domctl_prepare(XEN_DOMCTL_getdomaininfo, domid);
	rc = domctl_issue();
	if (rc || dc->u.info.domain != domid)
		die("sample-wss: no domain %u", domid);
	sample_max_gpfn = (uint64_t)gpfn;
	sample_tot_pages = dc->u.info.tot_pages;
	sample_drawn = calloc(sample_max_gpfn / 64 + 1, sizeof(uint64_t));
	if (!sample_drawn)
		die("sample-wss: out of memory");
}

/*
 * A new sample: draw distinct gfns uniformly from 0..max_gpfn and arm
 * them; Xen skips those that are not RAM, so draw again until
 * sample_want are armed (uniform over the domain's RAM pages).
 */
static void cut_sample_arm(uint16_t domid)
{
	uint64_t *s = payload(), tries = 0;

	memset(sample_drawn, 0, (sample_max_gpfn / 64 + 1) * sizeof(uint64_t));
	sample_armed = 0;
	while (sample_armed < sample_want) {
		uint32_t n = sample_want - sample_armed, kept = 0;

		if (n > WSS_SAMPLE_MAX)
			n = WSS_SAMPLE_MAX;
		if (tries + n > sample_max_gpfn + 1)
			die("sample-wss: domain %u has fewer than %u RAM pages to sample (%u found)",
			    domid, sample_want, sample_armed);
		for (uint32_t i = 0; i < n; i++) {
			uint64_t g;

			do
				g = sample_rand() % (sample_max_gpfn + 1);
			while (sample_drawn[g / 64] & (1ull << (g % 64)));
			sample_drawn[g / 64] |= 1ull << (g % 64);
			s[sample_armed + i] = g;
		}
		wss_sample_call(domid, WSS_SAMPLE_ARM, &s[sample_armed], n);
		for (uint32_t i = 0; i < n; i++)
			if (s[sample_armed + i] != WSS_SAMPLE_SKIP)
				s[sample_armed + kept++] = s[sample_armed + i];
		sample_armed += kept;
		tries += n;
	}
}

/* @op over the whole current sample, in calls of WSS_SAMPLE_MAX: the total count. */
static uint32_t sample_call_all(uint16_t domid, uint32_t op)
{
	uint64_t *s = payload();
	uint32_t total = 0;

	for (uint32_t done = 0; done < sample_armed; done += WSS_SAMPLE_MAX) {
		uint32_t n = sample_armed - done < WSS_SAMPLE_MAX ? sample_armed - done : WSS_SAMPLE_MAX;

		total += (uint32_t)wss_sample_call(domid, op, &s[done], n);
	}
	return total;
}

/* The pages of the current sample accessed since it was armed. */
static void cut_sample_harvest(uint16_t domid)
{
	sample_last_hits = sample_call_all(domid, WSS_SAMPLE_HARVEST);
}

/*
 * After the last harvest: every page of the sample must have full access
 * again.  Re-arming the same gfns succeeds only for those at rwx; a
 * harvest right after gives them back again.
 */
static void sample_check_restored(uint16_t domid)
{
	uint32_t again = sample_call_all(domid, WSS_SAMPLE_ARM);

	sample_call_all(domid, WSS_SAMPLE_HARVEST);
	if (again != sample_armed)
		die("sample-wss: %u of the last sample's %u pages did not get full access back",
		    sample_armed - again, sample_armed);
	printf("sample-wss: all %u pages of the last sample have full access again\n", again);
}

static void cut_sample(uint16_t domid)
{
	cut_sample_harvest(domid);
	cut_sample_arm(domid);
}

/* ---- commands ---------------------------------------------------------------- */

/*
 * The window's pages as "@@QPML pages" lines: runs of consecutive gfns,
 * "start+length" in hex, at most 120 runs a line (console lines stay
 * short), every line numbered "part=I/K" so a lost line is noticed.
 */
#define PAGES_RUNS_PER_LINE 120

static void print_page_list(const char *est, const char *kind, unsigned long w,
			    const struct xen_epml_page *p, uint64_t n)
{
	uint64_t runs = 0, part = 0, parts, i = 0;

	for (uint64_t k = 0; k < n; k++)
		runs += !k || p[k].gfn != p[k - 1].gfn + 1;
	parts = runs ? (runs + PAGES_RUNS_PER_LINE - 1) / PAGES_RUNS_PER_LINE : 1;
	do {
		printf("@@QPML pages est=%s kind=%s w=%lu part=%llu/%llu n=%llu r=", est, kind, w,
		       (unsigned long long)++part, (unsigned long long)parts,
		       (unsigned long long)n);
		for (unsigned k = 0; k < PAGES_RUNS_PER_LINE && i < n; k++) {
			uint64_t start = p[i].gfn, len = 1;

			while (i + len < n && p[i + len].gfn == start + len)
				len++;
			printf("%s%llx+%llx", k ? "," : "", (unsigned long long)start,
			       (unsigned long long)len);
			i += len;
		}
		printf("\n");
	} while (i < n);
}

/*
 * Page heat: the longmap's count of windows each page was read and
 * written in, as it stood after the last window.  The longmap counts from
 * ENABLE, so a page touched between ENABLE and the first window has one
 * window more; @base holds that (a page's count when it first appears,
 * less that window's own flag) and is taken off.
 */
struct heat {
	uint16_t base_r, base_w, r, w;
	bool seen;
};

static void heat_note(struct heat *h, uint64_t room, const struct xen_epml_page *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++) {
		struct heat *e;

		if (p[i].gfn >= room)
			continue;
		e = &h[p[i].gfn];
		if (!e->seen) {
			e->seen = true;
			e->base_r = p[i].reads - !!(p[i].flags & XEN_EPML_PAGE_READ);
			e->base_w = p[i].writes - !!(p[i].flags & XEN_EPML_PAGE_WRITTEN);
		}
		e->r = p[i].reads;
		e->w = p[i].writes;
	}
}

/*
 * "@@QPML heat est=epml windows=N part=I/K n=P h=START+LEN:R.W,..." (start
 * and length hex, R and W decimal): runs of consecutive gfns with the same
 * windows accessed (R) and written (W), 120 runs a line.
 */
static void print_heat(const char *est, unsigned long windows, const struct heat *h, uint64_t room)
{
	uint64_t runs = 0, count = 0, parts, part = 0, g = 0;

#define HEAT_SAME(a, b) ((a)->r - (a)->base_r == (b)->r - (b)->base_r && \
			 (a)->w - (a)->base_w == (b)->w - (b)->base_w)
	for (uint64_t i = 0; i < room; i++) {
		if (!h[i].seen)
			continue;
		runs += !i || !h[i - 1].seen || !HEAT_SAME(&h[i - 1], &h[i]);
		count++;
	}
	parts = runs ? (runs + PAGES_RUNS_PER_LINE - 1) / PAGES_RUNS_PER_LINE : 1;
	do {
		unsigned k = 0;

		printf("@@QPML heat est=%s windows=%lu part=%llu/%llu n=%llu h=", est, windows,
		       (unsigned long long)++part, (unsigned long long)parts,
		       (unsigned long long)count);
		for (; g < room && k < PAGES_RUNS_PER_LINE; g++) {
			uint64_t len = 1;

			if (!h[g].seen)
				continue;
			while (g + len < room && h[g + len].seen && HEAT_SAME(&h[g], &h[g + len]))
				len++;
			printf("%s%llx+%llx:%u.%u", k++ ? "," : "", (unsigned long long)g,
			       (unsigned long long)len, h[g].r - h[g].base_r, h[g].w - h[g].base_w);
			g += len - 1;
		}
		printf("\n");
	} while (g < room && part < parts);
#undef HEAT_SAME
}

/*
 * Which of the window's pages were written, as one bit per page of the
 * kind=all list in its order, 4 pages a hex digit (page i is bit i % 4 of
 * digit i / 4), PAGES_BITS_PER_LINE pages a line:
 * "@@QPML pages est=E kind=written-bits w=N part=I/K n=P bits=HEX".  A
 * random half of the pages written takes some 50 times less console than
 * as runs of gfns.
 */
#define PAGES_BITS_PER_LINE 4000

static void print_written_bits(const char *est, unsigned long w, const struct xen_epml_page *p,
			       uint64_t n)
{
	uint64_t parts = n ? (n + PAGES_BITS_PER_LINE - 1) / PAGES_BITS_PER_LINE : 1;

	for (uint64_t part = 0; part < parts; part++) {
		uint64_t end = (part + 1) * PAGES_BITS_PER_LINE;

		printf("@@QPML pages est=%s kind=written-bits w=%lu part=%llu/%llu n=%llu bits=", est,
		       w, (unsigned long long)part + 1, (unsigned long long)parts,
		       (unsigned long long)n);
		for (uint64_t i = part * PAGES_BITS_PER_LINE; i < n && i < end; i += 4) {
			unsigned digit = 0;

			for (unsigned k = 0; k < 4 && i + k < n; k++)
				digit |= !!(p[i + k].flags & XEN_EPML_PAGE_WRITTEN) << k;
			putchar("0123456789abcdef"[digit]);
		}
		printf("\n");
	}
}

/* The window's pages (kind=all), then which of them were written. */
static void print_pages(const char *est, unsigned long w, const struct xen_epml_page *p, uint64_t n)
{
	print_page_list(est, "all", w, p, n);
	print_written_bits(est, w, p, n);
}

static void print_stats(const struct xen_domctl_epml_op *op)
{
	printf("window %llu: %llu pages touched, %llu written (of %llu tracked)\n",
	       (unsigned long long)op->window, (unsigned long long)op->touched,
	       (unsigned long long)op->written, (unsigned long long)op->nr_gfns);
	printf("entries %llu (walk %llu, large %llu, out of range %llu), dropped %llu, "
	       "hand-overs %llu, notifications %u, both-full exits %u, slow resets %llu\n",
	       (unsigned long long)op->entries, (unsigned long long)op->walk,
	       (unsigned long long)op->large, (unsigned long long)op->out_of_range,
	       (unsigned long long)op->dropped, (unsigned long long)op->handovers,
	       op->notifications, op->full_exits, (unsigned long long)op->slow_resets);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Bind VIRQ_EPML; -1 if another dom0 process holds it (then just sleep). */
static int bind_virq(void)
{
	struct ioctl_evtchn_bind_virq b = { .virq = VIRQ_EPML };
	int fd = open("/dev/xen/evtchn", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (ioctl(fd, IOCTL_EVTCHN_BIND_VIRQ, &b) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sleep @secs, counting VIRQ_EPML notifications on @fd (if any). */
static unsigned wait_window(int fd, double secs)
{
	double end = now_s() + secs;
	unsigned n = 0;

	for (;;) {
		double left = end - now_s();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint32_t port;

		if (left <= 0)
			return n;
		if (fd < 0) {
			usleep((useconds_t)(left * 1e6));
			continue;
		}
		if (poll(&p, 1, (int)(left * 1000) + 1) > 0 &&
		    read(fd, &port, sizeof(port)) == sizeof(port)) {
			n++;
			if (write(fd, &port, sizeof(port)) != sizeof(port))  /* unmask */
				return n;
		}
	}
}

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr,
		"usage: xen-epml enable DOMID [--no-reads] [--no-writes] [--no-filter]\n"
		"                            [--buf-kib N] [--notify-cpu C]\n"
		"                            [--posted VCPU [--post-vector V]]\n"
		"       xen-epml disable DOMID\n"
		"       xen-epml info DOMID\n"
		"       xen-epml collect DOMID [--csv]\n"
		"       xen-epml wss DOMID --interval S --windows N [--csv] [--sync] [--pages]\n"
		"                     [--truth-marker] [--io-marker FILE] [--console-log FILE]\n"
		"       xen-epml pml-wss DOMID --interval S --windows N [--csv] [--sync] [--pages]\n"
		"                         [--truth-marker] [--io-marker FILE] [--console-log FILE]\n"
		"       xen-epml sample-wss DOMID --interval S --windows N [--samples K]\n"
		"                            [--seed X] [--csv] [--sync] [--io-marker FILE]\n"
		"                            [--console-log FILE]\n");
	exit(2);
}

static unsigned long parse_num(const char *s, const char *what, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || !*s || *end || v > max) {
		fprintf(stderr, "xen-epml: bad %s '%s' (0..%lu)\n", what, s, max);
		usage();
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "no-reads", no_argument, NULL, 'r' },
		{ "no-writes", no_argument, NULL, 'w' },
		{ "no-filter", no_argument, NULL, 'f' },
		{ "buf-kib", required_argument, NULL, 'b' },
		{ "notify-cpu", required_argument, NULL, 'n' },
		{ "posted", required_argument, NULL, 'P' },
		{ "post-vector", required_argument, NULL, 'V' },
		{ "dom0-drain", no_argument, NULL, 'D' },
		{ "csv", no_argument, NULL, 'c' },
		{ "interval", required_argument, NULL, 'i' },
		{ "windows", required_argument, NULL, 'W' },
		{ "sync", no_argument, NULL, 's' },
		{ "pages", no_argument, NULL, 'p' },
		{ "truth-marker", no_argument, NULL, 'T' },
		{ "samples", required_argument, NULL, 'k' },
		{ "seed", required_argument, NULL, 'S' },
		{ "io-marker", required_argument, NULL, 'M' },
		{ "console-log", required_argument, NULL, 'L' },
		{ 0 }
	};
	unsigned flags = XEN_DOMCTL_EPML_READS | XEN_DOMCTL_EPML_WRITES | XEN_DOMCTL_EPML_FILTER_WALK;
	unsigned long buf_kib = 64, notify_cpu = 0, windows = 0, samples = 1000;
	long posted_vcpu = -1;		/* --posted: dom0's collector vCPU */
	unsigned long post_vector = 0;	/* 0: that vCPU's upcall vector */
	unsigned long long seed = 0;
	double interval = 0;
	bool csv = false, sync = false, pages = false;
	const char *cmd;
	uint16_t domid;
	struct xen_domctl_epml_op op = { 0 };
	int c;

	if (argc < 3)
		usage();
	cmd = argv[1];
	domid = (uint16_t)parse_num(argv[2], "domain id", 0x7fef);
	optind = 3;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': flags &= ~XEN_DOMCTL_EPML_READS; break;
		case 'w': flags &= ~XEN_DOMCTL_EPML_WRITES; break;
		case 'f': flags &= ~XEN_DOMCTL_EPML_FILTER_WALK; break;
		case 'b': buf_kib = parse_num(optarg, "buffer size (KiB)", 2048); break;
		case 'n': notify_cpu = parse_num(optarg, "CPU", 4095); break;
		case 'P': posted_vcpu = (long)parse_num(optarg, "dom0 vCPU", 4095); break;
		case 'V': post_vector = parse_num(optarg, "vector", 255); break;
		case 'D': dom0_drain = true; break;
		case 'c': csv = true; break;
		case 'i': {
			char *end;
			interval = strtod(optarg, &end);
			if (*end || !(interval > 0 && interval <= 3600)) {
				fprintf(stderr, "xen-epml: bad interval '%s' (seconds, 0-3600)\n", optarg);
				usage();
			}
			break;
		}
		case 'W': windows = parse_num(optarg, "window count", 1000000); break;
		case 's': sync = true; break;
		case 'p': pages = true; break;
		case 'T': truth_marker = true; truth_arm(); break;
		case 'k': samples = parse_num(optarg, "sample size", 65536); break;
		case 'S': seed = parse_num(optarg, "seed", ~0ul); break;
		case 'L': console_log = optarg; break;
		case 'M':
			io_marker_fd = open(optarg, O_WRONLY | O_APPEND | O_CLOEXEC);
			if (io_marker_fd < 0)
				die("--io-marker: cannot open %s: %s", optarg, strerror(errno));
			break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	if (!strcmp(cmd, "enable")) {
		unsigned order = 0;

		if (!(flags & (XEN_DOMCTL_EPML_READS | XEN_DOMCTL_EPML_WRITES)))
			die("enable: --no-reads and --no-writes leave nothing to log");
		while ((4ul << order) < buf_kib)
			order++;
		if ((4ul << order) != buf_kib)
			die("enable: --buf-kib must be 4 KiB times a power of two (4..2048)");
		if (dom0_drain && (post_vector || posted_vcpu >= 0 || notify_cpu))
			die("enable --dom0-drain: the module names the vCPU and vector "
			    "(--posted, --post-vector and --notify-cpu do not go with it)");
		xen_open(8192);         /* the domctl, and dom0's frames after it */
		op.op = XEN_DOMCTL_EPML_ENABLE;
		op.flags = flags;
		op.buf_order = order;
		op.notify_cpu = (uint32_t)notify_cpu;
		if (post_vector && posted_vcpu < 0)
			die("enable: --post-vector goes with --posted");
		if (post_vector && post_vector < 16)
			die("enable: --post-vector must be 16..255");
		if (dom0_drain) {
			/*
			 * dom0's buffers and the module's vector: the module
			 * says which vector on which vCPU; Xen says how many
			 * sets (-ENOSPC with the number of frames it needs).
			 */
			struct epml_dom0_info info;
			struct epml_dom0_alloc a = { 0 };
			uint64_t *frames;
			int fd = open(EPML_DOM0_DEVICE, O_RDWR | O_CLOEXEC), rc;
			void *map;

			if (fd < 0)
				die("enable --dom0-drain: %s: %s (insmod epml_dom0.ko; PVH dom0 only)",
				    EPML_DOM0_DEVICE, strerror(errno));
			if (ioctl(fd, EPML_DOM0_IOC_INFO, &info) < 0)
				die("enable --dom0-drain: %s: %s", EPML_DOM0_DEVICE, strerror(errno));
			op.flags |= XEN_DOMCTL_EPML_POSTED | XEN_DOMCTL_EPML_DOM0_BUFFERS |
				    info.vector << XEN_DOMCTL_EPML_POST_VECTOR_SHIFT;
			op.notify_cpu = info.xen_vcpu;
			rc = epml_call(domid, &op, 0);
			if (rc != -ENOSPC)
				epml_or_die(domid, &op, 0, "enable --dom0-drain");
			op.nr = ((struct xen_domctl *)hbuf)->u.epml.nr;
			if (!op.nr || op.nr > 3 * EPML_DOM0_MAX_VCPUS)
				die("enable --dom0-drain: Xen asks for %llu frames", (unsigned long long)op.nr);
			a.nr_vcpus = (uint32_t)(op.nr / 3);
			a.order = order;
			frames = payload();
			a.frames = (uintptr_t)frames;
			if (ioctl(fd, EPML_DOM0_IOC_ALLOC, &a) < 0)
				die("enable --dom0-drain: %u buffer sets of 2 x %lu KiB: %s%s", a.nr_vcpus,
				    buf_kib, strerror(errno),
				    errno == EBUSY ? " (allocated before with other sizes: rmmod and insmod epml_dom0)" : "");
			/* Clean descriptors: a set used before keeps its FULL flags. */
			map = mmap(NULL, (size_t)a.nr_vcpus * EPML_DOM0_STRIDE(order) * 4096,
				   PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
			if (map == MAP_FAILED)
				die("enable --dom0-drain: mmap %s: %s", EPML_DOM0_DEVICE, strerror(errno));
			for (unsigned v = 0; v < a.nr_vcpus; v++)
				memset((char *)map + ((size_t)v * EPML_DOM0_STRIDE(order) + (2u << order)) * 4096,
				       0, 4096);
			munmap(map, (size_t)a.nr_vcpus * EPML_DOM0_STRIDE(order) * 4096);
			op.op = XEN_DOMCTL_EPML_ENABLE;
			epml_or_die(domid, &op, 3ull * a.nr_vcpus, "enable --dom0-drain");
			printf("domain %u: extended PML on (%s%s, page walk %s, dom0's buffers %lu KiB x 2 x %u vCPUs, "
			       "notifications posted to dom0 vCPU %u, vector %#x, drained in dom0)\n", domid,
			       (flags & XEN_DOMCTL_EPML_READS) ? "reads" : "",
			       (flags & XEN_DOMCTL_EPML_WRITES) ? ((flags & XEN_DOMCTL_EPML_READS) ? "+writes" : "writes") : "",
			       (flags & XEN_DOMCTL_EPML_FILTER_WALK) ? "filtered" : "logged", buf_kib,
			       a.nr_vcpus, info.xen_vcpu, info.vector);
			return 0;
		}
		if (posted_vcpu >= 0) {
			/* docs/epml.md 8.1: post to dom0's vCPU (PVH dom0). */
			op.flags |= XEN_DOMCTL_EPML_POSTED |
				    (unsigned)post_vector << XEN_DOMCTL_EPML_POST_VECTOR_SHIFT;
			op.notify_cpu = (uint32_t)posted_vcpu;
			epml_or_die(domid, &op, 0, "enable");
			printf("domain %u: extended PML on (%s%s, page walk %s, buffers %lu KiB, "
			       "notifications posted to dom0 vCPU %ld, vector %s)\n", domid,
			       (flags & XEN_DOMCTL_EPML_READS) ? "reads" : "",
			       (flags & XEN_DOMCTL_EPML_WRITES) ? ((flags & XEN_DOMCTL_EPML_READS) ? "+writes" : "writes") : "",
			       (flags & XEN_DOMCTL_EPML_FILTER_WALK) ? "filtered" : "logged", buf_kib,
			       posted_vcpu, post_vector ? "given" : "its upcall vector");
			return 0;
		}
		epml_or_die(domid, &op, 0, "enable");
		printf("domain %u: extended PML on (%s%s, page walk %s, buffers %lu KiB, "
		       "notifications to CPU %lu)\n", domid,
		       (flags & XEN_DOMCTL_EPML_READS) ? "reads" : "",
		       (flags & XEN_DOMCTL_EPML_WRITES) ? ((flags & XEN_DOMCTL_EPML_READS) ? "+writes" : "writes") : "",
		       (flags & XEN_DOMCTL_EPML_FILTER_WALK) ? "filtered" : "logged", buf_kib, notify_cpu);
	} else if (!strcmp(cmd, "disable")) {
		xen_open(4096);
		op.op = XEN_DOMCTL_EPML_DISABLE;
		epml_or_die(domid, &op, 0, "disable");
		printf("domain %u: extended PML off\n", domid);
	} else if (!strcmp(cmd, "info")) {
		xen_open(4096);
		op.op = XEN_DOMCTL_EPML_INFO;
		epml_or_die(domid, &op, 0, "info");
		print_stats(&op);
	} else if (!strcmp(cmd, "collect") || !strcmp(cmd, "wss")) {
		uint64_t room;
		int virq = -1;

		/* Room for every tracked page: ask INFO for the size first. */
		xen_open(4096);
		op.op = XEN_DOMCTL_EPML_INFO;
		epml_or_die(domid, &op, 0, cmd);
		room = op.nr_gfns;
		munmap(hbuf, hbuf_size);
		close(privcmd);
		xen_open(4096 + room * sizeof(struct xen_epml_page));

		if (!strcmp(cmd, "collect")) {
			memset(&op, 0, sizeof(op));
			op.op = XEN_DOMCTL_EPML_COLLECT;
			epml_or_die(domid, &op, room, "collect");
			if (csv)
				printf("gfn,read,written,windows_read,windows_written\n");
			for (uint64_t i = 0; i < op.nr; i++) {
				const struct xen_epml_page *p = &((const struct xen_epml_page *)payload())[i];

				printf(csv ? "%#llx,%u,%u,%u,%u\n" : "%#llx %c%c %u %u\n",
				       (unsigned long long)p->gfn,
				       csv ? (p->flags & XEN_EPML_PAGE_READ ? 1 : 0) :
					     (p->flags & XEN_EPML_PAGE_READ ? 'r' : '-'),
				       csv ? (p->flags & XEN_EPML_PAGE_WRITTEN ? 1 : 0) :
					     (p->flags & XEN_EPML_PAGE_WRITTEN ? 'w' : '-'),
				       p->reads, p->writes);
			}
			if (!csv)
				print_stats(&op);
			return 0;
		}

		if (interval <= 0 || windows == 0)
			die("wss: --interval S and --windows N are required");
		struct heat *heat = pages ? calloc(room, sizeof(*heat)) : NULL;

		if (pages && !heat)
			die("wss: no memory for the heat of %llu pages", (unsigned long long)room);
		dom0_drain = op.flags & XEN_DOMCTL_EPML_DOM0_BUFFERS;
		if (dom0_drain) {
			epml_drain_open(&drain, room);
			drain_domid = domid;
			drain.resume = resume_vcpu;
		}
		else
			virq = bind_virq();
		cut_room = room;
		double tstart = now_s();
		if (sync)
			sync_cut(domid, 0, 0, dom0_drain ? cut_dom0 : cut_new_window);
		memset(&op, 0, sizeof(op));
		op.op = XEN_DOMCTL_EPML_INFO;              /* the counters at the start */
		epml_or_die(domid, &op, 0, "wss");
		if (dom0_drain)
			op.entries = drain.entries;
		if (!sync) {
			if (truth_marker)
				domain_pause_ctl(domid, true);
			truth_mark(0);
			if (dom0_drain) {
				cut_dom0(domid);        /* what came before is thrown away */
				op.entries = drain.entries;
				op.dropped = cut_result.dropped;
			} else {
				memset(&op, 0, sizeof(op));
				op.op = XEN_DOMCTL_EPML_NEW_WINDOW;        /* start clean */
				epml_or_die(domid, &op, 0, "wss");
			}
			mark_lines(0, 0, truth_marker);
			if (truth_marker)
				domain_pause_ctl(domid, false);
			tstart = now_s();
			/* The host notes its counters here: window 1 starts. */
			printf("@@QPML epml-open w=0 t=0.00\n");
			fflush(stdout);
		}
		if (csv)
			printf("window,t_s,wss_pages,wss_mib,written,hot,cold,entries,dropped,notifications\n");
		else
			printf("%6s %8s %10s %9s %10s %10s %10s %10s %8s\n", "window", "t(s)", "wss(pages)",
			       "wss(MiB)", "written", "hot", "cold", "entries", "dropped");
		double t0 = tstart;
		uint64_t entries0 = op.entries, dropped0 = op.dropped;
		uint64_t buffers0 = drain.buffers, full0 = op.full_exits, resumes0 = drain.resumes;
		uint64_t cpu0_us = cpu_time_us();

		xen_calls_seen = xen_calls;
		for (unsigned long w = 1; w <= windows; w++) {
			unsigned notes = dom0_drain ? wait_window_dom0(interval) : wait_window(virq, interval);
			uint64_t hot = 0;

			/*
			 * Read this window and open the next at once (COLLECT_NEXT,
			 * or dom0's drain and CUT): through the host with --sync;
			 * with the truth's marker, the domU paused around it (no
			 * host round trip: a few hypercalls).
			 */
			window_cut(domid, sync, w, now_s() - tstart,
				   dom0_drain ? cut_dom0 : cut_collect_and_open);
			op = cut_result;
			for (uint64_t i = 0; i < op.nr; i++) {
				const struct xen_epml_page *p = &((const struct xen_epml_page *)payload())[i];
				unsigned seen = p->reads > p->writes ? p->reads : p->writes;

				if (2 * seen >= w)
					hot++;
			}
			uint64_t wss = op.touched, entries = op.entries - entries0;
			uint64_t dropped = op.dropped - dropped0;

			if (csv)
				printf("%lu,%.3f,%llu,%.2f,%llu,%llu,%llu,%llu,%llu,%u\n", w, now_s() - t0,
				       (unsigned long long)wss, wss / 256.0, (unsigned long long)op.written,
				       (unsigned long long)hot, (unsigned long long)(wss - hot),
				       (unsigned long long)entries, (unsigned long long)dropped, notes);
			else
				printf("%6lu %8.2f %10llu %9.2f %10llu %10llu %10llu %10llu %8llu\n", w,
				       now_s() - t0, (unsigned long long)wss, wss / 256.0,
				       (unsigned long long)op.written, (unsigned long long)hot,
				       (unsigned long long)(wss - hot), (unsigned long long)entries,
				       (unsigned long long)dropped);
			unsigned long calls = print_est("epml", w, wss, op.written, now_s() - t0);
			if (dom0_drain) {
				/*
				 * xen-calls: the cut, the pauses around it, and a
				 * RESUME for each vCPU Xen paused with both full.
				 */
				uint64_t cpu_us = cpu_time_us();

				printf("@@QPML drain w=%lu buffers=%llu notifications=%u xen-calls=%lu "
				       "full-exits=%llu resumes=%llu dropped=%llu latency-us-mean=%llu "
				       "latency-us-max=%llu cpu-us=%llu\n", w,
				       (unsigned long long)(drain.buffers - buffers0), notes,
				       calls,
				       (unsigned long long)(op.full_exits - full0),
				       (unsigned long long)(drain.resumes - resumes0),
				       (unsigned long long)dropped,
				       (unsigned long long)(drain.lat_n ? drain.lat_sum_ns / drain.lat_n / 1000 : 0),
				       (unsigned long long)(drain.lat_max_ns / 1000),
				       (unsigned long long)(cpu_us - cpu0_us));
				cpu0_us = cpu_us;
				resumes0 = drain.resumes;
				drain.lat_n = drain.lat_sum_ns = drain.lat_max_ns = 0;
				buffers0 = drain.buffers;
				full0 = op.full_exits;
			}
			if (pages) {
				print_pages("epml", w, payload(), op.nr);
				heat_note(heat, room, payload(), op.nr);
			}
			fflush(stdout);
			entries0 = op.entries;
			dropped0 = op.dropped;
		}
		if (pages)
			print_heat("epml", windows, heat, room);
		free(heat);
	} else if (!strcmp(cmd, "pml-wss")) {
		int rc;

		if (interval <= 0 || windows == 0)
			die("pml-wss: --interval S and --windows N are required");
		xen_open(4096 + PML_BITMAP_PAGES / 8);
		cut_est = "pml";
		pml_pages = pages;
		if (pages && !(pml_list = calloc(PML_BITMAP_PAGES, sizeof(*pml_list))))
			die("pml-wss: no memory for the page list");
		rc = shadow_call(domid, SHADOW_OP_ENABLE_LOGDIRTY, NULL);
		if (rc == -EINVAL || rc == -EBUSY)
			die("pml-wss: log-dirty refused for domain %u (already in log-dirty mode, "
			    "or extended PML on it: xen-epml disable %u): %s", domid, domid, strerror(-rc));
		if (rc)
			die("pml-wss: enabling log-dirty for domain %u: %s", domid, strerror(-rc));
		double t0 = now_s();
		window_cut(domid, sync, 0, 0, cut_pml_clean);
		xen_calls_seen = xen_calls;
		if (csv)
			printf("window,t_s,written_pages,written_mib\n");
		else
			printf("%6s %8s %14s %9s\n", "window", "t(s)", "dirty(pages)", "(MiB)");
		for (unsigned long w = 1; w <= windows; w++) {
			wait_window(-1, interval);
			window_cut(domid, sync, w, now_s() - t0, cut_pml_clean);
			printf(csv ? "%lu,%.3f,%llu,%.2f\n" : "%6lu %8.2f %14llu %9.2f\n", w, now_s() - t0,
			       (unsigned long long)pml_last_dirty, pml_last_dirty / 256.0);
			print_est("pml", w, pml_last_dirty, pml_last_dirty, now_s() - t0);
			if (pages)
				print_page_list("pml", "all", w, pml_list, pml_last_dirty);
			fflush(stdout);
		}
		rc = shadow_call(domid, SHADOW_OP_OFF, NULL);
		if (rc)
			die("pml-wss: turning log-dirty off for domain %u: %s", domid, strerror(-rc));
	} else if (!strcmp(cmd, "sample-wss")) {
		if (interval <= 0 || windows == 0)
			die("sample-wss: --interval S and --windows N are required");
		if (samples == 0)
			die("sample-wss: --samples must be at least 1");
		xen_open(4096 + samples * sizeof(uint64_t));
		cut_est = "sample";
		sample_want = (uint32_t)samples;
		if (!seed)
			seed = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
		sample_rng = seed;
		sample_probe(domid);
		printf("domain %u: %llu pages, gfns 0..%#llx; %u pages sampled a window (seed %llu)\n",
		       domid, (unsigned long long)sample_tot_pages,
		       (unsigned long long)sample_max_gpfn, sample_want, seed);
		double t0 = now_s();
		window_cut(domid, sync, 0, 0, cut_sample_arm);
		xen_calls_seen = xen_calls;
		if (csv)
			printf("window,t_s,sampled,accessed,wss_pages,wss_mib,ci95_pages\n");
		else
			printf("%6s %8s %8s %8s %10s %9s %10s\n", "window", "t(s)", "sampled", "accessed",
			       "wss(pages)", "wss(MiB)", "+-95%");
		for (unsigned long w = 1; w <= windows; w++) {
			wait_window(-1, interval);
			uint32_t n = sample_armed;
			window_cut(domid, sync, w, now_s() - t0,
				   w < windows ? cut_sample : cut_sample_harvest);
			/* f/n of the domain's pages; the binomial's 95% interval. */
			double p = (double)sample_last_hits / n;
			uint64_t est = (uint64_t)(p * sample_tot_pages + 0.5);
			double ci = 1.96 * sqrt(p * (1 - p) / n) * sample_tot_pages;

			printf(csv ? "%lu,%.3f,%u,%u,%llu,%.2f,%.0f\n" : "%6lu %8.2f %8u %8u %10llu %9.2f %10.0f\n",
			       w, now_s() - t0, n, sample_last_hits, (unsigned long long)est, est / 256.0, ci);
			printf("@@QPML est name=sample w=%lu pages=%llu written=0 n=%u hits=%u tot=%llu "
			       "xen-calls=%lu t=%.2f\n", w, (unsigned long long)est, n, sample_last_hits,
			       (unsigned long long)sample_tot_pages, xen_calls - xen_calls_seen,
			       now_s() - t0);
			xen_calls_seen = xen_calls;
			fflush(stdout);
		}
		sample_check_restored(domid);
	} else {
		fprintf(stderr, "xen-epml: unknown command '%s'\n", cmd);
		usage();
	}
	return 0;
}
