/**
 * The log relay, with real processes: every line exactly once through many rotations at a high rate,
 * apps that keep running and logging through a kill -9 of the daemon or of the relay, a full disk,
 * flush, compression.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parseLine } from '../src/logs/line.js';
import type { AgentEvent, DaemonStatus, ReapResult } from '../src/protocol.js';
import { readProcess } from './helpers/procs.js';
import { FIXTURES, Rig, waitFor } from './helpers/rig.js';

const NUMBERED = join(FIXTURES, 'numbered.mjs');

/** Every line of a stream, oldest first: the highest rotated generation first, the current file last. */
function streamLines(home: string, app: string, stream: 'out' | 'err'): string[] {
  const current = join(home, 'logs', `${app}.${stream}.log`);
  const rotated = readdirSync(join(home, 'logs'))
    .map((entry) => /^(.+)\.(\d+)(\.gz)?$/.exec(entry))
    .filter((match): match is RegExpExecArray => match !== null && match[1] === `${app}.${stream}.log`)
    .map((match) => ({ path: join(home, 'logs', match[0]), generation: Number(match[2]), gz: match[3] !== undefined }))
    .sort((a, b) => b.generation - a.generation);
  const text = [...rotated.map((file) => (file.gz ? gunzipSync(readFileSync(file.path)) : readFileSync(file.path)).toString('utf8')), existsSync(current) ? readFileSync(current, 'utf8') : ''];
  return text.join('').split('\n').filter((line) => line !== '');
}

/** The numbers of `<prefix> N` lines, in file order; every line must carry the relay's stamp. */
function numbers(lines: string[], prefix: string): number[] {
  return lines.flatMap((line) => {
    const parsed = parseLine(line);
    assert.notEqual(parsed.micros, null, `unstamped line: ${line}`);
    const match = new RegExp(`^${prefix} (\\d+)`).exec(parsed.text);
    return match ? [Number(match[1])] : [];
  });
}

function assertExactlyOnce(found: number[], count: number, what: string): void {
  const expected = Array.from({ length: count }, (_, index) => index);
  if (found.length === count && found.every((value, index) => value === index)) return;
  const seen = new Map<number, number>();
  for (const value of found) seen.set(value, (seen.get(value) ?? 0) + 1);
  const missing = expected.filter((value) => !seen.has(value));
  const doubled = [...seen].filter(([, times]) => times > 1).map(([value]) => value);
  assert.fail(`${what}: ${found.length} lines for ${count}; missing ${missing.length} (first ${missing.slice(0, 5).join(', ')}), doubled ${doubled.length} (first ${doubled.slice(0, 5).join(', ')}), in order: ${found.every((value, index) => index === 0 || value > (found[index - 1] ?? -1))}`);
}

function rotatedCount(home: string, app: string, stream: string): number {
  return readdirSync(join(home, 'logs')).filter((entry) => new RegExp(`^${app}\\.${stream}\\.log\\.\\d+(\\.gz)?$`).test(entry)).length;
}

async function startConfig(rig: Rig, apps: unknown[], extra: Record<string, unknown> = {}): Promise<void> {
  const config = join(rig.home, 'ecosystem.config.json');
  writeFileSync(config, JSON.stringify({ apps, ...extra }));
  await rig.ok(['start', config]);
}

async function relayEvents(rig: Rig): Promise<string[]> {
  const lines = (await rig.ok(['events', '--json', '--lines', '1000'])).split('\n').filter((line) => line !== '');
  return lines.map((line) => JSON.parse(line) as AgentEvent).filter((event) => event.type === 'relay').map((event) => String(event.reason));
}

/** `tick N` every 10 ms from bash (SIGPIPE kills it by default) and from node (through process.stdout). */
function tickers(rig: Rig): { bash: string; node: string } {
  const bash = join(rig.home, 'ticker.sh');
  writeFileSync(bash, 'i=0\nwhile true; do echo "tick $i"; i=$((i+1)); sleep 0.01; done\n');
  const node = join(rig.home, 'ticker.mjs');
  writeFileSync(node, 'let i = 0;\nsetInterval(() => process.stdout.write(`tick ${i++}\\n`), 10);\n');
  return { bash, node };
}

function ticks(rig: Rig, app: string): number[] {
  return numbers(streamLines(rig.home, app, 'out'), 'tick');
}

