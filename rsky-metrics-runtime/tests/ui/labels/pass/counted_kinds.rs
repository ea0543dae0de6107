//! `#[counted(errors = <typed family>)]`: each error under its kind, a panic under the
//! `#[label(panic)]` value, sync and async.

use rsky_metrics_runtime::{counted, CountAs, IntCounter, IntCounterFamily, LabelValue, Metrics};

#[derive(Clone, Copy, Debug, LabelValue)]
#[label(name = "kind")]
pub enum ErrorKind {
    Redis,
    Decode,
    #[label(panic)]
    Panic,
}

#[derive(Debug)]
pub enum JobError {
    Redis(String),
    Decode,
}

impl CountAs<ErrorKind> for JobError {
    fn count_as(&self) -> ErrorKind {
        match self {
            JobError::Redis(_) => ErrorKind::Redis,
            JobError::Decode => ErrorKind::Decode,
        }
    }
}

#[derive(Metrics)]
#[metrics(service = "kinds_ui")]
pub struct JobMetrics {
    /// Jobs run
    pub jobs: IntCounter,
    /// Jobs that failed, by kind
    pub job_errors: IntCounterFamily<ErrorKind>,
}

#[counted(JobMetrics, events = jobs, errors = job_errors)]
fn run(input: u8) -> Result<u8, JobError> {
    match input {
        0 => Err(JobError::Redis("down".to_owned())),
        1 => Err(JobError::Decode),
        2 => panic!("a bug"),
        n => Ok(n),
    }
}

#[counted(JobMetrics, events = jobs, errors = job_errors)]
async fn run_async(input: u8) -> Result<u8, JobError> {
    tokio::task::yield_now().await;
    let value = match input {
        0 => return Err(JobError::Redis("down".to_owned())),
        n => n,
    };
    Ok(value)
}

fn main() {
    let metrics = JobMetrics::global();
    assert!(run(0).is_err());
    assert!(run(1).is_err());
    assert!(std::panic::catch_unwind(|| run(2)).is_err());
    assert_eq!(run(7).ok(), Some(7));
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    assert!(runtime.block_on(run_async(0)).is_err());
    assert_eq!(runtime.block_on(run_async(3)).ok(), Some(3));
    assert_eq!(metrics.jobs.get(), 6);
    assert_eq!(metrics.job_errors[ErrorKind::Redis].get(), 2);
    assert_eq!(metrics.job_errors[ErrorKind::Decode].get(), 1);
    assert_eq!(metrics.job_errors[ErrorKind::Panic].get(), 1);
}
