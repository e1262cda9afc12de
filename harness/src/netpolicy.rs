//! The network policy, in one place: every address a scenario reaches — its http target's
//! base URL, its steady-state probes, its proxies' upstreams — is on loopback
//! (127.0.0.0/8, `::1`, `localhost`), a stub of the scenario's own, or a host a drill's
//! `allow_hosts` lists. The plan checks every scenario with [`check`] before anything
//! runs, and `harness drill --dry-run` lists what [`reached`] finds, so what the dry run
//! prints is what the policy judged.

use crate::errors::LoadError;
use crate::scenario::Scenario;
use crate::target::TargetSpec;

/// One address a scenario reaches, and what reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reach {
    /// What reaches it, in words, e.g. "steady-state probe `healthy`".
    pub what: String,
    /// The address as written: a URL, `host:port`, or a stub name (`llm`, `executor.NAME`).
    pub address: String,
    /// The key that writes it in the scenario file (`upstream`, `get`), when it is there.
    pub key: Option<&'static str>,
}

/// Every address `s` reaches when run against `target`, in a stable order.
pub(crate) fn reached(s: &Scenario, target: &TargetSpec) -> Vec<Reach> {
    let mut out = Vec::new();
    if let Some(url) = target.http.as_ref().and_then(|h| h.base_url.as_ref()) {
        out.push(Reach {
            what: format!("target `{}` (http.base_url)", s.target_name()),
            address: url.clone(),
            key: None,
        });
    }
    for probe in &s.spec.steady_state {
        // A path is relative to the http target's base URL, checked above.
        if probe.get.contains("://") {
            out.push(Reach {
                what: format!("steady-state probe `{}`", probe.name),
                address: probe.get.clone(),
                key: Some("get"),
            });
        }
    }
    for p in &s.spec.proxy {
        out.push(Reach {
            what: format!("proxy `{}`", p.name),
            address: p.upstream.clone(),
            key: Some("upstream"),
        });
    }
    out
}

/// Checks everything `s` reaches against the policy: loopback, the scenario's own stubs,
/// or a host in `allow`. The first address off the policy is the error.
pub(crate) fn check(s: &Scenario, target: &TargetSpec, allow: &[String]) -> Result<(), LoadError> {
    for reach in reached(s, target) {
        if is_own_stub(s, &reach.address) {
            continue;
        }
        let host = host_of(&reach.address);
        if is_loopback(&host) || allow.iter().any(|a| host_of(a) == host) {
            continue;
        }
        let refusal = LoadError::NotLoopback {
            scenario: s.file_path.clone(),
            what: reach.what,
            host,
        };
        return Err(match reach.key {
            Some(key) => at_address(refusal, s, key, &reach.address),
            None => refusal,
        });
    }
    Ok(())
}

/// The refusal as a diagnostic at the address, where the scenario file writes it as
/// `KEY = "ADDRESS"` (a proxy's `upstream`, a probe's `get`): the first such place.
fn at_address(refusal: LoadError, s: &Scenario, key: &str, address: &str) -> LoadError {
    let Ok(source) = crate::source::read(&s.file_path) else {
        return refusal;
    };
    let Ok(quoted) = serde_json::to_string(address) else {
        return refusal;
    };
    let written_by_key = |&(start, _): &(usize, &str)| {
        source[..start]
            .trim_end()
            .strip_suffix('=')
            .is_some_and(|before| before.trim_end().ends_with(key))
    };
    let Some((start, _)) = source.match_indices(quoted.as_str()).find(written_by_key) else {
        return refusal;
    };
    let (message, help) = match crate::runner::error_chain(&refusal).split_once(" (hint: ") {
        Some((m, h)) => (m.to_string(), Some(h.trim_end_matches(')').to_string())),
        None => (crate::runner::error_chain(&refusal), None),
    };
    // The message without the file name the diagnostic shows anyway.
    let message = message
        .split_once(": ")
        .map_or(message.clone(), |(_, rest)| rest.to_string());
    LoadError::Invalid(Box::new(crate::diagnostic::Diagnostic {
        path: s.file_path.display().to_string(),
        source,
        span: start..start + quoted.len(),
        message,
        label: "not on loopback".into(),
        help,
    }))
}

/// Whether `address` names one of the scenario's own stubs or services: exactly `llm`,
/// `executor.NAME` for an executor the scenario defines, or `service.NAME` for one of its
/// `[[service]]`s (which listen on loopback). Anything else (a host that merely starts
/// with `executor.`) is an address, judged as one.
fn is_own_stub(s: &Scenario, address: &str) -> bool {
    address == "llm"
        || address
            .strip_prefix("executor.")
            .is_some_and(|name| s.spec.executor.contains_key(name))
        || address
            .strip_prefix("service.")
            .is_some_and(|name| s.spec.service.iter().any(|v| v.name == name))
}

/// The host of `http://host:port/path`, `host:port` or `[v6]:port`.
pub(crate) fn host_of(address: &str) -> String {
    let rest = address.split_once("://").map_or(address, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // Credentials before `@` are not the host.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6).to_string();
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(h, _)| h)
        .to_ascii_lowercase()
}

/// Whether `host` is on this machine's loopback: `localhost`, 127.0.0.0/8 or `::1`.
pub(crate) fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_from_urls_and_addresses() {
        assert_eq!(host_of("http://127.0.0.1:8080/v1"), "127.0.0.1");
        assert_eq!(host_of("staging.example:443"), "staging.example");
        assert_eq!(host_of("[::1]:6379"), "::1");
        assert_eq!(host_of("http://user@10.0.0.1/x"), "10.0.0.1");
        assert_eq!(host_of("http://127.0.0.1?x=http://y"), "127.0.0.1");
        assert!(is_loopback("127.0.0.9") && is_loopback("::1") && is_loopback("localhost"));
        assert!(!is_loopback("10.0.0.1") && !is_loopback("staging.example"));
    }
}
