"""Hardware grains from /proc and /sys: CPU, memory, disks, the machine's identity (machine-id,
DMI) and whether it runs in a container or a virtual machine (`virtual`, `virtual_subtype`)."""

from __future__ import annotations

import glob
import os
import subprocess
from typing import Any

DMI_DIR = "/sys/class/dmi/id"
# grain -> file under DMI_DIR (uuid and serial number are readable by root only)
DMI_FILES = {"biosversion": "bios_version", "biosreleasedate": "bios_date", "manufacturer": "sys_vendor",
             "productname": "product_name", "serialnumber": "product_serial", "uuid": "product_uuid",
             "boardname": "board_name"}

GPU_VENDORS = {"10de": "nvidia", "1002": "amd", "8086": "intel", "1013": "cirrus logic", "15ad": "vmware",
               "102b": "matrox", "1a03": "aspeed"}
PCI_IDS = ("/usr/share/misc/pci.ids", "/usr/share/hwdata/pci.ids", "/usr/share/pci.ids")

# systemd-detect-virt's answer -> (virtual, virtual_subtype) as Salt names them
DETECT_VIRT = {"kvm": ("kvm", None), "qemu": ("kvm", None), "amazon": ("Nitro", "Amazon EC2"),
               "vmware": ("VMware", None), "oracle": ("VirtualBox", None), "microsoft": ("HyperV", None),
               "xen": ("xen", None), "bhyve": ("bhyve", None), "parallels": ("Parallels", None),
               "docker": ("container", "Docker"), "podman": ("container", "Podman"),
               "lxc": ("container", "LXC"), "lxc-libvirt": ("container", "LXC"),
               "systemd-nspawn": ("container", "systemd-nspawn"), "openvz": ("openvzve", None),
               "wsl": ("container", "WSL"), "rkt": ("container", "rkt"), "proot": ("container", "proot")}


def read_text(path: str, limit: int = 1 << 20) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return None


def cpu_grains(cpuinfo: str) -> dict[str, Any]:
    """cpu_model and cpu_flags from the text of /proc/cpuinfo (x86 `model name`/`flags`, ARM
    `Processor` or `model name`/`Features`, POWER `cpu`), and num_cpus."""
    model, flags = "", []
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key in ("model name", "Processor", "cpu", "uarch") and not model:
            model = value
        elif key in ("flags", "Features") and not flags:
            flags = value.split()
    return {"cpu_model": model, "cpu_flags": flags, "num_cpus": os.cpu_count() or 1}


def mem_grains(meminfo: str) -> dict[str, int]:
    """mem_total and swap_total in MiB (kB in /proc/meminfo // 1024, as Salt)."""
    out = {"mem_total": 0, "swap_total": 0}
    for line in meminfo.splitlines():
        key, _, rest = line.partition(":")
        grain = {"MemTotal": "mem_total", "SwapTotal": "swap_total"}.get(key)
        if grain and rest.split():
            out[grain] = int(rest.split()[0]) // 1024
    return out


def disk_grains(sys_block: str = "/sys/block") -> dict[str, list[str]]:
    """disks (rotational) and ssds (not rotational) among the block devices that are hardware
    (loop, zram, device-mapper and md devices live under /sys/devices/virtual and are left out).
    `SSDs` is the name Salt used before 2019.2, kept for states written then."""
    disks, ssds = [], []
    for entry in sorted(glob.glob(os.path.join(sys_block, "*"))):
        if "/devices/virtual/" in os.path.realpath(entry):
            continue
        flag = (read_text(os.path.join(entry, "queue", "rotational")) or "").strip()
        (disks if flag == "1" else ssds if flag == "0" else []).append(os.path.basename(entry))
    return {"disks": disks, "ssds": ssds, "SSDs": list(ssds)}


def _pci_name(vendor: str, device: str, ids_files: tuple[str, ...]) -> str:
    """The device's name from the PCI ID database (pci.ids), else `vendor:device` in hex."""
    for path in ids_files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                in_vendor = False
                for line in f:
                    if not line.startswith("\t"):
                        in_vendor = line.startswith(vendor + " ")
                    elif in_vendor and line.startswith(f"\t{device} "):
                        return line.strip()[len(device):].strip()
        except OSError:
            continue
    return f"{vendor}:{device}"


def gpu_grains(pci_dir: str = "/sys/bus/pci/devices", ids_files: tuple[str, ...] = PCI_IDS) -> dict[str, Any]:
    """gpus ([{vendor, model}]: display controllers on the PCI bus, vendors named as Salt names them)
    and num_gpus."""
    gpus = []
    for dev in sorted(glob.glob(os.path.join(pci_dir, "*"))):
        if (read_text(os.path.join(dev, "class")) or "").strip()[:6] not in ("0x0300", "0x0302", "0x0380"):
            continue
        vendor = (read_text(os.path.join(dev, "vendor")) or "").strip().lower().removeprefix("0x")
        device = (read_text(os.path.join(dev, "device")) or "").strip().lower().removeprefix("0x")
        gpus.append({"vendor": GPU_VENDORS.get(vendor, "unknown"), "model": _pci_name(vendor, device, ids_files)})
    return {"gpus": gpus, "num_gpus": len(gpus)}


