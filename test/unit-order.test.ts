import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { dependentsOf, describeCycle, findCycle, graphOf, startOrder, stopWaves, unknownDependencies, withDependencies } from '../src/daemon/order.js';
import { notReady, orderStart, refuseOrphaningDelete } from '../src/daemon/dependencies.js';
import { isReady, type ReadinessFacts } from '../src/daemon/readiness.js';
import { resolveApps } from '../src/config/resolve.js';
import { batchesOf } from '../src/cli/restart-wait.js';
import type { AppSpec, AppSummary } from '../src/protocol.js';
import { describeEventText, renderList } from '../src/cli/render.js';
import { tableColumns } from '../src/tui/view-model.js';
import { UNICODE_GLYPHS } from '../src/tui/format.js';

const g = (edges: Record<string, string[]>): Map<string, readonly string[]> => graphOf(Object.entries(edges).map(([name, dependsOn]) => ({ name, dependsOn })));
const items = (...names: string[]): { name: string }[] => names.map((name) => ({ name }));
const namesOf = (list: { name: string }[]): string[] => list.map((item) => item.name);

describe('start order', () => {
  test('every app comes after what it depends on; otherwise the order given is kept', () => {
    // bot depends on gateway and worker, listed after it; metrics depends on nothing.
    const graph = g({ bot: ['gateway', 'worker'], metrics: [], gateway: [], worker: ['gateway'] });
    assert.deepEqual(namesOf(startOrder(items('bot', 'metrics', 'gateway', 'worker'), graph)), ['metrics', 'gateway', 'worker', 'bot']);
  });

  test('a config without dependsOn keeps its order exactly', () => {
    const graph = g({ c: [], a: [], b: [] });
    assert.deepEqual(namesOf(startOrder(items('c', 'a', 'b'), graph)), ['c', 'a', 'b']);
  });

  test('a long chain is ordered without recursion (no stack overflow)', () => {
    const edges: Record<string, string[]> = {};
    for (let index = 0; index < 20_000; index += 1) edges[`app${index}`] = index === 0 ? [] : [`app${index - 1}`];
    const reversed = Object.keys(edges).reverse();
    const ordered = namesOf(startOrder(items(...reversed), g(edges)));
    assert.equal(ordered[0], 'app0');
    assert.equal(ordered.at(-1), 'app19999');
    assert.equal(findCycle(g(edges)), null);
  });
});

describe('cycles and unknown names', () => {
  test('a cycle is found and named as the path that closes it', () => {
    const cycle = findCycle(g({ web: [], a: ['b'], b: ['c'], c: ['a'] }));
    assert.ok(cycle);
    assert.equal(cycle[0], cycle.at(-1));
    assert.deepEqual(new Set(cycle), new Set(['a', 'b', 'c']));
    assert.equal(describeCycle(['a', 'b', 'a']), 'a → b → a');
  });

  test('a self-dependency is a cycle; a diamond is not', () => {
    assert.deepEqual(findCycle(g({ a: ['a'] })), ['a', 'a']);
    assert.equal(findCycle(g({ top: ['left', 'right'], left: ['base'], right: ['base'], base: [] })), null);
  });

  test('ordering a graph with a cycle terminates (the daemon checks before, but must never hang)', () => {
    assert.equal(startOrder(items('a', 'b'), g({ a: ['b'], b: ['a'] })).length, 2);
  });

  test('unknown dependencies are listed per app', () => {
    assert.deepEqual(unknownDependencies(g({ bot: ['gatway', 'worker'], worker: [] })), [{ app: 'bot', missing: ['gatway'] }]);
  });
});

describe('stop waves', () => {
  test('dependents stop before what they depend on; independent apps stop together', () => {
    const graph = g({ gateway: [], worker: ['gateway'], bot: ['gateway', 'worker'], metrics: [] });
    const waves = stopWaves(items('gateway', 'worker', 'bot', 'metrics'), graph).map(namesOf);
    assert.deepEqual(waves, [['bot'], ['worker'], ['gateway', 'metrics']]);
  });

  test('apps without dependencies form one wave (stop all stays parallel)', () => {
    assert.deepEqual(stopWaves(items('a', 'b', 'c'), g({ a: [], b: [], c: [] })).map(namesOf), [['a', 'b', 'c']]);
  });

  test('the order holds through an app that is not being stopped', () => {
    const waves = stopWaves(items('c', 'a'), g({ a: ['b'], b: ['c'], c: [] })).map(namesOf);
    assert.deepEqual(waves, [['a'], ['c']]);
  });
});

