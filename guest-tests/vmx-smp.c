/*
 * Two vCPUs (-smp 2, MTTCG), each with its own VMX state: both enter VMX
 * operation with their own VMXON region and make their own VMCS current;
 * while the BSP runs an L2 (entries and exits), the AP keeps checking
 * that its current VMCS and field values are its own; then the AP runs
 * its own L2.  Run with -smp 2 and a -cpu model that has VMX.
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmxon_bsp[4096] __attribute__((aligned(4096)));
static u8 vmxon_ap[4096] __attribute__((aligned(4096)));
static u8 vmcs_bsp[4096] __attribute__((aligned(4096)));
static u8 vmcs_ap[4096] __attribute__((aligned(4096)));
static u8 stack_bsp[8192] __attribute__((aligned(16)));
static u8 stack_ap[8192] __attribute__((aligned(16)));

static volatile int phase;
static volatile unsigned ap_checks, ap_mismatches, ap_exits;
static volatile u64 l2_count[2];

#define PA(p) ((u64)(uintptr_t)(p))
#define BSP_MARK 0xb5b5b5b5ull
#define AP_MARK  0xa0a0a0a0ull

static void __attribute__((noreturn, used)) l2_bsp(void)
{
	for (;;) {
		l2_count[0]++;
		asm volatile("cpuid" ::: "rax", "rbx", "rcx", "rdx", "memory");
	}
}

static void __attribute__((noreturn, used)) l2_ap(void)
{
	for (;;) {
		l2_count[1]++;
		asm volatile("vmcall" ::: "memory");
	}
}

static void ap_work(void)
{
	u64 v = 0;
	int i;

	vmx_on_region(vmxon_ap);
	vmx_setup_vmcs(vmcs_ap, l2_ap, stack_ap + sizeof(stack_ap));
	vmcs_set(VMCS_GUEST_SYSENTER_ESP, AP_MARK);
	phase = 1;
	while (phase < 2) {
		ap_checks++;
		if (vmptrst_op(&v) != VMX_OK || v != PA(vmcs_ap) ||
		    vmcs_get(VMCS_GUEST_SYSENTER_ESP) != AP_MARK)
			ap_mismatches++;
	}
	for (i = 0; i < 100; i++) {
		if (vmx_enter(i == 0) != VMX_OK || vmcs_get(VMCS_EXIT_REASON) != EXIT_REASON_VMCALL)
			break;
		ap_exits++;
		vmx_skip_instruction();
	}
	vmx_off();
	phase = 3;
}

void test_main(void)
{
	u64 v = 0;
	int i, exits = 0;

	vmx_on_region(vmxon_bsp);
	vmx_setup_vmcs(vmcs_bsp, l2_bsp, stack_bsp + sizeof(stack_bsp));
	vmcs_set(VMCS_GUEST_SYSENTER_ESP, BSP_MARK);

	if (!report(smp_start_ap(1, ap_work), "the second vCPU started"))
		return;
	while (phase < 1)
		asm volatile("pause");

	/* BSP: 2000 CPUID exits while the AP checks its own VMX state. */
	for (i = 0; i < 2000; i++) {
		if (vmx_enter(i == 0) != VMX_OK || vmcs_get(VMCS_EXIT_REASON) != EXIT_REASON_CPUID)
			break;
		exits++;
		vmx_skip_instruction();
	}
	report(exits == 2000, "BSP: 2000 CPUID exits from its L2 (%d)", exits);
	report(vmptrst_op(&v) == VMX_OK && v == PA(vmcs_bsp) &&
	       vmcs_get(VMCS_GUEST_SYSENTER_ESP) == BSP_MARK,
	       "BSP: its current VMCS and fields are its own");
	phase = 2;
	while (phase < 3)
		asm volatile("pause");
	report(ap_checks > 0 && ap_mismatches == 0,
	       "AP: its VMCS stayed its own through %u checks while the BSP ran L2 (%u mismatches)",
	       ap_checks, ap_mismatches);
	report(ap_exits == 100 && l2_count[1] == 100,
	       "AP: its own L2 ran to 100 VMCALL exits (%u, %llu)", ap_exits,
	       (unsigned long long)l2_count[1]);
	report(l2_count[0] >= 2000, "BSP's L2 made progress (%llu)", (unsigned long long)l2_count[0]);
	vmx_off();
}
