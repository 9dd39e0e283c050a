#!/usr/bin/env node
// `npm start`: launches the desktop app. Where Electron cannot start (its binary is not installed
// and cannot be fetched, or there is no display) it says why in one line and points to browser mode.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);
const hint = 'run `npm run serve` to use TensorVault in a browser instead';
const fail = (why) => {
  console.error(`TensorVault: ${why}; ${hint}`);
  process.exit(1);
};

if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
  fail('no display (DISPLAY and WAYLAND_DISPLAY are unset), so the desktop app cannot open');
}

// The electron package fetches its binary on first use: do that here, quietly, so a failure is
// one line rather than a stack trace.
const electronDir = dirname(require.resolve('electron/package.json'));
const pathFile = join(electronDir, 'path.txt');
const installed =
  existsSync(pathFile) && existsSync(join(electronDir, 'dist', readFileSync(pathFile, 'utf8')));
if (!installed) {
  console.error('TensorVault: fetching the Electron binary (first start)…');
  const fetched = spawnSync(process.execPath, [join(electronDir, 'install.js')], { stdio: 'pipe' });
  if (fetched.status !== 0)
    fail('the Electron binary is not installed and could not be downloaded');
}

const child = spawn(require('electron'), ['.'], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
