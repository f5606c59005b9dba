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

/* VMCS field encodings used by the tests (SDM Vol. 3D App. B). */
#define VMCS_GUEST_ES_SELECTOR		0x0800
#define VMCS_GUEST_CS_SELECTOR		0x0802
#define VMCS_GUEST_SS_SELECTOR		0x0804
#define VMCS_GUEST_DS_SELECTOR		0x0806
#define VMCS_GUEST_FS_SELECTOR		0x0808
#define VMCS_GUEST_GS_SELECTOR		0x080a
#define VMCS_GUEST_LDTR_SELECTOR	0x080c
#define VMCS_GUEST_TR_SELECTOR		0x080e
#define VMCS_GUEST_PML_INDEX		0x0812
#define VMCS_HOST_ES_SELECTOR		0x0c00
#define VMCS_HOST_CS_SELECTOR		0x0c02
#define VMCS_HOST_SS_SELECTOR		0x0c04
#define VMCS_HOST_DS_SELECTOR		0x0c06
#define VMCS_HOST_FS_SELECTOR		0x0c08
#define VMCS_HOST_GS_SELECTOR		0x0c0a
#define VMCS_HOST_TR_SELECTOR		0x0c0c
#define VMCS_IO_BITMAP_A		0x2000
#define VMCS_IO_BITMAP_B		0x2002
#define VMCS_MSR_BITMAP			0x2004
#define VMCS_EXIT_MSR_STORE_ADDR	0x2006
#define VMCS_EXIT_MSR_LOAD_ADDR		0x2008
#define VMCS_ENTRY_MSR_LOAD_ADDR	0x200a
#define VMCS_TSC_OFFSET			0x2010
#define VMCS_EPT_POINTER		0x201a
#define VMCS_LINK_POINTER		0x2800
#define VMCS_GUEST_IA32_PAT		0x2804
#define VMCS_GUEST_IA32_EFER		0x2806
#define VMCS_HOST_IA32_PAT		0x2c00
#define VMCS_HOST_IA32_EFER		0x2c02
#define VMCS_PIN_BASED_CONTROLS		0x4000
#define VMCS_PROC_BASED_CONTROLS	0x4002
#define VMCS_EXCEPTION_BITMAP		0x4004
#define VMCS_PF_ERROR_CODE_MASK		0x4006
#define VMCS_PF_ERROR_CODE_MATCH	0x4008
#define VMCS_CR3_TARGET_COUNT		0x400a
#define VMCS_EXIT_CONTROLS		0x400c
#define VMCS_EXIT_MSR_STORE_COUNT	0x400e
#define VMCS_EXIT_MSR_LOAD_COUNT	0x4010
#define VMCS_ENTRY_CONTROLS		0x4012
#define VMCS_ENTRY_MSR_LOAD_COUNT	0x4014
#define VMCS_ENTRY_INTR_INFO		0x4016
#define VMCS_ENTRY_EXCEPTION_ERROR_CODE	0x4018
#define VMCS_ENTRY_INSTRUCTION_LEN	0x401a
#define VMCS_VM_INSTRUCTION_ERROR	0x4400
#define VMCS_EXIT_REASON		0x4402
#define VMCS_EXIT_INTR_INFO		0x4404
#define VMCS_EXIT_INTR_ERROR_CODE	0x4406
#define VMCS_IDT_VECTORING_INFO		0x4408
#define VMCS_EXIT_INSTRUCTION_LEN	0x440c
#define VMCS_GUEST_ES_LIMIT		0x4800
#define VMCS_GUEST_ES_AR		0x4814
#define VMCS_GUEST_INTERRUPTIBILITY	0x4824
#define VMCS_GUEST_ACTIVITY_STATE	0x4826
#define VMCS_GUEST_SYSENTER_CS		0x482a
#define VMCS_HOST_SYSENTER_CS		0x4c00
#define VMCS_CR0_GUEST_HOST_MASK	0x6000
#define VMCS_CR4_GUEST_HOST_MASK	0x6002
#define VMCS_CR0_READ_SHADOW		0x6004
#define VMCS_CR4_READ_SHADOW		0x6006
#define VMCS_CR3_TARGET_VALUE0		0x6008
#define VMCS_EXIT_QUALIFICATION		0x6400
#define VMCS_GUEST_CR0			0x6800
#define VMCS_GUEST_CR3			0x6802
#define VMCS_GUEST_CR4			0x6804
#define VMCS_GUEST_ES_BASE		0x6806
#define VMCS_GUEST_LDTR_BASE		0x6812
#define VMCS_GUEST_TR_BASE		0x6814
#define VMCS_GUEST_GDTR_BASE		0x6816
#define VMCS_GUEST_IDTR_BASE		0x6818
#define VMCS_GUEST_DR7			0x681a
#define VMCS_GUEST_RSP			0x681c
#define VMCS_GUEST_RIP			0x681e
#define VMCS_GUEST_RFLAGS		0x6820
#define VMCS_GUEST_SYSENTER_ESP		0x6824
#define VMCS_GUEST_SYSENTER_EIP		0x6826
#define VMCS_HOST_CR0			0x6c00
#define VMCS_HOST_CR3			0x6c02
#define VMCS_HOST_CR4			0x6c04
#define VMCS_HOST_FS_BASE		0x6c06
#define VMCS_HOST_GS_BASE		0x6c08
#define VMCS_HOST_TR_BASE		0x6c0a
#define VMCS_HOST_GDTR_BASE		0x6c0c
#define VMCS_HOST_IDTR_BASE		0x6c0e
#define VMCS_HOST_SYSENTER_ESP		0x6c10
#define VMCS_HOST_SYSENTER_EIP		0x6c12
#define VMCS_HOST_RSP			0x6c14
#define VMCS_HOST_RIP			0x6c16
/* Offsets from an ES field to the same field of another segment. */
#define VMCS_SEG_STEP			2

