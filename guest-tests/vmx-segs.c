/*
 * Segment state saved at VM exit (SDM Vol. 3C 28.3.2) after the guest
 * loads its own descriptors, and the next VM entry's checks on it
 * (27.3.1.2).  Found by Xen's PVH domU boot: a guest that far-jumps to a
 * code descriptor whose accessed flag is clear, or runs LTR, must be
 * saved as hardware would (CS accessed, TR busy) so that it can be
 * resumed.
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
#define GUEST_STACK_TOP ((void *)(guest_stack + sizeof(guest_stack)))

/* The guest's own GDT: descriptors with the accessed / busy flags clear. */
#define G_CODE 0x08
#define G_DATA 0x10
#define G_TSS  0x18
static u64 guest_gdt[5] __attribute__((aligned(16)));
static u8 guest_tss[104] __attribute__((aligned(16)));
static volatile u64 guest_rounds;
static struct {
	u16 limit;
	u64 base;
} __attribute__((packed)) guest_gdtr;

static void __attribute__((noreturn, used)) guest_main(void)
{
	guest_gdtr.limit = sizeof(guest_gdt) - 1;
	guest_gdtr.base = (u64)(uintptr_t)guest_gdt;
	asm volatile("lgdt %0\n\t"
		     /* far return to G_CODE: loads CS from the new GDT */
		     "pushq %1\n\t"
		     "leaq 1f(%%rip), %%rax\n\t"
		     "pushq %%rax\n\t"
		     "lretq\n"
		     "1:\n\t"
		     "movw %w2, %%ax\n\t"
		     "movw %%ax, %%ds\n\t"
		     "movw %%ax, %%ss\n\t"
		     "movw %w3, %%ax\n\t"
		     "ltr %%ax"
		     :: "m"(guest_gdtr), "i"(G_CODE), "i"(G_DATA), "i"(G_TSS) : "rax", "memory");
	for (;;) {
		guest_rounds++;
		asm volatile("vmcall" ::: "memory");
	}
}

void test_main(void)
{
	u64 tss = (u64)(uintptr_t)guest_tss;
	u32 reason;
	int r;

	guest_gdt[0] = 0;
	guest_gdt[1] = 0x00209a0000000000ull;	/* 64-bit code, type 0xa: not accessed */
	guest_gdt[2] = 0x0000920000000000ull;	/* data, type 2: not accessed */
	guest_gdt[3] = (sizeof(guest_tss) - 1) | ((tss & 0xffffff) << 16) |
		       (0x89ull << 40) | ((tss >> 24 & 0xff) << 56);	/* available TSS */
	guest_gdt[4] = tss >> 32;

	vmx_on();
	vmx_setup_vmcs(vmcs, guest_main, GUEST_STACK_TOP);
	r = vmx_enter(1);
	reason = vmcs_get(VMCS_EXIT_REASON);
	report(r == VMX_OK && reason == EXIT_REASON_VMCALL,
	       "the guest loads its own GDT, CS, SS, DS and TR and exits with VMCALL (%u)", reason);
	report(vmcs_get(VMCS_GUEST_ES_SELECTOR + 1 * VMCS_SEG_STEP) == G_CODE &&
	       (vmcs_get(VMCS_GUEST_ES_AR + 1 * VMCS_SEG_STEP) & 0xf) == 0xb,
	       "CS is saved as an accessed code segment (AR %#llx)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_ES_AR + 1 * VMCS_SEG_STEP));
	report((vmcs_get(VMCS_GUEST_ES_AR + 2 * VMCS_SEG_STEP) & 0xf) == 0x3 &&
	       (vmcs_get(VMCS_GUEST_ES_AR + 3 * VMCS_SEG_STEP) & 0xf) == 0x3,
	       "SS and DS are saved as accessed data segments");
	report(vmcs_get(VMCS_GUEST_TR_SELECTOR) == G_TSS &&
	       (vmcs_get(VMCS_GUEST_ES_AR + 7 * VMCS_SEG_STEP) & 0xf) == 0xb &&
	       vmcs_get(VMCS_GUEST_TR_BASE) == tss,
	       "TR is saved as the busy 64-bit TSS LTR loaded (AR %#llx)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_ES_AR + 7 * VMCS_SEG_STEP));
	report(((guest_gdt[2] >> 40) & 0xf) == 0x3 && ((guest_gdt[3] >> 40) & 0xf) == 0xb,
	       "the guest's data and TSS descriptors are marked accessed and busy in memory");

	vmx_skip_instruction();
	r = vmx_enter(0);
	reason = vmcs_get(VMCS_EXIT_REASON);
	report(r == VMX_OK && reason == EXIT_REASON_VMCALL && guest_rounds == 2,
	       "VMRESUME with the saved state passes the guest-state checks (exit %#x)", reason);
	vmx_off();
}
