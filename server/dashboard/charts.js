// Charts drawn on <canvas> by hand (no library: the page must stay small and offline): line charts
// of several series on one time axis with event annotations, and a histogram. Each chart keeps
// bounded data and is redrawn at most once per animation frame, only when something changed.
(function (root) {
  'use strict';

  /** Points kept per series: older points are dropped first (about 16 minutes at 10/s). */
  const MAX_POINTS = 10000;
  /** Annotations kept per chart. */
  const MAX_ANNOTATIONS = 2000;
  const COLORS = ['#2f7bf5', '#e8590c', '#2b8a3e', '#c2255c', '#7048e8', '#0c8599', '#e67700', '#495057'];
  const PAD = { left: 56, right: 56, top: 14, bottom: 26 };

  /** Sizes the canvas backing store to its CSS size (crisp lines on HiDPI screens). */
  function fit(canvas) {
    const dpr = root.devicePixelRatio || 1;
    const w = Math.max(50, Math.round(canvas.clientWidth * dpr));
    const h = Math.max(50, Math.round(canvas.clientHeight * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return { ctx, w: w / dpr, h: h / dpr };
  }

  function niceTicks(min, max, count) {
    if (!(max > min)) return [min];
    const step0 = (max - min) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
    const ticks = [];
    for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(v);
    return ticks;
  }

  function fmtNumber(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return (v / 1e6).toFixed(1) + 'M';
    if (a >= 1e4) return (v / 1e3).toFixed(0) + 'k';
    return Number.isInteger(v) ? String(v) : v.toFixed(2);
  }

  /** A time label: milliseconds shown when the axis spans under 10 seconds. */
  function fmtTime(ms, span) {
    const d = new Date(ms);
    const hms = d.toTimeString().slice(0, 8);
    return span < 10000 ? `${hms}.${String(d.getMilliseconds()).padStart(3, '0')}` : hms;
  }

  /** Redraws scheduled charts once per animation frame. */
  const dirty = new Set();
  let scheduled = false;
  function schedule(chart) {
    dirty.add(chart);
    if (scheduled) return;
    scheduled = true;
    root.requestAnimationFrame(() => {
      scheduled = false;
      const charts = Array.from(dirty);
      dirty.clear();
      // A hidden chart (another view is shown) is drawn when its view is shown again.
      for (const c of charts) if (c.canvas.offsetParent !== null) c.draw();
    });
  }

  class LineChart {
    constructor(canvas) {
      this.canvas = canvas;
      this.series = new Map(); // name -> {color, t: Float64Array, v: Float64Array, start, len}
      this.annotations = [];
      this.windowMs = 0; // 0: the whole time range kept; else the last windowMs
      // Each series on its own y scale (the first one's axis on the left, the second's on the
      // right): memory in bytes and FPS on one chart.
      this.independent = false;
    }

    clear() {
      this.series.clear();
      this.annotations = [];
      schedule(this);
    }

    ensure(name) {
      let s = this.series.get(name);
      if (!s) {
        s = { color: COLORS[this.series.size % COLORS.length], t: new Float64Array(MAX_POINTS), v: new Float64Array(MAX_POINTS), start: 0, len: 0 };
        this.series.set(name, s);
      }
      return s;
    }

    /** Adds the point (t ms, v) to series `name`. */
    add(name, t, v) {
      if (!Number.isFinite(t) || !Number.isFinite(v)) return;
      const s = this.ensure(name);
      const i = (s.start + s.len) % MAX_POINTS;
      s.t[i] = t;
      s.v[i] = v;
      if (s.len < MAX_POINTS) s.len++;
      else s.start = (s.start + 1) % MAX_POINTS;
      schedule(this);
    }

    /** A labelled vertical mark at time t. */
    annotate(t, label) {
      if (!Number.isFinite(t)) return;
      this.annotations.push({ t, label: String(label) });
      if (this.annotations.length > MAX_ANNOTATIONS) this.annotations.shift();
      schedule(this);
    }

    removeSeries(name) {
      this.series.delete(name);
      schedule(this);
    }

    draw() {
      const { ctx, w, h } = fit(this.canvas);
      ctx.clearRect(0, 0, w, h);
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, w, h);
      let tmin = Infinity, tmax = -Infinity, vmin = Infinity, vmax = -Infinity;
      for (const s of this.series.values()) {
        for (let k = 0; k < s.len; k++) {
          const i = (s.start + k) % MAX_POINTS;
          if (s.t[i] < tmin) tmin = s.t[i];
          if (s.t[i] > tmax) tmax = s.t[i];
        }
      }
      for (const a of this.annotations) {
        if (a.t < tmin) tmin = a.t;
        if (a.t > tmax) tmax = a.t;
      }
      if (this.windowMs > 0 && tmax - tmin > this.windowMs) tmin = tmax - this.windowMs;
      const ranges = new Map();
      for (const [name, s] of this.series) {
        let lo = Infinity, hi = -Infinity;
        for (let k = 0; k < s.len; k++) {
          const i = (s.start + k) % MAX_POINTS;
          if (s.t[i] < tmin) continue;
          if (s.v[i] < lo) lo = s.v[i];
          if (s.v[i] > hi) hi = s.v[i];
        }
        ranges.set(name, [lo, hi]);
        if (lo < vmin) vmin = lo;
        if (hi > vmax) vmax = hi;
      }
      const pw = w - PAD.left - PAD.right;
      const ph = h - PAD.top - PAD.bottom;
      ctx.strokeStyle = '#adb5bd';
      ctx.lineWidth = 1;
      ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, pw, ph);
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = '#495057';
      if (!Number.isFinite(tmin)) {
        ctx.fillText('no data yet', PAD.left + 8, PAD.top + 16);
        return;
      }
      if (tmax === tmin) { tmax += 500; tmin -= 500; }
      const pad = ([lo, hi]) => {
        if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
        if (hi === lo) { hi += 1; lo -= 1; }
        const span = hi - lo;
        return [lo - span * 0.05, hi + span * 0.05];
      };
      const shared = pad([vmin, vmax]);
      const scales = new Map();
      for (const [name, r] of ranges) scales.set(name, this.independent ? pad(r) : shared);
      const x = (t) => PAD.left + ((t - tmin) / (tmax - tmin)) * pw;
      const yOf = ([lo, hi]) => (v) => PAD.top + ph - ((v - lo) / (hi - lo)) * ph;
      const names = [...this.series.keys()];
      const axes = this.independent ? names.slice(0, 2) : [null];
      axes.forEach((name, side) => {
        const range = name === null ? shared : scales.get(name);
        const y = yOf(range);
        ctx.textAlign = side === 0 ? 'right' : 'left';
        ctx.fillStyle = name === null ? '#495057' : this.series.get(name).color;
        for (const v of niceTicks(range[0], range[1], 5)) {
          const yy = Math.round(y(v)) + 0.5;
          if (side === 0) {
            ctx.strokeStyle = '#e9ecef';
            ctx.beginPath(); ctx.moveTo(PAD.left, yy); ctx.lineTo(PAD.left + pw, yy); ctx.stroke();
          }
          ctx.fillText(fmtNumber(v), side === 0 ? PAD.left - 4 : PAD.left + pw + 4, yy + 4);
        }
      });
      ctx.fillStyle = '#495057';
      ctx.textAlign = 'center';
      for (const t of niceTicks(tmin, tmax, Math.max(2, Math.floor(pw / 110)))) {
        ctx.fillText(fmtTime(t, tmax - tmin), x(t), h - 8);
      }
      // Annotations: dashed vertical lines, the label written up the line.
      ctx.save();
      ctx.setLineDash([3, 3]);
      ctx.strokeStyle = '#868e96';
      for (const a of this.annotations) {
        if (a.t < tmin) continue;
        const xx = Math.round(x(a.t)) + 0.5;
        ctx.beginPath(); ctx.moveTo(xx, PAD.top); ctx.lineTo(xx, PAD.top + ph); ctx.stroke();
        ctx.save();
        ctx.translate(xx + 3, PAD.top + 4);
        ctx.rotate(Math.PI / 2);
        ctx.textAlign = 'left';
        ctx.fillStyle = '#495057';
        ctx.fillText(a.label.slice(0, 40), 0, 0);
        ctx.restore();
      }
      ctx.restore();
      ctx.save();
      ctx.beginPath();
      ctx.rect(PAD.left, PAD.top, pw, ph);
      ctx.clip();
      ctx.lineWidth = 2;
      for (const [name, s] of this.series) {
        const y = yOf(scales.get(name));
        ctx.strokeStyle = s.color;
        ctx.beginPath();
        let started = false;
        // At most one vertex per pixel column: min and max of the points in it (so a spike
        // stays visible however many points there are).
        let col = -1, cmin = 0, cmax = 0, clast = 0;
        const flush = () => {
          if (col < 0) return;
          if (!started) { ctx.moveTo(col, y(cmin)); started = true; } else ctx.lineTo(col, y(cmin));
          if (cmax !== cmin) ctx.lineTo(col, y(cmax));
          ctx.lineTo(col, y(clast));
        };
        for (let k = 0; k < s.len; k++) {
          const i = (s.start + k) % MAX_POINTS;
          if (s.t[i] < tmin) continue;
          const c = Math.round(x(s.t[i]));
          const v = s.v[i];
          if (c !== col) { flush(); col = c; cmin = v; cmax = v; }
          else { if (v < cmin) cmin = v; if (v > cmax) cmax = v; }
          clast = v;
        }
        flush();
        if (s.len === 1) {
          const i = s.start;
          ctx.fillStyle = s.color;
          ctx.fillRect(x(s.t[i]) - 3, y(s.v[i]) - 3, 6, 6);
        }
        ctx.stroke();
      }
      ctx.restore();
      // Legend.
      ctx.textAlign = 'left';
      let lx = PAD.left + 8;
      for (const [name, s] of this.series) {
        ctx.fillStyle = s.color;
        ctx.fillRect(lx, PAD.top + 6, 10, 10);
        ctx.fillStyle = '#212529';
        ctx.fillText(name, lx + 14, PAD.top + 15);
        lx += 24 + ctx.measureText(name).width;
      }
    }
  }

  /** A histogram of the values given, in `bins` equal-width bins between their min and max. */
  class Histogram {
    constructor(canvas, bins) {
      this.canvas = canvas;
      this.bins = bins || 20;
      this.values = new Float64Array(MAX_POINTS);
      this.start = 0;
      this.len = 0;
      this.label = '';
    }

    clear() {
      this.len = 0;
      this.start = 0;
      schedule(this);
    }

    add(v) {
      if (!Number.isFinite(v)) return;
      const i = (this.start + this.len) % MAX_POINTS;
      this.values[i] = v;
      if (this.len < MAX_POINTS) this.len++;
      else this.start = (this.start + 1) % MAX_POINTS;
      schedule(this);
    }

    draw() {
      const { ctx, w, h } = fit(this.canvas);
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(0, 0, w, h);
      const pw = w - PAD.left - PAD.right;
      const ph = h - PAD.top - PAD.bottom;
      ctx.strokeStyle = '#adb5bd';
      ctx.strokeRect(PAD.left + 0.5, PAD.top + 0.5, pw, ph);
      ctx.font = '11px system-ui, sans-serif';
      ctx.fillStyle = '#495057';
      if (this.len === 0) {
        ctx.fillText('no data yet', PAD.left + 8, PAD.top + 16);
        return;
      }
      let min = Infinity, max = -Infinity;
      for (let k = 0; k < this.len; k++) {
        const v = this.values[(this.start + k) % MAX_POINTS];
        if (v < min) min = v;
        if (v > max) max = v;
      }
      if (max === min) { max += 0.5; min -= 0.5; }
      const counts = new Array(this.bins).fill(0);
      for (let k = 0; k < this.len; k++) {
        const v = this.values[(this.start + k) % MAX_POINTS];
        counts[Math.min(this.bins - 1, Math.floor(((v - min) / (max - min)) * this.bins))]++;
      }
      const top = Math.max(...counts);
      const bw = pw / this.bins;
      ctx.fillStyle = COLORS[0];
      counts.forEach((c, i) => {
        const bh = (c / top) * (ph - 4);
        ctx.fillRect(PAD.left + i * bw + 1, PAD.top + ph - bh, Math.max(1, bw - 2), bh);
      });
      ctx.fillStyle = '#495057';
      ctx.textAlign = 'left';
      ctx.fillText(fmtNumber(min), PAD.left, h - 8);
      ctx.textAlign = 'right';
      ctx.fillText(fmtNumber(max), PAD.left + pw, h - 8);
      ctx.fillText(String(top), PAD.left - 4, PAD.top + 10);
      ctx.textAlign = 'center';
      ctx.fillText(`${this.label} (${this.len} values)`, PAD.left + pw / 2, h - 8);
    }
  }

  root.CobraCharts = { LineChart, Histogram, COLORS, MAX_POINTS, schedule };
})(window);
