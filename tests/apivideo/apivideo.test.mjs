// api.video's official Node client (@api.video/nodejs-client) against a
// real reeld, unchanged but for baseUri; and curl for what the client
// cannot send. Started by tests/apivideo_test.sh, which passes:
//   REEL_BASE   the node's URL
//   REEL_KEY    an API key of tenant "default"
//   REEL_KEY2   an API key of another tenant
//   REEL_WORK   a directory holding small.mp4 (a few seconds), big.mp4
//               (20-30 MiB: three 10 MiB chunks), poster.jpg
//   REEL_TOKEN_TTL  the node's --access-token-ttl
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ApiVideoClient = require('@api.video/nodejs-client');

const base = process.env.REEL_BASE;
const key = process.env.REEL_KEY;
const work = process.env.REEL_WORK;
const small = path.join(work, 'small.mp4');
const big = path.join(work, 'big.mp4');
const poster = path.join(work, 'poster.jpg');

const client = new ApiVideoClient({ apiKey: key, baseUri: base });
const other = new ApiVideoClient({ apiKey: process.env.REEL_KEY2, baseUri: base });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/// Polls the status until the video plays (or fails the test).
async function untilPlayable(videoId, c = client, seconds = 240) {
  for (let i = 0; i < seconds * 4; i++) {
    const s = await c.videos.getStatus(videoId);
    if (s.encoding.playable && s.encoding.qualities.length > 0
        && s.encoding.qualities.every((q) => q.status === 'encoded'))
      return s;
    const v = await (await fetch(`${base}/v1/videos/${videoId}`, {
      headers: { Authorization: `Bearer ${key}` } })).json();
    assert.notEqual(v.state, 'failed', `video failed: ${v.failure_reason}`);
    await sleep(250);
  }
  assert.fail(`video ${videoId} never became playable`);
}

/// The ApiVideoError a call throws.
async function rejection(promise) {
  try {
    await promise;
  } catch (e) {
    return e;
  }
  assert.fail('the call succeeded');
}

function curl(args) {
  const out = execFileSync('curl', ['-s', '-w', '\n%{http_code}', ...args],
                           { maxBuffer: 1 << 24 }).toString();
  const cut = out.lastIndexOf('\n');
  const body = out.slice(0, cut);
  return { status: Number(out.slice(cut + 1)), body: body ? JSON.parse(body) : null };
}

// The client's model objects, as plain JSON (deepEqual compares classes).
const plain = (x) => JSON.parse(JSON.stringify(x));

const sha = (file) => execFileSync('sha256sum', [file]).toString().split(' ')[0];

test('auth: Basic on every call, tokens from /auth/api-key, refresh', async () => {
  const t = await client.getAccessToken();
  assert.equal(t.tokenType, 'Bearer');
  assert.equal(t.expiresIn, Number(process.env.REEL_TOKEN_TTL));
  assert.ok(t.accessToken && t.refreshToken);
  // The access token works as Bearer (what other official clients send).
  const r = await fetch(`${base}/videos`, { headers: { Authorization: `Bearer ${t.accessToken}` } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/json');
  const refreshed = await (await fetch(`${base}/auth/refresh`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refreshToken: t.refreshToken }) })).json();
  assert.ok(refreshed.access_token && refreshed.access_token !== t.accessToken);
  const again = await fetch(`${base}/videos`, { headers: { Authorization: `Bearer ${refreshed.access_token}` } });
  assert.equal(again.status, 200);
  // A tampered token, a bad key, a bad refresh token.
  const bad = await fetch(`${base}/videos`, { headers: { Authorization: `Bearer ${t.accessToken}x` } });
  assert.equal(bad.status, 401);
  assert.equal((await bad.json()).type, 'https://docs.api.video/reference/authentication-invalid-access-token');
  const e = await rejection(new ApiVideoClient({ apiKey: 'sk-wrong', baseUri: base }).videos.list());
  assert.equal(e.code, 401);
  assert.equal(e.problemDetails.title, 'The API key is invalid.');
  const noAuth = await fetch(`${base}/videos`);
  assert.equal(noAuth.status, 401);
  const badRefresh = await fetch(`${base}/auth/refresh`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ refreshToken: 'rt.nope' }) });
  assert.equal(badRefresh.status, 400);
  const badKey = await fetch(`${base}/auth/api-key`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ apiKey: 'sk-wrong' }) });
  assert.equal(badKey.status, 400);
});

