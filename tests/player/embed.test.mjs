// Drives reel's embed page in headless Chromium (Debian's, through
// playwright-core): playback starts, time advances, and a forced rung
// switch happens. Run by tests/player_test.sh with REEL_BASE and
// REEL_VIDEO set.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const base = process.env.REEL_BASE;
const video = process.env.REEL_VIDEO;

test('the embed page plays and switches rungs', async (t) => {
  assert.ok(base && video, 'REEL_BASE and REEL_VIDEO must be set');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
    // playwright gives the browser a fresh, temporary profile itself.
    timeout: 60000,
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const response = await page.goto(`${base}/embed/${video}`);
  assert.equal(response.status(), 200);

  // hls.js is loaded and has read the master playlist.
  await page.waitForFunction(() => window.reelHls && window.reelHls.levels
                                   && window.reelHls.levels.length > 0,
                             null, { timeout: 30000 });
  const levels = await page.evaluate(() =>
    window.reelHls.levels.map((l) => ({ height: l.height, bitrate: l.bitrate })));
  assert.ok(levels.length >= 2, `expected several rungs, got ${JSON.stringify(levels)}`);

  // Playback starts and time advances.
  await page.evaluate(() => {
    const v = document.getElementById('player');
    v.muted = true;
    return v.play();
  });
  await page.waitForFunction(() => document.getElementById('player').currentTime > 1,
                             null, { timeout: 30000 });
  const t1 = await page.evaluate(() => document.getElementById('player').currentTime);
  await page.waitForTimeout(1000);
  const t2 = await page.evaluate(() => document.getElementById('player').currentTime);
  assert.ok(t2 > t1, `time should advance (${t1} -> ${t2})`);

  // Force a switch to another rung and see it happen.
  const start = await page.evaluate(() => window.reelHls.currentLevel);
  const target = start === 0 ? levels.length - 1 : 0;
  await page.evaluate((target) => {
    window.reelSwitched = [];
    window.reelHls.on(Hls.Events.LEVEL_SWITCHED,
                      (_, data) => window.reelSwitched.push(data.level));
    window.reelHls.currentLevel = target;
  }, target);
  await page.waitForFunction((target) => window.reelSwitched.includes(target),
                             target, { timeout: 30000 });
  // The picture comes from the new rung once playback reaches its
  // segments, and time keeps advancing.
  const want = levels[target].height;
  await page.waitForFunction((want) => document.getElementById('player').videoHeight === want,
                             want, { timeout: 30000 });
  const t3 = await page.evaluate(() => document.getElementById('player').currentTime);
  await page.waitForFunction((t3) => document.getElementById('player').currentTime > t3 + 0.5,
                             t3, { timeout: 30000 });
  assert.deepEqual(errors, []);
});
