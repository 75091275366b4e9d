#!/bin/sh
# lab-description: the README's first command: svmm groups and svmm check on the standard machine
# lab-machine: standard
# lab-timeout: 120
. /lab/lib.sh
show() {
  echo
  echo "\$ $*"
  "$@"
  rc=$?
  # check exits 1 when a device fails a check (the NVMe and the display do here); 2+ is an error.
  if [ $rc -le 1 ]; then pass "$(echo "$*" | tr ' ' '_')"; else fail "$(echo "$*" | tr ' ' '_')" "exit $rc"; fi
}
echo "=== inside the lab: a q35 machine with an emulated intel-iommu, kernel $(uname -r) ==="
show svmm groups
show svmm check 0000:02:00.0 0000:01:00.0 0000:03:00.0
