"""Where a forked child's time goes: the pypipe example run in children forked from a warm
parent, step by step as the worker adapter (harness/src/target/worker.py) makes the
parent do more of their work. Each figure is the median over children of the child's own
CPU time and minor page faults (copy-on-write shows as faults), from wait4.

    python3 benches/python/child_profile.py [--children 9]

The LLM API and the executor are a small threaded stdlib server on 127.0.0.1 (its CPU is
not counted). Standard library plus what pypipe imports (openai, httpx)."""

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUB = textwrap.dedent('''
    import json
    from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
    REPLIES = {"planner": {"subtasks": ["a", "b"]}, "coder": {"code": "x()"},
               "critic": {"score": 9, "needs_refinement": False}}
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        def log_message(self, *args):
            pass
        def do_POST(self):
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path.endswith("/execute"):
                body = {"success": True, "artifacts": ["a.blend"]}
            else:
                content = json.dumps(REPLIES[self.headers.get("X-Agent-Role", "planner")])
                body = {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": content}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
''')


def load_adapter():
    spec = importlib.util.spec_from_file_location("worker_adapter", ROOT / "harness/src/target/worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_children(n, work, freeze=False, before=None):
    """Median CPU ms and minor faults of `n` children each running `work`."""
    cpu, faults = [], []
    for _ in range(n):
        if freeze:
            gc.freeze()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                if before:
                    before()
                work()
            except BaseException:
                code = 1
            os._exit(code)
        _, status, usage = os.wait4(pid, 0)
        if status != 0:
            raise SystemExit("a child failed")
        cpu.append((usage.ru_utime + usage.ru_stime) * 1000)
        faults.append(usage.ru_minflt)
    cpu.sort()
    faults.sort()
    return cpu[n // 2], faults[n // 2]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--children", type=int, default=9)
    n = parser.parse_args().children
    stub = subprocess.Popen([sys.executable, "-c", STUB], stdout=subprocess.PIPE, text=True)
    try:
        port = int(stub.stdout.readline())
        os.environ.update(
            OPENAI_API_KEY="sk-profile", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1",
            EXECUTOR_URL=f"http://127.0.0.1:{port}", PYPIPE_TIMEOUT="5",
        )
        sys.path.insert(0, str(ROOT / "examples/pypipe"))
        os.chdir(ROOT / "examples/pypipe")
        began = time.process_time()
        import httpx
        import openai
        import pypipe
        print(f"parent: import pypipe (openai, httpx): {(time.process_time() - began) * 1000:.0f} ms CPU, once")
        adapter = load_adapter()
        warm = adapter.Warm("pypipe:main")
        warm.memo = os.devnull  # learn afresh, remember nothing

        def run():
            out, code = pypipe.run({"prompt": "p"})
            assert code == 0, out

        unfrozen_gc = in_children(n, gc.collect)
        rows = []
        rows.append(("a pypipe run, nothing preloaded (fresh parent)", in_children(n, run)))
        learned = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"child-profile-{os.getpid()}.json")

        def learn_run():
            warm.child_begins()
            run()
            warm.child_ends(learned)

        in_children(1, learn_run)
        with open(learned) as f:
            took = json.load(f)
        warm.after_child(learned)
        rows.append((f"+ {len(took['modules'])} first-use modules imported in the parent", in_children(n, run)))
        rows.append(("+ gc.freeze() before fork", in_children(n, run, freeze=True)))
        rows.append(("+ CA bundle loads put off until first TLS use", in_children(n, run, freeze=True, before=warm.ca.install)))
        cpu = []
        for _ in range(n):
            began = time.process_time()
            run()
            cpu.append((time.process_time() - began) * 1000)
        rows.append(("in process, no fork (as the pytest suite calls it)", (sorted(cpu)[n // 2], 0)))
        print(f"\nchildren ({n} each, median): CPU ms, minor page faults")
        for what, (cpu, faults) in rows:
            print(f"  {what:55s} {cpu:7.1f} ms {faults:7d}")

        parts = [
            ("openai.OpenAI()", lambda: openai.OpenAI(max_retries=0, timeout=5)),
            ("httpx.Client()", lambda: httpx.Client(timeout=5)),
            ("gc.collect()", gc.collect),
        ]
        print("\nsingle steps in a child (frozen parent): CPU ms, minor faults; with CA loads put off")
        for what, work in parts:
            plain = in_children(n, work, freeze=True)
            put_off = in_children(n, work, freeze=True, before=warm.ca.install)
            print(f"  {what:30s} {plain[0]:7.1f} ms {plain[1]:6d}   {put_off[0]:7.1f} ms {put_off[1]:6d}")
        print("  gc.collect() without gc.freeze: %.1f ms %d" % unfrozen_gc)
        print("  an empty child (fork, exit):    %.1f ms %d" % in_children(n, lambda: None, freeze=True))
    finally:
        stub.kill()
        stub.wait()


if __name__ == "__main__":
    main()
