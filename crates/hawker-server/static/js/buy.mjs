// The buy sheet (#buy-sheet): pick variant and quantity, add a code, pay once even across retries.
import { ApiError, api, formatCents, newIdempotencyKey, sentence } from './api.mjs';
import { el } from './chat.mjs';

const $ = (id) => document.getElementById(id);
const MAX_QTY = 99;
/** How often a pending or duplicate answer is asked again, a second apart. */
const RETRIES = 10;
/** How often, and how many times, a reserved order is read while its payment goes through. */
const PAYMENT_POLL_MS = 400;
const PAYMENT_POLLS = 40;
/**
 * How long a buy sent on the live socket waits for its answer, and then for its payment's
 * outcome, before asking over HTTP with the same key (which answers whatever it became).
 */
const SOCKET_ANSWER_MS = 3_000;
const SOCKET_PAYMENT_MS = 15_000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A target is what the sheet sells:
 * `{ kind: 'sale', id, title, image, currency, variants: [one], limit, remaining }` or
 * `{ kind: 'product', id, title, image, currency, variants: [{ id, name, price_cents, stock }] }`;
 * a sale's variant also has `list_price_cents`.
 */
export function createBuySheet({ showId, signedIn, loginUrl, send }) {
  const sheet = $('buy-sheet');
  const form = $('buy-form');
  const variant = $('buy-variant');
  const qty = $('buy-qty');
  const code = $('buy-code');
  const pm = $('buy-pm');
  const submit = $('buy-submit');
  const result = $('buy-result');
  let target = null;
  let busy = false;
  let closedReason = ''; // set when the thing on sale went away while the sheet was open
  let placed = false;
  // A buy attempt whose answer never arrived: the same body is sent again with the same key.
  let pending = null;
  // Who waits for the next `order` message of a key (answers to buys sent on the socket).
  const waiting = new Map();

  const selected = () => target.variants.find((v) => String(v.id) === variant.value) ?? target.variants[0];

  function maxQty() {
    const v = selected();
    if (!v) return 0;
    if (target.kind === 'sale') {
      const limit = target.limit > 0 ? target.limit : MAX_QTY;
      return Math.min(target.remaining, limit, MAX_QTY);
    }
    return Math.min(v.stock, MAX_QTY);
  }

  function fillVariants() {
    const keep = variant.value;
    variant.replaceChildren(
      ...target.variants.map((v) => {
        const soldOut = v.stock === 0;
        const label = `${v.name} · ${formatCents(v.price_cents, target.currency)}${soldOut ? ' · sold out' : ''}`;
        const opt = el('option', '', label);
        opt.value = String(v.id);
        opt.disabled = soldOut && target.kind === 'product';
        return opt;
      }),
    );
    const first = target.variants.find((v) => v.stock > 0) ?? target.variants[0];
    variant.value = target.variants.some((v) => String(v.id) === keep) ? keep : String(first?.id ?? '');
    variant.disabled = target.kind === 'sale' || target.variants.length < 2;
  }

  /** Redraws from the target and the form; `clamp` also corrects the typed quantity. */
  function render(clamp = true) {
    const v = selected();
    const max = maxQty();
    const n = Math.max(1, Math.min(Math.trunc(Number(qty.value)) || 1, Math.max(max, 1)));
    if (clamp) qty.value = String(n);
    qty.max = String(Math.max(max, 1));
    $('buy-minus').disabled = n <= 1;
    $('buy-plus').disabled = n >= max;
    $('buy-title').textContent = target.title;
    const img = $('buy-img');
    img.hidden = !target.image;
    if (target.image) img.src = target.image;
    const unit = v?.price_cents ?? 0;
    $('buy-unit').textContent = formatCents(unit, target.currency);
    const list = $('buy-list');
    list.hidden = !(v && v.list_price_cents > unit);
    if (!list.hidden) list.textContent = formatCents(v.list_price_cents, target.currency);
    $('buy-note').textContent =
      target.kind === 'sale'
        ? `${target.limit > 0 ? `Limit ${target.limit} per buyer · ` : ''}${target.remaining} left`
        : `${v?.stock ?? 0} in stock`;
    const total = formatCents(unit * n, target.currency);
    $('buy-total').textContent = total;
    $('buy-code-note').hidden = !code.value.trim();
    if (placed) return;
    if (busy) {
      // The buyer's own unit may be the one that just sold out: say what is happening to it.
      submit.disabled = true;
      submit.textContent = 'Paying…';
    } else if (closedReason || max === 0) {
      submit.disabled = true;
      submit.textContent = closedReason || 'Sold out';
    } else {
      submit.disabled = false;
      submit.textContent = `Pay ${total}`;
    }
  }

  function setResult(kind, text) {
    result.className = kind;
    result.replaceChildren(text);
    if (kind === 'ok') {
      const a = el('a', '', 'See my orders');
      a.href = '/orders';
      result.append(' ', a);
    }
  }

  /** Opens the sheet for a target, or sends a signed-out viewer to log in. */
  function open(t) {
    if (!signedIn) {
      location.href = loginUrl;
      return;
    }
    target = t;
    closedReason = '';
    placed = false;
    qty.value = '1';
    result.className = '';
    result.replaceChildren();
    fillVariants();
    render();
    if (!sheet.open) sheet.showModal();
  }

  /** Live changes to the open target (stock, remaining); `null` means it is gone. */
  function update(kind, id, t) {
    if (!sheet.open || !target || target.kind !== kind || String(target.id) !== String(id)) return;
    if (t) {
      target = t;
      fillVariants();
    } else if (!placed) {
      closedReason = kind === 'sale' ? 'Sale ended' : 'No longer available';
    }
    render();
  }

  async function pay() {
    if (busy || placed || !target || closedReason || maxQty() === 0) return;
    render();
    const body = { show_id: showId, quantity: Number(qty.value), payment_method: pm.value };
    if (target.kind === 'sale') body.flash_sale_id = target.id;
    else body.variant_id = selected().id;
    const c = code.value.trim();
    if (c) body.code = c;
    const sig = JSON.stringify(body);
    if (pending?.sig !== sig) pending = { sig, key: newIdempotencyKey() };
    busy = true;
    result.className = '';
    result.replaceChildren();
    render();
    try {
      await settle(body);
    } finally {
      busy = false;
      render();
    }
  }

  /**
   * Buys on the live socket when it is open: no request to make, and the payment's outcome is
   * pushed, not polled (a sell-out's buyers polling their orders would be thousands of requests a
   * second). Returns false when no final answer came in time; the caller then asks over HTTP
   * with the same key.
   */
  async function buyOnSocket(body) {
    const { show_id: _show, ...fields } = body;
    const key = pending.key;
    const answer = nextOrder(key, SOCKET_ANSWER_MS);
    if (!send({ type: 'buy', key, ...fields })) {
      waiting.get(key)?.(null);
      return false;
    }
    let m = await answer;
    if (m?.status === 202 && m.order) {
      setResult('reserved', 'Reserved ✓ It is yours while the payment goes through…');
      m = await nextOrder(key, SOCKET_PAYMENT_MS);
    }
    // No answer, or one to ask again about (`pending`): HTTP takes over.
    if (!m || m.status === 202) return false;
    if (m.order) finished(m.order);
    else failed(new ApiError(m.status, m.error?.code, sentence(m.error?.message ?? 'Something went wrong.')));
    return true;
  }

  /** The next `order` message for `key`, or null after `ms` or when the socket is lost. */
  function nextOrder(key, ms) {
    return new Promise((resolve) => {
      const done = (m) => {
        clearTimeout(timer);
        if (waiting.get(key) === done) waiting.delete(key);
        resolve(m);
      };
      const timer = setTimeout(() => done(null), ms);
      waiting.set(key, done);
    });
  }

  /** An `order` message from the live socket. */
  function onOrder(m) {
    waiting.get(m.key)?.(m);
  }

  /** The socket dropped: its answers will not come, so HTTP asks now instead of after a wait. */
  function socketLost() {
    for (const done of [...waiting.values()]) done(null);
  }

  /** Shows a refusal; the key is dropped only when the server surely made no order with it. */
  function failed(err) {
    // Without an answer (or with a server fault) the order may exist: keep the key for a retry.
    if (err.status !== 0 && err.status < 500 && err.code !== 'duplicate') pending = null;
    if (err.code === 'sold_out') closedReason = 'Sold out';
    if (err.code === 'sale_ended') closedReason = 'Sale ended';
    setResult('error', err.message);
  }

  /**
   * Buys until there is a final answer; the key is kept while the outcome is unknown. The server
   * answers at the reservation (on the socket, or over HTTP with `Prefer: respond-async`): the
   * unit is the buyer's as soon as that is durable, and the payment's outcome follows.
   */
  async function settle(body) {
    if (await buyOnSocket(body)) return;
    for (let attempt = 1; ; attempt++) {
      let order;
      try {
        const res = await api('POST', '/orders', body, { idempotencyKey: pending.key, prefer: 'respond-async' });
        order = res?.order;
        if (order?.status === 'reserved') {
          setResult('reserved', 'Reserved ✓ It is yours while the payment goes through…');
          order = await paymentOutcome(order);
        }
      } catch (err) {
        // 409 duplicate: our own earlier try with this key is still running; wait for its answer.
        if (err.code === 'duplicate' && attempt < RETRIES) {
          await sleep(1000);
          continue;
        }
        failed(err);
        return;
      }
      if (order && order.status !== 'reserved') {
        finished(order);
        return;
      }
      // No order yet (the first attempt is still being saved) or still paying: ask again.
      if (attempt >= RETRIES) {
        setResult('error', 'Your payment is still being processed. Tap Pay to check again, or see My orders.');
        return;
      }
      await sleep(1000);
    }
  }

  /**
   * The order once its payment has an outcome, or as it stands after a while of asking. A failed
   * read is not an outcome: the order exists, so the caller asks again with the same key.
   */
  async function paymentOutcome(order) {
    for (let i = 0; i < PAYMENT_POLLS && order.status === 'reserved'; i++) {
      await sleep(PAYMENT_POLL_MS);
      try {
        order = (await api('GET', `/orders/${order.id}`))?.order ?? order;
      } catch {
        return order;
      }
    }
    return order;
  }

  /** Shows a settled order: paid, or declined or expired with the unit back on sale. */
  function finished(order) {
    if (order.status === 'declined' || order.status === 'expired') {
      // This attempt is over; paying again is a new order with a new key.
      pending = null;
      setResult(
        'error',
        order.status === 'declined'
          ? 'Your payment was declined; nothing was charged. Try another card.'
          : 'The reservation expired before the payment went through; any charge is given back.',
      );
      return;
    }
    pending = null;
    placed = true;
    const saved = order.discount_cents > 0 ? ` (you saved ${formatCents(order.discount_cents, order.currency)})` : '';
    setResult('ok', `Order placed ✓ · ${formatCents(order.total_cents, order.currency)}${saved}`);
    submit.disabled = true;
    submit.textContent = 'Paid ✓';
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    pay();
  });
  // While typing, the quantity is left as typed; leaving the field corrects it.
  form.addEventListener('input', () => target && render(false));
  form.addEventListener('change', () => target && render());
  $('buy-minus').addEventListener('click', () => {
    qty.value = String(Number(qty.value) - 1);
    render();
  });
  $('buy-plus').addEventListener('click', () => {
    qty.value = String(Number(qty.value) + 1);
    render();
  });
  $('buy-close').addEventListener('click', () => sheet.close());
  // A tap on the dimmed backdrop (the dialog box itself, outside the form) closes the sheet.
  sheet.addEventListener('click', (ev) => {
    if (ev.target === sheet) sheet.close();
  });

  return { open, update, onOrder, socketLost };
}