test('auth: an expired access token gets 401', async () => {
  // reeld runs with a short --access-token-ttl (REEL_TOKEN_TTL seconds).
  const t = await (await fetch(`${base}/auth/api-key`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ apiKey: key }) })).json();
  const ttl = Number(process.env.REEL_TOKEN_TTL);
  assert.equal(t.expires_in, ttl);
  const ok = await fetch(`${base}/videos`, { headers: { Authorization: `Bearer ${t.access_token}` } });
  assert.equal(ok.status, 200);
  await sleep(ttl * 1000 + 500);
  const r = await fetch(`${base}/videos`, { headers: { Authorization: `Bearer ${t.access_token}` } });
  assert.equal(r.status, 401);
  const body = await r.json();
  assert.equal(body.title, 'The access token is invalid or expired.');
  assert.match(body.detail ?? '', /expired/);
});

test('create, upload in one request, status until playable, media', async () => {
  const v = await client.videos.create({
    title: 'Maths video', description: 'about maths', _public: true,
    tags: ['maths', 'school'], metadata: [{ key: 'Author', value: 'John Doe' }],
  });
  assert.match(v.videoId, /^[0-9a-f-]{36}$/);
  assert.equal(v.title, 'Maths video');
  assert.deepEqual(v.tags, ['maths', 'school']);
  assert.equal(v.metadata[0].value, 'John Doe');
  assert.equal(v._public, true);
  assert.ok(v.createdAt instanceof Date && !isNaN(v.createdAt));
  assert.equal(v.source.uri, `/videos/${v.videoId}/source`);
  const before = await client.videos.getStatus(v.videoId);
  assert.equal(before.ingest, null);
  assert.equal(before.encoding.playable, false);

  const up = await client.videos.upload(v.videoId, small);
  assert.equal(up.videoId, v.videoId);
  assert.equal(up.source.type, 'upload');
  const s = await untilPlayable(v.videoId);
  assert.equal(s.ingest.status, 'uploaded');
  assert.equal(s.ingest.filesize, fs.statSync(small).size);
  assert.deepEqual(plain(s.ingest.receivedBytes), [{ from: 0, to: fs.statSync(small).size - 1, total: fs.statSync(small).size }]);
  assert.equal(s.encoding.metadata.width, 640);
  assert.equal(s.encoding.metadata.height, 360);
  assert.equal(s.encoding.metadata.videoCodec, 'h264');
  assert.equal(s.encoding.metadata.aspectRatio, '16/9');
  const types = new Set(s.encoding.qualities.map((q) => q.type));
  assert.deepEqual([...types].sort(), ['hls', 'mp4']);
  assert.ok(s.encoding.qualities.some((q) => q.quality === '360p'));

  const got = await client.videos.get(v.videoId);
  for (const asset of ['hls', 'thumbnail', 'mp4', 'player']) {
    const r = await fetch(got.assets[asset]);
    assert.equal(r.status, 200, `${asset} ${got.assets[asset]}`);
  }
  assert.match(got.assets.iframe, /^<iframe src="[^"]+\/embed\//);
  // A second source is refused as documented.
  const e = await rejection(client.videos.upload(v.videoId, small));
  assert.equal(e.code, 400);
  assert.equal(e.problemDetails.type, 'https://docs.api.video/reference/video-source-already-uploaded');
  assert.equal(e.problemDetails.title, 'The source of the video is already uploaded.');
});

test('chunked upload: several parts, sequential, "part n/N"', async () => {
  const chunkSize = 10 * 1024 * 1024;
  const chunked = new ApiVideoClient({ apiKey: key, baseUri: base, chunkSize });
  const size = fs.statSync(big).size;
  assert.equal(Math.ceil(size / chunkSize), 3, 'big.mp4 must need three chunks');
  const v = await chunked.videos.create({ title: 'big one' });
  const counts = new Set();
  const up = await chunked.videos.upload(v.videoId, big, (p) => counts.add(p.chunksCount));
  assert.equal(up.videoId, v.videoId);
  assert.deepEqual([...counts], [3]);
  const s = await untilPlayable(v.videoId);
  assert.equal(s.ingest.filesize, size);
  assert.deepEqual(plain(s.ingest.receivedParts.parts), [1, 2, 3]);
  assert.equal(s.ingest.receivedParts.total, 3);
  // The source joined from the parts is the file, byte for byte.
  const native = await (await fetch(`${base}/v1/videos/${v.videoId}`, {
    headers: { Authorization: `Bearer ${key}` } })).json();
  assert.equal(native.source.sha256, sha(big));
});

