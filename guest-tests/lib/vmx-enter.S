/*
 * int vmx_enter(int launch): VMLAUNCH (launch != 0) or VMRESUME with
 * HOST_RSP/HOST_RIP pointing back here.  The guest's general registers
 * (all but RSP, which is in the VMCS) live in vmx_guest_regs: loaded
 * before the entry, saved at the exit.  Returns 0 after a VM exit, or
 * 1 (VMfailInvalid) / 2 (VMfailValid) / 3 (other flags) if the instruction
 * failed.
 */
#define VMCS_HOST_RSP	0x6c14
#define VMCS_HOST_RIP	0x6c16

	.data
	.balign 8
	.globl vmx_guest_regs
vmx_guest_regs:			/* rax rbx rcx rdx rsi rdi rbp r8..r15 */
	.skip 15 * 8
vmx_launch:
	.byte 0

	.text
	.code64
	.globl vmx_enter
vmx_enter:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	$VMCS_HOST_RSP, %rdx
	vmwrite	%rsp, %rdx
	leaq	vmx_host_return(%rip), %rax
	movq	$VMCS_HOST_RIP, %rdx
	vmwrite	%rax, %rdx
	movb	%dil, vmx_launch(%rip)

	movq	vmx_guest_regs + 8 * 1(%rip), %rbx
	movq	vmx_guest_regs + 8 * 2(%rip), %rcx
	movq	vmx_guest_regs + 8 * 3(%rip), %rdx
	movq	vmx_guest_regs + 8 * 4(%rip), %rsi
	movq	vmx_guest_regs + 8 * 5(%rip), %rdi
	movq	vmx_guest_regs + 8 * 6(%rip), %rbp
	movq	vmx_guest_regs + 8 * 7(%rip), %r8
	movq	vmx_guest_regs + 8 * 8(%rip), %r9
	movq	vmx_guest_regs + 8 * 9(%rip), %r10
	movq	vmx_guest_regs + 8 * 10(%rip), %r11
	movq	vmx_guest_regs + 8 * 11(%rip), %r12
	movq	vmx_guest_regs + 8 * 12(%rip), %r13
	movq	vmx_guest_regs + 8 * 13(%rip), %r14
	movq	vmx_guest_regs + 8 * 14(%rip), %r15
	movq	vmx_guest_regs + 8 * 0(%rip), %rax
	cmpb	$0, vmx_launch(%rip)
	je	1f
	vmlaunch
	jmp	2f
1:	vmresume
2:	movl	$1, %eax		/* no entry happened */
	jc	3f
	movl	$2, %eax
	jz	3f
	movl	$3, %eax
	jmp	3f

vmx_host_return:
	movq	%rax, vmx_guest_regs + 8 * 0(%rip)
	movq	%rbx, vmx_guest_regs + 8 * 1(%rip)
	movq	%rcx, vmx_guest_regs + 8 * 2(%rip)
	movq	%rdx, vmx_guest_regs + 8 * 3(%rip)
	movq	%rsi, vmx_guest_regs + 8 * 4(%rip)
	movq	%rdi, vmx_guest_regs + 8 * 5(%rip)
	movq	%rbp, vmx_guest_regs + 8 * 6(%rip)
	movq	%r8, vmx_guest_regs + 8 * 7(%rip)
	movq	%r9, vmx_guest_regs + 8 * 8(%rip)
	movq	%r10, vmx_guest_regs + 8 * 9(%rip)
	movq	%r11, vmx_guest_regs + 8 * 10(%rip)
	movq	%r12, vmx_guest_regs + 8 * 11(%rip)
	movq	%r13, vmx_guest_regs + 8 * 12(%rip)
	movq	%r14, vmx_guest_regs + 8 * 13(%rip)
	movq	%r15, vmx_guest_regs + 8 * 14(%rip)
	xorl	%eax, %eax
3:	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
