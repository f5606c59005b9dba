/*
 * Debug exceptions that L1 intercepts (exception bitmap bit 1): the VM
 * exit reports in its qualification the bits the #DB would have set in
 * DR6 (B3:0, BS) and DR6 keeps the value it had (SDM 27.1, 28.2.1):
 *  1. single step (RFLAGS.TF at entry): trap after one instruction, BS;
 *  2. an instruction breakpoint in DR0: fault before the instruction, B0;
 *  3. a data breakpoint in DR1 on a write: trap after the store, B1;
 *  4. debug exceptions pending at entry under MOV-SS blocking join the
 *     single-step trap's bits (BS | B0), and nothing is left pending;
 *  5. without a single step they are a #DB after the first instruction;
 *  6. if that instruction exits, they are saved as still pending.
 */
#include "libtest.h"
#include "vmx.h"

#define VMCS_GUEST_PENDING_DBG	0x6822
#define DR6_INIT	0xffff0ff0ull
#define DR6_BS		(1ull << 14)
/* Bits L1 leaves in DR6: they must survive every intercepted #DB. */
#define DR6_MARK	(DR6_INIT | DR6_BS | 0xa)

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 stack_l2[8192] __attribute__((aligned(16)));
static volatile u64 watched;

extern char l2_nop[], l2_after_nop[], l2_bp[], l2_store[], l2_after_store[];

static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		asm volatile("l2_nop: nop\n"
			     "l2_after_nop: vmcall\n"
			     "l2_bp: nop\n"
			     "vmcall\n"
			     "l2_store: movq $1, %0\n"
			     "l2_after_store: vmcall\n"
			     : "=m"(watched) :: "memory");
	}
}

static inline void write_dr(int n, u64 v)
{
	switch (n) {
	case 0: asm volatile("mov %0, %%dr0" :: "r"(v)); break;
	case 1: asm volatile("mov %0, %%dr1" :: "r"(v)); break;
	case 6: asm volatile("mov %0, %%dr6" :: "r"(v)); break;
	}
}

static u64 read_dr6(void)
{
	u64 v;

	asm volatile("mov %%dr6, %0" : "=r"(v));
	return v;
}

/* Enter at @rip with @rflags_or and @dr7; report the #DB exit we expect. */
static void expect_db(const char *what, bool launch, void *rip, u64 rflags_or, u64 dr7,
		      void *want_rip, u64 want_qual)
{
	u32 reason, info;
	u64 qual, dr6, got_rip;

	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)rip);
	vmcs_set(VMCS_GUEST_RFLAGS, 2 | rflags_or);
	vmcs_set(VMCS_GUEST_DR7, dr7);
	write_dr(6, DR6_MARK);
	if (vmx_enter(launch) != VMX_OK) {
		report(false, "%s: VM entry", what);
		return;
	}
	reason = (u32)vmcs_get(VMCS_EXIT_REASON);
	info = (u32)vmcs_get(VMCS_EXIT_INTR_INFO);
	qual = vmcs_get(VMCS_EXIT_QUALIFICATION);
	got_rip = vmcs_get(VMCS_GUEST_RIP);
	dr6 = read_dr6();
	report(reason == EXIT_REASON_EXCEPTION_NMI && info == ((1u << 31) | (3u << 8) | 1),
	       "%s: #DB VM exit (reason %u, interruption info %#x)", what, reason, info);
	report(got_rip == (u64)(uintptr_t)want_rip, "%s: guest RIP %#llx (want %p)", what,
	       (unsigned long long)got_rip, want_rip);
	report(qual == want_qual, "%s: exit qualification %#llx (want %#llx)", what,
	       (unsigned long long)qual, (unsigned long long)want_qual);
	report(dr6 == DR6_MARK, "%s: DR6 unchanged (%#llx)", what, (unsigned long long)dr6);
	report(vmcs_get(VMCS_GUEST_PENDING_DBG) == 0, "%s: nothing left pending", what);
}

void test_main(void)
{
	vmx_on();
	vmx_setup_vmcs(vmcs, l2_main, stack_l2 + sizeof(stack_l2));
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << 1);
	/* "load debug controls": the guest's DR7 comes from the VMCS. */
	vmcs_set(VMCS_ENTRY_CONTROLS, vmcs_get(VMCS_ENTRY_CONTROLS) | (1u << 2));

	expect_db("1 single step", true, l2_nop, 1u << 8, 0x400, l2_after_nop, DR6_BS);

	write_dr(0, (u64)(uintptr_t)l2_bp);
	expect_db("2 instruction breakpoint", false, l2_bp, 0, 0x400 | 0x1, l2_bp, 0x1);

	write_dr(1, (u64)(uintptr_t)&watched);
	/* L1 enabled, R/W1 = 01 (writes), LEN1 = 10 (8 bytes). */
	expect_db("3 data breakpoint", false, l2_store, 0, 0x400 | 0x4 | (1ull << 20) | (2ull << 22),
		  l2_after_store, 0x2);

	/* Pending at entry: BS | B0 under blocking by MOV SS, with TF set. */
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 2);
	vmcs_set(VMCS_GUEST_PENDING_DBG, DR6_BS | 0x1);
	expect_db("4 pending at entry + single step", false, l2_nop, 1u << 8, 0x400, l2_after_nop,
		  DR6_BS | 0x1);

	/* Pending B0 under MOV SS, no single step: #DB after the first instruction. */
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 2);
	vmcs_set(VMCS_GUEST_PENDING_DBG, 0x1);
	expect_db("5 pending at entry, delivered after one instruction", false, l2_nop, 0, 0x400,
		  l2_after_nop, 0x1);

	/* ... unless that instruction exits: they are saved again. */
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 2);
	vmcs_set(VMCS_GUEST_PENDING_DBG, 0x1);
	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)l2_after_nop);
	{
		int r = vmx_enter(false);
		u32 reason = r == VMX_OK ? (u32)vmcs_get(VMCS_EXIT_REASON) : ~0u;

		report(reason == EXIT_REASON_VMCALL && vmcs_get(VMCS_GUEST_PENDING_DBG) == 0x1,
		       "6 pending at entry, the first instruction exits: still pending (%u, %#llx)",
		       reason, (unsigned long long)vmcs_get(VMCS_GUEST_PENDING_DBG));
	}
	vmx_off();
}
