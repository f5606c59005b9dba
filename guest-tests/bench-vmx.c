/*
 * Benchmark guest: the same workloads run directly (L1) and as an L2 under
 * a minimal hypervisor (no exits while they run), in one boot:
 *   cpu   - a register-only mixing loop;
 *   mem   - writes with a 4 KiB stride over 64 MiB, repeated (TLB refills);
 *   exits - reads of 64 pages, then CPUID, repeated: in L2 every CPUID is a
 *           VM exit that L1 handles, so this measures what an exit costs,
 *           with VPID (TLB sets kept across entry and exit) and without;
 * L2 runs them with EPT (identity, A/D off) and, for mem, also with EPT
 * A/D + PML on (every first write to a page is logged), and with EPT A/D
 * with extended PML off and on (docs/epml.md: reads and writes, EPT-entry
 * addresses, walk filter, 2 MiB buffers; needs -cpu ...,epml=on).  Prints
 * INFO lines "bench <workload> <mode> <ticks>" and the ratios.
 */
#include "libtest.h"
#include "vmx.h"

#define CPU_ITERS	60000000ull
#define MEM_BASE	0x1000000ull		/* 16 MiB */
#define MEM_SIZE	(64ull << 20)
#define MEM_PASSES	12
#define EXIT_ITERS	20000ull
#define EXIT_PAGES	64

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

static u64 work(int w)
{
	return w == 2 ? exit_work() : w ? mem_work() : cpu_work();
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
		t = run_l2(1);
		best = t < best ? t : best;
	}
	return best;
}

/* Extended PML off vs on, same clean-page work, alternated (docs/epml.md). */
static void bench_epml(void)
{
	u64 v, off, on, entries;

	if (rdmsr_safe(MSR_IA32_VMX_EPML_CAP, &v) != NO_EXCEPTION) {
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

/*
 * The exit workload: L1 alone, then L2 with EPT, with VPID (kept TLB sets)
 * and without (every entry and exit flushes), each the best of three.
 */
static void bench_exits(u64 eptp)
{
	u64 l1 = ~0ull, vpid = ~0ull, novpid = ~0ull, t;
	int i;

	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	invept(2, 0);
	for (i = 0; i < 3; i++) {
		t = run_l1(2);
		l1 = t < l1 ? t : l1;
		vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_VPID);
		vmcs_set(VMCS_VPID, 1);
		t = run_l2(2);
		vpid = t < vpid ? t : vpid;
		vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
		t = run_l2(2);
		novpid = t < novpid ? t : novpid;
	}
	info("bench exits L1 %llu", (unsigned long long)l1);
	info("bench exits L2-ept-vpid %llu (%llu per exit)", (unsigned long long)vpid,
	     (unsigned long long)((vpid - l1) / EXIT_ITERS));
	info("bench exits L2-ept-novpid %llu (%llu per exit)", (unsigned long long)novpid,
	     (unsigned long long)((novpid - l1) / EXIT_ITERS));
	info("bench exits VPID/no-VPID speed %llu.%02llu", (unsigned long long)(novpid * 100 / vpid) / 100,
	     (unsigned long long)(novpid * 100 / vpid) % 100);
}

void test_main(void)
{
	u64 l1_cpu, l1_mem, l2_cpu, l2_mem, l2_mem_pml, eptp;
	int i;

	/* Warm-up: translate the code and fault in all guest RAM first. */
	run_l1(0);
	run_l1(1);

	vmx_on();
	vmx_setup_vmcs(vmcs, l2_main, guest_stack + sizeof(guest_stack));
	eptp = ept_build_identity(false);
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	invept(2, 0);
	run_l2(0);

	/* Alternate L1 and L2 runs; keep each one's best of three. */
	l1_cpu = min3(run_l1(0), (l2_cpu = run_l2(0), run_l1(0)), run_l1(0));
	l2_cpu = min3(l2_cpu, run_l2(0), run_l2(0));
	l1_mem = min3(run_l1(1), (l2_mem = run_l2(1), run_l1(1)), run_l1(1));
	l2_mem = min3(l2_mem, run_l2(1), run_l2(1));
	info("bench cpu L1 %llu", (unsigned long long)l1_cpu);
	info("bench mem L1 %llu", (unsigned long long)l1_mem);
	info("bench cpu L2-ept %llu", (unsigned long long)l2_cpu);
	info("bench mem L2-ept %llu", (unsigned long long)l2_mem);

	/* EPT A/D + PML, log drained on every PML-full exit. */
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_PML);
	vmcs_set(VMCS_PML_ADDRESS, (u64)(uintptr_t)pml_log);
	vmcs_set(VMCS_GUEST_PML_INDEX, 511);
	l2_mem_pml = ~0ull;
	for (i = 0; i < 3; i++) {
		u64 t;

		eptp = ept_build_identity(true);	/* every page clean again */
		vmcs_set(VMCS_EPT_POINTER, eptp);
		invept(2, 0);
		t = run_l2(1);
		l2_mem_pml = t < l2_mem_pml ? t : l2_mem_pml;
	}
	info("bench mem L2-ept-pml %llu", (unsigned long long)l2_mem_pml);

	bench_exits(eptp);

	ratio("cpu", l1_cpu, l2_cpu);
	ratio("mem(EPT)", l1_mem, l2_mem);
	ratio("mem(EPT+A/D+PML)", l1_mem, l2_mem_pml);
	bench_epml();
	report(result != 0, "the workloads ran");
	vmx_off();
}
