//! The real function binaries, run the way Lambda runs them: each one a
//! process of its own whose `main` polls a Lambda Runtime API
//! (`AWS_LAMBDA_RUNTIME_API`) for the next event and posts its answer back,
//! with its role's session in `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`
//! and `AWS_SESSION_TOKEN` as Lambda sets them. The Runtime API here is the
//! small subset a runtime client uses: next invocation, response, error, and
//! init error (docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    #[error("cannot start the {binary} binary ({path}): {detail}; `cargo build` builds it")]
    Start {
        binary: String,
        path: String,
        detail: String,
    },
    #[error("{binary} failed to initialize: {detail}")]
    Init { binary: String, detail: String },
    #[error("{binary} returned an invocation error: {detail}")]
    Invocation { binary: String, detail: String },
    #[error("{binary} did not answer within {secs} s")]
    Timeout { binary: String, secs: u64 },
    #[error("{binary} answered what is not JSON: {detail}")]
    Answer { binary: String, detail: String },
}

enum Answer {
    Response(Bytes),
    Error(String),
}

struct Invocation {
    id: String,
    event: Vec<u8>,
    deadline_ms: i64,
}

struct RuntimeApi {
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    answers: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: Mutex<Option<String>>,
    function_arn: String,
    /// When the process first asked for an invocation: its init was done.
    first_poll: std::sync::OnceLock<std::time::Instant>,
}

/// One function binary running against its own Runtime API.
pub struct LambdaProcess {
    pub binary: String,
    api: Arc<RuntimeApi>,
    send: mpsc::UnboundedSender<Invocation>,
    /// One invocation at a time, as one execution environment takes them.
    busy: tokio::sync::Mutex<()>,
    logs: Arc<Mutex<Vec<String>>>,
    answered: std::sync::atomic::AtomicUsize,
    /// Time from handing each invocation over to its answer, summed.
    invoked_for: Mutex<Duration>,
    spawned: std::time::Instant,
    _child: tokio::process::Child,
    _server: tokio::task::JoinHandle<()>,
}

/// Where cargo puts the workspace's binaries: its debug build, or the
/// profile `CONNECTOR_BINARY_PROFILE` names (`release` for the benchmarks).
pub fn binary_path(binary: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::stack::workspace_root().join("target"));
    let profile = std::env::var("CONNECTOR_BINARY_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "debug".into());
    target.join(profile).join(binary)
}

/// Builds the workspace's binaries (a no-op when they are up to date; the
/// whole workspace, so features resolve as in `cargo test --workspace`).
pub fn build() -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .current_dir(crate::stack::workspace_root())
        .args(["build", "--locked", "--quiet", "--workspace", "--bins"])
        .status()
        .map_err(|e| format!("cargo build: {e}"))?;
    status
        .success()
        .then_some(())
        .ok_or_else(|| "cargo build --workspace --bins failed".to_string())
}

impl LambdaProcess {
    /// Starts `binary` with `env` (the function's environment and its
    /// role's credentials) against a Runtime API of its own.
    pub async fn start(binary: &str, env: &HashMap<String, String>) -> Result<Self, LambdaError> {
        Self::start_at(binary, &binary_path(binary), env).await
    }