describe('selecting apps with their dependencies', () => {
  test('--only bot brings what bot needs, transitively, and nothing else', () => {
    const graph = g({ gateway: [], worker: ['gateway'], bot: ['worker'], other: [] });
    assert.deepEqual(withDependencies(['bot'], graph), ['gateway', 'worker', 'bot']);
  });

  test('dependents left behind by a delete are named', () => {
    const graph = g({ gateway: [], bot: ['gateway'], cron: ['gateway'] });
    assert.deepEqual(dependentsOf(['gateway', 'cron'], graph), [{ app: 'bot', on: ['gateway'] }]);
    assert.deepEqual(dependentsOf(['gateway', 'cron', 'bot'], graph), []);
  });

  test('restart --wait batches never put an app with one it depends on', () => {
    const graph = g({ gateway: [], bot: ['gateway'], a: [], b: [] });
    assert.deepEqual(batchesOf(['gateway', 'a', 'bot', 'b'], 3, graph), [['gateway', 'a'], ['bot', 'b']]);
    assert.deepEqual(batchesOf(['a', 'b', 'gateway'], 2, graph), [['a', 'b'], ['gateway']]);
  });
});

describe('readiness', () => {
  const facts = (over: Partial<ReadinessFacts> & { health?: ReadinessFacts['health'] }): ReadinessFacts => ({
    status: 'online',
    instance: { startedAt: 1_000 },
    health: 'starting',
    spec: { health: null, readyAfterMs: 3_000 },
    ...over,
  });

  test('without a health check: online for readyAfter', () => {
    assert.equal(isReady(facts({}), 3_999), false);
    assert.equal(isReady(facts({}), 4_000), true);
    assert.equal(isReady(facts({ status: 'backoff', instance: null }), 10_000), false);
  });

  test('with a health check: healthy, however long it has been up', () => {
    const checked = { health: {}, readyAfterMs: 3_000 };
    assert.equal(isReady(facts({ spec: checked }), 100_000), false);
    assert.equal(isReady(facts({ spec: checked, health: 'healthy' }), 1_001), true);
    assert.equal(isReady(facts({ spec: checked, health: 'unhealthy' }), 100_000), false);
  });

  test('an app waits for the dependencies that are not ready, and for an unknown one', () => {
    const ready = { name: 'gateway', ...facts({}), spec: { health: null, readyAfterMs: 0, dependsOn: [] } };
    const down = { name: 'worker', ...facts({ status: 'errored', instance: null }), spec: { health: null, readyAfterMs: 0, dependsOn: [] } };
    const bot = { name: 'bot', ...facts({ status: 'stopped', instance: null }), spec: { health: null, readyAfterMs: 0, dependsOn: ['gateway', 'worker', 'gone'] } };
    const apps = new Map([ready, down, bot].map((app) => [app.name, app]));
    assert.deepEqual(notReady(bot, apps, 5_000), ['worker', 'gone']);
  });
});

