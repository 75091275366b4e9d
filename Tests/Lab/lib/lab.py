"""The svmm lab: boots a real Debian kernel under QEMU/TCG and runs a scenario inside it.

Everything the guest needs is built here from Debian packages and cached in
Tests/Lab/.cache (git-ignored):

    kernel/<version>/      the unpacked linux-image .deb, depmod'ed, plus vmlinux
    cpio/<part>-<hash>.cpio uncompressed initramfs parts (base, svmm, modules, l2)

A run's initramfs is the concatenation of cached parts plus a small per-run part
(the scenario and its configuration); the kernel unpacks concatenated newc
archives in order. Archives stay uncompressed because decompressing under TCG
costs seconds.

The guest reports over a second serial port (ttyS1, the "protocol channel"):
    PASS name | FAIL name: reason | ARTIFACT-BEGIN name size sha256 / base64 / ARTIFACT-END name
    BEGIN scenario | DONE status
Its console (ttyS0) is streamed to the terminal and saved as console.log. Keeping
results off the console means kernel messages can never tear a result line.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import lzma
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

LAB = Path(__file__).resolve().parent.parent          # Tests/Lab
REPO = LAB.parent.parent
CACHE = LAB / ".cache"
OUT = LAB / "out"
SCENARIOS = LAB / "scenarios"
GUEST = LAB / "guest"

# Loaded in every L1 guest (the contract's list, plus what makes the standard
# machine look like the desktop-gpu fixture: bochs on the display, snd-hda-intel
# on the HDA function, sd_mod for the USB stick's disk, hid-generic for the HIDs,
# crc32c_generic for ext4's soft dependency).
STANDARD_MODULES = [
    "vfio", "vfio_iommu_type1", "vfio_pci", "e1000e", "e1000", "nvme", "crc32c_generic", "ext4",
    "xhci_pci", "usb_storage", "sd_mod", "usbhid", "hid_generic", "bochs", "snd_hda_intel",
]
L2_MODULES = ["kvm_amd"]

USB_MARKER = b"SVMM-USB-MARKER"
NVME_MARKER = "SVMM-NVME-MARKER"
L2_MARKER = "SVMM-L2-INIT-OK"


class LabError(Exception):
    """A lab input could not be prepared (kernel, svmm build, images)."""


def log(msg: str) -> None:
    print(f"lab: {msg}", file=sys.stderr, flush=True)


def sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()[:16]


def file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- kernel

@dataclasses.dataclass
class Kernel:
    version: str          # e.g. 6.1.0-56-amd64
    root: Path            # dpkg -x target
    image: Path           # what QEMU boots: vmlinux (ELF, PVH entry) or vmlinuz

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def moddir(self) -> Path:
        return self.root / "lib" / "modules" / self.version


def newest_kernel_package() -> str | None:
    """The newest signed generic 6.1 kernel apt knows about (not -rt/-cloud/-dbg/-unsigned)."""
    try:
        out = subprocess.run(
            ["apt-cache", "search", "--names-only", r"^linux-image-6\.1\.0-[0-9]+-amd64$"],
            check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    if not names:
        return None
    return max(names, key=lambda n: int(re.match(r"linux-image-6\.1\.0-(\d+)-amd64", n).group(1)))


def extract_vmlinux(vmlinuz: Path, dest: Path) -> bool:
    """Finds the compressed payload in a bzImage (as scripts/extract-vmlinux does) and writes the ELF."""
    data = vmlinuz.read_bytes()
    magics = [(b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\x1f\x8b\x08", "gzip")]
    for magic, kind in magics:
        start = 0
        while (off := data.find(magic, start)) >= 0:
            start = off + 1
            try:
                if kind == "xz":
                    out = lzma.LZMADecompressor().decompress(data[off:])
                elif kind == "gzip":
                    import zlib
                    out = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[off:])
                else:
                    p = subprocess.run(["zstd", "-dc"], input=data[off:], capture_output=True)
                    out = p.stdout
            except (lzma.LZMAError, OSError, ValueError, Exception):  # noqa: BLE001 - any junk means "not here"
                continue
            if out[:4] == b"\x7fELF":
                tmp = dest.with_suffix(".tmp")
                tmp.write_bytes(out)
                tmp.rename(dest)
                return True
    return False


def ensure_kernel() -> Kernel:
    kroot = CACHE / "kernel"
    kroot.mkdir(parents=True, exist_ok=True)
    pkg = newest_kernel_package()
    if pkg is None:
        cached = sorted((p for p in kroot.iterdir() if (p / ".ok").exists()),
                        key=lambda p: int(re.search(r"6\.1\.0-(\d+)", p.name).group(1)))
        if not cached:
            raise LabError("apt-cache knows no linux-image-6.1.0-*-amd64 and nothing is cached")
        pkg = "linux-image-" + cached[-1].name
    version = pkg.removeprefix("linux-image-")
    kdir = kroot / version
    root = kdir / "root"
    if not (kdir / ".ok").exists():
        log(f"fetching {pkg} (cached in {kdir})")
        shutil.rmtree(kdir, ignore_errors=True)
        kdir.mkdir(parents=True)
        subprocess.run(["apt-get", "download", "-q", pkg], cwd=kdir, check=True,
                       stdout=subprocess.DEVNULL)
        debs = list(kdir.glob("*.deb"))
        if len(debs) != 1:
            raise LabError(f"apt-get download {pkg} left {len(debs)} .deb files")
        subprocess.run(["dpkg", "-x", str(debs[0]), str(root)], check=True)
        subprocess.run(["depmod", "-b", str(root), version], check=True)
        vmlinux = kdir / "vmlinux"
        if not extract_vmlinux(root / "boot" / f"vmlinuz-{version}", vmlinux):
            log("could not extract vmlinux; booting vmlinuz")
        debs[0].unlink()            # 70 MB we no longer need; the unpacked tree is the cache
        (kdir / ".ok").write_text(pkg + "\n")
    image = kdir / "vmlinux"
    if not image.exists():
        image = root / "boot" / f"vmlinuz-{version}"
    return Kernel(version, root, image)


def module_closure(kernel: Kernel, wanted: list[str]) -> list[str]:
    """Module paths (relative to lib/modules/VER) with dependencies first, from modules.dep."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (kernel.moddir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        mod, rest = line.split(":", 1)
        deps[mod] = rest.split()
        by_name[Path(mod).name.removesuffix(".ko").replace("-", "_")] = mod
    builtin = set()
    bfile = kernel.moddir / "modules.builtin"
    if bfile.exists():
        builtin = {Path(l).name.removesuffix(".ko").replace("-", "_") for l in bfile.read_text().split()}
    order: list[str] = []
    seen: set[str] = set()

    def visit(mod: str) -> None:
        if mod in seen:
            return
        seen.add(mod)
        for d in deps.get(mod, []):
            visit(d)
        order.append(mod)

    for name in wanted:
        key = name.replace("-", "_")
        if key in by_name:
            visit(by_name[key])
        elif key in builtin:
            continue
        else:
            raise LabError(f"module {name} is neither in modules.dep nor built in ({kernel.version})")
    return order


