"""The RFB (VNC) handshake, enough for the console proxy to log in to a VM's VNC server with the
VM's password and hand the browser a session that needs none: the password never leaves the
server side (no URL, no page, no log).

RFB 3.8 (RFC 6143 §7.1–7.2): version strings, security types, VNC authentication (DES of the
server's 16-byte challenge with the password, each key byte bit-reversed), SecurityResult. After
the handshake the bytes that follow (ClientInit, ServerInit, …) are relayed untouched.

No Django imports: the proxy gives two byte-stream functions per side, so the same code runs on a
plain socket (the VNC server, the benchmark) and on a websocket (the browser).
"""
from __future__ import annotations

import socket
import struct
from collections.abc import Callable

VERSION_38 = b"RFB 003.008\n"
SECURITY_NONE = 1
SECURITY_VNC = 2

Recv = Callable[[int], bytes]  # exactly n bytes, or raise RfbError
Send = Callable[[bytes], None]


class RfbError(Exception):
    """The peer broke the protocol or refused the login; the message says which, without secrets."""


def _des_key(password: str) -> bytes:
    """VNC's DES key: the first 8 bytes of the password, NUL-padded, each byte's bits reversed."""
    raw = password.encode("latin-1", "replace")[:8].ljust(8, b"\0")
    return bytes(int(f"{b:08b}"[::-1], 2) for b in raw)


def vnc_auth_response(challenge: bytes, password: str) -> bytes:
    """The 16-byte answer to a VNC authentication challenge (DES-ECB; single DES is TripleDES with
    one 8-byte key repeated, which is how `cryptography` still offers it)."""
    try:  # cryptography >= 43 keeps 3DES among the "decrepit" ciphers
        from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
    except ImportError:  # pragma: no cover - older cryptography
        from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES
    from cryptography.hazmat.primitives.ciphers import Cipher, modes

    if len(challenge) != 16:
        raise RfbError("the VNC server sent a malformed challenge")
    encryptor = Cipher(TripleDES(_des_key(password) * 3), modes.ECB()).encryptor()
    return encryptor.update(challenge) + encryptor.finalize()


def _reason(recv: Recv) -> str:
    (length,) = struct.unpack(">I", recv(4))
    return recv(min(length, 4096)).decode("utf-8", "replace")


def _version(data: bytes) -> tuple[int, int]:
    if len(data) != 12 or not data.startswith(b"RFB ") or data[7:8] != b".":
        raise RfbError("the peer does not speak RFB")
    try:
        return int(data[4:7]), int(data[8:11])
    except ValueError as exc:
        raise RfbError("the peer sent a malformed RFB version") from exc


def login(recv: Recv, send: Send, password: str) -> None:
    """Log in to a VNC server (we are the client): version 3.8, then VNC authentication with
    `password` when the server asks for it, or None when it offers that."""
    major, minor = _version(recv(12))
    if (major, minor) < (3, 8):
        raise RfbError(f"the VNC server speaks RFB {major}.{minor}; 3.8 is needed")
    send(VERSION_38)
    (count,) = struct.unpack("B", recv(1))
    if count == 0:
        raise RfbError(f"the VNC server refused the connection: {_reason(recv)}")
    offered = set(recv(count))
    if password and SECURITY_VNC in offered:
        send(bytes([SECURITY_VNC]))
        send(vnc_auth_response(recv(16), password))
    elif SECURITY_NONE in offered:
        send(bytes([SECURITY_NONE]))
    else:
        raise RfbError(f"the VNC server offers no security type the proxy supports ({sorted(offered)})")
    (result,) = struct.unpack(">I", recv(4))
    if result != 0:
        raise RfbError(f"the VNC server refused the login: {_reason(recv) or 'wrong password'}")


def serve_without_password(recv: Recv, send: Send) -> None:
    """Greet a VNC client (the browser's noVNC) as a server offering security type None: the
    proxy has already logged in to the real server, so the client needs no password."""
    send(VERSION_38)
    major, minor = _version(recv(12))
    if (major, minor) < (3, 7):
        raise RfbError(f"the console client speaks RFB {major}.{minor}; 3.7 or newer is needed")
    send(bytes([1, SECURITY_NONE]))
    (chosen,) = struct.unpack("B", recv(1))
    if chosen != SECURITY_NONE:
        raise RfbError("the console client chose a security type that was not offered")
    if minor >= 8:
        send(struct.pack(">I", 0))


def socket_io(sock: socket.socket) -> tuple[Recv, Send]:
    """recv-exactly and send-all over a blocking socket (with its own timeout)."""

    def recv(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise RfbError("the VNC server closed the connection during the handshake")
            data += chunk
        return data

    return recv, sock.sendall
