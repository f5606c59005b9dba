/*
 * int vmx_enter(int launch): VMLAUNCH (launch != 0) or VMRESUME with
 * HOST_RSP/HOST_RIP pointing back here.  Returns 0 after a VM exit, or
 * 1 (VMfailInvalid) / 2 (VMfailValid) / 3 (other flags) if the instruction
 * failed.  The callee-saved registers are the host's; everything else is
 * whatever the guest left (VMX does not switch general registers).
 */
#define VMCS_HOST_RSP	0x6c14
#define VMCS_HOST_RIP	0x6c16

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
	testl	%edi, %edi
	jz	1f
	vmlaunch
	jmp	2f
1:	vmresume
2:	movl	$1, %eax
	jc	3f
	movl	$2, %eax
	jz	3f
	movl	$3, %eax
	jmp	3f
vmx_host_return:
	xorl	%eax, %eax
3:	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
