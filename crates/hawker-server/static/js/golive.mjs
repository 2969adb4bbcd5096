// The host console's camera: device pickers and preview, Go live and Stop over WHIP with automatic
// reconnects, the outgoing bitrate, and the "Stream from OBS" box.
import { api, csrfToken } from './api.mjs';
import { toast, toastError } from './toast.mjs';
import { backoff, endSession, exchangeSdp, preferH264, watchConnection } from './webrtc.mjs';

const $ = (id) => document.getElementById(id);
const MAX_RETRY_MS = 10_000;

/** A refusal that trying again cannot fix (wrong key, show over, bad offer); 409 already_publishing clears itself. */
const isFatal = (err) =>
  err?.status >= 400 && err.status < 500 && err.code !== 'already_publishing' && err.status !== 408 && err.status !== 429;

/** getUserMedia's refusals, in words a host can act on. */
function mediaMessage(err) {
  switch (err?.name) {
    case 'NotAllowedError':
      return 'Allow camera and microphone access in the browser to go live.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera or microphone found.';
    case 'NotReadableError':
      return 'The camera or microphone is busy in another app.';
    default:
      return err?.message || String(err);
  }
}

function constraints(kind, deviceId) {
  const device = deviceId ? { deviceId: { exact: deviceId } } : {};
  return kind === 'video'
    ? { ...device, width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } }
    : { ...device, echoCancellation: true, noiseSuppression: true };
}

/**
 * Wires the camera card of templates/host.html. `onOnAir()` is called each time the server starts
 * receiving this page's media. Returns `{ setViewers(n), setServerVideo(state), end() }`.
 */
