//! How the store's two threads share a core with the gateway's.
//!
//! A node on one core runs three busy threads: the gateway's (every frame, every push), the append writer (one
//! batch per wake-up, each `fdatasync`ed before anyone is answered) and the flusher (every few seconds, a
//! segment's messages into SQLite). Linux's default policy treats them alike; the two of the store each ask for
//! something else as their thread starts. Neither needs a privilege, and where a sandbox refuses the call the
//! thread runs as before. Elsewhere than Linux both are left alone (on other systems a nice value is the whole
//! process's).
//!
//! - The writer [does not preempt when it wakes](wake_without_preempting): see the writer's module docs.
//! - The flusher [runs in the background](run_in_the_background): see the flusher's module docs.

/// Nice values the flusher adds to the process's: 10 steps of 1.25× each, so that where the gateway's thread
/// and the flusher both want the core, the flusher gets about a tenth of it (CFS weights 1024 and 110), and all
/// of it that nothing else wants.
const BACKGROUND_NICE: i32 = 10;

/// Puts the calling thread under `SCHED_BATCH`: it keeps its share of the CPU and its nice value, and only stops
/// preempting the thread that woke it.
pub(super) fn wake_without_preempting() {
    #[cfg(target_os = "linux")]
    {
        use preempt_rt::sched::{Pid, Scheduler, SchedulerParams, set_scheduler};
        if let Err(e) = set_scheduler(Pid::current_thread(), Scheduler::SCHED_BATCH, SchedulerParams { priority: 0 }) {
            tracing::debug!(error = %e, "the append writer stays under the default scheduling policy");
        }
    }
}

/// Raises the calling thread's nice value by [`BACKGROUND_NICE`] (to 19 at most). Raising one's own nice value
/// is never refused; Linux keeps it per thread, so the process's other threads keep theirs.
pub(super) fn run_in_the_background() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{getpriority_process, setpriority_process};
        // `None`: the calling thread.
        let raised =
            getpriority_process(None).and_then(|nice| setpriority_process(None, (nice + BACKGROUND_NICE).min(19)));
        if let Err(e) = raised {
            tracing::debug!(error = %e, "the flusher keeps the process's priority");
        }
    }
}

/// What `/proc` says about the process's threads, for the tests of both.
#[cfg(all(test, target_os = "linux"))]
pub(super) mod probe {
    use std::path::Path;

    /// One thread's scheduling: its policy (field 41 of `/proc/<tid>/stat`: 0 normal, 3 batch, 5 idle) and its
    /// nice value (field 19).
    #[derive(Debug)]
    pub(in super::super) struct Sched {
        pub(in super::super) policy: u32,
        pub(in super::super) nice: i32,
    }

    /// The threads named `comm` (as Linux truncates it: 15 bytes).
    pub(in super::super) fn threads(comm: &str) -> Vec<Sched> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| stat(&t.ok()?.path()))
            .filter(|(name, _)| name == comm)
            .map(|(_, sched)| sched)
            .collect()
    }

    /// The process's main thread.
    pub(in super::super) fn process() -> Sched {
        stat(Path::new("/proc/self")).unwrap().1
    }

    fn stat(task: &Path) -> Option<(String, Sched)> {
        let stat = std::fs::read_to_string(task.join("stat")).ok()?;
        let (head, tail) = stat.rsplit_once(") ")?;
        let comm = head.split_once(" (")?.1.to_string();
        // Fields from the third, `state`, on.
        let fields: Vec<&str> = tail.split_whitespace().collect();
        let sched = Sched { policy: fields[41 - 3].parse().ok()?, nice: fields[19 - 3].parse().ok()? };
        Some((comm, sched))
    }
}
