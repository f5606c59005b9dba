/*
 * Extended PML (docs/epml.md): enumeration, VM-entry checks, read and
 * write entries with the EPT-entry address, page-walk entries and their
 * filter, buffer hand-over through the descriptor, both-full policies
 * (drop and count, or PML-full exit) and the notification interrupt.
 * Run with -cpu ...,+vmx,epml=on; without epml=on it checks that nothing
 * of the extension is visible.
 */
#include "libtest.h"
#include "vmx.h"

#define NPAGES		300
#define N_PER_BUF	256	/* size 0: 4 KiB / 16 */
#define NOTIFY_VECTOR	0x41

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
static u64 buf[2][512] __attribute__((aligned(4096)));	/* 4 KiB each = 256 entries */
static struct epml_desc desc;
static volatile struct pi_desc pi;		/* section 8.1's posted-interrupt descriptor */
static u8 pages[NPAGES][4096] __attribute__((aligned(4096)));

/* The guest runs a script of reads and writes, then VMCALLs. */
static volatile struct {
	u32 n;
	u64 addr[NPAGES + 8];
	u8 write[NPAGES + 8];
} script;

static void __attribute__((noreturn, used)) guest_main(void)
{
	for (;;) {
		for (u32 i = 0; i < script.n; i++) {
			if (script.write[i])
				*(volatile u64 *)(uintptr_t)script.addr[i] = i + 1;
			else
				(void)*(volatile u64 *)(uintptr_t)script.addr[i];
		}
		asm volatile("vmcall" ::: "memory");
	}
}

static int launched;

/* Run the script; returns the exit reason (VM entry must succeed). */
static u32 run(void)
{
	int r = vmx_enter(!launched);
	u32 reason;

	if (r != VMX_OK)
		test_abort("VM entry failed: %s (error %llu)", vmx_outcome_name(r),
			   (unsigned long long)vmx_insn_error());
	launched = 1;
	reason = vmcs_get(VMCS_EXIT_REASON);
	if (reason == EXIT_REASON_VMCALL)
		vmx_skip_instruction();
	return reason;
}

static void script_clear(void) { script.n = 0; }
static void script_add(const void *p, bool write)
{
	script.addr[script.n] = pa(p);
	script.write[script.n] = write;
	script.n++;
}

/* Clear the EPT A/D flags of the first 8 MiB (4 KiB EPT pages) or of the test pages. */
static void ept_clean(bool everything)
{
	u64 gpa;

	if (everything) {
		for (gpa = 0; gpa < (8ull << 20); gpa += 4096)
			*ept_pte(gpa) &= ~(EPT_A | EPT_D);
	} else {
		for (int i = 0; i < NPAGES; i++)
			*ept_pte(pa(pages[i])) &= ~(EPT_A | EPT_D);
	}
	invept(2, 0);
}

static void epml_reset(u32 ctl)
{
	memset(buf, 0, sizeof(buf));
	memset(&desc, 0, sizeof(desc));
	vmcs_set(VMCS_EPML_CONTROLS, ctl);
	vmcs_set(VMCS_EPML_INDEX, 0);
	vmcs_set(VMCS_EPML_ACTIVE, 0);
}

static void setup(void)
{
	u64 eptp;

	vmx_setup_vmcs(vmcs, guest_main, guest_stack + sizeof(guest_stack));
	launched = 0;
	eptp = ept_build_identity(true);
	epml_setup_vmcs(eptp, buf[0], buf[1], &desc, 0, NOTIFY_VECTOR, 0);
	epml_reset(CTL_WRITE | CTL_READ | CTL_EPTE);
	invept(2, 0);
}

/* Entries of buffer @b, first @n, whose page is @gpa: how many, and their OR. */
static int find(int b, u32 n, u64 gpa, u64 *flags, u64 *epte)
{
	int hits = 0;

	*flags = 0;
	for (u32 i = 0; i < n; i++) {
		if ((buf[b][2 * i] & ~0xfffull) == (gpa & ~0xfffull)) {
			hits++;
			*flags |= buf[b][2 * i] & 0xfff;
			if (epte)
				*epte = buf[b][2 * i + 1];
		}
	}
	return hits;
}

