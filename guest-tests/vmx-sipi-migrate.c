/*
 * The wait-for-SIPI activity state and a latched INIT across migration
 * (guest-tests/migrate/test-vmx-migrate-sipi.py), -smp 2.  The AP enters
 * its guest in wait-for-SIPI, and an INIT sent to it there is blocked
 * and latched.  The BSP prints "migrate-now" and waits about two seconds
 * of TSC, long enough for the host to stop, migrate and restore the
 * machine.  Then it sends a SIPI: the AP's exit must be reason 4 with
 * the vector and activity state wait-for-SIPI; made active, its guest
 * exits at once for the latched INIT (reason 3).  Run alone, without a
 * migration, it passes the same way.
 */
#include "libtest.h"
#include "vmx.h"

#define APIC_BASE	0xfee00000ul
#define EXIT_REASON_INIT	3
#define EXIT_REASON_SIPI	4

static u8 vmxon_ap[4096] __attribute__((aligned(4096)));
static u8 vmcs_ap[4096] __attribute__((aligned(4096)));
static u8 stack_l2[8192] __attribute__((aligned(16)));

static volatile int step, ap_step;
static volatile u32 ap_reason[2], ap_activity[2];
static volatile u64 ap_qual[2], l2_count;

static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		l2_count++;
		asm volatile("pause" ::: "memory");
	}
}

static void apic_ipi(u32 lo)
{
	*(volatile u32 *)(APIC_BASE + 0x310) = 1u << 24;
	*(volatile u32 *)(APIC_BASE + 0x300) = lo;
}

static void ap_record(int i, int rc)
{
	ap_reason[i] = rc == VMX_OK ? (u32)vmcs_get(VMCS_EXIT_REASON) : ~0u;
	ap_qual[i] = vmcs_get(VMCS_EXIT_QUALIFICATION);
	ap_activity[i] = (u32)vmcs_get(VMCS_GUEST_ACTIVITY_STATE);
}

static void ap_work(void)
{
	vmx_on_region(vmxon_ap);
	vmx_setup_vmcs(vmcs_ap, l2_main, stack_l2 + sizeof(stack_l2));
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, 3);         /* wait-for-SIPI */
	ap_step = 1;
	/* Not before the start-up sequence's second SIPI is over: it would exit. */
	while (step < 1)
		;
	ap_record(0, vmx_enter(1));
	ap_step = 2;
	while (step < 3)
		;
	vmcs_set(VMCS_GUEST_ACTIVITY_STATE, 0);
	ap_record(1, vmx_enter(0));
	ap_step = 3;
	vmx_off();
}

static bool wait_ap(int s)
{
	u64 t0 = rdtsc();

	while (ap_step < s)
		if (rdtsc() - t0 > 20000000000ull)
			return false;
	return true;
}

void test_main(void)
{
	u64 t0;
	bool got;

	if (!report(smp_start_ap(1, ap_work), "the second vCPU started") || !wait_ap(1))
		return;
	for (volatile int i = 0; i < 2000000; i++)
		;
	step = 1;                                       /* AP: enter in wait-for-SIPI */
	for (volatile int i = 0; i < 2000000; i++)
		;
	apic_ipi(0x00004500);                           /* INIT: blocked, latched */
	printf("migrate-now\n");
	t0 = rdtsc();
	while (rdtsc() - t0 < 4000000000ull)            /* about 2 s of TSC */
		asm volatile("pause");
	report(ap_step == 1 && l2_count == 0,
	       "the AP's guest is still in wait-for-SIPI and never ran (%llu)",
	       (unsigned long long)l2_count);
	apic_ipi(0x00004600 | 0x42);                    /* SIPI, vector 0x42 */
	got = wait_ap(2);
	report(got && ap_reason[0] == EXIT_REASON_SIPI && ap_qual[0] == 0x42 &&
	       ap_activity[0] == 3,
	       "the SIPI is a VM exit: reason %u, vector %#llx, activity %u saved",
	       ap_reason[0], (unsigned long long)ap_qual[0], ap_activity[0]);
	step = 3;
	got = wait_ap(3);
	report(got && ap_reason[1] == EXIT_REASON_INIT,
	       "made active, the guest exits for the INIT latched in wait-for-SIPI (%u)",
	       ap_reason[1]);
}
