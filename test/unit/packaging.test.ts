import { execFileSync } from 'node:child_process';
import {
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  rm,
  symlink,
  writeFile,
  copyFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appImageScript, cliArguments, installAppImageCli } from '../../electron/main/cli';
import { VERSION } from '../../electron/engine/version';

// The packaged app's `tv`: the deb's scripts and wrapper, and the AppImage's ~/.local/bin/tv.
// electron-builder cannot build packages here (it downloads Electron), so each piece is run on
// its own: the wrapper with Node standing in for the app's Electron (which runs as Node under
// ELECTRON_RUN_AS_NODE), the AppImage's script with a stand-in AppImage.

const templates = 'node_modules/app-builder-lib/templates/linux';
/** A script's commands: its lines without comments and blank lines. */
const commands = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tv-packaging-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('the deb', () => {
  it("keeps every command of electron-builder's after-install and after-remove scripts", async () => {
    for (const [ours, theirs] of [
      ['build/linux/after-install.sh', 'after-install.tpl'],
      ['build/linux/after-remove.sh', 'after-remove.tpl'],
    ] as const) {
      const mine = commands(await readFile(ours, 'utf8'));
      for (const line of commands(await readFile(join(templates, theirs), 'utf8')))
        expect(mine, `${ours} lacks: ${line}`).toContain(line);
    }
    expect(await readFile('build/linux/after-install.sh', 'utf8')).toContain(
      'ln -sf "$TV_CLI" /usr/bin/tv',
    );
  });

  it("resources/bin/tv (what /usr/bin/tv links to) runs the bundled command line with the app's binary", async () => {
    // /opt/TensorVault as the deb lays it out, Node in place of the Electron binary.
    const opt = join(dir, 'opt', 'TensorVault');
    await mkdir(join(opt, 'resources', 'bin'), { recursive: true });
    await mkdir(join(opt, 'resources', 'app.asar.unpacked', 'out'), { recursive: true });
    await symlink(process.execPath, join(opt, 'tensorvault'));
    await copyFile('build/linux/tv', join(opt, 'resources', 'bin', 'tv'));
    await chmod(join(opt, 'resources', 'bin', 'tv'), 0o755);
    await symlink(resolve('out/cli'), join(opt, 'resources', 'app.asar.unpacked', 'out', 'cli'));
    await mkdir(join(dir, 'usr', 'bin'), { recursive: true });
    await symlink(join(opt, 'resources', 'bin', 'tv'), join(dir, 'usr', 'bin', 'tv'));
    const run = (...args: string[]) =>
      execFileSync(join(dir, 'usr', 'bin', 'tv'), args, {
        env: { ...process.env, TV_REPO: join(dir, 'repo'), TV_REDIS_URL: '' },
        encoding: 'utf8',
      });
    expect(run('--version').trim()).toBe(VERSION);
    expect(run('init', '--json')).toContain('"repositoryId"');
  });
});

describe('the AppImage', () => {
  it('keeps ~/.local/bin/tv pointing at itself, never over another tv', async () => {
    const home = join(dir, 'home');
    const appImage = join(dir, "Apps/Tensor Vault's.AppImage");
    expect(await installAppImageCli(appImage, home)).toBe('installed');
    expect(await installAppImageCli(appImage, home)).toBe('current');
    const script = join(home, '.local', 'bin', 'tv');
    expect(await readFile(script, 'utf8')).toBe(appImageScript(appImage));
    // Moved: rewritten.
    expect(await installAppImageCli(join(dir, 'moved.AppImage'), home)).toBe('installed');
    expect(await readFile(script, 'utf8')).toContain('moved.AppImage');
    // Someone else's tv stays.
    await writeFile(script, '#!/bin/sh\necho other tv\n');
    expect(await installAppImageCli(appImage, home)).toBe('foreign');
    expect(await readFile(script, 'utf8')).toBe('#!/bin/sh\necho other tv\n');
  });

  it('the script runs the AppImage with TV_CLI=1 and the arguments as given', async () => {
    const home = join(dir, 'home');
    const appImage = join(dir, "Apps/Tensor Vault's.AppImage");
    await mkdir(join(dir, 'Apps'), { recursive: true });
    // A stand-in AppImage: prints what it was run with.
    await writeFile(
      appImage,
      '#!/bin/sh\necho "TV_CLI=$TV_CLI"\nfor a in "$@"; do echo "[$a]"; done\n',
      {
        mode: 0o755,
      },
    );
    await installAppImageCli(appImage, home);
    const out = execFileSync(join(home, '.local', 'bin', 'tv'), ['push', 'my model', "it's"], {
      encoding: 'utf8',
    });
    expect(out.split('\n')).toEqual(['TV_CLI=1', '[push]', '[my model]', "[it's]", '']);
    // What the app's main process hands the command line: the launcher's Chromium switch dropped.
    expect(cliArguments(['/tmp/.mount/tensorvault', '--no-sandbox', 'log', 'm'])).toEqual([
      'log',
      'm',
    ]);
  });
});
