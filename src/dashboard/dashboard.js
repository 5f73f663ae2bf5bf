'use strict';
// The operator dashboard in the browser. Data is only ever put into the DOM as text (textContent)
// or as SVG attributes, never as HTML; links are set only when they are http(s) or our own paths.
// The admin token lives in sessionStorage and travels only in the Authorization header.
// Over 400 lines on purpose: the page inlines this one script under a CSP that pins its hash, and
// inline scripts cannot import each other, so its sections (sign-in, live updates, tables,
// pictures, the checkpoint page, actions) share one closure, marked by `// ----` headings.
(() => {
  const TOKEN_KEY = 'e2epool.adminToken';
  const POLL_MS = Number(document.body.dataset.pollMs) || 5000;
  const RECONNECT_MS = Number(document.body.dataset.reconnectMs) || 10000;
  const HEALTH_MS = 10000;
  const HISTORY_MS = 60000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const checkpointMatch = /^\/dashboard\/checkpoints\/([^/]+)$/.exec(location.pathname);
  const checkpointName = checkpointMatch ? decodeURIComponent(checkpointMatch[1]) : null;

  let token = sessionStorage.getItem(TOKEN_KEY);
  let streamAbort = null;
  let pollTimer = null;
  let reconnectTimer = null;
  let healthTimer = null;
  let historyTimer = null;
  let clockSkewMs = 0;
  let lastState = null;
  let pendingAction = null;
  let historyRange = '24h';
  let runnerSort = { key: 'status', dir: 1 };
  let extraJobOutcomes = [];
  let jobOutcomesCursor = null;

  const byId = (id) => document.getElementById(id);

  function node(tag, props, children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v == null) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'className') e.className = v;
      else if (k === 'onclick') e.addEventListener('click', v);
      else e.setAttribute(k, v);
    }
    for (const c of children || []) if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text != null) e.textContent = text;
    return e;
  }

  function safeLink(url, text, label) {
    if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) return document.createTextNode(text);
    return node('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text, title: label, 'aria-label': label });
  }

  const checkpointPath = (name) => '/dashboard/checkpoints/' + encodeURIComponent(name);

  /** The checkpoint's own page, and its run in the Temporal Web UI beside it. */
  function checkpointLinks(name, temporalUrl) {
    return node('span', { className: 'cp-links' }, [
      node('a', { href: checkpointPath(name), text: name, 'aria-label': 'Show checkpoint ' + name }),
      ' ',
      safeLink(temporalUrl, 'Temporal', 'Open ' + name + ' in the Temporal Web UI'),
    ]);
  }

  function detailText(body) {
    if (body && typeof body === 'object' && 'detail' in body) {
      const d = body.detail;
      if (Array.isArray(d)) return d.map((i) => (i && i.msg ? (i.loc ? i.loc.join('.') + ': ' : '') + i.msg : String(i))).join('; ');
      return String(d);
    }
    return typeof body === 'string' && body ? body.slice(0, 300) : '';
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    const text = await res.text();
    let parsed = text;
    try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { ok: res.ok, status: res.status, body: parsed };
  }

  const authRefused = (res) => res.status === 401 || res.status === 403 || res.status === 422 || res.status === 503;

  // ---- sign in / out ----
  function showLogin(message) {
    byId('login').hidden = false;
    byId('app').hidden = true;
    byId('checkpoint-view').hidden = true;
    byId('live-status').hidden = true;
    byId('sign-out').hidden = true;
    byId('updated-at').textContent = '';
    byId('login-error').textContent = message || '';
    byId('token-input').value = '';
    byId('token-input').focus();
  }

  function showApp() {
    byId('login').hidden = true;
    byId('app').hidden = checkpointName !== null;
    byId('checkpoint-view').hidden = checkpointName === null;
    byId('live-status').hidden = false;
    byId('sign-out').hidden = false;
  }

  function signOut(message) {
    stopLive();
    token = null;
    lastState = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(message);
  }

  async function signIn(candidate) {
    token = candidate;
    let res;
    try {
      res = await api('GET', '/api/dashboard/state');
    } catch (err) {
      token = null;
      showLogin('Cannot reach the controller: ' + err.message);
      return;
    }
    if (!res.ok) {
      token = null;
      showLogin('Sign-in failed (' + res.status + '): ' + (detailText(res.body) || 'HTTP ' + res.status));
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, candidate);
    showApp();
    render(res.body);
    void startStream();
    startHealth();
    if (checkpointName === null) startHistory();
  }

  byId('login-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = byId('token-input').value.trim();
    if (!value) { byId('login-error').textContent = 'Enter the admin token.'; return; }
    byId('login-error').textContent = 'Signing in…';
    void signIn(value);
  });
  byId('sign-out').addEventListener('click', () => signOut('Signed out.'));

  // ---- header: reachability and version from /health (public, no token) ----
  function chip(id, text, kind) {
    const e = byId(id);
    e.textContent = text;
    e.className = 'chip ' + (kind || '');
  }

  async function refreshHealth() {
    try {
      const res = await fetch('/health', { cache: 'no-store', headers: { Accept: 'application/json' } });
      const h = await res.json();
      chip('hdr-temporal', h.temporal && h.temporal.reachable ? 'Temporal reachable' : 'Temporal unreachable', h.temporal && h.temporal.reachable ? 'ok' : 'bad');
      chip('hdr-database', h.database && h.database.reachable ? 'Database reachable' : 'Database unreachable', h.database && h.database.reachable ? 'ok' : 'bad');
      chip('hdr-version', 'version ' + (h.version || 'unknown'), 'muted-chip');
    } catch {
      chip('hdr-temporal', 'Temporal unknown', 'warn');
      chip('hdr-database', 'Database unknown', 'warn');
    }
  }

  function startHealth() {
    if (healthTimer) return;
    void refreshHealth();
    healthTimer = setInterval(refreshHealth, HEALTH_MS);
  }

  // ---- live updates: SSE over fetch, polling while the stream is down ----
  function setLive(kind, text) {
    const e = byId('live-status');
    e.className = 'live ' + kind;
    e.textContent = text;
  }

  function stopLive() {
    if (streamAbort) { streamAbort.abort(); streamAbort = null; }
    for (const t of [pollTimer, healthTimer, historyTimer]) if (t) clearInterval(t);
    if (reconnectTimer) clearTimeout(reconnectTimer);
    pollTimer = healthTimer = historyTimer = reconnectTimer = null;
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(refresh, POLL_MS);
    void refresh();
  }

  async function refresh() {
    if (!token) return;
    try {
      const res = await api('GET', '/api/dashboard/state');
      if (res.ok) render(res.body);
      else if (authRefused(res)) signOut('The controller refused the token (' + res.status + '): ' + detailText(res.body));
    } catch {
      setLive('off', 'Controller unreachable; retrying');
    }
  }

  function streamBroken() {
    if (!token) return;
    setLive('off', 'Live stream interrupted; polling every ' + POLL_MS / 1000 + ' s');
    startPolling();
    if (!reconnectTimer) reconnectTimer = setTimeout(() => { reconnectTimer = null; void startStream(); }, RECONNECT_MS);
  }

  async function startStream() {
    if (streamAbort) streamAbort.abort();
    const ctrl = new AbortController();
    streamAbort = ctrl;
    try {
      const res = await fetch('/api/dashboard/events', { headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' }, cache: 'no-store', signal: ctrl.signal });
      if (authRefused(res)) { signOut('The controller refused the token (' + res.status + ').'); return; }
      if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
      setLive('on', 'Live');
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      await readEvents(res.body.getReader(), ctrl);
    } catch {
      /* handled below */
    }
    if (!ctrl.signal.aborted) streamBroken();
  }

  async function readEvents(reader, ctrl) {
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done || ctrl.signal.aborted) return;
      buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n');
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        handleEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
      }
    }
  }

  function handleEvent(block) {
    let name = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line === '' || line.charAt(0) === ':') continue; // comments are heartbeats
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    }
    if (!data.length) return;
    let payload;
    try { payload = JSON.parse(data.join('\n')); } catch { return; }
    if (name === 'state') { setLive('on', 'Live'); render(payload); }
    else if (name === 'problem') setLive('off', payload.detail || 'Controller problem');
  }

  // ---- formatting ----
  const plural = (n, one, many) => n + ' ' + (n === 1 ? one : many);

  function duration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 90) return s + ' s';
    const m = Math.round(s / 60);
    if (m < 90) return m + ' min';
    const h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  const age = (iso) => duration((Date.now() + clockSkewMs - Date.parse(iso)) / 1000);

  function ageCell(iso, suffix) {
    if (!iso) return node('td', { text: '–' });
    const cell = node('td', { title: new Date(iso).toLocaleString() }, [node('span', { 'data-since': iso, text: age(iso) })]);
    if (suffix) cell.appendChild(node('div', { className: 'muted', text: suffix }));
    return cell;
  }

  const tickAges = () => {
    for (const e of document.querySelectorAll('[data-since]')) e.textContent = age(e.getAttribute('data-since'));
  };

  const STATE_KIND = {
    creating: 'info', created: 'info', finalize_queued: 'warn', cleaning: 'warn', pausing: 'warn', confirming_idle: 'warn',
    resetting: 'warn', awaiting_readiness: 'warn', releasing_claim: 'warn', unpausing: 'warn', needs_attention: 'bad',
    deleted: 'ok', reset: 'ok', gc_reset: 'ok', create_failed: 'bad', released: '',
  };
  const RUNNER_KIND = { needs_attention: 'bad', drained: 'warn', offline: '', busy: 'info', idle: 'ok' };
  const RUNNER_ORDER = { needs_attention: 0, offline: 1, drained: 2, busy: 3, idle: 4 };
  const PROBLEM_LABEL = { needs_attention: 'needs attention', stuck: 'stuck', create_failed: 'create failed', unpause_slow: 'unpause slow' };
  const HANDLED_LABEL = { rolled_back: 'rolled back', in_progress: 'resetting', pool_problem: 'pool problem' };
  const HANDLED_KIND = { rolled_back: 'ok', in_progress: 'warn', pool_problem: 'bad' };

  const badge = (text, kind) => node('span', { className: 'badge ' + (kind || ''), text });
  const percent = (rate) => (rate == null ? '–' : Math.round(rate * 1000) / 10 + ' %');

  function fillTable(id, rows, emptyText, columns) {
    const body = byId(id);
    body.textContent = '';
    if (!rows.length) {
      body.appendChild(node('tr', null, [node('td', { colspan: String(columns), className: 'empty', text: emptyText })]));
      return;
    }
    for (const r of rows) body.appendChild(r);
  }

  // ---- overview ----
  function render(s) {
    lastState = s;
    clockSkewMs = Date.parse(s.generatedAt) - Date.now();
    byId('updated-at').textContent = 'Updated ' + new Date(s.generatedAt).toLocaleTimeString();
    renderMaintenance(s.maintenance);
    if (checkpointName !== null) { void refreshCheckpoint(); return; }

    const rc = s.runnerCounts;
    byId('tile-attention').textContent = String(s.problems.needsAttention);
    byId('tile-stuck').textContent = String(s.problems.stuck);
    byId('tile-offline').textContent = String(s.problems.offline);
    const pool = s.outcomes.pool;
    byId('tile-success').textContent = percent(pool.successRate);
    byId('tile-success-detail').textContent = plural(pool.cleanEnds, 'clean end', 'clean ends') + ', ' + plural(pool.problems, 'pool problem', 'pool problems');
    byId('tile-runners').textContent = rc.online + ' / ' + rc.total;
    byId('tile-queue').textContent = String(s.queueDepth);
    byId('tile-active').textContent = String(s.activeCheckpoints.length) + (s.activeTruncated ? '+' : '');
    const jobs = s.outcomes.jobs;
    byId('tile-jobs').textContent = jobs.succeeded + ' / ' + jobs.failed + ' / ' + jobs.canceled;
    const decided = jobs.succeeded + jobs.failed;
    byId('tile-jobs-detail').textContent = decided ? 'pass rate ' + percent(jobs.succeeded / decided) : 'no finished jobs';
    for (const [id, value] of [['tile-attention', s.problems.needsAttention], ['tile-stuck', s.problems.stuck], ['tile-offline', s.problems.offline]]) {
      byId(id).parentElement.classList.toggle('alarm', value > 0);
    }

    const pp = s.poolProblems;
    byId('pool-problems-count').textContent = pp.total > pp.items.length ? '(' + pp.items.length + ' of ' + pp.total + ')' : '(' + pp.total + ')';
    fillTable('pool-problems-body', pp.items.map(problemRow), 'No pool problems.', 6);
    renderRunners();
    fillTable('active-body', s.activeCheckpoints.map(activeRow), 'No active checkpoints.', 9);
    renderJobOutcomes();
    fillTable('alerts-body', s.alerts.map(alertRow), 'No open alerts.', 4);
  }

  function renderMaintenance(m) {
    const banner = byId('maintenance-banner');
    banner.hidden = !(m && m.enabled);
    banner.textContent = m && m.enabled ? 'Maintenance mode is on: ' + m.message + ' — new checkpoints are refused.' : '';
    byId('maintenance-state').textContent = m ? (m.enabled ? 'On' : 'Off') : 'Unknown';
    chip('hdr-maintenance', m ? (m.enabled ? 'Maintenance on' : 'Maintenance off') : 'Maintenance unknown', m && m.enabled ? 'warn' : 'ok');
    const toggle = byId('maintenance-toggle');
    toggle.textContent = m && m.enabled ? 'Disable maintenance' : 'Enable maintenance';
    toggle.className = m && m.enabled ? 'primary' : 'danger';
  }

  function attentionButtons(name) {
    return [
      node('button', { type: 'button', 'aria-label': 'Retry reset of ' + name, text: 'Retry reset', onclick: () => confirmRetry(name) }),
      node('button', { type: 'button', className: 'danger', 'aria-label': 'Release ' + name, text: 'Release', onclick: () => confirmRelease(name) }),
    ];
  }

  function problemRow(p) {
    return node('tr', { 'data-problem': p.kind }, [
      node('td', null, [badge(PROBLEM_LABEL[p.kind] || p.kind, p.kind === 'stuck' || p.kind === 'unpause_slow' ? 'warn' : 'bad')]),
      node('td', { className: 'name' }, [p.checkpointName ? checkpointLinks(p.checkpointName, p.temporalUrl) : node('span', { className: 'muted', text: '–' })]),
      node('td', { text: p.runnerId || '–' }),
      ageCell(p.at),
      node('td', { className: 'wrap' }, [node('strong', { text: p.reason }), p.detail ? node('div', { className: 'muted', text: p.detail }) : null]),
      node('td', null, [node('div', { className: 'row-actions' }, p.kind === 'needs_attention' && p.checkpointName ? attentionButtons(p.checkpointName) : [])]),
    ]);
  }

  // ---- runners: filter and sort ----
  const sortValue = {
    runnerId: (r) => r.runnerId,
    status: (r) => RUNNER_ORDER[r.status] + ':' + r.runnerId,
    online: (r) => (r.agent.online ? 1 : 0),
    lastSeen: (r) => (r.agent.online ? Infinity : r.agent.lastSeen ? Date.parse(r.agent.lastSeen) : 0),
    version: (r) => r.agent.version || '',
    checkpoint: (r) => (r.checkpoint ? r.checkpoint.state : ''),
    paused: (r) => (r.gitlabPaused === true ? 2 : r.gitlabPaused === false ? 1 : 0),
    drained: (r) => (r.drained ? 1 : 0),
    attention: (r) => r.needsAttentionReason || '',
  };

  function runnerMatches(r, text, status) {
    if (status === 'problems' && r.status !== 'needs_attention' && r.status !== 'offline') return false;
    if (status && status !== 'problems' && r.status !== status) return false;
    if (!text) return true;
    const hay = [r.runnerId, r.backend, r.status, r.agent.version, r.agent.bootId, r.checkpoint && r.checkpoint.name, r.checkpoint && r.checkpoint.state, r.needsAttentionReason].join(' ').toLowerCase();
    return hay.includes(text);
  }

  function renderRunners() {
    if (!lastState) return;
    const text = byId('runner-filter').value.trim().toLowerCase();
    const status = byId('runner-status-filter').value;
    const value = sortValue[runnerSort.key] || sortValue.status;
    const shown = lastState.runners.filter((r) => runnerMatches(r, text, status)).sort((a, b) => {
      const x = value(a);
      const y = value(b);
      return (x < y ? -1 : x > y ? 1 : a.runnerId < b.runnerId ? -1 : 1) * runnerSort.dir;
    });
    byId('runner-count').textContent = shown.length + ' of ' + lastState.runners.length;
    for (const th of byId('runners-head').querySelectorAll('th')) th.removeAttribute('aria-sort');
    const active = byId('runners-head').querySelector('[data-sort="' + runnerSort.key + '"]');
    if (active) active.parentElement.setAttribute('aria-sort', runnerSort.dir > 0 ? 'ascending' : 'descending');
    fillTable('runners-body', shown.map(runnerRow), lastState.runners.length ? 'No runner matches the filter.' : 'No active runners.', 10);
  }

  byId('runner-filter').addEventListener('input', renderRunners);
  byId('runner-status-filter').addEventListener('change', renderRunners);
  for (const b of document.querySelectorAll('#runners-head button.sort')) {
    b.addEventListener('click', () => {
      const key = b.getAttribute('data-sort');
      runnerSort = { key, dir: runnerSort.key === key ? -runnerSort.dir : 1 };
      renderRunners();
    });
  }

  function runnerRow(r) {
    const c = r.checkpoint;
    const a = r.agent;
    const actions = node('div', { className: 'row-actions' }, [
      r.drained
        ? node('button', { type: 'button', 'aria-label': 'Undrain runner ' + r.runnerId, text: 'Undrain', onclick: () => confirmUndrain(r.runnerId) })
        : node('button', { type: 'button', className: 'danger', 'aria-label': 'Drain runner ' + r.runnerId, text: 'Drain', onclick: () => confirmDrain(r.runnerId) }),
    ]);
    let lastSeen;
    if (a.online) lastSeen = node('td', { text: 'now' });
    else if (a.lastSeen) lastSeen = ageCell(a.lastSeen, a.disconnectedAt ? 'disconnected ' + new Date(a.disconnectedAt).toLocaleTimeString() : 'session went stale');
    else lastSeen = node('td', { text: 'never' });
    return node('tr', { 'data-runner': r.runnerId }, [
      node('td', { className: 'runner-id' }, [node('strong', { text: r.runnerId }), node('div', { className: 'muted', text: r.backend + (r.source === 'api' ? ' · api' : '') })]),
      node('td', null, [badge(r.status.replace('_', ' '), RUNNER_KIND[r.status])]),
      node('td', null, [
        badge(a.online ? 'online' : 'offline', a.online ? 'ok' : ''),
        node('div', { className: 'muted', text: r.agentCredential === 'agent_token' ? 'own credential' : 'legacy: runner token' }),
      ]),
      lastSeen,
      node('td', null, [
        node('div', { text: a.version || '–' }),
        node('div', { className: 'muted mono', title: a.bootId ? 'boot id ' + a.bootId + (a.sessionEpoch != null ? ', session epoch ' + a.sessionEpoch : '') : null, text: a.bootId ? 'boot ' + a.bootId.slice(0, 8) : a.sessionEpoch != null ? 'epoch ' + a.sessionEpoch : '' }),
      ]),
      node('td', { className: 'name' }, c
        ? [node('a', { href: checkpointPath(c.name), text: c.name, 'aria-label': 'Show checkpoint ' + c.name }), node('div', null, [badge(c.state, STATE_KIND[c.state]), ' ', node('span', { className: 'muted', 'data-since': c.createdAt, text: age(c.createdAt) })])]
        : [node('span', { className: 'muted', text: 'none' })]),
      node('td', null, [r.gitlabPaused == null ? node('span', { className: 'muted', text: '–' }) : badge(r.gitlabPaused ? 'paused' : 'active', r.gitlabPaused ? 'warn' : 'ok')]),
      node('td', { text: r.drained ? 'yes' : 'no' }),
      node('td', { className: 'wrap narrow' }, [r.needsAttentionReason ? badge(r.needsAttentionReason, 'bad') : node('span', { className: 'muted', text: '–' })]),
      node('td', null, [actions]),
    ]);
  }

  function activeRow(c) {
    return node('tr', { 'data-checkpoint': c.name }, [
      node('td', { className: 'name' }, [checkpointLinks(c.name, c.temporalUrl)]),
      node('td', { text: c.runnerId }),
      node('td', { text: c.jobId }),
      node('td', null, [badge(c.state, STATE_KIND[c.state]), c.stuck ? ' ' : null, c.stuck ? badge('stuck', 'bad') : null]),
      node('td', { text: c.phase }),
      ageCell(c.createdAt),
      ageCell(c.updatedAt),
      node('td', { className: 'wrap detail', text: [c.finalizeStatus, c.needsAttentionReason, c.detail].filter(Boolean).join(' · ') || '–' }),
      node('td', null, [node('div', { className: 'row-actions' }, c.state === 'needs_attention' ? attentionButtons(c.name) : [])]),
    ]);
  }

  // ---- job outcomes: the snapshot's first page, then more on request ----
  function renderJobOutcomes() {
    const page = lastState.jobOutcomes;
    const seen = new Set(page.items.map((j) => j.checkpointName));
    const items = page.items.concat(extraJobOutcomes.filter((j) => !seen.has(j.checkpointName)));
    byId('job-outcomes-count').textContent = '(' + (items.length < page.total ? items.length + ' of ' + page.total : page.total) + ')';
    fillTable('job-outcomes-body', items.map(jobRow), 'No failed or canceled jobs in the last 24 hours.', 7);
    if (!extraJobOutcomes.length) jobOutcomesCursor = page.nextCursor;
    byId('job-outcomes-more').hidden = !jobOutcomesCursor;
  }

  byId('job-outcomes-more').addEventListener('click', async () => {
    if (!jobOutcomesCursor) return;
    const res = await api('GET', '/api/dashboard/job-outcomes?cursor=' + encodeURIComponent(jobOutcomesCursor));
    if (!res.ok) { showResult(false, 'Loading more jobs failed (' + res.status + '): ' + detailText(res.body)); return; }
    extraJobOutcomes = extraJobOutcomes.concat(res.body.items);
    jobOutcomesCursor = res.body.nextCursor;
    renderJobOutcomes();
  });

  function jobRow(j) {
    return node('tr', { 'data-job': j.jobId }, [
      node('td', { className: 'name' }, [checkpointLinks(j.checkpointName, j.temporalUrl)]),
      node('td', { text: j.runnerId }),
      node('td', { text: j.jobId }),
      node('td', null, [badge(j.finalizeStatus, j.finalizeStatus === 'failure' ? 'warn' : '')]),
      node('td', { text: j.finalizeSource || '–' }),
      node('td', null, [badge(HANDLED_LABEL[j.handled] || j.handled, HANDLED_KIND[j.handled])]),
      ageCell(j.finalizedAt),
    ]);
  }

  function alertRow(a) {
    const subject = a.checkpointName
      ? node('a', { href: checkpointPath(a.checkpointName), text: a.checkpointName, 'aria-label': 'Show checkpoint ' + a.checkpointName })
      : document.createTextNode(a.runnerId || '–');
    return node('tr', null, [
      node('td', null, [badge(a.severity, a.severity === 'critical' || a.severity === 'error' ? 'bad' : 'warn')]),
      node('td', { className: 'wrap', text: a.message }),
      node('td', null, [subject]),
      ageCell(a.openedAt),
    ]);
  }

  // ---- pictures: SVG drawn here, from /api/dashboard/history ----
  const CHART = { w: 560, h: 180, left: 44, right: 10, top: 10, bottom: 24 };
  const OUTCOME_SERIES = [
    { key: 'ok', label: 'job passed, cleaned up' },
    { key: 'job_failed', label: 'job failed, rolled back' },
    { key: 'gc_reset', label: 'reclaimed (TTL)' },
    { key: 'released', label: 'released by an operator' },
    { key: 'pool_problem', label: 'pool problem' },
  ];

  function niceMax(v) {
    if (v <= 0) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /** A top for counts whose middle grid line is a whole number too (never 0, 0.5, 1). */
  function countMax(v) {
    return v <= 10 ? Math.max(2, 2 * Math.ceil(v / 2)) : niceMax(v);
  }

  function timeLabel(iso, range) {
    const d = new Date(iso);
    const hm = String(d.getHours()).padStart(2, '0') + ':' + String(d.getMinutes()).padStart(2, '0');
    return range === '7d' ? d.toLocaleDateString(undefined, { weekday: 'short' }) + ' ' + hm : hm;
  }

  /** Clears the chart and draws its frame: y grid with labels, x labels; returns the scales. */
  function frame(el, fromMs, toMs, yMax, yFormat, range) {
    el.textContent = '';
    el.setAttribute('viewBox', '0 0 ' + CHART.w + ' ' + CHART.h);
    el.setAttribute('preserveAspectRatio', 'none');
    const plotW = CHART.w - CHART.left - CHART.right;
    const plotH = CHART.h - CHART.top - CHART.bottom;
    const x = (t) => CHART.left + ((t - fromMs) / (toMs - fromMs)) * plotW;
    const y = (v) => CHART.top + plotH - (v / yMax) * plotH;
    for (const f of [0, 0.5, 1]) {
      const v = yMax * f;
      el.appendChild(svg('line', { class: 'grid', x1: CHART.left, x2: CHART.w - CHART.right, y1: y(v), y2: y(v) }));
      el.appendChild(svg('text', { class: 'axis', x: CHART.left - 4, y: y(v) + 4, 'text-anchor': 'end' }, yFormat(v)));
    }
    for (let i = 0; i <= 4; i++) {
      const t = fromMs + ((toMs - fromMs) * i) / 4;
      el.appendChild(svg('text', { class: 'axis', x: x(t), y: CHART.h - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle' }, timeLabel(new Date(t).toISOString(), range)));
    }
    return { x, y, plotH };
  }

  function legend(id, series) {
    fillList(id, series.map((s) => node('li', null, [node('span', { className: 'swatch s-' + s.key }), s.label])));
  }

  function fillList(id, items) {
    const e = byId(id);
    e.textContent = '';
    for (const i of items) e.appendChild(i);
  }

  function noData(el, text) {
    el.appendChild(svg('text', { class: 'nodata', x: CHART.w / 2, y: CHART.h / 2, 'text-anchor': 'middle' }, text));
  }

  function drawOutcomes(h) {
    const el = byId('chart-outcomes');
    const fromMs = Date.parse(h.from);
    const bucketMs = h.bucketSeconds * 1000;
    const toMs = fromMs + h.checkpoints.length * bucketMs;
    const totals = h.checkpoints.map((b) => OUTCOME_SERIES.reduce((n, s) => n + b[s.key], 0));
    const sc = frame(el, fromMs, toMs, countMax(Math.max(0, ...totals)), (v) => String(Math.round(v)), h.range);
    h.checkpoints.forEach((b, i) => {
      let base = 0;
      const x0 = sc.x(fromMs + i * bucketMs) + 1;
      const w = Math.max(1, sc.x(fromMs + (i + 1) * bucketMs) - x0 - 1);
      for (const s of OUTCOME_SERIES) {
        const n = b[s.key];
        if (!n) continue;
        const rect = svg('rect', { class: 'bar s-' + s.key, x: x0, width: w, y: sc.y(base + n), height: sc.y(base) - sc.y(base + n), 'data-series': s.key });
        rect.appendChild(svg('title', null, timeLabel(b.at, h.range) + ': ' + n + ' ' + s.label));
        el.appendChild(rect);
        base += n;
      }
    });
    if (!totals.some((n) => n > 0)) noData(el, 'No checkpoint ended in this range.');
    byId('chart-outcomes-title').textContent = 'Checkpoints by outcome, per ' + (h.bucketSeconds === 3600 ? 'hour' : h.bucketSeconds / 3600 + ' h');
    legend('chart-outcomes-legend', OUTCOME_SERIES);
  }

  function polyline(el, sc, points, cls) {
    // Gaps (null) split the line.
    let run = [];
    const flush = () => {
      if (run.length === 1) el.appendChild(svg('circle', { class: 'dot ' + cls, cx: run[0][0], cy: run[0][1], r: 2.5 }));
      else if (run.length > 1) el.appendChild(svg('polyline', { class: 'line ' + cls, points: run.map((p) => p[0].toFixed(1) + ',' + p[1].toFixed(1)).join(' ') }));
      run = [];
    };
    for (const [t, v] of points) {
      if (v == null) flush();
      else run.push([sc.x(t), sc.y(v)]);
    }
    flush();
  }

  function drawDurations(h, kind) {
    const el = byId('chart-' + kind);
    const fromMs = Date.parse(h.from);
    const bucketMs = h.bucketSeconds * 1000;
    const toMs = fromMs + h.durations.length * bucketMs;
    const values = h.durations.flatMap((b) => [b[kind].p50, b[kind].p95]).filter((v) => v != null);
    const sc = frame(el, fromMs, toMs, niceMax(Math.max(0, ...values)), (v) => duration(v), h.range);
    const mid = (i) => fromMs + (i + 0.5) * bucketMs;
    polyline(el, sc, h.durations.map((b, i) => [mid(i), b[kind].p95]), 's-p95');
    polyline(el, sc, h.durations.map((b, i) => [mid(i), b[kind].p50]), 's-p50');
    if (!values.length) noData(el, 'No ' + kind + ' measured in this range.');
    const count = h.durations.reduce((n, b) => n + b[kind].count, 0);
    legend('chart-' + kind + '-legend', [{ key: 'p50', label: 'median' }, { key: 'p95', label: '95th percentile' }, { key: 'n', label: count + ' checkpoints' }]);
  }

  function drawQueue(h) {
    const el = byId('chart-queue');
    const fromMs = Date.parse(h.from);
    // The same time axis as the other pictures; each step's peak drawn at its middle (never past now).
    const toMs = fromMs + h.checkpoints.length * h.bucketSeconds * 1000;
    const nowMs = Math.max(Date.parse(h.to), fromMs);
    const half = (h.queue.stepSeconds * 1000) / 2;
    const points = h.queue.points.map((p) => [Math.min(Date.parse(p.at) + half, nowMs), p.depth]);
    const sc = frame(el, fromMs, toMs, countMax(Math.max(0, ...points.map((p) => p[1]))), (v) => String(Math.round(v)), h.range);
    if (points.length) {
      const area = points.map((p) => sc.x(p[0]).toFixed(1) + ',' + sc.y(p[1]).toFixed(1));
      area.push(sc.x(points[points.length - 1][0]).toFixed(1) + ',' + sc.y(0).toFixed(1), sc.x(points[0][0]).toFixed(1) + ',' + sc.y(0).toFixed(1));
      el.appendChild(svg('polygon', { class: 'area s-queue', points: area.join(' ') }));
      polyline(el, sc, points, 's-queue');
    }
    const peak = Math.max(0, ...points.map((p) => p[1]));
    legend('chart-queue-legend', [{ key: 'queue', label: 'most checkpoints waiting for finalize work at once, per ' + duration(h.queue.stepSeconds) + '; peak ' + peak }]);
  }

  async function refreshHistory() {
    if (!token || checkpointName !== null) return;
    const res = await api('GET', '/api/dashboard/history?range=' + historyRange).catch(() => null);
    if (!res || !res.ok) return;
    drawOutcomes(res.body);
    drawQueue(res.body);
    for (const kind of ['reset', 'readiness', 'turnaround']) drawDurations(res.body, kind);
    byId('charts-heading').setAttribute('data-range', res.body.range);
  }

  function startHistory() {
    if (historyTimer) return;
    void refreshHistory();
    historyTimer = setInterval(refreshHistory, HISTORY_MS);
  }

  for (const range of ['24h', '7d']) {
    byId('range-' + range).addEventListener('click', () => {
      historyRange = range;
      byId('range-24h').setAttribute('aria-pressed', String(range === '24h'));
      byId('range-7d').setAttribute('aria-pressed', String(range === '7d'));
      void refreshHistory();
    });
  }

  // ---- one checkpoint's page ----
  let checkpointLoading = false;
  async function refreshCheckpoint() {
    if (checkpointLoading || !token) return;
    checkpointLoading = true;
    try {
      const res = await api('GET', '/api/dashboard/checkpoints/' + encodeURIComponent(checkpointName));
      if (res.ok) renderCheckpoint(res.body);
      else if (res.status === 404) renderMissing();
      else if (authRefused(res)) signOut('The controller refused the token (' + res.status + ').');
    } finally {
      checkpointLoading = false;
    }
  }

  function renderMissing() {
    byId('cp-name').textContent = checkpointName;
    fillList('cp-facts', [node('dt', { text: 'Not found' }), node('dd', { text: 'No checkpoint has this name.' })]);
  }

  function fact(label, value) {
    return [node('dt', { text: label }), node('dd', null, [typeof value === 'string' ? document.createTextNode(value) : value])];
  }

  function renderCheckpoint(d) {
    const c = d.checkpoint;
    document.title = c.name + ' · e2epool dashboard';
    byId('cp-name').textContent = c.name;
    const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');
    fillList('cp-facts', [
      ...fact('State', node('span', null, [badge(c.state, STATE_KIND[c.state]), ' ', c.phase, c.stuck ? ' · ' : '', c.stuck ? badge('stuck', 'bad') : null])),
      ...fact('Runner', c.runnerId + ' (' + c.backend + (c.vmid != null ? ', VM ' + c.vmid : '') + ')'),
      ...fact('Job', c.jobId + (c.projectId ? ' in project ' + c.projectId : '')),
      ...fact('Job status', c.finalizeStatus ? c.finalizeStatus + (c.finalizeSource ? ' (from ' + c.finalizeSource + ')' : '') : 'not finalized'),
      ...(c.needsAttentionReason ? fact('Needs attention', node('span', null, [badge(c.needsAttentionReason, 'bad'), ' ', c.detail || ''])) : []),
      ...fact('Created', when(c.createdAt)),
      ...fact('Finalized', when(c.finalizedAt)),
      ...fact('Ended', when(c.endedAt)),
      ...fact('Temporal', safeLink(d.temporalUrl, 'Open the workflow run', 'Open ' + c.name + ' in the Temporal Web UI')),
    ]);
    const actions = byId('cp-actions');
    actions.textContent = '';
    if (d.actions.retryReset || d.actions.release) for (const b of attentionButtons(c.name)) actions.appendChild(b);
    else actions.appendChild(node('span', { className: 'muted', text: c.endedAt ? 'Ended: no action.' : 'No operator action while the workflow is working.' }));

    const longest = Math.max(1, ...d.timeline.map((t) => t.seconds || 0));
    fillTable('cp-timeline-body', d.timeline.map((t, i) => {
      const last = i === d.timeline.length - 1;
      const bar = svg('svg', { class: 'step-bar', viewBox: '0 0 200 12', preserveAspectRatio: 'none', role: 'img', 'aria-label': t.seconds == null ? 'end state' : duration(t.seconds) + ' in ' + t.to });
      if (t.seconds != null) bar.appendChild(svg('rect', { class: 'bar ' + (t.to === 'needs_attention' ? 's-pool_problem' : last && !c.endedAt ? 's-current' : 's-step'), x: 0, y: 0, height: 12, width: Math.max(1, (t.seconds / longest) * 200) }));
      return node('tr', { 'data-seq': String(t.seq) }, [
        node('td', { text: String(t.seq) }),
        node('td', { title: t.at, text: new Date(t.at).toLocaleTimeString() }),
        node('td', { text: t.event }),
        node('td', null, [badge(t.to, STATE_KIND[t.to])]),
        node('td', { className: 'bar-col' }, [bar, node('span', { className: 'muted', text: t.seconds == null ? ' end' : ' ' + duration(t.seconds) + (last && !c.endedAt ? ' so far' : '') })]),
        node('td', { className: 'wrap', text: t.detail || '–' }),
      ]);
    }), 'No transitions recorded yet.', 6);
    fillTable('cp-commands-body', d.commandResults.map((r) => node('tr', null, [
      node('td', { title: r.at, text: new Date(r.at).toLocaleTimeString() }),
      node('td', { text: r.step }),
      node('td', null, [badge(r.ok ? 'ok' : 'failed', r.ok ? 'ok' : 'bad')]),
      node('td', { className: 'wrap mono', text: r.detail || '–' }),
    ])), 'No command or step has reported yet.', 4);
    fillTable('cp-alerts-body', d.alerts.map((a) => node('tr', null, [
      node('td', null, [badge(a.severity, a.severity === 'critical' || a.severity === 'error' ? 'bad' : 'warn')]),
      node('td', { className: 'wrap', text: a.message }),
      node('td', { text: when(a.openedAt) }),
      node('td', { text: a.resolvedAt ? when(a.resolvedAt) : 'open' }),
    ])), 'This checkpoint raised no alert.', 4);
  }

  // ---- actions: every one asks first, then shows its result ----
  function showResult(ok, text) {
    const e = byId(checkpointName === null ? 'action-result' : 'cp-result');
    e.className = 'result ' + (ok ? 'ok' : 'error');
    e.textContent = text;
  }

  function ask(opts) {
    pendingAction = opts;
    byId('confirm-title').textContent = opts.title;
    byId('confirm-text').textContent = opts.text;
    byId('confirm-delete-row').hidden = !opts.withDeleteSnapshot;
    byId('confirm-delete-snapshot').checked = false;
    byId('confirm-ok').textContent = opts.confirmText;
    byId('confirm-dialog').showModal();
  }

  byId('confirm-cancel').addEventListener('click', () => { pendingAction = null; byId('confirm-dialog').close(); });
  byId('confirm-ok').addEventListener('click', async () => {
    const action = pendingAction;
    pendingAction = null;
    const deleteSnapshot = byId('confirm-delete-snapshot').checked;
    byId('confirm-dialog').close();
    if (!action) return;
    const what = action.title.replace(/\?$/, '');
    showResult(true, what + '…');
    try {
      const res = await action.run(deleteSnapshot);
      if (res.ok) showResult(true, action.done(res.body, deleteSnapshot));
      else if (res.status === 401 || res.status === 403) { signOut('The controller refused the token (' + res.status + ').'); return; }
      else showResult(false, what + ' failed (' + res.status + '): ' + (detailText(res.body) || 'no detail'));
      void refresh();
    } catch (err) {
      showResult(false, what + ' failed: ' + err.message);
    }
  });

  function confirmDrain(id) {
    ask({ title: 'Drain runner ' + id + '?', text: 'The runner finishes its current job but accepts no new checkpoints until it is undrained.', confirmText: 'Drain',
      run: () => api('POST', '/api/runners/' + encodeURIComponent(id) + '/drain'),
      done: () => 'Runner ' + id + ' drained.' });
  }
  function confirmUndrain(id) {
    ask({ title: 'Undrain runner ' + id + '?', text: 'The runner accepts new checkpoints again.', confirmText: 'Undrain',
      run: () => api('POST', '/api/runners/' + encodeURIComponent(id) + '/undrain'),
      done: () => 'Runner ' + id + ' undrained.' });
  }
  function confirmRetry(name) {
    ask({ title: 'Retry the reset of ' + name + '?', text: 'The workflow runs the reset again; if it fails again the checkpoint comes back to needs attention.', confirmText: 'Retry reset',
      run: () => api('POST', '/api/checkpoints/' + encodeURIComponent(name) + '/retry-reset'),
      done: (body) => (body && body.detail ? body.detail : 'Reset retry requested') + ': ' + name + '.' });
  }
  function confirmRelease(name) {
    ask({ title: 'Release ' + name + '?', text: 'Frees the runner without rolling it back. Only do this once the machine is known to be clean.', confirmText: 'Release',
      withDeleteSnapshot: true,
      run: (deleteSnapshot) => api('POST', '/api/checkpoints/' + encodeURIComponent(name) + '/release', { deleteSnapshot }),
      done: (body, deleteSnapshot) => (body && body.detail ? body.detail : 'Release requested') + ': ' + name + (deleteSnapshot ? ' (snapshot deleted)' : ' (snapshot kept)') + '.' });
  }

  byId('maintenance-toggle').addEventListener('click', () => {
    const on = !(lastState && lastState.maintenance && lastState.maintenance.enabled);
    const message = byId('maintenance-message').value.trim();
    if (message.length > 500) { showResult(false, 'The maintenance message is longer than 500 characters.'); return; }
    ask({
      title: on ? 'Enable maintenance mode?' : 'Disable maintenance mode?',
      text: on ? 'New checkpoints are refused with 503' + (message ? ' and this message: ' + message : '') + '. Running jobs continue.' : 'New checkpoints are accepted again.',
      confirmText: on ? 'Enable maintenance' : 'Disable maintenance',
      run: () => api('POST', '/api/admin/maintenance', on ? { enabled: true, message: message || null } : { enabled: false }),
      done: () => (on ? 'Maintenance mode enabled.' : 'Maintenance mode disabled.'),
    });
  });

  setInterval(tickAges, 1000);
  if (token) { showApp(); void signIn(token); } else showLogin('');
})();
