/*
 * The VMX instructions outside VM entry (SDM Vol. 3C 31.3): VMXON, VMXOFF,
 * VMCLEAR, VMPTRLD, VMPTRST, VMREAD, VMWRITE, VMCALL, and the checks
 * VMLAUNCH/VMRESUME make before VM entry; IA32_FEATURE_CONTROL and the
 * capability MSRs (Vol. 3D App. A); CR0/CR4 in VMX operation (Vol. 3C 24.8).
 * Every case checks the architected outcome: the exception, or VMsucceed /
 * VMfailInvalid / VMfailValid with the VM-instruction error number.
 * Run with a -cpu model that has VMX (e.g. Skylake-Server,+vmx).
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmxon_region[4096] __attribute__((aligned(4096)));
static u8 vmcs1[4096] __attribute__((aligned(4096)));
static u8 vmcs2[4096] __attribute__((aligned(4096)));
static u8 bad_rev[4096] __attribute__((aligned(4096)));

static u32 revision;
static u64 misc;

#define PA(p) ((u64)(uintptr_t)(p))

static void expect(int got, int want, const char *what)
{
	report(got == want, "%s: %s (got %s)", what, vmx_outcome_name(want),
	       vmx_outcome_name(got));
}

static void expect_error(int got, u64 err, const char *what)
{
	u64 e = got == VMX_FAIL_VALID ? vmx_insn_error() : 0;

	report(got == VMX_FAIL_VALID && e == err,
	       "%s: VMfailValid(%llu) (got %s, error %llu)", what,
	       (unsigned long long)err, vmx_outcome_name(got), (unsigned long long)e);
}

static void test_capabilities(void)
{
	u64 basic = 0, v = 0, fc = 0;
	int vec;

	report(cpuid(1).c & CPUID_1_ECX_VMX, "CPUID.1:ECX.VMX is set");

	vec = rdmsr_safe(MSR_IA32_FEATURE_CONTROL, &fc);
	report(vec == NO_EXCEPTION && (fc & 5) == 5,
	       "firmware locked IA32_FEATURE_CONTROL with VMXON outside SMX (%#llx)",
	       (unsigned long long)fc);
	vec = wrmsr_safe(MSR_IA32_FEATURE_CONTROL, fc);
	report(vec == GP_VECTOR, "WRMSR to the locked IA32_FEATURE_CONTROL raises #GP (got %d)", vec);

	vec = rdmsr_safe(MSR_IA32_VMX_BASIC, &basic);
	revision = (u32)basic;
	report(vec == NO_EXCEPTION && revision && !(revision >> 31),
	       "IA32_VMX_BASIC: revision %#x, bit 31 clear", revision);
	report(((basic >> 32) & 0x1fff) == 4096 && ((basic >> 50) & 0xf) == 6 &&
	       !(basic & (1ull << 48)),
	       "IA32_VMX_BASIC: 4 KiB regions, write-back, 64-bit addresses");
	report(basic & (1ull << 55), "IA32_VMX_BASIC: TRUE control MSRs offered");

	rdmsr_safe(MSR_IA32_VMX_PINBASED_CTLS, &v);
	report((u32)v == 0x16 && ((v >> 32) & 0x16) == 0x16,
	       "PINBASED_CTLS: default1 bits 1, 2, 4 must be 1 (%#llx)", (unsigned long long)v);
	rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS, &v);
	report((u32)v == 0x0401e172, "PROCBASED_CTLS: default1 class must be 1 (%#llx)",
	       (unsigned long long)v);
	rdmsr_safe(MSR_IA32_VMX_EXIT_CTLS, &v);
	report((u32)v == 0x00036dff, "EXIT_CTLS: default1 class must be 1");
	rdmsr_safe(MSR_IA32_VMX_ENTRY_CTLS, &v);
	report((u32)v == 0x000011ff, "ENTRY_CTLS: default1 class must be 1");
	vec = rdmsr_safe(MSR_IA32_VMX_TRUE_PROCBASED_CTLS, &v);
	report(vec == NO_EXCEPTION && ((u32)v & ~0x0401e172u) == 0,
	       "TRUE_PROCBASED_CTLS readable, must-be-1 bits within the default1 class");

	rdmsr_safe(MSR_IA32_VMX_CR0_FIXED0, &v);
	report(v == 0x80000021, "CR0_FIXED0 = PG|NE|PE (%#llx)", (unsigned long long)v);
	rdmsr_safe(MSR_IA32_VMX_CR4_FIXED0, &v);
	report(v == 0x2000, "CR4_FIXED0 = VMXE (%#llx)", (unsigned long long)v);
	rdmsr_safe(MSR_IA32_VMX_CR4_FIXED1, &v);
	report((v & 0x2020) == 0x2020 && !(v >> 32), "CR4_FIXED1 allows VMXE and PAE");

	vec = rdmsr_safe(MSR_IA32_VMX_MISC, &misc);
	report(vec == NO_EXCEPTION && ((misc >> 16) & 0x1ff) == 4,
	       "IA32_VMX_MISC: 4 CR3-target values (%#llx)", (unsigned long long)misc);
	vec = rdmsr_safe(MSR_IA32_VMX_VMCS_ENUM, &v);
	report(vec == NO_EXCEPTION && v && !(v & ~0x3feull),
	       "IA32_VMX_VMCS_ENUM gives a highest index (%#llx)", (unsigned long long)v);

	/* No secondary controls are offered yet, so these MSRs do not exist. */
	rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS, &v);
	if (!(v >> 63)) {
		report(rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS2, &v) == GP_VECTOR,
		       "PROCBASED_CTLS2 raises #GP when secondary controls cannot be 1");
		report(rdmsr_safe(MSR_IA32_VMX_EPT_VPID_CAP, &v) == GP_VECTOR,
		       "EPT_VPID_CAP raises #GP without EPT or VPID");
		report(rdmsr_safe(MSR_IA32_VMX_VMFUNC, &v) == GP_VECTOR,
		       "VMFUNC raises #GP without VM functions");
	} else {
		report(rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS2, &v) == NO_EXCEPTION,
		       "PROCBASED_CTLS2 readable when secondary controls may be 1");
	}
	vec = wrmsr_safe(MSR_IA32_VMX_BASIC, basic);
	report(vec == GP_VECTOR, "WRMSR to IA32_VMX_BASIC raises #GP (got %d)", vec);
}

