import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveApps } from '../src/config/resolve.js';
import { AgentpmError } from '../src/errors.js';
import { parseAppSpec } from '../src/daemon/requests.js';
import { upgradeSpec } from '../src/daemon/registry.js';

const context = { source: 'ecosystem.config.json', baseDir: '/tmp' };

function refusal(config: unknown): string {
  try {
    resolveApps(config, context);
  } catch (error) {
    assert.ok(error instanceof AgentpmError);
    assert.equal(error.code, 'invalid-config');
    return error.message;
  }
  assert.fail('the config was accepted');
}

test('logs: defaults, sizes in the usual units, and the config-wide default under each app\'s own fields', () => {
  const [plain] = resolveApps({ apps: [{ script: 'sleep' }] }, context);
  assert.deepEqual(plain?.logs, { maxSizeBytes: 10 * 1024 * 1024, keep: 5, compress: false });
  const apps = resolveApps({ logs: { maxSize: '2M', compress: true }, apps: [{ name: 'a', script: 'sleep' }, { name: 'b', script: 'sleep', logs: { maxSize: '512K', keep: 0 } }] }, context);
  assert.deepEqual(apps[0]?.logs, { maxSizeBytes: 2 * 1024 * 1024, keep: 5, compress: true });
  assert.deepEqual(apps[1]?.logs, { maxSizeBytes: 512 * 1024, keep: 0, compress: true });
});

test('logs: every bad field is named with the value and what is allowed', () => {
  const message = refusal({ apps: [{ name: 'bot', script: 'sleep', logs: { maxSize: '10', keep: -1, compress: 'yes', rotate: 'daily' } }] });
  assert.match(message, /4 problems/);
  assert.match(message, /\("bot"\): field `logs\.maxSize`: must be at least 1\.0 KB \('1K'\), got "10"/);
  assert.match(message, /field `logs\.keep`: expected a whole number of rotated files from 0 to 1000, got -1/);
  assert.match(message, /field `logs\.compress`: expected true or false, got "yes"/);
  assert.match(message, /field `logs\.rotate`: unknown field; known fields: maxSize, keep, compress/);
  assert.match(refusal({ apps: [{ script: 'sleep', logs: '10M' }] }), /field `logs`: expected an object such as \{ maxSize: '10M', keep: 5, compress: false \}/);
  assert.match(refusal({ logs: { maxSize: 'huge' }, apps: [{ script: 'sleep' }] }), /ecosystem\.config\.json: field `logs\.maxSize`: expected a size such as '512M'/);
});

test('logs: a saved definition from before the field gets the default policy; a bad one is refused like any field', () => {
  const [definition] = resolveApps({ apps: [{ script: 'sleep' }] }, context);
  assert.ok(definition);
  const { logs: _none, ...old } = { ...definition, baseEnv: {} };
  assert.deepEqual(parseAppSpec(upgradeSpec(old as never))?.logs, { maxSizeBytes: 10 * 1024 * 1024, keep: 5, compress: false });
  assert.equal(parseAppSpec({ ...definition, baseEnv: {}, logs: { maxSizeBytes: 10, keep: 5, compress: false } }), null);
});
