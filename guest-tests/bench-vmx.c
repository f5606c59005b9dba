/*
 * Benchmark guest: the same workloads run directly (L1) and as an L2 under
 * a minimal hypervisor (no exits while they run), in one boot:
 *   cpu   - a register-only mixing loop;
 *   mem   - writes with a 4 KiB stride over 64 MiB, repeated (TLB refills);
 *   exits - reads of 64 pages, then CPUID, repeated: in L2 every CPUID is a
 *           VM exit that L1 handles, so this measures what an exit costs,
 *           with VPID (TLB sets kept across entry and exit) and without;
 *   cr3   - MOV to CR3 alternating between two address spaces (two PML4s
 *           over the same tables), then reads of 16 pages, repeated: what
 *           an address-space switch costs, TLB refills included (with PCID
 *           and the no-flush bit too when the model has PCID; TCG offers
 *           none in system emulation, so that case says so and is skipped);
 *   invlpg - a 4 KiB PTE rewritten to another frame, INVLPG, a read
 *           through it, repeated (page-table updates as a kernel makes them);
 * L2 runs them with EPT (identity, A/D off) and, for mem, also with EPT
 * A/D + PML on (every first write to a page is logged), and with EPT A/D
 * with extended PML off and on (docs/epml.md: reads and writes, EPT-entry
 * addresses, walk filter, 2 MiB buffers; needs -cpu ...,epml=on).  Prints
 * INFO lines "bench <workload> <mode> <ticks>" and the ratios; each
 * workload's runs are bracketed by "phase <name> begin/end" lines, which
 * bench/bochs.sh timestamps on the host to compare emulators per workload.
 * With "-append l1-only", or on a CPU model without VMX, only the L1 runs
 * of cpu, mem, cr3 and invlpg are made, each in its phase: the workloads
 * any x86 emulator runs (stock QEMU's TCG has no VMX), so that bochs.sh
 * can set qemu-pml, upstream QEMU and Bochs side by side (bench-l1).
 */
#include "libtest.h"
#include "vmx.h"

#define CPU_ITERS	60000000ull
#define MEM_BASE	0x1000000ull		/* 16 MiB */
#define MEM_SIZE	(64ull << 20)
#define MEM_PASSES	12
#define EXIT_ITERS	20000ull
#define EXIT_PAGES	64
#define CR3_ITERS	20000ull
#define CR3_PAGES	16
#define INVLPG_ITERS	100000ull
#define INVLPG_SLOTS	64
#define INVLPG_VA	0xc0000000ull		/* a 2 MiB slot nothing else uses */

enum { W_CPU, W_MEM, W_EXITS, W_CR3, W_CR3_PCID, W_INVLPG };

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
static u64 pml_log[512] __attribute__((aligned(4096)));
/* Extended PML: two 2 MiB buffers and the descriptor. */
static u64 epml_buf[2][2 << 20 >> 3] __attribute__((aligned(4096)));
static u64 epml_desc[8] __attribute__((aligned(64)));
static volatile int workload;
static volatile u64 result;
static volatile u64 seed = 1;		/* keeps the compiler from folding the loops */

static u64 __attribute__((noinline)) cpu_work(void)
{
	u64 x = seed, i;

	for (i = 0; i < CPU_ITERS; i++)
		x = (x ^ (x >> 7)) * 0x9e3779b97f4a7c15ull + i;
	return x;
}

static u64 __attribute__((noinline)) mem_work(void)
{
	u64 p, pass, sum = 0;

	for (pass = 0; pass < MEM_PASSES; pass++)
		for (p = MEM_BASE; p < MEM_BASE + MEM_SIZE; p += 4096) {
			*(volatile u64 *)(uintptr_t)(p + pass * 8) = pass ^ p;
			sum += p;
		}
	return sum;
}

static u64 __attribute__((noinline)) exit_work(void)
{
	u64 i, p, sum = 0;

	for (i = 0; i < EXIT_ITERS; i++) {
		u32 a = 0, b, c = 0, d;

		for (p = 0; p < EXIT_PAGES; p++)
			sum += *(volatile u64 *)(uintptr_t)(MEM_BASE + p * 4096);
		asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
		sum += a;
	}
	return sum;
}

/* Two address spaces: the boot PML4 and a copy of it (same lower tables). */
static u64 pml4_b[512] __attribute__((aligned(4096)));
static u64 cr3_a, cr3_b;

#define CR4_PCIDE	(1ull << 17)
#define CR3_NOFLUSH	(1ull << 63)

