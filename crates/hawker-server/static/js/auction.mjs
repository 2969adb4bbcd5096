// Live auctions: the #auction panel (lot, price, leader, countdown, bids, result) and #sold-list.
import { api, formatCents, newIdempotencyKey, parseCents, sentence } from './api.mjs';
import { el } from './chat.mjs';
import { formatCountdown } from './live.mjs';

const $ = (id) => document.getElementById(id);
const ERROR_MS = 6000;
const QUICK_BIDS = 3;
/** Below this many ms left the countdown turns red. */
const ENDING_MS = 10_000;

/**
 * Wires the auction elements in the page and returns `{ reset, update, close }`: `reset(list)`
 * takes a snapshot's `auctions`, `update(view)` an `auction` message, `close()` is for the show's
 * end. `userId` is the viewer's account (0 signed out), for "You're winning" and "Outbid".
 * With `isHost`, a lot whose winner's payment failed gets an "offer to the next bidder" button.
 * Without `canBid` the panel only watches (the host, signed-out viewers): the bid controls, if
 * the page has them, are never wired. The page may also have `#auction-none`, shown while no
 * auction is on screen.
 */
export function createAuction({ showId, userId = 0, canBid = false, isHost = false, serverNow = () => Date.now() }) {
  const panel = $('auction');
  const controls = $('auction-controls');
  const quick = $('auction-bids');
  const custom = $('auction-custom');
  const maxInput = $('auction-max');
  const errorEl = $('auction-error');
  let auctions = new Map(); // this show's auctions by id: the running one and the ended ones
  let currentId = null; // the auction on screen
  let dismissedId = null; // an ended auction whose result the viewer closed
  let busy = false; // a bid is on its way
  let over = false; // the show ended
  let errorTimer = null;
  const myMax = new Map(); // auction id → the maximum set from this page

  const current = () => (currentId === null ? null : auctions.get(currentId) ?? null);

  // Whether this viewer bid in (or led) an auction, kept for the tab's life so a reload still
  // knows to say "Outbid".
  const bidIn = new Set();
  const bidKey = (id) => `hawker:bid:${userId}:${id}`;
  function markBid(id) {
    bidIn.add(String(id));
    try {
      sessionStorage.setItem(bidKey(id), '1');
    } catch {
      // Storage can be off (private mode); the page still knows until it is reloaded.
    }
  }
  function hasBid(id) {
    if (bidIn.has(String(id))) return true;
    try {
      return sessionStorage.getItem(bidKey(id)) === '1';
    } catch {
      return false;
    }
  }
  // Only the leader's own copy of an auction says so: nobody else learns who leads but by name.
  const leads = (a) => a.you_lead === true;

  function reset(list) {
    auctions = new Map((list ?? []).map((a) => [a.id, a]));
    const running = [...auctions.values()].find((a) => a.status === 'running');
    if (running) currentId = running.id;
    else if (!auctions.has(currentId)) currentId = null; // keep an ended result on screen
    for (const a of auctions.values()) if (leads(a)) markBid(a.id);
    render();
  }

  function update(view) {
    const before = auctions.get(view.id);
    auctions.set(view.id, view);
    if (leads(view)) markBid(view.id);
    if (view.status === 'running' && currentId !== view.id) {
      currentId = view.id; // a new auction takes the panel
      if (custom) custom.value = '';
      if (maxInput) maxInput.value = '';
      showError('');
    }
    // An extension or a new leader restarts the price's little flash.
    if (before && view.id === currentId && (before.price_cents !== view.price_cents || before.ends_at !== view.ends_at)) {
      panel.classList.remove('bumped');
      void panel.offsetWidth; // restart the animation
      panel.classList.add('bumped');
    }
    render();
  }

  function close() {
    over = true;
    render();
  }

  function render() {
    renderPanel();
    renderSold();
  }

  function renderPanel() {
    const a = current();
    const none = $('auction-none');
    const visible = Boolean(a) && a.id !== dismissedId;
    panel.hidden = !visible;
    if (none) none.hidden = visible;
    if (!visible) {
      delete panel.dataset.auctionId;
      return;
    }
    const ended = a.status === 'ended';
    panel.dataset.auctionId = String(a.id);
    panel.dataset.status = a.status;
    const img = $('auction-img');
    if (img) {
      img.hidden = !a.image;
      if (a.image) img.src = a.image;
      else img.removeAttribute('src');
    }
    $('auction-title').textContent = `${a.product_title} · ${a.variant_name}`;
    $('auction-mode-badge').hidden = a.mode !== 'sudden_death';
    $('auction-close').hidden = !ended;
    $('auction-price-label').textContent = !a.leader ? 'Starting bid' : ended ? 'Winning bid' : 'Current bid';
    $('auction-price').textContent = formatCents(a.price_cents, a.currency);
    $('auction-leader-label').textContent = ended && a.leader ? 'Winner' : 'Leader';
    $('auction-leader').textContent = a.leader ? a.leader || 'A bidder' : 'No bids yet';
    $('auction-count').textContent = `${a.bids} ${a.bids === 1 ? 'bid' : 'bids'}`;

    const [kind, text] = standing(a);
    const status = $('auction-status');
    status.textContent = text;
    status.className = `auction-status ${kind}`;
    status.hidden = !text;
    panel.classList.toggle('winning', kind === 'winning' || kind === 'won');
    panel.classList.toggle('outbid', kind === 'outbid');

    if (controls) controls.hidden = ended;
    if (canBid && !ended) renderControls(a);
    renderResult(a);
    tick();
  }

  /** `[kind, text]` for #auction-status, from where this viewer stands. */
  function standing(a) {
    if (a.status === 'running') {
      if (leads(a)) return ['winning', "You're winning"];
      if (userId > 0 && a.leader && hasBid(a.id)) return ['outbid', 'Outbid'];
      return ['', ''];
    }
    if (!a.leader) return ['closed', 'No bids'];
    if (leads(a)) return ['won', 'You won!'];
    if (userId > 0 && hasBid(a.id)) return ['lost', 'Outbid'];
    return ['closed', 'Sold'];
  }

  function renderControls(a) {
    const amounts = (a.next_bids ?? []).slice(0, QUICK_BIDS);
    const sig = `${a.id}:${a.currency}:${amounts.join(',')}`;
    // Rebuilt only when the amounts change, so a tap is never lost to a redraw.
    if (quick.dataset.sig !== sig) {
      quick.dataset.sig = sig;
      quick.replaceChildren(
        ...amounts.map((cents, i) => {
          const b = el('button', `quick-bid${i === 0 ? ' first' : ''}`, formatCents(cents, a.currency));
          b.type = 'button';
          b.dataset.amount = String(cents);
          return b;
        }),
      );
    }
    const min = amounts[0];
    custom.placeholder = min ? `${(min / 100).toFixed(2)}+` : 'Amount';
    const mine = myMax.get(a.id);
    const note = $('auction-my-max');
    note.hidden = !(mine && leads(a));
    if (!note.hidden) note.textContent = `Your max: ${formatCents(mine, a.currency)}`;
  }

  function renderResult(a) {
    const result = $('auction-result');
    result.hidden = a.status !== 'ended';
    if (result.hidden) return;
    const line = $('auction-outcome');
    if (a.leader) {
      const payment =
        a.paid === true ? 'Paid ✓' : a.paid === false ? 'Payment did not go through' : 'Charging the winner…';
      line.replaceChildren(
        el('strong', 'winner', a.leader || 'A bidder'),
        ' won it for ',
        el('strong', '', formatCents(a.price_cents, a.currency)),
        ' · ',
        el('span', `paid ${a.paid === true ? 'ok' : a.paid === false ? 'failed' : 'pending'}`, payment),
      );
      if (isHost && a.paid === false) {
        const offer = el('button', 'small second-chance', 'Offer to the next bidder');
        offer.type = 'button';
        offer.addEventListener('click', async () => {
          offer.disabled = true;
          try {
            const r = await api('POST', `/auctions/${a.id}/second-chance`, {});
            offer.replaceWith(el('span', 'muted', `Offered at ${formatCents(r.price_cents, a.currency)}; charging…`));
          } catch (err) {
            offer.disabled = false;
            showError(sentence(err.message));
          }
        });
        line.append(' ', offer);
      }
      if (leads(a) && a.paid === true) {
        const link = el('a', '', 'See my orders');
        link.href = '/orders';
        line.append(' ', link);
      }
    } else {
      line.replaceChildren('No bids: the lot goes back on the shelf.');
    }
    const hash = $('auction-hash');
    hash.replaceChildren();
    hash.hidden = !a.final_hash;
    if (a.final_hash) {
      const verify = el('a', 'verify', 'Verify');
      verify.href = `/api/v1/auctions/${encodeURIComponent(a.id)}/log`;
      verify.target = '_blank';
      verify.rel = 'noopener';
      const code = el('code', '', `${a.final_hash.slice(0, 16)}…`);
      code.title = a.final_hash;
      hash.append('Log hash ', code, ' ', verify);
    }
  }

  function renderSold() {
    const list = $('sold-list');
    if (!list) return;
    const sold = [...auctions.values()]
      .filter((a) => a.status === 'ended' && a.leader)
      .sort((x, y) => y.ends_at - x.ends_at);
    list.replaceChildren(
      ...sold.map((a) => {
        const li = el('li', 'sold-item');
        li.dataset.auctionId = String(a.id);
        li.append(
          el('span', 'grow title', `${a.product_title} · ${a.variant_name}`),
          el('span', 'winner', a.leader || 'A bidder'),
          el('strong', 'price', formatCents(a.price_cents, a.currency)),
        );
        if (a.paid === false) li.append(el('span', 'badge failed', 'unpaid'));
        return li;
      }),
    );
    const box = $('sold');
    if (box) box.hidden = sold.length === 0;
    const count = $('sold-count');
    if (count) count.textContent = String(sold.length);
    const empty = $('sold-empty');
    if (empty) empty.hidden = sold.length > 0;
  }

  /** The countdown from the server's clock, and whether bidding is still open. */
  function tick() {
    const a = current();
    if (!a || panel.hidden) return;
    const countdown = $('auction-countdown');
    if (a.status === 'ended') {
      countdown.textContent = 'Ended';
      panel.classList.remove('ending');
      return;
    }
    const left = a.ends_at - serverNow();
    countdown.textContent = left > 0 ? formatCountdown(left) : 'Closing…';
    panel.classList.toggle('ending', left < ENDING_MS);
    if (!canBid) return;
    const closed = busy || over || left <= 0;
    for (const b of quick.querySelectorAll('button')) b.disabled = closed;
    $('auction-bid').disabled = closed;
    $('auction-set-max').disabled = closed;
  }

  function showError(text) {
    if (!errorEl) return;
    errorEl.textContent = text;
    errorEl.hidden = !text;
    clearTimeout(errorTimer);
    if (text) errorTimer = setTimeout(() => (errorEl.hidden = true), ERROR_MS);
  }

  /** The refusal in words, with amounts in money rather than the API's cents. */
  function refusal(err, a) {
    const cents = Number(/(\d+) cents/.exec(err.message ?? '')?.[1]);
    const money = (c) => formatCents(c, a.currency);
    switch (err.code) {
      case 'bid_too_low':
        return cents ? `Too low: bid at least ${money(cents)}` : 'Too low: someone bid first';
      case 'max_not_higher':
        return cents ? `Your max is already ${money(cents)}: set a higher one` : 'Set a higher max';
      case 'already_winning':
        return "You're already winning";
      case 'auction_closed':
        return 'The auction has closed';
      case 'shill_bid':
        return 'Sellers cannot bid on their own lots';
      case 'unauthorized':
        return 'Log in to bid';
      default:
        return sentence(err.message);
    }
  }

  /** Sends a bid or a max (`kind` 'bid' | 'max'); the live socket brings the new standing. */
  async function place(kind, cents) {
    const a = current();
    if (!a || a.status !== 'running' || busy || over) return false;
    busy = true;
    showError('');
    tick();
    const path = `/auctions/${encodeURIComponent(a.id)}/${kind === 'max' ? 'max-bid' : 'bids'}`;
    const body = kind === 'max' ? { max_cents: cents, show_id: showId } : { amount_cents: cents, show_id: showId };
    try {
      await api('POST', path, body, { idempotencyKey: newIdempotencyKey() });
      markBid(a.id);
      if (kind === 'max') myMax.set(a.id, cents);
      return true;
    } catch (err) {
      // A refused bid was still a bid: a viewer outbid at once should hear "Outbid".
      if (['bid_too_low', 'already_winning', 'max_not_higher', 'auction_closed'].includes(err.code)) markBid(a.id);
      showError(refusal(err, a));
      return false;
    } finally {
      busy = false;
      render();
    }
  }

  if (canBid && controls) {
    quick.addEventListener('click', (ev) => {
      const b = ev.target.closest('button.quick-bid');
      if (b) place('bid', Number(b.dataset.amount));
    });
    $('auction-bid-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const cents = parseCents(custom.value);
      if (!cents) return showError('Enter an amount like 12.50');
      if (await place('bid', cents)) custom.value = '';
    });
    $('auction-max-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const cents = parseCents(maxInput.value);
      if (!cents) return showError('Enter a max like 40.00');
      if (await place('max', cents)) maxInput.value = '';
    });
  }
  $('auction-close').addEventListener('click', () => {
    dismissedId = currentId;
    renderPanel();
  });
  setInterval(tick, 250);

  return { reset, update, close };
}
