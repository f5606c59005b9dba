/*
 * CLTS and LMSW in VMX non-root operation (SDM 26.1.3, 25.3, 28.2.1):
 * they exit or not by the CR0 guest/host mask and read shadow, report
 * access types 2 and 3 (LMSW with its source and operand type, and a
 * memory operand's linear address), and leave host-owned bits alone when
 * they do not exit.
 */
#include "libtest.h"
#include "vmx.h"

#define VMCS_GUEST_CR0		0x6800
#define VMCS_GUEST_LINEAR_ADDR	0x640a
#define CR0_PE			(1ull << 0)
#define CR0_MP			(1ull << 1)
#define CR0_EM			(1ull << 2)
#define CR0_TS			(1ull << 3)

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 stack_l2[8192] __attribute__((aligned(16)));
static volatile u16 lmsw_word = 0xfff3;

extern char g_clts[], g_lmsw_reg[], g_lmsw_mem[], g_lmsw_em[];

static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		asm volatile("g_clts: clts\n"
			     "vmcall\n"
			     "g_lmsw_reg: mov $3, %%ax\n"
			     "lmsw %%ax\n"
			     "vmcall\n"
			     "g_lmsw_mem: lmsw %0\n"
			     "vmcall\n"
			     "g_lmsw_em: mov $6, %%ax\n"	/* MP | EM, PE clear */
			     "lmsw %%ax\n"
			     "vmcall\n"
			     :: "m"(lmsw_word) : "rax", "memory");
	}
}

/* Run L2 from @rip with the given CR0 view; return the exit reason. */
static u32 run(bool launch, void *rip, u64 guest_cr0, u64 mask, u64 shadow)
{
	vmcs_set(VMCS_GUEST_RIP, (u64)(uintptr_t)rip);
	vmcs_set(VMCS_GUEST_CR0, guest_cr0);
	vmcs_set(VMCS_CR0_GUEST_HOST_MASK, mask);
	vmcs_set(VMCS_CR0_READ_SHADOW, shadow);
	if (vmx_enter(launch) != VMX_OK)
		return ~0u;
	return (u32)vmcs_get(VMCS_EXIT_REASON);
}

void test_main(void)
{
	u64 cr0;
	u32 r;

	vmx_on();
	cr0 = read_cr0() & ~(CR0_TS | CR0_EM);		/* with NE, as VMX needs */
	vmx_setup_vmcs(vmcs, l2_main, stack_l2 + sizeof(stack_l2));

	r = run(true, g_clts, cr0, CR0_TS, CR0_TS);
	report(r == EXIT_REASON_CR_ACCESS && vmx_exit_qual() == (2 << 4) &&
	       vmcs_get(VMCS_GUEST_RIP) == (u64)(uintptr_t)g_clts &&
	       vmcs_get(VMCS_EXIT_INSTRUCTION_LEN) == 2,
	       "CLTS, TS owned by the host and set in the shadow: exit 28, type 2 (%u, %#llx)", r,
	       (unsigned long long)vmx_exit_qual());

	r = run(false, g_clts, cr0 | CR0_TS, CR0_TS, 0);
	report(r == EXIT_REASON_VMCALL && (vmcs_get(VMCS_GUEST_CR0) & CR0_TS),
	       "CLTS, TS owned by the host and clear in the shadow: no exit, TS unchanged (%u)", r);

	r = run(false, g_clts, cr0 | CR0_TS, 0, 0);
	report(r == EXIT_REASON_VMCALL && !(vmcs_get(VMCS_GUEST_CR0) & CR0_TS),
	       "CLTS, TS owned by the guest: no exit, TS cleared (%u)", r);

	r = run(false, g_lmsw_reg, cr0 & ~CR0_MP, CR0_MP, 0);
	report(r == EXIT_REASON_CR_ACCESS && vmx_exit_qual() == ((3 << 4) | (3ull << 16)),
	       "LMSW AX=3, MP owned by the host, clear in the shadow: exit, type 3, source 3 "
	       "(%#llx)", (unsigned long long)vmx_exit_qual());

	r = run(false, g_lmsw_mem, cr0 & ~CR0_MP, CR0_MP, 0);
	report(r == EXIT_REASON_CR_ACCESS &&
	       vmx_exit_qual() == ((3 << 4) | (1 << 6) | (0xfff3ull << 16)) &&
	       vmcs_get(VMCS_GUEST_LINEAR_ADDR) == (u64)(uintptr_t)&lmsw_word,
	       "LMSW m16=0xfff3: exit, memory operand, the whole source, its linear address "
	       "(%#llx, %#llx)", (unsigned long long)vmx_exit_qual(),
	       (unsigned long long)vmcs_get(VMCS_GUEST_LINEAR_ADDR));

	r = run(false, g_lmsw_em, cr0 | CR0_MP, CR0_MP | CR0_PE, CR0_MP | CR0_PE);
	report(r == EXIT_REASON_VMCALL &&
	       (vmcs_get(VMCS_GUEST_CR0) & (CR0_PE | CR0_MP | CR0_EM)) == (CR0_PE | CR0_MP | CR0_EM),
	       "LMSW MP|EM matching the shadow: no exit, EM set, PE not cleared (%#llx)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_CR0));
	vmx_off();
}