export function createGoLive({ showId, onOnAir = () => {} }) {
  const url = `/api/v1/shows/${encodeURIComponent(showId)}/whip`;
  const preview = $('preview');
  const cameraSelect = $('camera-select');
  const micSelect = $('mic-select');
  const goBtn = $('go-live');
  const stopBtn = $('stop-live');
  const indicator = $('publish-state');

  let stream = null; // camera and microphone; outlives sessions, so Stop keeps the preview
  let session = null; // { pc, location, video, audio, unwatch }: the current WHIP session
  let wanted = false; // Go live was pressed and Stop was not
  let wasLive = false; // this Go live reached the server once, so a failure is a reconnect
  let failures = 0; // in a row, for the backoff
  let retryTimer = null;
  let toasted = ''; // the last failure's code, so a retry loop toasts each kind once
  let enabled = true; // false once the show ended
  let serverVideo = 'offline'; // what viewers see, from the live socket
  let sample = null; // { session, bytes, at }: the previous bitrate sample
  let switching = Promise.resolve(); // device switches, one at a time
  let opening = null; // the camera being opened, so two taps open it once
  let ending = Promise.resolve(); // the latest session's DELETE, which a new Go live waits for

  window.hawkerPublisher = {
    get pc() {
      return session?.pc ?? null;
    },
  };

  // ---------- Camera and microphone ----------

  function startCamera() {
    opening ??= openCamera().finally(() => (opening = null));
    return opening;
  }

  async function openCamera() {
    if (stream) return;
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error('This browser cannot use the camera here: the page needs HTTPS (or localhost).');
    }
    let s;
    try {
      s = await navigator.mediaDevices.getUserMedia({
        video: constraints('video', cameraSelect.value),
        audio: constraints('audio', micSelect.value),
      });
    } catch (err) {
      if (err?.name === 'NotAllowedError') throw err;
      // A missing or busy device of one kind should not keep the other off the air.
      const one = (kind) => navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind, '') }).then((m) => m.getTracks(), () => []);
      const tracks = [...(await one('video')), ...(await one('audio'))];
      if (!tracks.length) throw err;
      s = new MediaStream(tracks);
    }
    if (!enabled) {
      for (const t of s.getTracks()) t.stop();
      return;
    }
    for (const t of s.getTracks()) watchTrack(t);
    setStream(s);
    await listDevices(); // labels are readable now
  }

  function setStream(s) {
    stream = s;
    preview.srcObject = s;
    $('preview-off').hidden = !!s?.getVideoTracks().length;
  }

  function stopCamera() {
    for (const t of stream?.getTracks() ?? []) t.stop();
    setStream(null);
  }

  function watchTrack(track) {
    track.addEventListener('ended', () => {
      if (stream?.getTracks().includes(track)) toast(`The ${track.kind === 'video' ? 'camera' : 'microphone'} stopped`, { kind: 'error' });
    });
  }

  const current = (kind) => stream?.getTracks().find((t) => t.kind === kind);

  async function listDevices() {
    if (!navigator.mediaDevices?.enumerateDevices) return;
    const devices = await navigator.mediaDevices.enumerateDevices().catch(() => []);
    fill(cameraSelect, devices.filter((d) => d.kind === 'videoinput'), 'Camera', current('video'));
    fill(micSelect, devices.filter((d) => d.kind === 'audioinput'), 'Microphone', current('audio'));
  }

  function fill(select, devices, noun, track) {
    const chosen = track?.getSettings().deviceId ?? select.value;
    // Before permission is granted labels are empty (and ids may be too).
    const options = devices.map((d, i) => new Option(d.label || `${noun} ${i + 1}`, d.deviceId));
    if (!options.length) options.push(new Option(`No ${noun.toLowerCase()} found`, ''));
    select.replaceChildren(...options);
    if (options.some((o) => o.value === chosen)) select.value = chosen;
  }

  /** Swaps one device, on the air too (replaceTrack: no new session, viewers stay connected). */
  async function switchDevice(kind) {
    if (!stream) return; // the choice applies when the camera starts
    const select = kind === 'video' ? cameraSelect : micSelect;
    const old = current(kind);
    if (old && old.readyState === 'live' && old.getSettings().deviceId === select.value) return;
    // A phone cannot open its two cameras at once, so the old one goes first.
    old?.stop();
    let track = null;
    try {
      const s = await navigator.mediaDevices.getUserMedia({ [kind]: constraints(kind, select.value) });
      track = s.getTracks()[0];
    } catch (err) {
      toast(mediaMessage(err), { kind: 'error' });
    }
    if (!enabled) return track?.stop();
    if (track) watchTrack(track);
    setStream(new MediaStream([...stream.getTracks().filter((t) => t.kind !== kind), ...(track ? [track] : [])]));
    const transceiver = kind === 'video' ? session?.video : session?.audio;
    if (transceiver) await transceiver.sender.replaceTrack(track).catch(toastError);
  }

  const queueSwitch = (kind) => (switching = switching.then(() => switchDevice(kind)).catch(toastError));
  cameraSelect.addEventListener('change', () => queueSwitch('video'));
  micSelect.addEventListener('change', () => queueSwitch('audio'));
  navigator.mediaDevices?.addEventListener?.('devicechange', listDevices);
  // The preview box takes the camera's shape (a phone held upright films portrait).
  function fitPreview() {
    if (preview.videoWidth && preview.videoHeight) {
      preview.parentElement.style.setProperty('--preview-aspect', `${preview.videoWidth} / ${preview.videoHeight}`);
    }
  }
  preview.addEventListener('loadedmetadata', fitPreview);
  preview.addEventListener('resize', fitPreview);

  // ---------- Publishing ----------

  async function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    if (!wanted || session) return;
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    const streams = stream ? [stream] : [];
    const video = pc.addTransceiver(current('video') ?? 'video', { direction: 'sendonly', streams });
    preferH264(video);
    const audio = pc.addTransceiver(current('audio') ?? 'audio', { direction: 'sendonly', streams });
    const s = { pc, location: null, video, audio, unwatch: null };
    session = s;
    pc.addEventListener('connectionstatechange', () => {
      if (session === s && pc.connectionState === 'connected') onConnected();
    });
    try {
      await pc.setLocalDescription(await pc.createOffer());
      // The server is ICE-lite and names its own candidate, so ours need not be gathered first.
      const answer = await exchangeSdp(url, pc.localDescription.sdp, { csrf: csrfToken() });
      s.location = answer.location;
      if (session !== s) return void endSession(s.location, { csrf: csrfToken() }); // stopped meanwhile
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
    } catch (err) {
      pc.close();
      if (session !== s) return; // stopped meanwhile: hangUp() ended it
      session = null;
      // The server may have made the session before its answer was refused.
      ending = endSession(s.location, { csrf: csrfToken() });
      await ending;
      if (!session) failed(err); // unless Stop and Go live came meanwhile
      return;
    }
    s.unwatch = watchConnection(pc, () => lost(s));
  }

  function onConnected() {
    wasLive = true;
    failures = 0;
    toasted = '';
    setState('live');
    onOnAir();
  }

  function failed(err) {
    if (!wanted) return;
    if (isFatal(err)) {
      toastError(err);
      wanted = false;
      return setState('idle');
    }
    if (err?.code !== toasted) {
      toasted = err?.code;
      toastError(err);
    }
    retry();
  }

  async function lost(s) {
    if (session !== s) return;
    if (!wasLive && toasted !== 'no_media') {
      toasted = 'no_media';
      toast("No media connection: the server's media port (UDP) may be unreachable. Retrying…", { kind: 'error', code: 'no_media' });
    }
    setState(wasLive ? 'reconnecting' : 'connecting');
    await hangUp(); // the server frees the slot at once, instead of waiting to see the media stop
    if (wanted && !retryTimer && !session) retry();
  }

  function retry() {
    setState(wasLive ? 'reconnecting' : 'connecting');
    retryTimer = setTimeout(connect, backoff(failures++, MAX_RETRY_MS));
  }

  /** Ends the current session, if any; resolves when the server heard (or 3 s passed). */
  function hangUp({ keepalive = false } = {}) {
    const s = session;
    session = null;
    sample = null;
    if (!s) return Promise.resolve();
    s.unwatch?.();
    s.pc.close();
    ending = endSession(s.location, { csrf: csrfToken(), keepalive });
    return ending;
  }

  async function goLive() {
    if (wanted || !enabled) return;
    goBtn.disabled = true;
    await ending; // a quick Stop then Go live: the server must hear the DELETE first (409 already_publishing)
    try {
      await startCamera();
    } catch (err) {
      toast(mediaMessage(err), { kind: 'error' });
      return setState('idle');
    }
    if (!enabled) return;
    wanted = true;
    wasLive = false;
    failures = 0;
    toasted = '';
    setState('connecting');
    connect();
  }

  function stop() {
    wanted = false;
    clearTimeout(retryTimer);
    retryTimer = null;
    hangUp();
    setState('idle');
  }

  /** 'idle' | 'connecting' | 'live' | 'reconnecting', on #publish-state and in words. */
  function setState(state) {
    indicator.dataset.publishing = state;
    goBtn.disabled = wanted || !enabled;
    stopBtn.disabled = !wanted;
    if (state !== 'live') {
      $('publish-bitrate').textContent = '';
      delete indicator.dataset.kbps;
    }
    renderLabel();
  }

  function renderLabel() {
    const state = indicator.dataset.publishing;
    let text;
    if (state === 'live') text = 'LIVE';
    else if (state === 'connecting') text = 'Connecting…';
    else if (state === 'reconnecting') text = 'Reconnecting…';
    else if (serverVideo === 'live') text = 'On air from another app';
    else if (serverVideo === 'reconnecting') text = 'Paused: viewers are waiting';
    else text = 'Off air';
    $('publish-label').textContent = text;
  }

  /** The outgoing video bitrate, from bytesSent a second apart. */
  async function measure() {
    const s = session;
    if (!s || s.pc.connectionState !== 'connected') return;
    const report = await s.video.sender.getStats().catch(() => null);
    if (!report || session !== s) return;
    let bytes = 0;
    let at = 0;
    report.forEach((r) => {
      if (r.type === 'outbound-rtp') {
        bytes += r.bytesSent ?? 0;
        at = r.timestamp;
      }
    });
    if (sample?.session === s && at > sample.at) {
      const kbps = Math.max(0, Math.round(((bytes - sample.bytes) * 8) / (at - sample.at))); // bits per ms
      indicator.dataset.kbps = String(kbps);
      $('publish-bitrate').textContent = `${kbps.toLocaleString()} kbit/s`;
    }
    sample = { session: s, bytes, at };
  }

  goBtn.addEventListener('click', goLive);
  stopBtn.addEventListener('click', stop);
  $('camera-on').addEventListener('click', () => startCamera().catch((err) => toast(mediaMessage(err), { kind: 'error' })));
  // A reload must not find its own old session still on the air (409 already_publishing).
  addEventListener('pagehide', () => {
    if (session) hangUp({ keepalive: true });
  });
  addEventListener('pageshow', (ev) => {
    if (ev.persisted && wanted && !session) connect(); // back from the back-forward cache
  });
  setInterval(measure, 1000);

  // ---------- Stream from OBS ----------

  $('whip-url').value = new URL(url, location.href).href;
  // The server keeps only the key's hash: a key is seen once, when made, and replaces the last.
  const keyInput = $('stream-key');
  const newKey = $('stream-key-new');
  for (const btn of document.querySelectorAll('#obs [data-copy]')) {
    btn.addEventListener('click', () => copy($(btn.dataset.copy)));
  }
  newKey.addEventListener('click', async () => {
    newKey.disabled = true;
    try {
      const { stream_key: key } = await api('POST', `/shows/${encodeURIComponent(showId)}/stream-key`);
      keyInput.value = key;
      toast('New stream key made: the old one no longer works.', { kind: 'ok' });
    } catch (err) {
      toastError(err);
    } finally {
      newKey.disabled = false;
    }
  });

  listDevices();
  setState('idle');

  return {
    setViewers(n) {
      $('publish-viewers').textContent = Number(n).toLocaleString();
    },
    setServerVideo(state) {
      if (!state) return;
      serverVideo = state;
      renderLabel();
    },
    /** The show is over: off the air, camera off, for good. */
    end() {
      enabled = false;
      stop();
      stopCamera();
      cameraSelect.disabled = true;
      micSelect.disabled = true;
      $('camera-on').disabled = true;
    },
  };
}

/** Copies a field's text; where the browser will not, leaves it shown and selected for the host to copy. */
async function copy(input) {
  try {
    await navigator.clipboard.writeText(input.value);
    return toast('Copied', { kind: 'ok' });
  } catch {
    // Plain http has no clipboard API: copy the old way, which a password field refuses.
  }
  const type = input.type;
  input.type = 'text';
  input.select();
  if (!document.execCommand('copy')) return toast('Copy the selected text', { kind: 'info' });
  input.type = type;
  toast('Copied', { kind: 'ok' });
}