test('progressive session: parts of unknown total, then the last', async () => {
  const bytes = fs.readFileSync(small);
  const third = Math.ceil(bytes.length / 3);
  const parts = [0, 1, 2].map((i) => {
    const p = path.join(work, `small.part${i}`);
    fs.writeFileSync(p, bytes.subarray(i * third, (i + 1) * third));
    return p;
  });
  const v = await client.videos.create({ title: 'progressive' });
  const session = client.videos.createUploadProgressiveSession(v.videoId);
  await session.uploadPart(parts[0]);
  const mid = await client.videos.getStatus(v.videoId);
  assert.equal(mid.ingest.status, 'uploading');
  assert.deepEqual(plain(mid.ingest.receivedParts.parts), [1]);
  assert.equal(mid.ingest.receivedParts.total, null);
  await session.uploadPart(parts[1]);
  const last = await session.uploadLastPart(parts[2]);
  assert.equal(last.videoId, v.videoId);
  await untilPlayable(v.videoId);
});

test('upload tokens: create, list, get, upload without a key, delete', async () => {
  const t = await client.uploadTokens.createToken({ ttl: 600 });
  assert.match(t.token, /^to/);
  assert.equal(t.ttl, 600);
  assert.ok(t.expiresAt instanceof Date);
  const forever = await client.uploadTokens.createToken();
  assert.equal(forever.ttl, 0);
  assert.equal(forever.expiresAt, undefined);
  const got = await client.uploadTokens.getToken(t.token);
  assert.equal(got.token, t.token);
  const list = await client.uploadTokens.list({ sortBy: 'ttl', sortOrder: 'desc' });
  assert.ok(list.data.some((x) => x.token === t.token));
  assert.equal(list.data[0].ttl, Math.max(...list.data.map((x) => x.ttl)));
  // Another tenant cannot see it.
  assert.equal((await rejection(other.uploadTokens.getToken(t.token))).code, 404);

  const anonymous = new ApiVideoClient({ baseUri: base });
  const v = await anonymous.videos.uploadWithUploadToken(t.token, small);
  assert.equal(v.title, 'small.mp4');
  await untilPlayable(v.videoId);
  // Progressive with a token: the video id travels after the file.
  const session = anonymous.videos.createUploadWithUploadTokenProgressiveSession(forever.token);
  const bytes = fs.readFileSync(small);
  const a = path.join(work, 'token.part.a');
  const b = path.join(work, 'token.part.b');
  fs.writeFileSync(a, bytes.subarray(0, 100000));
  fs.writeFileSync(b, bytes.subarray(100000));
  const first = await session.uploadPart(a);
  const done = await session.uploadLastPart(b);
  assert.equal(done.videoId, first.videoId);
  assert.equal(first.title, 'token.part.a');
  await untilPlayable(done.videoId);

  await client.uploadTokens.deleteToken(t.token);
  assert.equal((await rejection(client.uploadTokens.getToken(t.token))).code, 404);
  const e = await rejection(anonymous.videos.uploadWithUploadToken(t.token, small));
  assert.equal(e.code, 401);
  assert.equal(e.problemDetails.title, 'The upload token is invalid or expired.');
});

test('list: filters, sorting and pagination', async () => {
  const tag = `list-${Date.now()}`;
  for (const title of ['charlie', 'alpha', 'bravo', 'delta', 'echo'])
    await client.videos.create({ title, tags: [tag, title === 'alpha' ? 'first' : 'other'],
                                 metadata: [{ key: 'letter', value: title[0] }] });
  const all = await client.videos.list({ tags: [tag], sortBy: 'title', sortOrder: 'asc' });
  assert.deepEqual(all.data.map((v) => v.title), ['alpha', 'bravo', 'charlie', 'delta', 'echo']);
  assert.equal(all.pagination.itemsTotal, 5);
  const page2 = await client.videos.list({ tags: [tag], sortBy: 'title', sortOrder: 'desc', currentPage: 2, pageSize: 2 });
  assert.deepEqual(page2.data.map((v) => v.title), ['charlie', 'bravo']);
  assert.equal(page2.pagination.pagesTotal, 3);
  assert.equal(page2.pagination.currentPageItems, 2);
  const rels = page2.pagination.links.map((l) => l.rel);
  assert.deepEqual(rels, ['self', 'first', 'previous', 'next', 'last']);
  const both = await client.videos.list({ tags: [tag, 'first'] });
  assert.deepEqual(both.data.map((v) => v.title), ['alpha']);
  const meta = await client.videos.list({ tags: [tag], metadata: { letter: 'd' } });
  assert.deepEqual(meta.data.map((v) => v.title), ['delta']);
  const byTitle = await client.videos.list({ title: 'ECH', tags: [tag] });
  assert.deepEqual(byTitle.data.map((v) => v.title), ['echo']);
  // Another tenant sees none of them.
  const theirs = await other.videos.list({ tags: [tag] });
  assert.equal(theirs.data.length, 0);
  const bad = await rejection(client.videos.list({ pageSize: 1000 }));
  assert.equal(bad.code, 400);
});

