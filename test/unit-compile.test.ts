import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { compileConfig, formatOf } from '../src/config/compile.js';

/** A project in a temp directory; the texts map holds what a type check would have read (all of it). */
function project(t: TestContext, files: Record<string, string>): { dir: string; texts: Map<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'agentpm-unit-compile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const texts = new Map<string, string>();
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
    texts.set(join(dir, name), content);
  }
  return { dir, texts };
}

test('the module format is the one node gives the file: by extension, else by the nearest package.json the check read', (t) => {
  const { dir, texts } = project(t, { 'package.json': '{"type":"module"}', 'a.ts': '', 'sub/package.json': '{}', 'sub/b.ts': '', 'c.cts': '', 'sub/d.mts': '' });
  assert.equal(formatOf(join(dir, 'a.ts'), texts), 'esm');
  assert.equal(formatOf(join(dir, 'sub', 'b.ts'), texts), 'cjs');
  assert.equal(formatOf(join(dir, 'c.cts'), texts), 'cjs');
  assert.equal(formatOf(join(dir, 'sub', 'd.mts'), texts), 'esm');
});

test('a config is compiled from the texts given (not the disk), each file with its own import.meta, imports outside the bundle by absolute URL', async (t) => {
  const { dir, texts } = project(t, {
    'package.json': '{"type":"module"}',
    'lib/helper.ts': 'export const where: string = import.meta.url;\n',
    'lib/plain.js': 'export const plain = 1;\n',
    'ecosystem.config.ts': "import { where } from './lib/helper.ts';\nimport { plain } from './lib/plain.js';\nexport default { apps: [], where, own: import.meta.dirname, plain };\n",
  });
  // The disk has moved on since the check: the text the check read is what is compiled.
  writeFileSync(join(dir, 'lib', 'helper.ts'), 'export const where = "edited after the check";\n');
  const compiled = await compileConfig(join(dir, 'ecosystem.config.ts'), texts);
  assert.ok(compiled.ok, compiled.ok ? '' : compiled.reason);
  assert.equal(compiled.format, 'esm');
  assert.match(compiled.code, new RegExp(JSON.stringify(`file://${join(dir, 'lib', 'helper.ts')}`).replaceAll('/', '\\/')));
  assert.doesNotMatch(compiled.code, /edited after the check/);
  assert.match(compiled.code, new RegExp(`from ${JSON.stringify(`file://${join(dir, 'lib', 'plain.js')}`)}`.replaceAll('/', '\\/')));
  assert.deepEqual(compiled.externals, [join(dir, 'lib', 'plain.js')]);
  assert.doesNotMatch(compiled.code, /import\.meta/);
});

test('what a bundle could not keep the meaning of is refused, with the reason (the config then runs through tsx)', async (t) => {
  const cases: [string, Record<string, string>, RegExp][] = [
    ['import.meta.resolve', { 'ecosystem.config.ts': "export default { apps: [], r: import.meta.resolve('./x.js') };\n" }, /uses import\.meta beyond url, dirname and filename/],
    ['a computed import()', { 'ecosystem.config.ts': "const name = './x.ts';\nexport default { apps: [], m: await import(name) };\n" }, /imports a module whose name is computed at run time/],
    ['require() in ESM', { 'ecosystem.config.ts': "export default { apps: [], r: require('node:fs') };\n" }, /calls require\(\) in an ES module/],
    ['a file the check did not read', { 'ecosystem.config.ts': "import './unread.ts';\nexport default { apps: [] };\n" }, /unread\.ts was not read by the type check/],
  ];
  for (const [what, files, reason] of cases) {
    const { dir, texts } = project(t, { 'package.json': '{"type":"module"}', ...files });
    if (what === 'a file the check did not read') writeFileSync(join(dir, 'unread.ts'), 'export {};\n');
    const compiled = await compileConfig(join(dir, 'ecosystem.config.ts'), texts);
    assert.equal(compiled.ok, false, what);
    assert.match(compiled.ok ? '' : compiled.reason, reason, what);
  }
  // A package.json on disk that the check did not read would decide the format unchecked.
  const { dir, texts } = project(t, { 'ecosystem.config.ts': 'export default { apps: [] };\n' });
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
  const compiled = await compileConfig(join(dir, 'ecosystem.config.ts'), texts);
  assert.match(compiled.ok ? '' : compiled.reason, /package\.json was not read by the type check/);
});
