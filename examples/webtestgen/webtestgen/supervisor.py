"""Starts the agents as processes of their own and keeps them running.

The agents are forked from the front process after the SDKs are imported (as gunicorn's
`--preload` does), so an agent starts in milliseconds rather than importing `openai`
again; each one takes a process title naming it (`webtestgen agent NAME RUN`, what `ps`
shows), connects to the broker itself, sends nothing to stdout (that is the result's), and
dies with the front.
An agent that dies is started again, up to MAX_RESTARTS times; its replacement takes the
messages the dead one had not acknowledged. WEBTESTGEN_FRAGILE=1: an agent that dies
fails the run.
"""

import ctypes
import os
import signal
import sys
import time
import traceback

import setproctitle

from webtestgen.agents import serve
from webtestgen.bus import Bus, BusError

MAX_RESTARTS = 3

# setproctitle finds the memory of the process's arguments on its first call, by walking
# from the environment strings, which sit right after them; a process that has replaced its
# environment since it started (a warm worker does, per run) gets no title at all, silently.
# So the first call is made now, at import, while the environment is still the original.
setproctitle.getproctitle()


class AgentDied(Exception):
    pass


def die_with_parent():
    """Asks Linux for SIGTERM when the front dies (prctl PR_SET_PDEATHSIG), so an agent busy
    in a long call does not outlive it; elsewhere the agents' loops notice within 250ms."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class Supervisor:
    def __init__(self, config, run):
        self.config, self.run = config, run
        self.parent = os.getpid()
        self.pids = {}
        self.restarts = {}

    def start(self, name):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid:
            self.pids[pid] = name
            return
        code = 3
        try:
            os.dup2(2, 1)
            die_with_parent()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            setproctitle.setproctitle(f"webtestgen agent {name} {self.run}")
            serve(name, self.config, Bus(self.config, self.run, name), self.parent)
            code = 0
        except BusError as e:
            print(f"webtestgen: agent {name}: {e}", file=sys.stderr)
            code = 1
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)

    def check(self):
        """Starts again each agent that died; AgentDied when one may not be."""
        while self.pids:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            name = self.pids.pop(pid, None)
            if name is None:
                continue
            how = (f"was killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"exited with code {os.WEXITSTATUS(status)}")
            if self.config.fragile:
                raise AgentDied(f"the {name} agent {how} (fragile mode: no agent supervision)")
            if self.restarts.get(name, 0) >= MAX_RESTARTS:
                print(f"webtestgen: the {name} agent {how}, and is not started again after "
                      f"{MAX_RESTARTS} restarts", file=sys.stderr)
                continue
            self.restarts[name] = self.restarts.get(name, 0) + 1
            print(f"webtestgen: the {name} agent {how}; starting it again", file=sys.stderr)
            self.start(name)

    def stop(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        while self.pids and time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid:
                self.pids.pop(pid, None)
            else:
                time.sleep(0.01)
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        self.pids.clear()
