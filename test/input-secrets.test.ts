import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DaemonClient } from '../src/cli/client.js';
import { AgentpmError } from '../src/errors.js';
import { homePaths } from '../src/home.js';
import type { AgentEvent, AppSummary, ReapResult } from '../src/protocol.js';
import { readProcess } from './helpers/procs.js';
import { CLI, FIXTURES, ROOT, Rig, waitFor } from './helpers/rig.js';

const IDLE = join(FIXTURES, 'idle.mjs');

function writeConfig(rig: Rig, config: unknown, name = 'ecosystem.config.json'): string {
  const file = join(rig.home, name);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

test('secrets: show, show --json, events, notify test and daemon.log never print a credential', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const telegram = '123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
  const secrets = ['argsecret1', 'dbpass1', 'ghpat1', 'cookie1', 'phrase1', 'ss1@', 'whsecret1', 'keysecret1', 'cmdsecret1', telegram, 'healthpw1', 'bearer1'];
  const config = writeConfig(rig, {
    apps: [
      {
        name: 'leaky',
        script: IDLE,
        args: ['--token', 'argsecret1'],
        env: { DB_PASS: 'dbpass1', GH_PAT: 'ghpat1', SESSION_COOKIE: 'cookie1', PASSPHRASE: 'phrase1', DATABASE_URL: 'postgres://u:p@ss1@db/main', PATH_HINT: 'visible-value' },
        notify: [
          { webhook: 'http://127.0.0.1:9/hooks/whsecret1?key=keysecret1', timeout: '1s' },
          { command: `TOKEN=cmdsecret1 echo https://api.telegram.org/bot${telegram}/sendMessage -H 'Authorization: Bearer bearer1' >/dev/null; exit 3` },
        ],
        // fetch refuses URLs with credentials, and its message quotes the URL: the event must not.
        health: { http: 'http://user:healthpw1@127.0.0.1:9/health', interval: '200ms', startPeriod: 0, retries: 1000 },
      },
    ],
  });
  await rig.ok(['start', config]);
  await waitFor(async () => JSON.parse((await rig.ok(['ls', '--json'])))[0]?.health === 'unhealthy', 'the health check to fail');

  const outputs: Record<string, string> = {
    'show --json': await rig.ok(['show', 'leaky', '--json']),
    show: await rig.ok(['show', 'leaky']),
    'events --json': await rig.ok(['events', '--json', '--lines', '200']),
    events: await rig.ok(['events', '--lines', '200']),
    'notify test': (await rig.cli(['notify', 'test', 'leaky', '--json'])).stdout,
  };
  outputs['events.log'] = readFileSync(join(rig.home, 'events.log'), 'utf8');
  outputs['daemon.log'] = readFileSync(join(rig.home, 'daemon.log'), 'utf8');
  for (const [where, text] of Object.entries(outputs)) {
    for (const secret of secrets) assert.ok(!text.includes(secret), `${where} shows ${secret}:\n${text}`);
  }
  const detail = JSON.parse(outputs['show --json'] as string) as { definition: { env: Record<string, string>; notify: { webhook: string | null; command: string | null }[]; health: { http: string } } };
  assert.equal(detail.definition.env['PATH_HINT'], 'visible-value', 'other variables stay readable');
  assert.equal(detail.definition.env['DATABASE_URL'], 'postgres://u:****@db/main');
  assert.equal(detail.definition.notify[0]?.webhook, 'http://127.0.0.1:9/…');
  assert.equal(detail.definition.health.http, 'http://user:****@127.0.0.1:9/health');
  const unhealthy = (JSON.parse(`[${outputs['events --json']?.trim().split('\n').join(',')}]`) as AgentEvent[]).find((event) => event.type === 'health');
  assert.match(String(unhealthy?.data['message']), /user:\*\*\*\*@127\.0\.0\.1/, 'the health message is kept, masked');
  assert.match(outputs['notify test'] as string, /command TOKEN=\*\*\*\* echo https:\/\/api\.telegram\.org\/…/);
  // The registry keeps what the app needs to run: masking is for display only.
  assert.match(readFileSync(join(rig.home, 'registry.json'), 'utf8'), /dbpass1/);
});

