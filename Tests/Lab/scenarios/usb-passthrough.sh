#!/bin/sh
# lab-description: svmm run --device (e1000e) with --usb storage:IMAGE --usb keyboard: L2 binds both and reads the marker
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 500
# lab-files: Tests/Lab/scenarios/usb-fallback.l2-init
# The xHCI's BAR must stay clear of the passthrough MMIO window where the e1000e's BARs go.
# Truth: the image written here by shell, L2's own /sys and /dev as usb-fallback's init prints them,
# and L1's driver link of the e1000e before and after.
. /lab/lib.sh
DEV=0000:02:00.0
drv() { basename "$(readlink "/sys/bus/pci/devices/$1/driver" 2>/dev/null)" 2>/dev/null || echo none; }
check_eq e1000e-before "$(drv $DEV)" e1000e

dd if=/dev/zero of=/tmp/pt-usb.img bs=1M count=4 2>/dev/null
printf 'SVMM-USB-MARKER\n' | dd of=/tmp/pt-usb.img conv=notrunc 2>/dev/null
want5=$(dd if=/tmp/pt-usb.img bs=512 skip=5 count=1 2>/dev/null | md5sum | cut -d' ' -f1)

rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev /tmp/l2root/mods
cp /bin/busybox /tmp/l2root/bin/busybox
cp /lab/modules.order /tmp/l2root/mods/order
while read -r m; do cp "/$m" /tmp/l2root/mods/; done </lab/modules.order
cp /lab/files/usb-fallback.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-usb.cpio

svmm bind --yes $DEV >/tmp/bind.out 2>&1
check_eq bound-to-vfio "$(drv $DEV)" vfio-pci
l2_run 300 /tmp/usb-l2.log svmm run --device $DEV --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 \
  --usb storage:/tmp/pt-usb.img --usb keyboard
rc=$?
echo "usb-passthrough: svmm run exited $rc"
grep -E '^L2-|svmm' /tmp/usb-l2.log | head -40
artifact /tmp/usb-l2.log svmm-l2-console.log
check_eq svmm-exit-status "$rc" 0
check_eq l2-e1000e-bound "$(grep -c '^L2-PCI 0000:00:01.0 8086:10d3 0x020000 e1000e' /tmp/usb-l2.log)" 1
check_eq l2-xhci-bound "$(grep -c '^L2-PCI 0000:00:14.0 1b36:000d 0x0c0330 xhci_hcd' /tmp/usb-l2.log)" 1
check_eq l2-storage-enumerated "$(grep -c '^L2-USB .* 46f4:0002 speed 480 08/usb-storage' /tmp/usb-l2.log)" 1
check_eq l2-keyboard-enumerated "$(grep -c '^L2-USB .* 46f4:0003 speed 12 03/usbhid' /tmp/usb-l2.log)" 1
check_eq l2-sector0-marker "$(sed -n 's/^L2-SECTOR0 //p' /tmp/usb-l2.log | tr -d '\r')" SVMM-USB-MARKER
check_eq l2-sector5-md5 "$(sed -n 's/^L2-SECTOR5 //p' /tmp/usb-l2.log | tr -d '\r')" "$want5"
svmm restore --all >/tmp/restore.out 2>&1
check_eq e1000e-after "$(drv $DEV)" e1000e
