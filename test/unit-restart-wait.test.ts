import assert from 'node:assert/strict';
import { test } from 'node:test';
import { restartAndWait, SharedList } from '../src/cli/restart-wait.js';
import type { DaemonClient } from '../src/cli/client.js';
import type { AppSummary } from '../src/protocol.js';

/** A daemon's answers for restartAndWait, the ls requests counted: each app is ready 450 ms after its restart. */
function fakeDaemon(names: string[]): { client: DaemonClient; lsRequests: () => number } {
  let ls = 0;
  const apps = new Map(names.map((name, i) => [name, { pid: 100 + i, readyAt: 0 }]));
  const summary = (name: string): AppSummary => {
    const app = apps.get(name)!;
    return { name, status: 'online', pid: app.pid, restarts: 0, ready: Date.now() >= app.readyAt, lastExit: null, uptimeMs: 1000, health: 'none', waitingFor: null } as unknown as AppSummary;
  };
  const request = async (body: { type: string; name?: string; target?: { names: string[] } }): Promise<unknown> => {
    await Promise.resolve();
    switch (body.type) {
      case 'ls':
        ls += 1;
        return names.map(summary);
      case 'show':
        return { definition: { minUptimeMs: 1000, health: null, readyAfterMs: 250, dependsOn: [] } };
      case 'restart':
        for (const name of body.target?.names ?? []) {
          const app = apps.get(name)!;
          app.pid += 1000;
          app.readyAt = Date.now() + 450;
        }
        return body.target?.names ?? [];
      default:
        throw new Error(`unexpected request ${body.type}`);
    }
  };
  return { client: { request } as unknown as DaemonClient, lsRequests: () => ls };
}

test('restart --wait --parallel 10: the apps of a batch share one ls per poll instead of one each', async () => {
  const names = Array.from({ length: 10 }, (_, i) => `app-${i}`);
  const daemon = fakeDaemon(names);
  const summary = await restartAndWait(daemon.client, { names }, { parallel: '10', timeout: '10s' });
  assert.equal(summary.ok, true, JSON.stringify(summary.apps));
  // Each app's first look needs an ls sent after its own restart (10); the polls after that are shared:
  // 2 or 3 more, where one ls per app per poll (every 200 ms until ready) made 30 and more.
  assert.ok(daemon.lsRequests() <= 15, `${daemon.lsRequests()} ls requests for 10 apps polled together`);
});

test('a shared ls is never older than the caller\'s restart or last look', async () => {
  let sent = 0;
  const releases: (() => void)[] = [];
  const client = {
    request: () => {
      sent += 1;
      const list = [{ name: 'a' }, { name: 'b' }] as AppSummary[];
      return new Promise<AppSummary[]>((resolve) => releases.push(() => resolve(list)));
    },
  };
  const list = new SharedList(client as unknown as DaemonClient);
  const first = list.summaryOf('a', performance.now());
  // b's restart answered after that ls was sent: it must not be judged from it.
  const bRestarted = performance.now();
  const second = list.summaryOf('b', bRestarted);
  assert.equal(sent, 2);
  // a's last look was the first ls: the second, sent later, is new to it and is shared.
  for (const release of releases) release();
  const seenByA = await first;
  const shared = list.summaryOf('a', seenByA.sentAt);
  assert.equal(sent, 2);
  assert.equal((await shared).sentAt, (await second).sentAt);
  // The same list twice is not a new look: a caller that saw the latest one gets a new request.
  const again = list.summaryOf('b', (await second).sentAt);
  assert.equal(sent, 3);
  releases[2]!();
  await again;
});
