/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Extended PML (qemu-pml's emulated extension; docs/xen-pml.md).
 */
#ifndef __ASM_X86_HVM_VMX_EPML_H__
#define __ASM_X86_HVM_VMX_EPML_H__

struct domain;
struct xen_domctl_epml_op;

int vmx_epml_domctl(struct domain *d, struct xen_domctl_epml_op *op);
/* Log-dirty is turning stock PML on for @d (paused): EPML makes way. */
void vmx_epml_logdirty(struct domain *d);
void vmx_epml_domain_destroy(struct domain *d);
/* A PML-full VM exit of @v with extended PML on. */
struct vcpu;
void vmx_epml_full(struct vcpu *v);
/* An EPT table page was freed: logged EPT-entry addresses may be stale. */
void epml_note_ptp_free(void);

/* In vmx.c (patch 0006): Xen's posted-interrupt blocking hooks for @d. */
int vmx_pi_hooks_assign_epml(struct domain *d);

/* In mm/p2m-ept.c, which owns the EPT and its lock. */
struct p2m_domain;
void ept_set_ad(struct domain *d, bool on);
void ept_clear_ad_all(struct p2m_domain *p2m);
/* Split every large leaf into 4 KiB ones; how many in *@split. */
int ept_split_all(struct p2m_domain *p2m, unsigned long *split);

/*
 * While extended PML is on for @d its EPT maps 4 KiB pages only: each
 * page has its own A/D flags, so each page's first access is logged.
 */
#define vmx_epml_4k_only(d) (!!(d)->arch.hvm.vmx.epml)

#endif /* __ASM_X86_HVM_VMX_EPML_H__ */
