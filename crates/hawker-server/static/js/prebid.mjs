// Pre-bids (#prebid-form on the pinned product): a secret maximum placed before the lot's auction
// starts; the server bids it for the viewer the moment the auction opens.
import { api, parseCents, sentence } from './api.mjs';
import { el } from './chat.mjs';

const $ = (id) => document.getElementById(id);

/** Wires the form; `show(product)` refreshes it for the pinned product (or hides it for `null`). */
export function createPreBid({ showId }) {
  const form = $('prebid-form');
  if (!form) return { show() {} };
  const variant = $('prebid-variant');
  const note = $('prebid-note');
  let currency = 'USD';

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const max = parseCents($('prebid-max').value);
    if (!max) {
      note.textContent = 'Enter your maximum, e.g. 25.00';
      return;
    }
    try {
      await api('POST', `/shows/${showId}/pre-bids`, { variant_id: Number(variant.value), max_cents: max });
      note.textContent = 'Saved: we bid for you when its auction starts.';
    } catch (err) {
      note.textContent = sentence(err.message);
    }
  });

  return {
    show(product) {
      form.hidden = !product;
      if (!product) return;
      currency = product.currency;
      const keep = variant.value;
      variant.replaceChildren(
        ...product.variants.map((v) => {
          const opt = el('option', '', v.name);
          opt.value = String(v.id);
          return opt;
        }),
      );
      if (product.variants.some((v) => String(v.id) === keep)) variant.value = keep;
      $('prebid-max').placeholder = `Max (${currency})`;
    },
  };
}
