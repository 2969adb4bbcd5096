//! The selective forwarding unit, sans-IO.
//!
//! One [`Sfu`] holds every WebRTC session (a str0m [`Rtc`] each) and every show's broadcast.
//! The caller feeds it datagrams ([`Sfu::handle_datagram`]) and the time
//! ([`Sfu::handle_timeout`]), and drains [`Sfu::poll_output`] until it answers
//! [`Output::Timeout`]: str0m's own run-loop contract, one level up.
//!
//! Rules it keeps:
//! - A viewer gets video only from a keyframe on: until then its decoder could show nothing.
//!   A viewer that connects asks the publisher for one, and the requests of one broadcast are
//!   rate-limited to one per [`SfuConfig::keyframe_interval`], so a wave of joiners is one
//!   request.
//! - Every session's outgoing datagrams wait in its own bounded outbox, drained round-robin:
//!   while the socket is backed up, one viewer's burst (a retransmission storm, a keyframe)
//!   cannot delay the others, and an overflowing outbox loses its own oldest datagrams.
//! - Viewers are counted against a show's limit once connected; offers still connecting are
//!   counted apart, per client address, and expire fast. One address may hold only a few of
//!   each, so an anonymous client looping offers cannot fill a show that has room.
//! - A session that never connects, or goes silent, is reaped. When a publisher goes, its
//!   viewers stay connected for [`SfuConfig::reconnect_grace`]; a new publisher within it takes
//!   over the same viewers.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hawker_core::ids::ShowId;
use str0m::change::SdpOffer;
use str0m::crypto::CryptoProvider;
use str0m::crypto::dtls::DtlsCert;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Rtc};

use crate::MediaError;

/// Limits and timings of the forwarding unit.
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// The one address every peer sends to, advertised as our only ICE candidate.
    pub candidate: SocketAddr,
    /// Most connected viewers of one show.
    pub max_viewers_per_show: usize,
    pub max_sessions: usize,
    /// Most viewer sessions, connected or not, from one client address.
    pub max_sessions_per_client: usize,
    /// Most viewer sessions from one client address that have not connected yet.
    pub max_pending_per_client: usize,
    /// How long viewers wait for a publisher that left before the broadcast goes off air.
    pub reconnect_grace: Duration,
    /// Fewest time between two keyframe requests to one publisher.
    pub keyframe_interval: Duration,
    /// A session that has not connected (ICE and DTLS) by then is reaped.
    pub connect_timeout: Duration,
    /// A connected session that sent nothing (browsers send a consent check every few seconds)
    /// for this long is reaped.
    pub idle_timeout: Duration,
    /// A publisher whose media stopped this long ago can be replaced by a new one at once (a
    /// host who reloaded the page, so could not say goodbye).
    pub stale_publisher: Duration,
    /// Datagrams one session may have waiting to be sent; beyond it the oldest are dropped.
    pub outbox_limit: usize,
}

impl SfuConfig {
    pub fn new(candidate: SocketAddr) -> Self {
        Self {
            candidate,
            max_viewers_per_show: 500,
            max_sessions: 2_000,
            max_sessions_per_client: 20,
            max_pending_per_client: 4,
            reconnect_grace: Duration::from_secs(120),
            keyframe_interval: Duration::from_secs(1),
            // ICE-lite with one host candidate: a browser connects within a second or two.
            connect_timeout: Duration::from_secs(6),
            idle_timeout: Duration::from_secs(20),
            stale_publisher: Duration::from_secs(3),
            outbox_limit: 256,
        }
    }
}

/// Names a session in its resource URL. Random, so knowing one's own reveals no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(pub u128);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u128::from_str_radix(s, 16).map(SessionId)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the show's media (WHIP).
    Publisher,
    /// Receives it (WHEP).
    Viewer,
}

/// What the forwarding unit tells the rest of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SfuEvent {
    /// Media from the show's publisher arrived: the show is on air.
    OnAir { show: ShowId },
    /// The publisher left or its connection died; viewers wait for up to the grace period.
    Reconnecting { show: ShowId },
    /// Nobody publishes and the grace period ran out, or the broadcast was stopped.
    OffAir { show: ShowId },
    /// A session ended: closed by its owner, reaped, or failed.
    SessionClosed {
        show: ShowId,
        session: SessionId,
        role: Role,
    },
}

