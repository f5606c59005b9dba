/*
 * Extended PML with a collector on another CPU (docs/epml.md sections 7
 * and 8): the BSP runs an L2 that reads and writes a known set of pages;
 * each buffer hand-over sends the notification vector to the AP, which
 * drains the buffer and gives it back through the descriptor, never
 * touching the BSP's VMCS.  The drained entries must be exactly the
 * touched pages with the right kinds; page-walk entries appear or not as
 * the filter says; and when the collector stops draining, every entry
 * that found no room is counted as dropped.
 * Run with -smp 2 and -cpu ...,+vmx,epml=on.
 */
#include "libtest.h"
#include "vmx.h"

#define NPAGES		600
#define N_PER_BUF	256
#define VECTOR		0x41
#define AP_APIC_ID	1
#define MAX_ENTRIES	4096

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(4096)));
static u64 buf[2][512] __attribute__((aligned(4096)));
static volatile struct epml_desc desc;
static u8 pages[NPAGES][4096] __attribute__((aligned(4096)));
static volatile u8 page_written[NPAGES];

/* What the collector drained, and what it was told. */
static u64 drained[MAX_ENTRIES][2];
static volatile u32 n_drained, notified, handled;
static volatile int collector_paused, collector_stop;

/* ---- L2: touch every test page once, reading or writing it ------------- */

static void __attribute__((noreturn, used)) l2_main(void)
{
	for (;;) {
		for (int i = 0; i < NPAGES; i++) {
			if (page_written[i])
				*(volatile u64 *)pages[i] = i;
			else
				(void)*(volatile u64 *)pages[i];
		}
		asm volatile("vmcall" ::: "memory");
	}
}

/* ---- the collector (AP) ---------------------------------------------------- */

static void on_notify(void)
{
	notified++;
	apic_eoi();
}

static void drain(int b)
{
	u32 n = desc.count[b];

	for (u32 i = 0; i < n && n_drained < MAX_ENTRIES; i++) {
		drained[n_drained][0] = buf[b][2 * i];
		drained[n_drained][1] = buf[b][2 * i + 1];
		n_drained++;
	}
	asm volatile("" ::: "memory");
	desc.state[b] = 0;			/* give the buffer back */
}

static void collector(void)
{
	volatile u32 *apic = (volatile u32 *)0xfee00000ul;

	apic[0xf0 / 4] |= 0x100;
	set_irq_handler(VECTOR, on_notify);
	asm volatile("sti");
	while (!collector_stop) {
		if (notified > handled && !collector_paused) {
			for (int b = 0; b < 2; b++)
				if (desc.state[b] & 1)
					drain(b);
			handled++;
		}
		asm volatile("pause");
	}
	asm volatile("cli");
}

/* ---- the BSP ---------------------------------------------------------------- */

static int launched;

static void setup(u32 ctl)
{
	u64 eptp;

	vmx_setup_vmcs(vmcs, l2_main, guest_stack + sizeof(guest_stack));
	launched = 0;
	eptp = ept_build_identity(true);
	epml_setup_vmcs(eptp, buf[0], buf[1], &desc, 0, VECTOR, AP_APIC_ID);
	invept(2, 0);
	/* A first run with logging off: code, stack and tables get their flags. */
	if (vmx_enter(1) != VMX_OK || vmcs_get(VMCS_EXIT_REASON) != EXIT_REASON_VMCALL)
		test_abort("L2 did not run");
	vmx_skip_instruction();
	launched = 1;
	memset((void *)&desc, 0, sizeof(desc));
	n_drained = 0;
	vmcs_set(VMCS_EPML_CONTROLS, ctl);
	vmcs_set(VMCS_EPML_INDEX, 0);
	vmcs_set(VMCS_EPML_ACTIVE, 0);
}

static void clean(bool everything)
{
	u64 gpa;

	if (everything)
		for (gpa = 0; gpa < (8ull << 20); gpa += 4096)
			*ept_pte(gpa) &= ~(EPT_A | EPT_D);
	else
		for (int i = 0; i < NPAGES; i++)
			*ept_pte(pa(pages[i])) &= ~(EPT_A | EPT_D);
	invept(2, 0);
}

static u32 full_exits;

/*
 * Run L2 through its script.  A PML-full exit means both buffers were full
 * (the collector is behind): wait until it gives one back, then resume.
 */
static void run_l2(void)
{
	for (;;) {
		u32 reason, spins = 0;

		if (vmx_enter(0) != VMX_OK)
			test_abort("VM entry failed");
		reason = vmcs_get(VMCS_EXIT_REASON);
		if (reason == EXIT_REASON_VMCALL)
			break;
		if (reason != EXIT_REASON_PML_FULL)
			test_abort("unexpected exit %u", reason);
		full_exits++;
		while (desc.state[0] && desc.state[1])
			if (spins++ > 200000000)
				test_abort("the collector never gave a buffer back");
	}
	vmx_skip_instruction();
}

