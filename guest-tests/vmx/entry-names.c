/*
 * Five VM entries that fail, each on a different check of SDM Vol. 3C
 * chapter 27, driven by test-entry-checks.py: after each one the guest
 * prints "STEP n" and spins until the host, having read
 * query-vmx-last-failure, sends an NMI.  The guest checks the
 * architectural result (VMfail number, exit reason, qualification); the
 * host checks which rule the emulator named.  Halts at the end (run
 * without isa-debug-exit).
 *
 *   1  CR3-target count 5               27.2.1.1  VMfailValid(7)
 *   2  host CS.RPL = 3                  27.2.3    VMfailValid(8)
 *   3  guest RFLAGS bit 1 clear         27.3.1.4  exit reason 33
 *   4  entry MSR-load list: FS base     27.4      exit reason 34, entry 1
 *   5  VMRESUME of a clear VMCS         27.1      VMfailValid(5)
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[4096] __attribute__((aligned(16)));
static u64 msr_area[1][2] __attribute__((aligned(16)));

static void __attribute__((noreturn, used)) guest_code(void)
{
	for (;;)
		asm volatile("vmcall");
}

/* Tell the host, then wait for its NMI (a spin: no HLT to race with). */
static void step_done(int step)
{
	printf("STEP %d\n", step);
	while (host_nmis < step)
		asm volatile("pause" ::: "memory");
}

static void expect_vmfail(int r, u64 error, const char *what)
{
	u64 got = vmx_insn_error();

	report(r == VMX_FAIL_VALID && got == error, "%s: VMfailValid(%llu) (got %s, %llu)", what,
	       (unsigned long long)error, vmx_outcome_name(r), (unsigned long long)got);
}

static void expect_entry_failure(int r, u32 reason, u64 qual, const char *what)
{
	u64 got = r == VMX_OK ? vmcs_get(VMCS_EXIT_REASON) : ~0ull;
	u64 q = r == VMX_OK ? vmcs_get(VMCS_EXIT_QUALIFICATION) : ~0ull;

	report(got == (EXIT_REASON_ENTRY_FAILURE | reason) && q == qual,
	       "%s: VM-entry failure, reason %u, qualification %llu (got %s, %#llx, %llu)",
	       what, reason, (unsigned long long)qual, vmx_outcome_name(r),
	       (unsigned long long)got, (unsigned long long)q);
}

void test_main(void)
{
	host_nmi_enable();
	vmx_on();
	vmx_setup_vmcs(vmcs, guest_code, guest_stack + sizeof(guest_stack));

	vmcs_set(VMCS_CR3_TARGET_COUNT, 5);
	expect_vmfail(vmx_enter(1), 7, "CR3-target count 5");
	vmcs_set(VMCS_CR3_TARGET_COUNT, 0);
	step_done(1);

	vmcs_set(VMCS_HOST_CS_SELECTOR, CODE_SELECTOR | 3);
	expect_vmfail(vmx_enter(1), 8, "host CS.RPL 3");
	vmcs_set(VMCS_HOST_CS_SELECTOR, CODE_SELECTOR);
	step_done(2);

	vmcs_set(VMCS_GUEST_RFLAGS, 0);
	expect_entry_failure(vmx_enter(1), EXIT_REASON_INVALID_GUEST_STATE, 0,
			     "guest RFLAGS bit 1 clear");
	vmcs_set(VMCS_GUEST_RFLAGS, 2);
	step_done(3);

	msr_area[0][0] = 0xc0000100;		/* IA32_FS_BASE: not in a load list */
	msr_area[0][1] = 0;
	vmcs_set(VMCS_ENTRY_MSR_LOAD_ADDR, pa(msr_area));
	vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, 1);
	expect_entry_failure(vmx_enter(1), EXIT_REASON_MSR_LOADING, 1,
			     "entry MSR-load list with IA32_FS_BASE");
	vmcs_set(VMCS_ENTRY_MSR_LOAD_COUNT, 0);
	step_done(4);

	expect_vmfail(vmx_enter(0), 5, "VMRESUME of a VMCS whose entries all failed");
	step_done(5);

	vmx_off();
	test_exit();
}
