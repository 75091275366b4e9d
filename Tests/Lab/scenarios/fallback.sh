#!/bin/sh
# lab-description: svmm passthrough <mounted NVMe> --fallback --disk IMAGE boots L2 with virtio-blk instead; the output names the failed in-use-storage check; the host's NVMe is untouched
# lab-machine: standard
# lab-needs: l2
# lab-modules: virtio_pci virtio_blk virtio_net loop tun
# lab-files: Tests/Lab/scenarios/virtio.l2-init
# lab-timeout: 600
# The NVMe at 0000:03:00.0 carries the mounted /mnt/nvme, so preflight refuses to pass it through
# (in-use-storage). With --fallback and --disk, svmm boots L2 with virtio-blk on the image instead
# and changes nothing on the host: the NVMe keeps its nvme driver and its mount. L2's init is the
# virtio scenario's (mounts /dev/vda, reads known.txt, writes new.txt).
. /lab/lib.sh
NVME=0000:03:00.0
drv_before=$(basename "$(readlink /sys/bus/pci/devices/$NVME/driver)")
mounted_before=$(grep -c ' /mnt/nvme ' /proc/mounts)
check_eq nvme-mounted-before "$mounted_before" 1

KNOWN="svmm-virtio-known-$(cut -d' ' -f1 /proc/uptime)"
IMG=/tmp/virtio-disk.img
known_image $IMG 32 "$KNOWN"

# The L2 initramfs: busybox + modules + init.
R=/tmp/l2root
mkdir -p $R/bin $R/proc $R/sys $R/dev $R/mnt $R/tmp
cp /bin/busybox $R/bin/busybox
ver=$(uname -r)
grep -E '/(virtio[a-z_]*|virtio_pci[a-z_]*|ext4|jbd2|mbcache|crc16|crc32c[a-z_]*|libcrc32c|failover|net_failover)\.ko' /lab/modules.order >$R/modules.order || true
while read -r ko; do mkdir -p "$R/$(dirname "$ko")"; cp "/$ko" "$R/$ko"; done <$R/modules.order
# L2's /init is a repository file (lab-files), not a here-document: busybox ash in the lab
# sometimes mis-parsed the here-document's nested $(...) (seen: `"$(readlink` became `}link`
# in both copies written by one shell), so the text must not pass through the shell's parser.
cp /lab/files/virtio.l2-init $R/init
check_eq l2-init-is-the-repository-file "$(md5sum <$R/init | cut -d' ' -f1)" "$(md5sum </lab/files/virtio.l2-init | cut -d' ' -f1)"
artifact $R/init l2-init.sh
chmod 755 $R/init
INIT_SUM=$(md5sum $R/init | cut -d' ' -f1)
(cd $R && find . | cpio -o -H newc >/tmp/l2-virtio.cpio 2>/dev/null)
# Twice in a row (06:41, 06:51) L1's busybox ash turned `$R/modules.order` inside this command
# substitution into `}order` / `!}order` (the parser bug the comment above describes): a plain
# path and no quotes inside the substitution.
vblk=$(grep -c virtio_blk.ko /tmp/l2root/modules.order)
check_eq l2-initramfs-has-virtio-blk "$vblk" 1

svmm passthrough $NVME --fallback --disk $IMG --kernel "$L2_KERNEL" --initrd /tmp/l2-virtio.cpio \
  --cmdline "console=ttyS0 panic=-1 reboot=k acpi=noirq quiet" --mem 256M \
  </dev/null >/tmp/svmm-fallback.log 2>&1 &
svmm_pid=$!
tail -f /tmp/svmm-fallback.log >/dev/console 2>/dev/null &
tail_pid=$!
waited=0
while [ -d /proc/$svmm_pid ] && [ "$(cut -d' ' -f3 /proc/$svmm_pid/stat 2>/dev/null)" != Z ] && [ $waited -lt 300 ]; do
  sleep 1
  waited=$((waited + 1))
done
if [ -d /proc/$svmm_pid ] && [ "$(cut -d' ' -f3 /proc/$svmm_pid/stat 2>/dev/null)" != Z ]; then
  echo "fallback: svmm still running after ${waited}s; killing it"
  kill -9 $svmm_pid
fi
wait $svmm_pid
rc=$?
kill $tail_pid 2>/dev/null
artifact /tmp/svmm-fallback.log svmm-fallback-console.log
check_eq svmm-exit-status "$rc" 0
check_eq output-names-in-use-storage "$(grep -c 'fails preflight (.*in-use-storage' /tmp/svmm-fallback.log)" 1
check_eq output-states-substitution "$(grep -c 'the guest gets virtio-blk on /tmp/virtio-disk.img instead' /tmp/svmm-fallback.log)" 1
check_eq l2-virtio-blk-bound "$(grep -c '^L2-PCI .* 1af4:1042 0x018000 virtio-pci' /tmp/svmm-fallback.log)" 1
check_eq l2-read-known-file "$(sed -n 's/^L2-KNOWN \(.*\)/\1/p' /tmp/svmm-fallback.log | tr -d '\r')" "$KNOWN"
# Nothing on the host changed: the NVMe keeps its driver and its mount.
check_eq nvme-driver-unchanged "$(basename "$(readlink /sys/bus/pci/devices/$NVME/driver)")" "$drv_before"
check_eq nvme-still-mounted "$(grep -c ' /mnt/nvme ' /proc/mounts)" 1
check_eq nvme-driver-is-nvme "$drv_before" nvme
