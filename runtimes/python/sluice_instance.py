"""The sluice python runtime: hosts one function version as a warm instance speaking instance protocol v1
(docs/function-protocol.md). Messages from sluice arrive as NDJSON on stdin; answers leave as NDJSON on
fd 3; print() and ctx.log inside a handler become `log` messages of its activation. Started through
sluice_runtime.py.

Cold start is measured against a bare interpreter, so startup imports nothing the interpreter has not
loaded already except the C halves of json and contextvars: the json package would pull in re, enum and
functools, a third of a bare start. threading comes in only for concurrency > 1, asyncio only for async
handlers, traceback only for errors, the storage client only when a handler first touches ctx.storage.
Stdlib only; python 3.8 or newer.
"""

import io
import os
import sys
import time
import _thread
from _contextvars import ContextVar  # what contextvars re-exports, without loading that module

PROTOCOL = 1
OUT_FD = 3
CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect

_HERE = os.path.dirname(os.path.abspath(__file__))
_REAL_STDERR_FD = 2

# The activation whose handler code runs in this thread or asyncio task.
_current = ContextVar("sluice_activation", default=None)
_out_lock = _thread.allocate_lock()


# ---- JSON ----


def _no_json_form(value):
    raise TypeError("Object of type %s is not JSON serializable" % type(value).__name__)


class _ScanOptions:
    """What json.JSONDecoder hands its C scanner: plain JSON, control characters in strings refused."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}.__getitem__
    memo = None


try:
    from _json import encode_basestring as _quote, make_encoder as _make_encoder, make_scanner as _make_scanner

    _scan = _make_scanner(_ScanOptions())
    _make_encoder({}, _no_json_form, _quote, None, ":", ",", False, False, False)  # the signature json uses

    def _loads(text):
        text = text.strip(" \t\n\r")
        try:
            value, end = _scan(text, 0)
        except StopIteration:
            raise ValueError("no JSON value") from None
        if end != len(text):
            raise ValueError("extra data after the JSON value at %d" % end)
        return value

    def _json(value, allow_nan=False):
        # A fresh markers dict per call: it tracks the containers being encoded to refuse cycles.
        return "".join(_make_encoder({}, _no_json_form, _quote, None, ":", ",", False, False, allow_nan)(value, 0))

except (ImportError, TypeError):  # not CPython, or its accelerator changed: the json package, slower to import
    import json

    _quote = json.dumps

    def _loads(text):
        return json.loads(text)

    def _json(value, allow_nan=False):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan)


# ---- messages to sluice on fd 3 ----


def _write_all(fd, data):
    """Writes every byte, waiting when fd is non-blocking and full (a socketpair sluice reads slowly)."""
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            import select

            select.select([], [fd], [])
            continue
        view = view[n:]


def _send(line):
    """One protocol message: a JSON text without newline. Whole lines never interleave across threads."""
    try:
        data = line.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (a surrogateescape'd file name, say) has no UTF-8 form. It can only sit inside
        # a JSON string, where backslashreplace's \udcxx is exactly JSON's escape for it.
        data = line.encode("utf-8", "backslashreplace")
    with _out_lock:
        try:
            _write_all(OUT_FD, data + b"\n")
        except OSError as exc:
            # sluice is gone (EPIPE) or fd 3 was never usable: nobody is left to read results.
            _warn("cannot write to fd %d (%s); exiting" % (OUT_FD, exc))
            os._exit(1)


def _send_log(activation_id, level, message):
    _send('{"type":"log","id":%s,"level":"%s","message":%s}' % (_quote(activation_id), level, _quote(message)))


def _error_of(exc):
    """An exception as the protocol's {name, message, stack}, the stack starting at the handler's frame."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    stack = "".join(traceback.format_exception(type(exc), exc, tb))
    return {"name": type(exc).__name__, "message": str(exc), "stack": stack}


def _finite(value):
    """NaN and ±Infinity have no JSON form; like JavaScript's JSON.stringify they become null."""
    if isinstance(value, float):
        return value if value - value == 0 else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _result_json(value):
    try:
        return _json(value)
    except ValueError as exc:
        if "Out of range float" not in str(exc):
            raise
    return _json(_finite(value))


# ---- activations ----