/* Controls (SDM Vol. 3C 24.6-24.8). */
#define PIN_EXT_INTR_EXITING		(1u << 0)
#define PIN_NMI_EXITING			(1u << 3)
#define PROC_TSC_OFFSETTING		(1u << 3)
#define PROC_HLT_EXITING		(1u << 7)
#define PROC_RDTSC_EXITING		(1u << 12)
#define PROC_CR3_LOAD_EXITING		(1u << 15)
#define PROC_CR3_STORE_EXITING		(1u << 16)
#define PROC_UNCOND_IO_EXITING		(1u << 24)
#define PROC_USE_IO_BITMAPS		(1u << 25)
#define PROC_USE_MSR_BITMAPS		(1u << 28)
#define EXIT_HOST_ADDR_SPACE_SIZE	(1u << 9)
#define EXIT_ACK_INTR_ON_EXIT		(1u << 15)
#define EXIT_SAVE_EFER			(1u << 20)
#define EXIT_LOAD_EFER			(1u << 21)
#define ENTRY_IA32E_MODE		(1u << 9)
#define ENTRY_LOAD_EFER			(1u << 15)

/* Exit reasons (SDM Vol. 3D App. C). */
#define EXIT_REASON_EXCEPTION_NMI	0
#define EXIT_REASON_TRIPLE_FAULT	2
#define EXIT_REASON_CPUID		10
#define EXIT_REASON_HLT			12
#define EXIT_REASON_RDTSC		16
#define EXIT_REASON_VMCALL		18
#define EXIT_REASON_VMPTRST		22
#define EXIT_REASON_VMREAD		23
#define EXIT_REASON_CR_ACCESS		28
#define EXIT_REASON_IO			30
#define EXIT_REASON_RDMSR		31
#define EXIT_REASON_WRMSR		32
#define EXIT_REASON_INVALID_GUEST_STATE	33
#define EXIT_REASON_MSR_LOADING		34
#define EXIT_REASON_ENTRY_FAILURE	(1u << 31)

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

/* ---- a minimal hypervisor (lib/vmx-hv.c) ------------------------------- */

/* VMX capability MSR pair check: @want within allowed-1, plus every must-1. */
u32 vmx_ctls(u32 cap_msr, u32 true_cap_msr, u32 want);

/* CR0.NE, CR4.VMXE, VMXON: aborts the test if VMX operation is refused. */
void vmx_on(void);
void vmx_on_region(void *region);	/* with a VMXON region of the caller's (one per CPU) */
void vmx_off(void);
u32 vmx_revision(void);

/*
 * Make @vmcs current and fill it for a 64-bit guest at @rip on the stack
 * ending at @rsp, sharing the host's paging, GDT and IDT; controls hold
 * the must-1 settings plus "IA-32e mode guest" and a 64-bit host.
 */
