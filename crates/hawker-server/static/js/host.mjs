// The host console: camera, go live and end, live numbers, pin, flash sales, auctions, codes, recent orders, chat.
import { api, formatCents, parseCents } from './api.mjs';
import { createAuction } from './auction.mjs';
import { createChat, el, purchaseLine } from './chat.mjs';
import { createGoLive } from './golive.mjs';
import { connectLive, formatCountdown } from './live.mjs';
import { toast, toastError } from './toast.mjs';

const $ = (id) => document.getElementById(id);

const root = $('host-console');
const showId = Number(root.dataset.showId);
const currency = root.dataset.currency || 'USD';
let sales = new Map();

const conn = root.dataset.status === 'ended' ? null : connectLive(showId, onMessage, { onStatus });
const send = (obj) => (conn ? conn.send(obj) : false);
const serverNow = () => (conn ? conn.serverNow() : Date.now());
const chat = createChat({ showId, canModerate: true, send });
// The host watches their auctions; the server refuses a seller's bids on their own lots anyway.
const auction = createAuction({ showId, isHost: true, serverNow });
const goLive = createGoLive({ showId, onOnAir });

function onMessage(m) {
  switch (m.type) {
    case 'snapshot':
      chat.reset(m.chat);
      setNumber('host-viewers', m.viewers);
      goLive.setViewers(m.viewers);
      goLive.setServerVideo(m.video);
      setNumber('host-hearts', m.hearts_total);
      if (m.host_stats) setStats(m.host_stats);
      setPinned(m.pinned);
      sales = new Map(m.sales.map((s) => [s.id, s]));
      renderSales();
      auction.reset(m.auctions);
      if (m.live) setStatus('live');
      else if (root.dataset.status === 'live') setStatus('ended');
      refreshOrders();
      return;
    case 'chat':
      return chat.add(m);
    case 'chat_deleted':
      return chat.remove(m.id);
    case 'hearts':
      return setNumber('host-hearts', m.total);
    case 'viewers':
      goLive.setViewers(m.count);
      return setNumber('host-viewers', m.count);
    case 'video':
      return goLive.setServerVideo(m.state);
    case 'pinned':
      return setPinned(m.product);
    case 'sale':
      sales.set(m.id, m);
      return renderSales();
    case 'sale_left': {
      const s = sales.get(m.id);
      if (s) s.remaining = m.remaining;
      return renderSales();
    }
    case 'sale_ended':
      sales.delete(m.id);
      return renderSales();
    case 'stock':
      return setStock(m.variant_id, m.stock);
    case 'auction':
      auction.update(m);
      // The winner's order shows up once the lot is sold and charged.
      return m.status === 'ended' ? refreshOrders() : undefined;
    case 'code':
      return void chat.system(`🏷️ Code ${m.code}: ${m.description}`, 'code');
    case 'purchase':
      chat.system(purchaseLine(m), 'purchase');
      return refreshOrders();
    case 'host_stats':
      setStats(m);
      return refreshOrders();
    case 'show_ended':
      return setStatus('ended');
    case 'error':
      return chat.showError(m.message);
    default:
      return;
  }
}

function onStatus(status) {
  // Before the show starts the server refuses the socket; that is waiting, not a lost connection.
  $('conn').hidden = status !== 'reconnecting' || root.dataset.status === 'scheduled';
}

/**
 * The server starts a scheduled show when the host's video arrives; follow it, a few tries
 * a second apart, since the status may change just after the media connects.
 */
