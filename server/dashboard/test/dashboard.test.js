// The dashboard in headless Chromium (Debian's, driven by playwright-core) against real
// `cobra run` servers spawned here on free ports. Messages are published with the real
// `cobra publish` CLI, which returns once every message is acknowledged (so each wait below is
// for an event, never a fixed sleep). Run by scripts/test-dashboard.sh.
'use strict';
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const http = require('node:http');
const { chromium } = require('playwright-core');

const COBRA = process.env.COBRA_BIN;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS || path.resolve('target/dashboard-screenshots');
const WAIT = 15000;
const SECRET = '0123456789abcdef0123456789abcdef';
const STATS_SECRET = 'fedcba9876543210fedcba9876543210';
const children = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cobra-dashboard-'));

function cleanup() {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const appsYaml = `apps:
  _pubsub:
    roles:
      pubsub: {secret: ${SECRET}, permissions: [publish, subscribe, unsubscribe, read, write, delete]}
  _stats:
    roles:
      stats: {secret: ${STATS_SECRET}, permissions: [publish, subscribe, unsubscribe]}
channel_max_length: 1000
`;
const appsPath = path.join(tmp, 'apps.yaml');
fs.writeFileSync(appsPath, appsYaml);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Spawns `cobra run` on a free port (retrying if another process took it); resolves when it listens. */
async function startServer(extra) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn(COBRA, ['run', '--port', String(port), '--apps-config', appsPath, ...extra], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HOME: tmp, RUST_LOG: 'warn' },
    });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const ok = await new Promise((resolve) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        if (out.includes('listening on')) resolve(true);
      });
      child.once('exit', () => resolve(false));
    });
    if (ok) return { port, child };
    if (!/address already in use|cannot listen/i.test(stderr)) throw new Error(`cobra run failed: ${stderr}`);
  }
  throw new Error('no free port for cobra run');
}

/** Publishes JSON messages with the real CLI; returns once the server acknowledged them all. */
function publish(port, channel, messages) {
  execFileSync(COBRA, ['publish', '--endpoint', `ws://127.0.0.1:${port}`, '--appkey', '_pubsub',
    '--rolename', 'pubsub', '--rolesecret', SECRET, '--channel', channel],
  { input: messages.map((m) => JSON.stringify(m)).join('\n') + '\n', stdio: ['pipe', 'ignore', 'pipe'], timeout: WAIT });
}

function get(url) {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

const step = (name) => console.log(`  - ${name}`);

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** Pixels of the canvas within `tol` of [r, g, b], and the rows they span. */
async function colorPixels(page, selector, rgb, tol = 40) {
  return page.evaluate(({ selector, rgb, tol }) => {
    const c = document.querySelector(selector);
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let count = 0, top = Infinity, bottom = -1;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - rgb[0]) < tol && Math.abs(data[i + 1] - rgb[1]) < tol && Math.abs(data[i + 2] - rgb[2]) < tol) {
        count++;
        const y = Math.floor(i / 4 / c.width);
        if (y < top) top = y;
        if (y > bottom) bottom = y;
      }
    }
    return { count, top, bottom, height: c.height };
  }, { selector, rgb, tol });
}

const BLUE = [47, 123, 245]; // the first series colour (charts.js COLORS[0])

async function login(page, secret, withStats) {
  await page.fill('#appkey', '_pubsub');
  await page.fill('#role', 'pubsub');
  await page.fill('#secret', secret);
  if (withStats) {
    await page.click('#stats-creds summary');
    await page.fill('#stats-secret', STATS_SECRET);
  }
  await page.click('#login-btn');
}

/** The live tail's subscription number each page's last startTail created. */
const tailSeq = new WeakMap();

async function startTail(page, sql, start = 'now', arg = '') {
  tailSeq.set(page, 1 + await page.evaluate(() => window.cobraDashboard.tail.subSeq));
  await page.click('#tabs button[data-view="tail"]');
  await page.fill('#sql', sql);
  await page.selectOption('#start', start);
  await page.fill('#start-arg', arg);
  await page.click('#tail-start');
}

