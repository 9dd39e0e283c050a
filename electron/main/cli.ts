import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

// `tv` from the packaged app. The deb links /usr/bin/tv to resources/bin/tv (build/linux). An
// AppImage cannot install anything, so the app, when it runs from one, keeps ~/.local/bin/tv (the
// user's own bin folder, on PATH in most distributions) pointing at it: that script runs the
// AppImage with TV_CLI=1, and the app's main process then runs the bundled command line as
// plain Node (ELECTRON_RUN_AS_NODE) with the same arguments, and exits with its status.

/** The first line after the shebang: how a script of ours is told from someone else's `tv`. */
const MARK = '# tv: written by TensorVault';

/** The script ~/.local/bin/tv holds for an AppImage at `appImage`. */
export function appImageScript(appImage: string): string {
  const quoted = `'${appImage.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh
${MARK} for ${quoted} (it rewrites this file when the AppImage moves).
TV_CLI=1 exec ${quoted} "$@"
`;
}

/**
 * Writes ~/.local/bin/tv for the AppImage at `appImage`: when there is none, or when it is ours
 * (an older AppImage path); never over someone else's `tv`.
 */
export async function installAppImageCli(
  appImage: string,
  home = homedir(),
): Promise<'installed' | 'current' | 'foreign'> {
  const target = join(home, '.local', 'bin', 'tv');
  const wanted = appImageScript(appImage);
  const present = await readFile(target, 'utf8').catch(() => undefined);
  if (present === wanted) return 'current';
  if (present !== undefined && !present.split('\n')[1]?.startsWith(MARK)) return 'foreign';
  await mkdir(dirname(target), { recursive: true });
  const temp = `${target}.${process.pid}.tmp`;
  await writeFile(temp, wanted, { mode: 0o755 });
  await rename(temp, target);
  return 'installed';
}

/**
 * The command line's arguments from the app's: what follows the executable, without the
 * switches the AppImage's launcher adds for Chromium.
 */
export function cliArguments(argv: readonly string[]): string[] {
  return argv.slice(1).filter((arg) => arg !== '--no-sandbox');
}

/** The bundled command line beside the app's archive (app.asar.unpacked/out/cli/tv.mjs). */
export function cliEntry(appPath: string): string {
  return join(`${appPath}.unpacked`, 'out', 'cli', 'tv.mjs');
}
