/*
 * VMX controls that act between instructions or on CR8 (SDM Vol. 3C
 * 25.6, 26.5, 26.7, 27.2-27.7, 30.3): virtual NMIs and NMI-window
 * exiting, the monitor trap flag, the VMX-preemption timer and the TPR
 * shadow, with their VM-entry checks.
 * Run with a -cpu model that has them (e.g. Skylake-Server,+vmx).
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 vapic[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(16)));
#define GUEST_STACK_TOP ((void *)(guest_stack + sizeof(guest_stack)))

#define PIN_VIRTUAL_NMIS		(1u << 5)
#define PIN_PREEMPT_TIMER		(1u << 6)
#define PROC_RDPMC_EXITING		(1u << 11)
#define PROC_CR8_LOAD_EXITING		(1u << 19)
#define PROC_CR8_STORE_EXITING		(1u << 20)
#define PROC_NMI_WINDOW			(1u << 22)
#define PROC_MTF			(1u << 27)
#define PROC2_DT_EXITING		(1u << 2)
#define PROC2_WBINVD_EXITING		(1u << 6)
#define PROC2_RDRAND_EXITING		(1u << 11)
#define PROC2_RDSEED_EXITING		(1u << 16)
#define PROC2_ENABLE_INVPCID		(1u << 12)
#define PROC_INVLPG_EXITING		(1u << 9)
#define VMCS_INSN_INFO			0x440e
#define EXIT_SAVE_PREEMPT_TIMER		(1u << 22)

#define VMCS_PREEMPT_TIMER_VALUE	0x482e
#define VMCS_GUEST_PENDING_DBG		0x6822

#define EXIT_REASON_NMI_WINDOW		8
#define EXIT_REASON_RDPMC		15
#define EXIT_REASON_CR_ACCESS		28
#define EXIT_REASON_MTF			37
#define EXIT_REASON_TPR_BELOW		43
#define EXIT_REASON_PREEMPT		52

#define INTR_STATE_MOV_SS		(1u << 1)
#define INTR_STATE_NMI			(1u << 3)

#define INJECT_NMI			0x80000202u
#define INJECT_UD			0x80000306u
#define INJECT_PENDING_MTF		0x80000700u

volatile u64 pt_counter;

/* ---- guest code ----------------------------------------------------------- */

extern u8 bad_iret_guest[], bad_iret[];
extern u8 nw_guest[], nw_second[], nw_resume[], iret_guest[], iret_target[], mtf_guest[],
	  mtf_second[], mtf_cpuid[], mtf_ud[], mtf_ud_done[], pt_guest[], pt_vmcall_guest[],
	  pt_hlt_guest[], pt_after_hlt[], tpr_guest[], tpr_after[], tpr_load[], nmi_self_guest[];

