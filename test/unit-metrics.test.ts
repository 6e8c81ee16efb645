import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { isLoopback, metricsFlag, metricsProblem, parseListen, resolveMetrics } from '../src/config/metrics.js';
import { resolveDaemonSettings } from '../src/config/resolve.js';
import { parseRequest } from '../src/daemon/requests.js';
import { ROOT } from './helpers/rig.js';

describe('metrics addresses', () => {
  test('HOST:PORT, [IPv6]:PORT and a port alone (loopback) are read and normalised', () => {
    assert.deepEqual(parseListen('127.0.0.1:9464'), { ok: true, host: '127.0.0.1', port: 9464, listen: '127.0.0.1:9464' });
    assert.deepEqual(parseListen('9464'), { ok: true, host: '127.0.0.1', port: 9464, listen: '127.0.0.1:9464' });
    assert.deepEqual(parseListen('localhost:80'), { ok: true, host: '127.0.0.1', port: 80, listen: '127.0.0.1:80' });
    assert.deepEqual(parseListen('[::1]:9464'), { ok: true, host: '::1', port: 9464, listen: '[::1]:9464' });
  });

  test('bad addresses are refused with the reason', () => {
    assert.match(messageOf(parseListen('127.0.0.1:0')), /port must be a number from 1 to 65535, got '0'/);
    assert.match(messageOf(parseListen('127.0.0.1:65536')), /got '65536'/);
    assert.match(messageOf(parseListen('example.com:9464')), /host must be an IP address .* got 'example.com'/);
    assert.match(messageOf(parseListen('::1:9464')), /IPv6 address goes in brackets/);
    assert.match(messageOf(parseListen('[127.0.0.1]:9464')), /must be an IPv6 address/);
    assert.match(messageOf(parseListen('')), /expected/);
    assert.match(messageOf(parseListen('1'.repeat(500))), /expected/);
  });

  test('loopback is 127/8 and ::1 however written, nothing else', () => {
    for (const host of ['127.0.0.1', '127.9.9.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) assert.equal(isLoopback(host), true, host);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', '::ffff:10.0.0.1', 'fe80::1', 'localhost']) assert.equal(isLoopback(host), false, host);
  });

  test('a public address needs allowPublic, and the refusal says why and how', () => {
    assert.match(metricsProblem({ listen: '0.0.0.0:9464', allowPublic: false }) ?? '', /not a loopback address.*no authentication.*allowPublic: true/s);
    assert.equal(metricsProblem({ listen: '0.0.0.0:9464', allowPublic: true }), null);
    assert.equal(metricsProblem({ listen: '127.0.0.1:9464', allowPublic: false }), null);
    assert.match(metricsProblem({ listen: 'nonsense', allowPublic: true }) ?? '', /metrics\.listen/);
  });
});

describe('the config field and the flag', () => {
  const resolveOne = (input: unknown): { value: unknown; problems: string[] } => {
    const problems: string[] = [];
    const value = resolveMetrics(input, (where, message) => problems.push(`${where}: ${message}`));
    return { value, problems };
  };

  test('every accepted form', () => {
    assert.deepEqual(resolveOne({}).value, { listen: '127.0.0.1:9464', allowPublic: false });
    assert.deepEqual(resolveOne(true).value, { listen: '127.0.0.1:9464', allowPublic: false });
    assert.deepEqual(resolveOne(false).value, null);
    assert.deepEqual(resolveOne('9100').value, { listen: '127.0.0.1:9100', allowPublic: false });
    assert.deepEqual(resolveOne({ listen: '0.0.0.0:9100', allowPublic: true }).value, { listen: '0.0.0.0:9100', allowPublic: true });
  });

  test('problems name the field', () => {
    assert.match(resolveOne({ listen: '0.0.0.0:9100' }).problems.join(), /^metrics\.listen: 0\.0\.0\.0:9100 is not a loopback address/);
    assert.match(resolveOne({ listn: '1' }).problems.join(), /metrics: unknown field `listn`/);
    assert.match(resolveOne({ allowPublic: 'yes' }).problems.join(), /metrics\.allowPublic: expected true or false/);
    assert.match(resolveOne([1]).problems.join(), /metrics: expected/);
  });

  test('a config file: metrics among the daemon settings; a problem is a config error naming the file', () => {
    assert.deepEqual(resolveDaemonSettings({ apps: [], metrics: { listen: '127.0.0.1:9999' } }, 'eco.json'), { metrics: { listen: '127.0.0.1:9999', allowPublic: false } });
    assert.deepEqual(resolveDaemonSettings({ apps: [], metrics: false }, 'eco.json'), { metrics: null });
    assert.equal(resolveDaemonSettings({ apps: [] }, 'eco.json'), null, 'left out: the daemon keeps what it has');
    assert.throws(() => resolveDaemonSettings({ apps: [], metrics: { listen: '[::]:9464' } }, 'eco.json'), /eco\.json: metrics\.listen: \[::\]:9464 is not a loopback address/);
  });

  test('--metrics: off, an address, and the refusals', () => {
    assert.equal(metricsFlag('off', false), null);
    assert.deepEqual(metricsFlag('9464', false), { listen: '127.0.0.1:9464', allowPublic: false });
    assert.deepEqual(metricsFlag('0.0.0.0:9464', true), { listen: '0.0.0.0:9464', allowPublic: true });
    assert.throws(() => metricsFlag('0.0.0.0:9464', false), /--metrics: 0\.0\.0\.0:9464 is not a loopback address/);
    assert.throws(() => metricsFlag('off', true), /--metrics-allow-public goes with --metrics HOST:PORT/);
  });

  test('the daemon holds a hand-made request to the same rules', () => {
    const request = (metrics: unknown): ReturnType<typeof parseRequest> => parseRequest({ id: 1, type: 'settings', settings: { metrics } });
    assert.equal(request({ listen: '127.0.0.1:9464', allowPublic: false }).ok, true);
    assert.equal(request(null).ok, true);
    const refused = request({ listen: '0.0.0.0:9464', allowPublic: false });
    assert.equal(refused.ok, false);
    assert.match(refused.ok ? '' : refused.message, /not a loopback address/);
    assert.equal(request({ listen: 'x'.repeat(1000), allowPublic: true }).ok, false);
  });
});

test('prom-client is not loaded by a daemon without metrics: no module the daemon imports statically imports it', () => {
  // Follows the compiled daemon's static imports (dynamic import() is how metrics load it, once on).
  const dist = join(ROOT, 'dist');
  const seen = new Set<string>();
  const offenders: string[] = [];
  const queue = [join(dist, 'daemon', 'main.js')];
  for (let file = queue.shift(); file; file = queue.shift()) {
    if (seen.has(file)) continue;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const specifier = match[1] ?? match[2] ?? '';
      if (specifier.startsWith('.')) queue.push(resolve(dirname(file), specifier));
      else if (specifier === 'prom-client' || specifier.startsWith('prom-client/')) offenders.push(file);
    }
  }
  assert.ok(seen.has(join(dist, 'daemon', 'metrics.js')), 'the walk reaches the metrics module');
  assert.ok(seen.size > 20, `followed ${seen.size} modules`);
  assert.deepEqual(offenders, []);
  assert.match(readFileSync(join(dist, 'daemon', 'metrics-registry.js'), 'utf8'), /from 'prom-client'/, 'the walk would see it where it is imported');
});

function messageOf(result: ReturnType<typeof parseListen>): string {
  return result.ok ? '' : result.message;
}
