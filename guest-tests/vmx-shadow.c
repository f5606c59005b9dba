/*
 * VMCS shadowing (SDM Vol. 3C 24.10, 25.10, 31.3 VMREAD/VMWRITE): the
 * capability, VMPTRLD of a shadow VMCS and VMLAUNCH refusing it, the
 * entry checks of the VMREAD/VMWRITE bitmaps (27.2.1.1) and of the VMCS
 * link pointer (27.3.1.5, qualification 4), and VMREAD/VMWRITE in the
 * guest: through the shadow VMCS where the bitmaps let them, VM exits
 * where they do not, VMfailInvalid with link pointer FFFFFFFF_FFFFFFFFH,
 * VMfailValid(12) into the current VMCS for a field that does not exist.
 * Run with -cpu Skylake-Server,+vmx; with -vmx-shadow-vmcs only the
 * capability and VMPTRLD refusing the shadow indicator are checked.
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 shadow[4096] __attribute__((aligned(4096)));
static u8 rd_bitmap[4096] __attribute__((aligned(4096)));
static u8 wr_bitmap[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(16)));

#define MISC_VMWRITE_ANY		(1ull << 29)
#define EXIT_REASON_VMWRITE		25
#define SHADOW_INDICATOR		0x80000000u
#define NO_SUCH_FIELD			0x7ffe	/* natural-width host, index 1FFH */

#define MAGIC_RIP	0x123456789abcdef0ull
#define MAGIC_TSC	0x1122334455667788ull

/* Guest code: RCX the field, RAX the value; RDX gets RFLAGS after. */
extern u8 g_vmread[], g_vmwrite[];

asm(".pushsection .text\n"
    "g_vmread: vmread %rcx, %rax\n"
    "pushf\n"
    "pop %rdx\n"
    "vmcall\n"
    "g_vmwrite: vmwrite %rax, %rcx\n"
    "pushf\n"
    "pop %rdx\n"
    "vmcall\n"
    ".popsection\n");

static bool launched;

static u32 proc2_cap(void)
{
	u64 proc = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS);

	if (!(proc & (1ull << (32 + 31))))
		return 0;
	return rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32;
}

static void bit_set(u8 *bitmap, u64 enc, bool on)
{
	if (on)
		bitmap[(enc & 0x7fff) / 8] |= 1u << (enc & 7);
	else
		bitmap[(enc & 0x7fff) / 8] &= ~(1u << (enc & 7));
}

/* VMREAD @enc from the shadow VMCS (made current for it), then back to ours. */
static u64 shadow_get(u64 enc)
{
	u64 v;

	vmptrld(pa(shadow));
	v = vmcs_get(enc);
	vmptrld(pa(vmcs));
	return v;
}

static void setup(u32 proc2)
{
	vmx_setup_vmcs(vmcs, (void (*)(void))g_vmread, guest_stack + sizeof(guest_stack));
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2);
	vmcs_set(VMCS_VMREAD_BITMAP, pa(rd_bitmap));
	vmcs_set(VMCS_VMWRITE_BITMAP, pa(wr_bitmap));
	vmcs_set(VMCS_LINK_POINTER, pa(shadow));
	launched = false;
}

/* Run @code with RCX = @field, RAX = @val; returns the exit reason. */
static u64 run(u8 *code, u64 field, u64 val)
{
	int r;

	vmcs_set(VMCS_GUEST_RIP, pa(code));
	vmx_guest_regs.rcx = field;
	vmx_guest_regs.rax = val;
	vmx_guest_regs.rdx = 0;
	r = vmx_enter(!launched);
	if (r != VMX_OK)
		return ~0ull;
	launched = true;
	return vmcs_get(VMCS_EXIT_REASON);
}

static u64 guest_flags(void)
{
	return vmx_guest_regs.rdx & RFLAGS_ARITH;
}

static void expect_entry_fail(u64 want_reason, u64 want_qual, const char *what)
{
	int r = vmx_enter(1);
	u64 reason = r == VMX_OK ? vmcs_get(VMCS_EXIT_REASON) : ~0ull;
	u64 q = r == VMX_OK ? vmcs_get(VMCS_EXIT_QUALIFICATION) : ~0ull;

	if (want_reason == 7)
		report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
		       "%s: VMfailValid(7) (got %s)", what, vmx_outcome_name(r));
	else
		report(reason == want_reason && q == want_qual,
		       "%s: exit %#llx qualification %llu (got %#llx, %llu)", what,
		       (unsigned long long)want_reason, (unsigned long long)want_qual,
		       (unsigned long long)reason, (unsigned long long)q);
}

