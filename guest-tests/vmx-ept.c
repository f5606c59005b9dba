/*
 * EPT, EPT accessed/dirty flags and stock PML (SDM Vol. 3C 29.3, 29.3.6),
 * INVEPT and INVVPID (31.3), with a guest that shares the host's page
 * tables through an identity EPT.
 * Run with a -cpu model that has VMX with EPT (e.g. Skylake-Server,+vmx).
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
static u64 pml_log[512] __attribute__((aligned(4096)));
/* Pages the guest touches, one per page. */
static u8 pages[8][4096] __attribute__((aligned(4096)));
#define GUEST_STACK_TOP ((void *)(guest_stack + sizeof(guest_stack)))

extern u8 boot_pd[];
static u64 eptp;

/* ---- guest: a script of operations, one per VMCALL ---------------------- */

enum op { OP_READ, OP_WRITE, OP_EXEC, OP_STOP };
static volatile struct {
	enum op op;
	u64 addr;
	u64 value;
} cmd;

static void __attribute__((noreturn, used)) guest_main(void)
{
	for (;;) {
		switch (cmd.op) {
		case OP_READ:
			cmd.value = *(volatile u64 *)(uintptr_t)cmd.addr;
			break;
		case OP_WRITE:
			*(volatile u64 *)(uintptr_t)cmd.addr = cmd.value;
			break;
		case OP_EXEC:
			((void (*)(void))(uintptr_t)cmd.addr)();
			break;
		case OP_STOP:
			break;
		}
		asm volatile("vmcall" ::: "memory");
	}
}

static int launched;

/* Run one guest operation; returns the exit reason. */
static u32 guest_do(enum op op, const void *addr, u64 value)
{
	int r;
	u32 reason;

	cmd.op = op;
	cmd.addr = pa(addr);
	cmd.value = value;
	r = vmx_enter(!launched);
	if (r != VMX_OK)
		test_abort("VM entry failed: %s (error %llu)", vmx_outcome_name(r),
			   (unsigned long long)vmx_insn_error());
	launched = 1;
	reason = vmcs_get(VMCS_EXIT_REASON);
	if (reason == EXIT_REASON_VMCALL) {
		vmx_skip_instruction();
	} else if (reason != EXIT_REASON_PML_FULL) {
		/* The operation faulted: start the guest loop again. */
		vmcs_set(VMCS_GUEST_RIP, pa((void *)guest_main));
		vmcs_set(VMCS_GUEST_RSP, pa(GUEST_STACK_TOP));
	}
	return reason;
}

static void setup(bool ad, u32 proc2)
{
	vmx_setup_vmcs(vmcs, guest_main, GUEST_STACK_TOP);
	launched = 0;
	eptp = ept_build_identity(ad);
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY));
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | proc2);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	if (proc2 & PROC2_ENABLE_VPID)
		vmcs_set(VMCS_VPID, 1);
	invept(2, 0);
}

/* ---- tests ------------------------------------------------------------ */

static void test_entry_checks(void)
{
	int r;

	setup(false, 0);
	vmcs_set(VMCS_EPT_POINTER, eptp + (1 << 3));		/* 5-level walk */
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "EPTP with a 5-level walk is refused: VMfailValid(7)");
	vmcs_set(VMCS_EPT_POINTER, (eptp & ~7ull) | 5);		/* memory type 5 */
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "EPTP with memory type 5 is refused: VMfailValid(7)");
	vmcs_set(VMCS_EPT_POINTER, eptp);
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_PML);
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "enable PML without enable EPT: VMfailValid(7)");
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_VPID);
	vmcs_set(VMCS_VPID, 0);
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "enable VPID with VPID 0: VMfailValid(7)");
}