test('numbers: every size, count and duration is bounded where it is typed, with the flag or field named', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const huge = '99999999999999999999';
  const refused: [string[], RegExp][] = [
    [['start', 'sleep', '--max-memory', '99999999999999999999999T', '--', '100'], /field `maxMemory`: sizes are at most 1024T/],
    [['start', 'sleep', '--max-restarts', huge, '--', '100'], /field `maxRestarts`: expected a whole number from 1 to 1000000/],
    [['start', 'sleep', '--max-children', huge, '--', '100'], /field `maxChildren`: expected a whole number from 0 to 1000000/],
    [['start', 'sleep', '--kill-timeout', '99999999d', '--', '100'], /field `killTimeout`: durations are at most 24d/],
    [['events', '--lines', '20000'], /--lines expects a whole number from 1 to 10000, got '20000'/],
    [['logs', 'nope', '--lines', huge], /--lines expects a whole number from 0 to 10000000/],
    [['restart', 'all', '--wait', '--parallel', huge], /--parallel expects a whole number from 1 to 1000/],
    [['reap', '--dry-run', '--pid', `${huge}:1`], /--pid: '99999999999999999999:1' is not a pid:startTime/],
    [['startup', 'systemd', '--tasks-max', '1\nExecStartPre=/bin/true'], /--tasks-max expects a whole number from 1 to 4194304/],
    [['startup', 'systemd', '--memory-max', '1G\nExecStartPre=/bin/true'], /--memory-max expects a size/],
  ];
  for (const [args, message] of refused) {
    const result = await rig.cli(args);
    assert.equal(result.code, 1, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
    assert.doesNotMatch(result.stderr, /invalid request|protocol/, 'refused by the CLI, not at the protocol level');
  }
  const config = writeConfig(rig, { apps: [{ name: 'big', script: IDLE, maxMemory: '99999999999999999999999T', maxRestarts: 1e20, memoryBreachTicks: 1e20, health: { command: 'true', retries: 1e20 } }] });
  const bad = await rig.cli(['start', config]);
  assert.equal(bad.code, 1);
  for (const field of ['maxMemory', 'maxRestarts', 'memoryBreachTicks', 'health.retries']) assert.match(bad.stderr, new RegExp(`${field.replace('.', '\\.')}\`?: .*(at most|to 1000000)`), field);
  // Lists the daemon bounds are bounded in the config too.
  const lists = writeConfig(rig, {
    notify: Array.from({ length: 21 }, () => ({ command: 'true' })),
    reap: { unmanaged: [{ match: 'x'.repeat(1001) }] },
    apps: [{ name: 'lists', script: IDLE, watch: Array.from({ length: 101 }, (_, index) => `dir${index}`), notify: Array.from({ length: 21 }, () => ({ command: 'true' })) }],
  }, 'lists.config.json');
  const tooMany = await rig.cli(['start', lists]);
  assert.equal(tooMany.code, 1);
  assert.match(tooMany.stderr, /field `watch`: at most 100 paths, got 101/);
  assert.match(tooMany.stderr, /field `notify`: at most 20 hooks, got 21/);
  assert.doesNotMatch(tooMany.stderr, /invalid request/);
  const settings = writeConfig(rig, { notify: Array.from({ length: 21 }, () => ({ command: 'true' })), apps: [{ name: 'ok', script: IDLE }] }, 'settings.config.json');
  assert.match((await rig.cli(['start', settings])).stderr, /notify: at most 20 hooks, got 21/);
  const pattern = writeConfig(rig, { reap: { unmanaged: [{ match: 'x'.repeat(1001) }] }, apps: [{ name: 'ok', script: IDLE }] }, 'pattern.config.json');
  assert.match((await rig.cli(['start', pattern])).stderr, /reap\.unmanaged\[0\]\.match: at most 1000 characters, got 1001/);
  assert.match((await rig.cli(['reap', '--unmanaged', '--match', 'x'.repeat(1001), '--dry-run'])).stderr, /--match: at most 1000 characters/);
  assert.deepEqual(await rig.ls(), [], 'nothing was started');
});

