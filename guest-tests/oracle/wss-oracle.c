/*
 * The working-set oracle against a known L2 (docs/wss-oracle.md), driven
 * by test-wss-oracle.py.  An L2 with EPT touches a known set of pages in
 * two phases; between them L1 waits for an NMI, which the host injects
 * after it has cut the oracle's window.  The host then checks each
 * window's counts against the sets below.  Halts at the end (run without
 * isa-debug-exit).
 *
 *   phase 0: read pages 0-299, write 300-499, read then write 500-599
 *   phase 1: read pages 0-99, read then write 300-349 (dirty in EPT
 *            already: only the oracle's own read-only fill can see the
 *            write), write 600-649
 */
#include "libtest.h"
#include "vmx.h"

#define NPAGES 700

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
static u8 pages[NPAGES][4096] __attribute__((aligned(4096)));
static volatile int phase;

static void touch_read(int from, int to)
{
	for (int i = from; i < to; i++)
		(void)*(volatile u64 *)pages[i];
}

static void touch_write(int from, int to)
{
	for (int i = from; i < to; i++)
		*(volatile u64 *)pages[i] = i;
}

static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		if (phase == 0) {
			touch_read(0, 300);
			touch_write(300, 500);
			touch_read(500, 600);
			touch_write(500, 600);
		} else {
			touch_read(0, 100);
			touch_read(300, 350);
			touch_write(300, 350);
			touch_write(600, 650);
		}
		asm volatile("vmcall" ::: "memory");
	}
}

static void run_phase(int p, int launch)
{
	phase = p;
	if (vmx_enter(launch) != VMX_OK)
		test_abort("VM entry failed");
	if (vmcs_get(VMCS_EXIT_REASON) != EXIT_REASON_VMCALL)
		test_abort("unexpected exit %u", (unsigned)vmcs_get(VMCS_EXIT_REASON));
	vmx_skip_instruction();
	printf("PHASE %d DONE pages %#llx\n", p, (unsigned long long)(uintptr_t)pages[0]);
}

void test_main(void)
{
	host_nmi_enable();
	vmx_on();
	vmx_setup_vmcs(vmcs, l2_main, guest_stack + sizeof(guest_stack));
	vmcs_set(VMCS_PROC_BASED_CONTROLS, vmcs_get(VMCS_PROC_BASED_CONTROLS) |
		 PROC_ACTIVATE_SECONDARY);
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT);
	vmcs_set(VMCS_EPT_POINTER, ept_build_identity(true));
	invept(2, 0);

	run_phase(0, 1);
	while (!host_nmis)
		asm volatile("hlt");	/* interrupts stay off: the NMI wakes it */
	run_phase(1, 0);
	vmx_off();
	printf("END: 0 0\n");
	for (;;)
		asm volatile("cli; hlt");
}
