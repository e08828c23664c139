//! The first instructions: the zImage header, exception vectors, early MMU setup, and the jump
//! into Rust (`uni_xen_start` in [`super`]).
//!
//! Xen enters at `_start` in SVC mode with the MMU and caches off, interrupts masked, and the
//! device tree's physical address in r2. Before any Rust code runs, the assembly below:
//! 1. reads the virtual counter (boot-time measurement, again after steps 3 and 5 for the boot
//!    stages of `--uni-boot-info`: `uni_boot_ticks`);
//! 2. sets up the abort/undefined/IRQ stacks and the main stack;
//! 3. zeroes `.bss` (Xen copies only the file);
//! 4. builds a 1:1 first-level table with 1 MiB Normal write-back sections over the image and
//!    the device tree, discards any stale cache lines over what it wrote (.bss only: the stack
//!    was not written with the caches off), and turns on the MMU, caches and branch prediction;
//! 5. enables VFP/NEON (Rust code may use the FP registers anywhere).
//!
//! The rest of memory (RAM, the grant window, the GIC, ...) is mapped from Rust once the device
//! tree has been read ([`super::mmu`]).
//!
//! This file is A32 code (`.arm`): Xen enters a zImage in ARM state, and exceptions are taken
//! in ARM state (SCTLR.TE stays clear). Everything else, Rust's core and alloc included, is
//! Thumb-2 (`uni build` passes `-Ctarget-feature=+thumb-mode`): the linker turns the `bl`s
//! into Rust below into `blx`, which switches state.

core::arch::global_asm!(
    r#"
    .section .text.uni_head, "ax"
    .arm
    .global _start
_start:
    .rept 8
    mov r0, r0
    .endr
    b uni_reset
    .word 0x016f2818            @ zImage magic at 0x24
    .word _start                @ start address (0x28): load and entry point
    .word __image_end           @ end address (0x2c)

uni_reset:
    mrrc p15, 1, r8, r9, c14    @ CNTVCT at the first instruction
    mov r10, r2                 @ device tree
    cpsid aif

    cps #0x17                   @ abort mode
    ldr sp, =uni_exc_stack_top
    cps #0x1b                   @ undefined mode
    ldr sp, =uni_exc_stack_top
    cps #0x12                   @ IRQ mode
    ldr sp, =uni_exc_stack_top
    cps #0x13                   @ back to SVC
    ldr sp, =__stack_top

    ldr r0, =__bss_start        @ zero .bss (includes the translation tables)
    ldr r1, =__bss_end
    mov r2, #0
    mov r3, #0
1:  cmp r0, r1
    strdlo r2, r3, [r0], #8
    blo 1b
    mrrc p15, 1, r6, r7, c14    @ CNTVCT after .bss (boot stages)

    ldr r4, =uni_l1_table
    ldr r5, =0x11c0e            @ section: Normal WB-WA, shareable, RW
    ldr r0, =__image_start
    lsr r0, r0, #20
    ldr r1, =_end
    sub r1, r1, #1
    lsr r1, r1, #20
2:  orr r2, r5, r0, lsl #20     @ image, .bss and stacks
    str r2, [r4, r0, lsl #2]
    add r0, r0, #1
    cmp r0, r1
    bls 2b
    lsr r0, r10, #20            @ the device tree (two sections: it may straddle a boundary)
    orr r2, r5, r0, lsl #20
    str r2, [r4, r0, lsl #2]
    add r0, r0, #1
    cmp r0, #4096
    orrlo r2, r5, r0, lsl #20
    strlo r2, [r4, r0, lsl #2]

    ldr r0, =__bss_start        @ drop stale lines over what was written uncached (.bss; the
    ldr r1, =__bss_end          @ stack above it was not written, so no stale line can hide data)
3:  mcr p15, 0, r0, c7, c6, 1   @ DCIMVAC
    add r0, r0, #32
    cmp r0, r1
    blo 3b
    dsb sy

    mov r0, #0
    mcr p15, 0, r0, c8, c7, 0   @ TLBIALL
    mcr p15, 0, r0, c7, c5, 0   @ ICIALLU
    mcr p15, 0, r0, c7, c5, 6   @ BPIALL
    dsb sy
    isb sy
    mcr p15, 0, r0, c2, c0, 2   @ TTBCR = 0: short descriptors, TTBR0 only
    orr r0, r4, #0x6a           @ TTBR0: table walks inner/outer WB-WA, shareable
    mcr p15, 0, r0, c2, c0, 0
    mov r0, #1                  @ DACR: domain 0 client
    mcr p15, 0, r0, c3, c0, 0
    ldr r0, =uni_vectors
    mcr p15, 0, r0, c12, c0, 0  @ VBAR
    isb sy
    mrc p15, 0, r0, c1, c0, 0   @ SCTLR
    ldr r1, =0x1805             @ M | C | Z | I
    orr r0, r0, r1
    ldr r1, =0x30002002         @ A | V | TRE | AFE off
    bic r0, r0, r1
    mcr p15, 0, r0, c1, c0, 0
    isb sy

    mrc p15, 0, r0, c1, c0, 2   @ CPACR: cp10, cp11 full access
    orr r0, r0, #0xf00000
    mcr p15, 0, r0, c1, c0, 2
    isb sy
    mov r0, #0x40000000         @ FPEXC.EN
    vmsr fpexc, r0

    mrrc p15, 1, r11, r12, c14  @ CNTVCT with the MMU, caches and VFP on
    ldr r0, =uni_boot_ticks
    stm r0, {{r6, r7, r11, r12}}

    mov r0, r10
    mov r1, r8
    mov r2, r9
    bl uni_xen_start
4:  wfi
    b 4b

    .balign 32
uni_vectors:
    b uni_vec_reset
    b uni_vec_undef
    b uni_vec_svc
    b uni_vec_pabt
    b uni_vec_dabt
    b uni_vec_hyp
    b uni_vec_irq
    b uni_vec_fiq

uni_vec_reset:
    mov r0, #0
    b uni_vec_report
uni_vec_undef:
    stmfd sp!, {{r0-r12, lr}}
    mov r0, #1
    b uni_vec_common
uni_vec_svc:
    stmfd sp!, {{r0-r12, lr}}
    mov r0, #2
    b uni_vec_common
uni_vec_pabt:
    stmfd sp!, {{r0-r12, lr}}
    mov r0, #3
    b uni_vec_common
uni_vec_dabt:
    stmfd sp!, {{r0-r12, lr}}
    mov r0, #4
    b uni_vec_common
uni_vec_hyp:
    mov r0, #5
    b uni_vec_report
uni_vec_irq:
    stmfd sp!, {{r0-r12, lr}}
    mov r0, #6
    b uni_vec_common
uni_vec_fiq:
    mov r0, #7
    b uni_vec_report
uni_vec_report:
    ldr sp, =uni_exc_stack_top
    sub sp, sp, #56
uni_vec_common:
    mov r1, sp
    mrs r2, spsr
    bl uni_xen_exception
5:  wfi
    b 5b

    .section .bss.uni_l1, "aw", %nobits
    .balign 16384
    .global uni_l1_table
uni_l1_table:
    .space 16384

    .section .bss.uni_tables, "aw", %nobits
    .balign 8
    .global uni_boot_ticks
uni_boot_ticks:                 @ CNTVCT after .bss, and once the MMU and caches are on
    .space 16
    .balign 1024
    .global uni_l2_guard
uni_l2_guard:
    .space 1024
    .balign 8
uni_exc_stack:
    .space 16384
uni_exc_stack_top:
"#
);