test('update, thumbnails, privacy, delete; another tenant gets 404', async () => {
  const v = await client.videos.create({ title: 'to change' });
  // A poster chosen before there is a source is kept for later.
  const picked = await client.videos.pickThumbnail(v.videoId, { timecode: '00:15:22.05' });
  assert.equal(picked.videoId, v.videoId);
  await client.videos.upload(v.videoId, small);
  await untilPlayable(v.videoId);

  const changed = await client.videos.update(v.videoId, {
    title: 'changed', tags: ['x'], metadata: [{ key: 'a', value: 'b' }], mp4Support: false });
  assert.equal(changed.title, 'changed');
  assert.deepEqual(changed.tags, ['x']);
  assert.equal(changed.mp4Support, false);
  assert.equal(changed.assets.mp4, undefined);
  // (The client turns a string into an array itself: sent by hand.)
  const badType = await fetch(`${base}/videos/${v.videoId}`, {
    method: 'PATCH', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ tags: 'x' }) });
  assert.equal(badType.status, 400);
  assert.equal((await badType.json()).name, 'tags');

  // Thumbnails: an uploaded image, then a frame at a timecode.
  const withImage = await client.videos.uploadThumbnail(v.videoId, poster);
  const image = await fetch(withImage.assets.thumbnail);
  assert.equal(image.status, 200);
  const served = Buffer.from(await image.arrayBuffer());
  assert.ok(served.equals(fs.readFileSync(poster)), 'the uploaded image is the thumbnail');
  const fromBuffer = await client.videos.uploadThumbnail(v.videoId, fs.readFileSync(poster));
  assert.equal(fromBuffer.videoId, v.videoId);
  const notImage = await rejection(client.videos.uploadThumbnail(v.videoId, small));
  assert.equal(notImage.code, 400);
  const framed = await client.videos.pickThumbnail(v.videoId, { timecode: '00:00:01.500' });
  const frame = Buffer.from(await (await fetch(framed.assets.thumbnail)).arrayBuffer());
  assert.equal(frame[0], 0xff);
  assert.ok(!frame.equals(fs.readFileSync(poster)), 'the picked frame replaced the image');

  // Private: media need the token each GET hands out.
  const priv = await client.videos.update(v.videoId, { _public: false });
  assert.equal(priv._public, false);
  assert.match(priv.assets.hls, /\/token\/[^/]+\/master\.m3u8$/);
  const privHls = await fetch(priv.assets.hls);
  assert.equal(privHls.status, 200);
  // Kept out of shared caches (a public video's media may be kept there).
  assert.match(privHls.headers.get('cache-control'), /^private/);
  assert.equal((await fetch(priv.assets.thumbnail)).headers.get('cache-control').includes('public'), false);
  assert.equal((await fetch(priv.assets.player)).status, 200);
  const bare = priv.assets.hls.replace(/token\/[^/]+\//, '');
  assert.equal((await fetch(bare)).status, 403);
  // The MAC's last digit changed (to another digit whatever it was).
  const forged = priv.assets.hls.replace(/token\/([^/]+)\//,
    (m, t) => `token/${t.slice(0, -1)}${t.endsWith('0') ? '1' : '0'}/`);
  assert.equal((await fetch(forged)).status, 403);
  assert.equal((await fetch(priv.assets.player.replace(/\?token=.*/, ''))).status, 403);

  // Another tenant: 404 everywhere, never the data.
  for (const call of [() => other.videos.get(v.videoId),
                      () => other.videos.getStatus(v.videoId),
                      () => other.videos.update(v.videoId, { title: 'mine' }),
                      () => other.videos.delete(v.videoId)]) {
    const e = await rejection(call());
    assert.equal(e.code, 404);
    assert.equal(e.problemDetails.title, 'The requested resource was not found.');
    assert.ok(!JSON.stringify(e.problemDetails).includes('changed'));
  }

  await client.videos.delete(v.videoId);
  const gone = await rejection(client.videos.get(v.videoId));
  assert.equal(gone.code, 404);
  assert.equal(gone.problemDetails.type, 'https://docs.api.video/reference/resource-not-found');
  assert.equal((await rejection(client.videos.get('not-a-video'))).code, 404);
});