static u32 count_flag(int b, u32 n, u64 flag)
{
	u32 c = 0;

	for (u32 i = 0; i < n; i++)
		c += !!(buf[b][2 * i] & flag);
	return c;
}

/* ---- without epml=on ------------------------------------------------------ */

static void test_absent(void)
{
	u64 v;
	int r;

	report(rdmsr_safe(MSR_IA32_VMX_EPML_CAP, &v) == GP_VECTOR,
	       "IA32_VMX_EPML_CAP does not exist: #GP");
	report(rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS3, &v) == GP_VECTOR,
	       "IA32_VMX_PROCBASED_CTLS3 does not exist: #GP");
	report(!(rdmsr(MSR_IA32_VMX_PROCBASED_CTLS) & (1ull << 49)),
	       "\"activate tertiary controls\" may not be 1");
	vmx_setup_vmcs(vmcs, guest_main, guest_stack + sizeof(guest_stack));
	r = vmwrite(VMCS_EPML_CONTROLS, CTL_WRITE);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 12,
	       "VMWRITE of the EPML controls: VMfailValid(12) (%s)", vmx_outcome_name(r));
	r = vmread(VMCS_EPML_INDEX, &v);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 12,
	       "VMREAD of the EPML index: VMfailValid(12)");
	r = vmwrite(VMCS_EPML_POST_DESC, 0);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 12,
	       "VMWRITE of the posted-notification descriptor (2046H): VMfailValid(12) (%s)",
	       vmx_outcome_name(r));
}

/* ---- with epml=on --------------------------------------------------------- */

static void test_enumeration(void)
{
	u64 cap = 0, ctls3 = 0;
	int vec = rdmsr_safe(MSR_IA32_VMX_EPML_CAP, &cap);

	report(vec == NO_EXCEPTION && (cap & 0xf) == 9 && (cap & 0x3f00) == 0x3f00,
	       "IA32_VMX_EPML_CAP: 2 MiB buffers, reads, walk filter, EPT entry, notify, drop, "
	       "posted notification (%#llx)", (unsigned long long)cap);
	report(!(cap & ~0x3f0full), "IA32_VMX_EPML_CAP: bits 63:14 and 7:4 reserved (%#llx)",
	       (unsigned long long)cap);
	report(rdmsr_safe(MSR_IA32_VMX_PROCBASED_CTLS3, &ctls3) == NO_EXCEPTION &&
	       ctls3 == TERTIARY_ENABLE_EPML, "IA32_VMX_PROCBASED_CTLS3 allows only bit 63");
	report(rdmsr(MSR_IA32_VMX_PROCBASED_CTLS) & (1ull << 49),
	       "\"activate tertiary controls\" may be 1");
	report(wrmsr_safe(MSR_IA32_VMX_EPML_CAP, cap) == GP_VECTOR,
	       "IA32_VMX_EPML_CAP is read-only: #GP");
}

static void expect_vmfail7(const char *what)
{
	int r;

	launched = 0;
	r = vmx_enter(1);
	report(r == VMX_FAIL_VALID && vmx_insn_error() == 7,
	       "%s: VMfailValid(7) (%s)", what, vmx_outcome_name(r));
}

static void expect_entry_failure(const char *what)
{
	int r;

	launched = 0;
	r = vmx_enter(1);
	report(r == VMX_OK && vmcs_get(VMCS_EXIT_REASON) ==
	       (EXIT_REASON_ENTRY_FAILURE | EXIT_REASON_INVALID_GUEST_STATE),
	       "%s: VM-entry failure, reason 33", what);
}

