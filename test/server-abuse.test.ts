/**
 * Clients that would take the daemon down: ones that pipeline requests and never read the replies,
 * subscribers that stop reading, connections that never say hello or hog descriptors, a half-closed
 * client, and a dead socket file where the daemon's socket should be. Raw clients (node:net) against a
 * real daemon started through the CLI; what is asserted is behaviour (figures are the bench's job).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlivePid, liveProcesses } from './helpers/procs.js';
import { hello, Raw } from './helpers/raw.js';
import { CLI, FIXTURES, Rig, waitFor } from './helpers/rig.js';
import { Tmux, tmuxTerm } from './helpers/tmux.js';

const IDLE = join(FIXTURES, 'idle.mjs');
const socketOf = (rig: Rig): string => join(rig.home, 'agentpm.sock');
const eventCount = (rig: Rig): number => {
  try {
    return readFileSync(join(rig.home, 'events.log'), 'utf8').split('\n').length - 1;
  } catch {
    return 0;
  }
};
const daemonLog = (rig: Rig): string => {
  try {
    return readFileSync(join(rig.home, 'daemon.log'), 'utf8');
  } catch {
    return '';
  }
};

/** Opens `count` greeted connections, one after the other. */
async function openMany(path: string, count: number): Promise<Raw[]> {
  const opened: Raw[] = [];
  for (let index = 0; index < count; index += 1) {
    const raw = await Raw.open(path);
    opened.push(raw);
    await raw.greet();
  }
  return opened;
}

test('a client that pipelines requests and reads nothing is no longer read, and gets every reply once it reads', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const raw = await Raw.open(socketOf(rig));
  await raw.greet();
  raw.socket.pause();
  // 80,000 requests (2 MB): far more than the kernel and the daemon's bounds hold.
  const count = 80_000;
  const requests: string[] = [];
  for (let id = 2; id < count + 2; id += 1) requests.push(`{"id":${id},"type":"ls"}\n`);
  raw.send(requests.join(''));
  // The daemon stops reading once its unread replies pile up: most of the requests stay on this side.
  let previous = -1;
  const stalled = await waitFor(
    async () => {
      const unsent = raw.socket.writableLength;
      const same = unsent === previous;
      previous = unsent;
      if (!same) await sleep(500);
      return same && unsent > 1024 * 1024 ? unsent : undefined;
    },
    'the daemon to stop reading the pipelining client',
    20_000,
  );
  assert.ok(stalled > 1024 * 1024, `${stalled} bytes of requests wait unread`);

  // Meanwhile everyone else is served.
  const started = Date.now();
  assert.deepEqual(await rig.ls(), []);
  assert.ok(Date.now() - started < 5000, `ls answered in ${Date.now() - started} ms`);

  // Once the client reads, every request is answered, once.
  raw.socket.resume();
  await raw.reply(count + 1, 60_000);
  const ids = new Set(raw.replies.map((reply) => reply['id']));
  assert.equal(ids.size, count + 1);
  assert.ok(raw.replies.every((reply) => reply['ok'] === true));
  raw.socket.destroy();
});

/**
 * Runs an app that exits at once with no restart delay (about a thousand events a second, each bounded
 * by the crash loop's own pace) until `done`, then deletes it.
 */
async function crashLoopUntil(rig: Rig, done: () => boolean, what: string): Promise<void> {
  const script = join(rig.home, 'crash.sh');
  writeFileSync(script, 'exit 1\n');
  const name = `crash-loop-with-a-long-name-${'x'.repeat(30)}`;
  try {
    await rig.ok(['start', script, '--name', name, '--interpreter', 'bash', '--restart-delay', '0']);
    await waitFor(done, what, 90_000, 100);
  } finally {
    await rig.cli(['delete', name]);
  }
}

test('a subscriber that stops reading is dropped with a message that events --follow shows', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const follower = spawn(process.execPath, [CLI, 'events', '--follow', '--lines', '1'], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
  rig.ownPids.add(follower.pid as number);
  let stdout = '';
  let stderr = '';
  follower.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  follower.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => follower.on('exit', resolve));
  await waitFor(() => stdout.includes('started'), 'events --follow to print the backlog');
  // A stopped terminal (Ctrl-Z): the follower reads nothing while a crash loop makes events.
  process.kill(follower.pid as number, 'SIGSTOP');
  try {
    await crashLoopUntil(rig, () => daemonLog(rig).includes('(slow-consumer)'), 'the daemon to drop the stalled follower');
  } finally {
    process.kill(follower.pid as number, 'SIGCONT');
  }
  const code = await exited;
  assert.equal(code, 1, stderr);
  assert.match(stderr, /agentpm: this client fell behind: \d+ KiB of events waited unread, so the daemon closed its connection; reconnect to follow again/);
  assert.ok(stdout.split('\n').length > 100, 'the backlog sent before the drop was printed first');
  // The daemon is fine, and says what it did.
  await rig.ok(['ls']);
  assert.match(daemonLog(rig), /closing a client connection \(slow-consumer\): this client fell behind/);
});