/// A datagram to send.
#[derive(Debug, Clone)]
pub struct Transmit {
    pub session: SessionId,
    pub destination: SocketAddr,
    pub contents: Vec<u8>,
}

#[derive(Debug)]
pub enum Output {
    Transmit(Transmit),
    Event(SfuEvent),
    /// Nothing more until this time or the next datagram.
    Timeout(Instant),
}

/// The video codec a broadcast forwards. Fixed for the broadcast's life: viewers negotiated it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VideoCodec {
    H264,
    Vp8,
}

impl VideoCodec {
    /// H.264 first (HLS and recordings need it), VP8 if that is all the offer has.
    fn choose(offer: &str, required: Option<VideoCodec>) -> Result<Option<Self>, MediaError> {
        let has = |name: &str| {
            offer.lines().any(|l| {
                l.starts_with("a=rtpmap:") && l.to_ascii_uppercase().contains(&format!(" {name}/"))
            })
        };
        let has_video = offer.lines().any(|l| l.starts_with("m=video"));
        if !has_video {
            return Ok(None);
        }
        let offered = [VideoCodec::H264, VideoCodec::Vp8]
            .into_iter()
            .filter(|c| has(c.name()))
            .collect::<Vec<_>>();
        match required {
            Some(c) if offered.contains(&c) => Ok(Some(c)),
            Some(c) => Err(MediaError::UnsupportedCodec(format!(
                "this broadcast's video is {}; offer it",
                c.name()
            ))),
            None => offered.first().copied().map(Some).ok_or_else(|| {
                MediaError::UnsupportedCodec("offer H.264 or VP8 video (or no video)".into())
            }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H264",
            VideoCodec::Vp8 => "VP8",
        }
    }
}

struct Session {
    show: ShowId,
    role: Role,
    rtc: Rtc,
    created: Instant,
    last_input: Instant,
    connected: bool,
    next_timeout: Instant,
    /// Where its datagrams come from, for the fast lookup (and to forget on removal).
    remote: Option<SocketAddr>,
    /// A viewer's outgoing tracks, or a publisher's incoming ones.
    video_mid: Option<Mid>,
    audio_mid: Option<Mid>,
    /// A viewer forwards no video until a keyframe: its decoder could not start on a delta.
    awaiting_keyframe: bool,
    /// The address a viewer offered from (publishers hold the stream key and are not counted).
    client: Option<IpAddr>,
    /// A publisher's last media, to tell a stalled one from a live one.
    last_media: Option<Instant>,
    outbox: VecDeque<Transmit>,
    dropped: u64,
}

struct Broadcast {
    publisher: Option<SessionId>,
    viewers: Vec<SessionId>,
    video: Option<VideoCodec>,
    /// Media from the current publisher has arrived.
    on_air: bool,
    /// Set while nobody publishes: viewers are dropped after it.
    grace_until: Option<Instant>,
    last_keyframe_request: Option<Instant>,
    /// A viewer wants a keyframe but the last request was too recent.
    keyframe_wanted: bool,
}

impl Broadcast {
    fn new(video: Option<VideoCodec>) -> Self {
        Self {
            publisher: None,
            viewers: Vec::new(),
            video,
            on_air: false,
            grace_until: None,
            last_keyframe_request: None,
            keyframe_wanted: false,
        }
    }
}

/// Counts, for limits, metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub sessions: usize,
    pub publishers: usize,
    pub viewers: usize,
    pub keyframe_requests: u64,
    pub dropped_datagrams: u64,
}

pub struct Sfu {
    config: SfuConfig,
    crypto: Arc<CryptoProvider>,
    /// One certificate for every session: generating one per session costs a key pair each.
    cert: DtlsCert,
    sessions: HashMap<SessionId, Session>,
    broadcasts: HashMap<ShowId, Broadcast>,
    by_remote: HashMap<SocketAddr, SessionId>,
    /// Sessions whose `Rtc` may have output to drain.
    dirty: Vec<SessionId>,
    /// Sessions with datagrams in their outbox, in round-robin order.
    ready: VecDeque<SessionId>,
    events: VecDeque<SfuEvent>,
    /// Goodbyes (RTCP BYE, DTLS close_notify) of sessions already forgotten.
    farewells: VecDeque<Transmit>,
    next_housekeeping: Instant,
    keyframe_requests: u64,
}

