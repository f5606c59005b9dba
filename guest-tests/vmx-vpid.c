/*
 * Cached translations across VM entries and exits (SDM Vol. 3C 29.4):
 * what must not survive.  The emulator keeps non-root translations across
 * entry and exit when VPID is on (target-i386-pml/vmx-tlb.c); these checks
 * are the invalidations that keeping must still honour:
 *  - without VPID, VM entry invalidates linear and combined mappings,
 *    whoever rewrote the paging structure: L1 through a TLB entry made
 *    before L2 first walked the page, or L2 itself before its exit (the
 *    emulator keeps the sets when no paging structure was written, patch
 *    0049 and vmx-tlb.c; these are the writes it must see);
 *  - INVVPID single-context and individual-address;
 *  - a different VPID has no mappings of the old one;
 *  - L2's own MOV to CR3 invalidates its (non-global) mappings;
 *  - INVEPT, and another EPT root, for guest-physical mappings;
 *  - a changed CR0.WP in the guest-state area (permissions use the current
 *    CR0.WP, whatever is cached).
 * L2 reads linear address LIN, which L1 maps (a 2 MiB PDE in the shared
 * page tables) to PAGE_A or PAGE_B; each holds its own marker.
 * Run with -cpu Skylake-Server,+vmx.
 */
#include "libtest.h"
#include "vmx.h"

#define LIN		0x3fe00000ull		/* PDE 511 of the first page directory */
#define LIN2_PDE	5			/* PDE 5 of the third: nothing walks it */
#define LIN2		(0x80000000ull + (LIN2_PDE << 21))
#define PAGE_A		0x1000000ull		/* 16 MiB */
#define PAGE_B		0x1200000ull		/* 18 MiB */
#define PAGE_C		0x1400000ull		/* 20 MiB */
#define MARK_A		0xaaaa0000aaaa0000ull
#define MARK_B		0xbbbb0000bbbb0000ull
#define MARK_C		0xcccc0000cccc0000ull
#define PDE_P_RW_PS	0x83ull
#define PDE_P_PS	0x81ull
#define CR0_WP		(1ull << 16)

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(16)));
static u64 ept_a[512] __attribute__((aligned(4096)));	/* guest-physical page, two homes */
static u64 ept_b[512] __attribute__((aligned(4096)));
static u64 ept_pml4_2[512] __attribute__((aligned(4096)));	/* a second EPT root */

extern u64 boot_pd[];
extern u8 g_read[], g_write[], g_store[], g_cr3_read[];

asm(".pushsection .text\n"
    "g_read: movq (%rbx), %rax\n"
    "vmcall\n"
    "jmp g_read\n"
    "g_write: movq $1, (%rbx)\n"
    "vmcall\n"
    "jmp g_write\n"
    "g_store: movq %rcx, (%rbx)\n"
    "vmcall\n"
    "jmp g_store\n"
    "g_cr3_read: movq %cr3, %rax\n"
    "movq %rax, %cr3\n"
    "movq (%rbx), %rax\n"
    "vmcall\n"
    "jmp g_cr3_read\n"
    ".popsection\n");

static void map_lin(u64 phys, u64 flags)
{
	boot_pd[LIN >> 21] = phys | flags;	/* no INVLPG: the point of the test */
}

static void set_vpid(u16 vpid, u32 proc2)
{
	vmcs_set(VMCS_SECONDARY_CONTROLS, proc2 | (vpid ? PROC2_ENABLE_VPID : 0));
	if (vpid)
		vmcs_set(VMCS_VPID, vpid);
}

/* Run L2 at @rip with RBX = @addr; the exit reason, RAX after. */
static u32 run(void *rip, u64 addr, u64 *rax)
{
	static int launched;
	int r;

	vmcs_set(VMCS_GUEST_RIP, pa(rip));
	vmx_guest_regs.rbx = addr;
	vmx_guest_regs.rax = 0;
	r = vmx_enter(!launched);
	if (r != VMX_OK)
		test_abort("VM entry failed: %s (error %llu)", vmx_outcome_name(r),
			   (unsigned long long)vmx_insn_error());
	launched = 1;
	if (rax)
		*rax = vmx_guest_regs.rax;
	return (u32)vmcs_get(VMCS_EXIT_REASON);
}

static void expect_read(const char *what, u64 addr, u64 want)
{
	u64 got;
	u32 reason = run(g_read, addr, &got);

	report(reason == EXIT_REASON_VMCALL && got == want, "%s: L2 reads %#llx (want %#llx, exit %u)",
	       what, (unsigned long long)got, (unsigned long long)want, reason);
}

