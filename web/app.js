// wgstyle's demo page: a photo and a style in, the stylized photo out, on the browser's WebGPU.
// Plain ES module, no framework: pkg/ is wasm-bindgen's output (web/build.sh).
import init, { WebContext } from './pkg/wgstyle_web.js';

const $ = (id) => document.getElementById(id);
const status = $('status');
const go = $('go');

let ctx = null;        // WebContext (the device), once WebGPU is up
let stylizer = null;   // WebStylizer of the chosen style
let styleName = '';
let photo = null;      // {width, height, rgba} of the chosen photo
let adapter = '';      // what the browser tells of its adapter

function say(text, state = 'idle') {
  status.textContent = text;
  status.dataset.state = state;
}

function fail(text) {
  say(text, 'error');
  go.disabled = !(ctx && stylizer && photo);
}

const message = (e) => (e && e.message) || String(e);

function ready() {
  go.disabled = !(ctx && stylizer && photo);
  if (!ctx) return;
  if (!photo) say('Choose or drop a photo.');
  else if (!stylizer) say('Choose a style.');
  else say(`Ready: ${photo.width}×${photo.height} photo, style ${styleName}.`);
}

// The photo: decoded by the browser, pixels read unchanged (no colour conversion).
async function loadPhoto(file) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (e) {
    photo = null;
    fail(`Could not read "${file.name}" as an image: the file is corrupt or not in a format this browser decodes.`);
    return;
  }
  const canvas = $('input-canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const g = canvas.getContext('2d', { willReadFrequently: true });
  g.drawImage(bitmap, 0, 0);
  const data = g.getImageData(0, 0, bitmap.width, bitmap.height).data;
  photo = { width: bitmap.width, height: bitmap.height, rgba: new Uint8Array(data.buffer) };
  bitmap.close();
  ready();
}

// A style from bytes: refused with the library's reason when it is not a wgstyle network.
function loadStyle(bytes, name) {
  stylizer = null;
  try {
    stylizer = ctx.loadStyle(new Uint8Array(bytes), name);
    styleName = name;
    ready();
  } catch (e) {
    fail(`Not a usable style file: ${message(e)}`);
  }
}

async function loadStyleList() {
  const select = $('style');
  let list = [];
  try {
    const r = await fetch('styles/index.json');
    if (r.ok) list = await r.json();
  } catch (e) { /* no list: files only */ }
  select.innerHTML = '';
  const none = document.createElement('option');
  none.value = '';
  none.textContent = list.length ? '(choose a style)' : '(none here: take a file)';
  select.append(none);
  for (const s of list) {
    const o = document.createElement('option');
    o.value = s.file;
    o.textContent = s.name;
    select.append(o);
  }
}

async function stylize() {
  go.disabled = true;
  const max = Number($('max-size').value);
  say('Stylizing…', 'busy');
  const t0 = performance.now();
  let out;
  try {
    out = await stylizer.stylize(photo.rgba, photo.width, photo.height, 4, max);
  } catch (e) {
    fail(`Stylizing failed: ${message(e)}`);
    return;
  }
  const ms = Math.round(performance.now() - t0);
  const canvas = $('output-canvas');
  canvas.width = out.width;
  canvas.height = out.height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(out.rgba), out.width, out.height), 0, 0);
  const info = $('result-info');
  info.textContent = `${styleName}, ${out.width}×${out.height}, ${ms} ms on ${adapter}`;
  info.dataset.ms = ms;
  info.dataset.adapter = adapter;
  canvas.toBlob((blob) => {
    const a = $('download');
    if (a.href) URL.revokeObjectURL(a.href);
    a.href = URL.createObjectURL(blob);
    a.download = `stylized-${styleName.replace(/\.safetensors$/, '')}.png`;
    a.hidden = false;
  }, 'image/png');
  say(`Done in ${ms} ms on ${adapter}.`, 'done');
  go.disabled = false;
}

function wire() {
  $('photo').addEventListener('change', (e) => e.target.files[0] && loadPhoto(e.target.files[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer.files[0];
    if (f) loadPhoto(f);
  });
  $('style').addEventListener('change', async (e) => {
    const file = e.target.value;
    if (!file) return;
    say(`Loading style ${file}…`, 'busy');
    try {
      const r = await fetch(`styles/${file}`);
      if (!r.ok) throw new Error(`HTTP ${r.status}`);
      loadStyle(await r.arrayBuffer(), file);
    } catch (err) {
      fail(`Could not fetch style ${file}: ${message(err)}`);
    }
  });
  $('style-file').addEventListener('change', async (e) => {
    const f = e.target.files[0];
    if (f) loadStyle(await f.arrayBuffer(), f.name);
  });
  const slider = $('max-size');
  slider.addEventListener('input', () => { $('max-size-value').textContent = slider.value; });
  go.addEventListener('click', stylize);
}

// Vendor and architecture (e.g. "google swiftshader"): wgpu passes on only the description,
// which browsers often leave empty.
async function adapterLabel(fallback) {
  try {
    const a = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
    const i = a && a.info;
    const parts = i ? [i.vendor, i.architecture, i.description].filter(Boolean) : [];
    if (parts.length) return parts.join(' ') + (i.isFallbackAdapter ? ' (fallback adapter)' : '');
  } catch (e) { /* keep wgpu's name */ }
  return fallback;
}

async function main() {
  wire();
  if (!navigator.gpu) {
    fail('This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Firefox, or enable WebGPU in its settings.');
    return;
  }
  try {
    await init();
    ctx = await WebContext.create();
    adapter = await adapterLabel(ctx.adapter);
    // ?variant=tiled%2016x16 pins the convolution kernel (for comparisons).
    const variant = new URLSearchParams(location.search).get('variant');
    if (variant) ctx.setConvVariant(variant);
  } catch (e) {
    fail(`WebGPU could not start: ${message(e)}`);
    return;
  }
  await loadStyleList();
  ready();
}

main();
