/*
 * VMX state across savevm/migration.  A guest hypervisor runs an L2 with
 * EPT, A/D flags and PML that dirties pages and computes a checksum in a
 * long loop, with a VMCALL every so often.  guest-tests/migrate/
 * test-vmx-migrate.py stops the machine while L2 runs, migrates it to a
 * file, restores it in a new QEMU and lets it finish: the checksum, the
 * exit count and the PML log must come out exactly as without migration.
 * Run with a -cpu model that has VMX with EPT.
 */
#include "libtest.h"
#include "vmx.h"

#define ROUNDS		64
#define PAGES		32
#define STEPS		2000000

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
static u64 pml_log[512] __attribute__((aligned(4096)));
static u8 pages[PAGES][4096] __attribute__((aligned(4096)));
static volatile u64 l2_sum;

static u64 mix(u64 x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	return x ^ (x >> 29);
}

/* L2: ROUNDS rounds of STEPS mixing steps over PAGES pages, VMCALL each round. */
static void __attribute__((noreturn, used)) l2_main(void)
{
	u64 sum = 0;
	int r, i;

	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < STEPS; i++) {
			u64 *slot = (u64 *)pages[i % PAGES] + (i / PAGES) % 512;
			sum = mix(sum + *slot + i);
			*slot = sum;
		}
		l2_sum = sum;
		asm volatile("vmcall" ::: "memory");
	}
	for (;;)
		asm volatile("hlt");
}

/* The same computation on the host, for the expected result. */
static u64 expected_sum(void)
{
	static u64 shadow[PAGES][512];
	u64 sum = 0;
	int r, i;

	memset(shadow, 0, sizeof(shadow));
	for (r = 0; r < ROUNDS; r++)
		for (i = 0; i < STEPS; i++) {
			u64 *slot = &shadow[i % PAGES][(i / PAGES) % 512];
			sum = mix(sum + *slot + i);
			*slot = sum;
		}
	return sum;
}

void test_main(void)
{
	u64 eptp, want;
	unsigned exits = 0, vmcalls = 0, logged_pages = 0;
	int r, i, j, launched = 0;
	u16 idx;

	want = expected_sum();
	vmx_on();
	vmx_setup_vmcs(vmcs, l2_main, guest_stack + sizeof(guest_stack));
	eptp = ept_build_identity(true);
	for (i = 0; i < PAGES; i++)
		*ept_pte((u64)(uintptr_t)pages[i]) &= ~(EPT_A | EPT_D);
	vmcs_set(VMCS_PROC_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PROCBASED_CTLS, MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
			  PROC_ACTIVATE_SECONDARY | PROC_HLT_EXITING));
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_PML);
	vmcs_set(VMCS_EPT_POINTER, eptp);
	vmcs_set(VMCS_PML_ADDRESS, (u64)(uintptr_t)pml_log);
	vmcs_set(VMCS_GUEST_PML_INDEX, 511);
	invept(2, 0);
	/*
	 * NMI exiting with blocking by NMI: state the VMCS holds only after an
	 * exit (the "cpu/vmx/events" subsection carries it across migration).
	 */
	vmcs_set(VMCS_PIN_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS,
			  PIN_NMI_EXITING));
	vmcs_set(VMCS_GUEST_INTERRUPTIBILITY, 1u << 3);

	info("migrate-now: L2 is running");
	for (;;) {
		r = vmx_enter(!launched);
		launched = 1;
		if (r != VMX_OK)
			test_abort("VM entry failed: %s", vmx_outcome_name(r));
		exits++;
		if (vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_HLT)
			break;
		if (vmcs_get(VMCS_EXIT_REASON) != EXIT_REASON_VMCALL)
			test_abort("unexpected exit reason %llu",
				   (unsigned long long)vmcs_get(VMCS_EXIT_REASON));
		vmcalls++;
		vmx_skip_instruction();
	}
	idx = vmcs_get(VMCS_GUEST_PML_INDEX);
	for (i = 0; i < PAGES; i++)
		for (j = 511; j > (s16)idx; j--)
			logged_pages += pml_log[j] == (u64)(uintptr_t)pages[i];

	report(l2_sum == want, "L2's checksum is exact (%#llx, want %#llx)",
	       (unsigned long long)l2_sum, (unsigned long long)want);
	report(vmcalls == ROUNDS && exits == ROUNDS + 1,
	       "one VMCALL exit per round and the final HLT exit (%u, %u)", vmcalls, exits);
	report(logged_pages == PAGES, "PML logged each of the %d pages exactly once (%u)",
	       PAGES, logged_pages);
	report(vmcs_get(VMCS_GUEST_INTERRUPTIBILITY) & (1u << 3),
	       "blocking by NMI under NMI exiting lasted to the end (%#llx)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_INTERRUPTIBILITY));
	vmx_off();
}
