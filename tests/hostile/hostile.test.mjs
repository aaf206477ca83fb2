// Hostile input against a real reeld: every dialect's auth, paths and
// names, bodies, ranges, URL imports and media that should not be trusted.
// After every test the node still serves a canary video. Started by
// tests/hostile_test.sh, which passes REEL_BASE, REEL_KEY (admin of tenant
// "default"), REEL_KEY2 (tenant "other"), REEL_PAT_READ (flr_pat_ with
// videos:read), REEL_DATA (the node's data directory), REEL_WORK (media
// made by the script) and REEL_CANARY (a ready video of tenant "default").
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const base = process.env.REEL_BASE;
const key = process.env.REEL_KEY;
const key2 = process.env.REEL_KEY2;
const patRead = process.env.REEL_PAT_READ;
const data = process.env.REEL_DATA;
const work = process.env.REEL_WORK;
const canary = process.env.REEL_CANARY;
const port = Number(new URL(base).port);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const bearer = (k) => ({ Authorization: `Bearer ${k}` });
const basic = (k) => ({ Authorization: `Basic ${Buffer.from(`${k}:`).toString('base64')}` });

async function call(method, url, { headers = {}, body, raw } = {}) {
  const r = await fetch(base + url, {
    method, headers: body ? { 'Content-Type': 'application/json', ...headers } : headers,
    body: raw ?? (body ? JSON.stringify(body) : undefined), redirect: 'manual' });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text };
}

/// Sends raw bytes on a fresh connection (left open for the answer:
/// httplib drops a request whose client half-closed); answers what came
/// back (or '' when the server closed without answering) within `ms`.
function rawHttp(bytes, ms = 5000) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    const done = () => { s.destroy(); resolve(got); };
    s.on('data', (d) => { got += d.toString('latin1'); });
    s.on('end', done);
    s.on('error', done);
    s.setTimeout(ms, done);
    s.write(bytes);
  });
}
const statusOf = (answer) => Number((answer.match(/^HTTP\/1\.1 (\d{3})/) || [])[1] || 0);

// The node keeps serving others throughout: the canary plays after every test.
afterEach(async () => {
  const v = await call('GET', `/v1/videos/${canary}`, { headers: bearer(key) });
  assert.equal(v.status, 200, 'the canary answers');
  assert.equal(v.json.state, 'ready');
  const seg = await fetch(`${base}/media/${canary}/master.m3u8`);
  assert.equal(seg.status, 200);
});

test('auth: missing, malformed, wrong, another tenant, no scope — in every dialect', async () => {
  const routes = [
    ['native', '/v1/videos', (k) => bearer(k)],
    ['uploads', '/api/client/v1/uploads', (k) => bearer(k)],
    ['api.video', '/videos', (k) => basic(k)],
    ['gcore', '/streaming/videos', (k) => ({ Authorization: `APIKey ${k}` })],
    ['flare', '/api/videos', (k) => bearer(k)],
  ];
  for (const [name, url, auth] of routes) {
    assert.equal((await call('GET', url)).status, 401, `${name}: none`);
    for (const bad of ['Bearer', 'Bearer ', 'Basic !!!', 'Basic ', 'APIKey', 'Token abc', 'Bearer \u00ff'])
      assert.equal((await call('GET', url, { headers: { Authorization: bad } })).status, 401, `${name}: ${bad.slice(0, 20)}`);
    // A header over httplib's 8 KiB line limit is refused as a bad request.
    assert.equal((await call('GET', url, { headers: { Authorization: `Bearer ${'k'.repeat(10000)}` } })).status, 400);
    assert.equal((await call('GET', url, { headers: auth('sk-wrong') })).status, 401, `${name}: wrong key`);
    assert.equal((await call('GET', url, { headers: auth(key) })).status, 200, `${name}: good key`);
  }
  // Another tenant's valid key: 404 for the canary in every dialect, and
  // its lists show nothing of tenant "default".
  // The canary's integer id, as its own tenant sees it in Gcore's list.
  const mine = await call('GET', `/streaming/videos?search=${canary}`, { headers: { Authorization: `APIKey ${key}` } });
  assert.equal(mine.json.length, 1);
  const number = mine.json[0].id;
  assert.equal((await call('GET', `/streaming/videos/${number}`, { headers: { Authorization: `APIKey ${key}` } })).status, 200);
  for (const [url, headers] of [[`/v1/videos/${canary}`, bearer(key2)], [`/api/client/v1/uploads/${canary}`, bearer(key2)],
                                [`/videos/${canary}`, basic(key2)], [`/videos/${canary}/status`, basic(key2)],
                                [`/streaming/videos/${number}`, { Authorization: `APIKey ${key2}` }],
                                [`/api/video/${canary}`, bearer(key2)]]) {
    const r = await call('GET', url, { headers });
    assert.equal(r.status, 404, url);
    assert.ok(!r.text.includes('canary'), 'never the data');
  }
  for (const [url, headers] of [['/v1/videos', bearer(key2)], ['/api/client/v1/uploads', bearer(key2)],
                                ['/streaming/videos', { Authorization: `APIKey ${key2}` }], ['/api/videos', bearer(key2)]])
    assert.ok(!(await call('GET', url, { headers })).text.includes(canary), url);
  // A key without the scope; a non-admin key on admin routes.
  assert.equal((await call('POST', '/api/video/create', { headers: bearer(patRead), body: { fileName: 'a.mp4' } })).status, 403);
  assert.equal((await call('GET', '/v1/admin/status', { headers: bearer(key2) })).status, 403);
  assert.equal((await call('POST', '/v1/keys', { headers: bearer(key2), body: { tenant: 'x' } })).status, 403);
  // Tokens: forged and truncated api.video tokens, a refresh token used as
  // an access token.
  const t = (await call('POST', '/auth/api-key', { body: { apiKey: key } })).json;
  for (const forged of [t.access_token.slice(0, -1) + (t.access_token.endsWith('0') ? '1' : '0'),
                        t.access_token.slice(0, 20), t.refresh_token,
                        t.access_token.replace(/\.(\d+)\./, (m, e) => `.${Number(e) + 1000}.`)])
    assert.equal((await call('GET', '/videos', { headers: bearer(forged) })).status, 401);
});

