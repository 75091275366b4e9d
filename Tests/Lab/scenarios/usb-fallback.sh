#!/bin/sh
# lab-description: svmm run --usb 1234:5678,fallback=storage:IMAGE --usb keyboard boots L2; L2's xhci_hcd enumerates svmm's xHCI, the emulated storage (reads the known sector) and the HID keyboard
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 500
# lab-files: Tests/Lab/scenarios/usb-fallback.l2-init
# There is no 1234:5678 in L1, so svmm says why and uses the emulated storage backed by IMAGE.
# Truth: the image written here by shell (sector 0 marker, a known sector 5), and L2's own /sys and
# /dev as its init prints them.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present

# The image: 4 MiB, sector 0 starts with the marker, sector 5 is 512 bytes of 0x5a... (md5 below).
dd if=/dev/zero of=/tmp/fallback.img bs=1M count=4 2>/dev/null
printf 'SVMM-USB-MARKER\n' | dd of=/tmp/fallback.img conv=notrunc 2>/dev/null
head -c 512 /dev/zero | tr '\0' 'Z' | dd of=/tmp/fallback.img bs=512 seek=5 conv=notrunc 2>/dev/null
want5=$(dd if=/tmp/fallback.img bs=512 skip=5 count=1 2>/dev/null | md5sum | cut -d' ' -f1)

# L2's initramfs: busybox, this scenario's init, and every module L1 loaded, in L1's order.
rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev /tmp/l2root/mods
cp /bin/busybox /tmp/l2root/bin/busybox
cp /lab/modules.order /tmp/l2root/mods/order
while read -r m; do cp "/$m" /tmp/l2root/mods/; done </lab/modules.order
cp /lab/files/usb-fallback.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-usb.cpio
check_eq l2-initramfs-built "$([ -s /tmp/l2-usb.cpio ] && echo yes || echo no)" yes

l2_run 300 /tmp/usb-l2.log svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 \
  --usb 1234:5678,fallback=storage:/tmp/fallback.img --usb keyboard
rc=$?
echo "usb-fallback: svmm run exited $rc"
grep -E '^L2-|svmm' /tmp/usb-l2.log | head -40
artifact /tmp/usb-l2.log svmm-l2-console.log

if grep -q SVMM-L2-INIT-OK /tmp/usb-l2.log; then pass l2-init-ran; else fail l2-init-ran "exit $rc; last: $(tail -n 6 /tmp/usb-l2.log | tr '\n' '|')"; fi
check_eq svmm-exit-status "$rc" 0
check_eq svmm-says-why-fallback "$(grep -c 'cannot be redirected.*using the emulated storage /tmp/fallback.img' /tmp/usb-l2.log)" 1
check_eq l2-xhci-bound "$(grep -c '^L2-PCI 0000:00:05.0 1b36:000d 0x0c0330 xhci_hcd' /tmp/usb-l2.log)" 1
check_eq l2-storage-enumerated "$(grep -c '^L2-USB .* 46f4:0002 speed 480 08/usb-storage' /tmp/usb-l2.log)" 1
check_eq l2-keyboard-enumerated "$(grep -c '^L2-USB .* 46f4:0003 speed 12 03/usbhid' /tmp/usb-l2.log)" 1
check_eq l2-sector0-marker "$(sed -n 's/^L2-SECTOR0 //p' /tmp/usb-l2.log | tr -d '\r')" SVMM-USB-MARKER
check_eq l2-sector5-md5 "$(sed -n 's/^L2-SECTOR5 //p' /tmp/usb-l2.log | tr -d '\r')" "$want5"
check_eq l2-disk-size "$(sed -n 's/^L2-SIZE //p' /tmp/usb-l2.log | tr -d '\r')" 8192
