/**
 * Type-checking a `.ts` config before it runs: tsx only strips types, so without this a config with a
 * type error would run (and perhaps start something) anyway. Uses the TypeScript compiler of the
 * config's own project if it has one, else agentpm's; without either, the check is skipped and said so.
 * `import ... from 'agentpm'` is checked against agentpm's own declarations wherever the config lives.
 * No tsconfig.json is read: the options are agentpm's own (below), the same for every config.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

type TypeScript = typeof import('typescript');

const OWN_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const OWN_DECLARATIONS = join(OWN_ROOT, 'dist', 'index.d.ts');
/** Errors that come from the environment (a missing @types package), not from the config itself. */
const ENVIRONMENT_CODES = new Set([2580, 2591, 2592, 2688, 2503]);

/** The compiler a config is checked with, found without loading it (loading alone takes a few hundred ms). */
export interface Compiler {
  /** The resolved entry of the `typescript` package. */
  entry: string;
  version: string;
}

export function findCompiler(file: string): Compiler | null {
  for (const from of [file, join(OWN_ROOT, 'package.json')]) {
    let entry: string;
    try {
      entry = createRequire(from).resolve('typescript');
    } catch {
      continue; // not installed there
    }
    let version = 'unknown';
    try {
      const manifest = JSON.parse(readFileSync(join(dirname(entry), '..', 'package.json'), 'utf8')) as { version?: unknown };
      if (typeof manifest.version === 'string') version = manifest.version;
    } catch {
      // an unusual layout: the version stays unknown, and the entry path still tells compilers apart
    }
    return { entry, version };
  }
  return null;
}

/**
 * The compiler options of a config's check, in tsconfig's JSON form: one value, so that what the cache
 * key says (checkSettings) is what the check uses. The type roots that exist are part of it: whether
 * @types/node is there changes the result.
 */
function optionsFor(file: string): Record<string, unknown> {
  const typeRoots = [join(dirname(file), 'node_modules', '@types'), join(OWN_ROOT, 'node_modules', '@types')].filter((dir) => existsSync(dir));
  return {
    noEmit: true,
    strict: true,
    skipLibCheck: true,
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    allowImportingTsExtensions: true,
    typeRoots,
    types: typeRoots.some((dir) => existsSync(join(dir, 'node'))) ? ['node'] : [],
    paths: { agentpm: [OWN_DECLARATIONS] },
  };
}

/** What, besides the files it reads, decides the result of a check: for a cache key. */
export function checkSettings(file: string, compiler: Compiler): string {
  return JSON.stringify({ compiler: compiler.entry, version: compiler.version, options: optionsFor(file) });
}

export interface TypeCheck {
  /** Formatted, each naming the file, line and column; empty when the config type-checks. */
  errors: string[];
  /** Every file the compiler read (the config, what it imports, the declarations and package.json files
   *  it consulted), with the text it read; not the compiler's own default libraries. */
  read: Map<string, string>;
}

export function typeCheck(file: string, compiler: Compiler): TypeCheck {
  const ts = createRequire(compiler.entry)(compiler.entry) as TypeScript;
  // An older compiler (the config project's own) leaves out an option it does not know, as it would in
  // a tsconfig.json: its errors here are not the config's.
  const { options } = ts.convertCompilerOptionsFromJson(optionsFor(file), dirname(file));
  const host = ts.createCompilerHost(options);
  const libDir = dirname(host.getDefaultLibFileName(options));
  const read = new Map<string, string>();
  const readFile = host.readFile.bind(host);
  host.readFile = (name: string): string | undefined => {
    const text = readFile(name);
    if (text !== undefined && dirname(name) !== libDir) read.set(name, text);
    return text;
  };
  const program = ts.createProgram({ rootNames: [file], options, host });
  const errors = ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file?.fileName === file.replaceAll('\\', '/') && !ENVIRONMENT_CODES.has(diagnostic.code))
    .map((diagnostic) => {
      const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n');
      if (!diagnostic.file || diagnostic.start === undefined) return message;
      const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      return `${file}:${line + 1}:${character + 1}: TS${diagnostic.code}: ${message}`;
    });
  return { errors, read };
}

/** The type errors of a config file, formatted; null when no TypeScript compiler is available. */
export function typeErrorsOf(file: string): string[] | null {
  const compiler = findCompiler(file);
  return compiler === null ? null : typeCheck(file, compiler).errors;
}
