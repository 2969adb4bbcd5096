// A buyer's account settings on My orders: saved payment methods and the daily spending limit.
import { api, parseCents, sentence } from './api.mjs';
import { el } from './chat.mjs';

const $ = (id) => document.getElementById(id);
const note = $('account-note');

async function loadMethods() {
  const { saved, available } = await api('GET', '/payment-methods');
  $('payment-methods').replaceChildren(...(saved.length ? saved.map((m, i) => el('li', '', `${m.label}${i === 0 ? ' (default)' : ''}`)) : [el('li', 'muted', 'None saved yet.')]));
  $('add-method').replaceChildren(
    ...available.map((m) => {
      const opt = el('option', '', m.label);
      opt.value = m.id;
      return opt;
    }),
  );
}

$('add-method-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    await api('POST', '/payment-methods', { method: $('add-method').value });
    await loadMethods();
  } catch (err) {
    note.textContent = sentence(err.message);
  }
});

$('spend-limit-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const text = $('spend-limit').value.trim();
  const cents = text ? parseCents(text) : null;
  if (text && !cents) {
    note.textContent = 'Enter an amount like 150.00, or leave it empty for no limit.';
    return;
  }
  try {
    await api('PUT', '/me/spending-limit', { daily_limit_cents: cents });
    note.textContent = cents ? 'Limit saved.' : 'Limit removed.';
  } catch (err) {
    note.textContent = sentence(err.message);
  }
});

loadMethods().catch((err) => {
  note.textContent = sentence(err.message);
});
