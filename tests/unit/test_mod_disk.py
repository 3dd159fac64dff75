"""disk.*: the df and blkid parsers on captured output, and each function on this machine against
os.statvfs and a filesystem image made here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rx.modules import CommandError, disk

DATA = Path(__file__).parent / "data" / "sysinfo"
USAGE_KEYS = ("1K-blocks", "used", "available", "capacity")


def test_parse_df_keeps_spaces_in_mount_points():
    parsed = disk._parse_df((DATA / "df_P.txt").read_text(), USAGE_KEYS)
    assert parsed["/"] == {"filesystem": "/dev/vda", "1K-blocks": "264212084", "used": "23520264",
                           "available": "82870648", "capacity": "23%"}
    assert parsed["/tmp/cap/mnt with space"] == {"filesystem": "rxcap", "1K-blocks": "4096", "used": "0",
                                                 "available": "4096", "capacity": "0%"}
    assert parsed["/mnt/sandboxing/model_tools_env/v1/python"]["filesystem"] == "model_tools_unavailable"
    assert len(parsed) == 6


def test_parse_df_inodes_and_pseudo_filesystems():
    parsed = disk._parse_df((DATA / "df_iP.txt").read_text(), ("inodes", "used", "free", "use"))
    assert parsed["/"] == {"filesystem": "/dev/vda", "inodes": "16777216", "used": "452556", "free": "16324660",
                           "use": "3%"}
    proc = disk._parse_df("Filesystem 1024-blocks Used Available Capacity Mounted on\n"
                          "proc                0    0         0        - /proc\n", USAGE_KEYS)
    assert proc == {"/proc": {"filesystem": "proc", "1K-blocks": "0", "used": "0", "available": "0", "capacity": "-"}}


def test_parse_blkid_export_unescapes():
    parsed = disk._parse_blkid_export((DATA / "blkid_export.txt").read_text() + "\nDEVNAME=/dev/vdb\nTYPE=swap\n")
    assert parsed == {"/tmp/rxt.img": {"LABEL": "my data", "UUID": "0b9a3c2e-1111-4222-8333-444455556666",
                                       "BLOCK_SIZE": "1024", "TYPE": "ext4"},
                      "/dev/vdb": {"TYPE": "swap"}}


def test_usage_of_root_is_statvfs():
    root = disk.usage()["/"]
    st = os.statvfs("/")
    assert int(root["1K-blocks"]) == st.f_blocks * st.f_frsize // 1024
    # space moves while other work writes; reserved blocks (f_bfree - f_bavail) would be far more
    assert abs(int(root["available"]) - st.f_bavail * st.f_frsize // 1024) < 64 * 1024
    assert root["capacity"].endswith("%")


def test_inodeusage_of_root_is_statvfs():
    root = disk.inodeusage()["/"]
    st = os.statvfs("/")
    if st.f_files == 0:
        pytest.skip("the root filesystem reports no inode count")
    assert int(root["inodes"]) == st.f_files
    assert abs(int(root["free"]) - st.f_ffree) < 100_000


def test_percent_of_one_and_all():
    everything = disk.percent()
    assert disk.percent("/") == everything["/"] == disk.usage()["/"]["capacity"]
    with pytest.raises(CommandError, match="not a mount point"):
        disk.percent("/no/such/mount")


def test_usage_flags():
    mounts = {line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()}
    if "/proc" in mounts:
        assert "/proc" in disk.usage("a") and "/proc" not in disk.usage()
    assert "/" in disk.usage("l")
    for bad in ("x", "a; rm -rf /", "i"):
        with pytest.raises(CommandError, match="unsupported df flag"):
            disk.usage(bad)


@pytest.fixture
def ext4_image(tmp_path):
    if not shutil.which("mkfs.ext4"):
        pytest.skip("mkfs.ext4 is not installed")
    img = tmp_path / "fs.img"
    with open(img, "wb") as f:
        f.truncate(8 * 2**20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "rx data", "-U", "0b9a3c2e-1111-4222-8333-444455556666",
                    str(img)], check=True, timeout=60)
    return str(img)


def test_blkid_of_an_image(ext4_image):
    found = disk.blkid(ext4_image)
    assert found[ext4_image]["TYPE"] == "ext4"
    assert found[ext4_image]["LABEL"] == "rx data"
    assert found[ext4_image]["UUID"] == "0b9a3c2e-1111-4222-8333-444455556666"
    assert disk.blkid(ext4_image, token="TYPE=ext4") == found
    assert disk.blkid(ext4_image, token="TYPE=xfs") == {}


def test_blkid_refuses_bad_input(tmp_path):
    with pytest.raises(CommandError, match="no such device"):
        disk.blkid(str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="absolute path"):
        disk.blkid("fs.img")
    for bad in ("ext4", "-o=full"):
        with pytest.raises(CommandError, match="NAME=value"):
            disk.blkid(token=bad)


def test_blkid_of_an_empty_file_finds_nothing(tmp_path):
    empty = tmp_path / "empty.img"
    empty.write_bytes(b"\0" * 65536)
    assert disk.blkid(str(empty)) == {}