/** The tick numbers of an app are 0, 1, 2, ... with none missing or doubled; returns the last. */
function assertContiguous(found: number[], what: string): number {
  assertExactlyOnce(found, found.length, what);
  return found.length - 1;
}

test('every line written at 5,000+ lines/s through 20+ rotations is found exactly once, in order, in the current and rotated files', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const count = 15_000;
  await startConfig(rig, [{ name: 'burst', script: NUMBERED, args: [String(count), '6000'], logs: { maxSize: '16K', keep: 500 } }]);
  const current = (stream: string): string => join(rig.home, 'logs', `burst.${stream}.log`);
  await waitFor(() => readFileSync(current('out'), 'utf8').includes(`out ${count - 1}\n`) && readFileSync(current('err'), 'utf8').includes(`err ${count - 1}\n`), 'the last lines', 30_000);
  for (const stream of ['out', 'err'] as const) {
    const lines = streamLines(rig.home, 'burst', stream);
    assertExactlyOnce(numbers(lines, stream), count, stream);
    const stamps = lines.map((line) => parseLine(line).micros ?? 0);
    assert.ok(stamps.every((stamp, index) => index === 0 || stamp > (stamps[index - 1] ?? 0)), `${stream}: stamps strictly increase`);
    const seconds = ((stamps.at(-1) ?? 0) - (stamps[0] ?? 0)) / 1e6;
    assert.ok(count / seconds >= 5000, `${stream}: ${Math.round(count / seconds)} lines/s reached the relay; the test needs at least 5,000`);
    assert.ok(rotatedCount(rig.home, 'burst', stream) >= 20, `${stream}: ${rotatedCount(rig.home, 'burst', stream)} rotations, expected at least 20`);
    for (const entry of readdirSync(join(rig.home, 'logs')).filter((name) => name.startsWith(`burst.${stream}.log`))) {
      assert.ok(statSync(join(rig.home, 'logs', entry)).size <= 16 * 1024, `${entry} is within maxSize`);
    }
  }
  const detail = await rig.show('burst');
  assert.equal(detail.logFiles.rotated, true);
  assert.deepEqual(detail.logFiles.policy, { maxSizeBytes: 16 * 1024, keep: 500, compress: false });
  assert.ok(detail.logFiles.out.rotatedFiles >= 20);
  assert.ok(detail.logFiles.out.totalSize > detail.logFiles.out.size);
  assert.equal(detail.logFiles.out.dropped, 0);
});

test('kill -9 of the daemon: the app keeps running and logging through the relay, and the next daemon re-adopts the relay', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const { bash } = tickers(rig);
  await rig.ok(['start', bash, '--name', 'steady']);
  await waitFor(() => ticks(rig, 'steady').length > 20, 'the first ticks');
  const { pid } = await rig.app('steady');
  const relay = rig.relayPid();
  assert.ok(relay !== undefined, 'a relay runs');
  process.kill(rig.daemonPid() ?? 0, 'SIGKILL');
  await waitFor(() => rig.daemonPid() === undefined, 'the daemon to die');
  const atKill = ticks(rig, 'steady').length;
  await waitFor(() => ticks(rig, 'steady').length > atKill + 50, 'ticks written while no daemon runs');
  assert.equal(rig.daemonPid(), undefined, 'still no daemon: those lines went through the relay alone');

  const after = await rig.app('steady'); // starts a new daemon
  assert.equal(after.pid, pid, 'the same instance');
  assert.equal(after.restarts, 0);
  assert.equal(rig.relayPid(), relay, 'the new daemon re-adopted the running relay');
  assert.ok((await relayEvents(rig)).includes('connected'));
  const status = JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as DaemonStatus;
  assert.equal(status.relay?.pid, relay);
  assert.equal(status.relay?.apps, 1);
  assertContiguous(ticks(rig, 'steady'), 'steady');
});

