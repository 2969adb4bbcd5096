// The live-room socket: reconnects with backoff until the show ends, pings, and tracks the server clock.
import { api } from './api.mjs';

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 8_000;
const PING_EVERY_MS = 20_000;
/** After this many refused or lost sockets in a row, ask the API whether the show is still on. */
const CHECK_AFTER_FAILURES = 3;

/**
 * Opens `/api/v1/shows/{showId}/live` and hands every parsed server message to `onMessage`.
 * `onStatus` hears 'connecting' (once), 'open', 'reconnecting' (after each lost or refused socket)
 * and 'closed' (for good).
 * Returns `{ send(obj) -> bool, serverNow() -> ms, reconnect(), close() }`.
 */
export function connectLive(showId, onMessage, { onStatus = () => {} } = {}) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = `${scheme}//${location.host}/api/v1/shows/${encodeURIComponent(showId)}/live`;
  let ws = null;
  let offset = 0; // server clock minus ours, from the latest envelope
  let delay = FIRST_DELAY_MS;
  let retryTimer = null;
  let pingTimer = null;
  let nonce = 0;
  let stopped = false; // the show ended or the page closed us: never reconnect
  let failures = 0; // sockets in a row that closed without delivering anything

  function open() {
    retryTimer = null;
    const sock = new WebSocket(url);
    ws = sock;
    sock.onopen = () => {
      onStatus('open');
      pingTimer = setInterval(() => send({ type: 'ping', nonce: ++nonce }), PING_EVERY_MS);
    };
    sock.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (typeof msg.now === 'number') offset = msg.now - Date.now();
      // Only a socket that delivered something counts as healthy, so a server that accepts
      // and drops at once still gets the growing backoff.
      delay = FIRST_DELAY_MS;
      failures = 0;
      if (msg.type === 'show_ended') stopped = true;
      onMessage(msg);
      if (stopped) sock.close(1000);
    };
    sock.onclose = () => {
      clearInterval(pingTimer);
      if (ws !== sock) return; // replaced by reconnect()
      ws = null;
      if (stopped) {
        onStatus('closed');
        return;
      }
      onStatus('reconnecting');
      if (++failures % CHECK_AFTER_FAILURES === 0) checkShow();
      // Up to a quarter less than the nominal delay, so a crowd does not come back in step.
      retryTimer = setTimeout(open, delay * (0.75 + Math.random() * 0.25));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    };
  }

  /**
   * The server refuses the socket of a show that is not live, so a show that ended while we were
   * away would be retried forever; the show's status tells ended apart from a network problem.
   */
  async function checkShow() {
    let show;
    try {
      show = await api('GET', `/shows/${encodeURIComponent(showId)}`);
    } catch {
      return;
    }
    if (stopped) return;
    if (show?.status === 'ended') {
      stopped = true;
      clearTimeout(retryTimer);
      onMessage({ type: 'show_ended' });
      onStatus('closed');
    } else if (show?.status === 'live' && !ws) {
      reconnect(); // it just went live: no need to sit out the backoff
    }
  }

  function send(obj) {
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify(obj));
      return true;
    }
    return false;
  }

  /** Drops the current socket (if any) and connects again now, e.g. after the host starts the show. */
  function reconnect() {
    if (stopped) return;
    clearTimeout(retryTimer);
    clearInterval(pingTimer);
    const old = ws;
    ws = null;
    if (old) old.close(1000);
    delay = FIRST_DELAY_MS;
    open();
  }

  function close() {
    stopped = true;
    clearTimeout(retryTimer);
    clearInterval(pingTimer);
    if (ws) ws.close(1000);
  }

  addEventListener('online', () => {
    if (!ws && !stopped) reconnect();
  });
  onStatus('connecting');
  open();
  return { send, serverNow: () => Date.now() + offset, reconnect, close };
}

/** 83_000 ms → "01:23"; never negative. */
export function formatCountdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const mm = String(Math.floor(s / 60)).padStart(2, '0');
  return `${mm}:${String(s % 60).padStart(2, '0')}`;
}
