/*
 * MOV to CR3 between address spaces whose tables the emulator sets aside
 * (patch 0056, target-i386-pml/vmx-tlb.c: vmx_cr3_flush()).  A MOV to
 * CR3 without PCID invalidates every non-global mapping (SDM Vol. 3A
 * 4.10.4.1), so whatever the emulator brings back after a switch must be
 * what a walk of the current paging structures gives.  Cases, each a
 * read of TEST_VA (A maps it to D1, B to D2) after a switch:
 *  - switching back and forth, nothing written;
 *  - A's PTE rewritten while B runs, then back to A;
 *  - A's PTE rewritten while A runs (no INVLPG), then away and back;
 *  - A's PDE rewritten (another page table) while B runs;
 *  - a page A has a writable mapping of gets code while B runs (B calls
 *    it), then A stores new code through that mapping and B calls it
 *    again: the store must reach the code (tlb_reset_dirty() over tables
 *    set aside);
 *  - L1 only: CR0.WP set while B runs, after A wrote a read-only page
 *    with CR0.WP clear: back in A, the write must fault;
 *  - L1 only: L2 rewrites L1's PTE and switches its own CR3, and L1, whose
 *    TLB may still hold the old mapping, switches away and back;
 *  - the same in L2, with EPT and VPID, and with EPT but no VPID.
 */
#include "libtest.h"
#include "vmx.h"

#define TEST_VA		0xc0000000ull		/* a 2 MiB slot nothing else uses */
#define CODE_VA		(TEST_VA + 0x1000)	/* A's writable view of code[] */
#define RO_VA		(TEST_VA + 0x2000)	/* A's read-only view of ro[] */
#define ADDR_MASK	0x000ffffffffff000ull
#define ROUNDS		100
#define CASES		6

static u64 d1[512] __attribute__((aligned(4096)));
static u64 d2[512] __attribute__((aligned(4096)));
static u64 d3[512] __attribute__((aligned(4096)));
static u64 d4[512] __attribute__((aligned(4096)));
static u64 ro[512] __attribute__((aligned(4096)));
static u8 code[4096] __attribute__((aligned(4096)));
static u64 pt_a[512] __attribute__((aligned(4096)));
static u64 pt_a2[512] __attribute__((aligned(4096)));
static u64 pt_b[512] __attribute__((aligned(4096)));
static u64 pml4_b[512] __attribute__((aligned(4096)));
static u64 pdpt_b[512] __attribute__((aligned(4096)));
static u64 pd_b[512] __attribute__((aligned(4096)));
static u64 cr3_a, cr3_b, pde_a;
static u64 *pde_slot_a;		/* A's PDE for TEST_VA (boot_pde() reads CR3) */

#define M1	0x1111000011110001ull
#define M2	0x2222000022220002ull
#define M3	0x3333000033330003ull
#define M4	0x4444000044440004ull

static inline u64 read_va(u64 va)
{
	return *(volatile u64 *)(uintptr_t)va;
}

static u32 call_code(void)
{
	return ((u32 (*)(void))(uintptr_t)pa(code))();
}

/* A: the boot tables with TEST_VA's PDE to pt_a; B: copies down to pd_b. */
static void build_spaces(void)
{
	d1[0] = M1;
	d2[0] = M2;
	d3[0] = M3;
	d4[0] = M4;
	pt_a[0] = pa(d1) | 3;
	pt_a[1] = pa(code) | 3;
	pt_a[2] = pa(ro) | 1;
	pt_a2[0] = pa(d4) | 3;
	pt_b[0] = pa(d2) | 3;
	pde_a = pa(pt_a) | 3;
	pde_slot_a = boot_pde(TEST_VA);
	*pde_slot_a = pde_a;

	cr3_a = read_cr3() & ADDR_MASK;
	cr3_b = clone_space(TEST_VA, pa(pt_b) | 3, pml4_b, pdpt_b, pd_b);
}

/* The cases every mode runs; wrong reads or calls per case in @bad. */
static void run_cases(u32 bad[CASES])
{
	int i;

	for (i = 0; i < CASES; i++)
		bad[i] = 0;
	/* Back and forth, nothing written. */
	for (i = 0; i < ROUNDS; i++) {
		write_cr3(cr3_a);
		bad[0] += read_va(TEST_VA) != M1;
		write_cr3(cr3_b);
		bad[0] += read_va(TEST_VA) != M2;
	}
	/* A's PTE rewritten while B runs. */
	for (i = 0; i < ROUNDS; i++) {
		write_cr3(cr3_a);
		read_va(TEST_VA);
		write_cr3(cr3_b);
		pt_a[0] = pa(i & 1 ? d1 : d3) | 3;
		read_va(TEST_VA);
		write_cr3(cr3_a);
		bad[1] += read_va(TEST_VA) != (i & 1 ? M1 : M3);
	}
	pt_a[0] = pa(d1) | 3;
	/* A's PTE rewritten while A runs, then away and back. */
	for (i = 0; i < ROUNDS; i++) {
		write_cr3(cr3_a);
		read_va(TEST_VA);
		pt_a[0] = pa(i & 1 ? d1 : d3) | 3;
		write_cr3(cr3_b);
		bad[2] += read_va(TEST_VA) != M2;
		write_cr3(cr3_a);
		bad[2] += read_va(TEST_VA) != (i & 1 ? M1 : M3);
	}
	pt_a[0] = pa(d1) | 3;
	/* A's PDE rewritten while B runs: another page table. */
	for (i = 0; i < ROUNDS; i++) {
		write_cr3(cr3_a);
		read_va(TEST_VA);
		write_cr3(cr3_b);
		read_va(TEST_VA);
		*pde_slot_a = i & 1 ? pde_a : pa(pt_a2) | 3;
		write_cr3(cr3_a);
		bad[3] += read_va(TEST_VA) != (i & 1 ? M1 : M4);
	}
	*pde_slot_a = pde_a;
	/*
	 * Code stored through A's writable view, called in B (the page
	 * gets code while A's tables are set aside), stored again in A.
	 */
	write_cr3(cr3_a);
	for (i = 0; i < ROUNDS; i++) {
		emit_ret_imm((volatile u8 *)(uintptr_t)CODE_VA, 500 + i);
		write_cr3(cr3_b);
		bad[4] += call_code() != 500u + i;
		write_cr3(cr3_a);
	}
	write_cr3(cr3_b);
	bad[4] += call_code() != 500u + ROUNDS - 1;
	write_cr3(cr3_a);
}

