/*
 * qemu-pml: VM exits at instruction boundaries (Intel SDM Vol. 3C 26.7):
 * the monitor trap flag, the VMX-preemption timer and NMI-window exiting,
 * after the trap-like exits of APIC virtualization (vmx-apic.c) and
 * before the delivery of a virtual interrupt (30.2.2, vmx-apic.c); their
 * arming at VM entry (27.7) and the #DB for pending debug exceptions
 * (27.7.3), which VM entry raises too.
 *
 * Between instructions QEMU looks at interrupt requests.  While one of
 * these exits may become due, the vCPU keeps CPU_INTERRUPT_VMX_EVENT set
 * (qemu-pml/patches/0014); vmx_event_pending() decides, in priority order
 * MTF, preemption timer, NMI window, all ahead of NMIs and interrupts.
 *
 * MTF: the guest runs one-instruction TBs that end in the main loop, and
 * each records that an instruction started (env->vmx.xlat.insn_ran, set by
 * the TB itself).  Delivering an event through the guest IDT counts too
 * (vmx_event_delivered), so an MTF exit also follows injected events and
 * faults delivered to the guest (26.5.2).
 *
 * Preemption timer: TCG's TSC is the host's cycle counter; the deadline is
 * kept in TSC ticks and a QEMU_CLOCK_VIRTUAL timer wakes the vCPU.  The
 * timer assumes one tick per nanosecond (early on any real host) and
 * re-arms itself until the TSC reaches the deadline.
 */
#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "cpu.h"
#include "qemu-compat.h"
#include "exec/translation-block.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"
#include "vmx-internal.h"

#define MTF_CFLAGS      (CF_NO_GOTO_TB | CF_NO_GOTO_PTR | CF_COUNT_MASK)
#define MTF_CFLAGS_ONE  (CF_NO_GOTO_TB | CF_NO_GOTO_PTR | 1)   /* one insn, then main loop */

/* due_event(): what is due that is not an exit reason. */
#define VMX_EVENT_PENDING_DBG   0x10000     /* pending debug exceptions */
#define VMX_EVENT_APIC_TRAP     0x10001     /* APIC-write emulation, TPR exit */
#define VMX_EVENT_VIRQ          0x10002     /* virtual-interrupt delivery (30.2.2) */

/* ---- VMX-preemption timer (26.5.1, 27.7.4) ----------------------------- */

static GHashTable *preempt_timers;     /* CPUState * -> QEMUTimer *, BQL */

static void preempt_timer_cb(void *opaque)
{
    CPUState *cs = opaque;
    CPUX86State *env = cpu_env(cs);
    uint64_t now = cpu_get_tsc(env);
    uint64_t deadline = env->vmx.ev.preempt_deadline;

    if (!env->vmx.non_root || !env->vmx.ev.preempt_active) {
        return;
    }
    if (now < deadline) {
        QEMUTimer *t = g_hash_table_lookup(preempt_timers, cs);

        timer_mod(t, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + (deadline - now));
        return;
    }
    cpu_interrupt(cs, CPU_INTERRUPT_VMX_EVENT);
}

static void preempt_timer_arm(CPUState *cs, uint64_t ticks)
{
    QEMUTimer *t;
    BQL_LOCK_GUARD();

    if (!preempt_timers) {
        preempt_timers = g_hash_table_new(NULL, NULL);
    }
    t = g_hash_table_lookup(preempt_timers, cs);
    if (!t) {
        t = timer_new_ns(QEMU_CLOCK_VIRTUAL, preempt_timer_cb, cs);
        g_hash_table_insert(preempt_timers, cs, t);
    }
    timer_mod(t, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + ticks);
}

static void preempt_timer_stop(CPUState *cs)
{
    QEMUTimer *t;
    BQL_LOCK_GUARD();

    t = preempt_timers ? g_hash_table_lookup(preempt_timers, cs) : NULL;
    if (t) {
        timer_del(t);
    }
}

/* The timer's current value: decrements left until it reaches 0. */
static uint32_t preempt_timer_value(CPUX86State *env)
{
    uint64_t now = cpu_get_tsc(env) >> VMX_PREEMPT_RATE;
    uint64_t end = env->vmx.ev.preempt_deadline >> VMX_PREEMPT_RATE;

    return end > now ? end - now : 0;
}

/* ---- at VM entry and VM exit ------------------------------------------- */

