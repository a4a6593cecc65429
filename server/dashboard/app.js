// The dashboard's views: login, channels (from the server's /stats), live tail, charts,
// aggregations and the session view. Plain JavaScript, no build step.
(function () {
  'use strict';

  const { CobraClient, sameOriginUrl, comparePositions } = window.Cobra;
  const { LineChart, Histogram } = window.CobraCharts;
  const $ = (id) => document.getElementById(id);

  /**
   * Events kept by the live tail. When full, the oldest go first (counted in "dropped"); a
   * paused view keeps buffering into the same ring. 50,000 events of about 1 KB are ~50 MB of
   * tab memory at worst, and 5 s of a 10,000 events/s stream.
   */
  const TAIL_BUFFER = 50000;
  /** Rows of the session view's event table (the chart keeps its own, see charts.js). */
  const SESSION_ROWS = 1000;
  /** Groups kept per aggregation table (the server bounds its own groups too). */
  const AGG_GROUPS = 2000;
  const ROW_HEIGHT = 20;
  /** Server nodes shown in the channels view (stats from more nodes are ignored). */
  const MAX_NODES = 100;
  /** fps/memory series of the session chart (more fields are listed but not charted). */
  const SESSION_SERIES = 8;

  const state = {
    client: null,
    stats: null,
    view: 'login',
  };

  // ---------------------------------------------------------------- helpers
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function fmtBytes(n) {
    if (!Number.isFinite(n)) return '-';
    const units = ['B', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (Math.abs(n) >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + ' ' + units[i];
  }

  function fmtInt(n) {
    return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '-';
  }

  /** The value at dotted `path` of `obj` (a key holding the dotted text wins: projections). */
  function getPath(obj, path) {
    if (obj && typeof obj === 'object' && path in obj) return obj[path];
    let v = obj;
    for (const part of path.split('.')) {
      if (v === null || typeof v !== 'object') return undefined;
      v = v[part];
    }
    return v;
  }

  /** Adds the dotted path of every numeric leaf of `obj` to `out` (depth and count bounded). */
  function numericPaths(obj, prefix, out, depth) {
    if (depth > 6 || out.size > 200 || obj === null || typeof obj !== 'object' || Array.isArray(obj)) return;
    for (const [k, v] of Object.entries(obj)) {
      const p = prefix ? prefix + '.' + k : k;
      if (typeof v === 'number') out.add(p);
      else if (v && typeof v === 'object') numericPaths(v, p, out, depth + 1);
    }
  }

  /** Turns a `... at offset N ...` reason into the statement with a caret under byte N. */
  function describeSqlError(sql, reason) {
    const m = /at offset (\d+)/.exec(reason);
    if (!m) return reason;
    const bytes = Number(m[1]);
    // The server counts UTF-8 bytes; the caret counts characters.
    let chars = 0, seen = 0;
    for (const ch of sql) {
      if (seen >= bytes) break;
      seen += new TextEncoder().encode(ch).length;
      chars++;
    }
    const lines = sql.split('\n');
    let line = 0, col = chars;
    while (line < lines.length - 1 && col > lines[line].length) { col -= lines[line].length + 1; line++; }
    return `${reason}\n${lines[line]}\n${' '.repeat(col)}^ here (line ${line + 1}, column ${col + 1})`;
  }

  /** Channel and filter of what was typed: a bare channel name, or a StreamSQL statement. */
  function parseTailInput(text) {
    const t = text.trim();
    if (/^select\b/i.test(t)) {
      const m = /\bfrom\s+(`([^`]+)`|([^\s`]+))/i.exec(t);
      return { channel: m ? (m[2] || m[3]) : '', filter: t };
    }
    return { channel: t, filter: '' };
  }

  function setStatus(text) {
    $('status').textContent = text;
  }

  // ---------------------------------------------------------------- views
  function show(view) {
    state.view = view;
    for (const s of document.querySelectorAll('main > section')) s.hidden = s.id !== view + '-view';
    for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('active', b.dataset.view === view);
    if (view === 'tail') tail.renderSoon();
    if (view === 'charts') charts.redraw();
    if (view === 'session') window.CobraCharts.schedule(session.chart);
  }

  // ---------------------------------------------------------------- login
  async function login(ev) {
    ev.preventDefault();
    const appkey = $('appkey').value.trim();
    const role = $('role').value.trim();
    const secretInput = $('secret');
    const secret = secretInput.value;
    $('login-error').textContent = '';
    $('login-btn').disabled = true;
    setStatus('connecting…');
    const client = new CobraClient();
    try {
      await client.connect(sameOriginUrl(appkey), role, secret);
    } catch (e) {
      client.close();
      $('login-btn').disabled = false;
      setStatus('not connected');
      $('login-error').textContent = `Login refused: ${e.message}`;
      return;
    }
    // The secret has served its purpose: it is not kept anywhere.
    secretInput.value = '';
    state.client = client;
    sessionStorage.setItem('cobra.appkey', appkey);
    sessionStorage.setItem('cobra.role', role);
    client.onclose = (ev) => {
      // Nothing is kept to log in again by itself (the secret is gone): back to the form.
      if (state.client !== client) return;
      tail.stopped();
      logout();
      $('login-error').textContent = `Disconnected from the server (${ev.code}${ev.reason ? ': ' + ev.reason : ''}): log in again.`;
    };
    setStatus(`${role}@${appkey} on ${client.node || location.host}`);
    $('tabs').hidden = false;
    $('logout').hidden = false;
    $('login-btn').disabled = false;
    await channels.start(appkey);
    show('tail');
  }

  function logout() {
    const client = state.client;
    state.client = null;
    if (client) client.close();
    channels.stop();
    tail.stopped();
    aggregations.stopped();
    session.subId = null;
    $('tabs').hidden = true;
    $('logout').hidden = true;
    setStatus('not connected');
    show('login');
  }

  // ---------------------------------------------------------------- channels (stats)
  const channels = {
    client: null,
    nodes: new Map(), // node -> {stats message, received at}
    timer: 0,

    async start(appkey) {
      const statsKey = $('stats-appkey').value.trim();
      const statsRole = $('stats-role').value.trim();
      const statsSecret = $('stats-secret').value;
      $('stats-secret').value = '';
      let client = null;
      if (appkey === statsKey) client = state.client;
      else if (statsSecret) {
        client = new CobraClient();
        try {
          await client.connect(sameOriginUrl(statsKey), statsRole, statsSecret);
        } catch (e) {
          client.close();
          $('channels-note').textContent = `Stats unavailable: the stats app refused the login (${e.message}).`;
          return;
        }
        this.client = client;
      }
      if (!client) {
        $('channels-note').textContent = 'Give the stats app\'s credentials at login (Server stats) to see the channels and node health.';
        return;
      }
      try {
        await client.subscribe('dashboard-stats', { channel: '/stats' }, {
          onData: (messages) => {
            for (const m of messages) {
              if (!m || m.node === undefined) continue;
              const node = String(m.node);
              if (this.nodes.has(node) || this.nodes.size < MAX_NODES) this.nodes.set(node, { m, at: Date.now() });
            }
          },
          onError: (e) => { $('channels-note').textContent = `Stats subscription ended: ${e.message}`; },
        });
        $('channels-note').textContent = 'Channels of every app, from the server\'s once-a-second stats. Click one to tail it.';
      } catch (e) {
        $('channels-note').textContent = `Stats unavailable: ${e.message}`;
        return;
      }
      this.timer = setInterval(() => this.render(), 1000);
    },

    stop() {
      clearInterval(this.timer);
      if (this.client) this.client.close();
      this.client = null;
      this.nodes.clear();
    },

    render() {
      if (state.view !== 'channels') return;
      const rows = new Map();
      const nodeBody = el('tbody');
      for (const [node, { m, at }] of [...this.nodes].sort()) {
        const d = m.data || {};
        const sys = d.system || {};
        const backend = Array.isArray(d.backend) ? d.backend : [];
        const up = backend.filter((n) => n.connected).length;
        nodeBody.append(el('tr', {},
          el('td', {}, node),
          el('td', { class: 'num' }, fmtInt(sys.connections)),
          el('td', { class: 'num' }, fmtBytes(sys.mem_bytes)),
          el('td', {}, sys.uptime || '-'),
          el('td', {}, backend.length ? `${up}/${backend.length} nodes up` : 'embedded'),
          el('td', { class: 'num' }, fmtInt(sys.queue_drops || 0)),
          el('td', {}, `${Math.round((Date.now() - at) / 1000)} s ago`)));
        const cd = d.channel_data || {};
        const add = (metric, field) => {
          for (const [ch, v] of Object.entries(cd[metric] || {})) {
            const r = rows.get(ch) || { rate: 0, subs: 0, bps: 0, count: 0, bytes: 0 };
            r[field] += Number(v) || 0;
            rows.set(ch, r);
          }
        };
        add('published_count_per_second', 'rate');
        add('published_bytes_per_second', 'bps');
        add('published_count', 'count');
        add('published_bytes', 'bytes');
        add('subscriptions', 'subs');
      }
      $('nodes-table').tBodies[0].replaceWith(nodeBody);
      const body = el('tbody');
      const sorted = [...rows].sort((a, b) => b[1].rate - a[1].rate || a[0].localeCompare(b[0]));
      for (const [ch, r] of sorted.slice(0, 500)) {
        body.append(el('tr', { class: 'clickable', 'data-channel': ch, onclick: () => tail.tailChannel(ch) },
          el('td', {}, ch),
          el('td', { class: 'num' }, fmtInt(r.rate)),
          el('td', { class: 'num' }, fmtInt(r.subs)),
          el('td', { class: 'num' }, fmtBytes(r.bps) + '/s'),
          el('td', { class: 'num' }, fmtInt(r.count)),
          el('td', { class: 'num' }, fmtBytes(r.bytes))));
      }
      $('channels-table').tBodies[0].replaceWith(body);
    },
  };

  // ---------------------------------------------------------------- live tail
  /**
   * What the live tail and the aggregations panels share: ending their subscription and showing
   * its state and errors, in the elements `<prefix>-stop`, `<prefix>-state` and `errorId`.
   */
  function subscriptionPanel(prefix, errorId) {
    return {
      async stop() {
        const id = this.subId;
        this.subId = null;
        if (id && state.client) await state.client.unsubscribe(id);
        this.stopped();
      },

      stopped() {
        this.subId = null;
        $(`${prefix}-stop`).disabled = true;
        $(`${prefix}-state`).textContent = 'stopped';
      },

      showError(text) {
        $(errorId).textContent = text;
        $(errorId).hidden = false;
      },
    };
  }

  const tail = {
    buf: new Array(TAIL_BUFFER), // ring of {seq, t, m}
    total: 0, // events received since the last clear (seq of the next one)
    floor: 0, // seqs below it are hidden ("last N" trims the history)
    dropped: 0,
    pausedAt: null, // total when paused
    subId: null,
    subSeq: 0,
    channel: '',
    lastN: 0,
    ackPosition: null,
    rateCount: 0,
    rateAt: performance.now(),
    rate: 0,
    selected: -1,
    follow: true,
    renderPending: false,
    rows: [],

    first() {
      return Math.max(this.floor, this.total - TAIL_BUFFER);
    },

    end() {
      return this.pausedAt === null ? this.total : this.pausedAt;
    },

    get(seq) {
      return this.buf[seq % TAIL_BUFFER];
    },

    push(m, history) {
      if (this.total >= TAIL_BUFFER && this.total - TAIL_BUFFER >= this.floor) this.dropped++;
      this.buf[this.total % TAIL_BUFFER] = { seq: this.total, t: Date.now(), m };
      this.total++;
      if (history && this.lastN > 0) this.floor = Math.max(this.floor, this.total - this.lastN);
      this.rateCount++;
      charts.offer(m);
      if (m && typeof m === 'object' && 'window_start' in m && 'window_end' in m) aggregations.offer(m);
    },

    async start() {
      $('sql-error').hidden = true;
      const { channel, filter } = parseTailInput($('sql').value);
      if (!channel) {
        this.showError(filter ? 'the statement names no channel after FROM' : 'type a channel name or a StreamSQL statement');
        return;
      }
      const mode = $('start').value;
      const arg = $('start-arg').value.trim();
      let position;
      this.lastN = 0;
      if (mode === 'history') position = '0-0';
      else if (mode === 'last') {
        const n = Number(arg);
        if (!Number.isInteger(n) || n <= 0) { this.showError('last N: give N, a whole number of events, in the box next to the list'); return; }
        position = '0-0';
        this.lastN = n;
      } else if (mode === 'position') {
        if (!/^\d+-\d+$/.test(arg)) { this.showError('a position looks like 1519190184-559034812775 (or 0-0 for the oldest kept)'); return; }
        position = arg;
      }
      await this.stop();
      this.clear();
      const id = `tail-${++this.subSeq}`;
      this.subId = id;
      this.channel = channel;
      this.ackPosition = null;
      charts.reset();
      $('session-channel').value = $('session-channel').value || channel;
      try {
        const ok = await state.client.subscribe(id, { channel, filter, position, batchSize: 100 }, {
          onData: (messages, pduPosition) => {
            const history = this.ackPosition !== null && pduPosition !== undefined && comparePositions(pduPosition, this.ackPosition) <= 0;
            for (const m of messages) this.push(m, history);
            this.renderSoon();
          },
          onError: (e) => {
            this.showError(`subscription ended: ${e.message}`);
            this.stopped();
          },
          onInfo: (body) => { $('tail-state').textContent = body.reason || body.info || ''; },
        });
        this.ackPosition = mode === 'now' ? null : ok.position || null;
      } catch (e) {
        this.subId = null;
        this.showError(filter ? describeSqlError(filter, e.message) : e.message);
        return;
      }
      $('tail-state').textContent = `tailing ${channel}`;
      $('tail-stop').disabled = false;
      $('pause').disabled = false;
    },

    ...subscriptionPanel('tail', 'sql-error'),

    clear() {
      this.buf = new Array(TAIL_BUFFER);
      this.total = 0;
      this.floor = 0;
      this.dropped = 0;
      this.selected = -1;
      if (this.pausedAt !== null) this.pausedAt = 0;
      this.follow = true;
      this.renderSoon();
    },

    togglePause() {
      if (this.pausedAt === null) {
        this.pausedAt = this.total;
        $('pause').textContent = 'Resume';
      } else {
        this.pausedAt = null;
        this.follow = true;
        $('pause').textContent = 'Pause';
      }
      this.renderSoon();
    },

    tailChannel(ch) {
      $('sql').value = ch;
      $('start').value = 'now';
      show('tail');
      this.start();
    },

    exportJsonl() {
      const lines = [];
      for (let s = this.first(); s < this.total; s++) lines.push(JSON.stringify(this.get(s).m));
      const blob = new Blob([lines.join('\n') + (lines.length ? '\n' : '')], { type: 'application/x-ndjson' });
      const a = el('a', { href: URL.createObjectURL(blob), download: `cobra-${this.channel || 'tail'}-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl` });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    },

    tickRate() {
      const now = performance.now();
      this.rate = (this.rateCount * 1000) / (now - this.rateAt);
      this.rateCount = 0;
      this.rateAt = now;
      this.renderSoon();
    },

    renderSoon() {
      if (this.renderPending) return;
      this.renderPending = true;
      requestAnimationFrame(() => {
        this.renderPending = false;
        this.render();
      });
    },

    /** Draws only the rows in sight (virtualised list) and the counters, once per frame. */
    render() {
      $('rate').textContent = `${fmtInt(this.rate)} msg/s`;
      $('received').textContent = `${fmtInt(this.total)} received`;
      const first = this.first();
      const end = this.end();
      const count = Math.max(0, end - first);
      $('buffered').textContent = `${fmtInt(Math.max(0, this.total - first))} buffered (max ${fmtInt(TAIL_BUFFER)})`;
      $('missed').textContent = this.pausedAt === null ? '' : `paused: ${fmtInt(this.total - this.pausedAt)} arrived since`;
      $('dropped').textContent = this.dropped ? `${fmtInt(this.dropped)} dropped (buffer full)` : '';
      if (state.view !== 'tail') return;
      const list = $('tail-list');
      const spacer = list.firstElementChild;
      spacer.style.height = `${count * ROW_HEIGHT}px`;
      if (this.follow && this.pausedAt === null) list.scrollTop = list.scrollHeight;
      const top = list.scrollTop;
      const visible = Math.ceil(list.clientHeight / ROW_HEIGHT) + 2;
      const startIdx = Math.max(0, Math.floor(top / ROW_HEIGHT));
      const n = Math.max(0, Math.min(visible, count - startIdx));
      while (this.rows.length < n) {
        const r = el('div', { class: 'vlist-row' });
        r.addEventListener('click', () => this.select(Number(r.dataset.seq)));
        list.append(r);
        this.rows.push(r);
      }
      for (let i = 0; i < this.rows.length; i++) {
        const r = this.rows[i];
        if (i >= n) { r.hidden = true; continue; }
        const seq = first + startIdx + i;
        const e = this.get(seq);
        r.hidden = false;
        r.style.top = `${(startIdx + i) * ROW_HEIGHT}px`;
        if (r.dataset.seq !== String(seq)) {
          r.dataset.seq = String(seq);
          const text = JSON.stringify(e.m);
          r.replaceChildren(el('span', { class: 't' }, new Date(e.t).toTimeString().slice(0, 8)), text.length > 400 ? text.slice(0, 400) + '…' : text);
        }
        r.classList.toggle('selected', seq === this.selected);
      }
    },

    select(seq) {
      if (seq < this.first() || seq >= this.total) return;
      this.selected = seq;
      const m = this.get(seq).m;
      $('detail-json').textContent = JSON.stringify(m, null, 2);
      const sid = m && typeof m === 'object' ? m.session : undefined;
      const btn = $('detail-session');
      btn.hidden = typeof sid !== 'string';
      btn.dataset.session = typeof sid === 'string' ? sid : '';
      this.renderSoon();
    },
  };

  // ---------------------------------------------------------------- charts
  const charts = {
    line: null,
    hist: null,
    fields: new Set(),
    selected: new Set(),
    fieldsDirty: false,
    seen: 0,

    init() {
      this.line = new LineChart($('line-chart'));
      this.line.windowMs = 5 * 60 * 1000;
      this.hist = new Histogram($('histogram'), 24);
      $('hist-field').addEventListener('change', () => this.resetHistogram());
      setInterval(() => this.renderFields(), 500);
    },

    reset() {
      this.fields.clear();
      this.selected.clear();
      this.fieldsDirty = true;
      this.seen = 0;
      this.line.clear();
      this.hist.clear();
    },

    redraw() {
      this.renderFields();
      window.CobraCharts.schedule(this.line);
      window.CobraCharts.schedule(this.hist);
    },

    offer(m) {
      // Field discovery samples the stream (every message at first, then 1 in 50).
      if (this.seen < 200 || this.seen % 50 === 0) {
        const before = this.fields.size;
        numericPaths(m, '', this.fields, 0);
        if (this.fields.size !== before) this.fieldsDirty = true;
      }
      this.seen++;
      if (this.selected.size === 0) return;
      // Event time when the message has one (telemetry events carry `timestamp` in ms), else arrival.
      const t = typeof m.timestamp === 'number' ? m.timestamp : Date.now();
      for (const f of this.selected) {
        const v = getPath(m, f);
        if (typeof v === 'number') this.line.add(f, t, v);
      }
      const hf = $('hist-field').value;
      if (hf) {
        const v = getPath(m, hf);
        if (typeof v === 'number') this.hist.add(v);
      }
    },

    resetHistogram() {
      this.hist.clear();
      this.hist.label = $('hist-field').value;
    },

    renderFields() {
      if (!this.fieldsDirty) return;
      this.fieldsDirty = false;
      const box = $('fields');
      const sorted = [...this.fields].sort();
      box.replaceChildren(...sorted.map((f) => {
        const cb = el('input', { type: 'checkbox', 'data-field': f });
        cb.checked = this.selected.has(f);
        cb.addEventListener('change', () => {
          if (cb.checked) this.selected.add(f);
          else { this.selected.delete(f); this.line.removeSeries(f); }
          if (cb.checked && !$('hist-field').value) { $('hist-field').value = f; this.resetHistogram(); }
        });
        return el('label', {}, cb, ' ' + f);
      }));
      const hs = $('hist-field');
      const current = hs.value;
      hs.replaceChildren(el('option', { value: '' }, '(none)'), ...sorted.map((f) => el('option', { value: f }, f)));
      hs.value = sorted.includes(current) ? current : '';
      if (!sorted.length) box.replaceChildren(el('span', { class: 'note' }, 'No numeric field yet: start a live tail.'));
    },
  };

  // ---------------------------------------------------------------- aggregations
  // Rows as docs/streamsql.md documents them: window_start, window_end, the SELECT list in its order,
  // then late, skipped, final. A HISTOGRAM value is {edges, counts, shares}.
  const AGG_TRAILER = new Set(['window_start', 'window_end', 'late', 'skipped', 'final']);
  /** Query shapes (distinct SELECT lists) kept at once; rows of more are ignored. */
  const AGG_TABLES = 20;
  /** Default key of an aggregate without alias (`count`, `avg(data.fps)`, ...): never a group field. */
  const AGG_NAME = /^(count|count_distinct|sum|avg|min|max|percentile|histogram)(\(|$)/;

  const aggregations = {
    tables: new Map(), // SELECT keys -> {keys, kinds: Map(key -> 'group'|'agg'|'hist'), rows: Map(group -> row)}
    pending: false,
    subId: null,
    subSeq: 0,

    /** A row's kind for one key. Numbers are aggregates, so a numeric GROUP BY field shows as one. */
    kindOf(k, v, prev) {
      if (v && typeof v === 'object' && Array.isArray(v.edges) && Array.isArray(v.counts)) return 'hist';
      if (typeof v === 'number' || (v && typeof v === 'object')) return prev === 'group' ? 'group' : 'agg';
      if (typeof v === 'string' || typeof v === 'boolean') return 'group';
      return prev || (AGG_NAME.test(k) ? 'agg' : 'group'); // null: an empty aggregate or a missing group value
    },

    offer(m) {
      const keys = Object.keys(m).filter((k) => !AGG_TRAILER.has(k));
      const shape = keys.join('\u0000');
      let table = this.tables.get(shape);
      if (!table) {
        if (this.tables.size >= AGG_TABLES) return;
        table = { keys, kinds: new Map(), rows: new Map() };
        this.tables.set(shape, table);
      }
      let changed = false;
      for (const k of keys) {
        const kind = this.kindOf(k, m[k], table.kinds.get(k));
        if (kind !== table.kinds.get(k)) { changed = table.kinds.has(k) || changed; table.kinds.set(k, kind); }
      }
      if (changed) table.rows.clear(); // group keys were computed with other kinds
      const key = JSON.stringify(keys.filter((k) => table.kinds.get(k) === 'group').map((k) => m[k]));
      const prev = table.rows.get(key);
      if (!prev && table.rows.size >= AGG_GROUPS) return;
      // Each group shows its latest window (a window's final row may arrive after the next one's updates).
      if (prev && Number(prev.window_start) > Number(m.window_start)) return;
      table.rows.set(key, m);
      if (!this.pending) {
        this.pending = true;
        requestAnimationFrame(() => { this.pending = false; this.render(); });
      }
    },

    async start() {
      $('agg-error').hidden = true;
      const sql = $('agg-sql').value.trim();
      const { channel, filter } = parseTailInput(sql);
      if (!channel || !filter) { this.showError('type a SELECT ... FROM `channel` ... GROUP BY ... WINDOW ... statement'); return; }
      await this.stop();
      this.clear();
      const id = `agg-${++this.subSeq}`;
      this.subId = id;
      const position = $('agg-start').value === 'history' ? '0-0' : undefined;
      try {
        await state.client.subscribe(id, { channel, filter, position, batchSize: 100 }, {
          onData: (messages) => {
            for (const m of messages) if (m && typeof m === 'object' && 'window_start' in m) this.offer(m);
          },
          onError: (e) => { this.showError(`subscription ended: ${e.message}`); this.stopped(); },
          onInfo: (body) => { $('agg-state').textContent = body.reason || body.info || ''; },
        });
      } catch (e) {
        this.subId = null;
        this.showError(describeSqlError(filter, e.message));
        return;
      }
      $('agg-state').textContent = `running on ${channel}`;
      $('agg-stop').disabled = false;
    },

    ...subscriptionPanel('agg', 'agg-error'),

    clear() {
      this.tables.clear();
      $('agg-tables').replaceChildren();
    },

    render() {
      const blocks = [];
      for (const t of this.tables.values()) {
        const rows = [...t.rows.values()];
        const of = (kind) => t.keys.filter((k) => t.kinds.get(k) === kind);
        const groups = rows.map((m) => of('group').map((k) => aggText(m[k])).join(' / ') || '(all)');
        const latest = rows.reduce((a, m) => (a && Number(a.window_start) >= Number(m.window_start) ? a : m), null);
        const late = rows.reduce((s, m) => s + (Number(m.late) || 0), 0);
        const title = `GROUP BY ${of('group').join(', ') || '(one group)'}: ${rows.length} group${rows.length === 1 ? '' : 's'}`
          + (latest ? `, window ${fmtWindow(latest.window_start)} – ${fmtWindow(latest.window_end)} UTC` : '')
          + (late ? `, ${fmtInt(late)} late` : '');
        const block = el('div', { class: 'agg-block' }, el('h3', {}, title));
        const hists = of('hist');
        if (hists.length) {
          for (const hf of hists) block.append(histogramLayout(rows, groups, hf, of('agg')));
        } else {
          const head = el('tr', {}, ...of('group').map((k) => el('th', {}, k)), el('th', {}, 'window'),
            ...of('agg').map((k) => el('th', { class: 'num' }, k)), el('th', { class: 'num' }, 'skipped'), el('th', {}, 'final'));
          const body = rows.map((m) => el('tr', {},
            ...of('group').map((k) => el('td', {}, aggText(m[k]))),
            el('td', {}, `${fmtWindow(m.window_start)} – ${fmtWindow(m.window_end)}`),
            ...of('agg').map((k) => el('td', { class: 'num' }, aggText(m[k]))),
            el('td', { class: 'num' }, aggText(m.skipped)), el('td', {}, m.final ? 'yes' : 'no')));
          block.append(el('table', { class: 'agg-table' }, el('thead', {}, head), el('tbody', {}, ...body)));
        }
        blocks.push(block);
      }
      $('agg-tables').replaceChildren(...blocks);
    },
  };

  function fmtWindow(v) {
    const n = Number(v);
    if (Number.isFinite(n) && n > 1e11) return new Date(n).toISOString().slice(11, 19);
    return String(v);
  }

  /** A cell as `cobra subscribe --table` writes it: strings bare, fractions with 2 decimals, `-` for null. */
  function aggText(v) {
    if (v === null || v === undefined) return '-';
    if (typeof v === 'string') return v;
    if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toFixed(2);
    return JSON.stringify(v);
  }

  /** Bucket labels of a HISTOGRAM's edges (sorted decreasing): `> e1`, `e1` ... (each bucket named by its upper edge), `<= en`. */
  function bucketLabels(edges) {
    const e = edges.map(aggText);
    if (!e.length) return ['all'];
    return [`> ${e[0]}`, ...e.slice(0, -1), `<= ${e[e.length - 1]}`];
  }

  /** The talk's FPS-by-device layout: one column per group; rows: samples, each bucket's share, the other aggregates. */
  function histogramLayout(rows, groups, hf, aggs) {
    const first = rows.find((m) => m[hf] && Array.isArray(m[hf].edges));
    const labels = bucketLabels(first ? first[hf].edges : []);
    const counts = (m) => (m[hf] && Array.isArray(m[hf].counts) ? m[hf].counts : []);
    const head = el('tr', {}, el('th', {}, hf), ...groups.map((g) => el('th', { class: 'num' }, g)));
    const body = [el('tr', {}, el('td', {}, 'Samples'), ...rows.map((m) => el('td', { class: 'num' },
      String(counts(m).reduce((s, c) => s + (Number(c) || 0), 0)))))];
    labels.forEach((l, i) => body.push(el('tr', {}, el('td', {}, l), ...rows.map((m) => {
      const share = m[hf] && Array.isArray(m[hf].shares) ? m[hf].shares[i] : undefined;
      if (typeof share !== 'number') return el('td', { class: 'num' }, '-');
      const bar = el('span', { class: 'histo' });
      bar.style.width = `${Math.round(share * 60)}px`;
      return el('td', { class: 'num' }, bar, `${(share * 100).toFixed(1)} %`);
    }))));
    for (const k of aggs) body.push(el('tr', {}, el('td', {}, k), ...rows.map((m) => el('td', { class: 'num' }, aggText(m[k])))));
    return el('table', { class: 'agg-histogram' }, el('thead', {}, head), el('tbody', {}, ...body));
  }

  // ---------------------------------------------------------------- session
  const session = {
    chart: null,
    subId: null,
    seq: 0,
    events: 0,
    series: new Set(),
    rows: [],

    init() {
      this.chart = new LineChart($('session-chart'));
      this.chart.independent = true;
    },

    async open(sid) {
      $('session-error').hidden = true;
      const id = (sid ?? $('session-id').value).trim();
      const channel = $('session-channel').value.trim() || tail.channel;
      const position = $('session-position').value.trim();
      $('session-id').value = id;
      $('session-channel').value = channel;
      const fail = (text) => { $('session-error').textContent = text; $('session-error').hidden = false; };
      if (!id || /['\\]/.test(id)) return fail('a session id is needed (without quotes or backslashes)');
      if (!channel || /`/.test(channel)) return fail('give the channel the session\'s events are published on');
      if (position && !/^(\d+-\d+|\$)$/.test(position)) return fail('From: a position such as 0-0 (everything kept), or $ (only new events)');
      if (this.subId) await state.client.unsubscribe(this.subId);
      this.subId = `session-${++this.seq}`;
      this.events = 0;
      this.series.clear();
      this.rows = [];
      this.chart.clear();
      $('session-events').tBodies[0].replaceChildren();
      const filter = `select * from \`${channel}\` where session = '${id}'`;
      try {
        await state.client.subscribe(this.subId, { channel, filter, position: position === '$' ? undefined : position || '0-0', batchSize: 100 }, {
          onData: (messages) => { for (const m of messages) this.add(m); this.summary(); },
          onError: (e) => fail(`subscription ended: ${e.message}`),
        });
      } catch (e) {
        this.subId = null;
        return fail(describeSqlError(filter, e.message));
      }
      this.summary();
    },

    /** fps and memory values become series; every other event an annotation. */
    add(m) {
      if (!m || typeof m !== 'object') return;
      this.events++;
      const t = typeof m.timestamp === 'number' ? m.timestamp : Date.now();
      const found = new Set();
      numericPaths(m.data, 'data', found, 0);
      let charted = false;
      for (const p of found) {
        if (/fps|mem/i.test(p.split('.').pop()) && (this.series.has(p) || this.series.size < SESSION_SERIES)) {
          this.chart.add(p, t, getPath(m, p));
          this.series.add(p);
          charted = true;
        }
      }
      const label = String(m.id ?? m.event ?? 'event');
      if (!charted) this.chart.annotate(t, label);
      const tr = el('tr', {}, el('td', {}, new Date(t).toTimeString().slice(0, 8)), el('td', {}, label), el('td', {}, JSON.stringify(m.data ?? m).slice(0, 200)));
      const body = $('session-events').tBodies[0];
      body.append(tr);
      if (body.rows.length > SESSION_ROWS) body.deleteRow(0);
    },

    summary() {
      $('session-summary').textContent = `${fmtInt(this.events)} events of session ${$('session-id').value}; charted: ${[...this.series].join(', ') || 'nothing yet'}; other events are the marks on the time axis.`;
    },
  };

  // ---------------------------------------------------------------- wiring
  function init() {
    $('appkey').value = sessionStorage.getItem('cobra.appkey') || $('appkey').value;
    $('role').value = sessionStorage.getItem('cobra.role') || $('role').value;
    $('login-form').addEventListener('submit', login);
    $('logout').addEventListener('click', logout);
    for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => show(b.dataset.view));
    $('tail-start').addEventListener('click', () => tail.start());
    $('tail-stop').addEventListener('click', () => tail.stop());
    $('pause').addEventListener('click', () => tail.togglePause());
    $('clear').addEventListener('click', () => { tail.clear(); aggregations.clear(); });
    $('export').addEventListener('click', () => tail.exportJsonl());
    $('sql').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) tail.start(); });
    $('tail-list').addEventListener('scroll', () => {
      const l = $('tail-list');
      tail.follow = l.scrollTop + l.clientHeight >= l.scrollHeight - ROW_HEIGHT;
      tail.renderSoon();
    });
    $('detail-session').addEventListener('click', () => {
      $('session-channel').value = tail.channel;
      show('session');
      session.open($('detail-session').dataset.session);
    });
    $('session-open').addEventListener('click', () => session.open());
    $('agg-run').addEventListener('click', () => aggregations.start());
    $('agg-stop').addEventListener('click', () => aggregations.stop());
    window.addEventListener('resize', () => { tail.renderSoon(); charts.redraw(); });
    charts.init();
    session.init();
    setInterval(() => tail.tickRate(), 1000);
    show('login');
  }

  // Exposed for the browser test and for poking around in the console; holds no secret.
  window.cobraDashboard = { tail, charts, aggregations, session, channels, TAIL_BUFFER, get client() { return state.client; } };
  init();
})();
