/**
 * A small typed event emitter (no dependency, works in browsers and Node). A listener that
 * throws does not stop the others; its error is rethrown on a fresh task so it is not lost.
 */

/** Event name → listener signature (an interface works: no index signature needed). */
export type EventMap<E> = { [K in keyof E]: (...args: never[]) => void };

export class Emitter<E extends EventMap<E>> {
  private readonly listeners = new Map<keyof E, Set<E[keyof E]>>();

  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.listeners.get(event)?.delete(listener);
  }

  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as (...a: Parameters<E[K]>) => void)(...args);
      } catch (e) {
        setTimeout(() => {
          throw e;
        }, 0);
      }
    }
  }
}