/* 27.7: arm the boundary events of the VMCS just entered. */
void vmx_events_entry(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);
    uint32_t proc = VMCS(env, CPU_BASED_VM_EXEC_CONTROL);
    bool armed = false;

    env->vmx.xlat.insn_ran = 0;
    env->vmx.ev.mtf_pending = false;
    env->vmx.ev.pending_dbg = 0;
    env->vmx.ev.dbg_after_insn = false;
    env->vmx.xlat.in_iret = 0;
    env->vmx.ev.guest_hlt = false;
    cs->tcg_cflags &= ~MTF_CFLAGS;
    if (proc & VMX_CPU_BASED_MONITOR_TRAP_FLAG) {
        cs->tcg_cflags |= MTF_CFLAGS_ONE;
        armed = true;
    }
    if (proc & VMX_CPU_BASED_VIRTUAL_NMI_PENDING) {
        armed = true;
    }
    env->vmx.ev.preempt_active = pin & VMX_PIN_BASED_VMX_PREEMPTION_TIMER;
    if (env->vmx.ev.preempt_active) {
        uint64_t now = cpu_get_tsc(env);
        uint64_t value = (uint32_t)VMCS(env, VMX_PREEMPTION_TIMER_VALUE);

        /* It counts down each time TSC bit VMX_PREEMPT_RATE changes. */
        env->vmx.ev.preempt_deadline = ((now >> VMX_PREEMPT_RATE) + value) <<
                                    VMX_PREEMPT_RATE;
        if (env->vmx.ev.preempt_deadline > now) {
            preempt_timer_arm(cs, env->vmx.ev.preempt_deadline - now);
        }
        armed = true;
    }
    if (armed) {
        qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    }
}

/*
 * 27.7.3: pending debug exceptions loaded under blocking by MOV SS wait
 * for the first guest instruction: it runs alone in a TB that returns to
 * the main loop, and the #DB follows at the boundary after it.
 */
void vmx_events_dbg_after_insn(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    env->vmx.ev.dbg_after_insn = true;
    cs->cflags_next_tb = (cs->tcg_cflags & ~CF_COUNT_MASK) | MTF_CFLAGS_ONE;
    qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
}

