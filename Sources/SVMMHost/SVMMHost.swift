// SVMMHost: host inventory, IOMMU groups and preflight checks, read through a relocatable root.