static void test_entry_checks(void)
{
	setup();
	vmcs_set(VMCS_SECONDARY_CONTROLS, PROC2_ENABLE_EPT | PROC2_ENABLE_PML);
	expect_vmfail7("extended PML with stock PML");
	setup();
	vmcs_set(VMCS_TERTIARY_CONTROLS, TERTIARY_ENABLE_EPML | 1);
	expect_vmfail7("a reserved tertiary control");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | (1u << 7));
	expect_vmfail7("EPML controls bit 7 (reserved)");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_POST);
	expect_vmfail7("post notification without notify");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_NOTIFY | CTL_POST);
	vmcs_set(VMCS_EPML_POST_DESC, pa((const void *)&pi) + 32);
	expect_vmfail7("a posted-notification descriptor not 64-byte aligned");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_NOTIFY | CTL_POST);
	vmcs_set(VMCS_EPML_POST_DESC, 1ull << 52);
	expect_vmfail7("a posted-notification descriptor beyond the physical-address width");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_NOTIFY);
	vmcs_set(VMCS_EPML_POST_DESC, pa((const void *)&pi) + 32);
	launched = 0;
	report(vmx_enter(1) == VMX_OK && vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_VMCALL,
	       "without post notification field 2046H is not checked (misaligned, entry succeeds)");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_NOTIFY | CTL_POST);
	vmcs_set(VMCS_EPML_POST_DESC, pa((const void *)&pi));
	launched = 0;
	report(vmx_enter(1) == VMX_OK && vmcs_get(VMCS_EXIT_REASON) == EXIT_REASON_VMCALL,
	       "notify + post notification with an aligned descriptor: entry succeeds");
	setup();
	vmcs_set(VMCS_EPML_BUFFER1, pa(buf[1]) + 8);
	expect_vmfail7("a buffer not 4 KiB aligned");
	setup();
	vmcs_set(VMCS_EPML_DESC, pa(&desc) + 32);
	expect_vmfail7("a descriptor not 64-byte aligned");
	setup();
	vmcs_set(VMCS_EPML_SIZE, 10);
	expect_vmfail7("a buffer size above the capability (4 MiB)");
	setup();
	vmcs_set(VMCS_EPML_CONTROLS, CTL_WRITE | CTL_NOTIFY);
	vmcs_set(VMCS_EPML_VECTOR, 3);
	expect_vmfail7("notification vector 3");
	setup();
	vmcs_set(VMCS_EPML_DEST, 0x100);
	expect_vmfail7("destination APIC ID above 255");
	setup();
	vmcs_set(VMCS_SECONDARY_CONTROLS, 0);
	expect_vmfail7("extended PML without EPT");
	setup();
	vmcs_set(VMCS_EPML_INDEX, N_PER_BUF + 1);
	expect_entry_failure("EPML index above the buffer's entries");
	setup();
	vmcs_set(VMCS_EPML_ACTIVE, 2);
	expect_entry_failure("active buffer 2");
}

