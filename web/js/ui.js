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
  for (const c of children.flat(Infinity)) {
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
      h('header', {}, h('h2', { text: title }), h('button', { class: 'icon close', type: 'button', 'aria-label': 'Close', onclick: () => close(undefined) }, icon('close'))),
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

// Line icons (24×24, drawn with the current text colour), so the interface does not depend on emoji fonts.
const ICONS = {
  smile: ['circle:12,12,9', 'M8.5 14.5a4.5 4.5 0 0 0 7 0', 'circle:9,9.5,0.6', 'circle:15,9.5,0.6'],
  image: ['M4 5h16v14H4z', 'M4 16l5-5 4 4 3-3 4 4', 'circle:15.5,8.5,1.5'],
  clip: ['M20 11.5l-8 8a5 5 0 0 1-7-7l8.5-8.5a3.3 3.3 0 0 1 4.7 4.7l-8.3 8.3a1.7 1.7 0 0 1-2.4-2.4l7.6-7.6'],
  mic: ['M9 6a3 3 0 0 1 6 0v5a3 3 0 0 1-6 0z', 'M5.5 11a6.5 6.5 0 0 0 13 0', 'M12 17.5V21', 'M9 21h6'],
  pin: ['M9 3h6l-1 6 3.5 3.5h-11L10 9z', 'M12 12.5V21'],
  users: ['circle:9,8,3.5', 'M2.5 20a6.5 6.5 0 0 1 13 0', 'M16 4.6a3.5 3.5 0 0 1 0 6.8', 'M18 14a6.5 6.5 0 0 1 3.5 6'],
  more: ['circle:5,12,1.3', 'circle:12,12,1.3', 'circle:19,12,1.3'],
  back: ['M15 5l-7 7 7 7'],
  close: ['M6 6l12 12', 'M18 6L6 18'],
  plus: ['M12 5v14', 'M5 12h14'],
  file: ['M6 2.5h8l5 5v14H6z', 'M14 2.5v5h5'],
  send: ['M4 12l16-8-6 16-2.5-6.5z', 'M11.5 13.5L20 4'],
};

/** An icon by name (see ICONS); `filled` fills its shapes too. */
export function icon(name, { size = 20, filled = false, label = '' } = {}) {
  const NS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', String(size));
  svg.setAttribute('height', String(size));
  svg.setAttribute('class', `icon-svg${filled ? ' filled' : ''}`);
  if (label) { svg.setAttribute('role', 'img'); svg.setAttribute('aria-label', label); } else svg.setAttribute('aria-hidden', 'true');
  for (const shape of ICONS[name] || []) {
    let el;
    if (shape.startsWith('circle:')) {
      const [cx, cy, r] = shape.slice(7).split(',');
      el = document.createElementNS(NS, 'circle');
      el.setAttribute('cx', cx); el.setAttribute('cy', cy); el.setAttribute('r', r);
      if (Number(r) < 2) el.setAttribute('class', 'dot');
    } else {
      el = document.createElementNS(NS, 'path');
      el.setAttribute('d', shape);
    }
    svg.append(el);
  }
  return svg;
}
