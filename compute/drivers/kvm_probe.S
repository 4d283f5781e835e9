# Firmware image booted by LibvirtDriver.probe_kvm() as the whole "BIOS" of a throw-away guest
# (libvirt <loader type='rom'>, QEMU -bios). It proves that a guest runs ordinary 64-bit code under
# KVM, which /dev/kvm existing does not: on nested PVM hosts KVM runs firmware and mode switches
# in its instruction emulator, then stops the guest with "emulation failure" at the first SSE
# instruction, exactly where a real guest kernel dies.
#
#   reset vector (F000:FFF0) -> copy the payload from ROM to RAM at 0x7c00 (PVM's emulator loops
#   on the long-mode far jump when code and GDT sit in ROM) -> identity-map 2 MiB with PAE paging
#   -> long mode -> 2^22 rounds of SSE2 integer adds (milliseconds natively or under TCG; KVM's
#   emulator cannot run them, and would take many seconds if it could) -> "NUBO-KVM-OK" on COM1
#   -> hard reset through port 0xCF9 (the probe domain has on_reboot=destroy, so it ends).
#
# No BIOS runs: no SeaBIOS POST (5-14 s when emulated on a PVM host), no disk, no devices.
# Built into compute/drivers/kvm_probe.py as bytes; tests/compute re-assembles this file and
# compares (as --32 kvm_probe.S -o x.o && objcopy -O binary -j .text x.o kvm_probe.bin).

        .code16
        .set LOAD, 0x7c00
        .org 0
payload:
        cli
        xorw %ax, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        movw $LOAD, %sp
        movw $0x1000, %di       # page tables: PML4 0x1000, PDPT 0x2000, PD 0x3000
        movw $0x1800, %cx
        cld
        rep stosw
        movw $0x2003, 0x1000
        movw $0x3003, 0x2000
        movw $0x0083, 0x3000    # one 2 MiB page at 0, present + writable
        movl %cr4, %eax
        orl $0x620, %eax        # PAE | OSFXSR | OSXMMEXCPT
        movl %eax, %cr4
        movl $0x1000, %eax
        movl %eax, %cr3
        movl $0xC0000080, %ecx  # EFER.LME
        rdmsr
        orl $0x100, %eax
        wrmsr
        lgdtl LOAD + gdtr
        movl %cr0, %eax
        andl $~0x60000004, %eax # EM, CD, NW off
        orl $0x80000003, %eax   # PG | MP | PE
        movl %eax, %cr0
        ljmpl $0x08, $(LOAD + long64)

        .code64
long64:
        movw $0x10, %ax
        movw %ax, %ds
        movw %ax, %es
        movw %ax, %ss
        pxor %xmm0, %xmm0
        pcmpeqd %xmm1, %xmm1
        movl $0x400000, %ecx
1:      psubq %xmm1, %xmm0
        decl %ecx
        jnz 1b
        movl $(LOAD + msg), %esi
2:      movb (%rsi), %al
        testb %al, %al
        jz 3f
        movw $0x3f8, %dx
        outb %al, %dx
        incq %rsi
        jmp 2b
3:      movw $0xcf9, %dx        # PIIX3 reset control: hard reset
        movb $0x06, %al
        outb %al, %dx
4:      hlt
        jmp 4b

        .p2align 3
gdt:    .quad 0
        .quad 0x00209a0000000000 # 0x08: 64-bit code
        .quad 0x0000920000000000 # 0x10: data
gdtr:   .word gdtr - gdt - 1
        .long LOAD + gdt
msg:    .asciz "NUBO-KVM-OK\r\n"

        .code16
        .org 0xff00
copy:   cli
        movw $0xf000, %ax
        movw %ax, %ds
        xorw %ax, %ax
        movw %ax, %es
        xorw %si, %si
        movw $LOAD, %di
        movw $0x100, %cx        # 512 bytes
        cld
        rep movsw
        ljmpw $0, $LOAD

        .org 0xfff0             # reset vector
        ljmpw $0xf000, $copy
        .org 0x10000
