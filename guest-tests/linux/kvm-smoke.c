/*
 * kvm-smoke: a minimal VMM that the Linux test image runs on the emulated
 * CPU, so Linux KVM (the guest hypervisor) runs a nested guest of its own
 * through qemu-pml's VMX: real mode first (unrestricted guest), then
 * 32-bit protected mode reading the in-kernel local APIC (the APIC-access
 * page, when KVM uses it), then an MSI that a second thread signals while
 * the vCPU spins in its guest: with APICv KVM posts it and sends the
 * notification IPI to the CPU that runs the guest, so the emulated CPU
 * delivers it by posted-interrupt processing, without a VM exit.  Each result is a "qemu-pml-guest: kvm-smoke-KEY
 * VALUE" line on the console (guest-tests/linux/demo.py reads them).
 *
 * Built static by guest-tests/linux/build-image.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define MEM_SIZE	0x10000
#define REAL_CODE	0x1000
#define PROT_CODE	0x1100
#define PORT_REAL	0x10
#define PORT_PROT	0x11
#define PORT_DONE	0x12	/* the end of a phase (HLT would sleep in KVM's own LAPIC) */
#define PORT_READY	0x14	/* the irq phase's guest spins with IF=1 from here */
#define IRQ_CODE	0x1200
#define IRQ_HANDLER	0x1300
#define IDT_BASE	0x3000
#define GDT_BASE	0x3800
#define IRQ_VECTOR	0x40
#define STACK_TOP	0x8000
#define IRQ_COUNT	5	/* MSIs, one at a time: a posted one is likely among them */
#define IRQ_COUNTER	0x2104	/* the handler's count in guest memory */

/* 16-bit: OUT 1234H; store 5678H at 2000H, load it back, OUT it; done. */
static const uint8_t real_code[] = {
	0xb8, 0x34, 0x12,		/* mov $0x1234, %ax */
	0xe7, PORT_REAL,		/* out %ax, $0x10 */
	0xbb, 0x00, 0x20,		/* mov $0x2000, %bx */
	0xc7, 0x07, 0x78, 0x56,		/* movw $0x5678, (%bx) */
	0x8b, 0x07,			/* mov (%bx), %ax */
	0xe7, PORT_REAL,		/* out %ax, $0x10 */
	0xe6, PORT_DONE,		/* out %al, $0x12 */
};

/* 32-bit flat: OUT the local APIC's version and ID registers; done. */
static const uint8_t prot_code[] = {
	0xa1, 0x30, 0x00, 0xe0, 0xfe,	/* mov 0xfee00030, %eax */
	0xe7, PORT_PROT,		/* out %eax, $0x11 */
	0xa1, 0x20, 0x00, 0xe0, 0xfe,	/* mov 0xfee00020, %eax */
	0xe7, PORT_PROT,		/* out %eax, $0x11 */
	0xe6, PORT_DONE,		/* out %al, $0x12 */
};

/*
 * 32-bit flat, IF=1: enable the local APIC (SVR 1FFH), tell the VMM, spin
 * until the handler of vector 40H has run IRQ_COUNT times, OUT the count;
 * done.
 */
static const uint8_t irq_code[] = {
	0xc7, 0x05, 0xf0, 0x00, 0xe0, 0xfe, 0xff, 0x01, 0x00, 0x00, /* movl $0x1ff, 0xfee000f0 */
	0xe6, PORT_READY,		/* out %al, $0x14 */
	0xfb,				/* sti */
	0x83, 0x3d, 0x04, 0x21, 0x00, 0x00, IRQ_COUNT, /* 1: cmpl $IRQ_COUNT, 0x2104 */
	0x72, 0xf7,			/* jb 1b */
	0xfa,				/* cli */
	0xa1, 0x04, 0x21, 0x00, 0x00,	/* mov 0x2104, %eax */
	0xe7, PORT_PROT,		/* out %eax, $0x11 */
	0xe6, PORT_DONE,		/* out %al, $0x12 */
};

/* Vector 40H: count, EOI to the local APIC, IRET. */
static const uint8_t irq_handler[] = {
	0xff, 0x05, 0x04, 0x21, 0x00, 0x00,	/* incl 0x2104 */
	0xc7, 0x05, 0xb0, 0x00, 0xe0, 0xfe, 0x00, 0x00, 0x00, 0x00, /* movl $0, 0xfee000b0 */
	0xcf,				/* iret */
};

static void say(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const char *key, const char *fmt, ...)
{
	va_list ap;

	printf("qemu-pml-guest: kvm-smoke-%s ", key);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static int xioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int r = ioctl(fd, req, arg);

	if (r < 0) {
		say("error", "%s: %s", what, strerror(errno));
		exit(1);
	}
	return r;
}

/* The irq phase: what the MSI thread needs, and its start. */
static int vm_fd;
static pthread_t msi_thread;
static int msi_started;

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);	/* best effort (one CPU: no-op) */
}

/*
 * On the other CPU, once the guest spins: IRQ_COUNT MSIs (vector 40H, APIC
 * 0), each 100 ms after the guest's handler counted the previous one.  KVM
 * posts an MSI; whether it then sends the notification IPI depends on the
 * vCPU being in guest mode at that moment, hence several.
 */
static volatile uint32_t *irq_counter;

static void *msi_main(void *arg)
{
	struct kvm_msi msi = { .address_lo = 0xfee00000, .data = IRQ_VECTOR };
	int i, t, sent = 0;

	(void)arg;
	pin_to_cpu(1);
	for (i = 0; i < IRQ_COUNT; i++) {
		usleep(100000);
		if (ioctl(vm_fd, KVM_SIGNAL_MSI, &msi) > 0)
			sent++;
		for (t = 0; t < 5000 && *irq_counter < (uint32_t)i + 1; t++)
			usleep(1000);
	}
	say("irq-msi", "%d delivered to KVM", sent);
	return NULL;
}