static void test_translation(void)
{
	u32 reason;
	u64 q;

	setup(false, PROC2_ENABLE_VPID);
	pages[0][8] = 0x5a;
	reason = guest_do(OP_READ, &pages[0][8], 0);
	report(reason == EXIT_REASON_VMCALL && cmd.value == 0x5a,
	       "the guest reads through an identity EPT (%u, %#llx)", reason,
	       (unsigned long long)cmd.value);

	/* Not present: read violation with the exact GPA and linear address. */
	*ept_pte(pa(pages[1])) = 0;
	invept(2, 0);
	reason = guest_do(OP_READ, &pages[1][0x48], 0);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_EPT_VIOLATION, "read of a not-present page: EPT violation (%u)",
	       reason);
	report(q == (0x1 | 0x80 | 0x100), "qualification: read, no permissions, linear address "
	       "valid, final translation (%#llx)", (unsigned long long)q);
	report(vmcs_get(VMCS_GUEST_PHYSICAL_ADDRESS) == pa(&pages[1][0x48]) &&
	       vmcs_get(VMCS_GUEST_LINEAR_ADDRESS) == pa(&pages[1][0x48]),
	       "guest-physical and linear address fields name the byte accessed");

	/* Read-only: the write violates; the qualification shows R. */
	*ept_pte(pa(pages[1])) = pa(pages[1]) | EPT_MT_WB | EPT_R;
	invept(2, 0);
	reason = guest_do(OP_WRITE, &pages[1][0], 1);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_EPT_VIOLATION && q == (0x2 | 0x8 | 0x80 | 0x100),
	       "write to a read-only page: violation, qualification write + R (%u, %#llx)",
	       reason, (unsigned long long)q);

	/* Execute from a page without X: fetch violation. */
	pages[2][0] = 0xc3;					/* ret */
	*ept_pte(pa(pages[2])) = pa(pages[2]) | EPT_MT_WB | EPT_R | EPT_W;
	invept(2, 0);
	reason = guest_do(OP_EXEC, pages[2], 0);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_EPT_VIOLATION && (q & 7) == 4 && ((q >> 3) & 7) == 3,
	       "fetch from a non-executable page: violation, fetch, RW (%u, %#llx)",
	       reason, (unsigned long long)q);
	*ept_pte(pa(pages[2])) |= EPT_X;
	invept(2, 0);
	reason = guest_do(OP_EXEC, pages[2], 0);
	report(reason == EXIT_REASON_VMCALL, "after adding X and INVEPT the fetch succeeds");

	/* Misconfigurations: memory type 7 in a leaf, a reserved bit in a non-leaf. */
	*ept_pte(pa(pages[3])) = pa(pages[3]) | (7ull << 3) | EPT_RWX;
	invept(2, 0);
	reason = guest_do(OP_READ, pages[3], 0);
	report(reason == EXIT_REASON_EPT_MISCONFIG &&
	       vmcs_get(VMCS_GUEST_PHYSICAL_ADDRESS) == pa(pages[3]),
	       "leaf with memory type 7: EPT misconfiguration at its GPA (%u)", reason);
	*ept_pte(pa(pages[3])) = pa(pages[3]) | (2ull << 0);	/* write-only */
	invept(2, 0);
	reason = guest_do(OP_READ, pages[3], 0);
	report(reason == EXIT_REASON_EPT_MISCONFIG, "write-only leaf: EPT misconfiguration (%u)",
	       reason);
	*ept_pte(pa(pages[3])) = pa(pages[3]) | EPT_MT_WB | EPT_RWX;
	{
		u64 *pd_entry = (u64 *)(uintptr_t)(*(u64 *)(uintptr_t)((eptp & ~0xfffull)) & ~0xfffull);
		u64 saved = pd_entry[0];

		pd_entry[0] |= 1ull << 3;			/* reserved in a PDPTE */
		invept(2, 0);
		reason = guest_do(OP_READ, pages[3], 0);
		report(reason == EXIT_REASON_EPT_MISCONFIG,
		       "reserved bit 3 in a non-leaf entry: EPT misconfiguration (%u)", reason);
		pd_entry[0] = saved;
		invept(2, 0);
	}
	reason = guest_do(OP_READ, pages[3], 0);
	report(reason == EXIT_REASON_VMCALL, "after repair the guest runs on");
}