static inline void write_cr4(u64 v)
{
	asm volatile("mov %0, %%cr4" :: "r"(v) : "memory");
}

static u64 __attribute__((noinline)) cr3_work(bool pcid)
{
	u64 a = cr3_a, b = cr3_b, i, p, sum = 0;

	if (pcid) {
		write_cr4(read_cr4() | CR4_PCIDE);
		a |= 1 | CR3_NOFLUSH;
		b |= 2 | CR3_NOFLUSH;
	}
	for (i = 0; i < CR3_ITERS; i++) {
		write_cr3(i & 1 ? b : a);
		for (p = 0; p < CR3_PAGES; p++)
			sum += *(volatile u64 *)(uintptr_t)(MEM_BASE + p * 4096);
	}
	write_cr3(cr3_a);
	if (pcid)
		write_cr4(read_cr4() & ~CR4_PCIDE);
	return sum;
}

/* A page table for INVLPG_VA's 2 MiB, 4 KiB pages onto the workload memory. */
static u64 inv_pt[512] __attribute__((aligned(4096)));

/* The second address space (cr3) and INVLPG_VA's page table (invlpg). */
static void paging_setup(void)
{
	memcpy(pml4_b, (void *)(uintptr_t)cr3_a, sizeof(pml4_b));
	*boot_pde(INVLPG_VA) = pa(inv_pt) | 3;
}

static u64 __attribute__((noinline)) invlpg_work(void)
{
	u64 i, sum = 0;

	for (i = 0; i < INVLPG_ITERS; i++) {
		u64 slot = i % INVLPG_SLOTS, va = INVLPG_VA + slot * 4096;

		inv_pt[slot] = (MEM_BASE + ((i * 7) % 256) * 4096) | 3;
		asm volatile("invlpg (%0)" :: "r"(va) : "memory");
		sum += *(volatile u64 *)(uintptr_t)va;
	}
	return sum;
}

static u64 work(int w)
{
	switch (w) {
	case W_MEM:
		return mem_work();
	case W_EXITS:
		return exit_work();
	case W_CR3:
	case W_CR3_PCID:
		return cr3_work(w == W_CR3_PCID);
	case W_INVLPG:
		return invlpg_work();
	}
	return cpu_work();
}

static void phase(const char *name, const char *what)
{
	info("phase %s %s", name, what);
}

static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		result = work(workload);
		asm volatile("vmcall" ::: "memory");
	}
}

static int launched;

/* With PML on, drain the log whenever it fills (exit 62) and resume. */
static u64 run_l2(int w)
{
	u64 t0, t1;
	int r;

	workload = w;
	t0 = rdtsc();
	for (;;) {
		r = vmx_enter(!launched);
		launched = 1;
		if (r != VMX_OK)
			test_abort("VM entry failed: %s", vmx_outcome_name(r));
		if (vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_PML_FULL) {
			vmcs_set(VMCS_GUEST_PML_INDEX, 511);
			continue;
		}
		if (vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_CPUID) {
			vmx_skip_instruction();
			continue;
		}
		if (vmcs_get(VMCS_EXIT_REASON) != EXIT_REASON_VMCALL)
			test_abort("unexpected exit %llu", (unsigned long long)vmcs_get(VMCS_EXIT_REASON));
		break;
	}
	t1 = rdtsc();
	vmx_skip_instruction();
	return t1 - t0;
}

static u64 run_l1(int w)
{
	u64 t0 = rdtsc();

	result = work(w);
	return rdtsc() - t0;
}

static void ratio(const char *what, u64 l1, u64 l2)
{
	info("bench %s L2/L1 speed %llu.%02llu", what, (unsigned long long)(l1 * 100 / l2) / 100,
	     (unsigned long long)(l1 * 100 / l2) % 100);
}

static u64 min3(u64 a, u64 b, u64 c)
{
	u64 m = a < b ? a : b;

	return m < c ? m : c;
}

/*
 * An identity EPT with 4 KiB pages over the first 128 MiB (the workload's
 * pages each get their own leaf, so each first write is one transition),
 * 2 MiB pages above, A/D flags clear.
 */
#define EPT4K_PTS	64
static u64 e4_pml4[512] __attribute__((aligned(4096)));
static u64 e4_pdpt[512] __attribute__((aligned(4096)));
static u64 e4_pd[512] __attribute__((aligned(4096)));
static u64 e4_pt[EPT4K_PTS][512] __attribute__((aligned(4096)));

