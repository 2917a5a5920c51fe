'use strict';
// The data page: GET /v1/reports for the daily values (exactly as served);
// GET /v1/metrics for sleep duration and glucose point by point, and for
// each source's own value of a day (a day where two sources differ by more
// than a tenth is marked); GET /v1/workouts and GET /v1/providers. Every
// chart has a table of the same values for screen readers and keyboards.
(() => {
  const { call, el, say, quiet, explain, number, ago, day, needsToken } = Connector;
  const DAILY = [
    ['hrv', 'Heart-rate variability', 'ms'],
    ['resting_hr', 'Resting heart rate', 'bpm'],
    ['sleep_score', 'Sleep score', 'of 100'],
    ['steps', 'Steps', 'steps'],
    ['calories', 'Calories burned', 'kcal'],
    ['stress', 'Stress', 'of 10'],
  ];
  // Charted point by point from /v1/metrics, each with its source.
  const POINTS = [['sleep_duration', 'Sleep duration'], ['glucose', 'Glucose']];
  // Metrics a source reports as parts of a day (summed), not as one value.
  const SUMMED = new Set(['steps', 'calories']);
  // Two sources disagree on a day when they differ by more than this share.
  const DISAGREE = 0.1;
  const charts = [];
  let days = 14;
  let loading = 0;

  async function metrics(types, since, until) {
    const out = new Map(types.map((t) => [t, { unit: '', points: [] }]));
    let cursor = null;
    do {
      const q = new URLSearchParams({ types: types.join(','), since, until, limit: '5000' });
      if (cursor) q.set('cursor', cursor);
      const page = await call('GET', `metrics?${q}`);
      for (const s of page.series) {
        const kept = out.get(s.type);
        kept.unit = s.unit;
        kept.points.push(...s.points);
      }
      cursor = page.next_cursor;
    } while (cursor);
    return out;
  }

  // date → [[source, value]…] where the sources disagree.
  function disagreements(type, points) {
    const byDay = new Map();
    for (const p of points) {
      const sources = byDay.get(p.date) || new Map();
      byDay.set(p.date, sources);
      const s = sources.get(p.source) || { total: 0, n: 0 };
      s.total += p.value;
      s.n += 1;
      sources.set(p.source, s);
    }
    const out = new Map();
    for (const [date, sources] of byDay) {
      if (sources.size < 2) continue;
      const values = [...sources].map(([src, s]) => [src, SUMMED.has(type) ? s.total : s.total / s.n]);
      const vs = values.map(([, v]) => v);
      const hi = Math.max(...vs.map(Math.abs));
      if (hi > 0 && (Math.max(...vs) - Math.min(...vs)) / hi > DISAGREE) out.set(date, values);
    }
    return out;
  }

  const seconds = (date) => Date.parse(`${date}T00:00:00Z`) / 1000;

  // `dots`: points only, for series whose points come from several sources.
  function plot(box, label, rows, dots) {
    const xs = rows.map((r) => r.x);
    const ys = rows.map((r) => r.value);
    const marks = rows.map((r) => (r.disagree ? r.value : null));
    const hover = box.querySelector('.hover');
    const opts = {
      width: Math.max(240, box.querySelector('.plot').clientWidth),
      height: 160,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [{ stroke: '#4a5360' }, { stroke: '#4a5360', size: 56 }],
      series: [
        {},
        Object.assign({ label, stroke: '#0b57d0', width: 2, points: { show: true, size: 6, fill: '#0b57d0' } },
          dots ? { paths: () => null } : {}),
        { label: 'Sources disagree', stroke: '#8a4b00', width: 0, paths: () => null,
          points: { show: true, size: 11, fill: '#8a4b00', stroke: '#8a4b00' } },
      ],
      hooks: {
        setCursor: [(u) => {
          const r = rows[u.cursor.idx];
          hover.textContent = r ? r.words : '';
        }],
      },
    };
    const target = box.querySelector('.plot');
    const u = new uPlot(opts, [xs, ys, marks], target);
    // Arrow keys walk the days, as the pointer does.
    let at = rows.length - 1;
    target.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      e.preventDefault();
      at = Math.min(rows.length - 1, Math.max(0, at + (e.key === 'ArrowRight' ? 1 : -1)));
      u.setCursor({ left: u.valToPos(xs[at], 'x'), top: u.valToPos(ys[at], 'y') });
    });
    charts.push({ u, target });
  }

  function figure(id, label, unit, rows) {
    const caption = unit ? `${label} (${unit})` : label;
    const box = el('figure', { class: 'chart', dataset: { metric: id } },
      el('figcaption', { id: `chart-${id}` }, caption));
    if (!rows.length) {
      box.append(el('p', { class: 'empty' }, 'No values on these days.'));
      return box;
    }
    box.append(
      el('div', { class: 'plot', tabindex: '0', role: 'img',
        'aria-label': `${caption}: ${rows.length} values, the latest ${number(rows[rows.length - 1].value)} on ${rows[rows.length - 1].label}. Use the arrow keys to read each one.` }),
      el('p', { class: 'hover', 'aria-live': 'polite' }),
      el('details', {},
        el('summary', {}, `${caption}: every value`),
        el('table', { 'aria-labelledby': `chart-${id}` },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'When'), el('th', { scope: 'col' }, 'Value'),
            el('th', { scope: 'col' }, 'Source'))),
          el('tbody', {}, rows.map((r) => el('tr', { dataset: { date: r.date, disagree: r.disagree ? 'true' : 'false' } },
            el('th', { scope: 'row' }, r.label),
            el('td', { class: 'value', dataset: { value: String(r.value) } }, number(r.value)),
            el('td', { class: 'source' }, r.source,
              r.disagree ? el('span', { class: 'disagree' }, ` ◆ sources disagree: ${r.disagree}`) : null)))))));
    return box;
  }

  function dailyRows(reports, id, unit, marked) {
    return reports
      .filter((r) => r[id] !== null && r[id] !== undefined)
      .map((r) => {
        const source = (r.sources || {})[id] || 'unknown';
        const others = marked.get(r.date);
        const disagree = others ? others.map(([s, v]) => `${s} ${number(v)}`).join(', ') : null;
        return {
          date: r.date, x: seconds(r.date), value: r[id], source, disagree, label: day(r.date),
          words: `${day(r.date)}: ${number(r[id])} ${unit} from ${source}${disagree ? ` (sources disagree: ${disagree})` : ''}`,
        };
      });
  }

  function pointRows(series) {
    return series.points
      .map((p) => {
        const when = p.time ? new Date(p.time) : new Date(`${p.date}T00:00:00Z`);
        const label = p.time
          ? when.toLocaleString('en-US', { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' })
          : day(p.date);
        return { date: p.date, x: when.getTime() / 1000, value: p.value, source: p.source, disagree: null, label,
          words: `${label}: ${number(p.value)} ${series.unit} from ${p.source}` };
      })
      .sort((a, b) => a.x - b.x);
  }

  function workoutsList(workouts) {
    const list = document.getElementById('workouts');
    if (!workouts.length) {
      list.replaceChildren(el('li', { class: 'empty' }, 'No workouts on these days.'));
      return;
    }
    list.replaceChildren(...workouts.slice().reverse().map((w) => {
      const parts = [day(w.date), w.sport || 'workout'];
      if (w.duration_min !== null) parts.push(`${number(w.duration_min)} min`);
      if (w.distance_m !== null) parts.push(`${number(w.distance_m / 1000)} km`);
      if (w.calories_kcal !== null) parts.push(`${number(w.calories_kcal)} kcal`);
      parts.push(`from ${w.source}`);
      return el('li', { dataset: { date: w.date, source: w.source } }, parts.join(' · '));
    }));
  }

  function connectionsList(providers) {
    const list = document.getElementById('connections');
    const mine = providers.filter((p) => p.status);
    if (!mine.length) {
      list.replaceChildren(el('li', {}, 'No wearable is connected yet.'));
      return;
    }
    const words = { connected: 'connected', error: 'syncing stopped', refresh_failed: 'needs reconnecting',
      revoked: 'access removed', disconnected: 'disconnected' };
    list.replaceChildren(...mine.map((p) => el('li', { dataset: { vendor: p.id, state: p.status } },
      `${p.name}: ${words[p.status] || p.status} · last synced ${ago(p.last_sync_at)}`)));
  }

  async function load() {
    const mine = ++loading;
    quiet();
    const box = document.getElementById('charts');
    box.setAttribute('aria-busy', 'true');
    try {
      const report = await call('GET', `reports?days=${days}`);
      const span = new URLSearchParams({ since: report.from, until: report.to });
      const [series, workouts, providers] = await Promise.all([
        metrics([...DAILY, ...POINTS].map(([id]) => id), report.from, report.to),
        call('GET', `workouts?${span}`),
        call('GET', 'providers'),
      ]);
      if (mine !== loading) return;
      const reports = report.reports.slice().reverse();
      while (charts.length) charts.pop().u.destroy();
      const shown = DAILY.map(([id, label, unit]) =>
        ({ id, label, unit, rows: dailyRows(reports, id, unit, disagreements(id, series.get(id).points)) }));
      for (const [id, label] of POINTS) {
        const points = series.get(id);
        // Glucose only where there is any: most users have no CGM.
        if (points.points.length || id !== 'glucose') {
          shown.push({ id, label, unit: points.unit, rows: pointRows(points), dots: true });
        }
      }
      const figures = shown.map((c) => figure(c.id, c.label, c.unit, c.rows));
      box.replaceChildren(...figures);
      shown.forEach((c, i) => { if (c.rows.length) plot(figures[i], c.label, c.rows, c.dots); });
      workoutsList(workouts.workouts);
      connectionsList(providers.providers);
    } catch (err) {
      say(explain(err), 'error', el('button', { type: 'button', onclick: load }, 'Try again'));
    } finally {
      box.setAttribute('aria-busy', 'false');
    }
  }

  let resizing = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => {
      for (const c of charts) c.u.setSize({ width: Math.max(240, c.target.clientWidth), height: 160 });
    }, 150);
  });

  for (const b of document.querySelectorAll('.range button')) {
    b.addEventListener('click', () => {
      days = Number(b.dataset.days);
      for (const o of document.querySelectorAll('.range button')) o.setAttribute('aria-pressed', String(o === b));
      load();
    });
  }

  if (needsToken()) return;
  load();
})();
