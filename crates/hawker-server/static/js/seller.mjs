// Seller pages: product and show forms, image uploads, archiving, shipping and refunds, chat filter.
import { api } from './api.mjs';

const $ = (sel, root = document) => root.querySelector(sel);
const csrf = () => $('meta[name="csrf-token"]')?.content ?? '';

function showError(err) {
  const box = $('#form-error');
  const message = err?.message ?? String(err);
  if (box) {
    box.textContent = message;
    box.hidden = false;
  } else {
    alert(message);
  }
}

async function upload(path, file) {
  const body = new FormData();
  body.append('image', file);
  const res = await fetch(`/api/v1${path}`, { method: 'POST', body, headers: { 'X-CSRF-Token': csrf() }, credentials: 'same-origin' });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(data?.error?.message ?? `Upload failed (${res.status})`);
  return data;
}

const productForm = $('#product-form');
if (productForm) {
  const rows = $('#variants');
  $('#add-variant').addEventListener('click', () => {
    const row = rows.querySelector('.variant-row').cloneNode(true);
    row.removeAttribute('data-variant-id');
    row.querySelectorAll('input').forEach((i) => (i.value = ''));
    rows.append(row);
  });
  rows.addEventListener('click', (e) => {
    if (e.target.matches('.remove-variant') && rows.querySelectorAll('.variant-row').length > 1) e.target.closest('.variant-row').remove();
  });
  productForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(productForm);
    const variants = [...rows.querySelectorAll('.variant-row')].map((row) => {
      const v = {
        name: $('[name=name]', row).value,
        price_cents: Number($('[name=price]', row).value),
        stock: Number($('[name=stock]', row).value),
      };
      if (row.dataset.variantId) v.id = Number(row.dataset.variantId);
      return v;
    });
    const body = { title: f.get('title'), description: f.get('description'), currency: f.get('currency'), variants };
    try {
      const id = productForm.dataset.productId;
      const product = id ? await api('PUT', `/products/${id}`, body) : await api('POST', '/products', body);
      location.href = `/dashboard/products/${product.id}`;
    } catch (err) {
      showError(err);
    }
  });
}

const imageForm = $('#image-form');
imageForm?.addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    await upload(`/products/${imageForm.dataset.productId}/images`, $('[name=image]', imageForm).files[0]);
    location.reload();
  } catch (err) {
    showError(err);
  }
});

const showForm = $('#show-form');
showForm?.addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = new FormData(showForm);
  const when = f.get('scheduled_at');
  const body = {
    title: f.get('title'),
    category: f.get('category'),
    scheduled_at: when ? new Date(when).getTime() : null,
    product_ids: f.getAll('product').map(Number),
  };
  try {
    const created = await api('POST', '/shows', body);
    const cover = $('[name=cover]', showForm).files[0];
    if (cover) await upload(`/shows/${created.id}/cover`, cover);
    location.href = `/shows/${created.id}/host`;
  } catch (err) {
    showError(err);
  }
});

document.addEventListener('click', async (e) => {
  const archive = e.target.closest('button.archive');
  const refund = e.target.closest('button.refund');
  try {
    if (archive && confirm('Archive this product? It leaves your store and future shows.')) {
      await api('DELETE', `/products/${archive.dataset.productId}`);
      location.reload();
    } else if (refund && confirm('Cancel this order and refund the buyer?')) {
      await api('POST', `/orders/${refund.dataset.orderId}/refund`);
      location.reload();
    }
  } catch (err) {
    showError(err);
  }
});

document.addEventListener('submit', async (e) => {
  const ship = e.target.closest('form.ship-form');
  if (!ship) return;
  e.preventDefault();
  try {
    await api('POST', `/orders/${ship.dataset.orderId}/ship`, { tracking: $('[name=tracking]', ship).value });
    location.reload();
  } catch (err) {
    showError(err);
  }
});

const blocked = $('#blocked-words-form');
blocked?.addEventListener('submit', async (e) => {
  e.preventDefault();
  const words = $('[name=words]', blocked).value.split(',').map((w) => w.trim()).filter(Boolean);
  try {
    await api('PUT', '/me/blocked-words', { words });
    blocked.querySelector('button').textContent = 'Saved ✓';
  } catch (err) {
    showError(err);
  }
});

const shipping = $('#shipping-form');
shipping?.addEventListener('submit', async (e) => {
  e.preventDefault();
  const text = $('[name=fee]', shipping).value.trim().replace(',', '.');
  if (!/^\d+(\.\d{1,2})?$/.test(text)) {
    showError(new Error('Enter the fee like 4.99 (0 for free shipping).'));
    return;
  }
  const [major, minor = ''] = text.split('.');
  try {
    await api('PUT', '/me/shipping', { fee_cents: Number(major) * 100 + Number(minor.padEnd(2, '0')) });
    shipping.querySelector('button').textContent = 'Saved ✓';
  } catch (err) {
    showError(err);
  }
});
