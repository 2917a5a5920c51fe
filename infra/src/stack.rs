//! Starts the local stack on an AWS emulator: provisions template.yaml's
//! resources, builds the App with the same environment names the Lambdas
//! get, and runs the gateway, the queue pump and the refresher tick.

use crate::gateway::{router, Gateway, HTTP_FUNCTIONS};
use crate::lambda::LambdaProcess;
use crate::provision::{provision, Provisioned};
use crate::pump::{Consumer, Pump, PumpQueue, Worker};
use crate::roles::{create_roles, function_sdk};
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
/// The local stack's app webhook signing secret (a fake key, in the
/// `whsec_` base64 form an app's Standard Webhooks verifier takes).
pub const LOCAL_APP_WEBHOOK_SECRET: &str = "whsec_ZmFrZS1sb2NhbC1hcHAtd2ViaG9vay1rZXkhIQ==";

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
    /// Serve the HTTP routes and the queues through the functions' real
    /// binaries (built beforehand) instead of their handlers in this process.
    pub binaries: bool,
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
            binaries: false,
        }
    }
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub struct Stack {
    /// An app signed as the local admin, for tests and tools that inspect
    /// or arrange the stack's state; the functions run as `functions`.
    pub app: Arc<App>,
    /// Each function's app by binary, on its own role's credentials.
    pub functions: HashMap<String, Arc<App>>,
    /// Each function's role ARN by binary.
    pub roles: HashMap<String, String>,
    /// The functions' running binaries, when the stack serves through them.
    pub binaries: HashMap<String, Arc<crate::lambda::LambdaProcess>>,
    function_sdks: HashMap<String, aws_config::SdkConfig>,
    /// The AWS calls each in-process function made, by binary.
    pub calls: HashMap<String, Arc<crate::aws_calls::AwsCalls>>,
    pub addr: SocketAddr,
    pub provisioned: Provisioned,
    pub sdk: aws_config::SdkConfig,
    pub pump: Arc<Pump>,
    /// The AppEvents queue's event source (app-events).
    pub event_pump: Arc<Pump>,
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

    /// The app a function runs with (its own role's credentials).
    pub fn function(&self, binary: &str) -> &Arc<App> {
        self.functions
            .get(binary)
            .unwrap_or_else(|| panic!("template.yaml has no function {binary}"))
    }

    /// The AWS configuration a function runs with (its role's session).
    pub fn function_sdk(&self, binary: &str) -> &aws_config::SdkConfig {
        self.function_sdks
            .get(binary)
            .unwrap_or_else(|| panic!("template.yaml has no function {binary}"))
    }

    /// A function's real binary, started as Lambda starts it: the
    /// function's environment, its role's session, a Runtime API of its own.
    pub async fn start_binary(&self, binary: &str) -> Result<LambdaProcess, BoxError> {
        let path = crate::lambda::binary_path(binary);
        start_binary(&self.env, self.function_sdk(binary), binary, &path).await
    }

    /// Starts the function `binary` from the build at `path` (e.g. release)
    /// under its role.
    pub async fn start_binary_at(
        &self,
        binary: &str,
        path: &std::path::Path,
    ) -> Result<LambdaProcess, BoxError> {
        start_binary(&self.env, self.function_sdk(binary), binary, path).await
    }

    /// Another instance of a function (as a second Lambda execution
    /// environment would be): its own clients and caches, its role's
    /// credentials.
    pub async fn function_instance(&self, binary: &str) -> connector_core::Result<App> {
        App::with_sdk(
            Env::with_overrides(self.env.clone()),
            self.function_sdk(binary),
        )
        .await
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn start_binary(
    env: &HashMap<String, String>,
    sdk: &aws_config::SdkConfig,
    binary: &str,
    path: &std::path::Path,
) -> Result<LambdaProcess, BoxError> {
    use aws_sdk_dynamodb::config::ProvideCredentials;
    let session = sdk
        .credentials_provider()
        .ok_or("the function has no credentials provider")?
        .provide_credentials()
        .await?;
    let mut env = env.clone();
    env.insert("AWS_ACCESS_KEY_ID".into(), session.access_key_id().into());
    env.insert(
        "AWS_SECRET_ACCESS_KEY".into(),
        session.secret_access_key().into(),
    );
    if let Some(token) = session.session_token() {
        env.insert("AWS_SESSION_TOKEN".into(), token.into());
    }
    Ok(LambdaProcess::start_at(binary, path, &env).await?)
}

pub async fn start(opts: StackOptions) -> Result<Stack, BoxError> {
    let template = Template::load(&opts.template)?;
    let sdk = connector_core::aws::aws_config(Some(&opts.endpoint));
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
    set_default(
        &mut env,
        "CONNECTOR_APP_WEBHOOK_SECRET",
        LOCAL_APP_WEBHOOK_SECRET.to_string(),
    );
    env.insert("CONNECTOR_AWS_ENDPOINT".into(), opts.endpoint.clone());
    env.extend(opts.extra_env.clone());

    let app = Arc::new(App::new(Env::with_overrides(env.clone())).await?);
    let roles = create_roles(&sdk, &opts.template, &provisioned, &opts.prefix).await?;
    let mut functions = HashMap::new();
    let mut function_sdks = HashMap::new();
    let mut calls = HashMap::new();
    for (binary, role) in &roles {
        let function_sdk = function_sdk(&sdk, role, binary).await;
        let counted = Arc::new(crate::aws_calls::AwsCalls::default());
        let counting = crate::aws_calls::counting(&function_sdk, counted.clone());
        let function = App::with_sdk(Env::with_overrides(env.clone()), &counting).await?;
        functions.insert(binary.clone(), Arc::new(function));
        function_sdks.insert(binary.clone(), function_sdk);
        calls.insert(binary.clone(), counted);
    }
    let function = |binary: &str| {
        functions
            .get(binary)
            .cloned()
            .ok_or_else(|| format!("template.yaml has no function {binary}"))
    };
    let (refresher, worker) = (function("token-refresher")?, function("sync-worker")?);
    // What the tick publishes in AWS, at once, for GET /v1/providers.
    connector_core::flows::tick::publish_supported(&refresher, chrono::Utc::now()).await?;
    // Lambda's SQS event source polls with the worker's role.
    let pump = Arc::new(Pump {
        consumer: Consumer::SyncWorker,
        sqs: aws_sdk_sqs::Client::new(&function_sdks["sync-worker"]),
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
    let event_pump = Arc::new(Pump {
        consumer: Consumer::AppEvents,
        sqs: aws_sdk_sqs::Client::new(&function_sdks["app-events"]),
        queues: vec![PumpQueue {
            url: provisioned.refs["AppEventsQueue"].clone(),
            arn: provisioned.arns["AppEventsQueue"].clone(),
        }],
        time_limit: template.timeout_of("app-events")?,
    });
    let mut binaries = HashMap::new();
    if opts.binaries {
        for binary in HTTP_FUNCTIONS
            .iter()
            .chain(["sync-worker", "app-events"].iter())
        {
            let process = start_binary(
                &env,
                &function_sdks[*binary],
                binary,
                &crate::lambda::binary_path(binary),
            )
            .await?;
            binaries.insert(binary.to_string(), Arc::new(process));
        }
    }
    let gateway = Arc::new(Gateway {
        functions: functions.clone(),
        binaries: binaries.clone(),
        routes: template.routes(),
        jwt_secret: crate::dev_jwt::secret_from_env(),
    });
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(gateway)).await {
            tracing::error!(error = %e, "gateway stopped");
        }
    })];
    if opts.pump {
        let delivery = (event_pump.as_ref().clone(), function("app-events")?);
        for (p, a) in pump
            .per_queue()
            .into_iter()
            .map(|p| (p, worker.clone()))
            .chain([delivery])
        {
            let b = binaries.get(p.consumer.binary()).cloned();
            tasks.push(tokio::spawn(async move {
                match &b {
                    Some(process) => p.run_via(Worker::Binary(process)).await,
                    None => p.run_via(Worker::InProcess(&a)).await,
                }
            }));
        }
    }
    if let Some(period) = opts.tick {
        let a = refresher.clone();
        tasks.push(tokio::spawn(
            async move { crate::tick::run(&a, period).await },
        ));
    }
    Ok(Stack {
        app,
        functions,
        roles,
        binaries,
        function_sdks,
        calls,
        addr,
        provisioned,
        sdk,
        pump,
        event_pump,
        env,
        tasks,
    })
}
