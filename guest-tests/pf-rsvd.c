/*
 * Page faults on reserved bits (SDM Vol. 3A 4.7): reserved bits are checked
 * only in paging-structure entries whose P flag is 1, so a reserved-bit
 * violation reports P = 1 and RSVD = 1 in the error code (W and U as for
 * any #PF); a not-present entry faults with P = 0 and RSVD = 0 whatever
 * else it holds.  Cases, with EFER.NXE = 0 (bit 63 of an entry reserved):
 *  - a PTE with NX: read 0x9, write 0xb;
 *  - a 2 MiB PDE with bit 13 set (bits 20:13 reserved, Table 4-17): 0x9;
 *  - a PDE referencing a page table with a bit at MAXPHYADDR set: 0x9;
 *  - a not-present PTE with NX: 0x0;
 *  - the same PTE without NX: no fault (the mapping itself is sound).
 */
#include "libtest.h"

#define PTE_P		(1ull << 0)
#define PTE_RW		(1ull << 1)
#define PTE_PS		(1ull << 7)
#define PTE_NX		(1ull << 63)
#define ADDR_MASK	0x000ffffffffff000ull
#define EFER_NXE	(1ull << 11)

#define PF_P		(1u << 0)
#define PF_W		(1u << 1)
#define PF_RSVD		(1u << 3)

/* A 2 MiB slot of the 4 GiB identity map that nothing else uses. */
#define TEST_VA		0xc0000000ull

static u64 pt[512] __attribute__((aligned(4096)));
static u64 page[512] __attribute__((aligned(4096)));

static inline void invlpg(u64 va)
{
	asm volatile("invlpg (%0)" :: "r"(va) : "memory");
}

static inline u64 read_cr2(void)
{
	u64 v;

	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline void wrmsr(u32 index, u64 v)
{
	asm volatile("wrmsr" :: "c"(index), "a"((u32)v), "d"((u32)(v >> 32)));
}

/* Access TEST_VA; the #PF vector's error code, or -1 without a fault. */
static long access(bool write)
{
	u64 v = 0;

	invlpg(TEST_VA);
	ex_clear();
	if (write)
		asm volatile("1: movq %1, (%0)\n2:\n" EX_FIXUP("1b", "2b")
			     :: "r"(TEST_VA), "r"(v) : "memory");
	else
		asm volatile("1: movq (%1), %0\n2:\n" EX_FIXUP("1b", "2b")
			     : "+r"(v) : "r"(TEST_VA) : "memory");
	if (ex_last.vector == NO_EXCEPTION)
		return -1;
	if (ex_last.vector != PF_VECTOR || read_cr2() != TEST_VA)
		return -2;
	return (long)ex_last.error_code;
}

static void expect(bool write, long want, const char *what)
{
	long got = access(write);

	report(got == want, "%s %s: error code %#lx (got %ld%s)", write ? "write to" : "read of",
	       what, (unsigned long)want, got, got == -2 ? ": not a #PF at TEST_VA" : "");
}

void test_main(void)
{
	u64 *pde = boot_pde(TEST_VA), saved = *pde;
	u64 efer = rdmsr(MSR_EFER);
	u32 maxphy = cpuid(0x80000008).a & 0xff;

	if (!(saved & PTE_PS))
		test_abort("TEST_VA is not mapped by a 2 MiB page (PDE %#llx)",
			   (unsigned long long)saved);
	if (efer & EFER_NXE)
		wrmsr(MSR_EFER, efer & ~EFER_NXE);

	page[0] = 0x5a5a;
	*pde = pa(pt) | PTE_P | PTE_RW;

	pt[0] = pa(page) | PTE_P | PTE_RW | PTE_NX;
	expect(false, PF_P | PF_RSVD, "a PTE with NX, EFER.NXE = 0");
	expect(true, PF_P | PF_W | PF_RSVD, "a PTE with NX, EFER.NXE = 0");

	pt[0] = (pa(page) | PTE_RW | PTE_NX) & ~PTE_P;
	expect(false, 0, "a not-present PTE with NX");

	pt[0] = pa(page) | PTE_P | PTE_RW;
	report(access(false) == -1 && *(volatile u64 *)TEST_VA == 0x5a5a,
	       "the PTE without NX maps the page");

	if (maxphy < 52) {
		*pde = pa(pt) | PTE_P | PTE_RW | (1ull << maxphy);
		expect(false, PF_P | PF_RSVD, "a PDE with the bit at MAXPHYADDR set");
	} else {
		info("MAXPHYADDR is 52: no reserved address bit to test");
	}

	*pde = (saved & ~(u64)0xfff) | PTE_P | PTE_RW | PTE_PS | (1ull << 13);
	expect(false, PF_P | PF_RSVD, "a 2 MiB PDE with bit 13 set");
	expect(true, PF_P | PF_W | PF_RSVD, "a 2 MiB PDE with bit 13 set");

	*pde = saved;
	invlpg(TEST_VA);
	if (efer & EFER_NXE)
		wrmsr(MSR_EFER, efer);
}
