//! Starts the local stack on an AWS emulator: provisions template.yaml's
//! resources, builds the App with the same environment names the Lambdas
//! get, and runs the gateway, the queue pump and the refresher tick.

use crate::gateway::{router, Gateway};
use crate::provision::{provision, Provisioned};
use crate::pump::{Pump, PumpQueue};
use crate::template::{Template, ValueSource};
use connector_core::domain::env::Env;
use connector_core::App;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub const LOCAL_MOCK_WEBHOOK_SECRET: &str = "local-mock-webhook-secret";
pub const LOCAL_PUSH_SECRET: &str = "local-push-secret";

pub struct StackOptions {
    pub endpoint: String,
    /// Resource-name prefix (one stack per prefix on a shared emulator).
    pub prefix: String,
    pub bind: SocketAddr,
    /// Values that win over everything else (tests).
    pub extra_env: HashMap<String, String>,
    /// Refresher tick period; None: no tick.
    pub tick: Option<Duration>,
    pub pump: bool,
    pub template: PathBuf,
}

impl StackOptions {
    pub fn new(endpoint: &str, prefix: &str) -> Self {
        Self {
            endpoint: endpoint.to_string(),
            prefix: prefix.to_string(),
            bind: "127.0.0.1:0".parse().expect("socket address"),
            extra_env: HashMap::new(),
            tick: None,
            pump: true,
            template: workspace_root().join("template.yaml"),
        }
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Stack {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    pub provisioned: Provisioned,
    pub sdk: aws_config::SdkConfig,
    pub pump: Arc<Pump>,
    pub env: HashMap<String, String>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Stack {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Stack {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn start(opts: StackOptions) -> Result<Stack, Box<dyn std::error::Error + Send + Sync>> {
    let template = Template::load(&opts.template)?;
    let sdk = connector_core::aws::aws_config(Some(&opts.endpoint)).await;
    let provisioned = provision(&sdk, &template, &opts.prefix).await?;
    let listener = tokio::net::TcpListener::bind(opts.bind).await?;
    let addr = listener.local_addr()?;

    // Template parameters keep their defaults unless the environment sets
    // them; resource names always come from what was just provisioned.
    let mut env = provisioned.env.clone();
    for (var, source) in template.function_env()? {
        if matches!(&source, ValueSource::Ref(r) if template.is_parameter(r))
            && std::env::var_os(&var).is_some()
        {
            env.remove(&var);
        }
    }
    let set_default = |env: &mut HashMap<String, String>, k: &str, v: String| {
        let unset_here = env.get(k).is_none_or(|x| x.is_empty());
        if unset_here && std::env::var(k).map_or(true, |x| x.is_empty()) {
            env.insert(k.to_string(), v);
        }
    };
    set_default(
        &mut env,
        "CONNECTOR_PUBLIC_BASE_URL",
        format!("http://{addr}"),
    );
    env.entry("CONNECTOR_RETURN_URLS".into()).and_modify(|v| {
        if std::env::var("CONNECTOR_RETURN_URLS").is_err() {
            *v = format!("http://{addr}/connected");
        }
    });
    // The local stack is for trying the API: the Mock vendor is on (in AWS
    // only the EnableMockVendor parameter turns it on).
    if std::env::var_os("CONNECTOR_MOCK_ENABLED").is_none() {
        env.insert("CONNECTOR_MOCK_ENABLED".into(), "true".into());
    }
    set_default(
        &mut env,
        "CONNECTOR_MOCK_WEBHOOK_SECRET",
        LOCAL_MOCK_WEBHOOK_SECRET.to_string(),
    );
    set_default(
        &mut env,
        "CONNECTOR_PUSH_SECRET",
        LOCAL_PUSH_SECRET.to_string(),
    );
    env.insert("CONNECTOR_AWS_ENDPOINT".into(), opts.endpoint.clone());
    env.extend(opts.extra_env.clone());

    let app = Arc::new(App::new(Env::with_overrides(env.clone())).await?);
    // What the tick publishes in AWS, at once, for GET /v1/providers.
    connector_core::flows::tick::publish_supported(&app, chrono::Utc::now()).await?;
    let pump = Arc::new(Pump {
        sqs: aws_sdk_sqs::Client::new(&sdk),
        queues: ["SyncQueue", "BackfillQueue"]
            .into_iter()
            .filter(|id| provisioned.refs.contains_key(*id))
            .map(|id| PumpQueue {
                url: provisioned.refs[id].clone(),
                arn: provisioned.arns[id].clone(),
            })
            .collect(),
        time_limit: template.timeout_of("sync-worker")?,
    });
    let gateway = Arc::new(Gateway {
        app: app.clone(),
        routes: template.routes(),
        jwt_secret: crate::dev_jwt::secret_from_env(),
    });
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(gateway)).await {
            tracing::error!(error = %e, "gateway stopped");
        }
    })];
    if opts.pump {
        for p in pump.per_queue() {
            let a = app.clone();
            tasks.push(tokio::spawn(async move { p.run(&a).await }));
        }
    }
    if let Some(period) = opts.tick {
        let a = app.clone();
        tasks.push(tokio::spawn(
            async move { crate::tick::run(&a, period).await },
        ));
    }
    Ok(Stack {
        app,
        addr,
        provisioned,
        sdk,
        pump,
        env,
        tasks,
    })
}
