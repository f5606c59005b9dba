/*
 * Extended PML's posted notification (docs/epml.md section 8.1) across
 * two CPUs.  The AP's L1 runs a collector L2 with "process posted
 * interrupts" whose posted-interrupt descriptor is the one the BSP's
 * VMCS names in field 2046H; the BSP's L1 runs a logging L2 with
 * "notify" and "post notification".  Each hand-over posts the EPML
 * vector V and, when it set ON, sends NV to the AP, where posted-interrupt
 * processing delivers V to the collector L2 without a VM exit; its
 * handler drains every FULL buffer.  Checked:
 *
 *   A. collector in L2: the drained set is the touched set, every page
 *      once with its kind; neither side takes an exit for a notification;
 *   B. collector descheduled (its L1 in root operation, IF=1): NV is an
 *      ordinary interrupt in L1, ON stays set, the second hand-over sends
 *      nothing; when L1 schedules the collector again V is delivered in
 *      L2 and both buffers are drained;
 *   C. SN set by L1: no IPI at all, V waits in PIR with ON clear; L1
 *      clears SN, sees PIR, posts the notification to itself and V is
 *      delivered in L2.
 *
 * Both L1s enter their L2 at the same time, so this test has its own
 * VM-entry routine keeping each CPU's guest registers apart (the
 * library's vmx_enter() keeps them in one global).
 * Run with -smp 2 and -cpu Skylake-Server,+vmx,epml=on.
 */
#include "libtest.h"
#include "vmx.h"

#define NPAGES		900
#define N_PER_BUF	256
#define VEC_V		0x41		/* the EPML notification vector: posted */
#define VEC_NV		0xe1		/* the posted-interrupt notification vector */
#define AP_APIC_ID	1
#define MAX_ENTRIES	2048
#define SPIN_LIMIT	200000000u
#define QUIET_SPINS	2000000u	/* how long "nothing arrives" is watched */

#define NREASONS			64

#define LAPIC		((volatile u32 *)0xfee00000ul)

/* The logger (BSP). */
static u8 vmcs_log[4096] __attribute__((aligned(4096)));
static u8 stack_log[8192] __attribute__((aligned(4096)));
static u64 buf[2][512] __attribute__((aligned(4096)));
static volatile struct epml_desc desc;
static u8 pages[NPAGES][4096] __attribute__((aligned(4096)));
static volatile u8 page_written[NPAGES];
static volatile u32 n_touch;

/* The collector (AP). */
static u8 vmxon_col[4096] __attribute__((aligned(4096)));
static u8 vmcs_col[4096] __attribute__((aligned(4096)));
static u8 stack_col[8192] __attribute__((aligned(4096)));
static u8 apic_page[4096] __attribute__((aligned(4096)));
static u8 vapic[4096] __attribute__((aligned(4096)));
static volatile struct pi_desc pi;

/* What the collector drained, and what it saw. */
static volatile u64 drained[MAX_ENTRIES][2];
static volatile u32 n_drained, v_in_l2, nv_in_l1, in_handler;
static volatile u32 col_exits[NREASONS], log_exits[NREASONS];
static volatile int in_l2, l2_stop;

/* ---- a VM entry per CPU --------------------------------------------------- */

static struct vmx_guest_regs regs_log, regs_col;

/*
 * int pv_enter(int launch, struct vmx_guest_regs *r): like vmx_enter(),
 * with the guest's registers in *r.  HOST_RSP points at the saved @r.
 */
