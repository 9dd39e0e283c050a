import { contextBridge, ipcRenderer, webUtils } from 'electron';
import {
  channelOf,
  eventChannelOf,
  eventNames,
  methods,
  type Api,
  type EventName,
  type Events,
} from '../../shared/contract';
import { CHOOSE_FOLDER_CHANNEL, type Bridge } from '../../shared/wire';

// Exposes exactly the contract (each call a typed invoke on its channel), its events, and the
// local path of a dropped or picked file, and the folder picker; nothing else of Node or Electron reaches the page.
const api = Object.fromEntries(
  methods.map((method) => [
    method,
    (...args: unknown[]) => ipcRenderer.invoke(channelOf(method), ...args),
  ]),
) as Api;

const bridge: Bridge = {
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void) {
    if (!eventNames.includes(event)) throw new Error(`unknown event "${String(event)}"`);
    const handler = (_: unknown, payload: Events[E]) => listener(payload);
    ipcRenderer.on(eventChannelOf(event), handler);
    return () => void ipcRenderer.off(eventChannelOf(event), handler);
  },
  pathForFile: (file: File) => webUtils.getPathForFile(file),
  chooseFolder: () => ipcRenderer.invoke(CHOOSE_FOLDER_CHANNEL) as Promise<string | null>,
};

contextBridge.exposeInMainWorld('tensorvault', api);
contextBridge.exposeInMainWorld('tensorvaultBridge', bridge);
