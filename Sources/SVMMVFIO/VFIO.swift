// SVMMVFIO: VFIO container, group and device owners.