/** Waits until the tail of `channel` is subscribed (the server answered rtm/subscribe/ok). */
const tailing = (page, channel) => page.waitForFunction((c) => document.querySelector('#tail-state').textContent === `tailing ${c}`, channel, { timeout: WAIT });

/** Waits until the tail started last holds `n` events. */
const received = (page, n) => page.waitForFunction(([n, seq]) => {
  const t = window.cobraDashboard.tail;
  return t.subSeq === seq && t.total === n;
}, [n, tailSeq.get(page)], { timeout: WAIT });

/**
 * A measurement, not a test (the machine is noisy): `n` events published as fast as `cobra
 * publish` goes while the page tails them; prints the publish rate, what the page received and
 * its frame gaps (requestAnimationFrame intervals) during the stream.
 */
async function perf(page, port, n) {
  step(`perf: ${n} events as fast as 4 cobra publish processes go`);
  await startTail(page, 'dash_perf');
  await tailing(page, 'dash_perf');
  await page.evaluate(() => {
    window.perfGaps = [];
    let last = performance.now();
    const tick = (now) => { window.perfGaps.push(now - last); last = now; if (!window.perfStop) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
  });
  const body = (i) => JSON.stringify({ id: 'engine_fps_id', session: 'perf', timestamp: 1700000000000 + i, device: { model: 'iPhone', os_name: 'iOS' }, data: { fps: i % 60, i } });
  const PUBLISHERS = 4;
  const inputs = Array.from({ length: PUBLISHERS }, (_, p) => Array.from({ length: n / PUBLISHERS }, (_, i) => body(p + i * PUBLISHERS)).join('\n') + '\n');
  const t0 = Date.now();
  await Promise.all(inputs.map((input) => new Promise((resolve, reject) => {
    const child = spawn(COBRA, ['publish', '--endpoint', `ws://127.0.0.1:${port}`, '--appkey', '_pubsub', '--rolename', 'pubsub', '--rolesecret', SECRET, '--channel', 'dash_perf'], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`cobra publish: ${code}`))));
    child.stdin.end(input);
  })));
  const seconds = (Date.now() - t0) / 1000;
  await page.waitForFunction((n) => window.cobraDashboard.tail.total === n, n, { timeout: 60000 });
  const received = (Date.now() - t0) / 1000;
  const r = await page.evaluate(() => {
    window.perfStop = true;
    const g = window.perfGaps.slice(1).sort((a, b) => a - b);
    const q = (p) => g[Math.min(g.length - 1, Math.floor(p * g.length))];
    return { frames: g.length, p50: q(0.5), p99: q(0.99), max: g[g.length - 1], over100: g.filter((x) => x > 100).length };
  });
  console.log(`    published ${n} in ${seconds.toFixed(2)} s (${Math.round(n / seconds)}/s); page had all after ${received.toFixed(2)} s`);
  console.log(`    frames: ${r.frames}, gap p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, ${r.over100} gaps over 100 ms`);

  // The page alone at 10,000 events/s for 5 s (this machine cannot publish that fast through
  // the CLI): the PDUs as the WebSocket hands them over (100 events each, every 10 ms), through
  // the client's parser, the tail, the field discovery and a live chart.
  const s = await page.evaluate(async () => {
    const d = window.cobraDashboard;
    const sub = 'tail-' + d.tail.subSeq;
    d.charts.selected.add('data.fps');
    const messages = Array.from({ length: 100 }, (_, i) => ({ id: 'engine_fps_id', session: 'perf', timestamp: Date.now() + i, device: { model: 'iPhone' }, data: { fps: i % 60, i } }));
    const pdu = JSON.stringify({ action: 'rtm/subscription/data', id: 1, body: { subscription_id: sub, position: '1-1', messages } });
    const gaps = [];
    let last = performance.now();
    let stop = false;
    const tick = (now) => { gaps.push(now - last); last = now; if (!stop) requestAnimationFrame(tick); };
    requestAnimationFrame(tick);
    const before = d.tail.total;
    let busy = 0;
    const spent = {};
    const wrap = (obj, name, label) => { const f = obj[name].bind(obj); spent[label] = 0; obj[name] = (...a) => { const t = performance.now(); const r = f(...a); spent[label] += performance.now() - t; return r; }; };
    wrap(d.tail, 'render', 'tail');
    wrap(d.charts.line, 'draw', 'line');
    wrap(d.charts.hist, 'draw', 'hist');
    const t0 = performance.now();
    await new Promise((resolve) => {
      const timer = setInterval(() => {
        const due = Math.floor((performance.now() - t0) / 10) + 1; // PDUs due by now: 10,000 events/s
        while (sent < due && sent < 500) { const a = performance.now(); d.client.receive(pdu); busy += performance.now() - a; sent++; }
        if (sent >= 500) { clearInterval(timer); resolve(); }
      }, 10);
      let sent = 0;
    });
    const elapsed = (performance.now() - t0) / 1000;
    stop = true;
    const g = gaps.slice(1).sort((a, b) => a - b);
    const q = (p) => g[Math.min(g.length - 1, Math.floor(p * g.length))];
    return { spent: JSON.stringify(spent), busy, events: d.tail.total - before, elapsed, frames: g.length, p50: q(0.5), p99: q(0.99), max: g[g.length - 1], over100: g.filter((x) => x > 100).length, shownRate: d.tail.rate };
  });
  console.log(`    in-page 10,000/s: ${s.events} events in ${s.elapsed.toFixed(2)} s; frames ${s.frames}, gap p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms, ${s.over100} over 100 ms; rate shown ${Math.round(s.shownRate)} msg/s; ${Math.round(s.busy)} ms spent receiving, rendering ${s.spent}`);
}