static void test_kinds(void)
{
	u64 f = 0, epte = 0, cr3 = read_cr3() & ~0xfffull;
	u32 n, walk;
	int hits;

	setup();
	run();					/* settle: code, stack, script */
	ept_clean(true);
	epml_reset(CTL_WRITE | CTL_READ | CTL_EPTE);
	script_clear();
	script_add(pages[0], false);
	script_add(pages[1], true);
	script_add(pages[2], false);
	script_add(pages[2], true);
	report(run() == EXIT_REASON_VMCALL, "the guest runs its script with extended PML on");
	n = vmcs_get(VMCS_EPML_INDEX);
	hits = find(0, n, pa(pages[0]), &f, &epte);
	report(hits == 1 && f == E_R,
	       "a read of a page with its accessed flag clear logs one read entry (%d, flags %#llx)",
	       hits, (unsigned long long)f);
	report(epte == pa(ept_pte(pa(pages[0]))),
	       "the entry gives the address of the page's leaf EPT entry");
	report(find(0, n, pa(pages[1]), &f, NULL) == 1 && f == (E_R | E_W),
	       "a write to a clean page logs one entry with R and W");
	report(find(0, n, pa(pages[2]), &f, NULL) == 2 && f == (E_R | E_W),
	       "a read then a write log a read entry and a write entry");
	walk = count_flag(0, n, E_WALK);
	report(walk >= 1 && find(0, n, cr3, &f, NULL) == 1 && (f & E_WALK) && (f & E_W),
	       "the guest page walk's accesses are logged as walk writes, CR3's page among them (%u)",
	       walk);
	report(*ept_pte(pa(pages[0])) & EPT_A && !(*ept_pte(pa(pages[0])) & EPT_D) &&
	       (*ept_pte(pa(pages[1])) & EPT_D), "the EPT flags are set as without logging");

	/* Page-walk filter; read logging off. */
	ept_clean(true);
	epml_reset(CTL_WRITE | CTL_FILTER);
	report(run() == EXIT_REASON_VMCALL, "the script runs again with the walk filter on");
	n = vmcs_get(VMCS_EPML_INDEX);
	report(count_flag(0, n, E_WALK) == 0 && find(0, n, cr3, &f, NULL) == 0,
	       "with the filter no entry comes from the page walk");
	report(find(0, n, pa(pages[0]), &f, NULL) == 0,
	       "with read logging off a read is not logged");
	report(find(0, n, pa(pages[1]), &f, NULL) == 1 && f == (E_R | E_W) &&
	       buf[0][2 * 0 + 1] == 0, "the write is logged, without EPT-entry address");
	report(!(*ept_pte(cr3) & (EPT_A | EPT_D)),
	       "with the filter the page walk leaves the flags of CR3's page clear (EPT entry %#llx)",
	       (unsigned long long)*ept_pte(cr3));

	/*
	 * So a data access to a page the walk also uses is logged (docs/epml.md
	 * section 6): read CR3's page as data, with the walk touching it first.
	 */
	ept_clean(true);
	epml_reset(CTL_WRITE | CTL_READ | CTL_FILTER);
	script_clear();
	script_add((void *)(uintptr_t)cr3, false);
	report(run() == EXIT_REASON_VMCALL, "the guest reads its own PML4 page as data");
	n = vmcs_get(VMCS_EPML_INDEX);
	hits = find(0, n, cr3, &f, NULL);
	report(hits == 1 && f == E_R,
	       "the data read of a page the filtered walk used first is logged, as a read (%d, %#llx)",
	       hits, (unsigned long long)f);
}

/*
 * Guest-physical mappings (-cpu ...,x-ept-gpa-cache=on, tests.list passes
 * -append gpa-cache; docs/vmx.md): after software clears a page's EPT
 * accessed flag, the next access is logged only once INVEPT has run.
 * Without the model every miss walks the EPT, INVEPT or not.
 */
static void test_gpa_mappings(void)
{
	bool cached = test_has_arg("gpa-cache");
	u64 f = 0, vpid = vmcs_get(VMCS_VPID);
	int hits;

	setup();
	epml_reset(CTL_WRITE | CTL_READ | CTL_FILTER);
	script_clear();
	script_add(pages[3], false);
	ept_clean(false);
	run();					/* the read sets the flag, logged */
	report(find(0, vmcs_get(VMCS_EPML_INDEX), pa(pages[3]), &f, NULL) == 1 && f == E_R,
	       "a first read of a page is logged");
	/* Clear the flag without INVEPT, and make the TLB miss (new VPID). */
	*ept_pte(pa(pages[3])) &= ~(EPT_A | EPT_D);
	vmcs_set(VMCS_VPID, vpid + 1);
	epml_reset(CTL_WRITE | CTL_READ | CTL_FILTER);
	run();
	hits = find(0, vmcs_get(VMCS_EPML_INDEX), pa(pages[3]), &f, NULL);
	if (cached)
		report(hits == 0 && !(*ept_pte(pa(pages[3])) & EPT_A),
		       "without INVEPT the cached guest-physical mapping is used: no flag, no entry (%d)",
		       hits);
	else
		report(hits == 1 && (*ept_pte(pa(pages[3])) & EPT_A),
		       "without the mapping cache the EPT is walked again: flag set, logged (%d)", hits);
	*ept_pte(pa(pages[3])) &= ~(EPT_A | EPT_D);	/* as software does: clear, then INVEPT */
	invept(2, 0);
	epml_reset(CTL_WRITE | CTL_READ | CTL_FILTER);
	run();
	report(find(0, vmcs_get(VMCS_EPML_INDEX), pa(pages[3]), &f, NULL) == 1 &&
	       (*ept_pte(pa(pages[3])) & EPT_A), "after INVEPT the access is logged again");
	vmcs_set(VMCS_VPID, vpid);
}

