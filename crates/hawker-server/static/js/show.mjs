// The viewer's show page: stage state, video, header numbers, pinned product, flash sale, auction, hearts, chat, buying.
import { formatCents } from './api.mjs';
import { createAuction } from './auction.mjs';
import { createBuySheet } from './buy.mjs';
import { createChat, purchaseLine } from './chat.mjs';
import { createHearts } from './hearts.mjs';
import { createPreBid } from './prebid.mjs';
import { connectLive, formatCountdown } from './live.mjs';
import { toast } from './toast.mjs';
import { createPlayer } from './video.mjs';

const $ = (id) => document.getElementById(id);
const room = $('show-room');
const showId = Number(room.dataset.showId);
const signedIn = room.dataset.signedIn === 'true';
const isHost = room.dataset.isHost === 'true';
const userId = Number(room.dataset.userId) || 0;
const canModerate = room.dataset.canModerate === 'true' || isHost;
const startsAt = room.dataset.startsAt;
const loginUrl = `/login?next=/shows/${showId}`;

// Room state; a snapshot replaces all of it.
let pinned = null;
let sales = new Map();
let wasLive = room.dataset.status === 'live';
const ended = room.dataset.status === 'ended';

const buy = createBuySheet({ showId, signedIn, loginUrl, send: (obj) => send(obj) });
const preBid = createPreBid({ showId });
const conn = ended ? null : connectLive(showId, onMessage, { onStatus });
const player = ended ? null : createPlayer({ showId, onPlaying });
const send = (obj) => (conn ? conn.send(obj) : false);
const serverNow = () => (conn ? conn.serverNow() : Date.now());
const chat = createChat({ showId, canModerate, send });
const hearts = createHearts({ button: $('heart'), layer: $('hearts-layer'), send });
// The host watches their own auctions here; bidding on them is refused anyway.
const auction = createAuction({ showId, userId, canBid: signedIn && !isHost, serverNow });

function onMessage(m) {
  switch (m.type) {
    case 'snapshot':
      pinned = m.pinned ?? null;
      for (const id of sales.keys()) if (!m.sales.some((s) => s.id === id)) buy.update('sale', id, null);
      sales = new Map(m.sales.map((s) => [s.id, s]));
      chat.reset(m.chat);
      auction.reset(m.auctions);
      setNumber('viewers', m.viewers);
      setNumber('hearts-total', m.hearts_total);
      player?.setState(m.video);
      if (m.live) {
        wasLive = true;
        setStage('live');
      } else if (wasLive) {
        return showEnded();
      } else {
        setStage('scheduled');
      }
      break;
    case 'chat':
      return chat.add(m);
    case 'chat_deleted':
      return chat.remove(m.id);
    case 'hearts':
      setNumber('hearts-total', m.total);
      return hearts.received(m.count);
    case 'viewers':
      return setNumber('viewers', m.count);
    case 'pinned':
      pinned = m.product ?? null;
      break;
    case 'sale':
      sales.set(m.id, m);
      break;
    case 'sale_left': {
      const s = sales.get(m.id);
      if (s) s.remaining = m.remaining;
      break;
    }
    case 'sale_ended':
      sales.delete(m.id);
      buy.update('sale', m.id, null);
      break;
    case 'stock':
      for (const v of pinned?.variants ?? []) if (v.id === m.variant_id) v.stock = m.stock;
      break;
    case 'auction':
      return auction.update(m);
    case 'code':
      chat.system(`🏷️ Code ${m.code}: ${m.description}`, 'code', {
        label: 'Use',
        className: 'use-code',
        onClick: () => {
          $('buy-code').value = m.code;
          toast(`Code ${m.code} will be applied at checkout`, { kind: 'ok' });
        },
      });
      return;
    case 'purchase':
      chat.system(purchaseLine(m), 'purchase');
      return;
    case 'video':
      return player?.setState(m.state);
    case 'show_ended':
      return showEnded();
    case 'error':
      return chat.showError(m.message);
    case 'order':
      return buy.onOrder(m);
    default:
      return; // pong, host-only and future messages
  }
  renderPinned();
  renderSale();
}

function onStatus(status) {
  // Before the show starts the server refuses the socket; that is waiting, not a lost connection.
  $('conn').hidden = status !== 'reconnecting' || $('video').dataset.state === 'scheduled';
  // The socket no longer tells the player when the host goes live; its next snapshot will.
  if (status === 'reconnecting') player?.setState(null);
  if (status === 'reconnecting' || status === 'closed') buy.socketLost();
}

/** The server starts a scheduled show when the host's video arrives, so the room is open now too. */
function onPlaying() {
  if ($('video').dataset.state === 'scheduled') conn?.reconnect();
}

