#!/bin/sh
# lab-description: svmm vfio probe runs the whole VFIO sequence on devices bound to vfio-pci by plain shell; its values match /sys
# lab-machine: standard
# lab-timeout: 300
# Binding is done here with plain shell (driver_override, unbind, drivers_probe), never by svmm.
# Truth is read from the live /sys and shipped raw (vendor, device, resource, config, iommu_group
# link); vfio-basic.host compares svmm's JSON against it. iommufd: kernel 6.1 has none.
. /lab/lib.sh
W=/tmp/vfio-basic
mkdir -p $W

drv_of() { [ -L "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink "/sys/bus/pci/devices/$1/driver")" || echo none; }

bind_vfio() {  # ADDRESS: plain-shell bind to vfio-pci
  d=/sys/bus/pci/devices/$1
  echo vfio-pci >"$d/driver_override"
  [ -L "$d/driver" ] && echo "$1" >"$d/driver/unbind"
  echo "$1" >/sys/bus/pci/drivers_probe
}

# Truth for one device, named NAME in the artifacts: key=value lines + raw resource and config.
truth() {
  name=$1; a=$2; d=/sys/bus/pci/devices/$a
  {
    echo "address=$a"
    echo "group=$(basename "$(readlink "$d/iommu_group")")"
    echo "vendor=$(cat "$d/vendor")"
    echo "device=$(cat "$d/device")"
    echo "driver=$(drv_of "$a")"
    echo "config_size=$(wc -c <"$d/config")"
    echo "page_size=$(getconf PAGESIZE 2>/dev/null || echo 4096)"
  } >$W/truth-$name.txt
  cp "$d/resource" $W/resource-$name.txt
  cat "$d/config" >$W/config-$name.bin
  artifact $W/truth-$name.txt
  artifact $W/resource-$name.txt
  artifact $W/config-$name.bin
}

# Runs svmm vfio probe ARGS..., shipping stdout, stderr and the exit code as probe-NAME.*.
probe() {
  name=$1; shift
  svmm vfio probe "$@" >$W/probe-$name.out 2>$W/probe-$name.err
  echo $? >$W/probe-$name.rc
  artifact $W/probe-$name.out
  artifact $W/probe-$name.err
  artifact $W/probe-$name.rc
}

# --- the standard machine's starting point
NIC=0000:02:00.0
check_eq machine-e1000e-driver "$(drv_of $NIC)" e1000e
check_eq machine-vfio-container-node "$([ -c /dev/vfio/vfio ] && echo yes || echo no)" yes

# --- e1000e: own group, bound to vfio-pci by plain shell
bind_vfio $NIC
check_eq bind-e1000e-vfio-pci "$(drv_of $NIC)" vfio-pci
G=$(basename "$(readlink /sys/bus/pci/devices/$NIC/iommu_group)")
if lab_wait 10 test -c /dev/vfio/$G; then pass group-node-appeared; else fail group-node-appeared "/dev/vfio/$G did not appear"; fi
truth nic $NIC
probe nic $NIC --dma-size 64M --json
check_eq probe-nic-exit "$(cat $W/probe-nic.rc)" 0
probe nic-human $NIC --dma-size 2M
check_eq probe-nic-human-exit "$(cat $W/probe-nic-human.rc)" 0

# --- iommufd truth: this 6.1 kernel has no /dev/iommu and no VFIO device cdevs
{
  echo "kernel=$(uname -r)"
  echo "dev_iommu=$([ -e /dev/iommu ] && echo yes || echo no)"
  echo "vfio_devices=$([ -d /dev/vfio/devices ] && echo yes || echo no)"
} >$W/truth-iommufd.txt
artifact $W/truth-iommufd.txt
check_eq kernel-has-no-dev-iommu "$(grep -c '^dev_iommu=no' $W/truth-iommufd.txt)" 1

# --- a device whose group has no VFIO node: the probe fails with a fix, changing nothing
DISPLAY_FN=0000:01:00.0
DRV_BEFORE=$(drv_of $DISPLAY_FN)
probe unbound $DISPLAY_FN --json
check_eq probe-unbound-fails "$([ "$(cat $W/probe-unbound.rc)" != 0 ] && echo nonzero || echo zero)" nonzero
check_eq probe-unbound-changes-nothing "$(drv_of $DISPLAY_FN)" "$DRV_BEFORE"
truth unbound $DISPLAY_FN

# --- the e1000 pair behind the PCI bridge shares a group: with only one on vfio-pci the
#     group is not viable; with both, it is.
E1=0000:05:01.0
E2=0000:05:02.0
bind_vfio $E1
check_eq bind-e1000-first-vfio-pci "$(drv_of $E1)" vfio-pci
check_eq e1000-second-still-host "$(drv_of $E2)" e1000
truth pair $E1
probe notviable $E1 --dma-size 2M --json
bind_vfio $E2
check_eq bind-e1000-second-vfio-pci "$(drv_of $E2)" vfio-pci
probe viable $E1 --dma-size 2M --json
check_eq probe-viable-exit "$(cat $W/probe-viable.rc)" 0