static void test_outside_vmx_operation(void)
{
	u64 v = 0, pa = PA(vmcs1);

	expect(vmxon(PA(vmxon_region)), VMX_EXC(UD_VECTOR), "VMXON with CR4.VMXE=0");
	expect(vmxoff(), VMX_EXC(UD_VECTOR), "VMXOFF outside VMX operation");
	expect(vmclear(pa), VMX_EXC(UD_VECTOR), "VMCLEAR outside VMX operation");
	expect(vmptrld(pa), VMX_EXC(UD_VECTOR), "VMPTRLD outside VMX operation");
	expect(vmptrst_op(&v), VMX_EXC(UD_VECTOR), "VMPTRST outside VMX operation");
	expect(vmread(VMCS_GUEST_RIP, &v), VMX_EXC(UD_VECTOR), "VMREAD outside VMX operation");
	expect(vmwrite(VMCS_GUEST_RIP, 0), VMX_EXC(UD_VECTOR), "VMWRITE outside VMX operation");
	expect(vmlaunch(), VMX_EXC(UD_VECTOR), "VMLAUNCH outside VMX operation");
	expect(vmcall(), VMX_EXC(UD_VECTOR), "VMCALL outside VMX operation");
}

static void test_vmxon(void)
{
	u64 cr4 = read_cr4();
	u64 v = 0;

	report(write_cr4_safe(cr4 | CR4_VMXE) == NO_EXCEPTION, "CR4.VMXE can be set");

	asm volatile("mov %0, %%cr0" :: "r"(read_cr0() | (1ull << 5)));
	*(u32 *)vmxon_region = revision;
	*(u32 *)bad_rev = revision ^ 1;
	expect(vmxon(PA(bad_rev)), VMX_FAIL_INVALID, "VMXON, wrong revision");
	*(u32 *)bad_rev = revision | 0x80000000u;
	expect(vmxon(PA(bad_rev)), VMX_FAIL_INVALID, "VMXON, revision with bit 31 set");
	expect(vmxon(PA(vmxon_region) + 8), VMX_FAIL_INVALID, "VMXON, unaligned region");
	expect(vmxon(1ull << 52), VMX_FAIL_INVALID, "VMXON, address beyond the physical width");
	/* CR0.NE is in IA32_VMX_CR0_FIXED0; the boot stub leaves it clear. */
	asm volatile("mov %0, %%cr0" :: "r"(read_cr0() & ~(1ull << 5)));
	expect(vmxon(PA(vmxon_region)), VMX_EXC(GP_VECTOR), "VMXON with CR0.NE=0");
	asm volatile("mov %0, %%cr0" :: "r"(read_cr0() | (1ull << 5)));
	expect(vmxon(PA(vmxon_region)), VMX_OK, "VMXON");
	expect(vmxon(PA(vmxon_region)), VMX_FAIL_INVALID,
	       "VMXON in VMX root operation without a current VMCS");

	report(write_cr4_safe(cr4) == GP_VECTOR, "clearing CR4.VMXE in VMX operation raises #GP");
	report(write_cr0_safe(read_cr0() & ~(1ull << 5)) == GP_VECTOR,
	       "clearing CR0.NE in VMX operation raises #GP");

	expect(vmptrst_op(&v), VMX_OK, "VMPTRST without a current VMCS");
	report(v == ~0ull, "VMPTRST stores FFFFFFFF_FFFFFFFF (%#llx)", (unsigned long long)v);
	expect(vmread(VMCS_GUEST_RIP, &v), VMX_FAIL_INVALID, "VMREAD without a current VMCS");
	expect(vmwrite(VMCS_GUEST_RIP, 1), VMX_FAIL_INVALID, "VMWRITE without a current VMCS");
	expect(vmlaunch(), VMX_FAIL_INVALID, "VMLAUNCH without a current VMCS");
	expect(vmresume(), VMX_FAIL_INVALID, "VMRESUME without a current VMCS");
	expect(vmcall(), VMX_FAIL_INVALID, "VMCALL in root without a current VMCS");
	expect(vmclear(PA(vmcs1) + 0x10), VMX_FAIL_INVALID, "VMCLEAR, unaligned, no current VMCS");
	expect(vmclear(PA(vmxon_region)), VMX_FAIL_INVALID, "VMCLEAR of the VMXON region, no current VMCS");
	*(u32 *)bad_rev = revision ^ 1;
	expect(vmptrld(PA(bad_rev)), VMX_FAIL_INVALID, "VMPTRLD, bad revision, no current VMCS");
}

