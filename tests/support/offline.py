"""The tests' offline guard (a connection to anything but this machine is refused), and a command
prefix that runs a program in a network namespace with no network but loopback."""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket

import pytest


def is_local(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback
                       for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def refuse_remote(event, args):
    if event == "socket.connect" and not is_local(args[1]):
        raise ConnectionRefusedError(f"test guard: connection off this machine refused: {args[1]!r}")


def no_network_command() -> list[str]:
    """``unshare`` in a new network namespace (as a mapped root when not root): no network but loopback."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("unshare and ip (util-linux, iproute2) are needed for the offline test")
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
