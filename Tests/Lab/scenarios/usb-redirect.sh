#!/bin/sh
# lab-description: svmm run --usb 46f4:0001 boots L2 with L1's usb-storage redirected through libusb; L2's xhci_hcd enumerates it and reads the known sector from /dev/sda; L1's usb-storage is bound again after
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 500
# lab-files: Tests/Lab/scenarios/usb-redirect.l2-init
# Truth: L1's /sys (driver, speed) and dd of L1's /dev/sda before svmm runs; L2's own /sys and /dev
# as its init prints them; L1's /sys again after svmm exits.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present

lab_wait 20 lab_usb_stick_ready
dev=$(lab_usb_stick)
disk=$(lab_usb_disk_of "$dev")
iface=/sys/bus/usb/devices/$dev:1.0
_drv() { if [ -L $iface/driver ]; then basename "$(readlink $iface/driver)"; else echo none; fi; }
check_eq l1-driver-before "$(_drv)" usb-storage
[ -n "$disk" ] && echo 0 >/sys/block/$disk/queue/read_ahead_kb
# One read of the first 4 KiB is the truth for both sectors (one run saw a second dd come back empty).
# L1's disk node has been seen to be briefly unopenable here (TCG under load); retry, and show dmesg.
_head() { disk=$(lab_usb_disk_of "$(lab_usb_stick)") && dd if=/dev/$disk of=/tmp/l1-head.bin bs=4096 count=1 2>/dev/null && [ "$(wc -c </tmp/l1-head.bin)" = 4096 ]; }
lab_wait 30 _head || { lab_log "L1 truth read failed; disk '$disk'"; dmesg | tail -n 15 | while read -r l; do lab_log "dmesg: $l"; done; }
check_eq l1-truth-read-4k "$(wc -c </tmp/l1-head.bin 2>/dev/null)" 4096
want0=$(head -c 15 /tmp/l1-head.bin)
want5=$(dd if=/tmp/l1-head.bin bs=512 skip=5 count=1 2>/dev/null | md5sum | cut -d' ' -f1)
want_size=$(cat /sys/block/$disk/size)
want_speed=$(cat /sys/bus/usb/devices/$dev/speed)
check_eq l1-truth-marker "$want0" SVMM-USB-MARKER
sync
_idle() { [ "$(cat /sys/block/$disk/inflight | tr -s ' ' | sed 's/^ //')" = "0 0" ]; }
lab_wait 10 _idle

rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev /tmp/l2root/mods
cp /bin/busybox /tmp/l2root/bin/busybox
cp /lab/modules.order /tmp/l2root/mods/order
while read -r m; do cp "/$m" /tmp/l2root/mods/; done </lab/modules.order
cp /lab/files/usb-redirect.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-usb.cpio

l2_run 300 /tmp/usb-l2.log svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 --usb 46f4:0001
rc=$?
echo "usb-redirect: svmm run exited $rc"
grep -E '^L2-|svmm' /tmp/usb-l2.log | head -40
artifact /tmp/usb-l2.log svmm-l2-console.log

if grep -q SVMM-L2-INIT-OK /tmp/usb-l2.log; then pass l2-init-ran; else fail l2-init-ran "exit $rc; last: $(tail -n 6 /tmp/usb-l2.log | tr '\n' '|')"; fi
check_eq svmm-exit-status "$rc" 0
check_eq l2-xhci-bound "$(grep -c '^L2-PCI 0000:00:05.0 1b36:000d 0x0c0330 xhci_hcd' /tmp/usb-l2.log)" 1
check_eq l2-storage-enumerated "$(grep -c "^L2-USB .* 46f4:0001 speed $want_speed 08/usb-storage" /tmp/usb-l2.log)" 1
check_eq l2-sector0-marker "$(sed -n 's/^L2-SECTOR0 //p' /tmp/usb-l2.log | tr -d '\r')" "$want0"
check_eq l2-sector5-md5 "$(sed -n 's/^L2-SECTOR5 //p' /tmp/usb-l2.log | tr -d '\r')" "$want5"
check_eq l2-disk-size "$(sed -n 's/^L2-SIZE //p' /tmp/usb-l2.log | tr -d '\r')" "$want_size"

_rebound() { [ "$(_drv)" = usb-storage ]; }
lab_wait 20 _rebound
check_eq l1-driver-after "$(_drv)" usb-storage
lab_wait 20 lab_usb_stick_ready
d2=$(lab_usb_disk_of "$dev")
check_eq l1-disk-readable-after "$([ -n "$d2" ] && dd if=/dev/$d2 bs=512 count=1 2>/dev/null | head -c 15)" SVMM-USB-MARKER
