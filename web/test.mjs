// Drives the demo page in Debian's headless Chromium (WebGPU on its SwiftShader adapter where
// there is no GPU) and compares its results with the native CLI's. Run through web/test.sh,
// which builds the page and converts the styles first.
//   node test.mjs WGSTYLE_BIN PHOTO STYLE.safetensors...
// Prints one line per style, `browser: max diff N/255 on ADAPTER (M ms)`, and exits non-zero
// when a difference exceeds 2/255, an error message is missing, or anything else fails.
// WGSTYLE_WEB_BENCH=1 also times 256² and 512² in the page against the native CLI (minutes on
// SwiftShader: raise WGSTYLE_WEB_TIMEOUT_S, default 180 s per step).
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const web = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(web, 'out');
const [bin, photoSrc, ...styles] = process.argv.slice(2);
const MAX_DIFF = 2;
const TIMEOUT = 1000 * Number(process.env.WGSTYLE_WEB_TIMEOUT_S || 180);

// A static server for web/ on 127.0.0.1, with the MIME types the page needs (`.wasm` must be
// application/wasm for streaming compilation).
const MIME = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.wasm': 'application/wasm', '.json': 'application/json', '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};
function serve() {
  const server = http.createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
    const file = path.resolve(web, rel);
    if (!file.startsWith(web + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': MIME[path.extname(file)] || 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

function launch() {
  // A fresh profile and no background traffic: the machine has no network beyond loopback.
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wgstyle-chromium-'));
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1100, height: 800 },
    args: ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-gpu-watchdog', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

async function openPage(ctx, base, initScript) {
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  page.on('console', (m) => {
    if (['error', 'warning'].includes(m.type())) console.error(`page console: ${m.text()}`);
  });
  page.on('pageerror', (e) => console.error(`page error: ${e.message}`));
  if (initScript) await page.addInitScript(initScript);
  await page.goto(base);
  return page;
}

// Waits until the status line is in one of `states` and returns its text.
async function settled(page, states) {
  await page.waitForFunction((s) => s.includes(document.getElementById('status').dataset.state), states);
  return page.$eval('#status', (e) => ({ state: e.dataset.state, text: e.textContent }));
}

async function expectReady(page, what) {
  const s = await settled(page, ['idle', 'error']);
  if (s.state !== 'idle') throw new Error(`${what}: ${s.text}`);
}

async function expectError(page, what, pattern) {
  const s = await settled(page, ['error']);
  if (!pattern.test(s.text)) throw new Error(`${what}: expected a message matching ${pattern}, got "${s.text}"`);
  console.log(`message ok (${what}): ${s.text}`);
}

// A PNG of `w × h` drawn from an image file, made by the browser (so both sides read one file).
async function makePhoto(page, src, w, h, dest) {
  const b64 = await page.evaluate(async ([data, w, h]) => {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes]));
    const c = new OffscreenCanvas(w, h);
    const g = c.getContext('2d');
    g.imageSmoothingQuality = 'high';
    g.drawImage(bmp, 0, 0, w, h);
    const png = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (const v of png) s += String.fromCharCode(v);
    return btoa(s);
  }, [fs.readFileSync(src).toString('base64'), w, h]);
  fs.writeFileSync(dest, Buffer.from(b64, 'base64'));
}

// Chooses a photo and a style in the page, stylizes, and returns the time it showed.
async function stylizeIn(page, photo, style) {
  if (photo) {
    await page.setInputFiles('#photo', photo);
    await expectReady(page, `photo ${photo}`);
  }
  if (style) {
    await page.selectOption('#style', path.basename(style));
    await page.waitForFunction(() => document.getElementById('status').textContent.startsWith('Ready'));
  }
  await page.click('#go');
  const s = await settled(page, ['done', 'error']);
  if (s.state !== 'done') throw new Error(`stylizing ${photo}: ${s.text}`);
  return page.$eval('#result-info', (e) => ({ ms: Number(e.dataset.ms), adapter: e.dataset.adapter }));
}