static void test_accessed_dirty(void)
{
	u32 reason;
	u64 e;

	setup(true, 0);
	*ept_pte(pa(pages[4])) &= ~(EPT_A | EPT_D);
	*ept_pte(pa(pages[5])) &= ~(EPT_A | EPT_D);
	*ept_pte(pa(boot_pd)) &= ~(EPT_A | EPT_D);
	invept(2, 0);
	reason = guest_do(OP_READ, pages[4], 0);
	e = *ept_pte(pa(pages[4]));
	report(reason == EXIT_REASON_VMCALL && (e & EPT_A) && !(e & EPT_D),
	       "a guest read sets the EPT accessed flag only (%#llx)", (unsigned long long)e);
	reason = guest_do(OP_WRITE, pages[5], 7);
	e = *ept_pte(pa(pages[5]));
	report(reason == EXIT_REASON_VMCALL && (e & EPT_A) && (e & EPT_D),
	       "a guest write sets accessed and dirty (%#llx)", (unsigned long long)e);
	/* A write to a page first read: the clean page had no writable TLB entry. */
	reason = guest_do(OP_WRITE, pages[4], 9);
	e = *ept_pte(pa(pages[4]));
	report(reason == EXIT_REASON_VMCALL && (e & EPT_D) && *(u64 *)pages[4] == 9,
	       "writing a page after reading it sets dirty then (%#llx)", (unsigned long long)e);
	e = *ept_pte(pa(boot_pd));
	report((e & EPT_A) && (e & EPT_D),
	       "the guest page walk marks its page-directory page dirty (A/D on: walks are writes) (%#llx)",
	       (unsigned long long)e);
}

/*
 * EPT without A/D flags (29.3.3.2): the guest's page walk only reads its
 * paging structures, and writes one only to set an accessed or dirty
 * flag.  A read-only EPT mapping of a page-directory page faults only
 * then, as a read and write of the entry; a non-readable one as a read.
 */
#define PDE_A		(1ull << 5)
#define PDE_D		(1ull << 6)

static void test_walk_without_ad(void)
{
	u64 *pde = (u64 *)boot_pd + (pa(pages) >> 21);
	u64 pd_page = pa(pde) & ~0xfffull;
	u64 *pd_epte, q;
	u32 reason;

	setup(false, 0);
	pd_epte = ept_pte(pd_page);
	*pde |= PDE_A | PDE_D;
	*pd_epte = pd_page | EPT_MT_WB | EPT_R;
	invept(2, 0);
	reason = guest_do(OP_READ, pages[2], 0);
	report(reason == EXIT_REASON_VMCALL,
	       "read-only page directory, A and D set: reads walk it without exiting (%u)", reason);
	reason = guest_do(OP_WRITE, pages[2], 5);
	report(reason == EXIT_REASON_VMCALL && *(u64 *)pages[2] == 5,
	       "... and writes too (%u)", reason);

	/* (This host shares the tables and sets the flags again as it runs.) */
	*pde &= ~PDE_D;
	reason = guest_do(OP_WRITE, pages[2], 6);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_EPT_VIOLATION && (q & 0x1bf) == (1 | 2 | (1 << 3) | (1 << 7)) &&
	       vmcs_get(VMCS_GUEST_PHYSICAL_ADDRESS) == pa(pde),
	       "D clear: the dirty-flag update is an EPT violation, read+write of the PDE "
	       "(%u, %#llx, %#llx)", reason, (unsigned long long)q,
	       (unsigned long long)vmcs_get(VMCS_GUEST_PHYSICAL_ADDRESS));

	*pde &= ~PDE_A;
	reason = guest_do(OP_READ, pages[2], 0);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_EPT_VIOLATION && (q & 0x1bf) == (1 | 2 | (1 << 3) | (1 << 7)) &&
	       vmcs_get(VMCS_GUEST_PHYSICAL_ADDRESS) == pa(pde),
	       "A clear: the accessed-flag update faults the same way (%u, %#llx)", reason,
	       (unsigned long long)q);

	*pd_epte = pd_page | EPT_MT_WB | EPT_X;		/* execute-only */
	invept(2, 0);
	reason = guest_do(OP_READ, pages[2], 0);
	q = vmcs_get(VMCS_EXIT_QUALIFICATION);
	report(reason == EXIT_REASON_EPT_VIOLATION && (q & 0x1bf) == (1 | (4 << 3) | (1 << 7)),
	       "execute-only page directory: a read of the PDE (%u, %#llx)", reason,
	       (unsigned long long)q);

	*pde |= PDE_A | PDE_D;
	*pd_epte = pd_page | EPT_MT_WB | EPT_RWX;
	invept(2, 0);
	reason = guest_do(OP_READ, pages[2], 0);
	report(reason == EXIT_REASON_VMCALL, "after repair the guest runs on (%u)", reason);
}

