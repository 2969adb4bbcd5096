// The show page's video: plays the host's stream over WHEP into #live-video, follows the live
// socket's video state, reconnects on its own, and offers "Tap to unmute" (autoplay starts muted).
import { backoff, endSession, exchangeSdp, watchConnection } from './webrtc.mjs';

const $ = (id) => document.getElementById(id);
/**
 * While nobody publishes and the socket is silent (a scheduled show, or the socket is down), ask
 * again after 30 to 60 s; otherwise the socket's `video: live` says when.
 */
const FALLBACK_POLL_MS = 30_000;
const fallbackDelay = () => FALLBACK_POLL_MS * (1 + Math.random());

const NOTES = {
  waiting: "The host isn't streaming yet",
  reconnecting: 'Host reconnecting…',
  lost: 'Reconnecting…',
  offline: 'The host is offline',
  refused: "This browser can't play this stream",
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
  let phase = 'connecting'; // 'connecting' | 'connected' | 'waiting' | 'lost' | 'offline' | 'refused' | 'closed'
  let server = null; // the socket's latest video state; null until it speaks and while it is down
  let failures = 0;
  let retryTimer = null;
  let busy = false; // an offer is on its way: one at a time
  let retryNow = false; // the socket said live while an offer was on its way: if that fails, ask again at once
  let refusal = ''; // why the server refused this browser's offer, shown while phase is 'refused'
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
    } else if (phase === 'refused') {
      state = 'offline';
      text = refusal;
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
    if (phase === 'closed') return;
    if (busy) return void (retryNow = true);
    busy = true;
    retryNow = false;
    let error = null;
    try {
      await negotiate();
    } catch (err) {
      error = err;
    }
    busy = false;
    if (error) return failed(error);
    if (session) retryNow = false;
    else if (retryNow) connect(); // hung up meanwhile (offline), then live again
  }

  /** One WHEP exchange: sets `session`, returns without one if hung up meanwhile, or throws why it failed. */
  async function negotiate() {
    if (phase !== 'lost' && phase !== 'waiting') phase = 'connecting';
    render();
    await hangUp();
    if (phase === 'offline' || phase === 'closed') return; // setState('offline') or close() came meanwhile
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
    let answer = null;
    try {
      await mine.setLocalDescription(await mine.createOffer());
      answer = await exchangeSdp(url, mine.localDescription.sdp);
      if (pc === mine) await mine.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } catch (err) {
      mine.close();
      endSession(answer?.location); // the server made a session before its answer was refused
      if (pc !== mine) return; // hung up meanwhile
      pc = null;
      throw err;
    }
    if (pc !== mine) return void endSession(answer.location); // hung up meanwhile
    session = { pc: mine, location: answer.location, unwatch: watchConnection(mine, () => lost(mine)) };
  }

  function failed(err) {
    if (phase === 'closed' || phase === 'offline') return;
    // This browser cannot take the stream (no common codec, an offer the server cannot read):
    // asking again will not help until the host starts anew.
    if (err?.status === 400 || err?.status === 415) {
      phase = 'refused';
      refusal = err.message ? `${NOTES.refused}: ${err.message}` : NOTES.refused;
      retryNow = false;
      return render();
    }
    if (err?.code === 'show_ended' || err?.status === 404) return close();
    // Nobody publishes yet (the server or the socket says so); a scheduled show goes live
    // (show_not_live ends) when the host does.
    if (err?.code === 'not_on_air' || err?.code === 'show_not_live' || server === 'offline') {
      phase = 'waiting';
      failures = 0;
      render();
      return retry(fallbackDelay());
    }
    // Full, a network problem or a server restart: try again, less and less often.
    if (phase !== 'waiting') phase = 'lost';
    render();
    retry(backoff(failures++));
  }

  function lost(which) {
    if (pc !== which || phase === 'closed') return;
    phase = 'lost';
    render();
    retry(backoff(failures++));
  }

  /**
   * Tries again after `ms`, or at once if the socket said live during the failed attempt; not at
   * all while the socket says nobody publishes (its `video: live` will).
   */
  function retry(ms) {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (!retryNow && server === 'offline') return;
    retryTimer = setTimeout(connect, retryNow ? 0 : ms);
    retryNow = false;
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

  /** The socket's video state; null when the socket is down, so the state is unknown. */
  function setState(state) {
    if (phase === 'closed') return;
    const was = server;
    server = state ?? null;
    if (!server) {
      // Nobody will say when the host starts: ask now and then.
      if (!session && !busy && !retryTimer && phase !== 'refused') retry(fallbackDelay());
      return;
    }
    if (state === 'offline') {
      retryNow = false;
      clearTimeout(retryTimer);
      retryTimer = null;
      // Nothing played yet: the host has not started. Wait for the socket's `live` (an offer on
      // its way may still find them).
      if (!played) {
        if (!busy && phase !== 'refused') phase = 'waiting';
        return render();
      }
      hangUp();
      phase = 'offline';
      video.srcObject = null;
      return render();
    }
    // 'live' or 'reconnecting': a session resumes by itself; without one, get one now (or, with
    // an offer on its way, right after it if it fails). A refused browser waits for a new start.
    if (!session && (phase !== 'refused' || (state === 'live' && was !== 'live'))) {
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
    if (ev.persisted && phase !== 'closed' && phase !== 'refused') connect(); // back from the back-forward cache
  });

  connect(); // whatever the socket will say: the stream may be on already
  return { setState, close };
}