class _Activation:
    __slots__ = ("id", "done", "partial")

    def __init__(self, activation_id):
        self.id = activation_id
        self.done = False
        self.partial = {}  # level -> text written without a newline yet

    def write(self, level, text):
        """Text from print()/sys.stderr: every complete line is one log message."""
        pending = self.partial.pop(level, "")
        if "\n" not in text:
            self.partial[level] = pending + text
            return
        lines = (pending + text).split("\n")
        rest = lines.pop()
        if rest:
            self.partial[level] = rest
        for line in lines:
            _send_log(self.id, level, line)

    def flush_partial(self):
        for level, text in self.partial.items():
            if text:
                _send_log(self.id, level, text)
        self.partial.clear()

    def succeed(self, value):
        try:
            body = _result_json(value)
        except (TypeError, ValueError, RecursionError) as exc:
            self.fail(TypeError("the handler's result is not JSON-serializable: %s" % exc), with_stack=False)
            return
        self._settle('{"type":"result","id":%s,"result":%s}' % (_quote(self.id), body))

    def fail(self, exc, with_stack=True):
        error = _error_of(exc) if with_stack else {"name": type(exc).__name__, "message": str(exc)}
        self._settle('{"type":"error","id":%s,"error":%s}' % (_quote(self.id), _json(error)))

    def _settle(self, line):
        if self.done:
            return
        self.flush_partial()
        self.done = True
        _send(line)


class _Log:
    """ctx.log: leveled log messages of one activation, formatted like logging's msg % args."""

    __slots__ = ("_id",)

    def __init__(self, activation_id):
        self._id = activation_id

    def _emit(self, level, msg, args):
        text = str(msg) % args if args else str(msg)
        _send_log(self._id, level, text)

    def debug(self, msg, *args):
        self._emit("debug", msg, args)

    def info(self, msg, *args):
        self._emit("info", msg, args)

    def warning(self, msg, *args):
        self._emit("warn", msg, args)

    warn = warning

    def error(self, msg, *args):
        self._emit("error", msg, args)

    def exception(self, msg, *args):
        """An error message followed by the traceback of the exception being handled."""
        import traceback

        text = (str(msg) % args if args else str(msg)) + "\n" + traceback.format_exc().rstrip()
        _send_log(self._id, "error", text)


_storage_module = None