void vmx_setup_vmcs(void *vmcs, void (*rip)(void), void *rsp);

/*
 * Run @fn as an L2 until it returns, under EPT (an identity map without
 * A/D flags, ept_build_identity()) and VPID 1, on a VMCS and stack of the
 * library's; VMX must be on.  Returns the exit reason, EXIT_REASON_VMCALL
 * once @fn has returned: what a test that runs its cases again in
 * non-root operation needs.
 */
u64 vmx_call_in_l2(void (*fn)(void));
/* The same with secondary controls @proc2 (VPID 1 if they enable VPID). */
u64 vmx_call_in_l2_proc2(void (*fn)(void), u32 proc2);

/* VMREAD/VMWRITE that abort the test on failure. */
u64 vmcs_get(u64 enc);
void vmcs_set(u64 enc, u64 val);

/*
 * Enter the guest (VMLAUNCH if @launch, else VMRESUME) and return after
 * the next VM exit: VMX_OK, or VMX_FAIL_INVALID / VMX_FAIL_VALID if the
 * instruction failed (no VM entry happened).
 */
int vmx_enter(int launch);

/* The guest's general registers while the host runs (lib/vmx-enter.S). */
struct vmx_guest_regs {
	u64 rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
};
extern struct vmx_guest_regs vmx_guest_regs;

/* After an exit: resume the guest at the next instruction. */
void vmx_skip_instruction(void);
/* vmx_enter(), then the exit reason; ~0 if the entry instruction failed. */
static inline u64 vmx_run(bool launch)
{
	return vmx_enter(launch) == VMX_OK ? vmcs_get(VMCS_EXIT_REASON) : ~0ull;
}
static inline u64 vmx_exit_qual(void) { return vmcs_get(VMCS_EXIT_QUALIFICATION); }
static inline u64 vmx_guest_rip(void) { return vmcs_get(VMCS_GUEST_RIP); }

/*
 * An identity EPT for guest-physical 0..1 GiB: 4 KiB pages below 8 MiB
 * (where the test image lives, so tests can change single pages), 2 MiB
 * pages above.  Returns the EPTP (write-back, 4 levels, A/D if @ad).
 */
u64 ept_build_identity(bool ad);
/* The 4 KiB EPT leaf entry for @gpa (below 8 MiB). */
u64 *ept_pte(u64 gpa);

#define EPT_R		(1ull << 0)
#define EPT_W		(1ull << 1)
#define EPT_X		(1ull << 2)
#define EPT_RWX		(EPT_R | EPT_W | EPT_X)
#define EPT_MT_WB	(6ull << 3)
#define EPT_A		(1ull << 8)
#define EPT_D		(1ull << 9)

#define PROC_ACTIVATE_SECONDARY		(1u << 31)
#define PROC2_ENABLE_EPT		(1u << 1)
#define PROC2_ENABLE_VPID		(1u << 5)
#define PROC2_ENABLE_PML		(1u << 17)
#define VMCS_VPID			0x0000
#define VMCS_PML_ADDRESS		0x200e
#define VMCS_GUEST_PHYSICAL_ADDRESS	0x2400
#define VMCS_SECONDARY_CONTROLS		0x401e

/* APIC virtualization and posted interrupts (SDM Vol. 3C 30; 25.6). */
#define PIN_POSTED_INTR			(1u << 7)
#define PROC_INTR_WINDOW		(1u << 2)
#define PROC_TPR_SHADOW			(1u << 21)
#define PROC2_VIRT_APIC_ACCESSES	(1u << 0)
#define PROC2_VIRT_X2APIC		(1u << 4)
#define PROC2_APIC_REG_VIRT		(1u << 8)
#define PROC2_VID			(1u << 9)
#define PROC2_SHADOW_VMCS		(1u << 14)
#define VMCS_PI_NV			0x0002
#define VMCS_GUEST_INTR_STATUS		0x0810
#define VMCS_VIRTUAL_APIC_ADDR		0x2012
#define VMCS_APIC_ACCESS_ADDR		0x2014
#define VMCS_PI_DESC_ADDR		0x2016
#define VMCS_EOI_EXIT_BITMAP0		0x201c
#define VMCS_VMREAD_BITMAP		0x2026
#define VMCS_VMWRITE_BITMAP		0x2028
#define VMCS_TPR_THRESHOLD		0x401c
#define EXIT_REASON_EXT_INTR		1
#define EXIT_REASON_APIC_ACCESS		44
#define EXIT_REASON_EOI_INDUCED		45

