// SPDX-License-Identifier: GPL-2.0-only
/*
 * epml_dom0: the dom0 kernel half of extended PML's posted path (qemu-pml
 * issue 15; docs/xen-pml.md, "dom0 drains the log"; the interface is
 * include/epml-dom0.h).
 *
 * With "post notification" (docs/epml.md 8.1) a full log buffer is
 * announced by a vector posted to a dom0 vCPU: the logging CPU sets the
 * vector's bit in the vCPU's posted-interrupt descriptor and the vCPU takes
 * it as an ordinary interrupt, without a VM exit of anyone.  For Linux to
 * handle it the vector must be one of its own.  This module takes an
 * interrupt from the x86 vector domain, pinned to one CPU, and reports its
 * vector; the handler counts and wakes whoever reads /dev/epml (xen-epml).
 *
 * It also provides the log buffers and descriptors in dom0 memory, so that
 * xen-epml drains them in place and Xen only arms the hardware.
 *
 * Module parameter: cpu= the collector CPU (default 0).
 */
#include <linux/atomic.h>
#include <linux/cpumask.h>
#include <linux/fs.h>
#include <linux/gfp.h>
#include <linux/interrupt.h>
#include <linux/irq.h>
#include <linux/irqdomain.h>
#include <linux/ktime.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/poll.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <asm/hw_irq.h>
#include <asm/irq_vectors.h>
#include <xen/xen.h>
#include <xen/xen-ops.h>
#include <asm/xen/hypervisor.h>

#include "epml-dom0.h"

static unsigned int cpu;
module_param(cpu, uint, 0444);
MODULE_PARM_DESC(cpu, "collector CPU: the vector is this CPU's");

static int epml_virq = -1;
static atomic64_t epml_notifications = ATOMIC64_INIT(0);
static atomic64_t epml_last_ns = ATOMIC64_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(epml_wait);

/* The buffer sets: allocated once, freed at unload (Xen holds them). */
struct epml_set {
	struct page *buf[2];
	struct page *desc;
};
static DEFINE_MUTEX(epml_mutex);
static struct epml_set *epml_sets;
static unsigned int epml_nr_vcpus, epml_order;

static irqreturn_t epml_interrupt(int irq, void *unused)
{
	atomic64_set(&epml_last_ns, ktime_get_ns());
	atomic64_inc(&epml_notifications);
	wake_up_interruptible(&epml_wait);
	return IRQ_HANDLED;
}

static void epml_info(struct epml_dom0_info *info)
{
	struct irq_cfg *cfg = irqd_cfg(irq_get_irq_data(epml_virq));

	memset(info, 0, sizeof(*info));
	info->notifications = atomic64_read(&epml_notifications);
	info->last_ns = atomic64_read(&epml_last_ns);
	info->vector = cfg ? cfg->vector : 0;
	info->cpu = cpu;
	info->xen_vcpu = xen_vcpu_nr(cpu);
	mutex_lock(&epml_mutex);
	info->nr_vcpus = epml_nr_vcpus;
	info->order = epml_order;
	info->stride = epml_sets ? EPML_DOM0_STRIDE(epml_order) : 0;
	mutex_unlock(&epml_mutex);
}

/* ---- buffers --------------------------------------------------------------- */

static void epml_free_sets(void)
{
	unsigned int i;

	for (i = 0; epml_sets && i < epml_nr_vcpus; i++) {
		if (epml_sets[i].buf[0])
			__free_pages(epml_sets[i].buf[0], epml_order);
		if (epml_sets[i].buf[1])
			__free_pages(epml_sets[i].buf[1], epml_order);
		if (epml_sets[i].desc)
			__free_page(epml_sets[i].desc);
	}
	kfree(epml_sets);
	epml_sets = NULL;
	epml_nr_vcpus = 0;
	epml_order = 0;
}

