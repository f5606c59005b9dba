/*
 * Robustness: thousands of random VMCS field values and control
 * combinations through VMWRITE + VMLAUNCH/VMRESUME, and random VMX
 * instruction operands.  Every attempt must end in an architected outcome
 * (VMfailValid 7/8, a VM-entry failure exit, or a VM exit) and the
 * emulator must survive.  The guest is confined by EPT to a sandbox, so
 * whatever random state it runs with cannot touch the test's memory; host
 * state that a VM exit loads is never randomized; the local APIC timer and
 * external-interrupt exiting end a guest that would loop forever.
 * Run with a -cpu model that has VMX with EPT.
 */
#include "libtest.h"
#include "vmx.h"

#define ITERATIONS 3000


static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 sandbox[16][4096] __attribute__((aligned(4096)));
static u64 fuzz_ept[4][512] __attribute__((aligned(4096)));	/* PML4, PDPT, PD, PT */
static u64 state = 0x9e3779b97f4a7c15ull;

static u64 rnd(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

/* Fields the fuzzer may set to anything. */
static const u32 fuzz_fields[] = {
	0x0000, 0x0800, 0x0802, 0x0804, 0x0806, 0x0808, 0x080a, 0x080c, 0x080e, 0x0812,
	0x2000, 0x2002, 0x2004, 0x2006, 0x2008, 0x200a, 0x200e, 0x2010, 0x2800, 0x2802,
	0x2804, 0x2806, 0x2c00, 0x2c02, 0x4000, 0x4002, 0x4004, 0x4006, 0x4008, 0x400a,
	0x400c, 0x400e, 0x4010, 0x4012, 0x4014, 0x4016, 0x4018, 0x401a, 0x401e, 0x4800,
	0x4802, 0x4804, 0x4806, 0x4808, 0x480a, 0x480c, 0x480e, 0x4810, 0x4812, 0x4814,
	0x4816, 0x4818, 0x481a, 0x481c, 0x481e, 0x4820, 0x4822, 0x4824, 0x4826, 0x482a,
	0x6000, 0x6002, 0x6004, 0x6006, 0x6008, 0x600a, 0x6800, 0x6802, 0x6804, 0x6806,
	0x6808, 0x680a, 0x680c, 0x680e, 0x6810, 0x6812, 0x6814, 0x6816, 0x6818, 0x681a,
	0x681c, 0x681e, 0x6820, 0x6822, 0x6824, 0x6826, 0x4c00, 0x6c06, 0x6c08, 0x6c10,
	0x6c12, 0x0c00, 0x0c06, 0x0c08, 0x0c0a,
};

static u64 fuzz_value(u64 old)
{
	switch (rnd() % 6) {
	case 0:
		return rnd();
	case 1:
		return old ^ (1ull << (rnd() % 64));
	case 2:
		return rnd() & 0xffff;
	case 3:
		return 0;
	case 4:
		return ~0ull;
	default:
		return old | (1ull << (rnd() % 32));
	}
}

/* An EPT that maps guest-physical 0..64 KiB to the sandbox, nothing else. */
static u64 sandbox_eptp(void)
{
	int i;

	memset(fuzz_ept, 0, sizeof(fuzz_ept));
	fuzz_ept[0][0] = (u64)(uintptr_t)fuzz_ept[1] | EPT_RWX;
	fuzz_ept[1][0] = (u64)(uintptr_t)fuzz_ept[2] | EPT_RWX;
	fuzz_ept[2][0] = (u64)(uintptr_t)fuzz_ept[3] | EPT_RWX;
	for (i = 0; i < 16; i++)
		fuzz_ept[3][i] = (u64)(uintptr_t)sandbox[i] | EPT_MT_WB | EPT_RWX;
	return (u64)(uintptr_t)fuzz_ept[0] | 6 | (3 << 3) | (1 << 6);
}

#define APIC_BASE	0xfee00000ul
#define APIC_EOI	0xb0
#define APIC_SVR	0xf0
#define APIC_LVT_TIMER	0x320
#define APIC_TIMER_INIT	0x380
#define APIC_TIMER_DIV	0x3e0

static void apic_write(u32 reg, u32 val)
{
	*(volatile u32 *)(APIC_BASE + reg) = val;
}

static void apic_timer_start(void)
{
	apic_write(APIC_SVR, 0x1ff);			/* enabled, spurious vector 0xff */
	apic_write(APIC_TIMER_DIV, 0xb);		/* divide by 1 */
	apic_write(APIC_LVT_TIMER, 0x20 | (1 << 17));	/* vector 0x20, periodic */
	apic_write(APIC_TIMER_INIT, 2000000);
}

static void __attribute__((noreturn, used)) unused_guest(void)
{
	for (;;)
		asm volatile("vmcall");
}

struct tally {
	unsigned fail7, fail8, fail_other, entry_fail, exits, bad;
	unsigned reasons[65];
};

static void fuzz_vm_entries(struct tally *t, u64 eptp)
{
	int it, k, r;

	for (it = 0; it < ITERATIONS; it++) {
		vmx_setup_vmcs(vmcs, unused_guest, sandbox[15] + 4096);
		/* A real-mode style guest in the sandbox, confined by EPT. */
		vmcs_set(VMCS_PROC_BASED_CONTROLS,
			 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
				  PROC_ACTIVATE_SECONDARY | PROC_HLT_EXITING));
		vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | (1u << 7));
		vmcs_set(VMCS_EPT_POINTER, eptp);
		vmcs_set(VMCS_ENTRY_CONTROLS,
			 vmx_ctls(MSR_IA32_VMX_ENTRY_CTLS, MSR_IA32_VMX_TRUE_ENTRY_CTLS, 0));
		vmcs_set(VMCS_GUEST_CR0, 0x30);
		vmcs_set(VMCS_GUEST_CR4, 0x2000);
		vmcs_set(VMCS_GUEST_CR3, 0);
		for (k = 0; k < 6; k++) {
			vmcs_set(VMCS_GUEST_ES_SELECTOR + k * VMCS_SEG_STEP, 0);
			vmcs_set(VMCS_GUEST_ES_BASE + k * VMCS_SEG_STEP, 0);
			vmcs_set(VMCS_GUEST_ES_LIMIT + k * VMCS_SEG_STEP, 0xffff);
			vmcs_set(VMCS_GUEST_ES_AR + k * VMCS_SEG_STEP, k == 1 ? 0x9b : 0x93);
		}
		vmcs_set(VMCS_GUEST_ES_AR + 7 * VMCS_SEG_STEP, 0x8b);
		vmcs_set(VMCS_GUEST_GDTR_BASE, 0);
		vmcs_set(VMCS_GUEST_IDTR_BASE, 0);
		vmcs_set(VMCS_GUEST_RIP, rnd() & 0xfff0);
		vmcs_set(VMCS_GUEST_RSP, 0xf000);
		/* The sandbox holds random bytes: random code for the guest. */
		for (k = 0; k < 16 * 4096 / 8; k++)
			((u64 *)sandbox)[k] = rnd();

		for (k = rnd() % 6; k >= 0; k--) {
			u32 enc = fuzz_fields[rnd() % ARRAY_SIZE(fuzz_fields)];
			u64 old = 0;

			if (vmread(enc, &old) == VMX_OK)
				vmwrite(enc, fuzz_value(old));
		}
		/*
		 * APIC virtualization: the APIC-access and virtual-APIC pages
		 * in the sandbox (misaligned now and then, for the entry
		 * checks), a random TPR threshold, the controls on by chance.
		 */
		if (rnd() % 2) {
			vmcs_set(VMCS_SECONDARY_CONTROLS,
				 vmcs_get(VMCS_SECONDARY_CONTROLS) | PROC2_VIRT_APIC_ACCESSES);
			vmcs_set(VMCS_PROC_BASED_CONTROLS,
				 vmcs_get(VMCS_PROC_BASED_CONTROLS) | (rnd() % 2 ? PROC_TPR_SHADOW : 0));
		}
		vmcs_set(VMCS_APIC_ACCESS_ADDR, (u64)(uintptr_t)sandbox[rnd() % 14] +
			 (rnd() % 8 ? 0 : rnd() % 4096));
		vmcs_set(VMCS_VIRTUAL_APIC_ADDR, (u64)(uintptr_t)sandbox[rnd() % 14] +
			 (rnd() % 8 ? 0 : rnd() % 4096));
		vmcs_set(VMCS_TPR_THRESHOLD, rnd() % 8 ? rnd() % 16 : rnd() & 0xff);
		/* Never let the guest see host memory. */
		vmcs_set(VMCS_SECONDARY_CONTROLS,
			 vmcs_get(VMCS_SECONDARY_CONTROLS) | PROC2_ENABLE_EPT);
		vmcs_set(VMCS_PROC_BASED_CONTROLS,
			 vmcs_get(VMCS_PROC_BASED_CONTROLS) | PROC_ACTIVATE_SECONDARY);
		vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, vmcs_get(VMCS_ENTRY_MSR_LOAD_COUNT) & 3);
		/* The APIC timer must be able to end the guest. */
		vmcs_set(VMCS_PIN_BASED_CONTROLS,
			 vmcs_get(VMCS_PIN_BASED_CONTROLS) | PIN_EXT_INTR_EXITING);
		vmcs_set(VMCS_EXIT_CONTROLS, vmcs_get(VMCS_EXIT_CONTROLS) | EXIT_ACK_INTR_ON_EXIT);
		vmcs_set(VMCS_EXIT_MSR_LOAD_COUNT, 0);
		vmcs_set(VMCS_EXIT_MSR_STORE_COUNT, 0);	/* a failed store is a VMX abort */
		vmcs_set(VMCS_EXIT_MSR_STORE_ADDR, (u64)(uintptr_t)sandbox[14]);

		r = vmx_enter(1);
		if (r == VMX_FAIL_VALID) {
			u64 e = vmx_insn_error();
			if (e == 7)
				t->fail7++;
			else if (e == 8)
				t->fail8++;
			else
				t->fail_other++;
		} else if (r == VMX_OK) {
			u64 reason = vmcs_get(VMCS_EXIT_REASON);
			if ((reason & 0xffff) == 1)
				apic_write(APIC_EOI, 0);	/* acknowledged on exit */
			if (reason & EXIT_REASON_ENTRY_FAILURE)
				t->entry_fail++;
			else
				t->exits++;
			t->reasons[(reason & 0xffff) < 65 ? (reason & 0xffff) : 64]++;
		} else {
			t->bad++;
		}
	}
}