int pv_enter(int launch, struct vmx_guest_regs *r);
asm(".pushsection .text\n"
    ".globl pv_enter\n"
    "pv_enter:\n"
    "	push %rbp\n	push %rbx\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
    "	push %rsi\n"
    "	mov $0x6c14, %rdx\n	vmwrite %rsp, %rdx\n"
    "	lea 9f(%rip), %rax\n	mov $0x6c16, %rdx\n	vmwrite %rax, %rdx\n"
    "	mov %rsi, %rax\n"
    "	test %edi, %edi\n"		/* the MOVs below keep ZF */
    "	mov 8(%rax), %rbx\n	mov 16(%rax), %rcx\n	mov 24(%rax), %rdx\n"
    "	mov 32(%rax), %rsi\n	mov 40(%rax), %rdi\n	mov 48(%rax), %rbp\n"
    "	mov 56(%rax), %r8\n	mov 64(%rax), %r9\n	mov 72(%rax), %r10\n"
    "	mov 80(%rax), %r11\n	mov 88(%rax), %r12\n	mov 96(%rax), %r13\n"
    "	mov 104(%rax), %r14\n	mov 112(%rax), %r15\n	mov 0(%rax), %rax\n"
    "	jz 1f\n"
    "	vmlaunch\n"
    "	jmp 2f\n"
    "1:	vmresume\n"
    "2:	mov $1, %eax\n	jc 3f\n	mov $2, %eax\n	jz 3f\n	mov $3, %eax\n	jmp 3f\n"
    "9:	push %rax\n"
    "	mov 8(%rsp), %rax\n"
    "	mov %rbx, 8(%rax)\n	mov %rcx, 16(%rax)\n	mov %rdx, 24(%rax)\n"
    "	mov %rsi, 32(%rax)\n	mov %rdi, 40(%rax)\n	mov %rbp, 48(%rax)\n"
    "	mov %r8, 56(%rax)\n	mov %r9, 64(%rax)\n	mov %r10, 72(%rax)\n"
    "	mov %r11, 80(%rax)\n	mov %r12, 88(%rax)\n	mov %r13, 96(%rax)\n"
    "	mov %r14, 104(%rax)\n	mov %r15, 112(%rax)\n"
    "	pop %rbx\n	mov %rbx, 0(%rax)\n"
    "	xor %eax, %eax\n"
    "3:	add $8, %rsp\n"
    "	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbx\n	pop %rbp\n"
    "	ret\n"
    ".popsection\n");

static void spin_until(volatile int *flag, int want, const char *what)
{
	for (u32 spins = 0; *flag != want; spins++) {
		if (spins > SPIN_LIMIT)
			test_abort("timed out waiting for %s", what);
		asm volatile("pause");
	}
}

/* ---- the collector: L2 and its L1 on the AP -------------------------------- */

static void drain(int b)
{
	u32 n = desc.count[b];

	for (u32 i = 0; i < n && n_drained < MAX_ENTRIES; i++) {
		drained[n_drained][0] = buf[b][2 * i];
		drained[n_drained][1] = buf[b][2 * i + 1];
		n_drained++;
	}
	asm volatile("" ::: "memory");
	desc.state[b] = 0;			/* give the buffer back */
}

/* Vector V, delivered in the collector L2: drain every FULL buffer. */
static void on_v(void)
{
	in_handler = 1;
	v_in_l2++;
	for (int b = 0; b < 2; b++)
		if (desc.state[b] & 1)
			drain(b);
	in_handler = 0;
	*(volatile u32 *)(apic_page + 0xb0) = 0;	/* virtual EOI */
}

/* NV in the collector's L1 (root operation): the host's wake-up handler. */
static void on_nv_l1(void)
{
	nv_in_l1++;
	apic_eoi();
}

static void __attribute__((noreturn, used)) collector_l2(void)
{
	in_l2 = 1;
	asm volatile("sti");
	while (!l2_stop)
		asm volatile("pause");
	asm volatile("cli");
	in_l2 = 0;
	for (;;)
		asm volatile("vmcall" ::: "memory");
}

static void collector_vmcs(void)
{
	vmx_setup_vmcs(vmcs_col, collector_l2, stack_col + sizeof(stack_col));
	vmx_setup_apicv(PIN_POSTED_INTR, 0, PROC2_VIRT_APIC_ACCESSES | PROC2_VID, apic_page, vapic,
			VEC_NV, &pi);
}