static int logged(u64 gpa, u16 index_after)
{
	int i, n = 0;

	for (i = 511; i > (int)(s16)index_after; i--)
		n += pml_log[i] == gpa;
	return n;
}

static void test_pml(void)
{
	u32 reason;
	u16 idx;
	int i, bad;

	setup(true, PROC2_ENABLE_PML);
	memset(pml_log, 0, sizeof(pml_log));
	vmcs_set(VMCS_PML_ADDRESS, pa(pml_log));
	vmcs_set(VMCS_GUEST_PML_INDEX, 511);
	/* Run once so that stack, page tables and command block are dirty. */
	guest_do(OP_READ, pages[0], 0);
	for (i = 0; i < 3; i++)
		*ept_pte(pa(pages[5 + i])) &= ~(EPT_A | EPT_D);
	invept(2, 0);
	vmcs_set(VMCS_GUEST_PML_INDEX, 511);
	memset(pml_log, 0, sizeof(pml_log));

	for (i = 0; i < 3; i++)
		guest_do(OP_WRITE, &pages[5 + i][16 * i], i);
	guest_do(OP_WRITE, &pages[5][8], 1);		/* already dirty: not logged again */
	idx = vmcs_get(VMCS_GUEST_PML_INDEX);
	report(logged(pa(pages[5]), idx) == 1 && logged(pa(pages[6]), idx) == 1 &&
	       logged(pa(pages[7]), idx) == 1,
	       "each page dirtied by the guest is logged once, 4 KiB aligned");
	report(idx == 511 - 3, "the PML index went down by one per entry (%u)", idx);
	for (i = 511, bad = 0; i > (int)(s16)idx; i--)
		bad += pml_log[i] & 0xfff ? 1 : 0;
	report(!bad, "log entries are page addresses");

	/* PML full: index out of 0..511 -> VM exit before the write. */
	*ept_pte(pa(pages[6])) &= ~(EPT_A | EPT_D);
	invept(2, 0);
	*(u64 *)pages[6] = 0x1111;
	vmcs_set(VMCS_GUEST_PML_INDEX, 0xffff);
	reason = guest_do(OP_WRITE, pages[6], 0x2222);
	report(reason == EXIT_REASON_PML_FULL, "write to a clean page with a full log: exit 62 (%u)",
	       reason);
	report(*(u64 *)pages[6] == 0x1111 && !(*ept_pte(pa(pages[6])) & EPT_D),
	       "the write did not happen and the page is still clean");
	vmcs_set(VMCS_GUEST_PML_INDEX, 0);
	reason = guest_do(OP_STOP, 0, 0);		/* resumes the interrupted write */
	idx = vmcs_get(VMCS_GUEST_PML_INDEX);
	report(reason == EXIT_REASON_VMCALL && *(u64 *)pages[6] == 0x2222 &&
	       pml_log[0] == pa(pages[6]) && idx == 0xffff,
	       "after the host drains the log the write completes into entry 0; index wraps to 0xFFFF (%#x)",
	       idx);
}