test('paths and names: .., /, NUL, percent tricks, very long values', async () => {
  const secret = fs.readFileSync(path.join(data, 'db', 'CURRENT'));
  for (const p of [`/media/${canary}/../../db/CURRENT`, `/media/${canary}/%2e%2e/%2e%2e/db/CURRENT`,
                   `/media/${canary}/..%2f..%2fdb%2fCURRENT`, `/media/${canary}/%2e%2e%2f%2e%2e%2fdb/CURRENT`,
                   `/media/..%2f..%2fdb/CURRENT`, `/media/${canary}/master.m3u8%00.jpg`,
                   `/media/${canary}/token/x/../../../db/CURRENT`, `/media/${canary}/source/..%2f..%2fdb%2fCURRENT`,
                   `/media/${'a'.repeat(5000)}/x`, `/embed/..%2f..%2fdb`, `/videos/..%2f..%2fdb`]) {
    const r = await rawHttp(`GET ${p} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nConnection: close\r\n\r\n`);
    const status = statusOf(r);
    assert.ok(status >= 400 && status < 500, `${p} answered ${status}`);
    assert.ok(!r.includes(secret.toString('latin1').trim()), `${p} leaked a store file`);
  }
  // Names a client gives are kept as names, never as paths.
  const small = path.join(work, 'small.mp4');
  const form = new FormData();
  form.append('folder', 'root');
  form.append('video', new Blob([fs.readFileSync(small)]), '../../../../tmp/evil\u0000.mp4');
  const up = await (await fetch(`${base}/api/client/v1/uploads`, { method: 'POST', headers: bearer(key), body: form })).json();
  const id = up.data.id;
  const v = (await call('GET', `/v1/videos/${id}`, { headers: bearer(key) })).json;
  assert.ok(!v.filename.includes('/') && !v.filename.includes('\0'), v.filename);
  assert.ok(!fs.existsSync('/tmp/evil.mp4'));
  const flare = await call('POST', '/api/video/create', { headers: bearer(key), body: { fileName: '../../x/../../etc/passwd', s3Key: 'ok_key' } });
  assert.equal(flare.status, 200);
  const pre = await call('POST', '/api/video/upload/presign', { headers: bearer(key), body: { videoId: 'ok_key', fileName: '../../../etc/passwd' } });
  assert.match(pre.json.uploadUrl, /\/presigned\/[0-9a-f-]{36}\/passwd\?/);
  for (const k of ['../x', 'a/b', 'a\u0000b', 'x'.repeat(200), '%2e%2e'])
    assert.equal((await call('POST', '/api/video/create', { headers: bearer(key), body: { fileName: 'a.mp4', s3Key: k } })).status, 400, k);
  for (const folder of ['root/..', 'root/../../etc', '../root', 'root/a/../../b', 'root/' + 'a'.repeat(100), 'root/a\u0000'])
    assert.ok([400, 404].includes((await call('POST', '/v1/folders', { headers: bearer(key), body: { path: folder } })).status), folder);
  // Long values everywhere stay bounded.
  assert.equal((await call('POST', '/videos', { headers: basic(key), body: { title: 'x'.repeat(100000) } })).status, 400);
  assert.equal((await call('POST', '/streaming/videos', { headers: { Authorization: `APIKey ${key}` }, body: { video: { name: 'x'.repeat(100000) } } })).status, 400);
  const longUrl = await rawHttp(`GET /v1/videos?tenant=${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.ok(statusOf(longUrl) >= 400);
  // Nothing was written outside the data directory's own layout.
  const top = fs.readdirSync(data).sort();
  for (const entry of top)
    assert.ok(['db', 'media', 'sources', 'tmp', 'tus', 'work'].includes(entry), `unexpected ${entry} in the data directory`);
});

test('bodies: malformed, deeply nested, wrong types, huge, many parts, cut short, over the limit', async () => {
  const json = (url, headers) => async (raw) => (await call('POST', url, { headers: { 'Content-Type': 'application/json', ...headers }, raw })).status;
  const targets = [json('/v1/folders', bearer(key)), json('/videos', basic(key)),
                   json('/streaming/videos', { Authorization: `APIKey ${key}` }), json('/api/video/create', bearer(key)),
                   json('/auth/api-key', {})];
  const nested = '['.repeat(200000) + ']'.repeat(200000);
  const deepObject = '{"a":'.repeat(100000) + '1' + '}'.repeat(100000);
  for (const send of targets)
    for (const raw of ['{', 'null', '[]', '"x"', '{"title": }', nested, deepObject, '\u0000\u0001', '{"title":1e999999}'])
      assert.equal(await send(raw), 400, `${targets.indexOf(send)}: ${raw.slice(0, 20)}`);
  // Wrong types.
  for (const [url, headers, body] of [['/videos', basic(key), { title: 5 }], ['/videos', basic(key), { title: 't', tags: 'a' }],
                                      ['/videos', basic(key), { title: 't', metadata: [{ key: 1 }] }], ['/videos', basic(key), { title: 't', public: 'no' }],
                                      ['/streaming/videos', { Authorization: `APIKey ${key}` }, { video: { name: 'x', priority: 'high' } }],
                                      ['/streaming/videos', { Authorization: `APIKey ${key}` }, { video: [] }],
                                      ['/api/video/create', bearer(key), { fileName: ['a'] }], ['/v1/folders', bearer(key), { path: 7 }],
                                      ['/upload-tokens', basic(key), { ttl: -1 }], ['/upload-tokens', basic(key), { ttl: 'x' }]])
    assert.equal((await call('POST', url, { headers, body })).status, 400, `${url} ${JSON.stringify(body)}`);
  // Over 2 MiB: 413, before the whole body is read.
  assert.equal(await json('/videos', basic(key))(JSON.stringify({ title: 'x'.repeat(3 << 20) })), 413);
  // Multipart: many parts, no boundary, cut short, chunked over the limit.
  const uploads = `${base}/api/client/v1/uploads`;
  const many = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${key}`];
  for (let i = 0; i < 200; i++) many.push('-F', `f${i}=x`);
  assert.equal(execFileSync('curl', [...many, uploads]).toString(), '400');
  let r = await rawHttp(`POST /api/client/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: multipart/form-data\r\nContent-Length: 10\r\n\r\n0123456789`);
  assert.equal(statusOf(r), 400, 'no boundary');
  r = await rawHttp(`POST /api/client/v1/uploads HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${key}\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 100000\r\n\r\n--XX\r\nContent-Disposition: form-data; name="video"; filename="a.mp4"\r\n\r\nshort`, 3000);
  assert.ok(statusOf(r) === 0 || statusOf(r) >= 400, 'a body cut short is not accepted');
  // Nothing of those stayed in tmp/ (cut-off uploads are removed).
  await sleep(500);
  assert.deepEqual(fs.readdirSync(path.join(data, 'tmp')), []);
  const chunked = ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Authorization: Bearer ${key}`,
                   '-H', 'Transfer-Encoding: chunked', '-F', 'folder=root', '-F', `video=@${path.join(work, 'big.bin')}`, uploads];
  assert.equal(execFileSync('curl', chunked).toString(), '413', 'a chunked body over --max-upload-bytes');
  // Broken HTTP: garbage, a huge header, a bad Content-Length.
  for (const bad of ['GARBAGE\r\n\r\n', `GET / HTTP/1.1\r\nX: ${'a'.repeat(100000)}\r\n\r\n`,
                     'POST /v1/folders HTTP/1.1\r\nContent-Length: -5\r\n\r\n', 'GET /\u0000 HTTP/1.1\r\n\r\n'])
    assert.ok(statusOf(await rawHttp(bad)) !== 200);
});

test('ranges: malformed, reversed, past the end, many', async () => {
  const url = `${base}/media/${canary}/master.m3u8`;
  const size = (await (await fetch(url)).arrayBuffer()).byteLength;
  for (const [range, want] of [['bytes=abc', [200, 416]], ['bytes=10-5', [200, 416]], [`bytes=${size + 10}-`, [416]],
                               ['bytes=-0', [200, 416]], ['bytes=0-0', [206]], [`bytes=${size - 1}-${size + 1000}`, [206]],
                               ['pages=0-1', [200, 416]], ['bytes=' + Array.from({ length: 2000 }, (_, i) => `${i}-${i}`).join(','), [200, 206, 400, 416]],
                               ['bytes=99999999999999999999999-', [200, 416]]]) {
    const r = await fetch(url, { headers: { Range: range } });
    assert.ok(want.includes(r.status), `${range.slice(0, 30)}: ${r.status}`);
    if (r.status === 206)
      assert.match(r.headers.get('content-range'), new RegExp(`^bytes \\d+-\\d+/${size}$`));
  }
});

test('URL imports: loopback and private targets refused unless allowed', async () => {
  // This node runs without --import-allow.
  for (const source of [`${base}/media/${canary}/240p.mp4`, `http://localhost:${port}/media/${canary}/240p.mp4`,
                        'http://10.0.0.1/x.mp4', 'http://[::1]/x.mp4', 'http://2130706433/x.mp4', 'http://169.254.169.254/latest/meta-data/']) {
    const v = (await call('POST', '/videos', { headers: basic(key), body: { title: 'import', source } })).json;
    let n;
    for (let i = 0; i < 80; i++) {
      n = (await call('GET', `/v1/videos/${v.videoId}`, { headers: bearer(key) })).json;
      if (n.state === 'failed') break;
      await sleep(100);
    }
    assert.equal(n.state, 'failed', source);
    assert.match(n.failure_reason, /refus|private|loopback/, `${source}: ${n.failure_reason}`);
  }
  for (const source of ['ftp://example.com/x.mp4', 'file:///etc/passwd', 'gopher://x', 'javascript:alert(1)'])
    assert.equal((await call('POST', '/videos', { headers: basic(key), body: { title: 'import', source } })).status, 400, source);
});

