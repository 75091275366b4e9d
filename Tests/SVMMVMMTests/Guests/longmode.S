# 64-bit tiny guest, linked at 0x10000 and entered in long mode on svmm's identity page tables
# (CPUSetup.enterLongMode). Exercises MMIO of widths 1/2/4/8 both ways, an unmapped 8-byte MMIO read,
# and port I/O of widths 1/2/4. Test MMIO device at 0xD0000000 (0x1000 bytes): reads answer a byte
# pattern, writes are logged. Port 0x50F stops the machine.
        .code64
        .intel_syntax noprefix
        .globl _start
_start:
        mov rbx, 0xD0000000
        # 1. stores of every width
        mov byte ptr [rbx], 0x11
        mov word ptr [rbx + 2], 0x2233
        mov dword ptr [rbx + 4], 0x44556677
        mov rax, 0x8899AABBCCDDEEFF
        mov qword ptr [rbx + 8], rax
        # 2. loads of every width, echoed to 0x20-0x2F
        mov al, byte ptr [rbx + 0x11]
        mov byte ptr [rbx + 0x20], al
        mov ax, word ptr [rbx + 0x12]
        mov word ptr [rbx + 0x22], ax
        mov eax, dword ptr [rbx + 0x14]
        mov dword ptr [rbx + 0x24], eax
        mov rax, qword ptr [rbx + 0x18]
        mov qword ptr [rbx + 0x28], rax
        # 3. unmapped MMIO reads all-ones
        mov rcx, 0xE0000000
        mov rax, qword ptr [rcx]
        mov qword ptr [rbx + 0x30], rax
        # 4. port I/O of every width from 64-bit code
        mov dx, 0x500
        mov al, 0x55
        out dx, al
        mov ax, 0x6677
        out dx, ax
        mov eax, 0x8899AABB
        out dx, eax
        # 5. done
        mov dx, 0x50F
        out dx, al
        hlt
