# 64-bit tiny guest for virtio-blk's INTx on host KVM (MSI-X never enabled), linked at 0x10000 and
# entered in long mode (CS 0x10). It masks the 8259s, points IOAPIC pin 5 (the function's INTx
# line, GSI 5) at vector 0x42 (fixed, edge, physical destination APIC 0), builds a one-gate IDT at
# 0x7000, software-enables its LAPIC, publishes the prepared request (avail.idx at 0x2002 = 1),
# notifies queue 0 at the address the test left at 0x6E00 (BAR 0 + 0x3000) and halts with
# interrupts on. The handler reads the ISR byte (BAR 0 + 0x1000; the read lowers the line) and
# reports it on port 0x508, sends EOI and stops the machine via 0x50F.
        .code64
        .intel_syntax noprefix
        .globl _start
_start:
        cli
        mov al, 0xFF                    # mask both 8259s: GSI 5 must arrive through the IOAPIC only
        out 0x21, al
        out 0xA1, al
        mov rbx, 0xFEC00000             # IOAPIC: IOREGSEL, IOWIN at +0x10
        mov dword ptr [rbx], 0x1A       # redirection entry 5, low dword
        mov dword ptr [rbx + 0x10], 0x42
        mov dword ptr [rbx], 0x1B       # high dword: destination APIC ID 0
        mov dword ptr [rbx + 0x10], 0
        lea rax, [rip + handler]
        mov rdi, 0x7000 + 0x42 * 16
        mov word ptr [rdi], ax
        mov word ptr [rdi + 2], 0x10
        mov word ptr [rdi + 4], 0x8E00
        shr rax, 16
        mov word ptr [rdi + 6], ax
        shr rax, 16
        mov dword ptr [rdi + 8], eax
        mov dword ptr [rdi + 12], 0
        mov rdi, 0x6F00
        mov word ptr [rdi], 0xFFF
        mov qword ptr [rdi + 2], 0x7000
        lidt [rdi]
        mov rbx, 0xFEE000F0
        mov dword ptr [rbx], 0x1FF
        mov rbx, 0x2002                 # publish the request the test wrote: avail.idx = 1
        mov word ptr [rbx], 1
        mov rbx, qword ptr [0x6E00]
        mov word ptr [rbx], 0
        sti
idle:
        hlt
        jmp idle
handler:
        mov rbx, qword ptr [0x6E00]
        sub rbx, 0x2000                 # notify (BAR + 0x3000) → ISR (BAR + 0x1000)
        mov al, byte ptr [rbx]
        mov dx, 0x508
        out dx, al
        mov rbx, 0xFEE000B0
        mov dword ptr [rbx], 0
        mov dx, 0x50F
        out dx, al
        iretq
