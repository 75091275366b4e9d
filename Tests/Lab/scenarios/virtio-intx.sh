#!/bin/sh
# lab-description: svmm run --disk with L2 booted pci=nomsi: virtio-blk interrupts on its INTx line (GSI 5 through the IOAPIC, lowered by the ISR read); L2 mounts the disk, reads and writes
# lab-machine: standard
# lab-needs: l2
# lab-modules: virtio_pci virtio_blk loop
# lab-files: Tests/Lab/scenarios/virtio-intx.l2-init
# lab-timeout: 600
# Linux's virtio-pci uses MSI-X when it can; pci=nomsi makes it fall back to INTx (vp_find_vqs →
# vp_find_vqs_intx), so this is the INTx path end to end: svmm's interrupt line register (5), the
# router's level on GSI 5, L2's IOAPIC, the ISR read in vp_interrupt. Truth: L2's /proc/interrupts
# and /sys (printed by its init), and L1's mount of the image afterwards.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present

KNOWN="svmm-virtio-intx-known-$(cut -d' ' -f1 /proc/uptime)"
IMG=/tmp/virtio-intx.img
known_image $IMG 16 "$KNOWN"

R=/tmp/l2root
rm -rf $R && mkdir -p $R/bin $R/proc $R/sys $R/dev $R/mnt $R/tmp
cp /bin/busybox $R/bin/busybox
grep -E '/(virtio[a-z_]*|virtio_pci[a-z_]*|ext4|jbd2|mbcache|crc16|crc32c[a-z_]*|libcrc32c)\.ko' /lab/modules.order >$R/modules.order || true
while read -r ko; do mkdir -p "$R/$(dirname "$ko")"; cp "/$ko" "$R/$ko"; done <$R/modules.order
cp /lab/files/virtio-intx.l2-init $R/init
chmod 755 $R/init
(cd $R && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-intx.cpio

timeout -s TERM 150 svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-intx.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq pci=nomsi quiet" --mem 256M --cpus 1 \
  --disk $IMG </dev/null >/tmp/svmm-intx.log 2>&1
rc=$?
artifact /tmp/svmm-intx.log svmm-virtio-intx-console.log
check_eq svmm-exit-status "$rc" 0
if grep -q SVMM-L2-INIT-OK /tmp/svmm-intx.log; then pass l2-init-ran; else fail l2-init-ran "last lines: $(tail -n 8 /tmp/svmm-intx.log | tr '\n' '|')"; fi
check_eq l2-virtio-blk-bound-on-irq-5 "$(grep -c '^L2-PCI 0000:00:08.0 1af4:1042 0x018000 virtio-pci irq 5' /tmp/svmm-intx.log)" 1
check_eq l2-read-known-file "$(sed -n 's/^L2-KNOWN \(.*\)/\1/p' /tmp/svmm-intx.log | tr -d '\r')" "$KNOWN"
check_eq l2-unmounted-cleanly "$(grep -c '^L2-UMOUNT-OK' /tmp/svmm-intx.log)" 1
check_eq l2-disk-read "$(grep -c '^L2-VDA-READ ok' /tmp/svmm-intx.log)" 1
# No MSI anywhere; the virtio line is an IO-APIC line that counted interrupts.
check_eq l2-no-msi-lines "$(grep '^L2-INTLINE' /tmp/svmm-intx.log | grep -c MSI)" 0
line=$(grep '^L2-INTLINE' /tmp/svmm-intx.log | grep virtio | head -n 1)
count=$(echo "$line" | awk '{print $3}')
case "$line" in *IO-APIC*) pass l2-virtio-on-ioapic ;; *) fail l2-virtio-on-ioapic "virtio line: '$line'" ;; esac
if [ -n "$count" ] && [ "$count" -gt 0 ] 2>/dev/null; then pass l2-virtio-intx-counted; else fail l2-virtio-intx-counted "virtio line: '$line'"; fi
if mount -o loop,ro -t ext2 $IMG /tmp/vd; then
  check_eq image-holds-l2-file "$(cut -d' ' -f1 /tmp/vd/new.txt 2>/dev/null)" written-by-l2
  umount /tmp/vd
else
  fail image-holds-l2-file "cannot mount the image after L2"
fi
