# 64-bit tiny guest for MSI-X through irqfds on host KVM, with a passed-through function's vector
# in the same GSI routing table. Linked at 0x10000, entered in long mode (CS 0x10).
# The test programmed the virtio function's vector 1 (queue 0) as 0xFEE00000/0x40 but left it
# MASKED, and routed a "passthrough" GSI to 0xFEE00000/0x41 with an irqfd. The guest builds gates
# for 0x40 and 0x41, enables its LAPIC, publishes the prepared request, notifies queue 0 (address
# at 0x6E00), waits for the used index (0x3002) to reach 1, then reports the PBA's first dword on
# port 0x504 (the masked vector must be pending there), says "ready" on 0x509 (the test then
# signals the passthrough eventfd), and unmasks vector 1 (its pending interrupt must now arrive).
# Each handler reports its vector on 0x508 and sets a bit in r15; once both ran, the guest reports
# the PBA again on 0x504 and stops the machine via 0x50F.
        .code64
        .intel_syntax noprefix
        .globl _start
_start:
        cli
        xor r15, r15
        lea rax, [rip + handler40]
        mov rdi, 0x7000 + 0x40 * 16
        call gate
        lea rax, [rip + handler41]
        mov rdi, 0x7000 + 0x41 * 16
        call gate
        mov rdi, 0x6F00
        mov word ptr [rdi], 0xFFF
        mov qword ptr [rdi + 2], 0x7000
        lidt [rdi]
        mov rbx, 0xFEE000F0
        mov dword ptr [rbx], 0x1FF
        mov rbx, 0x2002                 # publish the request: avail.idx = 1
        mov word ptr [rbx], 1
        mov rbx, qword ptr [0x6E00]     # notify queue 0 (BAR + 0x3000)
        mov word ptr [rbx], 0
        sti
        mov rsi, 0x3002
        mov rcx, 200000000
wait_used:
        mov ax, word ptr [rsi]
        cmp ax, 1
        je used
        pause
        dec rcx
        jnz wait_used
used:
        mov rbx, qword ptr [0x6E00]
        add rbx, 0x3000                 # PBA: BAR + 0x6000
        mov eax, dword ptr [rbx]
        mov dx, 0x504
        out dx, eax
        mov dx, 0x509
        mov al, 1
        out dx, al                      # ready: the test signals the passthrough eventfd
        mov rbx, qword ptr [0x6E00]
        add rbx, 0x1000 + 16 + 12       # MSI-X table (BAR + 0x4000), entry 1, vector control
        mov dword ptr [rbx], 0          # unmask
wait_both:
        cmp r15, 3
        je both
        hlt
        jmp wait_both
both:
        mov rbx, qword ptr [0x6E00]
        add rbx, 0x3000
        mov eax, dword ptr [rbx]
        mov dx, 0x504
        out dx, eax
        mov dx, 0x50F
        out dx, al
        hlt
gate:
        mov word ptr [rdi], ax
        mov word ptr [rdi + 2], 0x10
        mov word ptr [rdi + 4], 0x8E00
        shr rax, 16
        mov word ptr [rdi + 6], ax
        shr rax, 16
        mov dword ptr [rdi + 8], eax
        mov dword ptr [rdi + 12], 0
        ret
handler40:
        push rax
        mov al, 0x40
        or r15, 1
        jmp report
handler41:
        push rax
        mov al, 0x41
        or r15, 2
report:
        push rbx
        push rdx
        mov dx, 0x508
        out dx, al
        mov rbx, 0xFEE000B0
        mov dword ptr [rbx], 0
        pop rdx
        pop rbx
        pop rax
        iretq
