#!/bin/sh
# lab-description: --vfio-backend on 6.1 (no iommufd): forced iommufd refused before binding; auto/container open the group and say why; probe agrees with /dev
# lab-machine: standard
# lab-timeout: 240
# Why no iommufd run: Docs/VFIO.md. Kept under 4 KiB: past that, this busybox ash misparsed it.
. /lab/lib.sh
W=/tmp/vb
mkdir -p $W
NIC=0000:02:00.0
D=/sys/bus/pci/devices/$NIC
drv() { if [ -L $D/driver ]; then l=$(readlink $D/driver); echo ${l##*/}; else echo none; fi; }
reprobe() {
  echo "$1" >$D/driver_override
  [ -L $D/driver ] && echo $NIC >$D/driver/unbind
  echo $NIC >/sys/bus/pci/drivers_probe
}
# svmm run --device with busybox as the kernel: VFIO opens, then the guest build fails.
run_dev() {
  n=$1; shift
  svmm run --device $NIC --kernel /bin/busybox --mem 64M "$@" </dev/null >$W/$n.out 2>$W/$n.err
  echo $? >$W/$n.rc
}
has() {
  if grep -qF -e "$3" "$2"; then pass "$1"; else
    tr '\n' '|' <"$2" | cut -c1-300 >$W/why
    fail "$1" "not found: $3 -- in: $(cat $W/why)"
  fi
}

check_eq no-dev-iommu "$([ -e /dev/iommu ] && echo yes || echo no)" no
check_eq no-vfio-cdevs "$([ -d /dev/vfio/devices ] && echo yes || echo no)" no
check_eq nic-on-e1000e "$(drv)" e1000e

# 1. passthrough --vfio-backend iommufd: refused before the bind plan runs.
ls -l /sys/bus/pci/drivers/*/ >$W/drv0 2>/dev/null
svmm passthrough $NIC --vfio-backend iommufd --kernel /bin/busybox --mem 64M </dev/null >$W/pt.out 2>$W/pt.err
check_eq pt-exit "$?" 1
has pt-says-why $W/pt.err 'iommufd cannot be used here: /dev/iommu does not exist'
has pt-names-config $W/pt.err CONFIG_IOMMUFD
has pt-nothing-changed $W/pt.err 'nothing changed'
ls -l /sys/bus/pci/drivers/*/ >$W/drv1 2>/dev/null
if cmp -s $W/drv0 $W/drv1; then pass pt-drivers-unchanged; else fail pt-drivers-unchanged "driver map changed"; fi
check_eq pt-override-untouched "$(cat $D/driver_override)" "(null)"
svmm status >$W/status 2>&1
has pt-journal-empty $W/status 'holds nothing'

# 2. On vfio-pci (plain shell): run --device with each backend.
reprobe vfio-pci
check_eq bound-vfio-pci "$(drv)" vfio-pci
G=$(readlink $D/iommu_group)
G=${G##*/}
if lab_wait 10 test -c /dev/vfio/$G; then pass group-node; else fail group-node "no /dev/vfio/$G"; fi

run_dev forced --vfio-backend iommufd
check_eq forced-exit "$(cat $W/forced.rc)" 1
has forced-refused $W/forced.err 'vfio-backend iommufd: iommufd cannot be used here'
if grep -q 'reset before' $W/forced.err; then fail forced-no-vfio "reset the device"; else pass forced-no-vfio; fi

run_dev auto
check_eq auto-exit "$(cat $W/auto.rc)" 1
has auto-container-why $W/auto.err 'VFIO backend: VFIO type1v2 container (auto: iommufd is not usable (/dev/iommu does not exist'
has auto-opened-group $W/auto.err "in group(s) $G on the VFIO type1v2 container"
has auto-reset $W/auto.err "$NIC: reset before start: "
has auto-bzimage $W/auto.err 'not a bzImage'
artifact $W/auto.err run-auto.err

run_dev cont --vfio-backend container
check_eq cont-exit "$(cat $W/cont.rc)" 1
has cont-asked $W/cont.err '(asked for with --vfio-backend container)'
has cont-opened-group $W/cont.err "in group(s) $G on the VFIO type1v2 container"

# 3. The probe agrees with /dev, and the device is free again.
svmm vfio probe $NIC --json >$W/probe.json 2>$W/probe.err
check_eq probe-exit "$?" 0
tr -d ' \n' <$W/probe.json | grep -o '"iommufd":{[^}]*}' >$W/io
has probe-iommufd-unavailable $W/io '"available":false'
has probe-kernel-support $W/io '"kernelSupport":false'

reprobe ""
check_eq nic-back-on-e1000e "$(drv)" e1000e
