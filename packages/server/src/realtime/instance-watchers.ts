// The sockets watching one instance, and the distinct readers among them (sockets with equal
// authContexts share one allowRead decision), kept as sockets come and go so that naming an
// instance's readers for each of its steps costs no walk over its sockets. And the newest update
// frame built for it, which every socket then holds as one string.
import type { Reader } from "../engine/read-audience.js";
import { isNewer, type Connection } from "./connection.js";

type HeldFrame = { instanceId: number; ts: number; frame: string };

export class InstanceWatchers {
  readonly connections = new Set<Connection>();
  readonly #readers = new Map<string, { reader: Reader; sockets: number }>();
  #newest: HeldFrame | undefined;

  get size(): number {
    return this.connections.size;
  }

  add(connection: Connection): void {
    if (this.connections.has(connection)) return;
    this.connections.add(connection);
    const known = this.#readers.get(connection.authKey);
    if (known) known.sockets++;
    else {
      const reader = { key: connection.authKey, authContext: connection.principal.authContext };
      this.#readers.set(connection.authKey, { reader, sockets: 1 });
    }
  }

  delete(connection: Connection): void {
    if (!this.connections.delete(connection)) return;
    const known = this.#readers.get(connection.authKey);
    if (known && --known.sockets === 0) this.#readers.delete(connection.authKey);
  }

  /** Up to `limit` of the distinct readers, the longest-watching first. */
  readers(limit: number): Reader[] {
    const readers: Reader[] = [];
    for (const { reader } of this.#readers.values()) {
      if (readers.length >= limit) break;
      readers.push(reader);
    }
    return readers;
  }

  /**
   * The frame of row `instanceId`'s state at `ts`: the one built before for it if any, else
   * `build()`'s, kept if it is the newest. Each socket remembers the last frame it was sent
   * (connection.ts): built once per state rather than once per subscribe, a state as large as a
   * context may be (400 KB) is held once, not once per socket that subscribed to it.
   */
  frameOf(instanceId: number, ts: number, build: () => string): string {
    const held = this.#newest;
    if (held !== undefined && held.instanceId === instanceId && held.ts === ts) return held.frame;
    const frame = build();
    if (held === undefined || isNewer({ instanceId, ts }, held)) {
      this.#newest = { instanceId, ts, frame };
    }
    return frame;
  }
}