async function onOnAir() {
  for (let i = 0; i < 5 && root.dataset.status === 'scheduled'; i++) {
    const show = await api('GET', `/shows/${showId}`).catch(() => null);
    if (show?.status === 'live' && root.dataset.status === 'scheduled') {
      setStatus('live');
      toast('You are live', { kind: 'ok' });
      conn?.reconnect(); // the room opened with the show
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  // The server could not start it (say, a product is live in another show); Start show says why.
  if (root.dataset.status === 'scheduled') {
    toast('Your video reaches the server, but the show has not started: tap Start show.', { kind: 'error' });
  }
}

function setNumber(id, n) {
  $(id).textContent = Number(n).toLocaleString();
}

function setStats(s) {
  setNumber('stat-orders', s.orders);
  setNumber('stat-units', s.units);
  $('stat-revenue').textContent = formatCents(s.revenue_cents, currency);
}

/** 'scheduled' | 'live' | 'ended': the badge and which of Start and End is offered. */
function setStatus(status) {
  root.dataset.status = status;
  const badge = $('host-status');
  badge.textContent = status === 'live' ? 'LIVE' : status === 'ended' ? 'Ended' : 'Scheduled';
  badge.className = `badge ${status}`;
  $('start-show').hidden = status !== 'scheduled';
  $('end-show').hidden = status !== 'live';
  if (status === 'ended') {
    conn?.close();
    goLive.end();
    sales.clear();
    renderSales();
    auction.close();
    setPinned(null);
    chat.setEnabled(false);
    for (const b of document.querySelectorAll('#host-console .open-only')) b.disabled = true;
  }
}

function setPinned(product) {
  const id = product ? String(product.product_id) : '';
  for (const li of document.querySelectorAll('#lineup li.product')) {
    const on = li.dataset.productId === id;
    li.classList.toggle('pinned', on);
    li.querySelector('button.pin').textContent = on ? 'Pinned' : 'Pin';
  }
  $('unpin').disabled = !product;
  for (const v of product?.variants ?? []) setStock(v.id, v.stock);
}

function setStock(variantId, stock) {
  for (const row of document.querySelectorAll(`#lineup [data-variant-id="${CSS.escape(String(variantId))}"]`)) {
    row.dataset.stock = String(stock);
    row.querySelector('.stock').textContent = stock > 0 ? `${stock} left` : 'Sold out';
    row.classList.toggle('sold-out', stock === 0);
  }
}

function renderSales() {
  const list = $('host-sales');
  const items = [...sales.values()].sort((a, b) => b.id - a.id).map((s) => {
    const li = el('li', 'host-sale');
    li.dataset.saleId = String(s.id);
    li.dataset.endsAt = String(s.ends_at);
    const info = el('div', 'grow');
    info.append(
      el('strong', '', `${s.product_title} · ${s.variant_name}`),
      el('span', 'muted', ` ${formatCents(s.price_cents, s.currency)}`),
    );
    const nums = el('div', 'sale-nums');
    nums.append(
      el('span', 'remaining', s.remaining > 0 ? `${s.remaining}/${s.quantity} left` : 'Sold out'),
      el('span', 'countdown', formatCountdown(s.ends_at - serverNow())),
    );
    info.append(nums);
    const end = el('button', 'end-sale small danger', 'End now');
    end.type = 'button';
    end.dataset.saleId = String(s.id);
    li.append(info, end);
    return li;
  });
  if (!items.length) items.push(el('li', 'muted empty', 'No flash sale running.'));
  list.replaceChildren(...items);
}

function tick() {
  for (const li of document.querySelectorAll('#host-sales li[data-ends-at]')) {
    li.querySelector('.countdown').textContent = formatCountdown(Number(li.dataset.endsAt) - serverNow());
  }
}

// Orders: refreshed on news, at most once a second.
let ordersTimer = null;
let ordersAt = 0;
function refreshOrders() {
  if (ordersTimer) return;
  ordersTimer = setTimeout(loadOrders, Math.max(0, ordersAt + 1000 - Date.now()));
}

async function loadOrders() {
  ordersTimer = null;
  ordersAt = Date.now();
  try {
    const res = await api('GET', `/seller/orders?show_id=${showId}`);
    renderOrders(res?.orders ?? []);
  } catch (err) {
    toastError(err);
  }
}

function renderOrders(orders) {
  const items = orders.slice(0, 50).map((o) => {
    const li = el('li', `order ${o.status}`);
    li.dataset.orderId = String(o.id);
    const what = el('div', 'grow');
    what.append(
      el('strong', '', o.buyer_name),
      el('span', '', ` ${o.product_title}${o.variant_name ? ` (${o.variant_name})` : ''} × ${o.quantity}`),
    );
    const meta = el('div', 'order-meta');
    meta.append(
      el('strong', '', formatCents(o.total_cents, o.currency)),
      el('span', `badge ${o.status}`, o.status),
      el('span', 'muted', timeOf(o.created_at)),
    );
    li.append(what, meta);
    return li;
  });
  if (!items.length) items.push(el('li', 'muted empty', 'No orders yet.'));
  $('host-orders').replaceChildren(...items);
}

function timeOf(at) {
  const d = new Date(typeof at === 'number' ? at : Date.parse(at));
  return Number.isNaN(d.getTime()) ? String(at ?? '') : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** Runs an API call from a button, keeping it disabled meanwhile and toasting any error. */
async function act(button, fn) {
  button.disabled = true;
  try {
    return await fn();
  } catch (err) {
    toastError(err);
  } finally {
    button.disabled = false;
  }
}

$('start-show').addEventListener('click', (ev) =>
  act(ev.currentTarget, async () => {
    await api('POST', `/shows/${showId}/start`);
    setStatus('live');
    toast('You are live', { kind: 'ok' });
    conn?.reconnect(); // a fresh snapshot of the now-live room
  }),
);

// Ending is final, so it takes a second tap within 4 s.
let endArmed = null;
$('end-show').addEventListener('click', (ev) => {
  const btn = ev.currentTarget;
  if (!endArmed) {
    btn.textContent = 'Tap again to end';
    btn.classList.add('armed');
    endArmed = setTimeout(() => {
      endArmed = null;
      btn.textContent = 'End show';
      btn.classList.remove('armed');
    }, 4000);
    return;
  }
  clearTimeout(endArmed);
  endArmed = null;
  btn.classList.remove('armed');
  btn.textContent = 'End show';
  act(btn, async () => {
    await api('POST', `/shows/${showId}/end`);
    setStatus('ended');
  });
});

$('lineup').addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.pin');
  if (!btn) return;
  act(btn, () => api('POST', `/shows/${showId}/pin`, { product_id: Number(btn.dataset.productId) }));
});
$('unpin').addEventListener('click', (ev) =>
  act(ev.currentTarget, () => api('POST', `/shows/${showId}/pin`, { product_id: null })),
);

$('host-sales').addEventListener('click', (ev) => {
  const btn = ev.target.closest('button.end-sale');
  if (btn) act(btn, () => api('POST', `/flash-sales/${btn.dataset.saleId}/end`));
});

$('sale-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.currentTarget;
  const price = parseCents(f.elements.price.value);
  if (!price) return toast('Sale price must be an amount like 9.99', { kind: 'error' });
  const body = {
    variant_id: Number(f.elements.variant_id.value),
    quantity: Number(f.elements.quantity.value),
    price_cents: price,
    per_buyer_limit: Number(f.elements.per_buyer_limit.value),
    duration_s: Number(f.elements.duration_s.value),
  };
  act(f.querySelector('button[type=submit]'), async () => {
    await api('POST', `/shows/${showId}/flash-sales`, body);
    toast('Flash sale started', { kind: 'ok' });
  });
});

