import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { _electron as electron, expect, test } from '@playwright/test';

/** Where the Electron binary is, or why it cannot run here (fetched quietly on first use). */
function electronBinary(): { path?: string; reason?: string } {
  if (process.platform === 'linux' && !process.env['DISPLAY'] && !process.env['WAYLAND_DISPLAY']) {
    return {
      reason: 'no display (DISPLAY/WAYLAND_DISPLAY unset): the desktop window cannot open here',
    };
  }
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('electron/package.json'));
  const pathFile = join(dir, 'path.txt');
  const installed = () =>
    existsSync(pathFile) && existsSync(join(dir, 'dist', readFileSync(pathFile, 'utf8')));
  if (
    !installed() &&
    spawnSync(process.execPath, [join(dir, 'install.js')], { stdio: 'pipe' }).status !== 0
  ) {
    return {
      reason: 'the Electron binary is not installed and cannot be downloaded on this machine',
    };
  }
  return { path: require('electron') as string };
}

test('the desktop app opens its window and shows the shell', async () => {
  const binary = electronBinary();
  if (!binary.path) console.log(`electron smoke test skipped: ${binary.reason}`);
  test.skip(!binary.path, binary.reason ?? '');
  const app = await electron.launch({ executablePath: binary.path, args: ['.'] });
  try {
    const window = await app.firstWindow();
    await expect(window.getByRole('heading', { name: 'TensorVault' })).toBeVisible();
    await expect(window.getByTestId('app-version')).toContainText('desktop');
    const isolated = await window.evaluate(
      () => typeof (globalThis as { require?: unknown }).require === 'undefined',
    );
    expect(isolated).toBe(true);
  } finally {
    await app.close();
  }
});
