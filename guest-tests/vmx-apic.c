/*
 * "Virtualize APIC accesses" (SDM Vol. 3C 30.4, 28.2.1, 27.2.1.1, 27.7.7):
 * accesses to the APIC-access page are APIC-access VM exits (44) with the
 * offset and access type, except VTPR accesses under "use TPR shadow",
 * which go to the virtual-APIC page and are followed by APIC-write
 * emulation (a trap-like TPR-below-threshold exit right after the
 * instruction).  Also: the VM-entry checks, the exit right after entry,
 * the page reached through EPT, by the guest's page walk and during event
 * delivery.  Run with -cpu Skylake-Server,+vmx.
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 apic_page[4096] __attribute__((aligned(4096)));
static u8 vapic[4096] __attribute__((aligned(4096)));
static u8 alias[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(16)));

#define VMCS_GUEST_PHYS_ADDR		0x2400
#define EXIT_REASON_TPR_BELOW		43
#define INJECT_UD			0x80000306u

/*
 * Guest code; RBX points at the page under test.  Each snippet ends in
 * VMCALL; an APIC-access exit is resumed past the access by the host.
 */
extern u8 g_rd300[], g_wr310[], g_rd80[], g_rd84[], g_rd80q[], g_wr80[], g_wr80_next[],
	  g_wr80b[], g_rd81b[], g_lock80[], g_after_lock[], g_nop[], g_rep80[], g_after_rep[];

asm(".pushsection .text\n"
    "g_rd300: movl 0x300(%rbx), %eax\n"
    "vmcall\n"
    "g_wr310: movl $0x5a5a, 0x310(%rbx)\n"
    "vmcall\n"
    "g_rd80: movl 0x80(%rbx), %eax\n"
    "vmcall\n"
    "g_rd84: movl 0x84(%rbx), %eax\n"
    "vmcall\n"
    "g_rd80q: movq 0x80(%rbx), %rax\n"
    "vmcall\n"
    /* A VTPR write in the middle of a block: the exit must follow it. */
    "g_wr80: movl %ecx, 0x80(%rbx)\n"
    "g_wr80_next: incq %r8\n"
    "incq %r8\n"
    "incq %r8\n"
    "vmcall\n"
    "g_wr80b: movb %cl, 0x80(%rbx)\n"
    "vmcall\n"
    "g_rd81b: movzbl 0x81(%rbx), %eax\n"
    "vmcall\n"
    "g_lock80: lock addl %ecx, 0x80(%rbx)\n"
    "g_after_lock: vmcall\n"
    "g_nop: nop\n"
    "vmcall\n"
    /* Four byte writes to VTPR by one instruction. */
    "g_rep80: leaq 0x80(%rbx), %rdi\n"
    "movl $4, %ecx\n"
    "rep stosb\n"
    "g_after_rep: vmcall\n"
    ".popsection\n");

static u32 proc_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS, want);
}

static u32 proc2_ctls(u32 want)
{
	u64 cap = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);

	if (want & ~(u32)(cap >> 32))
		test_abort("secondary controls %#x not offered", want & ~(u32)(cap >> 32));
	return want | (u32)cap;
}

/* A fresh VMCS running @rip with "virtualize APIC accesses" (+ TPR shadow). */
static void setup(void *rip, bool tpr_shadow, u32 proc2)
{
	vmx_setup_vmcs(vmcs, (void (*)(void))rip, guest_stack + sizeof(guest_stack));
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 proc_ctls(PROC_ACTIVATE_SECONDARY | (tpr_shadow ? PROC_TPR_SHADOW : 0)));
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2_ctls(PROC2_VIRT_APIC_ACCESSES | proc2));
	vmcs_set(VMCS_APIC_ACCESS_ADDR, pa(apic_page));
	vmcs_set(VMCS_VIRTUAL_APIC_ADDR, pa(vapic));
	vmcs_set(VMCS_TPR_THRESHOLD, 0);
	vmx_guest_regs.rbx = pa(apic_page);
}

/* Resume L2 at @at: an APIC-access exit (44) with qualification @want. */
static void expect_apic_exit(void *at, u64 want, const char *what)
{
	u64 r;

	vmcs_set(VMCS_GUEST_RIP, pa(at));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == want,
	       "%s: exit 44, qualification %#llx (%#llx, %#llx)", what, (unsigned long long)want,
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());
}

static void expect_vmfail7(int r, const char *what)
{
	u64 err = vmx_insn_error();

	report(r == VMX_FAIL_VALID && err == 7, "%s: VMfailValid(7) (got %s, %llu)", what,
	       vmx_outcome_name(r), (unsigned long long)err);
}

static void fill_pages(void)
{
	memset(apic_page, 0, sizeof(apic_page));
	memset(vapic, 0, sizeof(vapic));
	*(u32 *)(apic_page + 0x80) = 0xaaaaaaaa;
	*(u32 *)(apic_page + 0x300) = 0xbbbbbbbb;
	*(u32 *)(vapic + 0x80) = 0x44332211;
}