asm(".pushsection .text\n"
    /* NMI window: two NOPs, then VMCALL. */
    "nw_guest: nop\n"
    "nw_second: nop\n"
    "nw_resume: vmcall\n"
    "jmp nw_guest\n"
    ".pushsection .ex_table, \"a\"\n .quad nw_guest, nw_resume\n .popsection\n"

    /* IRET to the next instruction: ends (virtual-)NMI blocking. */
    "iret_guest: movq %rsp, %rax\n"
    "pushq $0x10\n"
    "pushq %rax\n"
    "pushfq\n"
    "pushq $0x08\n"
    "leaq iret_target(%rip), %rax\n"
    "pushq %rax\n"
    "iretq\n"
    "iret_target: nop\n"
    "vmcall\n"
    "jmp iret_target\n"

    /* IRET to a null code selector: #GP(0x30) inside IRET. */
    "bad_iret_guest: movq %rsp, %rax\n"
    "pushq $0x10\n"
    "pushq %rax\n"
    "pushfq\n"
    "pushq $0x30\n"
    "leaq iret_target(%rip), %rax\n"
    "pushq %rax\n"
    "bad_iret: iretq\n"
    ".pushsection .ex_table, \"a\"\n .quad bad_iret, iret_target\n .popsection\n"

    /* MTF: one instruction at a time, then an exiting one, then a fault. */
    "mtf_guest: nop\n"
    "mtf_second: nop\n"
    "mtf_cpuid: cpuid\n"
    "mtf_ud: ud2\n"
    "mtf_ud_done: vmcall\n"
    "jmp mtf_guest\n"
    ".pushsection .ex_table, \"a\"\n .quad mtf_ud, mtf_ud_done\n"
    " .quad mtf_guest, mtf_second\n .popsection\n"

    /* Preemption timer: count forever; or VMCALL; or HLT with IF=0. */
    "pt_guest: incq pt_counter(%rip)\n"
    "jmp pt_guest\n"
    "pt_vmcall_guest: incq pt_counter(%rip)\n"
    "vmcall\n"
    "jmp pt_vmcall_guest\n"
    "pt_hlt_guest: cli\n"
    "hlt\n"
    "pt_after_hlt: vmcall\n"
    "jmp pt_hlt_guest\n"

    /* TPR shadow: read CR8, write 3 (not below threshold 2), write 1. */
    "tpr_guest: mov %cr8, %rbx\n"
    "mov $3, %ecx\n"
    "mov %rcx, %cr8\n"
    "mov %cr8, %rsi\n"
    "mov $1, %edx\n"
    "tpr_load: mov %rdx, %cr8\n"
    "tpr_after: vmcall\n"
    "jmp tpr_guest\n"

    /* A self-NMI through the local APIC (ICR at 0xfee00300/0x310). */
    "nmi_self_guest: movl $0xfee00000, %eax\n"
    "movl 0x20(%rax), %ecx\n"		/* APIC ID register */
    "andl $0xff000000, %ecx\n"
    "movl %ecx, 0x310(%rax)\n"
    "movl $0x4400, 0x300(%rax)\n"	/* NMI, assert, physical, no shorthand */
    "nop\n"
    "nop\n"
    "vmcall\n"
    "jmp nmi_self_guest\n"

    /* Secondary controls: descriptor tables, WBINVD, RDRAND, RDSEED. */
    "sec_guest: leaq dt_buf(%rip), %rbx\n"
    "xorl %ecx, %ecx\n"
    "sec_sgdt: sgdt 0x10(%rbx,%rcx,4)\n"
    "sec_sldt: sldt %eax\n"
    "sec_wbinvd: wbinvd\n"
    "sec_rdrand: rdrand %r9d\n"
    "sec_rdseed: rdseed %rax\n"
    "sec_done: vmcall\n"
    "jmp sec_guest\n"

    /*
     * RDPMC of counter 0 and of an index no CPU has, then MOV from CR8 to
     * R10.  Without RDPMC exiting a #GP in the guest resumes at the next
     * label (EX_FIXUP below).
     */
    "rdpmc_guest: xorl %ecx, %ecx\n"
    "rdpmc_first: rdpmc\n"
    "rdpmc_second: movl $0x3fffffff, %ecx\n"
    "rdpmc_bad: rdpmc\n"
    "rdpmc_cr8: mov %cr8, %r10\n"
    "rdpmc_done: vmcall\n"
    "jmp rdpmc_guest\n"
    EX_FIXUP("rdpmc_first", "rdpmc_second")
    EX_FIXUP("rdpmc_bad", "rdpmc_cr8")

    /* INVPCID type 2 (all contexts, globals too) with a displacement. */
    "invpcid_guest: leaq invpcid_desc(%rip), %rbx\n"
    "subq $0x20, %rbx\n"
    "movl $2, %edx\n"
    "invpcid_insn: invpcid 0x20(%rbx), %rdx\n"
    "invpcid_done: vmcall\n"
    "jmp invpcid_guest\n"
    ".popsection\n");

u8 dt_buf[64];
u64 invpcid_desc[2] __attribute__((aligned(16)));
extern u8 invpcid_guest[], invpcid_insn[], invpcid_done[];
extern u8 rdpmc_guest[], rdpmc_first[], rdpmc_bad[], rdpmc_cr8[], rdpmc_done[];
extern u8 sec_guest[], sec_sgdt[], sec_sldt[], sec_wbinvd[], sec_rdrand[], sec_rdseed[],
	  sec_done[];

/* ---- helpers ---------------------------------------------------------------- */

static u32 pin_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS, want);
}

static u32 proc_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS, want);
}

static u32 exit_ctls(u32 want)
{
	return vmx_ctls(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS,
			EXIT_HOST_ADDR_SPACE_SIZE | want);
}

static void setup(void (*rip)(void), u32 pin, u32 proc)
{
	vmx_setup_vmcs(vmcs, rip, GUEST_STACK_TOP);
	vmcs_set(VMCS_PIN_BASED_CONTROLS, pin_ctls(pin));
	vmcs_set(VMCS_PROC_BASED_CONTROLS, proc_ctls(proc));
}

/* The exception the guest's handlers saw during the last enter() (or -1). */
static int guest_vector;
static u64 guest_ex_rip, guest_ex_error;

/* Enter; the exit reason, or ~0 if the instruction failed. */
static u64 enter(int launch, int *result)
{
	int r;

	ex_clear();
	r = vmx_enter(launch);
	guest_vector = ex_last.vector;		/* before VMREAD clears it */
	guest_ex_rip = ex_last.rip;
	guest_ex_error = ex_last.error_code;

	if (result)
		*result = r;
	return r == VMX_OK ? vmcs_get(VMCS_EXIT_REASON) : ~0ull;
}

static u64 guest_rip(void)
{
	return vmcs_get(VMCS_GUEST_RIP);
}

/* The entry point of the guest's (shared) IDT handler for @vector. */
static u64 idt_handler(int vector)
{
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) idtr;
	const u32 *e;

	asm volatile("sidt %0" : "=m"(idtr));
	e = (const u32 *)(uintptr_t)(idtr.base + 16 * vector);
	return (e[0] & 0xffff) | (e[1] & 0xffff0000) | ((u64)e[2] << 32);
}

static void expect_vmfail7(int r, const char *what)
{
	u64 err = vmx_insn_error();

	report(r == VMX_FAIL_VALID && err == 7, "%s: VMfailValid(7) (got %s, %llu)", what,
	       vmx_outcome_name(r), (unsigned long long)err);
}

