//! Integration tests of the TCP fault proxy and the process faults, observed from outside:
//! a real client and a real upstream on 127.0.0.1 on either side of the proxy, and real
//! child processes. Timing asserts are lower bounds only (the machines are noisy); nothing
//! sleeps to synchronise (a round trip or a channel says when something is ready).

// shared helpers: upstream servers, a proxy with toxics, a child that is always reaped
mod support;

// proxy: plain forwarding, half-close, unreachable upstream, loopback-only upstreams
mod proxy_forwarding;
// proxy: each toxic observed by a client or the upstream
mod proxy_toxics;
// proxy: toxicity, same seed same decisions, changing toxics while running, journal
mod proxy_decisions;
// proxy: shutdown closes connections and ends every task
mod proxy_shutdown;

// process faults: kill, pause, memory and file-size limits, /dev/full, CPU hog
mod process_faults;
// rollback: undo steps run in reverse, also after a panic, across proxy and process faults
mod rollback;
