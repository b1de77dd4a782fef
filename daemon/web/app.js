// parkgw dashboard: renders the daemon's status document (docs/OPERATOR.md)
// from its server-sent event stream /api/stream: a full "status" event on
// connect, then "delta" events with the meters that changed. EventSource
// reconnects by itself (the stream says retry: 2000), so the page survives a
// daemon restart; ages are recomputed every second against the daemon's
// clock, so values turn "stale" even when nothing arrives.
'use strict';
(function () {
  let doc = null, offset = 0, lastMsg = 0, es = null;
  const openDetails = new Set();
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  const UNITS = [['_kwh', 'kWh'], ['_kvarh', 'kvarh'], ['_kvar', 'kvar'], ['_kw', 'kW'],
    ['_nm3h', 'Nm³/h'], ['_nm3', 'Nm³'], ['_m3h', 'm³/h'], ['_m3', 'm³'], ['_kpa', 'kPa'],
    ['_hz', 'Hz'], ['_v', 'V'], ['_a', 'A'], ['_c', '°C']];
  const UTIL = { electricity: '电', water: '水', gas: '气', wastewater: '污水' };
  const RATE = { electricity: 'power_kw', water: 'flow_m3h', gas: 'flow_nm3h', wastewater: 'flow_m3h' };
  const STATE = { ok: '正常 ok', stale: '过期 stale', never: '无数据 never',
    comm_lost: '通讯中断 comm lost', supply_lost: '断供 supply lost' };

  function unitOf(point) {
    for (const [suf, u] of UNITS) if (point.endsWith(suf)) return [point.slice(0, -suf.length), u];
    return [point, ''];
  }
  function num(v) {
    if (typeof v !== 'number') return '–';
    const a = Math.abs(v);
    const d = a >= 10000 ? 1 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
    return v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  }
  function now() { return Date.now() + offset; }
  function fmtTime(ms) {
    if (!ms) return '–';
    const opts = { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false };
    if (now() - ms > 20 * 3600 * 1000) { opts.month = '2-digit'; opts.day = '2-digit'; }
    try { opts.timeZone = doc.timezone; return new Date(ms).toLocaleString('zh-CN', opts); }
    catch (e) { delete opts.timeZone; return new Date(ms).toLocaleString('zh-CN', opts); }
  }
  function dur(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  // The state shown now: the daemon's, turned stale when the last reading
  // got old since (the page's clock runs on between messages).
  function stateOf(m) {
    if (m.state !== 'ok' && m.state !== 'stale') return m.state;
    if (!m.last_read_ts) return 'never';
    return (now() - m.last_read_ts) / 1000 > 3 * m.interval + 5 ? 'stale' : 'ok';
  }

  function valueSpans(m) {
    const pts = (m.values && m.values.points) || {};
    const shown = [];
    const rate = RATE[m.utility];
    if (rate && rate in pts) shown.push(rate);
    if (m.billing && m.billing.point in pts) shown.push(m.billing.point);
    else if (m.billing) pts[m.billing.point] = m.billing.value, shown.push(m.billing.point);
    for (const p of ['voltage_a_v', 'current_a_a', 'pf', 'pressure_kpa'])
      if (p in pts && shown.length < 4) shown.push(p);
    return shown.map((p) => {
      const [label, unit] = unitOf(p);
      return `<span class="v" data-point="${esc(p)}" title="${esc(p)}"><b>${num(pts[p])}</b> <span>${esc(unit || label)}</span></span>`;
    }).join('');
  }
  function detailsOf(key, m) {
    const pts = (m.values && m.values.points) || {};
    const names = Object.keys(pts);
    if (!names.length) return '';
    const rows = names.map((p) => { const [, u] = unitOf(p);
      return `<tr><td>${esc(p)}</td><td>${num(pts[p])}</td><td>${esc(u)}</td></tr>`; }).join('');
    const polls = m.polls ? ` · polls ${m.polls.polls_ok}/${m.polls.polls}` : '';
    return `<details data-key="${esc(key)}"${openDetails.has(key) ? ' open' : ''}><summary>${names.length} points · read ${fmtTime(m.values.ts)}${polls}</summary><table>${rows}</table></details>`;
  }

  function render() {
    if (!doc) return;
    document.querySelectorAll('details[data-key]').forEach((d) => {
      if (d.open) openDetails.add(d.dataset.key); else openDetails.delete(d.dataset.key);
    });
    $('gw').textContent = 'parkgw ' + doc.gateway;
    const totals = { electricity: 0, water: 0, gas: 0, wastewater: 0 };
    let ok = 0, down = 0, stale = 0, n = 0;
    const alerts = [];
    const cards = doc.enterprises.map((ent) => {
      let entDown = false;
      const meters = ent.meters.map((m) => {
        const key = ent.id + '/' + m.id, st = stateOf(m);
        n++;
        if (st === 'ok') ok++; else if (st === 'comm_lost' || st === 'supply_lost') down++; else stale++;
        if (st === 'comm_lost' || st === 'supply_lost') {
          entDown = true;
          alerts.push({ ent, m, st, since: m.since || (m.alarms[0] && m.alarms[0].since) });
        }
        const pts = (m.values && m.values.points) || {};
        const rate = RATE[m.utility];
        if ((st === 'ok' || st === 'supply_lost') && rate && typeof pts[rate] === 'number') totals[m.utility] += pts[rate];
        const since = (st === 'comm_lost' || st === 'supply_lost') && m.since
          ? `<div class="since">since <time>${fmtTime(m.since)}</time> (${dur(now() - m.since)})${m.alarms.length ? ' · ' + m.alarms.map((a) => esc(a.alarm)).join(', ') : ''}</div>` : '';
        const age = m.last_read_ts ? `read ${dur(now() - m.last_read_ts)} ago` : 'never read';
        return `<div class="meter ${st}" data-meter="${esc(key)}" data-state="${st}">
<div class="top"><span><span class="name">${esc(m.id)}</span><span class="util">${esc(UTIL[m.utility] || '')} ${esc(m.utility)}</span></span>
<span class="badge ${st}" title="${esc(age)}">${esc(STATE[st] || st)}</span></div>
<div class="vals">${valueSpans(m)}</div>${since}${detailsOf(key, m)}</div>`;
      }).join('');
      return `<section class="ent${entDown ? ' down' : ''}" data-ent="${esc(ent.id)}"><h2>${esc(ent.name)}<small>${esc(ent.id)}</small></h2>${meters}</section>`;
    });
    $('enterprises').innerHTML = cards.join('');
    alerts.sort((a, b) => (a.since || 0) - (b.since || 0));
    $('alerts').innerHTML = alerts.map((a) =>
      `<div class="alert ${a.st}" data-meter="${esc(a.ent.id + '/' + a.m.id)}">${esc(a.ent.name)} · ${esc(a.m.id)} (${esc(a.m.utility)}): ${esc(STATE[a.st])}<time>since ${fmtTime(a.since)} · ${dur(now() - (a.since || now()))}</time></div>`).join('');
    const d = doc.daemon || {}, mq = d.mqtt || {};
    const tot = [
      [`${ok}/${n}`, '表计正常 meters ok'], [String(down), '故障 down', down > 0], [String(stale), '过期 stale/never', stale > 0],
      [num(totals.electricity) + ' kW', '总有功功率 park power'], [num(totals.water) + ' m³/h', '用水 water flow'],
      [num(totals.gas) + ' Nm³/h', '用气 gas flow'], [num(totals.wastewater) + ' m³/h', '排水 discharge'],
      [mq.connected ? 'connected' : 'disconnected', 'MQTT broker', !mq.connected],
      [String(doc.outbox ? doc.outbox.messages : '–'), 'outbox backlog']];
    $('totals').innerHTML = tot.map(([v, l, bad]) => `<div class="tot${bad ? ' bad' : ''}"><b>${esc(v)}</b><span>${esc(l)}</span></div>`).join('');
    const ev = (doc.events || []).map((e) =>
      `<tr class="${e.cleared_ts ? '' : 'open'}"><td>${fmtTime(e.since || e.raised_ts)}</td><td>${esc(e.enterprise_name || e.enterprise || ('bus ' + e.bus))}</td><td>${esc(e.meter || '')}</td><td>${esc(e.alarm)}</td><td>${e.cleared_ts ? fmtTime(e.cleared_ts) : 'open'}</td></tr>`);
    $('events').tBodies[0].innerHTML = ev.join('') || '<tr><td colspan="5">no events</td></tr>';
    $('foot').textContent = `parkgw ${doc.version} · gateway ${doc.gateway} · daemon pid ${d.pid || '–'} since ${fmtTime(d.started)} · updated ${fmtTime(doc.ts)} · database ${doc.database && doc.database.bytes ? (doc.database.bytes / 1048576).toFixed(1) + ' MiB' : '–'}`;
  }

  function setConn(cls, text) { const c = $('conn'); c.className = 'conn ' + cls; c.textContent = text; }
  function received(d) { offset = d.ts - Date.now(); lastMsg = Date.now(); setConn('live', 'live · 实时'); }
  function onStatus(ev) { doc = JSON.parse(ev.data); received(doc); render(); }
  function onDelta(ev) {
    const d = JSON.parse(ev.data);
    if (!doc) return;
    for (const c of d.changed) {
      const ent = doc.enterprises.find((e) => e.id === c.enterprise);
      // Only the members that changed: merge them.
      if (ent && ent.meters[c.index]) Object.assign(ent.meters[c.index], c.meter);
    }
    for (const k of ['ts', 'meters', 'daemon', 'outbox', 'database', 'events']) if (k in d) doc[k] = d[k];
    received(d); render();
  }
  function connect() {
    es = new EventSource('/api/stream');
    es.addEventListener('status', onStatus);
    es.addEventListener('delta', onDelta);
    es.onerror = () => {
      setConn('wait', 'reconnecting… 重连中');
      // A closed stream (daemon answered with an error) is not retried by
      // the browser: start a new one.
      if (es.readyState === EventSource.CLOSED) { es.close(); setTimeout(connect, 3000); }
    };
  }
  setInterval(() => {
    if (lastMsg && Date.now() - lastMsg > 35000) setConn('down', 'no data · 无数据 since ' + fmtTime(lastMsg + offset));
    render();
  }, 1000);
  connect();
})();
