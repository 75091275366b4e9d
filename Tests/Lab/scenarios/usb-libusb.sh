#!/bin/sh
# lab-description: svmm's libusb redirect backend, with no guest, enumerates QEMU's usb-storage, sends INQUIRY and READ(10) of sector 0 over bulk, and gives the device back to usb-storage
# lab-machine: standard
# lab-timeout: 200
# Truth comes from plain shell before svmm runs: the kernel's cached descriptors, the SCSI
# vendor/model sysfs shows, and sector 0 read with dd from the block device. After the run,
# /sys must show usb-storage bound to the interface again and the disk back.
. /lab/lib.sh
W=/tmp/usb-libusb
mkdir -p $W
# Guard against memory corruption in L1 (seen once: this script's text changed under the shell
# after the large USB reads): checksum the script and a 4 MiB canary now, compare after each step.
SELF=$(md5sum </lab/scenario.sh)
dd if=/dev/urandom of=/tmp/canary bs=1M count=4 2>/dev/null
CANARY=$(md5sum </tmp/canary)
case "$SELF$CANARY" in *[0-9a-f]*) ;; *) fail memory-checksums "md5sum produced nothing" ;; esac
_intact() { check_eq "memory-intact-after-$1" "$(md5sum </lab/scenario.sh) / $(md5sum </tmp/canary)" "$SELF / $CANARY"; }

_find_storage() {
  for d in /sys/bus/usb/devices/*; do
    [ -f "$d/idVendor" ] && [ "$(cat "$d/idVendor"):$(cat "$d/idProduct")" = 46f4:0001 ] && { echo "${d##*/}"; return 0; }
  done
  return 1
}
_disk_of() { # the sdX behind the storage's interface
  for b in /sys/bus/usb/devices/$1:1.0/host*/target*/*/block/*; do [ -e "$b" ] && { echo "${b##*/}"; return 0; }; done
  return 1
}
_have_disk() { dev=$(_find_storage) && _disk_of "$dev" >/dev/null; }
lab_wait 20 _have_disk || lab_log "usb-storage disk not present after 20s"
dev=$(_find_storage)
check_eq storage-present "$([ -n "$dev" ] && echo yes || echo no)" yes
disk=$(_disk_of "$dev")
iface=/sys/bus/usb/devices/$dev:1.0
drv_before=none; [ -L $iface/driver ] && drv_before=$(basename "$(readlink $iface/driver)")
check_eq driver-before "$drv_before" usb-storage

# --- truth, by plain shell.
# No readahead: a READ the kernel issues on its own behind dd may still be in flight when svmm
# detaches usb-storage, and a cancelled in-flight transfer on QEMU's emulated xHCI/usb-storage has
# been seen to scribble over L1 memory the guest had already reused (the shell's script buffer).
echo 0 >/sys/block/$disk/queue/read_ahead_kb
od -An -tx1 -v /sys/bus/usb/devices/$dev/descriptors | tr -d ' \n' >$W/truth-descriptors.hex
dd if=/dev/$disk bs=512 count=1 2>/dev/null | od -An -tx1 -v | tr -d ' \n' >$W/truth-sector0.hex
dd if=/dev/$disk bs=512 count=1 2>/dev/null | head -c 15 >$W/truth-marker.txt
check_eq truth-marker "$(cat $W/truth-marker.txt)" SVMM-USB-MARKER
scsi=$(ls -d $iface/host*/target*/*:*:*:* 2>/dev/null | head -1)
cat $scsi/vendor >$W/truth-vendor.txt 2>/dev/null
cat $scsi/model >$W/truth-model.txt 2>/dev/null
echo "$(($(cat /sys/block/$disk/size) * 512 / $(cat /sys/block/$disk/queue/logical_block_size)))" >$W/truth-blocks.txt
echo "$dev" >$W/truth-portpath.txt
lab_log "storage $dev disk $disk, driver $drv_before"

# Which devices are hubs, from sysfs: "NAME bDeviceClass" (09 = hub; root hubs are usbN).
for d in /sys/bus/usb/devices/*; do
  [ -f "$d/bDeviceClass" ] && echo "${d##*/} $(cat $d/bDeviceClass)"
