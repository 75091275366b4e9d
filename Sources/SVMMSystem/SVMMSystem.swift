// SVMMSystem: the system layer (errno, fd owners, mmap owners, the syscall funnel).
