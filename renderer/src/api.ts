import { methods, type Api, type EventName, type Events } from '../../shared/contract';
import type { Bridge, WireEvent, WireRequest, WireResponse } from '../../shared/wire';

declare global {
  interface Window {
    /** Set by the Electron preload; absent in browser mode. */
    tensorvault?: Api;
    tensorvaultBridge?: Bridge;
  }
}

type Listener = (payload: unknown) => void;

/** The browser-mode transport: the same contract over a WebSocket to `tv serve`, events included. */
function webSocketTransport(): { api: Api; bridge: Bridge } {
  const url = new URL('/api', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  let opened: Promise<WebSocket> | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Map<string, Set<Listener>>();

  const connect = (): Promise<WebSocket> => {
    if (opened) return opened;
    opened = new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      ws.onopen = () => resolve(ws);
      ws.onerror = () => reject(new Error('cannot reach the TensorVault server'));
      ws.onclose = () => {
        opened = undefined;
        for (const p of pending.values())
          p.reject(new Error('connection to the TensorVault server closed'));
        pending.clear();
      };
      ws.onmessage = (message) => {
        const data = JSON.parse(String(message.data)) as WireResponse | WireEvent;
        if ('event' in data) {
          for (const listener of listeners.get(data.event) ?? []) listener(data.payload);
          return;
        }
        const waiter = pending.get(data.id);
        if (!waiter) return;
        pending.delete(data.id);
        if ('error' in data) waiter.reject(new Error(data.error));
        else waiter.resolve(data.result);
      };
    });
    return opened;
  };

  const call = async (method: string, args: unknown[]): Promise<unknown> => {
    const ws = await connect();
    const id = nextId++;
    const request: WireRequest = { id, method, args };
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      ws.send(JSON.stringify(request));
    });
  };
  const api = Object.fromEntries(
    methods.map((m) => [m, (...args: unknown[]) => call(m, args)]),
  ) as Api;
  const bridge: Bridge = {
    on<E extends EventName>(event: E, listener: (payload: Events[E]) => void) {
      const set = listeners.get(event) ?? new Set<Listener>();
      set.add(listener as Listener);
      listeners.set(event, set);
      void connect();
      return () => void set.delete(listener as Listener);
    },
  };
  return { api, bridge };
}

const desktop =
  window.tensorvault && window.tensorvaultBridge
    ? { api: window.tensorvault, bridge: window.tensorvaultBridge }
    : undefined;
const transport = desktop ?? webSocketTransport();

export const api: Api = transport.api;
export const bridge: Bridge = transport.bridge;
export const isDesktop = desktop !== undefined;

/** Browser mode: sends each file's bytes, in order, to the push started by api.uploadPush. */
export async function sendFiles(pushId: string, files: File[]): Promise<void> {
  for (const [index, file] of files.entries()) {
    const response = await fetch(`/api/upload/${pushId}/${index}`, { method: 'PUT', body: file });
    if (!response.ok) throw new Error(await response.text());
  }
}
