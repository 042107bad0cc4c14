// Pictures, files and voice notes: uploads through OpenIM's object API (the same flow as OpenIM's SDKs), message
// contents in the shape OpenIM's clients read (sdk-core's PictureElem, FileElem, SoundElem), and recording.
//
// Upload: `/object/part_limit` gives the part size; each part's MD5 and the MD5 of those hashes joined by ","
// name the file; `/object/initiate_multipart_upload` answers with signed part URLs (or with the URL at once
// when the server already has the same file); each part is PUT to its URL; `/object/complete_multipart_upload`
// answers with the file's URL.

import { randomId } from './api.js';
import { md5Hex } from './md5.js';

/** Longest voice note, in seconds. */
export const MAX_VOICE_SECONDS = 120;

function partSizeFor(size, limit) {
  const { minPartSize, maxPartSize, maxNumSize } = limit;
  if (size > maxPartSize * maxNumSize) throw new Error(`The file is too large (the limit is ${Math.floor(maxPartSize * maxNumSize / 1048576)} MB).`);
  if (size <= minPartSize * maxNumSize) return minPartSize;
  return Math.ceil(size / maxNumSize);
}

function buildPartRequest(sign, part) {
  const url = new URL(part.url || sign.url, location.href);
  for (const kv of [...(sign.query || []), ...(part.query || [])]) {
    url.searchParams.delete(kv.key);
    for (const v of kv.values || []) url.searchParams.append(kv.key, v);
  }
  const headers = new Headers();
  for (const kv of [...(sign.header || []), ...(part.header || [])]) {
    headers.delete(kv.key);
    for (const v of kv.values || []) headers.append(kv.key, v);
  }
  return { url: url.href, headers };
}

/** A file name safe to put in an object name. */
function safeName(name) {
  const cleaned = String(name || 'file').replace(/[^\w.\-]+/g, '_').replace(/^\.+/, '').slice(-80);
  return cleaned || 'file';
}

/**
 * Uploads `blob` for `userID`; `cause` is OpenIM's hint ('msg-picture', 'msg-file', 'msg-voice').
 * `onProgress(fraction)` is called as parts finish. Resolves to `{url, name, uuid}`.
 */
export async function upload(api, userID, blob, { fileName = 'file', cause = '', onProgress = () => {} } = {}) {
  if (!blob.size) throw new Error('The file is empty.');
  const limit = await api.post('/object/part_limit', {});
  const partSize = partSizeFor(blob.size, limit);
  const count = Math.ceil(blob.size / partSize);
  const partMd5s = [];
  for (let i = 0; i < count; i++) {
    partMd5s.push(md5Hex(await blob.slice(i * partSize, Math.min(blob.size, (i + 1) * partSize)).arrayBuffer()));
  }
  const hash = md5Hex(new TextEncoder().encode(partMd5s.join(',')));
  const uuid = randomId(16);
  const name = `${userID}/${uuid}/${safeName(fileName)}`;
  const contentType = blob.type || 'application/octet-stream';
  const init = await api.post('/object/initiate_multipart_upload', {
    hash, size: blob.size, partSize, maxParts: Math.min(20, count), cause, name, contentType, urlPrefix: '',
  });
  if (init.url) {
    onProgress(1);
    return { url: init.url, name, uuid };
  }
  const uploadInfo = init.upload;
  let sign = uploadInfo.sign;
  for (let i = 0; i < count; i++) {
    const partNumber = i + 1;
    let part = (sign.parts || []).find(p => p.partNumber === partNumber);
    if (!part) {
      const numbers = [];
      for (let n = partNumber; n <= count && numbers.length < 20; n++) numbers.push(n);
      sign = await api.post('/object/auth_sign', { uploadID: uploadInfo.uploadID, partNumbers: numbers });
      part = (sign.parts || []).find(p => p.partNumber === partNumber);
      if (!part) throw new Error(`The server did not sign part ${partNumber}.`);
    }
    const { url, headers } = buildPartRequest(sign, part);
    const body = blob.slice(i * partSize, Math.min(blob.size, (i + 1) * partSize));
    const res = await fetch(url, { method: 'PUT', headers, body });
    if (!res.ok) throw new Error(`Upload of part ${partNumber} failed: HTTP ${res.status} ${await res.text().catch(() => '')}`.trim());
    onProgress(partNumber / count);
  }
  const done = await api.post('/object/complete_multipart_upload', {
    uploadID: uploadInfo.uploadID, parts: partMd5s, name, contentType, cause, urlPrefix: '',
  });
  return { url: done.url, name, uuid };
}

/** Width and height of an image file (0 × 0 when the browser cannot read it). */
export async function imageSize(blob) {
  try {
    const bitmap = await createImageBitmap(blob);
    const size = { width: bitmap.width, height: bitmap.height };
    bitmap.close?.();
    return size;
  } catch {
    return { width: 0, height: 0 };
  }
}

/** sdk-core's PictureElem. The same URL serves as big picture and snapshot: the server keeps one file. */
export function pictureContent({ url, name, uuid }, file, { width, height }) {
  const info = { uuid, type: file.type || 'image/*', size: file.size, width, height, url };
  return { sourcePath: name, sourcePicture: info, bigPicture: info, snapshotPicture: info };
}

/** sdk-core's FileElem. */
export function fileContent({ url, name, uuid }, file) {
  return { filePath: name, uuid, sourceUrl: url, fileName: file.name || 'file', fileSize: file.size, fileType: file.type || '' };
}

/** sdk-core's SoundElem (duration in seconds). */
export function voiceContent({ url, name, uuid }, blob, seconds) {
  return { uuid, soundPath: name, sourceUrl: url, dataSize: blob.size, duration: Math.max(1, Math.round(seconds)), soundType: blob.type || 'audio/webm' };
}

/** Records from the microphone until `stop()`; resolves `{blob, seconds}` (or null when cancelled). */
export async function startRecording() {
  if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
    throw new Error('This browser cannot record audio (a secure https page is needed).');
  }
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const type = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm'].find(t => MediaRecorder.isTypeSupported(t)) || '';
  const recorder = new MediaRecorder(stream, type ? { mimeType: type } : {});
  const chunks = [];
  const started = performance.now();
  let cancelled = false;
  recorder.ondataavailable = e => { if (e.data.size) chunks.push(e.data); };
  const finished = new Promise(resolve => {
    recorder.onstop = () => {
      stream.getTracks().forEach(t => t.stop());
      if (cancelled || !chunks.length) return resolve(null);
      const blob = new Blob(chunks, { type: (recorder.mimeType || 'audio/webm').split(';')[0] });
      resolve({ blob, seconds: (performance.now() - started) / 1000 });
    };
  });
  recorder.start(250);
  const limit = setTimeout(() => recorder.state !== 'inactive' && recorder.stop(), MAX_VOICE_SECONDS * 1000);
  return {
    started,
    stop() { clearTimeout(limit); if (recorder.state !== 'inactive') recorder.stop(); return finished; },
    cancel() { cancelled = true; clearTimeout(limit); if (recorder.state !== 'inactive') recorder.stop(); return finished; },
  };
}
