/*
 * Posted interrupts, a pending virtual interrupt and a shadow VMCS across
 * migration (guest-tests/migrate/test-vmx-migrate-pi.py).  L1 posts
 * vector 74H (PIR bit and ON set) and sends itself the notification
 * vector, which its own TPR (F0H) holds in the IRR; RVI is 51H with
 * VIRR[51H] set and VTPR 0, so the virtual interrupt is recognized but
 * L2 runs with IF = 0.  L1 prints "migrate-now" and enters L2, which
 * spins about two seconds of TSC (the host stops, migrates and restores
 * the machine then) and exits with VMCALL.  Nothing may have been
 * delivered or processed yet.  L1 lowers its TPR and resumes: the
 * notification is recognized in non-root operation, the PIR moves into
 * the VIRR, and once L2 sets IF it must take 74H, then 51H, each exactly
 * once.  L2 also reads a field of the shadow VMCS that the link pointer
 * references (VMCS shadowing).  Run alone, without a migration, it passes
 * the same way.
 */
#include "libtest.h"
#include "vmx.h"

static u8 vmcs[4096] __attribute__((aligned(4096)));
static u8 shadow[4096] __attribute__((aligned(4096)));
static u8 apic_page[4096] __attribute__((aligned(4096)));
static u8 vapic[4096] __attribute__((aligned(4096)));
static u8 rw_bitmap[4096] __attribute__((aligned(4096)));
static u8 guest_stack[8192] __attribute__((aligned(16)));
static volatile u64 pi_desc[8] __attribute__((aligned(64)));


#define VEC_RVI		0x51		/* pending in RVI/VIRR */
#define VEC_POSTED	0x74		/* posted in the PIR */
#define VEC_NOTIFY	0xe1		/* posted-interrupt notification */
#define SHADOW_MAGIC	0x5eed5eed12345678ull

#define LAPIC		((volatile u32 *)0xfee00000ul)

static volatile unsigned hits[256];
static volatile unsigned order[4], norder;
static volatile u64 l2_shadow_val, l2_shadow_flags = ~0ull;

/* L2 handlers: count, note the order, virtual EOI through the APIC-access page. */
static void l2_isr(unsigned vec)
{
	hits[vec]++;
	if (norder < 4)
		order[norder++] = vec;
	*(volatile u32 *)(apic_page + 0xb0) = 0;
}

static void isr_rvi(void) { l2_isr(VEC_RVI); }
static void isr_posted(void) { l2_isr(VEC_POSTED); }

static void __attribute__((noreturn, used)) l2_main(void)
{
	u64 t0 = rdtsc(), flags, v = 0, field = VMCS_GUEST_RIP;

	/* IF = 0: 51H is recognized and waits; the host migrates meanwhile. */
	while (rdtsc() - t0 < 4000000000ull)
		asm volatile("pause");
	asm volatile("vmcall" ::: "memory");
	/* Resumed with L1's TPR lowered: the notification has been processed. */
	asm volatile("sti; nop; nop; nop; cli" ::: "memory");
	asm volatile("vmread %2, %1; pushf; pop %0" : "=r"(flags), "=r"(v) : "r"(field) : "cc");
	l2_shadow_val = v;
	l2_shadow_flags = flags & RFLAGS_ARITH;
	asm volatile("vmcall" ::: "memory");
	for (;;)
		asm volatile("hlt");
}

static bool vbit(unsigned base, unsigned vec)
{
	return *(volatile u32 *)(vapic + base + 0x10 * (vec / 32)) & (1u << (vec % 32));
}

static bool apic_bit(unsigned base, unsigned vec)
{
	return LAPIC[(base + 0x10 * (vec / 32)) / 4] & (1u << (vec % 32));
}

static void setup(void)
{
	u32 want2 = PROC2_VIRT_APIC_ACCESSES | PROC2_APIC_REG_VIRT | PROC2_VID | PROC2_SHADOW_VMCS;

	/* The shadow VMCS the link pointer references. */
	*(u32 *)shadow = vmx_revision() | 0x80000000u;
	vmclear(pa(shadow));
	vmptrld(pa(shadow));
	vmcs_set(VMCS_GUEST_RIP, SHADOW_MAGIC);

	vmx_setup_vmcs(vmcs, l2_main, guest_stack + sizeof(guest_stack));
	vmx_setup_apicv(PIN_POSTED_INTR, 0, want2, apic_page, vapic, VEC_NOTIFY, pi_desc);
	vmcs_set(VMCS_VMREAD_BITMAP, pa(rw_bitmap));	/* all zero: nothing exits */
	vmcs_set(VMCS_VMWRITE_BITMAP, pa(rw_bitmap));
	vmcs_set(VMCS_LINK_POINTER, pa(shadow));
	vmcs_set(VMCS_GUEST_RFLAGS, 0x2);		/* IF = 0 */

	/* RVI 51H with VIRR[51H]; VTPR 0, so it is recognized at once. */
	*(volatile u32 *)(vapic + 0x200 + 0x10 * (VEC_RVI / 32)) = 1u << (VEC_RVI % 32);
	vmcs_set(VMCS_GUEST_INTR_STATUS, VEC_RVI);
	/* 74H posted: PIR bit and ON. */
	pi_desc[VEC_POSTED / 64] = 1ull << (VEC_POSTED % 64);
	pi_desc[4] = 1;
}

