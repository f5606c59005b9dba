/*
 * APIC virtualization beyond the TPR shadow (SDM Vol. 3C chapter 30):
 * the VM-entry checks of the APIC controls (27.2.1.1), APIC-register
 * virtualization of the APIC-access page (30.4.2, 30.4.3) with APIC-write
 * exits (56), virtual-interrupt delivery (30.2) with EOI virtualization
 * and EOI-induced exits (45), self-IPI virtualization, "virtualize x2APIC
 * mode" (30.5) and a posted interrupt delivered without a VM exit (30.6).
 * Run with -cpu Skylake-Server,+vmx (a model that lists these controls).
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 apic_page[4096] __attribute__((aligned(4096)));
static u8 vapic[4096] __attribute__((aligned(4096)));
static u8 msr_bitmap[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(16)));
static volatile u64 pi_desc[8] __attribute__((aligned(64)));

#define EXIT_REASON_APIC_WRITE		56

#define VEC_A		0x51		/* a virtual interrupt */
#define VEC_SELF	0x62		/* self IPI through VICR */
#define VEC_X2		0x63		/* self IPI through WRMSR 83FH */
#define VEC_POSTED	0x74		/* posted in the PIR */
#define VEC_NOTIFY	0xe1		/* posted-interrupt notification */
#define VEC_OTHER	0xe2		/* a physical interrupt that is not */

#define LAPIC		((volatile u32 *)0xfee00000ul)

/* L2: what the interrupt handlers saw. */
static volatile unsigned hits[256];
static volatile u32 ppr_in_handler;

/*
 * Guest code; RBX points at the APIC-access page.  Each snippet ends in
 * VMCALL.
 */
extern u8 g_rd20[], g_rd30[], g_rda0[], g_rd390[], g_wr20[], g_wr20_next[], g_wr310[],
	  g_wr30[], g_wrb0[], g_wrb0_next[], g_wr300[], g_sti_loop[], g_cr8_0[],
	  g_x2_rd[], g_x2_wr[], g_x2_wr_next[];

asm(".pushsection .text\n"
    "g_rd20: movl 0x20(%rbx), %eax\n"
    "vmcall\n"
    "g_rd30: movl 0x30(%rbx), %eax\n"
    "vmcall\n"
    "g_rda0: movl 0xa0(%rbx), %eax\n"
    "vmcall\n"
    "g_rd390: movl 0x390(%rbx), %eax\n"
    "vmcall\n"
    "g_wr20: movl %ecx, 0x20(%rbx)\n"
    "g_wr20_next: vmcall\n"
    "g_wr310: movl %ecx, 0x310(%rbx)\n"
    "vmcall\n"
    "g_wr30: movl %ecx, 0x30(%rbx)\n"
    "vmcall\n"
    "g_wrb0: movl $0, 0xb0(%rbx)\n"
    "g_wrb0_next: vmcall\n"
    "g_wr300: movl %ecx, 0x300(%rbx)\n"
    "nop\n"
    "vmcall\n"
    /* Interrupts on for a while, then off again: RCX iterations. */
    "g_sti_loop: sti\n"
    "1: pause\n"
    "dec %rcx\n"
    "jnz 1b\n"
    "cli\n"
    "vmcall\n"
    "g_cr8_0: xorl %eax, %eax\n"
    "movq %rax, %cr8\n"
    "nop\n"
    "vmcall\n"
    /* RDMSR / WRMSR of ECX (value EDX:EAX). */
    "g_x2_rd: rdmsr\n"
    "vmcall\n"
    "g_x2_wr: wrmsr\n"
    "g_x2_wr_next: nop\n"
    "vmcall\n"
    ".popsection\n");

static u32 proc_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS, want);
}

static u32 pin_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS, want);
}

static u32 exit_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS,
			want | EXIT_HOST_ADDR_SPACE_SIZE);
}

static u32 proc2_ctls(u32 want)
{
	u64 cap = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);

	if (want & ~(u32)(cap >> 32))
		test_abort("secondary controls %#x not offered", want & ~(u32)(cap >> 32));
	return want | (u32)cap;
}

static u32 vreg(unsigned off)
{
	return *(volatile u32 *)(vapic + off);
}

static void set_vreg(unsigned off, u32 v)
{
	*(volatile u32 *)(vapic + off) = v;
}

static bool vbit(unsigned base, unsigned vec)
{
	return vreg(base + 0x10 * (vec / 32)) & (1u << (vec % 32));
}