static void test_invalidation(void)
{
	report(invept(2, 0) == VMX_OK, "INVEPT all-context");
	report(invept(1, eptp) == VMX_OK, "INVEPT single-context with a valid EPTP");
	report(invept(1, eptp | (7ull << 3)) == VMX_FAIL_VALID && vmx_insn_error() == 28,
	       "INVEPT single-context with an invalid EPTP: VMfailValid(28)");
	report(invept(3, 0) == VMX_FAIL_VALID && vmx_insn_error() == 28,
	       "INVEPT type 3: VMfailValid(28)");
	report(invvpid(2, 0, 0) == VMX_OK, "INVVPID all-context");
	report(invvpid(0, 1, 0x1000) == VMX_OK, "INVVPID individual address");
	report(invvpid(1, 0, 0) == VMX_FAIL_VALID && vmx_insn_error() == 28,
	       "INVVPID single-context with VPID 0: VMfailValid(28)");
	report(invvpid(0, 1, 0x0100000000000000ull) == VMX_FAIL_VALID && vmx_insn_error() == 28,
	       "INVVPID individual address, non-canonical: VMfailValid(28)");
	{
		/* Canonical means for the CPU's linear-address width (57 with LA57). */
		bool la57 = cpuid_count(7, 0).c & (1u << 16);
		int r = invvpid(0, 1, 0x0000800000000000ull);

		report(la57 ? r == VMX_OK : (r == VMX_FAIL_VALID && vmx_insn_error() == 28),
		       "INVVPID of 0x800000000000: %s with%s LA57 (%s)",
		       la57 ? "succeeds" : "VMfailValid(28)", la57 ? "" : "out",
		       vmx_outcome_name(r));
	}
	report(invvpid(4, 1, 0) == VMX_FAIL_VALID && vmx_insn_error() == 28,
	       "INVVPID type 4: VMfailValid(28)");
}

/* 16-bit real-mode code: mov $0x1234, %ax; vmcall; hlt */
static const u8 real_mode_code[] __attribute__((aligned(16))) = {
	0xb8, 0x34, 0x12, 0x0f, 0x01, 0xc1, 0xf4,
};

static void test_unrestricted_guest(void)
{
	u64 proc2_cap = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
	u64 base = pa(pages[0]);
	int r, i;

	report(proc2_cap & (1ull << (32 + 7)), "unrestricted guest is offered");
	memcpy(pages[0], real_mode_code, sizeof(real_mode_code));
	setup(false, 0);
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | (1u << 7));
	vmcs_set(VMCS_ENTRY_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS, 0));
	vmcs_set(VMCS_GUEST_CR0, 0x30);			/* NE | ET: real mode */
	vmcs_set(VMCS_GUEST_CR4, 0x2000);		/* VMXE only */
	for (i = 0; i < 6; i++) {
		vmcs_set(VMCS_GUEST_ES_SELECTOR + i * VMCS_SEG_STEP, 0);
		vmcs_set(VMCS_GUEST_ES_BASE + i * VMCS_SEG_STEP, i == 1 ? base : 0);
		vmcs_set(VMCS_GUEST_ES_LIMIT + i * VMCS_SEG_STEP, 0xffff);
		vmcs_set(VMCS_GUEST_ES_AR + i * VMCS_SEG_STEP, i == 1 ? 0x9b : 0x93);
	}
	vmcs_set(VMCS_GUEST_RIP, 0);
	vmcs_set(VMCS_GUEST_RSP, 0x1000);
	vmcs_set(VMCS_GUEST_ES_AR + 7 * VMCS_SEG_STEP, 0x8b);	/* TR: busy 32-bit TSS */
	vmx_guest_regs.rax = 0;
	r = vmx_enter(1);
	report(r == VMX_OK && vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_VMCALL,
	       "an unrestricted guest runs real-mode code to VMCALL (%s, reason %#llx)",
	       vmx_outcome_name(r), (unsigned long long)vmcs_get(VMCS_EXIT_REASON));
	report((vmx_guest_regs.rax & 0xffff) == 0x1234 && vmcs_get(VMCS_GUEST_RIP) == 3 &&
	       !(vmcs_get(VMCS_GUEST_CR0) & 1),
	       "real-mode state: AX=0x1234, IP at the VMCALL, CR0.PE=0 (%#llx)",
	       (unsigned long long)vmx_guest_regs.rax);

	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	launched = 0;
	vmclear(pa(vmcs));
	vmptrld(pa(vmcs));
	r = vmx_enter(1);
	report(r == VMX_OK && vmcs_get(VMCS_EXIT_REASON) ==
	       (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE),
	       "the same real-mode guest without unrestricted guest: entry failure 33");
}

