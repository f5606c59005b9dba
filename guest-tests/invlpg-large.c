/*
 * INVLPG and large pages (SDM Vol. 3A 4.10.4.1: INVLPG invalidates the
 * TLB entries for the page that holds the address, whatever its size).
 * TCG enters a 2 MiB page 4 KiB at a time, so one large page can sit in
 * many TLB entries; INVLPG of any address in it must drop all of them.
 * TCG does so by emptying the whole mmu index when the address lies in
 * the region of large pages it tracks; a cheaper flush that picks the
 * entries (tried: a scan of the table by each entry's page size) must
 * find every entry of the large page holding the address and the
 * address's own entry.  Cases, each ROUNDS times, alternating two 2 MiB
 * frames:
 *  - a 2 MiB page read at two offsets, its PDE pointed at the other
 *    frame, INVLPG of a third offset never read: a read at the second
 *    offset must see the new frame;
 *  - a 4 KiB page inside that region (between two 2 MiB pages), its PTE
 *    rewritten, INVLPG: the read must see the new page;
 *  - MANY pages of the 2 MiB page read, more than patch 0052 lists one
 *    by one (32), remapped, INVLPG of an offset never read: every one
 *    must see the new frame (past its list the index is emptied);
 *  - the same in an L2 guest (EPT, VPID) on its own paging structures.
 * With that scan ignoring the entries' page size, the first case failed
 * (400 of 800 reads wrong, in L1 and in L2).  With 0052's list kept past
 * its end (the overflow ignored), the third failed.
 */
#include "libtest.h"

#define LARGE_VA	0xc0400000ull	/* a 2 MiB page, remapped below */
#define SMALL_VA	0xc0600000ull	/* a 4 KiB page, through small_pt */
#define LARGE_VA2	0xc0800000ull	/* a 2 MiB page beyond it */
#define FRAME_A		0x02000000ull	/* two 2 MiB frames of RAM */
#define FRAME_B		0x02200000ull
#define PDE_LARGE	(0x83ull)	/* present, writable, 2 MiB */
#define ROUNDS		200
#define MANY		40	/* pages, from MANY_OFF */
#define MANY_OFF	0x10000ull
#define MANY_ROUNDS	20

static u64 small_pt[512] __attribute__((aligned(4096)));

static inline void invlpg(u64 va)
{
	asm volatile("invlpg (%0)" :: "r"(va) : "memory");
}

static inline u32 peek(u64 va)
{
	return *(volatile u32 *)(uintptr_t)va;
}

static u64 frame(int i)
{
	return i & 1 ? FRAME_B : FRAME_A;
}

/* Each frame says which frame and which offset it is. */
static void fill_frames(void)
{
	static const u64 offs[] = { 0x1000, 0x5000, 0x1ff000, 0x3000 };
	unsigned i, f;

	for (f = 0; f < 2; f++) {
		for (i = 0; i < sizeof(offs) / sizeof(offs[0]); i++)
			*(volatile u32 *)(uintptr_t)(frame(f) + offs[i]) =
				(f ? 0xb0000000u : 0xa0000000u) | (u32)offs[i];
		for (i = 0; i < MANY; i++)
			*(volatile u32 *)(uintptr_t)(frame(f) + MANY_OFF + i * 0x1000ull) =
				(f ? 0xb0000000u : 0xa0000000u) | (u32)(MANY_OFF + i * 0x1000ull);
	}
}

static u32 expect(int i, u64 off)
{
	return (i & 1 ? 0xb0000000u : 0xa0000000u) | (u32)off;
}

static void map(void)
{
	*boot_pde(LARGE_VA) = FRAME_A | PDE_LARGE;
	*boot_pde(LARGE_VA2) = FRAME_B | PDE_LARGE;
	small_pt[0] = (FRAME_A + 0x3000) | 3;
	*boot_pde(SMALL_VA) = pa(small_pt) | 3;
	asm volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" ::: "rax", "memory");
}