/*
 * APIC virtualization in the current VMCS: external-interrupt exiting
 * with acknowledge on exit, a TPR shadow on @vapic, the APIC-access page
 * @apic_access, the secondary controls @proc2 (the caller checks that
 * the model offers them), and @pin / @proc on top; TPR threshold, RVI,
 * SVI and the EOI-exit bitmaps 0; posted-interrupt notification vector
 * @nv and descriptor @pi_desc (used only with PIN_POSTED_INTR in @pin).
 */
void vmx_setup_apicv(u32 pin, u32 proc, u32 proc2, void *apic_access, void *vapic, u8 nv,
		     const volatile void *pi_desc);
#define VMCS_GUEST_LINEAR_ADDRESS	0x640a
#define EXIT_REASON_EPT_VIOLATION	48
#define EXIT_REASON_EPT_MISCONFIG	49
#define EXIT_REASON_PML_FULL		62

/* Extended PML (docs/epml.md): enumeration, VMCS fields, controls, entries. */
#define MSR_IA32_VMX_PROCBASED_CTLS3	0x492
#define MSR_IA32_VMX_EPML_CAP		0x4a0
#define PROC_ACTIVATE_TERTIARY		(1u << 17)
#define TERTIARY_ENABLE_EPML		(1ull << 63)

#define VMCS_TERTIARY_CONTROLS		0x2034
#define VMCS_EPML_BUFFER0		0x2040
#define VMCS_EPML_BUFFER1		0x2042
#define VMCS_EPML_DESC			0x2044
#define VMCS_EPML_POST_DESC		0x2046	/* section 8.1 */
#define VMCS_EPML_CONTROLS		0x4030
#define VMCS_EPML_SIZE			0x4032
#define VMCS_EPML_VECTOR		0x4034
#define VMCS_EPML_DEST			0x4036
#define VMCS_EPML_INDEX			0x4840
#define VMCS_EPML_ACTIVE		0x4842

#define CTL_WRITE	(1u << 0)
#define CTL_READ	(1u << 1)
#define CTL_FILTER	(1u << 2)
#define CTL_EPTE	(1u << 3)
#define CTL_NOTIFY	(1u << 4)
#define CTL_DROP	(1u << 5)
#define CTL_POST	(1u << 6)	/* section 8.1: post the notification */
#define EPML_CAP_POST	(1ull << 13)

/* A posted-interrupt descriptor (SDM 30.6; docs/epml.md section 8.1). */
struct pi_desc {
	u64 pir[4];		/* bit v: vector v posted */
	u32 control;		/* bit 0 ON, bit 1 SN, bits 23:16 NV */
	u32 ndst;		/* xAPIC: APIC ID in bits 15:8 */
	u32 reserved[6];
} __attribute__((aligned(64)));
#define PI_ON		(1u << 0)
#define PI_SN		(1u << 1)
#define PI_NV(v)	((u32)(v) << 16)

#define E_R		(1ull << 0)
#define E_W		(1ull << 1)
#define E_WALK		(1ull << 2)

/* The extended-PML descriptor (docs/epml.md section 7), 64-byte aligned. */
struct epml_desc {
	u32 state[2];		/* bit 0: FULL (processor sets, software clears) */
	u32 count[2];		/* entries in a handed-over buffer */
	u64 dropped;
	u64 handovers;
	u64 reserved[4];
} __attribute__((aligned(64)));

/*
 * Make the current VMCS run its guest with EPT (@eptp) and extended PML on,
 * logging nothing yet (controls 0): buffers, descriptor, buffer size n
 * (4 KiB << n), notification vector and destination APIC ID.
 */
void epml_setup_vmcs(u64 eptp, const void *buf0, const void *buf1, const volatile void *desc,
		     u32 size, u32 vector, u32 dest);

/* INVEPT / INVVPID with a descriptor; results as for the other wrappers. */
int invept(u64 type, u64 eptp);
int invvpid(u64 type, u16 vpid, u64 gla);

#endif