/*
 * Task switches in non-root operation (SDM 26.4.2) are VM exits (reason 9)
 * with the new TSS's selector and the source in the qualification (0
 * CALL, 1 IRET, 2 JMP, 3 a task gate in the IDT), and nothing switched.
 * The guest: 32-bit protected mode, paging off (unrestricted guest, the
 * identity EPT), its own GDT and IDT.
 */
#define TS_CODE		0x08
#define TS_DATA		0x10
#define TS_TR		0x18	/* the guest's current TSS (busy) */
#define TS_FREE		0x20	/* an available TSS: JMP, CALL, task gate */
#define TS_BACK		0x28	/* a busy TSS: the back link for IRET */

static u64 tss_desc(u64 base, u32 type)
{
	return 0x67 | ((base & 0xffffff) << 16) | ((u64)(0x80 | type) << 40) |
	       ((base >> 24) << 56);
}

static void task_switch_case(const char *what, const u8 *code, unsigned len, u64 rflags,
			     u32 want_qual, u32 want_vectoring)
{
	u64 *gdt = (u64 *)pages[3], *idt = (u64 *)pages[4];
	u64 tss = pa(pages[5]);
	u32 reason, vectoring;
	u64 qual;
	int r, i;

	gdt[0] = 0;
	gdt[1] = 0x00cf9b000000ffffull;
	gdt[2] = 0x00cf93000000ffffull;
	gdt[3] = tss_desc(tss, 0xb);
	gdt[4] = tss_desc(tss + 0x100, 0x9);
	gdt[5] = tss_desc(tss + 0x200, 0xb);
	memset(idt, 0, 4096);
	idt[0x40] = ((u64)TS_FREE << 16) | (0x85ull << 40);	/* task gate, DPL 0 */
	memset(pages[5], 0, 4096);
	*(u16 *)pages[5] = TS_BACK;				/* back link */
	memcpy(pages[2], code, len);

	setup(false, 0);
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | (1u << 7));
	vmcs_set(VMCS_ENTRY_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS, 0));
	vmcs_set(VMCS_GUEST_CR0, 0x31);			/* PE | ET | NE, paging off */
	vmcs_set(VMCS_GUEST_CR4, 0x2000);
	for (i = 0; i < 6; i++) {
		vmcs_set(VMCS_GUEST_ES_SELECTOR + i * VMCS_SEG_STEP, i == 1 ? TS_CODE : TS_DATA);
		vmcs_set(VMCS_GUEST_ES_BASE + i * VMCS_SEG_STEP, 0);
		vmcs_set(VMCS_GUEST_ES_LIMIT + i * VMCS_SEG_STEP, 0xffffffff);
		vmcs_set(VMCS_GUEST_ES_AR + i * VMCS_SEG_STEP, i == 1 ? 0xc09b : 0xc093);
	}
	vmcs_set(VMCS_GUEST_TR_SELECTOR, TS_TR);
	vmcs_set(VMCS_GUEST_TR_BASE, tss);
	vmcs_set(VMCS_GUEST_ES_LIMIT + 7 * VMCS_SEG_STEP, 0x67);
	vmcs_set(VMCS_GUEST_ES_AR + 7 * VMCS_SEG_STEP, 0x8b);
	vmcs_set(VMCS_GUEST_GDTR_BASE, pa(gdt));
	vmcs_set(0x4810, 6 * 8 - 1);				/* GDTR limit */
	vmcs_set(VMCS_GUEST_IDTR_BASE, pa(idt));
	vmcs_set(0x4812, 0x7ff);				/* IDTR limit */
	vmcs_set(VMCS_GUEST_RIP, pa(pages[2]));
	vmcs_set(VMCS_GUEST_RSP, pa(pages[6]) + 4096);
	vmcs_set(VMCS_GUEST_RFLAGS, rflags);
	r = vmx_enter(1);
	reason = (u32)vmcs_get(VMCS_EXIT_REASON);
	qual = vmcs_get(VMCS_EXIT_QUALIFICATION);
	vectoring = (u32)vmcs_get(VMCS_IDT_VECTORING_INFO);
	report(r == VMX_OK && reason == 9 && qual == want_qual,
	       "%s: task-switch VM exit (reason %u, qualification %#llx, want %#x)", what,
	       reason, (unsigned long long)qual, want_qual);
	report(vmcs_get(VMCS_GUEST_RIP) == pa(pages[2]) &&
	       vmcs_get(VMCS_EXIT_INSTRUCTION_LEN) == len,
	       "%s: guest RIP at the instruction, instruction length %llu", what,
	       (unsigned long long)vmcs_get(VMCS_EXIT_INSTRUCTION_LEN));
	report(vmcs_get(VMCS_GUEST_TR_SELECTOR) == TS_TR && (gdt[4] >> 41 & 1) == 0,
	       "%s: nothing switched (TR %#llx, the new TSS still available)", what,
	       (unsigned long long)vmcs_get(VMCS_GUEST_TR_SELECTOR));
	report((vectoring & 0x80000fff) == want_vectoring,
	       "%s: IDT-vectoring information %#x (want %#x)", what, vectoring, want_vectoring);
}

