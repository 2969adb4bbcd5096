//! The one owner of the media socket and the [`Sfu`]: a thread of its own running a
//! single-threaded runtime, so forwarding never waits behind HTTP handlers. The rest of the
//! server talks to it through [`Media`], a cheap handle, and hears from it on an event channel.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hawker_core::ids::ShowId;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::MediaError;
use crate::sfu::{Output, Role, SessionId, Sfu, SfuConfig, SfuEvent, Transmit};

/// Where the media socket listens and what it advertises.
#[derive(Debug, Clone)]
pub struct MediaConfig {
    /// The UDP port for all WebRTC traffic; 0 picks a free one.
    pub port: u16,
    /// The address peers can reach us at (our ICE candidate). The socket binds to it when it
    /// is a local address, and to every interface otherwise (behind a NAT).
    pub public_ip: IpAddr,
    pub max_viewers_per_show: usize,
    pub max_sessions: usize,
    /// Most viewer sessions, and most not yet connected, from one client address.
    pub max_sessions_per_client: usize,
    pub max_pending_per_client: usize,
    pub reconnect_grace: Duration,
}

enum Command {
    Publish {
        show: ShowId,
        offer: String,
        reply: oneshot::Sender<Result<(SessionId, String), MediaError>>,
    },
    Play {
        show: ShowId,
        client: IpAddr,
        offer: String,
        reply: oneshot::Sender<Result<(SessionId, String), MediaError>>,
    },
    Stop {
        show: ShowId,
        session: SessionId,
        role: Role,
        reply: oneshot::Sender<Result<(), MediaError>>,
    },
    EndShow {
        show: ShowId,
    },
    DropPublisher {
        show: ShowId,
    },
}

/// The media plane's handle. Cheap to clone; the driver stops when the last one is dropped.
#[derive(Clone)]
pub struct Media {
    commands: mpsc::Sender<Command>,
}

impl Media {
    /// Binds the socket and starts the driver thread. Events (on air, reconnecting, off air)
    /// arrive on the returned receiver.
    pub fn start(config: MediaConfig) -> io::Result<(Media, mpsc::Receiver<SfuEvent>)> {
        let bind_ip = if is_local(config.public_ip) {
            config.public_ip
        } else {
            IpAddr::from([0, 0, 0, 0])
        };
        let socket = std::net::UdpSocket::bind((bind_ip, config.port))?;
        socket.set_nonblocking(true)?;
        let candidate = SocketAddr::new(config.public_ip, socket.local_addr()?.port());
        let mut sfu_config = SfuConfig::new(candidate);
        sfu_config.max_viewers_per_show = config.max_viewers_per_show;
        sfu_config.max_sessions = config.max_sessions;
        sfu_config.max_sessions_per_client = config.max_sessions_per_client;
        sfu_config.max_pending_per_client = config.max_pending_per_client;
        sfu_config.reconnect_grace = config.reconnect_grace;
        let sfu = Sfu::new(sfu_config, Instant::now())
            .ok_or_else(|| io::Error::other("the crypto backend made no DTLS certificate"))?;
        let (commands, commands_rx) = mpsc::channel(256);
        let (events, events_rx) = mpsc::channel(EVENT_BUFFER);
        std::thread::Builder::new()
            .name("hawker-media".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(rt) => rt.block_on(async move {
                        match UdpSocket::from_std(socket) {
                            Ok(socket) => run(sfu, socket, commands_rx, events).await,
                            Err(e) => tracing::error!("media socket: {e}"),
                        }
                    }),
                    Err(e) => tracing::error!("media runtime: {e}"),
                }
            })?;
        Ok((Media { commands }, events_rx))
    }

    /// WHIP: the show's publisher offers; answers the session and the SDP answer.
    pub async fn publish(
        &self,
        show: ShowId,
        offer: String,
    ) -> Result<(SessionId, String), MediaError> {
        self.ask(|reply| Command::Publish { show, offer, reply })
            .await?
    }

    /// WHEP: a viewer at `client` offers; answers the session and the SDP answer.
    pub async fn play(
        &self,
        show: ShowId,
        client: IpAddr,
        offer: String,
    ) -> Result<(SessionId, String), MediaError> {
        self.ask(|reply| Command::Play {
            show,
            client,
            offer,
            reply,
        })
        .await?
    }

    /// DELETE on a session's resource.
    pub async fn stop(
        &self,
        show: ShowId,
        session: SessionId,
        role: Role,
    ) -> Result<(), MediaError> {
        self.ask(|reply| Command::Stop {
            show,
            session,
            role,
            reply,
        })
        .await?
    }

    /// The show's stream key changed: whoever publishes with the old one is cut off.
    pub async fn drop_publisher(&self, show: ShowId) {
        let _ = self.commands.send(Command::DropPublisher { show }).await;
    }

    /// The show ended: its broadcast goes off air at once.
    pub async fn end_show(&self, show: ShowId) {
        let _ = self.commands.send(Command::EndShow { show }).await;
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, MediaError> {
        let (reply, answer) = oneshot::channel();
        // A handler never waits on an overloaded media thread for long. If the command was
        // queued, the thread still carries it out; a session nobody learnt about is reaped.
        let asked = async {
            self.commands
                .send(command(reply))
                .await
                .map_err(|_| MediaError::Stopped)?;
            answer.await.map_err(|_| MediaError::Stopped)
        };
        tokio::time::timeout(ASK_TIMEOUT, asked)
            .await
            .unwrap_or(Err(MediaError::Busy))
    }
}

