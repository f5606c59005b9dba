/*
 * RDPMC outside VMX (SDM Vol. 2B, RDPMC; AMD APM Vol. 3, RDPMC): a counter
 * ECX names is read without a fault, any other ECX raises #GP(0).
 *  - Intel: the general-purpose counters CPUID leaf 0AH enumerates
 *    (ECX[30] = 0) and its fixed-function counters (ECX[30] = 1, version
 *    2 and later); a leaf 0AH of version 0 enumerates none.
 *  - AMD: the legacy counters, 4 (6 with PerfCtrExtCore) if the model has
 *    a PMU; CPUID cannot tell, so tests.list says "amd4" or "amd0".
 * tests.list also names the vendor the model must report ("intel" or
 * "amd"): `-cpu max` with VMX says GenuineIntel (patch 0035).
 * CR4.PCE is not tested: it matters only at CPL > 0, and this library has
 * no ring 3.
 */
#include "libtest.h"

static int rdpmc_safe(u32 index, u64 *value)
{
	u32 lo = 0, hi = 0;

	ex_clear();
	asm volatile("1: rdpmc\n2:\n" EX_FIXUP("1b", "2b")
		     : "+a"(lo), "+d"(hi) : "c"(index));
	*value = lo | ((u64)hi << 32);
	return ex_last.vector;
}

static void expect_read(u32 index)
{
	u64 v;
	int vec = rdpmc_safe(index, &v);

	report(vec == NO_EXCEPTION, "rdpmc %#x reads the counter (got vector %d, value %#llx)",
	       index, vec, (unsigned long long)v);
}

static void expect_gp(u32 index)
{
	u64 v;
	int vec = rdpmc_safe(index, &v);

	report(vec == GP_VECTOR && ex_last.error_code == 0,
	       "rdpmc %#x raises #GP(0) (got vector %d, error code %#llx)",
	       index, vec, (unsigned long long)ex_last.error_code);
}

void test_main(void)
{
	struct cpuid_regs v = cpuid(0);
	bool amd = v.b == 0x68747541 && v.d == 0x69746e65 && v.c == 0x444d4163;
	bool intel = v.b == 0x756e6547 && v.d == 0x49656e69 && v.c == 0x6c65746e;
	u32 nr_gp = 0, nr_fixed = 0, i;

	if (test_has_arg("intel"))
		report(intel, "the model reports GenuineIntel");
	if (test_has_arg("amd"))
		report(amd, "the model reports AuthenticAMD");

	if (amd) {
		bool perfcore = cpuid(0x80000001).c & (1u << 23);

		nr_gp = test_has_arg("amd4") ? (perfcore ? 6 : 4) : 0;
		info("AMD, %s, %u counters expected", perfcore ? "PerfCtrExtCore" : "legacy counters",
		     nr_gp);
	} else {
		struct cpuid_regs a = { 0, 0, 0, 0 };
		u32 version;

		if (v.a >= 0xa)
			a = cpuid(0xa);
		version = a.a & 0xff;
		if (version)
			nr_gp = (a.a >> 8) & 0xff;
		if (version >= 2)
			nr_fixed = a.d & 0x1f;
		info("CPUID.0AH: version %u, %u general-purpose, %u fixed-function counters",
		     version, nr_gp, nr_fixed);
	}

	for (i = 0; i < nr_gp; i++) {
		expect_read(i);
	}
	expect_gp(nr_gp);
	expect_gp(nr_gp + 1000);
	expect_gp(0x3fffffff);
	if (nr_fixed) {
		expect_read(1u << 30);
	}
	expect_gp((1u << 30) | nr_fixed);
	if (!amd) {
		/* ECX[31] is the fast-read flag: it changes no counter's validity. */
		if (nr_gp)
			expect_read(1u << 31);
		else
			expect_gp(1u << 31);
	}
	info("skipped: #GP with CR4.PCE = 0 at CPL 3 (no ring 3 in the test library)");
}
