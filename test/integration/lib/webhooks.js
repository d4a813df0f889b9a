// Helpers shared by the webhooks integration tests: the endpoints API over
// fetch, and reading every page of an endpoint's deliveries.
'use strict';
const assert = require('node:assert/strict');

// One request to the API port; JSON in and out. {raw} sends bytes as they are.
async function api(h, method, p, body, { headers = {}, raw } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(10000) };
  if (raw !== undefined) {
    init.body = raw;
    if (!('Content-Type' in init.headers)) init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(h.apiUrl + p, init);
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json, headers: res.headers };
}

// Registers an endpoint; returns its JSON (with the secret).
async function createEndpoint(h, body) {
  const r = await api(h, 'POST', '/v1/webhooks', body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}

// Every delivery of an endpoint (all pages, newest first), optionally of one status.
async function deliveries(h, ep, status) {
  const out = [];
  let cursor = null;
  for (let page = 0; page < 1000; page++) {
    const q = new URLSearchParams({ limit: '250' });
    if (status) q.set('status', status);
    if (cursor) q.set('cursor', cursor);
    const r = await api(h, 'GET', `/v1/webhooks/${ep}/deliveries?${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    out.push(...r.body.data);
    cursor = r.body.next_cursor;
    if (!cursor) return out;
  }
  throw new Error('too many pages');
}

module.exports = { api, createEndpoint, deliveries };