/* "VMCS shadowing" (secondary control bit 14) may be 1. */
static bool shadow_offered(void)
{
	u64 proc = 0, proc2 = 0;

	rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS, &proc);
	if (!(proc & (1ull << (32 + 31))))
		return false;
	rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS2, &proc2);
	return proc2 & (1ull << (32 + 14));
}

static void test_current_vmcs(void)
{
	u64 v = 0;

	*(u32 *)vmcs1 = revision;
	*(u32 *)vmcs2 = revision;
	expect(vmclear(PA(vmcs1)), VMX_OK, "VMCLEAR");
	expect(vmptrld(PA(vmcs1)), VMX_OK, "VMPTRLD");
	expect(vmptrst_op(&v), VMX_OK, "VMPTRST");
	report(v == PA(vmcs1), "VMPTRST stores the current-VMCS pointer");

	/* With a current VMCS, failures are VMfailValid with an error number. */
	expect_error(vmptrld(PA(vmxon_region)), 10, "VMPTRLD of the VMXON region");
	*(u32 *)bad_rev = revision ^ 1;
	expect_error(vmptrld(PA(bad_rev)), 11, "VMPTRLD, wrong revision");
	*(u32 *)bad_rev = revision | 0x80000000u;
	if (shadow_offered()) {
		/* A shadow VMCS may be current (vmx-shadow checks the rest). */
		expect(vmptrld(PA(bad_rev)), VMX_OK, "VMPTRLD of a shadow VMCS with VMCS shadowing");
		expect(vmlaunch(), VMX_FAIL_INVALID, "VMLAUNCH with a shadow VMCS current");
		expect(vmptrld(PA(vmcs1)), VMX_OK, "VMPTRLD back");
	} else {
		expect_error(vmptrld(PA(bad_rev)), 11,
			     "VMPTRLD, shadow-VMCS indicator without VMCS shadowing");
	}
	expect_error(vmptrld(PA(vmcs2) + 8), 9, "VMPTRLD, unaligned");
	expect_error(vmptrld(1ull << 52), 9, "VMPTRLD beyond the physical width");
	expect_error(vmclear(PA(vmcs2) + 8), 2, "VMCLEAR, unaligned");
	expect_error(vmclear(PA(vmxon_region)), 3, "VMCLEAR of the VMXON region");
	expect_error(vmxon(PA(vmxon_region)), 15, "VMXON in VMX root operation");
	expect_error(vmcall(), 1, "VMCALL in VMX root operation");
	expect_error(vmresume(), 5, "VMRESUME with a clear VMCS");
	expect_error(vmlaunch(), 7, "VMLAUNCH with all controls 0");
	vmptrst_op(&v);
	report(v == PA(vmcs1), "failed instructions leave the current VMCS alone");
}