/* The cases, in whatever mode runs them; wrong reads per case. */
static void run_cases(u32 bad[3])
{
	int i, k;

	bad[0] = bad[1] = bad[2] = 0;
	*boot_pde(LARGE_VA) = frame(0) | PDE_LARGE;
	invlpg(LARGE_VA);
	for (i = 0; i < ROUNDS; i++) {
		/* Two TLB entries of the same 2 MiB page, and one beyond. */
		bad[0] += peek(LARGE_VA + 0x1000) != expect(i, 0x1000);
		bad[0] += peek(LARGE_VA + 0x5000) != expect(i, 0x5000);
		(void)peek(LARGE_VA2);
		/* Remapped; INVLPG of an offset never read drops both. */
		*boot_pde(LARGE_VA) = frame(i + 1) | PDE_LARGE;
		invlpg(LARGE_VA + 0x1ff000);
		bad[0] += peek(LARGE_VA + 0x5000) != expect(i + 1, 0x5000);
		bad[0] += peek(LARGE_VA + 0x1000) != expect(i + 1, 0x1000);
	}
	*boot_pde(LARGE_VA) = frame(0) | PDE_LARGE;
	invlpg(LARGE_VA);
	small_pt[0] = (frame(0) + 0x3000) | 3;
	invlpg(SMALL_VA);
	for (i = 0; i < ROUNDS; i++) {
		/* A 4 KiB page amid 2 MiB ones. */
		(void)peek(LARGE_VA + 0x1000);
		bad[1] += peek(SMALL_VA) != expect(i, 0x3000);
		small_pt[0] = (frame(i + 1) + 0x3000) | 3;
		invlpg(SMALL_VA);
		bad[1] += peek(SMALL_VA) != expect(i + 1, 0x3000);
	}
	small_pt[0] = (frame(0) + 0x3000) | 3;
	invlpg(SMALL_VA);
	*boot_pde(LARGE_VA) = frame(0) | PDE_LARGE;
	invlpg(LARGE_VA);
	for (i = 0; i < MANY_ROUNDS; i++) {
		/* More pages of one 2 MiB page than the list holds. */
		for (k = 0; k < MANY; k++)
			bad[2] += peek(LARGE_VA + MANY_OFF + k * 0x1000ull) !=
				  expect(i, MANY_OFF + k * 0x1000ull);
		*boot_pde(LARGE_VA) = frame(i + 1) | PDE_LARGE;
		invlpg(LARGE_VA + 0x1ff000);
		for (k = MANY - 1; k >= 0; k--)
			bad[2] += peek(LARGE_VA + MANY_OFF + k * 0x1000ull) !=
				  expect(i + 1, MANY_OFF + k * 0x1000ull);
	}
	*boot_pde(LARGE_VA) = frame(0) | PDE_LARGE;
	invlpg(LARGE_VA);
}

static void report_cases(const char *where, const u32 bad[3])
{
	report(bad[0] == 0, "%s: INVLPG anywhere in a 2 MiB page drops all its TLB entries (%u of %u reads wrong)",
	       where, bad[0], 4 * ROUNDS);
	report(bad[1] == 0, "%s: INVLPG of a 4 KiB page amid 2 MiB pages drops it (%u of %u reads wrong)",
	       where, bad[1], 2 * ROUNDS);
	report(bad[2] == 0, "%s: INVLPG drops all %d TLB entries read from a 2 MiB page (%u of %u reads wrong)",
	       where, MANY, bad[2], 2 * MANY * MANY_ROUNDS);
}

#include "vmx.h"

static u32 l2_bad[3];

static void l2_cases(void)
{
	run_cases(l2_bad);
}

void test_main(void)
{
	u32 bad[3];

	fill_frames();
	map();
	report(peek(LARGE_VA + 0x5000) == expect(0, 0x5000) && peek(SMALL_VA) == expect(0, 0x3000),
	       "the 2 MiB and 4 KiB test pages reach their frames");
	run_cases(bad);
	report_cases("L1", bad);

	vmx_on();
	report(vmx_call_in_l2(l2_cases) == EXIT_REASON_VMCALL, "L2 ran its cases and left by VMCALL");
	report_cases("L2 (EPT, VPID)", l2_bad);
	vmx_off();
}
