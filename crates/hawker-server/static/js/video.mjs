// The show page's video: plays the host's stream over WHEP into #live-video, follows the live
// socket's video state, reconnects on its own, and offers "Tap to unmute" (autoplay starts muted).
import { backoff, endSession, exchangeSdp, watchConnection } from './webrtc.mjs';

const $ = (id) => document.getElementById(id);
/** While nobody publishes, ask again this often (the socket's `video: live` usually comes first). */
const WAITING_POLL_MS = 5000;

const NOTES = {
  waiting: "The host isn't streaming yet",
  reconnecting: 'Host reconnecting…',
  lost: 'Reconnecting…',
  offline: 'The host is offline',
};

/**
 * Wires #video. `onPlaying()` is called when a session connects. Returns
 * `{ setState(videoState), close() }`, where `videoState` is the server's 'live' | 'reconnecting' | 'offline'.
 */
export function createPlayer({ showId, onPlaying = () => {} }) {
  const url = `/api/v1/shows/${encodeURIComponent(showId)}/whep`;
  const stage = $('video');
  const video = $('live-video');
  const note = $('video-note');
  const unmute = $('unmute');

  let pc = null; // the current RTCPeerConnection, also while it is being negotiated
  let session = null; // { pc, location, unwatch } once the server answered
  let phase = 'connecting'; // 'connecting' | 'connected' | 'waiting' | 'lost' | 'offline' | 'closed'
  let server = null; // the socket's latest video state; null until it speaks
  let failures = 0;
  let retryTimer = null;
  let busy = false; // an offer is on its way: one at a time
  let played = false; // a session connected since the page opened

  window.hawkerVideo = {
    get pc() {
      return pc;
    },
  };

  /** data-video on #video, the note over the stage, and the unmute button. */
  function render() {
    let state;
    let text = '';
    if (phase === 'connected') {
      state = server === 'reconnecting' ? 'reconnecting' : 'playing';
      if (state === 'reconnecting') text = NOTES.reconnecting;
    } else if (phase === 'waiting') {
      state = 'waiting';
      text = NOTES.waiting;
    } else if (phase === 'lost') {
      state = 'reconnecting';
      text = NOTES.lost;
    } else if (phase === 'offline' || phase === 'closed') {
      state = 'offline';
      text = phase === 'offline' ? NOTES.offline : '';
    } else {
      state = 'connecting';
    }
    stage.dataset.video = state;
    note.textContent = text;
    note.hidden = !text;
    unmute.hidden = !video.muted || !(state === 'playing' || state === 'reconnecting');
  }

  async function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (busy || phase === 'closed') return;
    busy = true;
    await hangUp();
    if (phase === 'closed') return void (busy = false);
    if (phase !== 'lost' && phase !== 'waiting') phase = 'connecting';
    render();
    const mine = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    pc = mine;
    mine.addTransceiver('video', { direction: 'recvonly' });
    mine.addTransceiver('audio', { direction: 'recvonly' });
    const remote = new MediaStream();
    mine.addEventListener('track', (ev) => {
      remote.addTrack(ev.track);
      if (video.srcObject !== remote) video.srcObject = remote;
      video.play().catch(() => {}); // muted autoplay is allowed; a refusal leaves the unmute button
    });
    mine.addEventListener('connectionstatechange', () => {
      if (pc !== mine || mine.connectionState !== 'connected') return;
      phase = 'connected';
      played = true;
      failures = 0;
      render();
      onPlaying();
    });
    let answer;
    try {
      await mine.setLocalDescription(await mine.createOffer());
      answer = await exchangeSdp(url, mine.localDescription.sdp);
      if (pc !== mine) return void endSession(answer.location); // hung up meanwhile
      await mine.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } catch (err) {
      mine.close();
      if (pc !== mine) return; // hung up meanwhile
      pc = null;
      return failed(err);
    } finally {
      busy = false;
    }
    session = { pc: mine, location: answer.location, unwatch: watchConnection(mine, () => lost(mine)) };
  }

  function failed(err) {
    if (phase === 'closed' || phase === 'offline') return;
    // Nobody publishes yet; a scheduled show goes live (show_not_live ends) when the host does.
    if (err?.code === 'not_on_air' || err?.code === 'show_not_live') {
      phase = 'waiting';
      failures = 0;
      render();
      return schedule(WAITING_POLL_MS * (0.8 + Math.random() * 0.4));
    }
    if (err?.code === 'show_ended' || err?.status === 404) return close();
    // Full, a network problem or a server restart: try again, less and less often.
    if (phase !== 'waiting') phase = 'lost';
    render();
    schedule(backoff(failures++));
  }

  function lost(which) {
    if (pc !== which || phase === 'closed') return;
    phase = 'lost';
    render();
    schedule(backoff(failures++));
  }

  function schedule(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, ms);
  }

  /** Ends the current session, if any; the video keeps its last frame until the next one. */
  function hangUp({ keepalive = false } = {}) {
    const s = session;
    const old = pc;
    session = null;
    pc = null;
    old?.close();
    if (!s) return Promise.resolve();
    s.unwatch();
    return endSession(s.location, { keepalive });
  }

  function setState(state) {
    if (!state || phase === 'closed') return;
    server = state;
    if (state === 'offline') {
      // Nothing played yet: the host has not started, which the waiting poll (or an offer on its
      // way, whose not_on_air starts that poll) covers.
      if (!played) {
        if (!busy && phase !== 'waiting') {
          phase = 'waiting';
          schedule(WAITING_POLL_MS);
        }
        return render();
      }
      clearTimeout(retryTimer);
      hangUp();
      phase = 'offline';
      video.srcObject = null;
      return render();
    }
    // 'live' or 'reconnecting': a session resumes by itself; without one, get one now.
    if (!session && !busy) {
      failures = 0;
      connect();
    }
    render();
  }

  function close() {
    phase = 'closed';
    clearTimeout(retryTimer);
    hangUp();
    video.srcObject = null;
    render();
  }

  function unmuteNow() {
    if (!video.muted) return;
    video.muted = false;
    video.play().catch(() => {});
    render();
  }

  unmute.addEventListener('click', (ev) => {
    ev.stopPropagation();
    unmuteNow();
  });
  // Tapping the picture unmutes too, as in every short-video app.
  video.addEventListener('click', unmuteNow);
  video.addEventListener('volumechange', render);
  addEventListener('pagehide', () => {
    if (phase === 'closed') return;
    clearTimeout(retryTimer);
    hangUp({ keepalive: true });
  });
  addEventListener('pageshow', (ev) => {
    if (ev.persisted && phase !== 'closed') connect(); // back from the back-forward cache
  });

  connect(); // whatever the socket will say: the stream may be on already
  return { setState, close };
}
