//! The threads that write to viewers' sockets.
//!
//! A big room's writes are most of the server's work (one batch to 10,000 sockets is about
//! 100 ms of CPU), and none of it may delay a buyer: on one runtime, a request woken behind
//! 10,000 ready socket tasks waits for every one of them, at each step of an order. So viewers'
//! send tasks run on a runtime of their own whose threads have a lower priority: orders, bids
//! and chat on the request runtime go first, and the fan-out gets every cycle left over.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// The fan-out threads' nice value: 0 is the request threads', 19 the lowest.
const NICE: i32 = 10;

/// Runs a viewer's send task on the fan-out runtime, started on first use.
pub fn spawn<F>(task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    static FANOUT: OnceLock<Runtime> = OnceLock::new();
    FANOUT
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("hawker-fanout")
                .on_thread_start(lower_priority)
                .enable_all()
                .build()
                .expect("the fan-out runtime starts (it needs threads and an epoll)")
        })
        .spawn(task)
}

fn lower_priority() {
    // Linux keeps a nice value per thread, so this leaves the request threads as they are.
    let thread = Some(rustix::thread::gettid());
    if let Err(e) = rustix::process::setpriority_process(thread, NICE) {
        tracing::warn!("could not lower the fan-out threads' priority: {e}");
    }
}

#[cfg(test)]
mod tests {
    /// A send task lands on a fan-out thread, below the request threads' priority.
    #[tokio::test]
    async fn send_tasks_run_on_the_low_priority_fanout_threads() {
        let (name, nice) = super::spawn(async {
            let name = std::thread::current().name().map(str::to_owned);
            let nice = rustix::process::getpriority_process(Some(rustix::thread::gettid()));
            (name, nice)
        })
        .await
        .expect("the task runs");
        assert_eq!(name.as_deref(), Some("hawker-fanout"));
        // At least NICE: a test run that is itself niced further keeps its lower priority.
        assert!(nice.is_ok_and(|n| n >= super::NICE), "{nice:?}");
    }
}
