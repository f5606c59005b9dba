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
 *  - code and data in one page (patch 0054 tells a store beside a
 *    page's translated code from a store into it by the 64-byte lines its
 *    translations hold): stores to a data word of the page must leave
 *    the code alone, and a store that rewrites only the byte of an
 *    instruction lying in the next line, or in the next page, must still
 *    reach the code that runs;
 *  - INVLPG and the pages a translation spans (patch 0058 has a page
 *    flush recheck only the jump-cache entries whose code lies in the
 *    region it dropped): an instruction across two pages whose second
 *    page is remapped and flushed; a 2 MiB page remapped and flushed
 *    through another of its 4 KiB pages (SDM Vol. 3A 4.10.4.1: INVLPG
 *    drops the whole large page's translation); a remapped page flushed,
 *    then more pages flushed than 0058 remembers;
 *  - the same in an L2 guest (EPT, VPID), where the mapping is the
 *    guest's own and the switch happens inside non-root operation;
 *  - code rewritten by a store that an emulator helper makes, not
 *    translated code (VMREAD to memory): patch 0059 lets such stores
 *    skip the full path when the TLB entry has no flag set, and a page
 *    with code has one;
 *  - code rewritten by the page walker: a page table whose PTE is also
 *    an instruction's immediate, run, then its accessed flag set by a
 *    walk (SDM Vol. 3A 4.8); patch 0060 lets a walk's plain TLB hits
 *    skip the full probe, and a page with code is not plain;
 *  - a page written through seven mappings, then run: a store through
 *    any of them must reach the code (patch 0061 has tlb_reset_dirty()
 *    visit the entries it listed as writing the page, up to three per
 *    slot, and the whole table past that).
 */
#include "libtest.h"

#define TEST_VA		0xc0000000ull		/* a 2 MiB slot nothing else uses */
#define ADDR_MASK	0x000ffffffffff000ull
#define ROUNDS		200

static u8 code1[4096] __attribute__((aligned(4096)));
static u8 code2[4096] __attribute__((aligned(4096)));
/* Two pages of code and data: see run_mixed(). */
static u8 mixed[8192] __attribute__((aligned(4096)));
static u64 pt_a[512] __attribute__((aligned(4096)));
static u64 pt_b[512] __attribute__((aligned(4096)));
static u64 pml4_b[512] __attribute__((aligned(4096)));
static u64 pdpt_b[512] __attribute__((aligned(4096)));
static u64 pd_b[512] __attribute__((aligned(4096)));
static u64 cr3_a, cr3_b;
/*
 * TEST_VA + SPAN_PAGE: span0, then span1a or span1b, holding "mov
 * $imm32, %eax; ret" from SPAN_OFF, across the two pages.
 */
#define SPAN_PAGE	2
#define SPAN_OFF	0xffd
static u8 span0[4096] __attribute__((aligned(4096)));
static u8 span1a[4096] __attribute__((aligned(4096)));
static u8 span1b[4096] __attribute__((aligned(4096)));
/* Mapped as one 2 MiB page at BIG_VA, one or the other. */
#define BIG_VA		(TEST_VA + (2ull << 20))
#define BIG_SIZE	(2ull << 20)
static u8 big_a[BIG_SIZE] __attribute__((aligned(BIG_SIZE)));
static u8 big_b[BIG_SIZE] __attribute__((aligned(BIG_SIZE)));
/*
 * ad_page is the page table of AD_VA's 2 MiB and holds code: "xor %eax,
 * %eax; mov $imm16, %ax; ret" from AD_CODE, whose immediate is PTE
 * AD_PTE's low two bytes and whose RET is that PTE's third byte (so the
 * PTE maps AD_FRAME, 0xc3 in bits 16-23).  The entry before it, holding
 * the first four bytes, is not present.
 */
#define AD_VA		(TEST_VA + (8ull << 20))
#define AD_PTE		0x100
#define AD_CODE		(AD_PTE * 8 - 4)
#define AD_FRAME	0xc30000ull
static u64 ad_page[512] __attribute__((aligned(4096)));
/* alias_page mapped at ALIAS_VA + n * 4096, n < ALIASES: code, then data. */
#define ALIAS_VA	(TEST_VA + (12ull << 20))
#define ALIASES		6
#define ALIAS_DATA	0x800
static u8 alias_page[4096] __attribute__((aligned(4096)));
static u64 pt_alias[512] __attribute__((aligned(4096)));
#define CASES		10
/* Code rewritten by VMREAD to memory, at SMC_OFF. */
#define SMC_OFF		0x100
static u8 smc_page[4096] __attribute__((aligned(4096)));

typedef u32 (*code_fn)(void);

static inline void invlpg(u64 va)
{
	asm volatile("invlpg (%0)" :: "r"(va) : "memory");
}

static u32 call_va(u64 va)
{
	return ((code_fn)(uintptr_t)va)();
}

static u32 call_test_va(void)
{
	return call_va(TEST_VA);
}

/*
 * In mixed[]: "mov $imm, %eax; ret" at A, in one line, and at B, across a
 * line boundary (its immediate's last byte at 0x840); at C, the page's
 * last byte, a two-byte JMP whose displacement is the next page's first
 * byte, to "mov $0xc1, %eax; ret" at C1 or "mov $0xc2, %eax; ret" at C2
 * (nothing follows a JMP, so no other translation holds a byte of the
 * second page); a data word at 0x400, in a line of its own.
 */
#define MIXED_A		0x010
#define MIXED_B		0x83c
#define MIXED_C		0xfff
#define MIXED_C1	0xf90
#define MIXED_C2	0xfa0
#define MIXED_DATA	0x400

static u32 call_mixed(unsigned off)
{
	return ((code_fn)(uintptr_t)(mixed + off))();
}

/* C's displacement byte, to jump to @target. */
static u8 mixed_c_to(unsigned target)
{
	return (u8)(target - (MIXED_C + 2));
}

/*
 * Returns the calls that ran the wrong code.  Each round runs (and so
 * translates) all three, stores to the data word, checks them again, then
 * rewrites only the last byte of B's immediate and C's displacement.
 */
static u32 run_mixed(void)
{
	volatile u32 *data = (volatile u32 *)(mixed + MIXED_DATA);
	u32 bad = 0;
	int i;

	emit_ret_imm(mixed + MIXED_A, 0x0a0a0a0a);
	emit_ret_imm(mixed + MIXED_B, 0x000b0b0b);
	emit_ret_imm(mixed + MIXED_C1, 0xc1);
	emit_ret_imm(mixed + MIXED_C2, 0xc2);
	mixed[MIXED_C] = 0xeb;
	mixed[MIXED_C + 1] = mixed_c_to(MIXED_C1);
	for (i = 0; i < ROUNDS; i++) {
		u32 top = (u32)(i & 0x7f) << 24;
		u32 c = i & 1 ? 0xc2 : 0xc1;

		bad += call_mixed(MIXED_A) != 0x0a0a0a0a;
		bad += call_mixed(MIXED_B) != (0x000b0b0b | top);
		bad += call_mixed(MIXED_C) != c;
		*data += 1;
		bad += call_mixed(MIXED_A) != 0x0a0a0a0a;
		bad += call_mixed(MIXED_B) != (0x000b0b0b | top);
		bad += call_mixed(MIXED_C) != c;
		top = (u32)((i + 1) & 0x7f) << 24;
		((volatile u8 *)mixed)[MIXED_B + 4] = top >> 24;
		((volatile u8 *)mixed)[MIXED_C + 1] =
			mixed_c_to(i & 1 ? MIXED_C1 : MIXED_C2);
	}
	bad += *data != ROUNDS;
	*data = 0;
	return bad;
}

/* The second page's bytes of "mov $@value, %eax; ret" from SPAN_OFF. */
static void emit_span_tail(u8 *page, u32 value)
{
	page[0] = (u8)(value >> 16);
	page[1] = (u8)(value >> 24);
	page[2] = 0xc3;
}

/* Address space B: the boot tables, except the PD holding TEST_VA. */
static void build_spaces(void)
{
	emit_ret_imm(code1, 1);
	emit_ret_imm(code2, 2);
	pt_a[0] = pa(code1) | 3;
	pt_b[0] = pa(code2) | 3;
	*boot_pde(TEST_VA) = pa(pt_a) | 3;

	span0[SPAN_OFF] = 0xb8;
	span0[SPAN_OFF + 1] = 0x5a;
	span0[SPAN_OFF + 2] = 0x5a;
	emit_span_tail(span1a, 0x1a1a5a5a);
	emit_span_tail(span1b, 0x1b1b5a5a);
	pt_a[SPAN_PAGE] = pa(span0) | 3;
	pt_a[SPAN_PAGE + 1] = pa(span1a) | 3;
	emit_ret_imm(big_a, 0xa);
	emit_ret_imm(big_b, 0xb);
	*boot_pde(BIG_VA) = pa(big_a) | 0x83;
	memcpy((u8 *)ad_page + AD_CODE, "\x31\xc0\x66\xb8", 4);
	ad_page[AD_PTE] = AD_FRAME | 3;
	*boot_pde(AD_VA) = pa(ad_page) | 3;
	for (int n = 0; n < ALIASES; n++)
		pt_alias[n] = pa(alias_page) | 3;
	*boot_pde(ALIAS_VA) = pa(pt_alias) | 3;
	emit_ret_imm(alias_page, 0x3000);

	cr3_a = read_cr3() & ADDR_MASK;
	cr3_b = clone_space(TEST_VA, pa(pt_b) | 3, pml4_b, pdpt_b, pd_b);
}

/*
 * The cases, in whatever mode runs them (L1 or L2); returns the number
 * of calls that ran the wrong code, per case in @bad.
 */
static void run_cases(u32 bad[CASES])
{
	u64 span_va = TEST_VA + SPAN_PAGE * 4096ull + SPAN_OFF;
	int i, j;

	for (i = 0; i < CASES; i++)
		bad[i] = 0;
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
		emit_ret_imm(code1, 1000 + i);
	}
	bad[3] += call_test_va() != 1000u + ROUNDS - 1;
	emit_ret_imm(code1, 1);
	bad[4] = run_mixed();
	/* An instruction across two pages; the second one remapped, INVLPG. */
	for (i = 0; i < ROUNDS; i++) {
		bad[5] += call_va(span_va) != (i & 1 ? 0x1b1b5a5au : 0x1a1a5a5au);
		pt_a[SPAN_PAGE + 1] = pa(i & 1 ? span1a : span1b) | 3;
		invlpg(TEST_VA + (SPAN_PAGE + 1) * 4096ull);
	}
	pt_a[SPAN_PAGE + 1] = pa(span1a) | 3;
	invlpg(TEST_VA + (SPAN_PAGE + 1) * 4096ull);
	/* A 2 MiB page remapped; INVLPG of another 4 KiB page inside it. */
	for (i = 0; i < ROUNDS; i++) {
		bad[6] += call_va(BIG_VA) != (i & 1 ? 0xbu : 0xau);
		*boot_pde(BIG_VA) = pa(i & 1 ? big_a : big_b) | 0x83;
		invlpg(BIG_VA + (1 + i % 511) * 4096ull);
	}
	*boot_pde(BIG_VA) = pa(big_a) | 0x83;
	invlpg(BIG_VA);
	/* A remapped page flushed, then twelve other pages. */
	for (i = 0; i < ROUNDS; i++) {
		bad[7] += call_test_va() != (i & 1 ? 2u : 1u);
		pt_a[0] = pa(i & 1 ? code1 : code2) | 3;
		invlpg(TEST_VA);
		for (j = 1; j <= 12; j++)
			invlpg(TEST_VA + (2ull << 20) * 64 + j * 4096ull);
	}
	pt_a[0] = pa(code1) | 3;
	invlpg(TEST_VA);
	/* The PTE that is code: accessed flag clear, then set by a walk. */
	for (i = 0; i < ROUNDS; i++) {
		ad_page[AD_PTE] = AD_FRAME | 3;
		invlpg(AD_VA + AD_PTE * 4096ull);
		bad[8] += call_va((u64)(uintptr_t)ad_page + AD_CODE) != 0x03;
		(void)*(volatile u64 *)(uintptr_t)(AD_VA + AD_PTE * 4096ull);
		bad[8] += call_va((u64)(uintptr_t)ad_page + AD_CODE) != 0x23;
	}
	/*
	 * Writable entries for one page at seven places (its own address and
	 * the aliases, each filled afresh while the page has no code: the
	 * store to its code first drops the last round's translation), then
	 * the page's code translated: each of them must now reach the code.
	 */
	for (i = 0; i < ROUNDS; i++) {
		u64 via = ALIAS_VA + (i % ALIASES) * 4096ull;

		emit_ret_imm(alias_page, 0x3000 + i);
		for (j = 0; j < ALIASES; j++) {
			invlpg(ALIAS_VA + j * 4096ull);
			((volatile u8 *)(uintptr_t)(ALIAS_VA + j * 4096ull))[ALIAS_DATA] = i;
		}
		bad[9] += call_va((u64)(uintptr_t)alias_page) != 0x3000u + i;
		emit_ret_imm((volatile u8 *)(uintptr_t)via, 0x3000 + i + 1);
		bad[9] += call_va((u64)(uintptr_t)alias_page) != 0x3000u + i + 1;
	}
	emit_ret_imm(alias_page, 0x3000);
}

