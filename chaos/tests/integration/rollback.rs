//! Rollback across the layers: a paused child continued after a panic, and a proxy's
//! toxics, a CPU hog and a pause undone in reverse order.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use chaos::Rollback;
use chaos::process::{self, CpuHog, Target};
use chaos::proxy::Direction::Downstream;
use chaos::proxy::ToxicKind;
use tokio::process::Command;

use crate::support::{
    Child, echo_server, proc_state, proxy, read_all, round_trip, toxic, wait_stopped,
};

#[tokio::test]
async fn after_a_panic_a_paused_child_is_continued_and_can_finish() {
    let mut child = Child::spawn(Command::new("sleep").arg("0.3"));
    let pid = child.pid;

    let result = catch_unwind(AssertUnwindSafe(|| {
        let mut rollback = Rollback::new();
        rollback.push_guard(
            "continue the target",
            process::pause(Target::Group(pid)).unwrap(),
        );
        wait_stopped(pid);
        assert_eq!(proc_state(pid), 'T');
        panic!("the scenario failed while the target was paused");
    }));

    assert!(result.is_err());
    // SIGCONT wakes a stopped process as it is sent
    assert_ne!(proc_state(pid), 'T');
    assert!(child.wait().await.success(), "sleep finished its 0.3s");
}

#[tokio::test]
async fn finish_undoes_proxy_process_and_cpu_faults_in_reverse_order() {
    let upstream = echo_server().await;
    let proxy = proxy(upstream.addr, Vec::new(), 1).await;
    let child = Child::spawn(Command::new("sleep").arg("30"));
    let pid = child.pid;

    let mut rollback = Rollback::new();
    let healthy = proxy.toxics();
    proxy
        .set_toxics(vec![toxic(Downstream, ToxicKind::LimitData { bytes: 0 })])
        .unwrap();
    rollback.push("restore the toxics", || proxy.set_toxics(healthy));
    rollback.push_guard(
        "stop the cpu hog",
        CpuHog::start(1, Duration::from_secs(600)).unwrap(),
    );
    rollback.push_guard(
        "continue the target",
        process::pause(Target::Group(pid)).unwrap(),
    );

    // faulty: a new connection is cut before any reply; the target is stopped
    let mut client = tokio::net::TcpStream::connect(proxy.local_addr())
        .await
        .unwrap();
    let (received, _) = read_all(&mut client).await;
    assert!(received.is_empty());
    tokio::task::spawn_blocking(move || wait_stopped(pid))
        .await
        .unwrap();

    let steps = rollback.finish();
    let report: Vec<(&str, bool)> = steps
        .iter()
        .map(|step| (step.label.as_str(), step.outcome.is_ok()))
        .collect();
    assert_eq!(
        report,
        [
            ("continue the target", true),
            ("stop the cpu hog", true),
            ("restore the toxics", true),
        ]
    );

    // healed
    assert_ne!(proc_state(pid), 'T');
    let mut client = tokio::net::TcpStream::connect(proxy.local_addr())
        .await
        .unwrap();
    assert_eq!(round_trip(&mut client, b"back").await, b"back");
    drop(child);
}
