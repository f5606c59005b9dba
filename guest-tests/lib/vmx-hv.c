/*
 * A minimal hypervisor for the VMX test guests (see lib/vmx.h).
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmxon_region[4096] __attribute__((aligned(4096)));

u32 vmx_revision(void)
{
	return (u32)rdmsr(MSR_IA32_VMX_BASIC) & 0x7fffffff;
}

u32 vmx_ctls(u32 cap_msr, u32 true_cap_msr, u32 want)
{
	bool use_true = rdmsr(MSR_IA32_VMX_BASIC) & (1ull << 55);
	u64 cap = rdmsr(use_true ? true_cap_msr : cap_msr);
	u32 must1 = (u32)cap, may1 = (u32)(cap >> 32);

	if (want & ~may1)
		test_abort("control bits %#x not offered by MSR %#x (allowed-1 %#x)",
			   want & ~may1, use_true ? true_cap_msr : cap_msr, may1);
	return want | must1;
}

void vmx_on(void)
{
	vmx_on_region(vmxon_region);
}

void vmx_on_region(void *region)
{
	int r;

	asm volatile("mov %0, %%cr0" :: "r"(read_cr0() | (1ull << 5)));
	if (write_cr4_safe(read_cr4() | CR4_VMXE) != NO_EXCEPTION)
		test_abort("cannot set CR4.VMXE");
	*(u32 *)region = vmx_revision();
	r = vmxon((u64)(uintptr_t)region);
	if (r != VMX_OK)
		test_abort("VMXON: %s", vmx_outcome_name(r));
}

void vmx_off(void)
{
	vmxoff();
	write_cr4_safe(read_cr4() & ~CR4_VMXE);
}

u64 vmcs_get(u64 enc)
{
	u64 v = 0;
	int r = vmread(enc, &v);

	if (r != VMX_OK)
		test_abort("VMREAD %#llx: %s", (unsigned long long)enc, vmx_outcome_name(r));
	return v;
}

void vmcs_set(u64 enc, u64 val)
{
	int r = vmwrite(enc, val);

	if (r != VMX_OK)
		test_abort("VMWRITE %#llx: %s (error %llu)", (unsigned long long)enc,
			   vmx_outcome_name(r), (unsigned long long)vmx_insn_error());
}

struct dtr {
	u16 limit;
	u64 base;
} __attribute__((packed));

void vmx_setup_vmcs(void *vmcs, void (*rip)(void), void *rsp)
{
	struct dtr gdtr, idtr;
	u64 pa = (u64)(uintptr_t)vmcs, tr_base;
	u64 *gdt;
	u16 tr;
	int i, r;

	asm volatile("sgdt %0; sidt %1; str %2" : "=m"(gdtr), "=m"(idtr), "=r"(tr));
	gdt = (u64 *)(uintptr_t)gdtr.base;
	tr_base = ((gdt[tr / 8] >> 16) & 0xffffff) | ((gdt[tr / 8] >> 32) & 0xff000000) |
		  (gdt[tr / 8 + 1] << 32);

	*(u32 *)vmcs = vmx_revision();
	if ((r = vmclear(pa)) != VMX_OK || (r = vmptrld(pa)) != VMX_OK)
		test_abort("VMCLEAR/VMPTRLD: %s", vmx_outcome_name(r));

	vmcs_set(VMCS_PIN_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS, 0));
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS, 0));
	vmcs_set(VMCS_EXIT_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS,
			  EXIT_HOST_ADDR_SPACE_SIZE));
	vmcs_set(VMCS_ENTRY_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS,
			  ENTRY_IA32E_MODE));
	vmcs_set(VMCS_EXCEPTION_BITMAP, 0);
	vmcs_set(VMCS_CR3_TARGET_COUNT, 0);
	vmcs_set(VMCS_LINK_POINTER, ~0ull);

	/* Host state: the current one. */
	vmcs_set(VMCS_HOST_CR0, read_cr0());
	vmcs_set(VMCS_HOST_CR3, read_cr3());
	vmcs_set(VMCS_HOST_CR4, read_cr4());
	vmcs_set(VMCS_HOST_CS_SELECTOR, CODE_SELECTOR);
	vmcs_set(VMCS_HOST_SS_SELECTOR, DATA_SELECTOR);
	vmcs_set(VMCS_HOST_DS_SELECTOR, DATA_SELECTOR);
	vmcs_set(VMCS_HOST_ES_SELECTOR, DATA_SELECTOR);
	vmcs_set(VMCS_HOST_FS_SELECTOR, DATA_SELECTOR);
	vmcs_set(VMCS_HOST_GS_SELECTOR, DATA_SELECTOR);
	vmcs_set(VMCS_HOST_TR_SELECTOR, tr);
	vmcs_set(VMCS_HOST_TR_BASE, tr_base);
	vmcs_set(VMCS_HOST_GDTR_BASE, gdtr.base);
	vmcs_set(VMCS_HOST_IDTR_BASE, idtr.base);
	vmcs_set(VMCS_HOST_FS_BASE, 0);
	vmcs_set(VMCS_HOST_GS_BASE, 0);
	vmcs_set(VMCS_HOST_SYSENTER_CS, 0);
	vmcs_set(VMCS_HOST_SYSENTER_ESP, 0);
	vmcs_set(VMCS_HOST_SYSENTER_EIP, 0);

	/* Guest state: 64-bit, flat, same paging and descriptor tables. */
	vmcs_set(VMCS_GUEST_CR0, read_cr0());
	vmcs_set(VMCS_GUEST_CR3, read_cr3());
	vmcs_set(VMCS_GUEST_CR4, read_cr4());
	vmcs_set(VMCS_GUEST_DR7, 0x400);
	for (i = 0; i < 6; i++) {
		bool cs = i == 1;
		vmcs_set(VMCS_GUEST_ES_SELECTOR + i * VMCS_SEG_STEP, cs ? CODE_SELECTOR : DATA_SELECTOR);
		vmcs_set(VMCS_GUEST_ES_BASE + i * VMCS_SEG_STEP, 0);
		vmcs_set(VMCS_GUEST_ES_LIMIT + i * VMCS_SEG_STEP, 0xffffffff);
		vmcs_set(VMCS_GUEST_ES_AR + i * VMCS_SEG_STEP, cs ? 0xa09b : 0xc093);
	}
	vmcs_set(VMCS_GUEST_LDTR_SELECTOR, 0);
	vmcs_set(VMCS_GUEST_LDTR_BASE, 0);
	vmcs_set(VMCS_GUEST_ES_LIMIT + 6 * VMCS_SEG_STEP, 0);
	vmcs_set(VMCS_GUEST_ES_AR + 6 * VMCS_SEG_STEP, 0x10000);	/* unusable */
	vmcs_set(VMCS_GUEST_TR_SELECTOR, tr);
	vmcs_set(VMCS_GUEST_TR_BASE, tr_base);
	vmcs_set(VMCS_GUEST_ES_LIMIT + 7 * VMCS_SEG_STEP, 0x67);
	vmcs_set(VMCS_GUEST_ES_AR + 7 * VMCS_SEG_STEP, 0x8b);		/* busy 64-bit TSS */
	vmcs_set(VMCS_GUEST_GDTR_BASE, gdtr.base);
	vmcs_set(VMCS_GUEST_ES_LIMIT + 8 * VMCS_SEG_STEP, gdtr.limit);
	vmcs_set(VMCS_GUEST_IDTR_BASE, idtr.base);
	vmcs_set(VMCS_GUEST_ES_LIMIT + 9 * VMCS_SEG_STEP, idtr.limit);
	vmcs_set(VMCS_GUEST_SYSENTER_CS, 0);
	vmcs_set(VMCS_GUEST_SYSENTER_ESP, 0);
	vmcs_set(VMCS_GUEST_SYSENTER_EIP, 0);
	vmcs_set(VMCS_GUEST_RSP, (u64)(uintptr_t)rsp);
	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)rip);
	vmcs_set(VMCS_GUEST_RFLAGS, 2);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, 0);
	vmcs_set(VMCS_ENTRY_INTR_INFO, 0);
}

