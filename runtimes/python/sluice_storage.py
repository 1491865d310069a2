"""ctx.storage for python handlers: the sluice namespace over the API socket given with each invoke.

Files move through the WebDAV door (GET/PUT/MKCOL/DELETE at /<path>), attributes come from the
dCache-compatible namespace API (/api/v1/namespace/<path>). One keep-alive connection per client,
streamed bodies for download/upload. Stdlib only; python 3.8 or newer.
"""

import http.client
import json
import os
import shutil
import socket
import threading
from urllib.parse import quote

_CHUNK = 1 << 16


class StorageError(Exception):
    """A refusal by sluice: the HTTP status and the server's own explanation (RFC 7807 detail)."""

    def __init__(self, status, detail, method="", path=""):
        where = ("%s %s: " % (method, path)) if method else ""
        super().__init__("%s%d %s" % (where, status, detail) if detail else "%s%d" % (where, status))
        self.status = status
        self.detail = detail


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path, timeout):
        super().__init__("localhost", timeout=timeout, blocksize=_CHUNK)
        self._socket_path = socket_path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._socket_path)
        self.sock = sock


def _segments(path):
    if not isinstance(path, str):
        raise TypeError("a storage path must be a str, not %s" % type(path).__name__)
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise ValueError('a storage path must not contain "..": %s' % path)
    return segments


def encode_path(path):
    """A namespace path as a URL path, each segment percent-encoded."""
    return "/" + "/".join(quote(s, safe="") for s in _segments(path))


def _detail(body, content_type):
    text = body.decode("utf-8", "replace").strip()
    if "json" in (content_type or ""):
        try:
            problem = json.loads(text)
            return str(problem.get("detail") or problem.get("title") or text)
        except (ValueError, AttributeError):
            pass
    return text[:2000]


class Storage:
    """The storage client of one activation: `socket_path` is the API's unix socket, `token` the bearer
    token sluice issued for this activation (its scopes bound what the handler may touch)."""

    def __init__(self, socket_path, token, timeout=None):
        self._socket_path = socket_path
        self._token = token
        self._timeout = timeout
        self._conn = None
        self._lock = threading.Lock()

    # -- transport --

    def _request(self, method, target, path, body=None, headers=None, sink=None):
        """One request; returns (status, headers, body bytes). A non-2xx answer raises StorageError.
        A reused keep-alive connection the server closed meanwhile is reopened once, if the body can be
        sent again."""
        all_headers = {"Authorization": "Bearer " + self._token}
        if headers:
            all_headers.update(headers)
        with self._lock:
            for attempt in (1, 2):
                fresh = self._conn is None
                if fresh:
                    self._conn = _UnixConnection(self._socket_path, self._timeout)
                try:
                    self._conn.request(method, target, body=body, headers=all_headers)
                    response = self._conn.getresponse()
                except (ConnectionError, http.client.RemoteDisconnected, http.client.CannotSendRequest):
                    self._close()
                    replayable = body is None or isinstance(body, (bytes, bytearray, memoryview))
                    if fresh or attempt == 2 or not replayable:
                        raise
                    continue
                except BaseException:
                    self._close()
                    raise
                try:
                    return self._read(method, path, response, sink)
                except BaseException:
                    self._close()
                    raise
        raise AssertionError("unreachable")

    def _read(self, method, path, response, sink):
        status = response.status
        if 200 <= status < 300 and sink is not None:
            shutil.copyfileobj(response, sink, _CHUNK)
            data = b""
        else:
            data = response.read()
        if response.will_close:
            self._close()
        if not 200 <= status < 300:
            raise StorageError(status, _detail(data, response.getheader("Content-Type")), method, path)
        return status, response, data

    def _close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _door(self, method, path, **kwargs):
        return self._request(method, encode_path(path), path, **kwargs)

    def _attributes(self, path, query):
        _, _, data = self._request("GET", "/api/v1/namespace" + encode_path(path) + query, path)
        return json.loads(data)

    def _put(self, path, body, content_type, length):
        headers = {"Content-Length": str(length)}
        if content_type:
            headers["Content-Type"] = content_type
        status, response, _ = self._door("PUT", path, body=body, headers=headers)
        return {"created": status == 201, "etag": response.getheader("ETag")}

    # -- the API handlers use --

    def read(self, path):
        """The file's bytes."""
        return self._door("GET", path)[2]

    def read_text(self, path, encoding="utf-8"):
        """The file as text."""
        return self.read(path).decode(encoding)

    def write(self, path, data, content_type=None):
        """Creates or replaces a file from bytes or str (utf-8); returns {"created", "etag"}."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = bytes(data)
        return self._put(path, data, content_type, len(data))

    def stat(self, path):
        """dCache-style attributes with checksums: {"fileType", "size", "mtime", "checksums": [{"type", "value"}], ...}."""
        return self._attributes(path, "?checksum=true")

    def list(self, path):
        """The entries of a directory, each a dict with fileName, fileType, size, mtime, ..."""
        return self._attributes(path, "?children=true").get("children", [])

    def mkdir(self, path, parents=True):
        """Creates a directory; with parents (the default) also every missing ancestor, and an existing
        directory is fine."""
        try:
            self._door("MKCOL", path)
            return
        except StorageError as exc:
            if not parents:
                raise
            if exc.status == 405:
                return self._must_be_directory(path, exc)
            segments = _segments(path)
            if exc.status not in (404, 409) or len(segments) < 2:
                raise
            self.mkdir("/" + "/".join(segments[:-1]), parents=True)
        try:
            self._door("MKCOL", path)
        except StorageError as exc:
            # Someone created it meanwhile: still a success for mkdir -p.
            if exc.status != 405:
                raise
            self._must_be_directory(path, exc)

    def _must_be_directory(self, path, exc):
        if self._attributes(path, "").get("fileType") != "DIR":
            raise StorageError(exc.status, "%s exists and is not a directory" % path, "MKCOL", path)

    def remove(self, path):
        """Deletes a file, or a directory with everything below it."""
        self._door("DELETE", path)

    def download(self, path, local):
        """Streams a file into a local file; nothing partial is left behind on failure."""
        try:
            with open(local, "wb") as sink:
                self._door("GET", path, sink=sink)
        except BaseException:
            try:
                os.unlink(local)
            except OSError:
                pass
            raise

    def upload(self, local, path, content_type=None):
        """Streams a local file into the namespace; returns {"created", "etag"}."""
        with open(local, "rb") as source:
            return self._put(path, source, content_type, os.fstat(source.fileno()).st_size)