/** Runs the CLI with its stdout a pipe whose reader is already gone, as in `agentpm ls | head -0`. */
function withClosedStdout(rig: Rig, args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'], cwd: ROOT });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`agentpm ${args.join(' ')} did not end after its reader went away`));
    }, 20_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

test('EPIPE: every command whose reader went away ends quietly with status 141, following ones too', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'quiet']);
  await waitFor(() => readFileSync(join(rig.home, 'logs', 'quiet.out.log'), 'utf8').includes('idle'), 'the app to log a line');
  for (const args of [['daemon', 'status'], ['ls'], ['ls', '--json'], ['show', 'quiet'], ['events'], ['events', '--follow'], ['logs', 'quiet'], ['logs', 'quiet', '--follow']]) {
    const result = await withClosedStdout(rig, args);
    assert.equal(result.stderr, '', `${args.join(' ')} printed: ${result.stderr}`);
    assert.equal(result.code, 141, args.join(' '));
  }
});

test('start <name>: a known app starts with its saved definition; options that would change it are refused; a file comes first, a command last', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', 'sleep', '--name', 'bot', '--', '300']);
  await rig.ok(['stop', 'bot']);
  const started = await rig.cli(['start', 'bot']);
  assert.equal(started.code, 0, started.stderr);
  const detail = await rig.show('bot');
  assert.equal(detail.status, 'online');
  assert.equal(detail.definition.script, 'sleep', 'the saved definition, not `script: bot`');
  assert.deepEqual(detail.definition.args, ['300']);
  await rig.ok(['restart', 'bot']);

  const twice = await rig.cli(['start', 'bot']);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /bot already running; use `agentpm restart bot`/);

  for (const args of [['--max-memory', '1G'], ['--', '5'], ['--env', 'A=1'], ['--no-autorestart']]) {
    const changed = await rig.cli(['start', 'bot', ...args]);
    assert.equal(changed.code, 1, args.join(' '));
    assert.match(changed.stderr, /bot is an app agentpm knows: .* cannot apply\. To change its definition, start its script again with the new options and --replace \(agentpm start sleep --name bot \.\.\. --replace\)/);
  }
  assert.equal((await rig.show('bot')).definition.maxMemoryBytes, null, 'a refused start changed nothing');

  const pid = (await rig.app('bot')).pid;
  const replaced = await rig.ok(['start', 'bot', '--replace']);
  assert.match(replaced, /restarted \(--replace\): bot/);
  const after = await rig.show('bot');
  assert.notEqual(after.pid, pid);
  assert.deepEqual([after.definition.script, after.definition.args], ['sleep', ['300']]);

  // A known name that is also a command: the app. With --name naming another app: the command.
  await rig.ok(['start', 'sleep', '--', '300']);
  assert.match((await rig.cli(['start', 'sleep'])).stderr, /sleep already running/);
  await rig.ok(['start', 'sleep', '--name', 'nap', '--', '300']);
  assert.equal((await rig.show('nap')).definition.script, 'sleep');

  // An existing file comes before a known name.
  const dir = join(rig.home, 'project');
  mkdirSync(dir);
  writeFileSync(join(dir, 'worker'), '#!/bin/sh\nexec sleep 300\n');
  chmodSync(join(dir, 'worker'), 0o755);
  await rig.ok(['start', 'sleep', '--name', 'worker', '--', '300']);
  await rig.ok(['stop', 'worker']);
  const file = await rig.cli(['start', 'worker'], { cwd: dir });
  assert.equal(file.code, 0, file.stderr);
  assert.equal((await rig.show('worker')).definition.script, join(dir, 'worker'));
});