/* ---- capabilities ------------------------------------------------------------ */

static void test_caps(void)
{
	u64 pin = rdmsr(MSR_IA32_VMX_TRUE_PINBASED_CTLS);
	u64 proc = rdmsr(MSR_IA32_VMX_TRUE_PROCBASED_CTLS);
	u64 exit = rdmsr(MSR_IA32_VMX_TRUE_EXIT_CTLS);
	u64 misc = rdmsr(MSR_IA32_VMX_MISC);

	report((pin >> 32) & PIN_VIRTUAL_NMIS, "virtual NMIs may be 1");
	report((pin >> 32) & PIN_PREEMPT_TIMER, "activate VMX-preemption timer may be 1");
	report(!(pin & (PIN_VIRTUAL_NMIS | PIN_PREEMPT_TIMER)),
	       "virtual NMIs and the preemption timer may be 0");
	report((proc >> 32) & PROC_NMI_WINDOW, "NMI-window exiting may be 1");
	report((proc >> 32) & PROC_MTF, "monitor trap flag may be 1");
	report((proc >> 32) & PROC_TPR_SHADOW, "use TPR shadow may be 1");
	report((exit >> 32) & EXIT_SAVE_PREEMPT_TIMER, "save VMX-preemption timer value may be 1");
	info("IA32_VMX_MISC %#llx: preemption timer rate %llu", (unsigned long long)misc,
	     (unsigned long long)(misc & 0x1f));
}

/* ---- entry checks ----------------------------------------------------------- */

static void test_entry_checks(void)
{
	int r;

	setup((void (*)(void))nw_guest, PIN_VIRTUAL_NMIS, 0);
	expect_vmfail7(vmx_enter(1), "virtual NMIs without NMI exiting");

	setup((void (*)(void))nw_guest, PIN_NMI_EXITING, PROC_NMI_WINDOW);
	expect_vmfail7(vmx_enter(1), "NMI-window exiting without virtual NMIs");

	setup((void (*)(void))nw_guest, 0, 0);
	vmcs_set(VMCS_EXIT_CONTROLS, exit_ctls(EXIT_SAVE_PREEMPT_TIMER));
	expect_vmfail7(vmx_enter(1), "save preemption timer value without the timer");

	setup((void (*)(void))nw_guest, 0, 0);
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_PENDING_MTF | 1);
	expect_vmfail7(vmx_enter(1), "injecting event type 7 with vector 1");

	/* 27.3.1.5: no virtual NMI while virtual-NMI blocking is on. */
	setup((void (*)(void))nw_guest, PIN_NMI_EXITING | PIN_VIRTUAL_NMIS, 0);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_NMI);
	r = vmx_enter(1);
	report(r == VMX_OK &&
	       vmcs_get(VMCS_EXIT_REASON) == (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE),
	       "injecting a virtual NMI with virtual-NMI blocking: VM-entry failure 33 (got %s, %#llx)",
	       vmx_outcome_name(r), (unsigned long long)vmcs_get(VMCS_EXIT_REASON));

	/* TPR shadow (27.2.1.1). */
	setup((void (*)(void))tpr_guest, 0, PROC_TPR_SHADOW);
	vapic[0x80] = 0x50;
	vmcs_set(VMCS_VIRTUAL_APIC_ADDR, pa(vapic) + 0x800);
	expect_vmfail7(vmx_enter(1), "virtual-APIC address not 4 KiB aligned");
	vmcs_set(VMCS_VIRTUAL_APIC_ADDR, pa(vapic));
	vmcs_set(VMCS_TPR_THRESHOLD, 0x12);
	expect_vmfail7(vmx_enter(1), "TPR threshold with bits 31:4 set");
	vmcs_set(VMCS_TPR_THRESHOLD, 6);
	expect_vmfail7(vmx_enter(1), "TPR threshold 6 above VTPR[7:4] = 5");
}

/* ---- virtual NMIs and NMI-window exiting ------------------------------------- */