fn is_local(ip: IpAddr) -> bool {
    std::net::UdpSocket::bind((ip, 0)).is_ok()
}

/// Longest a handler waits for the media thread.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// Most datagrams read before the SFU's output is flushed: amortises the flush without letting
/// a flood of input starve sending.
const READ_BATCH: usize = 64;

async fn run(
    mut sfu: Sfu,
    socket: UdpSocket,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SfuEvent>,
) {
    let mut buf = vec![0u8; 2048];
    // A datagram the kernel would not take yet; sent first when the socket is writable.
    let mut blocked: Option<Transmit> = None;
    loop {
        let deadline = match flush(&mut sfu, &socket, &mut blocked, &events) {
            Some(deadline) => deadline,
            None => Instant::now() + Duration::from_millis(100),
        };
        tokio::select! {
            command = commands.recv() => {
                let Some(command) = command else { return };
                handle(&mut sfu, command);
            }
            read = socket.recv_from(&mut buf) => {
                if let Ok((n, source)) = read {
                    sfu.handle_datagram(Instant::now(), source, &buf[..n]);
                    for _ in 1..READ_BATCH {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => sfu.handle_datagram(Instant::now(), source, &buf[..n]),
                            Err(_) => break,
                        }
                    }
                }
            }
            _ = socket.writable(), if blocked.is_some() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {
                sfu.handle_timeout(Instant::now());
            }
        }
    }
}

fn handle(sfu: &mut Sfu, command: Command) {
    let now = Instant::now();
    match command {
        Command::Publish { show, offer, reply } => {
            let id = SessionId(rand::random());
            let _ = reply.send(sfu.publish(now, show, id, &offer).map(|a| (id, a)));
        }
        Command::Play {
            show,
            client,
            offer,
            reply,
        } => {
            let id = SessionId(rand::random());
            let _ = reply.send(sfu.play(now, show, id, client, &offer).map(|a| (id, a)));
        }
        Command::Stop {
            show,
            session,
            role,
            reply,
        } => {
            let _ = reply.send(sfu.stop(now, show, session, role));
        }
        Command::EndShow { show } => sfu.end_show(now, show),
        Command::DropPublisher { show } => sfu.drop_publisher(now, show),
    }
}

/// Broadcast events (on air, reconnecting, off air) waiting for the server: a few per show per
/// minute, so a full buffer means the server stopped reading.
const EVENT_BUFFER: usize = 1024;

/// Passes a broadcast's change on; session events stay here (nobody outside needs them). The
/// media thread never waits for the server: if the buffer is full the event is dropped, which
/// costs only a stale "live" label.
fn report(events: &mpsc::Sender<SfuEvent>, event: SfuEvent) {
    if matches!(event, SfuEvent::SessionClosed { .. }) {
        return;
    }
    if let Err(mpsc::error::TrySendError::Full(event)) = events.try_send(event) {
        tracing::warn!(
            ?event,
            "the server is not reading media events; dropped one"
        );
    }
}

/// Sends what the SFU has, reports its events, and answers when it next needs the time; `None`
/// while the socket is full (the caller waits for it to drain).
fn flush(
    sfu: &mut Sfu,
    socket: &UdpSocket,
    blocked: &mut Option<Transmit>,
    events: &mpsc::Sender<SfuEvent>,
) -> Option<Instant> {
    if let Some(t) = blocked.take()
        && let Err(t) = send(socket, t)
    {
        *blocked = Some(t);
        return None;
    }
    loop {
        match sfu.poll_output() {
            Output::Transmit(t) => {
                if let Err(t) = send(socket, t) {
                    *blocked = Some(t);
                    return None;
                }
            }
            Output::Event(e) => {
                report(events, e);
            }
            Output::Timeout(t) => return Some(t),
        }
    }
}

/// Sends one datagram; hands it back if the socket's buffer is full.
fn send(socket: &UdpSocket, t: Transmit) -> Result<(), Transmit> {
    match socket.try_send_to(&t.contents, t.destination) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(t),
        // Unreachable peers and the like: UDP drops, and so do we.
        Err(e) => {
            tracing::debug!(to = %t.destination, "send failed: {e}");
            Ok(())
        }
    }
}
