"""A lean HTTP/1.1 client for the benches: one kept-alive connection,
TCP_NODELAY, Content-Length and chunked bodies, 64 KiB reads (recv(1 MiB)
allocates a megabyte per call). http.client spends
~200 us of its own per request on this machine (header parsing through
email.parser), more than the server it would measure; this spends ~20.
"""
import socket


class Conn:
    def __init__(self, host, port, timeout=600):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _fill(self):
        b = self.s.recv(65536)
        if not b:
            raise ConnectionError("the server closed the connection")
        self.buf += b

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def get(self, path):
        """Returns (status, headers as a dict of lower-case names, body)."""
        self.s.sendall(("GET %s HTTP/1.1\r\nHost: bench\r\n\r\n" % path).encode())
        status = int(self._line().split()[1])
        h = {}
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            h[k.strip().lower()] = v.strip()
        if "content-length" in h:
            return status, h, self._take(int(h["content-length"]))
        if h.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                n = int(self._line().split(b";")[0], 16)
                if n == 0:
                    while self._line():  # trailers, then the empty line
                        pass
                    return status, h, b"".join(parts)
                parts.append(self._take(n))
                self._take(2)
        raise ValueError("a reply without Content-Length or chunks")
