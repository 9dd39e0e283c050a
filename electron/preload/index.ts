import { contextBridge, ipcRenderer } from 'electron';
import { channelOf, methods, type Api } from '../../shared/contract';

// Exposes exactly the contract, each call a typed invoke on its channel; nothing else of Node or
// Electron reaches the page.
const api = Object.fromEntries(
  methods.map((method) => [
    method,
    (...args: unknown[]) => ipcRenderer.invoke(channelOf(method), ...args),
  ]),
) as Api;

contextBridge.exposeInMainWorld('tensorvault', api);
