/*
 * Alignment checking (SDM Vol. 3A 6.15, "Interrupt 17, Alignment Check
 * Exception"; 2.5, CR0.AM): with CR0.AM = 1 and EFLAGS.AC = 1, a data
 * access made at CPL 3 to an operand that is not aligned on its size
 * raises #AC(0); with either bit clear, or at CPL 0-2, it does not.
 * Upstream TCG never raised #AC (patch 0039).
 *
 * The guest runs the accesses at CPL 3 in VMX non-root operation, with
 * #AC in the exception bitmap, so that no user-mode runtime (TSS stack,
 * user page tables for the host) is needed: the L2 gets its CPL, CR0,
 * RFLAGS and a user-accessible identity map from the VMCS, and every
 * case ends in a VM exit, either the #AC (exit reason 0, vector 17, error
 * code 0, RIP at the faulting instruction) or the VMCALL after the access.
 */
#include "libtest.h"
#include "vmx.h"

#define CR0_AM		(1ull << 18)
#define RFLAGS_AC	(1ull << 18)
#define AC_VECTOR	17
#define USER_CS		0x1b		/* RPL 3; the VMCS holds the descriptor */
#define USER_SS		0x23

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
/* The first 4 GiB in 2 MiB pages, user-accessible (U = 1). */
static u64 upml4[512] __attribute__((aligned(4096)));
static u64 updpt[512] __attribute__((aligned(4096)));
static u64 upd[4][512] __attribute__((aligned(4096)));
static u64 data[4] __attribute__((aligned(64)));

/* Each access, then VMCALL.  RDI holds the address, RAX the value. */
extern char g_st8[], g_ld4[], g_ld2[], g_ld1[], g_add4[], g_push[], g_movs4[];
asm(".text\n"
    "g_st8:  movq %rax, (%rdi)\n vmcall\n ud2\n"
    "g_ld4:  movl (%rdi), %eax\n vmcall\n ud2\n"
    "g_ld2:  movw (%rdi), %ax\n vmcall\n ud2\n"
    "g_ld1:  movb (%rdi), %al\n vmcall\n ud2\n"
    "g_add4: addl %eax, (%rdi)\n vmcall\n ud2\n"
    "g_push: pushq %rax\n vmcall\n ud2\n"
    "g_movs4: movsl\n vmcall\n ud2\n");

static void build_user_map(void)
{
	int i, j;

	upml4[0] = pa(updpt) | 0x7;
	for (i = 0; i < 4; i++) {
		updpt[i] = pa(upd[i]) | 0x7;
		for (j = 0; j < 512; j++)
			upd[i][j] = ((u64)i << 30) | ((u64)j << 21) | 0x87;	/* PS U RW P */
	}
}

/* VMX guest state for CPL @cpl (0 or 3): flat 64-bit segments. */
static void set_cpl(int cpl)
{
	int i;

	for (i = 0; i < 6; i++) {
		bool cs = i == 1;
		u16 sel = cpl ? (cs ? USER_CS : USER_SS) : (cs ? CODE_SELECTOR : DATA_SELECTOR);
		u64 ar = (cs ? 0xa09b : 0xc093) | ((u64)cpl << 5);

		vmcs_set(VMCS_GUEST_ES_SELECTOR + i * VMCS_SEG_STEP, sel);
		vmcs_set(VMCS_GUEST_ES_AR + i * VMCS_SEG_STEP, ar);
	}
}

/*
 * Run @code at @cpl with CR0.AM = @am and RFLAGS.AC = @ac, RDI = @addr,
 * RSI = @src, RSP = @rsp.  Returns the vector of an intercepted exception,
 * or -1 if the guest reached its VMCALL, -2 for anything else.
 */
static int run(char *code, int cpl, bool am, bool ac, u64 addr, u64 src, u64 rsp, u32 *err,
	       u64 *rip)
{
	u64 cr0 = read_cr0(), reason, info;
	int r;

	vmcs_set(VMCS_GUEST_CR0, am ? cr0 | CR0_AM : cr0 & ~CR0_AM);
	vmcs_set(VMCS_GUEST_RFLAGS, 2 | (ac ? RFLAGS_AC : 0));
	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)code);
	vmcs_set(VMCS_GUEST_RSP, rsp);
	set_cpl(cpl);
	vmx_guest_regs.rax = 0x1122334455667788ull;
	vmx_guest_regs.rdi = addr;
	vmx_guest_regs.rsi = src;
	r = vmx_enter(0);
	if (r != VMX_OK)
		return -2;
	reason = vmcs_get(VMCS_EXIT_REASON) & 0xffff;
	*rip = vmcs_get(VMCS_GUEST_RIP);
	if (reason == EXIT_REASON_VMCALL)
		return -1;
	if (reason != EXIT_REASON_EXCEPTION_NMI)
		return -2;
	info = vmcs_get(VMCS_EXIT_INTR_INFO);
	/* Valid, hardware exception (type 3), error code delivered. */
	if ((info & 0x80000f00) != 0x80000b00)
		return -2;
	*err = vmcs_get(VMCS_EXIT_INTR_ERROR_CODE);
	return info & 0xff;
}

