import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AgentEvent, DaemonStatus } from '../src/protocol.js';
import { freePort, listeningPorts, parseMetrics, promtool, promtoolMissing, scrape, valueOf, type Scrape } from './helpers/metrics.js';
import { FIXTURES, ROOT, Rig, waitFor } from './helpers/rig.js';

const CRASHER = join(FIXTURES, 'crasher.mjs');
const IDLE = join(FIXTURES, 'idle.mjs');
const RULES_DIR = join(ROOT, 'examples', 'prometheus');
const DASHBOARD = join(ROOT, 'examples', 'grafana', 'agentpm-dashboard.json');
const STATUSES = ['stopped', 'waiting', 'starting', 'online', 'stopping', 'backoff', 'errored'];

function writeConfig(rig: Rig, config: Record<string, unknown>): string {
  const file = join(rig.home, 'ecosystem.config.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

async function status(rig: Rig): Promise<DaemonStatus> {
  return JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as DaemonStatus;
}

async function events(rig: Rig): Promise<AgentEvent[]> {
  return (await rig.ok(['events', '--json', '--lines', '1000'])).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

function statusOf(scraped: Scrape, app: string): string[] {
  return STATUSES.filter((status) => valueOf(scraped, 'agentpm_app_status', { app, status }) === 1);
}

/** `promtool check metrics` must pass with nothing to say (it prints lint warnings and exits 3). */
function checkWithPromtool(text: string): void {
  const checked = promtool(['check', 'metrics'], text);
  assert.equal(checked.output.trim(), '', `promtool check metrics:\n${checked.output}`);
  assert.equal(checked.status, 0);
}

test('metrics are off by default: the daemon listens on no TCP port and says metrics are off', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'idle']);
  const pid = await waitFor(() => rig.daemonPid(), 'the daemon');
  assert.deepEqual(listeningPorts(pid), []);
  assert.equal((await status(rig)).metrics, null);
  // The check above can see a listening port: once metrics are on, it does.
  const port = await freePort();
  assert.match(await rig.ok(['daemon', 'start', '--metrics', `127.0.0.1:${port}`]), new RegExp(`metrics: http://127.0.0.1:${port}/metrics`));
  assert.deepEqual(listeningPorts(pid), [port]);
  assert.match(await rig.ok(['daemon', 'start', '--metrics', 'off']), /metrics: off/);
  await waitFor(() => listeningPorts(pid).length === 0, 'the port to be closed');
  assert.equal((await status(rig)).metrics, null);
});