void test_main(void)
{
	u64 r;

	/* The 8259s off: their timer would be an external-interrupt exit. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	set_irq_handler(VEC_RVI, isr_rvi);
	set_irq_handler(VEC_POSTED, isr_posted);
	LAPIC[0xf0 / 4] = 0x1ff;			/* L1's local APIC on */
	LAPIC[0x80 / 4] = 0xf0;				/* TPR F0H: notifications wait */
	vmx_on();
	setup();
	LAPIC[0x300 / 4] = 0x40000 | VEC_NOTIFY;	/* self IPI: held in the IRR */

	printf("migrate-now\n");
	r = vmx_run(true);
	report(r == EXIT_REASON_VMCALL, "L2 ran until its VMCALL (exit %#llx, info %#llx)",
	       (unsigned long long)r, (unsigned long long)vmcs_get(VMCS_EXIT_INTR_INFO));
	report(hits[VEC_RVI] == 0 && hits[VEC_POSTED] == 0,
	       "nothing delivered while IF was 0 (51H: %u, 74H: %u)",
	       hits[VEC_RVI], hits[VEC_POSTED]);
	report((pi_desc[VEC_POSTED / 64] & (1ull << (VEC_POSTED % 64))) && (pi_desc[4] & 1),
	       "the posted interrupt is still pending: PIR bit and ON set");
	report((vmcs_get(VMCS_GUEST_INTR_STATUS) & 0xff) == VEC_RVI && vbit(0x200, VEC_RVI) &&
	       !vbit(0x200, VEC_POSTED),
	       "RVI is 51H, VIRR[51H] set, 74H not in the VIRR (guest interrupt status %#llx)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_INTR_STATUS));
	report(apic_bit(0x200, VEC_NOTIFY),
	       "the notification vector waits in L1's IRR behind its TPR");

	LAPIC[0x80 / 4] = 0;				/* the notification may come */
	vmx_skip_instruction();
	r = vmx_run(false);
	report(r == EXIT_REASON_VMCALL, "L2 took its interrupts and exited with VMCALL "
	       "(exit %#llx, not an external-interrupt exit)", (unsigned long long)r);
	report(hits[VEC_POSTED] == 1 && hits[VEC_RVI] == 1,
	       "each delivered exactly once (74H: %u, 51H: %u)",
	       hits[VEC_POSTED], hits[VEC_RVI]);
	report(norder == 2 && order[0] == VEC_POSTED && order[1] == VEC_RVI,
	       "74H before 51H (%u deliveries: %#x, %#x)", norder, order[0], order[1]);
	report(pi_desc[VEC_POSTED / 64] == 0 && !(pi_desc[4] & 1),
	       "PIR and ON cleared by posted-interrupt processing");
	report(!apic_bit(0x200, VEC_NOTIFY) && !apic_bit(0x100, VEC_NOTIFY),
	       "the notification was acknowledged and EOI'd in L1's APIC");
	report((vmcs_get(VMCS_GUEST_INTR_STATUS) & 0xffff) == 0 &&
	       !vbit(0x200, VEC_RVI) && !vbit(0x200, VEC_POSTED) &&
	       !vbit(0x100, VEC_RVI) && !vbit(0x100, VEC_POSTED),
	       "RVI, SVI, VIRR and VISR empty at the end (status %#llx)",
	       (unsigned long long)vmcs_get(VMCS_GUEST_INTR_STATUS));
	report(l2_shadow_flags == 0 && l2_shadow_val == SHADOW_MAGIC,
	       "L2's VMREAD went to the shadow VMCS of the link pointer (%#llx, flags %#llx)",
	       (unsigned long long)l2_shadow_val, (unsigned long long)l2_shadow_flags);
	vmx_off();
}
