import { createRequire } from 'node:module';
import { _electron as electron, expect, test } from '@playwright/test';

/** Where the Electron binary is, or why it cannot run here. */
function electronBinary(): { path?: string; reason?: string } {
  if (process.platform === 'linux' && !process.env['DISPLAY'] && !process.env['WAYLAND_DISPLAY']) {
    return {
      reason: 'no display (DISPLAY/WAYLAND_DISPLAY unset): the desktop window cannot open here',
    };
  }
  try {
    const quiet = console.log;
    console.log = () => {};
    try {
      return { path: createRequire(import.meta.url)('electron') as string };
    } finally {
      console.log = quiet;
    }
  } catch {
    return {
      reason: 'the Electron binary is not installed and cannot be downloaded on this machine',
    };
  }
}

test('the desktop app opens its window and shows the shell', async () => {
  const binary = electronBinary();
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