static void set_vbit(unsigned base, unsigned vec)
{
	set_vreg(base + 0x10 * (vec / 32), vreg(base + 0x10 * (vec / 32)) | (1u << (vec % 32)));
}

/*
 * A fresh VMCS running @rip: TPR shadow, secondary controls @proc2,
 * external-interrupt exiting with acknowledge on exit, and @pin.
 */
static void setup(void *rip, u32 proc2, u32 pin)
{
	vmx_setup_vmcs(vmcs, (void (*)(void))rip, guest_stack + sizeof(guest_stack));
	vmx_setup_apicv(pin, PROC_USE_MSR_BITMAPS, proc2, apic_page, vapic, VEC_NOTIFY, pi_desc);
	vmcs_set(VMCS_MSR_BITMAP, pa(msr_bitmap));
	memset(vapic, 0, sizeof(vapic));
	memset(apic_page, 0, sizeof(apic_page));
	vmx_guest_regs.rbx = pa(apic_page);
}

static void expect_vmfail7(const char *what)
{
	int r = vmx_enter(1);
	u64 err = vmx_insn_error();

	report(r == VMX_FAIL_VALID && err == 7, "%s: VMfailValid(7) (got %s, %llu)", what,
	       vmx_outcome_name(r), (unsigned long long)err);
}

#define ALL_APICV	(PROC2_VIRT_APIC_ACCESSES | PROC2_APIC_REG_VIRT | PROC2_VID)

static void test_caps_and_checks(void)
{
	u64 cap2 = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2) >> 32;
	u64 pin = rdmsr(MSR_IA32_VMX_TRUE_PINBASED_CTLS) >> 32;
	u64 r;

	report(cap2 & PROC2_APIC_REG_VIRT, "APIC-register virtualization may be 1");
	report(cap2 & PROC2_VID, "virtual-interrupt delivery may be 1");
	report(cap2 & PROC2_VIRT_X2APIC, "virtualize x2APIC mode may be 1");
	report(pin & PIN_POSTED_INTR, "process posted interrupts may be 1");

	setup(g_rd20, ALL_APICV, PIN_POSTED_INTR);
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL, "all APIC controls, posted interrupts: entry succeeds (%#llx)",
	       (unsigned long long)r);

	setup(g_rd20, PROC2_APIC_REG_VIRT, 0);
	vmcs_set(VMCS_PROC_BASED_CONTROLS, proc_ctls(PROC_ACTIVATE_SECONDARY));
	expect_vmfail7("APIC-register virtualization without the TPR shadow");
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2_ctls(PROC2_VID));
	expect_vmfail7("virtual-interrupt delivery without the TPR shadow");
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2_ctls(PROC2_VIRT_X2APIC));
	expect_vmfail7("x2APIC virtualization without the TPR shadow");
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2_ctls(0));
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL, "none of them without the TPR shadow: entry succeeds "
	       "(%#llx)", (unsigned long long)r);

	setup(g_rd20, PROC2_VIRT_X2APIC | PROC2_VIRT_APIC_ACCESSES, 0);
	expect_vmfail7("x2APIC virtualization with virtualize APIC accesses");

	setup(g_rd20, ALL_APICV, 0);
	vmcs_set(VMCS_PIN_BASED_CONTROLS, pin_ctls(0));
	expect_vmfail7("virtual-interrupt delivery without external-interrupt exiting");

	setup(g_rd20, PROC2_VIRT_APIC_ACCESSES | PROC2_APIC_REG_VIRT, PIN_POSTED_INTR);
	expect_vmfail7("posted interrupts without virtual-interrupt delivery");
	setup(g_rd20, ALL_APICV, PIN_POSTED_INTR);
	vmcs_set(VMCS_EXIT_CONTROLS, exit_ctls(0));
	expect_vmfail7("posted interrupts without acknowledge interrupt on exit");
	setup(g_rd20, ALL_APICV, PIN_POSTED_INTR);
	vmcs_set(VMCS_PI_NV, 0x1e1);
	expect_vmfail7("notification vector with bits 15:8 set");
	setup(g_rd20, ALL_APICV, PIN_POSTED_INTR);
	vmcs_set(VMCS_PI_DESC_ADDR, pa((const void *)pi_desc) + 0x20);
	expect_vmfail7("descriptor address not 64-byte aligned");
	setup(g_rd20, ALL_APICV, PIN_POSTED_INTR);
	vmcs_set(VMCS_PI_DESC_ADDR, 1ull << 52);
	expect_vmfail7("descriptor address beyond the physical-address width");

	/* 27.2.1.1: with virtual-interrupt delivery the threshold's bits 31:4 are free. */
	setup(g_rd20, PROC2_VID, 0);
	vmcs_set(VMCS_TPR_THRESHOLD, 0xf0);
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL, "TPR threshold F0H with virtual-interrupt delivery: "
	       "entry succeeds (%#llx)", (unsigned long long)r);
}

