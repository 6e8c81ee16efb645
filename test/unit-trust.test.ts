/**
 * The path rule of path-trust.ts (pure, and walked over real directories made here, with uid 65534
 * standing in for another user) and the no-follow file openers of safe-files.ts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, closeSync, lchownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, lstatSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AgentpmError } from '../src/errors.js';
import { judgeEntry, trustedRealPath, type EntryInfo } from '../src/path-trust.js';
import { openOwnedFile, readOwnedFile, writeOwnedFileAtomic } from '../src/safe-files.js';
import { LogTail } from '../src/tui/log-tail.js';

const OTHER = 65534;
const ME = process.getuid?.() ?? 0;
const OPTIONS = { what: 'the test' };
let base: string;
let counter = 0;

before(() => {
  base = mkdtempSync(join(tmpdir(), 'agentpm-unit-trust-'));
});

after(() => {
  rmSync(base, { recursive: true, force: true });
});

/** A fresh directory under the (private) base, one per test. */
function fresh(): string {
  counter += 1;
  const dir = join(base, `case-${counter}`);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

function dir(path: string, mode: number, uid = ME): string {
  mkdirSync(path);
  chmodSync(path, mode);
  chownSync(path, uid, uid);
  return path;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof AgentpmError, String(error));
    assert.equal(error.code, 'home-unsafe');
    return error.message;
  }
  assert.fail('expected a home-unsafe refusal');
}

describe('judgeEntry: the rule for each component', () => {
  const d = (uid: number, mode: number): EntryInfo => ({ kind: 'directory', uid, mode });
  const cases: [string, EntryInfo, 'ancestor' | 'target', number, ReturnType<typeof judgeEntry>][] = [
    ['/ (root 755) on the way', d(0, 0o755), 'ancestor', 1000, null],
    ['/tmp (root 1777) on the way', d(0, 0o1777), 'ancestor', 1000, null],
    ["the caller's own sticky shared dir on the way", d(1000, 0o1777), 'ancestor', 1000, null],
    ["another user's sticky dir on the way", d(2000, 0o1777), 'ancestor', 1000, 'foreign-owner'],
    ['root 777 without the sticky bit on the way', d(0, 0o777), 'ancestor', 1000, 'writable'],
    ['root 775 (group-writable) on the way', d(0, 0o775), 'ancestor', 1000, 'writable'],
    ["another user's 755 dir on the way", d(2000, 0o755), 'ancestor', 1000, 'foreign-owner'],
    ['a root symlink on the way', { kind: 'symlink', uid: 0, mode: 0o777 }, 'ancestor', 1000, null],
    ["the caller's symlink on the way", { kind: 'symlink', uid: 1000, mode: 0o777 }, 'ancestor', 1000, null],
    ["another user's symlink on the way", { kind: 'symlink', uid: 2000, mode: 0o777 }, 'ancestor', 1000, 'foreign-symlink'],
    ['a file on the way', { kind: 'other', uid: 1000, mode: 0o644 }, 'ancestor', 1000, 'not-directory'],
    ["the caller's 700 home", d(1000, 0o700), 'target', 1000, null],
    ["the caller's 755 home", d(1000, 0o755), 'target', 1000, null],
    ['a root-owned home for a user', d(0, 0o700), 'target', 1000, 'foreign-owner'],
    ["root's home for root", d(0, 0o700), 'target', 0, null],
    ['a sticky 1777 home of the caller', d(1000, 0o1777), 'target', 1000, 'writable'],
    ['a 770 home of the caller', d(1000, 0o770), 'target', 1000, 'writable'],
    ["the caller's symlink as the home itself", { kind: 'symlink', uid: 1000, mode: 0o777 }, 'target', 1000, 'not-directory'],
  ];
  for (const [name, entry, role, uid, expected] of cases) {
    test(`${name}: ${expected ?? 'accepted'}`, () => assert.equal(judgeEntry(entry, role, uid), expected));
  }
});