static void test_nmi_window(void)
{
	u32 pin = PIN_NMI_EXITING | PIN_VIRTUAL_NMIS;
	u64 reason, st;

	/* No blocking: the exit comes before the first instruction. */
	setup((void (*)(void))nw_guest, pin, PROC_NMI_WINDOW);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_NMI_WINDOW && guest_rip() == pa(nw_guest),
	       "NMI window open at entry: exit 8 before the first instruction (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());

	/* Blocking by MOV SS: one instruction runs first. */
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_MOV_SS);
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_NMI_WINDOW && guest_rip() == pa(nw_second),
	       "blocking by MOV SS: exit 8 after one instruction (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());

	/* Virtual-NMI blocking lasts until IRET. */
	setup((void (*)(void))iret_guest, pin, PROC_NMI_WINDOW);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_NMI_WINDOW && guest_rip() == pa(iret_target),
	       "virtual-NMI blocking: exit 8 right after IRET (%#llx at %#llx, want %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip(),
	       (unsigned long long)pa(iret_target));
	report(!(vmcs_get(VMCS_GUEST_INTERRUPTIBILITY) & INTR_STATE_NMI),
	       "IRET cleared virtual-NMI blocking");

	/* Under NMI exiting alone, blocking by NMI outlives a guest IRET. */
	setup((void (*)(void))iret_guest, PIN_NMI_EXITING, 0);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	reason = enter(1, NULL);
	st = vmcs_get(VMCS_GUEST_INTERRUPTIBILITY);
	report(reason == EXIT_REASON_VMCALL && guest_rip() == pa(iret_target) + 1 &&
	       (st & INTR_STATE_NMI),
	       "NMI exiting without virtual NMIs: IRET leaves blocking by NMI (%#llx, state %#llx)",
	       (unsigned long long)reason, (unsigned long long)st);

	/* Without NMI-window exiting, blocking is saved as it is. */
	setup((void (*)(void))nw_guest, pin, 0);
	vmcs_set(VMCS_GUEST_RIP, pa(nw_resume));
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	reason = enter(1, NULL);
	st = vmcs_get(VMCS_GUEST_INTERRUPTIBILITY);
	report(reason == EXIT_REASON_VMCALL && (st & INTR_STATE_NMI),
	       "virtual-NMI blocking survives a VMCALL exit (%#llx, state %#llx)",
	       (unsigned long long)reason, (unsigned long long)st);

	/* An injected virtual NMI goes through the guest IDT and blocks. */
	setup((void (*)(void))nw_guest, pin, 0);
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_NMI);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_VMCALL && guest_vector == 2,
	       "injected virtual NMI delivered through the guest IDT (exit %#llx, vector %d)",
	       (unsigned long long)reason, guest_vector);
	report(!(vmcs_get(VMCS_GUEST_INTERRUPTIBILITY) & INTR_STATE_NMI),
	       "the NMI handler's IRET ended virtual-NMI blocking");

	/* With NMI-window exiting the window opens at the handler's IRET. */
	setup((void (*)(void))nw_guest, pin, PROC_NMI_WINDOW);
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_NMI);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_NMI_WINDOW && guest_rip() == pa(nw_resume) &&
	       guest_vector == 2,
	       "virtual NMI injected with NMI-window exiting: exit 8 after its IRET (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());

	/* A fault inside IRET: blocking cleared, "NMI unblocking due to IRET". */
	setup((void (*)(void))bad_iret_guest, pin, 0);
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << GP_VECTOR);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	reason = enter(1, NULL);
	st = vmcs_get(VMCS_EXIT_INTR_INFO);
	report(reason == EXIT_REASON_EXCEPTION_NMI && guest_rip() == pa(bad_iret) &&
	       st == (0x80000b0d | (1u << 12)) && vmcs_get(VMCS_EXIT_INTR_ERROR_CODE) == 0x30,
	       "#GP in IRET under virtual-NMI blocking: exit with NMI unblocking bit 12 (%#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)st);
	report(!(vmcs_get(VMCS_GUEST_INTERRUPTIBILITY) & INTR_STATE_NMI),
	       "virtual-NMI blocking is cleared before that exit");
	setup((void (*)(void))bad_iret_guest, pin, 0);
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << GP_VECTOR);
	reason = enter(1, NULL);
	st = vmcs_get(VMCS_EXIT_INTR_INFO);
	report(reason == EXIT_REASON_EXCEPTION_NMI && st == 0x80000b0d,
	       "#GP in IRET without blocking: bit 12 clear (%#llx)", (unsigned long long)st);
	/*
	 * Delivered to the guest instead, the faulting IRET still unblocks:
	 * MTF stops at the #GP handler, before the handler's own IRET.
	 */
	setup((void (*)(void))bad_iret_guest, pin, PROC_MTF);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	do {
		reason = enter(guest_rip() == pa(bad_iret_guest), NULL);
	} while (reason == EXIT_REASON_MTF && guest_rip() != idt_handler(GP_VECTOR) &&
		 guest_rip() <= pa(bad_iret));
	report(reason == EXIT_REASON_MTF && guest_rip() == idt_handler(GP_VECTOR) &&
	       !(vmcs_get(VMCS_GUEST_INTERRUPTIBILITY) & INTR_STATE_NMI),
	       "a faulting IRET whose #GP goes to the guest ends virtual-NMI blocking (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());

	/* A real NMI exits even under virtual-NMI blocking. */
	setup((void (*)(void))nmi_self_guest, pin, 0);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, INTR_STATE_NMI);
	reason = enter(1, NULL);
	st = vmcs_get(VMCS_EXIT_INTR_INFO);
	report(reason == EXIT_REASON_EXCEPTION_NMI && st == 0x80000202,
	       "self-NMI under virtual-NMI blocking: NMI exit (%#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)st);
	report(vmcs_get(VMCS_GUEST_INTERRUPTIBILITY) & INTR_STATE_NMI,
	       "virtual-NMI blocking is saved on the NMI exit");
	/* The host's NMIs stay blocked until its next IRET: take one. */
	ex_clear();
	asm volatile("1: ud2\n2:\n" EX_FIXUP("1b", "2b"));
}

/* ---- monitor trap flag ------------------------------------------------------- */

