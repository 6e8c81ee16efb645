import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { MAX_FRAME_BYTES, PROTOCOL_VERSION, type TickCost } from '../src/protocol.js';
import { liveProcesses } from './helpers/procs.js';
import { hello, Raw } from './helpers/raw.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

test('the daemon survives malformed, unknown, oversized, half-written and abandoned requests', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const pid = rig.daemonPid();
  assert.ok(pid);
  const socket = join(rig.home, 'agentpm.sock');

  const raw = await Raw.open(socket);
  const bad = [
    'not json at all',
    '{"id": 1, "type": "ls"',
    '[1,2,3]',
    '"a string"',
    'null',
    '{"type":"ls"}',
    '{"id":2,"type":"ls"}', // before hello
    '{"id":3,"type":"no-such-request"}',
    '{"id":"x","type":"hello","protocol":1,"version":"t"}',
    '{"id":4,"type":"start","apps":[{"name":"../../etc"}],"replace":false}',
    '{"id":5,"type":"signal","name":"a","signal":"SIGNOPE"}',
    '{"id":6,"type":"stop","target":{"names":[]}}',
    '\u0000\u0001\u0002',
  ];
  raw.send(`${bad.join('\n')}\n`);
  const replies = await raw.reply(bad.length);
  assert.ok(replies.every((reply) => reply['ok'] === false), 'each bad frame gets an error reply');
  assert.ok(replies.every((reply) => typeof (reply['error'] as { code?: unknown }).code === 'string'));
  assert.equal((replies[6]?.['error'] as { message: string }).message, 'the first request on a connection must be hello');
  assert.equal(raw.closed, false, 'bad frames do not close the connection');

  // After hello on the same connection, requests are served. (Before hello a connection may send only
  // a few KiB: a deeply nested 200 KB line is answered only once the client has said hello.)
  raw.send(hello(10));
  raw.send(`${'['.repeat(100_000)}${']'.repeat(100_000)}\n`);
  raw.send('{"id":11,"type":"ls"}\n');
  const served = await raw.reply(bad.length + 3);
  assert.ok(served.slice(bad.length).some((reply) => (reply['error'] as { code?: string } | undefined)?.code === 'bad-request'));
  assert.deepEqual(served.at(-1), { id: 11, ok: true, result: [] });

  // An oversized frame (> MAX_FRAME_BYTES without a newline) gets an error and a closed connection.
  const big = await Raw.open(socket);
  big.send(`{"id":1,"type":"hello","pad":"${'x'.repeat(MAX_FRAME_BYTES + 10)}`);
  const [tooLarge] = await big.reply(1);
  assert.equal((tooLarge?.['error'] as { code: string }).code, 'frame-too-large');
  await waitFor(() => big.closed, 'the oversized connection to close', 5000);

  // Half-written frames and abrupt disconnects, many times over.
  for (let index = 0; index < 50; index += 1) {
    const conn = await Raw.open(socket);
    conn.send(index % 2 === 0 ? '{"id":1,"type":"hel' : `${hello(1)}{"id":2,"type":"ls"}\n{"id":3,"type":"show","name":"x"`);
    conn.socket.destroy();
  }

  const ls = await rig.cli(['ls', '--json']);
  assert.equal(ls.code, 0, ls.stderr);
  assert.deepEqual(JSON.parse(ls.stdout), []);
  assert.equal(rig.daemonPid(), pid, 'the same daemon is still serving');
  raw.socket.destroy();
});

test('a client of another protocol version is told what to do', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const raw = await Raw.open(join(rig.home, 'agentpm.sock'));
  raw.send(hello(1, PROTOCOL_VERSION + 1));
  const [reply] = await raw.reply(1);
  const error = reply?.['error'] as { code: string; message: string };
  assert.equal(error.code, 'protocol-mismatch');
  assert.match(error.message, /protocol/);
  assert.match(error.message, /kill \d+/);
  raw.socket.destroy();
});

test('home 0700 and socket 0600; a group-writable home is refused with the fix', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  assert.equal(statSync(rig.home).mode & 0o777, 0o700);
  assert.equal(statSync(join(rig.home, 'agentpm.sock')).mode & 0o777, 0o600);
  await rig.ok(['daemon', 'stop']);

  chmodSync(rig.home, 0o770);
  const refused = await rig.cli(['ls']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /writable by group or others/);
  assert.match(refused.stderr, new RegExp(`chmod 700 ${rig.home}`));
  assert.equal(rig.daemonPid(), undefined, 'no daemon runs in an unsafe home');
  chmodSync(rig.home, 0o700);
});

