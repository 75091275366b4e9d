# Real-mode tiny guest, linked at 0x1000 and entered there with CS = DS = SS = 0.
# Exercises: port I/O of widths 1/2/4 both ways, an unmapped port read, the 16550 UART at 0x3F8
# (polling LSR.THRE), and PCI enumeration of bus 0 through conf1 (0xCF8/0xCFC).
# Test device ports (Tests/SVMMVMMTests/TinyGuestTests.swift): 0x500-0x507 answer reads with a byte
# pattern, 0x508 and 0x50C take reports, a write to 0x50F stops the machine.
        .code16
        .intel_syntax noprefix
        .globl _start
_start:
        # 1. out of every width
        mov dx, 0x500
        mov al, 0x11
        out dx, al
        mov ax, 0x2233
        out dx, ax
        mov eax, 0x44556677
        out dx, eax
        # 2. in of every width at 0x504; echo each to 0x508
        mov dx, 0x504
        in al, dx
        mov dx, 0x508
        out dx, al
        mov dx, 0x504
        in ax, dx
        mov dx, 0x508
        out dx, ax
        mov dx, 0x504
        in eax, dx
        mov dx, 0x508
        out dx, eax
        # 3. an unmapped port reads all-ones
        mov dx, 0x600
        in eax, dx
        mov dx, 0x508
        out dx, eax
        # 4. print a line on the UART
        mov si, offset message
next_char:
        lodsb
        test al, al
        jz uart_done
        mov bl, al
wait_thre:
        mov dx, 0x3FD           # LSR
        in al, dx
        test al, 0x20           # THR empty
        jz wait_thre
        mov al, bl
        mov dx, 0x3F8           # THR
        out dx, al
        jmp next_char
uart_done:
        # 5. enumerate bus 0, function 0 of devices 0-31: report (device, id, class) of each present one
        xor ecx, ecx
scan:
        mov eax, ecx
        shl eax, 11
        or eax, 0x80000000
        mov dx, 0xCF8
        out dx, eax
        mov dx, 0xCFC
        in eax, dx
        cmp eax, 0xFFFFFFFF
        je absent
        mov ebx, eax
        mov dx, 0x50C
        mov eax, ecx
        out dx, eax             # device number
        mov eax, ebx
        out dx, eax             # device ID << 16 | vendor ID
        mov eax, ecx
        shl eax, 11
        or eax, 0x80000008
        mov dx, 0xCF8
        out dx, eax
        mov dx, 0xCFC
        in eax, dx
        mov dx, 0x50C
        out dx, eax             # class code << 8 | revision
absent:
        inc ecx
        cmp ecx, 32
        jb scan
        # 6. done
        mov dx, 0x50F
        mov al, 0
        out dx, al
        hlt
message:
        .asciz "Hello from a real-mode guest\n"