test('kill -9 of the relay: bash and node apps keep running, a new relay starts within a bound, and nothing written after the kill is lost', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const { bash, node } = tickers(rig);
  await rig.ok(['start', bash, '--name', 'sh']);
  await rig.ok(['start', node, '--name', 'js']);
  await waitFor(() => ticks(rig, 'sh').length > 20 && ticks(rig, 'js').length > 20, 'the first ticks');
  const before = { sh: (await rig.app('sh')).pid, js: (await rig.app('js')).pid };
  const relay = rig.relayPid() ?? 0;
  assert.ok(relay > 0);
  process.kill(relay, 'SIGKILL');
  const killedAt = Date.now();
  const replacement = await waitFor(() => {
    const pid = rig.relayPid();
    return pid !== undefined && pid !== relay ? pid : undefined;
  }, 'a new relay', 3000);
  const took = Date.now() - killedAt;
  const counts = { sh: ticks(rig, 'sh').length, js: ticks(rig, 'js').length };
  await waitFor(() => ticks(rig, 'sh').length > counts.sh + 30 && ticks(rig, 'js').length > counts.js + 30, 'ticks after the new relay took over');
  for (const app of ['sh', 'js'] as const) {
    const summary = await rig.app(app);
    assert.equal(summary.status, 'online', `${app} is online`);
    assert.equal(summary.pid, before[app], `${app} was never restarted (no EPIPE, no SIGPIPE)`);
    assert.equal(summary.restarts, 0);
    assertContiguous(ticks(rig, app), app);
  }
  const reasons = await relayEvents(rig);
  assert.ok(reasons.includes('lost') && reasons.lastIndexOf('started') > reasons.indexOf('lost'), `events: ${reasons.join(', ')}`);
  assert.equal((JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as DaemonStatus).relay?.pid, replacement);
  t.diagnostic(`new relay after ${took} ms`);
});

test('a full disk: the app keeps running, the relay drops and counts lines, and writes a marker once there is room again', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'agentpm-test-fulldisk-'));
  const home = join(base, 'home');
  const logs = join(home, 'logs');
  mkdirSync(logs, { recursive: true, mode: 0o700 });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m,mode=0700', 'tmpfs', logs]);
  const rig = await Rig.create({}, { home });
  t.after(async () => {
    try {
      await rig.cli(['kill'], { timeoutMs: 60_000 });
      await waitFor(() => rig.daemonPid() === undefined && rig.relayPid() === undefined, 'the daemon and relay to exit', 5000).catch(() => undefined);
    } finally {
      for (const pid of [rig.daemonPid(), rig.relayPid()]) if (pid) process.kill(pid, 'SIGKILL');
      execFileSync('umount', ['-l', logs]);
      await rig.dispose();
      rmSync(base, { recursive: true, force: true });
    }
  });
  // 1 KB lines at 4 MB/s for 2 s (the disk is full within a second), then a short line every 100 ms.
  const script = join(base, 'flood.mjs');
  writeFileSync(
    script,
    `const big = 'x'.repeat(1000); const start = Date.now(); let n = 0;
     const flood = setInterval(() => { let out = ''; for (let i = 0; i < 40; i++) out += 'flood ' + (n++) + ' ' + big + '\\n'; process.stdout.write(out);
       if (Date.now() - start > 2000) { clearInterval(flood); setInterval(() => process.stdout.write('slow ' + (n++) + '\\n'), 100); } }, 10);`,
  );
  await rig.ok(['start', script, '--name', 'flood']);
  const { pid } = await rig.app('flood');
  const dropped = await waitFor(async () => {
    const out = (await rig.show('flood')).logFiles.out.dropped ?? 0;
    return out > 100 ? out : undefined;
  }, 'dropped lines in show', 15_000);
  assert.match(await rig.ok(['show', 'flood']), /line\(s\) dropped \(disk full\)/);
  const out = join(logs, 'flood.out.log');
  assert.doesNotMatch(readFileSync(out, 'utf8'), /lines dropped/);
  await rig.ok(['flush', 'flood']);
  const marker = await waitFor(() => /\[agentpm: (\d+) lines dropped: disk full\]/.exec(readFileSync(out, 'utf8')), 'the marker line', 10_000);
  assert.ok(Number(marker[1]) >= dropped, `the marker counts the ${dropped}+ dropped lines: ${marker[0]}`);
  await waitFor(() => /slow \d+/.test(readFileSync(out, 'utf8')), 'lines after the marker');
  const after = await rig.app('flood');
  assert.equal(after.pid, pid, 'never restarted');
  assert.equal(after.status, 'online');
});

