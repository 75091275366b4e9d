# 64-bit tiny guest for virtio-blk on host KVM, linked at 0x10000 and entered in long mode.
# The test (VirtioTinyGuestTests) has already set the device up and put one IN request in the
# queue (rings at 0x1000/0x2000/0x3000). The guest notifies queue 0 with a 16-bit store to the
# notify register, whose address the test left at 0x6E00 (BAR 0 + 0x3000, a KVM ioeventfd: the
# BAR is where the test put it, maybe moved since attach), polls the used index at 0x3002
# until it reads 1, reports the loop count left (0 = gave up) on port 0x508 and stops via 0x50F.
        .code64
        .intel_syntax noprefix
        .globl _start
_start:
        mov rbx, qword ptr [0x6E00]
        mov word ptr [rbx], 0
        mov rsi, 0x3002
        mov rcx, 200000000
wait_used:
        mov ax, word ptr [rsi]
        cmp ax, 1
        je done
        pause
        dec rcx
        jnz wait_used
done:
        mov eax, ecx
        mov dx, 0x508
        out dx, eax
        mov dx, 0x50F
        out dx, al
        hlt
