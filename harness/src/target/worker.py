#!/usr/bin/env python3
"""agent-harness worker adapter: keeps a Python pipeline warm and runs one scenario per
request. Standard library only; print it with `harness worker python`.

    python3 harness_worker.py --entry pypipe:main [--isolation fork|reuse]

It imports the entry point's module once, says it is ready (its pid, warnings, and the
folder `workdir` where run ID's stderr goes, as `ID.err`), then reads requests from stdin,
one JSON document per line, and answers on stdout, one per line:

    request  {"id": 1, "stdin": "<the scenario's input>", "env": {...}, "seed": 7,
              "scratch": "/tmp/...", "limits": {"as": 268435456, "fsize": null}}
    answers  {"id": 1, "started": 4242, "stderr_path": "..."}   (who runs it, where
                                                    its stderr goes)
             {"id": 1, "exit": 0, "signal": null, "stdout": "...", "stderr": "...",
              "maxrss_kb": 51200, "elapsed_us": 1234}

The entry point is either a CLI-style `main()` (no required argument: reads stdin, prints
a JSON document, returns an exit code or calls sys.exit) or a function taking the input
as a dict and returning the output dict.

isolation = fork (default): this process is a zygote. It takes requests as they come, any
number at once, and forks a child per request; the child takes the scenario's
environment, stdin, stdout and stderr, runs the entry point and exits. Nothing it changes
survives it. Answers go out as children end, each with its request's id. What every child
would otherwise repeat is done once here, before the fork:
  - modules a child imported on first use (SDKs load their parts lazily) are imported
    here after that run, and remembered for the next start of the same pipeline; only
    installed packages and the standard library, never the pipeline's own files (their
    import-time code would see this process's environment, not the scenario's);
  - loading a CA bundle into a TLS context (every httpx client, so every openai or
    anthropic client, loads the whole bundle when it is built: tens of milliseconds) is
    put off in the child until the context is first used, for bundles that loaded fine
    before; against the harness's plain-HTTP stubs it is never used (see DeferredCA);
  - the collector is frozen (`gc.freeze`) before each fork, so a collection in the child
    does not touch, and so copy, every page it shares with this process.

isolation = reuse: this process runs one request after another, as a long-lived service
would; the environment and standard streams are set for each request and restored after
it, and everything else (module globals, caches, leaks) carries over.

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
import hashlib
import json
import os
import random
import selectors
import signal
import ssl
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


class DeferredCA:
    """Loading a CA bundle into a TLS context (`load_verify_locations`,
    `set_default_verify_paths`) costs tens of milliseconds, and every httpx client (so
    every openai or anthropic client) does it when it is built. In a child, a load of a
    bundle that loaded fine before (the same file, unchanged) is put off until the
    context is first used: a handshake, or a look at its certificates. Against the
    harness's plain-HTTP stubs that never happens. Anything else loads at once, as usual;
    a load that fails still fails where it is called, since only known-good bundles wait."""

    ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")

    def __init__(self):
        self.known = set()  # keys of bundles that loaded fine
        self.loaded = set()  # keys loaded in this process (a child), to learn
        self.load = ssl.SSLContext.load_verify_locations
        self.defaults = ssl.SSLContext.set_default_verify_paths

    @staticmethod
    def stamp(path):
        try:
            st = os.stat(path)
            return (st.st_mtime_ns, st.st_size)
        except (OSError, TypeError, ValueError):
            return None

    def key(self, cafile, capath):
        return ("file", cafile, capath, self.stamp(cafile), self.stamp(capath))

    def default_key(self):
        paths = ssl.get_default_verify_paths()
        env = tuple(os.environ.get(v) for v in self.ENV)
        return ("default", env, self.stamp(paths.cafile), self.stamp(paths.capath))

    def install(self):
        """Patches `ssl.SSLContext` in this process (a child)."""
        deferred = self

        def load_verify_locations(ctx, cafile=None, capath=None, cadata=None):
            if cadata is None and (cafile or capath):
                key = deferred.key(cafile, capath)
                if key in deferred.known:
                    ctx.__dict__.setdefault("_harness_pending", []).append(
                        lambda: deferred.load(ctx, cafile, capath)
                    )
                    return None
                deferred.flush(ctx)
                deferred.load(ctx, cafile, capath)
                deferred.loaded.add(key)
                return None
            deferred.flush(ctx)
            return deferred.load(ctx, cafile, capath, cadata)

        def set_default_verify_paths(ctx):
            key = deferred.default_key()
            if key in deferred.known:
                env = {v: os.environ.get(v) for v in deferred.ENV}
                ctx.__dict__.setdefault("_harness_pending", []).append(
                    lambda: deferred.with_env(env, lambda: deferred.defaults(ctx))
                )
                return None
            deferred.flush(ctx)
            deferred.defaults(ctx)
            deferred.loaded.add(key)
            return None

        def flushing(name):
            original = getattr(ssl.SSLContext, name)

            def method(ctx, *args, **kwargs):
                deferred.flush(ctx)
                return original(ctx, *args, **kwargs)

            return method

        ssl.SSLContext.load_verify_locations = load_verify_locations
        ssl.SSLContext.set_default_verify_paths = set_default_verify_paths
        for name in ("_wrap_socket", "_wrap_bio", "get_ca_certs", "cert_store_stats"):
            setattr(ssl.SSLContext, name, flushing(name))

    @staticmethod
    def flush(ctx):
        pending = ctx.__dict__.pop("_harness_pending", None)
        for load in pending or ():
            load()

    def with_env(self, env, load):
        """Runs `load` with the variables OpenSSL reads as they were when it was asked."""
        saved = {v: os.environ.get(v) for v in self.ENV}
        self.set_env(env)
        try:
            load()
        finally:
            self.set_env(saved)

    @staticmethod
    def set_env(values):
        for v, value in values.items():
            if value is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = value

    def learned(self):
        return [list(k) for k in self.loaded]

    def learn(self, keys):
        grew = False
        for key in keys:
            key = tuple(tuple(x) if isinstance(x, list) else x for x in key)
            if key not in self.known:
                self.known.add(key)
                grew = True
        return grew


class Warm:
    """What the zygote does once so that children need not: first-use imports, learned
    from the runs and kept for the next start of the same pipeline, and which CA bundles
    load fine (see DeferredCA)."""

    def __init__(self, entry):
        self.ca = DeferredCA()
        self.own = os.path.realpath(os.getcwd()) + os.sep
        key = "\0".join([sys.executable, sys.version, self.own, entry])
        self.memo = os.path.join(
            tempfile.gettempdir(),
            "agent-harness-worker-learned-%s.json" % hashlib.sha256(key.encode()).hexdigest()[:16],
        )
        self.modules = set()
        self.before = set()

    def start(self):
        """At start: what the last workers of this pipeline learned."""
        try:
            with open(self.memo) as f:
                if os.fstat(f.fileno()).st_uid != os.getuid():
                    return  # only what this user's own workers wrote
                memo = json.load(f)
        except (OSError, ValueError):
            return
        self.learn(memo.get("modules", []), memo.get("ca", []), remember=False)

    def child_begins(self):
        self.before = set(sys.modules)
        self.ca.install()

    def child_ends(self, path):
        """In the child, after its run: what it imported and which bundles it loaded."""
        modules = []
        for name in set(sys.modules) - self.before:
            origin = getattr(sys.modules.get(name), "__file__", None) or ""
            if name.startswith("__") or os.path.realpath(origin).startswith(self.own):
                continue  # the pipeline's own code: imported at its own time, in the run
            modules.append(name)
        with open(path, "w") as f:
            json.dump({"modules": sorted(modules), "ca": self.ca.learned()}, f)

    def after_child(self, path):
        """In the zygote, after a child ended: do what it showed it needs."""
        try:
            with open(path) as f:
                learned = json.load(f)
            os.unlink(path)
        except (OSError, ValueError):
            return
        self.learn(learned.get("modules", []), learned.get("ca", []), remember=True)

    def learn(self, modules, ca, remember):
        new = [n for n in modules if n not in sys.modules]
        for name in new:
            try:
                importlib.import_module(name)
            except BaseException:
                continue
        self.modules.update(n for n in modules if n in sys.modules)
        grew = self.ca.learn(ca)
        if remember and (new or grew):
            self.remember()

    def remember(self):
        memo = {"modules": sorted(self.modules), "ca": [list(k) for k in self.ca.known]}
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.memo), prefix=".learned-")
            with os.fdopen(fd, "w") as f:
                json.dump(memo, f)
            os.replace(tmp, self.memo)
        except OSError:
            pass


class Child:
    """A forked child running one request."""

    def __init__(self, rid, pid, files, began, exit_fd):
        self.rid, self.pid, self.files, self.began, self.exit_fd = rid, pid, files, began, exit_fd


def exit_watch(pid, write_end):
    """A descriptor that becomes readable when child `pid` ends: its pidfd where the
    kernel has them, else the read end of a pipe only the child holds open."""
    if hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
            os.close(write_end[1])
            os.close(write_end[0])
            return fd
        except OSError:
            pass
    os.close(write_end[1])
    return write_end[0]


def fork_child(protocol, fn, style, workdir, warm, req, keep_closed):
    rid = req["id"]
    files = Files(workdir, rid, req.get("stdin", ""))
    sys.stdout.flush()
    sys.stderr.flush()
    # Everything the zygote holds moves out of the collector's reach, so a collection in
    # the child does not write to (and so copy) every page it shares with the zygote.
    gc.freeze()
    ends = os.pipe()
    began = time.monotonic()
    pid = os.fork()
    if pid == 0:
        code = 70
        try:
            os.setpgid(0, 0)
            os.close(ends[0])
            for fd in keep_closed():
                try:
                    os.close(fd)
                except OSError:
                    pass
            protocol.close_in_child()
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            files.redirect()
            set_env(req.get("env", {}))
            set_limits(req.get("limits"))
            random.seed(req.get("seed"))
            sys.argv = [fn.__module__]
            warm.child_begins()
            code = invoke(fn, style, req.get("stdin", ""))
            warm.child_ends(files.base + ".learned")
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:
        pass  # the child did it first, or has already exited
    protocol.send({"id": rid, "started": pid, "stderr_path": files.stderr})
    return Child(rid, pid, files, began, exit_watch(pid, ends))


def finish_child(protocol, child):
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = int((time.monotonic() - child.began) * 1e6)
    out, err = child.files.collect()
    protocol.send({
        "id": child.rid,
        "exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
        "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
        "stdout": out,
        "stderr": err,
        "maxrss_kb": usage.ru_maxrss,
        "elapsed_us": elapsed,
    })


def serve_forked(protocol, fn, style, workdir, warm):
    """The zygote: a child per request as requests come, answers as children end."""
    requests = protocol.inp.fileno()
    watch = selectors.DefaultSelector()
    watch.register(requests, selectors.EVENT_READ, None)
    running = {}
    pending = b""
    reading = True

    def keep_closed():  # what only the zygote may hold (besides the protocol's pipes)
        return [watch.fileno()] + [c.exit_fd for c in running.values()]

    while reading or running:
        for key, _ in watch.select():
            child = key.data
            if child is not None:
                watch.unregister(child.exit_fd)
                os.close(child.exit_fd)
                del running[child.pid]
                finish_child(protocol, child)
                warm.after_child(child.files.base + ".learned")
                continue
            data = os.read(requests, 1 << 16)
            if not data:
                reading = False
                watch.unregister(requests)
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    child = fork_child(protocol, fn, style, workdir, warm, json.loads(line), keep_closed)
                    running[child.pid] = child
                    watch.register(child.exit_fd, selectors.EVENT_READ, child)
    watch.close()


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
    forked = args.isolation == "fork"
    warm = Warm(args.entry) if forked else None
    fn = load_entry(args.entry)
    style = style_of(fn)
    if warm:
        warm.start()
    workdir = tempfile.mkdtemp(prefix="agent-harness-worker-")
    protocol.send({
        "ready": {
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "style": style,
            "isolation": args.isolation,
            "warnings": import_time_hazards(protocol) if forked else [],
            "workdir": workdir,
        }
    })
    try:
        if forked:
            serve_forked(protocol, fn, style, workdir, warm)
        else:
            for line in protocol.inp:
                if line.strip():
                    run_reused(protocol, fn, style, workdir, json.loads(line))
    finally:
        for name in os.listdir(workdir):
            try:
                os.unlink(os.path.join(workdir, name))
            except OSError:
                pass
        os.rmdir(workdir)


if __name__ == "__main__":
    main()
