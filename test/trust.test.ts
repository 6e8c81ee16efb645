/**
 * agentpm trusts nothing in or on the way to its home that it did not make (issue 10, items 9-11): the
 * CLI sends nothing to a socket that is not its own daemon's, a home reached through another user's
 * symlink or directory is refused, files in the home are never written or read through symlinks, and
 * a home reached through a symlink still has one daemon. uid 65534 plays the other user.
 */
import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { liveProcesses, TEST_HOME_PREFIX } from './helpers/procs.js';
import { FIXTURES, ROOT, Rig, waitFor } from './helpers/rig.js';

const OTHER = 65534;
const SECRET = 'sk-live-0123456789abcdef';
const DAEMON_MAIN = join(ROOT, 'dist', 'daemon', 'main.js');

/**
 * A stand-in for a daemon another user runs at a socket path: it answers like agentpm (so that a CLI
 * that trusted it would go on to send `start` with its environment, as in the report) and writes
 * everything it receives to stdout.
 */
const FAKE_DAEMON = `
const net = require('node:net');
const server = net.createServer((socket) => {
  let buffered = '';
  socket.on('data', (chunk) => {
    process.stdout.write(chunk);
    buffered += chunk.toString();
    let newline;
    while ((newline = buffered.indexOf('\\n')) >= 0) {
      const request = JSON.parse(buffered.slice(0, newline));
      buffered = buffered.slice(newline + 1);
      const result = request.type === 'hello' ? { version: request.version, protocol: request.protocol, pid: process.pid }
        : request.type === 'start' ? { started: [], restarted: [], unchanged: [] } : [];
      socket.write(JSON.stringify({ id: request.id, ok: true, result }) + '\\n');
    }
  });
  socket.on('error', () => undefined);
});
server.listen(process.argv[1], () => process.stderr.write('listening\\n'));
`;

interface Listener {
  child: ChildProcess;
  received: () => string;
}