static void test_mtf(void)
{
	u64 reason;
	int r;

	setup((void (*)(void))mtf_guest, 0, PROC_MTF);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_MTF && guest_rip() == pa(mtf_second),
	       "MTF: exit 37 after the first instruction (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_MTF && guest_rip() == pa(mtf_cpuid),
	       "MTF: exit 37 after the next instruction (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_CPUID && guest_rip() == pa(mtf_cpuid),
	       "MTF: an instruction that exits reports its own exit (%#llx)",
	       (unsigned long long)reason);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_MTF && guest_rip() == idt_handler(UD_VECTOR) &&
	       guest_vector == -1,
	       "MTF: a fault delivered to the guest exits at its handler (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());
	vmcs_set(VMCS_PROC_BASED_CONTROLS, proc_ctls(0));
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_VMCALL && guest_rip() == pa(mtf_ud_done) &&
	       guest_vector == UD_VECTOR,
	       "without MTF the handler runs to the next VMCALL (%#llx)", (unsigned long long)reason);

	/* Injection with MTF: the exit follows delivery. */
	setup((void (*)(void))mtf_guest, 0, PROC_MTF);
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_UD);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_MTF && guest_rip() == idt_handler(UD_VECTOR),
	       "MTF with an injected #UD: exit 37 at the #UD handler (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());

	/* A single-step trap at the same boundary stays pending (BS). */
	setup((void (*)(void))mtf_guest, 0, PROC_MTF);
	vmcs_set(VMCS_GUEST_RFLAGS, 0x102);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_MTF && guest_rip() == pa(mtf_second) && guest_vector == -1 &&
	       vmcs_get(VMCS_GUEST_PENDING_DBG) == (1u << 14),
	       "MTF with RFLAGS.TF: MTF exit, the #DB trap pending as BS (%#llx at %#llx, %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip(),
	       (unsigned long long)vmcs_get(VMCS_GUEST_PENDING_DBG));

	/* A pending MTF VM exit (type 7) needs no MTF control. */
	setup((void (*)(void))mtf_guest, 0, 0);
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_PENDING_MTF);
	reason = enter(1, &r);
	report(reason == EXIT_REASON_MTF && guest_rip() == pa(mtf_guest),
	       "injected pending MTF: exit 37 before any instruction (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_CPUID, "then the guest runs on to CPUID (%#llx)",
	       (unsigned long long)reason);
}

/* ---- pending debug exceptions at VM entry (27.7.3) ------------------------- */

static void test_pending_dbg(void)
{
	u64 reason, dr6;

	asm volatile("mov %0, %%dr6" :: "r"(0xffff0ff0ull));
	setup((void (*)(void))nw_guest, 0, 0);
	vmcs_set(VMCS_GUEST_PENDING_DBG, (1u << 12) | (1u << 1));
	reason = enter(1, NULL);
	asm volatile("mov %%dr6, %0" : "=r"(dr6));
	report(reason == EXIT_REASON_VMCALL && guest_vector == 1 && (dr6 & 2),
	       "pending B1 at entry: #DB trap through the guest IDT (%#llx, vector %d, DR6 %#llx)",
	       (unsigned long long)reason, guest_vector, (unsigned long long)dr6);

	asm volatile("mov %0, %%dr6" :: "r"(0xffff0ff0ull));
	setup((void (*)(void))nw_guest, 0, 0);
	vmcs_set(VMCS_GUEST_PENDING_DBG, (1u << 12) | (1u << 1));
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << 1);
	reason = enter(1, NULL);
	asm volatile("mov %%dr6, %0" : "=r"(dr6));
	report(reason == EXIT_REASON_EXCEPTION_NMI && vmcs_get(VMCS_EXIT_INTR_INFO) == 0x80000301 &&
	       vmcs_get(VMCS_EXIT_QUALIFICATION) == 2 && guest_rip() == pa(nw_guest) && !(dr6 & 2),
	       "pending B1 with #DB in the exception bitmap: exception exit, B1 in the qualification "
	       "(%#llx, info %#llx, qual %#llx, DR6 %#llx)", (unsigned long long)reason,
	       (unsigned long long)vmcs_get(VMCS_EXIT_INTR_INFO),
	       (unsigned long long)vmcs_get(VMCS_EXIT_QUALIFICATION), (unsigned long long)dr6);

	setup((void (*)(void))nw_guest, 0, 0);
	vmcs_set(VMCS_GUEST_PENDING_DBG, (1u << 12) | (1u << 1));
	vmcs_set(VMCS_ENTRY_INTR_INFO, INJECT_UD);
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << 1);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_VMCALL && guest_vector == UD_VECTOR,
	       "with an event injected the pending #DB is not delivered (%#llx, vector %d)",
	       (unsigned long long)reason, guest_vector);
}

/* ---- VMX-preemption timer ---------------------------------------------------- */