test('media: truncated, disguised, empty, absurd, too many streams: failed with a reason, in bounded time', async () => {
  const cases = fs.readdirSync(path.join(work, 'bad')).sort();
  assert.ok(cases.length >= 6);
  const started = Date.now();
  const ids = {};
  for (const name of cases) {
    const out = execFileSync('curl', ['-s', '-H', `Authorization: Bearer ${key}`, '-F', `video=@${path.join(work, 'bad', name)}`,
                                      '-F', 'folder=root', `${base}/api/client/v1/uploads`]).toString();
    const j = JSON.parse(out);
    if (j.data) ids[name] = j.data.id;
    else assert.ok(/empty|required|file/i.test(j.message), `${name}: ${out}`);
  }
  for (const [name, id] of Object.entries(ids)) {
    let v;
    for (let i = 0; i < 240; i++) {
      v = (await call('GET', `/v1/videos/${id}`, { headers: bearer(key) })).json;
      if (v.state === 'failed' || v.state === 'ready') break;
      await sleep(250);
    }
    assert.equal(v.state, 'failed', `${name} should fail (${v.state})`);
    assert.ok(v.failure_reason && v.failure_reason.length > 5, `${name}: a reason`);
    console.log(`# ${name}: ${v.failure_reason}`);
  }
  assert.ok(Date.now() - started < 60000, 'bounded time');
});

test('slow clients: a hundred slowloris connections do not stall anyone else', async () => {
  // Each sends its request line, then one header byte a second, never
  // finishing: each holds a thread (up to --http-max-connections), not
  // the server.
  const sockets = [];
  for (let i = 0; i < 100; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.write('GET /v1/videos HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    sockets.push(s);
  }
  const drip = setInterval(() => { for (const s of sockets) s.write('a'); }, 1000);
  try {
    await sleep(1500);
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const r = await call('GET', `/v1/videos/${canary}`, { headers: bearer(key) });
      assert.equal(r.status, 200);
      assert.ok(Date.now() - t0 < 2000, `answered in ${Date.now() - t0} ms while slow clients wait`);
      await sleep(300);
    }
    // A body that trickles: bounded by the read timeout, not forever. (The
    // upload route waits for it; others are served meanwhile.)
  } finally {
    clearInterval(drip);
    for (const s of sockets) s.destroy();
  }
});
