# Real-mode tiny guest for an interrupt injected through KVM_IRQFD (GSI 5 → the in-kernel PIC).
# Linked at 0x1000. It points IVT vector 0x25 at its handler, initialises the master 8259 with
# vector base 0x20 and only IRQ 5 unmasked, says "ready" on port 0x508 (the test then signals the
# irqfd), and halts with interrupts on. The handler acknowledges the PIC, reports 0x42 on 0x508 and
# stops the machine through 0x50F.
        .code16
        .intel_syntax noprefix
        .globl _start
_start:
        cli
        mov word ptr [0x25 * 4], offset handler
        mov word ptr [0x25 * 4 + 2], 0
        mov al, 0x11            # ICW1: edge, cascade, ICW4 follows
        out 0x20, al
        mov al, 0x20            # ICW2: vector base 0x20
        out 0x21, al
        mov al, 0x04            # ICW3: slave on IRQ 2
        out 0x21, al
        mov al, 0x01            # ICW4: 8086 mode
        out 0x21, al
        mov al, 0xDF            # OCW1: unmask IRQ 5 only
        out 0x21, al
        mov dx, 0x508
        mov al, 0x01
        out dx, al              # ready
        sti
idle:
        hlt
        jmp idle
handler:
        mov al, 0x20            # OCW2: non-specific EOI
        out 0x20, al
        mov dx, 0x508
        mov al, 0x42
        out dx, al
        mov dx, 0x50F
        out dx, al
        iret
