#!/usr/bin/env python3
"""agent-harness worker adapter: keeps a Python pipeline warm and runs one scenario per
request. Standard library only; print it with `harness worker python`.

    python3 harness_worker.py --entry pypipe:main [--isolation fork|reuse]

It imports the entry point's module once, then reads requests from stdin, one JSON
document per line, and answers on stdout, one per line:

    request  {"id": 1, "stdin": "<the scenario's input>", "env": {...}, "seed": 7,
              "scratch": "/tmp/...", "limits": {"as": 268435456, "fsize": null}}
    answers  {"id": 1, "started": 4242, "stderr_path": "..."}   (who runs it, where
                                                    its stderr goes)
             {"id": 1, "exit": 0, "signal": null, "stdout": "...", "stderr": "...",
              "maxrss_kb": 51200, "elapsed_us": 1234}

The entry point is either a CLI-style `main()` (no required argument: reads stdin, prints
a JSON document, returns an exit code or calls sys.exit) or a function taking the input
as a dict and returning the output dict.

isolation = fork (default): a child is forked per request; it takes the scenario's
environment, stdin, stdout and stderr, runs the entry point and exits. Nothing it changes
survives it. Modules a child imports on first use (SDKs that load their parts lazily) are
imported in the worker after that run, so later children start with them loaded. isolation = reuse: this process runs one request after another, as a
long-lived service would; the environment and standard streams are set for each request
and restored after it, and everything else (module globals, caches, leaks) carries over.

Before the first request it reports, in its ready line, what fork after import breaks:
threads started at import time (a forked child has only the thread that forked, and locks
another thread held stay held) and sockets opened at import time (the child shares them
with its parent and with every other child).

An import error is printed with its traceback and ends the worker with exit code 2.
"""

import argparse
import gc
import importlib
import inspect
import io
import json
import os
import random
import signal
import sys
import tempfile
import threading
import time
import traceback

try:
    import resource
except ImportError:  # not on this platform: limits and maxrss are not reported
    resource = None

STDOUT_LIMIT = 16 << 20
STDERR_LIMIT = 64 << 10


class Protocol:
    """The request and answer channels, moved off fds 0 and 1 so that what the pipeline
    prints (at import or in a run) cannot corrupt them."""

    def __init__(self):
        self.inp = os.fdopen(os.dup(0), "rb")
        self.out = os.dup(1)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)  # prints outside a run go to stderr
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", closefd=False, buffering=1)

    def send(self, doc):
        data = (json.dumps(doc) + "\n").encode()
        while data:
            data = data[os.write(self.out, data):]

    def close_in_child(self):
        self.inp.close()
        os.close(self.out)


def load_entry(spec):
    module_name, _, func_name = spec.partition(":")
    if not module_name or not func_name:
        sys.stderr.write(
            "agent-harness worker: entry `%s` is not `module:function`\n" % spec
        )
        sys.exit(2)
    try:
        module = importlib.import_module(module_name)
    except BaseException:
        sys.stderr.write(
            "agent-harness worker: importing `%s` failed:\n" % module_name
        )
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(2)
    fn = getattr(module, func_name, None)
    if not callable(fn):
        sys.stderr.write(
            "agent-harness worker: `%s` has no function `%s`\n" % (module_name, func_name)
        )
        sys.exit(2)
    return fn


def style_of(fn):
    """"dict" when the function needs an argument (the input), else "cli"."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return "cli"
    for p in params:
        if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return "dict"
    return "cli"


def import_time_hazards(protocol):
    """What fork after import breaks, as sentences."""
    warnings = []
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    try:
        tasks = len(os.listdir("/proc/self/task"))
    except OSError:
        tasks = 1 + len(others)
    if others or tasks > 1:
        names = ", ".join(sorted(t.name for t in others)) or "started outside Python"
        warnings.append(
            "%d thread(s) besides the main one were running after import (%s): a forked "
            "child has only the thread that forked, so work those threads do and locks "
            "they hold do not carry over (hint: start them in the entry point, or use "
            "isolation = \"reuse\")" % (tasks - 1 if tasks > 1 else len(others), names)
        )
    sockets = 0
    try:
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink("/proc/self/fd/" + fd).startswith("socket:"):
                    sockets += 1
            except OSError:
                pass
    except OSError:
        pass
    if sockets:
        warnings.append(
            "%d socket(s) were open after import (e.g. a client connected at import "
            "time): every forked child shares them with the worker and with each other "
            "(hint: open connections in the entry point, or use isolation = \"reuse\")"
            % sockets
        )
    return warnings


def exit_code(value):
    if value is None:
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value & 0xFF
    sys.stderr.write(str(value) + "\n")
    return 1


def invoke(fn, style, stdin_text):
    """Runs the entry point with the standard streams already in place; its exit code."""
    try:
        if style == "dict":
            result = fn(json.loads(stdin_text or "{}"))
            if result is not None:
                sys.stdout.write(json.dumps(result) + "\n")
            return 0
        return exit_code(fn())
    except SystemExit as e:
        return exit_code(e.code)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass


class Files:
    """The files a run's standard streams go to."""

    def __init__(self, workdir, rid, stdin_text):
        self.base = base = os.path.join(workdir, str(rid))
        self.stdin, self.stdout, self.stderr = base + ".in", base + ".out", base + ".err"
        with open(self.stdin, "w") as f:
            f.write(stdin_text)

    def redirect(self):
        """Points fds 0, 1, 2 at the run's files and rebinds sys's streams to them."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        for fd, path, mode in ((0, self.stdin, os.O_RDONLY), (1, self.stdout, flags), (2, self.stderr, flags)):
            new = os.open(path, mode, 0o600)
            os.dup2(new, fd)
            os.close(new)
        sys.stdin = open(0, "r", closefd=False)
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False, buffering=1)

    def collect(self):
        out = read_capped(self.stdout, STDOUT_LIMIT, keep_last=False)
        err = read_capped(self.stderr, STDERR_LIMIT, keep_last=True)
        for path in (self.stdin, self.stdout, self.stderr):
            try:
                os.unlink(path)
            except OSError:
                pass
        return out, err


def read_capped(path, limit, keep_last):
    try:
        with open(path, "rb") as f:
            if keep_last:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
            data = f.read(limit + 1)
    except OSError:
        return ""
    data = data[-limit:] if keep_last else data[:limit]
    return data.decode("utf-8", "replace")


def set_limits(limits):
    """Applies the run's resource limits; the previous ones, to restore."""
    saved = []
    if resource is None:
        return saved
    for key, which in (("as", resource.RLIMIT_AS), ("fsize", resource.RLIMIT_FSIZE)):
        value = (limits or {}).get(key)
        if value:
            old = resource.getrlimit(which)
            resource.setrlimit(which, (int(value), old[1]))
            saved.append((which, old))
    return saved