static void test_vmread_vmwrite(void)
{
	u64 v = 0, m = 0;

	expect(vmwrite(VMCS_GUEST_RIP, 0x1122334455667788ull), VMX_OK, "VMWRITE guest RIP");
	expect(vmread(VMCS_GUEST_RIP, &v), VMX_OK, "VMREAD guest RIP");
	report(v == 0x1122334455667788ull, "natural-width field round-trips 64 bits (%#llx)",
	       (unsigned long long)v);

	expect(vmwrite(VMCS_GUEST_ES_SELECTOR, 0xabcdef12ull), VMX_OK, "VMWRITE a 16-bit field");
	vmread(VMCS_GUEST_ES_SELECTOR, &v);
	report(v == 0xef12, "16-bit field keeps bits 15:0 (%#llx)", (unsigned long long)v);

	expect(vmwrite(VMCS_PIN_BASED_CONTROLS, 0xffffffff00000016ull), VMX_OK,
	       "VMWRITE a 32-bit field");
	vmread(VMCS_PIN_BASED_CONTROLS, &v);
	report(v == 0x16, "32-bit field keeps bits 31:0 (%#llx)", (unsigned long long)v);

	expect(vmwrite(VMCS_LINK_POINTER, 0x0123456789abcdefull), VMX_OK, "VMWRITE a 64-bit field");
	vmread(VMCS_LINK_POINTER | 1, &v);
	report(v == 0x01234567, "VMREAD of the high half gives bits 63:32 (%#llx)",
	       (unsigned long long)v);
	expect(vmwrite(VMCS_LINK_POINTER | 1, 0xfedcba98ull), VMX_OK, "VMWRITE of the high half");
	vmread(VMCS_LINK_POINTER, &v);
	report(v == 0xfedcba9889abcdefull, "high-half write keeps the low half (%#llx)",
	       (unsigned long long)v);

	m = 0x5555aaaa5555aaaaull;
	expect(vmwrite_mem(VMCS_HOST_RIP, &m), VMX_OK, "VMWRITE from memory");
	m = 0;
	expect(vmread_mem(VMCS_HOST_RIP, &m), VMX_OK, "VMREAD to memory");
	report(m == 0x5555aaaa5555aaaaull, "memory operands round-trip (%#llx)",
	       (unsigned long long)m);

	expect_error(vmread(0x6c18, &v), 12, "VMREAD of an encoding that names no field");
	expect_error(vmread(VMCS_GUEST_RIP | (1ull << 32), &v), 12,
		     "VMREAD with encoding bits 63:32 set");
	expect_error(vmwrite(VMCS_GUEST_RIP | 0x1000, 0), 12, "VMWRITE with encoding bit 12 set");
	expect_error(vmwrite(VMCS_GUEST_ES_SELECTOR | 1, 0), 12,
		     "VMWRITE to the 'high half' of a 16-bit field");
	/* Fields exist only where the capability MSRs offer their feature. */
	{
		u64 proc = 0, proc2 = 0;

		rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS, &proc);
		if (proc >> 63)
			rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS2, &proc2);
		if (proc2 & (1ull << (32 + 1)))
			expect(vmread(VMCS_EPT_POINTER, &v), VMX_OK, "VMREAD of EPTP on a CPU with EPT");
		else
			expect_error(vmread(VMCS_EPT_POINTER, &v), 12,
				     "VMREAD of EPTP on a CPU without EPT");
		if (proc2 & (1ull << (32 + 17)))
			expect(vmread(VMCS_GUEST_PML_INDEX, &v), VMX_OK,
			       "VMREAD of the PML index on a CPU with PML");
		else
			expect_error(vmread(VMCS_GUEST_PML_INDEX, &v), 12,
				     "VMREAD of the PML index on a CPU without PML");
	}

	if (misc & (1ull << 29)) {
		expect(vmwrite(VMCS_EXIT_QUALIFICATION, 7), VMX_OK,
		       "VMWRITE to exit information, allowed by IA32_VMX_MISC[29]");
		vmread(VMCS_EXIT_QUALIFICATION, &v);
		report(v == 7, "exit qualification holds what was written");
	} else {
		expect_error(vmwrite(VMCS_EXIT_QUALIFICATION, 7), 13,
			     "VMWRITE to read-only exit information (IA32_VMX_MISC[29]=0)");
	}
	expect(vmread(VMCS_EXIT_REASON, &v), VMX_OK, "VMREAD of read-only exit information");
}

