//! The SFU with real str0m peers in memory — one publisher, three viewers and more — moved
//! forward in simulated time: no sockets, no sleeping, the same result on every run.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Once;
use std::time::{Duration, Instant};

use hawker_core::ids::ShowId;
use hawker_media::{MediaError, Output, Role, SessionId, Sfu, SfuConfig, SfuEvent, synthetic};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Rtc};

const SHOW: ShowId = ShowId(7);
const FRAME: Duration = Duration::from_millis(33);

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| str0m::crypto::from_feature_flags().install_process_default());
}

/// A browser stand-in: a full-ICE str0m peer at its own address.
struct Client {
    addr: SocketAddr,
    rtc: Rtc,
    next: Instant,
    /// A frozen client neither reads nor answers: a viewer whose tab hung.
    frozen: bool,
    connected: bool,
    video_frames: Vec<(Instant, bool, usize)>,
    audio_frames: usize,
    keyframe_requests: usize,
    /// A publisher's tracks.
    video: Option<Mid>,
    audio: Option<Mid>,
}

impl Client {
    fn new(n: u8, now: Instant) -> Self {
        let addr: SocketAddr = format!("10.0.0.{n}:5000").parse().expect("addr");
        let mut rtc = Rtc::builder().build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        Self {
            addr,
            rtc,
            next: now,
            frozen: false,
            connected: false,
            video_frames: Vec::new(),
            audio_frames: 0,
            keyframe_requests: 0,
            video: None,
            audio: None,
        }
    }

    /// An SDP offer for sending (WHIP) or receiving (WHEP) audio and video.
    fn offer(&mut self, direction: Direction) -> (String, SdpPendingOffer) {
        let mut change = self.rtc.sdp_api();
        let video = change.add_media(MediaKind::Video, direction, None, None, None);
        let audio = change.add_media(MediaKind::Audio, direction, None, None, None);
        if direction == Direction::SendOnly {
            self.video = Some(video);
            self.audio = Some(audio);
        }
        let (offer, pending) = change.apply().expect("an offer");
        (offer.to_sdp_string(), pending)
    }

    fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    fn video_count_since(&self, t: Instant) -> usize {
        self.video_frames
            .iter()
            .filter(|(at, _, _)| *at >= t)
            .count()
    }
}

struct Net {
    now: Instant,
    sfu: Sfu,
    sfu_addr: SocketAddr,
    sfu_next: Instant,
    sfu_events: Vec<SfuEvent>,
    clients: Vec<Client>,
    /// Datagrams in flight; delivered on the next millisecond.
    wire: VecDeque<(SocketAddr, SocketAddr, Vec<u8>)>,
    next_frame: Instant,
    frames_sent: u64,
}

impl Net {
    fn new(configure: impl FnOnce(&mut SfuConfig)) -> Self {
        init();
        let now = Instant::now();
        let sfu_addr: SocketAddr = "10.0.0.1:8189".parse().expect("addr");
        let mut config = SfuConfig::new(sfu_addr);
        configure(&mut config);
        Self {
            now,
            sfu: Sfu::new(config, now).expect("sfu"),
            sfu_addr,
            sfu_next: now,
            sfu_events: Vec::new(),
            clients: Vec::new(),
            wire: VecDeque::new(),
            next_frame: now,
            frames_sent: 0,
        }
    }

    /// Client `n` publishes to the show; returns its index and session.
    fn publish(&mut self, n: u8) -> (usize, Result<SessionId, MediaError>) {
        self.join(n, SHOW, Role::Publisher)
    }

    /// Client `n` plays the show; returns its index and session.
    fn play(&mut self, n: u8) -> (usize, Result<SessionId, MediaError>) {
        self.join(n, SHOW, Role::Viewer)
    }

    fn join(&mut self, n: u8, show: ShowId, role: Role) -> (usize, Result<SessionId, MediaError>) {
        self.join_from(n, [10, 0, 0, n].into(), show, role)
    }

    /// Client `n` joins, its offer arriving over HTTP from `client` (a NAT may put many
    /// peers behind one address).
    fn join_from(
        &mut self,
        n: u8,
        client_ip: std::net::IpAddr,
        show: ShowId,
        role: Role,
    ) -> (usize, Result<SessionId, MediaError>) {
        let mut client = Client::new(n, self.now);
        let id = SessionId(n as u128);
        let result = match role {
            Role::Publisher => {
                let (offer, pending) = client.offer(Direction::SendOnly);
                self.sfu
                    .publish(self.now, show, id, &offer)
                    .map(|a| (a, pending))
            }
            Role::Viewer => {
                let (offer, pending) = client.offer(Direction::RecvOnly);
                self.sfu
                    .play(self.now, show, id, client_ip, &offer)
                    .map(|a| (a, pending))
            }
        };
        let result = result.map(|(answer, pending)| {
            client.accept(pending, &answer);
            id
        });
        self.clients.push(client);
        (self.clients.len() - 1, result)
    }