static void test_caps_and_checks(void)
{
	u64 cap = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);

	report((cap >> 32) & PROC2_VIRT_APIC_ACCESSES, "virtualize APIC accesses may be 1");

	setup(g_nop, false, 0);
	vmcs_set(VMCS_APIC_ACCESS_ADDR, pa(apic_page) | 0x800);
	expect_vmfail7(vmx_enter(1), "APIC-access address not page-aligned");
	vmcs_set(VMCS_APIC_ACCESS_ADDR, 1ull << 52);
	expect_vmfail7(vmx_enter(1), "APIC-access address beyond the physical-address width");

	/* 27.2.1.1: threshold > VTPR[7:4] fails only without the APIC-access page. */
	setup(g_nop, true, 0);
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2_ctls(0));
	fill_pages();			/* VTPR[7:4] = 1 */
	vmcs_set(VMCS_TPR_THRESHOLD, 3);
	expect_vmfail7(vmx_enter(1), "TPR threshold 3 > VTPR[7:4] 1, no APIC-access page");

	/* 27.7.7: with it, entry succeeds and exits at once (nothing ran). */
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2_ctls(PROC2_VIRT_APIC_ACCESSES));
	{
		u64 r = vmx_run(true);

		report(r == EXIT_REASON_TPR_BELOW && vmx_guest_rip() == pa(g_nop),
		       "threshold 3 > VTPR[7:4] 1 with the APIC-access page: exit 43 right after "
		       "entry (%#llx at %#llx)", (unsigned long long)r, (unsigned long long)vmx_guest_rip());
	}
}

static void test_exits(void)
{
	u64 r;

	fill_pages();
	setup(g_rd300, false, 0);
	vmx_guest_regs.rax = 0;
	r = vmx_run(true);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == 0x300 && vmx_guest_rip() == pa(g_rd300) &&
	       vmcs_get(VMCS_EXIT_INSTRUCTION_LEN) == 6 && vmx_guest_regs.rax == 0,
	       "read of offset 300H: exit 44, linear read, fault-like, length 6 (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	vmcs_set(VMCS_GUEST_RIP, pa(g_wr310));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == (0x310 | (1 << 12)) &&
	       vmx_guest_rip() == pa(g_wr310) && *(u32 *)(apic_page + 0x310) == 0,
	       "write of offset 310H: exit 44, linear write, memory unchanged (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	expect_apic_exit(g_rd80, 0x80, "VTPR read without the TPR shadow");

	vmcs_set(VMCS_GUEST_RIP, pa(apic_page) + 0x100);
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == (0x100 | (2 << 12)) &&
	       vmx_guest_rip() == pa(apic_page) + 0x100,
	       "instruction fetch at offset 100H: exit 44, access type 2 (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	/* Event delivery through an IDT on the APIC-access page (#UD: entry 6). */
	vmcs_set(VMCS_GUEST_RIP, pa(g_nop));
	vmcs_set(VMCS_GUEST_IDTR_BASE, pa(apic_page));
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_UD);
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == (0x60 | (3 << 12)) &&
	       vmcs_get(VMCS_IDT_VECTORING_INFO) == INJECT_UD,
	       "#UD delivered through an IDT on the page: access type 3 at 060H, IDT-vectoring "
	       "info (%#llx, %#llx, %#llx)", (unsigned long long)r, (unsigned long long)vmx_exit_qual(),
	       (unsigned long long)vmcs_get(VMCS_IDT_VECTORING_INFO));

	/* "Activate secondary controls" clear: the page is plain memory. */
	setup(g_rd300, false, 0);
	vmcs_set(VMCS_PROC_BASED_CONTROLS, proc_ctls(0));
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && (u32)vmx_guest_regs.rax == 0xbbbbbbbb,
	       "secondary controls not activated: plain memory read (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_guest_regs.rax);
}