static void test_task_switch(void)
{
	static const u8 jmp[] = { 0xea, 0, 0, 0, 0, TS_FREE, 0 };
	static const u8 call[] = { 0x9a, 0, 0, 0, 0, TS_FREE, 0 };
	static const u8 intn[] = { 0xcd, 0x40 };
	static const u8 iret[] = { 0xcf };

	task_switch_case("JMP far to a TSS", jmp, sizeof(jmp), 2, TS_FREE | (2u << 30), 0);
	task_switch_case("CALL far to a TSS", call, sizeof(call), 2, TS_FREE | (0u << 30), 0);
	task_switch_case("IRET with NT", iret, sizeof(iret), 2 | (1u << 14), TS_BACK | (1u << 30),
			 0);
	task_switch_case("INT 0x40 through a task gate", intn, sizeof(intn), 2,
			 TS_FREE | (3u << 30), 0x80000000u | (4u << 8) | 0x40);
}

/*
 * INVEPT/INVVPID with a descriptor at a non-canonical address (SDM Vol. 3C
 * 31.3, 64-bit mode exceptions): #SS(0) when the reference is through
 * the stack segment (RSP as base), #GP(0) otherwise.  The operand is
 * (base, RCX) with RCX = 2^63, so only the effective address is bad.
 */
static void test_descriptor_address(void)
{
	static const u64 bad = 1ull << 63;
	u64 type = 2;

	ex_clear();
	asm volatile("1: invvpid (%%rsp,%%rcx,1), %%rax\n2:\n\t" EX_FIXUP("1b", "2b")
		     :: "a"(type), "c"(bad) : "memory", "cc");
	report(ex_last.vector == 12 && ex_last.error_code == 0,
	       "INVVPID, non-canonical descriptor through RSP: #SS(0) (vector %d)", ex_last.vector);
	ex_clear();
	asm volatile("1: invept (%%rsp,%%rcx,1), %%rax\n2:\n\t" EX_FIXUP("1b", "2b")
		     :: "a"(type), "c"(bad) : "memory", "cc");
	report(ex_last.vector == 12 && ex_last.error_code == 0,
	       "INVEPT, non-canonical descriptor through RSP: #SS(0) (vector %d)", ex_last.vector);
	ex_clear();
	asm volatile("1: invvpid (%%rdx,%%rcx,1), %%rax\n2:\n\t" EX_FIXUP("1b", "2b")
		     :: "a"(type), "c"(bad), "d"(0) : "memory", "cc");
	report(ex_last.vector == GP_VECTOR && ex_last.error_code == 0,
	       "INVVPID, non-canonical descriptor through another base: #GP(0) (vector %d)",
	       ex_last.vector);
}

void test_main(void)
{
	vmx_on();
	test_descriptor_address();
	test_entry_checks();
	test_translation();
	test_accessed_dirty();
	test_walk_without_ad();
	test_pml();
	test_invalidation();
	test_unrestricted_guest();
	test_task_switch();
	vmx_off();
}