static void test_shadow_vmcs_itself(void)
{
	u64 v = 0;

	*(u32 *)shadow = vmx_revision() | SHADOW_INDICATOR;
	report(vmclear(pa(shadow)) == VMX_OK, "VMCLEAR of a shadow VMCS");
	report(vmptrld(pa(shadow)) == VMX_OK, "VMPTRLD of a shadow VMCS");
	vmptrst_op(&v);
	report(v == pa(shadow), "VMPTRST names it");
	report(vmwrite(VMCS_GUEST_RIP, MAGIC_RIP) == VMX_OK &&
	       vmread(VMCS_GUEST_RIP, &v) == VMX_OK && v == MAGIC_RIP,
	       "VMWRITE/VMREAD on the current shadow VMCS in root operation");
	report(vmlaunch() == VMX_FAIL_INVALID, "VMLAUNCH with a shadow VMCS current: VMfailInvalid");
	report(vmresume() == VMX_FAIL_INVALID, "VMRESUME with a shadow VMCS current: VMfailInvalid");
	vmcs_set(VMCS_TSC_OFFSET, MAGIC_TSC);
	vmcs_set(VMCS_GUEST_ES_SELECTOR, 0xabcd);
	report(vmptrld(pa(vmcs)) == VMX_OK, "VMPTRLD of an ordinary VMCS again");
	report(shadow_get(VMCS_GUEST_RIP) == MAGIC_RIP, "the shadow VMCS kept its fields");
}

static void test_entry_checks(u32 proc2)
{
	setup(proc2);
	vmcs_set(VMCS_VMREAD_BITMAP, pa(rd_bitmap) + 8);
	expect_entry_fail(7, 0, "VMREAD bitmap not 4 KiB aligned");
	vmcs_set(VMCS_VMREAD_BITMAP, pa(rd_bitmap));
	vmcs_set(VMCS_VMWRITE_BITMAP, 1ull << 52);
	expect_entry_fail(7, 0, "VMWRITE bitmap beyond the physical-address width");
	vmcs_set(VMCS_VMWRITE_BITMAP, pa(wr_bitmap));

	vmcs_set(VMCS_LINK_POINTER, pa(vmcs));
	expect_entry_fail(EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE, 4,
			  "shadowing on, link pointer to an ordinary VMCS");
	vmcs_set(VMCS_LINK_POINTER, pa(shadow) + 0x10);
	expect_entry_fail(EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE, 4,
			  "link pointer not 4 KiB aligned");
	vmcs_set(VMCS_LINK_POINTER, pa(shadow));
	vmcs_set(VMCS_SECONDARY_CONTROLS, 0);
	expect_entry_fail(EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE, 4,
			  "shadowing off, link pointer to a shadow VMCS");
}