const HOUSEKEEPING: Duration = Duration::from_millis(500);

impl Sfu {
    /// `None` if the crypto backend cannot make a DTLS certificate.
    pub fn new(config: SfuConfig, now: Instant) -> Option<Self> {
        let crypto = str0m::crypto::from_feature_flags();
        let cert = crypto.dtls_provider.generate_certificate()?;
        Some(Self {
            config,
            crypto: Arc::new(crypto),
            cert,
            sessions: HashMap::new(),
            broadcasts: HashMap::new(),
            by_remote: HashMap::new(),
            dirty: Vec::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            farewells: VecDeque::new(),
            next_housekeeping: now + HOUSEKEEPING,
            keyframe_requests: 0,
        })
    }

    pub fn counts(&self) -> Counts {
        let publishers = self
            .sessions
            .values()
            .filter(|s| s.role == Role::Publisher)
            .count();
        Counts {
            sessions: self.sessions.len(),
            publishers,
            viewers: self.sessions.len() - publishers,
            keyframe_requests: self.keyframe_requests,
            dropped_datagrams: self.sessions.values().map(|s| s.dropped).sum(),
        }
    }

    /// A WHIP offer: the show's publisher. Answers the SDP answer.
    pub fn publish(
        &mut self,
        now: Instant,
        show: ShowId,
        id: SessionId,
        offer: &str,
    ) -> Result<String, MediaError> {
        let parsed = parse_offer(offer)?;
        // No session cap here: publishers hold the stream key, and a flood of anonymous viewer
        // offers must not keep the host off the air.
        let required = self.broadcasts.get(&show).and_then(|b| {
            // Viewers negotiated the broadcast's codec; a new publisher must send it too.
            (!b.viewers.is_empty()).then_some(b.video).flatten()
        });
        let video = VideoCodec::choose(offer, required)?;
        if let Some(current) = self.broadcasts.get(&show).and_then(|b| b.publisher) {
            let stale = self.sessions.get(&current).is_none_or(|s| {
                let since = s.last_media.unwrap_or(s.created);
                now.saturating_duration_since(since) >= self.config.stale_publisher
            });
            if !stale {
                return Err(MediaError::AlreadyPublishing);
            }
        }
        // Answer before replacing anyone: an offer str0m refuses must leave the broadcast as
        // it was.
        let (rtc, answer) = self.answer(now, parsed, video)?;
        if let Some(current) = self.broadcasts.get(&show).and_then(|b| b.publisher) {
            self.remove(now, current, false);
        }
        let broadcast = self
            .broadcasts
            .entry(show)
            .or_insert_with(|| Broadcast::new(video));
        if required.is_none() {
            // Nobody negotiated the old codec: the broadcast now carries the new publisher's.
            broadcast.video = video;
        }
        broadcast.publisher = Some(id);
        broadcast.grace_until = None;
        broadcast.on_air = false;
        self.insert(now, id, show, Role::Publisher, None, rtc);
        Ok(answer)
    }

    /// A WHEP offer from `client`: one viewer of a show that is on air. Answers the SDP
    /// answer.
    pub fn play(
        &mut self,
        now: Instant,
        show: ShowId,
        id: SessionId,
        client: IpAddr,
        offer: &str,
    ) -> Result<String, MediaError> {
        let broadcast = self.broadcasts.get(&show).ok_or(MediaError::NotOnAir)?;
        let parsed = parse_offer(offer)?;
        if self.watching(broadcast) >= self.config.max_viewers_per_show {
            return Err(MediaError::ShowFull);
        }
        let (pending, all) = self.sessions_of(client);
        if all >= self.config.max_sessions_per_client
            || pending >= self.config.max_pending_per_client
        {
            return Err(MediaError::TooManyFromClient);
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(MediaError::ServerFull);
        }
        let video = VideoCodec::choose(offer, broadcast.video)?.or(broadcast.video);
        let (rtc, answer) = self.answer(now, parsed, video)?;
        if let Some(b) = self.broadcasts.get_mut(&show) {
            b.viewers.push(id);
        }
        self.insert(now, id, show, Role::Viewer, Some(client), rtc);
        Ok(answer)
    }

    /// The broadcast's connected viewers: those still connecting are counted per client.
    fn watching(&self, broadcast: &Broadcast) -> usize {
        broadcast
            .viewers
            .iter()
            .filter(|v| self.sessions.get(v).is_some_and(|s| s.connected))
            .count()
    }

