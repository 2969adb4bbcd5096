// WebRTC over HTTP, shared by the host's camera (WHIP) and the viewer's player (WHEP): the SDP
// exchange, hanging up, codec order, and a watchdog that says when a connection is lost.
import { ApiError, sentence } from './api.mjs';

/**
 * POSTs an SDP offer to a WHIP or WHEP endpoint. Returns `{ sdp, location }` (the answer and the
 * session's absolute URL) or throws an ApiError; `status` 0 means the server was not reached.
 */
export async function exchangeSdp(url, offerSdp, { token, csrf } = {}) {
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (csrf) headers['X-CSRF-Token'] = csrf; // the host's console: its session cookie goes along
  let res;
  try {
    res = await fetch(url, { method: 'POST', headers, body: offerSdp });
  } catch {
    throw new ApiError(0, 'network', 'Network problem: check your connection.');
  }
  const text = await res.text().catch(() => '');
  if (res.status !== 201 && res.status !== 200) {
    let err = null;
    try {
      err = JSON.parse(text)?.error;
    } catch {
      // 415 and proxies may answer in plain text.
    }
    throw new ApiError(res.status, err?.code ?? `http_${res.status}`, sentence(err?.message ?? (res.statusText || `Request failed (${res.status})`)));
  }
  const location = res.headers.get('Location');
  return { sdp: text, location: location ? new URL(location, new URL(url, window.location.href)).href : null };
}

/**
 * DELETEs a session; never throws, and gives up after 3 s so a dead network cannot stall a
 * reconnect. `keepalive` lets it outlive the page (pagehide).
 */
export async function endSession(location, { token, csrf, keepalive = false } = {}) {
  if (!location) return;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  if (csrf) headers['X-CSRF-Token'] = csrf;
  const signal = AbortSignal.timeout ? AbortSignal.timeout(3000) : undefined;
  try {
    await fetch(location, { method: 'DELETE', headers, keepalive, signal });
  } catch {
    // Already gone, or the network is down: the server reaps sessions whose media stops.
  }
}

/**
 * Puts H.264 (packetization-mode=1, constrained baseline first, which every decoder plays) ahead
 * of VP8 and the rest, where the browser lets us; otherwise the browser's own order stands.
 */
export function preferH264(transceiver) {
  const caps = window.RTCRtpSender?.getCapabilities?.('video');
  if (!caps || typeof transceiver.setCodecPreferences !== 'function') return;
  const rank = (c) => {
    const mime = c.mimeType.toLowerCase();
    const fmtp = c.sdpFmtpLine ?? '';
    if (mime === 'video/h264' && /packetization-mode=1/.test(fmtp)) {
      return /profile-level-id=42(e0|00)/i.test(fmtp) ? 0 : 1;
    }
    if (mime === 'video/vp8') return 2;
    return 3;
  };
  try {
    // Array.prototype.sort is stable, so equal ranks keep the browser's order.
    transceiver.setCodecPreferences([...caps.codecs].sort((a, b) => rank(a) - rank(b)));
  } catch {
    // Some browsers refuse some orders; theirs is fine too.
  }
}

/**
 * Calls `onLost()` once when `pc` fails, stays disconnected for `graceMs`, or is not connected
 * within `connectMs` of the call. Returns a function that stops watching.
 */
export function watchConnection(pc, onLost, { graceMs = 3000, connectMs = 15_000 } = {}) {
  let graceTimer = null;
  let connectTimer = setTimeout(lost, connectMs);
  let done = false;

  function lost() {
    if (done) return;
    stop();
    onLost();
  }

  function check() {
    const s = pc.connectionState;
    if (s === 'connected') {
      clearTimeout(connectTimer);
      connectTimer = null;
    }
    if (s === 'failed' || s === 'closed') return lost();
    if (s === 'disconnected') graceTimer ??= setTimeout(lost, graceMs);
    else {
      clearTimeout(graceTimer);
      graceTimer = null;
    }
  }

  function stop() {
    done = true;
    clearTimeout(graceTimer);
    clearTimeout(connectTimer);
    pc.removeEventListener('connectionstatechange', check);
  }

  pc.addEventListener('connectionstatechange', check);
  return stop;
}

/** The nth retry's delay: 1 s doubling to `maxMs`, up to a quarter less so clients spread out. */
export function backoff(n, maxMs = 16_000) {
  return Math.min(1000 * 2 ** n, maxMs) * (0.75 + Math.random() * 0.25);
}
