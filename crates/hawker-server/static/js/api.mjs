// JSON calls to /api/v1 with the session cookie and CSRF header, typed errors, and money formatting.

/** An API answer that was not 2xx; `status` is 0 when the request never got an answer. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The session's CSRF token, which every cookie-authenticated write echoes. */
export const csrfToken = () => document.querySelector('meta[name="csrf-token"]')?.content ?? '';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls the API. `path` may be `/orders` (taken under /api/v1) or a full `/api/…` path.
 * With an `idempotencyKey` the request is retried with the same key when the network fails,
 * which is safe because the server answers a repeated key with its first answer. `prefer` is
 * sent as the `Prefer` header (`respond-async`: answer once the work is durably accepted).
 */
export async function api(method, path, body, { idempotencyKey, retries = 3, prefer } = {}) {
  const url = path.startsWith('/api/') ? path : `/api/v1${path}`;
  const headers = { Accept: 'application/json', 'X-CSRF-Token': csrfToken() };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  if (prefer) headers.Prefer = prefer;
  const init = {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  };
  let attempt = 0;
  for (;;) {
    let res;
    try {
      res = await fetch(url, init);
    } catch {
      if (idempotencyKey && attempt < retries) {
        await sleep(500 * 2 ** attempt++);
        continue;
      }
      throw new ApiError(0, 'network', 'Network problem: check your connection and try again.');
    }
    const data = await readJson(res);
    if (res.ok) return data;
    const err = data && data.error;
    throw new ApiError(
      res.status,
      err?.code ?? `http_${res.status}`,
      sentence(err?.message ?? (res.statusText || `Request failed (${res.status})`)),
    );
  }
}

async function readJson(res) {
  const text = await res.text().catch(() => '');
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The server writes messages in lower case ("you are muted"); people read sentences. */
export function sentence(text) {
  const t = String(text ?? '');
  return t.charAt(0).toUpperCase() + t.slice(1);
}

const SYMBOLS = { USD: '$', EUR: '€', GBP: '£' };

/** `1999, "USD"` → `$19.99`; mirrors hawker_core::money::format_cents. */
export function formatCents(cents, currency) {
  const n = Math.trunc(Number(cents) || 0);
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  const amount = `${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
  const symbol = SYMBOLS[currency];
  return symbol ? `${sign}${symbol}${amount}` : `${sign}${amount} ${currency ?? ''}`.trim();
}

/** "9.99" → 999, or null when it is not an amount with at most two decimals. */
export function parseCents(text) {
  const m = /^\s*(\d+)(?:[.,](\d{1,2}))?\s*$/.exec(String(text));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] ?? '0').padEnd(2, '0'));
}

/** A fresh idempotency key (UUID v4); works on plain http, where crypto.randomUUID is missing. */
export function newIdempotencyKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