/* 30.4.2, 30.4.3: APIC-register virtualization, without VID. */
static void test_reg_virt(void)
{
	u64 r;

	setup(g_rd20, PROC2_VIRT_APIC_ACCESSES | PROC2_APIC_REG_VIRT, 0);
	set_vreg(0x20, 0x11000000);
	set_vreg(0x30, 0x50014);
	*(u32 *)(apic_page + 0x20) = 0xdead;
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && (u32)vmx_guest_regs.rax == 0x11000000,
	       "read of 020H (ID): from the virtual-APIC page, no exit (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_guest_regs.rax);
	vmcs_set(VMCS_GUEST_RIP, pa(g_rd30));
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && (u32)vmx_guest_regs.rax == 0x50014,
	       "read of 030H (version): virtualized (%#llx)", (unsigned long long)vmx_guest_regs.rax);
	vmcs_set(VMCS_GUEST_RIP, pa(g_rda0));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == 0xa0,
	       "read of 0A0H (PPR): APIC-access exit (%#llx, %#llx)", (unsigned long long)r,
	       (unsigned long long)vmx_exit_qual());
	vmcs_set(VMCS_GUEST_RIP, pa(g_rd390));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == 0x390,
	       "read of 390H (current count): APIC-access exit (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	vmcs_set(VMCS_GUEST_RIP, pa(g_wr20));
	vmx_guest_regs.rcx = 0x22000000;
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_WRITE && vmx_exit_qual() == 0x20 && vmx_guest_rip() == pa(g_wr20_next) &&
	       vreg(0x20) == 0x22000000 && *(u32 *)(apic_page + 0x20) == 0xdead,
	       "write of 020H: APIC-write exit 56 after the instruction, qualification 020H, "
	       "value in the virtual-APIC page (%#llx, %#llx, %#x)", (unsigned long long)r,
	       (unsigned long long)vmx_exit_qual(), vreg(0x20));

	vmcs_set(VMCS_GUEST_RIP, pa(g_wr310));
	vmx_guest_regs.rcx = 0x12345678;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && vreg(0x310) == 0x12000000,
	       "write of 310H (ICR high): virtualized, bytes 2:0 cleared, no exit (%#llx, %#x)",
	       (unsigned long long)r, vreg(0x310));

	vmcs_set(VMCS_GUEST_RIP, pa(g_wr30));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_ACCESS && vmx_exit_qual() == (0x30 | (1 << 12)),
	       "write of 030H (version, read-only): APIC-access exit (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	vmcs_set(VMCS_GUEST_RIP, pa(g_wrb0));
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_WRITE && vmx_exit_qual() == 0xb0 && vmx_guest_rip() == pa(g_wrb0_next),
	       "EOI write without virtual-interrupt delivery: APIC-write exit, offset 0B0H "
	       "(%#llx, %#llx)", (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	vmcs_set(VMCS_GUEST_RIP, pa(g_wr300));
	vmx_guest_regs.rcx = 0x40000 | VEC_SELF;
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_WRITE && vmx_exit_qual() == 0x300 && vreg(0x300) == (0x40000 | VEC_SELF),
	       "self IPI through ICR without virtual-interrupt delivery: APIC-write exit "
	       "(%#llx, %#llx)", (unsigned long long)r, (unsigned long long)vmx_exit_qual());
}

/* L2 handlers: count, note VPPR, virtual EOI through the APIC-access page. */
static void l2_isr(unsigned vec)
{
	hits[vec]++;
	ppr_in_handler = vreg(0xa0);
	*(volatile u32 *)(apic_page + 0xb0) = 0;
}

static void isr_a(void) { l2_isr(VEC_A); }
static void isr_self(void) { l2_isr(VEC_SELF); }
static void isr_posted(void) { l2_isr(VEC_POSTED); }

