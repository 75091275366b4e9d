#!/bin/sh
# lab-description: --vfio-backend on the lab kernel (6.1, no iommufd): a forced iommufd is refused before anything is bound, auto and container take the type1 container and say why, svmm vfio probe agrees with /dev
# lab-machine: standard
# lab-timeout: 240
# No Debian kernel (bookworm, bookworm-backports 6.12, trixie-backports 7.x, sid) enables
# CONFIG_IOMMUFD, so the iommufd backend itself cannot run here (Docs/VFIO.md); this scenario proves
# the selection around it on the real kernel. `svmm run --device` gets /bin/busybox as its kernel: VFIO
# is opened (container, group, device, reset) before the guest is built, and the build then fails.
. /lab/lib.sh
W=/tmp/vfio-backend
mkdir -p $W
NIC=0000:02:00.0
D=/sys/bus/pci/devices/$NIC
drv_of() { [ -L "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink "/sys/bus/pci/devices/$1/driver")" || echo none; }
bind_vfio() {  # plain shell, never svmm
  echo vfio-pci >"$D/driver_override"
  [ -L "$D/driver" ] && echo "$NIC" >"$D/driver/unbind"
  echo "$NIC" >/sys/bus/pci/drivers_probe
}
unbind_vfio() {
  echo >"$D/driver_override"
  [ -L "$D/driver" ] && echo "$NIC" >"$D/driver/unbind"
  echo "$NIC" >/sys/bus/pci/drivers_probe
}
# svmm run --device NIC with /bin/busybox as its kernel: NAME, then extra options.
run_dev() {
  name=$1; shift
  svmm run --device "$NIC" --kernel /bin/busybox --mem 64M "$@" </dev/null >$W/run-$name.out 2>$W/run-$name.err
  echo $? >$W/run-$name.rc
}
has() { if grep -qF -e "$2" "$1"; then echo yes; else echo "no: $(tr '\n' '|' <"$1" | cut -c1-400)"; fi; }

# Truth from /dev: this kernel has neither /dev/iommu nor VFIO device cdevs.
dev_iommu=$([ -e /dev/iommu ] && echo yes || echo no)
dev_cdevs=$([ -d /dev/vfio/devices ] && echo yes || echo no)
check_eq truth-no-dev-iommu "$dev_iommu" no
check_eq truth-no-vfio-cdevs "$dev_cdevs" no
check_eq e1000e-on-e1000e-before "$(drv_of $NIC)" e1000e

# 1. svmm passthrough --vfio-backend iommufd: refused before the bind plan runs.
ls -l /sys/bus/pci/drivers/*/ 2>/dev/null >$W/drivers-before.txt
svmm passthrough "$NIC" --vfio-backend iommufd --kernel /bin/busybox --mem 64M </dev/null >$W/pt-iommufd.out 2>$W/pt-iommufd.err
check_eq passthrough-iommufd-exit "$?" 1
check_eq passthrough-iommufd-says-why "$(has $W/pt-iommufd.err 'iommufd cannot be used here: /dev/iommu does not exist')" yes
check_eq passthrough-iommufd-names-config "$(has $W/pt-iommufd.err 'CONFIG_IOMMUFD')" yes
check_eq passthrough-iommufd-nothing-changed "$(has $W/pt-iommufd.err 'nothing changed')" yes
ls -l /sys/bus/pci/drivers/*/ 2>/dev/null >$W/drivers-after.txt
check_eq passthrough-iommufd-driver-map-unchanged "$(cmp -s $W/drivers-before.txt $W/drivers-after.txt && echo same || echo changed)" same
check_eq passthrough-iommufd-override-untouched "$(cat $D/driver_override)" "(null)"
check_eq passthrough-iommufd-journal-empty "$(svmm status 2>/dev/null | grep -c 'holds nothing')" 1
artifact $W/pt-iommufd.err passthrough-iommufd.err

# 2. On vfio-pci (plain shell), svmm run --device with each backend.
bind_vfio
check_eq bind-vfio-pci "$(drv_of $NIC)" vfio-pci
G=$(basename "$(readlink $D/iommu_group)")
if lab_wait 10 test -c /dev/vfio/$G; then pass group-node-appeared; else fail group-node-appeared "/dev/vfio/$G did not appear"; fi

run_dev iommufd --vfio-backend iommufd
check_eq run-iommufd-exit "$(cat $W/run-iommufd.rc)" 1
check_eq run-iommufd-refused "$(has $W/run-iommufd.err 'vfio-backend iommufd: iommufd cannot be used here')" yes
check_eq run-iommufd-never-opened-vfio "$(grep -c 'reset before start' $W/run-iommufd.err)" 0

run_dev auto
check_eq run-auto-exit "$(cat $W/run-auto.rc)" 1
check_eq run-auto-picks-container-and-says-why "$(has $W/run-auto.err 'VFIO backend: VFIO type1v2 container (auto: iommufd is not usable (/dev/iommu does not exist')" yes
check_eq run-auto-opened-the-group "$(has $W/run-auto.err "VFIO: 1 device(s) in group(s) $G on the VFIO type1v2 container")" yes
check_eq run-auto-reset-the-device "$(grep -c "$NIC: reset before start: " $W/run-auto.err)" 1
check_eq run-auto-stopped-at-the-kernel-image "$(has $W/run-auto.err 'not a bzImage')" yes
artifact $W/run-auto.err run-auto.err

run_dev container --vfio-backend container
check_eq run-container-exit "$(cat $W/run-container.rc)" 1
check_eq run-container-says-asked "$(has $W/run-container.err 'VFIO backend: VFIO type1v2 container (asked for with --vfio-backend container)')" yes
check_eq run-container-opened-the-group "$(has $W/run-container.err "VFIO: 1 device(s) in group(s) $G on the VFIO type1v2 container")" yes

# 3. The probe agrees with /dev, and the device is free again after each run.
svmm vfio probe "$NIC" --json >$W/probe.json 2>$W/probe.err
check_eq probe-exit "$?" 0
io=$(tr -d ' \n' <$W/probe.json | grep -o '"iommufd":{[^}]*}')
check_eq probe-iommufd-unavailable "$(echo "$io" | grep -c '"available":false')" 1
check_eq probe-iommufd-kernel-support-matches-dev "$(echo "$io" | grep -c '"kernelSupport":false')" 1
artifact $W/probe.json

unbind_vfio
check_eq e1000e-back-on-e1000e "$(drv_of $NIC)" e1000e