/*
 * Run the vCPU until it writes PORT_DONE; print each other OUT as
 * "KEY-outN port value".  Returns the number of KVM_RUN calls, or -1 on
 * an unexpected exit.
 */
static int run_phase(int vcpu, struct kvm_run *run, const char *key)
{
	int n = 0, outs = 0;

	for (;;) {
		n++;
		xioctl(vcpu, KVM_RUN, NULL, "KVM_RUN");
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.port == PORT_DONE)
				return n;
			if (run->io.port == PORT_READY) {
				if (!msi_started &&
				    pthread_create(&msi_thread, NULL, msi_main, NULL) == 0)
					msi_started = 1;
				break;
			}
			if (run->io.direction == KVM_EXIT_IO_OUT) {
				uint32_t v = 0;
				char k[32];

				memcpy(&v, (uint8_t *)run + run->io.data_offset, run->io.size);
				snprintf(k, sizeof(k), "%s-out%d", key, ++outs);
				say(k, "port=0x%x value=0x%x", run->io.port, v);
			}
			break;
		case KVM_EXIT_INTERNAL_ERROR:
			say("error", "%s: internal error, suberror %u, %u words: %llx %llx %llx %llx",
			    key, run->internal.suberror, run->internal.ndata,
			    (unsigned long long)run->internal.data[0],
			    (unsigned long long)run->internal.data[1],
			    (unsigned long long)run->internal.data[2],
			    (unsigned long long)run->internal.data[3]);
			return -1;
		default:
			say("error", "%s: unexpected exit %u", key, run->exit_reason);
			return -1;
		}
	}
}

static void flat_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

int main(void)
{
	struct kvm_userspace_memory_region region;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_run *run;
	int kvm, vm, vcpu, size, n;
	uint8_t *mem;

	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		say("error", "/dev/kvm: %s", strerror(errno));
		return 1;
	}
	say("api", "%d", xioctl(kvm, KVM_GET_API_VERSION, NULL, "KVM_GET_API_VERSION"));
	pin_to_cpu(0);
	vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	vm_fd = vm;
	xioctl(vm, KVM_SET_TSS_ADDR, (void *)0xfffbd000ul, "KVM_SET_TSS_ADDR");
	xioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");

	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("error", "mmap: %s", strerror(errno));
		return 1;
	}
	memcpy(mem + REAL_CODE, real_code, sizeof(real_code));
	memcpy(mem + PROT_CODE, prot_code, sizeof(prot_code));
	memcpy(mem + IRQ_CODE, irq_code, sizeof(irq_code));
	memcpy(mem + IRQ_HANDLER, irq_handler, sizeof(irq_handler));
	irq_counter = (volatile uint32_t *)(mem + IRQ_COUNTER);
	{
		/* IDT entry 40H: 32-bit interrupt gate to IRQ_HANDLER in CS 08H. */
		uint8_t *g = mem + IDT_BASE + 8 * IRQ_VECTOR;

		g[0] = IRQ_HANDLER & 0xff;
		g[1] = IRQ_HANDLER >> 8;
		g[2] = 0x08;
		g[3] = 0;
		g[4] = 0;
		g[5] = 0x8e;
		g[6] = 0;
		g[7] = 0;
	}
	{
		/* The GDT the gate and IRET load CS from: null, flat code 08H, flat data 10H. */
		uint64_t gdt[3] = { 0, 0x00cf9b000000ffffull, 0x00cf93000000ffffull };

		memcpy(mem + GDT_BASE, gdt, sizeof(gdt));
	}
	region = (struct kvm_userspace_memory_region){
		.slot = 0, .guest_phys_addr = 0, .memory_size = MEM_SIZE,
		.userspace_addr = (uintptr_t)mem,
	};
	xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION");

	vcpu = xioctl(vm, KVM_CREATE_VCPU, 0, "KVM_CREATE_VCPU");
	size = xioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, NULL, "KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		say("error", "mmap kvm_run: %s", strerror(errno));
		return 1;
	}

	/* Real mode at 0000:1000. */
	xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = REAL_CODE;
	regs.rflags = 2;
	xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	n = run_phase(vcpu, run, "real");
	if (n < 0)
		return 1;
	say("real-mem", "0x%x", mem[0x2000] | mem[0x2001] << 8);

	/* 32-bit flat protected mode, no paging. */
	xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.cr0 |= 1;
	flat_segment(&sregs.cs, 0x08, 0xb);
	flat_segment(&sregs.ds, 0x10, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = PROT_CODE;
	regs.rflags = 2;
	xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	if (run_phase(vcpu, run, "prot") < 0)
		return 1;

	/* The same mode with an IDT and a stack; an MSI arrives while it spins. */
	xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	sregs.idt.base = IDT_BASE;
	sregs.idt.limit = 256 * 8 - 1;
	sregs.gdt.base = GDT_BASE;
	sregs.gdt.limit = 3 * 8 - 1;
	xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	memset(&regs, 0, sizeof(regs));
	regs.rip = IRQ_CODE;
	regs.rsp = STACK_TOP;
	regs.rflags = 2;
	xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS");
	if (run_phase(vcpu, run, "irq") < 0)
		return 1;
	if (msi_started)
		pthread_join(msi_thread, NULL);
	say("done", "ok");
	return 0;
}