test('monit that stops reading is dropped as a slow consumer, says why, and reconnects', async (t) => {
  const rig = await Rig.create();
  let tmux: Tmux | null = null;
  let monit: number | undefined;
  t.after(async () => {
    try {
      if (monit !== undefined && isAlivePid(monit)) process.kill(monit, 'SIGCONT');
      await tmux?.kill();
    } finally {
      await rig.dispose();
    }
  });
  await rig.ok(['start', IDLE, '--name', 'idle']);
  tmux = await Tmux.start({ cols: 200, rows: 30, env: { AGENTPM_HOME: rig.home, LANG: 'C.UTF-8', PS1: '$ ', NO_COLOR: '1' } });
  // Without job control, a stopped monit stays the terminal's foreground job: SIGCONT resumes it as is.
  await tmux.type(`set +m; TERM=${tmuxTerm()} ${process.execPath} ${CLI} monit`);
  await tmux.keys('Enter');
  await tmux.waitForScreen((screen) => /^. idle +online /m.test(screen), 'monit showing the app');
  monit = await waitFor(() => liveProcesses((proc) => proc.env.get('AGENTPM_HOME') === rig.home && proc.cmd.includes(`${CLI} monit`))[0]?.pid, 'the monit process');
  // A dashboard that does not read for a while (stopped here; a stalled terminal does the same).
  process.kill(monit, 'SIGSTOP');
  try {
    await crashLoopUntil(rig, () => daemonLog(rig).includes('(slow-consumer)'), 'the daemon to drop the stalled monit');
  } finally {
    process.kill(monit, 'SIGCONT');
  }
  await tmux.waitForScreen((screen) => screen.includes('connection lost: this client fell behind'), 'monit to say why it lost the connection');
  // It reconnects by itself and is live again.
  await tmux.waitForScreen((screen) => !screen.includes('daemon unreachable') && /^. idle +online /m.test(screen), 'monit connected again');
  await tmux.keys('q');
  await waitFor(() => !isAlivePid(monit as number), 'monit to quit');
});

test('past the connection cap a client is refused with a clear error; silent connections are closed after the hello timeout', async (t) => {
  const rig = await Rig.create();
  const held: Raw[] = [];
  t.after(async () => {
    held.forEach((raw) => raw.socket.destroy());
    await rig.dispose();
  });
  await rig.ok(['daemon', 'start']);
  const path = socketOf(rig);
  held.push(...(await openMany(path, 256)));

  const extra = await Raw.open(path);
  await waitFor(() => extra.closed, 'the extra connection to be closed', 5000);
  assert.equal(extra.farewell()?.code, 'daemon-busy');
  assert.match(extra.farewell()?.message ?? '', /already serves 256 connections/);
  const refused = await rig.cli(['ls']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^agentpm: the daemon already serves 256 connections, the most it takes at once; close idle ones/);
  assert.match(daemonLog(rig), /refused a connection: the daemon already serves 256 connections/);

  // Connections that are served go on being served.
  held[0]?.send('{"id":7,"type":"ls"}\n');
  await waitFor(() => held[0]?.replies.some((reply) => reply['id'] === 7 && reply['ok'] === true), 'a held connection to be answered');

  // Freed slots are taken again; a connection that never says hello is closed with the reason.
  for (const raw of held.splice(0, 10)) raw.socket.destroy();
  await waitFor(async () => (await rig.cli(['ls'])).code === 0, 'a freed slot to serve the CLI');
  const silent = await Raw.open(path);
  held.push(silent);
  const opened = Date.now();
  await waitFor(() => silent.closed, 'the silent connection to be closed', 10_000);
  assert.ok(Date.now() - opened >= 4000, `closed after ${Date.now() - opened} ms, not before the timeout`);
  assert.deepEqual(silent.farewell(), { code: 'client-timeout', message: 'no hello within 5s; the connection is closed' });
  assert.deepEqual(await rig.ls(), []);
});

