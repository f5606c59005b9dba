/*
 * Self-test of the bare-metal harness: the boot stub left the CPU in long
 * mode with the identity map, expected exceptions are caught with the right
 * vector, and the formatter prints what the other tests rely on.
 */
#include "libtest.h"

extern u8 boot_pml4[];

static void test_long_mode(void)
{
	u64 efer = 0;
	int vec = rdmsr_safe(MSR_EFER, &efer);

	report(vec == NO_EXCEPTION && (efer & EFER_LMA),
	       "long mode active (EFER %#llx)", (unsigned long long)efer);
	report((read_cr0() & 0x80000001) == 0x80000001, "CR0.PG and CR0.PE set");
	report(read_cr3() == (u64)(uintptr_t)boot_pml4, "CR3 points at the boot PML4");
}

static void test_identity_map(void)
{
	/* Memory at 16 MiB is reachable through the 2 MiB identity map. */
	volatile u32 *p = (volatile u32 *)(uintptr_t)0x1000000;
	u32 old = *p;

	*p = 0x5a5aa5a5;
	report(*p == 0x5a5aa5a5, "write and read back at 16 MiB");
	*p = old;
}

static void test_exceptions(void)
{
	volatile u64 *noncanonical = (volatile u64 *)0x8000000000000000ull;
	u64 v = 0;
	int vec;

	ex_clear();
	asm volatile("1: ud2\n2:\n\t" EX_FIXUP("1b", "2b") ::: "memory");
	vec = ex_last.vector;
	report(vec == UD_VECTOR, "ud2 raises #UD (got %d)", vec);

	ex_clear();
	asm volatile("1: divl %1\n2:\n\t" EX_FIXUP("1b", "2b")
		     : "+a"(v) : "r"(0u) : "rdx", "memory");
	vec = ex_last.vector;
	report(vec == DE_VECTOR, "division by zero raises #DE (got %d)", vec);

	ex_clear();
	asm volatile("1: mov %1, %0\n2:\n\t" EX_FIXUP("1b", "2b")
		     : "=r"(v) : "m"(*noncanonical) : "memory");
	vec = ex_last.vector;
	report(vec == GP_VECTOR && ex_last.error_code == 0,
	       "load from a non-canonical address raises #GP(0) (got %d)", vec);

	vec = rdmsr_safe(MSR_EFER, &v);
	report(vec == NO_EXCEPTION, "rdmsr of EFER raises nothing (got %d)", vec);
}

/* Reserved control-register bits raise #GP(0) (upstream TCG got these wrong). */
static void test_reserved_cr_bits(void)
{
	u64 cr0 = read_cr0(), cr3 = read_cr3();
	int vec;

	vec = write_cr0_safe(cr0 | (1ull << 32));
	report(vec == GP_VECTOR && read_cr0() == cr0,
	       "MOV to CR0 with bit 32 set raises #GP(0) (got %d)", vec);
	vec = write_cr4_safe(read_cr4() | (1ull << 31));
	report(vec == GP_VECTOR && ex_last.error_code == 0,
	       "MOV to CR4 with reserved bit 31 raises #GP(0) (got %d)", vec);
	vec = write_cr3_safe(cr3 | (1ull << 62));
	report(vec == GP_VECTOR && read_cr3() == cr3,
	       "MOV to CR3 beyond the physical-address width raises #GP(0) (got %d)", vec);
}

static void test_format(void)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%d|%5u|%-3x|%08llx|%s|%c|%#x", -42, 7u, 0xau,
		 0x1234abcdull, "ok", 'z', 0x1fu);
	report(strcmp(buf, "-42|    7|a  |1234abcd|ok|z|0x1f") == 0, "formatter: '%s'", buf);
	report(snprintf(buf, 4, "%s", "truncated") == 9 && strcmp(buf, "tru") == 0,
	       "formatter truncates and returns the full length");
}

void test_main(void)
{
	test_long_mode();
	test_identity_map();
	test_exceptions();
	test_reserved_cr_bits();
	test_format();
}