static void test_vmcs_switch(void)
{
	u64 v = 0;

	expect(vmwrite(VMCS_GUEST_RIP, 0x1111), VMX_OK, "VMWRITE in VMCS 1");
	expect(vmclear(PA(vmcs2)), VMX_OK, "VMCLEAR VMCS 2");
	expect(vmptrld(PA(vmcs2)), VMX_OK, "VMPTRLD VMCS 2");
	expect(vmwrite(VMCS_GUEST_RIP, 0x2222), VMX_OK, "VMWRITE in VMCS 2");
	expect(vmptrld(PA(vmcs1)), VMX_OK, "VMPTRLD back to VMCS 1");
	vmread(VMCS_GUEST_RIP, &v);
	report(v == 0x1111, "VMCS 1 kept its own value (%#llx)", (unsigned long long)v);

	expect(vmclear(PA(vmcs1)), VMX_OK, "VMCLEAR of the current VMCS");
	vmptrst_op(&v);
	report(v == ~0ull, "VMCLEAR of the current VMCS makes the pointer invalid");
	expect(vmptrld(PA(vmcs1)), VMX_OK, "VMPTRLD after VMCLEAR");
	vmread(VMCS_GUEST_RIP, &v);
	report(v == 0x1111, "the VMCS data survived VMCLEAR (%#llx)", (unsigned long long)v);
	expect_error(vmresume(), 5, "VMRESUME after VMCLEAR (launch state clear)");
}