describe('trustedRealPath: walking real directories', () => {
  test('a missing home is returned as it will be created; an existing private one as is', () => {
    const root = fresh();
    assert.equal(trustedRealPath(join(root, 'missing', 'home'), OPTIONS), join(root, 'missing', 'home'));
    const home = dir(join(root, 'home'), 0o700);
    assert.equal(trustedRealPath(`${home}/./`, OPTIONS), home);
  });

  test('symlinks of root (or the caller) are followed, absolute and relative, and the real path returned', () => {
    const root = fresh();
    const real = dir(join(root, 'real'), 0o700);
    dir(join(root, 'sub'), 0o755);
    symlinkSync(real, join(root, 'abs'));
    symlinkSync('../real', join(root, 'sub', 'rel'));
    symlinkSync(join(root, 'sub', 'rel'), join(root, 'chain'));
    assert.equal(trustedRealPath(join(root, 'abs'), OPTIONS), real);
    assert.equal(trustedRealPath(join(root, 'sub', 'rel'), OPTIONS), real);
    assert.equal(trustedRealPath(join(root, 'chain'), OPTIONS), real);
    // A symlink to a home not made yet: the real path it will have.
    symlinkSync(join(root, 'later'), join(root, 'dangling'));
    assert.equal(trustedRealPath(join(root, 'dangling'), OPTIONS), join(root, 'later'));
  });

  test("a sticky world-writable directory of root's on the way is accepted, and anything of another user's in it is refused", () => {
    const root = fresh();
    const pub = dir(join(root, 'pub'), 0o1777, 0);
    const mine = dir(join(pub, 'mine'), 0o700);
    assert.equal(trustedRealPath(mine, OPTIONS), mine);

    const theirs = dir(join(pub, 'theirs'), 0o755, OTHER);
    dir(join(theirs, 'home'), 0o700);
    const owned = refusal(() => trustedRealPath(join(theirs, 'home'), OPTIONS));
    assert.match(owned, new RegExp(`${theirs} is owned by uid ${OTHER}, not by you \\(uid ${ME}\\) or root`));
    assert.match(owned, /chown/);

    // The attack of the issue: another user's symlink in /tmp-like space, retargetable at will.
    symlinkSync(mine, join(pub, 'link'));
    lchownSync(join(pub, 'link'), OTHER, OTHER);
    const link = refusal(() => trustedRealPath(join(pub, 'link'), OPTIONS));
    assert.match(link, new RegExp(`${join(pub, 'link')} is a symlink owned by uid ${OTHER}, who can point it elsewhere`));
    assert.match(link, /AGENTPM_HOME/);
    // Also when the foreign symlink is deeper in a chain that starts with a trusted one.
    symlinkSync(join(pub, 'link'), join(root, 'mine-to-theirs'));
    assert.match(refusal(() => trustedRealPath(join(root, 'mine-to-theirs'), OPTIONS)), /symlink owned by uid 65534/);
    // A missing home behind another user's symlink is refused too: it would be created where they say.
    symlinkSync(join(root, 'nowhere'), join(pub, 'later'));
    lchownSync(join(pub, 'later'), OTHER, OTHER);
    assert.match(refusal(() => trustedRealPath(join(pub, 'later', 'home'), OPTIONS)), /symlink owned by uid 65534/);
  });

  test('a writable directory on the way without the sticky bit is refused with chmod go-w', () => {
    const root = fresh();
    const open = dir(join(root, 'open'), 0o777);
    const message = refusal(() => trustedRealPath(join(open, 'home'), OPTIONS));
    assert.match(message, new RegExp(`${open} is writable by group or others \\(mode 777\\) without the sticky bit`));
    assert.match(message, new RegExp(`chmod go-w ${open}`));
  });

  test('the home itself: owned by the caller, not writable by group or others even if sticky', () => {
    const root = fresh();
    const foreign = dir(join(root, 'foreign'), 0o700, OTHER);
    assert.match(refusal(() => trustedRealPath(foreign, OPTIONS)), new RegExp(`${foreign} is owned by uid ${OTHER}, not by you`));
    const sticky = dir(join(root, 'sticky'), 0o1777);
    const message = refusal(() => trustedRealPath(sticky, { ...OPTIONS, chmodFix: `chmod 700 ${sticky}` }));
    assert.match(message, /writable by group or others \(mode 1777\)/);
    assert.match(message, new RegExp(`Run: chmod 700 ${sticky}`));
    // Reached through a trusted symlink, the target's own rule still applies.
    symlinkSync(foreign, join(root, 'to-foreign'));
    assert.match(refusal(() => trustedRealPath(join(root, 'to-foreign'), OPTIONS)), /owned by uid 65534, not by you/);
  });

  test('the caller is whoever the uid says: root-owned parents pass, another user is refused', () => {
    const root = fresh();
    chmodSync(root, 0o755);
    const home = dir(join(root, 'home'), 0o700, OTHER);
    assert.equal(trustedRealPath(home, { ...OPTIONS, uid: OTHER }), home);
    const other = dir(join(root, 'by-1000'), 0o755, 1000);
    dir(join(other, 'home'), 0o700, OTHER);
    assert.match(refusal(() => trustedRealPath(join(other, 'home'), { ...OPTIONS, uid: OTHER })), /owned by uid 1000, not by you \(uid 65534\) or root/);
  });

  test('a file on the way and a symlink cycle are refused, the cycle within a bound', () => {
    const root = fresh();
    writeFileSync(join(root, 'file'), '');
    assert.match(refusal(() => trustedRealPath(join(root, 'file', 'home'), OPTIONS)), /is not a directory/);
    assert.match(refusal(() => trustedRealPath(join(root, 'file'), OPTIONS)), /is not a directory/);
    symlinkSync(join(root, 'b'), join(root, 'a'));
    symlinkSync(join(root, 'a'), join(root, 'b'));
    assert.match(refusal(() => trustedRealPath(join(root, 'a'), OPTIONS)), /more than 40 symlinks/);
  });
});

