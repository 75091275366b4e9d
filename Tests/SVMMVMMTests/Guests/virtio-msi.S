# 64-bit tiny guest for virtio-blk's MSI-X completion interrupt on host KVM, linked at 0x10000 and
# entered in long mode (CS 0x10). It builds a one-gate IDT (vector 0x40 at 0x7000), software-enables
# its LAPIC (SVR at 0xFEE000F0), publishes the prepared request (avail.idx at 0x2002 = 1; only
# now, so the completion cannot arrive before the LAPIC accepts it), notifies queue 0 through the ioeventfd at 0xE8003000 and halts
# with interrupts on. The test has programmed MSI-X vector 1 (the queue's) as address 0xFEE00000,
# data 0x40. The handler sends EOI, reports 0x42 on port 0x508 and stops the machine via 0x50F.
        .code64
        .intel_syntax noprefix
        .globl _start
_start:
        cli
        lea rax, [rip + handler]
        mov rdi, 0x7000 + 0x40 * 16
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
        mov rbx, 0xE8003000
        mov word ptr [rbx], 0
        sti
idle:
        hlt
        jmp idle
handler:
        mov rbx, 0xFEE000B0
        mov dword ptr [rbx], 0
        mov dx, 0x508
        mov al, 0x42
        out dx, al
        mov dx, 0x50F
        out dx, al
        iretq