static void expect_ac(const char *what, char *code, u64 addr, u64 src, u64 rsp)
{
	u32 err = ~0u;
	u64 rip = 0;
	int v = run(code, 3, true, true, addr, src, rsp, &err, &rip);

	report(v == AC_VECTOR && err == 0 && rip == (u64)(uintptr_t)code,
	       "%s: #AC(0) at the access (vector %d, error %#x, RIP %s)", what, v, err,
	       rip == (u64)(uintptr_t)code ? "at it" : "elsewhere");
}

static void expect_none(const char *what, char *code, int cpl, bool am, bool ac, u64 addr,
			u64 src, u64 rsp)
{
	u32 err;
	u64 rip;
	int v = run(code, cpl, am, ac, addr, src, rsp, &err, &rip);

	report(v == -1, "%s: no fault (%s)", what,
	       v == -1 ? "reached VMCALL" : v == -2 ? "unexpected exit" : "exception");
}

void test_main(void)
{
	u64 base = (u64)(uintptr_t)data, stack = (u64)(uintptr_t)(guest_stack + 4096);
	int r;

	build_user_map();
	vmx_on();
	vmx_setup_vmcs(vmcs, (void (*)(void))g_st8, guest_stack + sizeof(guest_stack));
	vmcs_set(VMCS_GUEST_CR3, pa(upml4));
	vmcs_set(VMCS_EXCEPTION_BITMAP, 1u << AC_VECTOR);
	/* Launch once through an aligned store, so later entries resume. */
	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)g_st8);
	vmx_guest_regs.rdi = base;
	r = vmx_enter(1);
	if (r != VMX_OK || (vmcs_get(VMCS_EXIT_REASON) & 0xffff) != EXIT_REASON_VMCALL)
		test_abort("VMLAUNCH at CPL 0: %s, exit %llu", vmx_outcome_name(r),
			   (unsigned long long)vmcs_get(VMCS_EXIT_REASON));

	expect_ac("CPL 3, AM, AC: 8-byte store at 4 mod 8", g_st8, base + 4, 0, stack);
	expect_ac("CPL 3, AM, AC: 4-byte load at 2 mod 4", g_ld4, base + 2, 0, stack);
	expect_ac("CPL 3, AM, AC: 2-byte load at an odd address", g_ld2, base + 1, 0, stack);
	expect_ac("CPL 3, AM, AC: 4-byte read-modify-write at 1 mod 4", g_add4, base + 1, 0, stack);
	expect_ac("CPL 3, AM, AC: PUSH with RSP at 4 mod 8", g_push, 0, 0, stack - 4);
	expect_ac("CPL 3, AM, AC: MOVSD reading at 2 mod 4", g_movs4, base, base + 2, stack);
	expect_none("CPL 3, AM, AC: 8-byte store, aligned", g_st8, 3, true, true, base + 8, 0,
		    stack);
	expect_none("CPL 3, AM, AC: 2-byte load at 2 mod 4", g_ld2, 3, true, true, base + 2, 0,
		    stack);
	expect_none("CPL 3, AM, AC: 1-byte load at an odd address", g_ld1, 3, true, true,
		    base + 1, 0, stack);
	expect_none("CPL 3, AM, AC = 0: 8-byte store at 4 mod 8", g_st8, 3, true, false, base + 4,
		    0, stack);
	expect_none("CPL 3, AM = 0, AC: 8-byte store at 4 mod 8", g_st8, 3, false, true, base + 4,
		    0, stack);
	expect_none("CPL 0, AM, AC: 8-byte store at 4 mod 8", g_st8, 0, true, true, base + 4, 0,
		    stack);
	/* The state must not stick: the same check again after the others. */
	expect_ac("CPL 3, AM, AC again: 8-byte store at 4 mod 8", g_st8, base + 4, 0, stack);
	vmx_off();
}
