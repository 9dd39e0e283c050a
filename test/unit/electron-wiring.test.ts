import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { channelOf, methods } from '../../shared/contract';
import { CHOOSE_FOLDER_CHANNEL } from '../../shared/wire';

// The Electron binary cannot run here: the shell's wiring is tested against a recording stand-in
// for the `electron` module (the same calls the real one receives).
const state = vi.hoisted(() => ({
  handlers: new Map<string, (event: unknown, ...args: unknown[]) => Promise<unknown>>(),
  exposed: {} as Record<string, Record<string, unknown>>,
  windows: [] as {
    options: { webPreferences: Record<string, unknown> };
    webContents: { mainFrame: object };
  }[],
  invoked: [] as unknown[][],
  menu: undefined as unknown,
  dialogs: [] as unknown[][],
}));

vi.mock('electron', () => {
  class BrowserWindow {
    webContents = { mainFrame: {}, on() {}, setWindowOpenHandler() {}, send() {} };
    constructor(readonly options: { webPreferences: Record<string, unknown> }) {
      state.windows.push(this);
    }
    static getAllWindows() {
      return state.windows;
    }
    once() {}
    show() {}
    isDestroyed() {
      return false;
    }
    loadFile() {
      return Promise.resolve();
    }
    loadURL() {
      return Promise.resolve();
    }
  }
  return {
    app: {
      whenReady: () => Promise.resolve(),
      on() {},
      quit() {},
      getPath: () => join(tmpdir(), `tv-wiring-${process.pid}`),
    },
    BrowserWindow,
    ipcMain: {
      handle: (channel: string, fn: (event: unknown, ...args: unknown[]) => Promise<unknown>) =>
        state.handlers.set(channel, fn),
    },
    session: {
      defaultSession: { webRequest: { onHeadersReceived() {} }, setPermissionRequestHandler() {} },
    },
    shell: { openExternal() {} },
    dialog: {
      showOpenDialog: async (...args: unknown[]) => {
        state.dialogs.push(args);
        return { canceled: false, filePaths: ['/home/someone/restored'] };
      },
    },
    Menu: {
      buildFromTemplate: (template: unknown) => template,
      setApplicationMenu: (menu: unknown) => (state.menu = menu),
    },
    safeStorage: {
      isEncryptionAvailable: () => true,
      encryptString: (s: string) => Buffer.from(s),
      decryptString: (b: Buffer) => b.toString(),
    },
    contextBridge: {
      exposeInMainWorld: (key: string, value: Record<string, unknown>) =>
        (state.exposed[key] = value),
    },
    ipcRenderer: {
      invoke: async (...args: unknown[]) => state.invoked.push(args),
      on() {},
      off() {},
    },
    webUtils: { getPathForFile: () => '/dropped/file' },
  };
});

describe('Electron shell wiring (without the binary)', () => {
  it('registers a main-process handler for every contract entry and the folder picker, and only those', async () => {
    await import('../../electron/main/index');
    for (let i = 0; i < 100 && state.handlers.size === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect([...state.handlers.keys()].sort()).toEqual(
      [...methods.map(channelOf), CHOOSE_FOLDER_CHANNEL].sort(),
    );
  });

  it('the folder picker opens a folder dialog on the window and answers with the chosen path', async () => {
    const window = state.windows[0]!;
    const own = { sender: window.webContents, senderFrame: window.webContents.mainFrame };
    const choose = state.handlers.get(CHOOSE_FOLDER_CHANNEL)!;
    await expect(choose({ sender: {}, senderFrame: {} })).rejects.toThrow(/unknown frame/);
    await expect(choose(own)).resolves.toBe('/home/someone/restored');
    expect(state.dialogs.at(-1)![0]).toBe(window);
    expect(state.dialogs.at(-1)![1]).toMatchObject({
      properties: expect.arrayContaining(['openDirectory', 'createDirectory']),
    });
  });

  it('sets an application menu (file, edit, view, window)', () => {
    expect(state.menu).toEqual(
      expect.arrayContaining([
        { role: 'fileMenu' },
        { role: 'editMenu' },
        { role: 'viewMenu' },
        { role: 'windowMenu' },
      ]),
    );
  });

  it('opens the window isolated: context isolation, sandbox, no Node integration', () => {
    expect(state.windows).toHaveLength(1);
    expect(state.windows[0]!.options.webPreferences).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webviewTag: false,
    });
  });

  it('refuses calls from another frame, and malformed arguments with a clear error', async () => {
    const window = state.windows[0]!;
    const appInfo = state.handlers.get(channelOf('appInfo'))!;
    await expect(appInfo({ sender: {}, senderFrame: {} })).rejects.toThrow(/unknown frame/);
    const own = { sender: window.webContents, senderFrame: window.webContents.mainFrame };
    await expect(appInfo(own)).resolves.toMatchObject({ product: 'TensorVault', mode: 'desktop' });
    await expect(state.handlers.get(channelOf('log'))!(own, 42)).rejects.toThrow(
      /^log: argument 0: /,
    );
    await expect(
      state.handlers.get(channelOf('pushPaths'))!(own, 'id', 'model', [], ''),
    ).rejects.toThrow(/pushPaths: argument 2/);
  });

  it('keeps settings in the user-data folder with secrets encrypted, never in plain text', async () => {
    const { mkdir, readFile } = await import('node:fs/promises');
    const { DesktopSettings } = await import('../../electron/main/settings');
    const { DEFAULT_SETTINGS } = await import('../../electron/engine/settings');
    await mkdir(join(tmpdir(), `tv-wiring-${process.pid}`), { recursive: true });
    const settings = new DesktopSettings();
    await settings.save({
      ...DEFAULT_SETTINGS,
      repository: 's3://team/models',
      s3SecretAccessKey: 'wJalrXUtnFEMI-secret',
      redisPassword: 'hunter2',
    });
    const onDisk = await readFile(
      join(tmpdir(), `tv-wiring-${process.pid}`, 'settings.json'),
      'utf8',
    );
    expect(onDisk).toContain('s3://team/models');
    expect(onDisk).not.toContain('wJalrXUtnFEMI-secret');
    expect(onDisk).not.toContain('hunter2');
    expect(await settings.load()).toMatchObject({
      repository: 's3://team/models',
      s3SecretAccessKey: 'wJalrXUtnFEMI-secret',
      redisPassword: 'hunter2',
    });
  });

  it('the preload exposes exactly the contract, the events, dropped-file paths and the folder picker', async () => {
    await import('../../electron/preload/index');
    expect(Object.keys(state.exposed).sort()).toEqual(['tensorvault', 'tensorvaultBridge']);
    expect(Object.keys(state.exposed['tensorvault']!).sort()).toEqual([...methods].sort());
    expect(Object.keys(state.exposed['tensorvaultBridge']!).sort()).toEqual([
      'chooseFolder',
      'on',
      'pathForFile',
    ]);
    await (state.exposed['tensorvault']!['models'] as () => Promise<unknown>)();
    expect(state.invoked.at(-1)).toEqual([channelOf('models')]);
    await (state.exposed['tensorvaultBridge']!['chooseFolder'] as () => Promise<unknown>)();
    expect(state.invoked.at(-1)).toEqual([CHOOSE_FOLDER_CHANNEL]);
  });
});