test('flush empties an app\'s current and rotated files, through the relay with a daemon and by the CLI without one', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  await startConfig(rig, [
    { name: 'a', script: NUMBERED, args: ['2000', '5000'], logs: { maxSize: '4K' } },
    { name: 'b', script: NUMBERED, args: ['200', '5000'] },
  ]);
  await waitFor(() => readFileSync(join(rig.home, 'logs', 'a.out.log'), 'utf8').includes('out 1999\n') && rotatedCount(rig.home, 'a', 'out') === 5, 'a to rotate');
  await waitFor(() => readFileSync(join(rig.home, 'logs', 'b.out.log'), 'utf8').includes('out 199\n'), 'b to log');
  assert.match(await rig.ok(['flush', 'a']), /flushed the logs of 1 app\(s\): a/);
  for (const stream of ['out', 'err']) {
    assert.equal(statSync(join(rig.home, 'logs', `a.${stream}.log`)).size, 0);
    assert.equal(rotatedCount(rig.home, 'a', stream), 0);
  }
  assert.ok(statSync(join(rig.home, 'logs', 'b.out.log')).size > 0, 'b untouched');
  const unknown = await rig.cli(['flush', 'nope']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /no app named nope/);

  await rig.ok(['kill']);
  await waitFor(() => rig.relayPid() === undefined, 'the relay to exit after kill', 5000);
  assert.match(await rig.ok(['flush']), /no daemon running; flushed the log files of 2 app\(s\): a, b/);
  assert.equal(statSync(join(rig.home, 'logs', 'b.out.log')).size, 0);
  assert.equal(rig.daemonPid(), undefined, 'flush without a daemon starts none');
  const missing = await rig.cli(['flush', 'nope']);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /no log files of an app named nope/);
});

test('compress: rotated files are gzipped in the background, and every line is still there exactly once', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const count = 3000;
  await startConfig(rig, [{ name: 'gz', script: NUMBERED, args: [String(count), '5000'] }], { logs: { maxSize: '8K', keep: 200, compress: true } });
  await waitFor(() => readFileSync(join(rig.home, 'logs', 'gz.err.log'), 'utf8').includes(`err ${count - 1}\n`), 'the last line');
  const plain = (): string[] => readdirSync(join(rig.home, 'logs')).filter((entry) => /^gz\.(out|err)\.log\.\d+$/.test(entry));
  await waitFor(() => plain().length === 0, 'every rotated file compressed');
  assert.ok(rotatedCount(rig.home, 'gz', 'out') >= 5);
  for (const stream of ['out', 'err'] as const) assertExactlyOnce(numbers(streamLines(rig.home, 'gz', stream), stream), count, stream);
  assert.equal((await rig.show('gz')).logFiles.policy.compress, true, "the config's top-level logs is the app's default");
});

test('a relay of another version hands over to the new one: it writes what it read and exits, and no line is lost or doubled', async (t) => {
  const rig = await Rig.create();
  const old = mkdtempSync(join(tmpdir(), 'agentpm-test-oldrelay-'));
  t.after(async () => {
    await rig.dispose();
    rmSync(old, { recursive: true, force: true });
  });
  // "Another version": this build, copied beside a package.json that says 0.0.0-old.
  const root = join(FIXTURES, '..', '..');
  execFileSync('cp', ['-r', join(root, 'dist'), join(old, 'dist')]);
  symlinkSync(join(root, 'node_modules'), join(old, 'node_modules'));
  writeFileSync(join(old, 'package.json'), JSON.stringify({ name: 'agentpm', version: '0.0.0-old', type: 'module' }));

  const { bash } = tickers(rig);
  await rig.ok(['start', bash, '--name', 'steady']);
  await waitFor(() => ticks(rig, 'steady').length > 20, 'the first ticks');
  const { pid } = await rig.app('steady');
  // The daemon leaves; its relay is stopped as an upgrade would stop it (SIGTERM: the FIFOs stay).
  await rig.ok(['daemon', 'stop']);
  const first = rig.relayPid() ?? 0;
  process.kill(first, 'SIGTERM');
  await waitFor(() => rig.relayPid() === undefined, 'the first relay to exit');
  const oldRelay = spawn(process.execPath, [join(old, 'dist', 'logs', 'relay', 'main.js')], { env: rig.env, detached: true, stdio: 'ignore' });
  rig.ownPids.add(oldRelay.pid ?? 0);
  const atOld = ticks(rig, 'steady').length;
  await waitFor(() => ticks(rig, 'steady').length > atOld + 30, 'the old relay to re-attach the FIFOs and write');

  await rig.app('steady'); // a new daemon: finds the old relay, which hands over
  const replacement = await waitFor(() => {
    const relay = rig.relayPid();
    return relay !== undefined && relay !== oldRelay.pid ? relay : undefined;
  }, 'the new relay');
  assert.equal(oldRelay.exitCode ?? (await new Promise((resolve) => oldRelay.once('exit', resolve))), 0, 'the old relay exited by itself');
  const atNew = ticks(rig, 'steady').length;
  await waitFor(() => ticks(rig, 'steady').length > atNew + 30, 'the new relay to write');
  assert.ok((await relayEvents(rig)).includes('replaced'));
  const status = JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as DaemonStatus;
  assert.equal(status.relay?.pid, replacement);
  assert.equal(status.relay?.version, status.version);
  assert.equal((await rig.app('steady')).pid, pid, 'the app ran on untouched');
  assertContiguous(ticks(rig, 'steady'), 'steady');
});