describe('safe-files: opening files of the home', () => {
  test('a symlink is neither appended through nor read through; its target is untouched', () => {
    const root = fresh();
    const target = join(root, 'precious');
    writeFileSync(target, 'keep\n');
    symlinkSync(target, join(root, 'app.out.log'));
    assert.match(refusal(() => openOwnedFile(join(root, 'app.out.log'), 'append')), /app\.out\.log is a symbolic link; .*rm /);
    assert.match(refusal(() => readOwnedFile(join(root, 'app.out.log'))), /is a symbolic link/);
    assert.equal(readFileSync(target, 'utf8'), 'keep\n');
  });

  test("another user's regular file is refused; the caller's own is opened, and created 0600", () => {
    const root = fresh();
    writeFileSync(join(root, 'theirs'), 'x');
    chownSync(join(root, 'theirs'), OTHER, OTHER);
    assert.match(refusal(() => openOwnedFile(join(root, 'theirs'), 'append')), new RegExp(`is owned by uid ${OTHER}, not by you`));
    assert.match(refusal(() => readOwnedFile(join(root, 'theirs'))), /is owned by uid 65534/);
    const mine = join(root, 'mine');
    closeSync(openOwnedFile(mine, 'append'));
    assert.equal(lstatSync(mine).mode & 0o777, 0o600);
    closeSync(openOwnedFile(mine, 'read'));
    assert.throws(() => readOwnedFile(join(root, 'absent')), (error: NodeJS.ErrnoException) => error.code === 'ENOENT');
  });

  test('a FIFO is refused at once for reading and appending (it would block the daemon)', () => {
    const root = fresh();
    const fifo = join(root, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.match(refusal(() => openOwnedFile(fifo, 'append')), /not a regular file/);
    assert.match(refusal(() => openOwnedFile(fifo, 'read')), /not a regular file/);
  });

  test('an atomic write replaces a planted symlink (at the name or at the temp name) instead of following it', () => {
    const root = fresh();
    const target = join(root, 'precious');
    writeFileSync(target, 'keep\n');
    const file = join(root, 'registry.json');
    symlinkSync(target, `${file}.${process.pid}.tmp`);
    symlinkSync(target, file);
    writeOwnedFileAtomic(file, '{"ok":true}');
    assert.equal(readFileSync(target, 'utf8'), 'keep\n');
    assert.ok(lstatSync(file).isFile());
    assert.equal(lstatSync(file).mode & 0o777, 0o600);
    assert.equal(readFileSync(file, 'utf8'), '{"ok":true}');
    assert.throws(() => readlinkSync(`${file}.${process.pid}.tmp`), /ENOENT/);
  });

  test("the TUI's log pane shows why instead of a symlinked file's content, also as the target grows", () => {
    const root = fresh();
    const secret = join(root, 'secret');
    writeFileSync(secret, 'CONTENT-OF-ANOTHER-FILE\n');
    symlinkSync(secret, join(root, 'app.out.log'));
    const pane = new LogTail(10);
    pane.follow({ out: join(root, 'app.out.log'), err: join(root, 'app.err.log') });
    appendFileSync(secret, 'MORE-OF-IT\n');
    pane.poll();
    const text = pane.lines.map((line) => line.text).join('\n');
    assert.doesNotMatch(text, /CONTENT-OF-ANOTHER-FILE|MORE-OF-IT/);
    assert.match(text, /app\.out\.log is a symbolic link/);
  });
});