void vmx_skip_instruction(void)
{
	vmcs_set(VMCS_GUEST_RIP, vmcs_get(VMCS_GUEST_RIP) + vmcs_get(VMCS_EXIT_INSTRUCTION_LEN));
}

/* ---- EPT ------------------------------------------------------------------ */

static u64 ept_pml4[512] __attribute__((aligned(4096)));
static u64 ept_pdpt[512] __attribute__((aligned(4096)));
static u64 ept_pd[512] __attribute__((aligned(4096)));
static u64 ept_pt[4][512] __attribute__((aligned(4096)));

u64 ept_build_identity(bool ad)
{
	int i, j;

	memset(ept_pml4, 0, sizeof(ept_pml4));
	memset(ept_pdpt, 0, sizeof(ept_pdpt));
	ept_pml4[0] = (u64)(uintptr_t)ept_pdpt | EPT_RWX;
	ept_pdpt[0] = (u64)(uintptr_t)ept_pd | EPT_RWX;
	for (i = 0; i < 512; i++) {
		if (i < 4) {
			for (j = 0; j < 512; j++)
				ept_pt[i][j] = (((u64)i << 21) + ((u64)j << 12)) | EPT_MT_WB | EPT_RWX;
			ept_pd[i] = (u64)(uintptr_t)ept_pt[i] | EPT_RWX;
		} else {
			ept_pd[i] = ((u64)i << 21) | (1ull << 7) | EPT_MT_WB | EPT_RWX;
		}
	}
	return (u64)(uintptr_t)ept_pml4 | 6 | (3 << 3) | (ad ? 1 << 6 : 0);
}

