/*
 * Code at one virtual address, mapped to different physical pages: after
 * the mapping changes and the TLB is flushed (MOV to CR3, INVLPG), a call
 * to that address must run the code the new mapping reaches (SDM Vol. 3A
 * 4.10.4: flushing makes the processor use the current paging
 * structures).  Patch 0043 keeps TCG's jump cache across TLB flushes and
 * checks each old entry against the current mapping before using it;
 * with that check removed, the calls below run stale code.  Cases:
 *  - two address spaces (two PML4s) that map TEST_VA to two different
 *    code pages, switched back and forth with MOV to CR3;
 *  - one address space whose PTE is rewritten, then MOV to CR3 (same
 *    value) or INVLPG;
 *  - self-modifying code: the page's code rewritten by a store, then
 *    called again (SDM Vol. 3A 11.6); patch 0044 no longer flushes the
 *    jump cache when a store invalidates a translation, so the stale
 *    entry must be refused by its TB's CF_INVALID flag;
 *  - the same in an L2 guest (EPT, VPID), where the mapping is the
 *    guest's own and the switch happens inside non-root operation.
 */
#include "libtest.h"

#define TEST_VA		0xc0000000ull		/* a 2 MiB slot nothing else uses */
#define ADDR_MASK	0x000ffffffffff000ull
#define ROUNDS		200

static u8 code1[4096] __attribute__((aligned(4096)));
static u8 code2[4096] __attribute__((aligned(4096)));
static u64 pt_a[512] __attribute__((aligned(4096)));
static u64 pt_b[512] __attribute__((aligned(4096)));
static u64 pml4_b[512] __attribute__((aligned(4096)));
static u64 pdpt_b[512] __attribute__((aligned(4096)));
static u64 pd_b[512] __attribute__((aligned(4096)));
static u64 cr3_a, cr3_b;

typedef u32 (*code_fn)(void);

static inline void write_cr3(u64 v)
{
	asm volatile("mov %0, %%cr3" :: "r"(v) : "memory");
}

static inline void invlpg(u64 va)
{
	asm volatile("invlpg (%0)" :: "r"(va) : "memory");
}

/* "mov $value, %eax; ret" at the start of @page. */
static void emit(u8 *page, u32 value)
{
	page[0] = 0xb8;
	page[1] = value;
	page[2] = value >> 8;
	page[3] = value >> 16;
	page[4] = value >> 24;
	page[5] = 0xc3;
}

static u32 call_test_va(void)
{
	return ((code_fn)(uintptr_t)TEST_VA)();
}

/* Address space B: the boot tables, except the PD holding TEST_VA. */
static void build_spaces(void)
{
	u64 *pml4 = (u64 *)(uintptr_t)(read_cr3() & ADDR_MASK);
	unsigned i4 = (TEST_VA >> 39) & 511, i3 = (TEST_VA >> 30) & 511, i2 = (TEST_VA >> 21) & 511;
	u64 *pdpt = (u64 *)(uintptr_t)(pml4[i4] & ADDR_MASK);
	u64 *pd = (u64 *)(uintptr_t)(pdpt[i3] & ADDR_MASK);

	emit(code1, 1);
	emit(code2, 2);
	pt_a[0] = pa(code1) | 3;
	pt_b[0] = pa(code2) | 3;
	*boot_pde(TEST_VA) = pa(pt_a) | 3;

	memcpy(pml4_b, pml4, sizeof(pml4_b));
	memcpy(pdpt_b, pdpt, sizeof(pdpt_b));
	memcpy(pd_b, pd, sizeof(pd_b));
	pml4_b[i4] = pa(pdpt_b) | (pml4[i4] & ~ADDR_MASK);
	pdpt_b[i3] = pa(pd_b) | (pdpt[i3] & ~ADDR_MASK);
	pd_b[i2] = pa(pt_b) | 3;

	cr3_a = read_cr3() & ADDR_MASK;
	cr3_b = pa(pml4_b);
}

/*
 * The four cases, in whatever mode runs them (L1 or L2); returns the
 * number of calls that ran the wrong code, per case in @bad[4].
 */
static void run_cases(u32 bad[4])
{
	int i;

	bad[0] = bad[1] = bad[2] = bad[3] = 0;
	/* Two address spaces, switched by MOV to CR3. */
	for (i = 0; i < ROUNDS; i++) {
		write_cr3(cr3_a);
		bad[0] += call_test_va() != 1;
		write_cr3(cr3_b);
		bad[0] += call_test_va() != 2;
	}
	write_cr3(cr3_a);
	/* One address space, PTE rewritten, then MOV to CR3 with the same value. */
	for (i = 0; i < ROUNDS; i++) {
		pt_a[0] = pa(i & 1 ? code2 : code1) | 3;
		write_cr3(cr3_a);
		bad[1] += call_test_va() != (i & 1 ? 2u : 1u);
	}
	/* The same, INVLPG. */
	for (i = 0; i < ROUNDS; i++) {
		pt_a[0] = pa(i & 1 ? code2 : code1) | 3;
		invlpg(TEST_VA);
		bad[2] += call_test_va() != (i & 1 ? 2u : 1u);
	}
	pt_a[0] = pa(code1) | 3;
	write_cr3(cr3_a);
	/*
	 * Self-modifying code: each call first runs (and so caches) the
	 * current code, then a store changes its immediate and the next call
	 * must return the new value.
	 */
	for (i = 0; i < ROUNDS; i++) {
		bad[3] += call_test_va() != (i ? 1000u + i - 1 : 1u);
		emit(code1, 1000 + i);
	}
	bad[3] += call_test_va() != 1000u + ROUNDS - 1;
	emit(code1, 1);
}

static void report_cases(const char *where, const u32 bad[4])
{
	report(bad[0] == 0, "%s: MOV to CR3 between two address spaces runs each one's code (%u of %u calls wrong)",
	       where, bad[0], 2 * ROUNDS);
	report(bad[1] == 0, "%s: PTE rewritten + MOV to CR3: the new page's code runs (%u of %u wrong)",
	       where, bad[1], ROUNDS);
	report(bad[2] == 0, "%s: PTE rewritten + INVLPG: the new page's code runs (%u of %u wrong)",
	       where, bad[2], ROUNDS);
	report(bad[3] == 0, "%s: code rewritten by a store: the new code runs (%u of %u wrong)",
	       where, bad[3], ROUNDS + 1);
}

#include "vmx.h"

static u32 l2_bad[4];

static void l2_cases(void)
{
	run_cases(l2_bad);
}

void test_main(void)
{
	u32 bad[4];

	build_spaces();
	report(call_test_va() == 1, "TEST_VA runs the first page's code");
	run_cases(bad);
	report_cases("L1", bad);

	vmx_on();
	report(vmx_call_in_l2(l2_cases) == EXIT_REASON_VMCALL, "L2 ran its cases and left by VMCALL");
	report_cases("L2 (EPT, VPID)", l2_bad);
	vmx_off();
}