static void report_cases(const char *where, const u32 bad[CASES])
{
	report(bad[0] == 0, "%s: MOV to CR3 between two address spaces runs each one's code (%u of %u calls wrong)",
	       where, bad[0], 2 * ROUNDS);
	report(bad[1] == 0, "%s: PTE rewritten + MOV to CR3: the new page's code runs (%u of %u wrong)",
	       where, bad[1], ROUNDS);
	report(bad[2] == 0, "%s: PTE rewritten + INVLPG: the new page's code runs (%u of %u wrong)",
	       where, bad[2], ROUNDS);
	report(bad[3] == 0, "%s: code rewritten by a store: the new code runs (%u of %u wrong)",
	       where, bad[3], ROUNDS + 1);
	report(bad[4] == 0, "%s: code and data in one page: data stores leave the code, a store to an instruction's byte in the next line or page reaches it (%u of %u wrong)",
	       where, bad[4], 6 * ROUNDS + 1);
	report(bad[5] == 0, "%s: an instruction across two pages, the second remapped + INVLPG of it: the new bytes run (%u of %u wrong)",
	       where, bad[5], ROUNDS);
	report(bad[6] == 0, "%s: a 2 MiB page remapped + INVLPG of another 4 KiB page in it: the new page's code runs (%u of %u wrong)",
	       where, bad[6], ROUNDS);
	report(bad[7] == 0, "%s: PTE rewritten + INVLPG, then 12 more INVLPGs: the new page's code runs (%u of %u wrong)",
	       where, bad[7], ROUNDS);
	report(bad[8] == 0, "%s: a PTE that is also code, its accessed flag set by a walk: the new code runs (%u of %u wrong)",
	       where, bad[8], 2 * ROUNDS);
	report(bad[9] == 0, "%s: a page written through seven mappings, then run: a store through any of them reaches the code (%u of %u wrong)",
	       where, bad[9], 2 * ROUNDS);
}