/* L2 handler for x2APIC mode: virtual EOI through WRMSR 80BH. */
static void isr_x2(void)
{
	hits[VEC_X2]++;
	asm volatile("wrmsr" :: "c"(0x80b), "a"(0), "d"(0));
}

static void clear_hits(void)
{
	memset((void *)hits, 0, sizeof(hits));
	ppr_in_handler = ~0u;
}

/* 30.2: delivery, TPR and PPR, EOI virtualization, EOI-induced exits. */
static void test_vid(void)
{
	u64 r;

	set_irq_handler(VEC_A, isr_a);
	set_irq_handler(VEC_SELF, isr_self);

	/* RVI = 51H, VIRR[51H]: delivered once IF is 1, EOI'd by the handler. */
	clear_hits();
	setup(g_sti_loop, ALL_APICV, 0);
	set_vbit(0x200, VEC_A);
	vmcs_set(VMCS_GUEST_INTR_STATUS, VEC_A);
	vmx_guest_regs.rcx = 100;
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && hits[VEC_A] == 1 && ppr_in_handler == (VEC_A & 0xf0),
	       "virtual interrupt 51H delivered in L2, no exit; VPPR 50H in the handler "
	       "(%#llx, %u hits, VPPR %#x)", (unsigned long long)r, hits[VEC_A], ppr_in_handler);
	report(vmcs_get(VMCS_GUEST_INTR_STATUS) == 0 && !vbit(0x200, VEC_A) &&
	       !vbit(0x100, VEC_A) && vreg(0xa0) == 0,
	       "after the virtual EOI: RVI = SVI = 0, VIRR and VISR clear, VPPR 0 (%#llx, %#x)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_INTR_STATUS), vreg(0xa0));

	/* VTPR 60H masks class 5; MOV to CR8 0 lets it through. */
	clear_hits();
	setup(g_sti_loop, ALL_APICV, 0);
	set_vbit(0x200, VEC_A);
	set_vreg(0x80, 0x60);
	vmcs_set(VMCS_GUEST_INTR_STATUS, VEC_A);
	vmx_guest_regs.rcx = 100;
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && hits[VEC_A] == 0 && vreg(0xa0) == 0x60,
	       "VTPR 60H: interrupt 51H held back, VPPR 60H (%u hits, VPPR %#x)", hits[VEC_A],
	       vreg(0xa0));
	vmcs_set(VMCS_GUEST_RIP, pa(g_cr8_0));
	vmcs_set(VMCS_GUEST_RFLAGS, 0x202);
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && hits[VEC_A] == 1,
	       "MOV to CR8 0: TPR virtualization delivers it (%#llx, %u hits)",
	       (unsigned long long)r, hits[VEC_A]);
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2);

	/* Interrupt-window exiting holds delivery back (same priority). */
	clear_hits();
	setup(g_sti_loop, ALL_APICV, 0);
	set_vbit(0x200, VEC_A);
	vmcs_set(VMCS_GUEST_INTR_STATUS, VEC_A);
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 proc_ctls(PROC_ACTIVATE_SECONDARY | PROC_TPR_SHADOW | PROC_USE_MSR_BITMAPS |
			   PROC_INTR_WINDOW));
	vmx_guest_regs.rcx = 100;
	r = vmx_run(true);
	report(r == 7 && hits[VEC_A] == 0,
	       "interrupt-window exiting: exit 7 instead of the delivery (%#llx, %u hits)",
	       (unsigned long long)r, hits[VEC_A]);

	/* EOI-exit bitmap bit 51H: the virtual EOI is an EOI-induced exit. */
	clear_hits();
	setup(g_sti_loop, ALL_APICV, 0);
	set_vbit(0x200, VEC_A);
	vmcs_set(VMCS_GUEST_INTR_STATUS, VEC_A);
	vmcs_set(VMCS_EOI_EXIT_BITMAP0 + 2, 1ull << (VEC_A - 64));
	vmx_guest_regs.rcx = 100;
	r = vmx_run(true);
	report(r == EXIT_REASON_EOI_INDUCED && vmx_exit_qual() == VEC_A && hits[VEC_A] == 1 &&
	       !vbit(0x100, VEC_A) && vmcs_get(VMCS_GUEST_INTR_STATUS) == 0,
	       "EOI-exit bitmap bit 51H: exit 45, qualification 51H, after the EOI "
	       "(%#llx, %#llx, SVI/RVI %#llx)", (unsigned long long)r, (unsigned long long)vmx_exit_qual(),
	       (unsigned long long)vmcs_get(VMCS_GUEST_INTR_STATUS));
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL, "trap-like: L2 resumes after the EOI write (%#llx)",
	       (unsigned long long)r);

	/* Self IPI through VICR: no exit, delivered. */
	clear_hits();
	setup(g_wr300, ALL_APICV, 0);
	vmx_guest_regs.rcx = 0x40000 | VEC_SELF;
	vmcs_set(VMCS_GUEST_RFLAGS, 0x202);
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && hits[VEC_SELF] == 1 && !vbit(0x100, VEC_SELF),
	       "self IPI 62H through ICR low: virtualized and delivered, no exit "
	       "(%#llx, %u hits)", (unsigned long long)r, hits[VEC_SELF]);

	/* A fixed IPI to another APIC is not a self IPI: APIC-write exit. */
	setup(g_wr300, ALL_APICV, 0);
	vmx_guest_regs.rcx = VEC_SELF;	/* no shorthand */
	r = vmx_run(true);
	report(r == EXIT_REASON_APIC_WRITE && vmx_exit_qual() == 0x300,
	       "ICR low without the self shorthand: APIC-write exit (%#llx, %#llx)",
	       (unsigned long long)r, (unsigned long long)vmx_exit_qual());
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2);

	/* Entry into HLT with RVI: the virtual interrupt wakes the guest. */
	clear_hits();
	setup(g_wrb0_next, ALL_APICV, 0);
	set_vbit(0x200, VEC_A);
	vmcs_set(VMCS_GUEST_INTR_STATUS, VEC_A);
	vmcs_set(VMCS_GUEST_RFLAGS, 0x202);
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, 1);
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && hits[VEC_A] == 1,
	       "VM entry in HLT with RVI 51H: delivered, the guest wakes (%#llx, %u hits)",
	       (unsigned long long)r, hits[VEC_A]);
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2);
}