enum { CMD_NONE, CMD_RUN, CMD_IDLE, CMD_IDLE_SN, CMD_QUIT };
static volatile int cmd, cmd_done, col_ready;

/*
 * Schedule the collector, as a host does: SN cleared; if a request waits
 * in PIR, ON set and NV posted to itself (pending while IF=0, so VM entry
 * meets it in non-root operation); then run L2 until it is told to stop.
 */
static void collector_run(void)
{
	static int launched;
	int r;

	__atomic_fetch_and(&pi.control, ~PI_SN, __ATOMIC_SEQ_CST);
	if (pi.pir[0] | pi.pir[1] | pi.pir[2] | pi.pir[3]) {
		__atomic_fetch_or(&pi.control, PI_ON, __ATOMIC_SEQ_CST);
		LAPIC[0x300 / 4] = 0x40000 | VEC_NV;
	}
	vmcs_set(VMCS_GUEST_RIP, pa(collector_l2));
	vmcs_set(VMCS_GUEST_RSP, pa(stack_col + sizeof(stack_col)));
	for (;;) {
		u32 reason;

		r = pv_enter(!launched, &regs_col);
		if (r != VMX_OK)
			test_abort("collector: VM entry failed (%d, error %llu)", r,
				   (unsigned long long)vmx_insn_error());
		launched = 1;
		reason = vmcs_get(VMCS_EXIT_REASON) & 0xffff;
		col_exits[reason < NREASONS ? reason : 0]++;
		if (reason == EXIT_REASON_VMCALL)
			break;
		if (reason == EXIT_REASON_EXT_INTR)
			apic_eoi();	/* acknowledged on exit */
		else
			test_abort("collector: unexpected exit %u", reason);
	}
}

static void collector_main(void)
{
	LAPIC[0xf0 / 4] |= 0x100;
	vmx_on_region(vmxon_col);
	collector_vmcs();
	col_ready = 1;
	for (;;) {
		int c;

		while ((c = cmd) == CMD_NONE)
			asm volatile("pause");
		switch (c) {
		case CMD_RUN:
			collector_run();
			break;
		case CMD_IDLE_SN:
			__atomic_fetch_or(&pi.control, PI_SN, __ATOMIC_SEQ_CST);
			/* fall through */
		case CMD_IDLE:
			/* Descheduled: L1 in root operation takes interrupts. */
			cmd_done = 1;
			asm volatile("sti");
			while (cmd == c)
				asm volatile("pause");
			asm volatile("cli");
			continue;
		case CMD_QUIT:
			vmx_off();
			cmd_done = 1;
			return;
		}
		cmd = CMD_NONE;
		cmd_done = 1;
	}
}

/* Tell the collector what to do; for RUN, wait until its L2 runs. */
static void command(int c)
{
	cmd_done = 0;
	cmd = c;
	if (c == CMD_RUN)
		spin_until(&in_l2, 1, "the collector's L2");
	else
		spin_until((volatile int *)&cmd_done, 1, "the collector");
}

/* Stop the collector's L2 (after its work is done). */
static void collector_stop(void)
{
	l2_stop = 1;
	spin_until((volatile int *)&cmd_done, 1, "the collector's exit");
	spin_until(&in_l2, 0, "the collector's L2 to stop");
	l2_stop = 0;
}

/* ---- the logger: L2 and its L1 on the BSP ---------------------------------- */

static void __attribute__((noreturn, used)) logger_l2(void)
{
	for (;;) {
		for (u32 i = 0; i < n_touch; i++) {
			if (page_written[i])
				*(volatile u64 *)pages[i] = i;
			else
				(void)*(volatile u64 *)pages[i];
		}
		asm volatile("vmcall" ::: "memory");
	}
}

static int log_launched;

