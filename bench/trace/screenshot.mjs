// Draws docs/tracing-handshake.png (issue #18 item 4): a trace `uni run --trace` wrote, opened
// in the Performance panel of Chromium's own DevTools (the trace viewer this Chromium ships:
// its chrome://tracing is gone), driven headless by puppeteer-core. Run by
// bench/trace/screenshot.sh, which makes the trace; not part of the tests or CI.
//
//   node screenshot.mjs TRACE.json OUT.png
//
// SHOT_DEBUG=1 also writes OUT.png.full.png (the whole DevTools window) and prints DevTools'
// console.
//
// What is shown is a window of the trace, not all of it: from 1 ms before the connection's TCP
// accept to 1 ms after its HTTP request ends, every track with an event in it. Begin/end
// pairs (`B`/`E`) become complete events (`X`, with their duration): the same spans in the
// trace-event format; with `B`/`E`, DevTools reported "Begin/End events mismatch" between spans
// that overlap on different tracks (the TLS handshake and a task's poll) and dropped them.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

// puppeteer-core from the directory screenshot.sh installed it in (PUPPETEER_DIR), or from here.
const require = createRequire(path.join(process.env.PUPPETEER_DIR ?? process.cwd(), 'package.json'));
const puppeteer = require('puppeteer-core');

const [trace, out] = process.argv.slice(2);
if (!trace || !out) {
  console.error('usage: node screenshot.mjs TRACE.json OUT.png');
  process.exit(2);
}
const events = JSON.parse(fs.readFileSync(trace, 'utf8')).traceEvents;

// The connection: the track of the first TLS handshake, and its TCP accept and HTTP request.
const hs = events.find((e) => e.name === 'tls handshake' && e.ph === 'B');
if (!hs) throw new Error(`${trace}: no TLS handshake in the trace`);
const conn = events.filter((e) => e.tid === hs.tid);
const accept = conn.find((e) => e.name === 'tcp accept');
const reqEnd = conn.find((e) => e.name === 'http request' && e.ph === 'E');
if (!accept || !reqEnd) throw new Error(`${trace}: the connection has no TCP accept or no HTTP request end`);
const from = accept.ts - 1000;
const to = reqEnd.ts + 1000;

// B/E pairs to X events, per track (they nest per track).
const spans = [];
const open = new Map();
for (const e of events) {
  if (e.ph === 'B') {
    if (!open.has(e.tid)) open.set(e.tid, []);
    open.get(e.tid).push(e);
  } else if (e.ph === 'E') {
    const b = open.get(e.tid)?.pop();
    if (b) spans.push({ ...b, ph: 'X', dur: e.ts - b.ts, args: { ...b.args, ...e.args } });
  }
}
const inWindow = (e) => e.ts <= to && e.ts + (e.dur ?? 0) >= from;
const shown = [
  ...spans.filter(inWindow),
  ...events.filter((e) => ['i', 's', 't', 'f'].includes(e.ph) && inWindow(e)),
];
const tids = new Set(shown.map((e) => e.tid));
const meta = events.filter((e) => e.ph === 'M' && (e.name === 'process_name' || tids.has(e.tid)));
const view = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'uni-shot-')), 'view.json');
fs.writeFileSync(view, JSON.stringify({ traceEvents: [...meta, ...shown] }));
console.error(`${shown.length} events on ${tids.size} tracks, ${((to - from) / 1000).toFixed(1)} ms`);

const port = 9000 + Math.floor(Math.random() * 1000);

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', `--remote-debugging-port=${port}`, '--remote-debugging-address=127.0.0.1'],
});
try {
  const page = await browser.newPage();
  page.on('console', (m) => process.env.SHOT_DEBUG && console.error('devtools:', m.text().slice(0, 200)));
  const W = 1400;
  await page.setViewport({ width: W, height: 800 });
  // The DevTools front end the browser serves itself, on loopback.
  await page.goto(`http://127.0.0.1:${port}/devtools/devtools_app.html?panel=timeline`);
  const input = await page.waitForSelector('pierce/input[type=file]', { timeout: 30000 });
  await input.uploadFile(view);
  // Loaded: the sidebar's button appears. Hide the sidebar and the keyboard-shortcuts card.
  const hide = await page.waitForSelector('pierce/button[aria-label="Hide sidebar"]', { timeout: 60000 });
  await new Promise((r) => setTimeout(r, 2000));
  await hide.evaluate((b) => b.click());
  await page.evaluate(() => {
    const walk = (root) => {
      for (const b of root.querySelectorAll('button[aria-label="Close"]')) {
        if (b.getBoundingClientRect().width > 0) b.click();
      }
      for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
    };
    walk(document);
  });
  await new Promise((r) => setTimeout(r, 1000));
  // Open the process's group, then each track in it, the lowest first (opening one moves only
  // those below it). The tracks are drawn on a canvas: these are the rows' places.
  await page.mouse.click(10, 129);
  await new Promise((r) => setTimeout(r, 500));
  for (let i = tids.size - 1; i >= 0; i--) {
    await page.mouse.click(20, 146 + 21 * i);
    await new Promise((r) => setTimeout(r, 300));
  }
  // All of it: DevTools may open on a part. Zoom out (shift+S) until the whole trace shows.
  await page.mouse.click(W / 2, 560);
  await page.keyboard.down('Shift');
  for (let i = 0; i < 20; i++) {
    await page.keyboard.press('S');
    await new Promise((r) => setTimeout(r, 50));
  }
  await page.keyboard.up('Shift');
  await new Promise((r) => setTimeout(r, 500));
  await page.mouse.move(W - 5, 780); // no tooltip
  await new Promise((r) => setTimeout(r, 1000));
  if (process.env.SHOT_DEBUG) await page.screenshot({ path: out + '.full.png' });
  // The tracks only: from the time ruler to the lowest drawn bar or label of the flame
  // chart's canvas (the grid lines are lighter than any of them).
  const bottom = await page.evaluate(() => {
    const canvases = [];
    const walk = (root) => {
      for (const c of root.querySelectorAll('canvas')) canvases.push(c);
      for (const el of root.querySelectorAll('*')) if (el.shadowRoot) walk(el.shadowRoot);
    };
    walk(document);
    const c = canvases
      .filter((c) => c.getBoundingClientRect().y > 100)
      .sort((a, b) => b.width * b.height - a.width * a.height)[0];
    const r = c.getBoundingClientRect();
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let last = 0;
    for (let y = 0; y < c.height; y++) {
      for (let x = 0; x < c.width; x++) {
        const i = 4 * (y * c.width + x);
        if (d[i] + d[i + 1] + d[i + 2] < 650) {
          last = y;
          break;
        }
      }
    }
    return r.y + (last * r.height) / c.height;
  });
  await page.screenshot({
    path: out,
    clip: { x: 0, y: 104, width: W, height: Math.min(bottom + 8, 600) - 104 },
    captureBeyondViewport: false,
  });
} finally {
  await browser.close();
}
