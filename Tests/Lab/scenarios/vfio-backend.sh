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
# Plain forms only: this busybox ash has misparsed scripts with quotes nested inside "$(...)".
drv_of() {
  if [ -L /sys/bus/pci/devices/$1/driver ]; then l=$(readlink /sys/bus/pci/devices/$1/driver); echo ${l##*/}; else echo none; fi
}
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
# expect_in NAME FILE TEXT: pass NAME when FILE holds TEXT.
expect_in() {
  if grep -qF -e "$3" "$2"; then
    pass "$1"
  else
    tr '\n' '|' <"$2" | cut -c1-400 >$W/why.txt
    fail "$1" "not found: $3 -- in: $(cat $W/why.txt)"
  fi
}

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
expect_in passthrough-iommufd-says-why $W/pt-iommufd.err 'iommufd cannot be used here: /dev/iommu does not exist'
expect_in passthrough-iommufd-names-config $W/pt-iommufd.err 'CONFIG_IOMMUFD'
expect_in passthrough-iommufd-nothing-changed $W/pt-iommufd.err 'nothing changed'
ls -l /sys/bus/pci/drivers/*/ 2>/dev/null >$W/drivers-after.txt
check_eq passthrough-iommufd-driver-map-unchanged "$(cmp -s $W/drivers-before.txt $W/drivers-after.txt && echo same || echo changed)" same
check_eq passthrough-iommufd-override-untouched "$(cat $D/driver_override)" "(null)"
svmm status >$W/status.txt 2>&1
expect_in passthrough-iommufd-journal-empty $W/status.txt 'holds nothing'
artifact $W/pt-iommufd.err passthrough-iommufd.err

# 2. On vfio-pci (plain shell), svmm run --device with each backend.
bind_vfio
check_eq bind-vfio-pci "$(drv_of $NIC)" vfio-pci
G=$(readlink $D/iommu_group)
G=${G##*/}
if lab_wait 10 test -c /dev/vfio/$G; then pass group-node-appeared; else fail group-node-appeared "/dev/vfio/$G did not appear"; fi

run_dev iommufd --vfio-backend iommufd
check_eq run-iommufd-exit "$(cat $W/run-iommufd.rc)" 1
expect_in run-iommufd-refused $W/run-iommufd.err 'vfio-backend iommufd: iommufd cannot be used here'
artifact $W/run-iommufd.err run-iommufd.err
if grep -q 'reset before start' $W/run-iommufd.err; then fail run-iommufd-never-opened-vfio "it reset the device"; else pass run-iommufd-never-opened-vfio; fi

run_dev auto
check_eq run-auto-exit "$(cat $W/run-auto.rc)" 1
expect_in run-auto-picks-container-and-says-why $W/run-auto.err 'VFIO backend: VFIO type1v2 container (auto: iommufd is not usable (/dev/iommu does not exist'
expect_in run-auto-opened-the-group $W/run-auto.err "VFIO: 1 device(s) in group(s) $G on the VFIO type1v2 container"
expect_in run-auto-reset-the-device $W/run-auto.err "$NIC: reset before start: "
expect_in run-auto-stopped-at-the-kernel-image $W/run-auto.err 'not a bzImage'
artifact $W/run-auto.err run-auto.err

run_dev container --vfio-backend container
check_eq run-container-exit "$(cat $W/run-container.rc)" 1
expect_in run-container-says-asked $W/run-container.err 'VFIO backend: VFIO type1v2 container (asked for with --vfio-backend container)'
expect_in run-container-opened-the-group $W/run-container.err "VFIO: 1 device(s) in group(s) $G on the VFIO type1v2 container"

# 3. The probe agrees with /dev, and the device is free again after each run.
svmm vfio probe "$NIC" --json >$W/probe.json 2>$W/probe.err
check_eq probe-exit "$?" 0
tr -d ' \n' <$W/probe.json | grep -o '"iommufd":{[^}]*}' >$W/probe-iommufd.txt
expect_in probe-iommufd-unavailable $W/probe-iommufd.txt '"available":false'
expect_in probe-iommufd-kernel-support-matches-dev $W/probe-iommufd.txt '"kernelSupport":false'
artifact $W/probe.json

unbind_vfio
check_eq e1000e-back-on-e1000e "$(drv_of $NIC)" e1000e