    /// The viewer sessions of one client address: (not yet connected, all).
    fn sessions_of(&self, client: IpAddr) -> (usize, usize) {
        self.sessions
            .values()
            .filter(|s| s.client == Some(client))
            .fold((0, 0), |(pending, all), s| {
                (pending + usize::from(!s.connected), all + 1)
            })
    }

    /// A DELETE on a session's resource. A publisher who stops leaves the broadcast in its
    /// grace period, so the host can resume without ending the show.
    pub fn stop(
        &mut self,
        now: Instant,
        show: ShowId,
        id: SessionId,
        role: Role,
    ) -> Result<(), MediaError> {
        match self.sessions.get_mut(&id) {
            Some(s) if s.show == show && s.role == role => {
                // Say goodbye (RTCP BYE, DTLS close_notify), then forget it.
                let _ = s.rtc.close();
                self.drain_session(now, id);
                if let Some(s) = self.sessions.get_mut(&id) {
                    self.farewells.extend(s.outbox.drain(..));
                    self.remove(now, id, true);
                }
                Ok(())
            }
            _ => Err(MediaError::UnknownSession),
        }
    }

    /// Cuts the show's publisher off (its key was replaced): viewers wait out the grace period
    /// for the host to publish again with the new one.
    pub fn drop_publisher(&mut self, now: Instant, show: ShowId) {
        if let Some(publisher) = self.broadcasts.get(&show).and_then(|b| b.publisher) {
            self.remove(now, publisher, true);
        }
    }

    /// The show ended: its broadcast goes off air now, whatever the grace period.
    pub fn end_show(&mut self, now: Instant, show: ShowId) {
        if let Some(b) = self.broadcasts.get(&show) {
            let ids: Vec<SessionId> = b.publisher.iter().chain(&b.viewers).copied().collect();
            for id in ids {
                self.remove(now, id, false);
            }
            self.broadcasts.remove(&show);
            self.events.push_back(SfuEvent::OffAir { show });
        }
    }

