// The heart button: floats a heart per tap at once and sends taps in batches (≤ 50 per 300 ms).

const FLUSH_MS = 300;
const MAX_BATCH = 50;

/** Wires `button`; floating hearts go into `layer`. `send` is the live socket's. */
export function createHearts({ button, layer, send }) {
  let pending = 0; // taps not yet sent
  let ownSent = 0; // taps sent whose echo (in a `hearts` message) has not come back yet

  function float(mine) {
    const h = document.createElement('span');
    h.className = mine ? 'float-heart mine' : 'float-heart';
    h.textContent = '♥';
    h.style.setProperty('--drift', `${Math.round(Math.random() * 60 - 30)}px`);
    h.style.setProperty('--hue', `${Math.round(330 + Math.random() * 40) % 360}`);
    layer.append(h);
    h.addEventListener('animationend', () => h.remove());
    setTimeout(() => h.remove(), 3000);
  }

  button.addEventListener('click', () => {
    pending = Math.min(pending + 1, MAX_BATCH * 4);
    float(true);
    button.classList.remove('pop');
    void button.offsetWidth; // restart the pop animation
    button.classList.add('pop');
  });

  setInterval(() => {
    if (!pending) return;
    const count = Math.min(pending, MAX_BATCH);
    if (send({ type: 'hearts', count })) {
      pending -= count;
      ownSent += count;
    }
  }, FLUSH_MS);

  return {
    /** A `hearts` broadcast: floats a few hearts for the taps that were not ours. */
    received(count) {
      const mine = Math.min(ownSent, count);
      ownSent -= mine;
      const theirs = Math.min(count - mine, 6);
      for (let i = 0; i < theirs; i++) setTimeout(() => float(false), i * 120);
    },
    setEnabled(on) {
      button.disabled = !on;
    },
  };
}