test('create with source: a URL imported, an existing video copied', async () => {
  const v = await client.videos.create({ title: 'seed' });
  await client.videos.upload(v.videoId, small);
  await untilPlayable(v.videoId);
  const mp4 = (await client.videos.get(v.videoId)).assets.mp4;
  // Imported from a URL (reel's own MP4 download, on 127.0.0.1: reeld runs
  // with --import-allow 127.0.0.0/8).
  const imported = await client.videos.create({ title: 'imported', source: mp4 });
  assert.equal(imported.source.type, 'url');
  const s = await untilPlayable(imported.videoId);
  assert.equal(s.ingest.status, 'ingested');
  // Copied from an existing video: the same source bytes.
  const copy = await client.videos.create({ title: 'copy', source: v.videoId,
                                            clip: { startTimecode: '00:00:01', endTimecode: '00:00:03' } });
  await untilPlayable(copy.videoId);
  const [a, b] = await Promise.all([v.videoId, copy.videoId].map(async (id) =>
    (await fetch(`${base}/v1/videos/${id}`, { headers: { Authorization: `Bearer ${key}` } })).json()));
  assert.equal(b.source.sha256, a.source.sha256);
  const frames = b.renditions.find((x) => x.frames > 0).frames;
  assert.ok(Math.abs(frames - 50) <= 1, `clip of 2 s at 25 fps: ${frames}`);
  // Another tenant cannot copy it; a bad URL fails with its reason.
  assert.equal((await rejection(other.videos.create({ title: 'steal', source: v.videoId }))).code, 404);
  const broken = await client.videos.create({ title: 'broken', source: `${base}/media/${v.videoId}/nothing.mp4` });
  let state;
  for (let i = 0; i < 100; i++) {
    state = await (await fetch(`${base}/v1/videos/${broken.videoId}`, {
      headers: { Authorization: `Bearer ${key}` } })).json();
    if (state.state === 'failed') break;
    await sleep(100);
  }
  assert.equal(state.state, 'failed');
  assert.match(state.failure_reason, /404/);
});