/* One pass of the logger L2; a PML-full exit waits for the collector. */
static void log_pass(void)
{
	for (;;) {
		u32 reason;
		int r = pv_enter(!log_launched, &regs_log);

		if (r != VMX_OK)
			test_abort("logger: VM entry failed (%d, error %llu)", r,
				   (unsigned long long)vmx_insn_error());
		log_launched = 1;
		reason = vmcs_get(VMCS_EXIT_REASON) & 0xffff;
		log_exits[reason < NREASONS ? reason : 0]++;
		if (reason == EXIT_REASON_VMCALL)
			break;
		if (reason == EXIT_REASON_EXT_INTR) {
			apic_eoi();
			continue;
		}
		if (reason != EXIT_REASON_PML_FULL)
			test_abort("logger: unexpected exit %u", reason);
		for (u32 spins = 0; desc.state[0] && desc.state[1]; spins++)
			if (spins > SPIN_LIMIT)
				test_abort("the collector never gave a buffer back");
	}
	vmx_skip_instruction();
}

static void logger_setup(void)
{
	u64 eptp;

	vmx_setup_vmcs(vmcs_log, logger_l2, stack_log + sizeof(stack_log));
	log_launched = 0;
	vmcs_set(VMCS_PIN_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS,
		      PIN_EXT_INTR_EXITING));
	vmcs_set(VMCS_EXIT_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_EXIT_CTLS, MSR_IA32_VMX_TRUE_EXIT_CTLS,
		      EXIT_HOST_ADDR_SPACE_SIZE | EXIT_ACK_INTR_ON_EXIT));
	eptp = ept_build_identity(true);
	/* "EPML notification destination" is the BSP itself: unused when posting. */
	epml_setup_vmcs(eptp, buf[0], buf[1], &desc, 0, VEC_V, 0);
	vmcs_set(VMCS_EPML_POST_DESC, pa((const void *)&pi));
	invept(2, 0);
	n_touch = 0;
	log_pass();				/* settle: code, stack, globals */
}

/* A fresh log and descriptor; clean the test pages; touch the first @n. */
static void logger_reset(u32 n)
{
	memset((void *)&desc, 0, sizeof(desc));
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_READ | CTL_EPTE | CTL_FILTER |
		 CTL_NOTIFY | CTL_POST);
	vmcs_set(VMCS_EPML_INDEX, 0);
	vmcs_set(VMCS_EPML_ACTIVE, 0);
	for (int i = 0; i < NPAGES; i++)
		*ept_pte(pa(pages[i])) &= ~(EPT_A | EPT_D);
	invept(2, 0);
	n_drained = 0;
	n_touch = n;
}

/*
 * The rest of the active buffer, which was never handed over (an index of
 * N means it was: the switch found the other buffer still FULL).
 */
static void take_active_rest(void)
{
	u32 n = vmcs_get(VMCS_EPML_INDEX), b = vmcs_get(VMCS_EPML_ACTIVE);

	if (n == N_PER_BUF)
		return;
	for (u32 i = 0; i < n && n_drained < MAX_ENTRIES; i++) {
		drained[n_drained][0] = buf[b][2 * i];
		drained[n_drained][1] = buf[b][2 * i + 1];
		n_drained++;
	}
}

static bool pir_v(void)
{
	return pi.pir[VEC_V / 64] & (1ull << (VEC_V % 64));
}

/* Wait until the collector drained every handed-over buffer and is idle. */
static void wait_drained(void)
{
	for (u32 spins = 0; desc.state[0] || desc.state[1] || pir_v() ||
	     (pi.control & PI_ON) || in_handler; spins++) {
		if (spins > SPIN_LIMIT)
			test_abort("the collector did not drain (state %u/%u, control %#x, "
				   "PIR V %d)", desc.state[0], desc.state[1], pi.control,
				   pir_v());
		asm volatile("pause");
	}
}