static void test_guest_access(u32 proc2, bool vmwrite_any)
{
	u64 r, v;

	setup(proc2);
	memset(rd_bitmap, 0xff, sizeof(rd_bitmap));
	memset(wr_bitmap, 0xff, sizeof(wr_bitmap));

	r = run(g_vmread, VMCS_GUEST_RIP, 0);
	report(r == EXIT_REASON_VMREAD, "VMREAD with its bitmap bit set: exit 23 (got %llu)",
	       (unsigned long long)r);
	vmx_skip_instruction();

	bit_set(rd_bitmap, VMCS_GUEST_RIP, false);
	r = run(g_vmread, VMCS_GUEST_RIP, 0);
	report(r == EXIT_REASON_VMCALL && vmx_guest_regs.rax == MAGIC_RIP && guest_flags() == 0,
	       "VMREAD shadowed: the shadow VMCS's guest RIP, VMsucceed (%#llx, flags %#llx)",
	       (unsigned long long)vmx_guest_regs.rax, (unsigned long long)guest_flags());

	bit_set(rd_bitmap, VMCS_TSC_OFFSET | 1, false);
	r = run(g_vmread, VMCS_TSC_OFFSET | 1, 0);
	report(r == EXIT_REASON_VMCALL && vmx_guest_regs.rax == MAGIC_TSC >> 32,
	       "VMREAD shadowed of a high half (%#llx)", (unsigned long long)vmx_guest_regs.rax);

	bit_set(rd_bitmap, (VMCS_GUEST_RIP | 0x8000) & 0x7fff, false);
	r = run(g_vmread, VMCS_GUEST_RIP | 0x8000, 0);
	report(r == EXIT_REASON_VMREAD, "VMREAD of an encoding with bit 15 set: exit (got %llu)",
	       (unsigned long long)r);
	vmx_skip_instruction();

	bit_set(rd_bitmap, NO_SUCH_FIELD, false);
	vmcs_set(VMCS_VM_INSTRUCTION_ERROR, 0);
	r = run(g_vmread, NO_SUCH_FIELD, 0);
	report(r == EXIT_REASON_VMCALL && guest_flags() == RFLAGS_ZF &&
	       vmx_insn_error() == 12,
	       "VMREAD shadowed of no field: VMfailValid(12) in the current VMCS (flags %#llx, "
	       "error %llu)", (unsigned long long)guest_flags(),
	       (unsigned long long)vmx_insn_error());

	r = run(g_vmwrite, VMCS_GUEST_ES_SELECTOR, 0x12345);
	report(r == EXIT_REASON_VMWRITE, "VMWRITE with its bitmap bit set: exit 25 (got %llu)",
	       (unsigned long long)r);
	vmx_skip_instruction();

	bit_set(wr_bitmap, VMCS_GUEST_ES_SELECTOR, false);
	v = vmcs_get(VMCS_GUEST_ES_SELECTOR);
	r = run(g_vmwrite, VMCS_GUEST_ES_SELECTOR, 0x12345);
	report(r == EXIT_REASON_VMCALL && guest_flags() == 0 &&
	       shadow_get(VMCS_GUEST_ES_SELECTOR) == 0x2345 &&
	       vmcs_get(VMCS_GUEST_ES_SELECTOR) == v,
	       "VMWRITE shadowed: the shadow VMCS's 16-bit field (%#llx), ours unchanged",
	       (unsigned long long)shadow_get(VMCS_GUEST_ES_SELECTOR));

	bit_set(wr_bitmap, VMCS_EXIT_QUALIFICATION, false);
	r = run(g_vmwrite, VMCS_EXIT_QUALIFICATION, 0x5a5a);
	if (vmwrite_any)
		report(r == EXIT_REASON_VMCALL && guest_flags() == 0 &&
		       shadow_get(VMCS_EXIT_QUALIFICATION) == 0x5a5a,
		       "VMWRITE shadowed of an exit-information field (IA32_VMX_MISC[29])");
	else
		report(r == EXIT_REASON_VMCALL && guest_flags() == RFLAGS_ZF &&
		       vmx_insn_error() == 13,
		       "VMWRITE shadowed of a read-only field: VMfailValid(13)");

	vmcs_set(VMCS_LINK_POINTER, ~0ull);
	r = run(g_vmread, VMCS_GUEST_RIP, 0);
	report(r == EXIT_REASON_VMCALL && guest_flags() == RFLAGS_CF,
	       "VMREAD shadowed with link pointer FFFFFFFF_FFFFFFFFH: VMfailInvalid (flags %#llx)",
	       (unsigned long long)guest_flags());
	r = run(g_vmwrite, VMCS_GUEST_ES_SELECTOR, 1);
	report(r == EXIT_REASON_VMCALL && guest_flags() == RFLAGS_CF,
	       "VMWRITE shadowed with link pointer FFFFFFFF_FFFFFFFFH: VMfailInvalid");

	/* Without the control, every VMREAD exits, bitmaps or not. */
	vmcs_set(VMCS_SECONDARY_CONTROLS, 0);
	r = run(g_vmread, VMCS_GUEST_RIP, 0);
	report(r == EXIT_REASON_VMREAD, "VMREAD without VMCS shadowing: exit (got %llu)",
	       (unsigned long long)r);
}

void test_main(void)
{
	u32 proc2 = proc2_cap();
	u64 misc = rdmsr(MSR_IA32_VMX_MISC);

	vmx_on();
	if (!(proc2 & PROC2_SHADOW_VMCS)) {
		vmx_setup_vmcs(vmcs, (void (*)(void))g_vmread, guest_stack + sizeof(guest_stack));
		*(u32 *)shadow = vmx_revision() | SHADOW_INDICATOR;
		report(vmptrld(pa(shadow)) == VMX_FAIL_VALID && vmx_insn_error() == 11,
		       "VMCS shadowing not offered: VMPTRLD of a shadow VMCS is VMfailValid(11)");
		vmx_off();
		return;
	}
	report(true, "VMCS shadowing offered (IA32_VMX_PROCBASED_CTLS2 bit 46)");
	vmx_setup_vmcs(vmcs, (void (*)(void))g_vmread, guest_stack + sizeof(guest_stack));
	test_shadow_vmcs_itself();
	test_entry_checks(PROC2_SHADOW_VMCS);
	test_guest_access(PROC2_SHADOW_VMCS, misc & MISC_VMWRITE_ANY);
	vmx_off();
}