done >$W/truth-classes.txt
svmm usb list --json >$W/list.json 2>$W/list.err
mkdir -p /tmp/usb-bins
dd if=/dev/$disk bs=1M count=4 of=/tmp/usb-bins/truth-4mib.bin 2>/dev/null
_intact kernel-4mib-read

_idle() { [ "$(cat /sys/block/$disk/inflight | tr -s ' ' | sed 's/^ //')" = "0 0" ]; }
sync; lab_wait 10 _idle || lab_log "sda still has I/O in flight"

# --- svmm, as a user would run it (with one 4 MiB READ(10) as a single bulk transfer).
svmm usb selftest 46f4:0001 --json --journal $W/journal --read-mib 4 --read-to /tmp/usb-bins/svmm-4mib.bin >$W/selftest.json 2>$W/selftest.err
echo $? >$W/selftest.rc
echo "svmm usb selftest 46f4:0001 --json -> exit $(cat $W/selftest.rc)"; cat $W/selftest.err
check_eq selftest-exit "$(cat $W/selftest.rc)" 0
_intact svmm-selftest
check_eq bulk-read-4mib-size "$(wc -c </tmp/usb-bins/svmm-4mib.bin 2>/dev/null)" 4194304
check_eq bulk-read-4mib-equals-dd "$(cmp /tmp/usb-bins/svmm-4mib.bin /tmp/usb-bins/truth-4mib.bin >/dev/null 2>&1 && echo same || echo differ)" same

# --- after: usb-storage bound again (truth from /sys), and the disk back.
_rebound() { [ -L $iface/driver ] && [ "$(basename "$(readlink $iface/driver)")" = usb-storage ]; }
lab_wait 15 _rebound
drv_after=none; [ -L $iface/driver ] && drv_after=$(basename "$(readlink $iface/driver)")
check_eq driver-after "$drv_after" usb-storage
lab_wait 20 _have_disk
disk_after=$(_disk_of "$dev")
check_eq disk-after "$([ -n "$disk_after" ] && [ -b /dev/$disk_after ] && echo yes || echo no)" yes
[ -n "$disk_after" ] && dd if=/dev/$disk_after bs=512 count=1 2>/dev/null | head -c 15 >$W/after-marker.txt
check_eq disk-readable-after "$(cat $W/after-marker.txt 2>/dev/null)" SVMM-USB-MARKER
# The text form, for whoever reads the console.
svmm usb selftest 46f4:0001 --journal $W/journal2 >$W/selftest-text.txt 2>&1
check_eq selftest-text-exit $? 0
cat $W/selftest-text.txt
lab_wait 15 _rebound

# --- crash: svmm killed while it holds the device; `svmm usb restore` gives it back.
svmm usb selftest 46f4:0001 --journal $W/journal-crash --pause-after-detach 60 >$W/crash.out 2>&1 &
pid=$!
_drv() { if [ -L $iface/driver ]; then basename "$(readlink $iface/driver)"; else echo none; fi; }
# While svmm holds the device, usbfs (svmm's claim) is the interface's driver.
_held() { grep -q "^detach" $W/journal-crash 2>/dev/null && [ "$(_drv)" = usbfs ]; }
lab_wait 20 _held
check_eq crash-held-by-usbfs-before-kill "$(_drv)" usbfs
kill -9 $pid; wait $pid 2>/dev/null
sleep 2
# The kill released usbfs's claim; nothing gave the interface back to usb-storage.
check_eq crash-no-driver-after-kill "$(_drv)" none
check_eq crash-journal-outstanding "$(grep -c '^reattach' $W/journal-crash)" 0
svmm usb restore --journal $W/journal-crash >$W/restore.txt 2>&1
check_eq restore-exit $? 0
cat $W/restore.txt
lab_wait 15 _rebound
drv_restored=none; [ -L $iface/driver ] && drv_restored=$(basename "$(readlink $iface/driver)")
check_eq restore-driver-bound "$drv_restored" usb-storage
svmm usb restore --journal $W/journal-crash >$W/restore2.txt 2>&1
check_eq restore-idempotent "$(cat $W/restore2.txt)" "Nothing to restore."
_intact everything
cp /lab/scenario.sh $W/scenario-as-run.sh
for f in $W/*; do artifact "$f"; done