test("the relay is agentpm's own: orphaned by a kill -9 of its daemon and matching --match, a reap never lists it", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const { bash } = tickers(rig);
  await rig.ok(['start', bash, '--name', 'steady']);
  const relay = rig.relayPid() ?? 0;
  const daemon = rig.daemonPid() ?? 0;
  assert.ok(relay > 0 && daemon > 0);
  process.kill(daemon, 'SIGKILL');
  await waitFor(() => rig.daemonPid() === undefined && readProcess(relay)?.ppid !== daemon, 'the relay to be orphaned');
  // The CLI alone (no daemon answers): the relay's own command line matches the pattern. A dry run: the
  // pattern matches every relay of this build, other tests' included, should the guard ever fail.
  const run = await rig.cli(['reap', '--json', '--dry-run', '--unmanaged', '--match', 'logs/relay/main', '--older-than', '0s']);
  assert.ok(run.code === 0 || run.code === 2, run.stderr);
  const result = JSON.parse(run.stdout) as ReapResult;
  assert.equal(result.daemon, false);
  assert.deepEqual(result.found.filter((item) => item.pid === relay), []);
  assert.equal(rig.relayPid(), relay, 'the relay runs on');
  await rig.ls(); // a daemon again, to stop the app at the end
});

test('without mkfifo the instance writes its files directly, as before the relay, and show and daemon status say why', async (t) => {
  // A PATH with what the daemon and the app need, but no mkfifo.
  const bin = mkdtempSync(join(tmpdir(), 'agentpm-test-nomkfifo-'));
  const rig = await Rig.create({ PATH: bin });
  t.after(async () => {
    await rig.dispose();
    rmSync(bin, { recursive: true, force: true });
  });
  for (const tool of ['node', 'bash', 'sleep']) symlinkSync(execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim(), join(bin, tool));
  const { bash } = tickers(rig);
  await rig.ok(['start', bash, '--name', 'direct']);
  const out = join(rig.home, 'logs', 'direct.out.log');
  await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes('tick 5\n'), 'the app to log');
  assert.match(readFileSync(out, 'utf8'), /^tick 0\ntick 1\n/, 'unstamped: written by the app itself');
  const { pid } = await rig.app('direct');
  assert.equal(readlinkSync(`/proc/${pid}/fd/1`), out, 'the file itself is its stdout');
  const detail = await rig.show('direct');
  assert.equal(detail.logFiles.rotated, false);
  assert.match(detail.logFiles.notRotatedWhy ?? '', /mkfifo not found on PATH/);
  assert.match(await rig.ok(['show', 'direct']), /not rotated: this instance writes its files directly \(cannot create FIFOs with mkfifo \(coreutils\): mkfifo not found on PATH\)/);
  const status = JSON.parse(await rig.ok(['daemon', 'status', '--json'])) as DaemonStatus;
  assert.deepEqual(status.unrotated.map((entry) => entry.app), ['direct']);
  assert.match(await rig.ok(['daemon', 'status']), /direct \(instance [0-9a-f]+\): logs not rotated, written directly: .*mkfifo not found/);
});