    fn run_for(&mut self, publisher: Option<usize>, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step(publisher);
        }
    }

    fn step(&mut self, publisher: Option<usize>) {
        self.now += Duration::from_millis(1);
        let now = self.now;
        for (from, to, bytes) in std::mem::take(&mut self.wire) {
            if to == self.sfu_addr {
                self.sfu.handle_datagram(now, from, &bytes);
                continue;
            }
            let Some(c) = self.clients.iter_mut().find(|c| c.addr == to && !c.frozen) else {
                continue;
            };
            let Ok(contents) = bytes.as_slice().try_into() else {
                continue;
            };
            let input = Input::Receive(
                now,
                Receive {
                    proto: Protocol::Udp,
                    source: from,
                    destination: to,
                    contents,
                },
            );
            if c.rtc.accepts(&input) {
                let _ = c.rtc.handle_input(input);
            }
        }
        if let Some(p) = publisher {
            self.send_media(p);
        }
        let timed_out = self.sfu_next <= now;
        if timed_out {
            self.sfu.handle_timeout(now);
        }
        for c in self.clients.iter_mut().filter(|c| !c.frozen) {
            if c.next <= now {
                let _ = c.rtc.handle_input(Input::Timeout(now));
            }
            loop {
                match c.rtc.poll_output() {
                    Ok(str0m::Output::Transmit(t)) => {
                        self.wire
                            .push_back((c.addr, t.destination, t.contents.into()));
                    }
                    Ok(str0m::Output::Timeout(t)) => {
                        c.next = t;
                        break;
                    }
                    Ok(str0m::Output::Event(e)) => match e {
                        Event::Connected => c.connected = true,
                        Event::MediaData(d) if d.params.spec().codec.is_video() => {
                            c.video_frames.push((now, d.is_keyframe(), d.data.len()))
                        }
                        Event::MediaData(_) => c.audio_frames += 1,
                        Event::KeyframeRequest(_) => c.keyframe_requests += 1,
                        _ => {}
                    },
                    Err(_) => break,
                }
            }
        }
        loop {
            match self.sfu.poll_output() {
                Output::Transmit(t) => {
                    self.wire
                        .push_back((self.sfu_addr, t.destination, t.contents))
                }
                Output::Event(e) => self.sfu_events.push(e),
                Output::Timeout(t) => {
                    // Right after handling `now`, a deadline before it would make a real driver
                    // spin (str0m itself may answer `now`: "again, at once").
                    assert!(
                        !timed_out || t >= now,
                        "the SFU asked to be woken in the past"
                    );
                    self.sfu_next = t;
                    break;
                }
            }
        }
    }

    /// The publisher sends 30 frames a second (a keyframe first and whenever asked) and audio.
    fn send_media(&mut self, p: usize) {
        let now = self.now;
        if now < self.next_frame {
            return;
        }
        self.next_frame = now + FRAME;
        let c = &mut self.clients[p];
        if !c.connected {
            return;
        }
        let keyframe = self.frames_sent == 0 || c.keyframe_requests > 0;
        c.keyframe_requests = 0;
        let (Some(video), Some(audio)) = (c.video, c.audio) else {
            return;
        };
        let len = if keyframe { 4_000 } else { 900 };
        synthetic::write_frame(
            &mut c.rtc,
            (video, audio),
            self.frames_sent,
            keyframe,
            len,
            now,
        )
        .expect("media written");
        self.frames_sent += 1;
    }
}

#[test]
fn media_reaches_every_viewer_and_a_wave_of_joiners_is_one_keyframe_request() {
    let mut net = Net::new(|_| {});
    let (p, publisher) = net.publish(2);
    publisher.expect("publish accepted");
    net.run_for(Some(p), Duration::from_secs(1));
    assert!(net.clients[p].connected, "the publisher connects");
    assert!(net.sfu_events.contains(&SfuEvent::OnAir { show: SHOW }));

    let viewers: Vec<usize> = (3..6).map(|n| net.play(n).0).collect();
    let joined = net.now;
    net.run_for(Some(p), Duration::from_secs(2));
    for &v in &viewers {
        let c = &net.clients[v];
        assert!(c.connected, "viewer {v} connects");
        assert!(
            c.video_frames.len() > 30,
            "viewer {v} gets video: {}",
            c.video_frames.len()
        );
        assert!(
            c.audio_frames > 50,
            "viewer {v} gets audio: {}",
            c.audio_frames
        );
        assert!(
            c.video_frames[0].1,
            "viewer {v}'s first frame is a keyframe"
        );
    }
    // The publisher's first keyframe came unasked; three joiners within a second are one
    // request, not three.
    assert_eq!(net.sfu.counts().keyframe_requests, 1);
    let first = net.clients[viewers[0]].video_frames[0].0;
    assert!(
        first.duration_since(joined) < Duration::from_millis(300),
        "first frame fast"
    );

    // A joiner a few seconds later gets its own request.
    net.run_for(Some(p), Duration::from_secs(2));
    let (late, _) = net.play(6);
    net.run_for(Some(p), Duration::from_secs(1));
    assert_eq!(net.sfu.counts().keyframe_requests, 2);
    assert!(net.clients[late].video_frames.first().is_some_and(|f| f.1));
}