def _load_storage_module():
    """sluice_storage from beside this file, even if a bundle module shadows the name on sys.path."""
    global _storage_module
    if _storage_module is None:
        path = os.path.join(_HERE, "sluice_storage.py")
        module = sys.modules.get("sluice_storage")
        if module is None or os.path.abspath(getattr(module, "__file__", "")) != path:
            import importlib.util

            spec = importlib.util.spec_from_file_location("sluice_storage", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules["sluice_storage"] = module
        _storage_module = module
    return _storage_module


class Context:
    """ctx, the second argument of every handler call."""

    __slots__ = ("activation_id", "function_name", "version", "deadline", "log", "_storage_config", "_storage")

    def __init__(self, msg):
        self.activation_id = msg["id"]
        self.function_name = msg.get("function")
        self.version = msg.get("version")
        self.deadline = msg.get("deadline")
        self.log = _Log(self.activation_id)
        self._storage_config = msg.get("storage")
        self._storage = None

    def remaining_ms(self):
        """Milliseconds left before sluice stops this call (0 once past the deadline)."""
        if self.deadline is None:
            return 0
        return max(0, int(self.deadline - time.time() * 1000))

    @property
    def storage(self):
        if self._storage is None:
            config = self._storage_config
            if not config or not config.get("socket"):
                raise RuntimeError("this activation was given no storage API")
            self._storage = _load_storage_module().Storage(config["socket"], config.get("token", ""))
        return self._storage


class _LogStream(io.TextIOBase):
    """sys.stdout / sys.stderr: inside an activation every line becomes a log message of it; outside,
    text goes to the real stderr, which sluice keeps as the instance's log."""

    def __init__(self, level, fd, name):
        super().__init__()
        self._level = level
        self._fd = fd
        self._name = name

    @property
    def name(self):
        return self._name

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "replace"

    @property
    def buffer(self):
        return _BinaryLogStream(self)

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # Subprocesses that inherit "stdout" write straight to the real descriptor.
        return self._fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not %s" % type(text).__name__)
        activation = _current.get()
        if activation is None:
            _write_all(_REAL_STDERR_FD, text.encode("utf-8", "replace"))
        else:
            activation.write(self._level, text)
        return len(text)

    def flush(self):
        pass


class _BinaryLogStream(io.RawIOBase):
    """sys.stdout.buffer for code that writes bytes."""

    def __init__(self, text_stream):
        super().__init__()
        self._text = text_stream

    def writable(self):
        return True

    def write(self, data):
        self._text.write(bytes(data).decode("utf-8", "replace"))
        return len(data)


# ---- handler loading ----


def _load_handler(spec):
    module_name, _, name = spec.rpartition(".")
    if not module_name or not name:
        raise ValueError('handler "%s" is not of the form module.function' % spec)
    # __import__ rather than importlib: the import machinery is already loaded, importlib is not.
    __import__(module_name)
    module = sys.modules[module_name]
    fn = getattr(module, name, None)
    if fn is None:
        raise AttributeError("module '%s' (%s) has no function '%s'" % (module_name, getattr(module, "__file__", "?"), name))
    if not callable(fn):
        raise TypeError("%s.%s is not callable" % (module_name, name))
    return fn


def _is_coroutine_function(fn):
    target = getattr(fn, "func", fn)  # functools.partial
    code = getattr(getattr(target, "__func__", target), "__code__", None)
    if code is None:
        call = getattr(target, "__call__", None)
        code = getattr(getattr(call, "__func__", call), "__code__", None)
    return code is not None and bool(code.co_flags & CO_COROUTINE)


# ---- running calls ----

_handler = None
_thread_loops = None


def _run_awaitable(awaitable):
    """A sync handler that returned an awaitable: run it on this thread's own event loop."""
    import asyncio

    global _thread_loops
    if _thread_loops is None:
        import threading

        _thread_loops = threading.local()
    loop = getattr(_thread_loops, "loop", None)
    if loop is None:
        loop = _thread_loops.loop = asyncio.new_event_loop()

    async def wait():
        return await awaitable

    # The task copies this thread's context, so its prints stay tagged with the activation.
    return loop.run_until_complete(wait())


def _call(msg):
    """One invoke, synchronously in the calling thread."""
    activation = _Activation(msg["id"])
    token = _current.set(activation)
    try:
        value = _handler(msg.get("event"), Context(msg))
        if hasattr(value, "__await__"):
            value = _run_awaitable(value)
    except (Exception, SystemExit) as exc:
        activation.fail(exc)
    else:
        activation.succeed(value)
    finally:
        _current.reset(token)


async def _call_async(msg):
    """One invoke as an asyncio task; the context variable is the task's own."""
    activation = _Activation(msg["id"])
    _current.set(activation)
    try:
        value = _handler(msg.get("event"), Context(msg))
        if hasattr(value, "__await__"):
            value = await value
    except (Exception, SystemExit) as exc:
        activation.fail(exc)
    else:
        activation.succeed(value)


class _Inline:
    """concurrency 1: each call runs on the main thread; async handlers on one persistent loop."""

    def __init__(self, is_async):
        self._loop = None
        if is_async:
            import asyncio

            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)

    def submit(self, msg):
        if self._loop is not None:
            self._loop.run_until_complete(_call_async(msg))
        else:
            _call(msg)

    def drain(self):
        pass


class _Threads:
    """concurrency > 1, sync handler: a pool that grows to `concurrency` threads as calls overlap."""

    def __init__(self, concurrency):
        import queue
        import threading

        self._queue = queue.SimpleQueue()
        self._threading = threading
        self._max = concurrency
        self._threads = 0
        self._pending = 0  # submitted and not answered
        self._idle = threading.Condition()

    def submit(self, msg):
        with self._idle:
            self._pending += 1
            grow = self._pending > self._threads and self._threads < self._max
            if grow:
                self._threads += 1
        if grow:
            self._threading.Thread(target=self._work, name="sluice-call-%d" % self._threads, daemon=True).start()
        self._queue.put(msg)

    def _work(self):
        while True:
            msg = self._queue.get()
            try:
                _call(msg)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def drain(self):
        with self._idle:
            while self._pending:
                self._idle.wait()