test('config loading is bounded: an await that never settles, a hang, process.exit, timers and output of a config', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = join(rig.home, 'configs');
  mkdirSync(dir);
  const file = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  const apps = `export default { apps: [{ name: 'cfg', script: 'sleep', args: ['300'] }] };\n`;

  const never = await rig.cli(['start', file('never.config.mts', `await new Promise<void>(() => {});\n${apps}`)]);
  assert.equal(never.code, 1, 'not exit 0 printing nothing');
  assert.match(never.stderr, /never\.config\.mts never finished loading: it awaits a promise that nothing can settle/);

  const hangStarted = Date.now();
  const hang = await rig.cli(['start', file('hang.config.mjs', `await new Promise(() => setInterval(() => {}, 1000));\n${apps}`)], { env: { AGENTPM_CONFIG_TIMEOUT: '1s' }, timeoutMs: 20_000 });
  assert.equal(hang.code, 1);
  assert.match(hang.stderr, /hang\.config\.mjs did not finish loading within 1s; nothing was started\..*AGENTPM_CONFIG_TIMEOUT/);
  assert.ok(Date.now() - hangStarted < 15_000, 'bounded by the timeout');

  const exits = await rig.cli(['start', file('exit.config.mjs', `process.exit(0);\n${apps}`)]);
  assert.equal(exits.code, 1);
  assert.match(exits.stderr, /exit\.config\.mjs exited with code 0 before it exported its apps; nothing was started\. A config must not call process\.exit\(\)/);
  assert.equal(rig.daemonPid(), undefined, 'a config that fails to load starts no daemon');
  assert.deepEqual(rig.tagged(), []);

  const badTimeout = await rig.cli(['start', join(dir, 'exit.config.mjs')], { env: { AGENTPM_CONFIG_TIMEOUT: 'forever' } });
  assert.match(badTimeout.stderr, /AGENTPM_CONFIG_TIMEOUT: expected a duration/);

  // A config that leaves a timer running and prints: the command still ends, and --json stays JSON.
  const busy = await rig.cli(['start', file('busy.config.mjs', `setInterval(() => {}, 1000);\nconsole.log('hello from the config');\n${apps}`), '--json'], { timeoutMs: 20_000 });
  assert.equal(busy.code, 0, busy.stderr);
  assert.deepEqual((JSON.parse(busy.stdout) as AppSummary[]).map((app) => app.name), ['cfg']);
  assert.match(busy.stderr, /hello from the config/);
});

test('large starts: the environment is sent once, starts larger than a request go in several, what cannot fit is refused up front', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // 20 apps, 120 KB of exported variables: 2.4 MB when every app carried the environment.
  const exported = Object.fromEntries(Array.from({ length: 4 }, (_, index) => [`EXPORTED_${index}`, String(index).repeat(30 * 1024)]));
  const twenty = writeConfig(rig, { apps: Array.from({ length: 20 }, (_, index) => ({ name: `env${index}`, script: 'sleep', args: ['300'] })) }, 'twenty.config.json');
  const first = await rig.cli(['start', twenty], { env: exported });
  assert.equal(first.code, 0, first.stderr);
  const list = await rig.ls();
  assert.equal(list.filter((app) => app.status === 'online').length, 20);
  const root = readProcess(list[19]?.pid ?? 0);
  assert.equal(root?.env.get('EXPORTED_3')?.length, 30 * 1024, 'each app starts from the caller\'s environment');

  // 32 apps of 140 KB each: 4.5 MB of definitions, more than one request holds.
  const blob = (index: number): Record<string, string> => ({ BLOB_A: `${index}`.padEnd(70 * 1024, 'a'), BLOB_B: `${index}`.padEnd(70 * 1024, 'b') });
  const many = writeConfig(rig, { apps: Array.from({ length: 32 }, (_, index) => ({ name: `big${index}`, script: 'sleep', args: ['300'], env: blob(index) })) }, 'many.config.json');
  const second = await rig.cli(['start', many], { timeoutMs: 60_000 });
  assert.equal(second.code, 0, second.stderr);
  const all = await rig.ls();
  assert.equal(all.filter((app) => app.name.startsWith('big') && app.status === 'online').length, 32);
  assert.equal(readProcess(all.find((app) => app.name === 'big31')?.pid ?? 0)?.env.get('BLOB_A')?.slice(0, 2), '31');

  const huge = writeConfig(rig, { apps: [{ name: 'huge', script: 'sleep', args: ['300'], env: { BLOB: 'x'.repeat(5 * 1024 * 1024) } }] }, 'huge.config.json');
  const refused = await rig.cli(['start', huge]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /the definition of huge is 5\.0 MB; .* does not fit in one request to the daemon \(at most 4\.0 MB\)\. Keep large data out of its args and env/);
  assert.doesNotMatch(refused.stderr, /EPIPE/);
  assert.equal((await rig.ls()).some((app) => app.name === 'huge'), false);
});

