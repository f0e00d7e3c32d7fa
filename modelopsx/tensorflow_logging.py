"""Keep TensorFlow's C++ start-up logging off the terminal of `modelopsx` commands.

`TF_CPP_MIN_LOG_LEVEL` hides TensorFlow's own C++ info and warning lines once TensorFlow has read it, but a
few start-up lines (oneDNN's notice, absl's "All log messages before absl::InitializeLog()") are written
through absl before that, so the environment alone cannot hide them. While TensorFlow is first imported, file
descriptor 2 is therefore captured; whatever else the import wrote (a Python warning, an error) is passed on.

`modelopsx --verbose` (or MODELOPSX_VERBOSE=1) leaves all of it alone.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any

# Environment read by TensorFlow and gRPC when they start. Level 3 also hides TensorFlow's C++ "error" lines:
# they are notices such as "oneDNN supports DT_INT64 only on platforms with AVX-512", while real failures
# reach Python as exceptions.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}

# absl's format (`I0000 00:00:1796406422.108295   14290 port.cc:153] ...`, the time as absl prints it),
# TensorFlow's older one (`2024-01-11 05:40:05.061907: I tensorflow/...`), absl's pre-init notice, and the
# second line of cpu_feature_guard's notice.
_START_UP_LINE = re.compile(
    r"^(?:[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IW] \S+:\d+\] "
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags)"
)


def is_start_up_log(line: str) -> bool:
    return _START_UP_LINE.match(line) is not None


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 (C++ and Python writes alike); on exit, write back all but start-up log
    lines."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to protect (closed): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if not is_start_up_log(line))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _FilteredLoader(importlib.abc.Loader):
    """Runs the real loader of the `tensorflow` package with stderr filtered, then steps aside."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        module.__loader__ = self._loader
        with filtered_stderr():
            self._loader.exec_module(module)


class _TensorFlowImportFilter(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` with the other finders and wraps its loader; every other import is left alone."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _FilteredLoader(spec.loader)
                return spec
        return None


def quiet_tensorflow() -> None:
    """Set the quiet environment (values the user set are kept) and filter TensorFlow's first import."""
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if "tensorflow" not in sys.modules and not any(
        isinstance(f, _TensorFlowImportFilter) for f in sys.meta_path
    ):
        sys.meta_path.insert(0, _TensorFlowImportFilter())
