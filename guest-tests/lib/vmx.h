/*
 * VMX instruction wrappers for test guests.  Each returns how the
 * instruction ended: VMX_OK (VMsucceed), VMX_FAIL_INVALID, VMX_FAIL_VALID,
 * VMX_BAD_FLAGS (a flag pattern the SDM never produces) or VMX_EXC(vector)
 * if it raised an exception.
 */
#ifndef GUEST_VMX_H
#define GUEST_VMX_H

#include "libtest.h"

#define VMX_OK			0
#define VMX_FAIL_INVALID	1
#define VMX_FAIL_VALID		2
#define VMX_BAD_FLAGS		3
#define VMX_EXC(v)		(0x100 | (v))

#define RFLAGS_CF 0x001
#define RFLAGS_PF 0x004
#define RFLAGS_AF 0x010
#define RFLAGS_ZF 0x040
#define RFLAGS_SF 0x080
#define RFLAGS_OF 0x800
#define RFLAGS_ARITH (RFLAGS_CF | RFLAGS_PF | RFLAGS_AF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF)

/* Capability MSRs (SDM Vol. 3D App. A). */
#define MSR_IA32_VMX_PINBASED_CTLS	0x481
#define MSR_IA32_VMX_PROCBASED_CTLS	0x482
#define MSR_IA32_VMX_EXIT_CTLS		0x483
#define MSR_IA32_VMX_ENTRY_CTLS		0x484
#define MSR_IA32_VMX_MISC		0x485
#define MSR_IA32_VMX_CR0_FIXED0		0x486
#define MSR_IA32_VMX_CR0_FIXED1		0x487
#define MSR_IA32_VMX_CR4_FIXED0		0x488
#define MSR_IA32_VMX_CR4_FIXED1		0x489
#define MSR_IA32_VMX_VMCS_ENUM		0x48a
#define MSR_IA32_VMX_PROCBASED_CTLS2	0x48b
#define MSR_IA32_VMX_EPT_VPID_CAP	0x48c
#define MSR_IA32_VMX_TRUE_PINBASED_CTLS	0x48d
#define MSR_IA32_VMX_TRUE_PROCBASED_CTLS 0x48e
#define MSR_IA32_VMX_TRUE_EXIT_CTLS	0x48f
#define MSR_IA32_VMX_TRUE_ENTRY_CTLS	0x490
#define MSR_IA32_VMX_VMFUNC		0x491

/* A few VMCS field encodings (SDM Vol. 3D App. B). */
#define VMCS_GUEST_ES_SELECTOR		0x0800
#define VMCS_GUEST_PML_INDEX		0x0812
#define VMCS_EPT_POINTER		0x201a
#define VMCS_LINK_POINTER		0x2800
#define VMCS_PIN_BASED_CONTROLS		0x4000
#define VMCS_VM_INSTRUCTION_ERROR	0x4400
#define VMCS_EXIT_REASON		0x4402
#define VMCS_EXIT_QUALIFICATION		0x6400
#define VMCS_GUEST_RIP			0x681e
#define VMCS_HOST_RIP			0x6c16

static inline int vmx_outcome(u64 rflags)
{
	switch (rflags & RFLAGS_ARITH) {
	case 0:
		return VMX_OK;
	case RFLAGS_CF:
		return VMX_FAIL_INVALID;
	case RFLAGS_ZF:
		return VMX_FAIL_VALID;
	default:
		return VMX_BAD_FLAGS;
	}
}

static inline int vmx_result(u64 rflags)
{
	return ex_last.vector >= 0 ? VMX_EXC(ex_last.vector) : vmx_outcome(rflags);
}

const char *vmx_outcome_name(int r);

/* All arithmetic flags set before each instruction, so "cleared" is observable. */
#define VMX_PRESET_FLAGS "pushq $0x8d7; popfq\n\t"

#define VMX_MEM_INSN(name, mnemonic)						\
static inline int name(u64 *operand)						\
{										\
	u64 fl = 0;								\
	ex_clear();								\
	asm volatile(VMX_PRESET_FLAGS "1: " mnemonic " %[op]\n2:\n\t"		\
		     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")		\
		     : [fl] "=r"(fl), [op] "+m"(*operand) :: "memory", "cc");	\
	return vmx_result(fl);							\
}
VMX_MEM_INSN(vmxon_op, "vmxon")
VMX_MEM_INSN(vmclear_op, "vmclear")
VMX_MEM_INSN(vmptrld_op, "vmptrld")
VMX_MEM_INSN(vmptrst_op, "vmptrst")

#define VMX_BARE_INSN(name, mnemonic)						\
static inline int name(void)							\
{										\
	u64 fl = 0;								\
	ex_clear();								\
	asm volatile(VMX_PRESET_FLAGS "1: " mnemonic "\n2:\n\t"			\
		     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")		\
		     : [fl] "=r"(fl) :: "memory", "cc");			\
	return vmx_result(fl);							\
}
VMX_BARE_INSN(vmxoff, "vmxoff")
VMX_BARE_INSN(vmcall, "vmcall")
VMX_BARE_INSN(vmlaunch, "vmlaunch")
VMX_BARE_INSN(vmresume, "vmresume")

static inline int vmxon(u64 pa) { return vmxon_op(&pa); }
static inline int vmclear(u64 pa) { return vmclear_op(&pa); }
static inline int vmptrld(u64 pa) { return vmptrld_op(&pa); }

static inline int vmread(u64 enc, u64 *val)
{
	u64 fl = 0, v = 0;

	ex_clear();
	asm volatile(VMX_PRESET_FLAGS "1: vmread %[enc], %[v]\n2:\n\t"
		     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")
		     : [fl] "=r"(fl), [v] "+r"(v) : [enc] "r"(enc) : "memory", "cc");
	*val = v;
	return vmx_result(fl);
}

static inline int vmwrite(u64 enc, u64 val)
{
	u64 fl = 0;

	ex_clear();
	asm volatile(VMX_PRESET_FLAGS "1: vmwrite %[v], %[enc]\n2:\n\t"
		     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")
		     : [fl] "=r"(fl) : [enc] "r"(enc), [v] "r"(val) : "memory", "cc");
	return vmx_result(fl);
}

/* Memory-operand forms: VMREAD to memory, VMWRITE from memory. */
static inline int vmread_mem(u64 enc, u64 *dst)
{
	u64 fl = 0;

	ex_clear();
	asm volatile(VMX_PRESET_FLAGS "1: vmread %[enc], %[m]\n2:\n\t"
		     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")
		     : [fl] "=r"(fl), [m] "+m"(*dst) : [enc] "r"(enc) : "memory", "cc");
	return vmx_result(fl);
}

static inline int vmwrite_mem(u64 enc, const u64 *src)
{
	u64 fl = 0;

	ex_clear();
	asm volatile(VMX_PRESET_FLAGS "1: vmwrite %[m], %[enc]\n2:\n\t"
		     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")
		     : [fl] "=r"(fl) : [enc] "r"(enc), [m] "m"(*src) : "memory", "cc");
	return vmx_result(fl);
}

/* The VM-instruction error of the current VMCS (0 if VMREAD fails). */
static inline u64 vmx_insn_error(void)
{
	u64 e = 0;

	return vmread(VMCS_VM_INSTRUCTION_ERROR, &e) == VMX_OK ? e : 0;
}

#endif
