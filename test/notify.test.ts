import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { EventBus } from '../src/daemon/events.js';
import { Notifier, postWebhook, runCommandHook, type NotifyPayload } from '../src/daemon/notify.js';
import type { AgentEvent, NotifyHook, NotifyTestResult } from '../src/protocol.js';
import { isAlivePid, liveProcesses, readProcess } from './helpers/procs.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const CRASHER = join(FIXTURES, 'crasher.mjs');
const IDLE = join(FIXTURES, 'idle.mjs');

interface Hit {
  at: number;
  body: string;
  contentType: string | undefined;
  status: number | null;
  /** When the connection ended (the client cut a request that got no answer). */
  closedAt: number | null;
}

interface TestServer {
  url: string;
  port: number;
  hits: Hit[];
  close(): Promise<void>;
}

/** A local HTTP server on 127.0.0.1; `respond` answers (or not) each request, with its body read. */
async function startServer(respond: (hit: Hit, res: ServerResponse) => void): Promise<TestServer> {
  const hits: Hit[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      const hit: Hit = { at: Date.now(), body, contentType: req.headers['content-type'], status: null, closedAt: null };
      hits.push(hit);
      res.on('close', () => (hit.closedAt = Date.now()));
      respond(hit, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function answer(hit: Hit, res: ServerResponse, status: number): void {
  hit.status = status;
  res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'server trouble');
}

function payloadOf(hit: Hit): NotifyPayload {
  return JSON.parse(hit.body) as NotifyPayload;
}

function writeConfig(rig: Rig, config: Record<string, unknown>, name = 'notify.config.json'): string {
  const file = join(rig.home, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

async function events(rig: Rig, app: string): Promise<AgentEvent[]> {
  return (await rig.ok(['events', '--json', '--app', app, '--lines', '1000'])).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

async function allEvents(rig: Rig): Promise<AgentEvent[]> {
  return (await rig.ok(['events', '--json', '--lines', '1000'])).trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as AgentEvent);
}

/** A hook command that writes each delivery's stdin to its own file in `dir` (written, then renamed: never read half-written). */
function collectingCommand(dir: string): string {
  return `f=$(mktemp -p "${dir}" .part.XXXXXX) && cat > "$f" && mv "$f" "$f.json"`;
}

function collected(dir: string): NotifyPayload[] {
  return readdirSync(dir)
    .filter((name) => name.endsWith('.json'))
    .map((name) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as NotifyPayload)
    .sort((a, b) => a.at.localeCompare(b.at));
}

test('a command hook receives the JSON of a crash on stdin, AGENTPM_EVENT_* in its environment, and no instance tags', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const out = join(rig.home, 'hook');
  mkdirSync(out);
  const command = `cat > "${out}/stdin.tmp" && env -0 > "${out}/env" && mv "${out}/stdin.tmp" "${out}/crash.json"`;
  const config = writeConfig(rig, {
    apps: [{ name: 'bot', script: CRASHER, env: { LIFETIME_MS: '300', EXIT_CODE: '3' }, restartDelay: '60s', notify: { command, events: ['crash'], timeout: '5s' } }],
  });
  await rig.ok(['start', config]);
  const crashFile = join(out, 'crash.json');
  await waitFor(() => existsSync(crashFile), 'the hook to receive the crash');
  const payload = JSON.parse(readFileSync(crashFile, 'utf8')) as NotifyPayload;
  const exit = (await events(rig, 'bot')).find((event) => event.type === 'exit');
  assert.ok(exit, 'the exit event');
  assert.equal(payload.kind, 'crash');
  assert.equal(payload.app, 'bot');
  assert.equal(payload.reason, 'crashed');
  assert.equal(payload.instance, exit.instance);
  assert.equal(payload.at, exit.at);
  assert.equal(payload.test, false);
  assert.deepEqual(payload.event, exit, 'the event itself, as `agentpm events --json` shows it');
  assert.equal(payload.event.data['code'], 3);
  assert.match(payload.message, /^bot: exited: crashed \(code 3\)/);

  const env = new Map(
    readFileSync(join(out, 'env'), 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] as const),
  );
  assert.equal(env.get('AGENTPM_EVENT_TYPE'), 'crash');
  assert.equal(env.get('AGENTPM_EVENT_APP'), 'bot');
  assert.equal(env.get('AGENTPM_EVENT_REASON'), 'crashed');
  assert.equal(env.get('AGENTPM_EVENT_AT'), exit.at);
  assert.equal(env.get('AGENTPM_EVENT_INSTANCE'), exit.instance);
  assert.equal(env.get('AGENTPM_EVENT_MESSAGE'), payload.message);
  assert.equal(env.get('LIFETIME_MS'), '300', "the app's env is there (e.g. a webhook URL kept with the app)");
  assert.equal(env.has('AGENTPM_APP'), false, "a hook's process is never taken for an app's");
  assert.equal(env.has('AGENTPM_INSTANCE'), false);
  assert.equal(env.get('AGENTPM_HOME'), rig.home);
});

test('a webhook (global, from the top-level notify) receives the crash as a JSON POST', async (t) => {
  const rig = await Rig.create();
  const server = await startServer((hit, res) => answer(hit, res, 200));
  t.after(async () => {
    await server.close();
    await rig.dispose();
  });
  const config = writeConfig(rig, {
    notify: [{ webhook: server.url, events: ['crash', 'errored'], timeout: '5s' }],
    apps: [{ name: 'bot', script: CRASHER, env: { LIFETIME_MS: '200' }, restartDelay: '60s' }],
  });
  await rig.ok(['start', config]);
  const hit = await waitFor(() => server.hits[0], 'the webhook to be called');
  assert.equal(hit.contentType, 'application/json');
  const payload = payloadOf(hit);
  assert.equal(payload.kind, 'crash');
  assert.equal(payload.app, 'bot');
  assert.equal(payload.event.type, 'exit');
  assert.equal(payload.event.reason, 'crashed');
  assert.match(payload.text, /^agentpm on .+: bot: exited: crashed \(code 1\)/, 'a `text` for Slack-style webhooks');
  assert.deepEqual(
    (await events(rig, 'bot')).filter((event) => event.type === 'notify-failed'),
    [],
  );
});

test('failing webhooks are retried with backoff, a hanging one is cut at its timeout, and restarts go on on schedule meanwhile', async (t) => {
  const rig = await Rig.create();
  // 500 twice for each event, then 200: delivered on the third attempt.
  const tries = new Map<string, number>();
  const flaky = await startServer((hit, res) => {
    const instance = String(payloadOf(hit).instance);
    const attempt = (tries.get(instance) ?? 0) + 1;
    tries.set(instance, attempt);
    answer(hit, res, attempt <= 2 ? 500 : 200);
  });
  const down = await startServer((hit, res) => answer(hit, res, 500));
  const hang = await startServer(() => undefined); // never answers
  t.after(async () => {
    await Promise.all([flaky.close(), down.close(), hang.close()]);
    await rig.dispose();
  });
  const config = writeConfig(rig, {
    notify: [
      { webhook: flaky.url, events: ['crash'], timeout: '5s' },
      { webhook: down.url, events: ['crash'], timeout: '5s' },
      { webhook: hang.url, events: ['crash'], timeout: '3s' },
    ],
    apps: [{ name: 'bot', script: CRASHER, env: { LIFETIME_MS: '100' }, restartDelay: '100ms', maxRestartDelay: '300ms', minUptime: '30s' }],
  });
  await rig.ok(['start', config]);

  const failures = await waitFor(async () => {
    const found = (await events(rig, 'bot')).filter((event) => event.type === 'notify-failed');
    return found.some((event) => event.reason === 'timeout') && found.some((event) => event.reason === 'http-error') ? found : undefined;
  }, 'the hanging and the failing webhook to be reported', 15_000, 100);
  await waitFor(() => flaky.hits.some((hit) => hit.status === 200), 'the flaky webhook to succeed');

  // Flaky: the same event three times, pausing 500 ms, then 1 s; no failure reported for it.
  const first = payloadOf(flaky.hits[0] as Hit).instance;
  const attempts = flaky.hits.filter((hit) => payloadOf(hit).instance === first);
  assert.deepEqual(attempts.map((hit) => hit.status), [500, 500, 200]);
  const [a, b, c] = attempts as [Hit, Hit, Hit];
  assert.ok(b.at - a.at >= 450 && c.at - b.at >= 900, `exponential pauses: ${b.at - a.at} ms, ${c.at - b.at} ms`);
  const flakyLabel = `webhook http://127.0.0.1:${flaky.port}/…`;
  const downLabel = `webhook http://127.0.0.1:${down.port}/…`;
  const hangLabel = `webhook http://127.0.0.1:${hang.port}/…`;
  assert.equal(failures.filter((event) => event.data['hook'] === flakyLabel).length, 0);

  // Down: three attempts for an event, then one notify-failed.
  const downFailure = failures.find((event) => event.data['hook'] === downLabel);
  assert.equal(downFailure?.reason, 'http-error');
  assert.match(String(downFailure?.data['message']), /HTTP 500: server trouble \(attempt 3 of 3\)/);
  const downFirst = down.hits.filter((hit) => payloadOf(hit).instance === downFailure?.instance);
  assert.equal(downFirst.length, 3);

  // Hang: cut at its 3 s timeout.
  const hangFailure = failures.find((event) => event.data['hook'] === hangLabel);
  assert.equal(hangFailure?.reason, 'timeout');
  const cut = hang.hits[0] as Hit;
  assert.ok(cut.closedAt !== null, 'the hanging request was cut');
  const held = cut.closedAt - cut.at;
  assert.ok(held >= 2500 && held < 5000, `cut after about 3 s, was ${held} ms`);

  // Supervision never waited: while the hanging request was open, the app kept restarting on schedule.
  const history = await events(rig, 'bot');
  const spawnsWhileHanging = history.filter((event) => event.type === 'spawn' && Date.parse(event.at) > cut.at && Date.parse(event.at) < (cut.closedAt ?? 0));
  t.diagnostic(`${spawnsWhileHanging.length} restarts while the webhook hung for ${held} ms`);
  assert.ok(spawnsWhileHanging.length >= 2, `restarts went on while the webhook hung (${spawnsWhileHanging.length})`);
  for (const [index, event] of history.entries()) {
    if (event.type !== 'backoff') continue;
    const next = history.slice(index).find((later) => later.type === 'spawn');
    if (!next) continue;
    const late = Date.parse(next.at) - Date.parse(event.at) - Number(event.data['delayMs']);
    assert.ok(late < 1000, `restart ${late} ms later than its backoff delay`);
  }
  // notify-failed is not itself notified: the servers saw crash events only.
  for (const server of [flaky, down, hang]) assert.ok(server.hits.every((hit) => payloadOf(hit).kind === 'crash'));
});

test('a crash loop sends a bounded number of notifications: a few, then one summary per window', async (t) => {
  const rig = await Rig.create({ AGENTPM_NOTIFY_RATE: '2/2s' });
  t.after(() => rig.dispose());
  const out = join(rig.home, 'deliveries');
  mkdirSync(out);
  const config = writeConfig(rig, {
    apps: [
      {
        name: 'bot',
        script: CRASHER,
        env: { LIFETIME_MS: '50' },
        restartDelay: '50ms',
        maxRestartDelay: '100ms',
        notify: { command: collectingCommand(out), events: ['crash'], timeout: '5s' },
      },
    ],
  });
  const started = Date.now();
  await rig.ok(['start', config]);
  await waitFor(() => collected(out).filter((payload) => payload.coalesced).length >= 2, 'two summaries', 20_000, 100);
  await rig.ok(['stop', 'bot']);
  const elapsed = Date.now() - started;
  const crashes = (await events(rig, 'bot')).filter((event) => event.type === 'exit' && event.reason === 'crashed').length;
  // Once the last window ends, every crash is accounted for: delivered alone, or counted in a summary.
  const deliveries = await waitFor(() => {
    const all = collected(out);
    const accounted = all.reduce((sum, payload) => sum + (payload.coalesced?.count ?? 1), 0);
    return accounted === crashes ? all : undefined;
  }, `all ${crashes} crashes to be accounted for`, 8000, 100);
  const single = deliveries.filter((payload) => payload.coalesced === null);
  const summaries = deliveries.filter((payload) => payload.coalesced !== null);
  assert.equal(single.length, 2, 'two alerts as they happen (the limit), then summaries only');
  for (const summary of summaries) {
    assert.match(summary.message, /^\d+ more crash events? for bot in the last 2 s$/);
    assert.equal(summary.kind, 'crash');
    assert.equal(summary.reason, 'coalesced');
  }
  const windows = Math.ceil((Date.now() - started) / 2000);
  t.diagnostic(`${crashes} crashes in ${elapsed} ms: ${single.length} alerts, summaries of ${summaries.map((item) => item.coalesced?.count).join(', ')}`);
  assert.ok(deliveries.length <= 2 + windows + 1, `${deliveries.length} deliveries over ${windows} windows`);
  assert.ok(crashes > deliveries.length, `a flood was coalesced: ${crashes} crashes in ${elapsed} ms, ${deliveries.length} notifications`);
});

test('`agentpm notify test` sends a sample through the hooks of the app and the global ones, and fails when one fails', async (t) => {
  const rig = await Rig.create();
  const server = await startServer((hit, res) => answer(hit, res, 200));
  t.after(async () => {
    await server.close();
    await rig.dispose();
  });
  const out = join(rig.home, 'test-deliveries');
  mkdirSync(out);
  const config = writeConfig(rig, {
    notify: { command: `cat > "${out}/global.json"` },
    apps: [{ name: 'bot', script: IDLE, notify: [{ command: `cat > "${out}/app.json"` }, { webhook: server.url, events: ['errored'] }] }],
  });
  await rig.ok(['start', config]);
  const before = (await allEvents(rig)).length;

  const result = await rig.cli(['notify', 'test', 'bot']);
  assert.equal(result.code, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  assert.equal(lines.length, 3);
  assert.ok(lines.every((line) => line.startsWith('ok ')), result.stdout);
  assert.ok(lines.some((line) => line.includes(`webhook http://127.0.0.1:${server.port}/…: HTTP 200`)));
  const sample = JSON.parse(readFileSync(join(out, 'app.json'), 'utf8')) as NotifyPayload;
  assert.equal(sample.test, true);
  assert.equal(sample.kind, 'crash');
  assert.equal(sample.app, 'bot');
  assert.match(sample.message, /^TEST/);
  assert.equal(sample.event.data['test'], true);
  assert.equal((JSON.parse(readFileSync(join(out, 'global.json'), 'utf8')) as NotifyPayload).test, true);
  const posted = payloadOf(server.hits[0] as Hit);
  assert.equal(posted.kind, 'errored', 'a hook for other kinds gets the sample as one of its own');
  assert.equal(posted.test, true);

  const globalOnly = JSON.parse(await rig.ok(['notify', 'test', '--json'])) as NotifyTestResult;
  assert.equal(globalOnly.deliveries.length, 1);
  assert.match(globalOnly.deliveries[0]?.hook ?? '', /^command cat > /);

  // The sample is not an event of the app: nothing was added to the stream.
  assert.equal((await allEvents(rig)).length, before);

  writeFileSync(join(rig.home, 'bad.config.json'), JSON.stringify({ apps: [{ name: 'bad', script: IDLE, notify: { command: 'echo nope >&2; exit 3', timeout: '5s' } }] }));
  await rig.ok(['start', join(rig.home, 'bad.config.json')]);
  const failed = await rig.cli(['notify', 'test', 'bad']);
  assert.equal(failed.code, 1);
  assert.match(failed.stdout, /^FAILED {2}command echo nope >&2; exit 3: exited with code 3: nope$/m);
  assert.match(failed.stdout, /^ok {6}command cat > /m, 'the global hook still delivered');

  const unknown = await rig.cli(['notify', 'test', 'nosuch']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no app named nosuch/);
});

test("a hook still running when the daemon stops is killed with its whole group; it is never one of the app's processes", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const pidFile = join(rig.home, 'hook.pids');
  const command = `sleep 30 & echo "$$ $!" > "${pidFile}.tmp" && mv "${pidFile}.tmp" "${pidFile}"; wait`;
  const config = writeConfig(rig, {
    apps: [{ name: 'bot', script: CRASHER, env: { LIFETIME_MS: '200' }, restartDelay: '60s', notify: { command, events: ['crash'], timeout: '60s' } }],
  });
  await rig.ok(['start', config]);
  const pids = await waitFor(() => (existsSync(pidFile) ? readFileSync(pidFile, 'utf8').trim().split(' ').map(Number) : undefined), 'the hook to start');
  assert.equal(pids.length, 2);
  assert.ok(pids.every(isAlivePid));
  for (const pid of pids) {
    const env = readProcess(pid)?.env;
    assert.equal(env?.has('AGENTPM_INSTANCE'), false);
    assert.equal(env?.has('AGENTPM_APP'), false);
  }
  assert.deepEqual(rig.tagged(), [], 'no process is tagged as an app process (the app is in backoff)');
  await rig.ok(['daemon', 'stop']);
  await waitFor(() => pids.every((pid) => !isAlivePid(pid)), 'the hook and its child to be killed', 5000);
});

test('command deliveries are bounded: a timeout kills the whole group, and nothing a finished hook started survives it', async (t) => {
  const rig = await Rig.create(); // for its home (a scratch directory) and its cleanup
  t.after(() => rig.dispose());
  const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', AGENTPM_HOME: rig.home };
  const never = new AbortController().signal;
  const pidFile = join(rig.home, 'pids');

  const started = Date.now();
  const slow = await runCommandHook(`sleep 30 & echo $! > "${pidFile}"; sleep 30`, '{}', env, rig.home, 400, never);
  assert.equal(slow.ok, false);
  assert.equal(slow.ok ? null : slow.reason, 'timeout');
  assert.ok(Date.now() - started < 3000);
  const background = Number(readFileSync(pidFile, 'utf8'));
  await waitFor(() => !isAlivePid(background), 'the background child of the timed-out hook to be killed', 2000);

  const quick = await runCommandHook(`sleep 30 & echo $! > "${pidFile}"; exit 0`, '{}', env, rig.home, 5000, never);
  assert.deepEqual(quick.ok, true);
  const left = Number(readFileSync(pidFile, 'utf8'));
  await waitFor(() => !isAlivePid(left), 'what the finished hook left running to be killed', 2000);

  const failing = await runCommandHook('cat > /dev/null; echo "bad token" >&2; exit 7', '{"kind":"crash"}', env, rig.home, 5000, never);
  assert.deepEqual(failing, { ok: false, reason: 'exit-code', message: 'exited with code 7: bad token' });

  const ignoresStdin = await runCommandHook('exit 0', 'x'.repeat(1024 * 1024), env, rig.home, 5000, never);
  assert.equal(ignoresStdin.ok, true, 'a hook that does not read its stdin is fine');

  const cancel = new AbortController();
  const running = runCommandHook(`echo $$ > "${pidFile}"; exec sleep 30`, '{}', env, rig.home, 60_000, cancel.signal);
  const shell = await waitFor(() => Number(readFileSync(pidFile, 'utf8')) || undefined, 'the hook to start', 2000);
  cancel.abort();
  assert.equal((await running).ok, false);
  await waitFor(() => !isAlivePid(shell), 'the cancelled hook to be killed', 2000);
});

test('webhook deliveries: 4xx is not retried, a refused connection is, a hanging server is cut at the timeout', async (t) => {
  const notFound = await startServer((hit, res) => answer(hit, res, 404));
  const hang = await startServer(() => undefined);
  const gone = await startServer(() => undefined);
  await gone.close();
  t.after(async () => {
    await Promise.all([notFound.close(), hang.close()]);
  });
  const never = new AbortController().signal;
  const fast = { attempts: 3, baseDelayMs: 50 };

  const rejected = await postWebhook(notFound.url, '{}', 5000, never, fast);
  assert.equal(rejected.ok ? null : rejected.reason, 'http-error');
  assert.equal(notFound.hits.length, 1, 'a 4xx is the request, not the network: not retried');

  const refused = await postWebhook(gone.url, '{}', 5000, never, fast);
  assert.equal(refused.ok ? null : refused.reason, 'network-error');
  assert.match(refused.message, /ECONNREFUSED \(attempt 3 of 3\)/);

  const started = Date.now();
  const cut = await postWebhook(hang.url, '{}', 500, never, fast);
  const took = Date.now() - started;
  assert.equal(cut.ok ? null : cut.reason, 'timeout');
  assert.ok(took >= 450 && took < 2000, `cut at the timeout (${took} ms)`);
  await waitFor(() => hang.hits[0]?.closedAt, 'the server to see the request cut', 2000);
});

test('the notifier: at most N deliveries at once, a bounded queue, one alert per memory-pressure intervention, close kills what runs', async (t) => {
  const rig = await Rig.create(); // a scratch home; its cleanup kills anything carrying it
  t.after(() => rig.dispose());
  const bus = new EventBus({ file: join(rig.home, 'events.log') });
  const failures: AgentEvent[] = [];
  bus.subscribe((event) => {
    if (event.type === 'notify-failed') failures.push(event);
  });
  const out = join(rig.home, 'out');
  mkdirSync(out);
  let hooks: NotifyHook[] = [{ command: `sleep 0.3; ${collectingCommand(out)}`, webhook: null, events: null, timeoutMs: 10_000 }];
  const notifier = new Notifier(bus, { home: rig.home, specOf: () => undefined, globalHooks: () => hooks, log: () => undefined }, { maxConcurrent: 2, maxQueued: 3 });
  t.after(() => notifier.close());
  // Hook processes this test process started itself (their own children, e.g. subshells, not counted).
  const hookShells = (): number => liveProcesses((proc) => proc.ppid === process.pid && proc.env.get('AGENTPM_HOME') === rig.home && proc.env.has('AGENTPM_EVENT_TYPE')).length;

  // Eight apps crash at once (eight keys: no rate limit applies): 2 run, 3 wait, 3 are dropped.
  for (let index = 0; index < 8; index += 1) bus.emit('exit', `app${index}`, `i${index}`, 'crashed', { code: 1, signal: null, uptimeMs: 10 });
  assert.equal(notifier.pending, 5);
  let peak = 0;
  await waitFor(() => {
    peak = Math.max(peak, hookShells());
    return collected(out).length === 5 && notifier.pending === 0;
  }, 'five deliveries', 10_000, 10);
  assert.ok(peak >= 1 && peak <= 2, `at most 2 hook processes at once, saw ${peak}`);
  assert.deepEqual(collected(out).map((payload) => payload.app).sort(), ['app0', 'app1', 'app2', 'app3', 'app4']);
  assert.deepEqual(failures.map((event) => [event.app, event.reason]), [['app5', 'queue-full'], ['app6', 'queue-full'], ['app7', 'queue-full']]);

  // The guard announces its victim, then the victim's exit follows: one alert, the guard's.
  hooks = [{ command: collectingCommand(out), webhook: null, events: ['memory-pressure'], timeoutMs: 10_000 }];
  bus.emit('guard', 'bot', 'b1', 'memory-pressure', { availableBytes: 1, action: 'restart', victim: 'bot' });
  bus.emit('exit', 'bot', 'b1', 'memory-pressure', { code: null, signal: 'SIGTERM', uptimeMs: 10 });
  bus.emit('notify-failed', 'bot', 'b1', 'timeout', { hook: 'x', message: 'y' });
  await waitFor(() => notifier.pending === 0 && collected(out).length === 6, 'the memory-pressure alert');
  const pressure = collected(out).filter((payload) => payload.kind === 'memory-pressure');
  assert.equal(pressure.length, 1);
  assert.equal(pressure[0]?.event.type, 'guard');

  // Closing the notifier (daemon shutdown) kills a running hook and its group.
  const pidFile = join(rig.home, 'long.pid');
  hooks = [{ command: `echo $$ > "${pidFile}.tmp" && mv "${pidFile}.tmp" "${pidFile}"; sleep 30`, webhook: null, events: null, timeoutMs: 60_000 }];
  bus.emit('exit', 'late', 'l1', 'crashed', { code: 1 });
  const shell = await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined), 'the long hook to start');
  notifier.close();
  await waitFor(() => hookShells() === 0 && !isAlivePid(shell) && notifier.pending === 0, 'the hook to be killed', 3000);
  assert.equal(failures.filter((event) => event.data['hook'] !== 'x').length, 3, 'a delivery cut by shutdown is not a failure');
  bus.emit('exit', 'after', 'a1', 'crashed', { code: 1 });
  assert.equal(notifier.pending, 0, 'a closed notifier sends nothing');
});
