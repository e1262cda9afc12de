"""The message bus: Redis Streams, one inbox stream per agent and run, read through a
consumer group so that a message an agent took but did not acknowledge (it died while
working on it) is delivered again to the agent that replaces it.

Every broker call goes through `Bus.call`: a connection error or a timeout (the broker
restarted, a partition, a slow broker) is retried on a fresh connection with backoff, for
up to WEBTESTGEN_BUS_RECOVERY seconds of outage; the longest outage is measured.
"""

import json
import time
import uuid

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

GROUP = "agents"


class BusError(Exception):
    pass


def stream(run, agent):
    return f"wtg:{run}:to:{agent}"


def result_stream(run):
    return f"wtg:{run}:result"


class Bus:
    def __init__(self, config, run, name):
        self.config, self.run, self.name = config, run, name
        # The client's own retries are off: retrying (and giving up) is this class's job.
        self.redis = redis.Redis.from_url(
            config.redis_url, socket_timeout=config.bus_timeout, socket_connect_timeout=config.bus_timeout,
            retry=Retry(NoBackoff(), 0), decode_responses=True)
        self.outage_started = None
        self.stats = {"errors": 0, "recoveries": 0, "longest_outage_s": 0.0}

    def call(self, what, fn):
        delay = self.config.backoff / 4
        while True:
            try:
                result = fn(self.redis)
            except (redis.ConnectionError, redis.TimeoutError) as e:
                self.stats["errors"] += 1
                now = time.monotonic()
                if self.config.fragile:
                    raise BusError(f"{what}: the broker is unreachable ({type(e).__name__}: {e}) "
                                   "(fragile mode: no reconnect to the broker)")
                if self.outage_started is None:
                    self.outage_started = now
                if now - self.outage_started > self.config.bus_recovery:
                    raise BusError(f"{what}: the broker has been unreachable for "
                                   f"{now - self.outage_started:.1f}s ({type(e).__name__}: {e})")
                self.redis.connection_pool.disconnect()
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if self.outage_started is not None:
                outage = time.monotonic() - self.outage_started
                self.stats["recoveries"] += 1
                self.stats["longest_outage_s"] = round(max(self.stats["longest_outage_s"], outage), 3)
                self.outage_started = None
                self._report_stats()
            return result

    def _report_stats(self):
        """Leaves this process's broker statistics in the run's hash, for the front to add up
        (an agent whose work was done before an outage has no other message to carry them)."""
        try:
            self.redis.hset(f"wtg:{self.run}:bus", self.name, json.dumps(self.stats))
        except (redis.ConnectionError, redis.TimeoutError):
            pass  # the next recovery reports them

    def all_stats(self):
        """{process: stats} as reported by every process of the run, this one's own included."""
        try:
            reported = self.redis.hgetall(f"wtg:{self.run}:bus")
        except (redis.ConnectionError, redis.TimeoutError):
            reported = {}
        stats = {name: json.loads(raw) for name, raw in reported.items()}
        stats[self.name] = self.stats
        return stats

    def create_group(self, agent):
        def create(r):
            try:
                r.xgroup_create(stream(self.run, agent), GROUP, id="0", mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise
        self.call(f"create the {agent} inbox", create)

    def send(self, agent, message):
        """Puts a message in an agent's inbox; every message has an id for de-duplication."""
        message = {"id": uuid.uuid4().hex, **message}
        self.call(f"send to {agent}", lambda r: r.xadd(stream(self.run, agent), {"m": json.dumps(message)}))
        return message["id"]

    def receive(self, agent, pending, block_ms):
        """[(entry id, message)]: this agent's unacknowledged messages (`pending`), else new ones."""
        key = stream(self.run, agent)

        def read(r):
            try:
                return r.xreadgroup(GROUP, agent, {key: "0" if pending else ">"}, count=1,
                                    block=None if pending else block_ms)
            except redis.ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                # the broker lost the stream (restarted without its data): start it again
                r.xgroup_create(key, GROUP, id="0", mkstream=True)
                return []
        entries = self.call(f"read the {agent} inbox", read) or []
        return [(entry_id, json.loads(fields["m"])) for _, messages in entries
                for entry_id, fields in messages if fields]

    def ack(self, agent, entry_id):
        self.call(f"acknowledge in the {agent} inbox", lambda r: r.xack(stream(self.run, agent), GROUP, entry_id))

    def publish_result(self, document):
        self.call("publish the result", lambda r: r.xadd(result_stream(self.run), {"m": json.dumps(document)}))

    def wait_result(self, block_ms):
        entries = self.call("read the result", lambda r: r.xread({result_stream(self.run): "0"}, count=1, block=block_ms))
        for _, messages in entries or []:
            for _, fields in messages:
                return json.loads(fields["m"])
        return None

    def mark_done(self, agent, message_id):
        self.call("record a handled message",
                  lambda r: r.set(f"wtg:{self.run}:done:{agent}:{message_id}", 1, ex=3600))

    def was_done(self, agent, message_id):
        return bool(self.call("look up a handled message",
                              lambda r: r.exists(f"wtg:{self.run}:done:{agent}:{message_id}")))

    def save_state(self, state):
        self.call("save the run's state", lambda r: r.set(f"wtg:{self.run}:state", json.dumps(state), ex=3600))

    def load_state(self):
        raw = self.call("load the run's state", lambda r: r.get(f"wtg:{self.run}:state"))
        return json.loads(raw) if raw else None

    def forget_run(self):
        """Removes the run's streams and keys (a shared broker must not fill up). One try:
        a run that ends is not kept waiting for a broker that is gone (its streams then
        stay behind; its other keys expire within the hour)."""
        try:
            keys = list(self.redis.scan_iter(match=f"wtg:{self.run}:*", count=100))
            if keys:
                self.redis.delete(*keys)
        except (redis.ConnectionError, redis.TimeoutError):
            pass

    def close(self):
        self.redis.close()
