#!/bin/sh
# lab-description: SIGKILL svmm while it redirects L1's usb-storage; the interface stays detached (no clean exit), and svmm restore binds usb-storage again from the USB detach journal
# lab-machine: standard
# lab-needs: l2
# lab-timeout: 400
# Truth: L1's /sys (the interface's driver link) and dd of L1's disk, before the kill, after it, and after restore.
. /lab/lib.sh

_find_storage() {
  for d in /sys/bus/usb/devices/*; do
    [ -f "$d/idVendor" ] && [ "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = 46f4:0001 ] && { echo "${d##*/}"; return 0; }
  done
  return 1
}
_disk_of() { for b in /sys/bus/usb/devices/$1:1.0/host*/target*/*/block/*; do [ -e "$b" ] && { echo "${b##*/}"; return 0; }; done; return 1; }
_have_disk() { dev=$(_find_storage) && _disk_of "$dev" >/dev/null; }
lab_wait 20 _have_disk
dev=$(_find_storage)
iface=/sys/bus/usb/devices/$dev:1.0
_drv() { if [ -L $iface/driver ]; then basename "$(readlink $iface/driver)"; else echo none; fi; }
check_eq l1-driver-before "$(_drv)" usb-storage
rm -f /run/svmm/usb-detach.journal

# L2 is the lab's stock one; it never has to boot far: svmm detaches before the guest starts.
svmm run --kernel "$L2_KERNEL" --initrd "$L2_INITRD" --cmdline "console=ttyS0 panic=-1 quiet" \
  --mem 256M --cpus 1 --usb 46f4:0001 </dev/null >/tmp/usb-kill.log 2>&1 &
svmm_pid=$!
_redirected() { [ "$(_drv)" = usbfs ]; }
lab_wait 60 _redirected
check_eq l1-driver-while-redirected "$(_drv)" usbfs
kill -9 $svmm_pid
wait $svmm_pid
check_eq svmm-killed "$?" 137
usleep 500000
check_eq l1-driver-after-kill "$(_drv)" none
check_eq journal-outstanding "$(grep -c '^detach ' /run/svmm/usb-detach.journal)" 1
artifact /run/svmm/usb-detach.journal usb-detach.journal

svmm restore >/tmp/restore.out 2>&1
check_eq restore-status "$?" 0
cat /tmp/restore.out
check_eq restore-says "$(grep -c "^USB $dev interface 0: reattached to usb-storage" /tmp/restore.out)" 1
_rebound() { [ "$(_drv)" = usb-storage ]; }
lab_wait 20 _rebound
check_eq l1-driver-after-restore "$(_drv)" usb-storage
lab_wait 20 _have_disk
d2=$(_disk_of "$dev")
check_eq l1-disk-readable-after-restore "$([ -n "$d2" ] && dd if=/dev/$d2 bs=512 count=1 2>/dev/null | head -c 15)" SVMM-USB-MARKER
svmm restore >/tmp/restore2.out 2>&1
check_eq restore-again-status "$?" 0
check_eq restore-again-nothing-for-usb "$(grep -c '^USB ' /tmp/restore2.out)" 0
