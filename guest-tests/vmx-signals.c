/*
 * INIT and SIPI in VMX operation (SDM 26.2, 26.6.2, 33.2), with -smp 2:
 * the AP is in VMX operation, the BSP sends it INITs and SIPIs through
 * its local APIC.
 *
 *  1. root operation blocks INIT: the AP keeps running;
 *  2. the latched INIT is a VM exit (reason 3) right after the next
 *     VM entry, before the guest runs;
 *  3. an INIT while the guest runs is a VM exit (reason 3, qualification 0);
 *  4. wait-for-SIPI (entered by VM entry): the guest does not run, an INIT
 *     is blocked, a SIPI is a VM exit (reason 4, qualification the vector,
 *     saved activity state still wait-for-SIPI); the INIT blocked there is
 *     a VM exit once the guest is made active;
 *  5. a SIPI to an active guest is discarded;
 *  6. entry checks: wait-for-SIPI with an injected event, or with blocking
 *     by STI, fails (exit reason 33 | bit 31);
 *  7. an INIT latched in VMX operation is acted on at VMXOFF: the AP is
 *     reset and never runs the instruction after VMXOFF.
 */
#include "libtest.h"
#include "vmx.h"

#define APIC_BASE	0xfee00000ul
#define APIC_ICR_LO	0x300
#define APIC_ICR_HI	0x310

#define EXIT_REASON_INIT	3
#define EXIT_REASON_SIPI	4
#define ACTIVITY_ACTIVE		0
#define ACTIVITY_WAIT_SIPI	3
#define MISC_WAIT_SIPI		(1ull << 8)

static u8 vmxon_ap[4096] __attribute__((aligned(4096)));
static u8 vmcs_ap[4096] __attribute__((aligned(4096)));
static u8 stack_l2[8192] __attribute__((aligned(16)));

/* The BSP asks, the AP answers: step numbers and what the AP saw. */
static volatile int step, ap_step;
static volatile u64 ap_spins, l2_count, ap_continued;
static volatile u32 ap_reason, ap_activity, ap_vmfail;
static volatile u64 ap_qual;
static volatile int l2_stop;

static void apic_ipi(u32 apic_id, u32 lo)
{
	*(volatile u32 *)(APIC_BASE + APIC_ICR_HI) = apic_id << 24;
	*(volatile u32 *)(APIC_BASE + APIC_ICR_LO) = lo;
}

static void send_init(void) { apic_ipi(1, 0x00004500); }
static void send_sipi(u8 vector) { apic_ipi(1, 0x00004600 | vector); }

static void spin(unsigned n)
{
	for (volatile unsigned i = 0; i < n; i++)
		;
}

/*
 * Wait until the other vCPU moves @counter past @before, up to about 50
 * times the old fixed wait: on a loaded host its thread may not run at
 * all during one short wait.  A vCPU stuck for good (an INIT not latched,
 * a guest stopped) still fails the check after it.
 */
static void wait_progress(volatile u64 *counter, u64 before)
{
	for (int i = 0; i < 50 && *counter == before; i++)
		spin(1000000);
}

/* The guest counts until told to stop, then VMCALLs (and again, forever). */
static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		while (!l2_stop) {
			l2_count++;
			asm volatile("pause" ::: "memory");
		}
		asm volatile("vmcall" ::: "memory");
	}
}

/* AP: enter the guest and note how it came back. */
static void ap_enter(bool launch)
{
	int rc = vmx_enter(launch);

	ap_vmfail = rc != VMX_OK;
	ap_reason = (u32)vmcs_get(VMCS_EXIT_REASON);
	ap_qual = vmcs_get(VMCS_EXIT_QUALIFICATION);
	ap_activity = (u32)vmcs_get(VMCS_GUEST_ACTIVITY_STATE);
}

static void ap_wait(int s)
{
	while (step < s)
		ap_spins++;
}

static void ap_work(void)
{
	vmx_on_region(vmxon_ap);
	vmx_setup_vmcs(vmcs_ap, l2_main, stack_l2 + sizeof(stack_l2));
	ap_step = 1;

	ap_wait(2);             /* the BSP sent an INIT: we keep running */
	ap_step = 2;

	ap_wait(3);             /* 2: enter; the latched INIT exits at once */
	ap_enter(true);
	ap_step = 3;

	ap_wait(4);             /* 3: the guest runs; an INIT arrives */
	ap_enter(false);
	ap_step = 4;

	ap_wait(5);             /* 4: wait-for-SIPI; INIT, then SIPI 0x42 */
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_WAIT_SIPI);
	ap_enter(false);
	ap_step = 5;
	ap_wait(6);             /* ... made active: the blocked INIT exits */
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	ap_enter(false);
	ap_step = 6;

	ap_wait(7);             /* 5: an active guest; a SIPI; then VMCALL */
	ap_enter(false);
	ap_step = 7;

	ap_wait(8);             /* 6: entry checks */
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_WAIT_SIPI);
	vmcs_set(VMCS_ENTRY_INTR_INFO, (1u << 31) | (3u << 8) | 13 | (1u << 11));
	ap_enter(false);
	ap_step = 8;
	ap_wait(9);
	vmcs_set(VMCS_ENTRY_INTR_INFO, 0);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 2);       /* blocking by MOV SS */
	ap_enter(false);
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 0);
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, ACTIVITY_ACTIVE);
	ap_step = 9;

	ap_wait(10);            /* 7: an INIT is latched; VMXOFF acts on it */
	vmx_off();
	ap_continued = 1;       /* must never run */
	ap_step = 10;
}

