// Webhooks against a real reeld: api.video subscriptions through the
// official Node client, native and Gcore-format ones through /v1/webhooks,
// received on a listener on 127.0.0.1 that checks every signature; a
// receiver that fails is retried with backoff. Started by
// tests/webhooks_test.sh (REEL_BASE, REEL_KEY, REEL_WORK with small.mp4;
// reeld runs with --webhook-retry-seconds 1 and --import-allow 127.0.0.0/8).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ApiVideoClient = require('@api.video/nodejs-client');
const base = process.env.REEL_BASE;
const key = process.env.REEL_KEY;
const small = path.join(process.env.REEL_WORK, 'small.mp4');
const client = new ApiVideoClient({ apiKey: key, baseUri: base });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Every request the listener got: {path, headers, body}; /flaky answers
// 500 twice before 200.
const got = [];
let flaky = 0;
let listener;
let hook;
before(async () => {
  listener = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      got.push({ path: req.url, headers: req.headers, body, at: Date.now() });
      if (req.url === '/flaky' && flaky++ < 2) { res.writeHead(500).end(); return; }
      res.writeHead(202).end();
    });
  });
  await new Promise((r) => listener.listen(0, '127.0.0.1', r));
  hook = `http://127.0.0.1:${listener.address().port}`;
});
after(() => listener.close());

const hmac = (secret, body) => crypto.createHmac('sha256', secret).update(body).digest('hex');
const native = (method, url, body) => fetch(base + url, {
  method, headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
  body: body ? JSON.stringify(body) : undefined }).then(async (r) => ({ status: r.status, json: r.status === 204 ? null : await r.json() }));

async function until(check, what, seconds = 120) {
  for (let i = 0; i < seconds * 4; i++) {
    const x = await check();
    if (x) return x;
    await sleep(250);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('subscriptions: api.video (official client), native, gcore; deliveries are signed', async () => {
  const av = await client.webhooks.create({ url: `${hook}/apivideo`, events: ['video.encoding.quality.completed'] });
  assert.match(av.webhookId, /^webhook_/);
  assert.match(av.signatureSecret, /^sig_sec_/);
  assert.equal((await client.webhooks.get(av.webhookId)).url, `${hook}/apivideo`);
  const listed = await client.webhooks.list({ events: 'video.encoding.quality.completed' });
  assert.ok(listed.data.some((w) => w.webhookId === av.webhookId));
  const bad = await fetch(`${base}/webhooks`, { method: 'POST',
    headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ url: `${hook}/x`, events: ['no.such.event'] }) });
  assert.equal(bad.status, 400);
  const nat = await native('POST', '/v1/webhooks', { url: `${hook}/native`, events: ['video.ready', 'video.playable'] });
  assert.equal(nat.status, 201);
  const gc = await native('POST', '/v1/webhooks', { url: `${hook}/gcore`, events: ['*'], format: 'gcore' });
  assert.equal(gc.status, 201);
  assert.ok(gc.json.secret);
  const list = await native('GET', '/v1/webhooks');
  assert.ok(!('secret' in list.json.data[0]), 'secrets are shown once');

  const v = await client.videos.create({ title: 'hooked' });
  await client.videos.upload(v.videoId, small);
  const status = await until(async () => {
    const s = await client.videos.getStatus(v.videoId);
    return s.encoding.qualities.every((q) => q.status === 'encoded') && s.encoding.qualities.length > 0 && s;
  }, 'the video to be ready');
  const rungs = status.encoding.qualities.filter((q) => q.type === 'hls').map((q) => q.quality).sort();
  // api.video: one quality event per rung and encoding, signed with the
  // subscription's secret.
  const avGot = await until(() => {
    const x = got.filter((r) => r.path === '/apivideo');
    return x.length >= 2 * rungs.length && x;
  }, 'the api.video deliveries', 30);
  for (const r of avGot) {
    assert.equal(r.headers['x-api-video-signature'], hmac(av.signatureSecret, r.body));
    assert.equal(r.headers['x-api-video-webhookid'], av.webhookId);
    const e = JSON.parse(r.body);
    assert.equal(e.type, 'video.encoding.quality.completed');
    assert.equal(e.videoId, v.videoId);
    assert.ok(!isNaN(Date.parse(e.emittedAt)));
  }
  const hls = avGot.map((r) => JSON.parse(r.body)).filter((e) => e.encoding === 'hls').map((e) => e.quality).sort();
  assert.deepEqual(hls, rungs);
  // Native: playable then ready, signed.
  const natGot = await until(() => {
    const x = got.filter((r) => r.path === '/native');
    return x.length >= 2 && x;
  }, 'the native deliveries', 30);
  const types = natGot.map((r) => JSON.parse(r.body).type);
  assert.deepEqual(types, ['video.playable', 'video.ready']);
  for (const r of natGot) {
    assert.equal(r.headers['x-reel-signature'], `sha256=${hmac(nat.json.secret, r.body)}`);
    assert.equal(JSON.parse(r.body).video_id, v.videoId);
  }
  // Gcore format: every event, the integer id.
  const gcGot = await until(() => {
    const x = got.filter((r) => r.path === '/gcore');
    return x.some((r) => JSON.parse(r.body).type === 'video.ready') && x;
  }, 'the gcore deliveries', 30);
  const ready = JSON.parse(gcGot.find((r) => JSON.parse(r.body).type === 'video.ready').body);
  assert.equal(ready.video.status, 'ready');
  // The video's integer id, as Gcore's API shows it (the UUID does not
  // carry it).
  const shown = await (await fetch(`${base}/streaming/videos?search=${v.videoId}`, {
    headers: { Authorization: `APIKey ${key}` } })).json();
  assert.equal(shown.length, 1);
  assert.equal(ready.video.id, shown[0].id);
  assert.ok(gcGot.some((r) => JSON.parse(r.body).type === 'video.uploaded'));
  // Deleting stops them.
  await client.webhooks.delete(av.webhookId);
  assert.equal((await native('DELETE', `/v1/webhooks/${gc.json.id}`)).status, 204);
  assert.equal((await native('DELETE', `/v1/webhooks/${nat.json.id}`)).status, 204);
  assert.equal((await native('DELETE', `/v1/webhooks/${nat.json.id}`)).status, 404);
});

