"""A real SMTP server for identa's tests (aiosmtpd): listens on 127.0.0.1:<port>, appends
every message it receives to <file> (one raw message per block, separated by a marker
line), prints "ready" once it accepts connections, and runs until killed.

    python3 tests/support/smtp_sink.py <port> <file> [plain|starttls|tls <cert.pem> <key.pem>]

`starttls` offers STARTTLS and refuses mail before it; `tls` speaks TLS from the first byte.
Recipients whose address starts with `refused` get a permanent refusal (550 5.1.1).
"""
import ssl
import sys
import time

from aiosmtpd.controller import Controller

MARKER = "\n----- identa smtp sink: end of message -----\n"


class Sink:
    def __init__(self, path):
        self.path = path

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("refused"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        body = envelope.content.decode("utf-8", errors="replace")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("X-Envelope-To: " + ",".join(envelope.rcpt_tos) + "\n")
            f.write(body)
            f.write(MARKER)
        return "250 Message accepted for delivery"


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "plain"
    kwargs = {}
    if mode != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[4], sys.argv[5])
        if mode == "tls":
            kwargs["ssl_context"] = context
        else:
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
    controller = Controller(Sink(path), hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