#include "vmx.h"

/*
 * "mov $imm, %eax; ret" at smc_page + SMC_OFF, run, then rewritten with
 * a new immediate by VMREAD of a field holding the new bytes; each call
 * must return the new immediate.  Returns the number of wrong calls.
 */
static u32 run_vmread_smc(void)
{
	u64 *at = (u64 *)(smc_page + SMC_OFF);
	u32 bad = 0;
	int i;

	emit_ret_imm(smc_page + SMC_OFF, 0x4000);
	bad += call_va((u64)(uintptr_t)at) != 0x4000;
	for (i = 0; i < ROUNDS; i++) {
		u64 bytes = 0xb8 | (u64)(0x5000 + i) << 8 | 0xc3ull << 40;

		vmcs_set(VMCS_GUEST_RIP, bytes);
		if (vmread_mem(VMCS_GUEST_RIP, at) != VMX_OK)
			return ROUNDS + 1;
		bad += call_va((u64)(uintptr_t)at) != 0x5000u + i;
	}
	return bad;
}

static u32 l2_bad[CASES];

static void l2_cases(void)
{
	run_cases(l2_bad);
}

void test_main(void)
{
	u32 bad[CASES], vmread_bad;

	build_spaces();
	report(call_test_va() == 1, "TEST_VA runs the first page's code");
	run_cases(bad);
	report_cases("L1", bad);

	vmx_on();
	report(vmx_call_in_l2(l2_cases) == EXIT_REASON_VMCALL, "L2 ran its cases and left by VMCALL");
	report_cases("L2 (EPT, VPID)", l2_bad);
	vmread_bad = run_vmread_smc();
	report(vmread_bad == 0, "L1: code rewritten by VMREAD to memory: the new code runs (%u of %u wrong)",
	       vmread_bad, ROUNDS + 1);
	vmx_off();
}