/* 30.5: RDMSR/WRMSR of the x2APIC MSRs, with no MSR bitmap exit. */
static void test_x2apic(void)
{
	u64 r;

	set_irq_handler(VEC_X2, isr_x2);
	clear_hits();
	memset(msr_bitmap, 0, sizeof(msr_bitmap));
	setup(g_x2_rd, PROC2_VIRT_X2APIC | PROC2_APIC_REG_VIRT | PROC2_VID, 0);
	set_vreg(0x80, 0x20);
	set_vreg(0x20, 7);
	vmx_guest_regs.rcx = 0x808;
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL && vmx_guest_regs.rax == 0x20 && vmx_guest_regs.rdx == 0,
	       "RDMSR 808H: VTPR (%#llx, %#llx)", (unsigned long long)r,
	       (unsigned long long)vmx_guest_regs.rax);
	vmcs_set(VMCS_GUEST_RIP, pa(g_x2_rd));
	vmx_guest_regs.rcx = 0x802;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && vmx_guest_regs.rax == 7,
	       "RDMSR 802H with APIC-register virtualization: the page's 020H, though L1's "
	       "APIC is not in x2APIC mode (%#llx, %#llx)", (unsigned long long)r,
	       (unsigned long long)vmx_guest_regs.rax);

	vmcs_set(VMCS_GUEST_RIP, pa(g_x2_wr));
	vmx_guest_regs.rcx = 0x808;
	vmx_guest_regs.rax = 0x30;
	vmx_guest_regs.rdx = 0;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && vreg(0x80) == 0x30 && vreg(0xa0) == 0x30,
	       "WRMSR 808H 30H: VTPR and VPPR 30H, no exit (%#llx, %#x, %#x)",
	       (unsigned long long)r, vreg(0x80), vreg(0xa0));

	vmcs_set(VMCS_GUEST_RIP, pa(g_x2_wr));
	vmcs_set(VMCS_GUEST_RFLAGS, 0x202);
	vmx_guest_regs.rcx = 0x83f;
	vmx_guest_regs.rax = VEC_X2;
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL && hits[VEC_X2] == 1 && !vbit(0x100, VEC_X2) &&
	       vreg(0xa0) == 0x30,
	       "WRMSR 83FH 63H: self IPI delivered, WRMSR 80BH EOI'd it (%#llx, %u hits, "
	       "VPPR %#x)", (unsigned long long)r, hits[VEC_X2], vreg(0xa0));
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2);

	vmcs_set(VMCS_GUEST_RIP, pa(g_x2_wr));
	vmx_guest_regs.rcx = 0x83f;
	vmx_guest_regs.rax = 5;
	r = vmx_run(false);
	report(r == EXIT_REASON_APIC_WRITE && vmx_exit_qual() == 0x3f0 && vmx_guest_rip() == pa(g_x2_wr_next) &&
	       vreg(0x3f0) == 5,
	       "WRMSR 83FH vector 5: APIC-write exit, offset 3F0H, after the WRMSR "
	       "(%#llx, %#llx)", (unsigned long long)r, (unsigned long long)vmx_exit_qual());

	/* The MSR bitmap still decides first. */
	msr_bitmap[0x808 / 8] |= 1u << (0x808 % 8);
	vmcs_set(VMCS_GUEST_RIP, pa(g_x2_rd));
	vmx_guest_regs.rcx = 0x808;
	r = vmx_run(false);
	report(r == EXIT_REASON_RDMSR, "RDMSR 808H with its bitmap bit set: exit 31 (%#llx)",
	       (unsigned long long)r);
	memset(msr_bitmap, 0, sizeof(msr_bitmap));
}

