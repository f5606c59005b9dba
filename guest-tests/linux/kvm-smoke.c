/*
 * kvm-smoke: a minimal VMM that the Linux test image runs on the emulated
 * CPU, so Linux KVM (the guest hypervisor) runs a nested guest of its own
 * through qemu-pml's VMX: real mode first (unrestricted guest), then
 * 32-bit protected mode reading the in-kernel local APIC (the APIC-access
 * page, when KVM uses it).  Each result is a "qemu-pml-guest: kvm-smoke-KEY
 * VALUE" line on the console (guest-tests/linux/demo.py reads them).
 *
 * Built static by guest-tests/linux/build-image.sh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <linux/kvm.h>
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
			if (run->io.direction == KVM_EXIT_IO_OUT) {
				uint32_t v = 0;
				char k[32];

				memcpy(&v, (uint8_t *)run + run->io.data_offset, run->io.size);
				snprintf(k, sizeof(k), "%s-out%d", key, ++outs);
				say(k, "port=0x%x value=0x%x", run->io.port, v);
			}
			break;
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
	vm = xioctl(kvm, KVM_CREATE_VM, 0, "KVM_CREATE_VM");
	xioctl(vm, KVM_SET_TSS_ADDR, (void *)0xfffbd000ul, "KVM_SET_TSS_ADDR");
	xioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP");

	mem = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		say("error", "mmap: %s", strerror(errno));
		return 1;
	}
	memcpy(mem + REAL_CODE, real_code, sizeof(real_code));
	memcpy(mem + PROT_CODE, prot_code, sizeof(prot_code));
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
	say("done", "ok");
	return 0;
}