static int page_of(u64 entry)
{
	u64 gpa = entry & ~0xfffull;

	if (gpa < pa(pages[0]) || gpa >= pa(pages[NPAGES]))
		return -1;
	return (int)((gpa - pa(pages[0])) / 4096);
}

/*
 * The drained entries against the first @n pages: each exactly once, with
 * its kind and EPT-entry address, nothing else.  Returns the mismatches.
 */
static int compare(u32 n)
{
	static u8 seen[NPAGES];
	int bad = 0;

	memset(seen, 0, sizeof(seen));
	for (u32 i = 0; i < n_drained; i++) {
		int p = page_of(drained[i][0]);
		u64 flags = drained[i][0] & 0xfff;

		if (p < 0 || (u32)p >= n || seen[p]++ ||
		    flags != (page_written[p] ? E_R | E_W : E_R) ||
		    drained[i][1] != pa(ept_pte(pa(pages[p]))))
			bad++;
	}
	for (u32 p = 0; p < n; p++)
		bad += !seen[p];
	return bad;
}

static u32 exits_other_than(volatile u32 *exits, u32 r1, u32 r2)
{
	u32 n = 0;

	for (u32 r = 0; r < NREASONS; r++)
		if (r != r1 && r != r2)
			n += exits[r];
	return n;
}

static void clear_exits(void)
{
	for (int r = 0; r < NREASONS; r++)
		col_exits[r] = log_exits[r] = 0;
}

static void quiet(void)
{
	for (u32 i = 0; i < QUIET_SPINS; i++)
		asm volatile("pause");
}