async function main() {
  assert.ok(COBRA && fs.existsSync(COBRA), 'COBRA_BIN must name the cobra binary');
  fs.rmSync(SHOTS, { recursive: true, force: true });
  const { port } = await startServer([]);
  const base = `http://127.0.0.1:${port}`;

  step('the page is served with a strict CSP and no inline code');
  const index = await get(`${base}/`);
  assert.equal(index.status, 200);
  const csp = index.headers['content-security-policy'];
  assert.match(csp, /script-src 'self';/);
  assert.match(csp, /style-src 'self';/);
  assert.match(csp, /connect-src 'self' ws:\/\/127\.0\.0\.1:\d+ wss:\/\/127\.0\.0\.1:\d+;/);
  assert.doesNotMatch(index.body, /<script>|<style|\sstyle="|\son[a-z]+="/i, 'no inline script, style or handler');
  let weight = index.body.length;
  for (const m of index.body.matchAll(/(?:src|href)="(\/dashboard\/[^"]+)"/g)) weight += (await get(base + m[1])).body.length;
  assert.ok(weight <= 250 * 1024, `page weight ${weight} B`);
  console.log(`    page weight: ${weight} bytes`);

  const browser = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 860 },
    acceptDownloads: true,
    ignoreHTTPSErrors: true,
  });
  const page = browser.pages()[0] || await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  try {
    await page.goto(`${base}/`);

    step('a wrong secret is refused with a message');
    await login(page, 'not-the-secret', false);
    await page.waitForFunction(() => document.querySelector('#login-error').textContent.includes('Login refused'), null, { timeout: WAIT });
    assert.match(await page.textContent('#login-error'), /does not match the secret/);
    assert.equal(await page.isVisible('#tabs'), false);
    await shot(page, '01-login-refused');
    problems.length = 0; // the refused login's WebSocket close is logged by Chromium as an error

    step('login (the secret is not kept in the form, a cookie or the URL)');
    await login(page, SECRET, true);
    await page.waitForSelector('#tabs', { state: 'visible', timeout: WAIT });
    assert.equal(await page.inputValue('#secret'), '');
    assert.equal((await browser.cookies()).length, 0);
    assert.ok(!page.url().includes(SECRET));
    const stored = await page.evaluate(() => JSON.stringify(sessionStorage) + JSON.stringify(localStorage));
    assert.ok(!stored.includes(SECRET) && !stored.includes(STATS_SECRET), 'secret in web storage');

    step('tail a channel while publishing');
    await startTail(page, 'dash_events');
    await tailing(page, 'dash_events');
    const events = Array.from({ length: 5 }, (_, i) => ({ id: 'engine_test_id', n: i, session: 'sess-a', data: { fps: 30 + i } }));
    publish(port, 'dash_events', events);
    await received(page, 5);
    await page.waitForFunction(() => document.querySelectorAll('#tail-list .vlist-row:not([hidden])').length === 5, null, { timeout: WAIT });
    const rowText = await page.textContent('#tail-list');
    assert.ok(rowText.includes('"n":4'), rowText);

    step('expand an event as pretty JSON');
    await page.click('#tail-list .vlist-row:not([hidden]) >> nth=2');
    const detail = JSON.parse(await page.textContent('#detail-json'));
    assert.deepEqual(detail, events[2]);
    assert.match(await page.textContent('#detail-json'), /\n {2}"id"/);
    assert.equal(await page.isVisible('#detail-session'), true);
    await shot(page, '02-tail');

    step('a StreamSQL filter');
    await startTail(page, 'select n, data.fps from `dash_events` where data.fps < 30');
    await tailing(page, 'dash_events');
    publish(port, 'dash_events', [{ n: 1, data: { fps: 10 } }, { n: 2, data: { fps: 50 } }, { n: 3, data: { fps: 20 } }]);
    await received(page, 2);
    const filtered = await page.evaluate(() => { const t = window.cobraDashboard.tail; return [0, 1].map((s) => t.get(s).m); });
    assert.deepEqual(filtered, [{ n: 1, 'data.fps': 10 }, { n: 3, 'data.fps': 20 }]);

    step('a StreamSQL syntax error is shown with its position');
    await startTail(page, 'select * from `dash_events` where data.fps << 3');
    await page.waitForSelector('#sql-error', { state: 'visible', timeout: WAIT });
    const err = await page.textContent('#sql-error');
    assert.match(err, /offset 44 near `<`/, err);
    assert.match(err, /\n {44}\^ here \(line 1, column 45\)/, err);
    await shot(page, '03-sql-error');

    step('history: from 0-0 and the last N');
    await startTail(page, 'dash_events', 'history');
    await received(page, 8);
    await startTail(page, 'dash_events', 'last', '3');
    await received(page, 8);
    await page.waitForFunction(() => document.querySelector('#buffered').textContent.startsWith('3 buffered'), null, { timeout: WAIT });
    const lastThree = await page.evaluate(() => { const t = window.cobraDashboard.tail; const out = []; for (let s = t.first(); s < t.total; s++) out.push(t.get(s).m.n); return out; });
    assert.deepEqual(lastThree, [1, 2, 3]);

    step('pause keeps buffering and counts what arrived; resume shows it');
    await startTail(page, 'dash_pause');
    await tailing(page, 'dash_pause');
    const pauseMsgs = Array.from({ length: 10 }, (_, i) => ({ k: i }));
    publish(port, 'dash_pause', pauseMsgs.slice(0, 3));
    await received(page, 3);
    await page.click('#pause');
    publish(port, 'dash_pause', pauseMsgs.slice(3));
    await received(page, 10);
    await page.waitForFunction(() => document.querySelector('#missed').textContent === 'paused: 7 arrived since', null, { timeout: WAIT });
    assert.equal(await page.locator('#tail-list .vlist-row:not([hidden])').count(), 3, 'the paused view stays still');
    await shot(page, '04-paused');
    await page.click('#pause');
    await page.waitForFunction(() => document.querySelectorAll('#tail-list .vlist-row:not([hidden])').length === 10, null, { timeout: WAIT });
    assert.equal(await page.textContent('#missed'), '');
    assert.match(await page.textContent('#rate'), /^\d+ msg\/s$/);

    step('export what is buffered as JSONL');
    const [download] = await Promise.all([page.waitForEvent('download', { timeout: WAIT }), page.click('#export')]);
    const file = path.join(tmp, 'export.jsonl');
    await download.saveAs(file);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines, pauseMsgs);
    assert.match(download.suggestedFilename(), /^cobra-dash_pause-.*\.jsonl$/);

    step('a chart and a histogram drawn from published values');
    await startTail(page, 'dash_fps');
    await tailing(page, 'dash_fps');
    publish(port, 'dash_fps', [{ data: { fps: 30, mem: 1000 } }]);
    await received(page, 1);
    await page.click('#tabs button[data-view="charts"]');
    await page.waitForSelector('#fields input[data-field="data.fps"]', { timeout: WAIT });
    const before = await colorPixels(page, '#line-chart', BLUE);
    await page.check('#fields input[data-field="data.fps"]');
    const fps = Array.from({ length: 40 }, (_, i) => ({ timestamp: 1700000000000 + i * 250, data: { fps: i % 2 ? 60 : 5, mem: 1000 + i } }));
    publish(port, 'dash_fps', fps);
    await received(page, 41);
    await page.waitForFunction(() => window.cobraDashboard.charts.line.series.get('data.fps')?.len === 40, null, { timeout: WAIT });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const line = await colorPixels(page, '#line-chart', BLUE);
    assert.equal(before.count, 0, 'nothing drawn before a field is picked');
    // 5 and 60 alternate: the line spans nearly the whole plot height (90% of the y range is
    // the data, the axes' padding is the rest).
    assert.ok(line.count > 500, `line pixels: ${JSON.stringify(line)}`);
    assert.ok(line.bottom - line.top > line.height * 0.6, `line span: ${JSON.stringify(line)}`);
    const hist = await colorPixels(page, '#histogram', BLUE);
    assert.ok(hist.count > 500, `histogram pixels: ${JSON.stringify(hist)}`);
    await shot(page, '05-charts');

    step('the channels view, from the server stats');
    await page.click('#tabs button[data-view="channels"]');
    await page.waitForSelector('#channels-table tr[data-channel="dash_fps"]', { timeout: WAIT });
    await page.waitForFunction(() => {
      const r = document.querySelector('#channels-table tr[data-channel="dash_fps"]');
      return r && r.cells[2].textContent === '1' && r.cells[4].textContent === '41';
    }, null, { timeout: WAIT });
    assert.match(await page.textContent('#nodes-table tbody'), /1\/1 nodes up/);
    await shot(page, '06-channels');
    await page.click('#channels-table tr[data-channel="dash_events"]');
    await page.waitForFunction(() => document.querySelector('#tail-state').textContent === 'tailing dash_events', null, { timeout: WAIT });

    step('aggregations: the FPS-by-device GROUP BY run from the page renders the real rows');
    const tableCells = (sel) => page.evaluate((sel) => [...document.querySelectorAll(`${sel} tr`)]
      .map((r) => [...r.cells].map((c) => c.textContent)), sel);
    /** Waits until the table's cells (text) are exactly `want`; fails with what it shows. */
    const cellsAre = async (sel, want, cols = Infinity) => {
      try {
        await page.waitForFunction(({ sel, want, cols }) => JSON.stringify([...document.querySelectorAll(`${sel} tr`)]
          .map((r) => [...r.cells].slice(0, cols).map((c) => c.textContent))) === JSON.stringify(want), { sel, want, cols }, { timeout: WAIT });
      } catch (e) {
        assert.deepEqual((await tableCells(sel)).map((r) => r.slice(0, cols)), want);
        throw e;
      }
    };
    await page.click('#tabs button[data-view="aggregations"]');
    await page.fill('#agg-sql', 'SELECT device.model, COUNT(*) FROM `dash_agg` GROUP BY device.model WINDOW TUMBLING (10 SECONDS) EMIT BOGUS');
    await page.click('#agg-run');
    await page.waitForSelector('#agg-error:not([hidden])', { timeout: WAIT });
    assert.match(await page.textContent('#agg-error'), /\S/);
    await page.fill('#agg-sql', "SELECT device.model, COUNT(*), AVG(data.fps) AS 'Average FPS', HISTOGRAM(data.fps, 60, 30, 15, 10, 8) AS 'Frame Rate' "
      + 'FROM `dash_agg` GROUP BY device.model WINDOW TUMBLING (10 SECONDS) EMIT CHANGES EVERY 1 SECOND');
    await page.selectOption('#agg-start', 'now');
    await page.click('#agg-run');
    await page.waitForFunction(() => document.querySelector('#agg-state').textContent === 'running on dash_agg', null, { timeout: WAIT });
    assert.equal(await page.isHidden('#agg-error'), true);
    // Event time: explicit timestamps, all in the window [1700000000000, 1700000010000) = 22:13:20-22:13:30 UTC.
    const aggT0 = 1700000000000;
    const fpsEvent = (i, model, fps) => ({ id: 'engine_fps_id', timestamp: aggT0 + i * 100, device: { model, os_name: 'iOS' }, data: { fps } });
    publish(port, 'dash_agg', [
      [70, 'iPhone'], [30, 'Pixel 7'], [60, 'iPhone'], [25, 'Pixel 7'], [60, 'iPhone'],
      [9, 'Pixel 7'], [45, 'iPhone'], [8, 'Pixel 7'], [30, 'iPhone'], [12, 'iPhone'],
    ].map(([fps, model], i) => fpsEvent(i, model, fps)));
    // iPhone: 70 | 60 60 45 | 30 | 12 -> avg 277/6; Pixel 7: 30 25 | 9 | 8 -> avg 18.
    await cellsAre('.agg-histogram', [
      ['Frame Rate', 'iPhone', 'Pixel 7'],
      ['Samples', '6', '4'],
      ['> 60', '16.7 %', '0.0 %'],
      ['60', '50.0 %', '0.0 %'],
      ['30', '16.7 %', '50.0 %'],
      ['15', '16.7 %', '0.0 %'],
      ['10', '0.0 %', '25.0 %'],
      ['<= 8', '0.0 %', '25.0 %'],
      ['count', '6', '4'],
      ['Average FPS', '46.17', '18'],
    ]);
    assert.match(await page.textContent('.agg-block h3'), /GROUP BY device\.model: 2 groups, window 22:13:20 – 22:13:30/);
    await shot(page, '07-aggregations');

    step('aggregations: a GROUP BY without HISTOGRAM is a plain table, recomputed from history');
    await page.fill('#agg-sql', 'SELECT device.model, COUNT(*) AS n, MAX(data.fps) FROM `dash_agg` GROUP BY device.model WINDOW TUMBLING (10 SECONDS) EMIT CHANGES EVERY 1 SECOND');
    await page.selectOption('#agg-start', 'history');
    await page.click('#agg-run');
    // The last column (final) turns true when the window closes on the arrival clock: not compared.
    await cellsAre('.agg-table', [
      ['device.model', 'window', 'n', 'max(data.fps)', 'skipped'],
      ['iPhone', '22:13:20 – 22:13:30', '6', '70', '0'],
      ['Pixel 7', '22:13:20 – 22:13:30', '4', '30', '0'],
    ], 5);
    assert.equal(await page.locator('.agg-histogram').count(), 0, 'no FPS layout without a HISTOGRAM');
    await shot(page, '07b-aggregations-plain');
    await page.click('#agg-stop');
    await page.waitForFunction(() => document.querySelector('#agg-state').textContent === 'stopped', null, { timeout: WAIT });

    step('the session view: history and live, fps and memory charted, other events as marks');
    const t0 = 1700000000000;
    const ev = (session, i, id, data) => ({ id, session, timestamp: t0 + i * 1000, data });
    publish(port, 'dash_game', [
      ev('s1', 0, 'engine_scene_id', { scene: 'menu' }),
      ev('s1', 1, 'engine_fps_id', { fps: 60 }),
      ev('s2', 1, 'engine_fps_id', { fps: 1 }),
      ev('s1', 2, 'engine_mem_id', { mem: 100000 }),
      ev('s1', 3, 'engine_fps_id', { fps: 20 }),
      ev('s1', 4, 'engine_error_id', { message: 'boom' }),
      ev('s1', 5, 'engine_fps_id', { fps: 58 }),
      ev('s1', 6, 'engine_mem_id', { mem: 180000 }),
    ]);
    await page.click('#tabs button[data-view="session"]');
    await page.fill('#session-id', 's1');
    await page.fill('#session-channel', 'dash_game');
    await page.fill('#session-position', '0-0');
    await page.click('#session-open');
    await page.waitForFunction(() => window.cobraDashboard.session.events === 7, null, { timeout: WAIT });
    publish(port, 'dash_game', [ev('s1', 7, 'engine_fps_id', { fps: 45 }), ev('s2', 7, 'engine_fps_id', { fps: 2 })]);
    await page.waitForFunction(() => window.cobraDashboard.session.events === 8, null, { timeout: WAIT });
    const sessionState = await page.evaluate(() => {
      const s = window.cobraDashboard.session;
      return { series: [...s.series].sort(), marks: s.chart.annotations.map((a) => a.label), fps: s.chart.series.get('data.fps').len };
    });
    assert.deepEqual(sessionState, { series: ['data.fps', 'data.mem'], marks: ['engine_scene_id', 'engine_error_id'], fps: 4 });
    assert.equal(await page.locator('#session-events tbody tr').count(), 8);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const sessionPixels = await colorPixels(page, '#session-chart', BLUE);
    assert.ok(sessionPixels.count > 200, `session chart pixels: ${JSON.stringify(sessionPixels)}`);
    await shot(page, '08-session');

    step('a session opened from an event of the tail');
    await startTail(page, 'dash_events', 'history');
    await received(page, 8);
    await page.click('#tail-list .vlist-row:not([hidden]) >> nth=0');
    await page.click('#detail-session');
    await page.waitForFunction(() => window.cobraDashboard.session.events === 5, null, { timeout: WAIT });
    assert.equal(await page.inputValue('#session-id'), 'sess-a');

    if (process.env.DASHBOARD_PERF) await perf(page, port, Number(process.env.DASHBOARD_PERF));

    step('log out: back to the form, nothing left connected');
    await page.click('#logout');
    await page.waitForSelector('#login-view', { state: 'visible', timeout: WAIT });
    assert.equal(await page.isVisible('#tabs'), false);
    assert.equal(await page.evaluate(() => window.cobraDashboard.client), null);

    assert.deepEqual(problems, [], 'no page error, console error or CSP violation');
  } catch (e) {
    await shot(page, 'failure').catch(() => {});
    throw e;
  } finally {
    await browser.close();
  }

  step('--no-dashboard: nothing served at /');
  const off = await startServer(['--no-dashboard']);
  assert.equal((await get(`http://127.0.0.1:${off.port}/`)).status, 404);
  assert.equal((await get(`http://127.0.0.1:${off.port}/dashboard/app.js`)).status, 404);
  assert.equal((await get(`http://127.0.0.1:${off.port}/health/`)).status, 200);
  off.child.kill('SIGTERM');

  step('behind --tls-cert: the page over https logs in over wss');
  const cert = path.join(tmp, 'cert.pem');
  const key = path.join(tmp, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const tls = await startServer(['--tls-cert', cert, '--tls-key', key]);
  const browser2 = await chromium.launchPersistentContext(path.join(tmp, 'profile-tls'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
    ignoreHTTPSErrors: true,
  });
  try {
    const p2 = browser2.pages()[0] || await browser2.newPage();
    await p2.goto(`https://127.0.0.1:${tls.port}/`);
    await login(p2, SECRET, false);
    await p2.waitForSelector('#tabs', { state: 'visible', timeout: WAIT });
    await p2.fill('#sql', 'dash_tls');
    await p2.click('#tail-start');
    await tailing(p2, 'dash_tls');
    assert.equal(await p2.evaluate(() => location.protocol), 'https:');
  } finally {
    await browser2.close();
  }
  tls.child.kill('SIGTERM');
  console.log(`dashboard.test.js: ok (screenshots in ${SHOTS})`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