test('a failing receiver is retried with backoff, and the outbox shows it', async () => {
  const sub = await native('POST', '/v1/webhooks', { url: `${hook}/flaky`, events: ['video.ready'] });
  const v = await client.videos.create({ title: 'flaky' });
  await client.videos.upload(v.videoId, small);
  const tries = await until(() => {
    const x = got.filter((r) => r.path === '/flaky');
    return x.length >= 3 && x;
  }, 'three attempts', 90);
  // 500, 500, then 202: the same delivery, waits doubling (1 s, 2 s).
  assert.equal(new Set(tries.map((r) => r.headers['x-reel-delivery-id'])).size, 1);
  const gap1 = tries[1].at - tries[0].at;
  const gap2 = tries[2].at - tries[1].at;
  assert.ok(gap1 >= 900, `first retry after ${gap1} ms`);
  assert.ok(gap2 >= 1800, `second retry after ${gap2} ms`);
  const out = await until(async () => {
    const d = await native('GET', '/v1/webhooks/deliveries?status=delivered');
    return d.json.data.find((x) => x.webhook === sub.json.id);
  }, 'the delivery to show as delivered', 10);
  assert.equal(out.attempts, 3);
  assert.equal(out.video, v.videoId);
  await native('DELETE', `/v1/webhooks/${sub.json.id}`);
});

test('a private or loopback target is refused unless allowed', async () => {
  // reeld allows 127.0.0.0/8 here; 10.0.0.0/8 is not allowed.
  const sub = await native('POST', '/v1/webhooks', { url: 'http://10.255.255.1:9/x', events: ['video.ready'] });
  const v = await client.videos.create({ title: 'refused target' });
  await client.videos.upload(v.videoId, small);
  const d = await until(async () => {
    const r = await native('GET', '/v1/webhooks/deliveries?status=failed');
    return r.json.data.find((x) => x.webhook === sub.json.id);
  }, 'the refused delivery', 120);
  assert.equal(d.attempts, 1, 'a refused address is not retried');
  assert.match(d.last_error, /private address/);
  await native('DELETE', `/v1/webhooks/${sub.json.id}`);
});