void test_main(void)
{
	u32 v0, nv0;
	int bad;

	/* The 8259s off: a PIT tick would be an exit in the middle of a check. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	if (!(rdmsr(MSR_IA32_VMX_EPML_CAP) & EPML_CAP_POST))
		test_abort("IA32_VMX_EPML_CAP does not report posted notification");
	for (int i = 0; i < NPAGES; i++)
		page_written[i] = (i % 3) == 0;
	memset((void *)&pi, 0, sizeof(pi));
	pi.control = PI_NV(VEC_NV);
	pi.ndst = AP_APIC_ID << 8;		/* xAPIC mode: bits 15:8 */
	set_irq_handler(VEC_V, on_v);
	set_irq_handler(VEC_NV, on_nv_l1);
	if (!smp_start_ap(AP_APIC_ID, collector_main))
		test_abort("the AP did not start");
	spin_until(&col_ready, 1, "the collector's VMCS");

	vmx_on();
	logger_setup();

	/* A: the collector runs in L2 while the logger logs. */
	clear_exits();
	logger_reset(NPAGES);
	command(CMD_RUN);
	log_pass();
	wait_drained();
	take_active_rest();
	collector_stop();
	bad = compare(NPAGES);
	report(!bad && n_drained == NPAGES,
	       "collector in L2: drained entries = touched pages, each once with its kind "
	       "and EPT entry (%u entries, %d wrong)", n_drained, bad);
	report(desc.handovers == NPAGES / N_PER_BUF && v_in_l2 >= 1 &&
	       v_in_l2 <= desc.handovers && nv_in_l1 == 0,
	       "every hand-over reached the collector L2 as vector V (%llu hand-overs, %u "
	       "deliveries, %u NV in L1)", (unsigned long long)desc.handovers, v_in_l2,
	       nv_in_l1);
	report(col_exits[EXIT_REASON_VMCALL] == 1 &&
	       !exits_other_than(col_exits, EXIT_REASON_VMCALL, EXIT_REASON_VMCALL),
	       "the collector took no VM exit for them (exits: %u external-interrupt, %u "
	       "VMCALL, %u other)", col_exits[EXIT_REASON_EXT_INTR],
	       col_exits[EXIT_REASON_VMCALL],
	       exits_other_than(col_exits, EXIT_REASON_VMCALL, EXIT_REASON_VMCALL));
	report(log_exits[EXIT_REASON_EXT_INTR] == 0 &&
	       !exits_other_than(log_exits, EXIT_REASON_VMCALL, EXIT_REASON_PML_FULL),
	       "the logger took no exit for notifications (%u external-interrupt, %u "
	       "PML-full while the collector caught up)", log_exits[EXIT_REASON_EXT_INTR],
	       log_exits[EXIT_REASON_PML_FULL]);
	report(!(pi.control & (PI_ON | PI_SN)) && !pi.pir[0] && !pi.pir[1] && !pi.pir[2] &&
	       !pi.pir[3] && (pi.control >> 16) == VEC_NV && pi.ndst == AP_APIC_ID << 8,
	       "afterwards PIR and ON are clear, NV and NDST as L1 wrote them (control %#x)",
	       pi.control);

	/* B: the collector descheduled, its L1 in root operation with IF=1. */
	clear_exits();
	logger_reset(2 * N_PER_BUF);
	v0 = v_in_l2;
	nv0 = nv_in_l1;
	command(CMD_IDLE);
	log_pass();
	for (u32 spins = 0; nv_in_l1 == nv0 && spins < SPIN_LIMIT; spins++)
		asm volatile("pause");
	quiet();
	report(nv_in_l1 == nv0 + 1 && v_in_l2 == v0,
	       "collector descheduled: NV arrived once as an ordinary interrupt in its L1, "
	       "nothing in L2 (%u, %u)", nv_in_l1 - nv0, v_in_l2 - v0);
	report(desc.handovers == 2 && desc.state[0] == 1 && desc.state[1] == 1 && pir_v() &&
	       (pi.control & PI_ON) && n_drained == 0,
	       "both buffers handed over and FULL, V in PIR, ON still set: the second "
	       "hand-over sent no IPI (control %#x)", pi.control);
	command(CMD_RUN);			/* L1 schedules the collector again */
	wait_drained();
	take_active_rest();
	collector_stop();
	bad = compare(2 * N_PER_BUF);
	report(!bad && n_drained == 2 * N_PER_BUF && v_in_l2 == v0 + 1,
	       "scheduled again: V delivered in L2 once, both buffers drained, nothing lost "
	       "(%u entries, %d wrong)", n_drained, bad);
	report(col_exits[EXIT_REASON_VMCALL] == 1 &&
	       !exits_other_than(col_exits, EXIT_REASON_VMCALL, EXIT_REASON_VMCALL) &&
	       log_exits[EXIT_REASON_EXT_INTR] == 0,
	       "no VM exit on either side for it (collector %u external-interrupt, logger %u)",
	       col_exits[EXIT_REASON_EXT_INTR], log_exits[EXIT_REASON_EXT_INTR]);

	/* C: SN set by the collector's L1: no IPI, the request waits in PIR. */
	clear_exits();
	logger_reset(N_PER_BUF);
	v0 = v_in_l2;
	nv0 = nv_in_l1;
	command(CMD_IDLE_SN);
	log_pass();
	quiet();
	report(desc.handovers == 1 && desc.state[0] == 1 && pir_v() &&
	       (pi.control & PI_SN) && !(pi.control & PI_ON) && nv_in_l1 == nv0 &&
	       v_in_l2 == v0,
	       "SN set: V posted in PIR, ON clear, no IPI reached the collector (control %#x, "
	       "%u NV)", pi.control, nv_in_l1 - nv0);
	command(CMD_RUN);			/* L1 clears SN and handles PIR */
	wait_drained();
	take_active_rest();
	collector_stop();
	bad = compare(N_PER_BUF);
	report(!bad && n_drained == N_PER_BUF && v_in_l2 == v0 + 1 &&
	       !(pi.control & PI_SN) && col_exits[EXIT_REASON_EXT_INTR] == 0,
	       "after L1 cleared SN: V delivered in L2 without an exit, the buffer drained "
	       "(%u entries, %d wrong)", n_drained, bad);

	command(CMD_QUIT);
	vmx_off();
}