test('daemon status --json; daemon stop; a stale socket is cleaned up; parallel CLIs start one daemon', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const down = await rig.cli(['daemon', 'status', '--json']);
  assert.equal(down.code, 1);
  assert.deepEqual(JSON.parse(down.stdout), { running: false, home: rig.home });

  // Four commands at once with no daemon: all succeed, and exactly one daemon serves them.
  const results = await Promise.all([1, 2, 3, 4].map(() => rig.cli(['ls', '--json'])));
  assert.ok(results.every((result) => result.code === 0), results.map((result) => result.stderr).join('\n'));
  // Racing launchers may each have spawned a daemon; all but one lose the lock and exit at once.
  const daemons = await waitFor(() => {
    const found = liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === rig.home && proc.cmd.includes('dist/daemon/main.js'));
    return found.length === 1 ? found : undefined;
  }, 'exactly one daemon', 5000);

  const status = JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as Record<string, unknown>;
  assert.equal(status['running'], true);
  assert.equal(status['pid'], daemons[0]?.pid);
  assert.equal(status['home'], rig.home);
  assert.equal(typeof status['version'], 'string');
  assert.equal(typeof status['uptimeMs'], 'number');
  const cost = status['tickCost'] as TickCost;
  assert.ok(cost.samples >= 1 && cost.processes > 1 && cost.medianMs > 0 && cost.maxMs >= cost.medianMs, `the tick's cost is reported: ${JSON.stringify(cost)}`);
  assert.match(await rig.ok(['daemon', 'status']), /monitor: tick every 200 ms, costing [\d.]+ ms \(median; max [\d.]+\) over \d+ processes; daemon RSS [\d.]+ MB/);

  // SIGKILL leaves the socket file behind: the next command must clean it up and relaunch.
  process.kill(daemons[0]?.pid as number, 'SIGKILL');
  await waitFor(() => rig.daemonPid() === undefined, 'the daemon to die');
  assert.ok(existsSync(join(rig.home, 'agentpm.sock')), 'a stale socket file remains');
  await rig.ok(['ls']);
  const relaunched = rig.daemonPid();
  assert.ok(relaunched && relaunched !== daemons[0]?.pid);

  await rig.ok(['daemon', 'stop']);
  assert.equal(rig.daemonPid(), undefined);
  assert.equal(existsSync(join(rig.home, 'agentpm.sock')), false, 'a clean stop removes the socket');
});

test('a daemon refuses to start beside another one for the same home', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const second = spawn(process.execPath, [join(FIXTURES, '..', '..', 'dist', 'daemon', 'main.js')], { env: rig.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  second.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => second.on('exit', resolve));
  assert.equal(code, 3);
  assert.match(stderr, /another agentpm daemon already serves/);
  const ls = await rig.cli(['ls']);
  assert.equal(ls.code, 0, 'the first daemon still serves');
});

test('a daemon whose home was deleted under it re-creates its socket, so commands reach it again', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', join(FIXTURES, 'idle.mjs'), '--name', 'survivor']);
  const daemon = rig.daemonPid();
  const { rmSync } = await import('node:fs');
  rmSync(rig.home, { recursive: true, force: true });
  const list = await rig.ls();
  assert.deepEqual(list.map((app) => [app.name, app.status]), [['survivor', 'online']]);
  assert.equal(rig.daemonPid(), daemon, 'the same daemon answers: no second one was started');
  assert.equal(statSync(rig.home).mode & 0o777, 0o700);
});

test('the daemon and its log relay run with a 1 MB young generation; AGENTPM_DAEMON_NODE_FLAGS adds flags to the daemon alone', async (t) => {
  // V8's default young generation grows to 2 x 16 MB under the daemon's allocation rate and stays there:
  // a soak's RSS climbed in 16 MB steps with a flat live heap (bench/RESULTS.md, "Soak").
  const rig = await Rig.create({ AGENTPM_DAEMON_NODE_FLAGS: '--trace-gc not-a-flag' });
  t.after(() => rig.dispose());
  await rig.ok(['start', join(FIXTURES, 'idle.mjs'), '--name', 'idle']);
  const relay = await waitFor(() => rig.relayPid(), 'the log relay');
  const commandOf = (pid: number | undefined): string[] => liveProcesses((proc) => proc.pid === pid)[0]?.cmd.split(' ') ?? [];
  const daemon = commandOf(rig.daemonPid());
  assert.ok(daemon.includes('--max-semi-space-size=1'), `the daemon's command: ${daemon.join(' ')}`);
  assert.ok(daemon.includes('--trace-gc') && !daemon.includes('not-a-flag'), `the daemon's command: ${daemon.join(' ')}`);
  const relayCommand = commandOf(relay);
  assert.ok(relayCommand.includes('--max-semi-space-size=1') && !relayCommand.includes('--trace-gc'), `the relay's command: ${relayCommand.join(' ')}`);
  const app = rig.tagged().find((proc) => proc.app === 'idle');
  assert.ok(app, 'the app runs');
  assert.ok(!app.cmd.split(' ').some((word) => word.startsWith('--')), `the app's command has none of the daemon's flags: ${app.cmd}`);
});