function setNumber(id, n) {
  $(id).textContent = Number(n).toLocaleString();
}

/** 'scheduled' | 'live' | 'ended': the stage's look, its caption and the LIVE badge. */
function setStage(state) {
  $('video').dataset.state = state;
  $('live-badge').hidden = state !== 'live';
  $('stage-status').textContent =
    state === 'live' ? 'LIVE' : state === 'ended' ? 'Show ended' : `Starts at ${startsAt}`;
}

function showEnded() {
  conn?.close();
  player?.close();
  pinned = null;
  sales.clear();
  setStage('ended');
  $('ended').hidden = false;
  $('conn').hidden = true;
  chat.setEnabled(false);
  hearts.setEnabled(false);
  auction.close();
  renderPinned();
  renderSale();
}

function productTarget(p) {
  return { kind: 'product', id: p.product_id, title: p.title, image: p.image, currency: p.currency, variants: p.variants };
}

function saleTarget(s) {
  const variant = {
    id: s.variant_id,
    name: s.variant_name,
    price_cents: s.price_cents,
    list_price_cents: s.list_price_cents,
    stock: s.remaining,
  };
  const title = `${s.product_title} · ${s.variant_name}`;
  return { kind: 'sale', id: s.id, title, image: s.image, currency: s.currency, variants: [variant], limit: s.per_buyer_limit, remaining: s.remaining };
}

function setImage(img, url) {
  img.hidden = !url;
  if (url) img.src = url;
  else img.removeAttribute('src');
}

function renderPinned() {
  const card = $('pinned');
  preBid.show(pinned);
  if (!pinned) {
    card.hidden = true;
    delete card.dataset.productId;
    return;
  }
  const p = pinned;
  card.hidden = false;
  card.dataset.productId = String(p.product_id);
  setImage($('pinned-img'), p.image);
  $('pinned-title').textContent = p.title;
  const prices = p.variants.map((v) => v.price_cents);
  const cheapest = Math.min(...prices);
  const from = prices.some((c) => c !== cheapest) ? 'from ' : '';
  $('pinned-price').textContent = prices.length ? `${from}${formatCents(cheapest, p.currency)}` : '';
  const stock = p.variants.reduce((sum, v) => sum + v.stock, 0);
  $('pinned-stock').textContent = stock > 0 ? `${stock} left` : 'Sold out';
  card.classList.toggle('sold-out', stock === 0);
  const btn = $('buy-pinned');
  btn.disabled = stock === 0;
  btn.textContent = stock === 0 ? 'Sold out' : 'Buy';
  buy.update('product', p.product_id, productTarget(p));
}

/** The most recently started running sale is the one on screen (ids are random, not ordered). */
function currentSale() {
  let best = null;
  for (const s of sales.values()) if (!best || s.starts_at > best.starts_at) best = s;
  return best;
}

function renderSale() {
  const card = $('sale');
  const s = currentSale();
  if (!s) {
    card.hidden = true;
    delete card.dataset.saleId;
    return;
  }
  card.hidden = false;
  card.dataset.saleId = String(s.id);
  setImage($('sale-img'), s.image);
  $('sale-title').textContent = `${s.product_title} · ${s.variant_name}`;
  $('sale-price').textContent = formatCents(s.price_cents, s.currency);
  $('sale-list-price').textContent = formatCents(s.list_price_cents, s.currency);
  $('sale-limit').textContent = s.per_buyer_limit > 0 ? `Limit ${s.per_buyer_limit} per buyer` : '';
  const soldOut = s.remaining === 0;
  $('sale-remaining').textContent = soldOut ? 'Sold out' : `${s.remaining} left`;
  $('sale-bar').style.width = `${s.quantity > 0 ? (100 * s.remaining) / s.quantity : 0}%`;
  card.classList.toggle('sold-out', soldOut);
  buy.update('sale', s.id, saleTarget(s));
  tick();
}

/** Countdown and the Buy button's state, from the server's clock. */
function tick() {
  const s = currentSale();
  if (!s) return;
  const left = s.ends_at - serverNow();
  $('sale-countdown').textContent = formatCountdown(left);
  $('sale').classList.toggle('ending', left < 10_000);
  const btn = $('buy-sale');
  btn.disabled = s.remaining === 0 || left <= 0;
  btn.textContent = s.remaining === 0 ? 'Sold out' : left <= 0 ? 'Ended' : 'Buy';
}

$('buy-pinned').addEventListener('click', () => pinned && buy.open(productTarget(pinned)));
$('buy-sale').addEventListener('click', () => {
  const s = currentSale();
  if (s) buy.open(saleTarget(s));
});
setInterval(tick, 250);
if (ended) showEnded();
