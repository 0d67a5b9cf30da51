"""Test-only: refuse and record every connection or name lookup beyond this machine.

tests/conftest.py puts this folder first on PYTHONPATH, so every Python process the suite
starts (test.py, train.py, scripts) imports it at start-up; the suite itself installs it too.
Loopback stays open (the multi-worker test's workers talk over 127.0.0.1). Each attempt is
appended to $EIPNET_TEST_NETWORK_LOG and fails as an unreachable network would.
"""
import errno
import ipaddress
import os
import socket
import sys


def _is_local(host):
    if host is None or host in ("", "localhost", socket.gethostname()):
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host.endswith(".localhost")
    return address.is_loopback or address.is_unspecified


def _refuse(what, host):
    path = os.environ.get("EIPNET_TEST_NETWORK_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{what} {host} by pid {os.getpid()}: {' '.join(sys.argv)[:200]}\n")
    raise OSError(errno.ENETUNREACH, f"tests allow no connection beyond this machine ({what} {host})")


def install():
    if getattr(socket, "_eipnet_guard", False):
        return
    connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
    getaddrinfo, gethostbyname = socket.getaddrinfo, socket.gethostbyname

    def guarded_connect(self, address, _real=connect):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse("connect", address[0])
        return _real(self, address)

    def guarded_connect_ex(self, address):
        return guarded_connect(self, address, connect_ex)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse("lookup", host)
        return getaddrinfo(host, *args, **kwargs)

    def guarded_gethostbyname(host):
        if not _is_local(host):
            _refuse("lookup", host)
        return gethostbyname(host)

    socket.socket.connect, socket.socket.connect_ex = guarded_connect, guarded_connect_ex
    socket.getaddrinfo, socket.gethostbyname = guarded_getaddrinfo, guarded_gethostbyname
    socket._eipnet_guard = True


install()