static u64 ept_build_4k(void)
{
	memset(e4_pml4, 0, sizeof(e4_pml4));
	memset(e4_pdpt, 0, sizeof(e4_pdpt));
	e4_pml4[0] = (u64)(uintptr_t)e4_pdpt | EPT_RWX;
	e4_pdpt[0] = (u64)(uintptr_t)e4_pd | EPT_RWX;
	for (int i = 0; i < 512; i++) {
		if (i < EPT4K_PTS) {
			for (int j = 0; j < 512; j++)
				e4_pt[i][j] = (((u64)i << 21) + ((u64)j << 12)) | EPT_MT_WB | EPT_RWX;
			e4_pd[i] = (u64)(uintptr_t)e4_pt[i] | EPT_RWX;
		} else {
			e4_pd[i] = ((u64)i << 21) | (1ull << 7) | EPT_MT_WB | EPT_RWX;
		}
	}
	return (u64)(uintptr_t)e4_pml4 | 6 | (3 << 3) | (1 << 6);
}

/* Best of three L2 mem runs, each on a freshly cleaned EPT with A/D flags. */
static u64 run_l2_clean(void)
{
	u64 best = ~0ull;

	for (int i = 0; i < 3; i++) {
		u64 t;

		vmcs_set(VMCS_EPT_POINTER, ept_build_4k());
		invept(2, 0);
		memset(epml_desc, 0, sizeof(epml_desc));
		vmcs_set(VMCS_EPML_INDEX, 0);
		vmcs_set(VMCS_EPML_ACTIVE, 0);
		t = run_l2(W_MEM);
		best = t < best ? t : best;
	}
	return best;
}

/* Extended PML off vs on, same clean-page work, alternated (docs/epml.md). */
static void bench_epml(void)
{
	u64 v, off, on, entries;

	/* Bochs answers any MSR read: ask for the tertiary controls too. */
	if (rdmsr_safe(MSR_IA32_VMX_EPML_CAP, &v) != NO_EXCEPTION ||
	    !((rdmsr(MSR_IA32_VMX_PROCBASED_CTLS) >> 32) & PROC_ACTIVATE_TERTIARY)) {
		info("bench mem EPML not available on this CPU model (-cpu ...,epml=on)");
		return;
	}
	epml_setup_vmcs(ept_build_4k(), epml_buf[0], epml_buf[1], epml_desc, 9, 0, 0);
	/* Alternate off and on four times; keep each one's best run. */
	off = on = ~0ull;
	entries = 0;
	for (int round = 0; round < 4; round++) {
		u64 t;

		vmcs_set(VMCS_EPML_CONTROLS, 0);
		t = run_l2_clean();
		off = t < off ? t : off;
		vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_READ | CTL_FILTER | CTL_EPTE);
		t = run_l2_clean();
		on = t < on ? t : on;
		entries = vmcs_get(VMCS_EPML_INDEX) + 131072 * (epml_desc[3] & 0xff);
	}
	vmcs_set(VMCS_EPML_CONTROLS, 0);
	info("bench mem L2-ept-ad-epml-off %llu", (unsigned long long)off);
	info("bench mem L2-ept-ad-epml-on %llu (%llu entries per run)", (unsigned long long)on,
	     (unsigned long long)entries);
	info("bench mem EPML on/off speed %llu.%02llu (1.00 = no cost; target >= 0.95)",
	     (unsigned long long)(off * 100 / on) / 100, (unsigned long long)(off * 100 / on) % 100);
	report(entries >= (MEM_SIZE >> 12), "extended PML logged every page the workload dirtied (%llu)",
	       (unsigned long long)entries);
}

/* EPT A/D + PML for the L2, the log drained on every PML-full exit. */
static void mem_pml_controls(void)
{
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_PML);
	vmcs_set(VMCS_PML_ADDRESS, (u64)(uintptr_t)pml_log);
	vmcs_set(VMCS_GUEST_PML_INDEX, 511);
}

/* One mem run in the L2 on a rebuilt EPT (every page clean again). */
static u64 run_l2_mem_pml(u64 *eptp)
{
	*eptp = ept_build_identity(true);
	vmcs_set(VMCS_EPT_POINTER, *eptp);
	invept(2, 0);
	return run_l2(W_MEM);
}

