import { methods, type Api } from '../../shared/contract';
import type { WireRequest, WireResponse } from '../../shared/wire';

declare global {
  interface Window {
    /** Set by the Electron preload; absent in browser mode. */
    tensorvault?: Api;
  }
}

/** The browser-mode transport: the same contract over a WebSocket to `tv serve`. */
function webSocketApi(): Api {
  const url = new URL('/api', window.location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  let opened: Promise<WebSocket> | undefined;
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

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
        const response = JSON.parse(String(message.data)) as WireResponse;
        const waiter = pending.get(response.id);
        if (!waiter) return;
        pending.delete(response.id);
        if ('error' in response) waiter.reject(new Error(response.error));
        else waiter.resolve(response.result);
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
  return Object.fromEntries(methods.map((m) => [m, (...args: unknown[]) => call(m, args)])) as Api;
}

export const api: Api = window.tensorvault ?? webSocketApi();