test('a crash loop, scraped: restarts and crashed exits only grow, one status at a time, ending errored; promtool finds nothing to say', async (t) => {
  const skip = promtoolMissing();
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const port = await freePort();
  await rig.ok(['start', writeConfig(rig, {
    metrics: { listen: `127.0.0.1:${port}` },
    apps: [
      { name: 'loop', script: CRASHER, restartDelay: '300ms', maxRestartDelay: '300ms', maxRestarts: 6, restartWindow: '1m' },
      { name: 'steady', script: IDLE, maxMemory: '1G', maxChildren: 5, health: { command: 'true', interval: '200ms', startPeriod: '0s' } },
    ],
  })]);
  const scrapes: Scrape[] = [];
  const last = await waitFor(async () => {
    const scraped = await scrape(port);
    scrapes.push(scraped);
    return statusOf(scraped, 'loop').includes('errored') && valueOf(scraped, 'agentpm_app_health', { app: 'steady', state: 'healthy' }) === 1 ? scraped : undefined;
  }, 'loop to give up (errored) and steady to be healthy', 30_000, 200);
  assert.ok(scrapes.length >= 3, `scraped ${scrapes.length} times during the loop`);
  for (const scraped of scrapes) {
    assert.equal(statusOf(scraped, 'loop').length, 1, `exactly one status of loop is 1:\n${scraped.text}`);
    assert.equal(statusOf(scraped, 'steady').length, 1);
  }
  const restarts = scrapes.map((scraped) => valueOf(scraped, 'agentpm_app_restarts_total', { app: 'loop' }) ?? -1);
  const crashes = scrapes.map((scraped) => valueOf(scraped, 'agentpm_app_exits_total', { app: 'loop', reason: 'crashed' }) ?? -1);
  for (let index = 1; index < scrapes.length; index += 1) {
    assert.ok((restarts[index] ?? 0) >= (restarts[index - 1] ?? 0), `restarts never go down: ${restarts.join(' ')}`);
    assert.ok((crashes[index] ?? 0) >= (crashes[index - 1] ?? 0), `crashes never go down: ${crashes.join(' ')}`);
  }
  assert.ok(new Set(crashes).size >= 3, `the crash count was seen growing: ${crashes.join(' ')}`);
  // 6 restarts allowed, so 7 runs, each a crash; and the count `ls` shows.
  const loop = await rig.app('loop');
  assert.equal(loop.status, 'errored');
  assert.equal(valueOf(last, 'agentpm_app_exits_total', { app: 'loop', reason: 'crashed' }), 7);
  assert.equal(valueOf(last, 'agentpm_app_restarts_total', { app: 'loop' }), loop.restarts);
  assert.equal(valueOf(last, 'agentpm_app_exits_total', { app: 'loop', reason: 'oom-killed' }), 0, 'every reason is there from 0, so that increase() sees the first one');
  assert.equal(valueOf(last, 'agentpm_app_processes', { app: 'loop' }), 0);
  assert.equal(valueOf(last, 'agentpm_app_uptime_seconds', { app: 'loop' }), undefined, 'no uptime while not online');

  const steady = await rig.app('steady');
  assert.deepEqual(statusOf(last, 'steady'), ['online']);
  assert.ok((valueOf(last, 'agentpm_app_memory_bytes', { app: 'steady' }) ?? 0) > 1_000_000, 'a node process has megabytes of RSS');
  assert.equal(valueOf(last, 'agentpm_app_memory_limit_bytes', { app: 'steady' }), 1024 ** 3);
  assert.equal(valueOf(last, 'agentpm_app_memory_limit_bytes', { app: 'loop' }), undefined, 'no limit, no series');
  assert.equal(valueOf(last, 'agentpm_app_children_limit', { app: 'steady' }), 5);
  assert.equal(valueOf(last, 'agentpm_app_processes', { app: 'steady' }), steady.processes);
  assert.equal(valueOf(last, 'agentpm_app_children', { app: 'steady' }), steady.children);
  assert.ok((valueOf(last, 'agentpm_app_uptime_seconds', { app: 'steady' }) ?? 0) > 0);
  assert.ok((valueOf(last, 'agentpm_daemon_resident_memory_bytes') ?? 0) > 10_000_000);
  assert.ok((valueOf(last, 'agentpm_machine_memory_available_bytes') ?? 0) > 0);
  assert.ok((valueOf(last, 'agentpm_daemon_tick_interval_seconds') ?? 0) === 0.2, 'the rig ticks every 200 ms');

  if (skip) t.diagnostic(skip);
  else checkWithPromtool(last.text);

  // The endpoint comes back with the daemon (the setting is kept); exits count again from 0, as a
  // counter does when its process restarts; restarts are the app's own count and are kept.
  const before = valueOf(last, 'agentpm_daemon_start_time_seconds') ?? 0;
  await rig.ok(['daemon', 'restart']);
  const after = await waitFor(() => scrape(port).catch(() => undefined), 'the new daemon to serve metrics');
  assert.equal(valueOf(after, 'agentpm_app_exits_total', { app: 'loop', reason: 'crashed' }), 0);
  assert.equal(valueOf(after, 'agentpm_app_restarts_total', { app: 'loop' }), loop.restarts);
  assert.ok((valueOf(after, 'agentpm_daemon_start_time_seconds') ?? 0) >= before);
});