/** Starts the fake daemon at `socket`, as another user or (to chown its socket afterwards) as root. */
async function listen(rig: Rig, socket: string, asOther: boolean): Promise<Listener> {
  const command = asOther ? ['setpriv', `--reuid=${OTHER}`, `--regid=${OTHER}`, '--clear-groups', process.execPath] : [process.execPath];
  const child = spawn(command[0] as string, [...command.slice(1), '-e', FAKE_DAEMON, socket], { env: rig.env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid !== undefined) rig.ownPids.add(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(() => stderr.includes('listening'), `the fake daemon to listen (${stderr})`);
  return { child, received: () => stdout };
}

function stopListener(listener: Listener): void {
  listener.child.kill('SIGKILL');
}

/**
 * A private directory for the test's own paths (symlinks, targets), named so leftovers are caught.
 * A home reached through a symlink in it is this test's alone: should agentpm ever start a daemon
 * under that name (as it did before the fix), it and its apps are killed before the directory goes.
 */
function scratch(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), `${TEST_HOME_PREFIX}trust-`));
  t.after(() => {
    for (const proc of liveProcesses((candidate) => (candidate.env.get('AGENTPM_HOME') ?? '').startsWith(`${dir}/`))) {
      try {
        process.kill(proc.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

function daemonsOf(...homes: string[]): number[] {
  return liveProcesses((proc) => homes.includes(proc.env.get('AGENTPM_HOME') ?? '') && proc.cmd.includes('dist/daemon/main.js')).map((proc) => proc.pid);
}

test('the CLI sends nothing to a socket it did not make: a home others can write to, a foreign socket, a symlink, a file', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const script = join(scratch(t), 'x.sh');
  writeFileSync(script, 'sleep 60\n');
  const start = (): ReturnType<Rig['cli']> => rig.cli(['start', script], { env: { MY_API_TOKEN: SECRET } });

  // The report: a home of mode 777, and another user's listener in place of agentpm.sock.
  const socket = join(rig.home, 'agentpm.sock');
  chmodSync(rig.home, 0o777);
  const squatter = await listen(rig, socket, true);
  assert.equal(lstatSync(socket).uid, OTHER);
  const open = await start();
  assert.notEqual(open.code, 0, `refused: ${open.stdout}`);
  assert.match(open.stderr, new RegExp(`${rig.home} is writable by group or others \\(mode 777\\).*Run: chmod 700 ${rig.home}`));
  assert.equal(squatter.received(), '', 'the listener received nothing');
  stopListener(squatter);
  rmSync(socket, { force: true });
  chmodSync(rig.home, 0o700);

  // A private home, but a socket another user owns in it (made while the home was open to them).
  const owned = await listen(rig, socket, false);
  lchownSync(socket, OTHER, OTHER);
  const foreign = await start();
  assert.notEqual(foreign.code, 0);
  assert.match(foreign.stderr, new RegExp(`${socket} is a socket owned by uid ${OTHER}, not by you`));
  assert.match(foreign.stderr, new RegExp(`Nothing was sent to it.*rm ${socket}`));
  assert.equal(owned.received(), '', 'the listener received nothing');
  stopListener(owned);
  rmSync(socket, { force: true });

  // agentpm.sock a symlink (of root's own, even) to another user's listener: not a socket.
  const theirs = join(scratch(t), 'theirs');
  mkdirSync(theirs);
  chownSync(theirs, OTHER, OTHER);
  chmodSync(join(theirs, '..'), 0o755);
  const elsewhere = await listen(rig, join(theirs, 'agentpm.sock'), true);
  symlinkSync(join(theirs, 'agentpm.sock'), socket);
  const linked = await start();
  assert.notEqual(linked.code, 0);
  assert.match(linked.stderr, new RegExp(`${socket} is a symbolic link, not the socket of an agentpm daemon`));
  assert.equal(elsewhere.received(), '', 'the listener received nothing');
  stopListener(elsewhere);
  rmSync(socket, { force: true });

  // Not a socket at all: refused, and left where it is for the user to look at.
  writeFileSync(socket, 'not a socket');
  const file = await rig.cli(['ls']);
  assert.notEqual(file.code, 0);
  assert.match(file.stderr, new RegExp(`${socket} is not a socket`));
  assert.equal(readFileSync(socket, 'utf8'), 'not a socket');
  assert.deepEqual(daemonsOf(rig.home), [], 'no daemon was started beside any of them');
  rmSync(socket);
});

test("a home reached through another user's symlink or directory is refused; through root's own symlink it is one home", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = scratch(t);
  chmodSync(dir, 0o755);
  // Like /tmp: root's, sticky, writable by all; anyone may leave a symlink here.
  const pub = join(dir, 'pub');
  mkdirSync(pub);
  chmodSync(pub, 0o1777);
  const link = join(pub, 'home');
  symlinkSync(rig.home, link);
  lchownSync(link, OTHER, OTHER);
  const viaTheirs = await rig.cli(['ls'], { env: { AGENTPM_HOME: link } });
  assert.notEqual(viaTheirs.code, 0);
  assert.match(viaTheirs.stderr, new RegExp(`${link} is a symlink owned by uid ${OTHER}, who can point it elsewhere at any time`));
  assert.match(viaTheirs.stderr, /AGENTPM_HOME/);

  // A home inside another user's directory: they can swap it for their own at any time.
  const theirs = join(dir, 'theirs');
  mkdirSync(join(theirs, 'home'), { recursive: true, mode: 0o700 });
  chownSync(theirs, OTHER, OTHER);
  const inTheirs = await rig.cli(['ls'], { env: { AGENTPM_HOME: join(theirs, 'home') } });
  assert.notEqual(inTheirs.code, 0);
  assert.match(inTheirs.stderr, new RegExp(`${theirs} is owned by uid ${OTHER}, not by you \\(uid 0\\) or root`));
  assert.deepEqual(daemonsOf(rig.home, link, join(theirs, 'home')), [], 'no daemon started');

  // The same symlink made root's: followed, and the home is known by its real path.
  lchownSync(link, 0, 0);
  await rig.ok(['ls']);
  const status = await rig.cli(['daemon', 'status', '--json'], { env: { AGENTPM_HOME: link } });
  assert.equal(status.code, 0, status.stderr);
  assert.equal((JSON.parse(status.stdout) as { home: string }).home, rig.home, 'known by its real path');
});

test('a home reached through a symlink and through its real path has one daemon: the lock is on the real directory', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const link = join(scratch(t), 'home');
  symlinkSync(rig.home, link);
  const viaLink = { env: { AGENTPM_HOME: link } };
  const started = await rig.cli(['start', join(FIXTURES, 'idle.mjs'), '--name', 'keeper'], viaLink);
  assert.equal(started.code, 0, started.stderr);

  const statusOf = async (options: { env?: Record<string, string> }): Promise<{ pid: number; home: string }> => {
    const result = await rig.cli(['daemon', 'status', '--json'], options);
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout) as { pid: number; home: string };
  };
  const linked = await statusOf(viaLink);
  const real = await statusOf({});
  assert.equal(linked.home, rig.home, 'daemon status shows the real path');
  assert.equal(real.pid, linked.pid, 'both CLIs reach the same daemon');
  assert.deepEqual(rig.tagged().map((proc) => proc.app), ['keeper'], "the app's processes are tagged with the real path");

  // A second daemon for the same directory by its other name (the first came through the link), as a
  // CLI racing another would start: it must lose the lock at once, not take over socket and registry.
  const second = spawn(process.execPath, [DAEMON_MAIN], { env: rig.env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (second.pid !== undefined) rig.ownPids.add(second.pid);
  let stderr = '';
  second.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => second.once('exit', resolve));
  const code = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 10_000))]);
  assert.equal(code, 3, `the second daemon exits 3 (it was ${code}): ${stderr}`);
  assert.match(stderr, new RegExp(`another agentpm daemon already serves ${rig.home}`));
  assert.deepEqual(daemonsOf(rig.home, link), [real.pid], 'one daemon');
  assert.equal((await rig.app('keeper')).status, 'online', 'the app is untouched');
});

