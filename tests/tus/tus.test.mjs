// tus uploads the way Gcore's Streaming API takes local files: the
// official tus-js-client (Node) with the endpoint, token and video id from
// GET /streaming/videos/{id}/upload, plus raw requests for what a client
// would not send. Started by tests/tus_test.sh, which passes:
//   REEL_BASE        the node's URL
//   REEL_KEY         an API key of tenant "default"
//   REEL_WORK        a directory holding clip.mp4 (a few seconds, > 1 MiB)
//   REEL_MAX_UPLOAD  the node's --max-upload-bytes
//   REEL_TLS_BASE    a second node, serving HTTPS with the same key (its
//                    certificate trusted through NODE_EXTRA_CA_CERTS)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

const require = createRequire(import.meta.url);
const tus = require('tus-js-client');

const base = process.env.REEL_BASE;
const key = process.env.REEL_KEY;
const work = process.env.REEL_WORK;
const maxUpload = Number(process.env.REEL_MAX_UPLOAD);
const clipPath = path.join(work, 'clip.mp4');
const clip = fs.readFileSync(clipPath);
const clipSha = execFileSync('sha256sum', [clipPath]).toString().split(' ')[0];
const chunkSize = 256 * 1024;
const tlsBase = process.env.REEL_TLS_BASE;

const gcore = { Authorization: `APIKey ${key}` };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64 = (s) => Buffer.from(s).toString('base64');

/// A new Gcore video (status "empty"): {id (integer), slug (UUID), ...}.
async function newVideo(name = 'tus test') {
  const r = await fetch(`${base}/streaming/videos`, {
    method: 'POST', headers: { ...gcore, 'Content-Type': 'application/json' },
    body: JSON.stringify({ video: { name } }) });
  assert.equal(r.status, 200, await r.clone().text());
  const [v] = await r.json();
  assert.ok(Number.isSafeInteger(v.id) && v.id > 0);
  // The UUID is random: it does not begin with the integer id's digits.
  assert.ok(!v.slug.replace(/-/g, '').startsWith(v.id.toString(16)), `${v.slug} carries ${v.id}`);
  return v;
}

/// Gcore's upload parameters for a video: {servers, token, video}.
async function uploadParams(v) {
  const r = await fetch(`${base}/streaming/videos/${v.id}/upload`, { headers: gcore });
  assert.equal(r.status, 200, await r.clone().text());
  const p = await r.json();
  assert.equal(p.video.id, v.id);
  assert.ok(p.servers.length >= 1 && p.servers[0].hostname);
  assert.ok(p.token);
  return p;
}

/// tus-js-client set up as Gcore's docs show it.
function gcoreUpload(file, params, options = {}) {
  return new tus.Upload(file, {
    endpoint: `http://${params.servers[0].hostname}/upload/`,
    chunkSize,
    retryDelays: [0, 300, 1000],
    metadata: {
      filename: 'clip.mp4',
      token: params.token,
      video_id: String(params.video.id),
      client_id: '7',
    },
    ...options,
  });
}

/// Runs an upload to its end: resolves on success, rejects with the error.
function run(upload, resume) {
  return new Promise((resolve, reject) => {
    upload.options.onSuccess = () => resolve(upload);
    upload.options.onError = reject;
    if (resume)
      resume(upload);
    upload.start();
  });
}

const statusOf = (err) => err.originalResponse?.getStatus();

/// A tus request with fetch; Tus-Resumable unless given otherwise.
function tusFetch(url, method, headers = {}, body) {
  return fetch(url, { method, body,
                      headers: { 'Tus-Resumable': '1.0.0', ...headers } });
}

/// Creates an upload with fetch; answers the response.
function create(params, { length = clip.length, metadata } = {}) {
  metadata ??= `filename ${b64('clip.mp4')},token ${b64(params.token)},`
    + `video_id ${b64(String(params.video.id))}`;
  return tusFetch(`${base}/upload/`, 'POST',
                  { 'Upload-Length': String(length), 'Upload-Metadata': metadata });
}

async function createOk(params, opts) {
  const r = await create(params, opts);
  assert.equal(r.status, 201, await r.text());
  assert.equal(r.headers.get('tus-resumable'), '1.0.0');
  const url = r.headers.get('location');
  assert.ok(url.startsWith(`${base}/upload/`), url);
  return url;
}

