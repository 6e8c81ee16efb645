/**
 * Files of the installed package, located from this module. It sits at the top of dist/, as does the
 * bundled `ls` fast path (dist/fast-ls.cjs, see scripts/bundle-ls.mjs): a bundle has one location for all
 * the modules in it, so every path that depends on where a module is must be resolved here.
 */
import { fileURLToPath } from 'node:url';

export const PACKAGE_JSON = new URL('../package.json', import.meta.url);
/** The daemon's entry point, which the CLI launches and which identifies a daemon in /proc. */
export const DAEMON_MAIN = fileURLToPath(new URL('./daemon/main.js', import.meta.url));