/* Write every test page once; buffer 0 is handed over, 44 entries go to buffer 1. */
static void fill_first_buffer(u32 ctl)
{
	setup();
	run();
	ept_clean(false);
	epml_reset(ctl);
	script_clear();
	for (int i = 0; i < NPAGES; i++)
		script_add(pages[i], true);
	run();
	ept_clean(false);
}

static void test_handover_and_exit(void)
{
	int seen = 0, dup = 0;
	u32 reason, stuck = N_PER_BUF - (NPAGES - N_PER_BUF);
	u64 f = 0;

	fill_first_buffer(CTL_WRITE | CTL_FILTER);
	report(desc.state[0] == 1 && desc.count[0] == N_PER_BUF && desc.handovers == 1 &&
	       vmcs_get(VMCS_EPML_ACTIVE) == 1 && vmcs_get(VMCS_EPML_INDEX) == NPAGES - N_PER_BUF,
	       "a full buffer 0 is handed over and logging goes on in buffer 1 (index %llu)",
	       (unsigned long long)vmcs_get(VMCS_EPML_INDEX));
	for (int i = 0; i < NPAGES; i++) {
		int h = find(0, N_PER_BUF, pa(pages[i]), &f, NULL) +
			find(1, NPAGES - N_PER_BUF, pa(pages[i]), &f, NULL);
		seen += h == 1;
		dup += h > 1;
	}
	report(seen == NPAGES && !dup, "the two buffers hold each written page exactly once (%d)",
	       seen);

	/* Buffer 0 not given back: buffer 1 fills, then the next write exits. */
	reason = run();
	report(reason == EXIT_REASON_PML_FULL && desc.state[1] == 1 &&
	       desc.count[1] == N_PER_BUF && desc.handovers == 2,
	       "both buffers full, drop-when-full off: PML-full exit (%u)", reason);
	report(!(*ept_pte(pa(pages[stuck])) & EPT_D) && (*ept_pte(pa(pages[stuck - 1])) & EPT_D),
	       "the write that found no room did not happen (page %u still clean)", stuck);
	desc.state[0] = 0;			/* software drained buffer 0 */
	reason = run();
	report(reason == EXIT_REASON_VMCALL && vmcs_get(VMCS_EPML_ACTIVE) == 0 &&
	       vmcs_get(VMCS_EPML_INDEX) == NPAGES - stuck &&
	       (buf[0][0] & ~0xfffull) == pa(pages[stuck]),
	       "after buffer 0 is given back the write completes into its entry 0");
}

static void test_drop(void)
{
	u32 k, written, logged = 0;
	u64 f = 0;

	fill_first_buffer(CTL_WRITE | CTL_FILTER | CTL_DROP);
	k = vmcs_get(VMCS_EPML_INDEX);
	report(run() == EXIT_REASON_VMCALL, "drop-when-full on: the guest is never stopped");
	written = N_PER_BUF - k;
	report(desc.state[1] == 1 && desc.count[1] == N_PER_BUF && desc.handovers == 2,
	       "buffer 1 was handed over full too");
	for (int i = 0; i < NPAGES; i++)
		logged += find(1, N_PER_BUF, pa(pages[i]), &f, NULL) - (i >= N_PER_BUF ? 1 : 0);
	report(logged == written && desc.dropped == NPAGES - written,
	       "logged (%u) + dropped (%llu) = %d writes: nothing is silently lost",
	       logged, (unsigned long long)desc.dropped, NPAGES);
	report(*ept_pte(pa(pages[NPAGES - 1])) & EPT_D, "a dropped write still dirtied its page");
}

#define APIC_BASE	0xfee00000ul
#define EXIT_REASON_EXTERNAL_INTERRUPT 1

