// SSRF by address spelling: a webhook URL may name the loopback, the cloud
// metadata service or another refused address in many spellings (octal,
// hex, one number, short forms, percent-encoding, IPv4-mapped, -compatible,
// NAT64 and 6to4 IPv6). The target guard checks the address a host resolves
// to, never the text, so with the default guard (no webhooks.allowed_cidrs)
// each is refused at registration with 422 naming the address's class, and
// nothing is registered. Redirects and DNS rebinding at send time are in
// webhooks_delivery.test.js. docs/security.md, "Attacks tried".
'use strict';
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startHerald } = require('./lib/herald');
const { api } = require('./lib/webhooks');

const SPELLINGS = [
  // 127.0.0.1
  ['http://localhost/', 'loopback'],
  ['http://127.1/', 'loopback'],
  ['http://0177.0.0.1/', 'loopback'],
  ['http://0x7f.1/', 'loopback'],
  ['http://2130706433/', 'loopback'],
  ['http://0x7f000001/', 'loopback'],
  ['http://017700000001/', 'loopback'],
  ['http://127.000.000.001/', 'loopback'],
  ['http://%31%32%37.0.0.1/', 'loopback'],
  ['https://127.0.0.1:443/', 'loopback'],
  ['http://[::1]/', 'loopback'],
  ['http://[0:0:0:0:0:0:0:1]/', 'loopback'],
  ['http://[::ffff:127.0.0.1]/', 'ipv4_mapped'],
  ['http://[0:0:0:0:0:ffff:7f00:1]/', 'ipv4_mapped'],
  ['http://[::ffff:127.0.0.1%25lo]/', 'ipv4_mapped'],
  ['http://[::127.0.0.1]/', 'reserved'], // IPv4-compatible
  ['http://[64:ff9b::7f00:1]/', 'nat64'],
  ['http://[2002:7f00:1::]/', 'reserved'], // 6to4
  // 169.254.169.254, the cloud metadata service
  ['http://169.254.169.254/latest/meta-data/', 'link_local'],
  ['http://0251.0376.0251.0376/', 'link_local'],
  ['http://2852039166/', 'link_local'],
  ['http://0xa9fea9fe/', 'link_local'],
  ['http://169.254.43518/', 'link_local'],
  ['http://[::ffff:a9fe:a9fe]/', 'ipv4_mapped'],
  ['http://[fe80::1%25lo]/', 'link_local'],
  // this host, any address
  ['http://0/', 'unspecified'],
  ['http://[::]/', 'unspecified'],
  // the private network
  ['http://012.0.0.1/', 'private'], // 10.0.0.1 in octal
  ['http://3232235777/', 'private'], // 192.168.1.1
];

let h;
before(async () => {
  h = await startHerald();
});
after(async () => {
  assert.equal((await h.stop()).code, 0);
});

test('every spelling of a refused address is refused at registration, naming its class', async () => {
  for (const [url, cls] of SPELLINGS) {
    const r = await api(h, 'POST', '/v1/webhooks', { url, topics: ['ssrf.x'] });
    assert.equal(r.status, 422, `${url}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, 'invalid_field');
    assert.equal(r.body.error.field, 'url');
    assert.match(r.body.error.message, new RegExp(`a ${cls} address: refused`), url);
  }
  const list = await api(h, 'GET', '/v1/webhooks');
  assert.equal(list.status, 200);
  assert.deepEqual(list.body.data, []);
});