test('curl: what the client cannot send', async () => {
  const v = await client.videos.create({ title: 'curl' });
  const url = `${base}/videos/${v.videoId}/source`;
  const auth = ['-u', `${key}:`];
  // Malformed Content-Range.
  for (const range of ['bytes 5-2/10', 'bytes 0-9', 'chunks 1/2', 'part 0/3', 'bytes a-b/c']) {
    const r = curl([...auth, '-H', `Content-Range: ${range}`, '-F', `file=@${small}`, url]);
    assert.equal(r.status, 400, range);
    assert.equal(r.body.type, 'https://docs.api.video/reference/video-content-range-malformed', range);
  }
  // Byte chunks out of order, one overlapping, one of the wrong length.
  const bytes = fs.readFileSync(small);
  const n = bytes.length;
  const half = Math.floor(n / 2);
  const pieces = [[half, n - 1], [0, half - 1]];
  const write = (from, to) => {
    const p = path.join(work, `range-${from}-${to}`);
    fs.writeFileSync(p, bytes.subarray(from, to + 1));
    return p;
  };
  let r = curl([...auth, '-H', `Content-Range: bytes ${half}-${n - 1}/${n}`, '-F', `file=@${write(half, n - 1)}`, url]);
  assert.equal(r.status, 201);
  r = curl([...auth, '-H', `Content-Range: bytes ${half - 10}-${half + 9}/${n}`, '-F', `file=@${write(half - 10, half + 9)}`, url]);
  assert.equal(r.status, 400);
  assert.equal(r.body.type, 'https://docs.api.video/reference/video-content-range-by-bytes-range-overlap');
  r = curl([...auth, '-H', `Content-Range: bytes 0-99/${n}`, '-F', `file=@${write(0, 49)}`, url]);
  assert.equal(r.body.type, 'https://docs.api.video/reference/video-content-range-by-bytes-range-mismatch');
  r = curl([...auth, '-H', `Content-Range: part 1/2`, '-F', `file=@${write(0, 49)}`, url]);
  assert.equal(r.status, 400, 'another Content-Range form');
  let status = (await client.videos.getStatus(v.videoId)).ingest;
  assert.equal(status.status, 'uploading');
  assert.deepEqual(plain(status.receivedBytes), [{ from: half, to: n - 1, total: n }]);
  r = curl([...auth, '-H', `Content-Range: bytes 0-${half - 1}/${n}`, '-F', `file=@${write(0, half - 1)}`, url]);
  assert.equal(r.status, 201);
  await untilPlayable(v.videoId);
  const native = await (await fetch(`${base}/v1/videos/${v.videoId}`, {
    headers: { Authorization: `Bearer ${key}` } })).json();
  assert.equal(native.source.sha256, sha(small));

  const fresh = await client.videos.create({ title: 'curl 2' });
  const url2 = `${base}/videos/${fresh.videoId}/source`;
  // No file part; two file parts; not multipart; an empty file.
  r = curl([...auth, '-F', 'title=x', url2]);
  assert.equal(r.body.type, 'https://docs.api.video/reference/uploaded-file-no-file');
  r = curl([...auth, '-F', `a=@${small}`, '-F', `b=@${small}`, url2]);
  assert.equal(r.body.type, 'https://docs.api.video/reference/uploaded-file-multiple-files');
  r = curl([...auth, '-H', 'Content-Type: application/json', '-d', '{}', url2]);
  assert.equal(r.status, 400);
  fs.writeFileSync(path.join(work, 'empty.mp4'), '');
  r = curl([...auth, '-F', `file=@${path.join(work, 'empty.mp4')}`, url2]);
  assert.equal(r.body.type, 'https://docs.api.video/reference/uploaded-file-empty');
  // Over the single-request limit (reeld runs with --max-upload-bytes
  // 48 MiB): refused, and the video still takes a source.
  const huge = path.join(work, 'huge.bin');
  fs.writeFileSync(huge, Buffer.alloc(49 * 1024 * 1024, 7));
  r = curl([...auth, '-F', `file=@${huge}`, url2]);
  assert.equal(r.status, 400);
  assert.equal(r.body.type, 'https://docs.api.video/reference/uploaded-file-too-large');
  r = curl([...auth, '-H', `Content-Range: bytes 0-99/${60 * 1024 * 1024}`, '-F', `file=@${write(0, 99)}`, url2]);
  assert.equal(r.status, 400, 'a declared total over the limit');
  r = curl([...auth, '-F', `file=@${small}`, url2]);
  assert.equal(r.status, 201);
  // The problem shape of a 400 lists its problems.
  r = curl([...auth, '-H', 'Content-Type: application/json', '-d', '{"description":"no title"}', `${base}/videos`]);
  assert.equal(r.status, 400);
  assert.deepEqual(Object.keys(r.body).slice(0, 4), ['type', 'title', 'name', 'status']);
  assert.equal(r.body.name, 'title');
  assert.equal(r.body.problems[0].name, 'title');
  // Unknown video for the source: 404 before any byte is read.
  r = curl([...auth, '-F', `file=@${small}`, `${base}/videos/00000000-0000-4000-8000-000000000000/source`]);
  assert.equal(r.status, 404);
});

/// A key of tenant "default" limited to `scopes` (POST /v1/keys with the
/// admin key): a personal access token, sent as the Basic user name.
async function scopedKey(scopes) {
  const r = await fetch(`${base}/v1/keys`, {
    method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ tenant: 'default', scopes }) });
  assert.equal(r.status, 201);
  return (await r.json()).key;
}

const basic = (k) => ({ Authorization: `Basic ${Buffer.from(`${k}:`).toString('base64')}` });