class _Loop:
    """concurrency > 1, async handler: one event loop in its own thread runs every call as a task."""

    def __init__(self):
        import asyncio
        import threading

        self._loop = asyncio.new_event_loop()
        self._pending = 0
        self._idle = threading.Condition()
        threading.Thread(target=self._loop.run_forever, name="sluice-loop", daemon=True).start()

    def submit(self, msg):
        with self._idle:
            self._pending += 1
        self._loop.call_soon_threadsafe(self._start, msg)

    def _start(self, msg):
        self._loop.create_task(self._task(msg))

    async def _task(self, msg):
        try:
            await _call_async(msg)
        finally:
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def drain(self):
        with self._idle:
            while self._pending:
                self._idle.wait()


def _init(msg):
    """Applies env, loads the handler and answers ready; on failure answers init_error and exits 1."""
    global _handler
    try:
        if msg.get("protocol") != PROTOCOL:
            raise ValueError("instance protocol %r is not supported; this runtime speaks %d" % (msg.get("protocol"), PROTOCOL))
        for key, value in (msg.get("env") or {}).items():
            os.environ[str(key)] = str(value)
        # The bundle first; this directory last, so `from sluice_storage import StorageError` works
        # whatever flags (-I) the interpreter was started with.
        bundle = os.getcwd()
        if bundle not in sys.path:
            sys.path.insert(0, bundle)
        if _HERE not in sys.path:
            sys.path.append(_HERE)
        _handler = _load_handler(str(msg.get("handler")))
        concurrency = max(1, int(msg.get("concurrency") or 1))
        is_async = _is_coroutine_function(_handler)
        if concurrency == 1:
            runner = _Inline(is_async)
        elif is_async:
            runner = _Loop()
        else:
            runner = _Threads(concurrency)
    except BaseException as exc:  # a SyntaxError or SystemExit at import is an init failure too
        _send('{"type":"init_error","error":%s}' % _json(_error_of(exc)))
        _exit(1)
    _send('{"type":"ready"}')
    return runner


# ---- stdin ----


def _lines(fd):
    """Lines of fd without their newline; a line may span many reads (events of many megabytes)."""
    buf = bytearray()
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            import select

            select.select([fd], [], [])
            continue
        if not chunk:
            if buf:
                yield bytes(buf)
            return
        scan = len(buf)
        buf += chunk
        start = 0
        nl = buf.find(b"\n", scan)
        while nl >= 0:
            if nl > start:
                yield bytes(buf[start:nl])
            start = nl + 1
            nl = buf.find(b"\n", start)
        if start:
            del buf[:start]


def _warn(text):
    _write_all(_REAL_STDERR_FD, ("sluice runtime: %s\n" % text).encode("utf-8", "replace"))


def _exit(code):
    try:
        sys.__stdout__.flush()
    except Exception:  # a closed stdout must not keep the process from exiting
        pass
    # os._exit: threads a handler left running must not keep the instance alive after EOF.
    os._exit(code)


def main():
    # The protocol's stdin and fd 3 stay ours: subprocesses of handlers get /dev/null as stdin and do
    # not inherit fd 3, so they cannot eat messages or write into the protocol stream.
    try:
        proto_in = os.dup(0)
        os.set_inheritable(OUT_FD, False)
    except OSError as exc:
        _warn("stdin and fd 3 must be open (%s); see docs/function-protocol.md" % exc)
        os._exit(2)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdout = _LogStream("info", 1, "<stdout>")
    sys.stderr = _LogStream("error", 2, "<stderr>")

    runner = None
    early = []  # invokes that arrived before init
    for line in _lines(proto_in):
        try:
            msg = _loads(line.decode("utf-8"))
            kind = msg.get("type") if isinstance(msg, dict) else None
        except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
            _warn("ignoring a line that is not JSON (%s)" % exc)
            continue
        if kind == "invoke":
            if not isinstance(msg.get("id"), str) or not msg["id"]:
                _warn("ignoring an invoke message without an id")
            elif runner is None:
                early.append(msg)
            else:
                runner.submit(msg)
        elif kind == "init":
            if runner is not None:
                _warn("ignoring a second init message")
                continue
            runner = _init(msg)
            for m in early:
                runner.submit(m)
            early = []
        else:
            _warn("ignoring a message of unknown type %s" % _json(kind, True))
    if runner is not None:
        runner.drain()
    _exit(0)




if __name__ == "__main__":
    # Started as a script: works, but only sluice_runtime.py lets this module come from __pycache__.
    main()