test('a deleted app takes its series with it', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const port = await freePort();
  await rig.ok(['start', writeConfig(rig, { metrics: `127.0.0.1:${port}`, apps: [{ name: 'a', script: IDLE }, { name: 'b', script: IDLE }] })]);
  await waitFor(async () => valueOf(await scrape(port), 'agentpm_app_status', { app: 'b', status: 'online' }) === 1, 'b online in the metrics');
  await rig.ok(['delete', 'b']);
  const scraped = await waitFor(async () => {
    const next = await scrape(port);
    return next.samples.some((sample) => sample.labels['app'] === 'b') ? undefined : next;
  }, 'b to leave the metrics');
  assert.equal(valueOf(scraped, 'agentpm_app_status', { app: 'a', status: 'online' }), 1);
});

test('an address that is not loopback is refused without allowPublic, from a config and from the flag; nothing starts', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const config = writeConfig(rig, { metrics: { listen: '0.0.0.0:9464' }, apps: [{ name: 'bot', script: IDLE }] });
  const started = await rig.cli(['start', config]);
  assert.notEqual(started.code, 0);
  assert.match(started.stderr, /metrics\.listen: 0\.0\.0\.0:9464 is not a loopback address.*no authentication.*allowPublic: true/s);
  assert.deepEqual(await rig.ls(), [], 'a config with a problem starts nothing');
  const flagged = await rig.cli(['daemon', 'start', '--metrics', '0.0.0.0:9464']);
  assert.notEqual(flagged.code, 0);
  assert.match(flagged.stderr, /not a loopback address.*--metrics-allow-public/s);
  assert.equal((await status(rig)).metrics, null);
  const pid = await waitFor(() => rig.daemonPid(), 'the daemon');
  assert.deepEqual(listeningPorts(pid), []);
});

test('a port in use: the apps start, the CLI warns, status and an event say why, the daemon goes on; the same setting binds once the port is free', async (t) => {
  const holder = createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  const port = (holder.address() as { port: number }).port;
  const rig = await Rig.create();
  t.after(async () => {
    await rig.dispose();
    holder.close();
  });
  const started = await rig.cli(['start', writeConfig(rig, { metrics: { listen: `127.0.0.1:${port}` }, apps: [{ name: 'bot', script: IDLE }] })]);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stderr, new RegExp(`warning: metrics are not served: 127\\.0\\.0\\.1:${port} is in use by another process`));
  assert.equal((await rig.app('bot')).status, 'online');
  const metrics = (await status(rig)).metrics;
  assert.equal(metrics?.url, null);
  assert.match(metrics?.problem ?? '', /is in use/);
  assert.match(await rig.ok(['daemon', 'status']), /metrics: not served \(127\.0\.0\.1:\d+\): .*in use/);
  const failed = (await events(rig)).find((event) => event.type === 'daemon' && event.reason === 'metrics-failed');
  assert.match(String(failed?.data['message']), /in use/);
  const flagged = await rig.cli(['daemon', 'start', '--metrics', `127.0.0.1:${port}`]);
  assert.notEqual(flagged.code, 0);
  assert.match(flagged.stderr, /in use by another process.*The daemon runs on without them/s);

  await new Promise<void>((resolve) => holder.close(() => resolve()));
  assert.match(await rig.ok(['daemon', 'start', '--metrics', `127.0.0.1:${port}`]), /metrics: http:/);
  assert.equal(valueOf(await scrape(port), 'agentpm_app_status', { app: 'bot', status: 'online' }), 1);
});

test('the endpoint answers only GET /metrics (404 elsewhere, 405 for other methods) and survives garbage', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const port = await freePort();
  await rig.ok(['daemon', 'start', '--metrics', String(port)]);
  assert.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST', body: 'x' })).status, 405);
  const { connect } = await import('node:net');
  await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.end('\x00\x01 not http at all\r\n\r\n'));
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
    socket.resume();
  });
  const scraped = await scrape(port);
  assert.ok(scraped.families.has('agentpm_daemon_info'));
  await rig.ok(['ls']);
});

