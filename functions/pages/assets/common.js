'use strict';
// What both pages share: the user's JWT, calls to the documented API, and
// small helpers to build the page. The JWT arrives in the URL fragment
// (#token=…), which browsers never send to a server, and is kept in this
// tab's sessionStorage only, so it survives the trip through the vendor's
// consent page and is gone when the tab closes.
const Connector = (() => {
  const KEY = 'connector.token';
  const api = new URL('.', location.href); // …/v1/

  const fromFragment = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromFragment) {
    sessionStorage.setItem(KEY, fromFragment);
    history.replaceState(null, '', location.pathname + location.search);
  }
  const token = sessionStorage.getItem(KEY);

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  async function call(method, path, body) {
    const headers = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const resp = await fetch(new URL(path, api), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
    const text = await resp.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
    if (!resp.ok) throw new ApiError(resp.status, json);
    return json;
  }

  // el('li', {class: 'x', dataset: {a: 1}}, 'text', child…)
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'onclick') node.addEventListener('click', v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c !== undefined && c !== null && c !== false) node.append(c);
    }
    return node;
  }

  const notice = () => document.getElementById('notice');
  function say(text, kind, action) {
    const n = notice();
    n.replaceChildren(el('p', {}, text));
    if (action) n.append(action);
    n.className = `notice ${kind || ''}`;
    n.hidden = false;
  }
  function quiet() { notice().hidden = true; }

  // The sentence a person reads for an API error.
  function explain(err) {
    if (err instanceof ApiError) {
      if (err.status === 401) return 'Your sign-in has expired. Open this page again from the app.';
      if (err.status === 429) return 'Too many attempts just now. Please wait a minute and try again.';
      if (err.status >= 500) return 'The service is not answering right now. Please try again in a moment.';
      return err.message;
    }
    // Not the API's answer: a network failure, or a defect here to see.
    console.error(err);
    return 'The service could not be reached. Check your connection and try again.';
  }

  function number(v) {
    return Number(v).toLocaleString('en-US', { maximumFractionDigits: 2 });
  }

  function ago(iso) {
    if (!iso) return 'never';
    const secs = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (secs < 90) return 'just now';
    if (secs < 5400) return `${Math.round(secs / 60)} minutes ago`;
    if (secs < 129600) return `${Math.round(secs / 3600)} hours ago`;
    return new Date(iso).toLocaleDateString('en-US', { month: 'short', day: 'numeric' });
  }

  function day(date) {
    return new Date(`${date}T00:00:00Z`).toLocaleDateString('en-US', {
      weekday: 'short', month: 'short', day: 'numeric', timeZone: 'UTC',
    });
  }

  // Without a token the pages have nothing to show: say how to open them.
  function needsToken() {
    if (token) return false;
    say('Open this page from the app you use: it needs your sign-in to show your wearables.', 'error');
    return true;
  }

  return { api, token, call, el, say, quiet, explain, number, ago, day, needsToken, ApiError };
})();