test('past the total output budget the client with the most unread output is dropped', async (t) => {
  const rig = await Rig.create();
  const held: Raw[] = [];
  t.after(async () => {
    held.forEach((raw) => raw.socket.destroy());
    await rig.dispose();
  });
  await rig.ok(['daemon', 'start']);
  // A full event ring makes each `events` reply about 200 KB.
  await crashLoopUntil(rig, () => eventCount(rig) >= 1000, 'a full event ring');
  // Each client holds at most what its own bounds allow (about 4 MB here); sixteen of them together
  // would hold more than the daemon's total budget for unsent output (32 MiB).
  for (let index = 0; index < 16; index += 1) {
    const raw = await Raw.open(socketOf(rig));
    held.push(raw);
    await raw.greet();
    raw.socket.pause();
    const requests: string[] = [];
    for (let id = 2; id < 102 + index; id += 1) requests.push(`${JSON.stringify({ id, type: 'events', app: null, limit: 1000 })}\n`);
    raw.send(requests.join(''));
  }
  await waitFor(() => /closing a client connection \(slow-consumer\): this client fell behind: \d+ KiB of replies and events waited unread, the most of any client/.test(daemonLog(rig)), 'the daemon to drop a client', 30_000, 100);
  for (const raw of held) raw.socket.resume();
  const dropped = await waitFor(() => held.find((raw) => raw.farewell()?.code === 'slow-consumer'), 'the dropped client to read why', 30_000);
  assert.ok(dropped.replies.length > 1, 'it got the replies sent before the drop first');
  assert.deepEqual(await rig.ls(), []);
});

test('a connection may send only a few KiB before hello; a request left half-sent is closed after a while', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['daemon', 'start']);
  const early = await Raw.open(socketOf(rig));
  early.send(`{"id":1,"type":"hello","pad":"${'x'.repeat(64 * 1024)}`);
  await waitFor(() => early.closed, 'the connection to be closed');
  assert.equal(early.farewell()?.code, 'frame-too-large');
  assert.match(early.farewell()?.message ?? '', /at most 4 KiB before its hello/);

  const trickle = await Raw.open(socketOf(rig));
  await trickle.greet();
  trickle.send('{"id":2,"type":');
  const sent = Date.now();
  await waitFor(() => trickle.closed, 'the half-sent request to time out', 20_000);
  assert.ok(Date.now() - sent >= 9000, `closed after ${Date.now() - sent} ms`);
  assert.deepEqual(trickle.farewell(), { code: 'client-timeout', message: 'a request was left incomplete for 10s; the connection is closed' });
  assert.deepEqual(await rig.ls(), []);
});

test('a client that half-closes after its request still gets the reply', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await rig.ok(['start', IDLE, '--name', 'idle', '--kill-timeout', '2s']);
  const before = await rig.app('idle');
  const raw = await Raw.open(socketOf(rig));
  raw.send(`${hello(1)}{"id":2,"type":"restart","target":{"names":["idle"]}}\n`);
  raw.socket.end();
  await waitFor(() => raw.closed, 'the daemon to answer and end the connection', 15_000);
  assert.deepEqual(
    raw.replies.find((reply) => reply['id'] === 2),
    { id: 2, ok: true, result: { apps: ['idle'] } },
  );
  assert.equal(raw.ended, true, 'the daemon ended its side after the last reply');
  const after = await rig.app('idle');
  assert.notEqual(after.pid, before.pid, 'the restart happened');
});

