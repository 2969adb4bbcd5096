// Short-lived notices in a #toast region at the bottom of the screen (errors stay longer).

function region() {
  let el = document.getElementById('toast');
  if (!el) {
    el = document.createElement('div');
    el.id = 'toast';
    el.className = 'toast-region';
    el.setAttribute('aria-live', 'polite');
    document.body.append(el);
  }
  return el;
}

/** Shows `text`; `kind` is 'error' | 'ok' | 'info'. An error's `.code` is kept in data-code. */
export function toast(text, { kind = 'info', code = '' } = {}) {
  const item = document.createElement('div');
  item.className = `toast ${kind}`;
  item.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  if (code) item.dataset.code = code;
  item.textContent = text;
  const box = region();
  box.append(item);
  while (box.children.length > 4) box.firstElementChild.remove();
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
  item.addEventListener('click', () => item.remove());
}

/** Toasts an ApiError (or anything thrown) as an error. */
export function toastError(err) {
  toast(err?.message || String(err), { kind: 'error', code: err?.code ?? '' });
}