static void test_notify(void)
{
	volatile u32 *apic = (volatile u32 *)APIC_BASE;
	u32 reason, info = 0;
	int exits = 0, notified = 0;

	apic[0xf0 / 4] |= 0x100;		/* software-enable the local APIC */
	setup();
	run();
	ept_clean(false);
	epml_reset(CTL_WRITE | CTL_FILTER | CTL_NOTIFY);
	vmcs_set(VMCS_EPML_DEST, apic[0x20 / 4] >> 24);
	vmcs_set(VMCS_PIN_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS,
			  PIN_EXT_INTR_EXITING));
	vmcs_set(VMCS_EXIT_CONTROLS, vmcs_get(VMCS_EXIT_CONTROLS) | EXIT_ACK_INTR_ON_EXIT);
	script_clear();
	for (int i = 0; i < NPAGES; i++)
		script_add(pages[i], true);
	/*
	 * Count the exits for the notification vector only: the firmware's PIT
	 * keeps ticking through the PIC, and a run that spans a tick (55 ms)
	 * takes one more external-interrupt exit for it.
	 */
	while ((reason = run()) == EXIT_REASON_EXTERNAL_INTERRUPT && exits < 16) {
		u32 i = vmcs_get(VMCS_EXIT_INTR_INFO);

		exits++;
		if ((i & 0xff) == NOTIFY_VECTOR) {
			info = i;
			notified++;
		}
	}
	report(reason == EXIT_REASON_VMCALL && notified == 1 && info == (0x80000000u | NOTIFY_VECTOR),
	       "the hand-over sent the notification vector to this CPU's APIC: one external-interrupt exit for it (info %#x; %d exits in all, reason %u)",
	       info, exits, reason);
	report(desc.handovers == 1, "one hand-over, one notification");
}

/*
 * Section 8.1 on one CPU: the posted notification's IPI goes to this CPU
 * (NDST = its own APIC ID) and, L2 having no posted-interrupt processing,
 * is an external-interrupt exit with vector NV.  Vector V (the EPML
 * notification vector) is posted in PIR, never sent; a hand-over that
 * finds ON or SN set posts without an IPI.
 */
#define POST_NV		0xe1

static int exits_for(u32 vector, int *others)
{
	u32 reason;
	int n = 0;

	*others = 0;
	while ((reason = run()) == EXIT_REASON_EXTERNAL_INTERRUPT) {
		u32 i = vmcs_get(VMCS_EXIT_INTR_INFO);

		if ((i & 0xff) == vector)
			n++;
		else if ((i & 0xff) == NOTIFY_VECTOR)
			(*others)++;
		if ((i & 0xff) == vector || (i & 0xff) == NOTIFY_VECTOR)
			apic_eoi();	/* acknowledged on exit: in service until EOI */
		if (n + *others > 16)
			break;
	}
	if (reason != EXIT_REASON_VMCALL)
		test_abort("unexpected exit %u", reason);
	return n;
}

static void post_run(int npages, u32 control)
{
	ept_clean(false);
	epml_reset(CTL_WRITE | CTL_FILTER | CTL_NOTIFY | CTL_POST);
	memset((void *)&pi, 0, sizeof(pi));
	pi.control = control;
	script_clear();
	for (int i = 0; i < npages; i++)
		script_add(pages[i], true);
}

static bool pir_has(u32 v)
{
	return pi.pir[v / 64] & (1ull << (v % 64));
}

static bool pir_only(u32 v)
{
	for (u32 w = 0; w < 4; w++)
		if (pi.pir[w] != (w == v / 64 ? 1ull << (v % 64) : 0))
			return false;
	return true;
}

