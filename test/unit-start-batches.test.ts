import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mergeStartResults, startBatches } from '../src/cli/start-batches.js';
import { resolveApps } from '../src/config/resolve.js';
import { AgentpmError } from '../src/errors.js';
import { encodeFrame } from '../src/framing.js';
import { MAX_FRAME_BYTES } from '../src/protocol.js';

const definitions = (count: number, env: Record<string, string> = {}) =>
  resolveApps({ apps: Array.from({ length: count }, (_, index) => ({ name: `app${index}`, script: 'sleep', args: ['300'], env })) }, { source: 'test', baseDir: '/' });

test('10,000 apps: every request fits the daemon limit, every app is sent once, in order, the environment once per request', () => {
  const apps = definitions(10_000);
  const env = { PATH: '/usr/bin', BIG: 'x'.repeat(120 * 1024) };
  const batches = startBatches(apps, env, 'apply');
  assert.ok(Buffer.byteLength(JSON.stringify(apps)) > MAX_FRAME_BYTES, 'the case needs more than one request');
  assert.ok(batches.length > 1);
  for (const body of batches) {
    assert.ok(Buffer.byteLength(encodeFrame({ ...body, id: 2 ** 31 })) <= MAX_FRAME_BYTES);
    assert.equal(body.env, env);
    assert.equal(body.ifRunning, 'apply');
  }
  assert.deepEqual(batches.flatMap((body) => body.apps.map((app) => app.name)), apps.map((app) => app.name));
});

test('one request when everything fits', () => {
  assert.equal(startBatches(definitions(20), { A: 'x'.repeat(120 * 1024) }, 'refuse').length, 1);
});

test('a definition or an environment that cannot fit in any request is refused up front, naming it', () => {
  const [big] = definitions(1, { BLOB: 'x'.repeat(MAX_FRAME_BYTES) });
  assert.throws(() => startBatches([big!], {}, 'apply'), (error: unknown) => error instanceof AgentpmError && error.code === 'frame-too-large' && /the definition of app0 is 4\.0 MB/.test(error.message));
  assert.throws(
    () => startBatches(definitions(1), { HUGE_VAR: 'x'.repeat(MAX_FRAME_BYTES), SMALL: 'y' }, 'apply'),
    (error: unknown) => error instanceof AgentpmError && /the environment this command runs in is 4\.0 MB.*largest: HUGE_VAR \(4\.0 MB\), SMALL/.test(error.message),
  );
});

test('results of several requests merge in order', () => {
  assert.deepEqual(
    mergeStartResults([
      { apps: ['a', 'b'], started: ['a'], restarted: ['b'], unchanged: [] },
      { apps: ['c'], started: [], restarted: [], unchanged: ['c'] },
    ]),
    { apps: ['a', 'b', 'c'], started: ['a'], restarted: ['b'], unchanged: ['c'] },
  );
});