static void test_linear(void)
{
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY));

	/* No VPID: entry invalidates what L2 cached. */
	set_vpid(0, 0);
	map_lin(PAGE_A, PDE_P_RW_PS);
	expect_read("no VPID, mapped to A", LIN, MARK_A);
	map_lin(PAGE_B, PDE_P_RW_PS);
	expect_read("no VPID, remapped to B: entry invalidated the old mapping", LIN, MARK_B);
	expect_read("no VPID, nothing rewritten: still B", LIN, MARK_B);
	{
		/*
		 * The third page directory: linked since boot, walked by
		 * nothing yet.  L1 writes it (a TLB entry that may write
		 * it without a slow path), L2 walks it for the first time,
		 * then L1 rewrites it through that same entry.
		 */
		u64 *pd2 = &boot_pd[2 * 512];
		u64 old = pd2[LIN2_PDE];

		pd2[LIN2_PDE] = PAGE_A | PDE_P_RW_PS;
		expect_read("no VPID, a page directory L2 walks first now", LIN2, MARK_A);
		pd2[LIN2_PDE] = PAGE_B | PDE_P_RW_PS;
		expect_read("no VPID, L1 rewrote it through a TLB entry made before that walk",
			    LIN2, MARK_B);
		pd2[LIN2_PDE] = old;
	}
	{
		u32 reason;

		vmx_guest_regs.rcx = PAGE_C | PDE_P_RW_PS;
		reason = run(g_store, (u64)(uintptr_t)&boot_pd[LIN >> 21], NULL);
		report(reason == EXIT_REASON_VMCALL && boot_pd[LIN >> 21] == (PAGE_C | PDE_P_RW_PS),
		       "no VPID, L2 rewrites its own PDE for C, no INVLPG (exit %u)", reason);
		expect_read("no VPID, after L2's exit and the next entry: C", LIN, MARK_C);
	}

	/* VPID 1: INVVPID single-context. */
	set_vpid(1, 0);
	map_lin(PAGE_A, PDE_P_RW_PS);
	invvpid(1, 1, 0);
	expect_read("VPID 1, mapped to A", LIN, MARK_A);
	map_lin(PAGE_B, PDE_P_RW_PS);
	report(invvpid(1, 1, 0) == VMX_OK, "INVVPID single-context, VPID 1");
	expect_read("VPID 1, remapped to B, after INVVPID single-context", LIN, MARK_B);

	/* Individual address. */
	map_lin(PAGE_A, PDE_P_RW_PS);
	report(invvpid(0, 1, LIN) == VMX_OK, "INVVPID individual address");
	expect_read("VPID 1, remapped to A, after INVVPID individual-address", LIN, MARK_A);

	/* L2's MOV to CR3: its own mappings go. */
	expect_read("VPID 1, mapped to A", LIN, MARK_A);
	map_lin(PAGE_B, PDE_P_RW_PS);
	{
		u64 got;
		u32 reason = run(g_cr3_read, LIN, &got);

		report(reason == EXIT_REASON_VMCALL && got == MARK_B,
		       "VPID 1, remapped to B, after L2's own MOV to CR3: L2 reads %#llx (exit %u)",
		       (unsigned long long)got, reason);
	}
	map_lin(PAGE_A, PDE_P_RW_PS);
	invvpid(1, 1, 0);

	/* Another VPID never saw the old mapping. */
	map_lin(PAGE_B, PDE_P_RW_PS);
	set_vpid(2, 0);
	expect_read("VPID 2, remapped to B: nothing of VPID 1's", LIN, MARK_B);

	/* CR0.WP changed in the guest-state area: permissions follow it. */
	map_lin(PAGE_A, PDE_P_PS);			/* read-only */
	invvpid(1, 2, 0);
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << 14);
	vmcs_set(VMCS_GUEST_CR0, vmcs_get(VMCS_GUEST_CR0) & ~CR0_WP);
	report(run(g_write, LIN, NULL) == EXIT_REASON_VMCALL && *(u64 *)(uintptr_t)PAGE_A == 1,
	       "CR0.WP clear: L2's supervisor write to a read-only page succeeds");
	vmcs_set(VMCS_GUEST_CR0, vmcs_get(VMCS_GUEST_CR0) | CR0_WP);
	{
		u32 reason = run(g_write, LIN, NULL);
		u32 info = (u32)vmcs_get(VMCS_EXIT_INTR_INFO);

		report(reason == EXIT_REASON_EXCEPTION_NMI && (info & 0xff) == 14,
		       "CR0.WP set in the VMCS, same VPID, no INVVPID: the write faults (%u, %#x)",
		       reason, info);
	}
	vmcs_set(VMCS_EXCEPTION_BITMAP, 0);
	*(u64 *)(uintptr_t)PAGE_A = MARK_A;
}

static void test_guest_physical(void)
{
	u64 eptp = ept_build_identity(true), eptp2;
	u64 *pte = ept_pte(pa(ept_a));

	ept_a[0] = MARK_A;
	ept_b[0] = MARK_B;
	set_vpid(1, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	invept(2, 0);
	map_lin(PAGE_A, PDE_P_RW_PS);
	expect_read("EPT: guest-physical page at its own home", pa(ept_a), MARK_A);
	*pte = pa(ept_b) | EPT_MT_WB | EPT_RWX;
	report(invept(1, eptp) == VMX_OK, "INVEPT single-context");
	expect_read("EPT: remapped to another page, after INVEPT", pa(ept_a), MARK_B);

	/*
	 * Another EPT root (its PML4 a copy, the lower levels shared): its
	 * guest-physical mappings are its own, nothing cached under the first.
	 */
	memcpy(ept_pml4_2, (void *)(uintptr_t)(eptp & ~0xfffull), sizeof(ept_pml4_2));
	*pte = pa(ept_a) | EPT_MT_WB | EPT_RWX;
	eptp2 = pa(ept_pml4_2) | (eptp & 0xfff);
	vmcs_set(VMCS_EPT_POINTER, eptp2);
	expect_read("EPT: remapped back, under another EPT root, no INVEPT", pa(ept_a), MARK_A);
	vmcs_set(VMCS_SECONDARY_CONTROLS, 0);
}

void test_main(void)
{
	*(u64 *)(uintptr_t)PAGE_A = MARK_A;
	*(u64 *)(uintptr_t)PAGE_B = MARK_B;
	*(u64 *)(uintptr_t)PAGE_C = MARK_C;
	vmx_on();
	vmx_setup_vmcs(vmcs, (void (*)(void))g_read, guest_stack + sizeof(guest_stack));
	test_linear();
	test_guest_physical();
	map_lin(LIN, PDE_P_RW_PS);
	vmx_off();
}
