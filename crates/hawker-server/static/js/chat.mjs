// Chat for the show page and the host console: draws #chat, sends from #chat-form, moderates.
import { api, sentence } from './api.mjs';
import { toast, toastError } from './toast.mjs';

const $ = (id) => document.getElementById(id);
const MAX_LINES = 200;
const MAX_CHARS = 500;

/**
 * Wires the chat elements in the page. `send(obj)` is the live socket's; with `canModerate`
 * every line gets delete and mute buttons.
 */
export function createChat({ showId, canModerate, send }) {
  const list = $('chat');
  const form = $('chat-form');
  const input = $('chat-input');
  const errorEl = $('chat-error');
  let errorTimer = null;

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < 48;
  }

  function append(li, force = false) {
    const stick = force || nearBottom();
    list.append(li);
    while (list.children.length > MAX_LINES) list.firstElementChild.remove();
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function lineFor(line) {
    const li = el('li', 'chat-line');
    li.dataset.id = String(line.id);
    li.dataset.userId = String(line.user_id);
    const who = el('span', 'who');
    who.append(el('span', 'name', line.name));
    if (line.host) who.append(el('span', 'badge host', 'Host'));
    else if (line.role === 'moderator' || line.role === 'admin') who.append(el('span', 'badge mod', 'Mod'));
    li.append(who, el('span', 'text', line.text));
    if (canModerate) {
      const mod = el('span', 'mod');
      const del = el('button', 'chat-delete', '✕');
      del.type = 'button';
      del.title = 'Delete message';
      del.setAttribute('aria-label', 'Delete message');
      mod.append(del);
      if (!line.host) {
        const mute = el('button', 'chat-mute', '🔇');
        mute.type = 'button';
        mute.title = `Mute ${line.name}`;
        mute.setAttribute('aria-label', mute.title);
        mute.dataset.name = line.name;
        mod.append(mute);
      }
      li.prepend(mod); // first, so that it floats right on the first line
    }
    return li;
  }

  function showError(message) {
    if (!errorEl) return toast(sentence(message), { kind: 'error' });
    errorEl.textContent = sentence(message);
    errorEl.hidden = false;
    clearTimeout(errorTimer);
    errorTimer = setTimeout(() => (errorEl.hidden = true), 6000);
  }

  if (form) {
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const text = input.value.trim();
      if (!text) return;
      if ([...text].length > MAX_CHARS) return showError(`Messages are at most ${MAX_CHARS} characters.`);
      if (!send({ type: 'chat', text })) return showError('Not connected. Reconnecting…');
      input.value = '';
      if (errorEl) errorEl.hidden = true;
      list.scrollTop = list.scrollHeight;
    });
  }

  if (canModerate) {
    list.addEventListener('click', async (ev) => {
      const btn = ev.target.closest('button.chat-delete, button.chat-mute');
      if (!btn) return;
      const li = btn.closest('li.chat-line');
      btn.disabled = true;
      try {
        if (btn.classList.contains('chat-delete')) {
          await api('DELETE', `/shows/${showId}/chat/${li.dataset.id}`);
          li.remove();
        } else {
          await api('POST', `/shows/${showId}/mutes`, { user_id: Number(li.dataset.userId) });
          toast(`Muted ${btn.dataset.name}`, { kind: 'ok' });
        }
      } catch (err) {
        toastError(err);
      } finally {
        btn.disabled = false;
      }
    });
  }

  return {
    /** Replaces every line (a snapshot's chat). */
    reset(lines) {
      list.replaceChildren(...lines.map(lineFor));
      list.scrollTop = list.scrollHeight;
    },
    add(line) {
      append(lineFor(line));
    },
    remove(id) {
      list.querySelector(`li.chat-line[data-id="${CSS.escape(String(id))}"]`)?.remove();
    },
    /** A line from the room rather than a person: `kind` is 'code' | 'purchase' | 'info'. */
    system(text, kind = 'info', action) {
      const li = el('li', `chat-line system ${kind}`);
      li.append(el('span', 'text', text));
      if (action) {
        const b = el('button', `chat-action ${action.className ?? ''}`.trim(), action.label);
        b.type = 'button';
        b.addEventListener('click', action.onClick);
        li.append(b);
      }
      append(li);
      return li;
    },
    showError,
    /** Turns the chat box off (show ended) or on. */
    setEnabled(on) {
      if (!input) return;
      input.disabled = !on;
      form.querySelector('button[type=submit]')?.toggleAttribute('disabled', !on);
      input.placeholder = on ? 'Say something…' : 'Chat is closed';
    },
  };
}

/** A new element with a class and, optionally, text (always as text, never as HTML). */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A `purchase` message as its chat line; in a rush one message stands for several buyers. */
export function purchaseLine(m) {
  const who = m.others ? `${m.buyer} and ${m.others} other${m.others === 1 ? '' : 's'}` : m.buyer;
  return `🛍️ ${who} bought ${m.quantity} × ${m.product_title}`;
}