/*
 * A memory operand at a non-canonical address (SDM Vol. 3C 31.3, 64-bit
 * mode exceptions): #SS(0) through SS (RSP as base), #GP(0) otherwise.
 * The operand is (base, RCX) with RCX = 2^63: only the address is bad.
 */
#define NONCANON_OP(name, mnemonic)						\
static int name(bool via_rsp)							\
{										\
	u64 enc = VMCS_GUEST_RIP;						\
										\
	ex_clear();								\
	if (via_rsp)								\
		asm volatile("1: " mnemonic " (%%rsp,%%rcx,1)\n2:\n\t"		\
			     EX_FIXUP("1b", "2b")				\
			     :: "c"(1ull << 63), "a"(enc) : "memory", "cc");	\
	else									\
		asm volatile("1: " mnemonic " (%%rdx,%%rcx,1)\n2:\n\t"		\
			     EX_FIXUP("1b", "2b")				\
			     :: "c"(1ull << 63), "d"(0), "a"(enc) : "memory", "cc");	\
	return ex_last.vector;							\
}
NONCANON_OP(noncanon_vmptrld, "vmptrld")
NONCANON_OP(noncanon_vmclear, "vmclear")
NONCANON_OP(noncanon_vmptrst, "vmptrst")

static int noncanon_vmread(bool via_rsp)
{
	u64 enc = VMCS_GUEST_RIP;

	ex_clear();
	if (via_rsp)
		asm volatile("1: vmread %%rax, (%%rsp,%%rcx,1)\n2:\n\t" EX_FIXUP("1b", "2b")
			     :: "c"(1ull << 63), "a"(enc) : "memory", "cc");
	else
		asm volatile("1: vmwrite (%%rdx,%%rcx,1), %%rax\n2:\n\t" EX_FIXUP("1b", "2b")
			     :: "c"(1ull << 63), "d"(0), "a"(enc) : "memory", "cc");
	return ex_last.vector;
}

static void test_noncanonical_operands(void)
{
	int v;

	v = noncanon_vmptrld(true);
	report(v == 12, "VMPTRLD, non-canonical operand through RSP: #SS(0) (vector %d)", v);
	v = noncanon_vmptrld(false);
	report(v == GP_VECTOR, "VMPTRLD, non-canonical operand through RDX: #GP(0) (vector %d)", v);
	v = noncanon_vmclear(true);
	report(v == 12, "VMCLEAR, non-canonical operand through RSP: #SS(0) (vector %d)", v);
	v = noncanon_vmptrst(true);
	report(v == 12, "VMPTRST, non-canonical operand through RSP: #SS(0) (vector %d)", v);
	v = noncanon_vmread(true);
	report(v == 12, "VMREAD to memory, non-canonical through RSP: #SS(0) (vector %d)", v);
	v = noncanon_vmread(false);
	report(v == GP_VECTOR, "VMWRITE from memory, non-canonical through RDX: #GP(0) (vector %d)",
	       v);
}

static void test_vmxoff(void)
{
	u64 v = 0;

	expect(vmxoff(), VMX_OK, "VMXOFF");
	expect(vmread(VMCS_GUEST_RIP, &v), VMX_EXC(UD_VECTOR), "VMREAD after VMXOFF");
	report(write_cr4_safe(read_cr4() & ~CR4_VMXE) == NO_EXCEPTION,
	       "CR4.VMXE can be cleared after VMXOFF");
	expect(vmxon(PA(vmxon_region)), VMX_EXC(UD_VECTOR), "VMXON after clearing CR4.VMXE");
}

void test_main(void)
{
	test_capabilities();
	test_outside_vmx_operation();
	test_vmxon();
	test_current_vmcs();
	test_vmread_vmwrite();
	test_vmcs_switch();
	test_noncanonical_operands();
	test_vmxoff();
}