static void test_preemption_timer(void)
{
	u64 reason, v, t0, t1, rate = rdmsr(MSR_IA32_VMX_MISC) & 0x1f;

	/* Zero: exit before the first instruction. */
	setup((void (*)(void))pt_guest, PIN_PREEMPT_TIMER, 0);
	vmcs_set(VMCS_PREEMPT_TIMER_VALUE, 0);
	pt_counter = 0;
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_PREEMPT && guest_rip() == pa(pt_guest) && pt_counter == 0,
	       "timer value 0: exit 52 before any instruction (%#llx at %#llx, count %llu)",
	       (unsigned long long)reason, (unsigned long long)guest_rip(),
	       (unsigned long long)pt_counter);

	/*
	 * A running guest is preempted, not before the deadline.  The timer
	 * follows the TSC, which keeps running while the host deschedules this
	 * vCPU's thread: a deadline of some 10 ms lets the guest start looping
	 * even on a loaded machine.
	 */
	v = 1000000;
	vmcs_set(VMCS_PREEMPT_TIMER_VALUE, v);
	vmcs_set(VMCS_EXIT_CONTROLS, exit_ctls(EXIT_SAVE_PREEMPT_TIMER));
	t0 = rdtsc();
	reason = enter(0, NULL);
	t1 = rdtsc();
	report(reason == EXIT_REASON_PREEMPT && pt_counter > 0,
	       "timer value %llu: the looping guest is preempted (%#llx, count %llu)",
	       (unsigned long long)v, (unsigned long long)reason, (unsigned long long)pt_counter);
	report(t1 - t0 >= (v - 1) << rate, "no exit before %llu TSC ticks (took %llu)",
	       (unsigned long long)((v - 1) << rate), (unsigned long long)(t1 - t0));
	report(vmcs_get(VMCS_PREEMPT_TIMER_VALUE) == 0, "the saved timer value is 0 (%llu)",
	       (unsigned long long)vmcs_get(VMCS_PREEMPT_TIMER_VALUE));

	/* Another exit first: the saved value is what is left. */
	setup((void (*)(void))pt_vmcall_guest, PIN_PREEMPT_TIMER, 0);
	vmcs_set(VMCS_EXIT_CONTROLS, exit_ctls(EXIT_SAVE_PREEMPT_TIMER));
	vmcs_set(VMCS_PREEMPT_TIMER_VALUE, 0xffffffff);
	reason = enter(1, NULL);
	v = vmcs_get(VMCS_PREEMPT_TIMER_VALUE);
	report(reason == EXIT_REASON_VMCALL && v < 0xffffffff && v > 0xf0000000,
	       "VMCALL before expiry: saved value counts down (%#llx, %#llx)",
	       (unsigned long long)reason, (unsigned long long)v);
	vmcs_set(VMCS_EXIT_CONTROLS, exit_ctls(0));
	vmcs_set(VMCS_PREEMPT_TIMER_VALUE, 0x10000000);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_VMCALL && vmcs_get(VMCS_PREEMPT_TIMER_VALUE) == 0x10000000,
	       "without the save control the field is left alone (%llu)",
	       (unsigned long long)vmcs_get(VMCS_PREEMPT_TIMER_VALUE));

	/*
	 * The timer wakes a guest halted with interrupts off.  About 20 ms
	 * of TSC (at 3 GHz) whatever the model's rate: the guest must reach
	 * its HLT first, even when the host deschedules the vCPU for a while
	 * (100000 units were 33 us on a rate-0 model, too short under load).
	 */
	setup((void (*)(void))pt_hlt_guest, PIN_PREEMPT_TIMER, 0);
	vmcs_set(VMCS_PREEMPT_TIMER_VALUE, 60000000ull >> (rdmsr(MSR_IA32_VMX_MISC) & 0x1f));
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_PREEMPT && guest_rip() == pa(pt_after_hlt) &&
	       vmcs_get(VMCS_GUEST_ACTIVITY_STATE) == 1,
	       "timer expiry in HLT: exit 52 after HLT, activity state HLT (%#llx at %#llx, %llu)",
	       (unsigned long long)reason, (unsigned long long)guest_rip(),
	       (unsigned long long)vmcs_get(VMCS_GUEST_ACTIVITY_STATE));
}

/* ---- TPR shadow ---------------------------------------------------------------- */

static void test_tpr_shadow(void)
{
	u64 reason, host_tpr;

	asm volatile("mov %%cr8, %0" : "=r"(host_tpr));
	setup((void (*)(void))tpr_guest, 0, PROC_TPR_SHADOW);
	memset(vapic, 0, sizeof(vapic));
	vapic[0x80] = 0x5a;
	vapic[0x81] = 0x77;
	vmcs_set(VMCS_VIRTUAL_APIC_ADDR, pa(vapic));
	vmcs_set(VMCS_TPR_THRESHOLD, 2);
	vmx_guest_regs.rbx = vmx_guest_regs.rsi = ~0ull;
	reason = enter(1, NULL);
	report(vmx_guest_regs.rbx == 5, "MOV from CR8 reads VTPR[7:4] (%#llx)",
	       (unsigned long long)vmx_guest_regs.rbx);
	report(vmx_guest_regs.rsi == 3, "MOV to CR8 of 3, read back (%#llx)",
	       (unsigned long long)vmx_guest_regs.rsi);
	report(reason == EXIT_REASON_TPR_BELOW && guest_rip() == pa(tpr_after),
	       "MOV to CR8 below the TPR threshold: trap-like exit 43 (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());
	report(*(u32 *)(vapic + 0x80) == 0x10, "VTPR holds 0x10, bytes 1-3 cleared (%#x)",
	       *(u32 *)(vapic + 0x80));
	{
		u64 tpr;

		asm volatile("mov %%cr8, %0" : "=r"(tpr));
		report(tpr == host_tpr, "the local APIC's TPR is untouched (%llu)",
		       (unsigned long long)tpr);
	}

	/* CR8-load exiting still takes precedence. */
	setup((void (*)(void))tpr_guest, 0, PROC_TPR_SHADOW | PROC_CR8_LOAD_EXITING);
	vmcs_set(VMCS_VIRTUAL_APIC_ADDR, pa(vapic));
	vmcs_set(VMCS_TPR_THRESHOLD, 0);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_CR_ACCESS &&
	       vmcs_get(VMCS_EXIT_QUALIFICATION) == (8 | (1 << 8)),
	       "TPR shadow with CR8-load exiting: CR-access exit for MOV to CR8 (%#llx, %#llx)",
	       (unsigned long long)reason, (unsigned long long)vmcs_get(VMCS_EXIT_QUALIFICATION));
}

