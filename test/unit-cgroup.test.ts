/**
 * Containment decisions on fixtures: which backend a machine gets (and why), what a forced one needs,
 * and which members of a `reap: false` instance count as detached.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { detectContainment, parseMounts, parseSelfCgroup, type DetectInput } from '../src/cgroup/detect.js';
import { detachedMembers } from '../src/cgroup/instance.js';
import { appDirName } from '../src/cgroup/backends.js';
import { scopePrefix } from '../src/cli/scope.js';
import { awaitJoined, checkExecutable, shimCommand, SHIM_FAILED_EXIT } from '../src/cgroup/shim.js';
import type { InstanceCgroup } from '../src/cgroup/types.js';
import { AgentpmError } from '../src/errors.js';
import type { ProcInfo } from '../src/proc/table.js';

const HYBRID_SELF = ['9:name=systemd:/', '8:pids:/', '6:freezer:/', '4:memory:/process_api/abc', '1:cpu,cpuacct:/', '0::/'].join('\n');
const HYBRID_MOUNTS = [
  'tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0',
  'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0',
  'cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0',
  'cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0',
  'cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0',
  'cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0',
].join('\n');
const V2_SELF = '0::/user.slice/user-1000.slice/user@1000.service/app.slice/agentpm.service';
const V2_MOUNTS = 'cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0';
const V2_OWN = `/sys/fs/cgroup${V2_SELF.slice(3)}`;

function input(overrides: Partial<DetectInput>): DetectInput {
  return {
    selfCgroup: HYBRID_SELF,
    mounts: HYBRID_MOUNTS,
    forced: undefined,
    cgroup2Root: undefined,
    uid: 0,
    treeName: 'agentpm-0123456789ab',
    writable: () => true,
    exists: () => true,
    controllers: () => [],
    ...overrides,
  };
}

describe('detection', () => {
  test('parses /proc/self/cgroup and /proc/mounts, combined controllers included', () => {
    const self = parseSelfCgroup(HYBRID_SELF);
    assert.equal(self.v2, '/');
    assert.equal(self.v1.get('memory'), '/process_api/abc');
    assert.equal(self.v1.get('cpuacct'), '/');
    const mounts = parseMounts(HYBRID_MOUNTS);
    assert.deepEqual(mounts.v2, ['/sys/fs/cgroup/unified']);
    assert.equal(mounts.v1.get('cpu'), '/sys/fs/cgroup/cpu,cpuacct');
  });

  test('root on a hybrid host gets hybrid, under its own cgroup in every hierarchy (never a root it is not in)', () => {
    const found = detectContainment(input({}));
    assert.equal(found.backend, 'hybrid');
    assert.equal(found.own.memory, '/sys/fs/cgroup/memory/process_api/abc');
    assert.equal(found.own.unified, '/sys/fs/cgroup/unified');
    assert.equal(found.own.freezer, '/sys/fs/cgroup/freezer');
  });

  test('a delegated v2 subtree with memory and pids gets cgroup2; without them, membership and kill only, and says what enables limits', () => {
    const withControllers = detectContainment(input({ selfCgroup: V2_SELF, mounts: V2_MOUNTS, uid: 1000, controllers: () => ['cpu', 'memory', 'pids'] }));
    assert.equal(withControllers.backend, 'cgroup2');
    assert.equal(withControllers.own.unified, V2_OWN);
    assert.equal(withControllers.enable, null);
    const bare = detectContainment(input({ selfCgroup: V2_SELF, mounts: V2_MOUNTS, uid: 1000 }));
    assert.equal(bare.backend, 'cgroup2');
    assert.match(bare.enable ?? '', /Delegate=yes/);
  });

  test('a user without delegation, or a read-only cgroupfs, falls back to proc with the reason and how to get containment', () => {
    const user = detectContainment(input({ selfCgroup: V2_SELF, mounts: V2_MOUNTS, uid: 1000, writable: () => false }));
    assert.equal(user.backend, 'proc');
    assert.match(user.reason, /not writable by uid 1000/);
    assert.match(user.enable ?? '', /startup systemd --user/);
    const hybridReadOnly = detectContainment(input({ writable: () => false }));
    assert.equal(hybridReadOnly.backend, 'proc');
  });

  test('without a unified hierarchy, root on v1 gets cgroup1', () => {
    const found = detectContainment(input({ selfCgroup: HYBRID_SELF.replace('\n0::/', ''), mounts: HYBRID_MOUNTS.replace(/\ncgroup2 .*$/, '') }));
    assert.equal(found.backend, 'cgroup1');
    assert.equal(found.own.unified, undefined);
  });

  test('a daemon started inside its own home tree builds beside it, not inside an instance', () => {
    const nested = HYBRID_SELF.replace('0::/', '0::/agentpm-0123456789ab/apps/web/abcdef012345');
    assert.equal(detectContainment(input({ selfCgroup: nested })).own.unified, '/sys/fs/cgroup/unified');
  });

  test('a forced backend that cannot work is refused with the reason; a forced one that can is used; an unknown name is refused', () => {
    assert.throws(() => detectContainment(input({ forced: 'cgroup2', writable: (path) => !path.startsWith('/sys/fs/cgroup/unified') })), (error: unknown) => {
      assert.ok(error instanceof AgentpmError && error.code === 'containment-unavailable');
      assert.match(error.message, /unified.*not writable.*Unset it/);
      return true;
    });
    assert.equal(detectContainment(input({ forced: 'cgroup1' })).backend, 'cgroup1');
    assert.equal(detectContainment(input({ forced: 'proc' })).backend, 'proc');
    assert.throws(() => detectContainment(input({ forced: 'lxc' })), /not a backend; use one of cgroup2, hybrid, cgroup1, proc/);
  });

  test('AGENTPM_CGROUP2_ROOT replaces the daemon\'s own v2 directory', () => {
    const found = detectContainment(input({ forced: 'cgroup2', cgroup2Root: '/sys/fs/cgroup/unified/test-root' }));
    assert.equal(found.own.unified, '/sys/fs/cgroup/unified/test-root');
  });
});

function proc(pid: number, ppid: number, sid: number): ProcInfo {
  return { pid, ppid, pgid: sid, sid, startTime: pid, state: 'S', rssBytes: 0, cpuTicks: 0, comm: 'x' };
}

test('detached members: out of the root\'s session and not below a process in it, with what they fork', () => {
  const members = [proc(100, 1, 100), proc(101, 100, 100), proc(102, 101, 102), proc(200, 1, 200), proc(201, 200, 200), proc(300, 1, 100)];
  assert.deepEqual(detachedMembers(members, 100).map((member) => member.pid), [200, 201]);
});

test('app directories never take the name of a cgroup interface file', () => {
  assert.equal(appDirName('web'), 'web');
  assert.equal(appDirName('memory.max'), '_memory.max');
  assert.equal(appDirName('cgroup.procs'), '_cgroup.procs');
  assert.equal(appDirName('detached'), '_detached');
  assert.equal(appDirName('cpuhog'), 'cpuhog');
});

test('the CLI tries a delegated systemd scope only for a user with a reachable user manager and systemd-run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-scope-'));
  try {
    mkdirSync(join(dir, 'systemd'));
    writeFileSync(join(dir, 'systemd', 'private'), '');
    writeFileSync(join(dir, 'systemd-run'), '#!/bin/sh\n', { mode: 0o755 });
    const env = { XDG_RUNTIME_DIR: dir, PATH: `/nonexistent:${dir}` };
    assert.deepEqual(scopePrefix(env, 1000), [join(dir, 'systemd-run'), '--user', '--scope', '--quiet', '--collect', '-p', 'Delegate=yes', '--']);
    assert.equal(scopePrefix(env, 0), null, 'root has cgroups without a scope');
    assert.equal(scopePrefix({ ...env, AGENTPM_CONTAINMENT: 'proc' }, 1000), null);
    assert.equal(scopePrefix({ ...env, XDG_RUNTIME_DIR: join(dir, 'none') }, 1000), null, 'no user manager');
    assert.equal(scopePrefix({ ...env, PATH: '/nonexistent' }, 1000), null, 'no systemd-run');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('the exec shim', () => {
  const run = (dir: string, command: string[]): { child: ChildProcess; status: () => { code: number | null; signal: string | null } | null } => {
    const cgroup: InstanceCgroup = { backend: 'cgroup2', dirs: { unified: dir } };
    const { file, args } = shimCommand(cgroup, { file: command[0] as string, args: command.slice(1) });
    const child = spawn(file, args, { stdio: 'ignore' });
    let status: { code: number | null; signal: string | null } | null = null;
    child.once('exit', (code, signal) => (status = { code, signal }));
    return { child, status: () => status };
  };

  test('writes its own pid into cgroup.procs, then becomes the app (same pid, no process left in between)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-shim-'));
    try {
      const { child, status } = run(dir, ['sleep', '5']);
      await awaitJoined({ backend: 'cgroup2', dirs: { unified: dir } }, child.pid as number, status);
      assert.equal(readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim(), String(child.pid));
      for (let i = 0; i < 200 && !readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').startsWith('sleep'); i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
      assert.equal(readFileSync(`/proc/${child.pid}/cmdline`, 'utf8'), 'sleep\u00005\u0000', 'the shim exec\'d the app in place');
      child.kill('SIGKILL');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a shim that cannot enter its cgroup exits 213 before the app runs, and the spawn fails with the reason', async () => {
    const dir = join(tmpdir(), `agentpm-unit-shim-missing-${process.pid}`);
    const { child, status } = run(dir, ['sleep', '5']);
    await assert.rejects(awaitJoined({ backend: 'cgroup2', dirs: { unified: dir } }, child.pid as number, status), (error: unknown) => {
      assert.ok(error instanceof AgentpmError && error.code === 'spawn-failed');
      assert.match(error.message, new RegExp(`could not enter its cgroup ${dir} \\(the exec shim exited ${SHIM_FAILED_EXIT}`));
      return true;
    });
    assert.deepEqual(status(), { code: SHIM_FAILED_EXIT, signal: null });
  });

  test('an app that cannot be executed is refused before the spawn, as Node\'s spawn would have', () => {
    assert.equal(checkExecutable('/bin/sh', '/', '/usr/bin:/bin'), null);
    assert.equal(checkExecutable('sh', '/', '/nonexistent:/bin'), null);
    assert.equal(checkExecutable('no-such-program-agentpm', '/', '/usr/bin:/bin'), 'spawn no-such-program-agentpm ENOENT');
    const dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-exec-'));
    try {
      writeFileSync(join(dir, 'notes.txt'), 'not a program\n', { mode: 0o644 });
      assert.equal(checkExecutable('./notes.txt', dir, '/bin'), 'spawn ./notes.txt EACCES', 'relative to the app\'s cwd');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