static void test_post(void)
{
	volatile u32 *apic = (volatile u32 *)APIC_BASE;
	u32 me = apic[0x20 / 4] >> 24;
	int n, v_exits;

	apic[0xf0 / 4] |= 0x100;
	setup();
	run();
	vmcs_set(VMCS_EPML_POST_DESC, pa((const void *)&pi));
	vmcs_set(VMCS_EPML_DEST, me ^ 1);	/* not used when posting */
	vmcs_set(VMCS_PIN_BASED_CONTROLS,
		 vmx_ctls(MSR_IA32_VMX_PINBASED_CTLS, MSR_IA32_VMX_TRUE_PINBASED_CTLS,
			  PIN_EXT_INTR_EXITING));
	vmcs_set(VMCS_EXIT_CONTROLS, vmcs_get(VMCS_EXIT_CONTROLS) | EXIT_ACK_INTR_ON_EXIT);

	/* One hand-over, ON and SN clear: V posted, ON set, NV sent to NDST. */
	post_run(N_PER_BUF, PI_NV(POST_NV));
	pi.ndst = me << 8;
	n = exits_for(POST_NV, &v_exits);
	report(desc.handovers == 1 && n == 1 && v_exits == 0,
	       "a posted hand-over sends NV (E1H) to NDST: one external-interrupt exit with it, "
	       "none with the EPML vector (%d, %d)", n, v_exits);
	report(pir_only(NOTIFY_VECTOR) && (pi.control & PI_ON) && !(pi.control & PI_SN) &&
	       (pi.control >> 16) == POST_NV && pi.ndst == me << 8,
	       "PIR holds the EPML vector (41H) only, ON set, NV and NDST untouched "
	       "(control %#x)", pi.control);
	report(desc.state[0] == 1 && desc.count[0] == N_PER_BUF,
	       "the hand-over itself is as without posting (FULL, count %u)", desc.count[0]);

	/* ON still set: the next hand-over posts again without an IPI. */
	ept_clean(false);			/* the same pages again fill buffer 1 */
	n = exits_for(POST_NV, &v_exits);
	report(desc.handovers == 2 && n == 0 && v_exits == 0 && pir_only(NOTIFY_VECTOR) &&
	       (pi.control & PI_ON),
	       "ON already set: the second hand-over posts, no IPI (%llu hand-overs, %d exits)",
	       (unsigned long long)desc.handovers, n);

	/* SN set: no IPI, but the request stays in PIR; ON stays clear. */
	post_run(N_PER_BUF, PI_NV(POST_NV) | PI_SN);
	pi.ndst = me << 8;
	n = exits_for(POST_NV, &v_exits);
	report(desc.handovers == 1 && n == 0 && v_exits == 0 && pir_only(NOTIFY_VECTOR) &&
	       !(pi.control & PI_ON) && (pi.control & PI_SN),
	       "SN set: V posted in PIR, ON left clear, no IPI (control %#x, %d exits)",
	       pi.control, n);

	/* Other vectors already in PIR stay; NDST in xAPIC format (bits 15:8). */
	post_run(N_PER_BUF, PI_NV(POST_NV));
	pi.pir[3] = 1ull << 60;
	pi.ndst = me << 8 | 0xff;		/* bits 7:0 are not the xAPIC ID */
	n = exits_for(POST_NV, &v_exits);
	report(n == 1 && pi.pir[3] == 1ull << 60 && pir_has(NOTIFY_VECTOR),
	       "PIR's other bits are kept (locked OR); NDST read from bits 15:8 in xAPIC mode (%d)",
	       n);
	apic[0xf0 / 4] &= ~0x100u;
}

void test_main(void)
{
	u64 v;

	vmx_on();
	/*
	 * What to expect comes from tests.list (-append epml=absent), never
	 * from the CPU itself: a model with epml=on whose enumeration is
	 * broken (the capability MSR raising #GP) must fail here, not be
	 * taken for a model without extended PML.
	 */
	if (test_has_arg("epml=absent")) {
		info("this CPU model has no extended PML (tests.list: epml=absent): checking it is absent");
		test_absent();
		vmx_off();
		return;
	}
	if (rdmsr_safe(MSR_IA32_VMX_EPML_CAP, &v) != NO_EXCEPTION)
		test_abort("-cpu ...,epml=on but IA32_VMX_EPML_CAP raises #GP: extended PML is not enumerated");
	test_enumeration();
	test_entry_checks();
	test_kinds();
	test_gpa_mappings();
	test_handover_and_exit();
	test_drop();
	test_notify();
	test_post();
	vmx_off();
}