static const char *const case_names[CASES] = {
	"back and forth, nothing written: each space's page",
	"A's PTE rewritten while B runs: back in A, the new page",
	"A's PTE rewritten while A runs, then away and back: the new page",
	"A's PDE rewritten while B runs: back in A, the new table's page",
	"code stored through A's view after B ran it: B runs the new code",
	"CR0.WP set while B runs: back in A, a write to a read-only page faults",
};

static const u32 case_total[CASES] = {
	2 * ROUNDS, ROUNDS, 2 * ROUNDS, ROUNDS, ROUNDS + 1, ROUNDS,
};

static void report_cases(const char *where, const u32 bad[CASES], int n)
{
	int i;

	for (i = 0; i < n; i++)
		report(bad[i] == 0, "%s: %s (%u of %u wrong)", where, case_names[i],
		       bad[i], case_total[i]);
}

static int write_fault(u64 va)
{
	ex_clear();
	asm volatile("1: movq $1, (%0)\n2:\n\t" EX_FIXUP("1b", "2b")
		     :: "r"(va) : "memory");
	return ex_last.vector;
}

/* CR0.WP changes between the switches: another paging state. */
static u32 run_wp(void)
{
	u64 cr0 = read_cr0();
	u32 bad = 0;
	int i;

	for (i = 0; i < ROUNDS; i++) {
		write_cr3(cr3_a);
		write_cr0_safe(cr0 & ~(1ull << 16));
		bad += write_fault(RO_VA) != NO_EXCEPTION;
		write_cr3(cr3_b);
		write_cr0_safe(cr0 | (1ull << 16));
		write_cr3(cr3_a);
		bad += write_fault(RO_VA) != PF_VECTOR;
	}
	write_cr0_safe(cr0);
	write_cr3(cr3_a);
	return bad;
}

static u32 l2_bad[CASES];
static int l2_step;

static void l2_cases(void)
{
	run_cases(l2_bad);
}

/*
 * L2 rewrites L1's PTE, then switches its own CR3 (once each way), and
 * leaves by VMCALL; L1 resumes it for the next round.
 */
static void l2_rewrite(void)
{
	for (;;) {
		pt_a[0] = pa(l2_step & 1 ? d1 : d3) | 3;
		write_cr3(cr3_b);
		read_va(TEST_VA);
		write_cr3(cr3_a);
		read_va(TEST_VA);
		asm volatile("vmcall" ::: "memory");
	}
}

/*
 * L1's own TLB may still map TEST_VA to the old page after L2's write
 * (nothing L1 did invalidated it), so its tables are stale; L2's switch
 * saw the write.  L1's next MOV to CR3 must not set them aside.  L2 is
 * resumed rather than entered anew: vmx_call_in_l2()'s INVEPT flushes.
 */
static u32 run_cross(void)
{
	u32 bad = 0;
	u64 reason;

	for (l2_step = 0; l2_step < ROUNDS; l2_step++) {
		write_cr3(cr3_a);
		read_va(TEST_VA);
		if (l2_step == 0) {
			reason = vmx_call_in_l2(l2_rewrite);
		} else {
			vmx_skip_instruction();
			reason = vmx_run(false);
		}
		bad += reason != EXIT_REASON_VMCALL;
		write_cr3(cr3_b);
		bad += read_va(TEST_VA) != M2;
		write_cr3(cr3_a);
		bad += read_va(TEST_VA) != (l2_step & 1 ? M1 : M3);
	}
	pt_a[0] = pa(d1) | 3;
	write_cr3(cr3_a);
	return bad;
}

void test_main(void)
{
	u32 bad[CASES];

	build_spaces();
	report(read_va(TEST_VA) == M1, "TEST_VA reads A's page");
	run_cases(bad);
	bad[5] = run_wp();
	report_cases("L1", bad, CASES);

	vmx_on();
	report(vmx_call_in_l2(l2_cases) == EXIT_REASON_VMCALL, "L2 (EPT, VPID) ran its cases and left by VMCALL");
	report_cases("L2 (EPT, VPID)", l2_bad, CASES - 1);
	report(vmx_call_in_l2_proc2(l2_cases, PROC2_ENABLE_EPT) == EXIT_REASON_VMCALL,
	       "L2 (EPT, no VPID) ran its cases and left by VMCALL");
	report_cases("L2 (EPT, no VPID)", l2_bad, CASES - 1);
	{
		u32 n = run_cross();

		report(n == 0, "L2 rewrote L1's PTE and switched its CR3: L1, away and back, reads the new page (%u of %u wrong)",
		       n, 3 * ROUNDS);
	}
	vmx_off();
}