/* Best of three alternating L1 and L2 runs of workload @w, printed. */
static void l1_vs_l2(const char *name, int w, const char *l2_mode, u64 *l1_best, u64 *l2_best)
{
	u64 l1 = ~0ull, l2 = ~0ull, t1[3], t2[3];
	int i;

	for (i = 0; i < 3; i++) {
		t1[i] = run_l1(w);
		l1 = t1[i] < l1 ? t1[i] : l1;
		t2[i] = run_l2(w);
		l2 = t2[i] < l2 ? t2[i] : l2;
	}
	info("bench %s L1 %llu", name, (unsigned long long)l1);
	info("bench %s %s %llu", name, l2_mode, (unsigned long long)l2);
	/* Every run, so that a first run's cold start is seen beside the best. */
	info("bench %s runs: L1 %llu %llu %llu, %s %llu %llu %llu", name,
	     (unsigned long long)t1[0], (unsigned long long)t1[1], (unsigned long long)t1[2], l2_mode,
	     (unsigned long long)t2[0], (unsigned long long)t2[1], (unsigned long long)t2[2]);
	if (l1_best)
		*l1_best = l1;
	if (l2_best)
		*l2_best = l2;
}

static u64 best3_l2(int w)
{
	return min3(run_l2(w), run_l2(w), run_l2(w));
}

/*
 * The exit workload: L1 alone and L2 with EPT and VPID (kept TLB sets),
 * then L2 without VPID (every entry and exit flushes), each the best of
 * three; two phases, so that bench/bochs.sh times them apart.
 */
static void bench_exits(u64 eptp)
{
	u64 l1, vpid, novpid;

	vmcs_set(VMCS_EPT_POINTER, eptp);
	invept(2, 0);
	phase("exits-vpid", "begin");
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_VPID);
	vmcs_set(VMCS_VPID, 1);
	l1_vs_l2("exits", W_EXITS, "L2-ept-vpid", &l1, &vpid);
	phase("exits-vpid", "end");
	phase("exits-novpid", "begin");
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	novpid = best3_l2(W_EXITS);
	info("bench exits L2-ept-novpid %llu", (unsigned long long)novpid);
	phase("exits-novpid", "end");
	info("bench exits per exit: with VPID %llu, without %llu",
	     (unsigned long long)((vpid - l1) / EXIT_ITERS),
	     (unsigned long long)((novpid - l1) / EXIT_ITERS));
	info("bench exits VPID/no-VPID speed %llu.%02llu", (unsigned long long)(novpid * 100 / vpid) / 100,
	     (unsigned long long)(novpid * 100 / vpid) % 100);
}

/*
 * Address-space switches and page-table updates, L1 and L2 (EPT + VPID,
 * no CR3 or INVLPG exiting: the L2 does them itself).
 */
static void bench_paging(u64 eptp)
{
	u64 l1, l2;

	paging_setup();
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_VPID);
	vmcs_set(VMCS_VPID, 1);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	invept(2, 0);

	phase("cr3", "begin");
	l1_vs_l2("cr3", W_CR3, "L2-ept-vpid", &l1, &l2);
	phase("cr3", "end");
	info("bench cr3 per switch: L1 %llu, L2 %llu", (unsigned long long)(l1 / CR3_ITERS),
	     (unsigned long long)(l2 / CR3_ITERS));
	ratio("cr3", l1, l2);
	if (cpuid(1).c & (1u << 17)) {
		phase("cr3-pcid", "begin");
		l1_vs_l2("cr3-pcid", W_CR3_PCID, "L2-ept-vpid", &l1, &l2);
		phase("cr3-pcid", "end");
		ratio("cr3-pcid", l1, l2);
	} else {
		info("bench cr3-pcid not run: the model has no PCID (TCG offers none)");
	}

	phase("invlpg", "begin");
	l1_vs_l2("invlpg", W_INVLPG, "L2-ept-vpid", &l1, &l2);
	phase("invlpg", "end");
	info("bench invlpg per update: L1 %llu, L2 %llu", (unsigned long long)(l1 / INVLPG_ITERS),
	     (unsigned long long)(l2 / INVLPG_ITERS));
	ratio("invlpg", l1, l2);
}

/* Three L1 runs of workload @w in phase @name, printed. */
static void l1_phase(const char *name, int w)
{
	u64 t[3];

	phase(name, "begin");
	for (int i = 0; i < 3; i++)
		t[i] = run_l1(w);
	phase(name, "end");
	info("bench %s L1 %llu", name, (unsigned long long)min3(t[0], t[1], t[2]));
	info("bench %s runs: L1 %llu %llu %llu", name, (unsigned long long)t[0],
	     (unsigned long long)t[1], (unsigned long long)t[2]);
}