static void test_vtpr(void)
{
	u64 r;

	fill_pages();
	setup(g_rd80, true, 0);
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && (u32)vmx_guest_regs.rax == 0x44332211,
	       "VTPR read with the TPR shadow: the virtual-APIC page's dword, no exit (%#llx)",
	       (unsigned long long)vmx_guest_regs.rax);

	vmcs_set(VMCS_GUEST_RIP, pa(g_rd81b));
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && vmx_guest_regs.rax == 0x22,
	       "byte read at 081H: virtualized (%#llx)", (unsigned long long)vmx_guest_regs.rax);

	expect_apic_exit(g_rd84, 0x84, "read at 084H (outside bytes 3:0 of the register)");
	expect_apic_exit(g_rd80q, 0x80, "64-bit read at 080H");

	/* Write above the threshold: bytes 3:1 cleared, no exit. */
	vmcs_set(VMCS_GUEST_RIP, pa(g_wr80));
	vmx_guest_regs.rcx = 0x12345678;
	vmx_guest_regs.r8 = 0;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && *(u32 *)(vapic + 0x80) == 0x78 &&
	       *(u32 *)(apic_page + 0x80) == 0xaaaaaaaa && vmx_guest_regs.r8 == 3,
	       "VTPR write 12345678H: virtual-APIC page holds 78H, no exit (%#llx, %#x)",
	       (unsigned long long)r, *(u32 *)(vapic + 0x80));

	/* Below the threshold: trap-like exit 43 right after the write. */
	vmcs_set(VMCS_TPR_THRESHOLD, 5);
	vmcs_set(VMCS_GUEST_RIP, pa(g_wr80));
	vmx_guest_regs.rcx = 0xff20;
	vmx_guest_regs.r8 = 0;
	r = vmx_run(false);
	report(r == EXIT_REASON_TPR_BELOW && vmx_guest_rip() == pa(g_wr80_next) &&
	       vmx_guest_regs.r8 == 0 && *(u32 *)(vapic + 0x80) == 0x20,
	       "VTPR write 20H under threshold 5: exit 43 after the write, before the next "
	       "instruction (%#llx at %#llx, r8 %llu, VTPR %#x)", (unsigned long long)r,
	       (unsigned long long)vmx_guest_rip(), (unsigned long long)vmx_guest_regs.r8,
	       *(u32 *)(vapic + 0x80));

	vmcs_set(VMCS_TPR_THRESHOLD, 2);
	vmcs_set(VMCS_GUEST_RIP, pa(g_wr80b));
	vmx_guest_regs.rcx = 0x10;
	r = vmx_run(false);
	report(r == EXIT_REASON_TPR_BELOW && *(u32 *)(vapic + 0x80) == 0x10,
	       "byte write 10H under threshold 2: exit 43 (%#llx, VTPR %#x)",
	       (unsigned long long)r, *(u32 *)(vapic + 0x80));

	vmcs_set(VMCS_TPR_THRESHOLD, 0);
	*(u32 *)(vapic + 0x80) = 0;
	vmcs_set(VMCS_GUEST_RIP, pa(g_rep80));
	vmx_guest_regs.rax = 0x57;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && vmx_guest_rip() == pa(g_after_rep) &&
	       *(u32 *)(vapic + 0x80) == 0x57,
	       "REP STOSB of 4 bytes over VTPR: one APIC-write emulation, VTPR 57H (%#llx, %#x)",
	       (unsigned long long)r, *(u32 *)(vapic + 0x80));

	*(u32 *)(vapic + 0x80) = 0x30;
	vmcs_set(VMCS_GUEST_RIP, pa(g_lock80));
	vmx_guest_regs.rcx = 0x10;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && vmx_guest_rip() == pa(g_after_lock) &&
	       *(u32 *)(vapic + 0x80) == 0x40,
	       "LOCK ADD to VTPR: read-modify-write on the virtual-APIC page (%#llx, %#x)",
	       (unsigned long long)r, *(u32 *)(vapic + 0x80));
}

static void test_ept(void)
{
	u64 eptp = ept_build_identity(true), r;
	u64 saved = *ept_pte(pa(alias)), saved_pt;
	u64 cr3 = read_cr3() & ~0xfffull;

	fill_pages();
	/* Guest-physical "alias" maps to the APIC-access page. */
	*ept_pte(pa(alias)) = pa(apic_page) | EPT_MT_WB | EPT_RWX;
	setup(g_rd300, false, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	vmx_guest_regs.rbx = pa(alias);
	r = vmx_run(true);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == 0x300,
	       "EPT maps another guest page onto the APIC-access page: exit 44 (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());
	*ept_pte(pa(alias)) = saved;

	/* The guest's PML4 lives (through EPT) on the APIC-access page. */
	if (cr3 >= (8ull << 20))
		test_abort("boot_pml4 at %#llx: not under the 4 KiB EPT pages",
			   (unsigned long long)cr3);
	memcpy(apic_page, (void *)(uintptr_t)cr3, 4096);
	saved_pt = *ept_pte(cr3);
	*ept_pte(cr3) = pa(apic_page) | EPT_MT_WB | EPT_RWX;
	invept(2, 0);
	vmcs_set(VMCS_GUEST_RIP, pa(g_nop));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && ((vmx_exit_qual() >> 12) & 0xf) == 15 &&
	       vmcs_get(VMCS_GUEST_PHYS_ADDR) >> 12 == cr3 >> 12,
	       "page walk through a PML4 on the page: exit 44, guest-physical access (15), "
	       "its address (%#llx, %#llx, %#llx)", (unsigned long long)r,
	       (unsigned long long)vmx_exit_qual(), (unsigned long long)vmcs_get(VMCS_GUEST_PHYS_ADDR));
	*ept_pte(cr3) = saved_pt;
}

void test_main(void)
{
	vmx_on();
	test_caps_and_checks();
	test_exits();
	test_vtpr();
	test_ept();
	vmx_off();
}
