#!/usr/bin/env node
// `npm start`: launches the desktop app. Where Electron cannot start (its binary is not installed
// and cannot be fetched, or there is no display) it says why in one line and points to browser mode.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const hint = 'run `npm run serve` to use TensorVault in a browser instead';

if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
  console.error(
    `TensorVault: no display (DISPLAY and WAYLAND_DISPLAY are unset), so the desktop app cannot open; ${hint}`,
  );
  process.exit(1);
}

let electronPath;
try {
  // The electron package fetches its binary on first use; this fails fast where it cannot.
  const quiet = console.log;
  console.log = () => {};
  try {
    electronPath = require('electron');
  } finally {
    console.log = quiet;
  }
} catch {
  console.error(
    `TensorVault: the Electron binary is not installed and could not be downloaded; ${hint}`,
  );
  process.exit(1);
}

const child = spawn(electronPath, ['.'], { stdio: 'inherit' });
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 0)));
