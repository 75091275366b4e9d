#!/bin/sh
# lab-description: usb-hotplug, but the device is reauthorized with L1's driver autoprobe off, so no kernel driver binds and no bind uevent comes: svmm reconnects it on the interface's add; L2 reads the marker again
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 600
# lab-files: Tests/Lab/scenarios/usb-hotplug.l2-init
# Truth: L1's /sys (the device, its interface's driver) and dd of L1's disk before svmm runs; L2's
# own /sys/bus/usb/devices, /dev and dmesg as its init prints them; L1's /sys again after svmm exits.
# The unplug is `echo 0 > /sys/bus/usb/devices/DEV/authorized` in L1 (the lab has no QEMU monitor):
# the kernel removes the device's interfaces, and `echo 1` adds them again; with
# /sys/bus/usb/drivers_autoprobe at 0 no driver probes them, so the only uevents are `add`s (a
# device that no host driver wants looks like this). The usb-storage detached at the first redirect
# is still owed when svmm exits, and given back then.
. /lab/lib.sh
check_eq kvm-node "$([ -c /dev/kvm ] && echo present || echo absent)" present

lab_wait 20 lab_usb_stick_ready
dev=$(lab_usb_stick)
iface=/sys/bus/usb/devices/$dev:1.0
_drv() { if [ -L $iface/driver ]; then basename "$(readlink $iface/driver)"; elif [ -d $iface ]; then echo none; else echo no-interface; fi; }
check_eq l1-driver-before "$(_drv)" usb-storage
_head() { disk=$(lab_usb_disk_of "$(lab_usb_stick)") && dd if=/dev/$disk of=/tmp/l1-head.bin bs=512 count=1 2>/dev/null && [ "$(wc -c </tmp/l1-head.bin)" = 512 ]; }
lab_wait 30 _head
want0=$(head -c 15 /tmp/l1-head.bin)
check_eq l1-truth-marker "$want0" SVMM-USB-MARKER
sync

rm -rf /tmp/l2root && mkdir -p /tmp/l2root/bin /tmp/l2root/proc /tmp/l2root/sys /tmp/l2root/dev /tmp/l2root/mods
cp /bin/busybox /tmp/l2root/bin/busybox
cp /lab/modules.order /tmp/l2root/mods/order
while read -r m; do cp "/$m" /tmp/l2root/mods/; done </lab/modules.order
cp /lab/files/usb-hotplug.l2-init /tmp/l2root/init
chmod +x /tmp/l2root/init
(cd /tmp/l2root && find . | cpio -o -H newc 2>/dev/null) >/tmp/l2-usb.cpio

l2_run 500 /tmp/usb-l2.log svmm run --kernel "$L2_KERNEL" --initrd /tmp/l2-usb.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M --cpus 1 --usb 46f4:0001 &
svmm_pid=$!
_saw() { grep -q "^$1" /tmp/usb-l2.log; }
lab_wait 300 _saw L2-READY || lab_log "L2 never said READY"
check_eq l2-marker-before "$(sed -n 's/^L2-SECTOR0-BEFORE //p' /tmp/usb-l2.log | tr -d '\r')" "$want0"
check_eq l1-driver-while-redirected "$(_drv)" usbfs

# Unplug: the device stays on L1's bus, its interfaces go.
echo 0 >/sys/bus/usb/devices/$dev/authorized
lab_wait 10 sh -c "[ ! -d $iface ]"
check_eq l1-interface-gone "$(_drv)" no-interface
lab_wait 120 _saw L2-GONE || lab_wait 1 _saw L2-NOT-GONE
if _saw L2-GONE; then pass l2-saw-disconnect; else fail l2-saw-disconnect "$(grep -E '^L2-|svmm' /tmp/usb-l2.log | tail -n 4 | tr '\n' '|')"; fi
check_eq l2-device-absent-after-unplug "$(grep -c '^L2-USB-GONE .* 46f4:0001' /tmp/usb-l2.log)" 0

# Replug the same identity, with no kernel driver probing it.
echo 0 >/sys/bus/usb/drivers_autoprobe
echo 1 >/sys/bus/usb/devices/$dev/authorized
_claimed() { [ "$(_drv)" = usbfs ]; }
lab_wait 120 _claimed
check_eq l1-claimed-by-svmm-without-a-kernel-driver "$(_drv)" usbfs
wait $svmm_pid
rc=$?
echo "usb-hotplug: svmm run exited $rc"
grep -E '^L2-|svmm' /tmp/usb-l2.log | head -60
artifact /tmp/usb-l2.log svmm-l2-console.log

check_eq svmm-exit-status "$rc" 0
if _saw L2-BACK; then pass l2-saw-reconnect; else fail l2-saw-reconnect "$(grep -E '^L2-|svmm' /tmp/usb-l2.log | tail -n 4 | tr '\n' '|')"; fi
check_eq l2-device-present-after-replug "$(grep -c '^L2-USB-AFTER .* 46f4:0001' /tmp/usb-l2.log)" 1
lab_log "L2 read sector 0 after the replug in $(sed -n "s/^L2-READ-TRIES //p" /tmp/usb-l2.log | tr -d "\r") tries"
check_eq l2-marker-after-replug "$(sed -n 's/^L2-SECTOR0-AFTER //p' /tmp/usb-l2.log | tr -d '\r')" "$want0"
# L2's kernel logged the disconnect and a second SuperSpeed enumeration.
check_eq l2-kernel-disconnect "$(grep -c '^L2-DMESG.*USB disconnect' /tmp/usb-l2.log)" 1
check_eq l2-kernel-enumerations "$(grep -c '^L2-DMESG.*new SuperSpeed USB device' /tmp/usb-l2.log)" 2
check_eq svmm-followed-unplug "$(grep -c 'svmm: usb redirect: .* is gone' /tmp/usb-l2.log)" 1
check_eq svmm-followed-replug "$(grep -c 'svmm: usb redirect: .* is back' /tmp/usb-l2.log)" 1

# usb-storage, detached at the first redirect, could not be given back while the device was
# deauthorized; the journal kept it owed, the second redirect took the debt over, and svmm's exit
# pays it (USBDEVFS_CONNECT probes even with autoprobe off). Nothing is left for svmm usb restore.
_rebound() { [ "$(_drv)" = usb-storage ]; }
lab_wait 20 _rebound
check_eq l1-driver-after "$(_drv)" usb-storage
check_eq l1-journal-nothing-outstanding "$(svmm usb restore)" "Nothing to restore."
echo 1 >/sys/bus/usb/drivers_autoprobe