test('scopes: a videos:read token reads, and may not change, upload or subscribe', async () => {
  const readKey = await scopedKey(['videos:read']);
  const reader = new ApiVideoClient({ apiKey: readKey, baseUri: base });
  const v = await client.videos.create({ title: 'scoped', tags: ['scoped'] });
  // Reads.
  assert.equal((await reader.videos.get(v.videoId)).title, 'scoped');
  assert.ok((await reader.videos.list({ tags: ['scoped'] })).data.some((x) => x.videoId === v.videoId));
  assert.equal((await reader.videos.getStatus(v.videoId)).ingest, null);
  assert.ok((await reader.tags.list({ value: 'scoped' })).data.some((x) => x.value === 'scoped'));
  // Changes, uploads, upload tokens, subscriptions: 403 in the problem shape.
  const refused = {
    create: () => reader.videos.create({ title: 'nope' }),
    update: () => reader.videos.update(v.videoId, { title: 'nope' }),
    delete: () => reader.videos.delete(v.videoId),
    upload: () => reader.videos.upload(v.videoId, small),
    thumbnail: () => reader.videos.pickThumbnail(v.videoId, { timecode: '00:00:01' }),
    uploadToken: () => reader.uploadTokens.createToken({ ttl: 60 }),
    tokenList: () => reader.uploadTokens.list({}),
    webhook: () => reader.webhooks.create({ url: 'http://127.0.0.1:9/x', events: ['video.encoding.quality.completed'] }),
    webhookList: () => reader.webhooks.list({}),
  };
  for (const [what, call] of Object.entries(refused)) {
    const e = await rejection(call());
    assert.equal(e.code, 403, what);
    assert.equal(e.problemDetails.type, 'https://docs.api.video/reference/authorization-forbidden', what);
    assert.equal(e.problemDetails.title, 'Access to this resource is forbidden.', what);
    assert.equal(e.problemDetails.status, 403, what);
  }
  const r = await fetch(`${base}/videos`, {
    method: 'POST', headers: { ...basic(readKey), 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: 'nope' }) });
  const body = await r.json();
  assert.equal(r.status, 403);
  assert.deepEqual(Object.keys(body), ['type', 'title', 'name', 'status', 'detail']);
  assert.match(body.detail, /videos:write/);
  // An access token made from the scoped key holds its scopes, no more.
  const t = await (await fetch(`${base}/auth/api-key`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ apiKey: readKey }) })).json();
  const bearer = { Authorization: `Bearer ${t.access_token}` };
  assert.equal((await fetch(`${base}/videos/${v.videoId}`, { headers: bearer })).status, 200);
  assert.equal((await fetch(`${base}/videos/${v.videoId}`, { method: 'DELETE', headers: bearer })).status, 403);
  // Nothing changed; the full key still may.
  assert.equal((await client.videos.get(v.videoId)).title, 'scoped');
  // An uploads:write token uploads a source but may not change the video.
  const uploader = new ApiVideoClient({ apiKey: await scopedKey(['uploads:write']), baseUri: base });
  assert.equal((await uploader.videos.upload(v.videoId, small)).videoId, v.videoId);
  assert.equal((await rejection(uploader.videos.update(v.videoId, { title: 'nope' }))).code, 403);
  await client.videos.delete(v.videoId);
});

test('problems keep their shapes through the gate', async () => {
  // A video that is not the caller's: 404 naming videoId, as before.
  const r = await fetch(`${base}/videos/00000000-0000-4000-8000-000000000000`, { headers: basic(key) });
  assert.equal(r.status, 404);
  assert.deepEqual(await r.json(), {
    type: 'https://docs.api.video/reference/resource-not-found',
    title: 'The requested resource was not found.', name: 'videoId', status: 404 });
  // An admin key acts on its own tenant here: another tenant's video is 404.
  const theirs = await other.videos.create({ title: 'theirs' });
  assert.equal((await rejection(client.videos.get(theirs.videoId))).code, 404);
  assert.equal((await rejection(client.videos.delete(theirs.videoId))).code, 404);
  assert.equal((await other.videos.get(theirs.videoId)).title, 'theirs');
  // A body that is not a JSON object: invalid-payload.
  for (const raw of ['{', '[]', '"x"']) {
    const p = await fetch(`${base}/videos`, {
      method: 'POST', headers: { ...basic(key), 'Content-Type': 'application/json' }, body: raw });
    assert.equal(p.status, 400, raw);
    const b = await p.json();
    assert.equal(b.type, 'https://docs.api.video/reference/invalid-payload', raw);
    assert.equal(b.title, 'The payload is invalid.', raw);
  }
  // No credentials: api.video's own 401s.
  const none = await fetch(`${base}/tags`);
  assert.equal(none.status, 401);
  assert.equal((await none.json()).type, 'https://docs.api.video/reference/authentication-missing-authorization-header');
  assert.equal(none.headers.get('www-authenticate'), 'Basic');
});

