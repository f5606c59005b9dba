/*
 * qemu-pml: TCG helper declarations for the VMX instructions.  Included
 * from target/i386/helper.h (qemu-pml/patches/0005), hence no guard.
 */
DEF_HELPER_3(vmx_vmxon, void, env, tl, i32)
DEF_HELPER_1(vmx_vmxoff, void, env)
DEF_HELPER_3(vmx_vmclear, void, env, tl, i32)
DEF_HELPER_3(vmx_vmptrld, void, env, tl, i32)
DEF_HELPER_3(vmx_vmptrst, void, env, tl, i32)
DEF_HELPER_3(vmx_vmread, void, env, tl, i32)
DEF_HELPER_3(vmx_vmwrite, void, env, tl, i32)
DEF_HELPER_1(vmx_vmcall, void, env)
DEF_HELPER_2(vmx_vmlaunch, void, env, i32)
DEF_HELPER_2(vmx_read_cr, tl, env, i32)
DEF_HELPER_3(vmx_invept, void, env, tl, i32)
DEF_HELPER_3(vmx_invvpid, void, env, tl, i32)
DEF_HELPER_2(vmx_rdtscp, void, env, i32)
DEF_HELPER_2(vmx_rdrand, void, env, i32)
DEF_HELPER_5(vmx_invpcid, void, env, tl, i32, i32, tl)