/* ---- secondary controls: descriptor tables, WBINVD, RDRAND, RDSEED --------- */

static void set_proc2(u32 want)
{
	u64 cap = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);

	if (want & ~(u32)(cap >> 32))
		test_abort("secondary controls %#x not offered", want & ~(u32)(cap >> 32));
	vmcs_set(VMCS_PROC_BASED_CONTROLS, proc_ctls(PROC_ACTIVATE_SECONDARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, want | (u32)cap);
}

static void test_secondary(void)
{
	struct cpuid_regs c1 = cpuid(1), c7 = cpuid_count(7, 0);
	u64 reason, info, q;

	report(c1.c & (1u << 30), "CPUID reports RDRAND");
	report(c7.b & (1u << 18), "CPUID reports RDSEED");

	setup((void (*)(void))sec_guest, 0, 0);
	set_proc2(PROC2_DT_EXITING | PROC2_WBINVD_EXITING | PROC2_RDRAND_EXITING |
		  PROC2_RDSEED_EXITING);
	reason = enter(1, NULL);
	info = vmcs_get(VMCS_INSN_INFO);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	/* scale 4 (2), 64-bit address (2 << 7), 32-bit operand (bit 11), DS (3 << 15),
	 * index RCX (1 << 18), base RBX (3 << 23), SGDT (0 << 28) */
	report(reason == 46 && guest_rip() == pa(sec_sgdt) && q == 0x10 &&
	       info == (2 | (2 << 7) | (1 << 11) | (3 << 15) | (1 << 18) | (3 << 23)),
	       "SGDT with descriptor-table exiting: exit 46, displacement and operand (%#llx, qual %#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)q, (unsigned long long)info);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	info = vmcs_get(VMCS_INSN_INFO);
	report(reason == 47 && guest_rip() == pa(sec_sldt) && info == (1 << 10),
	       "SLDT EAX: exit 47, register operand RAX, SLDT (%#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)info);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	report(reason == 54 && guest_rip() == pa(sec_wbinvd),
	       "WBINVD with WBINVD exiting: exit 54 (%#llx)", (unsigned long long)reason);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	info = vmcs_get(VMCS_INSN_INFO);
	report(reason == 57 && guest_rip() == pa(sec_rdrand) && info == ((9 << 3) | (1 << 11)),
	       "RDRAND R9D: exit 57, destination R9, 32-bit (%#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)info);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	info = vmcs_get(VMCS_INSN_INFO);
	report(reason == 61 && guest_rip() == pa(sec_rdseed) && info == (2 << 11),
	       "RDSEED RAX: exit 61, destination RAX, 64-bit (%#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)info);

	/* Without the controls none of them exits. */
	memset(dt_buf, 0, sizeof(dt_buf));
	setup((void (*)(void))sec_guest, 0, 0);
	set_proc2(0);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_VMCALL && guest_rip() == pa(sec_done) &&
	       *(u16 *)(dt_buf + 0x10) != 0,
	       "without the controls the guest runs SGDT..RDSEED to VMCALL (%#llx)",
	       (unsigned long long)reason);
}

/* ---- RDPMC exiting and CR8-store exiting -------------------------------------- */

/*
 * 26.1.3: RDPMC exits with "RDPMC exiting" whatever ECX holds (the counter
 * check comes after the exit), reason 15; MOV from CR8 exits with
 * "CR8-store exiting", reason 28, qualification CR 8, MOV from CR (1 << 4),
 * the destination register in bits 11:8 (28.2.1, Table 28-3).
 */
static void test_rdpmc_cr8(void)
{
	u64 reason, q;

	setup((void (*)(void))rdpmc_guest, 0, PROC_RDPMC_EXITING | PROC_CR8_STORE_EXITING);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_RDPMC && guest_rip() == pa(rdpmc_first) &&
	       vmcs_get(VMCS_EXIT_QUALIFICATION) == 0,
	       "RDPMC of counter 0 with RDPMC exiting: exit 15 (%#llx)",
	       (unsigned long long)reason);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	report(reason == EXIT_REASON_RDPMC && guest_rip() == pa(rdpmc_bad),
	       "RDPMC of an invalid index with RDPMC exiting: exit 15, not #GP (%#llx)",
	       (unsigned long long)reason);
	vmx_skip_instruction();
	reason = enter(0, NULL);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_CR_ACCESS && guest_rip() == pa(rdpmc_cr8) &&
	       q == (8 | (1 << 4) | (10 << 8)),
	       "MOV R10, CR8 with CR8-store exiting: exit 28, qualification %#x (%#llx, %#llx)",
	       8 | (1 << 4) | (10 << 8), (unsigned long long)reason, (unsigned long long)q);

	/* Without the controls: no exit; the invalid index raises #GP(0) in the guest. */
	setup((void (*)(void))rdpmc_guest, 0, 0);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_VMCALL && guest_rip() == pa(rdpmc_done) &&
	       guest_vector == GP_VECTOR && guest_ex_rip == pa(rdpmc_bad) && guest_ex_error == 0,
	       "without the controls RDPMC and MOV from CR8 run, RDPMC %#x raises #GP(0) "
	       "(%#llx, vector %d)", 0x3fffffff, (unsigned long long)reason, guest_vector);
}