/* The L1-only guest: no VMX instruction is executed. */
static void bench_l1_only(void)
{
	paging_setup();
	info("bench L1 only (%s): no L2 runs", test_has_arg("l1-only") ? "l1-only" : "no VMX");
	l1_phase("cpu", W_CPU);
	l1_phase("mem", W_MEM);
	l1_phase("cr3", W_CR3);
	l1_phase("invlpg", W_INVLPG);
	report(result != 0, "the workloads ran");
}

void test_main(void)
{
	u64 l1_cpu, l1_mem, l2_cpu, l2_mem, l2_mem_pml, eptp;
	int i;

	/*
	 * The 8259s off: the firmware leaves the PIT's IRQ 0 unmasked, and
	 * with interrupts disabled its first tick would stay pending for the
	 * whole run.  TCG looks at a pending interrupt request (under QEMU's
	 * big lock) every time it leaves translated code, so each VM exit and
	 * entry would pay for it; a hypervisor takes and acknowledges its
	 * ticks.
	 */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);

	/* Warm-up: translate the code and fault in all guest RAM first. */
	cr3_a = read_cr3() & ~0xfffull;
	cr3_b = pa(pml4_b);
	run_l1(W_CPU);
	run_l1(W_MEM);
	if (test_has_arg("l1-only") || !(cpuid(1).c & (1u << 5))) {
		bench_l1_only();
		return;
	}

	vmx_on();
	vmx_setup_vmcs(vmcs, l2_main, guest_stack + sizeof(guest_stack));
	eptp = ept_build_identity(false);
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	invept(2, 0);
	run_l2(W_CPU);

	/*
	 * "-append profile-exits": only the exit workload with VPID, 500
	 * times (about 10 s), for a profiler attached to the emulator.
	 */
	if (test_has_arg("profile-exits")) {
		vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_VPID);
		vmcs_set(VMCS_VPID, 1);
		for (i = 0; i < 500; i++)
			run_l2(W_EXITS);
		info("bench exits L2-ept-vpid (profile) %llu", (unsigned long long)best3_l2(W_EXITS));
		report(result != 0, "the workloads ran");
		vmx_off();
		return;
	}

	/*
	 * "-append profile-invlpg": only the INVLPG update in L1, 100 runs
	 * (10 million updates, a few seconds), for a profiler.
	 */
	if (test_has_arg("profile-invlpg")) {
		*boot_pde(INVLPG_VA) = pa(inv_pt) | 3;
		for (i = 0; i < 100; i++)
			result += work(W_INVLPG);
		report(result != 0, "the workloads ran");
		vmx_off();
		return;
	}

	/*
	 * "-append profile-mem-pml": only the mem-pml phase's run (L2, EPT
	 * A/D and PML, every page clean, so every page is refilled), 200
	 * times, for a profiler.
	 */
	if (test_has_arg("profile-mem-pml")) {
		mem_pml_controls();
		for (i = 0; i < 200; i++)
			run_l2_mem_pml(&eptp);
		report(result != 0, "the workloads ran");
		vmx_off();
		return;
	}

	/* Alternate L1 and L2 runs; keep each one's best of three. */
	phase("cpu", "begin");
	l1_vs_l2("cpu", W_CPU, "L2-ept", &l1_cpu, &l2_cpu);
	phase("cpu", "end");
	phase("mem", "begin");
	l1_vs_l2("mem", W_MEM, "L2-ept", &l1_mem, &l2_mem);
	phase("mem", "end");

	/* EPT A/D + PML (mem_pml_controls()). */
	phase("mem-pml", "begin");
	mem_pml_controls();
	l2_mem_pml = ~0ull;
	for (i = 0; i < 3; i++) {
		u64 t = run_l2_mem_pml(&eptp);

		l2_mem_pml = t < l2_mem_pml ? t : l2_mem_pml;
	}
	info("bench mem L2-ept-pml %llu", (unsigned long long)l2_mem_pml);
	phase("mem-pml", "end");

	bench_exits(eptp);
	bench_paging(eptp);

	ratio("cpu", l1_cpu, l2_cpu);
	ratio("mem(EPT)", l1_mem, l2_mem);
	ratio("mem(EPT+A/D+PML)", l1_mem, l2_mem_pml);
	phase("epml", "begin");
	bench_epml();
	phase("epml", "end");
	report(result != 0, "the workloads ran");
	vmx_off();
}
