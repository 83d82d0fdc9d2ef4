/*
 * A comlink Endpoint over a worker_threads MessagePort (what comlink's node-adapter does; written here
 * because that adapter ships without types for ESM resolution).
 */
import type { Endpoint } from 'comlink';
import type { MessagePort } from 'node:worker_threads';

type Listener = Parameters<Endpoint['addEventListener']>[1];

export function portEndpoint(port: MessagePort): Endpoint {
  const wrapped = new WeakMap<Listener, (data: unknown) => void>();
  return {
    postMessage: (message: unknown, transfer?: unknown[]) => port.postMessage(message, transfer as never),
    addEventListener: (_type: string, listener: Listener) => {
      const l = (data: unknown): void => {
        const event = { data } as Parameters<Extract<Listener, Function>>[0];
        if (typeof listener === 'function') listener(event);
        else listener.handleEvent(event);
      };
      port.on('message', l);
      wrapped.set(listener, l);
    },
    removeEventListener: (_type: string, listener: Listener) => {
      const l = wrapped.get(listener);
      if (l) port.off('message', l);
      wrapped.delete(listener);
    },
    start: () => port.start(),
  };
}
