//! A TCP proxy in front of the AWS emulator that can go dark, for tests of
//! an AWS outage in the middle of a run: while down it cuts every open
//! connection and refuses new ones; back up, it forwards again. (Restarting
//! moto itself would wipe its in-memory state, which no AWS outage does.)

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle};

pub struct Outage {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    task: JoinHandle<()>,
}

impl Drop for Outage {
    fn drop(&mut self) {
        self.task.abort();
        self.cut();
    }
}

impl Outage {
    /// Starts forwarding a free local port to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> std::io::Result<Self> {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|_| std::io::Error::other("upstream is not http://ip:port"))?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let down = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<AbortHandle>>> = Default::default();
        let (d, o) = (down.clone(), open.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(SeqCst) {
                    continue; // dropped: the caller sees a reset connection
                }
                let forward = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
                let mut open = o.lock().unwrap();
                open.retain(|h| !h.is_finished());
                open.push(forward.abort_handle());
            }
        });
        Ok(Self {
            addr,
            down,
            open,
            task,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// AWS goes away: open connections are cut, new ones refused.
    pub fn go_down(&self) {
        self.down.store(true, SeqCst);
        self.cut();
    }

    pub fn come_back(&self) {
        self.down.store(false, SeqCst);
    }

    fn cut(&self) {
        for h in self.open.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}