test('tags: the tenant\'s tags with their video counts, searched, sorted, paged', async () => {
  const stamp = Date.now();
  const [a, b, c] = [`tagged-a-${stamp}`, `tagged-b-${stamp}`, `Café-${stamp}`];
  await client.videos.create({ title: 't1', tags: [a, b, c] });
  await client.videos.create({ title: 't2', tags: [b, c] });
  await client.videos.create({ title: 't3', tags: [c] });
  await other.videos.create({ title: 'theirs', tags: [a] });
  const byValue = await client.tags.list({ value: `-${stamp}` });
  assert.deepEqual(plain(byValue.data), [{ value: c, videoCount: 3 }, { value: a, videoCount: 1 },
                                         { value: b, videoCount: 2 }]);
  assert.equal(byValue.pagination.itemsTotal, 3);
  const byCount = await client.tags.list({ value: `-${stamp}`, sortBy: 'videoCount', sortOrder: 'desc' });
  assert.deepEqual(byCount.data.map((x) => x.value), [c, b, a]);
  // Partial, and without case or accents.
  const cafe = await client.tags.list({ value: `cafe-${stamp}` });
  assert.deepEqual(plain(cafe.data), [{ value: c, videoCount: 3 }]);
  const page = await client.tags.list({ value: `${stamp}`, sortBy: 'videoCount', currentPage: 2, pageSize: 1 });
  assert.deepEqual(page.data.map((x) => x.value), [b]);
  assert.equal(page.pagination.pagesTotal, 3);
  assert.deepEqual(page.pagination.links.map((l) => l.rel), ['self', 'first', 'previous', 'next', 'last']);
  assert.equal(page.pagination.links[0].uri, '/tags?currentPage=2&pageSize=1');
  // Another tenant counts only its own.
  assert.deepEqual(plain((await other.tags.list({ value: `-${stamp}` })).data), [{ value: a, videoCount: 1 }]);
  const bad = await rejection(client.tags.list({ sortBy: 'popularity' }));
  assert.equal(bad.code, 400);
  assert.equal(bad.problemDetails.name, 'sortBy');
});

test('fields reel does not support are refused by name, not dropped', async () => {
  const e = await rejection(client.videos.create({ title: 'w', watermark: { id: 'watermark_1' } }));
  assert.equal(e.code, 400);
  assert.equal(e.problemDetails.type, 'https://docs.api.video/reference/invalid-attribute');
  assert.equal(e.problemDetails.name, 'watermark');
  const p = await rejection(client.videos.create({ title: 'p', playerId: 'pt1234' }));
  assert.equal(p.code, 400);
  assert.equal(p.problemDetails.name, 'playerId');
  // Several at once: each is named in problems.
  const r = await fetch(`${base}/videos`, {
    method: 'POST', headers: { ...basic(key), 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: 'x', playerId: 'pt1', watermark: { id: 'w' }, transcript: true }) });
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.deepEqual(body.problems.map((x) => x.name).sort(), ['playerId', 'transcript', 'watermark']);
  assert.match(body.detail, /watermark/);
  // No video was made by any of them.
  assert.equal((await client.videos.list({ title: 'w' })).data.filter((v) => v.title === 'w').length, 0);
  // On update too, and the video is left as it was.
  const v = await client.videos.create({ title: 'kept' });
  const u = await rejection(client.videos.update(v.videoId, { title: 'changed', playerId: 'pt1234' }));
  assert.equal(u.code, 400);
  assert.equal(u.problemDetails.name, 'playerId');
  assert.equal((await client.videos.get(v.videoId)).title, 'kept');
  // A value that asks for nothing is what reel does anyway: accepted.
  const ok = await fetch(`${base}/videos`, {
    method: 'POST', headers: { ...basic(key), 'Content-Type': 'application/json' },
    body: JSON.stringify({ title: 'defaults', playerId: null, language: null, transcript: false,
                           transcriptSummary: false, transcriptSummaryAttributes: [] }) });
  assert.equal(ok.status, 201);
  // What reel supports is still taken.
  const all = await client.videos.create({ title: 'all', description: 'd', _public: true, panoramic: true,
                                           mp4Support: false, tags: ['t'], metadata: [{ key: 'k', value: 'v' }] });
  assert.equal(all.panoramic, true);
  assert.equal(all.mp4Support, false);
});

test('rate limits: X-RateLimit-* on API answers, none on /auth', async () => {
  const r = await fetch(`${base}/videos`, { headers: basic(key) });
  assert.equal(r.status, 200);
  for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-retry-after'])
    assert.match(r.headers.get(h) ?? '', /^\d+$/, h);
  assert.ok(Number(r.headers.get('x-ratelimit-remaining')) < Number(r.headers.get('x-ratelimit-limit')));
  // api.video documents /auth/* as not rate limited.
  const a = await fetch(`${base}/auth/api-key`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ apiKey: key }) });
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('x-ratelimit-limit'), null);
  assert.equal(a.headers.get('x-ratelimit-remaining'), null);
});
