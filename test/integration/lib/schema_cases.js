// Instances that pin down what Herald's own schemas (schemas/herald/*.json)
// accept and refuse, beyond the examples in the docs: each rule that
// gateway/protocol.c, gateway/api.c or gateway/config.c enforces and the
// schema expresses gets a case on each side of it. Used by
// docs_examples.test.js; values are written to files with JSON.stringify.
'use strict';

const ID128 = 'i'.repeat(128);
const SEG = 'abcdefg'; // 32 of these joined by '.' make 255 bytes
const TOPIC_255 = Array(32).fill(SEG).join('.');
const EVENT_ID = '01a21f93-0f2e-700e-8ed4-13f4de2664cd';
const TIME = '2026-11-28T00:34:21.102Z';
const VIOLATION = { instance_path: '/items/0/qty', keyword_path: '/definitions/item/properties/qty/minimum', message: '0 is less than 1' };

module.exports = [
  {
    schema: 'herald/ws-client-message.json',
    valid: [
      { op: 'subscribe', id: '1', topic: 'orders.*' },
      { op: 'subscribe', id: '1', topic: '>' },
      { op: 'subscribe', id: '1', topic: '*.eu.>' },
      { op: 'subscribe', id: '1', topic: 'orders.eu.created' },
      { op: 'subscribe', id: '1', topic: TOPIC_255 },
      { op: 'unsubscribe', id: '', topic: 'a.*' },
      { op: 'publish', id: '3', topic: 'user-42.notifications', data: null },
      { op: 'publish', id: ID128, topic: 'A_b-9', data: [1, 'two', { three: 3 }] },
      { op: 'ping', id: '4' },
      { op: 'ping', id: '4', topic: 17, data: 'ignored' }, // a ping's other fields are ignored
      { op: 'subscribe', id: '5', topic: 'x', extra: true }, // unknown fields are ignored
    ],
    invalid: [
      [],
      'ping',
      { id: '1', topic: 'a' }, // no op
      { op: 'subscribe', topic: 'a' }, // no id
      { op: 'ping' },
      { op: 'ping', id: 4 },
      { op: 'ping', id: ID128 + 'i' }, // 129 bytes
      { op: 'hello', id: '1' },
      { op: 'SUBSCRIBE', id: '1', topic: 'a' },
      { op: 'subscribe', id: '1' },
      { op: 'subscribe', id: '1', topic: 7 },
      { op: 'subscribe', id: '1', topic: '' },
      { op: 'subscribe', id: '1', topic: 'a..b' },
      { op: 'subscribe', id: '1', topic: '.a' },
      { op: 'subscribe', id: '1', topic: 'a.' },
      { op: 'subscribe', id: '1', topic: 'a*' },
      { op: 'subscribe', id: '1', topic: 'a.>.b' },
      { op: 'subscribe', id: '1', topic: '>>' },
      { op: 'subscribe', id: '1', topic: 'a b' },
      { op: 'subscribe', id: '1', topic: 'caf\u00e9' },
      { op: 'subscribe', id: '1', topic: 'orders\n' }, // `$` is the very end (ECMA-262)
      { op: 'subscribe', id: '1', topic: TOPIC_255 + 'x' }, // 256 bytes
      { op: 'subscribe', id: '1', topic: Array(33).fill('a').join('.') }, // 33 segments
      { op: 'unsubscribe', id: '1', topic: 'a..b' },
      { op: 'publish', id: '3', topic: 'chat.lobby' }, // no data
      { op: 'publish', id: '3', topic: 'chat.*', data: 1 }, // a pattern
      { op: 'publish', id: '3', topic: '>', data: 1 },
    ],
  },
  {
    schema: 'herald/ws-server-message.json',
    valid: [
      { op: 'ack', id: '1' },
      { op: 'ack', id: '3', event: { id: EVENT_ID, seq: 1 } },
      { op: 'pong', id: '' },
      { op: 'error', code: 'invalid_json', message: 'message is not valid JSON' },
      { op: 'error', id: '9', code: 'unknown_topic', message: 'no topic rule matches' },
      { op: 'error', id: '9', code: 'schema_violation', message: 'data does not match', errors: [VIOLATION], truncated: false },
      { op: 'error', id: '9', code: 'schema_violation', message: 'data does not match', errors: Array(10).fill(VIOLATION), truncated: true },
      { op: 'event', topic: 'orders.created', id: EVENT_ID, seq: 42, time: TIME, data: null },
    ],
    invalid: [
      { op: 'hello', id: '1' },
      { id: '1' },
      { op: 'ack' },
      { op: 'ack', id: '1', extra: 1 },
      { op: 'ack', id: '3', event: { id: 'not-a-uuid', seq: 1 } },
      { op: 'ack', id: '3', event: { id: EVENT_ID, seq: 0 } },
      { op: 'pong', id: 4 },
      { op: 'error', code: 'no_such_code', message: 'x' },
      { op: 'error', code: 'invalid_json' }, // no message
      { op: 'error', code: 'invalid_json', message: 'x', errors: [VIOLATION] }, // errors only with schema_violation
      { op: 'error', code: 'schema_violation', message: 'x', truncated: true }, // truncated without errors
      { op: 'error', code: 'schema_violation', message: 'x', errors: [{ instance_path: '', message: 'x' }] },
      { op: 'error', code: 'schema_violation', message: 'x', errors: Array(11).fill(VIOLATION) },
      { op: 'event', topic: 'orders.*', id: EVENT_ID, seq: 1, time: TIME, data: 1 }, // a pattern
      { op: 'event', topic: 'orders', id: EVENT_ID, seq: 1, time: TIME }, // no data
      { op: 'event', topic: 'orders', id: EVENT_ID, seq: 1, time: '2026-11-28T00:34:21Z', data: 1 },
      { op: 'event', topic: 'orders', id: EVENT_ID.toUpperCase(), seq: 1, time: TIME, data: 1 },
    ],
  },
  {
    schema: 'herald/rest-publish-request.json',
    valid: [null, 0, 'text', true, [], {}, { n: 1 }],
    invalid: [],
  },
  {
    schema: 'herald/rest-publish-response.json',
    valid: [{ id: EVENT_ID, topic: 'orders.created', seq: 1 }],
    invalid: [
      { id: EVENT_ID, topic: 'orders.created' },
      { id: EVENT_ID, topic: 'orders.*', seq: 1 },
      { id: EVENT_ID, topic: 'orders.created', seq: 1.5 },
      { id: EVENT_ID, topic: 'orders.created', seq: 1, extra: 1 },
    ],
  },
  {
    schema: 'herald/rest-error.json',
    valid: [
      ...['invalid_json', 'invalid_topic', 'not_found', 'unknown_topic', 'method_not_allowed', 'payload_too_large',
        'unsupported_media_type', 'internal_error', 'overloaded', 'too_many_topics']
        .map((code) => ({ error: { code, message: 'why' } })),
      { error: { code: 'schema_violation', message: 'the body does not match', errors: [VIOLATION], truncated: false } },
    ],
    invalid: [
      { code: 'not_found', message: 'x' }, // not wrapped in "error"
      { error: { code: 'not_found' } },
      { error: { code: 'teapot', message: 'x' } },
      { error: { code: 'not_found', message: 'x', status: 404 } },
      { error: { code: 'not_found', message: 'x', errors: [VIOLATION] } },
      { error: { code: 'not_found', message: 'x' }, extra: 1 },
    ],
  },
  {
    schema: 'herald/rest-health.json',
    valid: [{ status: 'ok' }, { status: 'ready' }, { status: 'stopping' }],
    invalid: [{ status: 'down' }, {}, { status: 'ok', uptime: 1 }],
  },
  {
    schema: 'herald/config.json',
    valid: [
      {},
      { client: {}, api: {}, broker: {} },
      { client: { listen: '[::1]:0' }, api: { listen: 'localhost:8081' } },
      { client: { listen: '0.0.0.0:65535' }, api: { listen: '[2001:db8::1]:8081' } },
      { client: { listen: '[::ffff:127.0.0.1]:8080' } },
      { client: { workers: 0, max_connections: 1, max_message_bytes: 64, max_subscriptions: 100000, send_queue_bytes: 1073741824 } },
      { broker: { worker_queue_events: 16, worker_queue_bytes: 1048576, max_topics: 100000000 } },
      { log_level: 'debug', data_dir: '/var/lib/herald' },
      {
        topics: [
          { pattern: 'orders.>', schema: 'schemas/topics/order.json' },
          { pattern: 'chat.*', schema: { type: 'object', required: ['text'] } },
          { pattern: 'audit', schema: true },
        ],
        schemas: { unmatched_topics: 'reject', remote: [{ prefix: 'https://schemas.example.com/', dir: '/etc/herald/schemas' }] },
      },
      { topics: [], schemas: {} },
    ],
    invalid: [
      [],
      { nonsense: true },
      { 'client.listen': '127.0.0.1:8080' }, // dotted keys are not read at the top level
      { client: { bogus: 1 } },
      { client: { api: {} } },
      { client: 'fast' },
      { client: { workers: 'two' } },
      { client: { workers: 1.5 } },
      { client: { workers: 257 } },
      { client: { workers: -1 } },
      { client: { max_subscriptions: 0 } },
      { client: { max_message_bytes: 16777217 } },
      { client: { send_queue_bytes: 4095 } },
      { api: { threads: 65 } },
      { api: { max_body_bytes: 63 } },
      { broker: { worker_queue_bytes: 1048575 } },
      { broker: { max_topics: 0 } },
      { api: { listen: 'example.com:80' } },
      { api: { listen: '127.0.0.1:99999' } },
      { api: { listen: '127.0.0.1:65536' } },
      { api: { listen: '127.0.0.1' } },
      { api: { listen: '127.0.0.1:' } },
      { api: { listen: '127.0.0.1:+80' } },
      { api: { listen: '01.2.3.4:80' } },
      { api: { listen: '1.2.3:80' } },
      { api: { listen: '[1.2.3.4]:80' } },
      { api: { listen: '[::1]' } },
      { api: { listen: '::1:80' } },
      { api: { listen: '[1::2::3]:80' } },
      { api: { listen: 'LOCALHOST:80' } },
      { api: { listen: 8081 } },
      { data_dir: '' },
      { data_dir: 7 },
      { log_level: 'trace' },
      { topics: {} },
      { topics: [{ pattern: 'orders.>' }] },
      { topics: [{ schema: true }] },
      { topics: [{ pattern: 'a..b', schema: true }] },
      { topics: [{ pattern: 'a.>.b', schema: true }] },
      { topics: [{ pattern: 'a', schema: '' }] },
      { topics: [{ pattern: 'a', schema: 5 }] },
      { topics: [{ pattern: 'a', schema: { type: 'no-such-type' } }] },
      { topics: [{ pattern: 'a', schema: true, extra: 1 }] },
      { schemas: { unmatched_topics: 'drop' } },
      { schemas: { remote: [{ prefix: 'https://schemas.example.com/' }] } },
      { schemas: { remote: [{ prefix: 'https://schemas.example.com/', dir: '/x', extra: 1 }] } },
      { schemas: { bogus: 1 } },
      { schemas: { remote: [{ prefix: 'not a uri', dir: '/x' }] } },
      { schemas: { remote: Array(33).fill({ prefix: 'https://schemas.example.com/', dir: '/x' }) } },
    ],
  },
];