test("logs/ is checked like the home, and an app's log is opened only if it is a regular file of the caller's", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const dir = scratch(t);
  const victim = join(dir, 'precious');
  writeFileSync(victim, 'root-owned, must not change\n');
  const script = join(dir, 'victim.sh');
  writeFileSync(script, 'echo APPENDED-BY-THE-APP\nsleep 60\n');
  const logs = join(rig.home, 'logs');
  const out = join(logs, 'victim.out.log');
  const err = join(logs, 'victim.err.log');
  const startVictim = (): ReturnType<Rig['cli']> => rig.cli(['start', script, '--name', 'victim']);

  // The report: home 755, a pre-existing logs/ of 777, another user's symlink to a root-owned file.
  chmodSync(rig.home, 0o755);
  mkdirSync(logs, { mode: 0o777 });
  chmodSync(logs, 0o777);
  symlinkSync(victim, out);
  lchownSync(out, OTHER, OTHER);
  const open = await startVictim();
  assert.notEqual(open.code, 0);
  assert.match(open.stderr, new RegExp(`${logs} is writable by group or others \\(mode 777\\).*Run: chmod 700 ${logs}`));
  assert.deepEqual(daemonsOf(rig.home), [], 'no daemon starts on an unsafe logs/');

  // logs/ made private while the planted files stay: the daemon runs, and refuses each file at open
  // (a first start that fails leaves no app behind, so each attempt is a start).
  chmodSync(logs, 0o700);
  const linked = await startVictim();
  assert.notEqual(linked.code, 0);
  assert.match(linked.stderr, new RegExp(`${out} is a symbolic link; .*rm ${out}`));
  rmSync(out);
  writeFileSync(err, 'theirs\n');
  chownSync(err, OTHER, OTHER);
  const foreign = await startVictim();
  assert.notEqual(foreign.code, 0);
  assert.match(foreign.stderr, new RegExp(`${err} is owned by uid ${OTHER}, not by you`));
  rmSync(err);
  rmSync(out, { force: true }); // created empty before the err file was refused
  execFileSync('mkfifo', [out]);
  const fifo = await startVictim();
  assert.notEqual(fifo.code, 0);
  assert.match(fifo.stderr, /victim\.out\.log is not a regular file/);
  rmSync(out);
  assert.equal(rig.tagged().length, 0, 'the app never ran');
  assert.equal(readFileSync(victim, 'utf8'), 'root-owned, must not change\n');

  // Once the files are gone, the app logs where it should.
  await rig.ok(['start', script, '--name', 'victim']);
  await waitFor(() => existsSync(out) && readFileSync(out, 'utf8').includes('APPENDED-BY-THE-APP'), 'the app to log');
  assert.ok(lstatSync(out).isFile());
  assert.equal(readFileSync(victim, 'utf8'), 'root-owned, must not change\n');
});

test('agentpm logs reads no symlink planted in logs/', async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const secret = join(scratch(t), 'secret');
  writeFileSync(secret, 'CONTENT-OF-ANOTHER-FILE\n');
  mkdirSync(join(rig.home, 'logs'), { mode: 0o700 });
  const out = join(rig.home, 'logs', 'victim.out.log');
  symlinkSync(secret, out);
  const result = await rig.cli(['logs', 'victim', '--lines', '5']);
  assert.notEqual(result.code, 0);
  assert.doesNotMatch(result.stdout, /CONTENT-OF-ANOTHER-FILE/);
  assert.match(result.stderr, new RegExp(`${out} is a symbolic link`));
});