static u8 l2_vmcs[4096] __attribute__((aligned(4096)));
static u8 l2_stack[8192] __attribute__((aligned(16)));
static void (*l2_fn)(void);

static void __attribute__((noreturn)) l2_trampoline(void)
{
	l2_fn();
	for (;;)
		asm volatile("vmcall" ::: "memory");
}

u64 vmx_call_in_l2_proc2(void (*fn)(void), u32 proc2)
{
	l2_fn = fn;
	vmx_setup_vmcs(l2_vmcs, l2_trampoline, l2_stack + sizeof(l2_stack));
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2);
	if (proc2 & PROC2_ENABLE_VPID)
		vmcs_set(VMCS_VPID, 1);
	vmcs_set(VMCS_EPT_POINTER, ept_build_identity(false));
	invept(2, 0);
	return vmx_run(true);
}

u64 vmx_call_in_l2(void (*fn)(void))
{
	return vmx_call_in_l2_proc2(fn, PROC2_ENABLE_EPT | PROC2_ENABLE_VPID);
}

u64 *ept_pte(u64 gpa)
{
	if (gpa >= (8ull << 20))
		test_abort("ept_pte: %#llx is not mapped with 4 KiB pages",
			   (unsigned long long)gpa);
	return &ept_pt[gpa >> 21][(gpa >> 12) & 511];
}

static int vmx_invalidate(bool vpid, u64 type, const u64 desc[2])
{
	u64 fl = 0;

	ex_clear();
	if (vpid)
		asm volatile(VMX_PRESET_FLAGS "1: invvpid %[d], %[t]\n2:\n\t"
			     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")
			     : [fl] "=r"(fl) : [d] "m"(*(const u64 (*)[2])desc), [t] "r"(type)
			     : "memory", "cc");
	else
		asm volatile(VMX_PRESET_FLAGS "1: invept %[d], %[t]\n2:\n\t"
			     "pushfq; popq %[fl]\n\t" EX_FIXUP("1b", "2b")
			     : [fl] "=r"(fl) : [d] "m"(*(const u64 (*)[2])desc), [t] "r"(type)
			     : "memory", "cc");
	return vmx_result(fl);
}

int invept(u64 type, u64 eptp)
{
	u64 desc[2] = { eptp, 0 };

	return vmx_invalidate(false, type, desc);
}

int invvpid(u64 type, u16 vpid, u64 gla)
{
	u64 desc[2] = { vpid, gla };

	return vmx_invalidate(true, type, desc);
}

/* ---- extended PML (docs/epml.md) ------------------------------------------ */

void epml_setup_vmcs(u64 eptp, const void *buf0, const void *buf1, const volatile void *desc,
		     u32 size, u32 vector, u32 dest)
{
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY | PROC_ACTIVATE_TERTIARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_TERTIARY_CONTROLS, TERTIARY_ENABLE_EPML);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	vmcs_set(VMCS_EPML_BUFFER0, (u64)(uintptr_t)buf0);
	vmcs_set(VMCS_EPML_BUFFER1, (u64)(uintptr_t)buf1);
	vmcs_set(VMCS_EPML_DESC, (u64)(uintptr_t)desc);
	vmcs_set(VMCS_EPML_SIZE, size);
	vmcs_set(VMCS_EPML_VECTOR, vector);
	vmcs_set(VMCS_EPML_DEST, dest);
	vmcs_set(VMCS_EPML_CONTROLS, 0);
	vmcs_set(VMCS_EPML_INDEX, 0);
	vmcs_set(VMCS_EPML_ACTIVE, 0);
}

/* ---- APIC virtualization ---------------------------------------------------- */

void vmx_setup_apicv(u32 pin, u32 proc, u32 proc2, void *apic_access, void *vapic, u8 nv,
		     const volatile void *pi_desc)
{
	u64 cap2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
	int i;

	if (proc2 & ~(u32)(cap2 >> 32))
		test_abort("secondary controls %#x not offered", proc2 & ~(u32)(cap2 >> 32));
	vmcs_set(VMCS_PIN_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS,
			  PIN_EXT_INTR_EXITING | pin));
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY | PROC_TPR_SHADOW | proc));
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2 | (u32)cap2);
	vmcs_set(VMCS_EXIT_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS,
			  EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTR_ON_EXIT));
	vmcs_set(VMCS_APIC_ACCESS_ADDR, pa(apic_access));
	vmcs_set(VMCS_VIRTUAL_APIC_ADDR, pa(vapic));
	vmcs_set(VMCS_TPR_THRESHOLD, 0);
	vmcs_set(VMCS_GUEST_INTR_STATUS, 0);
	for (i = 0; i < 4; i++)
		vmcs_set(VMCS_EOI_EXIT_BITMAP0 + 2 * i, 0);
	vmcs_set(VMCS_PI_NV, nv);
	vmcs_set(VMCS_PI_DESC_ADDR, pa((const void *)pi_desc));
}
