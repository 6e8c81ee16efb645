// Bundles the `ls` fast path (dist/cli/fast-ls.js and what it imports) into one CommonJS file,
// dist/fast-ls.cjs, which bin/agentpm (CommonJS itself) requires. Loading a dozen ES modules costs a
// fresh `node` more than the rest of `agentpm ls --json` together: the ESM loader resolves, reads and
// links each one, and builds a facade for each builtin. One CommonJS file skips all of it.
// Run by `npm run build` after tsc; bin/agentpm falls back to dist/cli/fast-ls.js when the bundle is absent.
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/cli/fast-ls.js'],
  outfile: 'dist/fast-ls.cjs',
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // The bundle sits beside dist/package-files.js, the one module whose paths depend on its location.
  banner: { js: "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  define: { 'import.meta.url': '__bundleUrl' },
  logLevel: 'warning',
});