/* 27.6 (type 7): VM entry injects a pending MTF VM exit. */
void vmx_events_inject_mtf(CPUX86State *env)
{
    env->vmx.ev.mtf_pending = true;
    qatomic_or(&env_cpu(env)->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
}

/* 28.3: "save VMX-preemption timer value". */
void vmx_events_save(CPUX86State *env)
{
    if (env->vmx.ev.preempt_active &&
        (VMCS(env, VM_EXIT_CONTROLS) & VMX_VM_EXIT_SAVE_VMX_PREEMPTION_TIMER)) {
        VMCS(env, VMX_PREEMPTION_TIMER_VALUE) = preempt_timer_value(env);
    }
}

/* Leaving non-root operation: nothing of this stays armed. */
void vmx_events_exit(CPUX86State *env)
{
    CPUState *cs = env_cpu(env);

    cs->tcg_cflags &= ~MTF_CFLAGS;
    vmx_withdraw_request(cs, CPU_INTERRUPT_VMX_EVENT);
    vmx_apic_exit(env);
    env->vmx.ev.dbg_after_insn = false;
    env->vmx.xlat.insn_ran = 0;
    env->vmx.ev.mtf_pending = false;
    if (env->vmx.ev.preempt_active) {
        env->vmx.ev.preempt_active = false;
        preempt_timer_stop(cs);
    }
}

/* CPU reset leaves VMX operation: no one-instruction TBs any more. */
void vmx_cpu_reset(CPUState *cs)
{
    cs->tcg_cflags &= ~MTF_CFLAGS;
}

/* After an incoming migration: re-arm what the VMCS asks for. */
void vmx_events_post_load(CPUX86State *env)
{
    uint32_t pin = VMCS(env, PIN_BASED_VM_EXEC_CONTROL);
    /* What the "cpu/vmx/events" subsection brought, kept across the re-arm. */
    uint8_t insn_ran = env->vmx.xlat.insn_ran;
    bool mtf_pending = env->vmx.ev.mtf_pending;
    uint32_t pending_dbg = env->vmx.ev.pending_dbg;
    bool dbg_after_insn = env->vmx.ev.dbg_after_insn;
    bool guest_hlt = env->vmx.ev.guest_hlt;

    if (!env->vmx.non_root) {
        return;
    }
    env->vmx.ev.preempt_active = false;
    vmx_events_entry(env);
    env->vmx.xlat.insn_ran = insn_ran;
    env->vmx.ev.mtf_pending = mtf_pending;
    env->vmx.ev.pending_dbg = pending_dbg;
    env->vmx.ev.guest_hlt = guest_hlt;
    if (dbg_after_insn) {
        vmx_events_dbg_after_insn(env);
    }
    vmx_apic_post_load(env);
    if (mtf_pending) {
        qatomic_or(&env_cpu(env)->interrupt_request, CPU_INTERRUPT_VMX_EVENT);
    }
    /*
     * The TSC deadline does not travel: a running preemption timer
     * expires at the first boundary (an early exit, never a lost one).
     */
    if (pin & VMX_PIN_BASED_VMX_PREEMPTION_TIMER) {
        env->vmx.ev.preempt_deadline = 0;
    }
}

/* ---- between instructions ---------------------------------------------- */

/* The exit due at this instruction boundary, or 0. */
static uint32_t due_event(CPUX86State *env)
{
    uint32_t proc;

    if (!env->vmx.non_root) {
        return 0;
    }
    /* Trap-like exits of the instruction itself come first (30.1.2). */
    if (vmx_apic_trap_due(env)) {
        return VMX_EVENT_APIC_TRAP;
    }
    /* Then debug traps from the previous instruction (6.9), before MTF. */
    if (env->vmx.ev.dbg_after_insn && env->vmx.xlat.insn_ran) {
        return VMX_EVENT_PENDING_DBG;
    }
    proc = VMCS(env, CPU_BASED_VM_EXEC_CONTROL);
    /* 26.5.2: after one instruction, or after delivering an event. */
    if (env->vmx.ev.mtf_pending ||
        ((proc & VMX_CPU_BASED_MONITOR_TRAP_FLAG) && env->vmx.xlat.insn_ran)) {
        return VMX_EXIT_MONITOR_TRAP;
    }
    if (env->vmx.ev.preempt_active && cpu_get_tsc(env) >= env->vmx.ev.preempt_deadline) {
        return VMX_EXIT_PREEMPTION_TIMER;
    }
    /* 26.7.6: no virtual-NMI blocking, no blocking by MOV SS (or STI). */
    if ((proc & VMX_CPU_BASED_VIRTUAL_NMI_PENDING) &&
        !(env->hflags2 & HF2_NMI_MASK) && !(env->hflags & HF_INHIBIT_IRQ_MASK)) {
        return VMX_EXIT_NMI_WINDOW;
    }
    /* 30.2.2: with the priority of an interrupt-window exit. */
    if (vmx_apic_virq_due(env)) {
        return VMX_EVENT_VIRQ;
    }
    return 0;
}

bool vmx_event_pending(CPUX86State *env)
{
    return due_event(env) != 0;
}

/*
 * Deliver pending debug exceptions @pending (DR6 format) as a #DB trap,
 * or as a VM exit when #DB is in the exception bitmap (DR6 then keeps its
 * value and the qualification has the bits).
 */
G_NORETURN void vmx_raise_pending_dbg(CPUX86State *env, uint64_t pending)
{
    CPUState *cs = env_cpu(env);

    env->vmx.ev.pending_dbg = 0;
    if (VMCS(env, EXCEPTION_BITMAP) & (1u << EXCP01_DB)) {
        env->vmx.exit.intr_info = VMX_INTR_INFO_VALID | VMX_INTR_TYPE_HW_EXCEPTION |
                                     EXCP01_DB;
        vmx_vmexit_len(env, VMX_EXIT_EXCEPTION_NMI, pending, 0, 0);
    }
    env->dr[6] = (env->dr[6] & ~0x400full) | pending;
    cs->exception_index = EXCP01_DB;
    env->error_code = 0;
    env->exception_is_int = 0;
    env->exception_next_eip = -1;
    cpu_loop_exit(cs);
}

void vmx_deliver_event(CPUX86State *env)
{
    uint32_t reason = due_event(env);

    if (reason == VMX_EVENT_APIC_TRAP) {
        vmx_apic_trap(env);
        reason = due_event(env);    /* APIC-write emulation did not exit */
    }
    if (reason == VMX_EVENT_PENDING_DBG) {
        env->vmx.ev.dbg_after_insn = false;
        if (env->vmx.ev.pending_dbg) {
            vmx_raise_pending_dbg(env, env->vmx.ev.pending_dbg);
        }
        reason = due_event(env);    /* they joined a #DB already */
    }
    if (reason == VMX_EVENT_VIRQ) {
        vmx_apic_deliver_virq(env);
        return;
    }
    if (!reason) {
        return;
    }
    /* Between instructions: the state is exact, RIP is the next one. */
    vmx_vmexit_len(env, reason, 0, 0, 0);
}

/* RDTSC/RDTSCP: a preemption timer that has expired exits before the read. */
void vmx_preempt_check(CPUX86State *env, uintptr_t ra)
{
    if (env->vmx.ev.preempt_active && cpu_get_tsc(env) >= env->vmx.ev.preempt_deadline) {
        vmx_vmexit(env, VMX_EXIT_PREEMPTION_TIMER, 0, ra);
    }
}
