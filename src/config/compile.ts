/**
 * A `.ts` config and the TypeScript files it imports, compiled into one JavaScript module after a
 * successful type check, from the very text the check read. A start whose check is remembered runs this
 * module instead of registering tsx (its loader thread and esbuild cost more than the rest of a start).
 *
 * What a file sees is what it sees under tsx:
 * - its own `import.meta.url` / `dirname` / `filename`, `__dirname` and `__filename`, each file its own
 *   (replaced per file, before bundling: the bundle lives elsewhere);
 * - the module system tsx runs it in: CommonJS for a `.ts` outside a `"type": "module"` package (and
 *   `.cts`), ESM otherwise; the bundle is emitted in that format, and every file in it must share it;
 * - what it imports from outside the bundle (node_modules, `.js`/`.json` files, builtins) is resolved
 *   now, from the file that imports it, and loaded natively by absolute path when the bundle runs;
 *   `agentpm` is left to the running agentpm's resolver, as for any config.
 * Whatever cannot keep that (a dynamic `import()` or `require()` of a computed name, another use of
 * `import.meta`, a `.tsx`, files of both module systems, a bundled file the check did not read) is not
 * compiled: such a config keeps running through tsx.
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Plugin } from 'esbuild';

export type ModuleFormat = 'esm' | 'cjs';

export type Compiled =
  | {
      ok: true;
      format: ModuleFormat;
      code: string;
      /** Absolute paths of the files the bundle loads natively: gone, the bundle is stale. */
      externals: string[];
    }
  /** lasting: the same files would be refused again (remembered); else (esbuild failed) worth another try. */
  | { ok: false; reason: string; lasting: boolean };

const BUNDLED = new Set(['.ts', '.mts', '.cts']);
const BUILTINS = new Set(builtinModules);

class Refused extends Error {}

/** The format node (and so tsx) gives a file: by extension, else by the nearest package.json's "type". */
export function formatOf(file: string, texts: ReadonlyMap<string, string>): ModuleFormat {
  const extension = extname(file);
  if (extension === '.mts' || extension === '.mjs') return 'esm';
  if (extension === '.cts' || extension === '.cjs') return 'cjs';
  for (let dir = dirname(file); ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    const text = texts.get(manifest);
    if (text !== undefined) {
      try {
        return (JSON.parse(text) as { type?: unknown }).type === 'module' ? 'esm' : 'cjs';
      } catch {
        throw new Refused(`${manifest} is not valid JSON`);
      }
    }
    // One the check did not read could be edited without a new check: its "type" is not trusted.
    if (existsSync(manifest)) throw new Refused(`${manifest} was not read by the type check`);
    if (dirname(dir) === dir) return 'cjs';
  }
}

/** `texts`: every file the type check read, with the text it read (the bundle is made of those alone). */
export async function compileConfig(file: string, texts: ReadonlyMap<string, string>): Promise<Compiled> {
  try {
    if (!BUNDLED.has(extname(file)) || !texts.has(file)) throw new Refused(`${file} is not a TypeScript file the check read`);
    const format = formatOf(file, texts);
    const esbuild = await import('esbuild');
    const externals = new Set<string>();
    const plugin: Plugin = {
      name: 'agentpm-config',
      setup(build) {
        build.onResolve({ filter: /.*/ }, async (args) => {
          if (args.kind === 'entry-point' || args.pluginData === 'inner') return undefined;
          if (args.path === 'agentpm' || args.path.startsWith('node:') || BUILTINS.has(args.path)) return { path: args.path, external: true };
          if (args.kind !== 'import-statement' && args.kind !== 'dynamic-import' && args.kind !== 'require-call') {
            throw new Refused(`${args.importer} loads ${args.path} by ${args.kind}`);
          }
          // As node would resolve it for the module system the bundle runs in (tsx turns imports into require() in CommonJS).
          const kind = format === 'cjs' ? 'require-call' : args.kind === 'require-call' ? 'require-call' : 'import-statement';
          const found = await build.resolve(args.path, { kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: 'inner' });
          if (found.errors.length > 0 || found.path === '') throw new Refused(`cannot resolve ${args.path} from ${args.importer}`);
          if (BUNDLED.has(extname(found.path))) return { path: found.path };
          if (/\.[jt]sx$/.test(found.path)) throw new Refused(`${found.path} is JSX`);
          externals.add(found.path);
          return { path: format === 'esm' ? pathToFileURL(found.path).href : found.path, external: true };
        });
        build.onLoad({ filter: /.*/ }, async (args) => {
          const text = texts.get(args.path);
          if (text === undefined) throw new Refused(`${args.path} was not read by the type check`);
          if (formatOf(args.path, texts) !== format) throw new Refused(`${args.path} and ${file} run in different module systems`);
          const meta: Record<string, string> = {
            'import.meta.url': JSON.stringify(pathToFileURL(args.path).href),
            'import.meta.dirname': JSON.stringify(dirname(args.path)),
            'import.meta.filename': JSON.stringify(args.path),
          };
          if (format === 'cjs') Object.assign(meta, { __dirname: meta['import.meta.dirname'], __filename: meta['import.meta.filename'] });
          const { code } = await esbuild.transform(text, { loader: 'ts', define: meta, sourcefile: args.path, target: 'node20', logLevel: 'silent' });
          if (/\bimport\.meta\b/.test(code)) throw new Refused(`${args.path} uses import.meta beyond url, dirname and filename`);
          return { contents: code, loader: 'js', resolveDir: dirname(args.path) };
        });
      },
    };
    const result = await esbuild.build({
      entryPoints: [file],
      bundle: true,
      write: false,
      format,
      platform: 'node',
      target: 'node20',
      // Node's own resolution: no "module" condition or field, which esbuild would otherwise prefer.
      conditions: [],
      mainFields: ['main'],
      logLevel: 'silent',
      plugins: [plugin],
    });
    const code = result.outputFiles[0]?.text;
    if (code === undefined) throw new Refused('esbuild produced no output');
    // A name computed at run time would be resolved from the bundle's place, not the importing file's.
    if (/\bimport\s*\(\s*(?!")/.test(code)) throw new Refused('it imports a module whose name is computed at run time');
    if (format === 'esm' && /\b__require\b/.test(code)) throw new Refused('it calls require() in an ES module');
    if (format === 'cjs' && /\brequire\s*\(\s*(?!")/.test(code.replace(/\b__require\b/g, ''))) throw new Refused('it requires a module whose name is computed at run time');
    return { ok: true, format, code, externals: [...externals].sort() };
  } catch (error) {
    const refused = error instanceof Refused ? error : ((error as { errors?: { detail?: unknown; text: string }[] }).errors?.[0]?.detail as Error | undefined);
    if (refused instanceof Refused) return { ok: false, reason: refused.message, lasting: true };
    const first = (error as { errors?: { text: string }[] }).errors?.[0]?.text ?? (error as Error).message;
    return { ok: false, reason: `esbuild: ${String(first).split('\n')[0]}`, lasting: false };
  }
}
