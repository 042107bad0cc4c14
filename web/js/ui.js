// Small DOM helpers shared by the chat and the console. Every piece of text from the server goes in as text
// (textContent), never as HTML, and every URL from a message is checked before it becomes a `src` or `href`.

/**
 * Creates an element. `attrs`: `class`, `text`, `on<event>` handlers, `dataset` (object), boolean and string
 * attributes; `children`: nodes, strings (as text) or falsy values (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function $(selector, root = document) { return root.querySelector(selector); }
export function $$(selector, root = document) { return [...root.querySelectorAll(selector)]; }

/** A URL from the server that may be used as `src`/`href`: http(s), or a path on this origin. */
export function safeUrl(url) {
  if (typeof url !== 'string' || !url) return '';
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : '';
  } catch {
    return '';
  }
}

function hue(text) {
  let x = 0;
  for (const ch of text) x = (x * 31 + ch.codePointAt(0)) >>> 0;
  return x % 360;
}

/** Initials of a name: the first letters of its first two words. */
export function initials(name) {
  const words = String(name || '?').trim().split(/[\s._-]+/).filter(Boolean);
  const first = [...(words[0] || '?')][0];
  const second = words.length > 1 ? [...words[1]][0] : '';
  return (first + second).toUpperCase();
}

/** An avatar: the picture when there is one, else initials on a colour derived from the id. */
export function avatar({ id, name, url, size = 40, online = null, group = false }) {
  const el = h('span', { class: `avatar${group ? ' group' : ''}`, 'aria-hidden': 'true' });
  el.classList.add(`s${size}`);
  const src = safeUrl(url);
  if (src) {
    el.append(h('img', { src, alt: '', loading: 'lazy', referrerpolicy: 'no-referrer' }));
  } else {
    el.classList.add(`hue-${Math.floor(hue(id || name || '?') / 30)}`);
    el.append(h('span', { class: 'initials', text: initials(name || id) }));
  }
  if (online !== null) el.append(h('span', { class: `presence ${online ? 'on' : 'off'}` }));
  return el;
}

const sameDay = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

/** A short time for lists: 14:05 today, "Mon" this week, else 12 Mar (with the year when not this year). */
export function shortTime(ms) {
  if (!ms) return '';
  const d = new Date(ms), now = new Date();
  if (sameDay(d, now)) return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const days = (now - d) / 86_400_000;
  if (days < 6) return d.toLocaleDateString([], { weekday: 'short' });
  return d.toLocaleDateString([], d.getFullYear() === now.getFullYear() ? { day: 'numeric', month: 'short' } : { day: 'numeric', month: 'short', year: 'numeric' });
}

/** The time of a message. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** A date heading between messages of different days. */
export function dayLabel(ms) {
  const d = new Date(ms), now = new Date();
  if (sameDay(d, now)) return 'Today';
  const y = new Date(now); y.setDate(now.getDate() - 1);
  if (sameDay(d, y)) return 'Yesterday';
  return d.toLocaleDateString([], { weekday: 'long', day: 'numeric', month: 'long', year: d.getFullYear() === now.getFullYear() ? undefined : 'numeric' });
}

export function bytes(n) {
  if (!Number.isFinite(n)) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n, i = -1;
  do { v /= 1024; i++; } while (v >= 1024 && i < units.length - 1);
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A transient message at the bottom of the screen. */
export function toast(text, kind = 'info') {
  let box = $('#toasts');
  if (!box) document.body.append(box = h('div', { id: 'toasts', role: 'status', 'aria-live': 'polite' }));
  const t = h('div', { class: `toast ${kind}`, text });
  box.append(t);
  setTimeout(() => t.classList.add('gone'), 3500);
  setTimeout(() => t.remove(), 4000);
}

/** Opens a modal dialog built by `build(close)`; resolves with what `close(value)` is given. */
export function dialog(title, build, { wide = false } = {}) {
  return new Promise(resolve => {
    const d = h('dialog', { class: `modal${wide ? ' wide' : ''}` });
    let done = false;
    const close = value => {
      if (done) return;
      done = true;
      d.close();
      d.remove();
      resolve(value);
    };
    d.addEventListener('cancel', e => { e.preventDefault(); close(undefined); });
    d.append(
      h('header', {}, h('h2', { text: title }), h('button', { class: 'icon close', type: 'button', 'aria-label': 'Close', onclick: () => close(undefined) }, '✕')),
      build(close),
    );
    document.body.append(d);
    d.showModal();
    const first = d.querySelector('input, textarea, select');
    if (first) first.focus();
  });
}

/** A yes/no question. */
export function confirmDialog(title, text, yes = 'OK') {
  return dialog(title, close => h('div', { class: 'body' },
    h('p', { text }),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'secondary', onclick: () => close(false) }, 'Cancel'),
      h('button', { type: 'button', class: 'danger', onclick: () => close(true) }, yes))));
}