    /// A datagram arrived on our socket.
    pub fn handle_datagram(&mut self, now: Instant, source: SocketAddr, contents: &[u8]) {
        let contents_bytes = contents;
        let Ok(contents) = contents.try_into() else {
            return;
        };
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.config.candidate,
                contents,
            },
        );
        let id = match self.by_remote.get(&source) {
            Some(id) if self.sessions.get(id).is_some_and(|s| s.rtc.accepts(&input)) => *id,
            _ => {
                // A first datagram from this address must be a STUN check, which names its
                // session by ufrag; anything else from a stranger is dropped unread.
                if !is_stun(contents_bytes) {
                    return;
                }
                let Some((id, _)) = self.sessions.iter().find(|(_, s)| s.rtc.accepts(&input))
                else {
                    return;
                };
                *id
            }
        };
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        session.last_input = now;
        if session.remote != Some(source) {
            if let Some(old) = session.remote.replace(source) {
                self.by_remote.remove(&old);
            }
            self.by_remote.insert(source, id);
        }
        if let Err(e) = session.rtc.handle_input(input) {
            tracing::debug!(session = %id, "input failed: {e}");
            session.rtc.disconnect();
        }
        self.dirty.push(id);
        self.process(now);
    }

    /// Time passed: drive every session whose timer is due, reap, and expire grace periods.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, s) in &mut self.sessions {
            if s.next_timeout <= now {
                if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(session = %id, "timeout failed: {e}");
                    s.rtc.disconnect();
                }
                self.dirty.push(*id);
            }
        }
        if now >= self.next_housekeeping {
            self.next_housekeeping = now + HOUSEKEEPING;
            self.reap(now);
        }
        self.request_wanted_keyframes(now);
        self.process(now);
    }

    /// The next datagram to send, event to report, or the time to be called again.
    pub fn poll_output(&mut self) -> Output {
        if let Some(e) = self.events.pop_front() {
            return Output::Event(e);
        }
        if let Some(t) = self.farewells.pop_front() {
            return Output::Transmit(t);
        }
        while let Some(id) = self.ready.pop_front() {
            let Some(s) = self.sessions.get_mut(&id) else {
                continue;
            };
            let Some(t) = s.outbox.pop_front() else {
                continue;
            };
            if !s.outbox.is_empty() {
                self.ready.push_back(id);
            }
            return Output::Transmit(t);
        }
        Output::Timeout(self.next_timeout())
    }

    fn next_timeout(&self) -> Instant {
        let mut next = self.next_housekeeping;
        for s in self.sessions.values() {
            next = next.min(s.next_timeout);
        }
        for b in self.broadcasts.values() {
            if let Some(t) = b.grace_until {
                next = next.min(t);
            }
            let publisher_ready = b
                .publisher
                .and_then(|p| self.sessions.get(&p))
                .is_some_and(|p| p.connected && p.video_mid.is_some());
            // Only a request that can be sent is worth waking for; otherwise the publisher's
            // connecting wakes us.
            if b.keyframe_wanted
                && publisher_ready
                && let Some(t) = b.last_keyframe_request
            {
                next = next.min(t + self.config.keyframe_interval);
            }
        }
        next
    }

    fn answer(
        &self,
        now: Instant,
        offer: SdpOffer,
        video: Option<VideoCodec>,
    ) -> Result<(Rtc, String), MediaError> {
        let mut builder = Rtc::builder()
            .set_ice_lite(true)
            .set_crypto_provider(self.crypto.clone())
            .set_dtls_cert(self.cert.clone())
            .clear_codecs()
            .enable_opus(true, false)
            // Packets kept for retransmission: about two seconds of 1.5 Mbit/s video answers any
            // NACK in time, at a quarter of str0m's default memory per viewer.
            .set_send_buffer_video(256);
        builder = match video {
            Some(VideoCodec::H264) => builder.enable_h264(true),
            Some(VideoCodec::Vp8) => builder.enable_vp8(true),
            None => builder,
        };
        let mut rtc = builder.build(now);
        let candidate = Candidate::host(self.config.candidate, "udp")
            .map_err(|e| MediaError::BadOffer(format!("candidate: {e}")))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| MediaError::BadOffer(e.to_string()))?;
        Ok((rtc, answer.to_sdp_string()))
    }

    fn insert(
        &mut self,
        now: Instant,
        id: SessionId,
        show: ShowId,
        role: Role,
        client: Option<IpAddr>,
        rtc: Rtc,
    ) {
        self.sessions.insert(
            id,
            Session {
                show,
                role,
                rtc,
                created: now,
                last_input: now,
                connected: false,
                next_timeout: now,
                remote: None,
                video_mid: None,
                audio_mid: None,
                awaiting_keyframe: true,
                client,
                last_media: None,
                outbox: VecDeque::new(),
                dropped: 0,
            },
        );
        self.dirty.push(id);
        self.process(now);
    }

    /// Drains every dirty session until all are waiting on a timer.
    fn process(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            self.drain_session(now, id);
        }
    }

    fn drain_session(&mut self, now: Instant, id: SessionId) {
        let limit = self.config.outbox_limit;
        let mut events = Vec::new();
        {
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            let was_empty = s.outbox.is_empty();
            loop {
                match s.rtc.poll_output() {
                    Ok(str0m::Output::Transmit(t)) => {
                        if s.outbox.len() >= limit {
                            s.outbox.pop_front();
                            s.dropped += 1;
                        }
                        s.outbox.push_back(Transmit {
                            session: id,
                            destination: t.destination,
                            contents: t.contents.into(),
                        });
                    }
                    Ok(str0m::Output::Timeout(t)) => {
                        s.next_timeout = t;
                        break;
                    }
                    Ok(str0m::Output::Event(e)) => events.push(e),
                    Err(e) => {
                        tracing::debug!(session = %id, "poll failed: {e}");
                        s.rtc.disconnect();
                        break;
                    }
                }
            }
            if was_empty && !s.outbox.is_empty() {
                self.ready.push_back(id);
            }
        }
        for e in events {
            self.on_event(now, id, e);
        }
        // A session that failed or finished closing goes now, its last datagrams with it.
        if let Some(s) = self.sessions.get_mut(&id)
            && !s.rtc.is_alive()
        {
            self.farewells.extend(s.outbox.drain(..));
            self.remove(now, id, true);
        }
    }

    fn on_event(&mut self, now: Instant, id: SessionId, event: Event) {
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let (show, role) = (s.show, s.role);
        match event {
            Event::Connected => {
                s.connected = true;
                if role == Role::Viewer
                    && let Some(b) = self.broadcasts.get(&show)
                    && self.watching(b) > self.config.max_viewers_per_show
                {
                    // Others connected first while this one was connecting: the show is full.
                    if let Some(s) = self.sessions.get_mut(&id) {
                        s.rtc.disconnect();
                    }
                    return;
                }
                let waiting = self
                    .broadcasts
                    .get(&show)
                    .is_some_and(|b| !b.viewers.is_empty());
                // A joining viewer needs a keyframe; so do waiting viewers when the host returns.
                if role == Role::Viewer || waiting {
                    self.want_keyframe(now, show);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                // The client re-offers (WHEP/WHIP again) rather than ICE-restarting.
                s.rtc.disconnect();
            }
            // A viewer's outgoing tracks; a publisher's incoming video, to ask for keyframes.
            Event::MediaAdded(m) => match m.kind {
                MediaKind::Video => s.video_mid = Some(m.mid),
                MediaKind::Audio => s.audio_mid = Some(m.mid),
            },
            Event::MediaData(data) if role == Role::Publisher => {
                s.last_media = Some(now);
                if !data.contiguous && data.params.spec().codec.is_video() {
                    // Lost packets broke the picture: every viewer needs a fresh keyframe.
                    self.want_keyframe(now, show);
                }
                self.forward(show, &data);
            }
            Event::KeyframeRequest(_) if role == Role::Viewer => {
                self.want_keyframe(now, show);
            }
            _ => {}
        }
    }

    fn forward(&mut self, show: ShowId, data: &MediaData) {
        let Some(b) = self.broadcasts.get_mut(&show) else {
            return;
        };
        if !b.on_air {
            b.on_air = true;
            self.events.push_back(SfuEvent::OnAir { show });
        }
        let is_video = data.params.spec().codec.is_video();
        let keyframe = is_video && data.is_keyframe();
        if keyframe {
            b.keyframe_wanted = false;
        }
        for viewer in &b.viewers {
            let Some(v) = self.sessions.get_mut(viewer) else {
                continue;
            };
            if !v.connected {
                continue;
            }
            let mid = if is_video {
                if v.awaiting_keyframe && !keyframe {
                    continue;
                }
                v.video_mid
            } else {
                v.audio_mid
            };
            let Some(writer) = mid.and_then(|m| v.rtc.writer(m)) else {
                continue;
            };
            let Some(pt) = writer.match_params(data.params) else {
                continue;
            };
            if let Err(e) = writer.write(pt, data.network_time, data.time, data.data.clone()) {
                tracing::debug!(viewer = %viewer, "write failed: {e}");
                v.rtc.disconnect();
            } else if keyframe {
                v.awaiting_keyframe = false;
            }
            self.dirty.push(*viewer);
        }
    }

    /// Asks the publisher for a keyframe now, or as soon as the rate limit allows.
    fn want_keyframe(&mut self, now: Instant, show: ShowId) {
        if let Some(b) = self.broadcasts.get_mut(&show) {
            b.keyframe_wanted = true;
        }
        self.request_keyframe_if_due(now, show);
    }

    fn request_wanted_keyframes(&mut self, now: Instant) {
        let wanted: Vec<ShowId> = self
            .broadcasts
            .iter()
            .filter(|(_, b)| b.keyframe_wanted)
            .map(|(id, _)| *id)
            .collect();
        for show in wanted {
            self.request_keyframe_if_due(now, show);
        }
    }

    fn request_keyframe_if_due(&mut self, now: Instant, show: ShowId) {
        let interval = self.config.keyframe_interval;
        let Some(b) = self.broadcasts.get_mut(&show) else {
            return;
        };
        let due = b
            .last_keyframe_request
            .is_none_or(|t| now.saturating_duration_since(t) >= interval);
        let Some(publisher) = b.publisher.and_then(|p| self.sessions.get_mut(&p)) else {
            return;
        };
        if !due || !publisher.connected {
            return;
        }
        let Some(mid) = publisher.video_mid else {
            return;
        };
        // Counted as an attempt whatever the outcome, so a failing request is retried at the
        // rate limit, never in a loop.
        b.last_keyframe_request = Some(now);
        let Some(mut writer) = publisher.rtc.writer(mid) else {
            return;
        };
        let kind = if writer.is_request_keyframe_possible(KeyframeRequestKind::Pli) {
            KeyframeRequestKind::Pli
        } else {
            KeyframeRequestKind::Fir
        };
        if writer.request_keyframe(None, kind).is_ok() {
            b.keyframe_wanted = false;
            self.keyframe_requests += 1;
            if let Some(p) = b.publisher {
                self.dirty.push(p);
            }
        }
    }

    fn reap(&mut self, now: Instant) {
        let config = &self.config;
        let dead: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.rtc.is_alive()
                    || (!s.connected
                        && now.saturating_duration_since(s.created) >= config.connect_timeout)
                    || now.saturating_duration_since(s.last_input) >= config.idle_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for id in dead {
            self.remove(now, id, true);
        }
        let expired: Vec<ShowId> = self
            .broadcasts
            .iter()
            .filter(|(_, b)| b.grace_until.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for show in expired {
            self.end_show(now, show);
        }
    }

    /// Forgets a session. A publisher's leaving starts its broadcast's grace period (when
    /// `grace`); a replaced publisher's does not.
    fn remove(&mut self, now: Instant, id: SessionId, grace: bool) {
        let Some(mut s) = self.sessions.remove(&id) else {
            return;
        };
        s.rtc.disconnect();
        if let Some(remote) = s.remote {
            self.by_remote.remove(&remote);
        }
        if s.dropped > 0 {
            tracing::debug!(session = %id, dropped = s.dropped, "session left with dropped datagrams");
        }
        if let Some(b) = self.broadcasts.get_mut(&s.show) {
            match s.role {
                Role::Viewer => b.viewers.retain(|v| *v != id),
                Role::Publisher if b.publisher == Some(id) => {
                    b.publisher = None;
                    // A replaced publisher's successor takes over at once; otherwise viewers
                    // wait out the grace period. Every broadcast without a publisher has one,
                    // so none outlives its host for long.
                    if grace || b.grace_until.is_none() {
                        b.grace_until = Some(now + self.config.reconnect_grace);
                    }
                    if grace && b.on_air {
                        self.events
                            .push_back(SfuEvent::Reconnecting { show: s.show });
                    }
                    b.on_air = false;
                    for v in &b.viewers {
                        if let Some(v) = self.sessions.get_mut(v) {
                            v.awaiting_keyframe = true;
                        }
                    }
                }
                Role::Publisher => {}
            }
        }
        self.events.push_back(SfuEvent::SessionClosed {
            show: s.show,
            session: id,
            role: s.role,
        });
    }
}

/// A STUN message: two zero bits, then the type, the length and the magic cookie (RFC 8489).
fn is_stun(datagram: &[u8]) -> bool {
    datagram.len() >= 20 && datagram[0] < 2 && datagram[4..8] == [0x21, 0x12, 0xa4, 0x42]
}

fn parse_offer(offer: &str) -> Result<SdpOffer, MediaError> {
    if !offer
        .lines()
        .any(|l| l.starts_with("m=audio") || l.starts_with("m=video"))
    {
        return Err(MediaError::BadOffer(
            "the offer has no audio or video section".into(),
        ));
    }
    SdpOffer::from_sdp_string(offer).map_err(|e| MediaError::BadOffer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_is_preferred_and_vp8_accepted() {
        let both =
            "m=video 9 UDP/TLS/RTP/SAVPF 96 102\na=rtpmap:96 VP8/90000\na=rtpmap:102 H264/90000\n";
        assert_eq!(VideoCodec::choose(both, None), Ok(Some(VideoCodec::H264)));
        let vp8 = "m=video 9 UDP/TLS/RTP/SAVPF 96\na=rtpmap:96 VP8/90000\n";
        assert_eq!(VideoCodec::choose(vp8, None), Ok(Some(VideoCodec::Vp8)));
        assert!(VideoCodec::choose(vp8, Some(VideoCodec::H264)).is_err());
        let av1 = "m=video 9 UDP/TLS/RTP/SAVPF 45\na=rtpmap:45 AV1/90000\n";
        assert!(VideoCodec::choose(av1, None).is_err());
        assert_eq!(VideoCodec::choose("m=audio 9 x 111\n", None), Ok(None));
    }

    #[test]
    fn session_ids_round_trip_as_hex() {
        let id = SessionId(0xabc);
        assert_eq!(id.to_string().len(), 32);
        assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
    }
}