static int epml_alloc_sets(unsigned int nr, unsigned int order)
{
	unsigned int i;

	epml_sets = kcalloc(nr, sizeof(*epml_sets), GFP_KERNEL);
	if (!epml_sets)
		return -ENOMEM;
	epml_nr_vcpus = nr;
	epml_order = order;
	for (i = 0; i < nr; i++) {
		struct epml_set *s = &epml_sets[i];

		s->buf[0] = alloc_pages(GFP_KERNEL | __GFP_ZERO, order);
		s->buf[1] = alloc_pages(GFP_KERNEL | __GFP_ZERO, order);
		s->desc = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!s->buf[0] || !s->buf[1] || !s->desc) {
			epml_free_sets();
			return -ENOMEM;
		}
	}
	return 0;
}

static long epml_ioc_alloc(struct epml_dom0_alloc __user *uarg)
{
	struct epml_dom0_alloc a;
	u64 __user *out;
	unsigned int i;
	long rc = 0;

	if (copy_from_user(&a, uarg, sizeof(a)))
		return -EFAULT;
	if (!a.nr_vcpus || a.nr_vcpus > EPML_DOM0_MAX_VCPUS ||
	    a.order > EPML_DOM0_MAX_ORDER)
		return -EINVAL;
	out = u64_to_user_ptr(a.frames);

	mutex_lock(&epml_mutex);
	if (epml_sets && (a.nr_vcpus != epml_nr_vcpus || a.order != epml_order))
		rc = -EBUSY;
	else if (!epml_sets)
		rc = epml_alloc_sets(a.nr_vcpus, a.order);
	for (i = 0; !rc && i < a.nr_vcpus; i++) {
		/* dom0 is PVH: its frame numbers are its guest frames. */
		u64 f[3] = { page_to_pfn(epml_sets[i].buf[0]),
			     page_to_pfn(epml_sets[i].buf[1]),
			     page_to_pfn(epml_sets[i].desc) };

		if (copy_to_user(out + 3 * i, f, sizeof(f)))
			rc = -EFAULT;
	}
	mutex_unlock(&epml_mutex);
	return rc;
}

/* ---- /dev/epml ---------------------------------------------------------------- */

struct epml_file {
	u64 seen;               /* notifications the reader has been told of */
};

static int epml_open(struct inode *inode, struct file *file)
{
	struct epml_file *f = kzalloc(sizeof(*f), GFP_KERNEL);

	if (!f)
		return -ENOMEM;
	f->seen = atomic64_read(&epml_notifications);
	file->private_data = f;
	return 0;
}

static int epml_release(struct inode *inode, struct file *file)
{
	kfree(file->private_data);
	return 0;
}

/* Block until a notification the caller has not seen; return the info. */
static ssize_t epml_read(struct file *file, char __user *buf, size_t len, loff_t *ppos)
{
	struct epml_file *f = file->private_data;
	struct epml_dom0_info info;
	int rc;

	if (len < sizeof(info))
		return -EINVAL;
	if (atomic64_read(&epml_notifications) == f->seen) {
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		rc = wait_event_interruptible(epml_wait,
				atomic64_read(&epml_notifications) != f->seen);
		if (rc)
			return rc;
	}
	epml_info(&info);
	f->seen = info.notifications;
	if (copy_to_user(buf, &info, sizeof(info)))
		return -EFAULT;
	return sizeof(info);
}

static __poll_t epml_poll(struct file *file, poll_table *wait)
{
	struct epml_file *f = file->private_data;

	poll_wait(file, &epml_wait, wait);
	return atomic64_read(&epml_notifications) != f->seen ? EPOLLIN | EPOLLRDNORM : 0;
}

static long epml_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct epml_dom0_info info;

	switch (cmd) {
	case EPML_DOM0_IOC_ALLOC:
		return epml_ioc_alloc((void __user *)arg);
	case EPML_DOM0_IOC_INFO:
		epml_info(&info);
		return copy_to_user((void __user *)arg, &info, sizeof(info)) ? -EFAULT : 0;
	}
	return -ENOTTY;
}

