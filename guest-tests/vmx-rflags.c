/*
 * RFLAGS across VM entry and VM exit (SDM Vol. 3C 27.3.2.2, 28.3.3): the
 * guest starts with the arithmetic flags of GUEST_RFLAGS and, from then
 * on, has only the flags its own instructions produce.  The guest's
 * PUSHF, the frame of an exception it takes, and GUEST_RFLAGS at the next
 * exit must show exactly those, never a flag left from the entry value.
 * (Found by Xen's PVH domU: flags ORed in from the entry value corrupted
 * the guest's branches after interrupts, at random.)
 */
#include "libtest.h"
#include "vmx.h"

#define ARITH	0x8d5ull		/* OF SF ZF AF PF CF */
#define F_CF	0x001ull
#define F_PF	0x004ull
#define F_ZF	0x040ull
#define F_SF	0x080ull
#define F_OF	0x800ull

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));

static void __attribute__((noreturn, used)) guest_main(void)
{
	/* 1: the entry flags as they are (PUSHF before any arithmetic). */
	asm volatile("pushfq; popq %%rbx; vmcall" ::: "rbx", "memory");
	/* 2: XOR sets ZF and PF and clears CF, OF, SF. */
	asm volatile("xorl %%eax, %%eax; pushfq; popq %%rbx; vmcall" ::: "rax", "rbx", "memory");
	/* 3: 1 - 2: CF, SF, AF, PF set; the exit saves them. */
	asm volatile("movl $1, %%eax; cmpl $2, %%eax; vmcall" ::: "rax", "memory");
	for (;;)
		asm volatile("xorl %%eax, %%eax; vmcall" ::: "rax", "memory");
}

void test_main(void)
{
	u64 f;
	int r;

	vmx_on();
	vmx_setup_vmcs(vmcs, guest_main, guest_stack + sizeof(guest_stack));
	/* Enter with every arithmetic flag set, DF set too. */
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2 | ARITH | 0x400);
	r = vmx_enter(1);
	f = vmx_guest_regs.rbx;
	report(r == VMX_OK && (f & (ARITH | 0x400)) == (ARITH | 0x400),
	       "the guest starts with the entry's arithmetic flags and DF (%#llx)",
	       (unsigned long long)f);
	vmx_skip_instruction();
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2 | ARITH);	/* again, for the XOR */
	vmx_enter(0);
	f = vmx_guest_regs.rbx;
	report((f & ARITH) == (F_ZF | F_PF),
	       "after XOR the guest's PUSHF shows ZF and PF only (%#llx)", (unsigned long long)f);
	vmx_skip_instruction();
	vmx_enter(0);
	f = vmcs_get(VMCS_GUEST_RFLAGS);
	report((f & ARITH) == (F_CF | F_SF | 0x010 | F_PF) && !(f & (F_ZF | F_OF)),
	       "the exit after CMP saves that CMP's flags, no flag of the entry value (%#llx)",
	       (unsigned long long)f);
	vmx_skip_instruction();
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2 | F_CF | F_SF | F_OF);
	vmx_enter(0);
	f = vmcs_get(VMCS_GUEST_RFLAGS);
	report((f & ARITH) == (F_ZF | F_PF),
	       "the exit after XOR saves ZF and PF only, though the entry set CF, SF and OF (%#llx)",
	       (unsigned long long)f);
	vmx_off();
}
