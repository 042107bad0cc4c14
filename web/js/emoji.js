// The emoji picker: a small grid of common emoji, inserted into the message at the cursor.

import { h } from './ui.js';

export const EMOJI = [
  ['Smileys', '😀 😃 😄 😁 😆 😅 😂 🤣 😊 😇 🙂 🙃 😉 😌 😍 🥰 😘 😗 😙 😚 😋 😛 😝 😜 🤪 🤨 🧐 🤓 😎 🥳 😏 😒 😞 😔 😟 😕 🙁 😣 😖 😫 😩 🥺 😢 😭 😤 😠 😡 🤯 😳 🥵 🥶 😱 😨 😰 😥 😓 🤗 🤔 🤭 🤫 🤥 😶 😐 😑 😬 🙄 😯 😦 😧 😮 😲 🥱 😴 🤤 😪 😵 🤐 🥴 🤢 🤮 🤧 😷 🤒 🤕'],
  ['Gestures', '👍 👎 👌 ✌️ 🤞 🤟 🤘 🤙 👈 👉 👆 👇 ☝️ ✋ 🤚 🖐️ 🖖 👋 👏 🙌 👐 🤲 🤝 🙏 💪 ✍️'],
  ['Hearts', '❤️ 🧡 💛 💚 💙 💜 🖤 🤍 🤎 💔 ❣️ 💕 💞 💓 💗 💖 💘 💝'],
  ['Things', '🎉 🎊 🎂 🎁 🔥 ✨ ⭐ 🌟 💯 ✅ ❌ ❓ ❗ 💡 📎 📌 📷 🎵 🎶 ☕ 🍵 🍺 🍻 🍕 🍔 🍟 🍩 🍪 🍎 🌈 ☀️ 🌙 ⚡ ❄️ 🌧️ 🚀 ⏰ 📅 💬 👀'],
].map(([name, list]) => [name, list.split(' ')]);

/** A picker that calls `onPick(emoji)`; toggled by the caller. */
export function emojiPicker(onPick) {
  return h('div', { class: 'emoji-picker', role: 'dialog', 'aria-label': 'Emoji' },
    EMOJI.map(([name, list]) => [
      h('div', { class: 'emoji-group', text: name }),
      h('div', { class: 'emoji-grid' }, list.map(e => h('button', { type: 'button', class: 'emoji', title: e, onclick: () => onPick(e) }, e))),
    ]));
}

/** Inserts `text` at the cursor of a textarea or input. */
export function insertAtCursor(field, text) {
  const start = field.selectionStart ?? field.value.length;
  const end = field.selectionEnd ?? field.value.length;
  field.value = field.value.slice(0, start) + text + field.value.slice(end);
  field.selectionStart = field.selectionEnd = start + text.length;
  field.dispatchEvent(new Event('input'));
  field.focus();
}
