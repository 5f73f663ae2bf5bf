'use strict';
(function () {
  var TOKEN_KEY = 'e2epool.adminToken';
  var POLL_MS = Number(document.body.getAttribute('data-poll-ms')) || 5000;
  var RECONNECT_MS = Number(document.body.getAttribute('data-reconnect-ms')) || 10000;
  var token = sessionStorage.getItem(TOKEN_KEY);
  var streamAbort = null;
  var pollTimer = null;
  var reconnectTimer = null;
  var clockSkewMs = 0;
  var lastState = null;
  var pendingAction = null;

  function byId(id) { return document.getElementById(id); }

  function node(tag, props, children) {
    var e = document.createElement(tag);
    if (props) {
      Object.keys(props).forEach(function (k) {
        if (k === 'text') e.textContent = props[k];
        else if (k === 'className') e.className = props[k];
        else if (k === 'onclick') e.addEventListener('click', props[k]);
        else e.setAttribute(k, props[k]);
      });
    }
    (children || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }

  function safeLink(url, text, label) {
    if (typeof url !== 'string' || !/^https?:\/\//i.test(url)) return document.createTextNode(text);
    return node('a', { href: url, target: '_blank', rel: 'noopener noreferrer', text: text, title: label, 'aria-label': label });
  }

  function detailText(body) {
    if (body && typeof body === 'object' && 'detail' in body) {
      var d = body.detail;
      if (Array.isArray(d)) return d.map(function (i) { return i && i.msg ? (i.loc ? i.loc.join('.') + ': ' : '') + i.msg : String(i); }).join('; ');
      return String(d);
    }
    return typeof body === 'string' && body ? body.slice(0, 300) : '';
  }

  function api(method, path, body) {
    var headers = { Authorization: 'Bearer ' + token, Accept: 'application/json' };
    var init = { method: method, headers: headers, cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var parsed = text;
        try { parsed = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
        return { ok: res.ok, status: res.status, body: parsed };
      });
    });
  }

  function authRefused(res) { return res.status === 401 || res.status === 403 || res.status === 422 || res.status === 503; }

  // ---- sign in / out ----
  function showLogin(message) {
    byId('login').hidden = false;
    byId('app').hidden = true;
    byId('login-error').textContent = message || '';
    byId('token-input').value = '';
    byId('token-input').focus();
  }

  function showApp() {
    byId('login').hidden = true;
    byId('app').hidden = false;
  }

  function signOut(message) {
    stopLive();
    token = null;
    lastState = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(message);
  }

  function signIn(candidate) {
    token = candidate;
    return api('GET', '/api/dashboard/state').then(function (res) {
      if (!res.ok) {
        token = null;
        var why = detailText(res.body) || 'HTTP ' + res.status;
        showLogin('Sign-in failed (' + res.status + '): ' + why);
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, candidate);
      showApp();
      render(res.body);
      startStream();
    }, function (err) {
      token = null;
      showLogin('Cannot reach the controller: ' + err.message);
    });
  }

  byId('login-form').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var value = byId('token-input').value.trim();
    if (!value) { byId('login-error').textContent = 'Enter the admin token.'; return; }
    byId('login-error').textContent = 'Signing in…';
    signIn(value);
  });
  byId('sign-out').addEventListener('click', function () { signOut('Signed out.'); });

  // ---- live updates: SSE over fetch, polling while the stream is down ----
  function setLive(kind, text) {
    var e = byId('live-status');
    e.className = 'live ' + kind;
    e.textContent = text;
  }

  function stopLive() {
    if (streamAbort) { streamAbort.abort(); streamAbort = null; }
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
  }

  function startPolling() {
    if (pollTimer) return;
    pollTimer = setInterval(refresh, POLL_MS);
    refresh();
  }

  function refresh() {
    if (!token) return Promise.resolve();
    return api('GET', '/api/dashboard/state').then(function (res) {
      if (res.ok) render(res.body);
      else if (authRefused(res)) signOut('The controller refused the token (' + res.status + '): ' + detailText(res.body));
    }, function () { setLive('off', 'Controller unreachable; retrying'); });
  }

  function streamBroken() {
    if (!token) return;
    setLive('off', 'Live stream interrupted; polling every ' + POLL_MS / 1000 + ' s');
    startPolling();
    if (!reconnectTimer) reconnectTimer = setTimeout(function () { reconnectTimer = null; startStream(); }, RECONNECT_MS);
  }

  function startStream() {
    if (streamAbort) streamAbort.abort();
    var ctrl = new AbortController();
    streamAbort = ctrl;
    fetch('/api/dashboard/events', { headers: { Authorization: 'Bearer ' + token, Accept: 'text/event-stream' }, cache: 'no-store', signal: ctrl.signal })
      .then(function (res) {
        if (authRefused(res)) { signOut('The controller refused the token (' + res.status + ').'); return; }
        if (!res.ok || !res.body) throw new Error('HTTP ' + res.status);
        setLive('on', 'Live');
        if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
        return readEvents(res.body.getReader(), ctrl);
      })
      .then(function () { if (!ctrl.signal.aborted) streamBroken(); },
            function () { if (!ctrl.signal.aborted) streamBroken(); });
  }

  function readEvents(reader, ctrl) {
    var decoder = new TextDecoder();
    var buffer = '';
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done || ctrl.signal.aborted) return;
        buffer += decoder.decode(chunk.value, { stream: true }).replace(/\r\n?/g, '\n');
        var cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          handleEvent(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 2);
        }
        return pump();
      });
    }
    return pump();
  }

  function handleEvent(block) {
    var name = 'message';
    var data = [];
    block.split('\n').forEach(function (line) {
      if (line === '' || line.charAt(0) === ':') return; // comments are heartbeats
      var i = line.indexOf(':');
      var field = i < 0 ? line : line.slice(0, i);
      var value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'event') name = value;
      else if (field === 'data') data.push(value);
    });
    if (!data.length) return;
    var payload;
    try { payload = JSON.parse(data.join('\n')); } catch { return; }
    if (name === 'state') { setLive('on', 'Live'); render(payload); }
    else if (name === 'problem') setLive('off', payload.detail || 'Controller problem');
  }

  // ---- rendering ----
  function age(iso) {
    var s = Math.max(0, Math.round((Date.now() + clockSkewMs - Date.parse(iso)) / 1000));
    if (s < 90) return s + ' s';
    var m = Math.round(s / 60);
    if (m < 90) return m + ' min';
    var h = Math.floor(m / 60);
    if (h < 48) return h + ' h ' + (m % 60) + ' min';
    return Math.floor(h / 24) + ' d ' + (h % 24) + ' h';
  }

  function ageCell(iso) {
    if (!iso) return node('td', { text: '–' });
    return node('td', { 'data-since': iso, title: new Date(iso).toLocaleString(), text: age(iso) });
  }

  function tickAges() {
    document.querySelectorAll('[data-since]').forEach(function (e) { e.textContent = age(e.getAttribute('data-since')); });
  }

  var STATE_KIND = {
    creating: 'info', created: 'info', finalize_queued: 'warn', cleaning: 'warn', pausing: 'warn', confirming_idle: 'warn',
    resetting: 'warn', awaiting_readiness: 'warn', releasing_claim: 'warn', unpausing: 'warn', needs_attention: 'bad',
    deleted: 'ok', reset: 'ok', gc_reset: 'ok', create_failed: 'bad', released: ''
  };
  var RUNNER_KIND = { needs_attention: 'bad', drained: 'warn', offline: '', busy: 'info', idle: 'ok' };

  function badge(text, kind) { return node('span', { className: 'badge ' + (kind || ''), text: text }); }

  function fillTable(id, rows, emptyText, columns) {
    var body = byId(id);
    body.textContent = '';
    if (!rows.length) {
      body.appendChild(node('tr', null, [node('td', { colspan: String(columns), className: 'empty', text: emptyText })]));
      return;
    }
    rows.forEach(function (r) { body.appendChild(r); });
  }

  function render(s) {
    lastState = s;
    clockSkewMs = Date.parse(s.generatedAt) - Date.now();
    byId('updated-at').textContent = 'Updated ' + new Date(s.generatedAt).toLocaleTimeString();

    var m = s.maintenance;
    var banner = byId('maintenance-banner');
    banner.hidden = !(m && m.enabled);
    banner.textContent = m && m.enabled ? 'Maintenance mode is on: ' + m.message + ' — new checkpoints are refused.' : '';
    byId('maintenance-state').textContent = m ? (m.enabled ? 'On' : 'Off') : 'Unknown';
    var toggle = byId('maintenance-toggle');
    toggle.textContent = m && m.enabled ? 'Disable maintenance' : 'Enable maintenance';
    toggle.className = m && m.enabled ? 'primary' : 'danger';

    var rc = s.runnerCounts;
    byId('tile-runners').textContent = rc.online + ' / ' + rc.total;
    byId('tile-queue').textContent = String(s.queueDepth);
    byId('tile-success').textContent = s.stats.successRate == null ? '–' : (Math.round(s.stats.successRate * 1000) / 10) + ' %';
    byId('tile-success-detail').textContent = s.stats.succeeded + ' ok, ' + s.stats.failed + ' failed, ' + s.stats.created + ' created';
    byId('tile-attention').textContent = String(rc.needsAttention);
    byId('tile-active').textContent = String(s.activeCheckpoints.length) + (s.activeTruncated ? '+' : '');

    fillTable('runners-body', s.runners.map(runnerRow), 'No active runners.', 11);
    fillTable('active-body', s.activeCheckpoints.map(activeRow), 'No active checkpoints.', 8);
    fillTable('failures-body', s.recentFailures.map(failureRow), 'No failures in the last 24 hours.', 7);
    fillTable('alerts-body', s.alerts.map(alertRow), 'No open alerts.', 4);
  }

  function runnerRow(r) {
    var c = r.checkpoint;
    var actions = node('div', { className: 'row-actions' }, [
      r.drained
        ? node('button', { type: 'button', 'aria-label': 'Undrain runner ' + r.runnerId, text: 'Undrain', onclick: function () { confirmUndrain(r.runnerId); } })
        : node('button', { type: 'button', className: 'danger', 'aria-label': 'Drain runner ' + r.runnerId, text: 'Drain', onclick: function () { confirmDrain(r.runnerId); } })
    ]);
    return node('tr', { 'data-runner': r.runnerId }, [
      node('td', null, [node('strong', { text: r.runnerId }), node('div', { className: 'muted', text: r.backend })]),
      node('td', null, [badge(r.status.replace('_', ' '), RUNNER_KIND[r.status])]),
      node('td', null, [badge(r.agent.online ? 'online' : 'offline', r.agent.online ? 'ok' : ''), node('div', { className: 'muted', text: r.agentCredential === 'agent_token' ? 'own credential' : 'legacy: runner token' })]),
      r.agent.lastSeen ? ageCell(r.agent.lastSeen) : node('td', { text: 'never' }),
      node('td', { text: r.agent.sessionEpoch == null ? '–' : String(r.agent.sessionEpoch) }),
      node('td', { text: r.agent.version || '–' }),
      node('td', null, [c ? safeLink(c.temporalUrl, c.name, 'Open ' + c.name + ' in the Temporal Web UI') : node('span', { className: 'muted', text: 'none' })]),
      node('td', null, c ? [badge(c.state, STATE_KIND[c.state]), ' ', node('span', { className: 'muted', text: c.phase })] : []),
      c ? ageCell(c.createdAt) : node('td', { text: '–' }),
      node('td', { text: r.drained ? 'yes' : 'no' }),
      node('td', null, [r.needsAttentionReason ? badge(r.needsAttentionReason, 'bad') : node('span', { className: 'muted', text: '–' })]),
      node('td', null, [actions])
    ]);
  }

  function activeRow(c) {
    var actions = [];
    if (c.state === 'needs_attention') {
      actions.push(node('button', { type: 'button', 'aria-label': 'Retry reset of ' + c.name, text: 'Retry reset', onclick: function () { confirmRetry(c.name); } }));
      actions.push(node('button', { type: 'button', className: 'danger', 'aria-label': 'Release ' + c.name, text: 'Release', onclick: function () { confirmRelease(c.name); } }));
    }
    return node('tr', { 'data-checkpoint': c.name }, [
      node('td', null, [safeLink(c.temporalUrl, c.name, 'Open ' + c.name + ' in the Temporal Web UI')]),
      node('td', { text: c.runnerId }),
      node('td', { text: c.jobId }),
      node('td', null, [badge(c.state, STATE_KIND[c.state])]),
      node('td', { text: c.phase }),
      ageCell(c.createdAt),
      node('td', { className: 'wrap', text: [c.finalizeStatus, c.needsAttentionReason, c.detail].filter(Boolean).join(' · ') || '–' }),
      node('td', null, [node('div', { className: 'row-actions' }, actions)])
    ]);
  }

  function failureRow(c) {
    return node('tr', { 'data-failure': c.name }, [
      node('td', null, [safeLink(c.temporalUrl, c.name, 'Open ' + c.name + ' in the Temporal Web UI')]),
      node('td', { text: c.runnerId }),
      node('td', { text: c.jobId }),
      node('td', null, [badge(c.state, STATE_KIND[c.state])]),
      node('td', { text: c.finalizeStatus || '–' }),
      ageCell(c.createdAt),
      node('td', { className: 'wrap', text: [c.needsAttentionReason, c.detail].filter(Boolean).join(' · ') || '–' })
    ]);
  }

  function alertRow(a) {
    return node('tr', null, [
      node('td', null, [badge(a.severity, a.severity === 'critical' || a.severity === 'error' ? 'bad' : 'warn')]),
      node('td', { className: 'wrap', text: a.message }),
      node('td', { text: a.runnerId || a.checkpointName || '–' }),
      ageCell(a.openedAt)
    ]);
  }

  // ---- actions: every one asks first, then shows its result ----
  function showResult(ok, text) {
    var e = byId('action-result');
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

  byId('confirm-cancel').addEventListener('click', function () { pendingAction = null; byId('confirm-dialog').close(); });
  byId('confirm-ok').addEventListener('click', function () {
    var action = pendingAction;
    pendingAction = null;
    var deleteSnapshot = byId('confirm-delete-snapshot').checked;
    byId('confirm-dialog').close();
    if (!action) return;
    showResult(true, action.title.replace(/\?$/, '') + '…');
    action.run(deleteSnapshot).then(function (res) {
      if (res.ok) showResult(true, action.done(res.body, deleteSnapshot));
      else if (res.status === 401 || res.status === 403) signOut('The controller refused the token (' + res.status + ').');
      else showResult(false, action.title.replace(/\?$/, '') + ' failed (' + res.status + '): ' + (detailText(res.body) || 'no detail'));
      refresh();
    }, function (err) { showResult(false, action.title.replace(/\?$/, '') + ' failed: ' + err.message); });
  });

  function confirmDrain(id) {
    ask({ title: 'Drain runner ' + id + '?', text: 'The runner finishes its current job but accepts no new checkpoints until it is undrained.', confirmText: 'Drain',
      run: function () { return api('POST', '/api/runners/' + encodeURIComponent(id) + '/drain'); },
      done: function () { return 'Runner ' + id + ' drained.'; } });
  }
  function confirmUndrain(id) {
    ask({ title: 'Undrain runner ' + id + '?', text: 'The runner accepts new checkpoints again.', confirmText: 'Undrain',
      run: function () { return api('POST', '/api/runners/' + encodeURIComponent(id) + '/undrain'); },
      done: function () { return 'Runner ' + id + ' undrained.'; } });
  }
  function confirmRetry(name) {
    ask({ title: 'Retry the reset of ' + name + '?', text: 'The workflow runs the reset again; if it fails again the checkpoint comes back to needs attention.', confirmText: 'Retry reset',
      run: function () { return api('POST', '/api/checkpoints/' + encodeURIComponent(name) + '/retry-reset'); },
      done: function (body) { return (body && body.detail ? body.detail : 'Reset retry requested') + ': ' + name + '.'; } });
  }
  function confirmRelease(name) {
    ask({ title: 'Release ' + name + '?', text: 'Frees the runner without rolling it back. Only do this once the machine is known to be clean.', confirmText: 'Release',
      withDeleteSnapshot: true,
      run: function (deleteSnapshot) { return api('POST', '/api/checkpoints/' + encodeURIComponent(name) + '/release', { deleteSnapshot: deleteSnapshot }); },
      done: function (body, deleteSnapshot) { return (body && body.detail ? body.detail : 'Release requested') + ': ' + name + (deleteSnapshot ? ' (snapshot deleted)' : ' (snapshot kept)') + '.'; } });
  }

  byId('maintenance-toggle').addEventListener('click', function () {
    var on = !(lastState && lastState.maintenance && lastState.maintenance.enabled);
    var message = byId('maintenance-message').value.trim();
    if (message.length > 500) { showResult(false, 'The maintenance message is longer than 500 characters.'); return; }
    ask({
      title: on ? 'Enable maintenance mode?' : 'Disable maintenance mode?',
      text: on ? 'New checkpoints are refused with 503' + (message ? ' and this message: ' + message : '') + '. Running jobs continue.' : 'New checkpoints are accepted again.',
      confirmText: on ? 'Enable maintenance' : 'Disable maintenance',
      run: function () { return api('POST', '/api/admin/maintenance', on ? { enabled: true, message: message || null } : { enabled: false }); },
      done: function () { return on ? 'Maintenance mode enabled.' : 'Maintenance mode disabled.'; }
    });
  });

  setInterval(tickAges, 1000);
  if (token) { showApp(); signIn(token); } else showLogin('');
})();