/* Run L2 once; wait for the collector, then take the active buffer's rest. */
static void run_and_collect(void)
{
	u32 n, spins = 0;

	run_l2();
	while (desc.state[0] || desc.state[1] || handled != notified) {
		/* A collector that never catches up is a failure, not a pass. */
		if (spins++ >= 100000000)
			test_abort("the collector did not drain the handed-over buffers "
				   "(state %u/%u, %u of %u notifications handled)",
				   desc.state[0], desc.state[1], handled, notified);
		asm volatile("pause");
	}
	n = vmcs_get(VMCS_EPML_INDEX);
	for (u32 i = 0; i < n && n_drained < MAX_ENTRIES; i++) {
		u64 *e = &buf[vmcs_get(VMCS_EPML_ACTIVE)][2 * i];
		drained[n_drained][0] = e[0];
		drained[n_drained][1] = e[1];
		n_drained++;
	}
}

static int page_of(u64 entry)
{
	u64 gpa = entry & ~0xfffull;

	if (gpa < pa(pages[0]) || gpa >= pa(pages[NPAGES]))
		return -1;
	return (int)((gpa - pa(pages[0])) / 4096);
}

/* Check the drained set against the touched set; returns mismatches. */
static int compare(u32 *walk, u32 *test_entries)
{
	static u8 seen[NPAGES];
	int bad = 0;

	memset(seen, 0, sizeof(seen));
	*walk = *test_entries = 0;
	for (u32 i = 0; i < n_drained; i++) {
		int p = page_of(drained[i][0]);
		u64 flags = drained[i][0] & 0xfff;

		*walk += !!(flags & E_WALK);
		if (p < 0)
			continue;
		(*test_entries)++;
		if (seen[p]++ || flags != (page_written[p] ? E_R | E_W : E_R) ||
		    drained[i][1] != pa(ept_pte(pa(pages[p]))))
			bad++;
	}
	for (int p = 0; p < NPAGES; p++)
		bad += !seen[p];
	return bad;
}

void test_main(void)
{
	u32 walk, test_entries;
	int bad;

	for (int i = 0; i < NPAGES; i++)
		page_written[i] = (i % 3) == 0;
	if (!smp_start_ap(AP_APIC_ID, collector))
		test_abort("the AP did not start");

	vmx_on();

	/* 1: no filter: every touched page, once, with its kind; walk entries too. */
	setup(CTL_WRITE | CTL_READ | CTL_EPTE | CTL_NOTIFY);
	clean(true);
	run_and_collect();
	bad = compare(&walk, &test_entries);
	report(!bad && test_entries == NPAGES,
	       "collected entries = touched pages with their kinds and EPT entries (%u entries, %d wrong)",
	       test_entries, bad);
	report(walk > 0, "without the filter the page walk's entries are there (%u)", walk);
	/* Two notifications may coalesce in the AP's IRR, as any fixed interrupt. */
	report(desc.handovers >= 2 && notified >= 1 && notified <= desc.handovers &&
	       handled == notified,
	       "the hand-overs notified the collector, which drained them (%llu hand-overs, %u interrupts)",
	       (unsigned long long)desc.handovers, notified);
	report(desc.dropped == 0, "nothing dropped with drop-when-full off (%u PML-full exits while the collector caught up)",
	       full_exits);

	/* 2: the filter removes the walk's entries and nothing else. */
	notified = handled = 0;
	setup(CTL_WRITE | CTL_READ | CTL_EPTE | CTL_NOTIFY | CTL_FILTER);
	clean(true);
	run_and_collect();
	bad = compare(&walk, &test_entries);
	report(!bad && test_entries == NPAGES && walk == 0,
	       "with the filter: the touched pages exactly, no walk entry (%u, %d wrong, %u walk)",
	       test_entries, bad, walk);

	/* 3: the collector stops draining: both buffers fill, the rest is dropped. */
	notified = handled = 0;
	collector_paused = 1;
	setup(CTL_WRITE | CTL_READ | CTL_EPTE | CTL_NOTIFY | CTL_FILTER | CTL_DROP);
	clean(false);
	run_l2();
	for (int b = 0; b < 2; b++) {
		for (u32 i = 0; i < desc.count[b] && n_drained < MAX_ENTRIES; i++) {
			drained[n_drained][0] = buf[b][2 * i];
			drained[n_drained][1] = buf[b][2 * i + 1];
			n_drained++;
		}
	}
	report(desc.state[0] == 1 && desc.state[1] == 1 && desc.handovers == 2,
	       "with no draining both buffers were handed over and stay full");
	report(n_drained == 2 * N_PER_BUF && desc.dropped == NPAGES - 2 * N_PER_BUF,
	       "dropped (%llu) = touched pages that found no room (%d - %u logged)",
	       (unsigned long long)desc.dropped, NPAGES, n_drained);
	bad = compare(&walk, &test_entries);
	report(test_entries == 2 * N_PER_BUF && bad == (int)desc.dropped,
	       "the logged entries are touched pages, the missing ones are exactly the dropped count");
	for (u32 spins = 0; !notified && spins < 200000000; spins++)
		asm volatile("pause");		/* the AP takes the interrupt when it runs */
	report(notified >= 1 && notified <= 2,
	       "the two hand-overs interrupted the paused collector (%u interrupts)", notified);

	collector_stop = 1;
	vmx_off();
}