#[test]
fn a_viewer_that_stops_reading_does_not_stall_the_others_and_is_reaped() {
    let mut net = Net::new(|c| c.idle_timeout = Duration::from_secs(5));
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(500));
    let viewers: Vec<usize> = (3..6).map(|n| net.play(n).0).collect();
    net.run_for(Some(p), Duration::from_secs(1));
    net.clients[viewers[2]].frozen = true;
    let frozen_at = net.now;
    net.run_for(Some(p), Duration::from_secs(8));
    for &v in &viewers[..2] {
        // 8 s at 30 fps is 240 frames; allow for the start of the window.
        let got = net.clients[v].video_count_since(frozen_at);
        assert!(got >= 230, "viewer {v} kept getting frames: {got}");
    }
    assert!(net.sfu_events.iter().any(|e| matches!(
        e,
        SfuEvent::SessionClosed {
            session: SessionId(5),
            role: Role::Viewer,
            ..
        }
    )));
    assert_eq!(net.sfu.counts().viewers, 2);
}

#[test]
fn a_publisher_who_comes_back_within_the_grace_keeps_the_viewers() {
    let mut net = Net::new(|c| c.reconnect_grace = Duration::from_secs(10));
    let (p, first) = net.publish(2);
    let first = first.expect("publish");
    net.run_for(Some(p), Duration::from_millis(500));
    let (v, _) = net.play(3);
    net.run_for(Some(p), Duration::from_secs(1));

    // A second publisher while media flows is refused.
    let (_, second) = net.publish(9);
    assert_eq!(second, Err(MediaError::AlreadyPublishing));

    net.sfu
        .stop(net.now, SHOW, first, Role::Publisher)
        .expect("stop");
    net.run_for(None, Duration::from_secs(1));
    // A viewer who joins while the host is away waits (asking for a keyframe nobody can send
    // yet must not spin the SFU).
    let (waiting, _) = net.play(8);
    net.run_for(None, Duration::from_secs(2));
    assert!(
        net.sfu_events
            .contains(&SfuEvent::Reconnecting { show: SHOW })
    );
    let before = net.clients[v].video_frames.len();

    let (p2, again) = net.publish(4);
    again.expect("the host resumes within the grace");
    net.run_for(Some(p2), Duration::from_secs(2));
    let after = &net.clients[v].video_frames[before..];
    assert!(
        after.len() > 30,
        "the viewer sees the host again: {}",
        after.len()
    );
    assert!(after[0].1, "from a keyframe");
    assert!(
        net.clients[waiting]
            .video_frames
            .first()
            .is_some_and(|f| f.1)
    );
    assert_eq!(net.sfu.counts().viewers, 2);

    // Gone for longer than the grace: off air, viewers released.
    net.sfu
        .stop(net.now, SHOW, SessionId(4), Role::Publisher)
        .expect("stop");
    net.run_for(None, Duration::from_secs(11));
    assert!(net.sfu_events.contains(&SfuEvent::OffAir { show: SHOW }));
    assert_eq!(net.sfu.counts().sessions, 0);
    assert_eq!(net.play(10).1, Err(MediaError::NotOnAir));
}

#[test]
fn bad_offers_and_limits_are_refused() {
    let mut net = Net::new(|c| c.max_viewers_per_show = 1);
    let now = net.now;
    assert!(matches!(
        net.sfu.publish(now, SHOW, SessionId(1), "hello"),
        Err(MediaError::BadOffer(_))
    ));
    assert_eq!(net.play(3).1, Err(MediaError::NotOnAir));
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    net.play(4).1.expect("first viewer");
    net.run_for(Some(p), Duration::from_millis(300));
    assert_eq!(net.play(5).1, Err(MediaError::ShowFull));
    assert_eq!(
        net.sfu.stop(net.now, ShowId(8), SessionId(4), Role::Viewer),
        Err(MediaError::UnknownSession)
    );
}