// Largest channel difference between the page's result and a PNG the native CLI wrote.
function maxDiff(page, nativePng) {
  return page.evaluate(async (url) => {
    const bmp = await createImageBitmap(await (await fetch(url)).blob(),
      { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.drawImage(bmp, 0, 0);
    const want = g.getImageData(0, 0, bmp.width, bmp.height).data;
    const canvas = document.getElementById('output-canvas');
    if (canvas.width !== bmp.width || canvas.height !== bmp.height) {
      return { error: `page result ${canvas.width}x${canvas.height}, native ${bmp.width}x${bmp.height}` };
    }
    const got = canvas.getContext('2d').getImageData(0, 0, bmp.width, bmp.height).data;
    let max = 0;
    for (let i = 0; i < got.length; i++) {
      if (i % 4 !== 3) max = Math.max(max, Math.abs(got[i] - want[i]));
    }
    return { max };
  }, nativePng);
}

function native(args) {
  return execFileSync(bin, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

async function main() {
  fs.mkdirSync(out, { recursive: true });
  const server = await serve();
  const variant = process.env.WGSTYLE_WEB_VARIANT;
  const base = `http://127.0.0.1:${server.address().port}/index.html${variant ? `?variant=${encodeURIComponent(variant)}` : ''}`;
  const ctx = await launch();
  let failed = false;
  try {
    const page = await openPage(ctx, base);
    await expectReady(page, 'page start');
    const photo = path.join(out, 'photo-96x64.png');
    await makePhoto(page, photoSrc, 96, 64, photo);
    let loaded = null; // the page keeps its photo: choosing the same file again fires no change
    let chosen = null; // and its style
    for (const style of styles) {
      const name = path.basename(style, '.safetensors');
      const nativePng = path.join(out, `native-${name}.png`);
      native(['--style', style, '-o', nativePng, '--force', '--quiet', photo]);
      const { ms, adapter } = await stylizeIn(page, loaded === photo ? null : photo, style);
      loaded = photo;
      chosen = style;
      const d = await maxDiff(page, `out/${path.basename(nativePng)}`);
      if (d.error) throw new Error(`${name}: ${d.error}`);
      console.log(`browser: max diff ${d.max}/255 on ${adapter} (${ms} ms) [${name}]`);
      await page.screenshot({ path: path.join(out, `page-${name}.png`), fullPage: true });
      if (d.max > MAX_DIFF) failed = true;
    }

    // The three messages: a corrupt image, a wrong style file, a browser without WebGPU.
    await page.setInputFiles('#photo', { name: 'broken.jpg', mimeType: 'image/jpeg', buffer: Buffer.from('this is not a JPEG') });
    await expectError(page, 'corrupt image', /Could not read "broken\.jpg" as an image/);
    await page.setInputFiles('#style-file', { name: 'wrong.safetensors', mimeType: 'application/octet-stream', buffer: fs.readFileSync(photo) });
    await expectError(page, 'wrong style file', /Not a usable style file: .*safetensors/);
    const noGpu = await openPage(ctx, base, () => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    await expectError(noGpu, 'no WebGPU', /no WebGPU/);

    if (process.env.WGSTYLE_WEB_BENCH) {
      for (const side of [256, 512]) {
        const p = path.join(out, `photo-${side}.png`);
        await makePhoto(page, photoSrc, side, side, p);
        await page.fill('#max-size', '2048');
        // The style's pipelines were compiled by its 96x64 run above. Choosing the style that
        // is already chosen fires no change: choose it only when another one is.
        const { ms, adapter } = await stylizeIn(page, p, chosen === styles[0] ? null : styles[0]);
        chosen = styles[0];
        console.log(`bench: ${side}x${side} ${path.basename(styles[0])} page ${ms} ms on ${adapter}`);
        process.stdout.write(native(['--style', styles[0], '-o', path.join(out, `native-${side}.png`), '--force', '--quiet', '--timing', p]));
      }
    }
  } catch (e) {
    console.error(`browser test failed: ${e.message}`);
    failed = true;
  } finally {
    await ctx.close();
    server.close();
  }
  process.exit(failed ? 1 : 0);
}

main();