test('the example alert rules pass promtool check rules and their unit tests; every metric the rules and the dashboard use is served', async (t) => {
  const skip = promtoolMissing();
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const port = await freePort();
  await rig.ok(['daemon', 'start', '--metrics', `127.0.0.1:${port}`]);
  const served = (await scrape(port)).families;
  const rules = readFileSync(join(RULES_DIR, 'agentpm-rules.yml'), 'utf8');
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: unknown[]; templating: { list: unknown[] } };
  const expressions = collectStrings(dashboard, ['expr', 'definition']);
  assert.ok(expressions.length >= 15, `the dashboard's queries: ${expressions.length}`);
  const used = new Set([...rules.matchAll(/\bagentpm_[a-z0-9_]+/g), ...expressions.join('\n').matchAll(/\bagentpm_[a-z0-9_]+/g)].map((match) => match[0]));
  const missing = [...used].filter((name) => !served.has(name));
  assert.deepEqual(missing, [], 'metrics queried but not served');
  const unused = [...served.keys()].filter((name) => !expressions.join('\n').includes(name));
  assert.deepEqual(unused, [], 'metrics served but not on the dashboard');
  if (skip) return t.skip(skip);
  const checked = promtool(['check', 'rules', 'agentpm-rules.yml'], undefined, RULES_DIR);
  assert.equal(checked.status, 0, checked.output);
  assert.match(checked.output, /SUCCESS: 8 rules found/);
  const tested = promtool(['test', 'rules', 'agentpm-rules.test.yml'], undefined, RULES_DIR);
  assert.equal(tested.status, 0, tested.output);
  // Every dashboard query is valid PromQL: as rules, with Grafana's variables filled in.
  const asRules = {
    groups: [{ name: 'dashboard', rules: expressions.filter((expr) => !expr.startsWith('label_values')).map((expr, index) => ({ record: `dashboard:query${index}`, expr: expr.replaceAll('$instance', '.*').replaceAll('$app', '.*') })) }],
  };
  const file = join(rig.home, 'dashboard-queries.yml');
  writeFileSync(file, JSON.stringify(asRules)); // JSON is YAML
  const queries = promtool(['check', 'rules', file]);
  assert.equal(queries.status, 0, queries.output);
});

test('the scrape parser reads the text format promtool checks', () => {
  const parsed = parseMetrics('# HELP x_total h\n# TYPE x_total counter\nx_total{app="a",reason="b"} 3\ny 1.5\n');
  assert.equal(valueOf(parsed, 'x_total', { app: 'a' }), 3);
  assert.equal(valueOf(parsed, 'y'), 1.5);
  assert.equal(parsed.families.get('x_total'), 'counter');
});

function collectStrings(value: unknown, keys: string[]): string[] {
  if (Array.isArray(value)) return value.flatMap((item) => collectStrings(item, keys));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, item]) => (keys.includes(key) && typeof item === 'string' ? [item] : collectStrings(item, keys)));
}

test('a malformed metrics setting in the registry (edited by hand) is reported, and the daemon runs on', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'idle']);
  await rig.ok(['daemon', 'stop']);
  const file = join(rig.home, 'registry.json');
  const registry = JSON.parse(readFileSync(file, 'utf8')) as { settings?: Record<string, unknown> };
  registry.settings = { ...registry.settings, metrics: 9464 };
  writeFileSync(file, JSON.stringify(registry));
  await rig.ok(['daemon', 'start']);
  const metrics = (await status(rig)).metrics;
  assert.equal(metrics?.url, null);
  assert.match(metrics?.problem ?? '', /unusable|metrics\.listen/);
  assert.equal((await rig.app('idle')).status, 'online', 'the app was re-adopted');
});