describe('the daemon checks a start against the apps it knows', () => {
  const spec = (name: string, dependsOn: string[] = []): AppSpec => ({ name, dependsOn }) as unknown as AppSpec;
  const registered = (name: string, dependsOn: string[] = []) => ({ name, status: 'online' as const, instance: null, health: 'starting' as const, spec: { health: null, readyAfterMs: 0, dependsOn } });

  test('a dependency may be registered already, or in the same request; the request is put in start order', () => {
    const known = new Map([['gateway', registered('gateway')]]);
    assert.deepEqual(namesOf(orderStart([spec('bot', ['worker', 'gateway']), spec('worker')], known)), ['worker', 'bot']);
  });

  test('an unknown dependency and a cycle through a registered app are refused, naming them', () => {
    assert.throws(() => orderStart([spec('bot', ['gatway'])], new Map()), /bot depends on gatway, which no app has/);
    const known = new Map([['gateway', registered('gateway', ['bot'])]]);
    assert.throws(() => orderStart([spec('bot', ['gateway'])], known), /cycle: (bot → gateway → bot|gateway → bot → gateway)/);
  });

  test('deleting a dependency alone is refused, naming the app left behind', () => {
    const known = new Map([['gateway', registered('gateway')], ['bot', registered('bot', ['gateway'])]]);
    assert.throws(() => refuseOrphaningDelete(['gateway'], known), /bot depends on gateway.*agentpm delete gateway bot/);
    refuseOrphaningDelete(['gateway', 'bot'], known);
  });
});

describe('dependsOn in a config', () => {
  const config = (apps: Record<string, unknown>[]): ReturnType<typeof resolveApps> => resolveApps({ apps }, { source: 'test.config.ts', baseDir: '/tmp' });

  test('resolved in start order, dependencies first', () => {
    const apps = config([
      { name: 'bot', script: 'sleep', dependsOn: ['gateway'] },
      { name: 'gateway', script: 'sleep' },
    ]);
    assert.deepEqual(namesOf(apps), ['gateway', 'bot']);
    assert.deepEqual(apps[1]?.dependsOn, ['gateway']);
    assert.deepEqual(apps[0]?.dependsOn, []);
  });

  test('an unknown name is an error suggesting the close one', () => {
    assert.throws(() => config([{ name: 'bot', script: 'sleep', dependsOn: ['gatway'] }, { name: 'gateway', script: 'sleep' }]), /app "bot": field `dependsOn`: no app named "gatway" in this config; did you mean "gateway"\?/);
  });

  test('a cycle is an error naming every app of it, and starts nothing', () => {
    assert.throws(
      () => config([{ name: 'a', script: 'sleep', dependsOn: ['b'] }, { name: 'b', script: 'sleep', dependsOn: ['c'] }, { name: 'c', script: 'sleep', dependsOn: ['a'] }]),
      (error: Error) => /dependsOn` forms a cycle: (a|b|c) → (a|b|c) → (a|b|c) → (a|b|c); none of/.test(error.message) && /nothing was started/.test(error.message),
    );
  });

  test('itself, a non-array and a bad name are errors', () => {
    assert.throws(() => config([{ name: 'bot', script: 'sleep', dependsOn: ['bot'] }]), /cannot depend on itself/);
    assert.throws(() => config([{ name: 'bot', script: 'sleep', dependsOn: 'gateway' }]), /expected an array of app names/);
    assert.throws(() => config([{ name: 'bot', script: 'sleep', dependsOn: ['../x'] }]), /not app names/);
  });
});

describe('waiting, as ls and monit show it', () => {
  const waitingBot: AppSummary = {
    name: 'bot', status: 'waiting', pid: null, restarts: 0, uptimeMs: null, memory: 0, processes: 0, children: 0, cpu: 0, health: null,
    limits: { memory: null, children: null }, lastExit: null, nextStartAt: null, waitingFor: ['gateway', 'worker'], ready: false, containment: 'proc',
  };

  test('ls says what a waiting app waits for', () => {
    assert.match(renderList([waitingBot]), /bot\s+waiting \(gateway, worker\)\s+-/);
  });

  test("monit's status column widens to say it too", () => {
    const status = tableColumns([waitingBot], 120, UNICODE_GLYPHS).find((column) => column.header === 'status');
    assert.ok(status);
    assert.equal(status.cell(waitingBot).map((part) => part.text).join(''), 'waiting (gateway, worker)');
    assert.ok(status.width >= 'waiting (gateway, worker)'.length);
  });
});

test('the event of entering waiting says for what', () => {
  const event = { type: 'state' as const, app: 'bot', instance: null, at: '2026-11-29T10:00:00.000Z', reason: null, data: { from: 'stopped', to: 'waiting', waitingFor: ['gateway'] } };
  assert.equal(describeEventText(event), 'stopped → waiting for gateway to be ready');
});