test("the home's other files are never written through symlinks, and another user's registry is not run", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  const victim = join(scratch(t), 'precious');
  const original = 'must not change\n';
  writeFileSync(victim, original);
  const plant = (name: string): string => {
    const path = join(rig.home, name);
    symlinkSync(victim, path);
    return path;
  };

  // daemon.log is opened by the CLI that starts the daemon: refused, nothing started.
  const daemonLog = plant('daemon.log');
  const refused = await rig.cli(['ls']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, new RegExp(`${daemonLog} is a symbolic link`));
  rmSync(daemonLog);

  // events.log (best effort: events are not written through it) and daemon.pid (replaced, not followed).
  plant('events.log');
  const pidFile = plant('daemon.pid');
  await rig.ok(['start', join(FIXTURES, 'idle.mjs'), '--name', 'idle']);
  await waitFor(() => lstatSync(pidFile).isFile(), 'the pid file to be written');
  assert.equal(JSON.parse(readFileSync(pidFile, 'utf8')).pid, rig.daemonPid());

  // dump.json: resurrect does not read through it; save replaces it.
  const dump = plant('dump.json');
  const resurrect = await rig.cli(['resurrect']);
  assert.notEqual(resurrect.code, 0);
  assert.match(resurrect.stderr, new RegExp(`${dump} is a symbolic link`));
  await rig.ok(['save']);
  assert.ok(lstatSync(dump).isFile());
  assert.equal(readFileSync(victim, 'utf8'), original);
  await rig.ok(['delete', 'idle']);
  await rig.ok(['daemon', 'stop']);

  // A registry another user wrote (while the home was open to them) names the commands a daemon runs.
  const registry = join(rig.home, 'registry.json');
  chownSync(registry, OTHER, OTHER);
  const foreign = await rig.cli(['ls']);
  assert.notEqual(foreign.code, 0);
  assert.match(foreign.stderr, new RegExp(`${registry} is owned by uid ${OTHER}, not by you`));
  assert.deepEqual(daemonsOf(rig.home), []);
  chownSync(registry, 0, 0);
});

/** Another user binds an abstract socket name and holds it. */
async function squat(rig: Rig, name: string): Promise<ChildProcess> {
  const code = `require('node:net').createServer().listen('\\0' + process.argv[1], () => process.stderr.write('listening\\n'))`;
  const child = spawn('setpriv', [`--reuid=${OTHER}`, `--regid=${OTHER}`, '--clear-groups', process.execPath, '-e', code, name], { env: rig.env, stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid !== undefined) rig.ownPids.add(child.pid);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  await waitFor(() => stderr.includes('listening'), `the squatter to bind @${name} (${stderr})`);
  return child;
}

/** The abstract socket names a process holds (from /proc/net/unix and its descriptors). */
function abstractNamesOf(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    if (match?.[1]) inodes.add(match[1]);
  }
  return readFileSync('/proc/net/unix', 'latin1')
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter((fields) => fields[7]?.startsWith('@agentpm-') && inodes.has(fields[6] ?? ''))
    .map((fields) => (fields[7] as string).slice(1).replace(/@+$/, '')); // NUL padding shows as @
}

test("another user cannot keep the daemon from starting by binding its lock's name first; a squatted lock is named", async (t) => {
  const rig = await Rig.create();
  t.after(() => rig.dispose());
  // The name a lock of the home's path alone would have: anyone can compute it and bind it first.
  const guessable = `agentpm-${process.getuid?.() ?? 0}-${createHash('sha256').update(realpathSync(rig.home)).digest('hex').slice(0, 24)}`;
  const early = await squat(rig, guessable);
  await rig.ok(['daemon', 'start']);
  early.kill('SIGKILL');

  // A name seen while the daemon ran (/proc/net/unix lists it to everyone), bound in the gap after its death.
  const [name] = abstractNamesOf(rig.daemonPid() as number);
  assert.ok(name, 'the daemon holds an abstract lock');
  await rig.ok(['daemon', 'stop']);
  const squatter = await squat(rig, name);
  const refused = await rig.cli(['ls']);
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /is held by pid \d+ \(uid 65534\), not by an agentpm daemon of yours/);
  assert.match(refused.stderr, /lock\.key/);
  // The fix the message names: a new key, a new name.
  rmSync(join(rig.home, 'lock.key'));
  await rig.ok(['ls']);
  squatter.kill('SIGKILL');
});
