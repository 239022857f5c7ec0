"""A tiny SMTP server (a thread per connection) that records every message: EHLO/HELO, AUTH PLAIN/LOGIN,
MAIL, RCPT, DATA, RSET, NOOP, QUIT. Enough for smtplib; no TLS (runplane is told smtp_security=none)."""

from __future__ import annotations

import base64
import socketserver
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    data: bytes
    auth: str | None

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


@dataclass
class FakeSMTPServer:
    username: str | None = None
    password: str | None = None
    messages: list[ReceivedMail] = field(default_factory=list)
    port: int = 0
    _server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> FakeSMTPServer:
        owner = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                owner._session(self)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _session(self, h: socketserver.StreamRequestHandler) -> None:
        def reply(line: str) -> None:
            h.wfile.write((line + "\r\n").encode())

        sender, recipients, user = "", [], None
        reply("220 fake-smtp ready")
        while line := h.rfile.readline(65536):
            command = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                reply("250-fake-smtp")
                reply("250-AUTH PLAIN LOGIN" if self.username else "250-8BITMIME")
                reply("250 SIZE 10485760")
            elif verb == "HELO" or verb == "NOOP":
                reply("250 ok")
            elif verb == "AUTH":
                user = self._auth(h, command, reply)
                if user is None:
                    reply("535 authentication failed")
                else:
                    reply("235 authenticated")
            elif verb == "MAIL":
                if self.username and user is None:
                    reply("530 authentication required")
                    continue
                sender, recipients = command.split(":", 1)[1].strip().split(" ")[0].strip("<>"), []
                reply("250 ok")
            elif verb == "RCPT":
                recipients.append(command.split(":", 1)[1].strip().strip("<>"))
                reply("250 ok")
            elif verb == "DATA":
                reply("354 end with <CRLF>.<CRLF>")
                chunks = []
                while (data := h.rfile.readline(1 << 20)) not in (b".\r\n", b".\n", b""):
                    chunks.append(data[1:] if data.startswith(b"..") else data)
                self.messages.append(ReceivedMail(sender, recipients, b"".join(chunks), user))
                reply("250 queued")
            elif verb == "RSET":
                sender, recipients = "", []
                reply("250 ok")
            elif verb == "QUIT":
                reply("221 bye")
                return
            else:
                reply("502 command not implemented")

    def _auth(self, h: socketserver.StreamRequestHandler, command: str, reply: object) -> str | None:
        parts = command.split(" ")
        mechanism = parts[1].upper() if len(parts) > 1 else ""
        if mechanism == "PLAIN":
            if len(parts) > 2:
                encoded = parts[2]
            else:
                reply("334 ")  # type: ignore[operator]
                encoded = h.rfile.readline().decode().strip()
            _, name, secret = base64.b64decode(encoded).decode().split("\x00")
        elif mechanism == "LOGIN":
            reply("334 " + base64.b64encode(b"Username:").decode())  # type: ignore[operator]
            name = base64.b64decode(h.rfile.readline().strip()).decode()
            reply("334 " + base64.b64encode(b"Password:").decode())  # type: ignore[operator]
            secret = base64.b64decode(h.rfile.readline().strip()).decode()
        else:
            return None
        return name if (name, secret) == (self.username, self.password) else None
