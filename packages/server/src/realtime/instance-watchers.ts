// The sockets watching one instance, and the distinct readers among them (sockets with equal
// authContexts share one allowRead decision), kept as sockets come and go so that naming an
// instance's readers for each of its steps costs no walk over its sockets.
import type { Reader } from "../engine/read-audience.js";
import type { Connection } from "./connection.js";

export class InstanceWatchers {
  readonly connections = new Set<Connection>();
  readonly #readers = new Map<string, { reader: Reader; sockets: number }>();

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
}