/* Map the sets, in the layout of include/epml-dom0.h, from offset 0. */
static int epml_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start, at = vma->vm_start;
	unsigned long buf_bytes;
	unsigned int i, b;
	int rc = 0;

	mutex_lock(&epml_mutex);
	buf_bytes = PAGE_SIZE << epml_order;
	if (!epml_sets || vma->vm_pgoff ||
	    len > (unsigned long)epml_nr_vcpus * EPML_DOM0_STRIDE(epml_order) * PAGE_SIZE) {
		rc = -EINVAL;
		goto out;
	}
	for (i = 0; i < epml_nr_vcpus && at < vma->vm_end; i++) {
		for (b = 0; b < 2 && at < vma->vm_end; b++) {
			rc = remap_pfn_range(vma, at, page_to_pfn(epml_sets[i].buf[b]),
					     min(buf_bytes, vma->vm_end - at), vma->vm_page_prot);
			if (rc)
				goto out;
			at += buf_bytes;
		}
		if (at >= vma->vm_end)
			break;
		rc = remap_pfn_range(vma, at, page_to_pfn(epml_sets[i].desc),
				     PAGE_SIZE, vma->vm_page_prot);
		if (rc)
			goto out;
		at += PAGE_SIZE;
	}
out:
	mutex_unlock(&epml_mutex);
	return rc;
}

static const struct file_operations epml_fops = {
	.owner = THIS_MODULE,
	.open = epml_open,
	.release = epml_release,
	.read = epml_read,
	.poll = epml_poll,
	.unlocked_ioctl = epml_ioctl,
	.mmap = epml_mmap,
	.llseek = noop_llseek,
};

static struct miscdevice epml_misc = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "epml",
	.fops = &epml_fops,
};

/* ---- the vector ------------------------------------------------------------------ */

/*
 * An interrupt of the x86 vector domain with no device behind it: its
 * vector on @cpu is what Xen posts.  Edge flow, acknowledged at the local
 * APIC (with virtual-interrupt delivery: a virtualized EOI).
 */
static int epml_vector_setup(void)
{
	struct irq_alloc_info info;
	struct irq_cfg *cfg;
	int virq, rc;

	memset(&info, 0, sizeof(info));
	info.mask = cpumask_of(cpu);
	virq = __irq_domain_alloc_irqs(irq_get_default_host(), -1, 1, NUMA_NO_NODE,
				       &info, false, NULL);
	if (virq < 0)
		return virq;
	irq_set_handler(virq, handle_edge_irq);
	irq_modify_status(virq, IRQ_NOREQUEST | IRQ_NOAUTOEN, IRQ_NO_BALANCING);
	rc = request_irq(virq, epml_interrupt, 0, "epml-notify", NULL);
	if (rc) {
		irq_dispose_mapping(virq);
		return rc;
	}
	rc = irq_set_affinity(virq, cpumask_of(cpu));
	if (rc) {
		free_irq(virq, NULL);
		irq_dispose_mapping(virq);
		return rc;
	}
	epml_virq = virq;
	cfg = irqd_cfg(irq_get_irq_data(virq));
	pr_info("epml_dom0: notification vector %#x on CPU %u (Xen vCPU %u, APIC ID %#x), irq %d\n",
		cfg->vector, cpu, xen_vcpu_nr(cpu), cfg->dest_apicid, virq);
	return 0;
}

static int __init epml_init(void)
{
	int rc;

	if (!xen_initial_domain() || !xen_hvm_domain())
		return -ENODEV;         /* posting needs dom0 in non-root: PVH */
	if (cpu >= nr_cpu_ids || !cpu_online(cpu))
		return -EINVAL;
	rc = epml_vector_setup();
	if (rc)
		return rc;
	rc = misc_register(&epml_misc);
	if (rc) {
		free_irq(epml_virq, NULL);
		irq_dispose_mapping(epml_virq);
	}
	return rc;
}

static void __exit epml_exit(void)
{
	misc_deregister(&epml_misc);
	free_irq(epml_virq, NULL);
	irq_dispose_mapping(epml_virq);
	epml_free_sets();
}

module_init(epml_init);
module_exit(epml_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("extended PML: posted notification vector and log buffers for dom0");
