'use strict';
// The connect page: every vendor from GET /v1/providers with what the user
// can do about it. Connecting a real vendor goes through its consent page
// and back here (?status=pending&completion=…), where the connection is
// completed with the user's own JWT; then the first backfill's progress is
// shown until it ends.
(() => {
  const { api, call, el, say, quiet, explain, ago, needsToken } = Connector;
  const list = document.getElementById('vendors');
  // Wearables Terra connects through (its `resource` names).
  const TERRA_PROVIDERS = ['GARMIN', 'FITBIT', 'OURA', 'WHOOP', 'POLAR', 'SUUNTO', 'COROS',
    'WAHOO', 'WITHINGS', 'GOOGLE', 'FREESTYLELIBRE', 'EIGHT', 'PELOTON', 'ZWIFT'];
  const REFUSALS = {
    access_denied: (name) => `You did not allow access at ${name}, so nothing was connected.`,
    missing_code: (name) => `${name} did not send the connection back. Please try again.`,
  };
  let providers = [];
  let polling = null;

  const nameOf = (id) => (providers.find((p) => p.id === id) || { name: id }).name;
  // The connect page itself, as the return URL (no query, no fragment).
  const returnUrl = () => new URL('connect', api).href;

  function state(p) {
    if (!p.supported) return ['unavailable', 'Not available in this app yet'];
    switch (p.status) {
      case 'connected': return ['connected', `Connected · last synced ${ago(p.last_sync_at)}`];
      case 'error': return ['error', `Connected, but syncing stopped: ${p.error || 'the vendor refused'}. Reconnect to fix it.`];
      case 'refresh_failed': return ['refresh_failed', `${p.name} ended the connection when it was renewed. Reconnect to go on syncing.`];
      case 'revoked': return ['revoked', `Access was removed at ${p.name}. Reconnect to go on syncing.`];
      default: return ['disconnected', 'Not connected'];
    }
  }

  function progress(p) {
    const b = p.backfill;
    if (!b || !p.status) return null;
    const label = {
      queued: `Getting ready to pull your last ${b.days_asked} days…`,
      running: `Pulling your history: ${b.days_done} of ${b.days_asked} days`,
      done: `History pulled: ${b.days_done} of ${b.days_asked} days`,
      failed: `Pulling your history stopped at ${b.days_done} of ${b.days_asked} days: ${b.reason || 'unknown reason'}`,
    }[b.state];
    const id = `progress-${p.id}`;
    return el('div', { class: 'progress', dataset: { backfill: b.state } },
      el('span', { id }, label),
      el('progress', { max: b.days_asked || 1, value: b.days_done, 'aria-labelledby': id }));
  }

  function actions(p, code) {
    if (!p.supported) return [el('button', { type: 'button', disabled: true }, 'Connect')];
    const out = [];
    let provider = null;
    if (p.id === 'terra' && code !== 'connected') {
      const id = 'terra-provider';
      provider = el('select', { id, name: 'provider' },
        TERRA_PROVIDERS.map((v) => el('option', { value: v }, v[0] + v.slice(1).toLowerCase())));
      out.push(el('label', { for: id }, 'Wearable'), provider);
    }
    if (code === 'disconnected') {
      out.push(el('button', { type: 'button', onclick: () => connect(p.id, provider && provider.value) }, `Connect ${p.name}`));
    } else {
      if (code !== 'connected') {
        out.push(el('button', { type: 'button', onclick: () => connect(p.id, provider && provider.value) }, `Reconnect ${p.name}`));
      }
      out.push(el('button', { type: 'button', class: 'secondary', onclick: () => disconnect(p.id) }, `Disconnect ${p.name}`));
    }
    return out;
  }

  function render() {
    list.replaceChildren(...providers.map((p) => {
      const [code, words] = state(p);
      return el('li', { class: 'vendor', dataset: { vendor: p.id, state: code } },
        el('span', { class: 'badge', 'aria-hidden': 'true' }, p.name.slice(0, 1)),
        el('div', {}, el('div', { class: 'name' }, p.name), el('div', { class: 'state' }, words)),
        progress(p),
        el('div', { class: 'actions' }, actions(p, code)));
    }));
    list.setAttribute('aria-busy', 'false');
  }

  async function load() {
    try {
      providers = (await call('GET', 'providers')).providers;
      render();
    } catch (err) {
      say(explain(err), 'error', el('button', { type: 'button', onclick: load }, 'Try again'));
      return;
    }
    const pulling = providers.some((p) => p.backfill && p.status
      && (p.backfill.state === 'queued' || p.backfill.state === 'running'));
    clearTimeout(polling);
    if (pulling) polling = setTimeout(load, 1500);
  }

  async function connect(vendor, provider) {
    quiet();
    const body = { return_url: returnUrl() };
    if (vendor === 'terra') body.provider = provider || 'GARMIN';
    try {
      const started = await call('POST', `connections/${vendor}`, body);
      if (started && started.redirect_url) {
        location.assign(started.redirect_url);
        return;
      }
      say(`${nameOf(vendor)} is connected.`, 'ok');
    } catch (err) {
      say(explain(err), 'error', retry(vendor, provider));
    }
    await load();
  }

  async function disconnect(vendor) {
    quiet();
    try {
      const gone = await call('DELETE', `connections/${vendor}`);
      say(gone && gone.note ? `${nameOf(vendor)} is disconnected. ${gone.note}` : `${nameOf(vendor)} is disconnected.`, 'ok');
    } catch (err) {
      say(explain(err), 'error');
    }
    await load();
  }

  function retry(vendor, provider) {
    return el('button', { type: 'button', onclick: () => connect(vendor, provider) }, 'Try again');
  }

  // The browser is back from the vendor's consent page.
  async function returned() {
    const q = new URLSearchParams(location.search);
    const status = q.get('status');
    const vendor = q.get('vendor');
    if (!status) return;
    history.replaceState(null, '', location.pathname);
    if (status === 'pending' && vendor && q.get('completion')) {
      try {
        await call('POST', `connections/${vendor}/complete`, { completion: q.get('completion') });
        say(`${nameOf(vendor)} is connected.`, 'ok');
      } catch (err) {
        const why = err instanceof Connector.ApiError && err.status === 409
          ? `This ${nameOf(vendor)} account is already connected to another user here. That user must disconnect it first.`
          : explain(err);
        say(why, 'error', retry(vendor));
      }
      // Only a completion changes the list (and starts a backfill to follow).
      await load();
    } else if (status === 'error') {
      const reason = q.get('reason') || '';
      const words = REFUSALS[reason]
        ? REFUSALS[reason](nameOf(vendor))
        : `${nameOf(vendor)} could not connect (${reason || 'no reason given'}). Please try again.`;
      say(words, 'error', vendor ? retry(vendor) : null);
    }
  }

  if (needsToken()) return;
  // The vendor list first, so the return's message can name the vendor.
  load().then(returned);
})();