# --------------------------------------------------------------------------- cpio

class Cpio:
    """A newc archive writer: enough for an initramfs (files, dirs, symlinks, device nodes)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, int, bytes, int, int]] = []
        self.dirs: set[str] = set()
        self.ino = 1

    def _parents(self, path: str) -> None:
        parts = path.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            self.dir("/".join(parts[:i]))

    def dir(self, path: str, mode: int = 0o755) -> None:
        path = path.strip("/")
        if path in self.dirs or not path:
            return
        self._parents(path)
        self.dirs.add(path)
        self.entries.append((path, 0o040000 | mode, b"", 0, 0))

    def data(self, path: str, content: bytes, mode: int = 0o644) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries.append((path, 0o100000 | mode, content, 0, 0))

    def file(self, path: str, src: Path, mode: int | None = None) -> None:
        st = src.stat()
        self.data(path, src.read_bytes(), (st.st_mode & 0o7777) if mode is None else mode)

    def symlink(self, path: str, target: str) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries.append((path, 0o120777, target.encode(), 0, 0))

    def node(self, path: str, char: bool, major: int, minor: int, mode: int = 0o600) -> None:
        path = path.strip("/")
        self._parents(path)
        self.entries.append((path, (0o020000 if char else 0o060000) | mode, b"", major, minor))

    def tree(self, prefix: str, src: Path, skip: set[str] = frozenset()) -> None:
        """Adds a host directory under prefix, keeping symlinks as symlinks."""
        for dirpath, dirnames, filenames in os.walk(src):
            dirnames.sort()
            rel = os.path.relpath(dirpath, src)
            base = prefix.rstrip("/") + ("" if rel == "." else "/" + rel)
            self.dir(base)
            for name in sorted(filenames) + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
                if name in skip:
                    continue
                p = Path(dirpath) / name
                if p.is_symlink():
                    self.symlink(f"{base}/{name}", os.readlink(p))
                elif p.is_file():
                    self.file(f"{base}/{name}", p)

    def bytes(self) -> bytes:
        out = bytearray()

        def header(name: str, mode: int, size: int, rmaj: int, rmin: int, ino: int) -> None:
            nb = name.encode() + b"\0"
            fields = [ino, mode, 0, 0, 1, 0, size, 0, 0, rmaj, rmin, len(nb), 0]
            out.extend(b"070701" + b"".join(b"%08x" % f for f in fields))
            out.extend(nb)
            out.extend(b"\0" * (-len(out) % 4))

        for name, mode, content, rmaj, rmin in self.entries:
            header(name, mode, len(content), rmaj, rmin, self.ino)
            self.ino += 1
            out.extend(content)
            out.extend(b"\0" * (-len(out) % 4))
        header("TRAILER!!!", 0, 0, 0, 0, 0)
        out.extend(b"\0" * (-len(out) % 512))
        return bytes(out)


def cached_cpio(kind: str, key: str, build) -> Path:
    d = CACHE / "cpio"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{kind}-{key}.cpio"
    if not path.exists():
        # keep a few recent variants (module sets differ between L2 and plain scenarios)
        olds = sorted(d.glob(f"{kind}-*.cpio"), key=lambda p: p.stat().st_mtime)
        for old in olds[:-2]:
            old.unlink(missing_ok=True)
        c = Cpio()
        build(c)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # two runs in one tree must not share it
        tmp.write_bytes(c.bytes())
        tmp.rename(path)
    return path


def libs_of(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] == "=>" and f[2].startswith("/"):
            libs.append(f[2])
        elif f and f[0].startswith("/"):
            libs.append(f[0])
    return libs


def base_cpio() -> Path:
    """busybox, /init, /lab/lib.sh, the lab's guest tools, /dev/console."""
    busybox = Path("/bin/busybox")
    inputs = [GUEST / "init", GUEST / "lib.sh", LAB / "capture-sysfs", busybox]
    key = sha(*(file_sha(p) for p in inputs))

    def build(c: Cpio) -> None:
        for d in ("proc", "sys", "dev", "tmp", "run", "mnt/nvme", "root", "etc", "var"):
            c.dir(d)
        c.node("dev/console", True, 5, 1)
        c.node("dev/null", True, 1, 3, 0o666)
        c.file("bin/busybox", busybox, 0o755)
        applets = subprocess.run([str(busybox), "--list-full"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            if a != "bin/busybox":
                c.symlink(a, "/bin/busybox")
        c.file("init", GUEST / "init", 0o755)
        c.file("lab/lib.sh", GUEST / "lib.sh", 0o644)
        c.file("lab/capture-sysfs", LAB / "capture-sysfs", 0o755)
        c.data("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        c.data("etc/group", b"root:x:0:\n")

    return cached_cpio("base", key, build)


def svmm_cpio(stage: Path) -> Path:
    key = sha((stage / ".stamp").read_text(), "v2")
    return cached_cpio("svmm", key, lambda c: c.tree("", stage, skip={".stamp"}))


def bins_cpio(bins: list[str]) -> Path:
    """`# lab-bins:` host executables (e.g. /usr/bin/jq) at their host paths, with every library ldd lists."""
    files: list[str] = []
    for b in bins:
        src = Path(b)
        if not (src.is_absolute() and src.is_file() and os.access(src, os.X_OK)):
            raise LabError(f"lab-bins entry '{b}' is not an executable on this host (give its absolute path)")
        files += [b] + [lib for lib in libs_of(src) if lib not in files]
    key = sha(*(f + file_sha(Path(f)) for f in files))

    def build(c: Cpio) -> None:
        for f in files:
            c.file(f, Path(f))

    return cached_cpio("bins", key, build)


def modules_cpio(kernel: Kernel, mods: list[str]) -> Path:
    key = sha(kernel.version, *mods, "v2")

    def build(c: Cpio) -> None:
        for m in mods:
            c.file(f"lib/modules/{kernel.version}/{m}", kernel.moddir / m, 0o644)
        c.data("lab/modules.order", "".join(f"lib/modules/{kernel.version}/{m}\n" for m in mods).encode())
        # A modules.dep limited to what is packed, so `modprobe NAME` works for those inside the guest.
        packed = set(mods)
        dep = [l for l in (kernel.moddir / "modules.dep").read_text().splitlines() if l.split(":", 1)[0] in packed]
        c.data(f"lib/modules/{kernel.version}/modules.dep", ("\n".join(dep) + "\n").encode())
        for extra in ("modules.builtin", "modules.alias", "modules.softdep"):
            if (kernel.moddir / extra).exists():
                c.file(f"lib/modules/{kernel.version}/{extra}", kernel.moddir / extra, 0o644)

    return cached_cpio("modules", key, build)


QEMU_FIRMWARE = [
    "/usr/share/qemu/kvmvapic.bin", "/usr/share/qemu/linuxboot.bin", "/usr/share/qemu/linuxboot_dma.bin",
    "/usr/share/qemu/pvh.bin", "/usr/share/qemu/multiboot.bin", "/usr/share/qemu/multiboot_dma.bin",
    "/usr/share/seabios/bios-256k.bin", "/usr/share/seabios/bios.bin", "/usr/share/seabios/vgabios-stdvga.bin",
    "/usr/lib/ipxe/qemu/efi-e1000.rom", "/usr/lib/ipxe/qemu/efi-e1000e.rom", "/usr/lib/ipxe/qemu/efi-virtio.rom",
]
QEMU_MODULES = ["/usr/lib/x86_64-linux-gnu/qemu/hw-usb-host.so"]


def l2_initrd() -> bytes:
    """The L2 guest's initramfs: busybox and an init that prints the marker and its PCI devices."""
    c = Cpio()
    for d in ("proc", "sys", "dev"):
        c.dir(d)
    c.node("dev/console", True, 5, 1)
    c.file("bin/busybox", Path("/bin/busybox"), 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", GUEST / "l2-init", 0o755)
    return c.bytes()


def l2_cpio(kernel: Kernel) -> Path:
    """QEMU with every library and firmware file it loads, plus the L2 kernel and initramfs at /lab/l2."""
    qemu = Path("/usr/bin/qemu-system-x86_64")
    files = [str(qemu)] + QEMU_FIRMWARE + QEMU_MODULES
    libs = sorted(set(libs_of(qemu)) | {l for m in QEMU_MODULES for l in libs_of(Path(m))})
    key = sha(kernel.version, file_sha(GUEST / "l2-init"), file_sha(qemu), *files, *libs, "v1")

    def build(c: Cpio) -> None:
        for f in files + libs:
            c.file(f, Path(f).resolve())
        c.file("lab/l2/vmlinuz", kernel.vmlinuz, 0o644)
        c.data("lab/l2/initrd", l2_initrd())

    return cached_cpio("l2", key, build)


# --------------------------------------------------------------------------- systemd

# `# lab-needs: systemd`: Debian's own systemd and udev, unpacked from their packages (apt-get download +
# dpkg -x, as the kernel is) with the libraries they link, so an early hook can `exec` systemd as PID 1
# (/lab/lab-exec-systemd). The library packages are those systemd, udev and libsystemd-shared depend
# on; whatever else ldd resolves (libc and friends) is copied from the host like svmm's libraries.
SYSTEMD_PACKAGES = [
    "systemd", "udev", "libsystemd-shared", "kmod",
    "libacl1", "libapparmor1", "libaudit1", "libcap-ng0", "libblkid1", "libcap2", "libcrypt1", "libgcrypt20",
    "libgpg-error0", "libip4tc2", "libkmod2", "liblz4-1", "liblzma5", "libmount1", "libpam0g", "libseccomp2",
    "libselinux1", "libpcre2-8-0", "libssl3", "libzstd1", "libcryptsetup12", "libfdisk1", "libp11-kit0",
]
# Not needed to boot and large: documentation, translations, shell completions, hwdb sources.
SYSTEMD_SKIP = ("usr/share/doc", "usr/share/man", "usr/share/locale", "usr/share/bash-completion",
                "usr/share/zsh", "usr/share/lintian", "lib/udev/hwdb.d", "usr/share/polkit-1")


def ensure_systemd() -> Path:
    """The unpacked packages (cached by package list: the first run downloads about 12 MB)."""
    d = CACHE / "systemd" / sha(*SYSTEMD_PACKAGES, "v1")
    root = d / "root"
    if not (d / ".ok").exists():
        log(f"fetching systemd, udev and {len(SYSTEMD_PACKAGES) - 4} libraries (cached in {d})")
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        subprocess.run(["apt-get", "download", "-q", *SYSTEMD_PACKAGES], cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        debs = sorted(d.glob("*.deb"))
        if len(debs) != len(SYSTEMD_PACKAGES):
            raise LabError(f"apt-get download of the systemd packages left {len(debs)} of {len(SYSTEMD_PACKAGES)} .deb files")
        for deb in debs:
            subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
            deb.unlink()
        for skip in SYSTEMD_SKIP:
            shutil.rmtree(root / skip, ignore_errors=True)
        (d / ".ok").write_text("\n".join(SYSTEMD_PACKAGES) + "\n")
    return root


def _is_elf(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def systemd_cpio() -> Path:
    root = ensure_systemd()
    unit_dir = GUEST / "systemd"
    inputs = sorted(unit_dir.iterdir())
    key = sha((root.parent / ".ok").read_text(), *(f.name + file_sha(f) for f in inputs), "v1")

    def build(c: Cpio) -> None:
        c.tree("", root)
        libdirs = [root / "lib/x86_64-linux-gnu", root / "usr/lib/x86_64-linux-gnu",
                   root / "usr/lib/x86_64-linux-gnu/systemd"]
        env = {**os.environ, "LD_LIBRARY_PATH": ":".join(str(x) for x in libdirs)}
        host: set[str] = set()
        for dirpath, _, filenames in os.walk(root):
            for name in filenames:
                f = Path(dirpath) / name
                if f.is_symlink() or not _is_elf(f):
                    continue
                out = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env).stdout
                for line in out.splitlines():
                    fl = line.split()
                    if "not found" in line:
                        raise LabError(f"{f.relative_to(root)} needs {fl[0]}, which no systemd package or host library provides")
                    lib = fl[2] if len(fl) >= 3 and fl[1] == "=>" else (fl[0] if fl and fl[0].startswith("/") else "")
                    if lib.startswith("/") and not lib.startswith(str(root)):
                        host.add(lib)
        for lib in sorted(host):
            c.file(lib, Path(lib).resolve())
        for f in inputs:
            if f.suffix in (".service", ".target"):
                c.file(f"lib/systemd/system/{f.name}", f, 0o644)
            else:
                c.file(f"lab/{f.name}", f, 0o755)
        c.data("etc/os-release", b'PRETTY_NAME="svmm lab (Debian 12 packages)"\nNAME="svmm-lab"\nID=debian\n')
        # An installed system, not a first boot: with no machine-id systemd runs `preset-all` and
        # systemd-firstboot, which prompts on the console for a locale and waits forever.
        c.data("etc/machine-id", b"5356_4d4d_6c61_6200_0000_0000_0000_0001".replace(b"_", b"") + b"\n", 0o444)
        c.data("etc/hostname", b"svmm-lab\n")

    return cached_cpio("systemd", key, build)


def module_indexes_cpio(kernel: Kernel, mods: list[str], work: Path) -> Path:
    """depmod's binary indexes (modules.alias.bin, modules.dep.bin, ...) for exactly the packed modules,
    so udevd's kmod builtin (libkmod) can load a driver by modalias as it does on an installed system."""
    key = sha(kernel.version, *mods, "v1")

    def build(c: Cpio) -> None:
        stage = work / "depmod"
        md = stage / "lib" / "modules" / kernel.version
        for m in mods:
            (md / m).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kernel.moddir / m, md / m)
        for extra in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
            if (kernel.moddir / extra).exists():
                shutil.copyfile(kernel.moddir / extra, md / extra)
        subprocess.run(["depmod", "-b", str(stage), kernel.version], check=True)
        for f in sorted(md.glob("modules.*")):
            c.file(f"lib/modules/{kernel.version}/{f.name}", f, 0o644)
        shutil.rmtree(stage)

    return cached_cpio("modidx", key, build)


def install_cpio(stage: Path, work: Path) -> bytes:
    """What `make -C Udev install DESTDIR=...` installs (binary, rules, helper, unit, sysusers.d, docs),
    run on the host with the staged svmm, so the guest's files are the Makefile's, not the lab's."""
    dest = work / "install-root"
    shutil.rmtree(dest, ignore_errors=True)
    p = subprocess.run(["make", "-s", "-C", str(REPO / "Udev"), "install", f"DESTDIR={dest}",
                        f"SVMM_BIN={stage / 'usr/bin/svmm'}"], capture_output=True, text=True)
    if p.returncode != 0:
        raise LabError(f"make -C Udev install failed: {(p.stderr.strip().splitlines() or ['?'])[-1]}")
    c = Cpio()
    # tree() keeps file modes but gives directories 0755: the state directory goes first, 0700 as installed.
    if (dest / "var/lib/svmm").is_dir():
        c.dir("var/lib/svmm", (dest / "var/lib/svmm").stat().st_mode & 0o7777)
    c.tree("", dest)
    out = c.bytes()
    shutil.rmtree(dest)
    return out


# --------------------------------------------------------------------------- disks

def make_usb_image(path: Path, size_mib: int = 8) -> None:
    """A raw disk whose first sector starts with the marker (the rest of the sector is a pattern)."""
    sector = USB_MARKER + b"\n" + bytes((i * 7) & 0xFF for i in range(512 - len(USB_MARKER) - 1))
    with open(path, "wb") as f:
        f.write(sector)
        f.truncate(size_mib << 20)


def make_nvme_image(path: Path, work: Path, size_mib: int = 32) -> None:
    """An MBR disk with one Linux partition holding ext2, built without loop devices or mounts."""
    content = work / "nvme-content"
    shutil.rmtree(content, ignore_errors=True)
    content.mkdir(parents=True)
    (content / "marker").write_text(NVME_MARKER + "\n")
    part_start = 2048                                   # sectors: 1 MiB alignment
    part_sectors = (size_mib << 11) - part_start
    fs = work / "nvme-part.img"
    fs.unlink(missing_ok=True)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-L", "svmm-lab", "-d", str(content), str(fs),
                    f"{part_sectors // 2}k"], check=True, stdout=subprocess.DEVNULL)
    mbr = bytearray(512)
    # One primary partition entry: not bootable, CHS fields saturated (LBA is authoritative), type 0x83.
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", part_start, part_sectors)
    mbr[440:444] = struct.pack("<I", 0x5356_4d4d)      # disk signature "SVMM"
    mbr[510:512] = b"\x55\xaa"
    with open(path, "wb") as f:
        f.write(mbr)
        f.seek(part_start * 512)
        with open(fs, "rb") as src:
            shutil.copyfileobj(src, f)
        f.truncate(size_mib << 20)
    fs.unlink()
    shutil.rmtree(content)


# --------------------------------------------------------------------------- machine

def machine_args(machine: str, run: Path, mem: int, reboot: bool = False, smp: int = 1) -> tuple[list[str], str]:
    """QEMU arguments for the standard machine (the desktop-gpu fixture's topology), its no-iommu
    variant, or hub-nic: standard, but the e1000e sits on QEMU hub 0 together with a second L1 NIC
    (e1000 at 0000:00:06.0), so traffic between them stays inside QEMU (passthrough scenarios);
    hub-e1000 is the same with the bridged e1000 at 0000:05:01.0 on the hub instead of the e1000e."""
    if machine not in ("standard", "no-iommu", "hub-nic", "hub-e1000"):
        raise LabError(f"unknown lab-machine '{machine}' (standard|no-iommu|hub-nic|hub-e1000)")
    hub = machine in ("hub-nic", "hub-e1000")
    iommu = machine != "no-iommu"
    a = ["-accel", "tcg", "-machine", "q35", "-m", str(mem), "-smp", str(smp),
         "-display", "none", "-vga", "none", "-monitor", "none", "-nic", "none",
         "-serial", "stdio", "-serial", f"file:{run / 'proto.log'}"]
    # Without -no-reboot a guest reboot is a machine reset inside the same QEMU process: firmware runs
    # again, QEMU loads the same -kernel/-initrd, and the disk images keep what the last boot wrote.
    if not reboot:
        a.append("-no-reboot")
    if iommu:
        a += ["-device", "intel-iommu,intremap=on,caching-mode=on"]
    a += [
        "-device", "pcie-root-port,id=rp1,bus=pcie.0,addr=01.0,slot=1",
        "-device", "VGA,id=gpu,bus=rp1,addr=00.0,multifunction=on",
        "-device", "ich9-intel-hda,id=hda,bus=rp1,addr=00.1",
        "-audiodev", "none,id=snd0", "-device", "hda-output,bus=hda.0,audiodev=snd0",
        "-device", "pcie-root-port,id=rp2,bus=pcie.0,addr=02.0,slot=2",
        "-netdev", "hubport,id=n0,hubid=0" if machine == "hub-nic" else "user,id=n0,restrict=on",
        "-device", "e1000e,netdev=n0,bus=rp2,mac=52:54:00:12:34:56,romfile=",
        "-device", "pcie-root-port,id=rp3,bus=pcie.0,addr=03.0,slot=3",
        "-drive", f"file={run / 'nvme.img'},if=none,id=nv0,format=raw",
        "-device", "nvme,serial=deadbeef,drive=nv0,bus=rp3",
        "-device", "pcie-root-port,id=rp4,bus=pcie.0,addr=04.0,slot=4",
        "-device", "pcie-pci-bridge,id=pbr,bus=rp4",
        *(["-netdev", "hubport,id=n2,hubid=0"] if machine == "hub-e1000" else []),
        "-device", "e1000,bus=pbr,addr=01.0,mac=52:54:00:12:34:57,romfile=" + (",netdev=n2" if machine == "hub-e1000" else ""),
        "-device", "e1000,bus=pbr,addr=02.0,mac=52:54:00:12:34:58,romfile=",
        "-device", "qemu-xhci,id=xhci,bus=pcie.0,addr=14.0",
        "-device", "usb-kbd,bus=xhci.0", "-device", "usb-tablet,bus=xhci.0",
        "-drive", f"if=none,id=usbstick,format=raw,file={run / 'usb.img'}",
        "-device", "usb-storage,bus=xhci.0,drive=usbstick,serial=SVMM0001",
    ]
    if hub:
        a += ["-netdev", "hubport,id=n1,hubid=0",
              "-device", "e1000,netdev=n1,bus=pcie.0,addr=06.0,mac=52:54:00:12:34:59,romfile="]
    append = "console=ttyS0 panic=-1" + (" intel_iommu=on" if iommu else "")
    return a, append


# --------------------------------------------------------------------------- scenarios

@dataclasses.dataclass
class Scenario:
    name: str
    path: Path
    description: str = ""
    machine: str = "standard"
    timeout: int = 120
    modules: list[str] = dataclasses.field(default_factory=list)
    needs: list[str] = dataclasses.field(default_factory=list)
    files: list[str] = dataclasses.field(default_factory=list)
    bins: list[str] = dataclasses.field(default_factory=list)
    boots: int = 1                  # `# lab-boots: N`: the guest may reboot N-1 times (same QEMU, same disks)
    smp: int = 1                    # `# lab-smp: N`: L1 vCPUs (TCG threads); 1 unless a scenario needs more
    early: str | None = None        # `# lab-early: FILE`: sourced by /init as PID 1 before it loads modules

    @property
    def host_check(self) -> Path | None:
        p = self.path.with_suffix(".host")
        return p if p.exists() else None


def load_scenario(arg: str) -> Scenario:
    p = Path(arg)
    if not (p.suffix == ".sh" and p.exists()):
        p = SCENARIOS / f"{arg}.sh"
    if not p.exists():
        raise LabError(f"no scenario '{arg}' (looked for {p}); see --list")
    s = Scenario(name=p.stem, path=p.resolve())
    for line in p.read_text().splitlines():
        m = re.match(r"#\s*lab-([a-z]+):\s*(.*?)\s*$", line)
        if not m:
            continue
        key, val = m.groups()
        if key == "description":
            s.description = val
        elif key == "machine":
            s.machine = val
        elif key == "timeout":
            if not val.isdigit():
                raise LabError(f"{p.name}: lab-timeout must be whole seconds, got '{val}'")
            s.timeout = int(val)
        elif key == "modules":
            s.modules += val.split()
        elif key == "needs":
            s.needs += val.split()
        elif key == "files":
            s.files += val.split()
        elif key == "kind":
            if val not in ("test", "bench"):
                raise LabError(f"{p.name}: lab-kind must be test or bench, got '{val}'")
        elif key == "bins":
            s.bins += val.split()
        elif key == "boots":
            if not val.isdigit() or not 1 <= int(val) <= 8:
                raise LabError(f"{p.name}: lab-boots must be 1..8, got '{val}'")
            s.boots = int(val)
        elif key == "early":
            s.early = val
        elif key == "smp":
            if not val.isdigit() or not 1 <= int(val) <= 4:
                raise LabError(f"{p.name}: lab-smp must be 1..4, got '{val}'")
            s.smp = int(val)
        else:
            raise LabError(f"{p.name}: unknown header 'lab-{key}'")
    unknown = set(s.needs) - {"l2", "systemd"}
    if unknown:
        raise LabError(f"{p.name}: unknown lab-needs {sorted(unknown)}")
    return s


def all_scenarios(include_benchmarks: bool = False) -> list[str]:
    """Every scenario; benchmark scenarios (`# lab-kind: bench`) only when asked for, because
    they measure rather than test and run from Benchmarks/, not from the test suite."""
    def is_bench(p: Path) -> bool:
        return any(line.strip() == "# lab-kind: bench" for line in p.read_text(errors="replace").splitlines()[:20])
    return sorted(p.stem for p in SCENARIOS.glob("*.sh") if include_benchmarks or not is_bench(p))


@dataclasses.dataclass
class Result:
    ok: bool
    name: str
    reason: str = ""

    def line(self, scenario: str) -> str:
        return f"PASS {scenario}/{self.name}" if self.ok else f"FAIL {scenario}/{self.name}: {self.reason}"


def parse_results(text: str) -> list[Result]:
    out = []
    for line in text.splitlines():
        line = line.rstrip("\r")
        if line.startswith("PASS "):
            out.append(Result(True, line[5:].strip() or "(unnamed)"))
        elif line.startswith("FAIL "):
            name, _, reason = line[5:].partition(":")
            out.append(Result(False, name.strip() or "(unnamed)", reason.strip() or "(no reason given)"))
    return out


def parse_protocol(text: str, artifacts: Path) -> tuple[list[Result], int | None, bool]:
    """Results, the scenario's exit status (None if it never finished), and whether it began."""
    results: list[Result] = []
    status: int | None = None
    began = False
    current: tuple[str, int, str] | None = None
    chunks: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        if current is not None:
            if line == f"ARTIFACT-END {current[0]}":
                name, size, digest = current
                try:
                    blob = base64.b64decode("".join(chunks), validate=False)
                except ValueError as e:
                    results.append(Result(False, f"artifact-{name}", f"undecodable base64: {e}"))
                else:
                    if len(blob) != size or hashlib.sha256(blob).hexdigest() != digest:
                        results.append(Result(False, f"artifact-{name}",
                                              f"corrupted in transit: {len(blob)} of {size} bytes, checksum mismatch"))
                    else:
                        (artifacts / name).write_bytes(blob)
                current, chunks = None, []
            else:
                chunks.append(line.strip())
            continue
        if line.startswith("ARTIFACT-BEGIN "):
            f = line.split()
            if len(f) == 4 and f[2].isdigit() and re.fullmatch(r"[A-Za-z0-9._+-]+", f[1]):
                current, chunks = (f[1], int(f[2]), f[3]), []
            else:
                results.append(Result(False, "artifact", f"malformed artifact header: {line!r}"))
        elif line.startswith("BEGIN "):
            began = True
        elif line.startswith("DONE "):
            v = line[5:].strip()
            status = int(v) if v.lstrip("-").isdigit() else -1
        else:
            results.extend(parse_results(line))
    if current is not None:
        results.append(Result(False, f"artifact-{current[0]}", "transfer cut off (guest stopped mid-artifact)"))
    return results, status, began


TAIL_GUARD = 1 << 20


def tail_guard_cpio() -> bytes:
    """A zero-filled file that must be the initrd's last member.

    QEMU places the initrd so that it ends just below what it reserves for the firmware's tables
    (160 KiB), but SeaBIOS's reserved zone is larger (e820 `reserved` starts at 0x3ffd6000 with
    -m 1024), so the initrd's last page(s) lie inside firmware memory and the firmware writes into
    them before Linux moves the ramdisk ("Move RAMDISK" in dmesg). Measured: 4 bytes (`01`,
    `11 7d 0e`) about 5.7 KiB before the end of a 2 GiB L1's initrd. Whatever was last (the
    scenario, its lab-files, the cpio trailer) was corrupted: the "busybox ash mangles scripts"
    flake, "Initramfs unpacking failed: no cpio magic", /init without /lab/config. This file
    absorbs it; the guest's /init reports how many bytes landed in it and deletes it."""
    c = Cpio()
    c.data("lab/tail-guard", b"\0" * TAIL_GUARD)
    return c.bytes()


def scenario_cpio(s: Scenario, kernel: Kernel, verbose: bool, qemu_cmdline: str) -> bytes:
    c = Cpio()
    c.file("lab/scenario.sh", s.path, 0o755)
    c.data("lab/qemu-cmdline.txt", qemu_cmdline.encode())
    cfg = (f"LAB_SCENARIO='{s.name}'\nLAB_MACHINE='{s.machine}'\nLAB_TIMEOUT='{s.timeout}'\n"
           f"LAB_KVER='{kernel.version}'\nLAB_VERBOSE='{1 if verbose else 0}'\n"
           f"LAB_NEEDS='{' '.join(s.needs)}'\nLAB_BOOTS='{s.boots}'\n")
    c.data("lab/config", cfg.encode())
    if s.early is not None:
        src = (REPO / s.early).resolve()
        if not src.is_file():
            raise LabError(f"{s.path.name}: lab-early '{s.early}' is not a file in the repository")
        c.file("lab/early.sh", src, 0o644)
    for f in s.files:
        src = (REPO / f).resolve()
        if not src.is_file():
            raise LabError(f"{s.path.name}: lab-files entry '{f}' is not a file in the repository")
        c.file(f"lab/files/{src.name}", src)
    return c.bytes()


class Lab:
    """Prepares shared inputs once per invocation and runs scenarios."""

    def __init__(self, keep: bool = False, verbose: bool = False, prefix_console: bool = True) -> None:
        self.keep = keep
        self.verbose = verbose
        self.prefix_console = prefix_console
        self._kernel: Kernel | None = None
        self._svmm: Path | None = None

    def kernel(self) -> Kernel:
        if self._kernel is None:
            t = time.monotonic()
            self._kernel = ensure_kernel()
            log(f"kernel {self._kernel.version} ({self._kernel.image.name}) ready in {time.monotonic() - t:.1f}s")
        return self._kernel

    def svmm_stage(self) -> Path:
        if self._svmm is None:
            t = time.monotonic()
            p = subprocess.run([str(LAB / "build-svmm")], stdout=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise LabError("building svmm failed (see the swift build output above)")
            self._svmm = Path(p.stdout.strip().splitlines()[-1])
            log(f"svmm staged in {time.monotonic() - t:.1f}s")
        return self._svmm

    def run(self, s: Scenario) -> list[Result]:
        """Boots L1, runs the scenario, and returns its results (guest and host side)."""
        kernel = self.kernel()
        stage = self.svmm_stage()
        mods = module_closure(kernel, STANDARD_MODULES + (L2_MODULES if "l2" in s.needs else []) + s.modules)
        parts = [base_cpio(), svmm_cpio(stage), modules_cpio(kernel, mods)]
        if "l2" in s.needs:
            parts.append(l2_cpio(kernel))
        if s.bins:
            parts.append(bins_cpio(s.bins))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run = OUT / f"{s.name}-{stamp}-{os.getpid()}"
        artifacts = run / "artifacts"
        artifacts.mkdir(parents=True)
        extra_parts: list[bytes] = []
        if "systemd" in s.needs:
            parts += [systemd_cpio(), module_indexes_cpio(kernel, mods, run)]
            extra_parts.append(install_cpio(stage, run))
        initrd = run / "initrd.cpio"
        mem = 2048 if "l2" in s.needs else 1024
        margs, append = machine_args(s.machine, run, mem, reboot=s.boots > 1, smp=s.smp)
        if not self.verbose:
            append += " quiet"
        cmd = ["timeout", "-k", "5", str(s.timeout), "qemu-system-x86_64", *margs,
               "-kernel", str(kernel.image), "-initrd", str(initrd), "-append", append]
        cmdline = " ".join(_quote(a) for a in cmd) + "\n"
        (run / "qemu-cmdline.txt").write_text(cmdline)
        with open(initrd, "wb") as f:
            for p in parts:
                with open(p, "rb") as src:
                    shutil.copyfileobj(src, f)
            for extra in extra_parts:
                f.write(extra)
            f.write(scenario_cpio(s, kernel, self.verbose, cmdline))
            f.write(tail_guard_cpio())
        make_nvme_image(run / "nvme.img", run)
        make_usb_image(run / "usb.img")
        print(f"== {s.name}: {s.description or '(no description)'} [{s.machine}, timeout {s.timeout}s, log {run}]",
              flush=True)
        t0 = time.monotonic()
        console_lines: list[str] = []
        boots = 0
        stopped = ""
        with open(run / "console.log", "w") as con:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            assert p.stdout is not None
            for raw in p.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n").replace("\r", "")
                con.write(line + "\n")
                console_lines.append(line)
                print(f"  {s.name}| {line}" if self.prefix_console else line, flush=True)
                # A machine that may reboot must not reboot forever: panic=-1 turns a panic into a reboot.
                if s.boots > 1 and not stopped:
                    if line.startswith("lab: init: up at"):
                        boots += 1
                        if boots > s.boots:
                            stopped = f"the guest booted {boots} times, more than lab-boots: {s.boots}"
                    elif "Kernel panic" in line:
                        stopped = f"kernel panic: {line.strip()[:200]}"
                    if stopped:
                        p.terminate()   # SIGTERM: timeout(1) passes it on to QEMU (a SIGKILL would orphan QEMU)
            rc = p.wait()
        wall = time.monotonic() - t0
        proto = (run / "proto.log").read_text(errors="replace") if (run / "proto.log").exists() else ""
        results, status, began = parse_protocol(proto, artifacts)
        if stopped:
            results.append(Result(False, "guest", f"stopped: {stopped}"))
        elif status is None:
            results.append(Result(False, "guest", self._why_unfinished(rc, s.timeout, began, console_lines)))
        elif status != 0:
            results.append(Result(False, "scenario-exit", f"the scenario script exited with status {status}"))
        elif not results:
            results.append(Result(False, "guest", "the scenario finished without reporting any PASS or FAIL"))
        if s.host_check is not None:
            if status is None:
                results.append(Result(False, "host-check", f"{s.host_check.name} skipped: the guest did not finish"))
            else:
                results += self._host_check(s, artifacts)
        (run / "wall-seconds").write_text(f"{wall:.1f}\n")
        log(f"{s.name}: guest ran {wall:.1f}s (qemu exit {rc})")
        if not self.keep:
            for big in ("initrd.cpio", "nvme.img", "usb.img"):
                (run / big).unlink(missing_ok=True)
        self.last_wall = wall
        return results

    @staticmethod
    def _why_unfinished(rc: int, timeout: int, began: bool, console: list[str]) -> str:
        panic = next((l.strip() for l in console if "Kernel panic" in l), None)
        if panic:
            return f"kernel panic: {panic[:200]}"
        if rc in (124, 137):
            where = "while running the scenario" if began else "before the scenario started (boot or /init stuck)"
            last = next((l.strip() for l in reversed(console)
                         if l.strip() and not l.startswith("qemu-system-x86_64:")), "(no console output)")
            return f"timeout after {timeout}s {where}; last console line: {last[:160]}"
        if not began:
            return f"the scenario never started (qemu exit {rc}); see console.log"
        return f"the scenario never reported completion (qemu exit {rc}): the guest died or powered off early"

    @staticmethod
    def _host_check(s: Scenario, artifacts: Path) -> list[Result]:
        hc = s.host_check
        assert hc is not None
        try:
            p = subprocess.run([str(hc), str(artifacts)], capture_output=True, text=True, timeout=300,
                               env={**os.environ, "LAB_REPO": str(REPO), "LAB_SCENARIO": s.name})
        except subprocess.TimeoutExpired:
            return [Result(False, "host-check", f"{hc.name} ran past 300s")]
        except OSError as e:
            return [Result(False, "host-check", f"{hc.name} could not run: {e}")]
        for line in (p.stdout + p.stderr).splitlines():
            if not line.startswith(("PASS ", "FAIL ")):
                print(f"  {s.name}.host| {line}", flush=True)
        res = parse_results(p.stdout)
        if p.returncode != 0 and not any(not r.ok for r in res):
            err = (p.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            res.append(Result(False, "host-check", f"{hc.name} exited {p.returncode}: {err[:200]}"))
        if not res:
            res.append(Result(False, "host-check", f"{hc.name} reported nothing"))
        return res


def _quote(a: str) -> str:
    return a if re.fullmatch(r"[A-Za-z0-9_./:=,+@%-]+", a) else "'" + a.replace("'", "'\\''") + "'"