// The sale price field shows the chosen variant's list price as a hint.
function showListPrice() {
  const opt = $('sale-variant').selectedOptions[0];
  $('sale-list').textContent = opt ? `List price ${formatCents(opt.dataset.priceCents, opt.dataset.currency)}` : '';
}
$('sale-variant').addEventListener('change', showListPrice);

$('auction-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.currentTarget;
  const start = parseCents(f.elements.start.value);
  if (!start) return toast('Starting price must be an amount like 10.00', { kind: 'error' });
  const body = {
    variant_id: Number(f.elements.variant_id.value),
    start_cents: start,
    duration_s: Number(f.elements.duration_s.value),
    mode: f.elements.mode.value,
  };
  // Sudden death never extends, and the server refuses an extension with it.
  if (body.mode === 'standard') body.extend_s = Number(f.elements.extend_s.value);
  act(f.querySelector('button[type=submit]'), async () => {
    await api('POST', `/shows/${showId}/auctions`, body);
    toast('Auction started', { kind: 'ok' });
  });
});

// Like the sale form: the variant's list price as a hint, and the extension only for soft close.
function showAuctionHints() {
  const opt = $('auction-variant').selectedOptions[0];
  $('auction-list').textContent = opt ? `List price ${formatCents(opt.dataset.priceCents, opt.dataset.currency)}` : '';
  const sudden = $('auction-mode').value === 'sudden_death';
  $('auction-extend-field').hidden = sudden;
  $('auction-extend').disabled = sudden; // a hidden field must not block the form's validation
  const extend = Number($('auction-extend').value) || 10;
  $('auction-mode-note').textContent = sudden
    ? 'Ends on time, whatever happens.'
    : `A bid in the last ${extend} s resets the clock to ${extend} s.`;
}
$('auction-form').addEventListener('input', showAuctionHints);
$('auction-form').addEventListener('change', showAuctionHints);

$('code-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const f = ev.currentTarget;
  const percent = f.elements.kind.value === 'percent';
  const raw = f.elements.amount.value;
  const body = {
    code: f.elements.code.value.trim(),
    max_uses: Number(f.elements.max_uses.value),
    first_order_only: f.elements.first_order_only.checked,
    announce: f.elements.announce.checked,
  };
  if (percent) body.percent_off = Number(raw);
  else body.amount_off_cents = parseCents(raw);
  if (!(percent ? body.percent_off > 0 && body.percent_off <= 100 : body.amount_off_cents > 0)) {
    return toast(percent ? 'Percent off must be 1 to 100' : 'Amount off must be like 5.00', { kind: 'error' });
  }
  const minutes = Number(f.elements.expires_min.value);
  if (f.elements.expires_min.value && minutes > 0) body.expires_at = Math.round(serverNow() + minutes * 60_000);
  act(f.querySelector('button[type=submit]'), async () => {
    await api('POST', `/shows/${showId}/codes`, body);
    const off = percent ? `${body.percent_off}% off` : `${formatCents(body.amount_off_cents, currency)} off`;
    const li = el('li', 'code-item');
    li.dataset.code = body.code;
    li.append(el('strong', '', body.code), el('span', 'muted', ` ${off} · ${body.max_uses} uses`));
    $('host-codes').prepend(li);
    toast(`Code ${body.code} created`, { kind: 'ok' });
    f.elements.code.value = '';
  });
});

// The amount field's unit follows the percent/amount toggle.
function showCodeUnit() {
  const percent = $('code-form').elements.kind.value === 'percent';
  $('code-unit').textContent = percent ? '%' : currency;
  $('code-amount').placeholder = percent ? '10' : '5.00';
  $('code-amount').inputMode = percent ? 'numeric' : 'decimal';
}
$('code-form').addEventListener('change', showCodeUnit);

setStatus(root.dataset.status);
// The page disables the forms' buttons until this script can handle them (see host.html).
if (root.dataset.status !== 'ended') {
  for (const b of document.querySelectorAll('#host-console form button.open-only[type=submit]')) b.disabled = false;
}
showListPrice();
showAuctionHints();
showCodeUnit();
setInterval(tick, 250);
loadOrders();