#[test]
fn a_publisher_whose_media_stopped_is_replaced_at_once() {
    let mut net = Net::new(|_| {});
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_secs(1));
    let (v, _) = net.play(3);
    net.run_for(Some(p), Duration::from_secs(1));
    // The host's tab hung (no media, no goodbye); they reload and publish again.
    net.clients[p].frozen = true;
    net.run_for(None, Duration::from_secs(4));
    let before = net.clients[v].video_frames.len();
    let (p2, again) = net.publish(4);
    again.expect("a stale publisher does not block the host");
    net.run_for(Some(p2), Duration::from_secs(2));
    assert!(
        net.clients[v].video_frames.len() > before + 30,
        "the viewer sees the new stream"
    );
    // Replaced, not lost: viewers were never told the host was reconnecting.
    assert!(
        !net.sfu_events
            .contains(&SfuEvent::Reconnecting { show: SHOW })
    );
}

#[test]
fn viewers_fill_the_server_but_never_keep_a_host_off_the_air() {
    let mut net = Net::new(|c| c.max_sessions = 2);
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    net.play(3).1.expect("one viewer fits");
    assert_eq!(net.play(4).1, Err(MediaError::ServerFull));
    // Another show's host still goes live.
    net.join(5, ShowId(8), Role::Publisher)
        .1
        .expect("publishers are exempt from the session cap");
}

#[test]
fn a_session_that_never_connects_is_reaped() {
    let mut net = Net::new(|c| c.connect_timeout = Duration::from_secs(3));
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    let (v, _) = net.play(3);
    net.clients[v].frozen = true;
    net.run_for(Some(p), Duration::from_secs(4));
    assert!(net.sfu_events.iter().any(|e| matches!(
        e,
        SfuEvent::SessionClosed {
            session: SessionId(3),
            role: Role::Viewer,
            ..
        }
    )));
    assert_eq!(net.sfu.counts().viewers, 0);
}

#[test]
fn one_address_looping_offers_cannot_fill_a_show() {
    let mut net = Net::new(|c| {
        c.max_viewers_per_show = 2;
        c.max_pending_per_client = 3;
        c.max_sessions_per_client = 5;
    });
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    let attacker: std::net::IpAddr = [203, 0, 113, 9].into();
    // Offers that never connect: a few are taken, the rest refused, and none fills the show.
    for n in 10..13 {
        let (c, joined) = net.join_from(n, attacker, SHOW, Role::Viewer);
        joined.expect("a few pending offers per address");
        net.clients[c].frozen = true;
    }
    assert_eq!(
        net.join_from(13, attacker, SHOW, Role::Viewer).1,
        Err(MediaError::TooManyFromClient)
    );
    let (real, joined) = net.play(3);
    joined.expect("a viewer from another address gets in");
    net.run_for(Some(p), Duration::from_secs(1));
    assert!(net.clients[real].connected, "and watches");
    // Pending offers expire fast, and the address may offer again.
    net.run_for(Some(p), Duration::from_secs(6));
    assert_eq!(net.sfu.counts().viewers, 1);
    net.join_from(14, attacker, SHOW, Role::Viewer)
        .1
        .expect("expired offers no longer count");
}

#[test]
fn one_address_holds_a_bounded_number_of_sessions() {
    let mut net = Net::new(|c| c.max_sessions_per_client = 2);
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    let office: std::net::IpAddr = [198, 51, 100, 1].into();
    for n in 10..12 {
        net.join_from(n, office, SHOW, Role::Viewer)
            .1
            .expect("two viewers behind one address");
        net.run_for(Some(p), Duration::from_millis(300));
    }
    assert_eq!(
        net.join_from(12, office, SHOW, Role::Viewer).1,
        Err(MediaError::TooManyFromClient)
    );
}

#[test]
fn viewers_connecting_at_once_never_exceed_the_show_limit() {
    let mut net = Net::new(|c| c.max_viewers_per_show = 1);
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    net.play(3).1.expect("admitted while nobody watches");
    net.play(4)
        .1
        .expect("admitted too: the first has not connected");
    net.run_for(Some(p), Duration::from_secs(2));
    assert_eq!(net.sfu.counts().viewers, 1, "the later one is dropped");
}

#[test]
fn a_dropped_publisher_leaves_its_viewers_waiting_for_the_host() {
    let mut net = Net::new(|_| {});
    let (p, _) = net.publish(2);
    net.run_for(Some(p), Duration::from_millis(300));
    net.play(3).1.expect("viewer");
    net.run_for(Some(p), Duration::from_millis(300));
    net.sfu.drop_publisher(net.now, SHOW);
    assert_eq!(net.sfu.counts().publishers, 0, "cut off");
    assert_eq!(net.sfu.counts().viewers, 1, "the viewer waits");
    net.publish(4).1.expect("the host publishes again at once");
}
