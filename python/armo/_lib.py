"""_lib.py — finding libarmo.so and declaring its C API (host/api/armo_api.h)
for ctypes.

Where the library is looked for, first found wins: the ARMO_LIBRARY
environment variable (a path to libarmo.so, e.g. a build directory's), then
the copy installed inside this package (pip install ./python), then the
system's search path (ldconfig, LD_LIBRARY_PATH)."""
import ctypes
import ctypes.util
import os
import threading

API_VERSION = 1

_lock = threading.Lock()
_lib = None


class ArmoError(RuntimeError):
    """A failure reported by libarmo (the model cannot be opened, the records
    are not JSON, a record could not be scored, ...) or by an armo server."""


def _candidates():
    env = os.environ.get("ARMO_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    yield os.path.join(here, "libarmo.so")
    found = ctypes.util.find_library("armo")
    if found:
        yield found


def _declare(lib):
    c = ctypes
    lib.armo_api_version.restype = c.c_int
    lib.armo_api_version.argtypes = []
    lib.armo_api_open.restype = c.c_void_p
    lib.armo_api_open.argtypes = [c.c_char_p, c.c_char_p, c.c_int, c.c_longlong]
    # returned texts are malloc'ed: c_void_p keeps the pointer for armo_api_free
    lib.armo_api_score.restype = c.c_void_p
    lib.armo_api_score.argtypes = [c.c_void_p, c.c_char_p, c.c_size_t]
    lib.armo_api_info.restype = c.c_void_p
    lib.armo_api_info.argtypes = [c.c_void_p]
    lib.armo_api_free.restype = None
    lib.armo_api_free.argtypes = [c.c_void_p]
    lib.armo_api_close.restype = None
    lib.armo_api_close.argtypes = [c.c_void_p]
    lib.armo_api_last_error.restype = c.c_char_p
    lib.armo_api_last_error.argtypes = []
    return lib


def library():
    """The loaded libarmo (once per process); ArmoError when none is found."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        tried = []
        for path in _candidates():
            if os.path.sep not in path or os.path.exists(path):
                try:
                    lib = ctypes.CDLL(path)
                except OSError as exc:
                    tried.append(f"{path}: {exc}")
                    continue
                _declare(lib)
                version = lib.armo_api_version()
                if version != API_VERSION:
                    raise ArmoError(f"{path} implements armo API version {version}, this "
                                    f"package needs {API_VERSION}")
                _lib = lib
                return lib
            tried.append(f"{path}: no such file")
        raise ArmoError("libarmo.so not found (set ARMO_LIBRARY to its path, or pip install the "
                        "package from the armo checkout)" + (": " + "; ".join(tried) if tried else ""))


def last_error(lib):
    msg = lib.armo_api_last_error()
    return msg.decode("utf-8", "replace") if msg else "unknown error"


def take_text(lib, ptr):
    """The NUL-terminated text at ptr (returned by libarmo), freed."""
    try:
        return ctypes.string_at(ptr).decode("utf-8")
    finally:
        lib.armo_api_free(ptr)