/* ---- INVPCID and "enable INVPCID" ------------------------------------------ */

static int invpcid_root(u64 type, u64 pcid, u64 addr)
{
	u64 desc[2] __attribute__((aligned(16))) = { pcid, addr };

	ex_clear();
	asm volatile("1: invpcid %0, %1\n2:\n" EX_FIXUP("1b", "2b")
		     :: "m"(desc), "r"(type) : "memory");
	return ex_last.vector;
}

static void test_invpcid(void)
{
	u64 reason, info;

	report(cpuid_count(7, 0).b & (1u << 10), "CPUID reports INVPCID");
	report(invpcid_root(2, 0, 0) == NO_EXCEPTION && invpcid_root(3, 0, 0) == NO_EXCEPTION &&
	       invpcid_root(0, 0, 0x1000) == NO_EXCEPTION && invpcid_root(1, 0, 0) == NO_EXCEPTION,
	       "INVPCID types 0-3 with valid descriptors");
	report(invpcid_root(4, 0, 0) == GP_VECTOR, "INVPCID type 4: #GP");
	report(invpcid_root(2, 1ull << 12, 0) == GP_VECTOR, "INVPCID with descriptor bit 12 set: #GP");
	report(invpcid_root(0, 0, 0x0000800000000000ull) == GP_VECTOR,
	       "INVPCID type 0 with a non-canonical address: #GP");
	report(invpcid_root(1, 1, 0) == GP_VECTOR, "INVPCID type 1, PCID 1 with CR4.PCIDE=0: #GP");

	/* "enable INVPCID" 0: #UD in non-root operation. */
	setup((void (*)(void))invpcid_guest, 0, 0);
	set_proc2(0);
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << UD_VECTOR);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_EXCEPTION_NMI && guest_rip() == pa(invpcid_insn) &&
	       vmcs_get(VMCS_EXIT_INTR_INFO) == INJECT_UD,
	       "INVPCID without \"enable INVPCID\": #UD (%#llx at %#llx)",
	       (unsigned long long)reason, (unsigned long long)guest_rip());

	/* Enabled: runs in the guest. */
	setup((void (*)(void))invpcid_guest, 0, 0);
	set_proc2(PROC2_ENABLE_INVPCID);
	reason = enter(1, NULL);
	report(reason == EXIT_REASON_VMCALL && guest_rip() == pa(invpcid_done),
	       "INVPCID with \"enable INVPCID\": executes in the guest (%#llx)",
	       (unsigned long long)reason);

	/* Enabled with INVLPG exiting: exit 58 with its operand. */
	setup((void (*)(void))invpcid_guest, 0, 0);
	set_proc2(PROC2_ENABLE_INVPCID);
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 proc_ctls(PROC_ACTIVATE_SECONDARY | PROC_INVLPG_EXITING));
	reason = enter(1, NULL);
	info = vmcs_get(VMCS_INSN_INFO);
	/* no scaling, 64-bit address (2 << 7), DS (3 << 15), no index (bit 22),
	 * base RBX (3 << 23), reg2 RDX (2 << 28) */
	report(reason == 58 && guest_rip() == pa(invpcid_insn) &&
	       vmcs_get(VMCS_EXIT_QUALIFICATION) == 0x20 &&
	       info == ((2 << 7) | (3 << 15) | (1 << 22) | (3 << 23) | (2u << 28)),
	       "INVPCID with INVLPG exiting: exit 58, displacement and operand (%#llx, qual %#llx, info %#llx)",
	       (unsigned long long)reason, (unsigned long long)vmcs_get(VMCS_EXIT_QUALIFICATION),
	       (unsigned long long)info);
}

void test_main(void)
{
	vmx_on();
	test_caps();
	test_entry_checks();
	test_nmi_window();
	test_mtf();
	test_pending_dbg();
	test_preemption_timer();
	test_tpr_shadow();
	test_secondary();
	test_rdpmc_cr8();
	test_invpcid();
	vmx_off();
}