test('a request the daemon refuses as too large fails with the daemon\'s own message, not write EPIPE', async (t) => {
  // A daemon with a smaller limit (another version): it reads part of the request, answers, closes.
  const home = mkdtempSync(join(tmpdir(), 'agentpm-frame-'));
  const server = createServer((socket) => {
    let greeted = false;
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      if (!greeted) {
        greeted = true;
        const id = (JSON.parse(chunk.toString().split('\n')[0] ?? '{}') as { id: number }).id;
        socket.write(`${JSON.stringify({ id, ok: true, result: { version: 'test', protocol: 2, pid: 1 } })}\n`);
        return;
      }
      socket.end(`${JSON.stringify({ id: null, ok: false, error: { code: 'frame-too-large', message: 'a request larger than 1 MiB reached the daemon; the connection is closed' } })}\n`);
      socket.destroySoon();
    });
  });
  await new Promise<void>((resolve) => server.listen(homePaths(home).socket, resolve));
  t.after(() => {
    server.close();
    rmSync(home, { recursive: true, force: true });
  });
  const client = await DaemonClient.connect(homePaths(home), { autostart: false });
  t.after(() => client.close());
  await assert.rejects(client.request({ type: 'settings', settings: { unmanaged: [{ match: 'x'.repeat(3 * 1024 * 1024), olderThanMs: 0 }] } }), (error: unknown) => error instanceof AgentpmError && error.code === 'frame-too-large' && /larger than 1 MiB reached the daemon/.test(error.message));
});

test('secrets: reap lists leaked processes with the credentials of their command lines masked', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // An orphan of ours (reparented to init) whose command line carries a token.
  const out = spawnSync('sh', ['-c', `sh -c 'sleep 6055; :' leak --token reapsecret1 >/dev/null 2>&1 & echo $!`], { encoding: 'utf8', env: rig.env });
  const pid = Number(out.stdout.trim());
  rig.ownPids.add(pid);
  await waitFor(() => readProcess(pid)?.ppid === 1 || undefined, 'the orphan to be reparented');
  const args = ['reap', '--unmanaged', '--match', '^sh -c sleep 6055; : leak --token reapsecret1$', '--older-than', '0', '--dry-run'];
  const json = await rig.cli([...args, '--json']);
  const result = JSON.parse(json.stdout) as ReapResult;
  assert.deepEqual(result.found.map((item) => item.pid), [pid, ...result.found.slice(1).map((item) => item.pid)], 'found by the real command line');
  assert.equal(result.found[0]?.cmd, 'sh -c sleep 6055; : leak --token ****');
  const text = await rig.cli(args);
  assert.ok(!`${json.stdout}${text.stdout}`.includes('reapsecret1'), text.stdout);
});