test('with the descriptor table nearly full of clients, supervision goes on and the CLI is told why', async (t) => {
  const rig = await Rig.create();
  const held: Raw[] = [];
  t.after(async () => {
    held.forEach((raw) => raw.socket.destroy());
    await rig.dispose();
  });
  await rig.ok(['start', IDLE, '--name', 'worker']);
  const daemon = rig.daemonPid() as number;
  const first = (await rig.app('worker')).pid as number;
  // Node raises its soft limit to the hard one at start; lower it, as a smaller system limit would be.
  const limit = 160;
  const lowered = spawnSync('prlimit', ['--pid', String(daemon), `--nofile=${limit}:${limit}`], { encoding: 'utf8' });
  assert.equal(lowered.status, 0, lowered.stderr);
  // The scan keeps /proc/<pid>/stat of every process open (a share of the limit): at the next scan it
  // follows the lowered limit and closes what is beyond it, or no client could ever be admitted again.
  await waitFor(() => readdirSync(`/proc/${daemon}/fd`).length < limit - 64, 'the daemon to close kept descriptors beyond its new budget');

  // Clients open connections until the daemon refuses them.
  let refusal: { code: string; message: string } | undefined;
  for (let index = 0; index < limit && refusal === undefined; index += 1) {
    const raw = await Raw.open(socketOf(rig));
    held.push(raw);
    raw.send(hello(1));
    await waitFor(() => raw.replies.length > 0 || raw.closed, 'an answer to the connection');
    refusal = raw.farewell();
  }
  assert.equal(refusal?.code, 'daemon-busy', 'the daemon refuses before its descriptors run out');
  assert.match(refusal?.message ?? '', new RegExp(`of its ${limit} file descriptors open and keeps the last 64 for supervising apps`));
  const cli = await rig.cli(['ls']);
  assert.equal(cli.code, 1);
  assert.match(cli.stderr, /^agentpm: the daemon has \d+ of its 160 file descriptors open and keeps the last 64 for supervising apps; close idle connections/);

  // The app crashes while clients hold every descriptor they may have: it is restarted all the same.
  process.kill(first, 'SIGKILL');
  const second = await waitFor(
    () => rig.tagged().find((proc) => proc.app === 'worker' && proc.pid !== first && proc.cmd.includes('idle.mjs'))?.pid,
    'the daemon to restart the crashed app',
    15_000,
  );
  assert.ok(isAlivePid(second));
  assert.match(daemonLog(rig), /refused a connection: the daemon has \d+ of its 160 file descriptors open/);

  // Once clients let go, commands work again, restart included.
  for (const raw of held.splice(0)) raw.socket.destroy();
  const back = await waitFor(async () => (await rig.cli(['restart', 'worker'])).code === 0, 'a restart through the CLI');
  assert.ok(back);
  const worker = await rig.app('worker');
  assert.equal(worker.status, 'online');
  assert.ok(worker.pid !== first && worker.pid !== second, 'restarted again, by the CLI');
  assert.equal(rig.daemonPid(), daemon);
});

/** Puts a dead socket file at `path`: a socket bound there by a listener that then went away. */
async function deadSocketAt(path: string): Promise<void> {
  const spare = `${path}.dead`;
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(spare, resolve));
  rmSync(path, { force: true });
  renameSync(spare, path);
  // Closing unlinks the path it bound (gone now), not the renamed file, which is left dead.
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

test('a dead socket file or another file at the socket path is replaced by the running daemon; the CLI names a dead one and a silent daemon', async (t) => {
  const rig = await Rig.create();
  t.after(async () => {
    const pid = rig.daemonPid();
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
    await rig.dispose();
  });
  await rig.ok(['start', IDLE, '--name', 'kept']);
  const daemon = rig.daemonPid() as number;
  const path = socketOf(rig);

  await deadSocketAt(path);
  const started = Date.now();
  assert.deepEqual((await rig.ls()).map((app) => app.name), ['kept']);
  assert.ok(Date.now() - started < 6000, `answered after ${Date.now() - started} ms`);
  assert.equal(rig.daemonPid(), daemon, 'the same daemon answers');
  assert.match(daemonLog(rig), /the socket file .* was missing or not this daemon's; re-created it/);

  // A regular file there: the CLI refuses to send anything to it (see trust.test.ts); the daemon puts
  // its socket back in its place.
  rmSync(path);
  writeFileSync(path, 'not a socket');
  await waitFor(() => lstatSync(path).isSocket(), 'the daemon to replace the file with its socket', 6000);
  assert.deepEqual((await rig.ls()).map((app) => app.name), ['kept']);

  // A daemon that cannot replace it (hung): the CLI says what is wrong instead of "did not answer".
  process.kill(daemon, 'SIGSTOP');
  await deadSocketAt(path);
  const hung = await rig.cli(['ls']);
  assert.equal(hung.code, 1);
  assert.match(hung.stderr, new RegExp(`${path.replaceAll('.', '\\.')} is a dead socket file \\(nothing listens on it\\), and the daemon \\(pid ${daemon}\\) that holds .* did not replace it`));
  assert.match(hung.stderr, new RegExp(`kill ${daemon}`));

  // Its own socket back in place but the daemon still stopped: the kernel accepts the connection for
  // it, and the CLI gives up on hello after a bound instead of waiting for ever.
  rmSync(path);
  process.kill(daemon, 'SIGCONT');
  await waitFor(async () => (await rig.cli(['ls'])).code === 0, 'the daemon to re-create its socket');
  process.kill(daemon, 'SIGSTOP');
  const silent = await rig.cli(['ls']);
  assert.equal(silent.code, 1);
  assert.match(silent.stderr, new RegExp(`the daemon \\(pid ${daemon}\\) accepted the connection on .* but did not answer within 10s: it may be stopped or hung`));
  process.kill(daemon, 'SIGCONT');
  assert.deepEqual((await rig.ls()).map((app) => app.name), ['kept']);
  assert.equal(rig.daemonPid(), daemon);
});
