#!/usr/bin/env node
// Makes sure the programs the test suite runs for real are installed: redis-server (the cache) and
// Chromium (end-to-end tests). On Debian/Ubuntu as root it installs them with apt and says so;
// elsewhere it stops with one line naming what to install.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const REQUIRED = [
  { command: 'redis-server', aptPackage: 'redis-server', present: () => onPath('redis-server') },
  {
    command: 'chromium',
    // fonts-liberation is only recommended by chromium; pages need a font to lay text out.
    aptPackage: 'chromium fonts-liberation',
    present: () => existsSync('/usr/bin/chromium') || onPath('chromium'),
  },
];

function onPath(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

export function ensureSystemDeps() {
  const missing = REQUIRED.filter((dep) => !dep.present());
  if (missing.length === 0) return;
  const packages = missing.flatMap((dep) => dep.aptPackage.split(' '));
  const isDebian = existsSync('/etc/debian_version');
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isDebian && isRoot) {
    console.error(
      `tests: installing ${packages.join(' and ')} with apt-get (needed by the test suite)`,
    );
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...packages], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
    return;
  }
  console.error(
    `tests need ${missing.map((d) => d.command).join(' and ')}: install ${packages.join(' and ')} ` +
      `(Debian/Ubuntu: sudo apt-get install ${packages.join(' ')}) and run npm test again`,
  );
  process.exit(1);
}

if (import.meta.url === `file://${process.argv[1]}`) ensureSystemDeps();