static void fuzz_instructions(unsigned *tried, unsigned *bad)
{
	int i, r;
	u64 v;

	*(u32 *)vmcs = vmx_revision();
	vmclear((u64)(uintptr_t)vmcs);
	vmptrld((u64)(uintptr_t)vmcs);
	for (i = 0; i < ITERATIONS; i++) {
		u64 enc = rnd() % 4 ? rnd() & 0x6fff : rnd();
		u64 addr = (rnd() % 2) ? rnd() : ((u64)(uintptr_t)sandbox[rnd() % 14] + (rnd() % 3) * 8);

		r = vmread(enc, &v);
		*bad += r != VMX_OK && r != VMX_FAIL_VALID;
		r = vmwrite(enc, rnd());
		*bad += r != VMX_OK && r != VMX_FAIL_VALID;
		r = invept(rnd() % 5, rnd());
		*bad += r != VMX_OK && r != VMX_FAIL_VALID;
		r = invvpid(rnd() % 5, rnd(), rnd());
		*bad += r != VMX_OK && r != VMX_FAIL_VALID;
		/* VMCLEAR/VMPTRLD: invalid addresses, or pages of the sandbox. */
		r = vmclear(addr);
		*bad += r != VMX_OK && r != VMX_FAIL_VALID && r != VMX_FAIL_INVALID;
		r = vmptrld((u64)(uintptr_t)vmcs);
		*bad += r != VMX_OK;
		*tried += 6;
	}
}