def machine_grains() -> dict[str, Any]:
    """machine_id (systemd/dbus machine-id) and the DMI facts the kernel exposes (uuid, serialnumber,
    manufacturer, productname, biosversion, biosreleasedate, boardname), each only when readable."""
    out: dict[str, Any] = {}
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        text = (read_text(path) or "").strip()
        if text:
            out["machine_id"] = text
            break
    for grain, name in DMI_FILES.items():
        text = (read_text(os.path.join(DMI_DIR, name)) or "").strip()
        if text:
            out[grain] = text.lower() if grain == "uuid" else text
    return out


def _container(root: str = "/") -> tuple[str, str] | None:
    """(virtual, virtual_subtype) when this runs in a container, from the marks container engines leave."""
    if os.path.exists(os.path.join(root, ".dockerenv")):
        return "container", "Docker"
    if os.path.exists(os.path.join(root, "run/.containerenv")):
        return "container", "Podman"
    marker = (read_text(os.path.join(root, "run/systemd/container")) or "").strip()
    if marker:
        return DETECT_VIRT.get(marker, ("container", marker))  # type: ignore[return-value]
    environ = read_text(os.path.join(root, "proc/1/environ")) or ""
    for var in environ.split("\0"):
        if var.startswith("container="):
            kind = var.partition("=")[2]
            return DETECT_VIRT.get(kind, ("container", kind))  # type: ignore[return-value]
    cgroup = read_text(os.path.join(root, "proc/1/cgroup")) or ""
    if ":/lxc/" in cgroup or "/lxc.payload" in cgroup:
        return "container", "LXC"
    if any(m in cgroup for m in ("/docker/", "/docker-", ":/system.slice/docker")):
        return "container", "Docker"
    if "/kubepods" in cgroup:
        return "container", "kubernetes"
    return None


def _vm_from_dmi(vendor: str, product: str) -> tuple[str, str | None] | None:
    both = f"{vendor} {product}"
    for mark, answer in (("VirtualBox", ("VirtualBox", None)), ("VMware", ("VMware", None)),
                         ("Amazon EC2", ("Nitro", "Amazon EC2")), ("Google", ("gce", None)),
                         ("BHYVE", ("bhyve", None)), ("Parallels", ("Parallels", None)),
                         ("OpenStack", ("OpenStack", None)), ("RHEV Hypervisor", ("kvm", "rhev")),
                         ("oVirt", ("kvm", "ovirt")), ("KVM", ("kvm", None)), ("QEMU", ("kvm", None)),
                         ("Bochs", ("kvm", None))):
        if mark in both:
            return answer
    if "Microsoft" in vendor and "Virtual Machine" in product:
        return "HyperV", None
    if "Xen" in vendor:
        return "xen", "HVM domU"
    return None


def virtual_grains(cpu_flags: list[str]) -> dict[str, Any]:
    """virtual: `container` (virtual_subtype Docker, Podman, LXC, systemd-nspawn, kubernetes), a
    hypervisor name as Salt spells it (kvm, VMware, VirtualBox, xen, HyperV, Nitro, gce, bhyve ...),
    or `physical`.  Container marks are checked first (a container in a VM is a container)."""
    found = _container()
    if found is None:
        dmi = _vm_from_dmi((read_text(f"{DMI_DIR}/sys_vendor") or "").strip(),
                           (read_text(f"{DMI_DIR}/product_name") or "").strip())
        if dmi is not None:
            found = dmi  # type: ignore[assignment]
        elif (read_text("/sys/hypervisor/type") or "").strip() == "xen":
            found = ("xen", None)  # type: ignore[assignment]
        elif "hypervisor" in cpu_flags:
            found = _detect_virt()
    if found is None:
        return {"virtual": "physical"}
    virtual, subtype = found
    return {"virtual": virtual, **({"virtual_subtype": subtype} if subtype else {})}


def _detect_virt() -> tuple[str, str | None] | None:
    """Ask systemd-detect-virt (when installed) about a hypervisor the CPU admits to but DMI does not name."""
    from rx.minion.grains.system import which
    tool = which("systemd-detect-virt")
    if not tool:
        return None
    try:
        answer = subprocess.run([tool, "--vm"], capture_output=True, text=True, timeout=2).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return DETECT_VIRT.get(answer) if answer and answer != "none" else None


def hardware_grains() -> dict[str, Any]:
    grains = cpu_grains(read_text("/proc/cpuinfo") or "")
    grains.update(mem_grains(read_text("/proc/meminfo") or ""))
    grains.update(disk_grains())
    grains.update(gpu_grains())
    grains.update(machine_grains())
    grains.update(virtual_grains(grains["cpu_flags"]))
    return grains