    /// Starts the binary at `path` (e.g. a release build) as `binary`.
    pub async fn start_at(
        binary: &str,
        path: &std::path::Path,
        env: &HashMap<String, String>,
    ) -> Result<Self, LambdaError> {
        let start_error = |detail: String| LambdaError::Start {
            binary: binary.to_string(),
            path: path.display().to_string(),
            detail,
        };
        let (send, next) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            next: tokio::sync::Mutex::new(next),
            answers: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            function_arn: format!("arn:aws:lambda:us-east-1:123456789012:function:{binary}"),
            first_poll: std::sync::OnceLock::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| start_error(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| start_error(e.to_string()))?;
        let router = axum::Router::new()
            .route(
                "/2018-06-01/runtime/invocation/next",
                axum::routing::get(next_invocation),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                axum::routing::post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                axum::routing::post(invocation_error),
            )
            .route(
                "/2018-06-01/runtime/init/error",
                axum::routing::post(init_error),
            )
            .with_state(api.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let spawned = std::time::Instant::now();
        let mut child = tokio::process::Command::new(path)
            .envs(env)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", binary)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", "us-east-1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| start_error(e.to_string()))?;
        let logs = Arc::new(Mutex::new(Vec::new()));
        for out in [
            child
                .stdout
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let logs = logs.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncBufReadExt;
                let mut lines = tokio::io::BufReader::new(out).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    logs.lock().expect("log buffer").push(line);
                }
            });
        }
        Ok(Self {
            binary: binary.to_string(),
            api,
            send,
            busy: tokio::sync::Mutex::new(()),
            logs,
            answered: Default::default(),
            invoked_for: Default::default(),
            spawned,
            _child: child,
            _server: server,
        })
    }

    /// What the process has written to stdout and stderr (its log lines).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().expect("log buffer").clone()
    }

    /// How long the process took from its start to its first request for
    /// an invocation (Lambda's init phase), waiting up to `timeout` for it.
    pub async fn init_time(&self, timeout: Duration) -> Option<Duration> {
        let until = std::time::Instant::now() + timeout;
        loop {
            if let Some(at) = self.api.first_poll.get() {
                return Some(at.duration_since(self.spawned));
            }
            if std::time::Instant::now() > until
                || self.api.init_error.lock().expect("init").is_some()
            {
                return None;
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// The process's peak resident memory so far, in KiB (Linux' VmHWM).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self._child.id()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// How many invocations the process has answered.
    pub fn answered(&self) -> usize {
        self.answered.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How long its invocations took, from handing each over to its
    /// answer (what Lambda bills as their duration), summed.
    pub fn invoked_for(&self) -> Duration {
        *self.invoked_for.lock().expect("invocation time")
    }

    /// CPU time the process has used so far, all its threads together
    /// (Linux' per-thread schedstat, in nanoseconds).
    pub fn cpu_time(&self) -> Option<Duration> {
        let pid = self._child.id()?;
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let mut ns: u64 = 0;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(ns))
    }

    /// Invokes the function with `event` and returns its answer, allowing
    /// it `timeout` (the deadline it is told).
    pub async fn invoke(
        &self,
        event: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, LambdaError> {
        let _one_at_a_time = self.busy.lock().await;
        let id = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        self.api
            .answers
            .lock()
            .expect("answers")
            .insert(id.clone(), tx);
        let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
        let handed_over = std::time::Instant::now();
        let _ = self.send.send(Invocation {
            id: id.clone(),
            event: serde_json::to_vec(event).unwrap_or_default(),
            deadline_ms,
        });
        let answer = tokio::time::timeout(timeout + Duration::from_secs(5), rx).await;
        *self.invoked_for.lock().expect("invocation time") += handed_over.elapsed();
        self.api.answers.lock().expect("answers").remove(&id);
        if matches!(answer, Ok(Ok(_))) {
            self.answered
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let binary = self.binary.clone();
        match answer {
            Ok(Ok(Answer::Response(body))) => {
                serde_json::from_slice(&body).map_err(|e| LambdaError::Answer {
                    binary,
                    detail: e.to_string(),
                })
            }
            Ok(Ok(Answer::Error(detail))) => Err(LambdaError::Invocation { binary, detail }),
            Ok(Err(_)) | Err(_) => match self.api.init_error.lock().expect("init").clone() {
                Some(detail) => Err(LambdaError::Init { binary, detail }),
                None => Err(LambdaError::Timeout {
                    binary,
                    secs: timeout.as_secs(),
                }),
            },
        }
    }
}

async fn next_invocation(State(api): State<Arc<RuntimeApi>>) -> Response {
    api.first_poll.get_or_init(std::time::Instant::now);
    let Some(inv) = api.next.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    let trace = format!(
        "Root=1-{:08x}-{};Parent={};Sampled=0",
        chrono::Utc::now().timestamp(),
        &uuid::Uuid::new_v4().simple().to_string()[..24],
        &uuid::Uuid::new_v4().simple().to_string()[..16],
    );
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    };
    set("lambda-runtime-aws-request-id", inv.id);
    set("lambda-runtime-deadline-ms", inv.deadline_ms.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        api.function_arn.clone(),
    );
    set("lambda-runtime-trace-id", trace);
    set("content-type", "application/json".into());
    (StatusCode::OK, headers, inv.event).into_response()
}

fn answer(api: &RuntimeApi, id: &str, answer: Answer) -> StatusCode {
    match api.answers.lock().expect("answers").remove(id) {
        Some(tx) => {
            let _ = tx.send(answer);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn invocation_response(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(&api, &id, Answer::Response(body))
}

async fn invocation_error(
    State(api): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    answer(
        &api,
        &id,
        Answer::Error(String::from_utf8_lossy(&body).into_owned()),
    )
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> StatusCode {
    *api.init_error.lock().expect("init") = Some(String::from_utf8_lossy(&body).into_owned());
    api.answers.lock().expect("answers").clear();
    StatusCode::ACCEPTED
}