void test_main(void)
{
	struct tally t;
	unsigned tried = 0, bad = 0;
	u64 eptp;
	int i;

	memset(&t, 0, sizeof(t));
	vmx_on();
	eptp = sandbox_eptp();
	apic_timer_start();
	fuzz_vm_entries(&t, eptp);
	apic_write(APIC_LVT_TIMER, 1 << 16);		/* masked */
	info("%d random VM entries: %u VMfailValid(7), %u VMfailValid(8), %u other VMfail, "
	     "%u entry failures, %u VM exits", ITERATIONS, t.fail7, t.fail8, t.fail_other,
	     t.entry_fail, t.exits);
	for (i = 0; i < 65; i++)
		if (t.reasons[i])
			info("  exit reason %d: %u", i, t.reasons[i]);
	report(t.bad == 0, "every random VMLAUNCH ended in VMfailValid or a VM exit (%u odd)", t.bad);
	report(t.fail_other == 0, "VMLAUNCH failures were error 7 or 8 only (%u others)", t.fail_other);
	report(t.fail7 && t.entry_fail && t.exits,
	       "the fuzz reached control failures, entry failures and real exits");

	fuzz_instructions(&tried, &bad);
	info("%u random VMX instruction operands", tried);
	report(bad == 0, "random operands always gave VMsucceed or VMfail (%u odd)", bad);
	vmx_off();
}