function patch(url, offset, body, headers = {}) {
  return tusFetch(url, 'PATCH', {
    'Content-Type': 'application/offset+octet-stream',
    'Upload-Offset': String(offset), ...headers }, body);
}

async function head(url) {
  const r = await tusFetch(url, 'HEAD');
  assert.equal(r.headers.get('tus-resumable'), '1.0.0');
  return r;
}

async function offsetOf(url) {
  const r = await head(url);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return Number(r.headers.get('upload-offset'));
}

/// Sends the headers of a PATCH of `total` bytes at `offset` and only
/// `part` of its body; resolves with the socket, still open, once `part`
/// is on its way.
function partialPatch(url, offset, total, part) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname, () => {
      s.write(`PATCH ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n`
              + 'Tus-Resumable: 1.0.0\r\n'
              + 'Content-Type: application/offset+octet-stream\r\n'
              + `Upload-Offset: ${offset}\r\nContent-Length: ${total}\r\n\r\n`);
      s.write(part, () => resolve(s));
    });
    s.on('error', reject);
  });
}

/// The native API's view of a video.
async function nativeVideo(uuid) {
  const r = await fetch(`${base}/v1/videos/${uuid}`,
                        { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(r.status, 200);
  return r.json();
}

/// Polls until the video's source is `sha` (and, with `ready`, until the
/// video is ready); fails the test on a failed video.
async function untilSource(uuid, sha, { ready = false, seconds = 40 } = {}) {
  let v;
  for (let i = 0; i < seconds * 4; i++) {
    v = await nativeVideo(uuid);
    assert.notEqual(v.state, 'failed', `video failed: ${v.failure_reason}`);
    if (v.source.sha256 === sha && (!ready || v.state === 'ready'))
      return v;
    await sleep(250);
  }
  assert.fail(`video ${uuid}: source ${v.source.sha256}, state ${v.state}`);
}

test('OPTIONS tells what the server speaks; CORS lets browsers use it', async () => {
  const r = await fetch(`${base}/upload/`, { method: 'OPTIONS' });
  assert.ok(r.status === 204 || r.status === 200);
  assert.equal(r.headers.get('tus-version'), '1.0.0');
  assert.equal(r.headers.get('tus-resumable'), '1.0.0');
  assert.deepEqual(r.headers.get('tus-extension').split(',').sort(),
                   ['creation', 'expiration', 'termination']);
  assert.equal(Number(r.headers.get('tus-max-size')), maxUpload);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  const allowed = r.headers.get('access-control-allow-headers').toLowerCase();
  for (const h of ['tus-resumable', 'upload-length', 'upload-metadata', 'upload-offset'])
    assert.ok(allowed.includes(h), `${h} not allowed`);
  assert.ok(r.headers.get('access-control-allow-methods').includes('PATCH'));
  const exposed = r.headers.get('access-control-expose-headers').toLowerCase();
  for (const h of ['upload-offset', 'location', 'upload-length', 'tus-version',
                   'tus-resumable', 'tus-max-size', 'tus-extension',
                   'upload-metadata', 'upload-expires'])
    assert.ok(exposed.includes(h), `${h} not exposed`);
});

test('a whole upload with tus-js-client becomes the video\'s source and plays', async () => {
  const v = await newVideo('whole');
  const params = await uploadParams(v);
  const methods = [];
  const upload = gcoreUpload(clip, params, {
    onBeforeRequest: (req) => { methods.push(req.getMethod()); },
  });
  await run(upload);
  assert.equal(methods[0], 'POST');
  const patches = methods.filter((m) => m === 'PATCH').length;
  assert.equal(patches, Math.ceil(clip.length / chunkSize));
  assert.ok(patches > 1);
  // The finished upload still answers HEAD: it is complete.
  const h = await head(upload.url);
  assert.equal(h.status, 200);
  assert.equal(Number(h.headers.get('upload-offset')), clip.length);
  assert.equal(Number(h.headers.get('upload-length')), clip.length);
  // The metadata comes back, without the token.
  const meta = h.headers.get('upload-metadata');
  assert.ok(meta.includes(`filename ${b64('clip.mp4')}`), meta);
  assert.ok(!meta.includes('token'), meta);
  const done = await untilSource(v.slug, clipSha, { ready: true, seconds: 50 });
  assert.equal(done.source.size_bytes, clip.length);
  // A second source for it is refused.
  const again = await create(params);
  assert.equal(again.status, 409);
  assert.match((await again.json()).error, /already has a source/);
});

test('an interrupted upload resumes from the server\'s offset', async () => {
  const v = await newVideo('resumed');
  const params = await uploadParams(v);
  const urlStorage = new tus.FileUrlStorage(path.join(work, 'tus-urls.json'));
  // The first try stops after one chunk.
  const first = gcoreUpload(clip, params, {
    urlStorage,
    onChunkComplete: () => { first.abort(); },
  });
  first.options.onError = (e) => assert.fail(e);
  first.start();
  for (let i = 0; i < 100 && !(first.url && (await offsetOf(first.url)) > 0); i++)
    await sleep(50);
  assert.equal(await offsetOf(first.url), chunkSize);
  // Then a PATCH breaks off mid-body: what arrived is kept.
  const part = clip.subarray(chunkSize, chunkSize + 100000);
  const sock = await partialPatch(first.url, chunkSize, chunkSize, part);
  await sleep(200);
  sock.destroy();
  const offset = await offsetOf(first.url);
  assert.equal(offset, chunkSize + part.length);
  // A new tus.Upload of the same file finds the upload by its fingerprint
  // and goes on from the server's offset, not from 0 or a chunk boundary.
  const offsets = [];
  const methods = [];
  const second = gcoreUpload(clip, params, {
    urlStorage,
    onBeforeRequest: (req) => {
      methods.push(req.getMethod());
      if (req.getMethod() === 'PATCH')
        offsets.push(Number(req.getHeader('Upload-Offset')));
    },
  });
  const previous = await second.findPreviousUploads();
  assert.equal(previous.length, 1);
  await run(second, (u) => u.resumeFromPreviousUpload(previous[0]));
  assert.equal(second.url, first.url);
  assert.ok(!methods.includes('POST'), methods.join());
  assert.equal(methods[0], 'HEAD');
  assert.equal(offsets[0], offset);
  await untilSource(v.slug, clipSha);
});

test('a missing, bad or foreign token gets 401', async () => {
  const v = await newVideo('token');
  const params = await uploadParams(v);
  const bad = gcoreUpload(clip, { ...params, token: `${params.token}x` });
  assert.equal(statusOf(await run(bad).then(() => assert.fail('uploaded'), (e) => e)), 401);
  const none = await create(params, { metadata: `video_id ${b64(String(v.id))}` });
  assert.equal(none.status, 401);
  assert.equal(none.headers.get('tus-resumable'), '1.0.0');
  // Another video's token.
  const w = await newVideo('token 2');
  const other = await uploadParams(w);
  const foreign = await create({ ...params, token: other.token });
  assert.equal(foreign.status, 401);
  assert.match((await foreign.json()).error, /another video/);
  // The video may be named by its UUID too.
  const byUuid = await create(params, {
    metadata: `token ${b64(params.token)},video_id ${b64(v.slug)}` });
  assert.equal(byUuid.status, 201);
});

test('a deleted video gets 404; a malformed video_id 400', async () => {
  const v = await newVideo('gone');
  const params = await uploadParams(v);
  const del = await fetch(`${base}/streaming/videos/${v.id}`, { method: 'DELETE', headers: gcore });
  assert.equal(del.status, 204);
  const r = await create(params);
  assert.equal(r.status, 404);
  const u = gcoreUpload(clip, params);
  assert.equal(statusOf(await run(u).then(() => assert.fail('uploaded'), (e) => e)), 404);
  const w = await newVideo('bad id');
  const p2 = await uploadParams(w);
  const bad = await create(p2, { metadata: `token ${b64(p2.token)},video_id ${b64('abc')}` });
  assert.equal(bad.status, 400);
});

test('termination: DELETE removes the upload', async () => {
  const v = await newVideo('terminated');
  const params = await uploadParams(v);
  const url = await createOk(params);
  assert.equal((await patch(url, 0, clip.subarray(0, 1000))).status, 204);
  const d = await tusFetch(url, 'DELETE');
  assert.equal(d.status, 204);
  assert.equal(d.headers.get('tus-resumable'), '1.0.0');
  assert.equal((await head(url)).status, 404);
  assert.equal((await patch(url, 1000, clip.subarray(1000, 2000))).status, 404);
  assert.equal((await tusFetch(url, 'DELETE')).status, 404);
  // tus-js-client's own termination.
  const u2 = await createOk(params);
  await tus.Upload.terminate(u2);
  assert.equal((await head(u2)).status, 404);
});

test('protocol errors: version, lengths, metadata, offsets, content type', async () => {
  const v = await newVideo('errors');
  const params = await uploadParams(v);
  // Creation.
  const noVersion = await fetch(`${base}/upload/`, { method: 'POST',
    headers: { 'Upload-Length': '10' } });
  assert.equal(noVersion.status, 412);
  assert.equal(noVersion.headers.get('tus-version'), '1.0.0');
  const oldVersion = await tusFetch(`${base}/upload/`, 'POST',
                                    { 'Tus-Resumable': '0.2.2', 'Upload-Length': '10' });
  assert.equal(oldVersion.status, 412);
  const deferred = await tusFetch(`${base}/upload/`, 'POST', { 'Upload-Defer-Length': '1' });
  assert.equal(deferred.status, 400);
  assert.match((await deferred.json()).error, /Upload-Defer-Length is not supported/);
  assert.equal((await tusFetch(`${base}/upload/`, 'POST')).status, 400);
  assert.equal((await create(params, { length: 0 })).status, 400);
  assert.equal((await create(params, { length: 'ten' })).status, 400);
  const huge = await create(params, { length: maxUpload + 1 });
  assert.equal(huge.status, 413);
  assert.equal((await create(params, { metadata: 'token !!!' })).status, 400);
  assert.equal((await create(params, {
    metadata: `token ${b64(params.token)},token ${b64(params.token)}` })).status, 400);
  // A key without a value is allowed.
  const url = await createOk(params, {
    metadata: `token ${b64(params.token)},video_id ${b64(String(v.id))},is_confidential` });
  const created = await head(url);
  assert.equal(created.headers.get('upload-offset'), '0');
  assert.equal(Number(created.headers.get('upload-length')), clip.length);
  const expires = created.headers.get('upload-expires');
  assert.match(expires, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  const ahead = Date.parse(expires) - Date.now();
  assert.ok(ahead > 23.9 * 3600e3 && ahead <= 24 * 3600e3 + 1000, expires);
  // PATCH.
  const first = await patch(url, 0, clip.subarray(0, 5000));
  assert.equal(first.status, 204);
  assert.equal(first.headers.get('upload-offset'), '5000');
  assert.equal(first.headers.get('tus-resumable'), '1.0.0');
  assert.ok(first.headers.get('upload-expires'));
  const wrongOffset = await patch(url, 4000, clip.subarray(4000, 9000));
  assert.equal(wrongOffset.status, 409);
  const wrongType = await patch(url, 5000, clip.subarray(5000, 9000),
                                { 'Content-Type': 'application/octet-stream' });
  assert.equal(wrongType.status, 415);
  const noVersionPatch = await fetch(url, { method: 'PATCH', body: clip.subarray(5000, 9000),
    headers: { 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '5000' } });
  assert.equal(noVersionPatch.status, 412);
  const noOffset = await tusFetch(url, 'PATCH',
    { 'Content-Type': 'application/offset+octet-stream' }, clip.subarray(5000, 9000));
  assert.equal(noOffset.status, 400);
  const tooLong = await patch(url, 5000, Buffer.concat([clip.subarray(5000), Buffer.alloc(10)]));
  assert.equal(tooLong.status, 413);
  assert.equal(await offsetOf(url), 5000); // none of the refused bodies counted
  assert.equal((await fetch(url)).status, 405);
  assert.equal((await head(`${base}/upload/NoSuchUpload0123456789ab`)).status, 404);
  // The rest, and the file is whole.
  const rest = await patch(url, 5000, clip.subarray(5000));
  assert.equal(rest.status, 204, await rest.text());
  assert.equal(Number(rest.headers.get('upload-offset')), clip.length);
  await untilSource(v.slug, clipSha);
});

test('one PATCH at a time per upload: the second gets 423', async () => {
  const v = await newVideo('locked');
  const params = await uploadParams(v);
  const url = await createOk(params);
  const sock = await partialPatch(url, 0, 200000, clip.subarray(0, 50000));
  await sleep(100);
  const second = await patch(url, 0, clip.subarray(0, 1000));
  assert.equal(second.status, 423);
  sock.destroy();
  assert.equal(await offsetOf(url), 50000);
  assert.equal((await tusFetch(url, 'DELETE')).status, 204);
});

test('two uploads for one video: the one that ends second gets 409', async () => {
  const v = await newVideo('twice');
  const params = await uploadParams(v);
  const a = await createOk(params);
  const b = await createOk(params);
  assert.notEqual(a, b);
  assert.equal((await patch(b, 0, clip.subarray(0, 1000))).status, 204);
  assert.equal((await patch(a, 0, clip)).status, 204);
  const late = await patch(b, 1000, clip.subarray(1000));
  assert.equal(late.status, 409);
  assert.match((await late.json()).error, /already has a source/);
  assert.equal((await head(b)).status, 404); // nothing half-done is kept
  await untilSource(v.slug, clipSha);
});

test('Gcore\'s documented upload flow: POST the video, GET its upload parameters, tus to https://{hostname}/upload/', async () => {
  // Against the HTTPS node, exactly as Gcore documents it (API reference,
  // "Get TUS' session parameters"; G-Core/gcore-python,
  // videos.get_parameters_for_direct_upload): the endpoint is
  // "https://${data.servers[0].hostname}/upload/" and the metadata carry
  // the video's name, the token, the video's id and its client_id.
  const auth = { Authorization: `APIKey ${key}` };
  const made = await fetch(`${tlsBase}/streaming/videos`, {
    method: 'POST', headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ video: { name: 'Documented flow' } }) });
  assert.equal(made.status, 200);
  const [video] = await made.json();
  const r = await fetch(`${tlsBase}/streaming/videos/${video.id}/upload`, { headers: auth });
  assert.equal(r.status, 200);
  const data = await r.json();
  assert.equal(data.servers[0].hostname, new URL(tlsBase).host);
  assert.equal(data.servers[0].url, `${tlsBase}/upload/`);
  assert.ok(Number.isSafeInteger(data.video.client_id));
  const uploads = {};
  await new Promise((resolve, reject) => {
    uploads[data.video.id] = new tus.Upload(clip, {
      endpoint: `https://${data.servers[0].hostname}/upload/`,
      metadata: {
        filename: data.video.name,
        token: data.token,
        video_id: data.video.id,
        client_id: data.video.client_id,
      },
      onSuccess: resolve,
      onError: reject,
    });
    uploads[data.video.id].start();
  });
  assert.ok(uploads[data.video.id].url.startsWith(`${tlsBase}/upload/`));
  // The file is the video's source, and it plays.
  let v;
  for (let i = 0; i < 200; i++) {
    v = await (await fetch(`${tlsBase}/v1/videos/${data.video.slug}`,
                           { headers: { Authorization: `Bearer ${key}` } })).json();
    assert.notEqual(v.state, 'failed', v.failure_reason);
    if (v.state === 'ready') break;
    await sleep(250);
  }
  assert.equal(v.state, 'ready');
  assert.equal(v.source.sha256, clipSha);
  const g = await (await fetch(`${tlsBase}/streaming/videos/${video.id}`, { headers: auth })).json();
  assert.equal(g.status, 'ready');
  assert.ok(g.hls_url.startsWith(`${tlsBase}/media/`));
  // On the plain-HTTP node the same answer names its http:// endpoint in
  // `url`, for clients that do not build it from the hostname.
  const plain = await uploadParams(await newVideo('plain url'));
  assert.equal(plain.servers[0].url, `${base}/upload/`);
  assert.equal(plain.servers[0].hostname, new URL(base).host);
});