/* 30.6: a notification that L1 sent itself before entry arrives in L2. */
static void test_posted(void)
{
	u64 r;
	unsigned i;
	bool isr_clear = true;

	set_irq_handler(VEC_POSTED, isr_posted);
	LAPIC[0xf0 / 4] = 0x1ff;		/* L1's local APIC on */

	clear_hits();
	setup(g_sti_loop, ALL_APICV, PIN_POSTED_INTR);
	memset((void *)pi_desc, 0, sizeof(pi_desc));
	pi_desc[VEC_POSTED / 64] = 1ull << (VEC_POSTED % 64);
	pi_desc[4] = 1;				/* ON */
	LAPIC[0x300 / 4] = 0x40000 | VEC_NOTIFY;	/* self IPI, pending: IF is 0 */
	vmx_guest_regs.rcx = 10000;
	r = vmx_run(true);
	for (i = 0; i < 8; i++)
		if (LAPIC[(0x100 + 0x10 * i) / 4])
			isr_clear = false;
	report(r == EXIT_REASON_VMCALL && hits[VEC_POSTED] == 1,
	       "posted interrupt 74H delivered in L2 without a VM exit (%#llx, %u hits)",
	       (unsigned long long)r, hits[VEC_POSTED]);
	report(pi_desc[VEC_POSTED / 64] == 0 && !(pi_desc[4] & 1) && isr_clear &&
	       !(LAPIC[(0x200 + 0x10 * (VEC_NOTIFY / 32)) / 4] & (1u << (VEC_NOTIFY % 32))),
	       "PIR and ON cleared, notification acknowledged and EOI'd in L1's APIC "
	       "(PIR %#llx, ON %llu)", (unsigned long long)pi_desc[VEC_POSTED / 64],
	       (unsigned long long)(pi_desc[4] & 1));

	/* Another vector: an external-interrupt exit with it. */
	clear_hits();
	vmcs_set(VMCS_GUEST_RIP, pa(g_sti_loop));
	pi_desc[VEC_POSTED / 64] = 1ull << (VEC_POSTED % 64);
	LAPIC[0x300 / 4] = 0x40000 | VEC_OTHER;
	vmx_guest_regs.rcx = 10000;
	r = vmx_run(false);
	report(r == EXIT_REASON_EXT_INTR &&
	       (vmcs_get(VMCS_EXIT_INTR_INFO) & 0x800000ff) == (0x80000000u | VEC_OTHER) &&
	       hits[VEC_POSTED] == 0 && pi_desc[VEC_POSTED / 64] != 0,
	       "vector E2H: external-interrupt exit, the PIR left alone (%#llx, info %#llx)",
	       (unsigned long long)r, (unsigned long long)vmcs_get(VMCS_EXIT_INTR_INFO));
	apic_eoi();
	LAPIC[0xf0 / 4] = 0xff;			/* and off again */
}

void test_main(void)
{
	/*
	 * The 8259s off: the BIOS leaves the PIT's IRQ 0 unmasked, and a tick
	 * pending while L2 runs would be an external-interrupt exit (vector 8)
	 * in the middle of a check.
	 */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	vmx_on();
	test_caps_and_checks();
	test_reg_virt();
	test_vid();
	test_x2apic();
	test_posted();
	vmx_off();
}