def set_env(env):
    os.environ.clear()
    os.environ.update(env)


def run_forked(protocol, fn, style, workdir, req):
    rid = req["id"]
    files = Files(workdir, rid, req.get("stdin", ""))
    sys.stdout.flush()
    sys.stderr.flush()
    parent_modules = set(sys.modules)
    # Everything the worker holds moves out of the collector's reach, so a collection in
    # the child does not write to (and so copy) every page it shares with the worker.
    gc.freeze()
    began = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setpgid(0, 0)
            protocol.close_in_child()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            files.redirect()
            set_env(req.get("env", {}))
            set_limits(req.get("limits"))
            random.seed(req.get("seed"))
            sys.argv = [fn.__module__]
            code = invoke(fn, style, req.get("stdin", ""))
            learned = sorted(set(sys.modules) - parent_modules)
            with open(files.base + ".mods", "w") as f:
                f.write("\n".join(learned))
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first, or has already exited
    protocol.send({"id": rid, "started": pid, "stderr_path": files.stderr})
    _, status, usage = os.wait4(pid, 0)
    elapsed = int((time.monotonic() - began) * 1e6)
    out, err = files.collect()
    protocol.send({
        "id": rid,
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "stdout": out,
        "stderr": err,
        "maxrss_kb": usage.ru_maxrss,
        "elapsed_us": elapsed,
    })
    preload(files.base + ".mods")


def preload(path):
    """Imports, in the warm worker, the modules a child imported on first use (clients
    that import their parts lazily), so that later children find them loaded. Only
    imports: nothing the pipeline's own code does at run time happens here."""
    try:
        with open(path) as f:
            names = [n for n in f.read().split("\n") if n]
        os.unlink(path)
    except OSError:
        return
    for name in names:
        if name in sys.modules or name.startswith("__"):
            continue
        try:
            importlib.import_module(name)
        except BaseException:
            pass

def run_reused(protocol, fn, style, workdir, req):
    rid = req["id"]
    files = Files(workdir, rid, req.get("stdin", ""))
    protocol.send({"id": rid, "started": os.getpid(), "stderr_path": files.stderr})
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = [os.dup(0), os.dup(1), os.dup(2)]
    saved_streams = (sys.stdin, sys.stdout, sys.stderr)
    saved_env = dict(os.environ)
    saved_argv = sys.argv
    began = time.monotonic()
    files.redirect()
    set_env(req.get("env", {}))
    limits = set_limits(req.get("limits"))
    random.seed(req.get("seed"))
    sys.argv = [fn.__module__]
    try:
        code = invoke(fn, style, req.get("stdin", ""))
    finally:
        for which, old in limits:
            resource.setrlimit(which, old)
        sys.argv = saved_argv
        set_env(saved_env)
        for fd, saved in enumerate(saved_fds):
            os.dup2(saved, fd)
            os.close(saved)
        sys.stdin, sys.stdout, sys.stderr = saved_streams
    elapsed = int((time.monotonic() - began) * 1e6)
    out, err = files.collect()
    protocol.send({
        "id": rid,
        "exit": code,
        "signal": None,
        "stdout": out,
        "stderr": err,
        "maxrss_kb": None,
        "elapsed_us": elapsed,
    })


def main(argv=None):
    parser = argparse.ArgumentParser(description="agent-harness worker adapter")
    parser.add_argument("--entry", required=True, help="module:function")
    parser.add_argument("--isolation", choices=["fork", "reuse"], default="fork")
    args = parser.parse_args(argv)
    protocol = Protocol()
    sys.path.insert(0, os.getcwd())
    fn = load_entry(args.entry)
    style = style_of(fn)
    workdir = tempfile.mkdtemp(prefix="agent-harness-worker-")
    protocol.send({
        "ready": {
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "style": style,
            "isolation": args.isolation,
            "warnings": import_time_hazards(protocol) if args.isolation == "fork" else [],
        }
    })
    run = run_forked if args.isolation == "fork" else run_reused
    try:
        for line in protocol.inp:
            if not line.strip():
                continue
            run(protocol, fn, style, workdir, json.loads(line))
    finally:
        for name in os.listdir(workdir):
            try:
                os.unlink(os.path.join(workdir, name))
            except OSError:
                pass
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