/* BSP: wait (bounded) for the AP to reach @s; false if it did not. */
static bool bsp_wait(int s)
{
	for (unsigned i = 0; i < 200000 && ap_step < s; i++)
		spin(1000);
	return ap_step >= s;
}

void test_main(void)
{
	u64 before;
	bool got;

	if (!(rdmsr(MSR_IA32_VMX_MISC) & MISC_WAIT_SIPI)) {
		report(false, "IA32_VMX_MISC reports the wait-for-SIPI activity state (bit 8)");
		return;
	}
	report(true, "IA32_VMX_MISC reports the wait-for-SIPI activity state (bit 8)");
	if (!report(smp_start_ap(1, ap_work), "the second vCPU started") || !bsp_wait(1))
		return;

	/* 1 */
	before = ap_spins;
	send_init();
	spin(2000000);
	step = 2;
	got = bsp_wait(2);
	report(got && ap_spins > before,
	       "1: an INIT in VMX root operation is blocked: the AP keeps running");

	/* 2 */
	l2_count = 0;
	step = 3;
	got = bsp_wait(3);
	report(got && !ap_vmfail && ap_reason == EXIT_REASON_INIT && ap_qual == 0,
	       "2: the latched INIT is a VM exit right after VM entry (reason %u, qual %#llx)",
	       ap_reason, (unsigned long long)ap_qual);
	report(l2_count == 0, "2: ... before the guest ran an instruction (%llu)",
	       (unsigned long long)l2_count);

	/* 3 */
	step = 4;
	while (l2_count < 1000)
		spin(100);
	send_init();
	got = bsp_wait(4);
	report(got && !ap_vmfail && ap_reason == EXIT_REASON_INIT && ap_qual == 0 &&
	       ap_activity == ACTIVITY_ACTIVE,
	       "3: an INIT while the guest runs is a VM exit (reason %u, qual %#llx, activity %u)",
	       ap_reason, (unsigned long long)ap_qual, ap_activity);

	/* 4 */
	l2_count = 0;
	step = 5;
	spin(3000000);
	report(ap_step == 4 && l2_count == 0,
	       "4: in wait-for-SIPI the guest does not run and nothing exits (%llu)",
	       (unsigned long long)l2_count);
	send_init();
	spin(3000000);
	report(ap_step == 4, "4: an INIT in wait-for-SIPI is blocked (no VM exit)");
	send_sipi(0x42);
	got = bsp_wait(5);
	report(got && !ap_vmfail && ap_reason == EXIT_REASON_SIPI && ap_qual == 0x42 &&
	       ap_activity == ACTIVITY_WAIT_SIPI,
	       "4: a SIPI is a VM exit (reason %u, qual %#llx = the vector, activity %u saved)",
	       ap_reason, (unsigned long long)ap_qual, ap_activity);
	report(l2_count == 0, "4: the guest never ran in wait-for-SIPI (%llu)",
	       (unsigned long long)l2_count);
	step = 6;
	got = bsp_wait(6);
	report(got && !ap_vmfail && ap_reason == EXIT_REASON_INIT,
	       "4: the INIT blocked in wait-for-SIPI is a VM exit once the guest is active (%u)",
	       ap_reason);

	/* 5 */
	l2_count = 0;
	step = 7;
	while (l2_count < 1000)
		spin(100);
	send_sipi(0x43);
	spin(3000000);
	report(ap_step == 6, "5: a SIPI to an active guest is discarded (no VM exit)");
	before = l2_count;
	wait_progress(&l2_count, before);
	report(l2_count > before, "5: ... and the guest keeps running");
	l2_stop = 1;
	got = bsp_wait(7);
	report(got && ap_reason == EXIT_REASON_VMCALL,
	       "5: the guest's next exit is its VMCALL (%u)", ap_reason);

	/* 6 */
	step = 8;
	got = bsp_wait(8);
	report(got && !ap_vmfail && ap_reason == (EXIT_REASON_INVALID_GUEST_STATE |
							  EXIT_REASON_ENTRY_FAILURE),
	       "6: wait-for-SIPI with an injected #GP fails VM entry (reason %#x)", ap_reason);
	step = 9;
	got = bsp_wait(9);
	report(got && !ap_vmfail && ap_reason == (EXIT_REASON_INVALID_GUEST_STATE |
							  EXIT_REASON_ENTRY_FAILURE),
	       "6: wait-for-SIPI with blocking by MOV SS fails VM entry (reason %#x)", ap_reason);

	/* 7 */
	send_init();
	spin(2000000);
	before = ap_spins;
	wait_progress(&ap_spins, before);
	report(ap_spins > before, "7: an INIT in VMX root operation is latched again");
	step = 10;
	spin(5000000);
	report(ap_step == 9 && !ap_continued,
	       "7: VMXOFF acts on the latched INIT: the AP never runs the next instruction");
}
