// The Gcore Streaming and Flare dialects against a real reeld, with the
// seed files' example requests sent as written (host changed, and the
// placeholders a real server needs made real: see each test), plus
// cross-dialect reads and tenant isolation. Started by
// tests/dialects_test.sh, which passes:
//   REEL_BASE, REEL_KEY (admin, tenant "default"), REEL_KEY2 (tenant
//   "other"), REEL_PAT (flr_pat_ with every scope, tenant "default"),
//   REEL_PAT_READ (flr_pat_ with videos:read only), REEL_WORK (small.mp4,
//   poster.jpg, big.jpg over 1 MB)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const base = process.env.REEL_BASE;
const key = process.env.REEL_KEY;
const key2 = process.env.REEL_KEY2;
const pat = process.env.REEL_PAT;
const patRead = process.env.REEL_PAT_READ;
const work = process.env.REEL_WORK;
const small = path.join(work, 'small.mp4');
const poster = fs.readFileSync(path.join(work, 'poster.jpg'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (buf) => execFileSync('sha256sum').toString; // unused guard
void sha;

// An origin server on 127.0.0.1 that records the headers of each request.
let origin;
let originUrl;
const originSeen = [];
// /files/held.mp4 (the same file) is answered only when the test releases
// it, so that an import stays in progress meanwhile.
const held = [];
const serve = (res) => {
  const body = fs.readFileSync(small);
  res.writeHead(200, { 'Content-Type': 'video/mp4', 'Content-Length': body.length });
  res.end(body);
};
const releaseHeld = () => { for (const res of held.splice(0)) serve(res); };
before(async () => {
  origin = http.createServer((req, res) => {
    originSeen.push(req.headers);
    if (req.url === '/files/held.mp4') { held.push(res); return; }
    if (req.url === '/files/poster.jpg') {
      res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end(poster);
      return;
    }
    if (req.url !== '/files/ibc.mp4') { res.writeHead(404).end(); return; }
    serve(res);
  });
  await new Promise((r) => origin.listen(0, '127.0.0.1', r));
  originUrl = `http://127.0.0.1:${origin.address().port}/files/ibc.mp4`;
});
after(() => { releaseHeld(); origin.close(); });

async function call(method, url, { headers = {}, body, raw } = {}) {
  const r = await fetch(url.startsWith('http') ? url : base + url, {
    method, headers: body ? { 'Content-Type': 'application/json', ...headers } : headers,
    body: raw ?? (body ? JSON.stringify(body) : undefined), redirect: 'manual' });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, headers: r.headers };
}
const gcore = (method, url, body, k = key) =>
  call(method, url, { headers: { Authorization: `APIKey ${k}` }, body });
const flare = (method, url, body, k = pat) =>
  call(method, url, { headers: { Authorization: `Bearer ${k}` }, body });
const native = async (id) => (await call('GET', `/v1/videos/${id}`, {
  headers: { Authorization: `Bearer ${key}` } })).json;

async function until(check, what, seconds = 180) {
  for (let i = 0; i < seconds * 4; i++) {
    const v = await check();
    if (v) return v;
    await sleep(250);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const gcoreReady = (id) => until(async () => {
  const r = await gcore('GET', `/streaming/videos/${id}`);
  assert.notEqual(r.json.status, 'error', r.json.error);
  return r.json.status === 'ready' && r.json;
}, `Gcore video ${id} ready`);

let folderId;
test('Gcore: the seed request (POST /streaming/videos) imports, clips and takes the poster', async () => {
  const folder = await call('POST', '/v1/folders', { headers: { Authorization: `Bearer ${key}` },
                                                     body: { path: 'root/ibc' } });
  assert.equal(folder.status, 201);
  folderId = folder.json.id;
  // Seed 004 as written, but: origin_url points at the test's own server
  // (the seed's is on the Internet), the poster is a real JPEG (the seed's
  // is elided with "..."), directory_id names a folder that exists, and the
  // clip fits the 6 s test clip.
  const seed = {
    video: {
      name: 'IBC 2025 - International Broadcasting Convention',
      description: 'We look forward to welcoming you at IBC2025, which will take place 12-15 September 2025.',
      origin_url: originUrl,
      origin_http_headers: 'Authorization: Bearer ...',
      priority: 0,
      clip_start_seconds: 1,
      clip_duration_seconds: 3,
      directory_id: folderId,
      projection: 'regular',
      client_user_id: 10,
      stream_id: 1,
      poster: `data:image/jpeg;base64,${poster.toString('base64')}`,
      screenshot_id: -1,
      auto_transcribe_audio_language: 'auto',
    },
  };
  const r = await call('POST', '/streaming/videos', {
    headers: { APIKey: key }, body: seed });
  assert.equal(r.status, 200);
  assert.ok(Array.isArray(r.json) && r.json.length === 1, 'Gcore answers an array');
  const v = r.json[0];
  assert.ok(Number.isSafeInteger(v.id) && v.id > 0);
  // The UUID is random: it does not carry the integer id (ids once began
  // with its hex digits, so knowing one gave the other).
  assert.match(v.slug, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(!v.slug.replace(/-/g, '').startsWith(v.id.toString(16)), `${v.slug} carries ${v.id}`);
  assert.notEqual(parseInt(v.slug.replace(/-/g, '').slice(0, 12), 16), v.id);
  for (const c of v.converted_videos) assert.ok(Number.isSafeInteger(c.id));
  assert.equal(v.name, seed.video.name);
  assert.equal(v.description, seed.video.description);
  assert.equal(v.client_user_id, 10);
  assert.equal(v.directory_id, folderId);
  assert.equal(v.clip_start_seconds, 1);
  assert.equal(v.clip_duration_seconds, 3);
  assert.match(v.auto_transcribe_audio_status, /not available/);
  const ready = await gcoreReady(v.id);
  assert.equal(originSeen.at(-1).authorization, 'Bearer ...', 'origin_http_headers were sent');
  for (const field of ['id', 'name', 'description', 'duration', 'slug', 'status', 'origin_size',
                       'origin_video_duration', 'origin_audio_channels', 'origin_height',
                       'origin_width', 'created_at', 'updated_at', 'clip_start_seconds',
                       'clip_duration_seconds', 'hls_url', 'hls_cmaf_url', 'dash_url', 'iframe_url',
                       'poster', 'poster_thumb', 'screenshot', 'screenshots', 'screenshot_id', 'views',
                       'projection', 'sprite', 'sprite_vtt', 'converted_videos'])
    assert.ok(field in ready, `field ${field}`);
  assert.ok(Math.abs(ready.duration - 3000) <= 80, `duration ${ready.duration} ms`);
  assert.ok(Math.abs(ready.origin_video_duration - 6000) <= 80);
  assert.equal(ready.origin_size, fs.statSync(small).size);
  assert.equal(ready.origin_width, 640);
  assert.equal(ready.origin_audio_channels, 1);
  assert.match(ready.sprite_vtt, /^WEBVTT/);
  const served = Buffer.from(await (await fetch(ready.poster)).arrayBuffer());
  assert.ok(served.equals(poster), 'the data: URI poster is the poster');
  assert.equal(ready.screenshot, ready.poster);
  // remote_poster_url: the node downloads it (by the importer's rules, in
  // an actor of its own) and it becomes the poster; one that cannot be
  // fetched is a 400 that names the field.
  const removed = await call('PATCH', `/streaming/videos/${v.id}`, {
    headers: { APIKey: key }, body: { remove_poster: true } });
  assert.equal(removed.status, 200);
  const fetched = await call('PATCH', `/streaming/videos/${v.id}`, {
    headers: { APIKey: key },
    body: { remote_poster_url: originUrl.replace('ibc.mp4', 'poster.jpg') } });
  assert.equal(fetched.status, 200, JSON.stringify(fetched.json));
  const again = Buffer.from(await (await fetch(fetched.json.poster)).arrayBuffer());
  assert.ok(again.equals(poster), 'remote_poster_url is the poster');
  const missing = await call('PATCH', `/streaming/videos/${v.id}`, {
    headers: { APIKey: key },
    body: { remote_poster_url: originUrl.replace('ibc.mp4', 'none.jpg') } });
  assert.equal(missing.status, 400);
  assert.match(JSON.stringify(missing.json), /remote_poster_url/);
  assert.ok(ready.screenshots.length >= 1);
  assert.ok(ready.converted_videos.length >= 1);
  for (const c of ready.converted_videos) {
    assert.match(c.name, /^vod\d+p$/);
    assert.equal(c.status, 'complete');
    assert.equal(c.progress, 100);
    const mp4 = await fetch(c.mp4_url);
    assert.equal(mp4.status, 200);
    assert.equal(Number(mp4.headers.get('content-length')), c.size);
  }
  for (const u of [ready.hls_url, ready.hls_cmaf_url, ready.dash_url, ready.iframe_url, ready.sprite])
    assert.equal((await fetch(u)).status, 200, u);
});

test('Gcore: auth forms, list filters, names, update, delete, errors', async () => {
  const mk = async (name, extra = {}) => (await gcore('POST', '/streaming/videos',
                                                     { video: { name, ...extra } })).json[0];
  const a = await mk('alpha list', { client_user_id: 501 });
  const b = await mk('beta list', { client_user_id: 502 });
  assert.equal(a.status, 'empty');
  // Authorization: APIKey, and the bare APIKey header; lower-case scheme.
  assert.equal((await call('GET', `/streaming/videos/${a.id}`, { headers: { Authorization: `apikey ${key}` } })).status, 200);
  assert.equal((await call('GET', `/streaming/videos/${a.id}`, { headers: { APIKey: key } })).status, 200);
  assert.equal((await call('GET', `/streaming/videos/${a.id}`, { headers: { APIKey: 'nope' } })).status, 401);
  assert.equal((await call('GET', `/streaming/videos/${a.id}`)).status, 401);
  // Filters and paging; a bare array.
  let r = await gcore('GET', '/streaming/videos?client_user_id=501');
  assert.deepEqual(r.json.map((v) => v.id), [a.id]);
  r = await gcore('GET', '/streaming/videos?search=list&per_page=1&page=2');
  assert.equal(r.json.length, 1);
  r = await gcore('GET', '/streaming/videos?status=empty&search=list');
  assert.equal(r.json.length, 2);
  r = await gcore('GET', `/streaming/videos?id=${b.id}`);
  assert.deepEqual(r.json.map((v) => v.name), ['beta list']);
  assert.equal((await gcore('GET', '/streaming/videos?status=bogus')).status, 400);
  r = await gcore('GET', `/streaming/videos/names?ids=${a.id},${b.id}`);
  assert.deepEqual(r.json, [{ id: a.id, name: 'alpha list' }, { id: b.id, name: 'beta list' }]);
  r = await gcore('GET', `/streaming/videos/names?ids=${a.id}&ids=${b.id}`);
  assert.equal(r.json.length, 2);
  // PATCH is flat.
  r = await gcore('PATCH', `/streaming/videos/${a.id}`, { name: 'alpha renamed', description: 'new', client_user_id: 77 });
  assert.equal(r.status, 200);
  assert.equal(r.json.name, 'alpha renamed');
  assert.equal(r.json.client_user_id, 77);
  assert.equal((await gcore('PATCH', `/streaming/videos/${a.id}`, { projection: 'cube' })).status, 400);
  // Bad creates.
  for (const bad of [{ video: {} }, { name: 'unwrapped' }, { video: { name: 'x', priority: 11 } },
                     { video: { name: 'x', poster: 'data:image/jpeg;base64,/9j/4AA...qf/2Q==' } },
                     { video: { name: 'x', poster: 'data:text/html;base64,PGgxPg==' } },
                     { video: { name: 'x', origin_url: 'ftp://example.com/a.mp4' } },
                     { video: { name: 'x', directory_id: 12345 } }]) {
    const e = await gcore('POST', '/streaming/videos', bad);
    assert.ok(e.status === 400 || e.status === 404, JSON.stringify(bad));
    assert.equal(typeof e.json.error, 'string');
  }
  const big = fs.readFileSync(path.join(work, 'big.jpg'));
  const tooBig = await gcore('POST', '/streaming/videos', { video: { name: 'x', poster: `data:image/jpeg;base64,${big.toString('base64')}` } });
  assert.equal(tooBig.status, 400);
  assert.match(tooBig.json.error, /1 MB/);
  // A body refused before it was read does not poison its connection:
  // the requests after it on the same keep-alive connection are answered.
  const huge = await call('POST', '/streaming/videos', {
    headers: { APIKey: key, 'Content-Type': 'application/json' },
    raw: JSON.stringify({ video: { name: 'x', description: 'y'.repeat(3 << 20) } }) });
  assert.equal(huge.status, 413);
  for (let i = 0; i < 5; i++)
    assert.equal((await gcore('GET', '/streaming/videos?per_page=1')).status, 200);
  // An import that fails says why.
  const broken = await mk('broken', { origin_url: originUrl.replace('ibc.mp4', 'gone.mp4') });
  const failed = await until(async () => {
    const x = (await gcore('GET', `/streaming/videos/${broken.id}`)).json;
    return x.status === 'error' && x;
  }, 'the import to fail', 30);
  assert.match(failed.error, /404/);
  // Delete.
  assert.equal((await gcore('DELETE', `/streaming/videos/${b.id}`)).status, 204);
  assert.equal((await gcore('GET', `/streaming/videos/${b.id}`)).status, 404);
  assert.equal((await gcore('GET', '/streaming/videos/12')).status, 404);
});

test('Gcore: views are counted by the embed player', async () => {
  const list = (await gcore('GET', '/streaming/videos?search=IBC')).json;
  const v = list[0];
  const before = (await gcore('GET', `/streaming/videos/${v.id}`)).json.views;
  const page = await call('GET', v.iframe_url);
  assert.equal(page.status, 200);
  assert.match(page.text, /\/view'/);
  for (let i = 0; i < 2; i++)
    assert.equal((await call('POST', `${v.iframe_url}/view`)).status, 204);
  const after = (await gcore('GET', `/streaming/videos/${v.id}`)).json.views;
  assert.equal(after, before + 2);
});

let flareId;
let publicUrl;
test('Flare: the seed requests (create, presign), the PUT, publicUrl', async () => {
  // Seed 000 as written.
  const create = await flare('POST', '/api/video/create', {
    fileName: 'demo.mp4', s3Key: 'vid_demo_123', source: 'composite', width: 1920, height: 1080, duration: 120 });
  assert.equal(create.status, 200);
  assert.deepEqual(create.json, { success: true, video: { id: 'vid_demo_123', uploadStatus: 'uploading' } });
  flareId = create.json.video.id;
  // The same s3Key again is a clear conflict.
  const clash = await flare('POST', '/api/video/create', { fileName: 'demo.mp4', s3Key: 'vid_demo_123', source: 'composite' });
  assert.equal(clash.status, 409);
  assert.equal(clash.json.success, false);
  assert.match(clash.json.error, /vid_demo_123/);
  // Seed 001, with VIDEO_ID made the real id.
  const presign = await flare('POST', '/api/video/upload/presign', { videoId: flareId, fileName: 'demo.mp4' });
  assert.equal(presign.status, 200);
  assert.equal(presign.json.method, 'PUT');
  assert.deepEqual(presign.json.headers, { 'Content-Type': 'video/mp4' });
  assert.match(presign.json.uploadUrl, /^http:\/\/127\.0\.0\.1:\d+\/presigned\/.*signature=/);
  // The seed's shape, {base}/{videoId}/{source}/{fileName}: the Flare id
  // (the s3Key) and the video's own source label; the base names the
  // tenant (an s3Key names a video only within its tenant).
  assert.equal(presign.json.publicUrl, `${base}/media/flare/default/vid_demo_123/composite/demo.mp4`);
  publicUrl = presign.json.publicUrl;
  assert.equal((await fetch(presign.json.publicUrl)).status, 404, 'nothing there before the PUT');
  // Tampered: another content type, another path, a changed expiry.
  const url = presign.json.uploadUrl;
  const put = (u, type) => execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT',
    '-H', `Content-Type: ${type}`, '--data-binary', `@${small}`, u]).toString();
  assert.equal(put(url, 'video/webm'), '403');
  assert.equal(put(url.replace('demo.mp4', 'other.mp4'), 'video/mp4'), '403');
  assert.equal(put(url.replace(/expires=(\d+)/, (m, e) => `expires=${Number(e) + 1000}`), 'video/mp4'), '403');
  // The PUT as the presign said, with curl.
  assert.equal(put(url, 'video/mp4'), '200');
  assert.equal(put(url, 'video/mp4'), '409', 'a second PUT');
  const v = await until(async () => {
    const r = await flare('GET', `/api/video/${flareId}`);
    assert.notEqual(r.json.video.uploadStatus, 'failed', r.json.video.error);
    return r.json.video.uploadStatus === 'ready' && r.json.video;
  }, 'the Flare video to be ready');
  assert.equal(v.fileName, 'demo.mp4');
  assert.equal(v.source, 'composite');
  assert.equal(v.width, 640, 'the probe replaces the declared width');
  const served = await fetch(presign.json.publicUrl);
  assert.equal(served.status, 200);
  assert.equal(served.headers.get('content-type'), 'video/mp4');
  assert.equal(served.headers.get('accept-ranges'), 'bytes');
  assert.equal(served.headers.get('cache-control'), 'public, max-age=31536000');
  assert.equal(served.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(served.headers.get('access-control-allow-origin'), '*');
  const file = Buffer.from(await served.arrayBuffer());
  const original = fs.readFileSync(small);
  assert.ok(file.equals(original), 'publicUrl serves the uploaded file');
  // Ranges, as every media file answers them.
  const part = await fetch(presign.json.publicUrl, { headers: { Range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), `bytes 100-199/${original.length}`);
  assert.equal(part.headers.get('content-length'), '100');
  assert.ok(Buffer.from(await part.arrayBuffer()).equals(original.subarray(100, 200)));
  const past = await fetch(presign.json.publicUrl, { headers: { Range: `bytes=${original.length}-` } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), `bytes */${original.length}`);
  // It is the same file as reel's own URL of the source, and only under
  // the video's own tenant, source label and file name.
  const uuid = (await flare('GET', `/api/video/${flareId}`)).json.video.embedUrl.split('/').pop();
  const own = await fetch(`${base}/media/${uuid}/source/demo.mp4`);
  assert.ok(Buffer.from(await own.arrayBuffer()).equals(original));
  assert.equal((await fetch(`${base}/media/flare/default/${uuid}/composite/demo.mp4`)).status, 200, 'the UUID names it too');
  for (const wrong of ['/media/flare/other/vid_demo_123/composite/demo.mp4', '/media/flare/default/vid_demo_123/other/demo.mp4',
                       '/media/flare/default/vid_demo_123/composite/other.mp4', '/media/flare/default/vid_nothing/composite/demo.mp4',
                       '/media/flare/default/vid_demo_123/composite/demo.mp4/x']) {
    const r = await call('GET', wrong);
    assert.equal(r.status, 404, wrong);
    assert.match(r.headers.get('content-type'), /^text\/plain/, wrong);
  }
  const list = await flare('GET', '/api/videos');
  assert.equal(list.json.success, true);
  assert.ok(list.json.videos.some((x) => x.id === 'vid_demo_123' && x.fileName === 'demo.mp4' && 'createdAt' in x));
});

test('Flare: scopes, expiry, password-protected playback', async () => {
  // A token with videos:read only: every change refused in Flare's shape,
  // naming the scope it lacks; reads allowed.
  const before = (await flare('GET', `/api/video/${flareId}`)).json.video;
  for (const [method, url, body, scope] of [
    ['POST', '/api/video/create', { fileName: 'x.mp4' }, 'videos:write'],
    ['POST', '/api/video/upload/presign', { videoId: flareId, fileName: 'x.mp4' }, 'uploads:write'],
    ['PATCH', `/api/video/update/${flareId}`, { title: 'not mine to change' }, 'videos:write'],
  ]) {
    const r = await flare(method, url, body, patRead);
    assert.equal(r.status, 403, `${method} ${url}`);
    assert.deepEqual(r.json, { success: false, error: `this key lacks the ${scope} scope` }, `${method} ${url}`);
  }
  assert.equal((await flare('GET', `/api/video/${flareId}`)).json.video.title, before.title, 'nothing changed');
  const list = await flare('GET', '/api/videos', undefined, patRead);
  assert.equal(list.status, 200);
  assert.ok(list.json.videos.some((x) => x.id === flareId));
  const one = await flare('GET', `/api/video/${flareId}`, undefined, patRead);
  assert.equal(one.status, 200);
  assert.equal(one.json.video.id, flareId);
  // No token, an unknown one: 401 in Flare's shape.
  const none = await call('GET', '/api/videos');
  assert.equal(none.status, 401);
  assert.deepEqual(none.json, { success: false, error: 'missing credentials: send Authorization: Bearer flr_pat_...' });
  const unknown = await flare('GET', '/api/videos', undefined, 'flr_pat_nope');
  assert.equal(unknown.status, 401);
  assert.deepEqual(unknown.json, { success: false, error: 'invalid access token' });
  // A path under /api that is no route: 404 in Flare's shape.
  const nothing = await flare('GET', '/api/nothing');
  assert.equal(nothing.status, 404);
  assert.equal(nothing.json.success, false);
  // A presigned PUT with no signature: 403, whatever the id.
  for (const id of [flareId, '00000000-0000-4000-8000-000000000000'])
    assert.equal(execFileSync('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-X', 'PUT', '-H', 'Content-Type: video/mp4',
                                       '--data-binary', 'x', `${base}/presigned/${id}/a.mp4`]).toString(), '403', id);
  // Expiry (reel's expiresIn extension makes it short).
  const fresh = await flare('POST', '/api/video/create', { fileName: 'late.mp4' });
  assert.match(fresh.json.video.id, /^[0-9a-f-]{36}$/);
  const late = await flare('POST', '/api/video/upload/presign', { videoId: fresh.json.video.id, fileName: 'late.mp4', expiresIn: 1 });
  // Without an s3Key the Flare id is the UUID; without a source label the
  // segment is "source"; the file name is the video's (a presign under
  // another name signs that name's upload URL only).
  assert.equal(late.json.publicUrl, `${base}/media/flare/default/${fresh.json.video.id}/source/late.mp4`);
  const renamed = await flare('POST', '/api/video/upload/presign', { videoId: fresh.json.video.id, fileName: 'other name.mp4' });
  assert.match(renamed.json.uploadUrl, /\/other%20name\.mp4\?/);
  assert.equal(renamed.json.publicUrl, late.json.publicUrl);
  await sleep(1500);
  const code = execFileSync('curl', ['-s', '-w', '\n%{http_code}', '-X', 'PUT', '-H', 'Content-Type: video/mp4',
                                     '--data-binary', `@${small}`, late.json.uploadUrl]).toString();
  assert.match(code, /expired[\s\S]*403$/);
  // Password.
  const upd = await flare('PATCH', `/api/video/update/${flareId}`, { title: 'Launch walkthrough', password: 'secret123' });
  assert.equal(upd.status, 200);
  assert.equal(upd.json.video.title, 'Launch walkthrough');
  assert.equal(upd.json.video.passwordProtected, true);
  const embed = upd.json.video.embedUrl;
  let page = await call('GET', embed);
  assert.equal(page.status, 403);
  assert.match(page.text, /type="password"/);
  const g = (await gcore('GET', `/streaming/videos?search=Launch`)).json[0];
  const bare = g.hls_url.replace(/token\/[^/]+\//, '');
  assert.equal((await fetch(bare)).status, 403, 'media need the token');
  const locked = await call('GET', publicUrl);
  assert.equal(locked.status, 403, 'so does publicUrl');
  assert.match(locked.text, /playback token/);
  const wrong = await call('POST', `${embed}/unlock`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, raw: 'password=nope' });
  assert.equal(wrong.status, 303);
  page = await call('GET', base + wrong.headers.get('location'));
  assert.equal(page.status, 403);
  assert.match(page.text, /Wrong password/);
  const right = await call('POST', `${embed}/unlock`, { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, raw: 'password=secret123' });
  assert.equal(right.status, 303);
  page = await call('GET', base + right.headers.get('location'));
  assert.equal(page.status, 200);
  const src = page.text.match(/var src = "([^"]+)"/)[1];
  assert.match(src, /\/token\//);
  assert.equal((await fetch(src)).status, 200, 'the page plays with its token');
  assert.match((await fetch(src)).headers.get('cache-control'), /^private/);
  const token = right.headers.get('location').split('token=')[1];
  const unlocked = await fetch(`${publicUrl}?token=${token}`);
  assert.equal(unlocked.status, 200, 'publicUrl with the playback token');
  assert.equal(unlocked.headers.get('cache-control'), 'private, max-age=3600');
  // Another password ends the tokens the old one gave.
  const changed = await flare('PATCH', `/api/video/update/${flareId}`, { password: 'secret456' });
  assert.equal(changed.status, 200);
  assert.equal((await fetch(src)).status, 403, 'a changed password ends its tokens');
  // null removes the password.
  const open = await flare('PATCH', `/api/video/update/${flareId}`, { password: null });
  assert.equal(open.json.video.passwordProtected, false);
  assert.equal((await call('GET', embed)).status, 200);
  assert.equal((await fetch(bare)).status, 200);
  assert.equal((await fetch(publicUrl)).status, 200);
});

test('cross-dialect reads and tenant isolation', async () => {
  const g = (await gcore('GET', '/streaming/videos?search=Launch')).json[0];
  const uuid = g.slug;
  // The Flare video, through every other dialect.
  const n = await native(uuid);
  assert.equal(n.title, 'Launch walkthrough');
  const av = await call('GET', `/videos/${uuid}`, { headers: { Authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` } });
  assert.equal(av.json.title, 'Launch walkthrough');
  assert.equal(av.json.videoId, uuid);
  const up = await call('GET', `/api/client/v1/uploads/${uuid}`, { headers: { Authorization: `Bearer ${key}` } });
  assert.equal(up.json.data.status, 6);
  // A Gcore video through Flare (by reel's id) and api.video.
  const ibc = (await gcore('GET', '/streaming/videos?search=IBC')).json[0];
  const f = await flare('GET', `/api/video/${ibc.slug}`);
  assert.equal(f.json.video.title, ibc.name);
  assert.equal(f.json.video.uploadStatus, 'ready');
  // An api.video video through Gcore by its integer id (found by its
  // UUID in Gcore's list; the UUID does not give it).
  const made = await call('POST', '/videos', { headers: { Authorization: `Bearer ${key}` }, body: { title: 'from api.video' } });
  const listed = (await gcore('GET', `/streaming/videos?search=${made.json.videoId}`)).json;
  assert.equal(listed.length, 1);
  const number = listed[0].id;
  assert.notEqual(number, parseInt(made.json.videoId.replace(/-/g, '').slice(0, 12), 16));
  assert.equal((await gcore('GET', `/streaming/videos/${number}`)).json.name, 'from api.video');
  assert.equal((await gcore('GET', `/streaming/videos/${number}`)).json.slug, made.json.videoId);
  // A number no video has, or one past 2^53 - 1: 404.
  assert.equal((await gcore('GET', `/streaming/videos/${number + 1}`)).status, 404);
  assert.equal((await gcore('GET', '/streaming/videos/9007199254740992')).status, 404);
  // Another tenant sees none of it, in any dialect.
  assert.equal((await gcore('GET', `/streaming/videos/${ibc.id}`, undefined, key2)).status, 404);
  assert.equal((await gcore('GET', '/streaming/videos', undefined, key2)).json.length, 0);
  assert.equal((await gcore('PATCH', `/streaming/videos/${ibc.id}`, { name: 'mine' }, key2)).status, 404);
  assert.equal((await gcore('DELETE', `/streaming/videos/${ibc.id}`, undefined, key2)).status, 404);
  assert.equal((await gcore('GET', `/streaming/videos/names?ids=${ibc.id}`, undefined, key2)).json.length, 0);
  assert.equal((await flare('GET', `/api/video/${uuid}`, undefined, key2)).status, 404);
  assert.equal((await flare('GET', '/api/video/vid_demo_123', undefined, key2)).status, 404);
  assert.equal((await flare('GET', '/api/videos', undefined, key2)).json.videos.length, 0);
  assert.equal((await flare('PATCH', '/api/video/update/vid_demo_123', { title: 'mine' }, key2)).status, 404);
  assert.equal((await flare('POST', '/api/video/upload/presign', { videoId: uuid, fileName: 'a.mp4' }, key2)).status, 404);
  // The same s3Key in another tenant is another video.
  const theirs = await flare('POST', '/api/video/create', { fileName: 'demo.mp4', s3Key: 'vid_demo_123' }, key2);
  assert.equal(theirs.status, 200);
  assert.equal((await flare('GET', '/api/video/vid_demo_123')).json.video.title, 'Launch walkthrough');
});

test('Flare: 20 creates of one s3Key at once make one video', async () => {
  const body = { fileName: 'race.mp4', s3Key: 'vid_race_1' };
  const answers = await Promise.all(Array.from({ length: 20 }, () => flare('POST', '/api/video/create', body, key2)));
  const statuses = answers.map((a) => a.status).sort();
  assert.deepEqual(statuses, [200, ...Array(19).fill(409)]);
  for (const a of answers.filter((x) => x.status === 409)) assert.equal(a.json.success, false);
  const listed = (await flare('GET', '/api/videos', undefined, key2)).json.videos;
  assert.equal(listed.filter((v) => v.id === 'vid_race_1').length, 1);
});

// The Gcore tests below make videos of tenant "other" too: they come after
// the tests that check that tenant sees nothing.

test('Gcore: scopes: a videos:read key reads, and is refused (403) changes and uploads', async () => {
  // A token of tenant default with videos:read only.
  const reader = patRead;
  const v = (await gcore('POST', '/streaming/videos', { video: { name: 'scoped' } })).json[0];
  // Reads.
  assert.equal((await gcore('GET', `/streaming/videos/${v.id}`, undefined, reader)).status, 200);
  assert.ok((await gcore('GET', '/streaming/videos?search=scoped', undefined, reader)).json.some((x) => x.id === v.id));
  assert.equal((await gcore('GET', `/streaming/videos/names?ids=${v.id}`, undefined, reader)).json.length, 1);
  // Changes and uploads: 403, in Gcore's shape, naming the scope.
  for (const [method, url, body, scope] of [
    ['POST', '/streaming/videos', { video: { name: 'not made' } }, 'videos:write'],
    ['PATCH', `/streaming/videos/${v.id}`, { name: 'not renamed' }, 'videos:write'],
    ['DELETE', `/streaming/videos/${v.id}`, undefined, 'videos:write'],
    ['GET', `/streaming/videos/${v.id}/upload`, undefined, 'uploads:write'],
    ['POST', '/streaming/directories', { name: 'nope' }, 'folders:write'],
    ['GET', '/streaming/directories/tree', undefined, 'folders:read'],
  ]) {
    const r = await gcore(method, url, body, reader);
    assert.equal(r.status, 403, `${method} ${url}`);
    assert.deepEqual(Object.keys(r.json), ['error'], `${method} ${url}`);
    assert.match(r.json.error, new RegExp(scope), `${method} ${url}`);
  }
  const after = (await gcore('GET', `/streaming/videos/${v.id}`)).json;
  assert.equal(after.name, 'scoped');
  assert.equal((await gcore('GET', '/streaming/videos?search=not%20made')).json.length, 0);
  // A token holding uploads:write may ask for the upload parameters.
  const p = await gcore('GET', `/streaming/videos/${v.id}/upload`, undefined, pat);
  assert.equal(p.status, 200);
  assert.ok(p.json.token);
});

test('Gcore: client_id is the tenant\'s', async () => {
  const id = (tenant) => parseInt(createHash('sha256').update(tenant).digest('hex').slice(0, 12), 16);
  const mine = (await gcore('POST', '/streaming/videos', { video: { name: 'client a' } })).json[0];
  const again = (await gcore('POST', '/streaming/videos', { video: { name: 'client b' } })).json[0];
  const theirs = (await gcore('POST', '/streaming/videos', { video: { name: 'client c' } }, key2)).json[0];
  assert.ok(Number.isSafeInteger(mine.client_id) && mine.client_id > 0);
  assert.equal(mine.client_id, id('default'));
  assert.equal(again.client_id, mine.client_id);
  assert.equal(theirs.client_id, id('other'));
  assert.notEqual(theirs.client_id, mine.client_id);
  const listed = (await gcore('GET', '/streaming/videos?search=client')).json;
  assert.ok(listed.length >= 2 && listed.every((x) => x.client_id === mine.client_id));
  assert.equal((await gcore('GET', `/streaming/videos/${mine.id}/upload`)).json.video.client_id, mine.client_id);
});

test('Gcore: directories: create, get, tree, update, delete; directory_id moves a video', async () => {
  const dirFields = ['id', 'name', 'parent_id', 'items_count', 'created_at', 'updated_at'];
  const top = await gcore('POST', '/streaming/directories', { name: 'series' });
  assert.equal(top.status, 200, top.text);
  assert.deepEqual(Object.keys(top.json), dirFields);
  assert.ok(Number.isSafeInteger(top.json.id));
  assert.equal(top.json.name, 'series');
  assert.equal(top.json.parent_id, null);
  assert.equal(top.json.items_count, 0);
  assert.match(top.json.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const season = await gcore('POST', '/streaming/directories', { name: 'season-1', parent_id: top.json.id });
  assert.equal(season.status, 200);
  assert.equal(season.json.parent_id, top.json.id);
  const sid = season.json.id;
  // They are the tenant's folders: the same ids in the native API.
  const folders = (await call('GET', '/v1/folders', { headers: { Authorization: `Bearer ${key}` } })).json.data;
  assert.ok(folders.some((f) => f.path === 'root/series/season-1' && f.id === sid));
  // Refused creates.
  const twice = await gcore('POST', '/streaming/directories', { name: 'season-1', parent_id: top.json.id });
  assert.equal(twice.status, 409);
  assert.equal(typeof twice.json.error, 'string');
  const spaced = await gcore('POST', '/streaming/directories', { name: 'New series. Season 1' });
  assert.equal(spaced.status, 400);
  assert.equal(spaced.json.field, 'name');
  assert.equal((await gcore('POST', '/streaming/directories', {})).status, 400);
  assert.equal((await gcore('POST', '/streaming/directories', { name: 'x', parent_id: 12345 })).status, 404);
  // A video made in a directory, another moved there with PATCH.
  const e1 = (await gcore('POST', '/streaming/videos', { video: { name: 'episode 1', directory_id: sid } })).json[0];
  assert.equal(e1.directory_id, sid);
  const e2 = (await gcore('POST', '/streaming/videos', { video: { name: 'episode 2' } })).json[0];
  assert.equal(e2.directory_id, null);
  let r = await gcore('PATCH', `/streaming/videos/${e2.id}`, { directory_id: sid, name: 'episode 2 moved' });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.directory_id, sid);
  assert.equal(r.json.name, 'episode 2 moved');
  assert.equal((await native(e2.slug)).folder, 'root/series/season-1');
  assert.equal((await gcore('GET', `/streaming/videos/${e2.id}`)).json.directory_id, sid);
  // The tree.
  const tree = await gcore('GET', '/streaming/directories/tree');
  assert.equal(tree.status, 200);
  const series = tree.json.tree.find((x) => x.id === top.json.id);
  assert.deepEqual(Object.keys(series), [...dirFields, 'descendants']);
  assert.equal(series.items_count, 1);
  assert.equal(series.descendants.length, 1);
  assert.equal(series.descendants[0].id, sid);
  assert.equal(series.descendants[0].parent_id, top.json.id);
  assert.equal(series.descendants[0].items_count, 2);
  assert.deepEqual(series.descendants[0].descendants, []);
  assert.ok(tree.json.tree.every((x) => x.parent_id === null));
  // One directory with its items: subdirectories and videos.
  const got = await gcore('GET', `/streaming/directories/${sid}`);
  assert.equal(got.status, 200);
  assert.equal(got.json.directory.id, sid);
  assert.equal(got.json.directory.name, 'season-1');
  assert.deepEqual(got.json.directory.items.map((x) => [x.item_type, x.id]).sort(),
                   [['Video', e1.id], ['Video', e2.id]].sort());
  const video = got.json.directory.items.find((x) => x.id === e1.id);
  assert.equal(video.name, 'episode 1');
  assert.equal(video.slug, e1.slug);
  const parent = (await gcore('GET', `/streaming/directories/${top.json.id}`)).json.directory;
  assert.deepEqual(parent.items.map((x) => [x.item_type, x.id, x.name]), [['Directory', sid, 'season-1']]);
  // directory_id null moves it back to the top; an unknown one is 404.
  r = await gcore('PATCH', `/streaming/videos/${e2.id}`, { directory_id: null });
  assert.equal(r.status, 200);
  assert.equal(r.json.directory_id, null);
  assert.equal((await native(e2.slug)).folder, 'root');
  r = await gcore('PATCH', `/streaming/videos/${e2.id}`, { directory_id: 12345 });
  assert.equal(r.status, 404);
  assert.equal(r.json.field, 'directory_id');
  assert.equal((await gcore('PATCH', `/streaming/videos/${e2.id}`, { directory_id: 'x' })).status, 400);
  // A video being imported keeps its record to itself: it moves once it is
  // processed (here: ready).
  const busy = (await gcore('POST', '/streaming/videos', {
    video: { name: 'held import', origin_url: originUrl.replace('ibc.mp4', 'held.mp4') } })).json[0];
  await until(() => held.length > 0, 'the import to start', 30);
  r = await gcore('PATCH', `/streaming/videos/${busy.id}`, { directory_id: sid, name: 'held renamed' });
  assert.equal(r.status, 409);
  assert.match(r.json.error, /being processed/);
  assert.equal((await gcore('GET', `/streaming/videos/${busy.id}`)).json.name, 'held import', 'nothing changed');
  releaseHeld();
  const moved = await until(async () => {
    const x = await gcore('PATCH', `/streaming/videos/${busy.id}`, { directory_id: sid });
    return x.status === 200 && x.json;
  }, 'the processed video to be movable', 120);
  assert.equal(moved.status, 'ready');
  assert.equal(moved.directory_id, sid);
  // Updates: one that changes nothing answers the directory; a rename or a
  // move is refused (a folder's id is its path's).
  r = await gcore('PATCH', `/streaming/directories/${sid}`, { name: 'season-1', parent_id: top.json.id });
  assert.equal(r.status, 200);
  assert.equal(r.json.id, sid);
  assert.equal(r.json.items_count, 2); // episode 1 and the held import
  r = await gcore('PATCH', `/streaming/directories/${sid}`, { name: 'season-one' });
  assert.equal(r.status, 409);
  assert.equal(r.json.field, 'name');
  assert.match(r.json.error, /cannot rename or move/);
  r = await gcore('PATCH', `/streaming/directories/${sid}`, { parent_id: null });
  assert.equal(r.status, 409);
  assert.equal(r.json.field, 'parent_id');
  assert.equal((await gcore('PATCH', `/streaming/directories/${sid}`, { name: 'a b' })).status, 400);
  assert.equal((await gcore('PATCH', '/streaming/directories/12345', { name: 'x' })).status, 404);
  // Delete: reel cannot delete folders yet; an unknown one is 404.
  r = await gcore('DELETE', `/streaming/directories/${sid}`);
  assert.equal(r.status, 405);
  assert.match(r.json.error, /cannot delete/);
  assert.equal(r.headers.get('allow'), 'GET, PATCH');
  assert.equal((await gcore('DELETE', '/streaming/directories/12345')).status, 404);
  assert.equal((await gcore('GET', `/streaming/directories/${sid}`)).status, 200);
  // Another tenant sees none of it.
  assert.equal((await gcore('GET', `/streaming/directories/${sid}`, undefined, key2)).status, 404);
  assert.equal((await gcore('PATCH', `/streaming/directories/${sid}`, {}, key2)).status, 404);
  assert.ok(!(await gcore('GET', '/streaming/directories/tree', undefined, key2)).json.tree.some((x) => x.id === top.json.id));
  assert.equal((await gcore('PATCH', `/streaming/videos/${e1.id}`, { directory_id: sid }, key2)).status, 404);
  const theirs = (await gcore('POST', '/streaming/videos', { video: { name: 'theirs' } }, key2)).json[0];
  assert.equal((await gcore('PATCH', `/streaming/videos/${theirs.id}`, { directory_id: sid }, key2)).status, 404);
});
